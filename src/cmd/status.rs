//! `mailer status`: can a send work without a human? Exit 0 when yes, 77 when a login is
//! needed. Reads the config and the token store only: no network, no refresh, so it is
//! safe to run from monitoring every minute. What the login's state is, is
//! [`crate::tokens`]'s to say; this prints it.

use crate::auth::Account;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::outbox::Outbox;
use crate::output::{fmt_duration, fmt_time};
use crate::store::Record;
use crate::tokens::{Idle, TokenState, now};
use serde_json::{Value, json};

struct Status {
    record: Option<Record>,
    state: TokenState,
    idle: Idle,
    queued: usize,
    failed: usize,
    now: u64,
}

pub fn run(ctx: &Context) -> Result<()> {
    let acct = ctx.account()?;
    let now = now();
    let record = acct.store.load()?;
    let (queued, failed) = Outbox::new(&acct.name)?.counts();
    let s = Status {
        state: TokenState::of(acct, record.as_ref(), acct.profile.transport, now, true),
        idle: crate::tokens::idle(acct, record.as_ref(), now),
        record,
        queued,
        failed,
        now,
    };
    let json = to_json(acct, &s);
    if !ctx.printer.json() {
        ctx.printer.result(&json, || table(acct, &json))?;
    }
    if !s.state.is_ready() {
        // With --json the status object is the one document on stdout, ready or not.
        let e = match (s.state, s.idle) {
            (TokenState::IdleExpired { .. }, Idle::Expired { days }) => idle_expired(acct, days),
            _ => acct.not_logged_in(),
        };
        return Err(e.with_json(Some(json)));
    }
    ctx.printer.json_only(&json)?;
    // Unattended runs notify these too (cmd::warn_a_person); here a person reads them.
    for w in crate::notify::upcoming(acct, s.record.as_ref(), now) {
        ctx.printer.warn(&w.text);
    }
    if s.failed > 0 {
        ctx.printer.warn(format!(
            "{} in the outbox failed for good: `mailer{flag} queue list` shows why, `mailer{flag} queue purge --failed` clears them",
            crate::output::plural(s.failed, "message"),
            flag = acct.profile_flag()
        ));
    }
    Ok(())
}

fn idle_expired(acct: &Account, days: u64) -> Error {
    let limit = acct.provider.idle_limit_days().unwrap_or_default();
    Error::login_needed(format!(
        "the login of profile \"{}\" has expired: its refresh token was last used {days} days ago",
        acct.name
    ))
    .why(format!(
        "the identity provider expires refresh tokens after {limit} days without use"
    ))
    .fix(acct.login_command())
}

fn to_json(acct: &Account, s: &Status) -> Value {
    let p = &acct.profile;
    let r = s.record.as_ref();
    let access: serde_json::Map<String, Value> = acct
        .provider
        .transports()
        .iter()
        .filter_map(|&t| {
            let c = r?.cached(t)?;
            Some((
                t.as_str().to_owned(),
                json!({ "expires_at": c.expires_at, "valid": crate::tokens::fresh(c, s.now) }),
            ))
        })
        .collect();
    let logged_in = crate::tokens::has_login(acct, r);
    json!({
        "profile": acct.name,
        "provider": p.provider.as_str(),
        "user": p.user,
        "tenant": Some(&p.tenant).filter(|t| !t.is_empty()),
        "cloud": (p.provider == crate::config::ProviderKind::Microsoft).then_some(p.cloud.as_str()),
        "client_id": p.client_id,
        "flow": p.flow.as_str(),
        "transport": p.transport.as_str(),
        "token_store": { "kind": acct.store.kind().as_str(), "location": acct.store.describe() },
        "logged_in": logged_in,
        "logged_in_at": r.and_then(|r| r.logged_in_at),
        "refresh_token_used_at": r.and_then(|r| r.refresh_token_used_at),
        "idle_limit_days": crate::tokens::idle_limit_days(acct),
        "access_tokens": access,
        "ready": s.state.is_ready(),
        "queue": { "queued": s.queued, "failed": s.failed },
    })
}

/// One transport's cached access token, as the table shows it.
fn access_token(token: &Value) -> String {
    match token["expires_at"].as_u64() {
        Some(e) if token["valid"] == true => format!("valid until {}", fmt_time(e)),
        Some(_) => "expired or about to (renewed on next use)".to_owned(),
        None => "none cached (minted on first use)".to_owned(),
    }
}

/// The table is drawn from the JSON document, so the two never disagree.
fn table(acct: &Account, j: &Value) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| out.push_str(&format!("{k:<15}{v}\n"));
    let text = |key: &str| j[key].as_str().unwrap_or_default().to_owned();
    line("profile:", &text("profile"));
    line("provider:", acct.provider.display_name());
    line("user:", &text("user"));
    for key in ["tenant", "cloud"] {
        if j[key].is_string() {
            line(&format!("{key}:"), &text(key));
        }
    }
    line("client id:", &text("client_id"));
    line("transport:", &text("transport"));
    line("token store:", &acct.store.describe());
    let now = now();
    let ago = |t: u64| {
        format!(
            "{} ({} ago",
            fmt_time(t),
            fmt_duration(now.saturating_sub(t))
        )
    };
    if !j["logged_in"].as_bool().unwrap_or(false) && j["logged_in_at"].is_null() {
        line("login:", "none");
    }
    if let Some(t) = j["logged_in_at"].as_u64() {
        line("logged in:", &format!("{})", ago(t)));
    }
    if let (Some(t), Some(limit)) = (
        j["refresh_token_used_at"].as_u64(),
        j["idle_limit_days"].as_u64(),
    ) {
        line(
            "token used:",
            &format!("{}; expires after {limit} days unused)", ago(t)),
        );
    }
    if j["logged_in_at"].is_u64() {
        for t in acct.provider.transports() {
            line(
                &format!("{t} token:"),
                &access_token(&j["access_tokens"][t.as_str()]),
            );
        }
    }
    let q = &j["queue"];
    line(
        "queue:",
        &format!("{} queued, {} failed", q["queued"], q["failed"]),
    );
    line(
        "ready:",
        match j["ready"].as_bool() {
            Some(true) => "yes: a send works without a human",
            _ => "no: a login is needed",
        },
    );
    out
}
