//! How results and messages reach the user: the one [`Printer`] every command writes through.
//!
//! Results go to stdout (a table, a token, a MIME message, or the `--json` document); what a
//! person reads along the way goes to stderr, silenced by `-q`. A closed stdout (`mailer …
//! | head -1`) is not an error a user should see: writes report [`Error::output_closed`],
//! which ends the command quietly with status 0. Writes to stderr never fail a command.
//! Nothing here decides what to say; commands and modules do.

use crate::error::{Error, Result};
use std::fmt::Display;
use std::io::{IsTerminal, Write};

#[derive(Clone, Copy, Debug)]
pub struct Printer {
    json: bool,
    quiet: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool) -> Printer {
        Printer { json, quiet }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    /// A line for the person at the terminal (on stderr), unless `-q`.
    pub fn say(&self, line: impl Display) {
        if !self.quiet {
            stderr_line(&line.to_string());
        }
    }

    /// A warning (on stderr), unless `-q`.
    pub fn warn(&self, line: impl Display) {
        if !self.quiet {
            stderr_line(&format!("warning: {line}"));
        }
    }

    /// A line the user must see even with `-q`, such as the sign-in URL of a login.
    pub fn tell(&self, line: impl Display) {
        stderr_line(&line.to_string());
    }

    /// A question on the terminal (stderr, no newline), then the answer line from stdin.
    /// Asked even under `-q`: whoever asked for a prompt is there to answer it.
    pub fn prompt(&self, question: &str) -> Result<String> {
        use std::io::BufRead;
        {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{question}: ");
            let _ = err.flush();
        }
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::io(format!("cannot read the answer: {e}")))?;
        Ok(line.trim().to_owned())
    }

    /// The result: the JSON document with `--json`, else the human text (unless `-q`).
    pub fn result(&self, json: &serde_json::Value, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            self.stdout(format!("{json}\n").as_bytes())
        } else if self.quiet {
            Ok(())
        } else {
            let mut text = human();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            self.stdout(text.as_bytes())
        }
    }

    /// The `--json` document alone (nothing without `--json`).
    pub fn json_only(&self, json: &serde_json::Value) -> Result<()> {
        self.result(json, String::new)
    }

    /// Bytes that are the command's whole purpose (a token, a dry-run message, completions):
    /// written whatever `-q` says.
    pub fn data(&self, bytes: &[u8]) -> Result<()> {
        self.stdout(bytes)
    }

    fn stdout(&self, bytes: &[u8]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::BrokenPipe => Error::output_closed(),
                _ => Error::io(format!("cannot write to stdout: {e}")),
            })
    }

    /// A progress bar on stderr, drawn only on a terminal and never under `-q` or `--json`.
    pub fn progress(&self, total: u64, label: &str) -> indicatif::ProgressBar {
        if self.quiet || self.json || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} {bar:30} {binary_bytes}/{binary_total_bytes} ({eta})",
        ) {
            bar.set_style(style);
        }
        bar.set_message(label.to_owned());
        bar
    }
}

/// stderr may be closed or a broken pipe too; a message that cannot be shown is dropped
/// rather than turned into a panic (which is what `eprintln!` does).
fn stderr_line(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Writes an error report to stderr (for `main`).
pub fn report(text: &str) {
    stderr_line(text);
}

/// `2026-11-22 10:04 UTC`, without a date crate: civil-from-days (Howard Hinnant).
pub fn fmt_time(unix: u64) -> String {
    let t = rfc3339(unix);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

/// RFC 3339 in UTC, `2026-11-22T10:04:05Z`, for config values such as `credential_expires`.
pub fn rfc3339(unix: u64) -> String {
    let (year, month, day) = civil_from_days((unix / 86_400) as i64);
    let secs = unix % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Unix seconds of a civil UTC time (Howard Hinnant's days-from-civil).
pub fn unix_from_civil(year: i64, month: i64, day: i64, secs_of_day: i64) -> Option<u64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + secs_of_day).ok()
}

/// Parses RFC 3339 (`2027-01-31T12:00:00Z`, fractions and `+02:00` offsets allowed) to
/// Unix seconds; a bare date means its midnight UTC.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if t.len() == 10 {
        return unix_from_civil(y, mo, d, 0);
    }
    if !matches!(t.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let secs = num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let mut rest = &t[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let v = o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60;
            if o.starts_with('+') { v } else { -v }
        }
        _ => return None,
    };
    unix_from_civil(y, mo, d, secs - offset)
}

/// `3 days`, `5 min`: a coarse duration for people.
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=5_399 => format!("{} min", secs / 60),
        5_400..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// `1 recipient`, `3 recipients`.
pub fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for (unix, text) in [
            (0, "1970-01-01 00:00 UTC"),
            (951_782_400, "2000-02-29 00:00 UTC"),
            (1_795_347_840, "2026-11-22 11:44 UTC"),
        ] {
            assert_eq!(fmt_time(unix), text);
        }
        assert_eq!(rfc3339(1_795_347_845), "2026-11-22T11:44:05Z");
        for (text, unix) in [
            ("2026-11-22T11:44:05Z", Some(1_795_347_845)),
            ("2026-11-22T13:44:05.123+02:00", Some(1_795_347_845)),
            ("2026-11-22", Some(1_795_305_600)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("2026-13-01T00:00:00Z", None),
            ("soon", None),
        ] {
            assert_eq!(parse_rfc3339(text), unix, "{text}");
        }
        assert_eq!(fmt_duration(59), "59 s");
        assert_eq!(fmt_duration(600), "10 min");
        assert_eq!(fmt_duration(7200), "2 h");
        assert_eq!(fmt_duration(90 * 86_400), "90 days");
        assert_eq!(plural(1, "message"), "1 message");
        assert_eq!(plural(2, "message"), "2 messages");
    }
}
