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

/// One message received in full.
#[derive(Clone, Debug)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether the client was told `250`.
    pub confirmed: bool,
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
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
        let state = Arc::new(State::default());
        state
            .faults_left
            .store(fault.as_ref().map_or(0, |f| f.times), Ordering::SeqCst);
        let setup = Arc::new(Setup {
            fault,
            introspect: introspect.to_owned(),
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
        let Some(line) = read_line(&mut plain).await else {
            return;
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
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
                return secure(BufReader::new(tls), setup, st, broken).await;
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
) {
    let mut authed = false;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut io).await else {
            return;
        };
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-faulty.example Hello\r\n250-SIZE 37748736\r\n250-8BITMIME\r\n250-AUTH XOAUTH2\r\n250 SMTPUTF8\r\n",
            "AUTH" => {
                if breaks(Step::Auth, setup, broken, io.get_mut()).await {
                    return;
                }
                authed = good_xoauth2(&line, &setup.introspect).await;
                match authed {
                    true => b"235 2.7.0 Authentication successful\r\n",
                    false => b"535 5.7.3 Authentication unsuccessful\r\n",
                }
            }
            _ if !authed && verb != "QUIT" && verb != "RSET" && verb != "NOOP" => {
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

/// `AUTH XOAUTH2 <base64 "user=…\x01auth=Bearer …\x01\x01">` with a token the fake Entra
/// issued for SMTP to that user.
async fn good_xoauth2(line: &str, introspect: &str) -> bool {
    let mut words = line.split_whitespace().skip(1);
    if !words
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("XOAUTH2"))
    {
        return false;
    }
    let Some(raw) = words
        .next()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
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
    if !raw.ends_with("\x01\x01") {
        return false;
    }
    let Ok(answer) = reqwest::Client::new()
        .get(introspect)
        .query(&[("token", token)])
        .timeout(Duration::from_secs(10))
        .send()
        .await
    else {
        return false;
    };
    if !answer.status().is_success() {
        return false;
    }
    let Ok(v) = answer.json::<serde_json::Value>().await else {
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
