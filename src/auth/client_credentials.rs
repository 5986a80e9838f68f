//! App-only login (`--app-only`): the OAuth2 client-credentials grant (RFC 6749 section 4.4).
//!
//! No person and no refresh token: each token is minted from the app's own credential, a
//! client secret (kept in the token store) or a certificate whose private key signs a
//! client assertion (a JWT, PS256 with `x5t#S256`, valid for 10 minutes, audience the
//! token URL, as Entra documents). Tokens are for `{resource}/.default`: the application
//! permissions an admin granted. The key is read from its file each time and never copied.

use super::{Account, TokenAnswer, keys};
use crate::config::TransportKind;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::secret::Secret;
use base64::Engine;
use oauth2::Scope;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const ASSERTION_LIFETIME: u64 = 600;

/// What an app proves itself with: a client secret, or a certificate whose private key is
/// in a file (`--private-key`) or in the token store (made by `mailer app create`).
#[derive(Clone, Copy, Default)]
pub struct Credential<'a> {
    pub secret: Option<&'a Secret>,
    pub private_key: Option<&'a Secret>,
}

impl<'a> Credential<'a> {
    pub fn of(record: &'a crate::store::Record) -> Credential<'a> {
        Credential {
            secret: record.client_secret.as_ref(),
            private_key: record.private_key.as_ref(),
        }
    }
}

/// The login: an app acts in one tenant, and one token is minted now to prove the
/// credentials before the profile is saved. A just-registered app is unknown to the token
/// endpoint for a minute or two: the login waits for it ([`super::propagation`]).
pub async fn sign_in(
    acct: &Account,
    cred: Credential<'_>,
    printer: &Printer,
) -> Result<TokenAnswer> {
    let p = &acct.profile;
    if crate::provider::microsoft::is_multi_tenant(&p.tenant) {
        return Err(Error::usage(format!("--app-only needs your tenant, not {}", p.tenant))
            .why("an app acts in one tenant; Entra refuses client credentials on /common, /organizations and /consumers (AADSTS9001023)")
            .fix("pass --tenant with your tenant's GUID or domain, e.g. --tenant contoso.onmicrosoft.com"));
    }
    if cred.secret.is_none() && p.certificate.is_none() {
        return Err(Error::usage("--app-only needs a client secret or a certificate")
            .fix("pipe the secret to --client-secret-stdin (or set MAILER_CLIENT_SECRET), or pass --certificate cert.pem --private-key key.pem"));
    }
    super::propagation::retry_while_unknown(acct, printer, async || {
        mint(acct, cred, p.transport).await
    })
    .await
}

/// A new app-only token for `transport`'s resource.
pub async fn mint(
    acct: &Account,
    cred: Credential<'_>,
    transport: TransportKind,
) -> Result<TokenAnswer> {
    let secret = cred.secret;
    let client = acct.oauth_client(secret)?;
    let scope = acct.provider.app_scope(&acct.profile, transport);
    let mut request = client
        .exchange_client_credentials()
        .add_scope(Scope::new(scope));
    if secret.is_none() {
        let assertion = assertion(acct, cred.private_key)?;
        request = request
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion.expose().to_owned());
    }
    request
        .request_async(acct.http()?)
        .await
        .map_err(|e| super::request_error(acct, e, "getting an app-only token"))
}

/// The certificate (DER) and its RSA key: from the key file, else from the token store.
fn signing_key(
    acct: &Account,
    stored_key: Option<&Secret>,
) -> Result<(Vec<u8>, ring::signature::RsaKeyPair)> {
    let p = &acct.profile;
    let missing = || {
        Error::config("this app-only profile has neither a client secret nor a certificate").fix(
            format!(
                "log in again with one: {} --client-secret-stdin",
                acct.login_command()
            ),
        )
    };
    let cert_path = p.certificate.as_ref().ok_or_else(missing)?;
    let cert = keys::pem_block(cert_path, &["CERTIFICATE"])?;
    let pair = match (&p.private_key, stored_key) {
        (Some(path), _) => keys::rsa_key_file(path)?,
        (None, Some(k)) => keys::rsa_key(k.expose(), "the key in the token store")
            .map_err(|e| e.fix(format!("log in again: {}", acct.login_command())))?,
        (None, None) => return Err(missing()),
    };
    Ok((cert, pair))
}

/// The signed client assertion.
fn assertion(acct: &Account, stored_key: Option<&Secret>) -> Result<Secret> {
    let p = &acct.profile;
    let (cert, pair) = signing_key(acct, stored_key)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let thumbprint = b64.encode(ring::digest::digest(&ring::digest::SHA256, &cert));
    let now = crate::tokens::now();
    let claims = serde_json::json!({
        "aud": acct.endpoints.token.as_str(),
        "iss": p.client_id, "sub": p.client_id, "jti": keys::random_id()?,
        "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME,
    });
    keys::sign(
        keys::Alg::Ps256,
        serde_json::json!({ "x5t#S256": thumbprint }),
        &claims,
        &pair,
    )
}
