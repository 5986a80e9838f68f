//! A strict in-process fake of Google's OAuth2 endpoints and the Gmail API send path, all on
//! one origin: `GET /o/oauth2/v2/auth` (accounts.google.com), `POST /token`,
//! `POST /device/code` and `POST /revoke` (oauth2.googleapis.com), the OpenID discovery
//! document and `GET /v1/userinfo`, and Gmail's `users.messages.send` in its three forms
//! (`/upload/…?uploadType=media`, `…?uploadType=resumable` with chunked `PUT`s, and JSON
//! `{"raw": …}`), plus `users.getProfile` and `users.settings.sendAs.list`.
//!
//! A fake that accepts anything proves nothing, so this one refuses what Google refuses and a
//! sloppy client gets wrong, with Google's own error shapes and texts (sources in the comments;
//! where Google documents nothing, the comment says the text is the fake's choice):
//!
//! - authorize: registered Desktop clients only (else the "Error 401: invalid_client" page,
//!   no redirect); a loopback redirect URI `http://127.0.0.1:PORT[/path]` or
//!   `http://[::1]:PORT[/path]`, any port (else "Error 400: redirect_uri_mismatch"); known
//!   scopes only ("Error 400: invalid_scope"); `response_type=code`; errors about the client,
//!   the redirect URI and the request are Google pages, never redirects. Only the user's
//!   decision (`access_denied`) goes back to the loopback listener. Granted scopes come back
//!   the way Google writes them (`email` is `https://www.googleapis.com/auth/userinfo.email`).
//! - the token endpoint: form bodies only; Desktop clients must send `client_secret`
//!   (Google's docs say optional, Google answers `client_secret is missing.`); codes are
//!   single-use (any redemption attempt burns them), expire after 10 minutes and are bound to
//!   the client, the exact redirect URI and the PKCE challenge; a refresh token only for
//!   `access_type=offline`, and then only on a consent screen (the first sign-in of that
//!   user and client, or `prompt=consent`); refresh tokens never rotate; they die when
//!   revoked, when unused for six months, or seven days after issue for a client in Testing
//!   (unless only openid/email/profile were granted), all answered with the same
//!   `Token has been expired or revoked.`.
//! - service accounts (JWT bearer grant): the assertion's RS256 signature is verified with the
//!   key [`FakeGoogle::add_service_account`] made, `kid` (if sent) must name that key, `aud`
//!   must be this fake's token URL, `iat`/`exp` current and at most an hour apart; impersonating
//!   a user (`sub`) needs every scope in the domain-wide delegation list
//!   ([`FakeGoogle::allow_delegation`]). Without `sub` the token is the service account's own,
//!   which Gmail refuses (`failedPrecondition`), as observed.
//! - the device flow refuses every scope but openid/email/profile (`Invalid device flow
//!   scope`), so Gmail can never be reached through it.
//! - Gmail: a live bearer token with a send scope (401 `authError` / 403
//!   `insufficientPermissions` otherwise, in the v1 error envelope with `status`); the path's
//!   user `me` or the token's own address; message bodies within the limits (5 MiB for
//!   `uploadType=media`, which is the fake's choice after Google's "5 MB or less" guidance;
//!   35 MiB for resumable uploads, the discovery document's `maxSize`; 1 MiB for the JSON
//!   form, as observed); resumable chunks contiguous and, except the last, multiples of
//!   256 KiB. A sent message must have a header recipient (`To`, `Cc` or `Bcc`, which Gmail
//!   sends to) with well-formed addresses; Gmail's changes are applied to what it keeps: `Bcc`
//!   removed, and a `From` that is neither the user nor a send-as alias rewritten to the user,
//!   the original kept in `X-Google-Original-From` (observed Gmail behaviour).
//!
//! Deliberately stricter than Google: PKCE is required and only `S256` (Google also takes
//! `plain` or none); a Desktop client's loopback redirect must name `127.0.0.1` or `[::1]` and a
//! port (Google also tolerates `localhost`); a resumable upload must declare its length
//! (`X-Upload-Content-Length`) and type (`X-Upload-Content-Type`) up front and every chunk
//! must give the total in `Content-Range`; client authentication by both HTTP Basic and
//! `client_secret` at once is refused (RFC 6749 2.3.1).
//!
//! The fake has a clock of its own ([`FakeGoogle::advance`]) for everything it keeps: codes,
//! access-token expiry, refresh-token age and use, device codes. Assertions of service
//! accounts are judged by the real clock instead: their `iat`/`exp` are written by the client,
//! which lives in real time (mailer signs with the system clock), and Google judges them by its
//! own real clock; advancing the fake means "time passed for what the server stored", not
//! "the client's clock is wrong". A client with a wrong clock is tested with assertions dated
//! wrongly.
//!
//! `GET /_test/introspect?token=…` (test-only, as in the fake Entra) lets fakes in other
//! processes (the SMTP server in Gmail mode) check a bearer token: 200 with the user, the
//! scopes and whether it expired, 404 for a token this fake never issued or revoked.
//!
//! It runs on the shared HTTP skeleton (`server.rs`), reads forms, PKCE and JWS with the
//! shared OAuth helpers (`oauth.rs`) and messages with the tests' one MIME reader
//! (`mime.rs`); this file holds only what Google does.

// Shared test support: no single test uses every knob.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ring::signature::RSA_PKCS1_2048_8192_SHA256;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::http::{digits, form_encode, parse_content_range, percent_decode_path};
use super::mime;
use super::oauth::{
    DeviceStatus, DeviceVerification, Form, OAuthStats, basic_credentials, challenge_ok,
    compact_jws, html_escape, is_form, param, parse_jws, parse_strict, pem, query_param,
    redeem_code, redirect_location, s256_challenge, sign_in_code, sign_jws, split_uri, verifier_ok,
};
use super::server::{
    BodyError, Reply, Request, Server, SharedState, now_secs, random_bytes, random_token,
};

/// IMAP/POP/SMTP and every Gmail API method.
pub const MAIL_SCOPE: &str = "https://mail.google.com/";
/// The Gmail API's send-only scope.
pub const GMAIL_SEND: &str = "https://www.googleapis.com/auth/gmail.send";
/// What Google writes (and grants) for the `email` and `profile` scopes.
pub const USERINFO_EMAIL: &str = "https://www.googleapis.com/auth/userinfo.email";
pub const USERINFO_PROFILE: &str = "https://www.googleapis.com/auth/userinfo.profile";
/// The issuer of Google's id_tokens and of its discovery document.
const ISSUER: &str = "https://accounts.google.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const GMAIL_SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/gmail.";
/// The Gmail scopes of the discovery document (besides `https://mail.google.com/`).
const GMAIL_SCOPES: [&str; 10] = [
    "send",
    "compose",
    "modify",
    "readonly",
    "insert",
    "labels",
    "metadata",
    "settings.basic",
    "settings.sharing",
    "addons.current.action.compose",
];
/// The scopes `users.messages.send` accepts (discovery document).
const SEND_SCOPES: [&str; 5] = [
    MAIL_SCOPE,
    GMAIL_SEND,
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.addons.current.action.compose",
];
/// The scopes `users.getProfile` accepts; not `gmail.send`.
const PROFILE_SCOPES: [&str; 5] = [
    MAIL_SCOPE,
    "https://www.googleapis.com/auth/gmail.compose",
    "https://www.googleapis.com/auth/gmail.metadata",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
];
/// The scopes `users.settings.sendAs.list` accepts; not `gmail.send`.
const SEND_AS_LIST_SCOPES: [&str; 4] = [
    MAIL_SCOPE,
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.settings.basic",
];
/// Scopes whose refresh tokens survive Testing's seven days ("a subset of name, email
/// address, and user profile").
const BASIC_SCOPES: [&str; 3] = ["openid", USERINFO_EMAIL, USERINFO_PROFILE];
/// Google's access tokens live an hour; `expires_in` says 3599.
const ACCESS_TOKEN_LIFETIME: u64 = 3599;
const ID_TOKEN_LIFETIME: u64 = 3600;
/// Not documented; Google's codes die within minutes. The fake's choice.
const CODE_TTL: u64 = 600;
const TESTING_REFRESH_LIFETIME: u64 = 7 * 86_400;
/// "The token was not used for six months": half a year.
const UNUSED_REFRESH_LIFETIME: u64 = 183 * 86_400;
/// "exp: This value has a maximum of 1 hour after the issued time."
const ASSERTION_MAX_LIFETIME: u64 = 3600;
/// How far an assertion's `iat` may be ahead of (or its `exp` behind) the real clock. Google
/// publishes no figure ("use a clock with skew"); the fake's choice.
const ASSERTION_SKEW: u64 = 300;
const DEVICE_TTL: u64 = 1800;
const DEVICE_INTERVAL: u64 = 5;
/// Simple (media) uploads: Google advises them for "5 MB or less"; the fake holds clients to
/// it so that bigger messages take the resumable path.
const MEDIA_MAX: u64 = 5 << 20;
/// `mediaUpload.maxSize` of `users.messages.send` in the discovery document (35 MiB).
const UPLOAD_MAX: u64 = 36_700_160;
/// The JSON form's body limit, as observed ("Request payload size exceeds the limit:
/// 1048576 bytes.").
const JSON_MAX: u64 = 1 << 20;
/// Resumable chunks other than the last must be multiples of this (the uploads guide).
const CHUNK_GRANULARITY: u64 = 256 * 1024;
/// A token or device-code request is tiny; anything bigger is a client bug.
const FORM_MAX: u64 = 64 * 1024;
const WORKERS: usize = 4;
/// The message Google puts in every 401 of its APIs (observed, facts §6).
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const MISSING_CREDENTIALS: &str = "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const REFRESH_DEAD: &str = "Token has been expired or revoked.";
const ASSERTION_TIME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";
/// The names of Gmail's `Message` resource: anything else in a request body is unknown.
const MESSAGE_FIELDS: [&str; 10] = [
    "id",
    "threadId",
    "labelIds",
    "snippet",
    "historyId",
    "internalDate",
    "payload",
    "sizeEstimate",
    "raw",
    "classificationLabelValues",
];

/// What an access token issued by the fake stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// Whose mailbox it acts on: the signed-in user, the `sub` a service account impersonates,
    /// or (for [`Self::app`] tokens) the service account's own address.
    pub user: String,
    /// Granted scopes as Google writes them (`https://www.googleapis.com/auth/userinfo.email`).
    pub scopes: Vec<String>,
    /// The Desktop client's id, or the service account's numeric client id.
    pub client_id: String,
    pub expired: bool,
    /// A service account's own token (JWT bearer without `sub`): no mailbox behind it.
    pub app: bool,
}

impl AccessTokenInfo {
    /// What `GET /_test/introspect` answers about the token (the SMTP fake reads it).
    fn introspection(&self) -> Value {
        json!({
            "user": self.user, "scopes": self.scopes, "client_id": self.client_id,
            "expired": self.expired, "app": self.app,
        })
    }
}

/// How a message reached Gmail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// `POST /upload/…/messages/send?uploadType=media`.
    Media,
    /// `uploadType=resumable`: a session, then chunked `PUT`s.
    Resumable,
    /// `POST /gmail/v1/…/messages/send` with `{"raw": …}`.
    Json,
}

/// A message Gmail accepted.
#[derive(Clone, Debug)]
pub struct GmailSent {
    /// The mailbox it was sent from (the token's user).
    pub user: String,
    pub upload: Upload,
    /// The message as Gmail keeps it: `Bcc` removed, `From` rewritten if it had to be.
    pub raw: Vec<u8>,
    /// The message exactly as the client submitted it.
    pub submitted: Vec<u8>,
    /// Everyone it goes to: the addresses of `To`, `Cc` and `Bcc`, in that order.
    pub recipients: Vec<String>,
    /// `From` as kept (after any rewrite).
    pub from_header: String,
    /// `Some(original From)` when Gmail rewrote it (also in `X-Google-Original-From`).
    pub original_from: Option<String>,
    pub bcc_header_present: bool,
    pub id: String,
    pub thread_id: String,
}

/// Counters and logs of what the fake answered.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Authorize hits, grants and token requests, as the fake Entra counts them too.
    pub oauth: OAuthStats,
    /// Successful JWT bearer grants (service accounts).
    pub jwt_grants: u32,
    /// Every OAuth error answered: `"<error>"` for token-endpoint JSON, `"page <error>"` for an
    /// authorize error page, `"redirect <error>"` for an error sent to the redirect URI.
    pub errors: Vec<String>,
    /// `"METHOD /path"` of requests answered 404 or 405 (not Google errors, but always a bug).
    pub unrouted: Vec<String>,
    pub discovery_requests: u32,
    /// Every request to a Gmail API path (upload `PUT`s included).
    pub gmail_requests: u32,
    /// Every `PUT` to a resumable upload session.
    pub resumable_puts: u32,
    /// `"<status> <reason>"` of every Gmail error answered.
    pub gmail_errors: Vec<String>,
}

/// A service account's key, as `FakeGoogle::add_service_account` made it.
#[derive(Clone, Debug)]
pub struct ServiceAccountKey {
    /// The JSON key file, exactly as the Cloud console downloads it (with `token_uri` this
    /// fake's token URL).
    pub json: String,
    pub client_email: String,
    /// Numeric: the id an admin enters for domain-wide delegation.
    pub client_id: String,
    /// 40 hex digits: the `kid` of its assertions.
    pub private_key_id: String,
    pub project_id: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: String,
    pub token_uri: String,
    pkcs8: Vec<u8>,
}

impl ServiceAccountKey {
    /// The key, for signing.
    pub fn key_pair(&self) -> ring::signature::RsaKeyPair {
        ring::signature::RsaKeyPair::from_pkcs8(&self.pkcs8).expect("the generated PKCS#8 key")
    }

    /// A compact JWS over `header` and `claims`, RS256 with this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        sign_jws(
            &self.key_pair(),
            &ring::signature::RSA_PKCS1_SHA256,
            header,
            claims,
        )
    }

    /// The claims Google's libraries put in a token request's assertion (issued now, valid an
    /// hour), impersonating `sub` if given.
    pub fn claims(&self, sub: Option<&str>, scope: &str) -> Value {
        let now = now_secs();
        let mut claims = json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_MAX_LIFETIME,
        });
        if let Some(sub) = sub {
            claims["sub"] = sub.into();
        }
        claims
    }

    /// `{"alg":"RS256","typ":"JWT","kid":<private_key_id>}`.
    pub fn header(&self) -> Value {
        json!({"alg": "RS256", "typ": "JWT", "kid": self.private_key_id})
    }

    /// A well-formed assertion for the JWT bearer grant.
    pub fn assertion(&self, sub: Option<&str>, scope: &str) -> String {
        self.sign(&self.header(), &self.claims(sub, scope))
    }
}

/// Handle to a running fake; the server stops when it is dropped.
pub struct FakeGoogle {
    shared: Arc<Shared>,
    server: Server,
}

type Shared = SharedState<State>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientKind {
    /// "Desktop app": the loopback code flow.
    Desktop,
    /// "TVs and Limited Input devices": the device flow.
    Device,
}

struct Client {
    secret: String,
    kind: ClientKind,
    /// The project's publishing status is Testing.
    testing: bool,
}

struct ServiceAccount {
    client_id: String,
    key_id: String,
    /// PKCS#1 `RSAPublicKey`, DER.
    public_key: Vec<u8>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scopes: Vec<String>,
    user: String,
    /// `access_type=offline` and a consent screen: the redemption returns a refresh token.
    refresh: bool,
    issued: u64,
    redeemed: bool,
}

/// What one refresh token stands for.
struct RefreshGrant {
    client_id: String,
    user: String,
    scopes: Vec<String>,
    issued: u64,
    last_used: u64,
    /// Issued while the client was in Testing.
    testing: bool,
    revoked: bool,
}

struct AccessToken {
    info: AccessTokenInfo,
    expires: u64,
    /// The refresh token it came from (revoking either revokes both).
    refresh_token: Option<String>,
}

struct Device {
    user_code: String,
    client_id: String,
    scopes: Vec<String>,
    user: String,
    issued: u64,
    last_poll: Option<u64>,
    status: DeviceStatus,
}

/// A resumable upload session.
struct UploadSession {
    user: String,
    total: u64,
    bytes: Vec<u8>,
    thread_id: Option<String>,
    /// A chunk is being read: another one must wait its turn.
    busy: bool,
    /// The final answer, once the last byte arrived: later `PUT`s get it again.
    done: Option<Reply>,
}

struct SendFailure {
    left: u32,
    error: GmailError,
    retry_after: Option<u32>,
}

struct State {
    clients: HashMap<String, Client>,
    /// By `client_email`.
    service_accounts: HashMap<String, ServiceAccount>,
    /// Domain-wide delegation: service-account client id → allowed scopes.
    delegation: HashMap<String, Vec<String>>,
    /// Lower-cased user → lower-cased send-as aliases.
    send_as: HashMap<String, Vec<String>>,
    user: String,
    /// How far the fake's clock is ahead of the real one.
    advanced: u64,
    /// (user, client id) pairs that went through a consent screen.
    consented: HashSet<(String, String)>,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, RefreshGrant>,
    access_tokens: HashMap<String, AccessToken>,
    /// By device_code.
    devices: HashMap<String, Device>,
    uploads: HashMap<String, UploadSession>,
    threads: HashSet<String>,
    fail_token: Option<OAuthError>,
    fail_authorize_redirect: Option<String>,
    fail_authorize_page: Option<(String, String)>,
    fail_send: Option<SendFailure>,
    sent: Vec<GmailSent>,
    stats: Stats,
    last_authorize: Option<Form>,
}

impl State {
    /// The fake's clock, in Unix seconds.
    fn now(&self) -> u64 {
        now_secs() + self.advanced
    }
}

// ---- errors ----

/// A token-endpoint error: `{"error", "error_description"}` (RFC 6749 5.2, as Google fills it).
#[derive(Clone, Debug)]
struct OAuthError {
    status: u16,
    error: String,
    description: String,
}

fn oauth_error(status: u16, error: &str, description: impl Into<String>) -> OAuthError {
    OAuthError {
        status,
        error: error.to_string(),
        description: description.into(),
    }
}

/// Google's `invalid_request` for a missing parameter.
fn missing(name: &str) -> OAuthError {
    oauth_error(
        400,
        "invalid_request",
        format!("Missing required parameter: {name}"),
    )
}

/// Google's answer to an authorization code it will not redeem, whatever the reason: used,
/// expired, unknown or another client's (observed: `"Bad Request"`).
fn bad_code() -> OAuthError {
    oauth_error(400, "invalid_grant", "Bad Request")
}

fn refresh_dead() -> OAuthError {
    oauth_error(400, "invalid_grant", REFRESH_DEAD)
}

fn bad_signature() -> OAuthError {
    oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
}

fn invalid_scope() -> OAuthError {
    oauth_error(
        400,
        "invalid_scope",
        "Invalid OAuth scope or ID token audience provided.",
    )
}

/// Google's JSON answers (token endpoint, APIs) are pretty-printed and never cached.
fn google_json(status: u16, v: &Value) -> Reply {
    Reply::typed(
        status,
        "application/json; charset=utf-8",
        serde_json::to_string_pretty(v).unwrap_or_default(),
    )
    .with_header(
        "Cache-Control",
        "no-cache, no-store, max-age=0, must-revalidate",
    )
    .with_header("Pragma", "no-cache")
}

/// An error of a Google API: the v1 envelope (`code`, `message`, `errors[]`) with the newer
/// `status`, as Gmail answers today.
#[derive(Clone, Debug)]
struct GmailError {
    status: u16,
    reason: String,
    message: String,
    /// What only some errors have (boxed: errors travel in every `Result` here).
    extra: Box<ErrorExtra>,
}

#[derive(Clone, Debug, Default)]
struct ErrorExtra {
    /// `errors[0].message` when it differs from `message` (401 and 403 bodies say one thing
    /// in each).
    item_message: Option<String>,
    /// `errors[0]` names the `Authorization` header (`location`, `locationType`: 401s).
    location: bool,
    /// `error.details` (403 scope errors carry an `ErrorInfo`).
    details: Option<Value>,
    headers: Vec<(String, String)>,
}

fn gmail_error(status: u16, reason: &str, message: impl Into<String>) -> GmailError {
    GmailError {
        status,
        reason: reason.to_string(),
        message: message.into(),
        extra: Box::default(),
    }
}

impl GmailError {
    fn item_message(mut self, m: &str) -> GmailError {
        self.extra.item_message = Some(m.to_string());
        self
    }

    /// `errors[0]` points at the `Authorization` header.
    fn at_authorization(mut self) -> GmailError {
        self.extra.location = true;
        self
    }

    fn details(mut self, details: Value) -> GmailError {
        self.extra.details = Some(details);
        self
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> GmailError {
        self.extra.headers.push((name.to_string(), value.into()));
        self
    }
}

fn bad_request(message: impl Into<String>) -> GmailError {
    gmail_error(400, "badRequest", message)
}

/// The 401 of an unknown, expired or revoked token (observed body, facts §6).
fn invalid_credentials() -> GmailError {
    gmail_error(401, "authError", INVALID_CREDENTIALS)
        .item_message("Invalid Credentials")
        .at_authorization()
        .header(
            "WWW-Authenticate",
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        )
}

fn invalid_argument(message: impl Into<String>) -> GmailError {
    gmail_error(400, "invalidArgument", message)
}

/// The gRPC status name Google puts next to an HTTP status and reason.
fn rpc_status(status: u16, reason: &str) -> &'static str {
    match (status, reason) {
        (_, "failedPrecondition") => "FAILED_PRECONDITION",
        (400, _) => "INVALID_ARGUMENT",
        (401, _) => "UNAUTHENTICATED",
        (403, _) => "PERMISSION_DENIED",
        (404, _) => "NOT_FOUND",
        (409, _) => "ABORTED",
        (429, _) => "RESOURCE_EXHAUSTED",
        (501, _) => "UNIMPLEMENTED",
        (503, _) => "UNAVAILABLE",
        (504, _) => "DEADLINE_EXCEEDED",
        (500..=599, _) => "INTERNAL",
        _ => "UNKNOWN",
    }
}

impl GmailError {
    fn render(&self) -> Reply {
        // The documented quota reasons live in the `usageLimits` domain; the rest in `global`.
        let domain = match self.reason.as_str() {
            "dailyLimitExceeded" | "userRateLimitExceeded" | "rateLimitExceeded"
                if self.status == 403 =>
            {
                "usageLimits"
            }
            _ => "global",
        };
        let item_message = self.extra.item_message.as_deref().unwrap_or(&self.message);
        let mut item = json!({"message": item_message, "domain": domain, "reason": self.reason});
        if self.extra.location {
            item["location"] = "Authorization".into();
            item["locationType"] = "header".into();
        }
        let mut error = json!({
            "code": self.status,
            "message": self.message,
            "errors": [item],
            "status": rpc_status(self.status, &self.reason),
        });
        if let Some(d) = &self.extra.details {
            error["details"] = d.clone();
        }
        let mut reply = google_json(self.status, &json!({ "error": error }));
        for (k, v) in &self.extra.headers {
            reply = reply.with_header(k, v.clone());
        }
        reply
    }
}

// ---- scopes ----

/// A requested scope as Google writes it once granted; `None` for a scope Google does not know.
fn canonical_scope(word: &str) -> Option<String> {
    match word {
        "openid" => Some("openid".to_string()),
        "email" | USERINFO_EMAIL => Some(USERINFO_EMAIL.to_string()),
        "profile" | USERINFO_PROFILE => Some(USERINFO_PROFILE.to_string()),
        MAIL_SCOPE => Some(MAIL_SCOPE.to_string()),
        _ => word
            .strip_prefix(GMAIL_SCOPE_PREFIX)
            .filter(|s| GMAIL_SCOPES.contains(s))
            .map(|_| word.to_string()),
    }
}

/// A space-separated scope list, canonical and without repeats; `Err(invalid words)`.
fn parse_scopes(s: &str) -> Result<Vec<String>, Vec<String>> {
    let mut scopes = Vec::new();
    let mut invalid = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        match canonical_scope(word) {
            Some(c) if !scopes.contains(&c) => scopes.push(c),
            Some(_) => {}
            None => invalid.push(word.to_string()),
        }
    }
    match invalid.is_empty() {
        true => Ok(scopes),
        false => Err(invalid),
    }
}

fn any_of(scopes: &[String], wanted: &[&str]) -> bool {
    scopes.iter().any(|s| wanted.contains(&s.as_str()))
}

// ---- identifiers ----

fn is_client_id(id: &str) -> bool {
    let Some(stem) = id.strip_suffix(".apps.googleusercontent.com") else {
        return false;
    };
    let Some((number, key)) = stem.split_once('-') else {
        return false;
    };
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// `n` decimal digits (not starting with 0), from random bytes.
fn random_digits(n: usize) -> String {
    random_bytes(n)
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let d = if i == 0 { 1 + b % 9 } else { b % 10 };
            char::from(b'0' + d)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stable Google account id (the id_token's `sub`): 21 digits derived from the address.
fn subject(user: &str) -> String {
    let digest = Sha256::digest(user.to_ascii_lowercase().as_bytes());
    let digits: String = digest.iter().map(|b| char::from(b'0' + b % 10)).collect();
    format!("1{}", &digits[..20])
}

/// `XXXX-XXXX` from consonant-like letters, as Google's user codes look (`GQVQ-JKEC`).
fn random_user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let letters: String = random_bytes(8)
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &letters[..4], &letters[4..])
}

impl FakeGoogle {
    /// Starts the fake on `127.0.0.1:<ephemeral port>` with no clients; the signed-in user is
    /// `ada@example.com`.
    pub fn start() -> FakeGoogle {
        let shared = Arc::new(Shared::new(State {
            clients: HashMap::new(),
            service_accounts: HashMap::new(),
            delegation: HashMap::new(),
            send_as: HashMap::new(),
            user: "ada@example.com".to_string(),
            advanced: 0,
            consented: HashSet::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            devices: HashMap::new(),
            uploads: HashMap::new(),
            threads: HashSet::new(),
            fail_token: None,
            fail_authorize_redirect: None,
            fail_authorize_page: None,
            fail_send: None,
            sent: Vec::new(),
            stats: Stats::default(),
            last_authorize: None,
        }));
        let handler = Arc::clone(&shared);
        let server = Server::start("fake Google", WORKERS, move |req| route(&handler, req));
        FakeGoogle { shared, server }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: the one origin of every endpoint.
    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// `{url}/o/oauth2/v2/auth` (accounts.google.com's).
    pub fn authorize_url(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.url())
    }

    /// `{url}/token` (oauth2.googleapis.com's).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.url())
    }

    /// `{url}/device/code`.
    pub fn device_url(&self) -> String {
        format!("{}/device/code", self.url())
    }

    /// `{url}/revoke`.
    pub fn revoke_url(&self) -> String {
        format!("{}/revoke", self.url())
    }

    /// The Gmail API's root (gmail.googleapis.com's), the same origin.
    pub fn api_url(&self) -> String {
        self.url()
    }

    /// `{url}/_test/introspect`, for the SMTP server in Gmail mode.
    pub fn introspect_url(&self) -> String {
        format!("{}/_test/introspect", self.url())
    }

    /// `{url}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.url())
    }

    /// Registers a "Desktop app" OAuth client, in production (not Testing). The id must look
    /// like Google's: `1234567890-abc123def456.apps.googleusercontent.com`.
    pub fn add_desktop_client(&self, client_id: &str, secret: &str) {
        self.add_client(client_id, secret, ClientKind::Desktop);
    }

    /// Registers a "TVs and Limited Input devices" client (the only kind the device flow takes).
    pub fn add_device_client(&self, client_id: &str, secret: &str) {
        self.add_client(client_id, secret, ClientKind::Device);
    }

    fn add_client(&self, client_id: &str, secret: &str, kind: ClientKind) {
        assert!(
            is_client_id(client_id),
            "not a Google client id: {client_id} (digits-key.apps.googleusercontent.com)"
        );
        self.shared.lock().clients.insert(
            client_id.to_string(),
            Client {
                secret: secret.to_string(),
                kind,
                testing: false,
            },
        );
    }

    /// The client's project is in Testing (`true`) or in production: refresh tokens issued
    /// while in Testing, or refreshed while it is, die seven days after issue.
    pub fn set_testing(&self, client_id: &str, testing: bool) {
        if let Some(c) = self.shared.lock().clients.get_mut(client_id) {
            c.testing = testing;
        }
    }

    /// The user who signs in from now on (default `ada@example.com`).
    pub fn set_user(&self, email: &str) {
        self.shared.lock().user = email.to_string();
    }

    /// Moves the fake's clock forward (codes, token expiry, refresh-token age and use, device
    /// codes). Assertions are still judged by the real clock (see the module doc).
    pub fn advance(&self, d: Duration) {
        self.shared.lock().advanced += d.as_secs();
    }

    /// A new service account `client_email` (`name@project.iam.gserviceaccount.com`) with a
    /// fresh 2048-bit RSA key; returns its JSON key file and ids.
    pub fn add_service_account(&self, client_email: &str) -> ServiceAccountKey {
        let project_id = client_email
            .split_once('@')
            .and_then(|(_, d)| d.strip_suffix(".iam.gserviceaccount.com"))
            .unwrap_or_else(|| {
                panic!("not a service account address: {client_email} (name@project.iam.gserviceaccount.com)")
            })
            .to_string();
        let key =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        let pkcs8 = {
            use rsa::pkcs8::EncodePrivateKey;
            key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec()
        };
        let public_key = {
            use ring::signature::KeyPair;
            ring::signature::RsaKeyPair::from_pkcs8(&pkcs8)
                .expect("ring reads the PKCS#8 key")
                .public_key()
                .as_ref()
                .to_vec()
        };
        let client_id = random_digits(21);
        let private_key_id = hex(&random_bytes(20));
        let private_key_pem = pem("PRIVATE KEY", &pkcs8);
        let token_uri = self.token_url();
        let s = |v: &str| Value::from(v).to_string();
        // Written by hand: the console's files keep this order (serde_json would sort), with
        // two-space indentation and a final newline.
        let json = format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": {},\n  \"private_key_id\": {},\n  \"private_key\": {},\n  \"client_email\": {},\n  \"client_id\": {},\n  \"auth_uri\": {},\n  \"token_uri\": {},\n  \"auth_provider_x509_cert_url\": \"https://www.googleapis.com/oauth2/v1/certs\",\n  \"client_x509_cert_url\": {},\n  \"universe_domain\": \"googleapis.com\"\n}}\n",
            s(&project_id),
            s(&private_key_id),
            s(&private_key_pem),
            s(client_email),
            s(&client_id),
            s(&self.authorize_url()),
            s(&token_uri),
            s(&format!(
                "https://www.googleapis.com/robot/v1/metadata/x509/{}",
                super::http::percent_encode(client_email)
            )),
        );
        self.shared.lock().service_accounts.insert(
            client_email.to_string(),
            ServiceAccount {
                client_id: client_id.clone(),
                key_id: private_key_id.clone(),
                public_key,
            },
        );
        ServiceAccountKey {
            json,
            client_email: client_email.to_string(),
            client_id,
            private_key_id,
            project_id,
            private_key_pem,
            token_uri,
            pkcs8,
        }
    }

    /// Domain-wide delegation, as a super admin enters it: the service account with this
    /// numeric client id may impersonate users for exactly these scopes (replacing any earlier
    /// list).
    pub fn allow_delegation(&self, sa_client_id: &str, scopes: &[&str]) {
        self.shared.lock().delegation.insert(
            sa_client_id.to_string(),
            scopes.iter().map(|s| s.to_string()).collect(),
        );
    }

    /// A verified "Send mail as" alias of `user`: its `From` is kept as it is.
    pub fn add_send_as(&self, user: &str, alias: &str) {
        self.shared
            .lock()
            .send_as
            .entry(user.to_ascii_lowercase())
            .or_default()
            .push(alias.to_ascii_lowercase());
    }

    /// The next token request with a readable form body is answered with this error before
    /// anything is checked or consumed.
    pub fn fail_next_token_request(&self, status: u16, error: &str, description: &str) {
        self.shared.lock().fail_token = Some(oauth_error(status, error, description));
    }

    /// The next authorize request with a valid client and redirect URI comes back to the
    /// redirect URI as `?error=<error>&state=…`, as when the user clicks Cancel
    /// (`access_denied`).
    pub fn fail_next_authorize_redirect(&self, error: &str) {
        self.shared.lock().fail_authorize_redirect = Some(error.to_string());
    }

    /// The next authorize request with a valid client and redirect URI shows a Google error
    /// page instead (`admin_policy_enforced`, `org_internal`, `access_denied` of a Testing app's
    /// non-test user, …): no redirect, the user is stuck there.
    pub fn fail_next_authorize_page(&self, error: &str, description: &str) {
        self.shared.lock().fail_authorize_page = Some((error.to_string(), description.to_string()));
    }

    /// The next `n` sends (media or JSON requests, or the last chunk of a resumable upload)
    /// are answered with this Gmail error (`429 rateLimitExceeded`, `403
    /// userRateLimitExceeded`, `500 backendError`, `400 failedPrecondition` …), with a
    /// `Retry-After` header when given. Nothing is sent.
    pub fn fail_next_send(
        &self,
        n: u32,
        status: u16,
        reason: &str,
        message: &str,
        retry_after: Option<u32>,
    ) {
        self.shared.lock().fail_send = Some(SendFailure {
            left: n,
            error: gmail_error(status, reason, message),
            retry_after,
        });
    }

    /// Like the user changing a password (Gmail scopes) or removing the app: every refresh
    /// token issued so far is dead.
    pub fn revoke_all_refresh_tokens(&self) {
        for g in self.shared.lock().refresh_tokens.values_mut() {
            g.revoked = true;
        }
    }

    /// Every message Gmail accepted, in order.
    pub fn sent(&self) -> Vec<GmailSent> {
        self.shared.lock().sent.clone()
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    pub fn access_token_info(&self, token: &str) -> Option<AccessTokenInfo> {
        self.shared.lock().introspect(token)
    }

    /// Decoded query pairs of the last authorize request whose query was parseable.
    pub fn last_authorize_query(&self) -> Option<Vec<(String, String)>> {
        self.shared.lock().last_authorize.clone()
    }

    /// A complete sign-in over HTTP, as a well-behaved Desktop client does it (authorize with
    /// PKCE, `access_type=offline` and `prompt=consent`, then the code redemption with the
    /// secret), for tests that need tokens without the CLI. `redirect_uri` must be a loopback
    /// URI (nothing needs to listen there). Returns the token endpoint's JSON answer.
    pub fn sign_in(
        &self,
        client_id: &str,
        secret: &str,
        redirect_uri: &str,
        scopes: &str,
    ) -> Value {
        let offline = [("access_type", "offline"), ("prompt", "consent")];
        let code = sign_in_code(
            &self.authorize_url(),
            client_id,
            redirect_uri,
            scopes,
            &offline,
        );
        let secret = [("client_secret", secret)];
        redeem_code(&self.token_url(), client_id, &code, redirect_uri, &secret)
    }
}

impl DeviceVerification for FakeGoogle {
    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> bool {
        self.shared.lock().set_device_status(user_code, status)
    }
}

// ---- routing ----

fn route(shared: &Shared, req: &mut Request) -> Reply {
    let path = req.path().to_string();
    let query = req.query().to_string();
    let method = req.method().to_string();
    match (method.as_str(), path.as_str()) {
        ("GET", "/o/oauth2/v2/auth") => shared.lock().authorize(&query),
        ("POST", "/token") => form_endpoint(shared, req, State::token),
        ("POST", "/device/code") => form_endpoint(shared, req, State::device_code),
        ("POST", "/revoke") => revoke(shared, req),
        ("GET", "/device") => shared.lock().device_page(&query),
        ("GET", "/.well-known/openid-configuration") => {
            shared.lock().stats.discovery_requests += 1;
            discovery(req.origin())
        }
        ("GET", "/v1/userinfo") => userinfo(shared, req),
        // The discovery document's jwks_uri. The fake's id_tokens carry random signatures
        // (mailer only reads them), so there is no key to publish.
        ("GET", "/oauth2/v3/certs") => google_json(200, &json!({ "keys": [] })),
        // Test-only introspection, for fakes in other processes (the SMTP server) that must
        // check a bearer token the way Gmail would: GET /_test/introspect?token=...
        ("GET", "/_test/introspect") => {
            match shared.lock().introspect(&query_param(&query, "token")) {
                Some(info) => google_json(200, &info.introspection()),
                None => google_json(404, &json!({"error": "unknown token"})),
            }
        }
        (
            _,
            "/o/oauth2/v2/auth"
            | "/token"
            | "/device/code"
            | "/revoke"
            | "/device"
            | "/.well-known/openid-configuration"
            | "/v1/userinfo"
            | "/oauth2/v3/certs"
            | "/_test/introspect",
        ) => unrouted(shared, req, 405),
        _ => match gmail_route(&method, &path) {
            Some((user, op)) => {
                shared.lock().stats.gmail_requests += 1;
                let reply = gmail(shared, req, &user, op);
                if reply.status >= 400 {
                    let reason = serde_json::from_slice::<Value>(&reply.body)
                        .ok()
                        .and_then(|v| v["error"]["errors"][0]["reason"].as_str().map(String::from))
                        .unwrap_or_default();
                    let mut st = shared.lock();
                    st.stats
                        .gmail_errors
                        .push(format!("{} {reason}", reply.status));
                }
                reply
            }
            None => unrouted(shared, req, 404),
        },
    }
}

fn unrouted(shared: &Shared, req: &mut Request, status: u16) -> Reply {
    shared.lock().stats.unrouted.push(req.line());
    req.discard_body(UPLOAD_MAX + 1);
    Reply::no_route(status)
}

/// The parts of a form request the OAuth handlers look at.
struct FormRequest<'a> {
    origin: &'a str,
    content_type: Option<&'a str>,
    authorization: Option<&'a str>,
    /// `None` when the body could not be read or was too large.
    body: Option<&'a [u8]>,
}

impl FormRequest<'_> {
    fn form(&self) -> Option<Form> {
        parse_strict(std::str::from_utf8(self.body?).ok()?)
    }

    /// The form, when the request is one: `application/x-www-form-urlencoded`, strictly parsed.
    fn checked_form(&self) -> Result<Form, OAuthError> {
        if !is_form(self.content_type) {
            // Google also reads JSON bodies here; the fake holds clients to the RFC's form
            // encoding. The text is the fake's choice.
            return Err(oauth_error(
                400,
                "invalid_request",
                "The request body must be application/x-www-form-urlencoded.",
            ));
        }
        self.form()
            .ok_or_else(|| oauth_error(400, "invalid_request", "Bad Request"))
    }
}

type FormHandler = fn(&mut State, &FormRequest) -> Result<Value, OAuthError>;

/// Runs a form endpoint (token, device code) and renders its JSON answer or error.
fn form_endpoint(shared: &Shared, req: &mut Request, handler: FormHandler) -> Reply {
    let body = req.read_body(FORM_MAX).ok();
    let request = FormRequest {
        origin: req.origin(),
        content_type: req.header("Content-Type"),
        authorization: req.header("Authorization"),
        body: body.as_deref(),
    };
    let mut st = shared.lock();
    match handler(&mut st, &request) {
        Ok(v) => google_json(200, &v),
        Err(e) => st.oauth_error_reply(&e),
    }
}

/// Google's OpenID Provider metadata, the endpoints pointing at this fake. The issuer stays
/// Google's, as in the id_tokens.
fn discovery(origin: &str) -> Reply {
    let doc = json!({
        "issuer": ISSUER,
        "authorization_endpoint": format!("{origin}/o/oauth2/v2/auth"),
        "device_authorization_endpoint": format!("{origin}/device/code"),
        "token_endpoint": format!("{origin}/token"),
        "userinfo_endpoint": format!("{origin}/v1/userinfo"),
        "revocation_endpoint": format!("{origin}/revoke"),
        "jwks_uri": format!("{origin}/oauth2/v3/certs"),
        "response_types_supported": ["code", "token", "id_token", "code token", "code id_token", "token id_token", "code token id_token", "none"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "email", "email_verified", "exp", "family_name", "given_name", "iat", "iss", "name", "picture", "sub"],
        "code_challenge_methods_supported": ["plain", "S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT, JWT_BEARER],
    });
    // Google serves it cacheable for an hour; the Date header comes from the skeleton.
    Reply::json(200, &doc).with_header("Cache-Control", "public, max-age=3600")
}

/// `POST /revoke` with `token` in the form or the query: a refresh token revokes its grant
/// and the access tokens from it; an access token revokes itself and its refresh token.
fn revoke(shared: &Shared, req: &mut Request) -> Reply {
    let body = req.read_body(FORM_MAX).unwrap_or_default();
    let from_body = std::str::from_utf8(&body)
        .ok()
        .and_then(parse_strict)
        .and_then(|f| param(&f, "token").map(str::to_string));
    let token = from_body
        .or_else(|| parse_strict(req.query()).and_then(|q| param(&q, "token").map(str::to_string)));
    let mut st = shared.lock();
    let found = token.is_some_and(|t| st.revoke(&t));
    match found {
        true => google_json(200, &json!({})),
        false => {
            let e = oauth_error(400, "invalid_token", "Token expired or revoked");
            st.oauth_error_reply(&e)
        }
    }
}

/// `GET /v1/userinfo`: the OpenID claims the token's scopes allow.
fn userinfo(shared: &Shared, req: &mut Request) -> Reply {
    let st = shared.lock();
    let info = req
        .bearer()
        .and_then(|t| st.introspect(t))
        .filter(|i| !i.expired);
    let Some(info) = info else {
        return google_json(
            401,
            &json!({"error": "invalid_request", "error_description": "Invalid Credentials"}),
        )
        .with_header(
            "WWW-Authenticate",
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        );
    };
    let mut v = json!({ "sub": subject(&info.user) });
    if info.scopes.iter().any(|s| s == USERINFO_EMAIL) {
        v["email"] = info.user.clone().into();
        v["email_verified"] = true.into();
    }
    google_json(200, &v)
}

// ---- authorize ----

/// The loopback rule for Desktop clients: `http`, `127.0.0.1` or `[::1]`, an explicit port.
fn loopback_ok(redirect_uri: &str) -> bool {
    split_uri(redirect_uri).is_some_and(|u| {
        u.scheme == "http"
            && (u.host == "127.0.0.1" || u.host == "[::1]")
            && u.port.is_some_and(|p| p != 0)
    })
}

/// The HTTP status of Google's error page for `error` (as the pages say: "Error 403:
/// org_internal", "Error 401: invalid_client" …).
fn page_status(error: &str) -> u16 {
    match error {
        "invalid_client" | "deleted_client" => 401,
        "org_internal" | "access_denied" | "disallowed_useragent" => 403,
        _ => 400,
    }
}

impl State {
    fn oauth_error_reply(&mut self, e: &OAuthError) -> Reply {
        self.stats.errors.push(e.error.clone());
        google_json(
            e.status,
            &json!({"error": e.error, "error_description": e.description}),
        )
    }

    /// A Google sign-in error page: the browser stays there, nothing reaches the client.
    fn error_page(&mut self, error: &str, description: &str) -> Reply {
        self.stats.errors.push(format!("page {error}"));
        let status = page_status(error);
        Reply::html(
            status,
            format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Error {status} ({error})</title></head><body>\
                 <h1>Access blocked: Authorization Error</h1>\
                 <p id=\"error-code\">Error {status}: {error}</p>\
                 <p id=\"error-description\">{}</p></body></html>",
                html_escape(description)
            ),
        )
    }

    fn redirect_error(&mut self, redirect_uri: &str, state: Option<&str>, error: &str) -> Reply {
        self.stats.errors.push(format!("redirect {error}"));
        let mut params = vec![("error", error)];
        if let Some(s) = state {
            params.push(("state", s));
        }
        Reply::redirect(redirect_location(redirect_uri, &params))
    }

    fn authorize(&mut self, query: &str) -> Reply {
        self.stats.oauth.authorize += 1;
        let Some(q) = parse_strict(query) else {
            return self.error_page(
                "invalid_request",
                "Invalid request: the query is malformed or repeats a parameter.",
            );
        };
        self.last_authorize = Some(q.clone());
        // Client and redirect URI first: until both are trusted, every error is a page.
        let Some(client_id) = param(&q, "client_id").map(str::to_string) else {
            return self.error_page("invalid_request", "Missing required parameter: client_id");
        };
        let kind = match self.clients.get(&client_id) {
            Some(c) => c.kind,
            None => return self.error_page("invalid_client", "The OAuth client was not found."),
        };
        let Some(redirect_uri) = param(&q, "redirect_uri").map(str::to_string) else {
            return self.error_page(
                "invalid_request",
                "Missing required parameter: redirect_uri",
            );
        };
        // A TV client has no redirect at all; a Desktop client only the loopback one.
        if kind != ClientKind::Desktop || !loopback_ok(&redirect_uri) {
            return self.error_page(
                "redirect_uri_mismatch",
                &format!(
                    "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 policy. If you're the app developer, register the redirect URI in the Google Cloud Console. Request details: redirect_uri={redirect_uri}"
                ),
            );
        }
        if let Some((error, description)) = self.fail_authorize_page.take() {
            return self.error_page(&error, &description);
        }
        let request = match check_authorize_request(&q) {
            Ok(r) => r,
            Err((error, description)) => return self.error_page(error, &description),
        };
        // The user's decision: from here on the answer goes back to the loopback listener.
        let state = q.iter().find(|(k, _)| k == "state").map(|(_, v)| v.clone());
        let state = state.as_deref();
        if let Some(error) = self.fail_authorize_redirect.take() {
            return self.redirect_error(&redirect_uri, state, &error);
        }
        let key = (self.user.to_ascii_lowercase(), client_id.clone());
        let first = !self.consented.contains(&key);
        if request.prompt_none && first {
            return self.redirect_error(&redirect_uri, state, "consent_required");
        }
        let consent_screen = first || request.prompt_consent;
        self.consented.insert(key);
        let code = format!("4/0A{}", random_token(54));
        self.codes.insert(
            code.clone(),
            Code {
                client_id,
                redirect_uri: redirect_uri.clone(),
                challenge: request.challenge,
                scopes: request.scopes.clone(),
                user: self.user.clone(),
                refresh: request.offline && consent_screen,
                issued: self.now(),
                redeemed: false,
            },
        );
        let scope = request.scopes.join(" ");
        let mut params = Vec::new();
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.extend([
            ("code", code.as_str()),
            ("scope", scope.as_str()),
            ("authuser", "0"),
            ("prompt", if consent_screen { "consent" } else { "none" }),
        ]);
        Reply::redirect(redirect_location(&redirect_uri, &params))
    }
}

/// What a valid authorize request asks for.
struct AuthorizeRequest {
    scopes: Vec<String>,
    challenge: String,
    offline: bool,
    prompt_consent: bool,
    prompt_none: bool,
}

/// Checks the authorize parameters after client and redirect URI; `Err((error, text))` is
/// shown as a Google error page.
fn check_authorize_request(q: &Form) -> Result<AuthorizeRequest, (&'static str, String)> {
    let invalid = |text: String| ("invalid_request", text);
    match param(q, "response_type") {
        None => {
            return Err(invalid(
                "Required parameter is missing: response_type".into(),
            ));
        }
        Some("code") => {}
        Some(other) => return Err(invalid(format!("Invalid response_type: {other}"))),
    }
    let scope =
        param(q, "scope").ok_or_else(|| invalid("Missing required parameter: scope".into()))?;
    let scopes = parse_scopes(scope).map_err(|bad| {
        let valid: Vec<&str> = scope
            .split(' ')
            .filter(|w| !w.is_empty() && !bad.iter().any(|b| b == w))
            .collect();
        (
            "invalid_scope",
            format!(
                "Some requested scopes were invalid. {{valid=[{}], invalid=[{}]}}",
                valid.join(", "),
                bad.join(", ")
            ),
        )
    })?;
    if scopes.is_empty() {
        return Err(invalid("Missing required parameter: scope".into()));
    }
    let challenge = param(q, "code_challenge").ok_or_else(|| {
        invalid(
            "Missing required parameter: code_challenge (this fake requires PKCE with S256)".into(),
        )
    })?;
    match param(q, "code_challenge_method") {
        Some("S256") => {}
        // Google defaults to plain and accepts it; the fake does not.
        None | Some("plain") => {
            return Err(invalid(
                "Invalid code_challenge_method: this fake accepts only S256 (plain or none refused)"
                    .into(),
            ));
        }
        Some(other) => return Err(invalid(format!("Invalid code_challenge_method: {other}"))),
    }
    if !challenge_ok(challenge) {
        return Err(invalid(format!("Invalid code_challenge: {challenge}")));
    }
    let offline = match param(q, "access_type") {
        None | Some("online") => false,
        Some("offline") => true,
        Some(other) => return Err(invalid(format!("Invalid access_type: {other}"))),
    };
    let prompts: Vec<&str> = param(q, "prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect();
    if prompts
        .iter()
        .any(|p| !matches!(*p, "none" | "consent" | "select_account"))
        || (prompts.contains(&"none") && prompts.len() > 1)
    {
        return Err(invalid(format!(
            "Invalid prompt: {}",
            param(q, "prompt").unwrap_or_default()
        )));
    }
    Ok(AuthorizeRequest {
        scopes,
        challenge: challenge.to_string(),
        offline,
        prompt_consent: prompts.contains(&"consent"),
        prompt_none: prompts.contains(&"none"),
    })
}

// ---- the token endpoint ----

impl State {
    fn token(&mut self, req: &FormRequest) -> Result<Value, OAuthError> {
        let form = req.form();
        self.stats
            .oauth
            .log_token_request(req.authorization, form.as_ref());
        let form = req.checked_form()?;
        if let Some(e) = self.fail_token.take() {
            return Err(e);
        }
        let grant_type = param(&form, "grant_type").unwrap_or_default();
        match grant_type {
            "authorization_code" => {
                let client_id = self.authenticate(&form, req.authorization)?;
                self.code_grant(&client_id, &form)
            }
            "refresh_token" => {
                let client_id = self.authenticate(&form, req.authorization)?;
                self.refresh_grant(&client_id, &form)
            }
            JWT_BEARER => self.jwt_grant(req.origin, &form),
            DEVICE_GRANT => {
                let client_id = self.authenticate(&form, req.authorization)?;
                self.device_grant(&client_id, &form)
            }
            other => Err(oauth_error(
                400,
                "unsupported_grant_type",
                format!("Invalid grant_type: {other}"),
            )),
        }
    }

    /// Client authentication for the code, refresh and device grants; returns the client id.
    fn authenticate(&self, form: &Form, authorization: Option<&str>) -> Result<String, OAuthError> {
        let basic = basic_credentials(authorization)
            .map_err(|()| oauth_error(400, "invalid_request", "Bad Request"))?;
        let (client_id, secret) = match basic {
            Some((id, secret)) => {
                // RFC 6749 2.3.1: one method per request; Google's reaction is not documented.
                if param(form, "client_secret").is_some()
                    || param(form, "client_id").is_some_and(|b| b != id)
                {
                    return Err(oauth_error(
                        400,
                        "invalid_request",
                        "Client authentication must use one method: HTTP Basic or client_secret in the body, not both.",
                    ));
                }
                (Some(id), (!secret.is_empty()).then_some(secret))
            }
            None => (
                param(form, "client_id").map(str::to_string),
                param(form, "client_secret").map(str::to_string),
            ),
        };
        let Some(client_id) = client_id else {
            return Err(oauth_error(
                400,
                "invalid_request",
                "Could not determine client ID from request.",
            ));
        };
        let Some(client) = self.clients.get(&client_id) else {
            return Err(oauth_error(
                401,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        };
        match secret {
            None => Err(oauth_error(
                400,
                "invalid_request",
                "client_secret is missing.",
            )),
            Some(s) if s != client.secret => {
                Err(oauth_error(401, "invalid_client", "Unauthorized"))
            }
            Some(_) => Ok(client_id),
        }
    }

    fn code_grant(&mut self, client_id: &str, form: &Form) -> Result<Value, OAuthError> {
        let code = param(form, "code").ok_or_else(|| missing("code"))?;
        let now = self.now();
        let c = self.codes.get_mut(code).ok_or_else(bad_code)?;
        if c.redeemed || c.client_id != client_id {
            return Err(bad_code());
        }
        // Any redemption attempt by the right client burns the code: a client must never
        // retry one.
        c.redeemed = true;
        if now >= c.issued + CODE_TTL {
            return Err(bad_code());
        }
        let redirect_uri = param(form, "redirect_uri").ok_or_else(|| missing("redirect_uri"))?;
        if redirect_uri != c.redirect_uri {
            return Err(oauth_error(400, "redirect_uri_mismatch", "Bad Request"));
        }
        // Google documents invalid_grant for PKCE failures; the texts are the fake's.
        let verifier = param(form, "code_verifier")
            .ok_or_else(|| oauth_error(400, "invalid_grant", "Missing code verifier."))?;
        if !verifier_ok(verifier) || s256_challenge(verifier) != c.challenge {
            return Err(oauth_error(400, "invalid_grant", "Invalid code verifier."));
        }
        // A `scope` parameter here is ignored, as Google ignores it.
        let (user, scopes, refresh) = (c.user.clone(), c.scopes.clone(), c.refresh);
        let refresh_token = refresh.then(|| self.new_refresh_token(client_id, &user, &scopes));
        self.stats.oauth.code_grants += 1;
        Ok(self.issue(client_id, &user, scopes, refresh_token, true))
    }

    fn new_refresh_token(&mut self, client_id: &str, user: &str, scopes: &[String]) -> String {
        let token = format!("1//0{}", random_token(75));
        let now = self.now();
        let testing = self.clients.get(client_id).is_some_and(|c| c.testing);
        self.refresh_tokens.insert(
            token.clone(),
            RefreshGrant {
                client_id: client_id.to_string(),
                user: user.to_string(),
                scopes: scopes.to_vec(),
                issued: now,
                last_used: now,
                testing,
                revoked: false,
            },
        );
        token
    }

    fn refresh_grant(&mut self, client_id: &str, form: &Form) -> Result<Value, OAuthError> {
        let presented = param(form, "refresh_token").ok_or_else(|| missing("refresh_token"))?;
        let now = self.now();
        let testing_now = self.clients.get(client_id).is_some_and(|c| c.testing);
        let g = self
            .refresh_tokens
            .get(presented)
            .ok_or_else(refresh_dead)?;
        if g.client_id != client_id {
            return Err(oauth_error(400, "unauthorized_client", "Unauthorized"));
        }
        // Seven days from issue while in Testing, unless only the basic scopes were granted.
        // Whether a project moved back to Testing kills older tokens is not documented; the
        // fake applies the rule whenever the project is in Testing at issue or at refresh.
        let basic_only = g.scopes.iter().all(|s| BASIC_SCOPES.contains(&s.as_str()));
        let testing_expired =
            (g.testing || testing_now) && !basic_only && now >= g.issued + TESTING_REFRESH_LIFETIME;
        let unused = now >= g.last_used + UNUSED_REFRESH_LIFETIME;
        if g.revoked || testing_expired || unused {
            return Err(refresh_dead());
        }
        let scopes = match param(form, "scope") {
            None => g.scopes.clone(),
            Some(s) => {
                let wanted = parse_scopes(s).map_err(|_| invalid_scope())?;
                if wanted.is_empty() || !wanted.iter().all(|w| g.scopes.contains(w)) {
                    return Err(invalid_scope());
                }
                wanted
            }
        };
        let user = g.user.clone();
        if let Some(g) = self.refresh_tokens.get_mut(presented) {
            g.last_used = now;
        }
        self.stats.oauth.refresh_grants += 1;
        // Google does not rotate refresh tokens: the answer has none.
        let answer = self.issue(client_id, &user, scopes, None, false);
        // Revoking the refresh token revokes what came from it.
        if let Some(at) = answer["access_token"].as_str()
            && let Some(t) = self.access_tokens.get_mut(at)
        {
            t.refresh_token = Some(presented.to_string());
        }
        Ok(answer)
    }

    /// The answer of a user grant: an access token, the refresh token if any, the granted
    /// scopes, and an id_token when an identity scope was granted (`email` also at the code
    /// redemption, only `openid` at a refresh).
    fn issue(
        &mut self,
        client_id: &str,
        user: &str,
        scopes: Vec<String>,
        refresh_token: Option<String>,
        code: bool,
    ) -> Value {
        let access_token = self.mint(
            AccessTokenInfo {
                user: user.to_string(),
                scopes: scopes.clone(),
                client_id: client_id.to_string(),
                expired: false,
                app: false,
            },
            refresh_token.clone(),
        );
        let mut v = json!({
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": scopes.join(" "),
            "token_type": "Bearer",
        });
        if let Some(rt) = refresh_token {
            v["refresh_token"] = rt.into();
        }
        let openid = scopes.iter().any(|s| s == "openid");
        let email = scopes.iter().any(|s| s == USERINFO_EMAIL);
        if openid || (code && email) {
            v["id_token"] = self.id_token(client_id, user, email).into();
        }
        v
    }

    fn mint(&mut self, info: AccessTokenInfo, refresh_token: Option<String>) -> String {
        let token = format!("ya29.a0{}", random_token(120));
        let expires = self.now() + ACCESS_TOKEN_LIFETIME;
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                info,
                expires,
                refresh_token,
            },
        );
        token
    }

    /// An id_token shaped like Google's (RS256 header, Google's claims); its signature is
    /// random, as mailer only reads it.
    fn id_token(&self, client_id: &str, user: &str, email: bool) -> String {
        let now = self.now();
        let header = json!({"alg": "RS256", "kid": hex(&random_bytes(20)), "typ": "JWT"});
        let mut claims = json!({
            "iss": ISSUER,
            "azp": client_id,
            "aud": client_id,
            "sub": subject(user),
            "at_hash": random_token(16),
            "iat": now,
            "exp": now + ID_TOKEN_LIFETIME,
        });
        if email {
            claims["email"] = user.into();
            claims["email_verified"] = true.into();
        }
        compact_jws(&header, &claims, &random_bytes(256))
    }

    /// The JWT bearer grant of service accounts (RFC 7523, Google's rules).
    fn jwt_grant(&mut self, origin: &str, form: &Form) -> Result<Value, OAuthError> {
        let assertion = param(form, "assertion").ok_or_else(|| missing("assertion"))?;
        // Google's text for a JWT it cannot read is not documented; it is the signature's.
        let jws = parse_jws(assertion).map_err(|_| bad_signature())?;
        if jws.header_str("alg") != Some("RS256")
            || jws.header.get("typ").is_some_and(|t| t != "JWT")
        {
            return Err(bad_signature());
        }
        let iss = jws.claim_str("iss").unwrap_or_default();
        let Some(sa) = self.service_accounts.get(iss) else {
            return Err(oauth_error(
                400,
                "invalid_grant",
                "Not a valid email or user ID.",
            ));
        };
        if jws
            .header
            .get("kid")
            .is_some_and(|k| k != sa.key_id.as_str())
            || !jws.verify(&RSA_PKCS1_2048_8192_SHA256, &sa.public_key)
        {
            return Err(bad_signature());
        }
        let token_url = format!("{origin}/token");
        if jws.claim_str("aud") != Some(token_url.as_str()) {
            return Err(oauth_error(
                400,
                "invalid_grant",
                "Invalid JWT: Failed audience check.",
            ));
        }
        // The real clock: the client dates its assertions by its own (see the module doc).
        let now = now_secs();
        let number = |k: &str| jws.payload.get(k).and_then(Value::as_u64);
        let timely = match (number("iat"), number("exp")) {
            (Some(iat), Some(exp)) => {
                iat <= now + ASSERTION_SKEW
                    && exp + ASSERTION_SKEW > now
                    && exp > iat
                    && exp - iat <= ASSERTION_MAX_LIFETIME
            }
            _ => false,
        };
        if !timely {
            return Err(oauth_error(400, "invalid_grant", ASSERTION_TIME));
        }
        let scope = jws.claim_str("scope").ok_or_else(invalid_scope)?;
        let scopes = parse_scopes(scope).map_err(|_| invalid_scope())?;
        if scopes.is_empty() {
            return Err(invalid_scope());
        }
        let sa_client_id = sa.client_id.clone();
        let (user, app) = match jws.claim_str("sub") {
            Some(sub) => {
                if !mime::is_address(sub) {
                    return Err(oauth_error(
                        400,
                        "invalid_grant",
                        "Invalid email or User ID",
                    ));
                }
                let allowed = self.delegation.get(&sa_client_id);
                let delegated = allowed.is_some_and(|a| scopes.iter().all(|s| a.contains(s)));
                if !delegated {
                    return Err(oauth_error(401, "unauthorized_client", UNAUTHORIZED_CLIENT));
                }
                (sub.to_string(), false)
            }
            // No impersonation: the service account's own token. Google issues it (as
            // observed); Gmail then refuses it with failedPrecondition.
            None => (iss.to_string(), true),
        };
        let access_token = self.mint(
            AccessTokenInfo {
                user,
                scopes,
                client_id: sa_client_id,
                expired: false,
                app,
            },
            None,
        );
        self.stats.jwt_grants += 1;
        Ok(json!({
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "token_type": "Bearer",
        }))
    }

    fn introspect(&self, token: &str) -> Option<AccessTokenInfo> {
        let at = self.access_tokens.get(token)?;
        let mut info = at.info.clone();
        info.expired = self.now() >= at.expires;
        Some(info)
    }

    fn revoke(&mut self, token: &str) -> bool {
        let refresh = match self.access_tokens.remove(token) {
            Some(at) => at.refresh_token,
            None if self.refresh_tokens.get(token).is_some_and(|g| !g.revoked) => {
                Some(token.to_string())
            }
            None => return false,
        };
        if let Some(rt) = refresh {
            if let Some(g) = self.refresh_tokens.get_mut(&rt) {
                g.revoked = true;
            }
            self.access_tokens
                .retain(|_, at| at.refresh_token.as_deref() != Some(rt.as_str()));
        }
        true
    }
}

// ---- the device flow ----

impl State {
    fn device_code(&mut self, req: &FormRequest) -> Result<Value, OAuthError> {
        let form = req.checked_form()?;
        let client_id = param(&form, "client_id").ok_or_else(|| missing("client_id"))?;
        let Some(client) = self.clients.get(client_id) else {
            return Err(oauth_error(
                401,
                "invalid_client",
                "The OAuth client was not found.",
            ));
        };
        let kind = client.kind;
        let scope = param(&form, "scope").ok_or_else(|| missing("scope"))?;
        // Only openid, email and profile (of the scopes the fake knows) are device-flow
        // scopes; Gmail's are refused before any user interaction, as observed.
        for word in scope.split(' ').filter(|w| !w.is_empty()) {
            let allowed = canonical_scope(word).is_some_and(|c| BASIC_SCOPES.contains(&c.as_str()));
            if !allowed {
                return Err(oauth_error(
                    400,
                    "invalid_scope",
                    format!("Invalid device flow scope: {word}"),
                ));
            }
        }
        if kind != ClientKind::Device {
            // The text is the fake's choice: Google wants a "TVs and Limited Input" client.
            return Err(oauth_error(401, "invalid_client", "Invalid client type."));
        }
        let scopes = parse_scopes(scope).unwrap_or_default();
        let device_code = format!("AH-1Ng{}", random_token(60));
        let mut user_code = random_user_code();
        // Collisions are astronomically rare; bounded retries keep it deterministic anyway.
        for _ in 0..16 {
            if !self.devices.values().any(|d| d.user_code == user_code) {
                break;
            }
            user_code = random_user_code();
        }
        self.devices.insert(
            device_code.clone(),
            Device {
                user_code: user_code.clone(),
                client_id: client_id.to_string(),
                scopes,
                user: self.user.clone(),
                issued: self.now(),
                last_poll: None,
                status: DeviceStatus::Pending,
            },
        );
        Ok(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_url": format!("{}/device", req.origin),
            "expires_in": DEVICE_TTL,
            "interval": DEVICE_INTERVAL,
        }))
    }

    fn device_grant(&mut self, client_id: &str, form: &Form) -> Result<Value, OAuthError> {
        let device_code = param(form, "device_code").ok_or_else(|| missing("device_code"))?;
        self.stats.oauth.device_polls += 1;
        let now = self.now();
        let d = self.devices.get_mut(device_code).ok_or_else(bad_code)?;
        if d.client_id != client_id || d.status == DeviceStatus::Redeemed {
            return Err(bad_code());
        }
        if now >= d.issued + DEVICE_TTL {
            return Err(oauth_error(400, "expired_token", "Bad Request"));
        }
        // Polls are measured on the fake's clock: a test advances it by the interval.
        if d.last_poll
            .replace(now)
            .is_some_and(|p| now < p + DEVICE_INTERVAL)
        {
            return Err(oauth_error(403, "slow_down", "Forbidden"));
        }
        match d.status {
            DeviceStatus::Pending => Err(oauth_error(
                428,
                "authorization_pending",
                "Precondition Required",
            )),
            DeviceStatus::Declined => Err(oauth_error(403, "access_denied", "Forbidden")),
            DeviceStatus::Approved | DeviceStatus::Redeemed => {
                d.status = DeviceStatus::Redeemed;
                let (user, scopes) = (d.user.clone(), d.scopes.clone());
                let rt = self.new_refresh_token(client_id, &user, &scopes);
                self.stats.oauth.device_grants += 1;
                Ok(self.issue(client_id, &user, scopes, Some(rt), true))
            }
        }
    }

    fn set_device_status(&mut self, user_code: &str, status: DeviceStatus) -> bool {
        let now = self.now();
        match self.devices.values_mut().find(|d| {
            d.user_code.eq_ignore_ascii_case(user_code)
                && d.status == DeviceStatus::Pending
                && now < d.issued + DEVICE_TTL
        }) {
            Some(d) => {
                d.status = status;
                true
            }
            None => false,
        }
    }

    /// `GET /device?user_code=…`: the user enters the code and allows access.
    fn device_page(&mut self, query: &str) -> Reply {
        let code = query_param(query, "user_code");
        if !code.is_empty() && self.set_device_status(&code, DeviceStatus::Approved) {
            Reply::html(
                200,
                "<!DOCTYPE html><html><body><h1>Success!</h1><p>You may close this window.</p></body></html>",
            )
        } else {
            Reply::html(
                400,
                format!(
                    "<!DOCTYPE html><html><body><h1>Invalid code</h1><p>The code {} is not valid.</p></body></html>",
                    html_escape(&code)
                ),
            )
        }
    }
}

// ---- Gmail ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GmailOp {
    /// `POST /gmail/v1/users/{u}/messages/send`, JSON.
    SendJson,
    /// `POST /upload/gmail/v1/users/{u}/messages/send?uploadType=…`.
    Upload,
    /// `PUT /upload/gmail/v1/users/{u}/messages/send?uploadType=resumable&upload_id=…`.
    Chunk,
    Profile,
    SendAsList,
}

/// The user path segment (decoded) and operation of a Gmail API request.
fn gmail_route(method: &str, path: &str) -> Option<(String, GmailOp)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (user, op) = match segments.as_slice() {
        ["gmail", "v1", "users", u, "messages", "send"] if method == "POST" => {
            (u, GmailOp::SendJson)
        }
        ["upload", "gmail", "v1", "users", u, "messages", "send"] if method == "POST" => {
            (u, GmailOp::Upload)
        }
        ["upload", "gmail", "v1", "users", u, "messages", "send"] if method == "PUT" => {
            (u, GmailOp::Chunk)
        }
        ["gmail", "v1", "users", u, "profile"] if method == "GET" => (u, GmailOp::Profile),
        ["gmail", "v1", "users", u, "settings", "sendAs"] if method == "GET" => {
            (u, GmailOp::SendAsList)
        }
        _ => return None,
    };
    Some((percent_decode_path(user)?, op))
}

fn gmail(shared: &Shared, req: &mut Request, user: &str, op: GmailOp) -> Reply {
    let result = match op {
        GmailOp::Chunk => upload_chunk(shared, req, user),
        _ => {
            let scopes: &[&str] = match op {
                GmailOp::Profile => &PROFILE_SCOPES,
                GmailOp::SendAsList => &SEND_AS_LIST_SCOPES,
                _ => &SEND_SCOPES,
            };
            let authorized = shared.lock().authorize_gmail(req.bearer(), user, scopes);
            match authorized {
                Err(e) => Err(e),
                Ok(info) => match op {
                    GmailOp::SendJson => send_json(shared, req, &info),
                    GmailOp::Upload => upload(shared, req, &info, user),
                    GmailOp::Profile => Ok(google_json(
                        200,
                        &json!({
                            "emailAddress": info.user,
                            "messagesTotal": 0,
                            "threadsTotal": 0,
                            "historyId": "1",
                        }),
                    )),
                    _ => Ok(shared.lock().send_as_list(&info.user)),
                },
            }
        }
    };
    result.unwrap_or_else(|e| {
        // Whatever the client still sends is read (bounded), so that it sees the answer.
        req.discard_body(UPLOAD_MAX + 1);
        e.render()
    })
}

impl State {
    /// The bearer token of a Gmail request: live, with one of `scopes`, acting for the path's
    /// user (`me` or the token's own address).
    fn authorize_gmail(
        &self,
        bearer: Option<&str>,
        path_user: &str,
        scopes: &[&str],
    ) -> Result<AccessTokenInfo, GmailError> {
        let Some(token) = bearer else {
            return Err(gmail_error(401, "required", MISSING_CREDENTIALS)
                .item_message("Login Required.")
                .at_authorization());
        };
        let info = self.introspect(token).filter(|i| !i.expired);
        let Some(info) = info else {
            return Err(invalid_credentials());
        };
        if !any_of(&info.scopes, scopes) {
            return Err(gmail_error(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            )
            .item_message("Insufficient Permission")
            .details(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
                "metadata": {"service": "gmail.googleapis.com", "method": "caribou.api.proto.MailboxService.SendMessage"},
            }]))
            .header(
                "WWW-Authenticate",
                format!(
                    "Bearer realm=\"https://accounts.google.com/\", error=\"insufficient_scope\", scope=\"{}\"",
                    scopes.join(" ")
                ),
            ));
        }
        if info.app {
            // A service account's own token has no mailbox (observed answer).
            return Err(gmail_error(
                400,
                "failedPrecondition",
                "Precondition check failed.",
            ));
        }
        if path_user != "me" && !path_user.eq_ignore_ascii_case(&info.user) {
            return Err(gmail_error(
                403,
                "forbidden",
                format!("Delegation denied for {path_user}"),
            ));
        }
        Ok(info)
    }

    fn send_as_list(&self, user: &str) -> Reply {
        let mut list = vec![json!({
            "sendAsEmail": user, "displayName": "", "replyToAddress": "", "signature": "",
            "isPrimary": true, "isDefault": true,
        })];
        for alias in self
            .send_as
            .get(&user.to_ascii_lowercase())
            .into_iter()
            .flatten()
        {
            list.push(json!({
                "sendAsEmail": alias, "displayName": "", "replyToAddress": "", "signature": "",
                "isDefault": false, "treatAsAlias": true, "verificationStatus": "accepted",
            }));
        }
        google_json(200, &json!({ "sendAs": list }))
    }
}

/// The message of a Gmail request: `Content-Type` must be `message/*`.
fn check_media_type(media_type: Option<&str>) -> Result<(), GmailError> {
    match media_type {
        Some(t) if t.starts_with("message/") => Ok(()),
        other => Err(bad_request(format!(
            "Media type '{}' is not supported. Valid media types: [message/*]",
            other.unwrap_or_default()
        ))),
    }
}

/// A request body that must be a JSON object of `Message` members; its `threadId`.
fn message_metadata(body: &[u8]) -> Result<Map<String, Value>, GmailError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| invalid_argument(format!("Invalid JSON payload received. {e}")))?;
    let Value::Object(m) = v else {
        return Err(invalid_argument(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    if let Some(k) = m.keys().find(|k| !MESSAGE_FIELDS.contains(&k.as_str())) {
        return Err(invalid_argument(format!(
            "Invalid JSON payload received. Unknown name \"{k}\": Cannot find field."
        )));
    }
    Ok(m)
}

fn thread_of(m: &Map<String, Value>) -> Option<String> {
    m.get("threadId")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn send_json(
    shared: &Shared,
    req: &mut Request,
    info: &AccessTokenInfo,
) -> Result<Reply, GmailError> {
    let too_large = || {
        bad_request(format!(
            "Request payload size exceeds the limit: {JSON_MAX} bytes."
        ))
    };
    if req.media_type().as_deref() != Some("application/json") {
        return Err(bad_request(
            "Invalid Content-Type: the request body must be application/json.",
        ));
    }
    let body = req.read_body(JSON_MAX).map_err(|e| match e {
        BodyError::TooLarge => too_large(),
        BodyError::Io(_) => bad_request("The request body could not be read."),
    })?;
    let m = message_metadata(&body)?;
    let raw = match m.get("raw") {
        Some(Value::String(s)) if !s.is_empty() => decode_raw(s)?,
        _ => {
            return Err(bad_request(
                "'raw' RFC822 payload message string or uploading message via /upload/* URL required",
            ));
        }
    };
    shared
        .lock()
        .deliver(&info.user, Upload::Json, raw, thread_of(&m))
}

/// `Message.raw` is `format: byte`: proto3's JSON mapping takes standard or URL-safe base64,
/// padded or not.
fn decode_raw(s: &str) -> Result<Vec<u8>, GmailError> {
    [&URL_SAFE_NO_PAD, &URL_SAFE, &STANDARD, &STANDARD_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(s).ok())
        .ok_or_else(|| {
            gmail_error(
                400,
                "invalid",
                "Invalid value at 'message.raw' (TYPE_BYTES), Base64 decoding failed.",
            )
        })
}

/// `POST /upload/…`: a simple (media) upload, or the start of a resumable one.
fn upload(
    shared: &Shared,
    req: &mut Request,
    info: &AccessTokenInfo,
    path_user: &str,
) -> Result<Reply, GmailError> {
    let q = parse_strict(req.query()).unwrap_or_default();
    match param(&q, "uploadType") {
        Some("media") => {
            check_media_type(req.media_type().as_deref())?;
            let body = req.read_body(MEDIA_MAX).map_err(|e| match e {
                // Google documents no error for this (it advises media uploads for "5 MB or
                // less"); this 400 and its text are the fake's choice.
                BodyError::TooLarge => bad_request(format!(
                    "Media upload too large: a simple upload (uploadType=media) may carry at most {MEDIA_MAX} bytes in this fake; use uploadType=resumable."
                )),
                BodyError::Io(_) => bad_request("The request body could not be read."),
            })?;
            shared.lock().deliver(&info.user, Upload::Media, body, None)
        }
        Some("resumable") => start_resumable(shared, req, info, path_user),
        // Google also has uploadType=multipart; the fake does not, and says so.
        Some(other) => Err(bad_request(format!(
            "Invalid uploadType '{other}': this fake implements media and resumable."
        ))),
        None => Err(bad_request(
            "Upload requests must include an uploadType URL parameter and a URL-encoded or JSON request body.",
        )),
    }
}

fn start_resumable(
    shared: &Shared,
    req: &mut Request,
    info: &AccessTokenInfo,
    path_user: &str,
) -> Result<Reply, GmailError> {
    // Google takes a resumable upload of unknown length; the fake wants both headers: a
    // client always knows the size of the message it sends.
    let total = req.header("X-Upload-Content-Length").ok_or_else(|| {
        bad_request("X-Upload-Content-Length is required (the message's size in bytes).")
    })?;
    let total = digits(total.trim())
        .filter(|n| *n > 0)
        .ok_or_else(|| bad_request(format!("Invalid X-Upload-Content-Length: {total}")))?;
    if total > UPLOAD_MAX {
        // The status is from the discovery document's maxSize; Google's body is not
        // documented, so this one is the fake's choice.
        return Err(gmail_error(
            413,
            "uploadTooLarge",
            format!("Media larger than {UPLOAD_MAX} bytes is not allowed for this method."),
        ));
    }
    let upload_type = req.header("X-Upload-Content-Type").map(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    if upload_type.is_none() {
        return Err(bad_request(
            "X-Upload-Content-Type is required (message/rfc822).",
        ));
    }
    check_media_type(upload_type.as_deref())?;
    let body = req.read_body(JSON_MAX).map_err(|_| {
        bad_request(format!(
            "Request payload size exceeds the limit: {JSON_MAX} bytes."
        ))
    })?;
    let thread_id = if body.is_empty() {
        None
    } else {
        if req.media_type().as_deref() != Some("application/json") {
            return Err(bad_request(
                "The metadata of a resumable upload must be application/json.",
            ));
        }
        let m = message_metadata(&body)?;
        if m.contains_key("raw") {
            return Err(bad_request(
                "A resumable upload carries the message in its upload requests, not in 'raw'.",
            ));
        }
        thread_of(&m)
    };
    let id = format!("ADPycd{}", random_token(60));
    shared.lock().uploads.insert(
        id.clone(),
        UploadSession {
            user: info.user.clone(),
            total,
            bytes: Vec::new(),
            thread_id,
            busy: false,
            done: None,
        },
    );
    let location = format!(
        "{}/upload/gmail/v1/users/{}/messages/send?{}",
        req.origin(),
        super::http::percent_encode(path_user),
        form_encode(&[("uploadType", "resumable"), ("upload_id", &id)])
    );
    Ok(Reply::empty(200)
        .with_header("Location", location)
        .with_header("X-GUploader-UploadID", id))
}

/// What a `PUT` to an upload session asks.
enum ChunkRequest {
    /// `Content-Range: bytes */N`: how much has arrived?
    Status { total: u64 },
    /// Bytes `first..=last` of `total`.
    Bytes { first: u64, last: u64, total: u64 },
}

fn parse_chunk_range(header: Option<&str>, length: u64) -> Result<ChunkRequest, GmailError> {
    let Some(range) = header else {
        // No Content-Range: the whole message in this one request.
        return match length {
            0 => Err(bad_request(
                "Content-Range is required for an empty upload request.",
            )),
            n => Ok(ChunkRequest::Bytes {
                first: 0,
                last: n - 1,
                total: n,
            }),
        };
    };
    let malformed = || bad_request(format!("Invalid Content-Range: {range}"));
    if let Some(total) = range.trim().strip_prefix("bytes */") {
        return Ok(ChunkRequest::Status {
            total: digits(total).ok_or_else(malformed)?,
        });
    }
    if range.trim().ends_with("/*") {
        // Google allows an unknown total until the last chunk; the fake knows it from the
        // session and wants it every time (the fake's strictness).
        return Err(bad_request(format!(
            "Content-Range must state the total size: {range}"
        )));
    }
    let (first, last, total) = parse_content_range(range).ok_or_else(malformed)?;
    if last < first {
        return Err(malformed());
    }
    Ok(ChunkRequest::Bytes { first, last, total })
}

/// `308` with the range received so far (none yet: no `Range` header).
fn resume_incomplete(received: u64) -> Reply {
    let reply = Reply::empty(308);
    match received {
        0 => reply,
        n => reply.with_header("Range", format!("bytes=0-{}", n - 1)),
    }
}

/// `PUT` to a resumable upload session: a chunk, or a status query.
fn upload_chunk(shared: &Shared, req: &mut Request, path_user: &str) -> Result<Reply, GmailError> {
    shared.lock().stats.resumable_puts += 1;
    let q = parse_strict(req.query()).unwrap_or_default();
    let not_found = || gmail_error(404, "notFound", "Upload session not found.");
    if param(&q, "uploadType") != Some("resumable") {
        return Err(bad_request(
            "Invalid uploadType: PUT needs uploadType=resumable.",
        ));
    }
    let id = param(&q, "upload_id").ok_or_else(not_found)?.to_string();
    let length = req.body_length().unwrap_or(0);
    let (first, last, total) = {
        let mut st = shared.lock();
        let session_user = st.uploads.get(&id).ok_or_else(not_found)?.user.clone();
        // The upload URL needs no token; one that is sent must be good and the user's.
        if let Some(token) = req.bearer() {
            let ok = st
                .introspect(token)
                .is_some_and(|i| !i.expired && i.user.eq_ignore_ascii_case(&session_user));
            if !ok {
                return Err(invalid_credentials());
            }
        }
        if path_user != "me" && !path_user.eq_ignore_ascii_case(&session_user) {
            return Err(not_found());
        }
        let session = st.uploads.get_mut(&id).ok_or_else(not_found)?;
        if let Some(done) = &session.done {
            // A finished upload answers every later request with its final answer.
            let done = done.clone();
            drop(st);
            req.discard_body(UPLOAD_MAX + 1);
            return Ok(done);
        }
        let received = session.bytes.len() as u64;
        match parse_chunk_range(req.header("Content-Range"), length)? {
            ChunkRequest::Status { total } => {
                if total != session.total || length != 0 {
                    return Err(bad_request(format!(
                        "A status request has no body and the session's total {}.",
                        session.total
                    )));
                }
                return Ok(resume_incomplete(received));
            }
            ChunkRequest::Bytes { first, last, total } => {
                if total != session.total || last >= total || last - first + 1 != length {
                    return Err(bad_request(format!(
                        "Content-Range bytes {first}-{last}/{total} does not fit the session ({} bytes) or Content-Length {length}.",
                        session.total
                    )));
                }
                if first != received || session.busy {
                    // Not where the upload stands: Google tells what it has, and the client
                    // resumes from there.
                    drop(st);
                    req.discard_body(UPLOAD_MAX + 1);
                    return Ok(resume_incomplete(received));
                }
                if last + 1 < total && !length.is_multiple_of(CHUNK_GRANULARITY) {
                    // Google's text for this is not documented; the fake's choice.
                    return Err(bad_request(format!(
                        "Invalid chunk size {length}: every chunk but the last must be a multiple of {CHUNK_GRANULARITY} bytes (256 KiB)."
                    )));
                }
                session.busy = true;
                (first, last, total)
            }
        }
    };
    // Read without the lock: a 35 MiB chunk must not stall the other requests.
    let mut chunk = Vec::with_capacity(length as usize);
    let read = req
        .reader()
        .take(length)
        .read_to_end(&mut chunk)
        .map(|n| n as u64 == length);
    let mut st = shared.lock();
    let session = st.uploads.get_mut(&id).ok_or_else(not_found)?;
    session.busy = false;
    if !read.unwrap_or(false) {
        return Ok(resume_incomplete(session.bytes.len() as u64));
    }
    debug_assert_eq!(session.bytes.len() as u64, first);
    session.bytes.extend_from_slice(&chunk);
    if last + 1 < total {
        return Ok(resume_incomplete(last + 1));
    }
    let bytes = std::mem::take(&mut session.bytes);
    let (user, thread) = (session.user.clone(), session.thread_id.clone());
    let reply = st
        .deliver(&user, Upload::Resumable, bytes, thread)
        .unwrap_or_else(|e| e.render());
    if let Some(session) = st.uploads.get_mut(&id) {
        session.done = Some(reply.clone());
    }
    Ok(reply)
}

impl State {
    /// Gmail accepting a message from `user`: checks it, applies Gmail's changes, records it
    /// and answers with the `Message` (or an injected failure).
    fn deliver(
        &mut self,
        user: &str,
        upload: Upload,
        submitted: Vec<u8>,
        thread_id: Option<String>,
    ) -> Result<Reply, GmailError> {
        if let Some(f) = self.fail_send.as_mut() {
            f.left = f.left.saturating_sub(1);
            let mut e = f.error.clone();
            if let Some(secs) = f.retry_after {
                e = e.header("Retry-After", secs.to_string());
            }
            if f.left == 0 {
                self.fail_send = None;
            }
            return Err(e);
        }
        let (fields, _) = mime::headers(&submitted).map_err(|e| match e {
            // No header section: nothing names a recipient.
            mime::HeaderError::NoHeaders => invalid_argument("Recipient address required"),
            // Not documented; the fake's text.
            mime::HeaderError::Malformed(line) => invalid_argument(format!(
                "Invalid RFC822 message: header line {line} is malformed."
            )),
        })?;
        let mut recipients = Vec::new();
        for kind in ["To", "Cc", "Bcc"] {
            for (_, value) in fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(kind)) {
                let list = mime::address_list(value)
                    .ok_or_else(|| invalid_argument(format!("Invalid {kind} header")))?;
                recipients.extend(list.into_iter().map(|(_, a)| a));
            }
        }
        if recipients.is_empty() {
            return Err(invalid_argument("Recipient address required"));
        }
        let from_value = fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("From"))
            .map(|(_, v)| v.clone());
        let from_address = match &from_value {
            None => None,
            Some(v) => match mime::address_list(v).as_deref() {
                Some([(_, a)]) => Some(a.clone()),
                // The text is the fake's choice.
                _ => return Err(invalid_argument("Invalid From header")),
            },
        };
        let aliases = self.send_as.get(&user.to_ascii_lowercase());
        let own = |a: &str| {
            a.eq_ignore_ascii_case(user)
                || aliases.is_some_and(|l| l.iter().any(|x| x.eq_ignore_ascii_case(a)))
        };
        let rewrite = from_address.as_deref().is_some_and(|a| !own(a));
        let eol = mime::line_end(&submitted);
        let bcc_header_present = fields.iter().any(|(n, _)| n.eq_ignore_ascii_case("Bcc"));
        let mut raw = mime::edit_fields(&submitted, |name, _| {
            if name.eq_ignore_ascii_case("Bcc") {
                Some(Vec::new())
            } else if rewrite && name.eq_ignore_ascii_case("From") {
                let original = from_value.clone().unwrap_or_default();
                Some(
                    format!("From: {user}{eol}X-Google-Original-From: {original}{eol}")
                        .into_bytes(),
                )
            } else {
                None
            }
        });
        if from_value.is_none() {
            // Gmail fills in the sender.
            raw = [format!("From: {user}{eol}").into_bytes(), raw].concat();
        }
        let id = hex(&random_bytes(8));
        let thread_id = thread_id
            .filter(|t| self.threads.contains(t))
            .unwrap_or_else(|| id.clone());
        self.threads.insert(thread_id.clone());
        let to_self = recipients.iter().any(|r| r.eq_ignore_ascii_case(user));
        let labels: Vec<&str> = if to_self {
            vec!["UNREAD", "SENT", "INBOX"]
        } else {
            vec!["SENT"]
        };
        self.sent.push(GmailSent {
            user: user.to_string(),
            upload,
            raw,
            submitted,
            recipients,
            from_header: if rewrite {
                user.to_string()
            } else {
                from_value.clone().unwrap_or_else(|| user.to_string())
            },
            original_from: rewrite.then(|| from_value.unwrap_or_default()),
            bcc_header_present,
            id: id.clone(),
            thread_id: thread_id.clone(),
        });
        Ok(google_json(
            200,
            &json!({"id": id, "threadId": thread_id, "labelIds": labels}),
        ))
    }
}
