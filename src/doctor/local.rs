//! The checks that need no network: the profile, the token store (also as cron will reach
//! it), the refresh token's age, the outbox and credential expiry. (What a token says of
//! itself is [`super::token`]'s.)

use super::{Check, Status};
use crate::auth::Account;
use crate::error::Class;
use crate::notify::CREDENTIAL_WARNING_DAYS;
use crate::outbox::Outbox;
use crate::output::{fmt_duration, fmt_time, plural};
use crate::store::{Record, Store};
use crate::tokens::{self, Idle, TokenState};

pub fn config(acct: &Account) -> Check {
    let p = &acct.profile;
    let missing: Vec<&str> = [("client_id", &p.client_id), ("user", &p.user)]
        .into_iter()
        .filter(|(_, v)| v.trim().is_empty())
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            "config",
            Class::Config,
            format!("profile \"{}\" lacks {}", acct.name, missing.join(", ")),
            acct.login_command(),
        );
    }
    if let Err(e) = acct.mailbox() {
        return Check::from_error("config", &e);
    }
    // What a login checks before it starts holds for the saved profile too (a tenant for
    // Entra, the URLs of a custom provider, a flow the provider offers).
    if let Err(e) = acct.provider.check_login(p) {
        let e = crate::error::Error {
            class: Class::Config,
            ..e
        };
        return Check::from_error("config", &e);
    }
    if p.flow.is_app_only() {
        let files = [&p.certificate, &p.private_key];
        if let Some(path) = files
            .iter()
            .filter_map(|f| f.as_ref())
            .find(|f| !f.is_file())
        {
            return Check::fail(
                "config",
                Class::Config,
                format!("{} is missing", path.display()),
                format!(
                    "put the file back, or log in again: {}",
                    acct.login_command()
                ),
            );
        }
    }
    Check::ok(
        "config",
        format!(
            "profile \"{}\": {} via {}, {} provider",
            acct.name, p.user, p.transport, p.provider
        ),
    )
}

/// The store answers; returns what it holds for the checks that follow.
pub fn token_store(acct: &Account, checks: &mut Vec<Check>) -> Option<Record> {
    match acct.store.load() {
        Ok(Some(r)) => {
            checks.push(Check::ok(
                "token-store",
                format!("{} holds the login", acct.store.describe()),
            ));
            Some(r)
        }
        Ok(None) => {
            checks.push(Check::fail(
                "token-store",
                Class::LoginNeeded,
                format!("nothing is stored in {}", acct.store.describe()),
                acct.login_command(),
            ));
            None
        }
        Err(e) => {
            checks.push(Check::from_error("token-store", &e));
            None
        }
    }
}

/// A keyring reached through a desktop session's D-Bus is out of cron's reach: cron jobs
/// have no session bus, unless the user's systemd session lingers.
pub fn token_store_cron(acct: &Account) -> Check {
    const NAME: &str = "token-store-cron";
    if !matches!(acct.store, Store::Keyring(_)) || !cfg!(target_os = "linux") {
        return Check::ok(
            NAME,
            format!("{} is reachable from cron", acct.store.describe()),
        );
    }
    if let Some(bus) = lingering_bus() {
        return Check::ok(
            NAME,
            format!(
                "the user session lingers: cron reaches the keyring with DBUS_SESSION_BUS_ADDRESS={bus}, if it is unlocked"
            ),
        );
    }
    Check::warn(
        NAME,
        "the keyring is reached through this session's D-Bus, which cron jobs do not have",
        format!(
            "for cron, log in with a private token file: {} --token-store file (or enable lingering: loginctl enable-linger, and keep the keyring unlocked)",
            acct.login_command()
        ),
    )
}

/// `unix:path=/run/user/UID/bus` when systemd keeps this user's session without a login.
fn lingering_bus() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()?;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let bus = format!("/run/user/{uid}/bus");
    let lingers = std::path::Path::new(&format!("/var/lib/systemd/linger/{user}")).exists();
    (lingers && std::path::Path::new(&bus).exists()).then(|| format!("unix:path={bus}"))
}

pub fn refresh_token(acct: &Account, record: Option<&Record>) -> Check {
    const NAME: &str = "refresh-token";
    let now = tokens::now();
    let state = TokenState::of(acct, record, acct.profile.transport, now, false);
    let used = record.and_then(|r| r.refresh_token_used_at);
    let ago = used
        .map(|t| format!("last used {} ago", fmt_duration(now.saturating_sub(t))))
        .unwrap_or_else(|| "present".into());
    match (state, tokens::idle(acct, record, now)) {
        (TokenState::AppOnly, _) => Check::ok(
            NAME,
            "app-only: tokens are minted from the app's own credential, there is no refresh token",
        ),
        (TokenState::NeedsLogin(_), _) => Check::fail(
            NAME,
            Class::LoginNeeded,
            "no refresh token is stored",
            acct.login_command(),
        ),
        (TokenState::IdleExpired { .. }, Idle::Expired { days }) | (_, Idle::Expired { days }) => {
            Check::fail(
                NAME,
                Class::LoginNeeded,
                format!(
                    "last used {days} days ago: past the {} days an unused refresh token lives",
                    acct.provider.idle_limit_days().unwrap_or_default()
                ),
                acct.login_command(),
            )
        }
        (_, Idle::Soon { days_left, .. }) => Check::warn(
            NAME,
            format!("{ago}; expires in {days_left} days unless used"),
            keepalive(acct),
        ),
        (_, Idle::Ok { days_left, .. }) => Check::ok(
            NAME,
            format!("{ago}; {days_left} days left before it expires unused"),
        ),
        (_, Idle::Unlimited) => Check::ok(NAME, ago),
    }
}

fn keepalive(acct: &Account) -> String {
    let flag = crate::config::profile_flag(&acct.name);
    format!(
        "run `mailer{flag} token --refresh` now, and weekly from cron: 0 9 * * 1 mailer{flag} token --refresh >/dev/null"
    )
}

pub fn outbox(acct: &Account) -> Check {
    const NAME: &str = "outbox";
    let outbox = match Outbox::new(&acct.name) {
        Ok(o) => o,
        Err(e) => return Check::from_error(NAME, &e),
    };
    let (queued, failed) = match (outbox.queued(), outbox.failed()) {
        (Ok(q), Ok(f)) => (q, f),
        (Err(e), _) | (_, Err(e)) => return Check::from_error(NAME, &e),
    };
    let now = tokens::now();
    let oldest = queued
        .iter()
        .map(|e| e.created)
        .min()
        .map(|t| now.saturating_sub(t));
    let flag = crate::config::profile_flag(&acct.name);
    let detail = format!(
        "{} queued{}, {} failed",
        queued.len(),
        oldest
            .map(|a| format!(" (oldest {} old)", fmt_duration(a)))
            .unwrap_or_default(),
        failed.len()
    );
    if !failed.is_empty() {
        return Check::warn(
            NAME,
            detail,
            format!(
                "`mailer{flag} queue list` shows why; `mailer{flag} queue purge --failed` clears them"
            ),
        );
    }
    if oldest.is_some_and(|a| a > 86_400) {
        return Check::warn(
            NAME,
            detail,
            format!(
                "messages wait for `mailer{flag} queue run`: run it from cron, e.g. */10 * * * * mailer{flag} queue run -q"
            ),
        );
    }
    Check::ok(NAME, detail)
}

pub fn credential_expiry(acct: &Account) -> Check {
    const NAME: &str = "credential-expiry";
    let (what, when) = match acct.credential_expiry() {
        Ok(Some(found)) => found,
        Ok(None) => return Check::ok(NAME, "no client secret or certificate to expire"),
        Err(e) => return Check::from_error(NAME, &e),
    };
    let now = tokens::now();
    let renew = format!(
        "create a new secret or certificate for the app (Certificates & secrets), then: {}",
        acct.login_command()
    );
    match when.checked_sub(now) {
        None | Some(0) => Check::fail(
            NAME,
            Class::LoginNeeded,
            format!("{what} expired on {}", fmt_time(when)),
            renew,
        ),
        Some(left) if left < CREDENTIAL_WARNING_DAYS * 86_400 => Check::warn(
            NAME,
            format!(
                "{what} expires in {} ({})",
                plural((left / 86_400) as usize, "day"),
                fmt_time(when)
            ),
            renew,
        ),
        Some(_) => Check::ok(NAME, format!("{what} is valid until {}", fmt_time(when))),
    }
}

impl Check {
    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn guids() {
        use crate::config::is_guid;
        assert!(is_guid("00000003-0000-0000-c000-000000000000"));
        assert!(!is_guid("contoso.com"));
        assert!(!is_guid("0000000-0000-0000-c000-000000000000z"));
    }
}
