//! The OS keyring token store: Secret Service on Linux/BSD, Keychain on macOS, Credential
//! Manager on Windows, through the `keyring` 3.x crate (service "mailer", one entry per
//! profile plus chunk entries).
//!
//! Why keyring 3.6 with explicit platform features: 3.x silently uses an in-memory mock when
//! no platform feature is on, so Cargo.toml names `sync-secret-service` (+ `vendored`
//! libdbus, so no system headers are needed to build), `apple-native` and `windows-native`.
//! 4.x splits stores into separate crates and was too new to bet on.
//!
//! Windows holds at most 2,560 bytes per credential, so every record is split into chunks
//! of [`CHUNK`] bytes on every platform (one code path, tested on Linux). Each write uses a
//! fresh generation name for its chunks and switches the head entry last, so a reader never
//! stitches chunks of two writes together.
//!
//! Every call runs on a helper thread with a deadline: a locked collection can make the
//! Secret Service wait forever on an unlock prompt nobody can answer (cron); a fast,
//! explained failure that names both ways out is what such a user needs instead.

use crate::error::{Error, Result};
use std::sync::mpsc;
use std::time::Duration;

const SERVICE: &str = "mailer";
/// Bytes per keyring entry; ASCII JSON, so also characters (Windows: 1,280 UTF-16 max).
const CHUNK: usize = 1000;

pub struct KeyringStore {
    profile: String,
}

impl KeyringStore {
    pub fn new(profile: &str) -> KeyringStore {
        KeyringStore {
            profile: profile.to_owned(),
        }
    }

    pub fn describe(&self) -> String {
        let backend = if cfg!(target_os = "macos") {
            "macOS Keychain"
        } else if cfg!(windows) {
            "Windows Credential Manager"
        } else {
            "Secret Service"
        };
        format!(
            "keyring ({backend}, service \"{SERVICE}\", entry \"{}\")",
            self.profile
        )
    }

    pub fn read(&self) -> Result<Option<Vec<u8>>> {
        let profile = self.profile.clone();
        // A concurrent writer may delete the chunks of the generation we are reading;
        // reading again then finds the new head. Bounded: a writer finishes quickly.
        for _ in 0..5 {
            let p = profile.clone();
            match run("read", move || read_once(&p))? {
                Ok(v) => return Ok(v.map(String::into_bytes)),
                Err(keyring::Error::NoEntry) => continue,
                Err(e) => return Err(unreachable_error("read", e)),
            }
        }
        Err(
            Error::io("the keyring entries kept changing while being read")
                .fix("try again; if it persists, run `mailer logout` and log in again"),
        )
    }

    pub fn write(&self, data: &[u8]) -> Result<()> {
        let text = String::from_utf8(data.to_vec())
            .map_err(|_| Error::internal("token record is not UTF-8"))?;
        let profile = self.profile.clone();
        run("write", move || write_once(&profile, &text))?
            .map_err(|e| unreachable_error("write", e))
    }

    pub fn delete(&self) -> Result<bool> {
        let profile = self.profile.clone();
        run("delete", move || {
            let head = entry(&profile)?;
            let old = match head.get_password() {
                Ok(v) => v,
                Err(keyring::Error::NoEntry) => return Ok(false),
                Err(e) => return Err(e),
            };
            if let Some((generation, n, _)) = parse_head(&old) {
                delete_chunks(&profile, generation, n);
            }
            head.delete_credential()?;
            Ok(true)
        })?
        .map_err(|e| unreachable_error("delete", e))
    }

    pub fn check_writable(&self) -> Result<()> {
        let user = format!("{}.probe", self.profile);
        run("write", move || {
            let e = entry(&user)?;
            e.set_password("probe")?;
            e.delete_credential()
        })?
        .map_err(|e| unreachable_error("write", e))
    }
}

fn entry(user: &str) -> keyring::Result<keyring::Entry> {
    keyring::Entry::new(SERVICE, user)
}

fn chunk_user(profile: &str, generation: &str, i: usize) -> String {
    format!("{profile}#{generation}.{i}")
}

/// Head format: `{generation}:{chunk count}\n{first chunk}`.
fn parse_head(head: &str) -> Option<(&str, usize, &str)> {
    let (meta, first) = head.split_once('\n')?;
    let (generation, n) = meta.split_once(':')?;
    Some((generation, n.parse().ok()?, first))
}

fn read_once(profile: &str) -> keyring::Result<Option<String>> {
    let head = match entry(profile)?.get_password() {
        Ok(h) => h,
        Err(keyring::Error::NoEntry) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some((generation, n, first)) = parse_head(&head) else {
        // Written by something else under our service name: not ours to interpret.
        return Err(keyring::Error::Invalid(
            "head".into(),
            "not a mailer record".into(),
        ));
    };
    let mut out = first.to_owned();
    for i in 1..n {
        out.push_str(&entry(&chunk_user(profile, generation, i))?.get_password()?);
    }
    Ok(Some(out))
}

fn write_once(profile: &str, text: &str) -> keyring::Result<()> {
    let chunks = split(text, CHUNK);
    let generation = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id())
    );
    for (i, c) in chunks.iter().enumerate().skip(1) {
        entry(&chunk_user(profile, &generation, i))?.set_password(c)?;
    }
    let head = entry(profile)?;
    let old = match head.get_password() {
        Ok(v) => Some(v),
        Err(keyring::Error::NoEntry) => None,
        Err(e) => return Err(e),
    };
    head.set_password(&format!("{generation}:{}\n{}", chunks.len(), chunks[0]))?;
    if let Some((old_gen, n, _)) = old.as_deref().and_then(parse_head) {
        delete_chunks(profile, old_gen, n);
    }
    Ok(())
}

fn delete_chunks(profile: &str, generation: &str, n: usize) {
    for i in 1..n {
        // Best effort: a leftover chunk is unreachable garbage, never read.
        if let Ok(e) = entry(&chunk_user(profile, generation, i)) {
            let _ = e.delete_credential();
        }
    }
}

/// Splits on char boundaries into pieces of at most `max` bytes; always at least one piece.
fn split(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (a, b) = rest.split_at(cut);
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

fn timeout() -> Duration {
    std::env::var("MAILER_KEYRING_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Runs a keyring operation on a helper thread and gives up after [`timeout`].
fn run<T: Send + 'static>(
    verb: &str,
    op: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<keyring::Result<T>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(op());
    });
    let limit = timeout();
    rx.recv_timeout(limit).map_err(|_| {
        Error::io(format!("the OS keyring did not answer within {} s ({verb})", limit.as_secs_f64()))
            .why("the keyring is probably locked and waiting for an unlock prompt that nobody can answer (cron, ssh)")
            .fix(WAYS_OUT)
    })
}

const WAYS_OUT: &str = "run mailer inside a session whose keyring is unlocked \
    (a desktop login, or `gnome-keyring-daemon --unlock` in a D-Bus session), \
    or log in again with `mailer login --token-store file` to keep tokens in a private file";

fn unreachable_error(verb: &str, e: keyring::Error) -> Error {
    let why = match &e {
        keyring::Error::NoStorageAccess(inner) => format!("no access to the keyring: {inner}"),
        keyring::Error::PlatformFailure(inner) => format!("the keyring failed: {inner}"),
        other => other.to_string(),
    };
    Error::io(format!("cannot {verb} tokens in the OS keyring"))
        .why(why)
        .fix(WAYS_OUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_size_and_char_boundaries() {
        for (text, max, pieces) in [
            ("", 3, vec![""]),
            ("abc", 3, vec!["abc"]),
            ("abcdefg", 3, vec!["abc", "def", "g"]),
            ("aé", 2, vec!["a", "é"]),
        ] {
            assert_eq!(split(text, max), pieces);
        }
        let big = "x".repeat(8 * 1024);
        assert!(split(&big, CHUNK).iter().all(|c| c.len() <= CHUNK));
        assert_eq!(split(&big, CHUNK).concat(), big);
    }

    #[test]
    fn head_format() {
        assert_eq!(parse_head("a1:3\n{\"x\""), Some(("a1", 3, "{\"x\"")));
        assert_eq!(parse_head("garbage"), None);
    }
}
