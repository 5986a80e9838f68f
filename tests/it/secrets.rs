//! The secrets scan: every command, run with `-vvv` and `--json`, through success and
//! failure paths (Graph's 401, SMTP's 535, the token endpoint's invalid_grant), in profiles
//! whose access token, refresh token, client secret and certificate key are recognisable
//! canaries. None may show up in stdout, stderr (a panic message included), the config,
//! the outbox, the notify command's log or any other file mailer wrote; only the token
//! store holds them, and only `mailer token` prints a token, by design. The token store
//! and outbox files are 0600 in 0700 directories.

use crate::diagnosis::set_profile;
use crate::login::login_command;
use crate::setup::{APP_ONLY_CREATE, Directory, USER};
use crate::support::harness::{Env, Output, SEND_SIMPLE, smtp_flags};
use crate::support::smtp::{SmtpOptions, SmtpServer};
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Base64url characters only, as the rest of the tokens.
const ACCESS: &str = "CANARYaccessTOKEN4711";
const REFRESH: &str = "CANARYrefreshTOKEN4711";
const CLIENT_SECRET: &str = "CANARY-client-SECRET-4711";
/// A confidential ("Web") app: every token request carries the secret.
const WEB_APP: &str = "0c0ffee0-1111-4222-8333-444455556666";
const VERBOSE: [&str; 2] = ["-vvv", "--json"];

/// The fakes of one profile (setup's [`Directory`]), with canaries in the tokens, the Web
/// app registered and the user a Graph admin.
fn stand() -> Directory {
    let d = Directory::new_with(|entra| {
        entra.set_canaries(ACCESS, REFRESH);
        // Access tokens that live less than mailer's 5-minute reuse margin: every command
        // renews one, so refresh tokens rotate and fresh canaries pass through every path;
        // yet long enough that one that was just issued is still good for the whole command
        // (app create uses its bootstrap token for several calls, and a slow machine must
        // not see it expire halfway).
        entra.set_access_token_lifetime(120);
        entra.add_confidential_client(WEB_APP, CLIENT_SECRET, &["http://localhost"]);
    });
    d.graph.set_admin(true);
    d
}

/// Every endpoint flag: the authority, Graph and the SMTP server.
fn endpoints(d: &Directory) -> Vec<String> {
    let mut flags = d.endpoints();
    flags.extend(smtp_flags(d.smtp.port()));
    flags
}

/// Every run and where each canary turned up.
#[derive(Default)]
struct Scan {
    canaries: Vec<(String, String)>,
    runs: Vec<String>,
    hits: Vec<String>,
}

impl Scan {
    /// `what` and the forms it could leak in: itself and its base64 (as in an XOAUTH2 or
    /// Basic header; each of the three alignments, the part that depends on it alone).
    fn add(&mut self, what: &str, canary: &str) {
        self.canaries.push((what.to_owned(), canary.to_owned()));
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
        ] {
            for pad in 0..3 {
                let bytes = [vec![b'x'; pad], canary.as_bytes().to_vec()].concat();
                let enc = engine.encode(&bytes);
                let (start, end) = (pad.div_ceil(3) * 4, bytes.len() / 3 * 4);
                if end > start + 8 {
                    self.canaries
                        .push((format!("{what} (base64)"), enc[start..end].to_owned()));
                }
            }
        }
    }

    fn look(&mut self, place: &str, text: &str) {
        for (what, c) in &self.canaries {
            if text.contains(c.as_str()) {
                self.hits.push(format!("{what} in {place}"));
            }
        }
    }

    /// Runs `args` + `-vvv --json` and scans what it printed; `token` may print a token.
    fn run(&mut self, env: &Env, args: &[&str], stdin: Option<&str>) -> Output {
        // Before the command: after `sendmail` every argument is sendmail's.
        let mut all = VERBOSE.to_vec();
        all.extend(args);
        let out = env.run(&all, stdin);
        self.record(args, out)
    }

    fn record(&mut self, args: &[&str], out: Output) -> Output {
        let name = args.join(" ");
        if args.first() != Some(&"token") {
            self.look(&format!("stdout of `{name}`"), &out.stdout);
        }
        self.look(&format!("stderr of `{name}`"), &out.stderr);
        if out.stderr.contains("panicked") {
            self.hits.push(format!("a panic in `{name}`"));
        }
        // The first line a person reads (JSON error objects start with `{`).
        let said = out
            .stderr
            .lines()
            .find(|l| l.starts_with("mailer:") || l.starts_with("error:"))
            .unwrap_or_default();
        eprintln!("secrets scan: exit {:>2}  mailer {name}  {said}", out.code);
        self.runs.push(name);
        out
    }

    /// Runs `args` + `-vvv --json`, playing the browser for `sign_ins` sign-ins.
    fn run_signing_in(&mut self, env: &Env, args: &[String], sign_ins: usize) -> Output {
        let mut all = VERBOSE.to_vec();
        all.extend(args.iter().map(String::as_str));
        let out = env.run_signing_in(&all, sign_ins);
        self.record(&all[VERBOSE.len()..], out)
    }

    /// Every file under `root` but the token store.
    fn files(&mut self, root: &Path, tokens: &Path) {
        let mut dirs = vec![root.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let kind = entry.file_type().unwrap();
                if path.starts_with(tokens) {
                    continue;
                } else if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file() {
                    let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                    self.look(&path.display().to_string(), &text);
                }
            }
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Files (recursively) under `dir` are 0600, and `dir` and the directories under it 0700.
fn private(dir: &Path, problems: &mut Vec<String>) -> usize {
    let mut files = 0;
    if mode(dir) != 0o700 {
        problems.push(format!("{} is {:03o}", dir.display(), mode(dir)));
    }
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files += private(&path, problems);
        } else if path.extension().is_some_and(|x| x == "json") {
            files += 1;
            if mode(&path) != 0o600 {
                problems.push(format!("{} is {:03o}", path.display(), mode(&path)));
            }
        }
    }
    files
}

fn outbox(env: &Env) -> PathBuf {
    env.path(&format!("data/mailer/outbox/{}", env.profile))
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn no_secret_reaches_output_config_outbox_or_logs() {
    let mut scan = Scan::default();
    scan.add("the access token", ACCESS);
    scan.add("the refresh token", REFRESH);
    scan.add("the client secret", CLIENT_SECRET);
    let mut problems = Vec::new();

    // --- A delegated profile of a confidential app, every command, success first.
    let mut a = stand();
    a.env.set("MAILER_CLIENT_SECRET", CLIENT_SECRET);
    let notify_log = a.env.path("notify.log");
    let authority = a.entra.authority();
    let mut login = login_command(WEB_APP, &authority, "30", false, &["--token-store", "file"])
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    // login_command names the authority already.
    login.extend(endpoints(&a).split_off(2));
    let out = scan.run_signing_in(&a.env, &login, 1);
    expect(&mut problems, &out, &[0], "login");
    set_profile(
        &a.env,
        "notify_command",
        toml::Value::String(format!(
            "{{ env; echo \"$MAILER_DETAIL\"; }} >> {}",
            notify_log.display()
        )),
    );
    let e = &a.env;
    let send = |to: &str| owned(&["send", "--to", to, "--subject", "s", "--body", "b"]);
    for (args, stdin, codes) in [
        (owned(&["status"]), None, &[0][..]),
        (owned(&["profiles"]), None, &[0]),
        (owned(&["token"]), None, &[0]),
        (
            owned(&["token", "--format", "json", "--transport", "smtp"]),
            None,
            &[0],
        ),
        (owned(&["token", "--format", "xoauth2"]), None, &[0]),
        (send("ann@example.com"), None, &[0]),
        (
            [send("ann@example.com"), owned(&["--transport", "smtp"])].concat(),
            None,
            &[0],
        ),
        (
            [send("ann@example.com"), owned(&["--dry-run"])].concat(),
            None,
            &[0],
        ),
        (
            owned(&["sendmail", "-t"]),
            Some("To: ann@example.com\nSubject: s\n\nb\n"),
            &[0],
        ),
        (owned(&["doctor"]), None, &[0]),
        (owned(&["doctor", "--send-test"]), None, &[0]),
        (owned(&["queue", "list"]), None, &[0]),
        (owned(&["queue", "run"]), None, &[0]),
        (owned(&["explain", "AADSTS70008"]), None, &[0]),
        (
            owned(&["discover", USER, "--authority", &authority]),
            None,
            &[0],
        ),
        (
            owned(&["app", "instructions", "--tenant", "contoso.example"]),
            None,
            &[0],
        ),
        (owned(&["completions", "bash"]), None, &[0]),
        (owned(&["man"]), None, &[0]),
    ] {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = scan.run(e, &refs, stdin);
        expect(&mut problems, &out, codes, &args.join(" "));
    }
    // The token commands print one, by design: the scan would have found it.
    let token = e.run(&["token"], None);
    assert!(
        token.stdout.contains(ACCESS),
        "the canary is not in the tokens: {token}"
    );
    // Both canaries are live, or half of the scan would look for nothing.
    let stored = std::fs::read_to_string(e.token_file()).unwrap();
    assert!(
        stored.contains(REFRESH),
        "the refresh canary is not in the stored tokens"
    );

    // Failures: Graph's 401 (after one renewal too), SMTP's 535 (twice, the second with a
    // fresh token), invalid_grant with the message queued, a revoked login in queue run.
    a.graph.fail_next(
        2,
        401,
        None,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
    );
    let out = scan.run(e, &refs(&send("ann@example.com")), None);
    expect(&mut problems, &out, &[77], "send against Graph's 401");
    let refusing = SmtpServer::start(SmtpOptions {
        introspect: format!("{}/_test/introspect", a.entra.authority()),
        reject: Some(("535", 100)),
        ..SmtpOptions::default()
    });
    set_profile(e, "smtp_port", toml::Value::Integer(refusing.port().into()));
    let out = scan.run(
        e,
        &refs(&[send("ann@example.com"), owned(&["--transport", "smtp"])].concat()),
        None,
    );
    expect(&mut problems, &out, &[77], "send against SMTP's 535");
    let out = scan.run(e, &["doctor"], None);
    expect(
        &mut problems,
        &out,
        &[0, 69, 77],
        "doctor against SMTP's 535",
    );
    set_profile(e, "smtp_port", toml::Value::Integer(a.smtp.port().into()));
    a.entra.fail_next_token_request(
        400,
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity.",
    );
    let out = scan.run(
        e,
        &refs(&[send("ann@example.com"), owned(&["--queue"])].concat()),
        None,
    );
    expect(
        &mut problems,
        &out,
        &[75, 77],
        "send --queue against invalid_grant",
    );
    let out = scan.run(e, &["queue", "list"], None);
    expect(&mut problems, &out, &[0], "queue list");
    let queued = private(&outbox(e), &mut problems);
    if queued == 0 {
        problems.push("invalid_grant queued nothing".into());
    }
    private(e.token_file().parent().unwrap(), &mut problems);
    scan.files(&e.path(""), &e.path("data/mailer/tokens"));
    a.entra.revoke_all_refresh_tokens();
    for (args, codes) in [
        (&["queue", "run"][..], &[77][..]),
        (&["status"], &[0, 77]),
        (&["doctor"], &[77]),
        (&["token"], &[77]),
        (&["queue", "retry", "no-such-id"], &[64, 66, 74]),
        (&["queue", "purge"], &[0]),
        (&["logout", "--forget"], &[0]),
    ] {
        let out = scan.run(e, args, None);
        expect(&mut problems, &out, codes, &args.join(" "));
    }
    match std::fs::read_to_string(&notify_log) {
        Ok(log) => scan.look("the notify command's log", &log),
        Err(_) => problems.push("the notify command never ran (no log)".into()),
    }
    scan.files(&a.env.path(""), &a.env.path("data/mailer/tokens"));

    // --- App-only with a certificate whose key mailer made, through setup and app create.
    let b = stand();
    let mut setup = owned(&[
        "setup",
        "--user",
        USER,
        "--create-app",
        "--yes",
        "--token-store",
        "file",
        "--no-browser",
    ]);
    setup.extend(endpoints(&b));
    let out = scan.run_signing_in(&b.env, &setup, 2);
    expect(&mut problems, &out, &[0], "setup");
    let create = [
        owned(&APP_ONLY_CREATE),
        owned(&["--no-browser"]),
        b.endpoints(),
    ]
    .concat();
    let out = scan.run_signing_in(&b.env, &create, 1);
    expect(&mut problems, &out, &[0], "app create --app-only");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.env.token_file()).unwrap()).unwrap();
    let key = record["private_key"]
        .as_str()
        .expect("the key is in the token store")
        .to_owned();
    let key_lines: Vec<&str> = key
        .lines()
        .filter(|l| l.len() >= 40 && !l.starts_with("-----"))
        .collect();
    assert!(key_lines.len() > 10, "{} lines of key", key_lines.len());
    for line in key_lines {
        scan.add("the certificate's private key", line);
    }
    for (args, codes) in [
        (&["login"][..], &[0][..]),
        (&["status"], &[0]),
        (&SEND_SIMPLE, &[0]),
        (&["doctor"], &[0, 69, 77]),
        (&["token"], &[0]),
    ] {
        let out = scan.run(&b.env, args, None);
        expect(&mut problems, &out, codes, &args.join(" "));
    }
    private(b.env.token_file().parent().unwrap(), &mut problems);
    scan.files(&b.env.path(""), &b.env.path("data/mailer/tokens"));
    eprintln!(
        "secrets scan: {} commands run, {} canary forms looked for, {} hits",
        scan.runs.len(),
        scan.canaries.len(),
        scan.hits.len()
    );
    assert!(
        scan.hits.is_empty(),
        "canaries found:\n{}",
        scan.hits.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(scan.runs.len() >= 35, "{} commands", scan.runs.len());
}

fn expect(problems: &mut Vec<String>, out: &Output, codes: &[i32], what: &str) {
    if !codes.contains(&out.code) {
        problems.push(format!("{what}: exit {} (want {codes:?})\n{out}", out.code));
    }
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
