//! `mailer status`: can a send work without a human? Exit 0 when yes, 77 when a login is
//! needed. Reads the config and the token store only: no network, no refresh, so it is
//! safe to run from monitoring every minute.

use super::{Loaded, Out, fmt_duration, fmt_time};
use crate::auth::{TokenState, now, token_state};
use crate::cli::Global;
use crate::config::Transport;
use crate::error::Result;
use crate::store::Store;

/// Entra expires a refresh token after 90 days without use; warn two weeks ahead.
const INACTIVITY_LIMIT_DAYS: u64 = 90;
const WARN_AFTER_DAYS: u64 = 76;

pub fn run(g: &Global) -> Result<()> {
    let loaded = Loaded::new(g)?;
    let acct = loaded.account()?;
    let out = Out::new(g);
    let p = &acct.profile;
    let store = Store::open(p.token_store, &acct.name)?;
    let record = store.load()?;
    let now = now();
    let app_only = p.flow == crate::config::Flow::ClientCredentials;
    // App-only profiles have no refresh token to expire: they mint from their credential.
    let idle_days = record
        .as_ref()
        .filter(|_| !app_only)
        .and_then(|r| r.refresh_token_used_at)
        .map(|t| now.saturating_sub(t) / 86_400);
    // Past the inactivity limit the refresh token is dead, whatever is stored.
    let expired = idle_days.is_some_and(|d| d >= INACTIVITY_LIMIT_DAYS);
    let ready = !expired
        && !matches!(
            token_state(record.as_ref(), app_only, p.transport, now),
            TokenState::LoggedOut
        );

    let (queued, failed) = crate::outbox::Outbox::new(&acct.name)?.counts();
    // With --json the status object is the one document on stdout, ready or not.
    let mut json = None;
    if out.json {
        let access: serde_json::Map<_, _> = [Transport::Graph, Transport::Smtp]
            .into_iter()
            .filter_map(|t| {
                let c = record.as_ref()?.cached(t)?;
                Some((
                    t.as_str().to_owned(),
                    serde_json::json!({ "expires_at": c.expires_at, "valid": c.expires_at > now }),
                ))
            })
            .collect();
        json = Some(serde_json::json!({
            "profile": acct.name,
            "user": p.user,
            "tenant": p.tenant,
            "cloud": p.cloud.as_str(),
            "client_id": p.client_id,
            "flow": p.flow.as_str(),
            "transport": p.transport.as_str(),
            "token_store": { "kind": store.kind().as_str(), "location": store.describe() },
            "logged_in": record.as_ref().is_some_and(|r| app_only || r.refresh_token.is_some()),
            "logged_in_at": record.as_ref().and_then(|r| r.logged_in_at),
            "refresh_token_used_at": record.as_ref().and_then(|r| r.refresh_token_used_at),
            "access_tokens": access,
            "ready": ready,
            "queue": { "queued": queued, "failed": failed },
        }));
    } else if !out.quiet {
        let line = |k: &str, v: &str| println!("{k:<15}{v}");
        line("profile:", &acct.name);
        line("user:", &p.user);
        line("tenant:", &p.tenant);
        line("cloud:", p.cloud.as_str());
        line("client id:", &p.client_id);
        line("transport:", p.transport.as_str());
        line("token store:", &store.describe());
        match &record {
            None => line("login:", "none"),
            Some(r) => {
                if let Some(t) = r.logged_in_at {
                    line(
                        "logged in:",
                        &format!(
                            "{} ({} ago)",
                            fmt_time(t),
                            fmt_duration(now.saturating_sub(t))
                        ),
                    );
                }
                if let Some(t) = r.refresh_token_used_at {
                    line(
                        "token used:",
                        &format!(
                            "{} ({} ago; expires after {INACTIVITY_LIMIT_DAYS} days unused)",
                            fmt_time(t),
                            fmt_duration(now.saturating_sub(t))
                        ),
                    );
                }
                for t in [Transport::Graph, Transport::Smtp] {
                    let text = match r.cached(t) {
                        Some(c) if c.expires_at > now => {
                            format!("valid until {}", fmt_time(c.expires_at))
                        }
                        Some(_) => "expired (refreshed on next use)".to_owned(),
                        None => "none cached (minted on first use)".to_owned(),
                    };
                    line(&format!("{t} token:"), &text);
                }
            }
        }
        line("queue:", &format!("{queued} queued, {failed} failed"));
        line(
            "ready:",
            if ready {
                "yes: a send works without a human"
            } else {
                "no: a login is needed"
            },
        );
    }
    if let Some(v) = json.as_ref().filter(|_| ready) {
        out.print_json(v);
    }
    if expired {
        return Err(crate::error::Error::login_needed(format!(
            "the login of profile \"{}\" has expired: its refresh token was last used {} days ago",
            acct.name,
            idle_days.unwrap_or_default()
        ))
        .why(format!(
            "Entra expires refresh tokens after {INACTIVITY_LIMIT_DAYS} days without use"
        ))
        .fix(acct.login_command())
        .with_json(json));
    }
    if let Some(days) = idle_days.filter(|d| *d >= WARN_AFTER_DAYS) {
        eprintln!(
            "warning: the refresh token was last used {days} days ago; Entra expires it after {INACTIVITY_LIMIT_DAYS} days unused. Run `mailer token --refresh` to renew it (weekly from cron keeps it alive)."
        );
    }
    if ready {
        Ok(())
    } else {
        Err(acct.not_logged_in(&store).with_json(json))
    }
}
