//! OAuth2 with Microsoft Entra: the login flows (one file each) and the token lifecycle.
//!
//! The lifecycle is one explicit state, [`TokenState`], as pizauth does it: logged out, a
//! fresh cached access token, or a refresh token that can mint one. [`access_token`] moves
//! between them under the per-profile [`ProfileLock`], saving a rotated refresh token before
//! the new access token is used (SPEC section 5). Nothing here prints a token; the one
//! command that does is `mailer token`.

pub mod app;
pub mod code;
pub mod device;
pub mod errors;

use crate::config::{Profile, Transport};
use crate::error::{Error, Result};
use crate::provider::{self, Endpoints};
use crate::secret::Secret;
use crate::store::{CachedToken, ProfileLock, Record, Store};
use errors::{Context, EntraError};
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet,
    ExtraTokenFields, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// An access token is reused until this many seconds before it expires.
pub const EXPIRY_MARGIN: u64 = 300;

/// Fields Entra adds to a token response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntraFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
}
impl ExtraTokenFields for EntraFields {}

pub type EntraTokenResponse = StandardTokenResponse<EntraFields, BasicTokenType>;

pub type EntraClient = oauth2::Client<
    EntraError,
    EntraTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// A profile ready to talk to its identity provider.
pub struct Account {
    pub name: String,
    pub profile: Profile,
    pub endpoints: Endpoints,
}

impl Account {
    pub fn new(name: &str, profile: Profile) -> Result<Account> {
        let endpoints = Endpoints::for_profile(&profile)?;
        Ok(Account {
            name: name.to_owned(),
            profile,
            endpoints,
        })
    }

    pub fn oauth_client(&self, secret: Option<&Secret>) -> Result<EntraClient> {
        let p = &self.profile;
        let bad = |e: oauth2::url::ParseError| Error::config(format!("invalid endpoint URL: {e}"));
        let client = oauth2::Client::new(ClientId::new(p.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(self.endpoints.authorize_url(&p.tenant)?))
            .set_token_uri(TokenUrl::from_url(self.endpoints.token_url(&p.tenant)?))
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(self.endpoints.device_code_url(&p.tenant)?.to_string())
                    .map_err(bad)?,
            )
            .set_auth_type(match p.client_auth.unwrap_or_default() {
                crate::config::ClientAuth::Basic => AuthType::BasicAuth,
                crate::config::ClientAuth::Post => AuthType::RequestBody,
            });
        Ok(match secret {
            Some(s) => client.set_client_secret(ClientSecret::new(s.expose().to_owned())),
            None => client,
        })
    }

    pub fn http(&self) -> Result<reqwest::Client> {
        crate::http::client(self.profile.ca_file.as_deref())
    }

    /// The exact command that logs this profile in again, for "login needed" errors.
    pub fn login_command(&self) -> String {
        login_command(&self.name, &self.profile)
    }

    pub fn error_context(&self) -> (String, String, String) {
        (
            self.login_command(),
            self.profile.client_id.clone(),
            self.profile.tenant.clone(),
        )
    }

    pub fn not_logged_in(&self, store: &Store) -> Error {
        Error::login_needed(format!("profile \"{}\" is not logged in", self.name))
            .why(format!("nothing is stored in {}", store.describe()))
            .fix(self.login_command())
    }
}

/// Builds `mailer login …` with every non-default setting of the profile, so that running
/// it recreates the same profile.
pub fn login_command(name: &str, p: &Profile) -> String {
    use crate::config::{Cloud, Flow, TokenStoreKind};
    let mut c = String::from("mailer login");
    let mut add = |flag: &str, value: Option<String>| {
        c.push(' ');
        c.push_str(flag);
        if let Some(v) = value {
            c.push(' ');
            c.push_str(&shell_quote(&v));
        }
    };
    if name != "default" {
        add("--profile", Some(name.to_owned()));
    }
    add("--tenant", Some(p.tenant.clone()));
    add("--client-id", Some(p.client_id.clone()));
    if p.cloud != Cloud::Global {
        add("--cloud", Some(p.cloud.to_string()));
    }
    if p.transport != Transport::Graph {
        add("--transport", Some(p.transport.to_string()));
    }
    match p.flow {
        Flow::DeviceCode => add("--device-code", None),
        Flow::ClientCredentials => {
            add("--app-only", None);
            add("--user", Some(p.user.clone()));
            match (&p.certificate, &p.private_key) {
                (Some(c), Some(k)) => {
                    add("--certificate", Some(c.display().to_string()));
                    add("--private-key", Some(k.display().to_string()));
                }
                // The secret is never written anywhere a command line could show it.
                _ => add("--client-secret-stdin", None),
            }
        }
        Flow::AuthorizationCode => {}
    }
    if p.token_store != TokenStoreKind::Keyring {
        add("--token-store", Some(p.token_store.to_string()));
    }
    if p.large_attachments {
        add("--large-attachments", None);
    }
    if let Some(s) = &p.scopes {
        add("--scopes", Some(s.join(" ")));
    }
    for (flag, v) in [
        ("--authority", &p.authority),
        ("--graph-url", &p.graph_url),
        ("--smtp-host", &p.smtp_host),
        ("--redirect-uri", &p.redirect_uri),
    ] {
        if let Some(v) = v {
            add(flag, Some(v.clone()));
        }
    }
    if let Some(port) = p.smtp_port {
        add("--smtp-port", Some(port.to_string()));
    }
    if let Some(s) = p.smtp_security {
        add("--smtp-security", Some(s.to_string()));
    }
    if let Some(ca) = &p.ca_file {
        add("--ca-file", Some(ca.display().to_string()));
    }
    if let Some(a) = p.client_auth {
        add("--client-auth", Some(a.to_string()));
    }
    c
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

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where one transport's token stands, without touching the network.
#[derive(Debug)]
pub enum TokenState<'a> {
    /// Nothing stored: a human must run `mailer login`.
    LoggedOut,
    /// A cached access token valid for more than [`EXPIRY_MARGIN`] seconds.
    Fresh(&'a CachedToken),
    /// No usable access token, but a refresh token that can mint one without a human.
    Refreshable(&'a Secret),
    /// App-only: no usable access token, minted from the app's own credential.
    Mintable,
}

pub fn token_state(
    record: Option<&Record>,
    app_only: bool,
    transport: Transport,
    now: u64,
) -> TokenState<'_> {
    let Some(r) = record else {
        return TokenState::LoggedOut;
    };
    if let Some(t) = r
        .cached(transport)
        .filter(|t| t.expires_at > now + EXPIRY_MARGIN)
    {
        return TokenState::Fresh(t);
    }
    match &r.refresh_token {
        _ if app_only => TokenState::Mintable,
        Some(rt) => TokenState::Refreshable(rt),
        None => TokenState::LoggedOut,
    }
}

/// A valid access token for `transport`, from the cache or by refreshing. With `force`, a
/// cached token is not trusted (the server just rejected it).
pub async fn access_token(
    acct: &Account,
    store: &Store,
    transport: Transport,
    force: bool,
) -> Result<CachedToken> {
    let app_only = acct.profile.flow == crate::config::Flow::ClientCredentials;
    if !force {
        // Fast path without the lock: a cron job with a cached token does no locking.
        if let TokenState::Fresh(t) =
            token_state(store.load()?.as_ref(), app_only, transport, now())
        {
            tracing::debug!(profile = %acct.name, %transport, "using the cached access token");
            return Ok(t.clone());
        }
    }
    let _lock = ProfileLock::acquire(&acct.name)?;
    // Re-read under the lock: another process may have refreshed (and rotated) meanwhile.
    let mut record = store.load()?.ok_or_else(|| acct.not_logged_in(store))?;
    if app_only {
        if let (false, TokenState::Fresh(t)) =
            (force, token_state(Some(&record), true, transport, now()))
        {
            return Ok(t.clone());
        }
        tracing::debug!(profile = %acct.name, %transport, "minting an app-only token");
        let response = app::mint(acct, record.client_secret.as_ref(), transport).await?;
        let cached = apply_response(&mut record, transport, &response);
        store.save(&record)?;
        return Ok(cached);
    }
    let refresh_token = match token_state(Some(&record), false, transport, now()) {
        TokenState::Fresh(t) if !force => return Ok(t.clone()),
        TokenState::LoggedOut => return Err(acct.not_logged_in(store)),
        TokenState::Fresh(_) => match &record.refresh_token {
            Some(rt) => rt.clone(),
            None => return Err(acct.not_logged_in(store)),
        },
        TokenState::Refreshable(rt) => rt.clone(),
        TokenState::Mintable => return Err(acct.not_logged_in(store)),
    };
    tracing::debug!(profile = %acct.name, %transport, "refreshing the access token");
    let client = acct.oauth_client(record.client_secret.as_ref())?;
    let http = acct.http()?;
    let scopes = provider::token_scopes(&acct.profile, transport);
    let response = client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
        .add_scopes(scopes.into_iter().map(Scope::new))
        .request_async(&http)
        .await
        .map_err(|e| request_error(acct, e, "refreshing the access token"))?;
    let cached = apply_response(&mut record, transport, &response);
    // The rotated refresh token is saved before the access token is handed out.
    store.save(&record)?;
    Ok(cached)
}

/// Folds a token response into the record: the new access token, and the rotated refresh
/// token when the provider sent one.
pub fn apply_response(
    record: &mut Record,
    transport: Transport,
    r: &EntraTokenResponse,
) -> CachedToken {
    let now = now();
    let cached = CachedToken {
        token: Secret::new(r.access_token().secret().clone()),
        expires_at: now + r.expires_in().map(|d| d.as_secs()).unwrap_or(3600),
        scope: r
            .scopes()
            .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    };
    if let Some(rt) = r.refresh_token() {
        record.refresh_token = Some(Secret::new(rt.secret().clone()));
    }
    record.refresh_token_used_at = Some(now);
    record
        .access
        .insert(transport.as_str().to_owned(), cached.clone());
    cached
}

/// Maps an oauth2 request error to an explained [`Error`].
pub fn request_error<RE: std::error::Error + 'static>(
    acct: &Account,
    e: RequestTokenError<RE, EntraError>,
    action: &str,
) -> Error {
    let (login, client_id, tenant) = acct.error_context();
    let ctx = Context {
        login_command: &login,
        client_id: &client_id,
        tenant: &tenant,
    };
    match e {
        RequestTokenError::ServerResponse(e) => errors::explain(&e, action, &ctx),
        RequestTokenError::Request(e) => network_error(acct, action, &e),
        RequestTokenError::Parse(e, _body) => {
            // Neither the body nor serde's message (which may quote a value) is shown: both
            // can hold a token. The JSON path says where it went wrong.
            Error::new(
                crate::error::Exit::Unavailable,
                format!("{action} failed: the identity provider sent an answer mailer cannot read"),
            )
            .why(format!("unexpected JSON at `{}`", e.path()))
            .fix(format!(
                "check --authority ({}): a proxy or captive portal may be answering instead",
                acct.endpoints.authority
            ))
        }
        RequestTokenError::Other(msg) => {
            Error::temp(format!("{action} failed: {msg}")).fix("try again")
        }
    }
}

pub fn network_error(acct: &Account, action: &str, e: &dyn std::error::Error) -> Error {
    let why = crate::error::chain(e);
    Error::temp(format!(
        "{action} failed: cannot reach the identity provider at {}",
        acct.endpoints.authority
    ))
    .why(why)
    .fix("check the network, proxy (HTTPS_PROXY) and --authority / --ca-file settings, then try again")
}

/// The mailbox named in an id_token (`preferred_username`, else `email`, else `upn`).
/// The token came straight from the token endpoint over TLS, so its signature is not
/// checked (OpenID Connect Core 3.1.3.7).
pub fn user_from_id_token(id_token: &Secret) -> Option<String> {
    use base64::Engine;
    let payload = id_token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    ["preferred_username", "email", "upn"].iter().find_map(|k| {
        claims
            .get(k)?
            .as_str()
            .filter(|s| s.contains('@'))
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CachedToken;

    fn profile() -> Profile {
        toml::from_str("tenant='contoso.com'\nclient_id='abc'\nuser='a@contoso.com'").unwrap()
    }

    #[test]
    fn state_transitions() {
        let now = 1_000_000;
        assert!(matches!(
            token_state(None, false, Transport::Graph, now),
            TokenState::LoggedOut
        ));
        let mut r = Record {
            refresh_token: Some(Secret::new("rt")),
            ..Default::default()
        };
        assert!(matches!(
            token_state(Some(&r), false, Transport::Graph, now),
            TokenState::Refreshable(_)
        ));
        let tok = |exp| CachedToken {
            token: Secret::new("at"),
            expires_at: exp,
            scope: String::new(),
        };
        r.access
            .insert("graph".into(), tok(now + EXPIRY_MARGIN + 1));
        assert!(matches!(
            token_state(Some(&r), false, Transport::Graph, now),
            TokenState::Fresh(_)
        ));
        assert!(matches!(
            token_state(Some(&r), false, Transport::Smtp, now),
            TokenState::Refreshable(_)
        ));
        r.access.insert("graph".into(), tok(now + EXPIRY_MARGIN));
        assert!(matches!(
            token_state(Some(&r), false, Transport::Graph, now),
            TokenState::Refreshable(_)
        ));
        r.refresh_token = None;
        assert!(matches!(
            token_state(Some(&r), false, Transport::Graph, now),
            TokenState::LoggedOut
        ));
    }

    #[test]
    fn login_command_for_app_only() {
        let mut p = profile();
        p.flow = crate::config::Flow::ClientCredentials;
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
        p.transport = Transport::Smtp;
        p.token_store = crate::config::TokenStoreKind::File;
        p.authority = Some("http://127.0.0.1:5/x y".into());
        assert_eq!(
            login_command("work", &p),
            "mailer login --profile work --tenant contoso.com --client-id abc --transport smtp \
             --token-store file --authority 'http://127.0.0.1:5/x y'"
        );
    }

    #[test]
    fn user_from_id_token_claims() {
        use base64::Engine;
        let enc = |v: serde_json::Value| {
            let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            Secret::new(format!(
                "{}.{}.sig",
                b.encode("{}"),
                b.encode(v.to_string())
            ))
        };
        assert_eq!(
            user_from_id_token(&enc(
                serde_json::json!({"preferred_username":"a@b.c","email":"x@y.z"})
            ))
            .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            user_from_id_token(&enc(serde_json::json!({"email":"x@y.z"}))).as_deref(),
            Some("x@y.z")
        );
        // A phone-number username is not a mailbox.
        assert_eq!(
            user_from_id_token(&enc(serde_json::json!({"preferred_username":"+1555"}))),
            None
        );
        assert_eq!(user_from_id_token(&Secret::new("garbage")), None);
    }
}
