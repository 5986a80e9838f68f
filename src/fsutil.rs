//! Small file-system helpers shared by the config, the file token store, the outbox and the
//! locks.
//!
//! Writes are atomic (temp file in the same directory, then rename), so a crash or a
//! concurrent reader never sees half a file.

use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` atomically. `mode` (Unix) sets the file's permission bits; the
/// temp file is created 0600 by `tempfile`, so a secret is never readable by others, not
/// even for an instant.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".mailer-")
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Creates `dir` (and parents) private (0700 on Unix). An existing directory keeps its
/// permissions: callers that need it private check and refuse, rather than silently fix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The per-user data directory: `{data_dir}/mailer` (`~/.local/share/mailer` on Linux).
pub fn data_dir() -> Option<std::path::PathBuf> {
    dirs::data_dir().map(|d| d.join("mailer"))
}

/// A process-unique id that sorts by creation time: hex nanoseconds, pid, counter. Names
/// outbox files and the left part of Message-IDs.
pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{nanos:020x}-{:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An exclusive advisory lock (`flock`) on a file, held until the guard drops. The kernel
/// releases it when the process dies, so a crash never leaves a stale lock behind.
pub struct LockFile {
    _file: std::fs::File,
}

impl LockFile {
    fn open(path: &Path) -> std::io::Result<std::fs::File> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    }

    /// The lock if nobody holds it, else `None`.
    pub fn try_acquire(path: &Path) -> std::io::Result<Option<LockFile>> {
        let file = Self::open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(LockFile { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Waits for the lock up to `wait`; `Ok(None)` when someone still holds it then.
    pub fn acquire(path: &Path, wait: std::time::Duration) -> std::io::Result<Option<LockFile>> {
        let file = Self::open(path)?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(LockFile { _file: file })),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(15));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            }
        }
    }
}

/// This machine's name, for names and commands mailer prints ("host" when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// What fixes a failed write into `dir`, by what the system said: a full disk, a read-only
/// file system and a permission problem each have their own way out.
pub fn write_fix(e: &std::io::Error, dir: &Path) -> String {
    let dir = dir.display();
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            format!("free space on the file system of {dir} (df -h {dir}), then try again")
        }
        std::io::ErrorKind::ReadOnlyFilesystem => format!(
            "{dir} is on a read-only file system: remount it read-write, or point XDG_DATA_HOME at a writable place"
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("make {dir} yours and writable (chown $USER {dir}; chmod 700 {dir})")
        }
        _ => format!("check that {dir} exists and is writable by you"),
    }
}
