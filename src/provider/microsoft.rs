//! Microsoft Entra ID (work, school and personal Microsoft accounts): clouds, endpoints,
//! scopes and the meaning of its token errors.
//!
//! Endpoints per national cloud follow "National cloud deployments" in the Microsoft identity
//! platform docs (README, "Log in", has the table). One authorize request may name scopes of
//! several resources (consent for Graph and Exchange at once); each token request names one
//! resource, or Entra answers AADSTS700022. The resource a scope names comes from the cloud,
//! never from a URL override, so `--graph-url http://127.0.0.1:8080` (a local proxy or a
//! test) still asks for `https://graph.microsoft.com/Mail.Send`.

use super::{Endpoints, OIDC_SCOPES, Provider, checked_url};
use crate::auth::errors::TokenError;
use crate::config::{Cloud, Profile, ProviderKind, SmtpSecurity, TransportKind};
use crate::error::{Class, Error, Result};
use crate::explain::{self, Fill, Source};
use oauth2::url::Url;

/// The resource delegated SMTP tokens are for, in every cloud.
const SMTP_RESOURCE: &str = "https://outlook.office.com";
/// The resource app-only SMTP tokens are for (`SMTP.SendAsApp`).
const SMTP_APP_RESOURCE: &str = "https://outlook.office365.com";

pub struct Microsoft;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudInfo {
    pub authority: &'static str,
    pub graph: &'static str,
}

pub fn cloud_info(cloud: Cloud) -> CloudInfo {
    let (authority, graph) = match cloud {
        Cloud::Global => (
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
        ),
        Cloud::UsGov => (
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
        ),
        Cloud::UsGovDod => (
            "https://login.microsoftonline.us",
            "https://dod-graph.microsoft.us",
        ),
        Cloud::China => (
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    };
    CloudInfo { authority, graph }
}

fn oauth_url(authority: &Url, tenant: &str, leaf: &str) -> Result<Url> {
    let base = authority.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/{leaf}")).map_err(|e| {
        Error::config(format!("invalid tenant {tenant:?}: {e}"))
            .fix("use common, organizations, consumers, a tenant GUID or a domain")
    })
}

/// Delegated scopes of one transport, before the OpenID ones.
fn default_scopes(p: &Profile, transport: TransportKind) -> Vec<String> {
    let res = Microsoft.resource(p, transport);
    match transport {
        TransportKind::Graph if p.large_attachments => {
            vec![format!("{res}/Mail.Send"), format!("{res}/Mail.ReadWrite")]
        }
        TransportKind::Graph => vec![format!("{res}/Mail.Send")],
        TransportKind::Smtp => vec![format!("{res}/SMTP.Send")],
        // Not an Entra transport: nothing to ask for.
        TransportKind::Gmail => vec![],
    }
}

/// The resource scopes of one transport: one token request names exactly these.
fn resource_scopes(p: &Profile, transport: TransportKind) -> Vec<String> {
    let Some(custom) = &p.scopes else {
        return default_scopes(p, transport);
    };
    let res = Microsoft.resource(p, transport);
    custom
        .iter()
        .filter(|s| match s.split_once("://") {
            // A bare scope such as "Mail.Send" means Graph to Entra.
            None => transport == TransportKind::Graph && !OIDC_SCOPES.contains(&s.as_str()),
            Some(_) => s.starts_with(&format!("{res}/")),
        })
        .cloned()
        .collect()
}

impl Provider for Microsoft {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Microsoft
    }

    fn display_name(&self) -> &'static str {
        "Microsoft Entra"
    }

    fn transports(&self) -> &'static [TransportKind] {
        &[TransportKind::Graph, TransportKind::Smtp]
    }

    fn endpoints(&self, p: &Profile) -> Result<Endpoints> {
        if p.tenant.is_empty() {
            return Err(Error::config("the profile names no Entra tenant")
                .fix("log in again with --tenant (a GUID, a domain, or common), or add tenant = \"…\" to the profile"));
        }
        let info = cloud_info(p.cloud);
        let authority = checked_url(
            p.authority.as_deref().unwrap_or(info.authority),
            "authority",
        )?;
        let api = checked_url(p.graph_url.as_deref().unwrap_or(info.graph), "graph_url")?;
        let personal = p.tenant.eq_ignore_ascii_case("consumers");
        let smtp_host = p.smtp_host.clone().or_else(|| match p.cloud {
            Cloud::Global if personal => Some("smtp-mail.outlook.com".into()),
            Cloud::Global => Some("smtp.office365.com".into()),
            _ => None,
        });
        let smtp_security = p.smtp_security.unwrap_or_default();
        let smtp_port = p.smtp_port.unwrap_or(match smtp_security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        });
        Ok(Endpoints {
            authorize: oauth_url(&authority, &p.tenant, "authorize")?,
            token: oauth_url(&authority, &p.tenant, "token")?,
            device_code: Some(oauth_url(&authority, &p.tenant, "devicecode")?),
            authority,
            api,
            smtp_host,
            smtp_port,
            smtp_security,
        })
    }

    /// Consent for both transports at once, the profile's default transport first (a
    /// device-code token is issued for the first resource).
    fn authorize_scopes(&self, p: &Profile) -> Vec<String> {
        let other = match p.transport {
            TransportKind::Graph | TransportKind::Gmail => TransportKind::Smtp,
            TransportKind::Smtp => TransportKind::Graph,
        };
        let mut s = match &p.scopes {
            Some(custom) => custom.clone(),
            None => {
                let mut s = default_scopes(p, p.transport);
                s.extend(default_scopes(p, other));
                s
            }
        };
        for o in OIDC_SCOPES {
            if !s.iter().any(|x| x == o) {
                s.push(o.to_owned());
            }
        }
        s
    }

    fn token_scopes(&self, p: &Profile, t: TransportKind) -> Vec<String> {
        let mut s = resource_scopes(p, t);
        s.extend(OIDC_SCOPES.iter().map(|s| s.to_string()));
        s
    }

    /// The application permissions an admin granted to the app on that resource.
    fn app_scope(&self, p: &Profile, t: TransportKind) -> String {
        format!("{}/.default", self.resource(p, t))
    }

    fn resource(&self, p: &Profile, t: TransportKind) -> String {
        match t {
            TransportKind::Graph | TransportKind::Gmail => cloud_info(p.cloud).graph.to_owned(),
            TransportKind::Smtp if p.flow.is_app_only() => SMTP_APP_RESOURCE.to_owned(),
            TransportKind::Smtp => SMTP_RESOURCE.to_owned(),
        }
    }

    fn send_permission(&self, p: &Profile, t: TransportKind) -> &'static str {
        match (t, p.flow.is_app_only()) {
            (TransportKind::Graph | TransportKind::Gmail, _) => "Mail.Send",
            (TransportKind::Smtp, false) => "SMTP.Send",
            (TransportKind::Smtp, true) => "SMTP.SendAsApp",
        }
    }

    fn check_login(&self, p: &Profile) -> Result<()> {
        let (tenant, client_id) = (p.tenant.as_str(), p.client_id.as_str());
        for (value, flag) in [
            (&p.authorize_url, "--authorize-url"),
            (&p.token_url, "--token-url"),
            (&p.api_url, "--api-url"),
        ] {
            if value.is_some() {
                return Err(Error::usage(format!("{flag} is for Google and custom providers"))
                    .fix("for Microsoft, point --authority at the login host and --graph-url at Graph"));
            }
        }
        if p.flow == crate::config::Flow::ServiceAccount {
            return Err(Error::usage("--service-account is for Google Workspace")
                .fix("for an Entra app without a person, log in with --app-only"));
        }
        let tenant_ok =
            is_multi_tenant(tenant) || crate::config::is_guid(tenant) || is_domain(tenant);
        if !tenant_ok {
            return Err(Error::usage(format!(
                "--tenant {tenant:?} is not a tenant: Entra names one by common, \
                 organizations, consumers, its GUID or one of its domains"
            ))
            .fix("pass the Directory (tenant) ID from the app's Overview page, or your mail domain (mailer discover ADDRESS finds it)"));
        }
        if !crate::config::is_guid(client_id) {
            return Err(Error::usage(format!(
                "--client-id {client_id:?} is not an application id: Entra's are GUIDs"
            ))
            .fix("pass the Application (client) ID from the app's Overview page, such as 00000000-0000-0000-0000-000000000000, or create one: mailer app create"));
        }
        Ok(())
    }

    /// Entra expires a refresh token after 90 days without use ("Refresh token lifetime",
    /// Microsoft identity platform docs).
    fn idle_limit_days(&self) -> Option<u64> {
        Some(90)
    }

    /// Only a tenant's own endpoint can tell: on /common and its kin the app's home tenant
    /// is not known until someone signs in.
    fn probes_new_apps(&self, p: &Profile) -> bool {
        !is_multi_tenant(&p.tenant)
    }

    /// AADSTS700016: "Application with identifier … was not found in the directory".
    fn app_unknown(&self, code: Option<&str>) -> bool {
        code == Some("AADSTS700016")
    }

    /// Entra's v1 tokens name Microsoft's first-party resources by app id.
    fn is_audience(&self, aud: &str, resource: &str) -> bool {
        let host = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        let ids = [
            ("00000003-0000-0000-c000-000000000000", "graph.microsoft"),
            ("00000002-0000-0ff1-ce00-000000000000", "outlook.office"),
        ];
        host(aud) == host(resource)
            || ids
                .iter()
                .any(|(id, h)| aud.eq_ignore_ascii_case(id) && resource.contains(h))
    }

    /// The tenant's own document: its issuer names the tenant GUID.
    fn discovery_url(&self, p: &Profile, e: &Endpoints) -> Option<String> {
        Some(format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            e.authority.as_str().trim_end_matches('/'),
            p.tenant
        ))
    }

    /// Branches on the AADSTS number where it is known and on the OAuth `error` otherwise
    /// (RFC 6749 section 5.2).
    fn explain(&self, e: &TokenError, action: &str, fill: &Fill) -> Error {
        let code = e.aadsts();
        let by_number = code.and_then(|c| explain::lookup(Source::Entra, &c.to_string()));
        let tag = match code {
            Some(c) => format!("AADSTS{c}"),
            None => e.error.clone(),
        };
        let (class, meaning, mut fix) =
            match by_number.or_else(|| explain::lookup(Source::Entra, &e.error)) {
                Some(entry) => (
                    entry.class,
                    fill.apply(entry.meaning),
                    fill.apply(entry.fix),
                ),
                None => (
                    Class::Refused,
                    "the identity provider refused the request".to_owned(),
                    fill.apply("if it names the login, log in again: {login}"),
                ),
            };
        // A number the table does not know still leads somewhere, even when the OAuth
        // `error` gave a general meaning.
        if by_number.is_none() {
            fix = format!(
                "{fix}; {tag} is described at {}",
                explain::docs_for_unknown(Source::Entra, &tag)
            );
        }
        Error::new(class, format!("{action} failed: {tag}: {meaning}"))
            .why(e.why())
            .fix(fix)
            .code(tag)
    }
}

/// `common`, `organizations`, `consumers`: endpoints for many tenants, not one.
pub fn is_multi_tenant(tenant: &str) -> bool {
    matches!(
        tenant.to_ascii_lowercase().as_str(),
        "common" | "organizations" | "consumers"
    )
}

/// A DNS name as a tenant: at least two labels of letters, digits and inner hyphens.
fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        toml::from_str("tenant='contoso.com'\nclient_id='c'\nuser='a@contoso.com'").unwrap()
    }

    #[test]
    fn endpoints_per_cloud() {
        for (cloud, login, graph) in [
            (
                Cloud::Global,
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            (
                Cloud::UsGov,
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            (
                Cloud::UsGovDod,
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            (
                Cloud::China,
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        ] {
            let mut p = profile();
            p.cloud = cloud;
            let e = Microsoft.endpoints(&p).unwrap();
            assert_eq!(
                e.token.as_str(),
                format!("{login}/contoso.com/oauth2/v2.0/token")
            );
            assert_eq!(
                resource_scopes(&p, TransportKind::Graph),
                [format!("{graph}/Mail.Send")]
            );
        }
    }

    #[test]
    fn smtp_defaults() {
        let mut p = profile();
        let e = Microsoft.endpoints(&p).unwrap();
        assert_eq!(
            (e.smtp_host.as_deref(), e.smtp_port),
            (Some("smtp.office365.com"), 587)
        );
        p.tenant = "consumers".into();
        let e = Microsoft.endpoints(&p).unwrap();
        assert_eq!(e.smtp_host.as_deref(), Some("smtp-mail.outlook.com"));
        p.cloud = Cloud::UsGov;
        assert_eq!(Microsoft.endpoints(&p).unwrap().smtp_host, None);
    }

    #[test]
    fn authorize_names_both_resources_tokens_one() {
        let mut p = profile();
        p.transport = TransportKind::Smtp;
        assert_eq!(
            Microsoft.authorize_scopes(&p),
            [
                "https://outlook.office.com/SMTP.Send",
                "https://graph.microsoft.com/Mail.Send",
                "offline_access",
                "openid",
                "profile",
                "email"
            ]
        );
        assert_eq!(
            Microsoft.token_scopes(&p, TransportKind::Graph),
            [
                "https://graph.microsoft.com/Mail.Send",
                "offline_access",
                "openid",
                "profile",
                "email"
            ]
        );
        p.large_attachments = true;
        assert!(
            resource_scopes(&p, TransportKind::Graph)
                .contains(&"https://graph.microsoft.com/Mail.ReadWrite".to_string())
        );
    }

    #[test]
    fn custom_scopes_split_by_resource() {
        let mut p = profile();
        p.scopes = Some(super::super::parse_scopes(
            "Mail.Send, https://outlook.office.com/SMTP.Send offline_access",
        ));
        assert_eq!(resource_scopes(&p, TransportKind::Graph), ["Mail.Send"]);
        assert_eq!(
            resource_scopes(&p, TransportKind::Smtp),
            ["https://outlook.office.com/SMTP.Send"]
        );
    }

    #[test]
    fn app_only_smtp_uses_the_exchange_app_resource() {
        let mut p = profile();
        p.flow = crate::config::Flow::ClientCredentials;
        assert_eq!(
            Microsoft.app_scope(&p, TransportKind::Smtp),
            "https://outlook.office365.com/.default"
        );
        assert_eq!(
            Microsoft.app_scope(&p, TransportKind::Graph),
            "https://graph.microsoft.com/.default"
        );
    }

    fn fill() -> Fill {
        Fill {
            login: "mailer login --tenant t --client-id c".into(),
            client_id: "c".into(),
            tenant: "t".into(),
            user: "u@t".into(),
            profile: "default".into(),
        }
    }

    fn entra(error: &str, code: u64, text: &str) -> TokenError {
        TokenError {
            error: error.into(),
            error_description: Some(format!(
                "AADSTS{code}: {text}\r\nTrace ID: abc\r\nCorrelation ID: def\r\nTimestamp: x"
            )),
            error_codes: vec![code],
            trace_id: Some("abc".into()),
            correlation_id: Some("def".into()),
        }
    }

    #[test]
    fn every_code_the_login_issue_names_is_explained() {
        use Class::*;
        for (error, code, class, needle) in [
            ("invalid_request", 50011, Config, "redirect"),
            ("invalid_grant", 50020, LoginNeeded, "tenant"),
            ("invalid_grant", 50076, LoginNeeded, "multi-factor"),
            ("invalid_grant", 50079, LoginNeeded, "multi-factor"),
            ("invalid_grant", 53003, LoginNeeded, "Conditional Access"),
            ("invalid_grant", 65001, LoginNeeded, "consent"),
            ("unauthorized_client", 700016, Config, "client ID c"),
            ("invalid_client", 7000218, Config, "client secret"),
            ("invalid_client", 700025, Config, "public client"),
            ("invalid_client", 7000222, LoginNeeded, "expired"),
            ("invalid_grant", 700082, LoginNeeded, "expired"),
            ("invalid_grant", 70008, LoginNeeded, "expired"),
            ("invalid_request", 9001023, Config, "--tenant"),
        ] {
            let err = Microsoft.explain(&entra(error, code, "text"), "redeeming", &fill());
            let shown = err.to_string();
            assert_eq!(err.class, class, "{code}: {shown}");
            assert!(shown.contains(&format!("AADSTS{code}")), "{shown}");
            assert!(shown.contains(needle), "{code}: {shown}");
            assert!(err.fix.is_some(), "{code} has no fix");
            assert!(!shown.contains('{'), "raw JSON or placeholder in {shown}");
            assert!(shown.contains("trace ID abc"), "{shown}");
        }
    }

    #[test]
    fn access_denied_on_the_redirect() {
        let e = TokenError::new(
            "access_denied",
            Some("AADSTS65004: User declined to consent"),
        );
        let err = Microsoft.explain(&e, "signing in", &fill());
        assert_eq!(err.class, Class::LoginNeeded);
        assert!(err.to_string().contains("AADSTS65004"));
        let e = TokenError::new("access_denied", None);
        let err = Microsoft.explain(&e, "signing in", &fill());
        assert!(err.to_string().contains("access_denied"));
        assert!(err.fix.unwrap().contains("mailer login --tenant t"));
    }

    #[test]
    fn unknown_errors_still_have_a_fix() {
        let e = TokenError::new("invalid_grant", Some("AADSTS12345: something new"));
        let err = Microsoft.explain(&e, "refreshing", &fill());
        assert_eq!(err.class, Class::LoginNeeded);
        assert!(err.fix.unwrap().contains("mailer login"));
    }
}
