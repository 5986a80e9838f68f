//! App-only login (`--app-only`): the OAuth2 client-credentials grant (RFC 6749 section 4.4).
//!
//! No person and no refresh token: each token is minted from the app's own credential, a
//! client secret (kept in the token store) or a certificate whose private key signs a
//! client assertion (a JWT, PS256 with `x5t#S256`, valid for 10 minutes, audience the
//! token URL, as Entra documents). Tokens are for `{resource}/.default`: the application
//! permissions an admin granted. The key is read from its file each time and never copied.

use super::{Account, TokenAnswer};
use crate::config::TransportKind;
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::secret::Secret;
use base64::Engine;
use oauth2::Scope;
use std::path::Path;

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
    let cert = pem_block(cert_path, &["CERTIFICATE"])?;
    let labels = ["PRIVATE KEY", "RSA PRIVATE KEY"];
    let (where_, (label, key)) = match (&p.private_key, stored_key) {
        (Some(path), _) => (path.display().to_string(), pem_labeled(path, &labels)?),
        (None, Some(k)) => (
            "the key in the token store".to_owned(),
            pem_decode(k.expose(), &labels)
                .map_err(|e| e.fix(format!("log in again: {}", acct.login_command())))?,
        ),
        (None, None) => return Err(missing()),
    };
    let pair = match label.as_str() {
        "PRIVATE KEY" => ring::signature::RsaKeyPair::from_pkcs8(&key),
        _ => ring::signature::RsaKeyPair::from_der(&key),
    }
    .map_err(|e| {
        Error::config(format!("{where_} is not a usable RSA private key: {e}"))
            .fix("pass the certificate's RSA key as PEM (openssl pkey -in key -out key.pem)")
    })?;
    Ok((cert, pair))
}

/// The signed client assertion.
fn assertion(acct: &Account, stored_key: Option<&Secret>) -> Result<Secret> {
    let p = &acct.profile;
    let (cert, pair) = signing_key(acct, stored_key)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let thumbprint = b64.encode(ring::digest::digest(&ring::digest::SHA256, &cert));
    let now = crate::tokens::now();
    let jti = {
        let mut bytes = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| Error::internal("no randomness for the client assertion"))?;
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let header = serde_json::json!({ "alg": "PS256", "typ": "JWT", "x5t#S256": thumbprint });
    let claims = serde_json::json!({
        "aud": acct.endpoints.token.as_str(),
        "iss": p.client_id, "sub": p.client_id, "jti": jti,
        "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME,
    });
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0u8; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PSS_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::internal("signing the client assertion failed"))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
}

pub fn pem_block(path: &Path, labels: &[&str]) -> Result<Vec<u8>> {
    pem_labeled(path, labels).map(|(_, der)| der)
}

/// The first PEM block with one of `labels` in a file, decoded; the label found.
fn pem_labeled(path: &Path, labels: &[&str]) -> Result<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!("cannot read {}: {e}", path.display()))
            .fix("check --certificate / --private-key")
    })?;
    pem_decode(&text, labels).map_err(|e| Error {
        what: format!("{}: {}", path.display(), e.what),
        ..e
    })
}

/// The first PEM block with one of `labels` in `text`, decoded; the label found.
fn pem_decode(text: &str, labels: &[&str]) -> Result<(String, Vec<u8>)> {
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        if let Some(start) = text.find(&begin) {
            let rest = &text[start + begin.len()..];
            let Some(stop) = rest.find(&end) else { break };
            let body: String = rest[..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| {
                    Error::config(format!("a damaged PEM block: {e}")).fix("export it again")
                })?;
            return Ok((label.to_string(), der));
        }
    }
    Err(
        Error::config(format!("no {} PEM block", labels.join(" or "))).fix(
            "pass PEM files: the certificate (BEGIN CERTIFICATE) and its key (BEGIN PRIVATE KEY)",
        ),
    )
}
