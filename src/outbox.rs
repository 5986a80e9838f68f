//! The outbox: messages that could not be sent yet, one file each, and the locks that say
//! who may touch them.
//!
//! `{data_dir}/mailer/outbox/{profile}/{id}.json` (0600 in a 0700 directory), written
//! atomically, holding the complete RFC 5322 bytes and the envelope. A message is removed
//! only after the server accepted it, so a crash at any instant leaves it either here or
//! sent, never lost. Permanent failures move to `failed/` with the reason, so they are not
//! retried forever but stay visible in `queue list`; so do unconfirmed deliveries (the
//! server may have the message), until a person puts them back with `queue retry`.
//!
//! Two guards: an [`OutboxLock`] for the one `queue run` at a time per profile, and a
//! [`Claim`] on each message being sent, so that a `queue run` never sends a message a
//! `send` process wrote ahead and is still sending. Both are advisory file locks the kernel
//! drops when a process dies. What to send and when is [`crate::deliver`]'s to decide.

use crate::error::{Error, Result};
use crate::fsutil::{self, LockFile};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    pub subject: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// `--from` / `sendmail -f`: send as this mailbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_as: Option<String>,
    #[serde(default)]
    pub no_save_sent: bool,
    /// `--transport` given when it was queued; else the profile's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<crate::config::TransportKind>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why it moved to `failed/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Base64 of the message bytes (JSON cannot hold arbitrary bytes).
    pub message: String,
}

impl Entry {
    pub fn new(message: &[u8], subject: String, recipients: Vec<String>) -> Entry {
        Entry {
            id: fsutil::unique_id(),
            created: crate::tokens::now(),
            subject,
            recipients,
            send_as: None,
            no_save_sent: false,
            transport: None,
            attempts: 0,
            last_error: None,
            reason: None,
            message: base64::engine::general_purpose::STANDARD.encode(message),
        }
    }

    pub fn bytes(&self) -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.message)
            // The message itself is broken, not this host: no later run can send it.
            .map_err(|e| {
                Error::bad_data(format!("queued message {} is damaged: {e}", self.id))
                    .fix("remove it with `mailer queue purge --failed`")
            })
    }

    /// The `queue list --json` view: everything but the message bytes.
    pub fn summary(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id, "created": self.created, "subject": self.subject, "recipients": self.recipients,
            "attempts": self.attempts, "last_error": self.last_error,
        });
        if let Some(r) = &self.reason {
            v["reason"] = serde_json::json!(r);
        }
        v
    }
}

pub struct Outbox {
    queued: PathBuf,
    failed: PathBuf,
    /// Damaged or foreign files moved out of the way by a read, for the caller to report.
    set_aside: std::sync::Mutex<Vec<String>>,
}

/// The right to run through this profile's outbox; one `queue run` at a time.
pub struct OutboxLock {
    _file: LockFile,
}

/// One message being sent by this process: nobody else sends it meanwhile.
pub struct Claim {
    id: String,
    _file: std::fs::File,
}

impl Claim {
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Outbox {
    pub fn new(profile: &str) -> Result<Outbox> {
        let base = fsutil::data_dir()
            .ok_or_else(|| {
                Error::io("cannot find a data directory for this user")
                    .fix("set XDG_DATA_HOME (or HOME)")
            })?
            .join("outbox")
            .join(profile);
        Ok(Outbox {
            failed: base.join("failed"),
            queued: base,
            set_aside: Default::default(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.queued
    }

    fn io(&self, verb: &str, path: &Path, e: std::io::Error) -> Error {
        let fix = fsutil::write_fix(&e, &self.queued);
        Error::io(format!(
            "cannot {verb} {} in the outbox: {e}",
            path.display()
        ))
        .fix(fix)
    }

    fn write(&self, dir: &Path, entry: &Entry) -> Result<()> {
        fsutil::create_private_dir(dir).map_err(|e| self.io("create", dir, e))?;
        let path = dir.join(format!("{}.json", entry.id));
        let bytes = serde_json::to_vec(entry)
            .map_err(|e| Error::internal(format!("cannot serialize a queued message: {e}")))?;
        fsutil::write_atomic(&path, &bytes, Some(0o600)).map_err(|e| self.io("write", &path, e))
    }

    /// The outbox to oneself, or `None` when another `queue run` has it.
    pub fn lock(&self) -> Result<Option<OutboxLock>> {
        let path = self.queued.join(".run.lock");
        LockFile::try_acquire(&path)
            .map(|l| l.map(|file| OutboxLock { _file: file }))
            .map_err(|e| self.io("lock", &path, e))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.queued.join(format!("{id}.json"))
    }

    /// Writes a message ahead of its first attempt, claimed by this process.
    pub fn add(&self, entry: &Entry) -> Result<Claim> {
        self.write(&self.queued, entry)?;
        self.claim(entry)?.ok_or_else(|| {
            Error::internal(format!(
                "the new outbox message {} is claimed by someone else",
                entry.id
            ))
        })
    }

    /// Claims a queued message for sending; `None` when another process is sending it or
    /// it is gone (sent meanwhile).
    pub fn claim(&self, entry: &Entry) -> Result<Option<Claim>> {
        let path = self.path(&entry.id);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("open", &path, e)),
        };
        match file.try_lock() {
            Ok(()) => Ok(Some(Claim {
                id: entry.id.clone(),
                _file: file,
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(self.io("lock", &path, e)),
        }
    }

    /// Records a failed attempt of a claimed message.
    pub fn update(&self, _claim: &Claim, entry: &Entry) -> Result<()> {
        self.write(&self.queued, entry)
    }

    /// Sent: gone from the outbox.
    pub fn remove(&self, claim: Claim) -> Result<()> {
        self.remove_id(&claim.id)
    }

    fn remove_id(&self, id: &str) -> Result<()> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("remove", &path, e)),
        }
    }

    /// A permanent failure: kept in `failed/` with the reason, out of the retry loop.
    /// Written there before it leaves the queue, so a crash in between keeps it queued.
    pub fn fail(&self, claim: Claim, entry: &mut Entry, reason: String) -> Result<()> {
        entry.reason = Some(reason);
        self.write(&self.failed, entry)?;
        self.remove(claim)
    }

    fn read_dir(&self, dir: &Path) -> Result<Vec<Entry>> {
        let listing = match std::fs::read_dir(dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io("read", dir, e)),
        };
        let mut out = Vec::new();
        for item in listing {
            let path = item.map_err(|e| self.io("read", dir, e))?.path();
            // Only finished files: temp files of a write in progress start with '.'.
            let is_entry = path.extension().is_some_and(|x| x == "json")
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !is_entry {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // Sent and removed by a concurrent run between listing and reading.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) if path.is_dir() => {
                    self.set_aside(&path, &e.to_string())?;
                    continue;
                }
                Err(e) => return Err(self.io("read", &path, e)),
            };
            // One bad file must not stop the run of every good one: it moves to
            // `damaged/`, where a person can look at it, and the caller says so.
            let entry: Entry = match serde_json::from_slice(&bytes) {
                Ok(entry) => entry,
                Err(e) => {
                    self.set_aside(&path, &e.to_string())?;
                    continue;
                }
            };
            out.push(entry);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    fn set_aside(&self, path: &Path, why: &str) -> Result<()> {
        let dir = self.queued.join("damaged");
        fsutil::create_private_dir(&dir).map_err(|e| self.io("create", &dir, e))?;
        let name = path.file_name().unwrap_or_default();
        let to = dir.join(name);
        std::fs::rename(path, &to).map_err(|e| self.io("move", path, e))?;
        let note = format!(
            "{} is not a message mailer wrote ({why}); moved it to {}",
            path.display(),
            to.display()
        );
        if let Ok(mut notes) = self.set_aside.lock() {
            notes.push(note);
        }
        Ok(())
    }

    /// What the reads so far moved out of the way, once.
    pub fn take_set_aside(&self) -> Vec<String> {
        self.set_aside
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// Failed messages back into the queue, for a person who checked them; returns the ids
    /// that were not among the failed.
    pub fn retry(&self, ids: &[String]) -> Result<Vec<String>> {
        let mut unknown = Vec::new();
        for id in ids {
            let path = self.failed.join(format!("{id}.json"));
            let Some(mut entry) = self.failed()?.into_iter().find(|e| &e.id == id) else {
                unknown.push(id.clone());
                continue;
            };
            entry.last_error = entry.reason.take();
            self.write(&self.queued, &entry)?;
            std::fs::remove_file(&path).map_err(|e| self.io("remove", &path, e))?;
        }
        Ok(unknown)
    }

    pub fn queued(&self) -> Result<Vec<Entry>> {
        self.read_dir(&self.queued)
    }

    pub fn failed(&self) -> Result<Vec<Entry>> {
        self.read_dir(&self.failed)
    }

    /// How many are queued and failed, for `status`; counts files without reading them.
    pub fn counts(&self) -> (usize, usize) {
        let count = |d: &Path| {
            std::fs::read_dir(d)
                .map(|l| {
                    l.filter_map(|e| e.ok())
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.ends_with(".json") && !n.starts_with('.')
                        })
                        .count()
                })
                .unwrap_or(0)
        };
        (count(&self.queued), count(&self.failed))
    }

    /// Deletes queued messages (and failed ones with `failed`); returns how many. A message
    /// some process is sending right now is left alone.
    pub fn purge(&self, queued: bool, failed: bool) -> Result<usize> {
        let mut n = 0;
        if queued {
            for e in self.queued()? {
                if let Some(claim) = self.claim(&e)? {
                    self.remove(claim)?;
                    n += 1;
                }
            }
        }
        if failed {
            for e in self.failed()? {
                let path = self.failed.join(format!("{}.json", e.id));
                std::fs::remove_file(&path).map_err(|err| self.io("remove", &path, err))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An outbox in a fresh directory of its own (no data directory, no environment).
    fn scratch() -> (Outbox, PathBuf) {
        let dir = std::env::temp_dir().join(format!("mailer-outbox-{}", fsutil::unique_id()));
        let outbox = Outbox {
            failed: dir.join("failed"),
            queued: dir.clone(),
            set_aside: Default::default(),
        };
        (outbox, dir)
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_the_good_ones_still_read() {
        let (outbox, dir) = scratch();
        let good = Entry::new(
            b"Subject: x\r\n\r\nhi\r\n",
            "x".into(),
            vec!["a@b.example".into()],
        );
        drop(outbox.add(&good).unwrap());
        std::fs::write(dir.join("zzz.json"), b"{not json").unwrap();
        std::fs::create_dir(dir.join("dir.json")).unwrap();
        let ids: Vec<String> = outbox.queued().unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, std::slice::from_ref(&good.id));
        let notes = outbox.take_set_aside();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().all(|n| n.contains("damaged")), "{notes:?}");
        assert!(dir.join("damaged/zzz.json").exists());
        assert!(outbox.take_set_aside().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retry_puts_a_failed_message_back_in_the_queue() {
        let (outbox, dir) = scratch();
        let mut e = Entry::new(
            b"Subject: x\r\n\r\nhi\r\n",
            "x".into(),
            vec!["a@b.example".into()],
        );
        let claim = outbox.add(&e).unwrap();
        outbox.fail(claim, &mut e, "unconfirmed".into()).unwrap();
        assert!(outbox.queued().unwrap().is_empty());
        let unknown = outbox.retry(&[e.id.clone(), "nope".into()]).unwrap();
        assert_eq!(unknown, ["nope"]);
        let queued = outbox.queued().unwrap();
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].last_error.as_deref(), Some("unconfirmed"));
        assert!(queued[0].reason.is_none());
        assert!(outbox.failed().unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_queue_run_at_a_time() {
        let (outbox, dir) = scratch();
        std::fs::create_dir_all(&dir).unwrap();
        let first = outbox.lock().unwrap();
        assert!(first.is_some());
        // flock is per open file: a second holder, even in this process, is refused.
        assert!(outbox.lock().unwrap().is_none(), "two runs held the outbox");
        drop(first);
        assert!(
            outbox.lock().unwrap().is_some(),
            "the lock was not released"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_claimed_message_is_nobody_elses_until_released() {
        let (outbox, dir) = scratch();
        let e = Entry::new(b"To: a@example.com\r\n\r\nhi\r\n", "s".into(), vec![]);
        let sending = outbox.add(&e).unwrap();
        assert!(outbox.claim(&e).unwrap().is_none(), "claimed twice");
        assert_eq!(outbox.queued().unwrap().len(), 1, "written ahead");
        drop(sending);
        let again = outbox.claim(&e).unwrap().expect("free once released");
        outbox.remove(again).unwrap();
        assert!(outbox.claim(&e).unwrap().is_none(), "sent: gone");
        assert!(outbox.queued().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_sort_by_time() {
        let a = fsutil::unique_id();
        let b = fsutil::unique_id();
        assert!(a < b, "{a} {b}");
    }

    #[test]
    fn entry_round_trip() {
        let e = Entry::new(
            b"To: a@example.com\r\n\r\nhi\r\n",
            "s".into(),
            vec!["a@example.com".into()],
        );
        assert_eq!(e.bytes().unwrap(), b"To: a@example.com\r\n\r\nhi\r\n");
        let v = e.summary();
        assert!(v.get("message").is_none());
        assert_eq!(v["attempts"], 0);
    }
}
