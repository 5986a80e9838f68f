//! The token store (SPEC section 5): one [`Record`] per profile, in the OS keyring or a file.
//!
//! Owns where secrets rest and the per-profile lock that serializes read-refresh-write. It
//! never falls back from the keyring to a file on its own: plaintext on disk is only ever
//! the user's explicit choice (`--token-store file`). It never logs a secret: every secret
//! field is a [`Secret`].

mod file;
mod keyring;

use crate::config::{TokenStoreKind, Transport};
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use file::FileStore;
pub use keyring::KeyringStore;

/// What is kept for one profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds of the login that started this refresh-token family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in_at: Option<u64>,
    /// Unix seconds of the last time the identity provider accepted our refresh token or
    /// issued a new one; Entra expires refresh tokens after 90 days without use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_used_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// Cached access tokens by transport ("graph", "smtp").
    #[serde(default)]
    pub access: BTreeMap<String, CachedToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedToken {
    pub token: Secret,
    /// Unix seconds.
    pub expires_at: u64,
    pub scope: String,
}

impl Record {
    pub const VERSION: u32 = 1;

    pub fn cached(&self, transport: Transport) -> Option<&CachedToken> {
        self.access.get(transport.as_str())
    }
}

/// A token store of either kind, bound to one profile.
pub enum Store {
    Keyring(KeyringStore),
    File(FileStore),
}

impl Store {
    pub fn open(kind: TokenStoreKind, profile: &str) -> Result<Store> {
        Ok(match kind {
            TokenStoreKind::Keyring => Store::Keyring(KeyringStore::new(profile)),
            TokenStoreKind::File => Store::File(FileStore::new(profile)?),
        })
    }

    pub fn kind(&self) -> TokenStoreKind {
        match self {
            Store::Keyring(_) => TokenStoreKind::Keyring,
            Store::File(_) => TokenStoreKind::File,
        }
    }

    /// For `status`: which backend, and where.
    pub fn describe(&self) -> String {
        match self {
            Store::Keyring(k) => k.describe(),
            Store::File(f) => format!("file ({})", f.path().display()),
        }
    }

    pub fn load(&self) -> Result<Option<Record>> {
        let bytes = match self {
            Store::Keyring(k) => k.read()?,
            Store::File(f) => f.read()?,
        };
        let Some(bytes) = bytes else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::io(format!(
                "the stored tokens are unreadable ({})",
                self.describe()
            ))
            .why(format!("not valid JSON: {e}"))
            .fix("run `mailer logout` and then `mailer login` again")
        })
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::internal(format!("cannot serialize tokens: {e}")))?;
        match self {
            Store::Keyring(k) => k.write(&bytes),
            Store::File(f) => f.write(&bytes),
        }
    }

    /// Returns whether anything was deleted.
    pub fn delete(&self) -> Result<bool> {
        match self {
            Store::Keyring(k) => k.delete(),
            Store::File(f) => f.delete(),
        }
    }

    /// Proves the store can keep a token before a human spends time on a login.
    pub fn check_writable(&self) -> Result<()> {
        match self {
            Store::Keyring(k) => k.check_writable(),
            Store::File(f) => f.check_writable(),
        }
    }
}

/// An exclusive advisory lock on one profile, held for read-refresh-write. Two processes
/// refreshing at once would otherwise both spend the same rotating refresh token, and the
/// identity provider may revoke the whole family on that reuse.
pub struct ProfileLock {
    _file: std::fs::File,
}

impl ProfileLock {
    const WAIT: Duration = Duration::from_secs(60);

    fn open(name: &str) -> Result<(std::fs::File, PathBuf)> {
        let path = lock_dir()?.join(format!("{name}.lock"));
        let dir = path.parent().expect("lock path has a parent");
        crate::fsutil::create_private_dir(dir).map_err(|e| lock_error(dir, e))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| lock_error(&path, e))?;
        Ok((file, path))
    }

    /// The lock named `name` if nobody holds it, else `None` (for `queue run`: a second
    /// run at the same time has nothing to do).
    pub fn try_acquire(name: &str) -> Result<Option<ProfileLock>> {
        let (file, path) = Self::open(name)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ProfileLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(lock_error(&path, e)),
        }
    }

    pub fn acquire(profile: &str) -> Result<ProfileLock> {
        let (file, path) = Self::open(profile)?;
        let deadline = std::time::Instant::now() + Self::WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ProfileLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(15));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::temp(format!(
                        "another mailer process has held the lock {} for over {} s",
                        path.display(),
                        Self::WAIT.as_secs()
                    ))
                    .fix("wait for it to finish or stop it, then try again"));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(lock_error(&path, e)),
            }
        }
        // The lock is released when the file is closed, i.e. when the guard drops.
    }
}

fn lock_dir() -> Result<PathBuf> {
    crate::fsutil::data_dir()
        .map(|d| d.join("locks"))
        .ok_or_else(|| {
            Error::io("cannot find a data directory for this user")
                .fix("set XDG_DATA_HOME (or HOME)")
        })
}

fn lock_error(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::io(format!("cannot lock {}: {e}", path.display()))
        .fix("check that the directory exists and is writable by you")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_keeps_secrets() {
        let mut r = Record {
            version: Record::VERSION,
            ..Default::default()
        };
        r.refresh_token = Some(Secret::new("rt"));
        r.access.insert(
            "graph".into(),
            CachedToken {
                token: Secret::new("at"),
                expires_at: 5,
                scope: "s".into(),
            },
        );
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(serde_json::from_slice::<Record>(&json).unwrap(), r);
        assert!(!format!("{r:?}").contains("\"rt\""));
    }
}
