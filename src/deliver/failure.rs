//! What a failed attempt means for the message: kept for later, dropped, or held because
//! the server may have taken it. Decided from the error's class, never from exit codes.

use crate::error::{Class, Error};

/// What a failed attempt means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The message itself is wrong: no retry can help.
    BadData,
    /// The service refused, or the setup is wrong: retrying the same way will not help.
    Permanent,
    /// The network, a server error, throttling: later may work.
    Temporary,
    /// A person must log in again; then it will work.
    LoginNeeded,
    /// This host cannot do its part now (the token store or a local file): kept, and a
    /// person fixes the host.
    Local,
    /// The server had the whole message when the connection broke, before it answered:
    /// it may have been delivered. Sending it again could deliver it twice, so it is held
    /// among the failed messages for a person to check (`mailer queue retry ID`).
    Unconfirmed,
}

impl Failure {
    pub fn of(e: &Error) -> Failure {
        if e.unconfirmed {
            return Failure::Unconfirmed;
        }
        match e.class {
            Class::Temporary => Failure::Temporary,
            Class::LoginNeeded => Failure::LoginNeeded,
            // The token store or a local file could not be used (a keyring that cron cannot
            // reach, a full disk): nothing is wrong with the message, and once a person
            // fixed the host it goes out.
            Class::Io => Failure::Local,
            Class::Usage | Class::BadData | Class::NoInput => Failure::BadData,
            _ => Failure::Permanent,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Failure::BadData => "bad-data",
            Failure::Permanent => "permanent",
            Failure::Temporary => "temporary",
            Failure::LoginNeeded => "login-needed",
            Failure::Local => "local",
            Failure::Unconfirmed => "unconfirmed",
        }
    }

    /// Worth keeping the message for a later attempt.
    pub fn keeps(self) -> bool {
        matches!(
            self,
            Failure::Temporary | Failure::LoginNeeded | Failure::Local
        )
    }

    /// Every later message of a run would fail the same way: a person must act first.
    pub fn stops_a_run(self) -> bool {
        matches!(self, Failure::LoginNeeded | Failure::Local)
    }
}

/// An unconfirmed delivery as the outbox keeps it: among the failed, with what to check.
pub(super) fn held(e: Error, id: &str) -> Error {
    let what = format!("{} (the message may have been delivered)", e.what);
    Error { what, ..e }
        .fix(format!("check the recipient's mailbox or your Sent folder; if it did not arrive, send it again: mailer queue retry {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Class;

    #[test]
    fn failures_by_class() {
        for (class, failure, keeps) in [
            (Class::Temporary, Failure::Temporary, true),
            (Class::LoginNeeded, Failure::LoginNeeded, true),
            (Class::BadData, Failure::BadData, false),
            (Class::NoInput, Failure::BadData, false),
            (Class::Refused, Failure::Permanent, false),
            (Class::Io, Failure::Local, true),
            (Class::Config, Failure::Permanent, false),
        ] {
            let f = Failure::of(&Error::new(class, "x"));
            assert_eq!((f, f.keeps()), (failure, keeps), "{class:?}");
        }
    }
}
