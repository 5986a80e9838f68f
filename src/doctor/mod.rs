//! `mailer doctor`: every check that an unattended send would pass, one line each, every
//! line that is not ok with its fix (as `flutter doctor` and `brew doctor` do).
//!
//! Checks run in a fixed order under stable names (scripts read `--json`): the local ones
//! ([`local`]: config, token store, refresh token, outbox, credential expiry) and, unless
//! `--no-network`, those that talk to the servers ([`network`]: tokens, clock, hosts, an
//! SMTP probe, a test send). A check never prints a token, and no check changes anything
//! but what a send would change anyway (a refreshed token, a test message).

mod local;
mod network;
mod token;

pub use network::test_message;

use crate::auth::Account;
use crate::error::{Class, Error};
use crate::output::Printer;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    /// With the class of the failure, which decides the exit code.
    Fail(Class),
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(
        name: &'static str,
        class: Class,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status: Status::Fail(class),
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    /// A failed check made of an error: its words and its fix.
    pub fn from_error(name: &'static str, e: &Error) -> Check {
        let mut detail = e.what.clone();
        if let Some(why) = &e.why {
            detail.push_str(&format!(" ({why})"));
        }
        Check {
            name,
            status: Status::Fail(e.class),
            detail,
            fix: e.fix.clone(),
        }
    }
    /// The same finding, but not fatal (the transport is not the one sends use).
    pub fn softened(mut self) -> Check {
        if let Status::Fail(_) = self.status {
            self.status = Status::Warn;
        }
        self
    }

    fn to_json(&self) -> Value {
        let status = match self.status {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail(_) => "fail",
        };
        json!({ "name": self.name, "status": status, "detail": self.detail, "fix": self.fix })
    }
}

pub struct Options {
    pub network: bool,
    pub send_test: bool,
}

/// The checks of one profile, in order.
pub struct Report {
    pub profile: String,
    pub checks: Vec<Check>,
}

impl Report {
    /// The class of the first failure: the command's exit code.
    pub fn first_failure(&self) -> Option<Class> {
        self.checks.iter().find_map(|c| match c.status {
            Status::Fail(class) => Some(class),
            _ => None,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "profile": self.profile,
            "ok": self.first_failure().is_none(),
            "checks": self.checks.iter().map(Check::to_json).collect::<Vec<_>>(),
        })
    }

    pub fn to_text(&self) -> String {
        let mut out = format!("profile {}\n", self.profile);
        for c in &self.checks {
            let status = match c.status {
                Status::Ok => "ok",
                Status::Warn => "warn",
                Status::Fail(_) => "FAIL",
            };
            out.push_str(&format!("  {status:<5} {:<18} {}\n", c.name, c.detail));
            if let (Some(fix), false) = (&c.fix, c.status == Status::Ok) {
                out.push_str(&format!("  {:<24} fix: {fix}\n", ""));
            }
        }
        let warnings = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        out.push_str(&match self.first_failure() {
            None if warnings == 0 => "  all checks passed: a send works unattended\n".to_owned(),
            None => format!(
                "  a send works unattended; {} to look at\n",
                crate::output::plural(warnings, "warning")
            ),
            Some(_) => "  a send would not work unattended: fix the FAIL lines above, in order\n"
                .to_owned(),
        });
        out
    }
}

/// Runs every check for `acct` (or, when the profile cannot even be resolved, reports why).
pub async fn examine(
    name: &str,
    acct: Result<Account, Error>,
    printer: &Printer,
    opts: &Options,
) -> Report {
    let acct = match acct {
        Ok(a) => a,
        Err(e) => {
            return Report {
                profile: name.to_owned(),
                checks: vec![Check::from_error("config", &e)],
            };
        }
    };
    let mut checks = vec![local::config(&acct)];
    if checks[0].status != Status::Ok {
        return Report {
            profile: name.to_owned(),
            checks,
        };
    }
    let record = local::token_store(&acct, &mut checks);
    checks.push(local::token_store_cron(&acct));
    checks.push(local::refresh_token(&acct, record.as_ref()));
    if opts.network {
        network::run(&acct, printer, opts, &mut checks).await;
    } else {
        checks.extend(token::cached_tokens(&acct, record.as_ref()));
    }
    checks.push(local::outbox(&acct));
    checks.push(local::credential_expiry(&acct));
    Report {
        profile: name.to_owned(),
        checks,
    }
}
