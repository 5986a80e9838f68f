//! Telling a person before (or when) an unattended setup stops: the profile's
//! `notify_command`, run through `sh -c` with `MAILER_EVENT`, `MAILER_PROFILE` and
//! `MAILER_DETAIL` in its environment, at most once a day per event and profile.
//!
//! Only unattended runs notify (a person at a terminal reads the message anyway). A notify
//! command that fails or hangs is logged and killed, never fatal: the run it reports on
//! goes on. No secret reaches it: the detail is an error's words, and the client secret's
//! environment variable is removed from its environment.

use crate::auth::Account;
use crate::fsutil::{self, LockFile};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A run found that a person must log in again.
    LoginNeeded,
    /// The refresh token expires unused within two weeks.
    IdleExpirySoon,
    /// The app's client secret or certificate expires within two weeks.
    CredentialExpirySoon,
    /// `queue run` moved a message to the failed part of the outbox.
    MessageFailed,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::LoginNeeded => "login-needed",
            Event::IdleExpirySoon => "idle-expiry-soon",
            Event::CredentialExpirySoon => "credential-expiry-soon",
            Event::MessageFailed => "message-failed",
        }
    }
}

/// Days ahead an expiry is worth a notification.
pub const EXPIRY_NOTICE_DAYS: u64 = 14;
const ONCE_PER: u64 = 86_400;
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// Runs the profile's notify command for `event`, unless it ran for it in the last day.
pub fn notify(acct: &Account, event: Event, detail: &str) {
    let Some(command) = acct
        .profile
        .notify_command
        .as_deref()
        .filter(|c| !c.trim().is_empty())
    else {
        return;
    };
    match due(&acct.name, event) {
        Ok(true) => run(command, acct, event, detail),
        Ok(false) => tracing::debug!(event = event.name(), "notified within the last day already"),
        Err(e) => tracing::warn!("cannot keep track of notifications: {e}"),
    }
}

/// Whether `event` is due, recording that it ran now when it is. Recorded before the
/// command runs, so that a slow command and a concurrent run never notify twice.
fn due(profile: &str, event: Event) -> std::io::Result<bool> {
    let dir = fsutil::data_dir()
        .ok_or_else(|| std::io::Error::other("no data directory"))?
        .join("notify");
    let path = dir.join(format!("{profile}.json"));
    let _lock = LockFile::acquire(
        &dir.join(format!("{profile}.lock")),
        Duration::from_secs(10),
    )?;
    let mut sent: BTreeMap<String, u64> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let now = crate::tokens::now();
    if sent
        .get(event.name())
        .is_some_and(|t| now.saturating_sub(*t) < ONCE_PER)
    {
        return Ok(false);
    }
    sent.insert(event.name().to_owned(), now);
    let bytes = serde_json::to_vec(&sent).map_err(std::io::Error::other)?;
    fsutil::write_atomic(&path, &bytes, Some(0o600))?;
    Ok(true)
}

fn run(command: &str, acct: &Account, event: Event, detail: &str) {
    let spawned = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("MAILER_EVENT", event.name())
        .env("MAILER_PROFILE", &acct.name)
        .env("MAILER_DETAIL", detail)
        .env_remove("MAILER_CLIENT_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return tracing::warn!("notify_command could not start: {e}"),
    };
    let deadline = Instant::now() + COMMAND_LIMIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                return tracing::info!(event = event.name(), "notify_command ran");
            }
            Ok(Some(status)) => {
                return tracing::warn!("notify_command failed ({status}) for {}", event.name());
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return tracing::warn!(
                    "notify_command did not finish within {} s and was stopped",
                    COMMAND_LIMIT.as_secs()
                );
            }
            Err(e) => return tracing::warn!("notify_command: {e}"),
        }
    }
}

/// The app's credential expires within [`EXPIRY_NOTICE_DAYS`]: what and when.
pub fn credential_expiring(acct: &Account) -> Option<String> {
    let (what, when) = acct.credential_expiry().ok().flatten()?;
    let left = when.saturating_sub(crate::tokens::now());
    (left < EXPIRY_NOTICE_DAYS * 86_400).then(|| match left {
        0 => format!("{what} of profile \"{}\" has expired", acct.name),
        _ => format!(
            "{what} of profile \"{}\" expires on {}",
            acct.name,
            crate::output::fmt_time(when)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_documented_ones() {
        let names: Vec<_> = [
            Event::LoginNeeded,
            Event::IdleExpirySoon,
            Event::CredentialExpirySoon,
            Event::MessageFailed,
        ]
        .iter()
        .map(|e| e.name())
        .collect();
        assert_eq!(
            names,
            [
                "login-needed",
                "idle-expiry-soon",
                "credential-expiry-soon",
                "message-failed"
            ]
        );
    }
}
