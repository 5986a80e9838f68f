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
use crate::store::Record;
use crate::tokens::{self, Idle};
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
    let now = tokens::now();
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

/// Days ahead `status` and `doctor` show a client secret's or certificate's expiry (a
/// person reads those; the notification comes later, at [`EXPIRY_NOTICE_DAYS`]).
pub const CREDENTIAL_WARNING_DAYS: u64 = 30;

/// Something that will need a person, before it breaks a send.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub event: Event,
    pub text: String,
    pub days_left: u64,
}

/// What `status` warns of and what an unattended run notifies (the nearer ones): the
/// refresh token's idle expiry and the app credential's expiry. One list, so that the
/// two never disagree.
pub fn upcoming(acct: &Account, record: Option<&Record>, now: u64) -> Vec<Warning> {
    let mut found = Vec::new();
    if let Idle::Soon { days, days_left } = tokens::idle(acct, record, now) {
        found.push(Warning {
            event: Event::IdleExpirySoon,
            text: format!(
                "the refresh token of profile \"{}\" was last used {days} days ago and expires in {days_left} days unused. Run `mailer{} token --refresh` to renew it (weekly from cron keeps it alive).",
                acct.name,
                acct.profile_flag()
            ),
            days_left,
        });
    }
    if let Some((what, when)) = acct.credential_expiry().ok().flatten() {
        let left = when.saturating_sub(now);
        if left < CREDENTIAL_WARNING_DAYS * 86_400 {
            let text = match left {
                0 => format!("{what} of profile \"{}\" has expired", acct.name),
                _ => format!(
                    "{what} of profile \"{}\" expires on {}",
                    acct.name,
                    crate::output::fmt_time(when)
                ),
            };
            found.push(Warning {
                event: Event::CredentialExpirySoon,
                text: format!(
                    "{text}: create a new one for the app, then {}",
                    acct.login_command()
                ),
                days_left: left / 86_400,
            });
        }
    }
    found
}

/// After an unattended run: the warnings near enough to tell a person, each at most once
/// a day. Costs one token store read, and only for a profile with a `notify_command`.
pub fn warn_unattended(acct: &Account, login_needed: Option<&str>) {
    if acct.profile.notify_command.is_none() {
        return;
    }
    if let Some(detail) = login_needed {
        notify(acct, Event::LoginNeeded, detail);
    }
    let record = match acct.store.load() {
        Ok(r) => r,
        Err(e) => return tracing::debug!("no warnings checked: {}", e.what),
    };
    for w in upcoming(acct, record.as_ref(), tokens::now()) {
        if w.days_left <= EXPIRY_NOTICE_DAYS {
            notify(acct, w.event, &w.text);
        }
    }
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
