//! The config file: profiles, their endpoints and choices. Never secrets (those live in the
//! token store).
//!
//! TOML at `--config` / `$MAILER_CONFIG`, else `{config_dir}/mailer/config.toml` (README,
//! "Config file"). Unknown keys are an error naming the key and the file (exit 78), as cargo
//! and msmtp do, because a typo that is silently ignored sends mail the wrong way. Written by
//! `login` atomically; a person's edits survive as values (comments do not: the file is
//! re-serialized). Profile names become file and keyring entry names, so they are checked
//! here too.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub provider: ProviderKind,
    /// Entra's tenant (GUID, domain, or common/organizations/consumers); other providers
    /// have none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tenant: String,
    pub client_id: String,
    pub user: String,
    #[serde(default)]
    pub transport: TransportKind,
    #[serde(default)]
    pub cloud: Cloud,
    #[serde(default)]
    pub flow: Flow,
    #[serde(default)]
    pub token_store: TokenStoreKind,
    #[serde(default)]
    pub queue: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Resource scopes that replace the defaults (`login --scopes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `login --large-attachments`: Mail.ReadWrite was requested.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub large_attachments: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_url: Option<String>,
    /// Google and custom providers: where the sign-in page, the token endpoint and (Google)
    /// the Gmail API are, when not at the provider's own hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp_security: Option<SmtpSecurity>,
    /// The SASL mechanism of SMTP AUTH (default xoauth2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<Sasl>,
    /// A Google service account's address (`…@….iam.gserviceaccount.com`): the issuer of
    /// its signed assertions (flow `service_account`). Its key is in the token store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// App-only with a certificate: the certificate and private key (PEM paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
    /// `login --redirect-uri`: the fixed redirect registered for the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Run through `sh -c` to tell a person that something needs them (a login, a secret
    /// that expires, a message that failed); see `notify.rs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_command: Option<String>,
    /// The transport to try when the chosen one refuses for a reason of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<TransportKind>,
    /// When the app's client secret or certificate expires (RFC 3339), for warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_expires: Option<String>,
    /// Seconds any one server answer may take (HTTP response, SMTP reply); default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Messages a minute `queue run` and bulk sends keep to (default 30, Exchange Online's
    /// per-mailbox limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<u32>,
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? } default $default:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
        pub enum $name {
            $(
                #[serde(rename = $text)]
                #[value(name = $text)]
                $variant,
            )+
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }
        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(ProviderKind { Microsoft = "microsoft", Google = "google", Custom = "custom" } default Microsoft);
string_enum!(TransportKind { Graph = "graph", Smtp = "smtp", Gmail = "gmail" } default Graph);
string_enum!(Cloud { Global = "global", UsGov = "usgov", UsGovDod = "usgov-dod", China = "china" } default Global);
string_enum!(Flow { AuthorizationCode = "authorization_code", DeviceCode = "device_code", ClientCredentials = "client_credentials", ServiceAccount = "service_account" } default AuthorizationCode);
string_enum!(TokenStoreKind { Keyring = "keyring", File = "file" } default Keyring);
string_enum!(ClientAuth { Basic = "basic", Post = "post" } default Post);
string_enum!(SmtpSecurity { Starttls = "starttls", Tls = "tls" } default Starttls);
string_enum!(Sasl { Xoauth2 = "xoauth2", Oauthbearer = "oauthbearer" } default Xoauth2);

/// Where the config file lives: the explicit path, else the platform config dir.
pub fn default_path() -> Result<PathBuf> {
    dirs::config_dir()
        .map(|d| d.join("mailer").join("config.toml"))
        .ok_or_else(|| {
            Error::config("cannot find a config directory for this user")
                .fix("set MAILER_CONFIG=/path/to/config.toml or pass --config")
        })
}

impl Config {
    /// Reads the file; a missing file is an empty config (nobody has logged in yet).
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(
                    Error::config(format!("cannot read {}: {e}", path.display())).fix(
                        "check the path and its permissions, or point MAILER_CONFIG elsewhere",
                    ),
                );
            }
        };
        // Not "cannot read": the file was read, and its permissions are not the problem.
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::config(format!("{} is not UTF-8 text", path.display()))
                .why(e.utf8_error().to_string())
                .fix(format!(
                    "save it as UTF-8 (iconv -t UTF-8), or edit {} (see the README for the keys)",
                    path.display()
                ))
        })?;
        Config::parse(&text).map_err(|msg| {
            Error::config(format!("invalid config file {}", path.display()))
                .why(msg)
                .fix(format!(
                    "edit {} (see the README for the keys)",
                    path.display()
                ))
        })
    }

    /// The config in `text`, or the TOML reader's message. Public for the fuzz targets.
    #[doc(hidden)]
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().replace('\n', "\n       "))
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self)
            .map_err(|e| Error::internal(format!("cannot serialize the config: {e}")))?;
        crate::fsutil::write_atomic(path, text.as_bytes(), None).map_err(|e| {
            Error::config(format!("cannot write {}: {e}", path.display()))
                .fix("check that the directory is writable, or point MAILER_CONFIG elsewhere")
        })
    }

    /// The profile a command works on: `--profile`/`MAILER_PROFILE`, else the file's
    /// `default_profile`, else "default".
    pub fn profile_name(&self, requested: Option<&str>) -> String {
        requested
            .map(str::to_owned)
            .or_else(|| self.default_profile.clone())
            .unwrap_or_else(|| "default".to_owned())
    }
}

/// Seconds a server may take to answer when the profile does not say: long enough for a
/// slow day at Microsoft, short enough that a cron job does not hang into the next run.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// Exchange Online's per-mailbox submission limit (30 messages a minute).
pub const DEFAULT_RATE_LIMIT: u32 = 30;

impl Profile {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout.unwrap_or(DEFAULT_TIMEOUT_SECS).max(1))
    }
    /// Messages a minute; 0 turns pacing off.
    pub fn rate_limit(&self) -> u32 {
        self.rate_limit.unwrap_or(DEFAULT_RATE_LIMIT)
    }
}

/// ` --profile NAME`, or nothing for the default profile: what a printed command needs to
/// act on the same profile.
pub fn profile_flag(name: &str) -> String {
    if name == "default" {
        String::new()
    } else {
        format!(" --profile {name}")
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: a tenant or client id.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

/// Profile names become file and keyring entry names: letters, digits, `.`, `_`, `-`.
pub fn check_profile_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("invalid profile name {name:?}"))
            .fix("use letters, digits, '.', '_' and '-' (at most 64, not starting with '.')"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const README_EXAMPLE: &str = r#"
default_profile = "work"

[profiles.work]
provider = "microsoft"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000000"
user = "ops@contoso.com"
transport = "graph"
cloud = "global"
flow = "authorization_code"
token_store = "keyring"
queue = false
authority = "https://login.microsoftonline.com"
graph_url = "https://graph.microsoft.com"
smtp_host = "smtp.office365.com"
smtp_port = 587
ca_file = "/etc/ssl/corp-root.pem"
"#;

    #[test]
    fn parses_the_spec_example() {
        let c = Config::parse(README_EXAMPLE).unwrap();
        let p = &c.profiles["work"];
        assert_eq!(c.default_profile.as_deref(), Some("work"));
        assert_eq!(p.user, "ops@contoso.com");
        assert_eq!(p.smtp_port, Some(587));
        assert_eq!(p.token_store, TokenStoreKind::Keyring);
    }

    #[test]
    fn round_trips() {
        let c = Config::parse(README_EXAMPLE).unwrap();
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(Config::parse(&text).unwrap(), c);
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("colour = 1", "colour"),
            (
                "[profiles.a]\ntenant='t'\nclient_id='c'\nuser='u'\nsmtp_prot=25",
                "smtp_prot",
            ),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn bad_enum_values_are_errors() {
        let err =
            Config::parse("[profiles.a]\ntenant='t'\nclient_id='c'\nuser='u'\ntransport='fax'")
                .unwrap_err();
        assert!(
            err.contains("fax") || err.contains("unknown variant"),
            "{err}"
        );
    }

    #[test]
    fn profile_names() {
        for (name, ok) in [
            ("work", true),
            ("a.b-c_1", true),
            ("", false),
            (".x", false),
            ("a/b", false),
            ("a b", false),
        ] {
            assert_eq!(check_profile_name(name).is_ok(), ok, "{name}");
        }
    }

    #[test]
    fn profile_name_precedence() {
        let mut c = Config::default();
        assert_eq!(c.profile_name(None), "default");
        c.default_profile = Some("work".into());
        assert_eq!(c.profile_name(None), "work");
        assert_eq!(c.profile_name(Some("home")), "home");
    }
}

/// Properties: any text is read as a config or refused with a message (never a panic), and
/// every config mailer can hold is written and read back unchanged, whatever people put in
/// its strings.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[a-z0-9.@/:-]{0,20}",
            1 => any::<String>(),
        ]
    }

    fn one_of<T: Clone + std::fmt::Debug + 'static>(v: &[T]) -> impl Strategy<Value = T> + use<T> {
        prop::sample::select(v.to_vec())
    }

    // Long because it is every field of a profile, one generator each.
    fn profile() -> impl Strategy<Value = Profile> {
        use TransportKind::*;
        let ids = (text(), text(), text());
        let kinds = (
            one_of(&[Graph, Smtp, Gmail]),
            one_of(&[Cloud::Global, Cloud::UsGov, Cloud::UsGovDod, Cloud::China]),
            one_of(&[
                Flow::AuthorizationCode,
                Flow::DeviceCode,
                Flow::ClientCredentials,
                Flow::ServiceAccount,
            ]),
            one_of(&[TokenStoreKind::Keyring, TokenStoreKind::File]),
            any::<bool>(),
            prop::option::of(one_of(&[ClientAuth::Basic, ClientAuth::Post])),
            prop::option::of(prop::collection::vec(text(), 0..3)),
            any::<bool>(),
        );
        let endpoints = (
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(any::<u16>()),
            prop::option::of(one_of(&[SmtpSecurity::Starttls, SmtpSecurity::Tls])),
            prop::option::of(text().prop_map(PathBuf::from)),
            prop::option::of(text().prop_map(PathBuf::from)),
            prop::option::of(text().prop_map(PathBuf::from)),
            prop::option::of(text()),
        );
        let rest = (
            prop::option::of(text()),
            prop::option::of(one_of(&[Graph, Smtp, Gmail])),
            prop::option::of(text()),
            // TOML integers are i64.
            prop::option::of(0..=i64::MAX as u64),
            prop::option::of(any::<u32>()),
        );
        let providers = (
            one_of(&[
                ProviderKind::Microsoft,
                ProviderKind::Google,
                ProviderKind::Custom,
            ]),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(text()),
            prop::option::of(one_of(&[Sasl::Xoauth2, Sasl::Oauthbearer])),
            prop::option::of(text()),
        );
        (ids, kinds, endpoints, rest, providers).prop_map(|(ids, kinds, endpoints, rest, pr)| {
            Profile {
                provider: pr.0,
                authorize_url: pr.1,
                token_url: pr.2,
                api_url: pr.3,
                sasl: pr.4,
                service_account: pr.5,
                tenant: ids.0,
                client_id: ids.1,
                user: ids.2,
                transport: kinds.0,
                cloud: kinds.1,
                flow: kinds.2,
                token_store: kinds.3,
                queue: kinds.4,
                client_auth: kinds.5,
                scopes: kinds.6,
                large_attachments: kinds.7,
                authority: endpoints.0,
                graph_url: endpoints.1,
                smtp_host: endpoints.2,
                smtp_port: endpoints.3,
                smtp_security: endpoints.4,
                ca_file: endpoints.5,
                certificate: endpoints.6,
                private_key: endpoints.7,
                redirect_uri: endpoints.8,
                notify_command: rest.0,
                fallback: rest.1,
                credential_expires: rest.2,
                timeout: rest.3,
                rate_limit: rest.4,
            }
        })
    }

    fn config() -> impl Strategy<Value = Config> {
        (
            prop::option::of(text()),
            prop::collection::btree_map(text(), profile(), 0..3),
        )
            .prop_map(|(default_profile, profiles)| Config {
                default_profile,
                profiles,
            })
    }

    /// Config-like text: the real keys and tables, values of every type, broken syntax.
    fn toml_text() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            prop::sample::select(vec![
                "default_profile",
                "provider",
                "tenant",
                "client_id",
                "user",
                "transport",
                "cloud",
                "flow",
                "token_store",
                "queue",
                "smtp_port",
                "timeout",
                "rate_limit",
                "scopes",
                "ca_file",
                "fallback",
            ])
            .prop_map(str::to_owned),
            "[a-z_]{1,8}",
        ];
        let value = prop_oneof![
            "\"[ -~]{0,12}\"",
            "-?[0-9]{1,22}",
            Just("true".to_owned()),
            "\\[[0-9\", ]{0,10}\\]",
            "[ -~]{0,8}",
        ];
        let line = prop_oneof![
            (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
            "\\[profiles\\.[a-z\"]{0,6}\\]".prop_map(|s| s.to_owned()),
            any::<String>(),
        ];
        prop::collection::vec(line, 0..10).prop_map(|l| l.join("\n"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_text_is_a_config_or_a_message(text in toml_text()) {
            if let Err(msg) = Config::parse(&text) {
                prop_assert!(!msg.is_empty());
            }
        }

        #[test]
        fn configs_round_trip(c in config()) {
            let text = toml::to_string_pretty(&c).unwrap();
            prop_assert_eq!(Config::parse(&text), Ok(c), "{}", text);
        }
    }
}
