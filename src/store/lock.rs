//! The per-profile lock around read-refresh-write of a profile's tokens.
//!
//! Two processes refreshing at once would otherwise both spend the same rotating refresh
//! token, and the identity provider may revoke the whole family on that reuse. Whoever
//! holds a [`ProfileLock`] may refresh and save; everyone else waits, then re-reads.

use crate::error::{Error, Result};
use crate::fsutil::LockFile;
use std::path::PathBuf;
use std::time::Duration;

pub struct ProfileLock {
    _file: LockFile,
}

impl ProfileLock {
    /// A refresh takes a second or two; a minute means something is stuck.
    const WAIT: Duration = Duration::from_secs(60);

    pub fn acquire(profile: &str) -> Result<ProfileLock> {
        let path = lock_dir()?.join(format!("{profile}.lock"));
        match LockFile::acquire(&path, Self::WAIT) {
            Ok(Some(file)) => Ok(ProfileLock { _file: file }),
            Ok(None) => Err(Error::temp(format!(
                "another mailer process has held the lock {} for over {} s",
                path.display(),
                Self::WAIT.as_secs()
            ))
            .fix("wait for it to finish or stop it, then try again")),
            Err(e) => Err(Error::io(format!("cannot lock {}: {e}", path.display()))
                .fix("check that the directory exists and is writable by you")),
        }
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
