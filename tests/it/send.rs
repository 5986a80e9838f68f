//! `mailer send` end to end: the strict fake Graph and a real SMTP server (nodemailer's
//! smtp-server, STARTTLS + XOAUTH2, tokens checked against the fake Entra).

use crate::login::{fake, login};
use crate::support::fake_entra::FakeEntra;
use crate::support::fake_graph::FakeGraph;
use crate::support::harness::{Env, Output, smtp_flags};
use crate::support::mime;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const USER: &str = "ada@contoso.example";

/// A logged-in profile with Graph and (when given) an SMTP server.
pub struct Stand {
    pub env: Env,
    pub entra: FakeEntra,
    pub graph: FakeGraph,
    pub smtp: Option<SmtpServer>,
}

impl Stand {
    /// Graph only, logged in with the defaults.
    pub fn graph() -> Stand {
        Stand::new(None, &[])
    }

    /// With an SMTP server run with `opts`, logged in with the defaults.
    pub fn with_smtp(opts: SmtpOptions) -> Stand {
        Stand::new(Some(opts), &[])
    }

    pub fn new(smtp: Option<SmtpOptions>, extra_login: &[&str]) -> Stand {
        Stand::new_with(smtp, extra_login, |_| {})
    }

    /// Like [`Stand::new`], with `setup` run on the fake Entra before the login.
    pub fn new_with(
        smtp: Option<SmtpOptions>,
        extra_login: &[&str],
        setup: impl FnOnce(&FakeEntra),
    ) -> Stand {
        let env = Env::new();
        let entra = fake();
        setup(&entra);
        let graph = FakeGraph::start(entra.validator());
        let smtp = smtp.map(|mut o| {
            o.introspect = format!("{}/_test/introspect", entra.authority());
            SmtpServer::start(o)
        });
        let graph_url = graph.url();
        let smtp_flags = smtp_flags(smtp.as_ref().map_or(2525, |s| s.port()));
        let mut args = vec!["--graph-url", graph_url.as_str()];
        args.extend(smtp_flags.iter().map(String::as_str));
        args.extend_from_slice(extra_login);
        let out = login(&env, &entra, &args);
        assert_eq!(out.code, 0, "{out}");
        Stand {
            env,
            entra,
            graph,
            smtp,
        }
    }

    pub fn send(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut a = vec!["send"];
        a.extend_from_slice(args);
        self.env.run(&a, stdin)
    }

    /// [`Env::send_simple`] through SMTP.
    pub fn send_smtp(&self, to: &str, subject: &str) -> Output {
        self.env.send_simple(to, subject, &["--transport", "smtp"])
    }

    /// Queues one message for `tempfail@example.com`: SMTP defers it (451), so it waits in
    /// the outbox.
    pub fn queue_for_later(&self) {
        let out = self.env.send_simple(
            "tempfail@example.com",
            "later",
            &["--transport", "smtp", "--queue"],
        );
        assert_eq!(out.code, 75, "{out}");
    }

    /// Queues one message that the next `queue run` fails for good: queued as by
    /// [`Self::queue_for_later`], then its recipient changed to `reject@example.com` (550).
    pub fn queue_one_that_will_fail(&self) {
        self.queue_for_later();
        let dir = self
            .env
            .path(&format!("data/mailer/outbox/{}", self.env.profile));
        let file = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .unwrap()
            .path();
        let mut entry: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert!(entry["recipients"].is_array());
        entry["recipients"] = serde_json::json!(["reject@example.com"]);
        std::fs::write(&file, entry.to_string()).unwrap();
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.env.path(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_owned()
    }

    pub fn smtp(&self) -> &SmtpServer {
        self.smtp.as_ref().expect("stand without SMTP")
    }
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Deterministic non-text bytes.
fn blob(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32) as u8
        })
        .collect()
}

#[test]
fn graph_json_send_carries_everything() {
    let s = Stand::graph();
    let pdf = blob(50_000, 1);
    let pdf_path = s.file("report.pdf", &pdf);
    let csv_path = s.file("data.csv", b"a,b\n1,2\n");
    let out = s.send(
        &[
            "--to",
            "Ann <ann@example.com>, bob@example.com",
            "--cc",
            "carol@example.com",
            "--bcc",
            "dave@example.com",
            "--subject",
            "Grüße — report ✓",
            "--body",
            "Hello\nsecond line",
            "--attach",
            &pdf_path,
            "--attach",
            &csv_path,
            "--header",
            "X-Ticket: 42",
            "--importance",
            "high",
            "--reply-to",
            "replies@example.com",
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains(&format!("sent via graph as {USER} to 4 recipients")),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["status"], "sent");
    assert_eq!(v["transport"], "graph");
    assert!(v["request_id"].as_str().is_some_and(|r| r.len() > 8), "{v}");

    let d = s.graph.delivered();
    assert_eq!(d.len(), 1);
    let d = &d[0];
    assert_eq!(d.via, "json");
    assert_eq!(d.mailbox, USER);
    assert!(d.save_to_sent_items);
    assert_eq!(d.subject, "Grüße — report ✓");
    assert_eq!(
        d.to,
        [
            (Some("Ann".into()), "ann@example.com".into()),
            (None, "bob@example.com".into())
        ]
    );
    assert_eq!(d.cc, [(None, "carol@example.com".into())]);
    assert_eq!(d.bcc, [(None, "dave@example.com".into())]);
    assert_eq!(d.reply_to, [(None, "replies@example.com".into())]);
    assert_eq!(d.importance.as_deref(), Some("high"));
    assert_eq!(d.body_type.as_deref(), Some("Text"));
    assert_eq!(d.body.as_deref(), Some("Hello\nsecond line"));
    assert_eq!(d.headers, [("X-Ticket".into(), "42".into())]);
    assert_eq!(d.attachments.len(), 2);
    assert_eq!(d.attachments[0].name, "report.pdf");
    assert_eq!(
        d.attachments[0].content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(d.attachments[0].sha256, sha(&pdf));
    assert_eq!(d.attachments[1].content_type.as_deref(), Some("text/csv"));
    // The cached token from the login served the send: no token request.
    assert_eq!(s.entra.stats().oauth.refresh_grants, 0);
}

#[test]
fn graph_html_with_inline_image_and_no_save_sent() {
    let s = Stand::graph();
    let png = blob(2_000, 2);
    let img = s.file("logo.png", &png);
    let html = s.file("mail.html", b"<p>Hi <img src=\"cid:logo.png\"></p>");
    let out = s.send(
        &[
            "--to",
            "ann@example.com",
            "--subject",
            "html",
            "--html-file",
            &html,
            "--body",
            "text version",
            "--inline",
            &img,
            "--no-save-sent",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let d = &s.graph.delivered()[0];
    assert!(!d.save_to_sent_items);
    assert_eq!(d.body_type.as_deref(), Some("HTML"));
    assert!(d.body.as_deref().unwrap().contains("cid:logo.png"));
    let a = &d.attachments[0];
    assert!(a.is_inline);
    assert_eq!(a.content_id.as_deref(), Some("logo.png"));
    assert_eq!(a.sha256, sha(&png));
}

#[test]
fn graph_raw_mime_send_adds_envelope_recipients_as_bcc() {
    let s = Stand::graph();
    let raw = "From: ada@contoso.example\r\nTo: ann@example.com\r\nBcc: hidden@example.com\r\nSubject: raw one\r\n\r\nbody\r\n";
    let out = s.send(
        &[
            "--raw",
            "--to",
            "ann@example.com",
            "--bcc",
            "extra@example.com,hidden@example.com",
        ],
        Some(raw),
    );
    assert_eq!(out.code, 0, "{out}");
    let d = &s.graph.delivered()[0];
    assert_eq!(d.via, "mime");
    let mime = String::from_utf8(d.mime.clone().unwrap()).unwrap();
    // One Bcc field with both; the rest of the message unchanged.
    assert!(mime.starts_with("Bcc: hidden@example.com, extra@example.com\r\nFrom: ada@contoso.example\r\nTo: ann@example.com\r\nSubject: raw one\r\n\r\nbody\r\n"), "{mime}");
    assert_eq!(mime.matches("Bcc:").count(), 1);
    let bcc: Vec<_> = d.bcc.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(bcc, ["hidden@example.com", "extra@example.com"]);

    // Graph would deliver to header recipients the envelope leaves out: refused, explained.
    let out = s.send(&["--raw", "--to", "ann@example.com"], Some(raw));
    assert_eq!(out.code, 65, "{out}");
    assert!(
        out.stderr.contains("hidden@example.com") && out.stderr.contains("--transport smtp"),
        "{out}"
    );
    assert_eq!(s.graph.delivered().len(), 1);
}

#[test]
fn graph_429_is_retried_after_retry_after() {
    let s = Stand::graph();
    s.graph.fail_next(
        2,
        429,
        Some(1),
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    );
    let started = Instant::now();
    let out = s.env.send_simple("ann@example.com", "t", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "did not wait for Retry-After"
    );
    assert_eq!(s.graph.stats().status_counts.get(&429), Some(&2));
    assert_eq!(s.graph.delivered().len(), 1);
}

#[test]
fn graph_throttling_beyond_retries_is_a_temporary_failure() {
    let s = Stand::graph();
    s.graph.fail_next(
        20,
        503,
        Some(1),
        "ServiceUnavailable",
        "Service is unavailable.",
    );
    let out = s.env.send_simple("ann@example.com", "t", &[]);
    assert_eq!(out.code, 75, "{out}");
    assert!(out.stderr.contains("request-id"), "{out}");
    let st = s.graph.stats();
    assert_eq!(
        st.status_counts.get(&503),
        Some(&5),
        "1 try + 4 retries: {st:?}"
    );
    assert!(s.graph.delivered().is_empty());
}

#[test]
fn graph_errors_are_explained_with_request_id() {
    let s = Stand::graph();
    for (status, code, exit, needle) in [
        (403, "ErrorSendAsDenied", 69, "Send As"),
        (403, "ErrorAccessDenied", 69, "Mail.Send"),
        (403, "NoPermissionsInAccessToken", 77, "mailer login"),
        (404, "MailboxNotEnabledForRESTAPI", 69, "licence"),
        (400, "ErrorMessageSizeExceeded", 65, "35 MB"),
        (403, "ErrorQuotaExceeded", 69, "--no-save-sent"),
    ] {
        s.graph
            .fail_next(1, status, None, code, "The thing failed.");
        let out = s.env.send_simple("ann@example.com", "t", &[]);
        assert_eq!(out.code, exit, "{code}: {out}");
        assert!(out.stderr.contains(code), "{code}: {out}");
        assert!(out.stderr.contains(needle), "{code}: {out}");
        let rid = s.graph.stats().request_ids.last().cloned().unwrap();
        assert!(
            out.stderr.contains(&rid),
            "{code}: request-id {rid} missing: {out}"
        );
        assert!(!out.stderr.contains("\"error\""), "raw JSON: {out}");
    }
}

#[test]
fn graph_401_refreshes_once_and_retries_once() {
    let s = Stand::graph();
    let expired = |times| {
        s.graph.fail_next(
            times,
            401,
            None,
            "InvalidAuthenticationToken",
            "Access token has expired or is not yet valid.",
        )
    };
    expired(1);
    let out = s.env.send_simple("ann@example.com", "t", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.entra.stats().oauth.refresh_grants, 1);
    expired(2);
    let out = s.env.send_simple("ann@example.com", "t", &[]);
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("mailer login"), "{out}");
}

#[test]
fn graph_large_attachment_goes_through_an_upload_session() {
    let s = Stand::new(None, &["--large-attachments"]);
    let big = blob(9 * 1024 * 1024 + 123, 3);
    let small = blob(100_000, 4);
    let big_path = s.file("big.bin", &big);
    let small_path = s.file("small.bin", &small);
    let out = s.send(
        &[
            "--to",
            "ann@example.com",
            "--subject",
            "large",
            "--body",
            "see attached",
            "--attach",
            &big_path,
            "--attach",
            &small_path,
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let d = &s.graph.delivered()[0];
    assert_eq!(d.via, "draft");
    let by_name = |n: &str| d.attachments.iter().find(|a| a.name == n).unwrap().clone();
    assert_eq!(by_name("big.bin").sha256, sha(&big));
    assert_eq!(by_name("big.bin").size, big.len() as u64);
    assert_eq!(by_name("small.bin").sha256, sha(&small));
    assert_eq!(
        s.graph.stats().upload_puts,
        3,
        "9 MiB in chunks under 4 MiB"
    );
    assert!(s.graph.stats().unrouted.is_empty());
}

#[test]
fn graph_large_attachment_without_mail_readwrite_says_how() {
    let s = Stand::graph();
    let big_path = s.file("big.bin", &blob(5 * 1024 * 1024, 5));
    let out = s
        .env
        .send_simple("ann@example.com", "large", &["--attach", &big_path]);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        out.stderr.contains("--large-attachments") && out.stderr.contains("--transport smtp"),
        "{out}"
    );
    assert_eq!(s.graph.stats().requests, 0);
}

#[test]
fn graph_send_as_another_mailbox() {
    let s = Stand::graph();
    let out = s.env.send_simple(
        "ann@example.com",
        "t",
        &["--from", "shared@contoso.example"],
    );
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("ErrorSendAsDenied"), "{out}");
    s.graph.allow_send_as(USER, "shared@contoso.example");
    let out = s.env.send_simple(
        "ann@example.com",
        "t",
        &["--from", "shared@contoso.example"],
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.graph.delivered()[0].mailbox, "shared@contoso.example");
}

#[test]
fn bad_input_never_sends_and_gets_its_exit_code() {
    // Most cases address a@example.com and get one thing wrong.
    fn to_a<'a>(rest: &[&'a str]) -> Vec<&'a str> {
        [&["--to", "a@example.com"][..], rest].concat()
    }
    let s = Stand::graph();
    let missing = s.env.path("nope.pdf");
    let missing = missing.to_str().unwrap();
    let before = s.entra.stats().oauth.token_requests.len();
    for (args, stdin, code, needle) in [
        (
            vec!["--to", "not an address", "--subject", "s", "--body", "b"],
            None,
            65,
            "invalid address",
        ),
        (
            vec!["--subject", "s", "--body", "b"],
            None,
            64,
            "no recipient",
        ),
        (
            to_a(&["--body", "b", "--attach", missing]),
            None,
            66,
            "nope.pdf",
        ),
        (to_a(&["--body", "b", "--body-file", missing]), None, 64, ""),
        (to_a(&["--body-file", missing]), None, 66, "nope.pdf"),
        (
            to_a(&["--body", "b", "--header", "Priority: urgent"]),
            None,
            65,
            "X-",
        ),
        (
            to_a(&["--subject", "a\r\nBcc: evil@example.com", "--body", "b"]),
            None,
            65,
            "line break",
        ),
        (
            to_a(&["--body", "b", "--header", "X-A: 1\nBcc: evil@example.com"]),
            None,
            65,
            "line break",
        ),
        (to_a(&["--subject", "s"]), Some(""), 64, "stdin is empty"),
        (
            vec!["--raw"],
            Some("Subject: none\r\n\r\nno recipients\r\n"),
            64,
            "no recipient",
        ),
    ] {
        let out = s.send(&args, stdin);
        assert_eq!(out.code, code, "{args:?}: {out}");
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
    }
    assert_eq!(s.graph.stats().requests, 0, "bad input reached Graph");
    assert_eq!(
        s.entra.stats().oauth.token_requests.len(),
        before,
        "bad input fetched a token"
    );
}

#[test]
fn body_from_stdin_and_files() {
    let s = Stand::graph();
    let out = s.send(
        &["--to", "a@example.com", "--subject", "piped"],
        Some("from a pipe\n"),
    );
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        s.graph.delivered()[0].body.as_deref(),
        Some("from a pipe\n")
    );
    let f = s.file("body.txt", "from a file ✓".as_bytes());
    let out = s.send(&["--to", "a@example.com", "--body-file", &f], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        s.graph.delivered()[1].body.as_deref(),
        Some("from a file ✓")
    );
    let out = s.send(&["--to", "a@example.com", "--html"], Some("<b>bold</b>"));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.graph.delivered()[2].body_type.as_deref(), Some("HTML"));
}

#[test]
fn dry_run_touches_no_token_store_and_no_network() {
    // No login, no D-Bus: a dry run still prints the message.
    let mut env = Env::new();
    env.set("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let out = env.run(
        &[
            "send",
            "--dry-run",
            "--from",
            "me@example.com",
            "--to",
            "a@example.com",
            "--bcc",
            "b@example.com",
            "--subject",
            "Grüße",
            "--body",
            "hi",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let m = mime::parse(out.stdout.as_bytes());
    assert_eq!(m.header("To"), Some("a@example.com"));
    assert_eq!(m.header("From"), Some("me@example.com"));
    assert!(m.header("Subject").unwrap().starts_with("=?utf-8?"));
    assert!(m.header("Bcc").is_none(), "Bcc printed: {}", out.stdout);
    assert!(out.stderr.contains("nothing sent"), "{out}");
    // With a logged-in profile it uses the profile's user and still fetches nothing.
    let s = Stand::graph();
    let before = s.entra.stats().oauth.token_requests.len();
    let out = s.send(&["--dry-run", "--to", "a@example.com", "--body", "x"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains(&format!("From: {USER}")), "{out}");
    assert_eq!(s.graph.stats().requests, 0);
    assert_eq!(s.entra.stats().oauth.token_requests.len(), before);
}

#[test]
fn smtp_send_delivers_exact_bytes() {
    let s = Stand::with_smtp(SmtpOptions::default());
    let pdf = blob(70_000, 6);
    let pdf_path = s.file("report.pdf", &pdf);
    let out = s.send(
        &[
            "--transport",
            "smtp",
            "--to",
            "Ann <ann@example.com>",
            "--bcc",
            "hidden@example.com",
            "--subject",
            "Grüße ✓",
            "--body",
            "hello",
            "--attach",
            &pdf_path,
            "--json",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains(&format!("sent via smtp as {USER} to 2 recipients")),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.user, USER);
    assert_eq!(m.from, USER);
    assert_eq!(m.to, ["ann@example.com", "hidden@example.com"]);
    let parsed = mime::parse(&m.data);
    assert_eq!(parsed.header("Message-ID"), v["message_id"].as_str());
    assert!(
        parsed.header("Bcc").is_none(),
        "Bcc leaked into the delivered bytes"
    );
    assert!(!m.text().contains("hidden@example.com"));
    assert_eq!(parsed.attachment("report.pdf").unwrap().body, pdf);
    assert_eq!(
        String::from_utf8_lossy(&parsed.leaf("text/plain").unwrap().body).trim_end(),
        "hello"
    );
}

#[test]
fn smtp_raw_strips_bcc_from_the_bytes() {
    let s = Stand::with_smtp(SmtpOptions::default());
    let raw = "From: ada@contoso.example\r\nTo: ann@example.com\r\nBcc: hidden@example.com\r\nSubject: raw\r\n\r\nbody\r\n";
    let out = s.send(&["--transport", "smtp", "--raw"], Some(raw));
    assert_eq!(out.code, 0, "{out}");
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.to, ["ann@example.com", "hidden@example.com"]);
    assert_eq!(
        m.text(),
        "From: ada@contoso.example\r\nTo: ann@example.com\r\nSubject: raw\r\n\r\nbody\r\n"
    );
}

#[test]
fn smtp_rejected_token_is_refreshed_once_in_both_styles() {
    for style in ["535", "334"] {
        let rejecting = |times| {
            Stand::with_smtp(SmtpOptions {
                reject: Some((style, times)),
                ..SmtpOptions::default()
            })
        };
        let s = rejecting(1);
        let out = s.send_smtp("ann@example.com", style);
        assert_eq!(out.code, 0, "{style}: {out}");
        assert_eq!(s.smtp().wait_messages(1, Duration::from_secs(10)).len(), 1);
        let st = s.smtp().stats();
        assert_eq!((st.auth_failed, st.auth_ok), (1, 1), "{style}: {st:?}");
        // One refresh minted the SMTP token, a second one replaced the rejected token.
        assert_eq!(s.entra.stats().oauth.refresh_grants, 2, "{style}");

        let s = rejecting(10);
        let out = s.send_smtp("ann@example.com", style);
        assert_eq!(out.code, 77, "{style}: {out}");
        assert!(
            out.stderr.contains("rejected the access token twice")
                && out.stderr.contains("mailer login"),
            "{out}"
        );
        assert_eq!(
            s.smtp().stats().auth_failed,
            2,
            "{style}: exactly one retry"
        );
    }
}

#[test]
fn smtp_auth_disabled_is_explained() {
    let s = Stand::with_smtp(SmtpOptions {
        disabled: true,
        ..SmtpOptions::default()
    });
    let out = s.send_smtp("ann@example.com", "s");
    assert_eq!(out.code, 69, "{out}");
    assert!(
        out.stderr.contains("5.7.139")
            && out.stderr.contains("Set-CASMailbox")
            && out.stderr.contains("--transport graph"),
        "{out}"
    );
}

#[test]
fn smtp_recipient_replies_map_to_exit_codes() {
    let s = Stand::with_smtp(SmtpOptions::default());
    let out = s.send_smtp("tempfail@example.com", "s");
    assert_eq!(out.code, 75, "{out}");
    assert!(out.stderr.contains("451"), "{out}");
    let out = s.send_smtp("reject-me@example.com", "s");
    assert_eq!(out.code, 65, "{out}");
    assert!(
        out.stderr.contains("550") && out.stderr.contains("User unknown"),
        "{out}"
    );
    assert!(s.smtp().messages().is_empty());
}

#[test]
fn smtp_implicit_tls() {
    let s = Stand::new(
        Some(SmtpOptions {
            secure: true,
            ..SmtpOptions::default()
        }),
        &["--smtp-security", "tls"],
    );
    let out = s.send_smtp("ann@example.com", "tls");
    assert_eq!(out.code, 0, "{out}");
    assert!(s.smtp().wait_messages(1, Duration::from_secs(10))[0].secure);
}

#[test]
fn same_message_same_structure_through_both_transports() {
    let s = Stand::with_smtp(SmtpOptions::default());
    let png = blob(3_000, 7);
    let doc = blob(20_000, 8);
    let img = s.file("chart.png", &png);
    let pdf = s.file("q3.pdf", &doc);
    let html = s.file(
        "body.html",
        "<h1>Q3</h1><img src=\"cid:chart.png\">".as_bytes(),
    );
    let args = [
        "--to",
        "ann@example.com",
        "--cc",
        "bob@example.com",
        "--subject",
        "Q3 ✓",
        "--html-file",
        &html,
        "--inline",
        &img,
        "--attach",
        &pdf,
        "--header",
        "X-Report: q3",
    ];
    let mut graph_args = args.to_vec();
    graph_args.extend(["--transport", "graph"]);
    let mut smtp_args = args.to_vec();
    smtp_args.extend(["--transport", "smtp"]);
    assert_eq!(s.send(&graph_args, Some("")).code, 0);
    assert_eq!(s.send(&smtp_args, Some("")).code, 0);

    let g = &s.graph.delivered()[0];
    let m = mime::parse(&s.smtp().wait_messages(1, Duration::from_secs(10))[0].data);
    assert_eq!(
        m.structure,
        "multipart/mixed[multipart/related[text/html,image/png],application/pdf]"
    );
    // Same subject, recipients, HTML, headers and attachments byte for byte.
    assert_eq!(g.subject, "Q3 ✓");
    // RFC 2047-encoded on the wire, never raw UTF-8 in a header.
    let subject = m.header("Subject").unwrap();
    assert!(
        subject.starts_with("Q3 =?utf-8?") && subject.is_ascii(),
        "{subject}"
    );
    assert_eq!(g.to[0].1, "ann@example.com");
    assert_eq!(m.header("To"), Some("ann@example.com"));
    assert_eq!(m.header("Cc"), Some("bob@example.com"));
    assert_eq!(
        g.body.as_deref().unwrap(),
        String::from_utf8_lossy(&m.leaf("text/html").unwrap().body).trim_end()
    );
    assert_eq!(m.header("X-Report"), Some("q3"));
    assert_eq!(g.headers, [("X-Report".into(), "q3".into())]);
    let inline = m.leaf("image/png").unwrap();
    let g_inline = g.attachments.iter().find(|a| a.is_inline).unwrap();
    assert_eq!(inline.content_id.as_deref(), g_inline.content_id.as_deref());
    assert_eq!(sha(&inline.body), g_inline.sha256);
    let file = m.attachment("q3.pdf").unwrap();
    let g_file = g.attachments.iter().find(|a| a.name == "q3.pdf").unwrap();
    assert_eq!(sha(&file.body), g_file.sha256);
    assert_eq!(
        Some(file.content_type.as_str()),
        g_file.content_type.as_deref()
    );
}

#[test]
fn smtp_send_as_a_shared_mailbox_authenticates_as_the_delegate() {
    let s = Stand::with_smtp(SmtpOptions::default());
    let out = s.env.send_simple(
        "ann@example.com",
        "s",
        &[
            "--transport",
            "smtp",
            "--from",
            "Support <support@contoso.example>",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("as support@contoso.example"), "{out}");
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.user, USER, "XOAUTH2 user is the logged-in delegate");
    assert_eq!(
        m.from, "support@contoso.example",
        "MAIL FROM is the shared mailbox"
    );
    let parsed = mime::parse(&m.data);
    assert_eq!(
        parsed.header("From"),
        Some("Support <support@contoso.example>")
    );
    assert_eq!(parsed.header("Sender"), Some(USER));
}

/// Entra's access tokens pass 4 KB with many group claims (and did for many tenants in
/// 2025); some SMTP stacks limit a line's length. A 6 KB token must work over XOAUTH2
/// (one AUTH line of about 8 KB of base64) and as Graph's bearer token, and survive the
/// keyring's chunked storage.
#[test]
fn a_6_kb_access_token_works_over_smtp_and_graph() {
    let s = Stand::new_with(Some(SmtpOptions::default()), &[], |e| {
        e.set_access_token_size(6 * 1024 + 200)
    });
    for transport in ["graph", "smtp"] {
        let token = s.env.run(&["token", "--transport", transport], None);
        assert_eq!(token.code, 0, "{token}");
        assert!(
            token.stdout.trim().len() >= 6 * 1024,
            "{transport}: {} bytes",
            token.stdout.trim().len()
        );
        let out = s
            .env
            .send_simple("ann@example.com", "long token", &["--transport", transport]);
        assert_eq!(out.code, 0, "{transport}: {out}");
    }
    assert_eq!(s.graph.delivered().len(), 1);
    assert_eq!(s.smtp().wait_messages(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(s.smtp().stats().auth_failed, 0);
}
