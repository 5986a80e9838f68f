//! A scripted SMTP submission server for fault tests: it speaks what Exchange Online's
//! client submission endpoint speaks (greeting, EHLO with STARTTLS / 8BITMIME / SMTPUTF8 /
//! AUTH XOAUTH2, STARTTLS with the test CA's certificate, AUTH only under TLS, each bearer
//! token checked at the fake Entra's `/_test/introspect` for the SMTP resource), and breaks
//! at one chosen step for the first `times` sessions: it closes the connection without an
//! answer, or answers `421 4.3.2` and closes. Later sessions behave, so a test can see what a
//! retry does. Every message it received in full (the final "." read) is counted, including
//! one whose `250` it then withheld: that is the message the client cannot know about.
//!
//! Recipients whose local part starts with `tempfail` get `451 4.2.1`, `reject` get
//! `550 5.1.1`, as from Exchange. Runs on the raw-TCP skeleton ([`TcpServer`]); stops when
//! dropped.
//!
//! For a custom provider (any OAuth2 IdP and an SMTP server of its own) it can offer
//! `AUTH OAUTHBEARER` (RFC 7628) instead ([`Sasl::OAuthBearer`]), strictly: the GS2 header
//! must be `n,a=<user>,` (an authzid is required: the server needs the mailbox), the
//! kvpairs `%x01`-separated and closed by `%x01%x01`, `auth=Bearer <token>` present, `host=`
//! and `port=` (optional) naming this server; the token must be live at the introspection URL,
//! carry the required scope and belong to the authzid. A failure is the RFC's exchange:
//! `334 <base64 {"status":"invalid_token","schemes":"bearer","scope":…}>`, the client must
//! answer a single `%x01` (`AQ==`), then `535 5.7.8 Authentication credentials invalid`.
//! Every AUTH attempt is recorded ([`FaultySmtp::auth_attempts`]).

#![allow(dead_code)]

use super::server::{TcpServer, tls_acceptor};
use base64::Engine;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// Where a session breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// On connecting, before the greeting.
    Connect,
    /// When the client says EHLO (first, before TLS): "after the greeting".
    Ehlo,
    /// When the client asks for STARTTLS: "after EHLO".
    Starttls,
    /// After `220 Ready to start TLS`, in place of the handshake: "during STARTTLS".
    Handshake,
    /// When the client sends AUTH: "after AUTH".
    Auth,
    /// When the client sends MAIL FROM.
    Mail,
    /// When the client sends RCPT TO.
    Rcpt,
    /// When the client sends DATA.
    Data,
    /// After 354, once 64 KB of the message (or all of a smaller one) arrived: "during DATA".
    Body,
    /// After the final ".", the message kept, the 250 withheld.
    Dot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close the connection without a word.
    Close,
    /// `421 4.3.2 Service not available, closing transmission channel`, then close.
    Reply421,
    /// Say nothing and keep the connection open until the client gives up.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub at: Step,
    pub action: Action,
    /// Sessions that break; the ones after behave.
    pub times: u32,
}

/// How the server authenticates clients after STARTTLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sasl {
    /// `AUTH XOAUTH2` with an Exchange SMTP token from the fake Entra (resource
    /// `https://outlook.office.com`, `SMTP.Send`), as Exchange Online does.
    #[default]
    Xoauth2Exchange,
    /// `AUTH OAUTHBEARER` only (RFC 7628), each token checked at the introspection URL (any
    /// fake IdP's `/_test/introspect`: the fake Google's, the fake Entra's) for `scope` and
    /// the authzid's user.
    OAuthBearer { scope: String },
}

/// One AUTH command and how it ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthAttempt {
    /// `XOAUTH2` or `OAUTHBEARER`, as the client named it (upper-cased).
    pub mechanism: String,
    /// XOAUTH2's `user=`, or OAUTHBEARER's authzid (the `a=` of the GS2 header, unescaped).
    pub user: Option<String>,
    /// OAUTHBEARER's `host=` and `port=` kvpairs, when sent.
    pub host: Option<String>,
    pub port: Option<String>,
    pub ok: bool,
    /// OAUTHBEARER: the line the client answered the error challenge with (`AQ==` is right).
    pub challenge_reply: Option<String>,
    /// Why the attempt failed, in the server's words (not sent to the client).
    pub failure: Option<String>,
}

/// One message received in full.
#[derive(Clone, Debug)]
pub struct Received {
    /// The authenticated user of the session (XOAUTH2 `user=`, OAUTHBEARER authzid).
    pub user: String,
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether the client was told `250`.
    pub confirmed: bool,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    auth_attempts: Mutex<Vec<AuthAttempt>>,
    sessions: AtomicU32,
    faults_left: AtomicU32,
}

pub struct FaultySmtp {
    server: TcpServer,
    state: Arc<State>,
}

struct Setup {
    fault: Option<Fault>,
    introspect: String,
    sasl: Sasl,
    acceptor: tokio_rustls::TlsAcceptor,
}

fn certs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/certs")
}

fn acceptor() -> tokio_rustls::TlsAcceptor {
    let dir = certs_dir();
    tls_acceptor(&dir.join("server.pem"), &dir.join("server-key.pem"))
}

impl FaultySmtp {
    /// Listens on `127.0.0.1:0`; `introspect` is the fake Entra's `/_test/introspect` URL.
    pub fn start(introspect: &str, fault: Option<Fault>) -> FaultySmtp {
        FaultySmtp::start_with(introspect, Sasl::default(), fault)
    }

    /// Like [`FaultySmtp::start`], authenticating with `sasl`; `introspect` is the
    /// introspection URL of the IdP whose tokens it takes.
    pub fn start_with(introspect: &str, sasl: Sasl, fault: Option<Fault>) -> FaultySmtp {
        let state = Arc::new(State::default());
        state
            .faults_left
            .store(fault.as_ref().map_or(0, |f| f.times), Ordering::SeqCst);
        let setup = Arc::new(Setup {
            fault,
            introspect: introspect.to_owned(),
            sasl,
            acceptor: acceptor(),
        });
        let st = state.clone();
        let server = TcpServer::start("faulty SMTP", move |tcp| {
            let (setup, st) = (setup.clone(), st.clone());
            async move {
                // A session is bounded: no test waits on a stuck one.
                let _ =
                    tokio::time::timeout(Duration::from_secs(120), session(tcp, &setup, &st)).await;
            }
        });
        FaultySmtp { server, state }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    pub fn sessions(&self) -> u32 {
        self.state.sessions.load(Ordering::SeqCst)
    }

    /// Every AUTH command so far, in order.
    pub fn auth_attempts(&self) -> Vec<AuthAttempt> {
        self.state.auth_attempts.lock().unwrap().clone()
    }
}

/// What the session does at `step`: `true` when it breaks there (and has acted).
async fn breaks<S: AsyncWrite + Unpin>(
    step: Step,
    setup: &Setup,
    broken: bool,
    io: &mut S,
) -> bool {
    let Some(f) = setup.fault.as_ref().filter(|f| f.at == step && broken) else {
        return false;
    };
    match f.action {
        Action::Close => {}
        Action::Reply421 => {
            let _ = io
                .write_all(b"421 4.3.2 Service not available, closing transmission channel\r\n")
                .await;
        }
        Action::Hang => tokio::time::sleep(Duration::from_secs(110)).await,
    }
    let _ = io.shutdown().await;
    true
}

async fn session(tcp: tokio::net::TcpStream, setup: &Setup, st: &State) {
    st.sessions.fetch_add(1, Ordering::SeqCst);
    // What OAUTHBEARER's `port=` must say.
    let port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
    let broken = st
        .faults_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let mut plain = BufReader::new(tcp);
    if breaks(Step::Connect, setup, broken, plain.get_mut()).await {
        return;
    }
    let _ = plain
        .get_mut()
        .write_all(b"220 faulty.example Microsoft ESMTP MAIL Service ready\r\n")
        .await;
    // Before TLS: EHLO, then STARTTLS.
    loop {
        let Some((_, verb)) = next_command(&mut plain).await else {
            return;
        };
        match verb.as_str() {
            "EHLO" | "HELO" => {
                if breaks(Step::Ehlo, setup, broken, plain.get_mut()).await {
                    return;
                }
                let _ = plain
                    .get_mut()
                    .write_all(b"250-faulty.example Hello\r\n250-SIZE 37748736\r\n250-8BITMIME\r\n250-STARTTLS\r\n250 SMTPUTF8\r\n")
                    .await;
            }
            "STARTTLS" => {
                if breaks(Step::Starttls, setup, broken, plain.get_mut()).await {
                    return;
                }
                let _ = plain
                    .get_mut()
                    .write_all(b"220 2.0.0 SMTP server ready\r\n")
                    .await;
                if breaks(Step::Handshake, setup, broken, plain.get_mut()).await {
                    return;
                }
                let Ok(tls) = setup.acceptor.accept(plain.into_inner()).await else {
                    return;
                };
                return secure(BufReader::new(tls), setup, st, broken, port).await;
            }
            "QUIT" => {
                let _ = plain.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
                return;
            }
            "AUTH" => {
                let _ = plain
                    .get_mut()
                    .write_all(b"530 5.7.57 Client not authenticated to send mail\r\n")
                    .await;
            }
            _ => {
                let _ = plain
                    .get_mut()
                    .write_all(b"503 5.5.2 Send hello first\r\n")
                    .await;
            }
        }
    }
}

/// The session after STARTTLS: EHLO again, AUTH, then mail transactions.
async fn secure<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: BufReader<S>,
    setup: &Setup,
    st: &State,
    broken: bool,
    port: u16,
) {
    let mut user: Option<String> = None;
    // The answer to AUTH, which OAUTHBEARER builds after its own exchange.
    let mut auth_reply: Vec<u8>;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some((line, verb)) = next_command(&mut io).await else {
            return;
        };
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => match setup.sasl {
                Sasl::Xoauth2Exchange => b"250-faulty.example Hello\r\n250-SIZE 37748736\r\n250-8BITMIME\r\n250-AUTH XOAUTH2\r\n250 SMTPUTF8\r\n",
                Sasl::OAuthBearer { .. } => b"250-faulty.example Hello\r\n250-SIZE 37748736\r\n250-8BITMIME\r\n250-AUTH OAUTHBEARER\r\n250 SMTPUTF8\r\n",
            },
            "AUTH" => {
                if breaks(Step::Auth, setup, broken, io.get_mut()).await {
                    return;
                }
                let (attempt, reply) = match &setup.sasl {
                    Sasl::Xoauth2Exchange => xoauth2(&line, &setup.introspect).await,
                    Sasl::OAuthBearer { scope } => {
                        match oauthbearer(&mut io, &line, &setup.introspect, scope, port).await {
                            Some(v) => v,
                            None => return,
                        }
                    }
                };
                user = attempt.ok.then(|| attempt.user.clone()).flatten();
                st.auth_attempts.lock().unwrap().push(attempt);
                auth_reply = reply;
                &auth_reply
            }
            _ if user.is_none() && verb != "QUIT" && verb != "RSET" && verb != "NOOP" => {
                b"530 5.7.57 Client not authenticated to send mail\r\n"
            }
            "MAIL" => {
                if breaks(Step::Mail, setup, broken, io.get_mut()).await {
                    return;
                }
                from = Some(angle(&line));
                to.clear();
                b"250 2.1.0 Sender OK\r\n"
            }
            "RCPT" => {
                if breaks(Step::Rcpt, setup, broken, io.get_mut()).await {
                    return;
                }
                let address = angle(&line);
                if address.starts_with("tempfail") {
                    b"451 4.2.1 Mailbox temporarily unavailable\r\n"
                } else if address.starts_with("reject") {
                    b"550 5.1.1 RESOLVER.ADR.RecipNotFound; not found\r\n"
                } else if from.is_none() {
                    b"503 5.5.1 Need MAIL first\r\n"
                } else {
                    to.push(address);
                    b"250 2.1.5 Recipient OK\r\n"
                }
            }
            "DATA" if from.is_none() || to.is_empty() => b"503 5.5.1 Need RCPT first\r\n",
            "DATA" => {
                if breaks(Step::Data, setup, broken, io.get_mut()).await {
                    return;
                }
                let _ = io.get_mut().write_all(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n").await;
                let Some(data) = read_data(&mut io, setup, broken).await else {
                    return;
                };
                let at_dot = setup.fault.as_ref().filter(|f| broken && f.at == Step::Dot);
                // A 421 there refuses the message; silence or a close leaves it taken
                // but unconfirmed.
                if at_dot.is_none_or(|f| f.action != Action::Reply421) {
                    st.received.lock().unwrap().push(Received {
                        user: user.clone().unwrap_or_default(),
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data,
                        confirmed: at_dot.is_none(),
                    });
                }
                if breaks(Step::Dot, setup, broken, io.get_mut()).await {
                    return;
                }
                b"250 2.6.0 Queued mail for delivery\r\n"
            }
            "RSET" => {
                from = None;
                to.clear();
                b"250 2.0.0 Resetting\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                let _ = io.get_mut().write_all(b"221 2.0.0 Service closing transmission channel\r\n").await;
                return;
            }
            _ => b"500 5.3.3 Unrecognized command\r\n",
        };
        if io.get_mut().write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The message up to the "." line, dot-unstuffed; `None` when the session breaks in it.
async fn read_data<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    setup: &Setup,
    broken: bool,
) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = io.read_until(b'\n', &mut line).await.ok()?;
        if n == 0 {
            return None;
        }
        if line == b".\r\n" {
            return Some(data);
        }
        let body = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(body);
        if data.len() >= 64 * 1024 && breaks(Step::Body, setup, broken, io.get_mut()).await {
            return None;
        }
        if data.len() > 40 << 20 {
            return None;
        }
    }
}

/// The next command, before TLS or after it: the line and its verb (upper-cased); `None`
/// when the client is gone.
async fn next_command<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<(String, String)> {
    let line = read_line(r).await?;
    let verb = line
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    Some((line, verb))
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<String> {
    let mut line = String::new();
    let mut limited = r.take(64 * 1024);
    match limited.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

/// The address inside `<…>` of MAIL FROM / RCPT TO.
fn angle(line: &str) -> String {
    line.split('<')
        .nth(1)
        .and_then(|r| r.split('>').next())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// What the IdP's `/_test/introspect` says of a token (`None`: unknown, or no answer).
async fn introspect(url: &str, token: &str) -> Option<serde_json::Value> {
    let answer = reqwest::Client::new()
        .get(url)
        .query(&[("token", token)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !answer.status().is_success() {
        return None;
    }
    answer.json::<serde_json::Value>().await.ok()
}

/// `AUTH XOAUTH2 <base64 "user=…\x01auth=Bearer …\x01\x01">` with a token the fake Entra
/// issued for SMTP to that user: the attempt and the answer (`235` or Exchange's `535`).
async fn xoauth2(line: &str, introspect_url: &str) -> (AuthAttempt, Vec<u8>) {
    let mut attempt = AuthAttempt {
        mechanism: word(line, 1).to_ascii_uppercase(),
        ..AuthAttempt::default()
    };
    attempt.ok = good_xoauth2(line, introspect_url, &mut attempt).await;
    if !attempt.ok {
        attempt.failure = Some("not a good XOAUTH2 response with an Exchange SMTP token".into());
    }
    let reply: &[u8] = match attempt.ok {
        true => b"235 2.7.0 Authentication successful\r\n",
        false => b"535 5.7.3 Authentication unsuccessful\r\n",
    };
    (attempt, reply.to_vec())
}

/// The `n`th whitespace-separated word of a command line (empty when there is none).
fn word(line: &str, n: usize) -> &str {
    line.split_whitespace().nth(n).unwrap_or("")
}

async fn good_xoauth2(line: &str, introspect_url: &str, attempt: &mut AuthAttempt) -> bool {
    if !word(line, 1).eq_ignore_ascii_case("XOAUTH2") {
        return false;
    }
    let Some(raw) = base64::engine::general_purpose::STANDARD
        .decode(word(line, 2))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    let mut parts = raw.split('\x01');
    let user = parts.next().and_then(|u| u.strip_prefix("user="));
    let token = parts.next().and_then(|a| a.strip_prefix("auth=Bearer "));
    let (Some(user), Some(token)) = (user, token) else {
        return false;
    };
    attempt.user = Some(user.to_string());
    if !raw.ends_with("\x01\x01") {
        return false;
    }
    let Some(v) = introspect(introspect_url, token).await else {
        return false;
    };
    let resource_ok = v["resource"].as_str() == Some("https://outlook.office.com");
    let scope_ok = v["scopes"].as_array().is_some_and(|s| {
        s.iter()
            .any(|s| s.as_str().is_some_and(|s| s.ends_with("SMTP.Send")))
    });
    let user_ok = v["user"]
        .as_str()
        .is_some_and(|u| u.eq_ignore_ascii_case(user));
    resource_ok && scope_ok && user_ok && v["expired"] != true
}

/// An OAUTHBEARER client response (RFC 7628 3.1), decoded.
#[derive(Debug, Default, PartialEq, Eq)]
struct BearerResponse {
    authzid: String,
    host: Option<String>,
    port: Option<String>,
    token: String,
}

/// A GS2 `saslname` (RFC 5801): `=2C` is `,`, `=3D` is `=`, any other `=` or a bare `,` is
/// malformed.
fn decode_saslname(s: &str) -> Option<String> {
    if s.contains(',') {
        return None;
    }
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `gs2-header %x01 *(key=value %x01) %x01`, the GS2 header `n,a=<authzid>,` (an authzid is
/// required here), an `auth=Bearer <token>` pair, no key twice. `Err(why)`.
fn parse_oauthbearer(msg: &[u8]) -> Result<BearerResponse, String> {
    let msg = std::str::from_utf8(msg).map_err(|_| "the response is not UTF-8".to_string())?;
    let (gs2, rest) = msg
        .split_once('\x01')
        .ok_or("no %x01 after the GS2 header")?;
    let (flag, authz) = gs2.split_once(',').ok_or("the GS2 header has no ','")?;
    // `p=…` would ask for channel binding, which OAUTHBEARER does not have.
    if flag != "n" && flag != "y" {
        return Err(format!(
            "GS2 channel-binding flag {flag:?}: n or y expected"
        ));
    }
    let name = authz
        .strip_suffix(',')
        .ok_or("the GS2 header does not end with ','")?
        .strip_prefix("a=")
        .ok_or("the GS2 header names no authzid (n,a=<user>,)")?;
    let authzid = decode_saslname(name)
        .filter(|a| !a.is_empty())
        .ok_or("the authzid is empty or badly escaped")?;
    let pairs = rest
        .strip_suffix("\x01\x01")
        .ok_or("the kvpairs do not end with %x01%x01")?;
    let mut r = BearerResponse {
        authzid,
        ..BearerResponse::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in pairs.split('\x01') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("kvpair {pair:?} has no '='"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("kvpair key {key:?} is not letters"));
        }
        if seen.contains(&key) {
            return Err(format!("kvpair {key} given twice"));
        }
        seen.push(key);
        match key {
            "auth" => {
                let (scheme, token) = value
                    .split_once(' ')
                    .ok_or("auth= is not 'Bearer <token>'")?;
                if !scheme.eq_ignore_ascii_case("Bearer") || token.is_empty() {
                    return Err("auth= is not 'Bearer <token>'".into());
                }
                r.token = token.to_string();
            }
            "host" => r.host = Some(value.to_string()),
            "port" => r.port = Some(value.to_string()),
            // RFC 7628 allows further keys; a server ignores what it does not know.
            _ => {}
        }
    }
    if r.token.is_empty() {
        return Err("no auth=Bearer <token> kvpair".into());
    }
    Ok(r)
}

/// `AUTH OAUTHBEARER [initial response]` (RFC 7628), the whole exchange: the attempt and the
/// final answer. `None` when the client went away.
async fn oauthbearer<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    line: &str,
    introspect_url: &str,
    scope: &str,
    port: u16,
) -> Option<(AuthAttempt, Vec<u8>)> {
    let mut attempt = AuthAttempt {
        mechanism: word(line, 1).to_ascii_uppercase(),
        ..AuthAttempt::default()
    };
    if attempt.mechanism != "OAUTHBEARER" {
        attempt.failure = Some(format!("mechanism {} not offered", attempt.mechanism));
        return Some((
            attempt,
            b"504 5.7.4 Unrecognized authentication type\r\n".to_vec(),
        ));
    }
    let initial = match word(line, 2) {
        // No initial response: an empty challenge asks for it (RFC 4954 4).
        "" => {
            io.get_mut().write_all(b"334 \r\n").await.ok()?;
            read_line(io).await?
        }
        // "=" is an empty initial response.
        "=" => String::new(),
        b64 => b64.to_string(),
    };
    let parsed = base64::engine::general_purpose::STANDARD
        .decode(initial.trim())
        .map_err(|_| "the response is not base64".to_string())
        .and_then(|raw| parse_oauthbearer(&raw));
    let r = match parsed {
        Ok(r) => r,
        Err(why) => {
            attempt.failure = Some(why);
            return Some((
                attempt,
                b"501 5.5.2 Syntax error in the OAUTHBEARER client response\r\n".to_vec(),
            ));
        }
    };
    attempt.user = Some(r.authzid.clone());
    attempt.host = r.host.clone();
    attempt.port = r.port.clone();
    // host= and port= say where the client thinks it is: this server, as the test CA's
    // certificate names it, on the port it connected to.
    let place_ok = r
        .host
        .as_deref()
        .is_none_or(|h| h == "127.0.0.1" || h.eq_ignore_ascii_case("localhost"))
        && r.port.as_deref().is_none_or(|p| p == port.to_string());
    let token_ok = match introspect(introspect_url, &r.token).await {
        Some(v) => {
            v["expired"] == false
                && v["app"] != true
                && v["scopes"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|s| s.as_str() == Some(scope)))
                && v["user"]
                    .as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(&r.authzid))
        }
        None => false,
    };
    if place_ok && token_ok {
        attempt.ok = true;
        return Some((attempt, b"235 2.7.0 Authentication successful\r\n".to_vec()));
    }
    let status = if place_ok {
        "invalid_token"
    } else {
        "invalid_request"
    };
    attempt.failure = Some(match place_ok {
        true => "the token is not good for this user and scope".into(),
        false => format!(
            "host={:?} port={:?} do not name this server",
            r.host, r.port
        ),
    });
    // RFC 7628 3.2.2: the error is a base64 JSON challenge; its members in the RFC's order.
    let challenge = format!(
        "{{\"status\":\"{status}\",\"schemes\":\"bearer\",\"scope\":{}}}",
        serde_json::Value::from(scope)
    );
    let line = format!(
        "334 {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(challenge)
    );
    io.get_mut().write_all(line.as_bytes()).await.ok()?;
    // 3.2.3: the client must answer a single %x01 (or abort with "*").
    let answer = read_line(io).await?;
    attempt.challenge_reply = Some(answer.clone());
    let reply: &[u8] = match answer.as_str() {
        "AQ==" => b"535 5.7.8 Authentication credentials invalid\r\n",
        "*" => b"501 5.7.0 Authentication aborted\r\n",
        _ => b"501 5.5.2 The error challenge must be answered with %x01 (AQ==)\r\n",
    };
    Some((attempt, reply.to_vec()))
}
