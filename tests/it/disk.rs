//! Disk faults: the outbox on a read-only and on a full file system, and a token store that
//! will not take the tokens a refresh just rotated. Real file systems: a small tmpfs, or a
//! read-only bind mount, made by the test when it runs as root (as CI does); skipped with a
//! message otherwise, since only root may mount.

use crate::diagnosis::file_stand;
use crate::send::Stand;
use crate::support::smtp::SmtpOptions;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mount the test made; unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    /// `mount ARGS… DIR`, or `None` (with a note) where this process may not mount.
    fn new(dir: &Path, args: &[&str]) -> Option<Mount> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: mounting a test file system needs root");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(args)
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("skipped: `mount {}` is not allowed here", args.join(" "));
            return None;
        }
        Some(Mount(dir.to_owned()))
    }

    /// A tmpfs of `size` (e.g. `64k`), read-only when `ro`.
    fn tmpfs(dir: &Path, size: &str, ro: bool) -> Option<Mount> {
        let opts = format!("size={size},mode=0700{}", if ro { ",ro" } else { "" });
        Mount::new(dir, &["-t", "tmpfs", "-o", &opts, "tmpfs"])
    }

    /// `dir` itself, made read-only in place (a bind mount over it).
    fn read_only(dir: &Path) -> Option<Mount> {
        let d = dir.to_str().unwrap();
        let bound = Mount::new(dir, &["--bind", d])?;
        let ok = Command::new("mount")
            .args(["-o", "remount,ro,bind", d])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(bound)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn outbox_root(s: &Stand) -> PathBuf {
    s.env.path("data/mailer/outbox")
}

fn queued_files(s: &Stand) -> usize {
    std::fs::read_dir(outbox_root(s).join(&s.env.profile))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn an_outbox_on_a_read_only_file_system_refuses_before_sending() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let Some(_ro) = Mount::tmpfs(&outbox_root(&s), "64k", true) else {
        return;
    };
    let out = s.env.send_simple("ann@example.com", "kept?", &["--queue"]);
    assert_eq!(out.code, 74, "{out}");
    assert!(out.stderr.contains("read-only file system"), "{out}");
    assert!(out.stderr.contains("not sent"), "{out}");
    assert_eq!(
        s.graph.delivered().len(),
        0,
        "write-ahead failed: nothing left"
    );
}

#[test]
fn an_outbox_on_a_full_file_system_refuses_before_sending() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let root = outbox_root(&s);
    let Some(_full) = Mount::tmpfs(&root, "64k", false) else {
        return;
    };
    // Fill it: the last write fails with ENOSPC.
    let filler = root.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 128 * 1024]);
    assert!(std::fs::metadata(&filler).unwrap().len() > 0);
    let body = "x".repeat(100 * 1024);
    let args = [
        "send",
        "--queue",
        "--to",
        "ann@example.com",
        "--subject",
        "big",
        "--body",
    ];
    let out = s.env.run(&[&args[..], &[body.as_str()]].concat(), None);
    assert_eq!(out.code, 74, "{out}");
    assert!(out.stderr.contains("free space"), "{out}");
    assert!(out.stderr.contains("not sent"), "{out}");
    assert_eq!(s.graph.delivered().len(), 0);
}

#[test]
fn a_rotated_refresh_token_the_store_will_not_take_is_said_and_the_message_kept() {
    let mut s = file_stand(SmtpOptions::default(), &[]);
    // Tokens from the file only, and none cached: the next send renews the login.
    s.env.set("MAILER_NO_KERNEL_CACHE", "1");
    let file = s.env.token_file();
    let mut record: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let before = record["refresh_token"].clone();
    record["access"] = serde_json::json!({});
    std::fs::write(&file, record.to_string()).unwrap();
    let Some(ro) = Mount::read_only(file.parent().unwrap()) else {
        return;
    };
    let refreshes = s.entra.stats().oauth.refresh_grants;
    let out = s
        .env
        .send_simple("ann@example.com", "after rotation", &["--queue"]);
    assert_eq!(out.code, 75, "kept in the outbox: {out}");
    assert!(
        out.stderr.contains("the login was renewed, but file"),
        "{out}"
    );
    assert!(out.stderr.contains("token --refresh"), "{out}");
    assert!(out.stderr.contains("read-only file system"), "{out}");
    assert_eq!(
        s.entra.stats().oauth.refresh_grants,
        refreshes + 1,
        "Entra rotated"
    );
    assert_eq!(s.graph.delivered().len(), 0);
    assert_eq!(queued_files(&s), 1);
    drop(ro);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(
        stored["refresh_token"], before,
        "the old token is still stored"
    );

    // This fake revokes a rotated token's family on reuse (stricter than Entra, which keeps
    // the old one a while): the next run says a login is needed and how, and keeps the
    // message; after the login it goes.
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("mailer login"), "{out}");
    assert_eq!(queued_files(&s), 1);
}
