//! Runs the real `mailer` binary in an isolated environment: its own config and data dirs
//! under a temp dir, a unique profile name (tests share one keyring session), and a
//! `$BROWSER` that only records that something tried to open a browser.
//!
//! Every wait here is bounded in time: a hung child fails the test, it does not hang it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_mailer");
/// The arguments of a short `mailer send` (as [`Env::send_simple`] builds them) to
/// `ann@example.com` with subject `s`: for tests that run a send but look at something else.
pub const SEND_SIMPLE: [&str; 7] = [
    "send",
    "--to",
    "ann@example.com",
    "--subject",
    "s",
    "--body",
    "b",
];
const RUN_LIMIT: Duration = Duration::from_secs(60);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub profile: String,
    /// Extra environment for every run.
    pub vars: Vec<(String, String)>,
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("mailer-it-")
            .tempdir()
            .expect("temp dir");
        for d in ["config", "data", "home"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let profile = format!(
            "t{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        Env {
            dir,
            profile,
            vars: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config/mailer/config.toml")
    }

    pub fn token_file(&self) -> PathBuf {
        self.path(&format!("data/mailer/tokens/{}.json", self.profile))
    }

    /// Where the recording `$BROWSER` writes the URLs it was asked to open.
    pub fn browser_log(&self) -> PathBuf {
        self.path("browser-opened.log")
    }

    pub fn browser_was_opened(&self) -> bool {
        self.browser_log().exists()
    }

    pub fn set(&mut self, k: &str, v: &str) {
        self.vars.push((k.to_owned(), v.to_owned()));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        self.command_as(Path::new(BIN), args)
    }

    /// Like [`Env::command`], running `program` (e.g. a `sendmail` link to the binary).
    pub fn command_as(&self, program: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args);
        c.env_clear();
        for keep in [
            "PATH",
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_RUNTIME_DIR",
            "LANG",
            "GNOME_KEYRING_CONTROL",
        ] {
            if let Ok(v) = std::env::var(keep) {
                c.env(keep, v);
            }
        }
        c.env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_DATA_HOME", self.path("data"))
            .env("MAILER_PROFILE", &self.profile)
            .env("MAILER_KEYRING_TIMEOUT", "10")
            .env(
                "BROWSER",
                format!("{} %s", support_file("record-browser.sh").display()),
            )
            .env("MAILER_TEST_BROWSER_LOG", self.browser_log());
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs to completion with `stdin` (closed when `None`), bounded by [`RUN_LIMIT`].
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_cmd(self.command(args), stdin)
    }

    /// `mailer send` of a short mail (body `b`) to `to` with `subject` and the `extra` flags,
    /// stdin closed.
    pub fn send_simple(&self, to: &str, subject: &str, extra: &[&str]) -> Output {
        let mut args = vec!["send", "--to", to, "--subject", subject, "--body", "b"];
        args.extend_from_slice(extra);
        self.run(&args, None)
    }

    /// Runs a prepared command to completion with `stdin`, bounded by [`RUN_LIMIT`].
    pub fn run_cmd(&self, cmd: Command, stdin: Option<&str>) -> Output {
        self.run_cmd_bytes(cmd, stdin.map(str::as_bytes))
    }

    /// Like [`Env::run`], with stdin that need not be UTF-8 (8-bit headers, NUL bytes).
    pub fn run_bytes(&self, args: &[&str], stdin: &[u8]) -> Output {
        self.run_cmd_bytes(self.command(args), Some(stdin))
    }

    /// Like [`Env::run_cmd`], with stdin as bytes. A writer thread feeds stdin, so a child
    /// that stops reading early (an error found in the first line) cannot block the test.
    pub fn run_cmd_bytes(&self, mut cmd: Command, stdin: Option<&[u8]>) -> Output {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailer");
        let mut input = child.stdin.take().unwrap();
        let bytes = stdin.unwrap_or_default().to_vec();
        // A child that exits without reading everything closes the pipe: EPIPE is fine.
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
        let out = wait_output(child, RUN_LIMIT);
        let _ = writer.join();
        out
    }

    /// Starts every run (its arguments, stdin closed) at once and waits for all of them,
    /// bounded by `limit` in all. The outputs are in the order of `runs`.
    pub fn run_concurrently(&self, runs: &[Vec<String>], limit: Duration) -> Vec<Output> {
        let children: Vec<Child> = runs
            .iter()
            .map(|args| {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.command(&args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn mailer")
            })
            .collect();
        let deadline = Instant::now() + limit;
        children
            .into_iter()
            .map(|child| wait_until(child, deadline, limit))
            .collect()
    }

    /// Starts `mailer` in the background with stderr streamed line by line.
    pub fn spawn(&self, args: &[&str]) -> Running {
        self.spawn_with_stdin(args, None)
    }

    /// Runs `mailer` and plays the browser (see [`browse`]) for each of the `sign_ins`
    /// sign-ins it prints, in order; each must end on mailer's "signed in" page.
    pub fn run_signing_in(&self, args: &[&str], sign_ins: usize) -> Output {
        let mut run = self.spawn(args);
        for _ in 0..sign_ins {
            let url = run.authorize_url();
            let page = browse(&url);
            assert_eq!(page.status, 200, "{}", page.text());
        }
        run.finish()
    }

    /// Like [`Env::spawn`], writing `stdin` (then closing it) when given.
    pub fn spawn_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Running {
        let mut child = self
            .command(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mailer");
        if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
            input.write_all(text.as_bytes()).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child: Some(child),
            lines: rx,
            seen: Vec::new(),
        }
    }
}

pub struct Running {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Waits (bounded) for a stderr line containing `needle` and returns it.
    pub fn wait_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no stderr line with {needle:?} within {limit:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    /// The authorize URL the login printed (the line after "Open this URL …", whatever
    /// the provider's path).
    pub fn authorize_url(&mut self) -> String {
        self.wait_line("Open this URL", Duration::from_secs(20));
        self.wait_line("://", Duration::from_secs(5))
            .trim()
            .to_owned()
    }

    pub fn finish(mut self) -> Output {
        let child = self.child.take().unwrap();
        let mut out = wait_output(child, RUN_LIMIT);
        let mut earlier: Vec<String> = std::mem::take(&mut self.seen);
        earlier.extend(self.lines.try_iter());
        // Drain what the reader thread still delivers after exit (bounded).
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            earlier.push(l);
        }
        out.stderr = earlier.join("\n");
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait_output(child: Child, limit: Duration) -> Output {
    wait_until(child, Instant::now() + limit, limit)
}

/// Waits for `child` until `deadline` (`limit` names it in the panic when it is missed).
fn wait_until(mut child: Child, deadline: Instant, limit: Duration) -> Output {
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mailer did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().expect("output");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn support_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// The flags that point mailer at a test SMTP server listening on `port`: the loopback host,
/// the port, and the test CA that signed the server's certificate
/// ([`SmtpServer::ca_file`](super::smtp::SmtpServer::ca_file)).
pub fn smtp_flags(port: u16) -> Vec<String> {
    let ca = super::smtp::SmtpServer::ca_file();
    [
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port.to_string(),
        "--ca-file",
        ca.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Plays the browser: GET the authorize URL on the fake, then follow its one redirect to
/// mailer's loopback listener. Returns the listener's answer.
pub fn browse(url: &str) -> super::http::Response {
    let r = super::http::request("GET", url, &[], b"");
    assert_eq!(r.status, 302, "authorize did not redirect: {}", r.text());
    let location = r.header("Location").expect("Location").to_owned();
    super::http::request("GET", &location, &[], b"")
}

/// Real headless Chromium as `$BROWSER` for `env` (tests/support/chromium-browser.sh). Every
/// Chromium it started is killed, with its process group, when this is dropped.
pub struct Chromium {
    pidfile: PathBuf,
    pub dom: PathBuf,
}

impl Chromium {
    pub fn attach(env: &mut Env) -> Chromium {
        assert!(
            Command::new("chromium")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success()),
            "Debian's chromium is needed for this test: run scripts/test (it installs it) or apt-get install chromium"
        );
        let pidfile = env.path("chromium.pid");
        let dom = env.path("chromium.dom");
        env.set(
            "BROWSER",
            &format!("{} %s", support_file("chromium-browser.sh").display()),
        );
        env.set("MAILER_TEST_CHROMIUM_PIDFILE", pidfile.to_str().unwrap());
        env.set("MAILER_TEST_CHROMIUM_DOM", dom.to_str().unwrap());
        Chromium { pidfile, dom }
    }

    /// What Chromium's last page showed once loaded (bounded wait).
    pub fn last_page(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut page = String::new();
        while Instant::now() < deadline {
            page = std::fs::read_to_string(&self.dom).unwrap_or_default();
            if page.contains("</html>") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        page
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dom.with_extension("dom.log")).unwrap_or_default()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        for pid in std::fs::read_to_string(&self.pidfile)
            .unwrap_or_default()
            .lines()
        {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}
