//! Microsoft's endpoints and scopes per cloud (SPEC section 3), with the profile's overrides.
//!
//! Pure data: no I/O. The resource a scope names comes from the cloud, never from a URL
//! override, so `--graph-url http://127.0.0.1:8080` (a local proxy or a test) still asks for
//! `https://graph.microsoft.com/Mail.Send`. Plain http is refused except on loopback
//! (SPEC section 9).

use crate::config::{Cloud, Profile, SmtpSecurity, Transport};
use crate::error::{Error, Result};
use oauth2::url::{Host, Url};

/// The OpenID Connect scopes every delegated flow asks for: a refresh token and an id_token.
pub const OIDC_SCOPES: [&str; 4] = ["offline_access", "openid", "profile", "email"];

/// The resource SMTP tokens are for, in every cloud (SPEC section 3).
const SMTP_RESOURCE: &str = "https://outlook.office.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloudInfo {
    pub authority: &'static str,
    pub graph: &'static str,
}

pub fn cloud_info(cloud: Cloud) -> CloudInfo {
    match cloud {
        Cloud::Global => CloudInfo {
            authority: "https://login.microsoftonline.com",
            graph: "https://graph.microsoft.com",
        },
        Cloud::UsGov => CloudInfo {
            authority: "https://login.microsoftonline.us",
            graph: "https://graph.microsoft.us",
        },
        Cloud::UsGovDod => CloudInfo {
            authority: "https://login.microsoftonline.us",
            graph: "https://dod-graph.microsoft.us",
        },
        Cloud::China => CloudInfo {
            authority: "https://login.chinacloudapi.cn",
            graph: "https://microsoftgraph.chinacloudapi.cn",
        },
    }
}

/// Where a profile's requests go, after overrides.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub authority: Url,
    pub graph: Url,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
}

impl Endpoints {
    pub fn for_profile(p: &Profile) -> Result<Endpoints> {
        let info = cloud_info(p.cloud);
        let authority = checked_url(
            p.authority.as_deref().unwrap_or(info.authority),
            "authority",
        )?;
        let graph = checked_url(p.graph_url.as_deref().unwrap_or(info.graph), "graph_url")?;
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
            authority,
            graph,
            smtp_host,
            smtp_port,
            smtp_security,
        })
    }

    fn oauth_url(&self, tenant: &str, leaf: &str) -> Result<Url> {
        let base = self.authority.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/{leaf}")).map_err(|e| {
            Error::config(format!("invalid tenant {tenant:?}: {e}"))
                .fix("use common, organizations, consumers, a tenant GUID or a domain")
        })
    }
    pub fn authorize_url(&self, tenant: &str) -> Result<Url> {
        self.oauth_url(tenant, "authorize")
    }
    pub fn token_url(&self, tenant: &str) -> Result<Url> {
        self.oauth_url(tenant, "token")
    }
    pub fn device_code_url(&self, tenant: &str) -> Result<Url> {
        self.oauth_url(tenant, "devicecode")
    }
}

/// Accepts https anywhere and http only on loopback hosts.
pub fn checked_url(text: &str, what: &str) -> Result<Url> {
    let url = Url::parse(text).map_err(|e| {
        Error::config(format!("{what} {text:?} is not a URL: {e}"))
            .fix(format!("give {what} as https://host[:port]"))
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::config(format!("{what} {text} uses plain http"))
            .why("http is accepted only on loopback (127.0.0.1, ::1, localhost); tokens would cross the network unencrypted")
            .fix(format!("use an https:// {what}"))),
        other => Err(Error::config(format!("{what} {text} has unsupported scheme {other}"))
            .fix(format!("use an https:// {what}"))),
    }
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The resource SMTP app-only tokens are for (`SMTP.SendAsApp`).
const SMTP_APP_RESOURCE: &str = "https://outlook.office365.com";

/// The resource (audience) a transport's token is for.
pub fn resource(p: &Profile, transport: Transport) -> String {
    match transport {
        Transport::Graph => cloud_info(p.cloud).graph.to_owned(),
        Transport::Smtp if p.flow == crate::config::Flow::ClientCredentials => {
            SMTP_APP_RESOURCE.to_owned()
        }
        Transport::Smtp => SMTP_RESOURCE.to_owned(),
    }
}

/// The one scope of a client-credentials request: the application permissions granted to
/// the app on that resource.
pub fn app_scope(p: &Profile, transport: Transport) -> String {
    format!("{}/.default", resource(p, transport))
}

fn default_scopes(p: &Profile, transport: Transport) -> Vec<String> {
    let res = resource(p, transport);
    match transport {
        Transport::Graph if p.large_attachments => {
            vec![format!("{res}/Mail.Send"), format!("{res}/Mail.ReadWrite")]
        }
        Transport::Graph => vec![format!("{res}/Mail.Send")],
        Transport::Smtp => vec![format!("{res}/SMTP.Send")],
    }
}

/// The resource scopes of one transport: one token request names exactly these.
pub fn resource_scopes(p: &Profile, transport: Transport) -> Vec<String> {
    let Some(custom) = &p.scopes else {
        return default_scopes(p, transport);
    };
    let res = resource(p, transport);
    custom
        .iter()
        .filter(|s| match s.split_once("://") {
            // A bare scope such as "Mail.Send" means Graph to Entra.
            None => transport == Transport::Graph && !OIDC_SCOPES.contains(&s.as_str()),
            Some(_) => s.starts_with(&format!("{res}/")),
        })
        .cloned()
        .collect()
}

/// Scopes of one token request (authorization code redemption or refresh): one resource.
pub fn token_scopes(p: &Profile, transport: Transport) -> Vec<String> {
    let mut s = resource_scopes(p, transport);
    s.extend(OIDC_SCOPES.iter().map(|s| s.to_string()));
    s
}

/// Scopes of the authorize request: consent for both transports at once, the profile's
/// default transport first (a device-code token is issued for the first resource).
pub fn authorize_scopes(p: &Profile) -> Vec<String> {
    let other = match p.transport {
        Transport::Graph => Transport::Smtp,
        Transport::Smtp => Transport::Graph,
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

/// Splits `--scopes` input on spaces and commas.
pub fn parse_scopes(text: &str) -> Vec<String> {
    text.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn profile() -> Profile {
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
            let e = Endpoints::for_profile(&p).unwrap();
            assert_eq!(
                e.token_url("contoso.com").unwrap().as_str(),
                format!("{login}/contoso.com/oauth2/v2.0/token")
            );
            assert_eq!(
                resource_scopes(&p, Transport::Graph),
                [format!("{graph}/Mail.Send")]
            );
        }
    }

    #[test]
    fn smtp_defaults() {
        let mut p = profile();
        let e = Endpoints::for_profile(&p).unwrap();
        assert_eq!(
            (e.smtp_host.as_deref(), e.smtp_port),
            (Some("smtp.office365.com"), 587)
        );
        p.tenant = "consumers".into();
        let e = Endpoints::for_profile(&p).unwrap();
        assert_eq!(e.smtp_host.as_deref(), Some("smtp-mail.outlook.com"));
        p.cloud = Cloud::UsGov;
        assert_eq!(Endpoints::for_profile(&p).unwrap().smtp_host, None);
    }

    #[test]
    fn authorize_names_both_resources_tokens_one() {
        let mut p = profile();
        p.transport = Transport::Smtp;
        assert_eq!(
            authorize_scopes(&p),
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
            token_scopes(&p, Transport::Graph),
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
            resource_scopes(&p, Transport::Graph)
                .contains(&"https://graph.microsoft.com/Mail.ReadWrite".to_string())
        );
    }

    #[test]
    fn custom_scopes_split_by_resource() {
        let mut p = profile();
        p.scopes = Some(parse_scopes(
            "Mail.Send, https://outlook.office.com/SMTP.Send offline_access",
        ));
        assert_eq!(resource_scopes(&p, Transport::Graph), ["Mail.Send"]);
        assert_eq!(
            resource_scopes(&p, Transport::Smtp),
            ["https://outlook.office.com/SMTP.Send"]
        );
    }

    #[test]
    fn http_only_on_loopback() {
        for (url, ok) in [
            ("https://login.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://[::1]:1", true),
            ("http://localhost:9", true),
            ("http://login.example.com", false),
            ("http://10.0.0.1", false),
            ("ftp://127.0.0.1", false),
            ("not a url", false),
        ] {
            assert_eq!(checked_url(url, "authority").is_ok(), ok, "{url}");
        }
    }
}
