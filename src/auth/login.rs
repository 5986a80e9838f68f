//! A login from start to stored tokens: prove the token store can keep them, run the
//! profile's flow, read the answer into a [`Record`], save it under the profile lock.
//!
//! The order matters: the store is checked writable before any browser opens, so that
//! nobody completes a sign-in whose tokens cannot be kept; the tokens are saved before the
//! caller writes the config, so a profile in the config always had a working login. The
//! flow decides how the person (or the app) signs in; each flow is one file.

use super::{Account, TokenAnswer, apply_response, client_credentials, code, device};
use crate::config::{Cloud, Flow, Profile, ProviderKind, TokenStoreKind};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::secret::Secret;
use crate::store::{ProfileLock, Record, Store};
use oauth2::TokenResponse;
use std::time::Duration;

pub struct Options<'a> {
    pub no_browser: bool,
    pub login_hint: Option<&'a str>,
    pub timeout: Duration,
    /// `--user` was given: the id_token does not choose the mailbox.
    pub user_given: bool,
    /// Nothing is stored for the profile yet: its app may be minutes old, and the login
    /// first makes sure the token endpoint knows it.
    pub new_app: bool,
    pub printer: &'a Printer,
}

/// What the app proves itself with at this login, kept in the token store with the tokens.
#[derive(Default)]
pub struct AppCredentials {
    pub client_secret: Option<Secret>,
    /// A certificate's or a service account's private key (PEM).
    pub private_key: Option<Secret>,
    /// A service account key's id.
    pub key_id: Option<String>,
}

/// Signs in and stores the tokens. `acct.profile.user` is filled from the sign-in when
/// the caller did not give one; the caller then writes the profile to the config.
pub async fn login(acct: &mut Account, creds: AppCredentials, opts: &Options<'_>) -> Result<()> {
    acct.http()?; // a bad --ca-file fails now, not after the sign-in
    acct.store.check_writable()?;
    let p = &acct.profile;
    if opts.new_app && p.flow.needs_a_person() && acct.provider.probes_new_apps(p) {
        super::propagation::wait_until_known(acct, opts.printer).await?;
    }
    let now = crate::tokens::now();
    let mut record = Record {
        version: Record::VERSION,
        client_secret: creds.client_secret,
        private_key: creds.private_key,
        key_id: creds.key_id,
        ..Default::default()
    };
    let answer = sign_in(acct, &record, opts).await?;
    if acct.profile.flow.needs_a_person() {
        check_delegated(acct, &answer, opts)?;
        acct.identity_changed();
    }
    let cached = apply_response(&mut record, acct.profile.transport, &answer, now);
    record.logged_in_at = Some(now);
    {
        let _lock = ProfileLock::acquire(&acct.name)?;
        acct.store.save(&record)?;
    }
    acct.cache.clear();
    acct.cache.put(acct.profile.transport, &cached, now);
    Ok(())
}

/// The flow's own way to a first token answer, stored nowhere (the bootstrap sign-in of
/// `mailer app create` uses it as is).
pub async fn first_token(acct: &Account, opts: &Options<'_>) -> Result<TokenAnswer> {
    sign_in(acct, &Record::default(), opts).await
}

/// The flow's own way to a first token answer.
async fn sign_in(acct: &Account, record: &Record, opts: &Options<'_>) -> Result<TokenAnswer> {
    let p = &acct.profile;
    let secret = record.client_secret.as_ref();
    match p.flow {
        Flow::ClientCredentials => {
            let cred = client_credentials::Credential::of(record);
            client_credentials::sign_in(acct, cred, opts.printer).await
        }
        Flow::DeviceCode => {
            let scopes = acct.provider.authorize_scopes(p);
            device::sign_in(acct, secret, &scopes, opts).await
        }
        Flow::AuthorizationCode => code::sign_in(acct, secret, opts).await,
        Flow::ServiceAccount => super::service_account::sign_in(acct, record).await,
    }
}

/// A delegated answer must carry a refresh token, and name the mailbox unless `--user` did.
fn check_delegated(acct: &mut Account, answer: &TokenAnswer, opts: &Options) -> Result<()> {
    if answer.refresh_token().is_none() {
        return Err(
            Error::refused("the identity provider issued no refresh token")
                .why("without one every send would need a new login")
                .fix(acct.provider.offline_hint()),
        );
    }
    if opts.user_given {
        return Ok(());
    }
    let from_id_token = answer
        .extra_fields()
        .id_token
        .as_ref()
        .and_then(super::user_from_id_token);
    match from_id_token {
        Some(u) => acct.profile.user = u,
        None if !acct.profile.user.is_empty() => {}
        None => {
            return Err(
                Error::config("the sign-in did not say which mailbox to send from")
                    .why("the id_token has no preferred_username or email claim")
                    .fix(format!("{} --user you@example.com", acct.login_command())),
            );
        }
    }
    Ok(())
}

/// After a login that moved the profile to another store kind, the old store's tokens
/// would linger where nobody looks: delete them.
pub fn forget_old_store(name: &str, old: TokenStoreKind, new: TokenStoreKind) {
    if old != new
        && let Ok(store) = Store::open(old, name)
    {
        let _ = store.delete();
    }
}

/// Builds `mailer login …` with every non-default setting of the profile, so that running
/// it recreates the same profile.
pub fn login_command(name: &str, p: &Profile) -> String {
    let mut flags = Vec::new();
    if name != "default" {
        flags.push(("--profile", Some(name.to_owned())));
    }
    flags.extend(identity_flags(p));
    flags.extend(flow_flags(p));
    flags.extend(setting_flags(p));
    let mut c = String::from("mailer login");
    for (flag, value) in flags {
        c.push(' ');
        c.push_str(flag);
        if let Some(v) = value {
            c.push(' ');
            c.push_str(&shell_quote(&v));
        }
    }
    c
}

type Flags = Vec<(&'static str, Option<String>)>;

/// Who signs in where: the provider, its tenant and client, the cloud, the transport.
fn identity_flags(p: &Profile) -> Flags {
    let provider = crate::provider::of(p.provider);
    let mut flags = Flags::new();
    if p.provider != ProviderKind::default() {
        flags.push(("--provider", Some(p.provider.to_string())));
    }
    if !p.tenant.is_empty() {
        flags.push(("--tenant", Some(p.tenant.clone())));
    }
    // A service account's client id comes from its key file.
    if p.flow != Flow::ServiceAccount {
        flags.push(("--client-id", Some(p.client_id.clone())));
    }
    if p.cloud != Cloud::Global {
        flags.push(("--cloud", Some(p.cloud.to_string())));
    }
    if p.transport != provider.default_transport() {
        flags.push(("--transport", Some(p.transport.to_string())));
    }
    flags
}

/// The token store, scopes and every endpoint override the profile keeps.
fn setting_flags(p: &Profile) -> Flags {
    let mut flags = Flags::new();
    if p.token_store != TokenStoreKind::Keyring {
        flags.push(("--token-store", Some(p.token_store.to_string())));
    }
    if p.large_attachments {
        flags.push(("--large-attachments", None));
    }
    if let Some(s) = &p.scopes {
        flags.push(("--scopes", Some(s.join(" "))));
    }
    let display =
        |path: &Option<std::path::PathBuf>| path.as_ref().map(|p| p.display().to_string());
    for (flag, v) in [
        ("--authority", p.authority.clone()),
        ("--graph-url", p.graph_url.clone()),
        ("--authorize-url", p.authorize_url.clone()),
        ("--token-url", p.token_url.clone()),
        ("--api-url", p.api_url.clone()),
        ("--smtp-host", p.smtp_host.clone()),
        ("--redirect-uri", p.redirect_uri.clone()),
        ("--smtp-port", p.smtp_port.map(|n| n.to_string())),
        ("--smtp-security", p.smtp_security.map(|s| s.to_string())),
        ("--ca-file", display(&p.ca_file)),
        ("--client-auth", p.client_auth.map(|a| a.to_string())),
        ("--sasl", p.sasl.map(|a| a.to_string())),
    ] {
        if v.is_some() {
            flags.push((flag, v));
        }
    }
    flags
}

/// The flags that select the profile's flow again.
fn flow_flags(p: &Profile) -> Flags {
    match p.flow {
        Flow::AuthorizationCode => vec![],
        Flow::DeviceCode => vec![("--device-code", None)],
        Flow::ClientCredentials => {
            let mut flags = vec![("--app-only", None), ("--user", Some(p.user.clone()))];
            match (&p.certificate, &p.private_key) {
                (Some(c), Some(k)) => {
                    flags.push(("--certificate", Some(c.display().to_string())));
                    flags.push(("--private-key", Some(k.display().to_string())));
                }
                // The secret is never written anywhere a command line could show it.
                _ => flags.push(("--client-secret-stdin", None)),
            }
            flags
        }
        // The key file may be gone by now; KEY.json stands for a new one.
        Flow::ServiceAccount => vec![
            ("--service-account", Some("KEY.json".to_owned())),
            ("--user", Some(p.user.clone())),
        ],
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        toml::from_str("tenant='contoso.com'\nclient_id='abc'\nuser='a@contoso.com'").unwrap()
    }

    #[test]
    fn login_command_for_app_only() {
        let mut p = profile();
        p.flow = Flow::ClientCredentials;
        assert_eq!(
            login_command("default", &p),
            "mailer login --tenant contoso.com --client-id abc --app-only --user a@contoso.com --client-secret-stdin"
        );
        p.certificate = Some("/etc/m/c.pem".into());
        p.private_key = Some("/etc/m/k.pem".into());
        assert!(login_command("default", &p).ends_with(
            "--app-only --user a@contoso.com --certificate /etc/m/c.pem --private-key /etc/m/k.pem"
        ));
    }

    #[test]
    fn login_command_recreates_the_profile() {
        let mut p = profile();
        assert_eq!(
            login_command("default", &p),
            "mailer login --tenant contoso.com --client-id abc"
        );
        p.transport = crate::config::TransportKind::Smtp;
        p.token_store = TokenStoreKind::File;
        p.authority = Some("http://127.0.0.1:5/x y".into());
        assert_eq!(
            login_command("work", &p),
            "mailer login --profile work --tenant contoso.com --client-id abc --transport smtp \
             --token-store file --authority 'http://127.0.0.1:5/x y'"
        );
    }
}
