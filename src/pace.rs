//! Pacing: at most `rate_limit` messages a profile sends in any 60 seconds, counted across
//! every mailer process of the profile (a script looping `mailer send` counts as much as a
//! `queue run`). Exchange Online allows 30 messages a minute per mailbox and throttles
//! above that, so a flush of 500 would otherwise fail from the 31st on.
//!
//! A sliding window, not even spacing: under the limit nothing waits (a handful of cron
//! mails goes out at once); at the limit each send waits until the oldest of the last
//! `rate_limit` sends is a minute old, counted from when that send ended (when the server
//! took it), not from when it began. The window is a small file of reserved send times,
//! changed under a lock, so concurrent processes each take their own slot. Pacing never
//! fails a send: when the file cannot be used it is skipped with a log line.

use crate::fsutil::{self, LockFile};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WINDOW_SECS: f64 = 60.0;

/// A send's place in the window, from [`wait_turn`].
pub struct Turn {
    /// The profile and the reserved send time; `None` when pacing is off or was skipped.
    slot: Option<(String, f64)>,
}

impl Turn {
    /// The send has ended, taken or not: its place in the window moves from when it began
    /// to now, which is when the server counted it. Without this, a send that took longer
    /// (the first of a flush also connects and logs in) lets the sends a minute later,
    /// which are quick, reach the server less than a minute after it: a flush of 100 put
    /// 32 messages into one minute at the server.
    pub fn done(self) {
        let Some((profile, slot)) = self.slot else {
            return;
        };
        let Some(dir) = fsutil::data_dir().map(|d| d.join("pace")) else {
            return;
        };
        if let Err(e) = settle(&dir, &profile, slot, now()) {
            tracing::warn!("pacing: the end of a send was not recorded: {e}");
        }
    }
}

/// Waits until this profile may send one more message, and counts it from now; call
/// [`Turn::done`] when the send has ended.
pub async fn wait_turn(profile: &str, per_minute: u32) -> Turn {
    let off = Turn { slot: None };
    if per_minute == 0 {
        return off;
    }
    let Some(dir) = fsutil::data_dir().map(|d| d.join("pace")) else {
        return off;
    };
    let slot = match reserve(&dir, profile, per_minute as usize, now()) {
        Ok(slot) => slot,
        Err(e) => {
            tracing::warn!("pacing skipped: {e}");
            return off;
        }
    };
    let wait = slot - now();
    if wait > 0.0 {
        tracing::info!(
            wait_secs = wait,
            "keeping to rate_limit = {per_minute} a minute"
        );
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
    Turn {
        slot: Some((profile.to_owned(), slot)),
    }
}

/// The window file of `profile` under its lock: `edit` changes the send times in it, which
/// are written back in order unless `edit` returns `None` (nothing to change).
fn edit_window<T>(
    dir: &Path,
    profile: &str,
    edit: impl FnOnce(&mut Vec<f64>) -> Option<T>,
) -> std::io::Result<Option<T>> {
    let path = dir.join(profile);
    let _lock = LockFile::acquire(&dir.join(format!("{profile}.lock")), Duration::from_secs(5))?
        .ok_or_else(|| std::io::Error::other("the pacing lock is held for over 5 s"))?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut times: Vec<f64> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let Some(result) = edit(&mut times) else {
        return Ok(None);
    };
    times.sort_by(f64::total_cmp);
    let text: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
    fsutil::write_atomic(&path, text.join("\n").as_bytes(), Some(0o600))?;
    Ok(Some(result))
}

/// Moves the reserved time `slot` in the window file to `end` (a send that ended then).
fn settle(dir: &Path, profile: &str, slot: f64, end: f64) -> std::io::Result<()> {
    // Times are written to the millisecond; a reservation gone from the file (pushed out
    // by later ones) needs nothing.
    edit_window(dir, profile, |times| {
        let i = times.iter().position(|t| (t - slot).abs() < 0.001)?;
        times[i] = end.max(slot);
        Some(())
    })
    .map(|_| ())
}

/// Takes the next free send time in the window file and returns it (Unix seconds).
fn reserve(dir: &Path, profile: &str, limit: usize, now: f64) -> std::io::Result<f64> {
    let slot = edit_window(dir, profile, |times| {
        // Times from the future (a clock set back) would hold sends for as long: dropped.
        times.retain(|t| *t > now - WINDOW_SECS && *t < now + WINDOW_SECS * limit as f64);
        times.sort_by(f64::total_cmp);
        let slot = next_slot(times, limit, now);
        times.push(slot);
        let keep = times.len().saturating_sub(limit);
        times.drain(..keep);
        Some(slot)
    })?;
    Ok(slot.unwrap_or(now))
}

/// The earliest time at or after `now` at which fewer than `limit` of the sorted `times`
/// lie in the minute before it.
fn next_slot(times: &[f64], limit: usize, now: f64) -> f64 {
    match times.len().checked_sub(limit) {
        Some(i) => now.max(times[i] + WINDOW_SECS),
        None => now,
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_limit_nothing_waits() {
        assert_eq!(next_slot(&[], 3, 100.0), 100.0);
        assert_eq!(next_slot(&[90.0, 95.0], 3, 100.0), 100.0);
    }

    #[test]
    fn at_the_limit_the_oldest_must_leave_the_window() {
        assert_eq!(next_slot(&[50.0, 90.0, 95.0], 3, 100.0), 110.0);
        // Reservations in the future (other processes waiting) count too.
        assert_eq!(next_slot(&[90.0, 95.0, 110.0], 3, 100.0), 150.0);
    }

    #[test]
    fn a_window_file_paces_a_burst_across_calls() {
        let dir = std::env::temp_dir().join(format!("mailer-pace-{}", fsutil::unique_id()));
        let slots: Vec<f64> = (0..7)
            .map(|_| reserve(&dir, "p", 3, 1000.0).unwrap())
            .collect();
        assert_eq!(
            slots,
            [1000.0, 1000.0, 1000.0, 1060.0, 1060.0, 1060.0, 1120.0]
        );
        // Any 60 s window holds at most 3.
        for s in &slots {
            let within = slots.iter().filter(|t| **t >= *s && **t < s + 60.0).count();
            assert!(within <= 3, "{slots:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_next_minute_counts_from_when_sends_ended() {
        let dir = std::env::temp_dir().join(format!("mailer-pace-{}", fsutil::unique_id()));
        let slots: Vec<f64> = (0..3)
            .map(|_| reserve(&dir, "p", 3, 1000.0).unwrap())
            .collect();
        // The first send took 2.5 s (it connected), the others 0.1 s each.
        settle(&dir, "p", slots[0], 1002.5).unwrap();
        settle(&dir, "p", slots[1], 1002.6).unwrap();
        settle(&dir, "p", slots[2], 1002.7).unwrap();
        assert_eq!(reserve(&dir, "p", 3, 1003.0).unwrap(), 1062.5);
        // A reservation no longer in the file is left alone.
        settle(&dir, "p", 999.0, 1005.0).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
