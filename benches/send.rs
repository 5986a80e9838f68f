//! `scripts/with-keyring cargo bench --bench send`: mailer against the floor, on loopback
//! fakes, in one run. Each figure is a median of [`RUNS`] runs, reported as a ratio to a
//! floor measured in the same run:
//!
//! - Graph: `mailer send` (1 KB body, cached token, the default keyring token store) against
//!   `curl` POSTing the same JSON with the same token to the same fake Graph.
//! - SMTP: `mailer send --transport smtp --raw` against Debian's `msmtp` with TCP_NODELAY
//!   forced (an LD_PRELOAD shim, benches/nodelay.c) and the same token (passwordeval), the
//!   same message and the same server (nodemailer smtp-server, STARTTLS + XOAUTH2, its 100 ms
//!   early-talker greeting delay set to 0 so that the clients' own costs are compared).
//!   Plain msmtp (Nagle on) is shown too.
//! - Token helper: `mailer token` (cached) against mutt_oauth2.py as shipped with Debian's
//!   mutt, reading its gpg-encrypted token file; `cat` of a token file is the floor of all.
//! - Peak RSS of `mailer send` with a 100 MB attachment through Graph's upload session.
//!
//! It asserts only that every run succeeded: timings vary by machine, so the targets are
//! printed next to the figures instead. Every loop is bounded.

#[path = "../tests/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::fake_entra::FakeEntra;
use support::fake_graph::FakeGraph;
use support::harness::{Env, browse, smtp_flags};
use support::smtp::{SmtpOptions, SmtpServer};

const RUNS: usize = 31;
const CLIENT: &str = "bbbbbbbb-0000-4000-8000-00000000bec0";
const MUTT_OAUTH2: &str = "/usr/share/doc/mutt/examples/mutt_oauth2.py";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Runs `cmd` with `input` on stdin and returns how long it took; it must succeed.
fn time(cmd: &mut Command, input: &[u8]) -> Duration {
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

/// Medians of `RUNS` alternating runs of each command (alternating spreads machine noise
/// evenly over the contenders).
fn race(contenders: &mut [(&mut dyn FnMut() -> Command, &[u8])]) -> Vec<Duration> {
    let mut times = vec![Vec::new(); contenders.len()];
    for _ in 0..RUNS {
        for (i, (make, input)) in contenders.iter_mut().enumerate() {
            times[i].push(time(&mut make(), input));
        }
    }
    times.into_iter().map(median).collect()
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

fn unpaced(env: &Env) {
    let path = env.config_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    for (_, p) in doc["profiles"].as_table_mut().unwrap().iter_mut() {
        p.as_table_mut()
            .unwrap()
            .insert("rate_limit".into(), toml::Value::Integer(0));
    }
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
}

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The LD_PRELOAD shim that turns TCP_NODELAY on, built with the system C compiler.
fn nodelay_shim(dir: &Path) -> PathBuf {
    let lib = dir.join("nodelay.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/nodelay.c");
    run_ok(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&lib)
            .arg(&src)
            .arg("-ldl"),
    );
    lib
}

/// mutt_oauth2.py as shipped, with its gpg pipes pointed at a throwaway key (its README's
/// setup), and a token file holding a valid access token. Returns the command that prints it.
fn mutt_oauth2(dir: &Path, token: &str) -> impl FnMut() -> Command + use<> {
    let gnupg = dir.join("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gnupg, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let gpg = |args: &[&str]| {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &gnupg)
            .args(["--batch", "--quiet"])
            .args(args);
        c
    };
    run_ok(&mut gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "bench@mailer.test",
        "default",
        "default",
        "never",
    ]));
    let script = std::fs::read_to_string(MUTT_OAUTH2)
        .unwrap()
        .replace(
            "['gpg', '--encrypt', '--recipient', 'YOUR_GPG_IDENTITY']",
            "['gpg', '--batch', '--encrypt', '--recipient', 'bench@mailer.test']",
        )
        .replace(
            "['gpg', '--decrypt']",
            "['gpg', '--batch', '--quiet', '--decrypt']",
        );
    let script_path = dir.join("mutt_oauth2.py");
    std::fs::write(&script_path, script).unwrap();
    let expiry = {
        let out = Command::new("python3")
            .args(["-c", "import datetime;print((datetime.datetime.now()+datetime.timedelta(hours=1)).isoformat())"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let plain = serde_json::json!({
        "registration": "microsoft", "authflow": "localhostauthcode", "email": "ada@contoso.example",
        "access_token": token, "access_token_expiration": expiry, "refresh_token": "unused",
    });
    let token_file = dir.join("mutt-token");
    let mut enc = gpg(&["--encrypt", "--recipient", "bench@mailer.test", "--output"]);
    enc.arg(&token_file).stdin(Stdio::piped());
    let mut child = enc.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plain.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    move || {
        let mut c = Command::new("python3");
        c.env("GNUPGHOME", &gnupg)
            .arg(&script_path)
            .arg(&token_file);
        c
    }
}

struct Row {
    path: &'static str,
    ours: Duration,
    floor: Duration,
    floor_name: &'static str,
    target: &'static str,
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("send: bench");
        return;
    }
    for tool in ["curl", "msmtp", "node", "gpg", "python3", "cc"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is needed (scripts/test installs it)"
        );
    }
    assert!(
        Path::new(MUTT_OAUTH2).is_file(),
        "{MUTT_OAUTH2} is needed (Debian's mutt)"
    );
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "run it in a keyring session: scripts/with-keyring cargo bench --bench send"
    );
    let entra = FakeEntra::start();
    entra.add_public_client(CLIENT, &["http://localhost"]);
    let graph = FakeGraph::start(entra.validator());
    let smtp = SmtpServer::start(SmtpOptions {
        introspect: format!("{}/_test/introspect", entra.authority()),
        greeting_delay_ms: Some(0),
        ..Default::default()
    });
    let env = Env::new();
    let graph_url = graph.url();
    let port = smtp.port().to_string();
    let ca = SmtpServer::ca_file();
    let smtp_flags = smtp_flags(smtp.port());
    let mut args = vec!["--graph-url", graph_url.as_str(), "--large-attachments"];
    args.extend(smtp_flags.iter().map(String::as_str));
    login(&env, &entra, &args);
    // Pacing (rate_limit, 30 a minute by default) would measure the sleep, not mailer.
    unpaced(&env);
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
    let mut rows = Vec::new();

    // Graph.
    let sendmail_url = format!("{graph_url}/v1.0/me/sendMail");
    let body_arg = body_file.to_str().unwrap().to_owned();
    let mut mailer_graph = || {
        let mut c = env.command(&[
            "send",
            "--to",
            "ann@example.com",
            "--subject",
            "bench",
            "--body-file",
            &body_arg,
            "-q",
        ]);
        c.stdin(Stdio::null());
        c
    };
    let auth_header = format!("Authorization: Bearer {graph_token}");
    let data_arg = format!("@{}", json_file.display());
    let mut curl = || {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "-f",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            &auth_header,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &data_arg,
            &sendmail_url,
        ]);
        c
    };
    let t = race(&mut [(&mut mailer_graph, b""), (&mut curl, b"")]);
    rows.push(Row {
        path: "Graph sendMail, 1 KB, cached token",
        ours: t[0],
        floor: t[1],
        floor_name: "curl",
        target: "<= 1.5x",
    });

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
    let shim = nodelay_shim(env.dir.path());
    let rc_arg = rc.to_str().unwrap().to_owned();
    let mut mailer_smtp = || env.command(&["send", "--transport", "smtp", "--raw", "-q"]);
    let mut msmtp_nodelay = || {
        let mut c = Command::new("msmtp");
        c.env("LD_PRELOAD", &shim)
            .args(["-C", &rc_arg, "ann@example.com"]);
        c
    };
    let mut msmtp = || {
        let mut c = Command::new("msmtp");
        c.args(["-C", &rc_arg, "ann@example.com"]);
        c
    };
    let t = race(&mut [
        (&mut mailer_smtp, raw.as_bytes()),
        (&mut msmtp_nodelay, raw.as_bytes()),
        (&mut msmtp, raw.as_bytes()),
    ]);
    rows.push(Row {
        path: "SMTP STARTTLS + XOAUTH2, 1 KB",
        ours: t[0],
        floor: t[1],
        floor_name: "msmtp+NODELAY",
        target: "<= 1.3x",
    });
    rows.push(Row {
        path: "  (same, against plain msmtp)",
        ours: t[0],
        floor: t[2],
        floor_name: "msmtp",
        target: "",
    });
    assert_eq!(smtp.messages().len(), 3 * RUNS, "every SMTP send arrived");

    // Token helper.
    let mut mailer_token = || env.command(&["token"]);
    let mut mutt = mutt_oauth2(env.dir.path(), &graph_token);
    let plain_token = env.path("plain-token");
    std::fs::write(&plain_token, &graph_token).unwrap();
    let mut cat = || {
        let mut c = Command::new("cat");
        c.arg(&plain_token);
        c
    };
    let t = race(&mut [(&mut mailer_token, b""), (&mut mutt, b""), (&mut cat, b"")]);
    rows.push(Row {
        path: "token helper, cached token",
        ours: t[0],
        floor: t[1],
        floor_name: "mutt_oauth2.py",
        target: "<= 0.1x",
    });
    rows.push(Row {
        path: "  (same, against cat of a token file)",
        ours: t[0],
        floor: t[2],
        floor_name: "cat",
        target: "",
    });

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

    println!("\nmailer, loopback fakes, medians of {RUNS} alternating runs (keyring token store)");
    println!(
        "{:<40} {:>9} {:>9} {:<15} {:>7}  target",
        "path", "mailer", "floor", "(floor)", "ratio"
    );
    for r in &rows {
        println!(
            "{:<40} {:>7.1}ms {:>7.1}ms {:<15} {:>6.2}x  {}",
            r.path,
            ms(r.ours),
            ms(r.floor),
            r.floor_name,
            ms(r.ours) / ms(r.floor),
            r.target
        );
    }
    println!(
        "{:<40} {:>7.1}MB {:>9} {:<15} {:>7}  <= 40 MB peak RSS ({:.1} s)",
        "Graph upload session, 100 MB attachment",
        rss as f64 / 1024.0,
        "-",
        "",
        "-",
        big_took.as_secs_f64()
    );
}
