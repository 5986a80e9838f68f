//! Unattended operation: many cron jobs at once on one profile, and keeping a login alive.

use crate::send::Stand;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn twenty_concurrent_sends_with_an_expired_token_all_go_out() {
    // The login's access token is stale at once; the fake revokes the whole refresh-token
    // family if a rotated token is ever presented again.
    let s = Stand::new_with(None, &[], |entra| entra.set_access_token_lifetime(120));
    s.entra.set_access_token_lifetime(3600);
    let runs: Vec<Vec<String>> = (0..20)
        .map(|i| {
            let subject = format!("cron {i}");
            let args = [
                "send",
                "--to",
                "ann@example.com",
                "--subject",
                &subject,
                "--body",
                "b",
            ];
            args.map(String::from).to_vec()
        })
        .collect();
    for out in s.env.run_concurrently(&runs, Duration::from_secs(120)) {
        assert_eq!(out.code, 0, "{out}");
    }
    assert_eq!(s.graph.delivered().len(), 20);
    let st = s.entra.stats();
    assert_eq!(st.refresh_reuse, 0, "{st:?}");
    assert_eq!(
        st.oauth.refresh_grants, 1,
        "one process refreshed, the others used its token: {st:?}"
    );
    // No re-login needed afterwards.
    assert_eq!(s.env.run(&["status"], None).code, 0);
}

#[test]
fn token_refresh_keeps_the_login_in_use() {
    let s = Stand::graph();
    let before = s.entra.stats().oauth.refresh_grants;
    let cached = s.env.run(&["token"], None);
    assert_eq!(
        s.entra.stats().oauth.refresh_grants,
        before,
        "a fresh token was refreshed without --refresh"
    );
    let out = s.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.entra.stats().oauth.refresh_grants, before + 1);
    assert_ne!(
        out.stdout, cached.stdout,
        "--refresh returned the old token"
    );
    let status = s.env.run(&["status", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let used = v["refresh_token_used_at"].as_u64().unwrap();
    let now = crate::support::server::now_secs();
    assert!(now - used < 60, "{v}");
}

use crate::support::mime;
use crate::support::smtp::SmtpOptions;

fn queue_json(s: &Stand) -> serde_json::Value {
    let out = s.env.run(&["queue", "list", "--json"], None);
    assert_eq!(out.code, 0, "{out}");
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

const CRON_MAIL: &str = "From: root (Cron Daemon)\nTo: ann@example.com\nSubject: Cron <root@host> /usr/local/bin/backup\nContent-Type: text/plain; charset=UTF-8\n\nbackup done\n.\nnot part of the message\n";

#[test]
fn sendmail_as_cron_calls_it_over_smtp() {
    let s = Stand::new(Some(SmtpOptions::default()), &["--transport", "smtp"]);
    // Cron's own arguments; without -i a lone "." ends the message.
    let out = s.env.run(
        &[
            "sendmail",
            "-FCronDaemon",
            "-B8BITMIME",
            "-oem",
            "ann@example.com",
        ],
        Some(CRON_MAIL),
    );
    assert_eq!(out.code, 0, "{out}");
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.to, ["ann@example.com"]);
    assert_eq!(m.from, "ada@contoso.example");
    let text = m.text();
    assert!(!text.contains("not part of the message"), "{text}");
    assert!(
        !text.contains('\n') || text.matches('\n').count() == text.matches("\r\n").count(),
        "bare LF on the wire"
    );
    let parsed = mime::parse(&m.data);
    // Exchange refuses to send as root@host: the From becomes the mailbox, the name stays.
    assert_eq!(
        parsed.header("From"),
        Some("CronDaemon <ada@contoso.example>")
    );
    assert!(
        parsed
            .header("Message-ID")
            .is_some_and(|id| id.ends_with("@contoso.example>"))
    );
    assert!(parsed.header("Date").is_some());
    assert_eq!(
        parsed.header("Subject"),
        Some("Cron <root@host> /usr/local/bin/backup")
    );
}

#[test]
fn sendmail_link_with_t_takes_recipients_from_headers_and_hides_bcc() {
    let s = Stand::new(Some(SmtpOptions::default()), &["--transport", "smtp"]);
    let link = s.env.path("sendmail");
    std::os::unix::fs::symlink(crate::support::harness::BIN, &link).unwrap();
    let msg = "From: Ada <ada@contoso.example>\nTo: ann@example.com\nCc: bob@example.com\nBcc: secret@example.com\nSubject: via link\n\n.leading dot line\nbody\n";
    let out = s
        .env
        .run_cmd(s.env.command_as(&link, &["-t", "-i"]), Some(msg));
    assert_eq!(out.code, 0, "{out}");
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(
        m.to,
        ["ann@example.com", "bob@example.com", "secret@example.com"]
    );
    assert!(
        !m.text().contains("secret@"),
        "Bcc reached the recipients: {}",
        m.text()
    );
    assert!(
        m.text().contains("\r\n.leading dot line\r\n"),
        "{}",
        m.text()
    );
    let parsed = mime::parse(&m.data);
    assert_eq!(
        parsed.header("From"),
        Some("Ada <ada@contoso.example>"),
        "a matching From is kept"
    );

    let out = s.env.run_cmd(s.env.command_as(&link, &["-bs"]), Some(""));
    assert_eq!(out.code, 64, "{out}");
    let out = s.env.run_cmd(
        s.env.command_as(&link, &["root"]),
        Some("Subject: x\n\nx\n"),
    );
    assert_eq!(out.code, 65, "{out}");
    assert!(out.stderr.contains("MAILTO"), "{out}");
}

#[test]
fn sendmail_over_graph_delivers_to_argument_recipients_too() {
    let s = Stand::graph();
    let out = s.env.run(
        &[
            "sendmail",
            "-i",
            "--",
            "ann@example.com",
            "extra@example.com",
        ],
        Some("To: ann@example.com\nSubject: g\n\nx\n"),
    );
    assert_eq!(out.code, 0, "{out}");
    let d = &s.graph.delivered()[0];
    assert_eq!(d.via, "mime");
    assert!(d.bcc.iter().any(|r| r.1 == "extra@example.com"), "{d:?}");
}

#[test]
fn temporary_failures_are_queued_and_sent_by_queue_run() {
    let s = Stand::graph();
    s.graph.fail_next(
        1,
        500,
        None,
        "ErrorInternalServerError",
        "Something went wrong.",
    );
    let out = s.env.send_simple(
        "ann@example.com",
        "later",
        &["--queue", "--bcc", "hidden@example.com", "--json"],
    );
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains("queued as") && out.stderr.contains("queue run"),
        "{out}"
    );
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["status"], "queued");
    let id = v["id"].as_str().unwrap().to_owned();

    let q = queue_json(&s);
    assert_eq!(q["queued"][0]["id"], id.as_str());
    assert_eq!(q["queued"][0]["subject"], "later");
    assert_eq!(q["queued"][0]["attempts"], 1);
    assert_eq!(
        q["queued"][0]["recipients"],
        serde_json::json!(["ann@example.com", "hidden@example.com"])
    );
    assert!(
        q["queued"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("server error"),
        "{q}"
    );
    let file = s
        .env
        .path(&format!("data/mailer/outbox/{}/{id}.json", s.env.profile));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let status: serde_json::Value =
        serde_json::from_str(&s.env.run(&["status", "--json"], None).stdout).unwrap();
    assert_eq!(
        status["queue"],
        serde_json::json!({"queued": 1, "failed": 0})
    );

    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("sent 1, failed 0, still queued 0"),
        "{out}"
    );
    let d = &s.graph.delivered()[0];
    assert_eq!(d.subject, "later");
    assert!(
        d.bcc.iter().any(|r| r.1 == "hidden@example.com"),
        "the Bcc recipient was dropped: {d:?}"
    );
    assert!(queue_json(&s)["queued"].as_array().unwrap().is_empty());
    // Without --queue the same failure is just an error.
    s.graph.fail_next(
        1,
        500,
        None,
        "ErrorInternalServerError",
        "Something went wrong.",
    );
    let out = s.env.send_simple("ann@example.com", "now", &[]);
    assert_eq!(out.code, 75, "{out}");
    assert!(!out.stderr.contains("queued as"));
}

#[test]
fn queue_run_moves_permanent_failures_aside_and_keeps_going() {
    let s = Stand::graph();
    for subject in ["first", "second", "third"] {
        s.graph
            .fail_next(1, 503, None, "ServiceUnavailable", "busy");
        // 503 is retried: make every retry fail too, then the message is queued.
        s.graph
            .fail_next(5, 503, Some(0), "ServiceUnavailable", "busy");
        let out = s.env.send_simple("ann@example.com", subject, &["--queue"]);
        assert_eq!(out.code, 75, "{out}");
    }
    // The first message meets a permanent refusal, the others go through.
    s.graph
        .fail_next(1, 403, None, "ErrorSendAsDenied", "not allowed");
    let out = s.env.run(&["queue", "run", "--json"], None);
    assert_eq!(out.code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v, serde_json::json!({"sent": 2, "failed": 1, "queued": 0}));
    let subjects: Vec<_> = s
        .graph
        .delivered()
        .iter()
        .map(|d| d.subject.clone())
        .collect();
    assert_eq!(subjects, ["second", "third"], "sent in order");
    let q = queue_json(&s);
    assert_eq!(q["failed"][0]["subject"], "first");
    assert!(
        q["failed"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ErrorSendAsDenied"),
        "{q}"
    );
    let out = s.env.run(&["queue", "purge", "--failed"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(queue_json(&s)["failed"].as_array().unwrap().is_empty());
}

#[test]
fn profile_queue_setting_and_an_expired_login_queue_too() {
    let s = Stand::new_with(None, &[], |e| e.set_access_token_lifetime(120));
    let config = s.env.config_path();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("queue = false", "queue = true");
    std::fs::write(&config, text).unwrap();
    s.entra.revoke_all_refresh_tokens();
    let out = s.env.send_simple("ann@example.com", "kept", &[]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains("queued as") && out.stderr.contains("mailer login"),
        "{out}"
    );
    // queue run stops at the first login failure instead of hammering the identity provider.
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 77, "{out}");
    assert_eq!(queue_json(&s)["queued"][0]["attempts"], 2);
}

#[test]
fn one_smtp_connection_serves_a_whole_queue_run() {
    // Each send is rejected twice (token, then refreshed token), so three sends queue three
    // messages; after that the server accepts.
    let s = Stand::new(
        Some(SmtpOptions {
            reject: Some(("535", 6)),
            ..SmtpOptions::default()
        }),
        &["--transport", "smtp"],
    );
    for i in 0..3 {
        let out = s
            .env
            .send_simple("ann@example.com", &format!("q{i}"), &["--queue"]);
        assert_eq!(out.code, 75, "{out}");
    }
    let before = s.smtp().stats().connections;
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.smtp().wait_messages(3, Duration::from_secs(10)).len(), 3);
    assert_eq!(
        s.smtp().stats().connections - before,
        1,
        "one connection for the run"
    );
}

/// A tiny deterministic generator for kill delays (no rand crate in the tests).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

#[test]
fn sigkill_at_random_points_never_loses_a_message() {
    const MESSAGES: usize = 48;
    const MAX_TRIALS: usize = 80;
    let s = Stand::graph();
    // Dozens of sends in a minute: pacing (30 a minute by default) is not under test here.
    crate::diagnosis::set_profile(&s.env, "rate_limit", toml::Value::Integer(0));
    for i in 0..MESSAGES {
        s.graph
            .fail_next(1, 500, None, "ErrorInternalServerError", "down");
        let out = s
            .env
            .send_simple("ann@example.com", &format!("m{i:02}"), &["--queue"]);
        assert_eq!(out.code, 75, "{out}");
    }
    // Widen the window in which a kill lands mid-request.
    s.graph.set_request_delay(Duration::from_millis(40));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = Lcg(seed);
    let mut trials = 0;
    let started = Instant::now();
    // On a slow machine a run may not get far before the kill: widen the window while no
    // message leaves, so the test makes progress on any hardware (bounded all the same).
    let mut window = 370;
    let mut last_left = usize::MAX;
    while trials < MAX_TRIALS && started.elapsed() < Duration::from_secs(90) {
        let left = queue_json(&s)["queued"].as_array().unwrap().len();
        if left == 0 {
            break;
        }
        window = if left == last_left {
            (window + 150).min(3000)
        } else {
            370
        };
        last_left = left;
        let mut child = s
            .env
            .command(&["queue", "run", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.next(window)));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        trials += 1;
    }
    let during_kills = s.graph.delivered().len();
    // Whatever the kills left behind, the outbox is readable and one clean run finishes it.
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 0, "{out}");
    let ids: Vec<String> = s
        .graph
        .delivered()
        .iter()
        .map(|d| {
            mime::parse(d.mime.as_ref().unwrap())
                .header("Message-ID")
                .unwrap()
                .to_owned()
        })
        .collect();
    let unique: std::collections::BTreeSet<_> = ids.iter().cloned().collect();
    eprintln!(
        "kill test: seed {seed}, {trials} SIGKILLs, {MESSAGES} messages, {during_kills} delivered while killing, {} deliveries in all, {} unique, {} duplicates",
        ids.len(),
        unique.len(),
        ids.len() - unique.len()
    );
    assert_eq!(unique.len(), MESSAGES, "a message was lost");
    assert!(
        trials >= 5 && during_kills > 0,
        "the kills never interrupted a run"
    );
    assert!(queue_json(&s)["queued"].as_array().unwrap().is_empty());
}

#[test]
fn msmtp_passwordeval_recipe_from_the_readme() {
    // A real client using `mailer token` as its credential helper, exactly as README shows.
    let s = Stand::with_smtp(SmtpOptions::default());
    let rc = s.env.path("msmtprc");
    std::fs::write(
        &rc,
        format!(
            "defaults\ntls on\ntls_starttls on\ntls_trust_file {ca}\n\naccount work\nhost 127.0.0.1\nport {port}\nauth xoauth2\nuser ada@contoso.example\nfrom ada@contoso.example\npasswordeval \"{bin} token --transport smtp\"\n\naccount default : work\n",
            ca = crate::support::smtp::SmtpServer::ca_file().display(),
            port = s.smtp().port(),
            bin = crate::support::harness::BIN,
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cmd = s.env.command_as(
        std::path::Path::new("msmtp"),
        &["-C", rc.to_str().unwrap(), "ann@example.com"],
    );
    let out = s.env.run_cmd(cmd, Some("Subject: via msmtp\n\nhello\n"));
    assert_eq!(out.code, 0, "{out}");
    let m = &s.smtp().wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.user, "ada@contoso.example");
    assert!(m.text().contains("Subject: via msmtp"));
}

#[test]
fn sendmail_killed_mid_send_leaves_the_message_queued() {
    // The outbox copy is written before the send: kill the process while Graph holds the
    // request (which it then refuses), and only the outbox can still have the message.
    let s = Stand::graph();
    s.graph.set_request_delay(Duration::from_millis(400));
    const N: usize = 5;
    for i in 0..N {
        s.graph
            .fail_next(1, 500, None, "ErrorInternalServerError", "down");
        let before = s.graph.stats().requests;
        let mut child = s
            .env
            .command(&["sendmail", "-i", "ann@example.com"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("To: ann@example.com\nSubject: k{i}\n\nbody\n").as_bytes())
            .unwrap();
        drop(stdin);
        let deadline = Instant::now() + Duration::from_secs(20);
        while s.graph.stats().requests == before {
            assert!(Instant::now() < deadline, "the send never reached Graph");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill(); // SIGKILL while the request is in flight
        let _ = child.wait();
    }
    assert!(s.graph.delivered().is_empty());
    assert_eq!(
        queue_json(&s)["queued"].as_array().unwrap().len(),
        N,
        "a killed send lost its message"
    );
    s.graph.set_request_delay(Duration::ZERO);
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 0, "{out}");
    let mut subjects: Vec<_> = s
        .graph
        .delivered()
        .iter()
        .map(|d| d.subject.clone())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        (0..N).map(|i| format!("k{i}")).collect::<Vec<_>>()
    );
}

fn tool(name: &str) -> bool {
    std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn mutt_and_git_send_email_recipes_from_the_readme() {
    // The README's recipes, run as a new user would: real mutt and real git send-email with
    // mailer as their sendmail. scripts/test installs both.
    assert!(
        tool("mutt") && tool("git"),
        "mutt and git (with git-email) are needed: run scripts/test"
    );
    let s = Stand::graph();
    let bin = crate::support::harness::BIN;

    let muttrc = s.env.path("muttrc");
    std::fs::write(
        &muttrc,
        format!("set sendmail = \"{bin} sendmail\"\nset use_envelope_from = yes\nset from = \"Ada <ada@contoso.example>\"\nset record = \"\"\nset folder = \"{}\"\n", s.env.path("Mail").display()),
    )
    .unwrap();
    let cmd = s.env.command_as(
        std::path::Path::new("mutt"),
        &[
            "-n",
            "-F",
            muttrc.to_str().unwrap(),
            "-s",
            "from mutt",
            "--",
            "ann@example.com",
        ],
    );
    let out = s.env.run_cmd(cmd, Some("sent by mutt\n"));
    assert_eq!(out.code, 0, "mutt: {out}");
    let d = s.graph.delivered();
    assert_eq!(
        d.last().map(|d| d.subject.as_str()),
        Some("from mutt"),
        "{d:?}"
    );
    assert_eq!(d.last().unwrap().to[0].1, "ann@example.com");

    let repo = s.env.path("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let mut c = s.env.command_as(std::path::Path::new("git"), args);
        c.current_dir(&repo)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@contoso.example")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@contoso.example");
        let out = s.env.run_cmd(c, None);
        assert_eq!(out.code, 0, "git {args:?}: {out}");
        out
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-q", "-m", "Add a README"]);
    git(&["format-patch", "-1", "-o", "out"]);
    git(&[
        "config",
        "sendemail.sendmailCmd",
        &format!("{bin} sendmail"),
    ]);
    git(&[
        "send-email",
        "--to=ann@example.com",
        "--confirm=never",
        "--suppress-cc=all",
        "--from=Ada <ada@contoso.example>",
        "out",
    ]);
    let d = s.graph.delivered();
    let last = d.last().unwrap();
    assert!(last.subject.contains("Add a README"), "{last:?}");
    assert_eq!(last.via, "mime");
}
