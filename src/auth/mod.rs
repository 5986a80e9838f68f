//! Signing in with OAuth2: the resolved [`Account`], the login orchestration ([`login`]),
//! one file per flow, and the error answers of token endpoints ([`errors`]).
//!
//! The flows share one OAuth client ([`OAuthClient`], the `oauth2` crate with our own error
//! type) and one way of reading a token response ([`apply_response`]). Keeping tokens fresh
//! afterwards is [`crate::tokens`]'s job; it calls [`refresh`] and
//! [`client_credentials::mint`] from here. Nothing here prints a token.

pub mod account;
pub mod client_credentials;
pub mod code;
pub mod device;
pub mod errors;
pub mod keys;
pub mod login;
pub mod propagation;
pub mod service_account;

pub use account::Account;

use crate::config::{Flow, TransportKind};
use crate::error::{Class, Error, Result};
use crate::secret::Secret;
use crate::store::{CachedToken, Record};
use errors::TokenError;
use oauth2::basic::{
    BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet,
    ExtraTokenFields, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};

/// What each flow is, in one place: callers ask, they do not compare flows.
impl Flow {
    /// Tokens are minted from the app's own credential (a client secret, a certificate, a
    /// service account key): no person, no refresh token, nothing that expires unused.
    pub fn is_app_only(self) -> bool {
        match self {
            Flow::ClientCredentials | Flow::ServiceAccount => true,
            Flow::AuthorizationCode | Flow::DeviceCode => false,
        }
    }

    /// The app acts as itself, not as a mailbox (client credentials): Graph has no `/me`
    /// for it. A service account acts as the mailbox it impersonates.
    pub fn acts_as_itself(self) -> bool {
        match self {
            Flow::ClientCredentials => true,
            Flow::ServiceAccount | Flow::AuthorizationCode | Flow::DeviceCode => false,
        }
    }

    /// A login with this flow needs a person at a browser.
    pub fn needs_a_person(self) -> bool {
        !self.is_app_only()
    }
}

/// A new access token from the app's own credential, the way the profile's flow makes one.
pub async fn mint(
    acct: &Account,
    record: &Record,
    transport: TransportKind,
) -> Result<TokenAnswer> {
    match acct.profile.flow {
        Flow::ClientCredentials => {
            let cred = client_credentials::Credential::of(record);
            client_credentials::mint(acct, cred, transport).await
        }
        Flow::ServiceAccount => service_account::mint(acct, record, transport).await,
        Flow::AuthorizationCode | Flow::DeviceCode => Err(acct.not_logged_in()),
    }
}

/// Fields a token response may add to OAuth's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<Secret>,
}
impl ExtraTokenFields for ExtraFields {}

pub type TokenAnswer = StandardTokenResponse<ExtraFields, BasicTokenType>;

pub type OAuthClient = oauth2::Client<
    TokenError,
    TokenAnswer,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

impl Account {
    pub fn oauth_client(&self, secret: Option<&Secret>) -> Result<OAuthClient> {
        let e = &self.endpoints;
        let device = e.device_code.as_ref().unwrap_or(&e.token).to_string();
        let client = oauth2::Client::new(ClientId::new(self.profile.client_id.clone()))
            .set_auth_uri(AuthUrl::from_url(e.authorize.clone()))
            .set_token_uri(TokenUrl::from_url(e.token.clone()))
            .set_device_authorization_url(
                DeviceAuthorizationUrl::new(device)
                    .map_err(|e| Error::config(format!("invalid device-code endpoint URL: {e}")))?,
            )
            .set_auth_type(match self.profile.client_auth.unwrap_or_default() {
                crate::config::ClientAuth::Basic => AuthType::BasicAuth,
                crate::config::ClientAuth::Post => AuthType::RequestBody,
            });
        Ok(match secret {
            Some(s) => client.set_client_secret(ClientSecret::new(s.expose().to_owned())),
            None => client,
        })
    }
}

/// Redeems the refresh token for an access token to `transport`'s resource.
pub async fn refresh(
    acct: &Account,
    record: &Record,
    refresh_token: &Secret,
    transport: TransportKind,
) -> Result<TokenAnswer> {
    let client = acct.oauth_client(record.client_secret.as_ref())?;
    let scopes = acct.provider.token_scopes(&acct.profile, transport);
    client
        .exchange_refresh_token(&RefreshToken::new(refresh_token.expose().to_owned()))
        .add_scopes(scopes.into_iter().map(Scope::new))
        .request_async(acct.http()?)
        .await
        .map_err(|e| request_error(acct, e, "refreshing the access token"))
}

/// Folds a token response into the record: the new access token, and the rotated refresh
/// token when the provider sent one.
pub fn apply_response(
    record: &mut Record,
    transport: TransportKind,
    r: &TokenAnswer,
    now: u64,
) -> CachedToken {
    let cached = CachedToken {
        token: Secret::new(r.access_token().secret().clone()),
        // Saturating: a server's `expires_in` near u64::MAX must not wrap into the past.
        expires_at: now.saturating_add(r.expires_in().map(|d| d.as_secs()).unwrap_or(3600)),
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

/// A form posted to the token endpoint: whether it succeeded, and the answer's body. Only
/// not reaching the endpoint is an error here.
pub async fn post_form(
    acct: &Account,
    form: &[(&str, &str)],
    action: &str,
) -> Result<(bool, bytes::Bytes)> {
    let response = acct
        .http()?
        .post(acct.endpoints.token.clone())
        .form(form)
        .send()
        .await
        .map_err(|e| network_error(acct, action, &e))?;
    let ok = response.status().is_success();
    Ok((ok, response.bytes().await.unwrap_or_default()))
}

/// A token request the `oauth2` crate has no grant for (a JWT-bearer assertion, a probe):
/// the form posted to the token endpoint, the answer read, an error explained by the
/// provider as every other token error is.
pub async fn post_token_form(
    acct: &Account,
    form: &[(&str, &str)],
    action: &str,
) -> Result<TokenAnswer> {
    let (ok, body) = post_form(acct, form, action).await?;
    let unreadable = |what: &str| {
        Error::temp(format!(
            "{action} failed: the token endpoint sent {what} mailer cannot read"
        ))
        .fix(format!(
            "try again; if it persists check the token endpoint ({})",
            acct.endpoints.token
        ))
    };
    if ok {
        // serde's message could quote a token: only the place it went wrong is shown.
        return serde_json::from_slice(&body).map_err(|e| {
            unreadable("an answer").why(format!(
                "unexpected JSON at line {} column {}",
                e.line(),
                e.column()
            ))
        });
    }
    match serde_json::from_slice::<TokenError>(&body) {
        Ok(e) => Err(acct.provider.explain(&e, action, &acct.fill())),
        Err(_) => Err(unreadable("an error")),
    }
}

/// Maps an oauth2 request error to an explained [`Error`].
pub fn request_error<RE: std::error::Error + 'static>(
    acct: &Account,
    e: RequestTokenError<RE, TokenError>,
    action: &str,
) -> Error {
    match e {
        RequestTokenError::ServerResponse(e) => acct.provider.explain(&e, action, &acct.fill()),
        RequestTokenError::Request(e) => network_error(acct, action, &e),
        RequestTokenError::Parse(e, _body) => {
            // Neither the body nor serde's message (which may quote a value) is shown: both
            // can hold a token. The JSON path says where it went wrong. Temporary: a gateway's
            // HTML error page (a 5xx) lands here too, and the message must stay queued.
            Error::temp(format!(
                "{action} failed: the identity provider sent an answer mailer cannot read"
            ))
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

pub fn network_error(acct: &Account, action: &str, e: &(dyn std::error::Error + 'static)) -> Error {
    let authority = &acct.endpoints.authority;
    if let Some((problem, fix)) = crate::http::tls_problem(e) {
        return Error::refused(format!("{action} failed: TLS with {authority}: {problem}"))
            .why(crate::error::chain(e))
            .fix(fix);
    }
    Error::new(
        Class::Temporary,
        format!(
            "{action} failed: cannot reach the identity provider at {}",
            acct.endpoints.authority
        ),
    )
    .why(crate::error::chain(e))
    .fix("check the network, proxy (HTTPS_PROXY) and --authority / --ca-file settings, then try again")
}

/// The mailbox named in an id_token (`preferred_username`, else `email`, else `upn`).
/// The token came straight from the token endpoint over TLS, so its signature is not
/// checked (OpenID Connect Core 1.0, section 3.1.3.7).
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

    #[test]
    fn flows_say_what_they_are() {
        assert!(Flow::ClientCredentials.is_app_only());
        assert!(!Flow::DeviceCode.is_app_only());
        assert!(Flow::AuthorizationCode.needs_a_person());
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

/// Properties of reading a token endpoint's answer: any JSON is either refused or folded
/// into the record without a panic, whatever `expires_in` claims.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_token_answer_is_refused_or_applied(v in crate::strategies::json(&[
            "access_token", "token_type", "expires_in", "refresh_token", "scope", "id_token",
            "ext_expires_in",
        ]), now in any::<u64>()) {
            if let Ok(answer) = serde_json::from_value::<TokenAnswer>(v) {
                let mut record = Record::default();
                let cached = apply_response(&mut record, TransportKind::Graph, &answer, now);
                prop_assert_eq!(cached.token.expose(), answer.access_token().secret().as_str());
                prop_assert!(cached.expires_at >= now);
                if let Some(id) = answer.extra_fields().id_token.as_ref() {
                    let _ = user_from_id_token(id);
                }
            }
        }

        #[test]
        fn a_well_formed_answer_is_applied(
            at in "[A-Za-z0-9._-]{1,64}", rt in prop::option::of("[A-Za-z0-9._-]{1,64}"),
            expires_in in prop_oneof![0u64..100_000, any::<u64>(), u64::MAX - 10..=u64::MAX],
            now in 0u64..4_000_000_000,
        ) {
            let mut v = serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": expires_in});
            if let Some(rt) = &rt {
                v["refresh_token"] = rt.clone().into();
            }
            let answer: TokenAnswer = serde_json::from_value(v).unwrap();
            let mut record = Record::default();
            let cached = apply_response(&mut record, TransportKind::Smtp, &answer, now);
            prop_assert_eq!(cached.token.expose(), at.as_str());
            // A lifetime past the end of time is "until the end of time", not a wrap into the past.
            prop_assert!(cached.expires_at >= now);
            prop_assert_eq!(record.refresh_token.as_ref().map(|s| s.expose().to_owned()), rt);
        }
    }
}
