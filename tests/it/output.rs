//! How results reach the user: a reader that stops reading (`mailer … | head -1`) ends the
//! command quietly with status 0, and `-q` silences every command's human output.

use crate::login::{fake, login};
use crate::support::harness::Env;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Runs `args` with stdout connected to a pipe whose reading end is already closed, so
/// every write to stdout fails with EPIPE. Returns (exit code, stderr).
fn into_closed_pipe(env: &Env, args: &[&str]) -> (i32, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills two fresh descriptors, which the OwnedFds below take over.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{args:?} hung");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &["--token-store", "file"]).code, 0);
    let dry_run = [
        "send",
        "--dry-run",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--body",
        "b",
    ];
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["status"],
        &["status", "--json"],
        &["profiles"],
        &["profiles", "--json"],
        &["queue", "list", "--json"],
        &["token"],
        &["token", "--format", "json"],
        &dry_run,
        &["--help"],
        &["--version"],
    ] {
        let (code, stderr) = into_closed_pipe(&env, args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn quiet_silences_human_output_but_not_results() {
    let env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &["--token-store", "file"]).code, 0);
    for args in [
        &["queue", "list", "-q"][..],
        &["status", "-q"],
        &["profiles", "-q"],
        &["queue", "purge", "-q"],
    ] {
        let out = env.run(args, None);
        assert_eq!(out.code, 0, "{args:?}: {out}");
        assert_eq!(out.all(), "", "{args:?} printed something under -q");
    }
    // The token is what `mailer token` is for: -q does not hide it.
    let out = env.run(&["token", "-q"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.trim().is_empty());
    // --json wins over -q for the result document.
    let out = env.run(&["queue", "list", "-q", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["queued"].as_array().unwrap().is_empty(), "{out}");
}
