//! Google accounts (Gmail and Google Workspace): endpoints, scopes, the logins Google
//! allows, and what its token errors mean.
//!
//! Desktop ("installed app") clients sign in through the loopback redirect on
//! `http://127.0.0.1:{port}` with PKCE; their client secret is not secret but required at
//! the token endpoint. `access_type=offline` and `prompt=consent` make Google issue a
//! refresh token on every login, and Google does not rotate it ("Using OAuth 2.0 for
//! Mobile & Desktop Apps"). Its access tokens carry every granted scope, so token requests
//! name none. Google's device flow refuses Gmail scopes, and Workspace daemons use a
//! service account with domain-wide delegation instead of client credentials.

use super::{Endpoints, Provider, checked_url, explain_oauth, origin};
use crate::auth::errors::TokenError;
use crate::config::{Cloud, Flow, Profile, ProviderKind, SmtpSecurity, TransportKind};
use crate::error::{Class, Error, Result};
use crate::explain::{self, Fill, Source};
use crate::store::Record;
use oauth2::url::Url;

const AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const TOKEN: &str = "https://oauth2.googleapis.com/token";
const API: &str = "https://gmail.googleapis.com";
const SMTP_HOST: &str = "smtp.gmail.com";
/// The scope SMTP (and IMAP) need: full mail access ("OAuth 2.0 Scopes for Google APIs").
pub const MAIL_SCOPE: &str = "https://mail.google.com/";
/// The scope of the Gmail API's `messages.send`, and nothing more.
pub const SEND_SCOPE: &str = "https://www.googleapis.com/auth/gmail.send";
/// Google drops a refresh token unused for six months ("Refresh token expiration").
const IDLE_DAYS: u64 = 180;
/// An app whose consent screen is in Testing gets refresh tokens that die 7 days after
/// consent ("Refresh token expiration").
const TESTING_DAYS: u64 = 7;
const DOCS: &str = "https://developers.google.com/identity/protocols/oauth2";

pub struct Google;

impl Provider for Google {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Google
    }

    fn display_name(&self) -> &'static str {
        "Google"
    }

    fn transports(&self) -> &'static [TransportKind] {
        &[TransportKind::Gmail, TransportKind::Smtp]
    }

    fn endpoints(&self, p: &Profile) -> Result<Endpoints> {
        let authorize = checked_url(
            p.authorize_url.as_deref().unwrap_or(AUTHORIZE),
            "authorize_url",
        )?;
        let token = checked_url(p.token_url.as_deref().unwrap_or(TOKEN), "token_url")?;
        let device_code = Url::parse(&format!("{}device/code", origin(&token).as_str())).ok();
        let smtp_security = p.smtp_security.unwrap_or_default();
        Ok(Endpoints {
            authority: origin(&authorize),
            api: checked_url(p.api_url.as_deref().unwrap_or(API), "api_url")?,
            authorize,
            token,
            device_code,
            smtp_host: Some(p.smtp_host.clone().unwrap_or_else(|| SMTP_HOST.into())),
            smtp_port: p.smtp_port.unwrap_or(match smtp_security {
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::Tls => 465,
            }),
            smtp_security,
        })
    }

    /// Both transports' scopes at once, and the OpenID ones that name the mailbox in the
    /// id_token (`offline_access` is Entra's; Google asks `access_type=offline` instead).
    fn authorize_scopes(&self, p: &Profile) -> Vec<String> {
        let mut s = p
            .scopes
            .clone()
            .unwrap_or_else(|| vec![MAIL_SCOPE.into(), SEND_SCOPE.into()]);
        for o in ["openid", "email"] {
            if !s.iter().any(|x| x == o) {
                s.push(o.into());
            }
        }
        s
    }

    fn token_scopes(&self, _p: &Profile, _t: TransportKind) -> Vec<String> {
        Vec::new()
    }

    /// A service account asks for exactly what the transport needs: that is the scope an
    /// admin lists for its domain-wide delegation.
    fn app_scope(&self, _p: &Profile, t: TransportKind) -> String {
        match t {
            TransportKind::Smtp => MAIL_SCOPE.into(),
            TransportKind::Gmail | TransportKind::Graph => SEND_SCOPE.into(),
        }
    }

    fn resource(&self, _p: &Profile, t: TransportKind) -> String {
        match t {
            TransportKind::Smtp => MAIL_SCOPE.into(),
            TransportKind::Gmail | TransportKind::Graph => API.into(),
        }
    }

    fn send_permission(&self, _p: &Profile, t: TransportKind) -> &'static str {
        match t {
            TransportKind::Smtp => MAIL_SCOPE,
            TransportKind::Gmail | TransportKind::Graph => SEND_SCOPE,
        }
    }

    fn authorize_params(&self, _p: &Profile) -> Vec<(&'static str, String)> {
        vec![
            ("access_type", "offline".into()),
            ("prompt", "consent".into()),
        ]
    }

    fn offline_hint(&self) -> &'static str {
        "revoke the app's access (myaccount.google.com > Security > Third-party apps) and log in again: Google sends a refresh token with a new consent"
    }

    /// Desktop clients take any port on the loopback address, not the name `localhost`.
    fn redirect_host(&self) -> &'static str {
        "127.0.0.1"
    }

    fn check_login(&self, p: &Profile) -> Result<()> {
        let microsoft_only = [
            (p.authority.is_some(), "--authority"),
            (p.graph_url.is_some(), "--graph-url"),
            (!p.tenant.is_empty(), "--tenant"),
            (p.cloud != Cloud::Global, "--cloud"),
        ];
        if let Some((_, flag)) = microsoft_only.iter().find(|(given, _)| *given) {
            return Err(Error::usage(format!("{flag} is for Microsoft accounts"))
                .fix("for Google, --authorize-url, --token-url and --api-url point elsewhere (for tests and proxies)"));
        }
        if p.transport == TransportKind::Graph {
            return Err(
                Error::usage("Google accounts send through gmail (the Gmail API) or smtp")
                    .fix("pass --transport gmail or --transport smtp"),
            );
        }
        match p.flow {
            Flow::DeviceCode => Err(device_code_refused(p)),
            Flow::ClientCredentials => Err(Error::usage(
                "--app-only is Entra's client-credentials login",
            )
            .fix("for Google Workspace without a person, use a service account: mailer login --provider google --service-account KEY.json --user ADDRESS")),
            Flow::ServiceAccount if p.user.is_empty() => Err(Error::usage(
                "--service-account needs --user: the mailbox the service account sends as",
            )
            .fix("mailer login --provider google --service-account KEY.json --user someone@your-domain")),
            Flow::ServiceAccount => Ok(()),
            Flow::AuthorizationCode if !p.client_id.ends_with(".apps.googleusercontent.com") => {
                Err(Error::usage(format!(
                    "--client-id {:?} is not a Google OAuth client id",
                    p.client_id
                ))
                .fix("pass the Client ID of a Desktop app client (Google Cloud console > APIs & Services > Credentials), which ends in .apps.googleusercontent.com"))
            }
            Flow::AuthorizationCode => Ok(()),
        }
    }

    fn idle_limit_days(&self) -> Option<u64> {
        Some(IDLE_DAYS)
    }

    fn discovery_url(&self, _p: &Profile, e: &Endpoints) -> Option<String> {
        Some(format!(
            "{}.well-known/openid-configuration",
            origin(&e.authority).as_str()
        ))
    }

    /// Google's errors carry a short `error` and often a bare HTTP phrase as description;
    /// a Desktop client without its secret is only told apart by the description.
    fn explain(&self, e: &TokenError, action: &str, fill: &Fill) -> Error {
        let missing_secret = e.error == "invalid_request"
            && e.error_description
                .as_deref()
                .is_some_and(|d| d.contains("client_secret is missing"));
        let key = match missing_secret {
            true => "client_secret_missing",
            false => e.error.as_str(),
        };
        let Some(entry) = explain::lookup(Source::Google, key) else {
            return explain_oauth(e, action, fill, DOCS);
        };
        Error::new(
            entry.class,
            format!(
                "{action} failed: {}: {}",
                e.error,
                fill.apply(entry.meaning)
            ),
        )
        .why(e.why())
        .fix(fill.apply(entry.fix))
        .code(key)
    }

    /// A login a week old or more whose refresh token Google calls expired or revoked is
    /// most likely an app in Testing: its refresh tokens die 7 days after consent, and
    /// the error does not say so.
    fn refresh_failed(&self, e: Error, record: &Record, now: u64, fill: &Fill) -> Error {
        let age_days = record.logged_in_at.map(|t| now.saturating_sub(t) / 86_400);
        let testing = explain::lookup(Source::Google, "testing_refresh_token_expired");
        match (e.code.as_deref(), age_days, testing) {
            (Some("invalid_grant"), Some(days), Some(entry)) if days >= TESTING_DAYS => Error::new(
                Class::LoginNeeded,
                format!(
                    "{} (the login is {days} days old, and {})",
                    e.what, entry.meaning
                ),
            )
            .why(e.why.clone().unwrap_or_default())
            .fix(fill.apply(entry.fix))
            .code("testing_refresh_token_expired"),
            _ => e,
        }
    }

    fn send_as_note(&self, from: &str, user: &str) -> Option<String> {
        (!from.eq_ignore_ascii_case(user)).then(|| {
            format!(
                "Gmail sends as {from} only if it is a verified \"Send mail as\" address of {user} \
                 (Gmail settings > Accounts > Send mail as); otherwise the recipients see {user} as the sender"
            )
        })
    }
}

/// Google's device flow allows no Gmail scope ("OAuth 2.0 for TV and Limited-Input Device
/// Applications", allowed scopes): what works on a host without a browser instead is the
/// loopback login from another machine's browser, through an SSH tunnel to a fixed port.
fn device_code_refused(p: &Profile) -> Error {
    const PORT: u16 = 8400;
    let host = crate::fsutil::host_name();
    let client = match p.client_id.as_str() {
        "" => "ID".to_owned(),
        id => id.to_owned(),
    };
    Error::usage("Google's device flow does not allow Gmail scopes: --device-code cannot sign in to Gmail")
        .why("Google answers invalid_scope for https://mail.google.com/ and gmail.send on its device endpoint")
        .fix(format!(
            "on this host run: mailer login --provider google --client-id {client} --no-browser --redirect-uri http://127.0.0.1:{PORT}/ ; \
             on the machine with the browser run: ssh -L {PORT}:127.0.0.1:{PORT} {host} ; then open the printed URL in that browser"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        toml::from_str(
            "provider='google'\nclient_id='1-abc.apps.googleusercontent.com'\nuser='ada@gmail.com'\ntransport='gmail'",
        )
        .unwrap()
    }

    #[test]
    fn endpoints_and_scopes() {
        let p = profile();
        let e = Google.endpoints(&p).unwrap();
        assert_eq!(e.token.as_str(), TOKEN);
        assert_eq!(e.authority.as_str(), "https://accounts.google.com/");
        assert_eq!(
            (e.smtp_host.as_deref(), e.smtp_port),
            (Some("smtp.gmail.com"), 587)
        );
        assert_eq!(
            Google.authorize_scopes(&p),
            [MAIL_SCOPE, SEND_SCOPE, "openid", "email"]
        );
        assert!(Google.token_scopes(&p, TransportKind::Smtp).is_empty());
        assert_eq!(Google.app_scope(&p, TransportKind::Gmail), SEND_SCOPE);
        assert_eq!(Google.default_transport(), TransportKind::Gmail);
    }

    #[test]
    fn logins_google_does_not_offer_are_refused_before_contact() {
        let mut p = profile();
        assert!(Google.check_login(&p).is_ok());
        p.flow = Flow::DeviceCode;
        let e = Google.check_login(&p).unwrap_err();
        assert_eq!(e.class, Class::Usage);
        assert!(e.fix.unwrap().contains("ssh -L 8400:127.0.0.1:8400"));
        p.flow = Flow::AuthorizationCode;
        p.client_id = "00000000-0000-0000-0000-000000000000".into();
        assert!(Google.check_login(&p).is_err());
        let mut p = profile();
        p.tenant = "contoso.com".into();
        assert!(Google.check_login(&p).is_err());
        let mut p = profile();
        p.flow = Flow::ServiceAccount;
        p.user = String::new();
        assert!(Google.check_login(&p).is_err());
    }

    #[test]
    fn a_week_old_login_that_died_is_named_as_a_testing_app() {
        let e = || {
            Error::login_needed("refreshing failed")
                .fix("log in again: mailer login --provider google")
                .code("invalid_grant")
        };
        let now = 100 * 86_400;
        let record = |days: u64| Record {
            logged_in_at: Some(now - days * 86_400),
            ..Record::default()
        };
        let fill = Fill::default();
        let young = Google.refresh_failed(e(), &record(3), now, &fill);
        assert_eq!(young.code.as_deref(), Some("invalid_grant"));
        let old = Google.refresh_failed(e(), &record(7), now, &fill);
        assert_eq!(old.code.as_deref(), Some("testing_refresh_token_expired"));
        assert!(old.what.contains("7 days old"), "{}", old.what);
        assert!(old.fix.unwrap().contains("Publish app"));
    }

    #[test]
    fn a_desktop_client_without_its_secret_is_named() {
        let e = TokenError::new("invalid_request", Some("client_secret is missing."));
        let err = Google.explain(&e, "redeeming", &Fill::default());
        assert_eq!(err.class, Class::Config);
        assert!(err.fix.unwrap().contains("--client-secret-stdin"));
    }
}
