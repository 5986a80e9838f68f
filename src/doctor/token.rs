//! What an access token says of itself, decoded (never verified, never printed): the
//! `access-token-*` checks. The claims are Entra's (v1.0 access tokens: `aud`, `scp` or
//! `roles`, `upn`, `tid`); a token that is not a JWT (personal accounts) is opaque and only
//! its lifetime is known.

use super::Check;
use crate::auth::Account;
use crate::error::Class;
use crate::output::fmt_time;
use crate::secret::Secret;
use crate::store::Record;
use crate::tokens;
use crate::transport::TransportKind;

/// Tokens longer than this break SMTP clients with line-length limits (RFC 5321 allows
/// 998 characters per line; many clients cap the AUTH line around 4 KB).
const LONG_TOKEN: usize = 4096;

/// Without the network: the cached tokens there are, decoded.
pub fn cached_tokens(acct: &Account, record: Option<&Record>) -> Vec<Check> {
    let now = tokens::now();
    acct.provider
        .transports()
        .iter()
        .filter_map(|&t| {
            let cached = acct.cache.get(t).or_else(|| record?.cached(t).cloned())?;
            (cached.expires_at > now)
                .then(|| token_check(acct, t, &cached.token, cached.expires_at, None))
        })
        .collect()
}

pub fn check_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Graph => "access-token-graph",
        TransportKind::Smtp => "access-token-smtp",
        TransportKind::Gmail => "access-token-gmail",
    }
}

/// What a transport's access token says of itself: audience, permissions, user, tenant,
/// lifetime and size. Decoded, never verified, never printed. `tenant_id`: the profile's
/// tenant GUID as discovery found it, for a profile that names its tenant by domain.
pub fn token_check(
    acct: &Account,
    t: TransportKind,
    token: &Secret,
    expires_at: u64,
    tenant_id: Option<&str>,
) -> Check {
    let name = check_name(t);
    let size = token.expose().len();
    let life = format!("valid until {}", fmt_time(expires_at));
    let Some(claims) = tokens::claims(token) else {
        return Check::ok(
            name,
            format!(
                "{life}; an opaque token (Google's, and Microsoft's for personal accounts), so its contents are not checked"
            ),
        );
    };
    if let Err((detail, fix)) = claims_match(acct, t, &claims, tenant_id) {
        return Check::fail(name, Class::LoginNeeded, detail, fix);
    }
    let mut detail = format!("{life}; for {}, {size} bytes", claims_summary(&claims));
    if size > LONG_TOKEN && t == TransportKind::Smtp {
        detail.push_str(" (over 4 KB: SMTP clients other than mailer may cut such an AUTH line)");
    }
    Check::ok(name, detail)
}

fn claims_summary(c: &serde_json::Value) -> String {
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
    match c["roles"].as_array() {
        Some(roles) if c["scp"].is_null() => format!(
            "{} (roles {})",
            s("aud"),
            roles
                .iter()
                .filter_map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ),
        _ => format!("{} (scopes {})", s("aud"), s("scp")),
    }
}

/// A check's failure: what is wrong, and the fix.
type Mismatch = (String, String);

/// The claims a transport needs, checked against the profile: audience, permission, user,
/// tenant, in that order (the first that is wrong is the one to fix first).
fn claims_match(
    acct: &Account,
    t: TransportKind,
    c: &serde_json::Value,
    tenant_id: Option<&str>,
) -> Result<(), Mismatch> {
    audience(acct, t, c)?;
    permission(acct, t, c)?;
    user(acct, t, c)?;
    tenant(acct, t, c, tenant_id)
}

fn audience(acct: &Account, t: TransportKind, c: &serde_json::Value) -> Result<(), Mismatch> {
    let resource = acct.provider.resource(&acct.profile, t);
    let aud = c["aud"].as_str().unwrap_or_default();
    if acct.provider.is_audience(aud, &resource) {
        return Ok(());
    }
    Err((
        format!("the {t} token is for {aud}, but {t} needs {resource}"),
        format!(
            "check --scopes, or log in again without it: {}",
            acct.login_command()
        ),
    ))
}

/// App-only tokens carry application permissions in `roles`, delegated ones scopes in `scp`.
fn permission(acct: &Account, t: TransportKind, c: &serde_json::Value) -> Result<(), Mismatch> {
    let needed = acct.provider.send_permission(&acct.profile, t);
    let has = match acct.profile.flow.is_app_only() {
        true => c["roles"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x.as_str() == Some(needed))),
        false => c["scp"]
            .as_str()
            .is_some_and(|s| s.split(' ').any(|x| x == needed)),
    };
    if has {
        return Ok(());
    }
    Err((
        format!("the {t} token does not carry the {needed} permission"),
        format!(
            "add {needed} to the app registration's API permissions (and grant consent), then: {}",
            acct.login_command()
        ),
    ))
}

fn user(acct: &Account, t: TransportKind, c: &serde_json::Value) -> Result<(), Mismatch> {
    let p = &acct.profile;
    if p.flow.is_app_only() {
        return Ok(());
    }
    let user = ["upn", "preferred_username", "unique_name", "email"]
        .iter()
        .find_map(|k| c[*k].as_str());
    match user.filter(|u| !u.eq_ignore_ascii_case(&p.user)) {
        None => Ok(()),
        Some(u) => Err((
            format!(
                "the {t} token is for {u}, but the profile sends as {}",
                p.user
            ),
            acct.login_command(),
        )),
    }
}

/// `tenant_id`: the GUID discovery found, for a profile that names its tenant by domain.
fn tenant(
    acct: &Account,
    t: TransportKind,
    c: &serde_json::Value,
    tenant_id: Option<&str>,
) -> Result<(), Mismatch> {
    let p = &acct.profile;
    let tid = c["tid"].as_str().unwrap_or_default();
    let expected = match crate::config::is_guid(&p.tenant) {
        true => Some(p.tenant.as_str()),
        false => tenant_id,
    };
    let Some(want) = expected.filter(|w| !tid.is_empty() && !tid.eq_ignore_ascii_case(w)) else {
        return Ok(());
    };
    let named = match want == p.tenant {
        true => want.to_owned(),
        false => format!("{} ({want})", p.tenant),
    };
    Err((
        format!("the {t} token was issued by tenant {tid}, not the profile's {named}"),
        acct.login_command(),
    ))
}
