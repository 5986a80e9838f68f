//! Any other OAuth2 provider whose SMTP server takes XOAUTH2 or OAUTHBEARER (RFC 7628):
//! the authorize and token URLs, the scopes and the SMTP host all come from the login's
//! flags (`--authorize-url`, `--token-url`, `--scopes`, `--smtp-host`), since nothing about
//! the provider is known in advance. Authorization code with PKCE through the loopback
//! redirect on 127.0.0.1 (RFC 8252), SMTP only.

use super::{Endpoints, Provider, explain_oauth, origin, required_url};
use crate::auth::errors::TokenError;
use crate::config::{Cloud, Flow, Profile, ProviderKind, SmtpSecurity, TransportKind};
use crate::error::{Error, Result};
use crate::explain::Fill;

pub struct Custom;

impl Provider for Custom {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn display_name(&self) -> &'static str {
        "the identity provider"
    }

    fn transports(&self) -> &'static [TransportKind] {
        &[TransportKind::Smtp]
    }

    fn endpoints(&self, p: &Profile) -> Result<Endpoints> {
        let authorize = required_url(
            p.authorize_url.as_deref(),
            "--authorize-url",
            "authorize_url",
        )?;
        let token = required_url(p.token_url.as_deref(), "--token-url", "token_url")?;
        let smtp_security = p.smtp_security.unwrap_or_default();
        Ok(Endpoints {
            authority: origin(&authorize),
            api: origin(&token),
            authorize,
            token,
            device_code: None,
            smtp_host: p.smtp_host.clone(),
            smtp_port: p.smtp_port.unwrap_or(match smtp_security {
                SmtpSecurity::Starttls => 587,
                SmtpSecurity::Tls => 465,
            }),
            smtp_security,
        })
    }

    fn authorize_scopes(&self, p: &Profile) -> Vec<String> {
        p.scopes.clone().unwrap_or_default()
    }

    /// RFC 6749: a refresh without `scope` gets what was granted; a code redemption has no
    /// `scope` at all.
    fn token_scopes(&self, _p: &Profile, _t: TransportKind) -> Vec<String> {
        Vec::new()
    }

    fn app_scope(&self, p: &Profile, _t: TransportKind) -> String {
        p.scopes.clone().unwrap_or_default().join(" ")
    }

    fn resource(&self, p: &Profile, _t: TransportKind) -> String {
        p.smtp_host.clone().unwrap_or_default()
    }

    fn send_permission(&self, _p: &Profile, _t: TransportKind) -> &'static str {
        "the scopes given with --scopes"
    }

    fn redirect_host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Google-style servers issue a refresh token only for `access_type=offline`; servers
    /// that do not know the parameter must ignore it (RFC 6749 section 3.1).
    fn authorize_params(&self, _p: &Profile) -> Vec<(&'static str, String)> {
        vec![("access_type", "offline".into())]
    }

    fn offline_hint(&self) -> &'static str {
        "add the scope that grants refresh tokens to --scopes (offline_access, in OpenID Connect), then log in again"
    }

    fn check_login(&self, p: &Profile) -> Result<()> {
        let needed = [
            (p.authorize_url.is_none(), "--authorize-url URL"),
            (p.token_url.is_none(), "--token-url URL"),
            (
                p.scopes.as_ref().is_none_or(|s| s.is_empty()),
                "--scopes SCOPES",
            ),
            (p.smtp_host.is_none(), "--smtp-host HOST"),
            (p.client_id.is_empty(), "--client-id ID"),
        ];
        let missing: Vec<&str> = needed.iter().filter(|(m, _)| *m).map(|(_, f)| *f).collect();
        if !missing.is_empty() {
            return Err(Error::usage(format!(
                "a custom provider needs {}",
                missing.join(", ")
            ))
            .fix("mailer login --provider custom --client-id ID --authorize-url URL --token-url URL --scopes 'SCOPE …' --smtp-host HOST [--sasl oauthbearer]"));
        }
        if !p.tenant.is_empty() || p.cloud != Cloud::Global || p.graph_url.is_some() {
            return Err(Error::usage("--tenant, --cloud and --graph-url are for Microsoft accounts")
                .fix("a custom provider is described by --authorize-url, --token-url, --scopes and --smtp-host"));
        }
        if p.transport != TransportKind::Smtp {
            return Err(Error::usage("a custom provider sends through smtp only")
                .fix("pass --transport smtp, or leave --transport out"));
        }
        match p.flow {
            Flow::AuthorizationCode => Ok(()),
            _ => Err(Error::usage(
                "a custom provider signs in in the browser (authorization code with PKCE) only",
            )
            .fix("leave out --device-code, --app-only and --service-account; --no-browser prints the URL for another machine")),
        }
    }

    fn idle_limit_days(&self) -> Option<u64> {
        None
    }

    fn explain(&self, e: &TokenError, action: &str, fill: &Fill) -> Error {
        explain_oauth(
            e,
            action,
            fill,
            "https://www.rfc-editor.org/rfc/rfc6749#section-5.2",
        )
    }
}
