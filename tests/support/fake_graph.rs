//! A strict in-process fake of the Microsoft Graph v1.0 mail endpoints the client uses:
//! `POST /v1.0/{me|users/{id}}/sendMail` (JSON and MIME forms), the large-message path
//! (`POST …/messages` to create a draft, `POST …/messages/{id}/attachments`,
//! `POST …/messages/{id}/attachments/createUploadSession`, `PUT` of chunks to the
//! pre-authenticated upload URL, `POST …/messages/{id}/send`).
//!
//! A fake that accepts anything proves nothing, so this one enforces what Graph enforces and a
//! sloppy client gets wrong: a valid, unexpired Graph bearer token on every Graph call (checked
//! through `FakeEntra::validator()`) with the right
//! permission (`Mail.Send` to send, `Mail.ReadWrite` for drafts and attachments); send-as only
//! for one's own mailbox unless delegated; no unknown JSON properties; recipient addresses that
//! look like addresses and at least one of them; `X-` names only for `internetMessageHeaders`;
//! strict base64 for attachments and the MIME form; the 4 MiB request limit, enforced without
//! buffering more than that; upload sessions only for attachments of 3 MiB and more, chunks of
//! at most 4 MiB in strict order with consistent `Content-Range`/`Content-Length`, and *no*
//! `Authorization` header on the upload URL (Graph rejects one there); a draft is sent only
//! once all its uploads are complete. Every error uses Graph's JSON shape
//! (`{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`) and
//! every answer carries a fresh `request-id`, so the client's error reporting is exercised too.
//!
//! App-only tokens (client credentials, `AccessTokenInfo::app`) carry application permissions:
//! `/me` is refused (400 `BadRequest`, there is no signed-in user), `/users/{id}/…` works for
//! any mailbox with the right permission (`Mail.Send`, or `Mail.ReadWrite` for drafts), and
//! `message.from` other than `{id}` needs `{id}`'s send-as rights ([`FakeGraph::allow_send_as`]
//! with `{id}` as the delegate).
//!
//! It also measures what Graph throttles: requests in flight per mailbox (the client promises at
//! most 4), and can inject throttling (`429`/`503` with `Retry-After`) or any other error.
//!
//! Deliberately stricter than Graph: `send` on a draft whose upload session is not complete is
//! refused (Graph would send it without that attachment); a delegated token scope of
//! `.default` grants nothing (the fake Entra does not expand it to the app's permissions);
//! `/users/{id}` must name the mailbox by address (a Graph object id counts as someone else's
//! mailbox, for delegated tokens); drafts can only be created from JSON (Graph also takes MIME
//! there).
//!
//! It runs on the shared HTTP skeleton (`server.rs`) and reads the MIME form with the tests'
//! one MIME reader (`mime.rs`); this file holds only what Graph does.

// Shared test support: no single test uses every knob.
#![allow(dead_code)]

#[path = "fake_directory.rs"]
mod directory;
pub use directory::DirectorySnapshot;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::fake_entra::{AccessTokenInfo, EntraHooks};
use super::http::{pair, parse_content_range, parse_form, percent_decode_path};
use super::mime::{self, HeaderError};
use super::server::{
    BodyError, Reply, Request, Server, SharedState, Utc, now_secs, random_token, uuid,
};

/// The resource (audience) of tokens Graph accepts.
const GRAPH: &str = "https://graph.microsoft.com";
/// Graph's request size limit ("about 4 MB"): 4 MiB of body.
pub const MAX_REQUEST: u64 = 4 * 1024 * 1024;
/// Attachments of this size and more need an upload session; smaller ones must not use one.
pub const UPLOAD_SESSION_MIN: u64 = 3 * 1024 * 1024;
/// Graph's per-attachment ceiling for upload sessions.
pub const UPLOAD_SESSION_MAX: u64 = 150 * 1024 * 1024;
/// Largest chunk one upload PUT may carry.
pub const MAX_CHUNK: u64 = 4 * 1024 * 1024;
/// Attachment bytes are kept for assertions up to this size; larger ones only by hash.
pub const KEEP_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// More workers than the client's promised limit of 4 requests per mailbox, so that a client
/// breaking it is observed with more than 4 in flight instead of being silently queued here.
const WORKERS: usize = 16;
/// An unread request body is discarded up to this much (so the client sees our answer rather
/// than a reset); a client sending more is broken beyond what a test needs to report.
const DRAIN_MAX: u64 = 512 * 1024 * 1024;
const UPLOAD_SESSION_TTL_SECS: u64 = 15 * 60;
const ACCESS_DENIED: &str = "Access is denied. Check credentials and try again.";

/// The validator handed out by `FakeEntra::validator()`.
pub type Validator = Arc<dyn Fn(&str) -> Option<AccessTokenInfo> + Send + Sync>;

/// `(display name, address)` of one recipient.
pub type Recipient = mime::Address;

/// One message Graph accepted for delivery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The mailbox that sent: the token's user for `/me`, the decoded `{id}` of `/users/{id}`
    /// (for app-only tokens always the latter).
    pub mailbox: String,
    /// `"json"` (sendMail with a message object), `"mime"` (sendMail, base64 MIME) or
    /// `"draft"` (`…/messages/{id}/send`).
    pub via: String,
    pub save_to_sent_items: bool,
    /// JSON/draft: `message.subject`; MIME: the decoded `Subject` header.
    pub subject: String,
    /// `message.from` address when given (JSON and draft forms).
    pub from: Option<String>,
    pub to: Vec<Recipient>,
    pub cc: Vec<Recipient>,
    pub bcc: Vec<Recipient>,
    pub reply_to: Vec<Recipient>,
    /// Lower-cased: `low`, `normal` or `high`.
    pub importance: Option<String>,
    /// JSON/draft forms: `"Text"` or `"HTML"` (normalized spelling) and the content.
    pub body_type: Option<String>,
    pub body: Option<String>,
    /// `internetMessageHeaders` (JSON/draft forms), in order.
    pub headers: Vec<(String, String)>,
    /// In the order they became part of the message (inline in the JSON, then added through
    /// the attachments endpoint or completed upload sessions).
    pub attachments: Vec<Attachment>,
    /// MIME form: the decoded message bytes exactly as sent.
    pub mime: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: Option<String>,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub is_inline: bool,
    pub content_id: Option<String>,
    /// The content, kept only when `size <= KEEP_BYTES_MAX` (8 MiB).
    pub bytes: Option<Vec<u8>>,
}

/// Counters and logs of what the fake answered.
#[derive(Clone, Debug, Default)]
pub struct GraphStats {
    /// Every request, routed or not, upload PUTs included.
    pub requests: u32,
    /// Highest number of requests seen in flight at once for one mailbox (case-insensitive),
    /// upload PUTs counted for their draft's mailbox. Measured strictly inside the client's
    /// view of each request, so it never overstates the client's concurrency.
    pub max_in_flight_per_mailbox: u32,
    pub status_counts: BTreeMap<u16, u32>,
    /// PUTs to upload URLs, whatever the answer.
    pub upload_puts: u32,
    /// Answers with status 401.
    pub unauthorized: u32,
    /// Graph error `code` of every error answered, in order.
    pub errors: Vec<String>,
    /// The `request-id` of every answer, in order.
    pub request_ids: Vec<String>,
    /// `"METHOD /path"` of requests answered 404 or 405 for want of a route (always a bug).
    pub unrouted: Vec<String>,
}

/// Handle to a running fake; the server stops when it is dropped.
pub struct FakeGraph {
    shared: Arc<Shared>,
    server: Server,
}

struct Shared {
    validator: Validator,
    state: SharedState<State>,
    /// The app-registration endpoints, when started with [`FakeGraph::start_with_directory`].
    directory: Option<directory::Directory>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }
}

/// An injected error for the next `remaining` send-like requests.
struct Failure {
    remaining: u32,
    status: u16,
    retry_after: Option<u32>,
    code: String,
    message: String,
}

/// What a message JSON object (sendMail's `message`, or a draft) says.
#[derive(Clone, Default)]
struct Message {
    subject: String,
    from: Option<String>,
    to: Vec<Recipient>,
    cc: Vec<Recipient>,
    bcc: Vec<Recipient>,
    reply_to: Vec<Recipient>,
    importance: Option<String>,
    body_type: Option<String>,
    body: Option<String>,
    headers: Vec<(String, String)>,
    attachments: Vec<Attachment>,
}

impl Message {
    fn has_recipients(&self) -> bool {
        !(self.to.is_empty() && self.cc.is_empty() && self.bcc.is_empty())
    }

    fn into_delivered(self, mailbox: &str, via: &str, save_to_sent_items: bool) -> Delivered {
        Delivered {
            mailbox: mailbox.to_string(),
            via: via.to_string(),
            save_to_sent_items,
            subject: self.subject,
            from: self.from,
            to: self.to,
            cc: self.cc,
            bcc: self.bcc,
            reply_to: self.reply_to,
            importance: self.importance,
            body_type: self.body_type,
            body: self.body,
            headers: self.headers,
            attachments: self.attachments,
            mime: None,
        }
    }
}

struct Draft {
    /// The mailbox as addressed when the draft was created.
    mailbox: String,
    message: Message,
    /// Upload session ids, in creation order.
    sessions: Vec<String>,
    /// Sent drafts leave the Drafts folder: their id no longer resolves.
    sent: bool,
}

struct Session {
    draft: String,
    mailbox: String,
    token: String,
    name: String,
    content_type: Option<String>,
    is_inline: bool,
    content_id: Option<String>,
    size: u64,
    /// Offset of the next expected byte.
    next: u64,
    hasher: Sha256,
    bytes: Option<Vec<u8>>,
    /// A PUT for this session is reading its body (the state is updated when it finishes).
    busy: bool,
    complete: bool,
}

struct State {
    fail: Option<Failure>,
    /// `(delegate, mailbox)`, lower-cased.
    send_as: Vec<(String, String)>,
    delay: Duration,
    delivered: Vec<Delivered>,
    stats: GraphStats,
    /// Keyed by lower-cased mailbox.
    in_flight: HashMap<String, u32>,
    drafts: HashMap<String, Draft>,
    sessions: HashMap<String, Session>,
}

impl State {
    fn may_act_as(&self, user: &str, mailbox: &str) -> bool {
        user.eq_ignore_ascii_case(mailbox)
            || self
                .send_as
                .iter()
                .any(|(d, m)| d.eq_ignore_ascii_case(user) && m.eq_ignore_ascii_case(mailbox))
    }

    /// The draft `id` of `mailbox`, unless unknown, sent, or in another mailbox.
    fn draft_mut(&mut self, mailbox: &str, id: &str) -> Result<&mut Draft, GraphError> {
        match self.drafts.get_mut(id) {
            Some(d) if !d.sent && d.mailbox.eq_ignore_ascii_case(mailbox) => Ok(d),
            _ => Err(item_not_found()),
        }
    }
}

impl FakeGraph {
    /// Starts the fake on `127.0.0.1:<ephemeral port>`; bearer tokens are checked with
    /// `validator` (from `FakeEntra::validator()`).
    pub fn start(validator: Validator) -> FakeGraph {
        FakeGraph::start_inner(validator, None)
    }

    /// Also serves the directory (app registration) endpoints; what they register reaches
    /// the fake Entra through `hooks` (from `FakeEntra::hooks()`).
    pub fn start_with_directory(validator: Validator, hooks: EntraHooks) -> FakeGraph {
        FakeGraph::start_inner(validator, Some(directory::Directory::new(hooks)))
    }

    fn start_inner(validator: Validator, directory: Option<directory::Directory>) -> FakeGraph {
        let shared = Arc::new(Shared {
            validator,
            directory,
            state: SharedState::new(State {
                fail: None,
                send_as: Vec::new(),
                delay: Duration::ZERO,
                delivered: Vec::new(),
                stats: GraphStats::default(),
                in_flight: HashMap::new(),
                drafts: HashMap::new(),
                sessions: HashMap::new(),
            }),
        });
        let handler = Arc::clone(&shared);
        let server = Server::start("fake Graph", WORKERS, move |req| handle(&handler, req));
        FakeGraph { shared, server }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash; the client calls `{url}/v1.0/…`.
    pub fn url(&self) -> String {
        self.server.url().to_string()
    }

    /// The next `n` send-like requests (sendMail, draft creation, draft send) that pass
    /// authentication and authorization are answered with this Graph error instead, with a
    /// `Retry-After` header when `retry_after_secs` is given. `n == 0` cancels.
    pub fn fail_next(
        &self,
        n: u32,
        status: u16,
        retry_after_secs: Option<u32>,
        code: &str,
        message: &str,
    ) {
        self.shared.lock().fail = (n > 0).then(|| Failure {
            remaining: n,
            status,
            retry_after: retry_after_secs,
            code: code.to_string(),
            message: message.to_string(),
        });
    }

    /// Lets `delegate_user` send as (and keep drafts in) `mailbox`. Without it, addressing
    /// another user's mailbox answers 403 (`ErrorSendAsDenied` for sendMail).
    pub fn allow_send_as(&self, delegate_user: &str, mailbox: &str) {
        self.shared
            .lock()
            .send_as
            .push((delegate_user.to_lowercase(), mailbox.to_lowercase()));
    }

    /// Every request sleeps `d` (while counted in flight) before it is handled.
    pub fn set_request_delay(&self, d: Duration) {
        self.shared.lock().delay = d;
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.shared.lock().delivered.clone()
    }

    pub fn stats(&self) -> GraphStats {
        self.shared.lock().stats.clone()
    }

    fn dir(&self) -> &directory::Directory {
        self.shared
            .directory
            .as_ref()
            .expect("started with FakeGraph::start_with_directory")
    }

    /// The applications, service principals, consent grants and role assignments made so far.
    pub fn directory(&self) -> DirectorySnapshot {
        self.dir().snapshot()
    }

    /// `true`: creating an application answers 403 `Authorization_RequestDenied`, as in a
    /// tenant where users may not register apps.
    pub fn deny_app_registration(&self, on: bool) {
        self.dir().deny_registration(on);
    }

    /// `true`: the signed-in user is an admin who may grant tenant-wide consent and assign
    /// application permissions (default: an ordinary user).
    pub fn set_admin(&self, on: bool) {
        self.dir().set_admin(on);
    }

    /// The next `n` service-principal creations answer as if the new app had not replicated.
    pub fn set_sp_propagation(&self, n: u32) {
        self.dir().set_sp_propagation(n);
    }
}

/// A Graph error before it is rendered: its `innerError` names the request's ids, which only
/// [`handle`] knows.
struct GraphError {
    status: u16,
    code: String,
    message: String,
    headers: Vec<(&'static str, String)>,
}

/// What a route answers: a success, or a Graph error.
type Answer = Result<Reply, GraphError>;

fn error(status: u16, code: &str, message: impl Into<String>) -> GraphError {
    GraphError {
        status,
        code: code.to_string(),
        message: message.into(),
        headers: Vec::new(),
    }
}

impl GraphError {
    fn with_header(mut self, name: &'static str, value: impl Into<String>) -> GraphError {
        self.headers.push((name, value.into()));
        self
    }

    /// `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
    fn render(self, request_id: &str, client_request_id: &str) -> Reply {
        let t = Utc::now();
        let v = json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                // Graph's innerError.date has no zone and no fraction.
                "date": format!("{}T{}", t.date(), t.time()),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }});
        let mut reply = json(self.status, v);
        for (name, value) in self.headers {
            reply = reply.with_header(name, value);
        }
        reply
    }
}

const JSON_TYPE: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A JSON answer, typed as Graph types it.
fn json(status: u16, v: Value) -> Reply {
    Reply::typed(status, JSON_TYPE, v.to_string())
}

/// Graph's 401: the same code for a missing, unknown, expired or foreign token.
fn invalid_token(message: &str) -> GraphError {
    error(401, "InvalidAuthenticationToken", message).with_header(
        "WWW-Authenticate",
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
    )
}

fn access_denied() -> GraphError {
    error(403, "ErrorAccessDenied", ACCESS_DENIED)
}

fn item_not_found() -> GraphError {
    error(
        404,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

/// OData's answer to a body it cannot map onto the entity type.
fn body_read(message: impl Into<String>) -> GraphError {
    error(400, "RequestBodyRead", message)
}

fn invalid_request(message: impl Into<String>) -> GraphError {
    error(400, "ErrorInvalidRequest", message)
}

fn invalid_recipients() -> GraphError {
    error(
        400,
        "ErrorInvalidRecipients",
        "At least one recipient isn't valid., A message can't be sent because it contains no recipients.",
    )
}

fn too_large() -> GraphError {
    error(
        413,
        "ErrorRequestEntityTooLarge",
        "The maximum request length supported is 4MB.",
    )
}

fn handle(shared: &Shared, req: &mut Request) -> Reply {
    let request_id = uuid();
    let client_request_id = req
        .header("client-request-id")
        .map_or_else(|| request_id.clone(), str::to_string);
    let answer = route(shared, req);
    // Whatever was not read is discarded before answering, so that the client reads our answer
    // instead of a connection reset (and tiny_http need not buffer the rest in one piece).
    req.discard_body(DRAIN_MAX);

    let reply = match answer {
        Ok(reply) => reply,
        Err(e) => {
            shared.lock().stats.errors.push(e.code.clone());
            e.render(&request_id, &client_request_id)
        }
    };
    {
        // Recorded before answering: a test that got its answer sees it counted.
        let mut st = shared.lock();
        st.stats.requests += 1;
        st.stats.request_ids.push(request_id.clone());
        *st.stats.status_counts.entry(reply.status).or_default() += 1;
        if reply.status == 401 {
            st.stats.unauthorized += 1;
        }
    }
    reply
        .with_header("request-id", request_id)
        .with_header("client-request-id", client_request_id)
}

fn unrouted(shared: &Shared, req: &Request, status: u16) -> GraphError {
    shared.lock().stats.unrouted.push(req.line());
    if status == 405 {
        error(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request uri.",
        )
    } else {
        error(
            404,
            "UnknownError",
            format!("Resource not found for the segment '{}'.", req.path()),
        )
    }
}

/// Whose mailbox a Graph path addresses.
enum Owner {
    Me,
    /// Percent-decoded `{id}` of `/users/{id}`.
    User(String),
}

#[derive(Clone, PartialEq, Eq)]
enum Op {
    SendMail,
    CreateDraft,
    AddAttachment(String),
    CreateUploadSession(String),
    Send(String),
}

impl Op {
    fn send_like(&self) -> bool {
        matches!(self, Op::SendMail | Op::CreateDraft | Op::Send(_))
    }

    /// The delegated permission Graph requires.
    fn permission(&self) -> &'static str {
        match self {
            Op::SendMail | Op::Send(_) => "Mail.Send",
            _ => "Mail.ReadWrite",
        }
    }
}

fn route(shared: &Shared, req: &mut Request) -> Answer {
    let path = req.path().to_string();
    let query = req.query().to_string();
    let Some(rest) = path.strip_prefix('/') else {
        return Err(unrouted(shared, req, 404));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);

    if let ["upload", session] = segments.as_slice() {
        if req.method() != "PUT" {
            return Err(unrouted(shared, req, 405));
        }
        return upload(shared, req, session, &query);
    }
    let ["v1.0", rest @ ..] = segments.as_slice() else {
        return Err(unrouted(shared, req, 404));
    };
    if let Some(dir) = &shared.directory
        && let Some(answer) = directory::route(dir, &shared.validator, req, rest)
    {
        return answer;
    }
    // Graph matches path segments case-insensitively; the version must be exact.
    let (owner, tail) = match rest {
        [me, tail @ ..] if eq(me, "me") => (Owner::Me, tail),
        [users, id, tail @ ..] if eq(users, "users") && !id.is_empty() => {
            match percent_decode_path(id) {
                Some(id) => (Owner::User(id), tail),
                None => return Err(unrouted(shared, req, 404)),
            }
        }
        _ => return Err(unrouted(shared, req, 404)),
    };
    let message_id = |id: &str| percent_decode_path(id).filter(|id| !id.is_empty());
    let op = match tail {
        [s] if eq(s, "sendMail") => Some(Op::SendMail),
        [m] if eq(m, "messages") => Some(Op::CreateDraft),
        [m, id, a] if eq(m, "messages") && eq(a, "attachments") => {
            message_id(id).map(Op::AddAttachment)
        }
        [m, id, a, c]
            if eq(m, "messages") && eq(a, "attachments") && eq(c, "createUploadSession") =>
        {
            message_id(id).map(Op::CreateUploadSession)
        }
        [m, id, s] if eq(m, "messages") && eq(s, "send") => message_id(id).map(Op::Send),
        _ => None,
    };
    let Some(op) = op else {
        return Err(unrouted(shared, req, 404));
    };
    if req.method() != "POST" {
        return Err(unrouted(shared, req, 405));
    }
    graph(shared, req, owner, op)
}

/// Counts a request in flight for a mailbox while alive. Dropped before the answer is sent,
/// so the count never includes a request the client already considers finished.
struct InFlight<'a> {
    shared: &'a Shared,
    key: String,
}

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared, mailbox: &str) -> InFlight<'a> {
        let key = mailbox.to_lowercase();
        let mut st = shared.lock();
        let n = st.in_flight.entry(key.clone()).or_default();
        *n += 1;
        let n = *n;
        st.stats.max_in_flight_per_mailbox = st.stats.max_in_flight_per_mailbox.max(n);
        InFlight { shared, key }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(n) = st.in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

fn delay(shared: &Shared) {
    let d = shared.lock().delay;
    if !d.is_zero() {
        std::thread::sleep(d);
    }
}

fn has_permission(info: &AccessTokenInfo, permission: &str) -> bool {
    info.scopes.iter().any(|s| {
        s.strip_prefix(GRAPH)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|p| p.eq_ignore_ascii_case(permission))
    })
}

fn graph(shared: &Shared, req: &mut Request, owner: Owner, op: Op) -> Answer {
    let token = req.bearer().map(str::to_string);
    let info = token.as_deref().and_then(|t| (shared.validator)(t));
    // Counted from the start: /me is attributed to the token's user even when the token will
    // be refused, which only matters for the measurement, not the answer.
    let mailbox = match &owner {
        Owner::Me => info.as_ref().filter(|i| !i.app).map(|i| i.user.clone()),
        Owner::User(id) => Some(id.clone()),
    };
    let _flight = mailbox.as_deref().map(|m| InFlight::enter(shared, m));
    delay(shared);

    let info = match (token, info) {
        (None, _) => return Err(invalid_token("Access token is empty.")),
        (Some(_), None) => return Err(invalid_token("IDX14100: JWT is not well formed.")),
        (Some(_), Some(i)) if i.expired => {
            return Err(invalid_token(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        (Some(_), Some(i)) if !i.resource.trim_end_matches('/').eq_ignore_ascii_case(GRAPH) => {
            return Err(invalid_token("Invalid audience."));
        }
        (Some(_), Some(i)) => i,
    };
    if info.app && matches!(owner, Owner::Me) {
        return Err(error(
            400,
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        ));
    }
    let mailbox = mailbox.unwrap_or_else(|| info.user.clone());
    if !has_permission(&info, op.permission()) {
        let graph_scopes = info.scopes.iter().any(|s| s.starts_with(GRAPH));
        return Err(if graph_scopes {
            access_denied()
        } else {
            error(
                403,
                "NoPermissionsInAccessToken",
                "The token contains no permissions, or permissions can not be understood.",
            )
        });
    }
    // Application permissions cover every mailbox of the tenant.
    if !info.app && !shared.lock().may_act_as(&info.user, &mailbox) {
        return Err(match op {
            Op::SendMail => send_as_denied(),
            _ => access_denied(),
        });
    }
    if op.send_like() {
        let mut st = shared.lock();
        if let Some(f) = st.fail.as_mut() {
            f.remaining -= 1;
            let mut reply = error(f.status, &f.code, f.message.clone());
            if let Some(secs) = f.retry_after {
                reply = reply.with_header("Retry-After", secs.to_string());
            }
            if f.remaining == 0 {
                st.fail = None;
            }
            return Err(reply);
        }
    }
    match op {
        Op::SendMail => send_mail(shared, req, &info, &mailbox),
        Op::CreateDraft => create_draft(shared, req, &mailbox),
        Op::AddAttachment(id) => add_attachment(shared, req, &mailbox, &id),
        Op::CreateUploadSession(id) => create_upload_session(shared, req, &mailbox, &id),
        Op::Send(id) => send_draft(shared, req, &info, &mailbox, &id),
    }
}

/// Who acts on the mailbox: the signed-in user, or for app-only tokens the mailbox itself.
fn principal<'a>(info: &'a AccessTokenInfo, mailbox: &'a str) -> &'a str {
    if info.app { mailbox } else { &info.user }
}

fn send_as_denied() -> GraphError {
    error(
        403,
        "ErrorSendAsDenied",
        "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.",
    )
}

/// The body, at most `MAX_REQUEST` bytes of it: larger ones are refused by their
/// `Content-Length` before reading, or as soon as the limit is passed.
fn read_body(req: &mut Request) -> Result<Vec<u8>, GraphError> {
    req.read_body(MAX_REQUEST).map_err(|e| match e {
        BodyError::TooLarge => too_large(),
        BodyError::Io(e) => invalid_request(format!("Could not read the request body: {e}")),
    })
}

fn require_json(req: &Request) -> Result<(), GraphError> {
    match req.media_type().as_deref() {
        Some("application/json") => Ok(()),
        other => Err(error(
            415,
            "UnsupportedMediaType",
            format!(
                "Content-Type '{}' is not supported here; send application/json.",
                other.unwrap_or("")
            ),
        )),
    }
}

fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(body_read(
            "Invalid JSON. A JSON object was expected at the top level.",
        )),
        Err(e) => Err(body_read(format!("Invalid JSON. {e}"))),
    }
}

fn send_mail(shared: &Shared, req: &mut Request, info: &AccessTokenInfo, mailbox: &str) -> Answer {
    let media = req.media_type();
    let body = read_body(req)?;
    let delivered = match media.as_deref() {
        Some("application/json") => {
            let top = parse_json_object(&body)?;
            let mut message = None;
            let mut save = true;
            for (k, v) in &top {
                match k.as_str() {
                    "message" => message = Some(parse_message(v)?),
                    "saveToSentItems" => {
                        save = v.as_bool().ok_or_else(|| {
                            body_read(
                                "Cannot convert the value of 'saveToSentItems' to Edm.Boolean.",
                            )
                        })?
                    }
                    other => return Err(unknown_property(other, "sendMail action parameters")),
                }
            }
            let message =
                message.ok_or_else(|| invalid_request("The 'message' parameter is required."))?;
            if !message.has_recipients() {
                return Err(invalid_recipients());
            }
            check_from(shared, info, mailbox, &message)?;
            message.into_delivered(mailbox, "json", save)
        }
        Some("text/plain") => {
            // .NET's base64 decoder (Graph's) skips whitespace; anything else must be canonical.
            let text: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            let mime = STANDARD.decode(&text).map_err(|_| {
                error(
                    400,
                    "ErrorMimeContentInvalidBase64String",
                    "Invalid base64 string for MIME content.",
                )
            })?;
            let summary = parse_mime(&mime)?;
            Delivered {
                mailbox: mailbox.to_string(),
                via: "mime".into(),
                save_to_sent_items: true,
                subject: summary.subject,
                to: summary.to,
                cc: summary.cc,
                bcc: summary.bcc,
                reply_to: summary.reply_to,
                mime: Some(mime),
                ..Delivered::default()
            }
        }
        other => {
            return Err(error(
                415,
                "UnsupportedMediaType",
                format!(
                    "Content-Type '{}' is not supported: use application/json or text/plain (base64 MIME).",
                    other.unwrap_or("")
                ),
            ));
        }
    };
    shared.lock().delivered.push(delivered);
    Ok(Reply::empty(202))
}

/// `message.from` other than the sending mailbox needs send-as rights on that address too.
fn check_from(
    shared: &Shared,
    info: &AccessTokenInfo,
    mailbox: &str,
    message: &Message,
) -> Result<(), GraphError> {
    match &message.from {
        Some(from)
            if !from.eq_ignore_ascii_case(mailbox)
                && !shared.lock().may_act_as(principal(info, mailbox), from) =>
        {
            Err(send_as_denied())
        }
        _ => Ok(()),
    }
}

fn create_draft(shared: &Shared, req: &mut Request, mailbox: &str) -> Answer {
    require_json(req)?;
    let body = read_body(req)?;
    let message = parse_message(&Value::Object(parse_json_object(&body)?))?;
    let id = format!("AAMkAD{}=", random_token(48));
    let v = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{mailbox}')/messages/$entity", req.origin()),
        "@odata.etag": format!("W/\"{}\"", random_token(12)),
        "id": id,
        "createdDateTime": date_time_offset(now_secs()),
        "isDraft": true,
        "subject": message.subject,
        "hasAttachments": !message.attachments.is_empty(),
        "importance": message.importance.clone().unwrap_or_else(|| "normal".into()),
    });
    shared.lock().drafts.insert(
        id,
        Draft {
            mailbox: mailbox.to_string(),
            message,
            sessions: Vec::new(),
            sent: false,
        },
    );
    Ok(json(201, v))
}

fn add_attachment(shared: &Shared, req: &mut Request, mailbox: &str, id: &str) -> Answer {
    shared.lock().draft_mut(mailbox, id)?;
    require_json(req)?;
    let body = read_body(req)?;
    let attachment = parse_attachment(&Value::Object(parse_json_object(&body)?))?;
    if attachment.size >= UPLOAD_SESSION_MIN {
        return Err(error(
            413,
            "ErrorRequestEntityTooLarge",
            "Attachments of 3 MB or more must be uploaded with an upload session (createUploadSession).",
        ));
    }
    let v = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users('{mailbox}')/messages('{id}')/attachments/$entity", req.origin()),
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": format!("AAMkAD{}=", random_token(24)),
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
        "isInline": attachment.is_inline,
        "contentId": attachment.content_id,
    });
    // Looked up again: the draft may have been sent while the body was read.
    shared
        .lock()
        .draft_mut(mailbox, id)?
        .message
        .attachments
        .push(attachment);
    Ok(json(201, v))
}

fn create_upload_session(shared: &Shared, req: &mut Request, mailbox: &str, id: &str) -> Answer {
    shared.lock().draft_mut(mailbox, id)?;
    require_json(req)?;
    let body = read_body(req)?;
    let top = parse_json_object(&body)?;
    let mut item = None;
    for (k, v) in &top {
        match k.as_str() {
            "AttachmentItem" => {
                item = Some(v.as_object().ok_or_else(|| {
                    body_read("Cannot read 'AttachmentItem': an object was expected.")
                })?)
            }
            other => return Err(unknown_property(other, "createUploadSession parameters")),
        }
    }
    let item =
        item.ok_or_else(|| invalid_request("The 'AttachmentItem' parameter is required."))?;
    let (mut kind, mut name, mut size) = (None, None, None);
    let (mut content_type, mut is_inline, mut content_id) = (None, false, None);
    for (k, v) in item {
        match k.as_str() {
            "attachmentType" => kind = Some(string(v, k)?),
            "name" => name = Some(string(v, k)?),
            "size" => {
                size =
                    Some(v.as_u64().ok_or_else(|| {
                        body_read("Cannot convert the value of 'size' to Edm.Int64.")
                    })?)
            }
            "contentType" => content_type = opt_string(v, k)?,
            "isInline" => is_inline = boolean(v, k)?,
            "contentId" => content_id = opt_string(v, k)?,
            other => return Err(unknown_property(other, "microsoft.graph.attachmentItem")),
        }
    }
    match kind.as_deref() {
        Some(k) if k.eq_ignore_ascii_case("file") => {}
        Some(k) => {
            return Err(body_read(format!(
                "The value '{k}' is not valid for microsoft.graph.attachmentType."
            )));
        }
        None => {
            return Err(invalid_request(
                "AttachmentItem.attachmentType is required.",
            ));
        }
    }
    let name = name.ok_or_else(|| invalid_request("AttachmentItem.name is required."))?;
    let size = size.ok_or_else(|| invalid_request("AttachmentItem.size is required."))?;
    if size < UPLOAD_SESSION_MIN {
        return Err(error(
            400,
            "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
            "Attachment size must be at least 3 MB for an upload session; use the attachments endpoint for smaller attachments.",
        ));
    }
    if size > UPLOAD_SESSION_MAX {
        return Err(error(
            400,
            "ErrorAttachmentSizeExceeded",
            "The attachment exceeds the maximum size of 150 MB.",
        ));
    }
    let session = random_token(24);
    let token = random_token(32);
    let mut st = shared.lock();
    st.draft_mut(mailbox, id)?.sessions.push(session.clone());
    st.sessions.insert(
        session.clone(),
        Session {
            draft: id.to_string(),
            mailbox: mailbox.to_string(),
            token: token.clone(),
            name,
            content_type,
            is_inline,
            content_id,
            size,
            next: 0,
            hasher: Sha256::new(),
            bytes: (size <= KEEP_BYTES_MAX).then(Vec::new),
            busy: false,
            complete: false,
        },
    );
    Ok(json(
        201,
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.uploadSession", req.origin()),
            "uploadUrl": format!("{}/upload/{session}?token={token}", req.origin()),
            "expirationDateTime": expiration(),
            "nextExpectedRanges": ["0-"],
        }),
    ))
}

fn send_draft(
    shared: &Shared,
    req: &mut Request,
    info: &AccessTokenInfo,
    mailbox: &str,
    id: &str,
) -> Answer {
    let body = read_body(req)?;
    // The action takes no parameters: an empty body, or at most an empty JSON object.
    if !body.iter().all(u8::is_ascii_whitespace) && !parse_json_object(&body)?.is_empty() {
        return Err(body_read("The send action does not take parameters."));
    }
    let mut st = shared.lock();
    let st = &mut *st;
    let draft = st.draft_mut(mailbox, id)?;
    let (sessions, has_recipients, from) = (
        draft.sessions.clone(),
        draft.message.has_recipients(),
        draft.message.from.clone(),
    );
    if sessions
        .iter()
        .any(|s| st.sessions.get(s).is_none_or(|s| !s.complete))
    {
        return Err(invalid_request(
            "The message has an attachment upload incomplete: finish every upload session before sending.",
        ));
    }
    if !has_recipients {
        return Err(invalid_recipients());
    }
    if let Some(from) = from
        && !from.eq_ignore_ascii_case(mailbox)
        && !st.may_act_as(principal(info, mailbox), &from)
    {
        return Err(send_as_denied());
    }
    let draft = st.draft_mut(mailbox, id)?;
    draft.sent = true;
    let delivered = draft
        .message
        .clone()
        .into_delivered(&draft.mailbox, "draft", true);
    st.delivered.push(delivered);
    Ok(Reply::empty(202))
}

fn upload(shared: &Shared, req: &mut Request, id: &str, query: &str) -> Answer {
    shared.lock().stats.upload_puts += 1;
    if req.header("Authorization").is_some() {
        // The upload URL is pre-authenticated; Graph's upload host rejects a bearer token.
        return Err(invalid_token(
            "The upload URL is pre-authenticated: requests to it must not carry an Authorization header.",
        ));
    }
    let token = parse_form(query)
        .and_then(|q| pair(&q, "token").map(str::to_string))
        .unwrap_or_default();
    let mailbox = {
        let st = shared.lock();
        let session = st.sessions.get(id).ok_or_else(item_not_found)?;
        if session.token != token {
            return Err(invalid_token("The upload URL's token is not valid."));
        }
        session.mailbox.clone()
    };
    let _flight = InFlight::enter(shared, &mailbox);
    delay(shared);

    let range = req
        .header("Content-Range")
        .map(str::to_string)
        .ok_or_else(|| {
            invalid_request("Content-Range is required: bytes {first}-{last}/{total}.")
        })?;
    let (a, b, total) = parse_content_range(&range)
        .ok_or_else(|| invalid_request(format!("Content-Range '{range}' is malformed.")))?;
    let Some(len) = req.body_length() else {
        return Err(error(
            411,
            "ErrorInvalidRequest",
            "Content-Length is required.",
        ));
    };
    if len > MAX_CHUNK {
        return Err(error(
            413,
            "ErrorRequestEntityTooLarge",
            "An upload chunk may not exceed 4 MB.",
        ));
    }
    if b < a || b - a + 1 != len {
        return Err(invalid_request(format!(
            "Content-Range '{range}' does not match Content-Length {len}."
        )));
    }
    let (mut hasher, keep) = {
        let mut st = shared.lock();
        let st = &mut *st;
        let session = st.sessions.get_mut(id).ok_or_else(item_not_found)?;
        let draft_open = st.drafts.get(&session.draft).is_some_and(|d| !d.sent);
        if session.complete || !draft_open {
            return Err(item_not_found());
        }
        if total != session.size {
            return Err(invalid_request(format!(
                "Content-Range total {total} differs from the session's size {}.",
                session.size
            )));
        }
        if session.busy || a != session.next || b >= total {
            return Err(error(
                416,
                "ErrorInvalidRange",
                format!(
                    "Range {a}-{b} is not acceptable: the next expected range is {}-.",
                    session.next
                ),
            ));
        }
        session.busy = true;
        (session.hasher.clone(), session.bytes.is_some())
    };

    // Streamed into the hasher: a 150 MB attachment is never held in memory.
    let mut kept = Vec::new();
    let mut read = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let reader = req.reader();
    let ok = loop {
        match reader.read(&mut buf) {
            Ok(0) => break read == len,
            Ok(n) => {
                read += n as u64;
                hasher.update(&buf[..n]);
                if keep {
                    kept.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };

    let mut st = shared.lock();
    let st = &mut *st;
    let session = st.sessions.get_mut(id).ok_or_else(item_not_found)?;
    session.busy = false;
    if !ok {
        return Err(invalid_request(format!(
            "The chunk body ended after {read} of {len} bytes."
        )));
    }
    session.hasher = hasher;
    if let Some(bytes) = session.bytes.as_mut() {
        bytes.extend_from_slice(&kept);
    }
    session.next = b + 1;
    if session.next < session.size {
        return Ok(json(
            200,
            json!({
                "@odata.context": format!("{}/v1.0/$metadata#microsoft.graph.uploadSession", req.origin()),
                "expirationDateTime": expiration(),
                "nextExpectedRanges": [format!("{}-", session.next)],
            }),
        ));
    }
    session.complete = true;
    let attachment = Attachment {
        name: session.name.clone(),
        content_type: session.content_type.clone(),
        size: session.size,
        sha256: format!("{:x}", session.hasher.clone().finalize()),
        is_inline: session.is_inline,
        content_id: session.content_id.clone(),
        bytes: session.bytes.take(),
    };
    let draft_id = session.draft.clone();
    let draft = st.drafts.get_mut(&draft_id).ok_or_else(item_not_found)?;
    draft.message.attachments.push(attachment);
    Ok(Reply::empty(201).with_header(
        "Location",
        format!(
            "{}/v1.0/users('{}')/messages('{draft_id}')/attachments('{}')",
            req.origin(),
            draft.mailbox,
            random_token(24)
        ),
    ))
}

// ---- message JSON ----

fn unknown_property(name: &str, ty: &str) -> GraphError {
    body_read(format!(
        "The property '{name}' does not exist on type '{ty}'. Make sure to only use property names that are defined by the type or mark the type as open type."
    ))
}

fn string(v: &Value, key: &str) -> Result<String, GraphError> {
    v.as_str().map(str::to_string).ok_or_else(|| {
        body_read(format!(
            "Cannot convert the value of '{key}' to Edm.String."
        ))
    })
}

/// A nullable string property.
fn opt_string(v: &Value, key: &str) -> Result<Option<String>, GraphError> {
    if v.is_null() {
        Ok(None)
    } else {
        string(v, key).map(Some)
    }
}

fn boolean(v: &Value, key: &str) -> Result<bool, GraphError> {
    v.as_bool().ok_or_else(|| {
        body_read(format!(
            "Cannot convert the value of '{key}' to Edm.Boolean."
        ))
    })
}

fn array<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>, GraphError> {
    v.as_array().ok_or_else(|| {
        body_read(format!(
            "A collection was expected for '{key}' (collections cannot be null)."
        ))
    })
}

fn object<'a>(v: &'a Value, key: &str) -> Result<&'a Map<String, Value>, GraphError> {
    v.as_object()
        .ok_or_else(|| body_read(format!("An object was expected for '{key}'.")))
}

fn parse_message(v: &Value) -> Result<Message, GraphError> {
    let mut m = Message::default();
    for (k, val) in object(v, "message")? {
        match k.as_str() {
            "@odata.type" if val == "#microsoft.graph.message" => {}
            "subject" => m.subject = opt_string(val, k)?.unwrap_or_default(),
            "body" => {
                let mut content_type = "Text".to_string();
                let mut content = String::new();
                for (bk, bv) in object(val, k)? {
                    match bk.as_str() {
                        "contentType" => {
                            let t = string(bv, bk)?;
                            content_type = if t.eq_ignore_ascii_case("text") {
                                "Text".into()
                            } else if t.eq_ignore_ascii_case("html") {
                                "HTML".into()
                            } else {
                                return Err(body_read(format!(
                                    "The value '{t}' is not valid for microsoft.graph.bodyType."
                                )));
                            };
                        }
                        "content" => content = opt_string(bv, bk)?.unwrap_or_default(),
                        other => return Err(unknown_property(other, "microsoft.graph.itemBody")),
                    }
                }
                m.body_type = Some(content_type);
                m.body = Some(content);
            }
            "toRecipients" => m.to = recipients(val, k)?,
            "ccRecipients" => m.cc = recipients(val, k)?,
            "bccRecipients" => m.bcc = recipients(val, k)?,
            "replyTo" => m.reply_to = recipients(val, k)?,
            "from" => m.from = Some(recipient(val)?.1),
            "importance" => {
                let i = string(val, k)?.to_ascii_lowercase();
                if !matches!(i.as_str(), "low" | "normal" | "high") {
                    return Err(body_read(format!(
                        "The value '{i}' is not valid for microsoft.graph.importance."
                    )));
                }
                m.importance = Some(i);
            }
            "internetMessageHeaders" => {
                for h in array(val, k)? {
                    let (mut name, mut value) = (None, None);
                    for (hk, hv) in object(h, k)? {
                        match hk.as_str() {
                            "name" => name = Some(string(hv, hk)?),
                            "value" => value = Some(string(hv, hk)?),
                            other => {
                                return Err(unknown_property(
                                    other,
                                    "microsoft.graph.internetMessageHeader",
                                ));
                            }
                        }
                    }
                    let name = name.unwrap_or_default();
                    let value = value.unwrap_or_default();
                    let valid_name =
                        name.len() > 2 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                    if !(name.starts_with("X-") || name.starts_with("x-")) || !valid_name {
                        return Err(error(
                            400,
                            "InvalidInternetMessageHeader",
                            format!(
                                "The internet message header name '{name}' should start with 'x-' or 'X-'."
                            ),
                        ));
                    }
                    if value.contains(['\r', '\n']) {
                        return Err(error(
                            400,
                            "InvalidInternetMessageHeader",
                            format!("The value of internet message header '{name}' is not valid."),
                        ));
                    }
                    m.headers.push((name, value));
                }
            }
            "attachments" => {
                for a in array(val, k)? {
                    m.attachments.push(parse_attachment(a)?);
                }
            }
            other => return Err(unknown_property(other, "microsoft.graph.message")),
        }
    }
    Ok(m)
}

fn recipients(v: &Value, key: &str) -> Result<Vec<Recipient>, GraphError> {
    array(v, key)?.iter().map(recipient).collect()
}

/// `{"emailAddress":{"address","name"?}}`.
fn recipient(v: &Value) -> Result<Recipient, GraphError> {
    let mut email = None;
    for (k, val) in object(v, "recipient")? {
        match k.as_str() {
            "emailAddress" => email = Some(object(val, k)?),
            other => return Err(unknown_property(other, "microsoft.graph.recipient")),
        }
    }
    let email = email.ok_or_else(invalid_recipients)?;
    let (mut address, mut name) = (None, None);
    for (k, val) in email {
        match k.as_str() {
            "address" => address = opt_string(val, k)?,
            "name" => name = opt_string(val, k)?,
            other => return Err(unknown_property(other, "microsoft.graph.emailAddress")),
        }
    }
    match address {
        Some(a) if mime::is_address(&a) => Ok((name, a)),
        _ => Err(invalid_recipients()),
    }
}

fn parse_attachment(v: &Value) -> Result<Attachment, GraphError> {
    let obj = object(v, "attachment")?;
    if obj.get("@odata.type").and_then(Value::as_str) != Some("#microsoft.graph.fileAttachment") {
        // Without the derived type Graph reads a plain attachment, which has no contentBytes.
        return Err(body_read(
            "Attachments need \"@odata.type\": \"#microsoft.graph.fileAttachment\".",
        ));
    }
    let (mut name, mut bytes, mut content_type) = (None, None, None);
    let (mut is_inline, mut content_id) = (false, None);
    for (k, val) in obj {
        match k.as_str() {
            "@odata.type" => {}
            "name" => name = Some(string(val, k)?),
            "contentType" => content_type = opt_string(val, k)?,
            "contentBytes" => {
                let b64 = string(val, k)?;
                bytes =
                    Some(STANDARD.decode(b64.as_bytes()).map_err(|_| {
                        invalid_request("contentBytes is not a valid base64 string.")
                    })?);
            }
            "isInline" => is_inline = boolean(val, k)?,
            "contentId" => content_id = opt_string(val, k)?,
            other => return Err(unknown_property(other, "microsoft.graph.fileAttachment")),
        }
    }
    let name = name.ok_or_else(|| invalid_request("A file attachment needs a name."))?;
    let bytes = bytes.ok_or_else(|| invalid_request("A file attachment needs contentBytes."))?;
    let size = bytes.len() as u64;
    Ok(Attachment {
        name,
        content_type,
        size,
        sha256: format!("{:x}", Sha256::digest(&bytes)),
        is_inline,
        content_id,
        bytes: (size <= KEEP_BYTES_MAX).then_some(bytes),
    })
}

// ---- MIME form ----

#[derive(Default)]
struct MimeSummary {
    subject: String,
    to: Vec<Recipient>,
    cc: Vec<Recipient>,
    bcc: Vec<Recipient>,
    reply_to: Vec<Recipient>,
}

/// Reads the header section (unfolded) for the recipients and subject. No header section, or
/// no recipient in it, is Graph's `ErrorInvalidRecipients`.
fn parse_mime(raw: &[u8]) -> Result<MimeSummary, GraphError> {
    let (fields, _) = mime::headers(raw).map_err(|e| match e {
        // No header section at all: nothing names a recipient.
        HeaderError::NoHeaders => invalid_recipients(),
        HeaderError::Malformed(line) => error(
            400,
            "ErrorMimeContentConversionFailed",
            format!("The MIME content could not be parsed: header line {line} is malformed."),
        ),
    })?;
    let mut s = MimeSummary::default();
    for (name, value) in &fields {
        let list = match name.to_ascii_lowercase().as_str() {
            "to" => &mut s.to,
            "cc" => &mut s.cc,
            "bcc" => &mut s.bcc,
            "reply-to" => &mut s.reply_to,
            "subject" => {
                if s.subject.is_empty() {
                    s.subject = mime::decode_words(value);
                }
                continue;
            }
            _ => continue,
        };
        list.extend(mime::address_list(value).ok_or_else(invalid_recipients)?);
    }
    if s.to.is_empty() && s.cc.is_empty() && s.bcc.is_empty() {
        return Err(invalid_recipients());
    }
    Ok(s)
}

// ---- time ----

/// Graph's `DateTimeOffset` layout: `YYYY-MM-DDTHH:MM:SS.0000000Z`.
fn date_time_offset(secs: u64) -> String {
    let t = Utc::at(secs);
    format!("{}T{}.0000000Z", t.date(), t.time())
}

/// When an upload session created now expires.
fn expiration() -> String {
    date_time_offset(now_secs() + UPLOAD_SESSION_TTL_SECS)
}
