//! A strict in-process fake of the Microsoft Entra ID identity platform, v2.0 endpoints:
//! `GET /{tenant}/oauth2/v2.0/authorize`, `POST /{tenant}/oauth2/v2.0/token`,
//! `POST /{tenant}/oauth2/v2.0/devicecode` and the user's `GET /devicelogin?code=…` page.
//!
//! A fake that accepts anything proves nothing, so this one enforces what Entra enforces and a
//! sloppy client gets wrong: registered clients only; the loopback redirect rule (port ignored,
//! scheme, host and path compared, a missing path means `/`); mandatory PKCE with S256;
//! single-use authorization codes bound to client, exact redirect URI, tenant, challenge and the
//! consented scopes; client authentication that matches the app type (public apps must not send
//! a secret, confidential ones must, never two methods at once); one resource per token request
//! (AADSTS700022) and consent per resource (AADSTS65001); rotating refresh tokens; RFC 8628
//! device polling with `slow_down`. Every error uses Entra's JSON shape (`error`,
//! `error_description` starting `AADSTSnnn:`, `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`, `error_uri`), so the client's error mapping is exercised as well.
//!
//!
//! App-only access (OAuth2 client credentials) for apps registered with
//! [`FakeEntra::add_app_client_secret`] or [`FakeEntra::add_app_client_certificate`]: a tenant
//! must be named (not `common`, `consumers` or `organizations`: AADSTS9001023), the client
//! authenticates with its secret or with a signed JWT assertion (PS256 with `x5t#S256`, or RS256
//! with `x5t`; signature checked against the registered RSA key; `aud` = the exact token URL,
//! `iss` = `sub` = client id, `nbf`/`exp` current and at most 10 minutes apart, single-use
//! `jti`), the scope is exactly one `{resource}/.default` (AADSTS1002012), and the answer has
//! no refresh token and no id_token. The token carries the app's application permissions
//! (roles), with an empty user and [`AccessTokenInfo::app`] set.
//!
//! Deliberately stricter than Entra: presenting a refresh token that was already rotated counts
//! as reuse and revokes every token of that sign-in (Entra tolerates the old one for a while).
//! That catches a client that forgets to store the new refresh token, or races itself. A client
//! assertion's `jti` is single-use for the fake's lifetime. Only apps registered for app-only
//! access may use the client-credentials grant (others get `unsupported_grant_type`), and an
//! unknown resource gets AADSTS500011 unless roles were set with [`FakeEntra::set_app_roles`].
//!
//! Tenant discovery, as a client finds a tenant from a mail address: the OpenID discovery
//! document `GET /{domain|tenant-id}/v2.0/.well-known/openid-configuration` of every tenant
//! added with [`FakeEntra::add_tenant`] (issuer with the tenant GUID, `cloud_instance_name`,
//! `tenant_region_scope`, `tenant_region_sub_scope`, `msgraph_host` as each national cloud
//! publishes them; an unknown domain gets 400 `invalid_tenant` AADSTS90002) and the user-realm
//! answer `GET /getuserrealm.srf?login=…&json=1` (`NameSpaceType` Managed, Federated with its
//! `FederationBrandName`, or Unknown). Apps registered through the fake Graph directory
//! ([`FakeEntra::hooks`]) can stay unknown to the token endpoint for a few requests
//! (AADSTS700016), as a new registration does while it replicates.
//!
//! It runs on the shared HTTP skeleton (`server.rs`); this file holds only what Entra does.

// Shared test support: no single test uses every knob.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{
    RSA_PKCS1_2048_8192_SHA256, RSA_PSS_2048_8192_SHA256, VerificationAlgorithm,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::http::percent_encode;
use super::oauth::{
    DeviceStatus, DeviceVerification, Form, OAuthStats, basic_credentials, challenge_ok,
    compact_jws, html_escape, is_form, param, parse_jws, parse_strict, query_param, redeem_code,
    redirect_location, sign_in_code, split_uri, verifier_ok,
};
pub use super::oauth::{TokenRequestLog, s256_challenge};
use super::server::{
    Reply, Request, Server, SharedState, Utc, guid, now_secs, random_bytes, random_token, uuid,
};

/// Entra treats a scope without a resource (`User.Read`) as a Microsoft Graph scope.
const GRAPH: &str = "https://graph.microsoft.com";
/// Tenant id of the fake's home (work) tenant; `common`, `organizations` and domain names map
/// to it, a GUID path segment stands for itself.
pub const HOME_TID: &str = "6f0c3a1e-2b4d-4e8f-9a7c-5d1e3b2a4c6f";
/// Microsoft's real consumer (MSA) tenant id; work accounts are not in it.
const CONSUMERS_TID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
const CODE_TTL: Duration = Duration::from_secs(600);
const DEVICE_TTL_SECS: u64 = 900;
const DEVICE_INTERVAL_SECS: u64 = 1;
/// Clients sleep a little less than asked sometimes (timer granularity); Entra is not that picky.
const POLL_TOLERANCE: Duration = Duration::from_millis(200);
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
const ID_TOKEN_LIFETIME_SECS: u64 = 3600;
/// 20 client processes may hit the fake at once; requests are short, a few workers suffice.
const WORKERS: usize = 4;
/// A token or device-code request is tiny; anything bigger is a client bug.
const MAX_BODY: u64 = 1 << 20;
const ACCESS_TOKEN_BYTES: usize = 1400;
const REFRESH_TOKEN_BYTES: usize = 900;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Longest a client assertion may be valid (`exp` after `nbf`/`iat`)...
const ASSERTION_MAX_LIFETIME_SECS: u64 = 600;
/// ...plus this much clock skew, which also applies to `nbf`/`iat` in the future.
const ASSERTION_SKEW_SECS: u64 = 60;
/// Exchange Online, the resource of app-only SMTP/IMAP/POP tokens.
const EXCHANGE: &str = "https://outlook.office365.com";

/// Counters and logs of what the fake answered.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// `/authorize` hits, grants and token requests, as the fake Google counts them too.
    pub oauth: OAuthStats,
    /// Successful `client_credentials` grants (app-only tokens issued).
    pub client_credentials_grants: u32,
    pub slow_downs: u32,
    /// Rotated refresh tokens presented again (each one revoked its family).
    pub refresh_reuse: u32,
    /// `"<error> AADSTS<n>"` of every Entra error answered (JSON, redirect or HTML page),
    /// including each `authorization_pending`.
    pub errors: Vec<String>,
    /// `"METHOD /path"` of requests answered 404 or 405 (not Entra errors, but always a bug).
    pub unrouted: Vec<String>,
    /// `"GET /path?query"` of every discovery-document and user-realm request.
    pub discovery_requests: Vec<String>,
}

/// A national cloud, as its discovery documents describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeCloud {
    Global,
    /// US Government Community Cloud: the global cloud, `tenant_region_sub_scope` `GCC`.
    Gcc,
    GccHigh,
    Dod,
    China,
}

impl FakeCloud {
    /// (login host, `cloud_instance_name`, `tenant_region_scope`, `tenant_region_sub_scope`,
    /// `msgraph_host`), as Microsoft's documents for each cloud publish them.
    fn document(
        self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static str,
    ) {
        match self {
            FakeCloud::Global => (
                "login.microsoftonline.com",
                "microsoftonline.com",
                "NA",
                None,
                "graph.microsoft.com",
            ),
            FakeCloud::Gcc => (
                "login.microsoftonline.com",
                "microsoftonline.com",
                "NA",
                Some("GCC"),
                "graph.microsoft.com",
            ),
            FakeCloud::GccHigh => (
                "login.microsoftonline.us",
                "microsoftonline.us",
                "USGov",
                Some("DODCON"),
                "graph.microsoft.us",
            ),
            FakeCloud::Dod => (
                "login.microsoftonline.us",
                "microsoftonline.us",
                "USGov",
                Some("DOD"),
                "dod-graph.microsoft.us",
            ),
            FakeCloud::China => (
                "login.partner.microsoftonline.cn",
                "partner.microsoftonline.cn",
                "AS",
                None,
                "microsoftgraph.chinacloudapi.cn",
            ),
        }
    }
}

/// A tenant the discovery endpoints know.
#[derive(Clone, Debug)]
pub struct TenantSpec {
    pub id: String,
    /// Verified domains; the first is the primary one.
    pub domains: Vec<String>,
    pub cloud: FakeCloud,
    /// `Some(brand)`: sign-in is federated to an on-premises IdP with this name.
    pub federation_brand: Option<String>,
}

/// Checks a bearer token against what this fake issued; shareable across threads.
pub type TokenValidator = Arc<dyn Fn(&str) -> Option<AccessTokenInfo> + Send + Sync>;

/// What an access token issued by the fake stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// Scheme and host of the resource, e.g. `https://graph.microsoft.com`.
    pub resource: String,
    /// Full scope strings, e.g. `https://graph.microsoft.com/Mail.Send`.
    pub scopes: Vec<String>,
    /// The signed-in user; empty for app-only tokens.
    pub user: String,
    pub client_id: String,
    /// The tenant that issued it (the JWT's `tid`).
    pub tid: String,
    pub expired: bool,
    /// An app-only token (client credentials): `scopes` are the app's application permissions
    /// (roles), `user` is empty.
    pub app: bool,
}

impl AccessTokenInfo {
    /// What `GET /_test/introspect` answers about the token (the SMTP fake reads it).
    fn introspection(&self) -> Value {
        json!({
            "resource": self.resource, "scopes": self.scopes, "user": self.user,
            "client_id": self.client_id, "expired": self.expired, "app": self.app,
        })
    }
}

/// Handle to a running fake; the server stops when it is dropped.
pub struct FakeEntra {
    shared: Arc<Shared>,
    server: Server,
}

type Shared = SharedState<State>;

struct Client {
    /// `None` = public client ("Mobile and desktop"), unless `app` has certificates;
    /// `Some` = confidential ("Web").
    secret: Option<String>,
    redirect_uris: Vec<String>,
    /// `Some` = registered for app-only access (the client-credentials grant).
    app: Option<AppRegistration>,
}

impl Client {
    fn confidential(&self) -> bool {
        self.secret.is_some() || self.app.is_some()
    }
}

#[derive(Default)]
struct AppRegistration {
    certificates: Vec<Certificate>,
    /// Application permissions per resource (`https://graph.microsoft.com` → `["Mail.Send"]`),
    /// overriding the defaults of [`default_roles`].
    roles: HashMap<String, Vec<String>>,
}

struct Certificate {
    /// base64url(SHA-1(DER)): the `x5t` header of RS256 assertions.
    x5t: String,
    /// base64url(SHA-256(DER)): the `x5t#S256` header of PS256 assertions.
    x5t_s256: String,
    /// PKCS#1 `RSAPublicKey`, DER.
    public_key: Vec<u8>,
}

/// A (resource, permission) pair the user consented to, e.g. (`https://graph.microsoft.com`,
/// `Mail.Send`).
type Consent = (String, String);

struct Code {
    client_id: String,
    redirect_uri: String,
    tenant: String,
    challenge: String,
    consent: Vec<Consent>,
    oidc: Vec<&'static str>,
    nonce: Option<String>,
    issued: Instant,
    redeemed: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Revoked {
    /// Like a password reset (AADSTS50173).
    Password,
    /// A rotated refresh token was presented again.
    Reuse,
}

/// Everything descending from one interactive sign-in.
struct Family {
    client_id: String,
    user: String,
    tid: String,
    consent: Vec<Consent>,
    oidc: Vec<&'static str>,
    revoked: Option<Revoked>,
}

#[derive(Clone)]
struct RefreshToken {
    family: usize,
    used: bool,
}

struct AccessToken {
    info: AccessTokenInfo,
    expires: Instant,
}

struct Device {
    user_code: String,
    client_id: String,
    tenant: String,
    consent: Vec<Consent>,
    oidc: Vec<&'static str>,
    issued: Instant,
    interval: Duration,
    last_poll: Option<Instant>,
    status: DeviceStatus,
    pending_answers: u32,
}

struct State {
    clients: HashMap<String, Client>,
    user: String,
    user_in_id_token: bool,
    access_token_lifetime: u64,
    /// About how long access tokens are (tokens with many group claims pass 4 KB).
    access_token_bytes: usize,
    /// Recognisable text put into every access token (its signature part) and refresh
    /// token issued, for tests that scan output for secrets.
    canaries: (Option<String>, Option<String>),
    /// Written into the `aud` claim of access tokens instead of their resource.
    jwt_audience: Option<String>,
    /// Seconds added to the `Date` header of every answer (a server clock that is off).
    date_skew: i64,
    fail_token: Option<OAuthError>,
    fail_authorize: Option<OAuthError>,
    auto_approve_after: Option<u32>,
    force_slow_down: bool,
    codes: HashMap<String, Code>,
    families: Vec<Family>,
    refresh_tokens: HashMap<String, RefreshToken>,
    access_tokens: HashMap<String, AccessToken>,
    /// Keyed by device_code.
    devices: HashMap<String, Device>,
    stats: Stats,
    secrets: Vec<String>,
    last_authorize: Option<Vec<(String, String)>>,
    /// `(client_id, jti)` of every accepted client assertion.
    used_jtis: HashSet<(String, String)>,
    tenants: Vec<TenantSpec>,
    /// Token requests each app registered through [`EntraHooks`] is still unknown for.
    replicating: HashMap<String, u32>,
    new_app_propagation: u32,
}

/// An Entra error answer before it is rendered.
#[derive(Clone, Debug)]
struct OAuthError {
    status: u16,
    error: String,
    code: u32,
    text: String,
}

fn oauth_error(status: u16, error: &str, code: u32, text: impl Into<String>) -> OAuthError {
    OAuthError {
        status,
        error: error.to_string(),
        code,
        text: text.into(),
    }
}

fn invalid_request(code: u32, text: impl Into<String>) -> OAuthError {
    oauth_error(400, "invalid_request", code, text)
}

fn invalid_grant(code: u32, text: impl Into<String>) -> OAuthError {
    oauth_error(400, "invalid_grant", code, text)
}

/// A grant (`what`: "authorization code", …) presented by a client it was not issued to.
fn other_client(what: &str) -> OAuthError {
    invalid_grant(
        70000,
        format!(
            "The provided grant is invalid or malformed: the {what} was issued to a different client."
        ),
    )
}

/// A grant redeemed at another tenant than the one that issued it.
fn other_tenant(what: &str) -> OAuthError {
    invalid_grant(
        700005,
        format!("Provided {what} is intended to use against other tenant, thus rejected."),
    )
}

fn missing(param: &str) -> OAuthError {
    invalid_request(
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

fn malformed() -> OAuthError {
    invalid_request(9002313, "Invalid request. Request is malformed or invalid.")
}

fn no_credential() -> OAuthError {
    oauth_error(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )
}

fn invalid_secret(client_id: &str) -> OAuthError {
    oauth_error(
        401,
        "invalid_client",
        7000215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
        ),
    )
}

fn unknown_client(client_id: &str) -> OAuthError {
    oauth_error(
        400,
        "unauthorized_client",
        700016,
        format!(
            "Application with identifier '{client_id}' was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."
        ),
    )
}

/// A client assertion that does not verify: bad shape, header, key, signature or claims.
fn bad_assertion(reason: impl std::fmt::Display) -> OAuthError {
    oauth_error(
        401,
        "invalid_client",
        700027,
        format!("Client assertion failed signature validation. [Reason - {reason}]"),
    )
}

fn assertion_time(reason: impl std::fmt::Display) -> OAuthError {
    oauth_error(
        401,
        "invalid_client",
        700024,
        format!("Client assertion is not within its valid time range. [Reason - {reason}]"),
    )
}

/// HTTP Basic client credentials (RFC 6749 2.3.1): `None` without an Authorization header.
fn parse_basic(authorization: Option<&str>) -> Result<Option<(String, String)>, OAuthError> {
    basic_credentials(authorization).map_err(|()| malformed())
}

/// The resource (`scheme://host`, lower-cased) of a client-credentials scope, which must be
/// exactly one `{resource}/.default`.
fn app_scope_resource(scope: &str) -> Option<String> {
    let mut words = scope.split(' ').filter(|w| !w.is_empty());
    let (Some(word), None) = (words.next(), words.next()) else {
        return None;
    };
    // Scope values are case-insensitive.
    let cut = word.len().checked_sub("/.default".len())?;
    let base = word
        .get(cut..)
        .filter(|s| s.eq_ignore_ascii_case("/.default"))
        .and(word.get(..cut))?;
    let (scheme, host) = base.split_once("://")?;
    if scheme.is_empty() || host.is_empty() || host.contains('/') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        host.to_ascii_lowercase()
    ))
}

/// Application permissions an app-only registration has by default for a resource.
fn default_roles(resource: &str) -> Option<Vec<String>> {
    match resource {
        GRAPH => Some(vec!["Mail.Send".to_string()]),
        EXCHANGE => Some(vec!["SMTP.SendAsApp".to_string()]),
        _ => None,
    }
}

impl FakeEntra {
    /// Starts the fake on `127.0.0.1:<ephemeral port>` with no clients registered.
    pub fn start() -> FakeEntra {
        let shared = Arc::new(Shared::new(State {
            clients: HashMap::new(),
            user: "ada@contoso.example".to_string(),
            user_in_id_token: true,
            access_token_lifetime: 3599,
            access_token_bytes: ACCESS_TOKEN_BYTES,
            canaries: (None, None),
            jwt_audience: None,
            date_skew: 0,
            fail_token: None,
            fail_authorize: None,
            auto_approve_after: None,
            force_slow_down: false,
            codes: HashMap::new(),
            families: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            devices: HashMap::new(),
            stats: Stats::default(),
            secrets: Vec::new(),
            last_authorize: None,
            used_jtis: HashSet::new(),
            tenants: Vec::new(),
            replicating: HashMap::new(),
            new_app_propagation: 0,
        }));
        let handler = Arc::clone(&shared);
        let server = Server::start("fake Entra", WORKERS, move |req| handle(&handler, req));
        FakeEntra { shared, server }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn authority(&self) -> String {
        self.server.url().to_string()
    }

    /// Registers a "Mobile and desktop applications" app (public client, public client flows
    /// allowed, so device code works).
    pub fn add_public_client(&self, client_id: &str, redirect_uris: &[&str]) {
        self.shared.lock().clients.insert(
            client_id.to_string(),
            Client {
                secret: None,
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
                app: None,
            },
        );
    }

    /// Registers a "Web" app (confidential client: every token request must carry the secret).
    pub fn add_confidential_client(&self, client_id: &str, secret: &str, redirect_uris: &[&str]) {
        let mut st = self.shared.lock();
        st.secrets.push(secret.to_string());
        st.clients.insert(
            client_id.to_string(),
            Client {
                secret: Some(secret.to_string()),
                redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
                app: None,
            },
        );
    }

    /// Registers (or extends) a confidential app allowed the client-credentials grant,
    /// authenticating with `secret` (in the body or HTTP Basic). It has no redirect URIs, so
    /// no delegated flow works for it.
    pub fn add_app_client_secret(&self, client_id: &str, secret: &str) {
        let mut st = self.shared.lock();
        st.secrets.push(secret.to_string());
        let client = st.app_client(client_id);
        client.secret = Some(secret.to_string());
    }

    /// Registers (or extends, e.g. for a certificate rollover) an app allowed the
    /// client-credentials grant with a certificate credential: `cert_der` is the X.509
    /// certificate (its thumbprints name the key in assertions), `rsa_public_key_pkcs1_der` its
    /// RSA public key as PKCS#1 `RSAPublicKey` DER (`openssl rsa -RSAPublicKey_out -outform DER`).
    pub fn add_app_client_certificate(
        &self,
        client_id: &str,
        cert_der: &[u8],
        rsa_public_key_pkcs1_der: &[u8],
    ) {
        let certificate = Certificate {
            x5t: URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                cert_der,
            )),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der)),
            public_key: rsa_public_key_pkcs1_der.to_vec(),
        };
        let mut st = self.shared.lock();
        let client = st.app_client(client_id);
        if let Some(app) = client.app.as_mut() {
            app.certificates.push(certificate);
        }
    }

    /// The application permissions app-only tokens of `client_id` get for `resource`
    /// (e.g. `https://graph.microsoft.com`, `["Mail.Send", "Mail.ReadWrite"]`); an empty list
    /// issues tokens without any. Defaults: Graph `Mail.Send`, `https://outlook.office365.com`
    /// `SMTP.SendAsApp`, other resources unknown (AADSTS500011). Registers the app for app-only
    /// access if it was not.
    pub fn set_app_roles(&self, client_id: &str, resource: &str, roles: &[&str]) {
        let mut st = self.shared.lock();
        let client = st.app_client(client_id);
        if let Some(app) = client.app.as_mut() {
            app.roles.insert(
                resource.trim_end_matches('/').to_ascii_lowercase(),
                roles.iter().map(|r| r.to_string()).collect(),
            );
        }
    }

    /// The user who signs in from now on (default `ada@contoso.example`).
    pub fn set_user(&self, upn: &str) {
        self.shared.lock().user = upn.to_string();
    }

    /// `false`: id_tokens carry neither `preferred_username` nor `email`.
    pub fn set_user_in_id_token(&self, on: bool) {
        self.shared.lock().user_in_id_token = on;
    }

    /// Access tokens issued from now on claim this audience (`aud`), whatever resource
    /// they were issued for: a token the client would send to the wrong server.
    pub fn set_jwt_audience(&self, aud: Option<&str>) {
        self.shared.lock().jwt_audience = aud.map(str::to_owned);
    }

    /// Answers carry a `Date` this many seconds off the real time.
    pub fn set_date_skew(&self, secs: i64) {
        self.shared.lock().date_skew = secs;
    }

    /// `expires_in` of access tokens issued from now on (default 3599).
    pub fn set_access_token_lifetime(&self, secs: u64) {
        self.shared.lock().access_token_lifetime = secs;
    }

    /// The approximate length of access tokens issued from now on (default 1400 bytes).
    pub fn set_access_token_size(&self, bytes: usize) {
        self.shared.lock().access_token_bytes = bytes;
    }

    /// Access tokens issued from now on carry `access` (at the start of their signature
    /// part), refresh tokens start with `refresh`: text a secrets scan recognises. Both must
    /// be base64url characters, as the rest of the tokens are.
    pub fn set_canaries(&self, access: &str, refresh: &str) {
        self.shared.lock().canaries = (Some(access.to_owned()), Some(refresh.to_owned()));
    }

    /// The next request to the token endpoint (that has a readable form body) is answered with
    /// this Entra-shaped error, before anything is checked or consumed.
    pub fn fail_next_token_request(&self, status: u16, error: &str, aadsts: u32, text: &str) {
        self.shared.lock().fail_token = Some(oauth_error(status, error, aadsts, text));
    }

    /// The next `/authorize` with a valid client and redirect URI redirects back with this error.
    pub fn fail_next_authorize(&self, error: &str, aadsts: u32, text: &str) {
        self.shared.lock().fail_authorize = Some(oauth_error(302, error, aadsts, text));
    }

    /// Like a password change: every refresh token issued so far answers AADSTS50173.
    pub fn revoke_all_refresh_tokens(&self) {
        for f in &mut self.shared.lock().families {
            f.revoked.get_or_insert(Revoked::Password);
        }
    }

    /// Device codes get approved after that many `authorization_pending` answers (0 = at the
    /// first poll). Default: only [`DeviceVerification::approve_device_code`] or
    /// `/devicelogin` approve.
    pub fn set_device_auto_approve_after(&self, pending_polls: u32) {
        self.shared.lock().auto_approve_after = Some(pending_polls);
    }

    /// The next device poll (for a known device code) answers `slow_down`.
    pub fn force_slow_down_once(&self) {
        self.shared.lock().force_slow_down = true;
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Every code, access token, refresh token and device_code issued, client secrets registered
    /// or presented, and PKCE verifiers seen: none of them may ever show up in logs or output.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.shared.lock().secrets.clone()
    }

    pub fn access_token_info(&self, token: &str) -> Option<AccessTokenInfo> {
        self.shared.lock().introspect(token)
    }

    /// A thread-safe token checker for other in-process fakes (Graph), which outlives
    /// borrows of this handle.
    pub fn validator(&self) -> TokenValidator {
        let shared = Arc::clone(&self.shared);
        Arc::new(move |token: &str| shared.lock().introspect(token))
    }

    /// Makes a tenant known to discovery (its domains and GUID).
    pub fn add_tenant(&self, spec: TenantSpec) {
        self.shared.lock().tenants.push(spec);
    }

    /// Apps registered from now on through [`Self::hooks`] answer AADSTS700016 to their
    /// first `n` token requests, as a new registration does until it has replicated.
    pub fn set_new_app_propagation(&self, n: u32) {
        self.shared.lock().new_app_propagation = n;
    }

    /// What the fake Graph directory tells this Entra when it registers an app.
    pub fn hooks(&self) -> EntraHooks {
        EntraHooks {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Decoded query pairs of the last `/authorize` hit whose query was parseable.
    pub fn last_authorize_query(&self) -> Option<Vec<(String, String)>> {
        self.shared.lock().last_authorize.clone()
    }

    /// A complete sign-in over HTTP, as a well-behaved public client does it (`/authorize`
    /// with PKCE at `organizations`, then the code redemption), for tests that need real
    /// tokens: the user consents to `consent`, the redemption asks for `scope`. Returns the
    /// token endpoint's JSON answer; `redirect_uri` must be registered for `client_id`.
    pub fn sign_in(
        &self,
        client_id: &str,
        redirect_uri: &str,
        consent: &str,
        scope: &str,
    ) -> Value {
        let endpoint =
            |name: &str| format!("{}/organizations/oauth2/v2.0/{name}", self.authority());
        let code = sign_in_code(
            &endpoint("authorize"),
            client_id,
            redirect_uri,
            consent,
            &[],
        );
        let scope = [("scope", scope)];
        redeem_code(&endpoint("token"), client_id, &code, redirect_uri, &scope)
    }
}

impl DeviceVerification for FakeEntra {
    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> bool {
        self.shared.lock().set_device_status(user_code, status)
    }
}

/// The fake Graph directory's side door into this Entra: an app registered, a credential
/// uploaded or an application permission granted through Graph reaches the token endpoint,
/// as in the real service (after the replication delay of [`FakeEntra::set_new_app_propagation`]).
#[derive(Clone)]
pub struct EntraHooks {
    shared: Arc<Shared>,
}

impl EntraHooks {
    /// A new app registration: a public client with these redirect URIs, or (no URIs) a
    /// confidential app for app-only access with no credential and no application
    /// permissions yet.
    pub fn register_app(&self, client_id: &str, public_redirect_uris: &[String]) {
        let mut st = self.shared.lock();
        let n = st.new_app_propagation;
        if n > 0 {
            st.replicating.insert(client_id.to_string(), n);
        }
        if public_redirect_uris.is_empty() {
            let client = st.app_client(client_id);
            if let Some(app) = client.app.as_mut() {
                app.roles.insert(GRAPH.to_string(), Vec::new());
                app.roles.insert(EXCHANGE.to_string(), Vec::new());
            }
        } else {
            st.clients.insert(
                client_id.to_string(),
                Client {
                    secret: None,
                    redirect_uris: public_redirect_uris.to_vec(),
                    app: None,
                },
            );
        }
    }

    /// A certificate uploaded as a key credential (DER); its RSA key verifies assertions.
    pub fn add_certificate(&self, client_id: &str, cert_der: &[u8]) -> Result<(), String> {
        let public_key = rsa_public_key_of(cert_der)?;
        let certificate = Certificate {
            x5t: URL_SAFE_NO_PAD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                cert_der,
            )),
            x5t_s256: URL_SAFE_NO_PAD.encode(Sha256::digest(cert_der)),
            public_key,
        };
        let mut st = self.shared.lock();
        if let Some(app) = st.app_client(client_id).app.as_mut() {
            app.certificates.push(certificate);
        }
        Ok(())
    }

    /// A client secret made by `addPassword`.
    pub fn add_secret(&self, client_id: &str, secret: &str) {
        let mut st = self.shared.lock();
        st.secrets.push(secret.to_string());
        st.app_client(client_id).secret = Some(secret.to_string());
    }

    /// An application permission assigned (`appRoleAssignedTo`) on `resource`.
    pub fn grant_role(&self, client_id: &str, resource: &str, role: &str) {
        let mut st = self.shared.lock();
        if let Some(app) = st.app_client(client_id).app.as_mut() {
            let roles = app.roles.entry(resource.to_string()).or_default();
            if !roles.iter().any(|r| r == role) {
                roles.push(role.to_string());
            }
        }
    }
}

/// The PKCS#1 `RSAPublicKey` (DER) of an X.509 certificate, read with the openssl CLI as an
/// Entra key credential upload would be parsed.
fn rsa_public_key_of(cert_der: &[u8]) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("cert.der"), cert_der).map_err(|e| e.to_string())?;
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .map_err(|e| format!("openssl: {e}"))?;
        match out.status.success() {
            true => Ok(()),
            false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        }
    };
    run(&[
        "x509", "-inform", "DER", "-in", "cert.der", "-noout", "-pubkey", "-out", "pub.pem",
    ])?;
    run(&[
        "rsa",
        "-pubin",
        "-in",
        "pub.pem",
        "-RSAPublicKey_out",
        "-outform",
        "DER",
        "-out",
        "pub.der",
    ])?;
    std::fs::read(dir.path().join("pub.der")).map_err(|e| e.to_string())
}

fn handle(shared: &Shared, req: &mut Request) -> Reply {
    let reply = route(shared, req);
    let skew = shared.lock().date_skew;
    match skew {
        0 => reply,
        s => reply.with_header(
            "Date",
            Utc::at(now_secs().saturating_add_signed(s)).http_date(),
        ),
    }
}

fn route(shared: &Shared, req: &mut Request) -> Reply {
    let path = req.path().to_string();
    let query = req.query().to_string();
    let get = req.method() == "GET";
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();

    match segments.as_slice() {
        [
            tenant,
            "oauth2",
            "v2.0",
            endpoint @ ("authorize" | "token" | "devicecode"),
        ] if !tenant.is_empty() => match *endpoint {
            "authorize" if !get => unrouted(shared, req, 405),
            "authorize" => shared.lock().authorize(tenant, &query),
            _ => {
                let body = req.read_body(MAX_BODY).ok();
                let request = FormRequest {
                    tenant,
                    method: req.method(),
                    content_type: req.header("Content-Type"),
                    authorization: req.header("Authorization"),
                    body: body.as_deref(),
                };
                let mut st = shared.lock();
                let result = if *endpoint == "token" {
                    st.token(req.origin(), &request)
                } else {
                    st.devicecode(req.origin(), &request)
                };
                match result {
                    Ok(v) => no_store_json(200, &v),
                    Err(e) => st.error_reply(&e, req.header("client-request-id")),
                }
            }
        },
        [tenant, "v2.0", ".well-known", "openid-configuration"] if get && !tenant.is_empty() => {
            let mut st = shared.lock();
            st.stats.discovery_requests.push(req.line());
            st.discovery(tenant)
        }
        ["getuserrealm.srf"] if get => {
            let mut st = shared.lock();
            st.stats.discovery_requests.push(req.line());
            st.user_realm(&query)
        }
        ["devicelogin"] if !get => unrouted(shared, req, 405),
        ["devicelogin"] => shared.lock().devicelogin(&query),
        // Test-only introspection, for fakes in other processes (the SMTP server) that must
        // check a bearer token the way Exchange would: GET /_test/introspect?token=...
        ["_test", "introspect"] if get => {
            match shared.lock().introspect(&query_param(&query, "token")) {
                Some(info) => no_store_json(200, &info.introspection()),
                None => no_store_json(404, &json!({"error": "unknown token"})),
            }
        }
        _ => unrouted(shared, req, 404),
    }
}

/// Entra's JSON answers are never cached.
fn no_store_json(status: u16, v: &Value) -> Reply {
    Reply::json(status, v)
        .with_header("Cache-Control", "no-store, no-cache")
        .with_header("Pragma", "no-cache")
}

/// The redirect back to the client (a code or an error), never cached either.
fn no_store_redirect(location: String) -> Reply {
    Reply::redirect(location).with_header("Cache-Control", "no-store, no-cache")
}

fn unrouted(shared: &Shared, req: &Request, status: u16) -> Reply {
    shared.lock().stats.unrouted.push(req.line());
    Reply::no_route(status)
}

/// What a delegated grant (code, refresh, device code) is redeemed with.
#[derive(Clone, Copy)]
struct Grant<'a> {
    /// The fake's own URL, the issuer of id_tokens.
    authority: &'a str,
    /// The tenant path segment of the token request.
    tenant: &'a str,
    /// The authenticated client.
    client_id: &'a str,
    form: &'a Form,
}

/// The parts of a token or devicecode request the handlers look at.
struct FormRequest<'a> {
    tenant: &'a str,
    method: &'a str,
    content_type: Option<&'a str>,
    authorization: Option<&'a str>,
    /// `None` when the body could not be read.
    body: Option<&'a [u8]>,
}

fn need<'a>(form: &'a Form, key: &str) -> Result<&'a str, OAuthError> {
    param(form, key).ok_or_else(|| missing(key))
}

impl FormRequest<'_> {
    fn form(&self) -> Option<Form> {
        parse_strict(std::str::from_utf8(self.body?).ok()?)
    }

    fn check_method_and_type(&self) -> Result<Form, OAuthError> {
        if self.method != "POST" {
            return Err(invalid_request(
                900561,
                format!(
                    "The endpoint only accepts POST requests. Received a {} request.",
                    self.method
                ),
            ));
        }
        if !is_form(self.content_type) {
            // Entra cannot read a non-form body, so it reports the first parameter it misses.
            return Err(missing("grant_type"));
        }
        self.form().ok_or_else(malformed)
    }
}

/// One parsed scope.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
    Oidc(&'static str),
    Api(Consent),
}

/// Splits a space-separated scope list. `Err(token)` for a scope that names a resource but no
/// permission (or a nested path), which Entra rejects as AADSTS70011.
fn parse_scopes(s: &str) -> Result<Vec<Scope>, String> {
    let mut out: Vec<Scope> = Vec::new();
    for tok in s.split(' ').filter(|t| !t.is_empty()) {
        let scope = if let Some(o) = OIDC_SCOPES.iter().find(|o| o.eq_ignore_ascii_case(tok)) {
            Scope::Oidc(o)
        } else if let Some((scheme, after)) = tok.split_once("://") {
            let (host, perm) = after.split_once('/').ok_or_else(|| tok.to_string())?;
            if scheme.is_empty() || host.is_empty() || perm.is_empty() || perm.contains('/') {
                return Err(tok.to_string());
            }
            Scope::Api((
                format!(
                    "{}://{}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase()
                ),
                perm.to_string(),
            ))
        } else {
            Scope::Api((GRAPH.to_string(), tok.to_string()))
        };
        if !out.contains(&scope) {
            out.push(scope);
        }
    }
    Ok(out)
}

fn split_scopes(scopes: Vec<Scope>) -> (Vec<Consent>, Vec<&'static str>) {
    let mut consent = Vec::new();
    let mut oidc = Vec::new();
    for s in scopes {
        match s {
            Scope::Oidc(o) => oidc.push(o),
            Scope::Api(c) => consent.push(c),
        }
    }
    (consent, oidc)
}

fn invalid_scope_token(tok: &str) -> OAuthError {
    oauth_error(
        400,
        "invalid_scope",
        70011,
        format!(
            "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid: '{tok}'."
        ),
    )
}

/// Decides which resource a token request gets and with which scopes: one resource only, the
/// first consented one when none is named, and nothing beyond what the user consented to.
fn resolve_scope(
    requested: Option<&str>,
    consent: &[Consent],
    client_id: &str,
) -> Result<(String, Vec<String>), OAuthError> {
    let mut wanted: Vec<Consent> = Vec::new();
    if let Some(req) = requested {
        let scopes = parse_scopes(req).map_err(|t| invalid_scope_token(&t))?;
        (wanted, _) = split_scopes(scopes);
    }
    let mut resources: Vec<&str> = Vec::new();
    for (r, _) in &wanted {
        if !resources.contains(&r.as_str()) {
            resources.push(r);
        }
    }
    if resources.len() > 1 {
        return Err(oauth_error(
            400,
            "invalid_scope",
            700022,
            "The provided value for the input parameter scope is not valid because it contains more than one resource. Scope "
                .to_string()
                + requested.unwrap_or_default()
                + " is not valid.",
        ));
    }
    let resource = match resources.first() {
        Some(r) => r.to_string(),
        None => match consent.first() {
            Some((r, _)) => r.clone(),
            // A sign-in with only OIDC scopes still yields a Graph token for User.Read.
            None => return Ok((GRAPH.to_string(), vec![format!("{GRAPH}/User.Read")])),
        },
    };
    if wanted.iter().any(|(_, p)| p == ".default") && wanted.len() > 1 {
        return Err(oauth_error(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided value for the input parameter 'scope' is not valid. The scope {} is not valid. static scope limit exceeded.",
                requested.unwrap_or_default()
            ),
        ));
    }
    let consented: Vec<&str> = consent
        .iter()
        .filter(|(r, _)| *r == resource)
        .map(|(_, p)| p.as_str())
        .collect();
    let covers = |p: &str| {
        p == ".default"
            || consented.contains(&".default")
            || consented.iter().any(|c| c.eq_ignore_ascii_case(p))
    };
    if consented.is_empty() || !wanted.iter().all(|(_, p)| covers(p)) {
        return Err(invalid_grant(
            65001,
            format!(
                "The user or administrator has not consented to use the application with ID '{client_id}' named 'mailer'. Send an interactive authorization request for this user and resource."
            ),
        ));
    }
    let granted = consented
        .iter()
        .map(|p| format!("{resource}/{p}"))
        .collect();
    Ok((resource, granted))
}

/// The tenant id a tenant path segment stands for.
impl State {
    /// The tenant id tokens requested at `/{tenant}/…` carry: a registered tenant's own,
    /// else [`tid_of`]'s.
    fn tid_of(&self, tenant: &str) -> String {
        match self.tenant(tenant) {
            Some(t) => t.id.to_ascii_lowercase(),
            None => tid_of(tenant),
        }
    }
}

fn tid_of(tenant: &str) -> String {
    if tenant.eq_ignore_ascii_case("consumers") {
        CONSUMERS_TID.to_string()
    } else if is_guid(tenant) {
        tenant.to_ascii_lowercase()
    } else {
        HOME_TID.to_string()
    }
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Entra's rule: for `http://localhost` and `http://127.0.0.1` registrations the port is
/// ignored; everything else must match exactly.
fn redirect_matches(registered: &str, requested: &str) -> bool {
    let (Some(reg), Some(req)) = (split_uri(registered), split_uri(requested)) else {
        return false;
    };
    let loopback = reg.scheme == "http" && (reg.host == "localhost" || reg.host == "127.0.0.1");
    if loopback {
        req.scheme == reg.scheme && req.host == reg.host && req.rest == reg.rest
    } else {
        registered == requested
    }
}

impl State {
    fn error_reply(&mut self, e: &OAuthError, correlation: Option<&str>) -> Reply {
        self.stats
            .errors
            .push(format!("{} AADSTS{}", e.error, e.code));
        let trace = uuid();
        // Entra echoes the client's client-request-id as the correlation id.
        let correlation = correlation
            .filter(|c| is_guid(c))
            .map(str::to_string)
            .unwrap_or_else(uuid);
        let ts = utc_timestamp();
        let body = json!({
            "error": e.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
                e.code, e.text
            ),
            "error_codes": [e.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", e.code),
        });
        no_store_json(e.status, &body)
    }

    /// Entra shows an error page (it cannot trust the redirect URI) for client and redirect
    /// problems.
    fn error_page(&mut self, error: &str, code: u32, text: &str) -> Reply {
        self.stats.errors.push(format!("{error} AADSTS{code}"));
        Reply::html(
            400,
            format!(
                "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>\
                 <h1>Sorry, but we're having trouble signing you in.</h1>\
                 <p id=\"error\">AADSTS{code}: {}</p><p>Trace ID: {}</p><p>Timestamp: {}</p>\
                 </body></html>",
                html_escape(text),
                uuid(),
                utc_timestamp()
            ),
        )
    }

    fn redirect_error(&mut self, redirect_uri: &str, state: Option<&str>, e: &OAuthError) -> Reply {
        self.stats
            .errors
            .push(format!("{} AADSTS{}", e.error, e.code));
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
            e.code,
            e.text,
            uuid(),
            uuid(),
            utc_timestamp()
        );
        let mut params = vec![
            ("error", e.error.as_str()),
            ("error_description", description.as_str()),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        no_store_redirect(redirect_location(redirect_uri, &params))
    }

    /// The tenant a path segment names; the one added last wins, so a test can move a
    /// domain to another tenant.
    fn tenant(&self, segment: &str) -> Option<&TenantSpec> {
        self.tenants.iter().rev().find(|t| {
            t.id.eq_ignore_ascii_case(segment)
                || t.domains.iter().any(|d| d.eq_ignore_ascii_case(segment))
        })
    }

    /// The tenant's OpenID Connect discovery document, as Entra publishes it.
    fn discovery(&mut self, segment: &str) -> Reply {
        let Some(t) = self.tenant(segment).cloned() else {
            let e = oauth_error(
                400,
                "invalid_tenant",
                90002,
                format!(
                    "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                ),
            );
            return self.error_reply(&e, None);
        };
        let (host, instance, region, sub_scope, graph) = t.cloud.document();
        let id = t.id.to_ascii_lowercase();
        let base = format!("https://{host}/{id}");
        let mut doc = json!({
            "token_endpoint": format!("{base}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("https://{host}/{id}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": format!("https://{graph}/oidc/userinfo"),
            "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": format!("{base}/kerberos"),
            "tenant_region_scope": region,
            "cloud_instance_name": instance,
            "cloud_graph_host_name": if t.cloud == FakeCloud::China { "graph.chinacloudapi.cn" } else { "graph.windows.net" },
            "msgraph_host": graph,
            "rbac_url": "https://pas.windows.net",
        });
        if let Some(sub) = sub_scope {
            doc["tenant_region_sub_scope"] = json!(sub);
        }
        Reply::json(200, &doc).with_header("Cache-Control", "max-age=86400, private")
    }

    /// `getuserrealm.srf?login=…&json=1`: how the address signs in.
    fn user_realm(&mut self, query: &str) -> Reply {
        let q = parse_strict(query).unwrap_or_default();
        let (Some(login), Some("1")) = (param(&q, "login"), param(&q, "json")) else {
            // Without json=1 the answer is XML; no client of this fake should want that.
            return Reply::plain(400, "login and json=1 are required");
        };
        let domain = login.rsplit_once('@').map_or(login, |(_, d)| d);
        let v = match self.tenant(domain) {
            None => {
                json!({ "State": 4, "UserState": 1, "Login": login, "NameSpaceType": "Unknown" })
            }
            Some(t) => {
                let (_, instance, ..) = t.cloud.document();
                let domain = t
                    .domains
                    .iter()
                    .find(|d| d.eq_ignore_ascii_case(domain))
                    .cloned()
                    .unwrap_or_default();
                match &t.federation_brand {
                    None => json!({
                        "State": 4, "UserState": 1, "Login": login, "NameSpaceType": "Managed",
                        "DomainName": domain, "FederationBrandName": domain, "CloudInstanceName": instance,
                    }),
                    Some(brand) => json!({
                        "State": 3, "UserState": 2, "Login": login, "NameSpaceType": "Federated",
                        "DomainName": domain, "FederationGlobalVersion": -1,
                        "AuthURL": format!("https://sts.{domain}/adfs/ls/?username={}&wa=wsignin1.0&wtrealm=urn%3afederation%3aMicrosoftOnline&wctx=", percent_encode(login)),
                        "FederationBrandName": brand, "CloudInstanceName": instance,
                    }),
                }
            }
        };
        Reply::json(200, &v)
    }

    fn authorize(&mut self, tenant: &str, query: &str) -> Reply {
        self.stats.oauth.authorize += 1;
        let Some(q) = parse_strict(query) else {
            return self.error_page(
                "invalid_request",
                9002313,
                "Invalid request. Request is malformed or invalid.",
            );
        };
        self.last_authorize = Some(q.clone());
        let raw = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());

        let Some(client_id) = param(&q, "client_id").map(str::to_string) else {
            return self.error_page(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            );
        };
        let Some(client) = self.clients.get(&client_id) else {
            return self.error_page(
                "unauthorized_client",
                700016,
                &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
            );
        };
        let Some(redirect_uri) = param(&q, "redirect_uri").map(str::to_string) else {
            return self.error_page(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'redirect_uri'.",
            );
        };
        if !client
            .redirect_uris
            .iter()
            .any(|r| redirect_matches(r, &redirect_uri))
        {
            return self.error_page(
                "invalid_request",
                50011,
                &format!("The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."),
            );
        }

        // From here on errors go back to the (now trusted) redirect URI, with the state.
        let state = raw("state");
        let state = state.as_deref();
        if let Some(e) = self.fail_authorize.take() {
            return self.redirect_error(&redirect_uri, state, &e);
        }
        let checks = || -> Result<(Vec<Consent>, Vec<&'static str>, String), OAuthError> {
            match param(&q, "response_type") {
                None => return Err(missing("response_type")),
                Some("code") => {}
                Some(other) => {
                    return Err(oauth_error(
                        302,
                        "unsupported_response_type",
                        700054,
                        format!("response_type '{other}' is not enabled for the application."),
                    ));
                }
            }
            if let Some(mode) = param(&q, "response_mode")
                && mode != "query"
            {
                // The CLI's loopback listener only sees GET query parameters.
                return Err(invalid_request(
                    9002313,
                    format!(
                        "Invalid request. response_mode '{mode}' is not supported by this client's redirect."
                    ),
                ));
            }
            let scope = param(&q, "scope").ok_or_else(|| missing("scope"))?;
            let scopes = parse_scopes(scope).map_err(|t| invalid_scope_token(&t))?;
            let challenge = param(&q, "code_challenge").ok_or_else(|| {
                invalid_request(
                    501491,
                    "Invalid size of Code_Challenge parameter. (PKCE is required: send code_challenge and code_challenge_method=S256.)",
                )
            })?;
            if !challenge_ok(challenge) {
                return Err(invalid_request(
                    501491,
                    "Invalid size of Code_Challenge parameter.",
                ));
            }
            if param(&q, "code_challenge_method") != Some("S256") {
                return Err(invalid_request(
                    501491,
                    "Invalid code_challenge_method: only S256 is accepted for this application (plain or missing is not allowed).",
                ));
            }
            let (consent, oidc) = split_scopes(scopes);
            Ok((consent, oidc, challenge.to_string()))
        };
        let (consent, oidc, challenge) = match checks() {
            Ok(v) => v,
            Err(e) => return self.redirect_error(&redirect_uri, state, &e),
        };

        let code = self.new_secret(48);
        self.codes.insert(
            code.clone(),
            Code {
                client_id,
                redirect_uri: redirect_uri.clone(),
                tenant: tenant.to_string(),
                challenge,
                consent,
                oidc,
                nonce: param(&q, "nonce").map(str::to_string),
                issued: Instant::now(),
                redeemed: false,
            },
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(s) = state {
            params.push(("state", s));
        }
        no_store_redirect(redirect_location(&redirect_uri, &params))
    }

    /// Client authentication per RFC 6749 2.3.1 and Entra's app-type rules. Returns the client id.
    fn authenticate(
        &mut self,
        form: &Form,
        authorization: Option<&str>,
    ) -> Result<String, OAuthError> {
        let basic = parse_basic(authorization)?;
        if param(form, "client_assertion").is_some() {
            return Err(invalid_request(
                9002313,
                "Invalid request. client_assertion is not supported by this fake.",
            ));
        }
        if basic.is_some() && param(form, "client_secret").is_some() {
            return Err(invalid_request(
                9002313,
                "Invalid request. The client used more than one authentication method (client_secret in the body and an Authorization header).",
            ));
        }
        let (client_id, secret) = self.presented_credentials(form, basic)?;
        let Some(client) = self.clients.get(&client_id) else {
            return Err(unknown_client(&client_id));
        };
        match (&client.secret, &secret) {
            // An app whose only credential is a certificate: a secret is simply wrong.
            (None, Some(_)) if client.confidential() => Err(invalid_secret(&client_id)),
            (None, None) if client.confidential() => Err(no_credential()),
            (None, Some(_)) => Err(oauth_error(
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )),
            (Some(_), None) => Err(no_credential()),
            (Some(expected), Some(given)) if expected != given => Err(invalid_secret(&client_id)),
            _ => Ok(client_id),
        }
    }

    /// The client id and the secret (if any) a token request presents: from HTTP Basic
    /// (RFC 6749 2.3.1; a `client_id` in the body must then agree) or from the body. The
    /// secret joins the issued secrets (it must never be logged either).
    fn presented_credentials(
        &mut self,
        form: &Form,
        basic: Option<(String, String)>,
    ) -> Result<(String, Option<String>), OAuthError> {
        let body_id = param(form, "client_id");
        let (client_id, secret) = match basic {
            Some((id, secret)) => {
                if body_id.is_some_and(|b| b != id) {
                    return Err(invalid_request(
                        9002313,
                        "Invalid request. client_id in the body differs from the one in the Authorization header.",
                    ));
                }
                (id, (!secret.is_empty()).then_some(secret))
            }
            None => (
                body_id.ok_or_else(|| missing("client_id"))?.to_string(),
                param(form, "client_secret").map(str::to_string),
            ),
        };
        if let Some(s) = &secret {
            self.secrets.push(s.clone());
        }
        Ok((client_id, secret))
    }

    fn token(&mut self, authority: &str, req: &FormRequest) -> Result<Value, OAuthError> {
        let form = req.form();
        self.stats
            .oauth
            .log_token_request(req.authorization, form.as_ref());
        let form = req.check_method_and_type()?;
        if let Some(e) = self.fail_token.take() {
            return Err(e);
        }
        if let Some(id) = param(&form, "client_id")
            && let Some(n) = self.replicating.get_mut(id)
        {
            *n -= 1;
            let id = id.to_string();
            if *n == 0 {
                self.replicating.remove(&id);
            }
            return Err(unknown_client(&id));
        }
        if let Some(v) = param(&form, "code_verifier") {
            self.secrets.push(v.to_string());
        }
        let grant_type = need(&form, "grant_type")?;
        const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
        if grant_type == "client_credentials" {
            return self.client_credentials_grant(authority, req, &form);
        }
        if !matches!(grant_type, "authorization_code" | "refresh_token" | DEVICE) {
            return Err(oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
        let client_id = self.authenticate(&form, req.authorization)?;
        let grant = Grant {
            authority,
            tenant: req.tenant,
            client_id: &client_id,
            form: &form,
        };
        match grant_type {
            "authorization_code" => self.code_grant(grant),
            "refresh_token" => self.refresh_grant(grant),
            _ => self.device_grant(grant),
        }
    }

    fn code_grant(&mut self, g: Grant) -> Result<Value, OAuthError> {
        let code = need(g.form, "code")?;
        let expired = || {
            invalid_grant(
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        };
        let c = self.codes.get_mut(code).ok_or_else(expired)?;
        if c.redeemed {
            return Err(invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        if c.client_id != g.client_id {
            return Err(other_client("authorization code"));
        }
        // Any redemption attempt by the right client burns the code, successful or not:
        // a client must never retry a code.
        c.redeemed = true;
        if c.issued.elapsed() >= CODE_TTL {
            return Err(expired());
        }
        if c.tenant != g.tenant {
            return Err(other_tenant("Authorization Code"));
        }
        let redirect_uri = need(g.form, "redirect_uri")?;
        if redirect_uri != c.redirect_uri {
            return Err(invalid_grant(
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' provided when requesting Authorization code.",
                    c.redirect_uri
                ),
            ));
        }
        let verifier = need(g.form, "code_verifier")?;
        if !verifier_ok(verifier) || s256_challenge(verifier) != c.challenge {
            return Err(invalid_grant(
                501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
        let (consent, oidc, nonce) = (c.consent.clone(), c.oidc.clone(), c.nonce.clone());
        let (resource, granted) = resolve_scope(param(g.form, "scope"), &consent, g.client_id)?;
        let family = self.sign_in(g.client_id, g.tenant, consent, oidc);
        self.stats.oauth.code_grants += 1;
        Ok(self.issue(g.authority, family, resource, granted, nonce))
    }

    fn refresh_grant(&mut self, g: Grant) -> Result<Value, OAuthError> {
        let presented = need(g.form, "refresh_token")?;
        let rt = self.refresh_tokens.get(presented).cloned().ok_or_else(|| {
            invalid_grant(
                9002313,
                "Invalid request. Request is malformed or invalid: the refresh token is not valid.",
            )
        })?;
        let fam = &self.families[rt.family];
        if fam.client_id != g.client_id {
            return Err(other_client("refresh token"));
        }
        if fam.tid != self.tid_of(g.tenant) {
            return Err(other_tenant("refresh token"));
        }
        match fam.revoked {
            Some(Revoked::Password) => {
                return Err(invalid_grant(
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
                ));
            }
            Some(Revoked::Reuse) => {
                return Err(invalid_grant(
                    70008,
                    "The refresh token has expired or is invalid: it was revoked because a previously rotated refresh token of this sign-in was reused.",
                ));
            }
            None => {}
        }
        if rt.used {
            self.families[rt.family].revoked = Some(Revoked::Reuse);
            self.stats.refresh_reuse += 1;
            return Err(invalid_grant(
                70008,
                "The refresh token has expired or is invalid due to reuse: it was already redeemed (refresh tokens rotate; store the new one). Every token of this sign-in has been revoked.",
            ));
        }
        let (resource, granted) = resolve_scope(param(g.form, "scope"), &fam.consent, g.client_id)?;
        if let Some(r) = self.refresh_tokens.get_mut(presented) {
            r.used = true;
        }
        self.stats.oauth.refresh_grants += 1;
        Ok(self.issue(g.authority, rt.family, resource, granted, None))
    }

    fn device_grant(&mut self, g: Grant) -> Result<Value, OAuthError> {
        let device_code = need(g.form, "device_code")?;
        self.stats.oauth.device_polls += 1;
        let now = Instant::now();
        let auto_approve_after = self.auto_approve_after;
        let d = self.devices.get_mut(device_code).ok_or_else(|| {
            invalid_grant(
                70000,
                "The provided value for the input parameter 'device_code' is not valid.",
            )
        })?;
        if d.client_id != g.client_id {
            return Err(other_client("device code"));
        }
        if d.tenant != g.tenant {
            return Err(other_tenant("device code"));
        }
        let previous = d.last_poll.replace(now);
        if d.status == DeviceStatus::Redeemed {
            return Err(invalid_grant(
                70000,
                "The provided value for the input parameter 'device_code' is not valid: it was already redeemed.",
            ));
        }
        if now.duration_since(d.issued) >= Duration::from_secs(DEVICE_TTL_SECS) {
            return Err(oauth_error(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            ));
        }
        let too_soon =
            previous.is_some_and(|p| now.duration_since(p) + POLL_TOLERANCE < d.interval);
        let forced = std::mem::take(&mut self.force_slow_down);
        if forced || too_soon {
            // RFC 8628 3.5: every slow_down adds 5 s to the interval for this device code.
            d.interval += SLOW_DOWN_STEP;
            self.stats.slow_downs += 1;
            return Err(oauth_error(
                400,
                "slow_down",
                70016,
                format!(
                    "Polling too frequently: wait at least {} seconds between polls.",
                    d.interval.as_secs()
                ),
            ));
        }
        if d.status == DeviceStatus::Pending
            && auto_approve_after.is_some_and(|n| d.pending_answers >= n)
        {
            d.status = DeviceStatus::Approved;
        }
        match d.status {
            DeviceStatus::Declined => Err(oauth_error(
                400,
                "authorization_declined",
                70000,
                "The user declined the authentication request (authorization_declined).",
            )),
            DeviceStatus::Pending => {
                d.pending_answers += 1;
                Err(oauth_error(
                    400,
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                ))
            }
            DeviceStatus::Approved | DeviceStatus::Redeemed => {
                d.status = DeviceStatus::Redeemed;
                let (consent, oidc) = (d.consent.clone(), d.oidc.clone());
                // Entra issues the token for the first resource of the devicecode request.
                let (resource, granted) = resolve_scope(None, &consent, g.client_id)?;
                let family = self.sign_in(g.client_id, g.tenant, consent, oidc);
                self.stats.oauth.device_grants += 1;
                Ok(self.issue(g.authority, family, resource, granted, None))
            }
        }
    }

    /// `grant_type=client_credentials`: app-only tokens for apps registered for it.
    fn client_credentials_grant(
        &mut self,
        authority: &str,
        req: &FormRequest,
        form: &Form,
    ) -> Result<Value, OAuthError> {
        let basic = parse_basic(req.authorization)?;
        let assertion = param(form, "client_assertion");
        let methods = [
            basic.is_some(),
            param(form, "client_secret").is_some(),
            assertion.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err(invalid_request(
                9002313,
                "Invalid request. The client used more than one authentication method (client_secret, client_assertion, Authorization header).",
            ));
        }
        let (client_id, secret) = self.presented_credentials(form, basic)?;
        if let Some(a) = assertion {
            self.secrets.push(a.to_string());
        }
        let Some(client) = self.clients.get(&client_id) else {
            return Err(unknown_client(&client_id));
        };
        if client.app.is_none() {
            return Err(oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                format!(
                    "The app requested an unsupported grant type 'client_credentials': application '{client_id}' is not registered for app-only access."
                ),
            ));
        }
        let tenant = req.tenant;
        if ["common", "consumers", "organizations"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tenant))
        {
            return Err(invalid_request(
                9001023,
                format!(
                    "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint. (client_credentials needs the tenant id or domain, not '/{tenant}'.)"
                ),
            ));
        }
        match (secret, assertion) {
            (Some(given), None) => match &client.secret {
                Some(expected) if *expected == given => {}
                _ => return Err(invalid_secret(&client_id)),
            },
            (None, Some(jwt)) => {
                match param(form, "client_assertion_type") {
                    None => return Err(missing("client_assertion_type")),
                    Some(JWT_BEARER) => {}
                    Some(other) => {
                        return Err(invalid_request(
                            9002313,
                            format!(
                                "Invalid request. client_assertion_type '{other}' is not supported; use '{JWT_BEARER}'."
                            ),
                        ));
                    }
                }
                let token_url = format!("{authority}/{tenant}/oauth2/v2.0/token");
                let jti = verify_assertion(client, &client_id, jwt, &token_url)?;
                if !self.used_jtis.insert((client_id.clone(), jti.clone())) {
                    return Err(bad_assertion(format!(
                        "The client assertion was replayed: jti '{jti}' was already used."
                    )));
                }
            }
            _ => return Err(no_credential()),
        }

        let scope = need(form, "scope")?;
        let resource = app_scope_resource(scope).ok_or_else(|| {
            oauth_error(
                400,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            )
        })?;
        let configured = self
            .clients
            .get(&client_id)
            .and_then(|c| c.app.as_ref())
            .and_then(|a| a.roles.get(&resource).cloned());
        let roles = configured
            .or_else(|| default_roles(&resource))
            .ok_or_else(|| {
                oauth_error(
                    400,
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
                    ),
                )
            })?;
        let (access_token, lifetime) = self.mint_access_token(AccessTokenInfo {
            scopes: roles.iter().map(|r| format!("{resource}/{r}")).collect(),
            resource,
            user: String::new(),
            client_id,
            tid: self.tid_of(tenant),
            expired: false,
            app: true,
        });
        self.stats.client_credentials_grants += 1;
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        }))
    }

    /// `bytes` random bytes (base64url) to hand out as a code or token, recorded as issued.
    fn new_secret(&mut self, bytes: usize) -> String {
        let secret = random_token(bytes);
        self.secrets.push(secret.clone());
        secret
    }

    /// A new access token standing for `info`, valid for the configured lifetime (returned too).
    fn mint_access_token(&mut self, info: AccessTokenInfo) -> (String, u64) {
        let lifetime = self.access_token_lifetime;
        // Entra's access tokens are JWTs of 1.5-2.5 KB and its refresh tokens over 1 KB;
        // realistic sizes make the client's storage (keyring chunking) do real work. The
        // claims are Entra's (v1.0 access tokens); the signature is random, as only the
        // resource server (this fake, through its map) can judge a token anyway.
        let token = self.jwt(&info, lifetime);
        self.secrets.push(token.clone());
        self.access_tokens.insert(
            token.clone(),
            AccessToken {
                info,
                expires: Instant::now() + Duration::from_secs(lifetime),
            },
        );
        (token, lifetime)
    }

    fn jwt(&self, info: &AccessTokenInfo, lifetime: u64) -> String {
        let now = now_secs();
        let short: Vec<String> = info
            .scopes
            .iter()
            .map(|s| s.rsplit('/').next().unwrap_or(s).to_string())
            .collect();
        let mut claims = json!({
            "aud": self.jwt_audience.clone().unwrap_or_else(|| info.resource.clone()),
            "iss": "https://sts.windows.net/fake-tenant/",
            "iat": now, "nbf": now, "exp": now + lifetime,
            "appid": info.client_id,
            "tid": info.tid,
            "ver": "1.0",
            "uti": random_token(24),
        });
        if info.app {
            claims["roles"] = json!(short);
        } else {
            claims["scp"] = json!(short.join(" "));
            claims["upn"] = json!(info.user);
            claims["unique_name"] = json!(info.user);
        }
        let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"RS256","kid":"fake"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig_len = self
            .access_token_bytes
            .saturating_sub(header.len() + body.len())
            .max(64)
            * 3
            / 4;
        format!(
            "{header}.{body}.{}{}",
            self.canaries.0.as_deref().unwrap_or_default(),
            URL_SAFE_NO_PAD.encode(random_bytes(sig_len))
        )
    }

    /// Starts the token family of a new sign-in of the current user; returns its index.
    fn sign_in(
        &mut self,
        client_id: &str,
        tenant: &str,
        consent: Vec<Consent>,
        oidc: Vec<&'static str>,
    ) -> usize {
        self.families.push(Family {
            client_id: client_id.to_string(),
            user: self.user.clone(),
            tid: self.tid_of(tenant),
            consent,
            oidc,
            revoked: None,
        });
        self.families.len() - 1
    }

    fn issue(
        &mut self,
        authority: &str,
        family: usize,
        resource: String,
        granted: Vec<String>,
        nonce: Option<String>,
    ) -> Value {
        let f = &self.families[family];
        let (client_id, user, tid, oidc) = (
            f.client_id.clone(),
            f.user.clone(),
            f.tid.clone(),
            f.oidc.clone(),
        );
        let (access_token, lifetime) = self.mint_access_token(AccessTokenInfo {
            resource,
            scopes: granted.clone(),
            user: user.clone(),
            client_id: client_id.clone(),
            tid: tid.clone(),
            expired: false,
            app: false,
        });
        let mut scope_words = granted;
        scope_words.extend(oidc.iter().map(|s| s.to_string()));
        let mut body = json!({
            "token_type": "Bearer",
            "scope": scope_words.join(" "),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
        });
        if oidc.contains(&"offline_access") {
            let mut rt = self.new_secret(REFRESH_TOKEN_BYTES);
            if let Some(canary) = &self.canaries.1 {
                rt.insert_str(0, canary);
                self.secrets.push(rt.clone());
            }
            self.refresh_tokens.insert(
                rt.clone(),
                RefreshToken {
                    family,
                    used: false,
                },
            );
            body["refresh_token"] = rt.into();
        }
        if oidc.contains(&"openid") {
            body["id_token"] = self
                .id_token(authority, &client_id, &tid, &user, nonce.as_deref())
                .into();
        }
        body
    }

    fn id_token(
        &self,
        authority: &str,
        client_id: &str,
        tid: &str,
        user: &str,
        nonce: Option<&str>,
    ) -> String {
        let now = now_secs();
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": "fake-entra-key"});
        let mut payload = json!({
            "aud": client_id,
            "iss": format!("{authority}/{tid}/v2.0"),
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME_SECS,
            "name": "Ada Lovelace",
            "oid": guid_from(user),
            "sub": URL_SAFE_NO_PAD.encode(&Sha256::digest(format!("{user}|{client_id}"))[..24]),
            "tid": tid,
            "ver": "2.0",
        });
        if self.user_in_id_token {
            payload["preferred_username"] = user.into();
            payload["email"] = user.into();
        }
        if let Some(n) = nonce {
            payload["nonce"] = n.into();
        }
        compact_jws(&header, &payload, &random_bytes(256))
    }

    fn devicecode(&mut self, authority: &str, req: &FormRequest) -> Result<Value, OAuthError> {
        let form = req.check_method_and_type()?;
        let client_id = need(&form, "client_id")?.to_string();
        let Some(client) = self.clients.get(&client_id) else {
            return Err(oauth_error(
                400,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory."
                ),
            ));
        };
        if client.confidential() {
            // A "Web" app has no public client flows: Entra insists on client credentials.
            return Err(oauth_error(
                400,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        if param(&form, "client_secret").is_some() || req.authorization.is_some() {
            return Err(oauth_error(
                401,
                "invalid_client",
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            ));
        }
        let scope = need(&form, "scope")?;
        let scopes = parse_scopes(scope).map_err(|t| invalid_scope_token(&t))?;
        let (consent, oidc) = split_scopes(scopes);

        let mut user_code = random_user_code();
        // Collisions are astronomically rare; bounded retries keep it deterministic anyway.
        for _ in 0..16 {
            if !self.devices.values().any(|d| d.user_code == user_code) {
                break;
            }
            user_code = random_user_code();
        }
        let device_code = self.new_secret(48);
        self.devices.insert(
            device_code.clone(),
            Device {
                user_code: user_code.clone(),
                client_id,
                tenant: req.tenant.to_string(),
                consent,
                oidc,
                issued: Instant::now(),
                interval: Duration::from_secs(DEVICE_INTERVAL_SECS),
                last_poll: None,
                status: DeviceStatus::Pending,
                pending_answers: 0,
            },
        );
        let verification_uri = format!("{authority}/devicelogin");
        Ok(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verification_uri,
            "expires_in": DEVICE_TTL_SECS,
            "interval": DEVICE_INTERVAL_SECS,
            "message": format!("To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."),
        }))
    }

    fn set_device_status(&mut self, user_code: &str, status: DeviceStatus) -> bool {
        let ttl = Duration::from_secs(DEVICE_TTL_SECS);
        match self.devices.values_mut().find(|d| {
            d.user_code.eq_ignore_ascii_case(user_code)
                && d.status == DeviceStatus::Pending
                && d.issued.elapsed() < ttl
        }) {
            Some(d) => {
                d.status = status;
                true
            }
            None => false,
        }
    }

    /// The client registered as `client_id`, created (without credentials) if needed, and
    /// marked for app-only access.
    fn app_client(&mut self, client_id: &str) -> &mut Client {
        let client = self
            .clients
            .entry(client_id.to_string())
            .or_insert_with(|| Client {
                secret: None,
                redirect_uris: Vec::new(),
                app: None,
            });
        client.app.get_or_insert_with(AppRegistration::default);
        client
    }

    fn introspect(&self, token: &str) -> Option<AccessTokenInfo> {
        let at = self.access_tokens.get(token)?;
        let mut info = at.info.clone();
        info.expired = Instant::now() >= at.expires;
        Some(info)
    }

    fn devicelogin(&mut self, query: &str) -> Reply {
        let code = query_param(query, "code");
        if !code.is_empty() && self.set_device_status(&code, DeviceStatus::Approved) {
            Reply::html(
                200,
                "<!DOCTYPE html><html><body><h1>You have signed in</h1>\
                 <p>You can close this window.</p></body></html>"
                    .to_string(),
            )
        } else {
            Reply::html(
                400,
                format!(
                    "<!DOCTYPE html><html><body><h1>Code not valid</h1>\
                     <p>The code '{}' is unknown, expired or already used.</p></body></html>",
                    html_escape(&code)
                ),
            )
        }
    }
}

/// The verification algorithm of a client assertion's `alg`, the header naming the certificate
/// for it, and the other thumbprint header (which must match too when present).
fn assertion_alg(
    alg: &str,
) -> Option<(
    &'static dyn VerificationAlgorithm,
    &'static str,
    &'static str,
)> {
    match alg {
        "PS256" => Some((&RSA_PSS_2048_8192_SHA256, "x5t#S256", "x5t")),
        "RS256" => Some((&RSA_PKCS1_2048_8192_SHA256, "x5t", "x5t#S256")),
        _ => None,
    }
}

/// Verifies a client assertion (RFC 7523, Entra's certificate credential rules) for `client`;
/// returns its `jti` (the caller enforces single use).
fn verify_assertion(
    client: &Client,
    client_id: &str,
    jwt: &str,
    token_url: &str,
) -> Result<String, OAuthError> {
    let jws = parse_jws(jwt).map_err(bad_assertion)?;
    let (header, payload) = (&jws.header, &jws.payload);
    let text = |m: &serde_json::Map<String, Value>, k: &str| {
        m.get(k).and_then(Value::as_str).map(str::to_string)
    };

    let alg = text(header, "alg").unwrap_or_default();
    let Some((algorithm, thumbprint_header, other_header)) = assertion_alg(&alg) else {
        return Err(bad_assertion(format!(
            "The algorithm '{alg}' is not supported: use PS256 (with x5t#S256) or RS256 (with x5t)."
        )));
    };
    let Some(thumbprint) = text(header, thumbprint_header) else {
        return Err(bad_assertion(format!(
            "The key was not found: an {alg} client assertion must name its certificate in the '{thumbprint_header}' header."
        )));
    };
    let of = |c: &Certificate, h: &str| {
        if h == "x5t" {
            c.x5t.clone()
        } else {
            c.x5t_s256.clone()
        }
    };
    let certificates = client
        .app
        .as_ref()
        .map(|a| a.certificates.as_slice())
        .unwrap_or_default();
    let Some(cert) = certificates
        .iter()
        .find(|c| of(c, thumbprint_header) == thumbprint)
    else {
        return Err(bad_assertion(format!(
            "The key was not found., Thumbprint of key used by client: '{thumbprint}'. No certificate of application '{client_id}' has it."
        )));
    };
    if header.contains_key(other_header)
        && text(header, other_header) != Some(of(cert, other_header))
    {
        return Err(bad_assertion(format!(
            "The '{other_header}' header does not match the certificate named by '{thumbprint_header}'."
        )));
    }
    if !jws.verify(algorithm, &cert.public_key) {
        return Err(bad_assertion(format!(
            "The {alg} signature does not verify with the key of the certificate '{thumbprint}'."
        )));
    }

    match payload.get("aud").and_then(Value::as_str) {
        Some(aud) if aud == token_url => {}
        other => {
            return Err(bad_assertion(format!(
                "The audience (aud) of the client assertion is {other:?}; it must be the token endpoint '{token_url}'."
            )));
        }
    }
    for claim in ["iss", "sub"] {
        if text(payload, claim).as_deref() != Some(client_id) {
            return Err(bad_assertion(format!(
                "The '{claim}' claim of the client assertion must be the client id '{client_id}'."
            )));
        }
    }
    let jti = text(payload, "jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad_assertion("The client assertion has no 'jti' claim."))?;
    // Present and a non-negative integer: Some(Some(n)); present but not: Some(None).
    let number = |k: &str| payload.get(k).map(Value::as_u64);
    let (exp, nbf, iat) = match (number("exp"), number("nbf"), number("iat")) {
        (Some(Some(exp)), Some(Some(nbf)), iat @ (None | Some(Some(_)))) => {
            (exp, nbf, iat.flatten())
        }
        _ => {
            return Err(assertion_time(
                "The client assertion needs integer 'exp' and 'nbf' claims ('iat' optional, an integer too).",
            ));
        }
    };
    let now = now_secs();
    if exp <= now {
        return Err(assertion_time(format!(
            "The client assertion expired at {exp}; the time is {now}."
        )));
    }
    for (claim, start) in [("nbf", Some(nbf)), ("iat", iat)] {
        let Some(start) = start else { continue };
        if start > now + ASSERTION_SKEW_SECS {
            return Err(assertion_time(format!(
                "'{claim}' {start} is in the future; the time is {now}."
            )));
        }
        if exp < start || exp - start > ASSERTION_MAX_LIFETIME_SECS + ASSERTION_SKEW_SECS {
            return Err(assertion_time(format!(
                "'exp' {exp} must be after '{claim}' {start} by at most {ASSERTION_MAX_LIFETIME_SECS} seconds."
            )));
        }
    }
    Ok(jti)
}

fn random_user_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    random_bytes(8)
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// A stable object id per user, so repeated sign-ins look like the same account.
fn guid_from(s: &str) -> String {
    guid(&Sha256::digest(s.as_bytes()))
}

/// `YYYY-MM-DD HH:MM:SSZ`, the format of Entra's error timestamps.
fn utc_timestamp() -> String {
    let t = Utc::now();
    format!("{} {}Z", t.date(), t.time())
}
