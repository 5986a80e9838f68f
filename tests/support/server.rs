//! The one HTTP skeleton every in-process fake (Entra, Graph, and any fake to come) runs on.
//!
//! It owns what is the same for every fake, so that a fake holds only what its service does:
//!
//! - [`Server`]: a `tiny_http` server on `127.0.0.1:<ephemeral port>` with a fixed number of
//!   worker threads, each answering requests with the fake's handler (`Fn(&mut Request) ->
//!   Reply`). A handler that panics costs that one request (answered `500`), never a worker:
//!   with all workers gone, clients would hang instead of failing. Dropping the [`Server`]
//!   stops and joins every worker, so a test's fake is gone when the test is.
//! - [`Request`]: what a handler reads: method, path and query, headers, the bearer token, the
//!   media type, and the body (whole with a size limit, streamed, or discarded).
//! - [`Reply`]: status, headers and body, with constructors for JSON, HTML, plain text,
//!   redirects and empty answers. Every reply is written with a `Content-Length` (never
//!   chunked), so simple clients need not decode chunks.
//! - [`SharedState`]: the state a fake's handle and its workers share, which outlives a
//!   panicking handler.
//! - Small utilities every fake needs: unguessable bytes, tokens and UUIDs, the Unix time, and
//!   [`Utc`] for timestamps (RFC 3339, HTTP-date, or a service's own layout).
//!
//! What a fake's service does, including its error format, its routes, its statistics and
//! what it logs as unrouted, stays in the fake.

// Shared test support: every test crate that includes it uses only part of it.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Read};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use tiny_http::Header;

/// A running server; it stops (and its workers are joined) when dropped.
pub struct Server {
    url: String,
    http: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and answers every request with `handler` on `workers` threads.
    /// `name` (e.g. `"fake Entra"`) names the threads (`fake-entra-0`, …) and the panics of a
    /// failed start.
    pub fn start<H>(name: &str, workers: usize, handler: H) -> Server
    where
        H: Fn(&mut Request) -> Reply + Send + Sync + 'static,
    {
        let http = Arc::new(
            tiny_http::Server::http("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("{name}: bind 127.0.0.1:0: {e}")),
        );
        let port = http
            .server_addr()
            .to_ip()
            .unwrap_or_else(|| panic!("{name}: not a TCP listener"))
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let origin: Arc<str> = Arc::from(url.as_str());
        let handler = Arc::new(handler);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_name = name.to_lowercase().replace(' ', "-");
        let workers = (0..workers)
            .map(|i| {
                let (http, stop, handler, origin) =
                    (http.clone(), stop.clone(), handler.clone(), origin.clone());
                std::thread::Builder::new()
                    .name(format!("{thread_name}-{i}"))
                    .spawn(move || serve(&http, &stop, &*handler, &origin))
                    .unwrap_or_else(|e| panic!("{name}: spawn worker: {e}"))
            })
            .collect();
        Server {
            url,
            http,
            stop,
            workers,
        }
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Each unblock wakes exactly one worker blocked in recv().
        for _ in &self.workers {
            self.http.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn serve(
    http: &tiny_http::Server,
    stop: &AtomicBool,
    handler: &(dyn Fn(&mut Request) -> Reply + Send + Sync),
    origin: &Arc<str>,
) {
    while !stop.load(Ordering::SeqCst) {
        match http.recv() {
            Ok(inner) => {
                // A panicking handler drops the request while unwinding, which tiny_http
                // answers with an empty 500; the worker goes on with the next request.
                let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    let mut req = Request::new(inner, origin.clone());
                    let reply = handler(&mut req);
                    req.respond(reply);
                }));
            }
            Err(_) if stop.load(Ordering::SeqCst) => break,
            Err(_) => continue,
        }
    }
}

/// One request, as a handler sees it.
pub struct Request {
    inner: tiny_http::Request,
    origin: Arc<str>,
    path: String,
    query: String,
}

/// Why [`Request::read_body`] returned no body.
#[derive(Debug)]
pub enum BodyError {
    /// Longer than the limit (by its `Content-Length`, or once more than the limit arrived).
    TooLarge,
    /// The connection failed or ended before the declared length.
    Io(io::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge => f.write_str("the body is larger than allowed"),
            BodyError::Io(e) => e.fmt(f),
        }
    }
}

impl Request {
    fn new(inner: tiny_http::Request, origin: Arc<str>) -> Request {
        let url = inner.url();
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let (path, query) = (path.to_string(), query.to_string());
        Request {
            inner,
            origin,
            path,
            query,
        }
    }

    /// `http://127.0.0.1:PORT` of the server that got the request (for URLs in answers).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `GET`, `POST`, …, exactly as sent (methods are case-sensitive).
    pub fn method(&self) -> &str {
        self.inner.method().as_str()
    }

    /// The path as sent, still percent-encoded, without the query.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query as sent (without `?`; empty when there is none).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// `"METHOD /path"`, the way fakes log a request they have no route for.
    pub fn line(&self) -> String {
        format!("{} {}", self.method(), self.path)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The media type of the body, lower-cased, without parameters (`application/json`).
    pub fn media_type(&self) -> Option<String> {
        self.header("Content-Type").map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
    pub fn bearer(&self) -> Option<&str> {
        let (scheme, token) = self.header("Authorization")?.split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("Bearer") && !token.is_empty()).then_some(token)
    }

    /// The declared `Content-Length` (`None` without one, e.g. chunked).
    pub fn body_length(&self) -> Option<u64> {
        self.inner.body_length().map(|n| n as u64)
    }

    /// The whole body, at most `limit` bytes of it: a longer one is refused by its
    /// `Content-Length` before reading, or as soon as more than `limit` bytes arrived.
    pub fn read_body(&mut self, limit: u64) -> Result<Vec<u8>, BodyError> {
        if self.body_length().is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge);
        }
        let mut body = Vec::new();
        self.reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(BodyError::Io)?;
        if body.len() as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        Ok(body)
    }

    /// The body as a stream, for handlers that must not hold it in memory.
    pub fn reader(&mut self) -> &mut dyn Read {
        self.inner.as_reader()
    }

    /// Reads and drops what is left of the body, up to `limit` bytes, so that the client
    /// reads the answer instead of a connection reset.
    pub fn discard_body(&mut self, limit: u64) {
        let _ = io::copy(&mut self.reader().take(limit), &mut io::sink());
    }

    fn respond(self, reply: Reply) {
        let mut response = tiny_http::Response::from_data(reply.body)
            .with_status_code(reply.status)
            // Always Content-Length: simple clients need not implement chunked decoding.
            .with_chunked_threshold(usize::MAX);
        for (name, value) in reply.headers {
            if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(h);
            }
        }
        let _ = self.inner.respond(response);
    }
}

/// A complete answer: status, headers in order, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// No body, no headers.
    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `body` as `content_type`.
    pub fn typed(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            body: body.into(),
            ..Reply::empty(status)
        }
        .with_header("Content-Type", content_type)
    }

    /// `application/json; charset=utf-8`.
    pub fn json(status: u16, v: &serde_json::Value) -> Reply {
        Reply::typed(status, "application/json; charset=utf-8", v.to_string())
    }

    /// `text/html; charset=utf-8`.
    pub fn html(status: u16, html: impl Into<String>) -> Reply {
        Reply::typed(status, "text/html; charset=utf-8", html.into())
    }

    /// `text/plain; charset=utf-8`.
    pub fn plain(status: u16, text: &str) -> Reply {
        Reply::typed(status, "text/plain; charset=utf-8", text)
    }

    /// `404 Not Found` or `405 Method Not Allowed` as plain text: what a fake without its
    /// service's own error page answers a path or method it has no route for.
    pub fn no_route(status: u16) -> Reply {
        let reason = if status == 404 {
            "Not Found"
        } else {
            "Method Not Allowed"
        };
        Reply::plain(status, reason)
    }

    /// `302 Found` to `location`.
    pub fn redirect(location: impl Into<String>) -> Reply {
        Reply::empty(302).with_header("Location", location)
    }

    /// Adds a header (after those already there).
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

// ---- state ----

/// A fake's state, shared by its handle (the test) and its worker threads.
pub struct SharedState<T> {
    state: Mutex<T>,
}

impl<T> SharedState<T> {
    pub fn new(state: T) -> SharedState<T> {
        SharedState {
            state: Mutex::new(state),
        }
    }

    /// The state, even after a handler panicked while holding it: a panicking handler must not
    /// turn every later request into a second panic.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---- ids and time ----

/// Unguessable bytes: the kernel CSPRNG, or (off Linux) SHA-256 over time, a counter and the
/// process id, which is still unique and unpredictable enough for a test fake.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(&mut buf).is_ok()
    {
        return buf;
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = Vec::with_capacity(n + 32);
    while out.len() < n {
        let mut h = Sha256::new();
        h.update(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        out.extend_from_slice(&h.finalize());
    }
    out.truncate(n);
    out
}

/// `bytes` random bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

/// A random (version 4) UUID, lower-case: `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`.
pub fn uuid() -> String {
    let mut b = random_bytes(16);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    guid(&b)
}

/// The first 16 bytes of `b` in GUID layout (`8-4-4-4-12` lower-case hex digits).
pub fn guid(b: &[u8]) -> String {
    let hex: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A UTC calendar time to the second, for the timestamps services put in their answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Days since 1970-01-01 (it gives the weekday).
    days: i64,
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Utc {
    pub fn now() -> Utc {
        Utc::at(now_secs())
    }

    /// The time `secs` seconds after the Unix epoch.
    pub fn at(secs: u64) -> Utc {
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Utc {
            days,
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HH:MM:SS`.
    pub fn time(&self) -> String {
        format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second)
    }

    /// RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(&self) -> String {
        format!("{}T{}Z", self.date(), self.time())
    }

    /// An HTTP-date (RFC 9110 IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn http_date(&self) -> String {
        const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{}, {:02} {} {:04} {} GMT",
            WEEKDAYS[self.days.rem_euclid(7) as usize],
            self.day,
            MONTHS[self.month as usize - 1],
            self.year,
            self.time()
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
/// mailer has its own (`output::rfc3339`); the fakes keep theirs on purpose, so that a bug
/// in mailer's dates cannot hide behind the same bug in the servers it is tested against.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The raw-TCP counterpart of [`Server`], for fakes that speak something other than HTTP
/// or sit in front of one (a TLS front, a scripted SMTP server): a listener on
/// `127.0.0.1:<ephemeral port>` whose connections each run `session` on one current-thread
/// runtime of its own thread. Dropping it stops accepting and joins the thread.
pub struct TcpServer {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TcpServer {
    pub fn start<F, Fut>(name: &str, session: F) -> TcpServer
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: bind 127.0.0.1:0: {e}"));
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.to_lowercase().replace(' ', "-"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                let Ok((tcp, _)) = accepted else { continue };
                                tokio::task::spawn_local(session(tcp));
                            }
                        }
                    }
                });
            })
            .unwrap_or_else(|e| panic!("{name}: spawn: {e}"));
        TcpServer {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TLS acceptor serving `cert` (PEM chain) with `key` (PEM), on the rustls and ring that
/// mailer itself uses.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .expect("read the certificate")
        .collect::<Result<_, _>>()
        .expect("parse the certificate");
    let key = PrivateKeyDer::from_pem_file(key).expect("read the key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("the server certificate");
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}
