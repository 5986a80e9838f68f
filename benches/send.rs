//! `cargo bench --bench send`: mailer against the floor, on loopback fakes, in one run.
//!
//! - Graph: `mailer send` (1 KB body, cached token, file token store) against `curl`
//!   POSTing the same JSON with the same token to the same fake Graph.
//! - SMTP: `mailer send --transport smtp --raw` against Debian's `msmtp` with the same token
//!   (passwordeval), the same message and the same server (nodemailer smtp-server,
//!   STARTTLS + XOAUTH2).
//! - Peak RSS of `mailer send` with a 100 MB attachment through Graph's upload session.
//!
//! Prints medians and ratios; it asserts nothing (timings vary by machine), so it cannot
//! fail a build, but the targets are printed next to the figures. Every loop is bounded.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_entra::FakeEntra;
use support::fake_graph::FakeGraph;
use support::harness::{Env, browse};
use support::smtp::{SmtpOptions, SmtpServer};

const RUNS: usize = 31;
const CLIENT: &str = "bench-client";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(cmd: &mut Command) -> Duration {
    time_with_stdin(cmd, b"")
}

fn time_with_stdin(cmd: &mut Command, input: &[u8]) -> Duration {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

/// Runs `cmd` to completion and returns its peak resident set size in KiB (wait4 rusage).
fn peak_rss_kib(cmd: &mut Command) -> i64 {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data, zeroed is a valid value; wait4 fills it for our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "send with a large attachment failed"
    );
    std::mem::forget(child); // already reaped
    usage.ru_maxrss
}

fn login(env: &Env, entra: &FakeEntra, extra: &[&str]) {
    let authority = entra.authority();
    let mut args = vec![
        "login",
        "--tenant",
        "contoso.example",
        "--client-id",
        CLIENT,
        "--authority",
        &authority,
        "--no-browser",
        "--token-store",
        "file",
        "--timeout",
        "30",
    ];
    args.extend_from_slice(extra);
    let mut run = env.spawn(&args);
    let url = run.authorize_url();
    assert_eq!(browse(&url).status, 200);
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("send: bench");
        return;
    }
    for tool in ["curl", "msmtp", "node"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is needed (scripts/test installs it)"
        );
    }
    let entra = FakeEntra::start();
    entra.add_public_client(CLIENT, &["http://localhost"]);
    let graph = FakeGraph::start(entra.validator());
    let smtp = SmtpServer::start(SmtpOptions {
        introspect: format!("{}/_test/introspect", entra.authority()),
        ..Default::default()
    });
    let env = Env::new();
    let graph_url = graph.url();
    let port = smtp.port().to_string();
    let ca = SmtpServer::ca_file();
    login(
        &env,
        &entra,
        &[
            "--graph-url",
            &graph_url,
            "--smtp-host",
            "127.0.0.1",
            "--smtp-port",
            &port,
            "--ca-file",
            ca.to_str().unwrap(),
            "--large-attachments",
        ],
    );
    let token = |transport: &str| {
        let out = env.run(&["token", "--transport", transport], None);
        assert_eq!(out.code, 0, "{out}");
        out.stdout.trim().to_owned()
    };
    let graph_token = token("graph");
    let smtp_token = token("smtp");

    // The same 1 KB message for everyone.
    let body: String =
        "The quick brown fox jumps over the lazy dog. ".repeat(23)[..1000].to_owned();
    let body_file = env.path("body.txt");
    std::fs::write(&body_file, &body).unwrap();
    let json = serde_json::json!({
        "message": {
            "subject": "bench",
            "body": { "contentType": "Text", "content": body },
            "toRecipients": [{ "emailAddress": { "address": "ann@example.com" } }],
        },
        "saveToSentItems": true,
    });
    let json_file = env.path("mail.json");
    std::fs::write(&json_file, json.to_string()).unwrap();
    let raw = format!(
        "From: ada@contoso.example\r\nTo: ann@example.com\r\nSubject: bench\r\nMessage-ID: <b@contoso.example>\r\n\r\n{body}\r\n"
    );

    // Graph.
    let sendmail_url = format!("{graph_url}/v1.0/me/sendMail");
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(time(
            env.command(&[
                "send",
                "--to",
                "ann@example.com",
                "--subject",
                "bench",
                "--body-file",
                body_file.to_str().unwrap(),
            ])
            .arg("-q"),
        ));
        floor.push(time(Command::new("curl").args([
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {graph_token}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{}", json_file.display()),
            &sendmail_url,
        ])));
    }
    let (g_ours, g_floor) = (median(ours), median(floor));

    // SMTP.
    let token_file = env.path("smtp-token");
    std::fs::write(&token_file, &smtp_token).unwrap();
    let rc = env.path("msmtprc");
    std::fs::write(&rc, format!(
        "account bench\nhost 127.0.0.1\nport {port}\ntls on\ntls_starttls on\ntls_trust_file {}\nauth xoauth2\nuser ada@contoso.example\nfrom ada@contoso.example\npasswordeval cat {}\naccount default : bench\n",
        ca.display(), token_file.display()
    )).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (mut ours, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(time_with_stdin(
            &mut env.command(&["send", "--transport", "smtp", "--raw", "-q"]),
            raw.as_bytes(),
        ));
        floor.push(time_with_stdin(
            Command::new("msmtp").args(["-C", rc.to_str().unwrap(), "ann@example.com"]),
            raw.as_bytes(),
        ));
    }
    let (s_ours, s_floor) = (median(ours), median(floor));
    let delivered = smtp.messages().len();
    assert_eq!(delivered, 2 * RUNS, "every SMTP send arrived");

    // 100 MB through an upload session.
    let big = env.path("big.bin");
    {
        let mut f = std::fs::File::create(&big).unwrap();
        let chunk: Vec<u8> = (0..1024 * 1024)
            .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for _ in 0..100 {
            f.write_all(&chunk).unwrap();
        }
    }
    let started = Instant::now();
    let rss = peak_rss_kib(&mut env.command(&[
        "send",
        "--to",
        "ann@example.com",
        "--subject",
        "big",
        "--body",
        "x",
        "--attach",
        big.to_str().unwrap(),
        "-q",
    ]));
    let big_took = started.elapsed();
    let last = graph.delivered().pop().unwrap();
    assert_eq!(last.via, "draft");
    assert_eq!(last.attachments[0].size, 100 * 1024 * 1024);

    println!(
        "\nmailer send, loopback fakes, medians of {RUNS} runs (cached token, file token store)"
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8}  target",
        "path", "mailer", "floor", "ratio"
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms {:>7.2}x  <= 1.5x (floor: curl)",
        "Graph sendMail, 1 KB",
        ms(g_ours),
        ms(g_floor),
        ms(g_ours) / ms(g_floor)
    );
    println!(
        "{:<44} {:>8.1}ms {:>8.1}ms {:>7.2}x  <= 1.1x (floor: msmtp)",
        "SMTP STARTTLS + XOAUTH2, 1 KB",
        ms(s_ours),
        ms(s_floor),
        ms(s_ours) / ms(s_floor)
    );
    println!(
        "{:<44} {:>8.1}MB {:>10} {:>8}  <= 40 MB peak RSS ({:.1} s)",
        "Graph upload session, 100 MB attachment",
        rss as f64 / 1024.0,
        "-",
        "-",
        big_took.as_secs_f64()
    );
}
