//! Identity providers: what is particular to one provider's accounts, behind one trait.
//!
//! A provider says where a profile's requests go ([`Endpoints`]), which scopes its sign-in
//! and token requests name, what its authorize request needs beyond OAuth's, how long an
//! unused refresh token lives, which transports it offers, what a login of it may look like,
//! and what its token errors mean. The transports and the token lifecycle ask it; they do
//! not name a provider's hosts or scopes themselves. (Registering an app and finding a
//! tenant, `mailer setup`, is Entra's alone and lives in [`crate::setup`].) A new provider
//! is one file in this folder plus one arm in [`of`]. Pure data and pure functions: no I/O.

pub mod custom;
pub mod google;
pub mod microsoft;

use crate::auth::errors::TokenError;
use crate::config::{Profile, ProviderKind, SmtpSecurity, TransportKind};
use crate::error::{Class, Error, Result};
use crate::explain::Fill;
use crate::store::Record;
use oauth2::url::{Host, Url};

/// The OpenID Connect scopes every delegated flow asks for: a refresh token and an id_token.
pub const OIDC_SCOPES: [&str; 4] = ["offline_access", "openid", "profile", "email"];

/// Where a profile's requests go, after its overrides.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The login host, for messages and diagnosis.
    pub authority: Url,
    pub authorize: Url,
    pub token: Url,
    pub device_code: Option<Url>,
    /// The mail API (Microsoft Graph, the Gmail API); unused where there is none.
    pub api: Url,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
}

pub trait Provider: Sync {
    fn kind(&self) -> ProviderKind;
    /// How people know it, for messages ("Microsoft Entra", "Google").
    fn display_name(&self) -> &'static str;
    /// The transports its accounts can send through, the default first.
    fn transports(&self) -> &'static [TransportKind];
    fn default_transport(&self) -> TransportKind {
        self.transports()[0]
    }
    fn endpoints(&self, p: &Profile) -> Result<Endpoints>;
    /// The scopes of the authorize request: consent for every transport at once.
    fn authorize_scopes(&self, p: &Profile) -> Vec<String>;
    /// The scopes of one token request (code redemption or refresh) for one transport;
    /// empty when the provider's tokens carry every granted scope (no `scope` is sent).
    fn token_scopes(&self, p: &Profile, t: TransportKind) -> Vec<String>;
    /// The scope of a token the app mints itself (client credentials, a service account).
    fn app_scope(&self, p: &Profile, t: TransportKind) -> String;
    /// The audience a transport's token is for.
    fn resource(&self, p: &Profile, t: TransportKind) -> String;
    /// Whether a token's `aud` claim names `resource` (providers may name one several ways).
    fn is_audience(&self, aud: &str, resource: &str) -> bool {
        let host = |u: &str| u.trim_end_matches('/').to_ascii_lowercase();
        host(aud) == host(resource)
    }
    /// The permission a transport's token must carry to send (a scope, or for app-only
    /// an application role).
    fn send_permission(&self, p: &Profile, t: TransportKind) -> &'static str;
    /// Parameters the authorize request needs beyond OAuth's.
    fn authorize_params(&self, _p: &Profile) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// How to make the provider issue a refresh token, for a login that got none.
    fn offline_hint(&self) -> &'static str {
        "make sure the app may request offline_access (API permissions), then log in again"
    }
    /// The host of the loopback redirect URI the provider accepts.
    fn redirect_host(&self) -> &'static str {
        "localhost"
    }
    /// Refuses a login that cannot work, before anything is contacted: a malformed tenant
    /// or client id, a flow the provider does not offer, a missing endpoint. A typo found
    /// by the browser flow costs the whole login timeout.
    fn check_login(&self, p: &Profile) -> Result<()>;
    /// Whether a login of this profile asks the token endpoint, before any browser opens,
    /// if it knows the app yet (a registration a minute old may still be replicating).
    fn probes_new_apps(&self, _p: &Profile) -> bool {
        false
    }
    /// Whether an explained error's code says the app is not known yet (rather than not
    /// at all): worth waiting for, bounded.
    fn app_unknown(&self, _code: Option<&str>) -> bool {
        false
    }
    /// Days an unused refresh token lives, when the provider expires them.
    fn idle_limit_days(&self) -> Option<u64>;
    /// The OpenID discovery document doctor reads the server's clock (and Entra's tenant
    /// GUID) from; `None` where there is none.
    fn discovery_url(&self, _p: &Profile, _e: &Endpoints) -> Option<String> {
        None
    }
    /// An error of the token endpoint (or of the authorize redirect), explained.
    fn explain(&self, e: &TokenError, action: &str, fill: &Fill) -> Error;
    /// A refresh that failed, with what the record says of the login: a provider may know
    /// more (Google's week-old logins of apps in Testing).
    fn refresh_failed(&self, e: Error, _record: &Record, _now: u64, _fill: &Fill) -> Error {
        e
    }
    /// What to tell a person who sends as another address than the login's.
    fn send_as_note(&self, _from: &str, _user: &str) -> Option<String> {
        None
    }
}

/// An OAuth error (RFC 6749 section 5.2) explained by what the standard says of it, for
/// codes a provider's own table does not know.
pub fn explain_oauth(e: &TokenError, action: &str, fill: &Fill, docs: &str) -> Error {
    let (class, meaning) = match e.error.as_str() {
        "invalid_grant" => (
            Class::LoginNeeded,
            "the login (refresh token or code) is no longer valid",
        ),
        "invalid_client" | "unauthorized_client" => (
            Class::Config,
            "the identity provider does not accept this client",
        ),
        "invalid_scope" => (Class::Config, "the identity provider refused the scopes"),
        "access_denied" => (Class::LoginNeeded, "the sign-in was refused"),
        "temporarily_unavailable" | "server_error" => (
            Class::Temporary,
            "the identity provider cannot answer right now",
        ),
        _ => (Class::Refused, "the identity provider refused the request"),
    };
    let fix = match class {
        Class::Temporary => "try again later".to_owned(),
        _ => fill.apply("check the client id, secret and scopes, then log in again: {login}"),
    };
    Error::new(class, format!("{action} failed: {}: {meaning}", e.error))
        .why(e.why())
        .fix(format!("{fix}; {} is described at {docs}", e.error))
        .code(e.error.clone())
}

/// The provider of a profile.
pub fn of(kind: ProviderKind) -> &'static dyn Provider {
    match kind {
        ProviderKind::Microsoft => &microsoft::Microsoft,
        ProviderKind::Google => &google::Google,
        ProviderKind::Custom => &custom::Custom,
    }
}

/// The origin (scheme, host, port) of a URL, as the host a provider's sign-in lives on.
pub fn origin(url: &Url) -> Url {
    let mut o = url.clone();
    o.set_path("/");
    o.set_query(None);
    o.set_fragment(None);
    o
}

/// A required override of a provider without fixed hosts, checked.
pub fn required_url(value: Option<&str>, flag: &str, key: &str) -> Result<Url> {
    let text = value.ok_or_else(|| {
        Error::usage(format!("{flag} is required for this provider"))
            .fix(format!("pass {flag} URL (kept in the profile as {key})"))
    })?;
    checked_url(text, flag)
}

/// Accepts https anywhere and http only on loopback hosts: anywhere else a token would
/// cross the network unencrypted.
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
