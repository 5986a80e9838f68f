//! A fault-injecting front for the HTTP fakes (fake Graph, fake Entra): it listens on
//! `127.0.0.1:<ephemeral>`, reads each request whole, and either passes it to the fake and
//! the fake's answer back (one connection per request, `Connection: close`), or, for the
//! first `times` requests whose path matches, breaks the way networks and gateways break:
//! a reset while the request is still arriving (the fake never sees it), a reset after the
//! fake answered (the fake acted; the client cannot know), a gateway status instead of the
//! fake's, the fake's status with a garbage or truncated body, or no answer at all.
//!
//! What passed through and what was cut is counted, so a test can tell "never reached the
//! service" from "reached it, answer lost". Stops when dropped; every wait is bounded.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum Break {
    /// Reset after the head and part of the body arrived; the fake never sees the request.
    ResetMidRequest,
    /// Pass the request to the fake, then reset after the first bytes of its answer.
    ResetMidResponse,
    /// Answer this status (with `Retry-After` when given) instead of the fake.
    Status(u16, Option<u32>),
    /// Pass to the fake, keep its status and headers, replace the body with garbage.
    GarbageBody,
    /// Pass to the fake, announce its body's length, send half of it, close.
    TruncatedBody,
    /// Read the request and never answer (the connection stays open up to 100 s).
    Silent,
}

#[derive(Clone, Debug)]
pub struct Rule {
    /// A request whose path contains this breaks.
    pub path: String,
    pub how: Break,
    /// Requests that break; later ones pass. `u32::MAX`: every one.
    pub times: u32,
}

#[derive(Default)]
struct Counts {
    passed: AtomicU32,
    broken: AtomicU32,
    reached_backend_then_cut: AtomicU32,
}

pub struct FaultFront {
    port: u16,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultFront {
    /// In front of `backend` (`http://127.0.0.1:PORT`), breaking as `rules` say.
    pub fn start(backend: &str, rules: Vec<Rule>) -> FaultFront {
        let backend = backend.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault front");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let left: Arc<Mutex<Vec<(Rule, u32)>>> = Arc::new(Mutex::new(
            rules
                .into_iter()
                .map(|r| {
                    let n = r.times;
                    (r, n)
                })
                .collect(),
        ));
        let (c, st) = (counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (backend, left, c, st) =
                            (backend.clone(), left.clone(), c.clone(), st.clone());
                        std::thread::spawn(move || {
                            let _ = connection(tcp, &backend, &left, &c, &st);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultFront {
            port,
            counts,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests passed through whole (answer included).
    pub fn passed(&self) -> u32 {
        self.counts.passed.load(Ordering::SeqCst)
    }

    /// Requests broken, of any kind.
    pub fn broken(&self) -> u32 {
        self.counts.broken.load(Ordering::SeqCst)
    }

    /// Requests the fake answered whose answer the client did not get whole.
    pub fn cut_after_backend(&self) -> u32 {
        self.counts.reached_backend_then_cut.load(Ordering::SeqCst)
    }
}

impl Drop for FaultFront {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request: its head (as text) and its body, by `Content-Length`.
fn read_request(tcp: &mut TcpStream, partial: bool) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tcp.read(&mut byte)?;
        if n == 0 || buf.len() > 1 << 20 {
            return Err(std::io::Error::other("no request head"));
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    let want = if partial {
        length.min(body.len().max(1)).min(length / 2)
    } else {
        length
    };
    while body.len() < want {
        let n = tcp.read(&mut byte)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&byte[..n]);
    }
    Ok((head, body))
}

fn take_rule(left: &Mutex<Vec<(Rule, u32)>>, head: &str) -> Option<Break> {
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let mut rules = left.lock().unwrap();
    let (rule, n) = rules
        .iter_mut()
        .find(|(r, n)| *n > 0 && path.contains(&r.path))?;
    if *n != u32::MAX {
        *n -= 1;
    }
    Some(rule.how.clone())
}

/// Sends the request to the fake with `Connection: close` and reads its whole answer.
fn forward(backend: &str, head: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = TcpStream::connect(backend)?;
    b.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let head = format!("{}\r\n\r\n", lines.join("\r\n"));
    b.write_all(head.as_bytes())?;
    b.write_all(body)?;
    let mut answer = Vec::new();
    b.read_to_end(&mut answer)?;
    Ok(answer)
}

/// A reset (RST), not an orderly close: what a dropped middlebox connection looks like.
fn reset(tcp: TcpStream) {
    let sock = socket_of(&tcp);
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own with a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            sock,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(tcp);
}

fn socket_of(tcp: &TcpStream) -> i32 {
    use std::os::fd::AsRawFd;
    tcp.as_raw_fd()
}

fn status_reply(status: u16, retry_after: Option<u32>) -> Vec<u8> {
    let reason = match status {
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let body = format!("<html><body><h1>{status} {reason}</h1></body></html>");
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(s) = retry_after {
        head.push_str(&format!("Retry-After: {s}\r\n"));
    }
    head.push_str("\r\n");
    [head.into_bytes(), body.into_bytes()].concat()
}

/// An answer's head without its `Content-Length` and final blank line, to announce another.
fn head_without_length(h: &[u8]) -> String {
    String::from_utf8_lossy(h)
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The answer's head and body, split.
fn split(answer: &[u8]) -> (&[u8], &[u8]) {
    match answer.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => (&answer[..i + 4], &answer[i + 4..]),
        None => (answer, &[]),
    }
}

fn connection(
    mut tcp: TcpStream,
    backend: &str,
    left: &Mutex<Vec<(Rule, u32)>>,
    c: &Counts,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    // Peek at the head first: a mid-request reset must not read the whole body.
    let mut peek = [0u8; 8192];
    let n = tcp.peek(&mut peek)?;
    let head_now = String::from_utf8_lossy(&peek[..n]).into_owned();
    let rule = take_rule(left, &head_now);
    if rule == Some(Break::ResetMidRequest) {
        let _ = read_request(&mut tcp, true);
        c.broken.fetch_add(1, Ordering::SeqCst);
        reset(tcp);
        return Ok(());
    }
    let (head, body) = read_request(&mut tcp, false)?;
    match rule {
        None => {
            let answer = forward(backend, &head, &body)?;
            tcp.write_all(&answer)?;
            c.passed.fetch_add(1, Ordering::SeqCst);
        }
        Some(Break::Status(status, retry_after)) => {
            tcp.write_all(&status_reply(status, retry_after))?;
            c.broken.fetch_add(1, Ordering::SeqCst);
        }
        Some(Break::Silent) => {
            c.broken.fetch_add(1, Ordering::SeqCst);
            for _ in 0..1000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(how) => {
            let answer = forward(backend, &head, &body)?;
            c.broken.fetch_add(1, Ordering::SeqCst);
            c.reached_backend_then_cut.fetch_add(1, Ordering::SeqCst);
            let (h, b) = split(&answer);
            match how {
                Break::ResetMidResponse => {
                    tcp.write_all(&answer[..answer.len().min(12)])?;
                    reset(tcp);
                    return Ok(());
                }
                Break::GarbageBody => {
                    let garbage = b"\x00\xff{not json at all";
                    let head = head_without_length(h);
                    let head = format!("{head}\r\nContent-Length: {}\r\n\r\n", garbage.len());
                    tcp.write_all(head.as_bytes())?;
                    tcp.write_all(garbage)?;
                    // The client has its answer; the fake's did reach it, in a way.
                    c.reached_backend_then_cut.fetch_sub(1, Ordering::SeqCst);
                }
                Break::TruncatedBody => {
                    let head = head_without_length(h);
                    let announced = b.len().max(64);
                    let head = format!("{head}\r\nContent-Length: {announced}\r\n\r\n");
                    tcp.write_all(head.as_bytes())?;
                    tcp.write_all(&b[..b.len() / 2])?;
                }
                _ => unreachable!("handled above"),
            }
        }
    }
    let _ = tcp.shutdown(Shutdown::Both);
    Ok(())
}
