//! The one error type every command returns, and the class that decides its exit code.
//!
//! An error carries what a user needs: what happened, why (when known), and the command or
//! setting that fixes it, each written where the error is made. Its [`Class`] says what kind
//! of failure it is; `main.rs` maps the class to a sysexits code and delivery decides from
//! it whether a message is worth keeping. An error must never carry a secret: callers put
//! tokens in [`crate::secret::Secret`], whose `Display` redacts, before formatting a message.

use std::fmt;

/// What kind of failure an error is. Exit codes follow sysexits.h, as msmtp and sendmail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Bad flags or arguments.
    Usage,
    /// Bad message data: an invalid address or header, a message too large.
    BadData,
    /// An input file (body, attachment) cannot be read.
    NoInput,
    /// The address's domain has no Microsoft 365 / Entra tenant.
    NoTenant,
    /// The service refused for good: access denied, SMTP AUTH disabled, send-as denied.
    Refused,
    /// A bug in mailer.
    Internal,
    /// Local I/O: the token store, the outbox.
    Io,
    /// Try again later: the network, a server error, throttling.
    Temporary,
    /// A login, or a permission a login grants, is needed.
    LoginNeeded,
    /// The configuration is wrong.
    Config,
    /// Whoever read our output stopped reading (`mailer … | head -1`). Not a failure: the
    /// command ends quietly with status 0, as ripgrep does.
    OutputClosed,
}

impl Class {
    /// The stable name `--json` shows.
    pub fn name(self) -> &'static str {
        match self {
            Class::Usage => "usage",
            Class::BadData => "bad-data",
            Class::NoInput => "no-input",
            Class::NoTenant => "no-tenant",
            Class::Refused => "refused",
            Class::Internal => "internal",
            Class::Io => "io",
            Class::Temporary => "temporary",
            Class::LoginNeeded => "login-needed",
            Class::Config => "config",
            Class::OutputClosed => "output-closed",
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub class: Class,
    /// What happened, one line.
    pub what: String,
    /// Why it happened, when that is known and adds something.
    pub why: Option<String>,
    /// The command or setting that fixes it.
    pub fix: Option<String>,
    /// What `--json` prints instead of the generic error object (e.g. a queued message).
    pub json: Option<Box<serde_json::Value>>,
    /// The server's code, as `mailer explain` takes it (`AADSTS70043`, `5.7.139`, …).
    pub code: Option<String>,
    /// The failure is particular to the transport that met it (SMTP AUTH off for the
    /// tenant, no Graph mailbox): another transport may well deliver.
    pub transport_specific: bool,
    /// The connection failed after the server had the whole message and before it said
    /// whether it took it: it may have been delivered, so nothing sends it again by itself.
    pub unconfirmed: bool,
    /// The command has shown the failure itself (doctor's report): only the exit code is
    /// left to give.
    pub shown: bool,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(class: Class, what: impl Into<String>) -> Self {
        Error {
            class,
            what: what.into(),
            why: None,
            fix: None,
            json: None,
            code: None,
            transport_specific: false,
            unconfirmed: false,
            shown: false,
        }
    }
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }
    /// Marks the failure as already shown to the user.
    pub fn shown(mut self) -> Self {
        self.shown = true;
        self
    }
    /// Marks a failure after which the message may have been delivered.
    pub fn unconfirmed(mut self) -> Self {
        self.unconfirmed = true;
        self
    }
    pub fn transport_specific(mut self, yes: bool) -> Self {
        self.transport_specific = yes;
        self
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
        if let Some(v) = json {
            self.json = Some(Box::new(v));
        }
        self
    }
    pub fn usage(what: impl Into<String>) -> Self {
        Error::new(Class::Usage, what)
    }
    pub fn bad_data(what: impl Into<String>) -> Self {
        Error::new(Class::BadData, what)
    }
    pub fn config(what: impl Into<String>) -> Self {
        Error::new(Class::Config, what)
    }
    pub fn io(what: impl Into<String>) -> Self {
        Error::new(Class::Io, what)
    }
    pub fn temp(what: impl Into<String>) -> Self {
        Error::new(Class::Temporary, what)
    }
    pub fn refused(what: impl Into<String>) -> Self {
        Error::new(Class::Refused, what)
    }
    pub fn login_needed(what: impl Into<String>) -> Self {
        Error::new(Class::LoginNeeded, what)
    }
    pub fn internal(what: impl Into<String>) -> Self {
        Error::new(Class::Internal, what)
    }
    pub fn output_closed() -> Self {
        Error::new(Class::OutputClosed, "the reader of our output went away")
    }

    /// The machine-readable form for `--json`, given the exit code `main` chose.
    pub fn to_json(&self, exit_code: u8) -> serde_json::Value {
        if let Some(v) = &self.json {
            let mut v = (**v).clone();
            if let Some(object) = v.as_object_mut() {
                object
                    .entry("exit_code")
                    .or_insert_with(|| serde_json::json!(exit_code));
            }
            return v;
        }
        serde_json::json!({
            "status": "error",
            "class": self.class.name(),
            "exit_code": exit_code,
            "code": self.code,
            "error": self.what,
            "why": self.why,
            "fix": self.fix,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mailer: {}", self.what)?;
        if let Some(code) = self.code.as_deref().filter(|c| !self.what.contains(c)) {
            write!(f, " [{code}]")?;
        }
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
        assert_eq!(e.class, Class::LoginNeeded);
        assert_eq!(e.to_json(77)["class"], "login-needed");
    }
}
