//! The one error type every command returns, and its sysexits exit code (SPEC section 8).
//!
//! An error carries three things a user needs: what happened, why (when known), and the
//! command or setting that fixes it. It must never carry a secret: callers put tokens and
//! secrets in [`crate::secret::Secret`], whose `Display` redacts, before formatting a message.

use std::fmt;

/// Exit codes from sysexits.h, as msmtp and sendmail use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Usage = 64,
    DataErr = 65,
    NoInput = 66,
    Unavailable = 69,
    Software = 70,
    IoErr = 74,
    TempFail = 75,
    NoPerm = 77,
    Config = 78,
}

#[derive(Debug)]
pub struct Error {
    pub exit: Exit,
    /// What happened, one line.
    pub what: String,
    /// Why it happened, when that is known and adds something.
    pub why: Option<String>,
    /// The command or setting that fixes it.
    pub fix: Option<String>,
    /// What `--json` prints instead of the generic error object (e.g. a queued message).
    pub json: Option<serde_json::Value>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(exit: Exit, what: impl Into<String>) -> Self {
        Error {
            exit,
            what: what.into(),
            why: None,
            fix: None,
            json: None,
        }
    }
    pub fn why(mut self, why: impl Into<String>) -> Self {
        self.why = Some(why.into());
        self
    }
    pub fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
    /// What `--json` prints for this error, when the command has a better object than the
    /// generic one (a status report, a queued message).
    pub fn with_json(mut self, json: Option<serde_json::Value>) -> Self {
        if json.is_some() {
            self.json = json;
        }
        self
    }
    pub fn usage(what: impl Into<String>) -> Self {
        Error::new(Exit::Usage, what)
    }
    pub fn config(what: impl Into<String>) -> Self {
        Error::new(Exit::Config, what)
    }
    pub fn io(what: impl Into<String>) -> Self {
        Error::new(Exit::IoErr, what)
    }
    pub fn temp(what: impl Into<String>) -> Self {
        Error::new(Exit::TempFail, what)
    }
    pub fn login_needed(what: impl Into<String>) -> Self {
        Error::new(Exit::NoPerm, what)
    }
    pub fn internal(what: impl Into<String>) -> Self {
        Error::new(Exit::Software, what)
    }

    pub fn code(&self) -> i32 {
        self.exit as i32
    }

    /// The machine-readable form for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        if let Some(v) = &self.json {
            return v.clone();
        }
        serde_json::json!({
            "status": "error",
            "exit_code": self.code(),
            "error": self.what,
            "why": self.why,
            "fix": self.fix,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mailer: {}", self.what)?;
        if let Some(why) = &self.why {
            write!(f, "\n  why: {why}")?;
        }
        if let Some(fix) = &self.fix {
            write!(f, "\n  fix: {fix}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// An error and its sources, `outer: inner: …`, for the "why" of network failures.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_what_why_fix() {
        let e = Error::login_needed("no login for profile work")
            .why("nothing is stored")
            .fix("mailer login --profile work");
        assert_eq!(
            e.to_string(),
            "mailer: no login for profile work\n  why: nothing is stored\n  fix: mailer login --profile work"
        );
        assert_eq!(e.code(), 77);
    }

    #[test]
    fn codes_match_sysexits() {
        for (exit, code) in [
            (Exit::Usage, 64),
            (Exit::DataErr, 65),
            (Exit::NoInput, 66),
            (Exit::Unavailable, 69),
            (Exit::Software, 70),
            (Exit::IoErr, 74),
            (Exit::TempFail, 75),
            (Exit::NoPerm, 77),
            (Exit::Config, 78),
        ] {
            assert_eq!(exit as i32, code);
        }
    }
}
