//! Self-tests of the loopback SMTP server (`tests/support/smtp.rs`, `tests/support/smtp/`),
//! driven by a real client, Debian's `msmtp` (XOAUTH2, STARTTLS and implicit TLS, trusting the
//! test CA), with tokens minted by the fake Entra; plus a raw TCP client for what happens
//! before TLS. They pin down the wire behaviour that mailer's SMTP path is tested against.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::support::fake_entra::FakeEntra;
use crate::support::http::post_form;
use crate::support::smtp::{SmtpMessage, SmtpOptions, SmtpServer, SmtpStats};
use crate::support::smtp_client::SmtpClient;

const APP: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";
const REDIRECT: &str = "http://localhost:40111";
const GRAPH_SEND: &str = "https://graph.microsoft.com/Mail.Send";
const SMTP_SEND: &str = "https://outlook.office.com/SMTP.Send";
const USER: &str = "ada@contoso.example";
const MSMTP_LIMIT: Duration = Duration::from_secs(20);
const IO_LIMIT: Duration = Duration::from_secs(5);
const MESSAGE: &str = "From: Ada <ada@contoso.example>\n\
                       To: bob@example.com\n\
                       Subject: smtp self-test\n\
                       \n\
                       first line\n\
                       .a line that starts with a dot\n\
                       last line\n";
const AUTH_FAILED: &str = "535 5.7.3 Authentication unsuccessful";

/// A fake Entra with one public client and the user signed in for Graph and SMTP.
struct Entra {
    fake: FakeEntra,
    /// A token for `https://outlook.office.com/SMTP.Send`.
    smtp_token: String,
    /// A token for Graph: valid, but for the wrong resource.
    graph_token: String,
    refresh_token: String,
}

fn entra() -> Entra {
    let fake = FakeEntra::start();
    fake.add_public_client(APP, &["http://localhost"]);
    let v = fake.sign_in(
        APP,
        REDIRECT,
        &format!("{GRAPH_SEND} {SMTP_SEND} openid offline_access"),
        &format!("{GRAPH_SEND} offline_access"),
    );
    let mut entra = Entra {
        fake,
        smtp_token: String::new(),
        graph_token: v["access_token"].as_str().unwrap().to_string(),
        refresh_token: v["refresh_token"].as_str().unwrap().to_string(),
    };
    entra.smtp_token = entra.mint_smtp_token();
    entra
}

impl Entra {
    /// A new SMTP token through the refresh grant (rotating the stored refresh token).
    fn mint_smtp_token(&mut self) -> String {
        let resp = post_form(
            &format!("{}/organizations/oauth2/v2.0/token", self.fake.authority()),
            &[],
            &[
                ("grant_type", "refresh_token"),
                ("client_id", APP),
                ("refresh_token", &self.refresh_token),
                ("scope", &format!("{SMTP_SEND} offline_access")),
            ],
        );
        assert_eq!(resp.status, 200, "refresh: {}", resp.text());
        let v = resp.json();
        self.refresh_token = v["refresh_token"].as_str().unwrap().to_string();
        v["access_token"].as_str().unwrap().to_string()
    }

    fn introspect(&self) -> String {
        format!("{}/_test/introspect", self.fake.authority())
    }

    /// msmtp over STARTTLS as [`USER`] with the SMTP token.
    fn send(&self, server: &SmtpServer, rcpts: &[&str]) -> Run {
        msmtp(server, false, USER, &self.smtp_token, rcpts)
    }

    fn server(&self, secure: bool, reject: Option<(&'static str, u32)>) -> SmtpServer {
        SmtpServer::start(SmtpOptions {
            secure,
            introspect: self.introspect(),
            reject,
            ..SmtpOptions::default()
        })
    }
}

/// What one msmtp run did: its exit code and its `-v` transcript (`--> ` sent, `<-- ` got).
struct Run {
    code: i32,
    log: String,
}

impl Run {
    /// The SMTP lines of the transcript as (`"S"` server / `"C"` client, text).
    fn wire(&self) -> Vec<(&str, &str)> {
        self.log
            .lines()
            .filter_map(|l| {
                l.strip_prefix("<-- ")
                    .map(|t| ("S", t))
                    .or_else(|| l.strip_prefix("--> ").map(|t| ("C", t)))
                    .or_else(|| (l == "-->").then_some(("C", "")))
            })
            .collect()
    }

    /// The wire lines from the client's `AUTH` command on.
    fn auth_exchange(&self) -> Vec<(&str, &str)> {
        let wire = self.wire();
        let start = wire
            .iter()
            .position(|(d, t)| *d == "C" && t.starts_with("AUTH "))
            .unwrap_or_else(|| panic!("no AUTH in the transcript:\n{}", self.log));
        wire[start..].to_vec()
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "msmtp exit {}\n{}", self.code, self.log)
    }
}

/// Sends [`MESSAGE`] with msmtp as `user` with `token` to `rcpts`, over implicit TLS (`secure`)
/// or STARTTLS, trusting only the test CA.
fn msmtp(server: &SmtpServer, secure: bool, user: &str, token: &str, rcpts: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let rc = dir.path().join("msmtprc");
    std::fs::write(
        &rc,
        format!(
            "defaults\n\
             timeout 10\n\
             account selftest\n\
             host 127.0.0.1\n\
             port {port}\n\
             domain localhost\n\
             tls on\n\
             tls_starttls {starttls}\n\
             tls_trust_file {ca}\n\
             auth xoauth2\n\
             user {user}\n\
             passwordeval \"cat {token}\"\n\
             from {USER}\n\
             set_date_header off\n\
             set_msgid_header off\n\
             account default : selftest\n",
            port = server.port(),
            starttls = if secure { "off" } else { "on" },
            ca = SmtpServer::ca_file().display(),
            token = token_file.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    run_msmtp(&rc, rcpts)
}

fn run_msmtp(rc: &Path, rcpts: &[&str]) -> Run {
    let mut child = Command::new("msmtp")
        .arg("-C")
        .arg(rc)
        .arg("-v")
        .arg("--")
        .args(rcpts)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run msmtp ({e}): apt-get install -y msmtp"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    {
        let mut stdin = child.stdin.take().unwrap();
        // msmtp may quit before reading everything (failed AUTH): a broken pipe is fine.
        let _ = stdin.write_all(MESSAGE.as_bytes());
    }
    let deadline = Instant::now() + MSMTP_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("msmtp still running after {MSMTP_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    Run {
        code: status.code().unwrap_or(-1),
        log,
    }
}

fn one_message(server: &SmtpServer) -> SmtpMessage {
    let mut messages = server.wait_messages(1, IO_LIMIT);
    assert_eq!(messages.len(), 1, "{messages:?}");
    messages.remove(0)
}

fn stats(connections: u32, auth_ok: u32, auth_failed: u32, messages: u32) -> SmtpStats {
    SmtpStats {
        connections,
        auth_ok,
        auth_failed,
        messages,
    }
}

/// msmtp's exit codes (sysexits.h) for what the server answers.
const EX_OK: i32 = 0;
const EX_DATAERR: i32 = 65;
const EX_UNAVAILABLE: i32 = 69;
const EX_NOPERM: i32 = 77;

#[test]
fn msmtp_delivers_over_starttls_with_an_entra_token() {
    let entra = entra();
    let server = entra.server(false, None);
    let run = entra.send(&server, &["bob@example.com", "carol@example.org"]);
    assert_eq!(run.code, EX_OK, "{run}");
    let wire = run.wire();
    assert!(wire.contains(&("C", "STARTTLS")), "{run}");
    assert!(
        wire.contains(&("S", "235 Authentication successful")),
        "{run}"
    );

    let m = one_message(&server);
    assert_eq!(m.from, USER);
    assert_eq!(m.to, ["bob@example.com", "carol@example.org"]);
    assert_eq!(m.user, USER);
    assert!(m.secure);
    // Byte for byte as msmtp sent it: CRLF line ends, the leading dot unstuffed again.
    assert_eq!(m.text(), MESSAGE.replace('\n', "\r\n"));
    assert_eq!(server.stats(), stats(1, 1, 0, 1));
    // No token in anything the server logged.
    assert!(!server.stderr().contains(&entra.smtp_token));
}

#[test]
fn implicit_tls_mode_delivers() {
    let entra = entra();
    let server = entra.server(true, None);
    // No plaintext greeting: the server waits for a TLS ClientHello.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    assert!(
        plain.read(&mut byte).is_err(),
        "plaintext bytes from an implicit-TLS port"
    );
    drop(plain);

    let run = msmtp(&server, true, USER, &entra.smtp_token, &["bob@example.com"]);
    assert_eq!(run.code, EX_OK, "{run}");
    assert!(!run.wire().contains(&("C", "STARTTLS")), "{run}");
    let m = one_message(&server);
    assert!(m.secure);
    assert_eq!(m.to, ["bob@example.com"]);
    assert_eq!(server.stats(), stats(2, 1, 0, 1));
}

#[test]
fn bad_tokens_are_rejected_with_535() {
    let mut entra = entra();
    let server = entra.server(false, None);
    let cases = [
        (USER, "not-a-token-the-fake-ever-issued"),
        // A real token, but for Graph: Exchange wants an outlook.office.com token.
        (USER, entra.graph_token.as_str()),
        // The token's user is someone else (compared case-insensitively, so this is a mismatch).
        ("grace@contoso.example", entra.smtp_token.as_str()),
    ];
    for (user, token) in cases {
        let run = msmtp(&server, false, user, token, &["bob@example.com"]);
        assert_eq!(run.code, EX_NOPERM, "{run}");
        let exchange = run.auth_exchange();
        assert_eq!(exchange.len(), 4, "{run}");
        assert_eq!(exchange[3], ("S", AUTH_FAILED), "{run}");
    }
    // The user comparison ignores case.
    let run = msmtp(
        &server,
        false,
        "ADA@Contoso.Example",
        &entra.smtp_token,
        &["bob@example.com"],
    );
    assert_eq!(run.code, EX_OK, "{run}");
    assert_eq!(one_message(&server).user, "ADA@Contoso.Example");

    // An expired SMTP token.
    entra.fake.set_access_token_lifetime(0);
    let expired = entra.mint_smtp_token();
    let run = msmtp(&server, false, USER, &expired, &["bob@example.com"]);
    assert_eq!(run.code, EX_NOPERM, "{run}");
    assert_eq!(server.stats(), stats(5, 1, 4, 1));
}

#[test]
fn reject_style_535_fails_at_once_then_accepts() {
    let entra = entra();
    let server = entra.server(false, Some(("535", 1)));
    let run = entra.send(&server, &["bob@example.com"]);
    assert_eq!(run.code, EX_NOPERM, "{run}");
    let exchange = run.auth_exchange();
    // msmtp sends XOAUTH2 without an initial response: AUTH, 334, token, then the verdict.
    assert_eq!(exchange[0], ("C", "AUTH XOAUTH2"), "{run}");
    assert_eq!(exchange[1], ("S", "334 "), "{run}");
    assert_eq!(exchange[3], ("S", AUTH_FAILED), "{run}");
    assert_eq!(exchange.len(), 4, "nothing after the 535: {run}");

    // The same token works on the next attempt.
    let run = entra.send(&server, &["bob@example.com"]);
    assert_eq!(run.code, EX_OK, "{run}");
    one_message(&server);
    assert_eq!(server.stats(), stats(2, 1, 1, 1));
}

#[test]
fn reject_style_334_sends_the_gmail_challenge_then_535() {
    let entra = entra();
    let server = entra.server(false, Some(("334", 1)));
    let run = entra.send(&server, &["bob@example.com"]);
    assert_eq!(run.code, EX_NOPERM, "{run}");
    let exchange = run.auth_exchange();
    assert_eq!(exchange.len(), 6, "{run}");
    let (dir, challenge) = exchange[3];
    assert_eq!(dir, "S");
    let json = challenge
        .strip_prefix("334 ")
        .unwrap_or_else(|| panic!("no 334 challenge: {run}"));
    let v: Value = serde_json::from_slice(&STANDARD.decode(json).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
    );
    assert_eq!(
        exchange[4],
        ("C", ""),
        "the client answers an empty line: {run}"
    );
    assert_eq!(exchange[5], ("S", AUTH_FAILED), "{run}");

    let run = entra.send(&server, &["bob@example.com"]);
    assert_eq!(run.code, EX_OK, "{run}");
    one_message(&server);

    // Bad tokens fail the same way.
    let run = msmtp(&server, false, USER, "bogus", &["bob@example.com"]);
    assert_eq!(run.code, EX_NOPERM, "{run}");
    assert!(run.auth_exchange()[3].1.starts_with("334 ey"), "{run}");
    assert_eq!(server.stats(), stats(3, 1, 2, 1));
}

#[test]
fn smtp_auth_disabled_for_the_tenant() {
    let entra = entra();
    let server = SmtpServer::start(SmtpOptions {
        introspect: entra.introspect(),
        disabled: true,
        ..SmtpOptions::default()
    });
    let run = entra.send(&server, &["bob@example.com"]);
    assert_eq!(run.code, EX_NOPERM, "{run}");
    assert_eq!(
        run.auth_exchange()[3],
        (
            "S",
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for \
             the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
        ),
        "{run}"
    );
    assert_eq!(server.stats(), stats(1, 0, 1, 0));
}

#[test]
fn tempfail_and_reject_recipients() {
    let entra = entra();
    let server = entra.server(false, None);
    for (rcpt, code, reply) in [
        // msmtp does not tell a 4xx from a 5xx recipient failure in its exit code.
        (
            "tempfail-1@example.com",
            EX_UNAVAILABLE,
            "451 4.3.0 Temporary failure",
        ),
        (
            "Reject.me@example.com",
            EX_DATAERR,
            "550 5.1.1 User unknown",
        ),
    ] {
        let run = entra.send(&server, &[rcpt]);
        assert_eq!(run.code, code, "{run}");
        assert!(run.wire().contains(&("S", reply)), "{run}");
    }
    let run = entra.send(&server, &["bob@example.com", "reject@example.com"]);
    assert_ne!(run.code, EX_OK, "{run}");
    assert!(server.messages().is_empty(), "msmtp sends all or nothing");
    assert_eq!(server.stats(), stats(3, 3, 0, 0));
}

#[test]
fn auth_before_starttls_is_refused() {
    let entra = entra();
    let server = entra.server(false, None);
    let (mut smtp, greeting) = SmtpClient::connect(server.port());
    assert!(greeting[0].starts_with("220 "));
    let ehlo = smtp.command("EHLO localhost");
    assert!(ehlo.iter().any(|l| &l[4..] == "STARTTLS"), "{ehlo:?}");

    let initial = STANDARD.encode(format!(
        "user={USER}\x01auth=Bearer {}\x01\x01",
        entra.smtp_token
    ));
    let auth = smtp.command(&format!("AUTH XOAUTH2 {initial}"));
    assert_eq!(auth.len(), 1);
    assert!(auth[0].starts_with("538 "), "{auth:?}");
    let mail = smtp.command(&format!("MAIL FROM:<{USER}>"));
    assert!(
        mail[0].starts_with("530 "),
        "no mail without auth: {mail:?}"
    );
    assert!(smtp.command("QUIT")[0].starts_with("221"));
    assert_eq!(server.stats(), stats(1, 0, 0, 0));
}

#[test]
fn drop_stops_the_server() {
    let server = SmtpServer::start(SmtpOptions::default());
    let port = server.port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}
