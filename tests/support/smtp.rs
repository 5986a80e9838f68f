//! A real SMTP submission server for the integration tests: `tests/support/smtp/server.js`
//! (nodemailer's `smtp-server` on Node.js) run as a child process on `127.0.0.1:<ephemeral>`.
//!
//! It behaves like Exchange Online's client submission endpoint where a client can get it
//! wrong: TLS with a certificate from the test CA ([`SmtpServer::ca_file`]), STARTTLS by default
//! (AUTH before it is refused with 538) or implicit TLS; AUTH XOAUTH2 only, each bearer token
//! checked against the fake Entra's `/_test/introspect` (resource `https://outlook.office.com`,
//! scope `SMTP.Send`, not expired, same user as `user=`). Failures use Exchange's texts:
//! `535 5.7.3 Authentication unsuccessful`, or Gmail's `334 <base64 JSON>` challenge first
//! (style `"334"`), or the `535 5.7.139 … SmtpClientAuthentication is disabled` of a tenant
//! with SMTP AUTH off. With [`SmtpOptions::google`] it behaves like smtp.gmail.com instead:
//! tokens checked at the fake Google's introspection (scope `https://mail.google.com/`, same
//! user), every failure answered Gmail's way (`334 ` + base64
//! `{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}`, then after the
//! client's empty line the two-line `535-5.7.8 Username and Password not accepted. Learn more
//! at` / `535 5.7.8  https://support.google.com/mail/?p=BadCredentials <id> - gsmtp`).
//! Recipients whose local part starts with `tempfail` get `451 4.3.0`,
//! `reject` get `550 5.1.1`. Accepted messages are kept byte for byte in a temp dir.
//!
//! Needs `node` (≥ 20) and `npm ci --prefix tests/support/smtp` once. Every wait here is
//! bounded; the server dies with its [`SmtpServer`] (and with the test process: it exits when
//! its stdin closes).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const START_LIMIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(20);

/// How the server behaves. `Default` = STARTTLS, no introspection URL (every token fails),
/// no forced rejections, SMTP AUTH enabled.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Implicit TLS (as on port 465) instead of STARTTLS.
    pub secure: bool,
    /// The fake Entra's introspection URL: `fake.authority() + "/_test/introspect"`; in
    /// [`Self::google`] mode the fake Google's (`FakeGoogle::introspect_url()`).
    pub introspect: String,
    /// `Some((style, n))`: the first `n` AUTH attempts fail even with a good token. Style
    /// `"535"` answers at once; `"334"` sends Gmail's challenge first, then 535 after the
    /// client's empty line. Bad tokens always fail in the same style.
    pub reject: Option<(&'static str, u32)>,
    /// Every AUTH gets `535 5.7.139 … SmtpClientAuthentication is disabled for the Tenant …`.
    pub disabled: bool,
    /// A `MAIL FROM` other than the authenticated user gets Exchange's `550 5.7.60` (the
    /// user may not send as that mailbox).
    pub send_as_denied: bool,
    /// Gmail's manner instead of Exchange's: tokens from the fake Google with scope
    /// `https://mail.google.com/` for the `user=` of XOAUTH2 (not a service account's own
    /// token); failures as Gmail answers them (`334` JSON challenge, then a two-line
    /// `535-5.7.8 …` after the client's empty line); `- gsmtp` in the greeting and the DATA
    /// answer. `disabled` and `send_as_denied` are Exchange's and ignored.
    pub google: bool,
    /// `Some(ms)`: wait this long before the greeting instead of smtp-server's fixed 100 ms
    /// early-talker delay (benchmarks use 0 so that only the client's cost is measured).
    pub greeting_delay_ms: Option<u32>,
}

/// One accepted message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpMessage {
    /// The envelope's `MAIL FROM` address.
    pub from: String,
    /// The envelope's accepted `RCPT TO` addresses, in order.
    pub to: Vec<String>,
    /// The XOAUTH2 `user=` of the session.
    pub user: String,
    /// Whether the session was under TLS (always, since AUTH needs it).
    pub secure: bool,
    /// The DATA bytes as received, dot-unstuffed, without the final `.` line; CRLF line ends.
    pub data: Vec<u8>,
}

impl SmtpMessage {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Counters of the whole server run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmtpStats {
    /// TCP connections accepted (also those that never finished a TLS handshake).
    pub connections: u32,
    /// AUTH attempts that succeeded.
    pub auth_ok: u32,
    /// AUTH attempts that reached token checking and failed (not the 538 before STARTTLS, nor
    /// syntax errors).
    pub auth_failed: u32,
    /// Messages accepted.
    pub messages: u32,
}

/// A running server; dropping it kills the process and waits for it.
pub struct SmtpServer {
    child: Child,
    port: u16,
    out: tempfile::TempDir,
    stderr: Arc<Mutex<String>>,
}

fn smtp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp")
}

impl SmtpServer {
    /// Starts the server and waits (at most 20 s) until it listens.
    pub fn start(opts: SmtpOptions) -> SmtpServer {
        let dir = smtp_dir();
        assert!(
            dir.join("node_modules/smtp-server/package.json").is_file(),
            "the test SMTP server's dependencies are missing: run `npm ci --prefix tests/support/smtp` \
             in the repository root (needs Node.js >= 20 and npm)"
        );
        let out = tempfile::Builder::new()
            .prefix("mailer-smtp-")
            .tempdir()
            .expect("SMTP server: temp dir");
        let mut config = json!({
            "secure": opts.secure,
            "introspect": opts.introspect,
            "disabled": opts.disabled,
            "sendAsDenied": opts.send_as_denied,
            "google": opts.google,
            "outDir": out.path(),
        });
        if let Some(ms) = opts.greeting_delay_ms {
            config["greetingDelayMs"] = json!(ms);
        }
        if let Some((style, count)) = opts.reject {
            config["reject"] = json!({ "style": style, "count": count });
        }
        let mut child = Command::new("node")
            .arg(dir.join("server.js"))
            .arg(config.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("SMTP server: cannot run `node` ({e}): install Node.js >= 20")
            });

        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[smtp server] {line}");
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        let (tx, rx) = mpsc::channel();
        let pipe = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            // Keep reading to EOF so the server can never block on a full pipe.
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });

        let line = rx.recv_timeout(START_LIMIT);
        let port = line
            .as_deref()
            .ok()
            .and_then(|l| l.strip_prefix("PORT "))
            .and_then(|p| p.trim().parse::<u16>().ok());
        match port {
            Some(port) => SmtpServer {
                child,
                port,
                out,
                stderr,
            },
            None => {
                let _ = child.kill();
                let status = child.wait();
                // Give the stderr thread a moment to collect the last words.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "SMTP server did not start within {START_LIMIT:?} (first stdout line {line:?}, \
                     {status:?}); stderr:\n{}",
                    stderr.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA that signed the server's certificate (SAN `IP:127.0.0.1`, `DNS:localhost`).
    pub fn ca_file() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/certs/ca.pem")
    }

    /// Where `<n>.eml`, `<n>.json` and `stats.json` are written.
    pub fn out_dir(&self) -> &Path {
        self.out.path()
    }

    /// What the server wrote to stderr so far (it logs no secrets).
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The complete messages accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        let mut numbered: Vec<u64> = std::fs::read_dir(self.out.path())
            .expect("SMTP server: read out dir")
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".json")?.parse().ok()
            })
            .collect();
        numbered.sort_unstable();
        numbered
            .into_iter()
            .map(|n| {
                let meta_path = self.out.path().join(format!("{n}.json"));
                let meta: Value = serde_json::from_slice(
                    &std::fs::read(&meta_path).expect("SMTP server: read message metadata"),
                )
                .expect("SMTP server: message metadata is JSON");
                let data = std::fs::read(self.out.path().join(format!("{n}.eml")))
                    .expect("SMTP server: read message");
                let s = |key: &str| meta[key].as_str().unwrap_or_default().to_string();
                SmtpMessage {
                    from: s("from"),
                    to: meta["to"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|v| v.as_str().unwrap_or_default().to_string())
                                .collect()
                        })
                        .unwrap_or_default(),
                    user: s("user"),
                    secure: meta["secure"].as_bool().unwrap_or(false),
                    data,
                }
            })
            .collect()
    }

    /// The server's counters (all zero before it wrote any).
    pub fn stats(&self) -> SmtpStats {
        let Ok(bytes) = std::fs::read(self.out.path().join("stats.json")) else {
            return SmtpStats::default();
        };
        let v: Value = serde_json::from_slice(&bytes).expect("SMTP server: stats.json is JSON");
        let n = |key: &str| v[key].as_u64().unwrap_or(0) as u32;
        SmtpStats {
            connections: n("connections"),
            auth_ok: n("auth_ok"),
            auth_failed: n("auth_failed"),
            messages: n("messages"),
        }
    }

    /// Waits until at least `n` messages are complete or `limit` has passed, and returns the
    /// messages there are then (fewer than `n` on time-out: the caller asserts).
    pub fn wait_messages(&self, n: usize, limit: Duration) -> Vec<SmtpMessage> {
        let deadline = Instant::now() + limit;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
