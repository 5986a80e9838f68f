//! Identity providers: what is particular to one provider's accounts, behind one trait.
//!
//! A provider says where a profile's requests go ([`Endpoints`]), which scopes its sign-in
//! and token requests name, what its authorize request needs beyond OAuth's, how long an
//! unused refresh token lives, which transports it offers, and what its token errors mean.
//! Nothing else in mailer names a provider's hosts or scopes. A new provider is one file in
//! this folder plus one arm in [`of`]. Pure data and pure functions: no I/O here.

pub mod microsoft;

use crate::auth::errors::TokenError;
use crate::config::{Profile, ProviderKind, SmtpSecurity, TransportKind};
use crate::error::{Error, Result};
use crate::explain::Fill;
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
    /// The mail API (Microsoft Graph).
    pub api: Url,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
}

pub trait Provider: Sync {
    fn kind(&self) -> ProviderKind;
    /// The transports its accounts can send through.
    fn transports(&self) -> &'static [TransportKind];
    fn endpoints(&self, p: &Profile) -> Result<Endpoints>;
    /// The scopes of the authorize request: consent for every transport at once.
    fn authorize_scopes(&self, p: &Profile) -> Vec<String>;
    /// The scopes of one token request (code redemption or refresh) for one transport.
    fn token_scopes(&self, p: &Profile, t: TransportKind) -> Vec<String>;
    /// The one scope of an app-only (client credentials) token request.
    fn app_scope(&self, p: &Profile, t: TransportKind) -> String;
    /// The audience a transport's token is for.
    fn resource(&self, p: &Profile, t: TransportKind) -> String;
    /// The permission a transport's token must carry to send (a scope, or for app-only
    /// an application role).
    fn send_permission(&self, p: &Profile, t: TransportKind) -> &'static str;
    /// Parameters the authorize request needs beyond OAuth's.
    fn authorize_params(&self, _p: &Profile) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The host of the loopback redirect URI the provider accepts.
    fn redirect_host(&self) -> &'static str {
        "localhost"
    }
    /// Refuses a tenant or client id that cannot be right, before anything is contacted:
    /// a typo found by the browser flow costs the whole login timeout.
    fn check_ids(&self, _tenant: &str, _client_id: &str) -> Result<()> {
        Ok(())
    }
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
    /// An error of the token endpoint (or of the authorize redirect), explained.
    fn explain(&self, e: &TokenError, action: &str, fill: &Fill) -> Error;
}

/// The provider of a profile.
pub fn of(kind: ProviderKind) -> &'static dyn Provider {
    match kind {
        ProviderKind::Microsoft => &microsoft::Microsoft,
    }
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
