//! The file token store: `{data_dir}/mailer/tokens/{profile}.json`, for hosts without a keyring.
//!
//! The directory is 0700 and the file 0600, written atomically. A file or directory that
//! others can read is refused rather than used or silently "fixed": the user must learn
//! that a token may have leaked.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(profile: &str) -> Result<FileStore> {
        let dir = crate::fsutil::data_dir().ok_or_else(|| {
            Error::io("cannot find a data directory for this user")
                .fix("set XDG_DATA_HOME (or HOME)")
        })?;
        Ok(FileStore {
            path: dir.join("tokens").join(format!("{profile}.json")),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn dir(&self) -> &Path {
        self.path.parent().expect("token path has a parent")
    }

    pub fn read(&self) -> Result<Option<Vec<u8>>> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io_error("read", e)),
            // Judged before its mode: "chmod 600" is no fix for a directory.
            Ok(m) if !m.is_file() => {
                return Err(Error::io(format!(
                    "the token file {} is not a regular file",
                    self.path.display()
                ))
                .why("something else was put where mailer keeps this profile's tokens")
                .fix(format!(
                    "move {} out of the way, then log in again (mailer login)",
                    self.path.display()
                )));
            }
            Ok(_) => {}
        }
        check_private(self.dir(), 0o700)?;
        check_private(&self.path, 0o600)?;
        std::fs::read(&self.path)
            .map(Some)
            .map_err(|e| self.io_error("read", e))
    }

    pub fn write(&self, data: &[u8]) -> Result<()> {
        crate::fsutil::create_private_dir(self.dir()).map_err(|e| self.io_error("create", e))?;
        check_private(self.dir(), 0o700)?;
        crate::fsutil::write_atomic(&self.path, data, Some(0o600))
            .map_err(|e| self.io_error("write", e))
    }

    pub fn delete(&self) -> Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_error("delete", e)),
        }
    }

    pub fn check_writable(&self) -> Result<()> {
        crate::fsutil::create_private_dir(self.dir()).map_err(|e| self.io_error("create", e))?;
        check_private(self.dir(), 0o700)?;
        tempfile::tempfile_in(self.dir())
            .map(drop)
            .map_err(|e| self.io_error("write", e))
    }

    fn io_error(&self, verb: &str, e: std::io::Error) -> Error {
        let fix = crate::fsutil::write_fix(&e, self.dir());
        Error::io(format!(
            "cannot {verb} the token file {}: {e}",
            self.path.display()
        ))
        .fix(fix)
    }
}

#[cfg(unix)]
fn check_private(path: &Path, wanted: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Error::io(format!("cannot inspect {}: {e}", path.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::io(format!(
            "refusing to use {}: it is accessible by other users (mode {mode:03o})",
            path.display()
        ))
        .why("the token store holds a refresh token that can send mail as you")
        .fix(format!(
            "chmod {wanted:o} {} (and consider `mailer logout` + `mailer login` if others may have read it)",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _wanted: u32) -> Result<()> {
    // The per-user data directory is private by default on Windows.
    Ok(())
}
