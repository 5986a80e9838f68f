//! What every OAuth2 fake (Entra, Google) reads and writes the same way, so each fake holds
//! only its service's rules and error texts:
//!
//! - strict form and query parsing ([`parse_strict`], [`param`], [`query_param`]): malformed
//!   escapes and repeated parameters are refused, because a client producing either is broken
//!   even where a lenient server would guess;
//! - client credentials as presented ([`basic_credentials`], [`client_auth_kind`]) and the
//!   per-request log line ([`TokenRequestLog`]);
//! - what both fakes count ([`OAuthStats`]);
//! - PKCE (RFC 7636): [`s256_challenge`], and the syntax of challenges and verifiers;
//! - the device flow (RFC 8628): [`DeviceStatus`], and the user's side of it
//!   ([`DeviceVerification`]);
//! - the client's side, for self-tests and tests that need tokens without the CLI: a
//!   well-behaved authorize query ([`authorize_query`], edited with [`set_param`]), a whole
//!   sign-in ([`sign_in_code`], [`redeem_code`]);
//! - redirect URIs: [`split_uri`] and [`redirect_location`] (how a server appends its answer);
//! - compact JWS (RFC 7515): [`parse_jws`] to read one, [`compact_jws`] and [`sign_jws`] to
//!   make one, [`pem`] to write a key the way key files carry it;
//! - [`html_escape`] for the error pages the authorize endpoints show.
//!
//! The errors these return are plain: each fake maps them onto its own service's answer.

// Shared test support: every test crate that includes it uses only part of it.
#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::http::{
    get_with_query, pair, parse_form, percent_decode, percent_encode, post_form, query_pairs,
};

// ---- forms ----

/// Decoded `(name, value)` pairs of a form body or query, in order.
pub type Form = Vec<(String, String)>;

/// A parameter's value; empty counts as absent, as it does for Entra and Google.
pub fn param<'a>(form: &'a Form, key: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, v)| k == key && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// Strict form parsing: `None` for a malformed escape or a repeated parameter.
pub fn parse_strict(s: &str) -> Option<Form> {
    let form = parse_form(s)?;
    for (i, (k, _)) in form.iter().enumerate() {
        if form[..i].iter().any(|(k2, _)| k2 == k) {
            return None;
        }
    }
    Some(form)
}

/// The value of `key` in a query, strictly parsed; empty when it is missing or the query is
/// malformed.
pub fn query_param(query: &str, key: &str) -> String {
    parse_strict(query)
        .and_then(|q| param(&q, key).map(str::to_string))
        .unwrap_or_default()
}

/// Whether a `Content-Type` is `application/x-www-form-urlencoded` (parameters ignored).
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

// ---- client authentication ----

/// HTTP Basic client credentials (RFC 6749 2.3.1): `Ok(None)` without an Authorization header,
/// `Err(())` for a header that is not well-formed Basic credentials.
pub fn basic_credentials(authorization: Option<&str>) -> Result<Option<(String, String)>, ()> {
    let Some(h) = authorization else {
        return Ok(None);
    };
    let (scheme, cred) = h.trim().split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(());
    }
    let decoded = STANDARD.decode(cred.trim()).map_err(|_| ())?;
    let decoded = String::from_utf8(decoded).map_err(|_| ())?;
    let (id, secret) = decoded.split_once(':').ok_or(())?;
    // Both halves are form-urlencoded before base64 (RFC 6749 2.3.1).
    let id = percent_decode(id).ok_or(())?;
    let secret = percent_decode(secret).ok_or(())?;
    Ok(Some((id, secret)))
}

/// How a token request authenticates its client: `"basic"` (Authorization header), `"post"`
/// (`client_secret` in the body), `"assertion"` (`client_assertion` in the body) or `"none"`.
pub fn client_auth_kind(authorization: Option<&str>, form: Option<&Form>) -> &'static str {
    let has = |key: &str| form.is_some_and(|f| param(f, key).is_some());
    if authorization.is_some_and(|a| a.trim_start().to_ascii_lowercase().starts_with("basic ")) {
        "basic"
    } else if has("client_secret") {
        "post"
    } else if has("client_assertion") {
        "assertion"
    } else {
        "none"
    }
}

/// One request that reached a token endpoint, as the fakes log it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenRequestLog {
    pub grant_type: String,
    /// What [`client_auth_kind`] says.
    pub client_auth: String,
    pub scope: Option<String>,
}

impl TokenRequestLog {
    /// The log line of a token request with this (possibly unreadable) form.
    pub fn of(authorization: Option<&str>, form: Option<&Form>) -> TokenRequestLog {
        let get = |key: &str| form.and_then(|f| param(f, key)).map(str::to_string);
        TokenRequestLog {
            grant_type: get("grant_type").unwrap_or_default(),
            client_auth: client_auth_kind(authorization, form).to_string(),
            scope: get("scope"),
        }
    }
}

// ---- what the fakes count ----

/// What every OAuth fake counts the same way, so that a test reads
/// `stats().oauth.refresh_grants` whichever fake it asks; each fake's `Stats` adds what only
/// its service does.
#[derive(Clone, Debug, Default)]
pub struct OAuthStats {
    /// Every hit of the authorize endpoint, valid or not.
    pub authorize: u32,
    /// Successful `authorization_code` redemptions.
    pub code_grants: u32,
    /// Successful `refresh_token` redemptions.
    pub refresh_grants: u32,
    /// Successful device-code redemptions (tokens issued).
    pub device_grants: u32,
    /// Every device-code poll, whatever the answer.
    pub device_polls: u32,
    /// One entry per request that reached the token endpoint.
    pub token_requests: Vec<TokenRequestLog>,
}

impl OAuthStats {
    /// Logs a request that reached the token endpoint, before anything in it is checked.
    pub fn log_token_request(&mut self, authorization: Option<&str>, form: Option<&Form>) {
        self.token_requests
            .push(TokenRequestLog::of(authorization, form));
    }
}

// ---- PKCE ----

/// The PKCE S256 challenge for a verifier: base64url(sha256(verifier)), unpadded.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 4.1: 43 to 128 characters from `[A-Z] [a-z] [0-9] - . _ ~`.
pub fn verifier_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge: 43 to 128 base64url characters (a SHA-256 is exactly 43).
pub fn challenge_ok(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

// ---- the device flow ----

/// Where a device code (RFC 8628) stands: pending until the user decides on the verification
/// page, redeemed once the client got its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Declined,
    Redeemed,
}

/// The user's side of the device flow, as a test plays it on a fake that offers the flow.
pub trait DeviceVerification {
    /// Sets the pending, unexpired device code whose user code is `user_code` (in any case) to
    /// `status`; `false` if there is no such code.
    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> bool;

    /// What the user does on the verification page. `false` if no pending, unexpired code.
    fn approve_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Approved)
    }

    /// The user declines on the verification page. `false` if no pending, unexpired code.
    fn decline_device_code(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Declined)
    }
}

// ---- the client's side ----

/// The PKCE verifier of [`sign_in_code`] (43 to 128 characters, as RFC 7636 wants).
pub const SIGN_IN_VERIFIER: &str = "fake-sign-in-verifier-0123456789-abcdefghijklmnop";

/// The query of an authorization request as a well-behaved client writes it:
/// `response_type=code` and PKCE with the S256 challenge of `verifier`. Self-tests break one
/// rule at a time with [`set_param`].
pub fn authorize_query(
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    state: &str,
    verifier: &str,
) -> Form {
    [
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("code_challenge", &s256_challenge(verifier)),
        ("code_challenge_method", "S256"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Replaces (`Some`, then at the end) or removes (`None`) one parameter.
pub fn set_param(form: &mut Form, key: &str, value: Option<&str>) {
    form.retain(|(k, _)| k != key);
    if let Some(v) = value {
        form.push((key.to_string(), v.to_string()));
    }
}

/// The authorization code of a sign-in as a well-behaved client starts it, for tests that need
/// real tokens without the CLI: `GET authorize_url` with the [`authorize_query`] of
/// [`SIGN_IN_VERIFIER`], then `extra`. The fake must redirect (302) back with a code at once;
/// nothing needs to listen at `redirect_uri`.
pub fn sign_in_code(
    authorize_url: &str,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut query = authorize_query(client_id, redirect_uri, scope, "s", SIGN_IN_VERIFIER);
    for (k, v) in extra {
        set_param(&mut query, k, Some(v));
    }
    let resp = get_with_query(authorize_url, &query);
    assert_eq!(resp.status, 302, "authorize: {}", resp.text());
    let location = resp.header("Location").expect("Location");
    pair(&query_pairs(location), "code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .to_string()
}

/// The token endpoint's JSON answer to the redemption of a [`sign_in_code`] code (with its
/// verifier and `extra` parameters), which must succeed.
pub fn redeem_code(
    token_url: &str,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> Value {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", SIGN_IN_VERIFIER),
    ];
    form.extend_from_slice(extra);
    let resp = post_form(token_url, &[], &form);
    assert_eq!(resp.status, 200, "redeem: {}", resp.text());
    resp.json()
}

// ---- redirect URIs ----

/// A redirect URI split into scheme, host (without port), port and the rest (path + query,
/// `/` when the path is empty). Scheme and host are lower-cased.
pub struct Uri {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    pub rest: String,
}

/// `None` for a URI with a fragment, without `://`, with an empty host or a bad port. An IPv6
/// host keeps its brackets (`[::1]`).
pub fn split_uri(u: &str) -> Option<Uri> {
    if u.contains('#') {
        return None;
    }
    let (scheme, after) = u.split_once("://")?;
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // The port follows the last ':' after an IPv6 literal's closing bracket.
    let port_from = authority.rfind(']').unwrap_or(0);
    let (host, port) = match authority[port_from..].rfind(':') {
        Some(i) => {
            let (h, p) = authority.split_at(port_from + i);
            (h, Some(p[1..].parse::<u16>().ok()?))
        }
        None => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    Some(Uri {
        scheme: scheme.to_ascii_lowercase(),
        host: host.to_ascii_lowercase(),
        port,
        rest: if rest.starts_with('/') {
            rest.to_string()
        } else {
            format!("/{rest}")
        },
    })
}

/// The redirect back to the client with `params`: an empty path becomes `/`, and the
/// parameters are appended to an existing query with `&`.
pub fn redirect_location(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let (scheme, after) = redirect_uri.split_once("://").unwrap_or(("", redirect_uri));
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let rest = if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    };
    let sep = if rest.contains('?') { '&' } else { '?' };
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{rest}{sep}{query}")
}

pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

// ---- JWS ----

/// A compact JWS, decoded but not verified.
pub struct Jws {
    pub header: Map<String, Value>,
    pub payload: Map<String, Value>,
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Jws {
    /// A string member of the header.
    pub fn header_str(&self, key: &str) -> Option<&str> {
        self.header.get(key).and_then(Value::as_str)
    }

    /// A string member of the payload (claims).
    pub fn claim_str(&self, key: &str) -> Option<&str> {
        self.payload.get(key).and_then(Value::as_str)
    }

    /// Verifies the signature with an RSA public key (PKCS#1 `RSAPublicKey`, DER).
    pub fn verify(
        &self,
        algorithm: &'static dyn ring::signature::VerificationAlgorithm,
        rsa_public_key_pkcs1_der: &[u8],
    ) -> bool {
        ring::signature::UnparsedPublicKey::new(algorithm, rsa_public_key_pkcs1_der)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

/// Why a string is not a compact JWS; `Display` says so in a sentence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsError {
    NotCompact,
    /// `part` ("JWT header", "JWT payload") is not base64url.
    NotBase64(&'static str),
    /// `part` is not a JSON object.
    NotObject(&'static str),
    SignatureNotBase64,
    Unsigned,
}

impl std::fmt::Display for JwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwsError::NotCompact => f.write_str(
                "The client assertion is not a JWS in compact serialization (three base64url parts).",
            ),
            JwsError::NotBase64(part) => write!(f, "The {part} is not valid base64url."),
            JwsError::NotObject(part) => write!(f, "The {part} is not a JSON object."),
            JwsError::SignatureNotBase64 => f.write_str("The signature is not valid base64url."),
            JwsError::Unsigned => f.write_str("The client assertion is not signed."),
        }
    }
}

/// Splits and decodes a compact JWS: three base64url (unpadded, canonical) parts, the first
/// two JSON objects, the third a non-empty signature.
pub fn parse_jws(jwt: &str) -> Result<Jws, JwsError> {
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err(JwsError::NotCompact);
    };
    let object = |segment: &str, part: &'static str| {
        let bytes = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| JwsError::NotBase64(part))?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(JwsError::NotObject(part)),
        }
    };
    let header = object(header_b64, "JWT header")?;
    let payload = object(payload_b64, "JWT payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwsError::SignatureNotBase64)?;
    if signature.is_empty() {
        return Err(JwsError::Unsigned);
    }
    Ok(Jws {
        header,
        payload,
        signing_input: format!("{header_b64}.{payload_b64}"),
        signature,
    })
}

/// `base64url(header).base64url(payload).base64url(signature)`: for tokens whose signature
/// nobody checks (id_tokens the client only reads).
pub fn compact_jws(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// A compact JWS over `header` and `claims`, signed with `key` (`padding`: PKCS#1 v1.5 for
/// RS256, PSS for PS256).
pub fn sign_jws(
    key: &ring::signature::RsaKeyPair,
    padding: &'static dyn ring::signature::RsaEncoding,
    header: &Value,
    claims: &Value,
) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        padding,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("RSA signing");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// PEM of DER bytes (RFC 7468): base64 in lines of 64, every line ending in `\n`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
