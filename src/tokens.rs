//! The token lifecycle: where a profile's login stands ([`TokenState`], computed once per
//! use), and how an access token is had ([`access_token`]): from the kernel cache, from the
//! token store, or renewed with the refresh token or the app's credential.
//!
//! Renewal runs under the per-profile [`ProfileLock`] and re-reads the store after taking
//! it, because another process may have rotated the refresh token meanwhile; the rotated
//! refresh token is saved before the new access token is used. An access token is reused
//! until [`EXPIRY_MARGIN`] seconds before it expires, so a cron job does not call the token
//! endpoint on every run. `send`, `token`, `status` and `doctor` read the same state.
//! Nothing here prints a token; [`Tokens`] hands them to transports.

use crate::auth::{self, Account};
use crate::config::TransportKind;
use crate::error::Result;
use crate::secret::Secret;
use crate::store::{CachedToken, ProfileLock, Record};
use crate::transport::{TokenFuture, TokenSource};
use std::time::{SystemTime, UNIX_EPOCH};

/// An access token is reused until this many seconds before it expires.
pub const EXPIRY_MARGIN: u64 = 300;
/// Warn this many days before an unused refresh token expires.
pub const IDLE_WARNING_DAYS: u64 = 14;

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Where one transport's token stands, without touching the network.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenState {
    /// A cached access token valid for more than [`EXPIRY_MARGIN`] seconds.
    Fresh(CachedToken),
    /// No usable access token, but a refresh token that can mint one without a human.
    Refreshable(Secret),
    /// A refresh token unused for longer than the provider keeps them: renewing will most
    /// likely fail, and a person should log in again. The provider has the last word.
    IdleExpired {
        refresh_token: Secret,
        last_used: u64,
    },
    /// App-only: minted from the app's own credential, there is no refresh token.
    AppOnly,
    /// Nothing a machine can renew.
    NeedsLogin(Missing),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No record in the token store.
    NothingStored,
    /// A record without a refresh token (it was never issued one).
    NoRefreshToken,
}

/// How long the refresh token has been idle, against the provider's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// The provider keeps unused refresh tokens forever, or nothing says when it was used.
    Unlimited,
    Ok {
        days: u64,
        days_left: u64,
    },
    /// Within [`IDLE_WARNING_DAYS`] of the limit: `mailer token --refresh` renews it.
    Soon {
        days: u64,
        days_left: u64,
    },
    Expired {
        days: u64,
    },
}

impl TokenState {
    /// `use_cached`: whether a cached access token counts (not when the server just
    /// rejected it).
    pub fn of(
        acct: &Account,
        record: Option<&Record>,
        transport: TransportKind,
        now: u64,
        use_cached: bool,
    ) -> TokenState {
        let Some(r) = record else {
            return TokenState::NeedsLogin(Missing::NothingStored);
        };
        let app_only = acct.profile.flow.is_app_only();
        // A dead login outranks a cached token: the token has an hour left at most, and
        // whoever watches `status` must learn now that a person is needed.
        if let (Some(rt), false, Idle::Expired { .. }) =
            (&r.refresh_token, app_only, idle(acct, Some(r), now))
        {
            return TokenState::IdleExpired {
                refresh_token: rt.clone(),
                last_used: r.refresh_token_used_at.unwrap_or_default(),
            };
        }
        if let Some(t) = r.cached(transport).filter(|t| use_cached && fresh(t, now)) {
            return TokenState::Fresh(t.clone());
        }
        if app_only {
            return TokenState::AppOnly;
        }
        match &r.refresh_token {
            Some(rt) => TokenState::Refreshable(rt.clone()),
            None => TokenState::NeedsLogin(Missing::NoRefreshToken),
        }
    }

    /// A send can get a token without a human (as far as anyone can tell locally).
    pub fn is_ready(&self) -> bool {
        matches!(
            self,
            TokenState::Fresh(_) | TokenState::Refreshable(_) | TokenState::AppOnly
        )
    }
}

/// An access token good for more than [`EXPIRY_MARGIN`] seconds: one a send would use.
pub fn fresh(t: &CachedToken, now: u64) -> bool {
    t.expires_at > now + EXPIRY_MARGIN
}

/// A login is on record: a refresh token, or for app-only the app's own credential.
pub fn has_login(acct: &Account, record: Option<&Record>) -> bool {
    record.is_some_and(|r| acct.profile.flow.is_app_only() || r.refresh_token.is_some())
}

/// Days an unused login lives for this profile: the provider's rule, for flows that have a
/// refresh token at all.
pub fn idle_limit_days(acct: &Account) -> Option<u64> {
    acct.provider
        .idle_limit_days()
        .filter(|_| !acct.profile.flow.is_app_only())
}

/// The refresh token's idle time against the provider's limit.
pub fn idle(acct: &Account, record: Option<&Record>, now: u64) -> Idle {
    let used = record.and_then(|r| r.refresh_token_used_at);
    let (Some(limit), Some(used)) = (idle_limit_days(acct), used) else {
        return Idle::Unlimited;
    };
    let days = now.saturating_sub(used) / 86_400;
    match limit.checked_sub(days) {
        None | Some(0) => Idle::Expired { days },
        Some(left) if left <= IDLE_WARNING_DAYS => Idle::Soon {
            days,
            days_left: left,
        },
        Some(left) => Idle::Ok {
            days,
            days_left: left,
        },
    }
}

/// A valid access token for `transport`: cached, or renewed. With `force` a cached token
/// is not trusted (the server just rejected it) and a new one is minted.
pub async fn access_token(
    acct: &Account,
    transport: TransportKind,
    force: bool,
) -> Result<CachedToken> {
    let now = now();
    if !force {
        // The fast path takes no lock: a cron job with a cached token does no locking.
        if let Some(t) = acct.cache.get(transport).filter(|t| fresh(t, now)) {
            tracing::debug!(profile = %acct.name, %transport, "using the kernel-cached access token");
            return Ok(t);
        }
        let record = acct.store.load()?;
        if let TokenState::Fresh(t) = TokenState::of(acct, record.as_ref(), transport, now, true) {
            tracing::debug!(profile = %acct.name, %transport, "using the stored access token");
            acct.cache.put(transport, &t, now);
            return Ok(t);
        }
    }
    let _lock = ProfileLock::acquire(&acct.name)?;
    // Re-read under the lock: another process may have renewed (and rotated) meanwhile.
    let record = acct.store.load()?;
    let state = TokenState::of(acct, record.as_ref(), transport, now, !force);
    let (record, cached) = match (state, record) {
        (TokenState::Fresh(t), _) => return Ok(t),
        (TokenState::NeedsLogin(_), _) | (_, None) => return Err(acct.not_logged_in()),
        (state, Some(record)) => Renewal { state, record },
    }
    .run(acct, transport)
    .await?;
    // The rotated refresh token is saved before the access token is handed out; one that
    // cannot be kept is said loudly, never dropped in silence.
    acct.store
        .save(&record)
        .map_err(|e| not_kept(acct, e, record.refresh_token.is_some()))?;
    acct.cache.put(transport, &cached, now);
    Ok(cached)
}

/// The identity provider renewed the login, and the store would not take the result.
fn not_kept(acct: &Account, e: crate::error::Error, rotated: bool) -> crate::error::Error {
    let store = acct.store.describe();
    let mut why = e.what.clone();
    if let Some(w) = &e.why {
        why = format!("{why} ({w})");
    }
    crate::error::Error::io(format!(
        "the login was renewed, but {store} could not keep the new tokens"
    ))
    .why(why)
    .fix(format!(
        "{}; then run `mailer{} token --refresh` to keep a fresh login.{}",
        e.fix.unwrap_or_else(|| format!("make {store} writable again")),
        acct.profile_flag(),
        match rotated {
            true => format!(
                " The refresh token stored before is still there, and the identity provider usually accepts it once more; if it was refused, log in again: {}",
                acct.login_command()
            ),
            false => String::new(),
        }
    ))
}

/// A renewal to do: the state says how, the record is what it updates.
struct Renewal {
    state: TokenState,
    record: Record,
}

impl Renewal {
    async fn run(
        mut self,
        acct: &Account,
        transport: TransportKind,
    ) -> Result<(Record, CachedToken)> {
        let answer = match &self.state {
            TokenState::AppOnly => {
                tracing::debug!(profile = %acct.name, %transport, "minting an app-only token");
                auth::mint(acct, &self.record, transport).await?
            }
            TokenState::Refreshable(rt)
            | TokenState::IdleExpired {
                refresh_token: rt, ..
            } => {
                tracing::debug!(profile = %acct.name, %transport, "refreshing the access token");
                auth::refresh(acct, &self.record, rt, transport)
                    .await
                    .map_err(|e| {
                        acct.provider
                            .refresh_failed(e, &self.record, now(), &acct.fill())
                    })?
            }
            TokenState::Fresh(_) | TokenState::NeedsLogin(_) => {
                return Err(acct.not_logged_in());
            }
        };
        let cached = auth::apply_response(&mut self.record, transport, &answer, now());
        Ok((self.record, cached))
    }
}

/// The token source a transport is given: one transport's tokens for one profile.
pub struct Tokens<'a> {
    acct: &'a Account,
    transport: TransportKind,
    rejected: bool,
}

impl<'a> Tokens<'a> {
    pub fn new(acct: &'a Account, transport: TransportKind) -> Tokens<'a> {
        Tokens {
            acct,
            transport,
            rejected: false,
        }
    }
}

impl TokenSource for Tokens<'_> {
    fn token(&mut self) -> TokenFuture<'_> {
        Box::pin(async move {
            let force = std::mem::take(&mut self.rejected);
            Ok(access_token(self.acct, self.transport, force).await?.token)
        })
    }

    fn rejected(&mut self) {
        self.rejected = true;
        self.acct.cache.remove(self.transport);
    }
}

/// The claims of a JWT access token, decoded but never verified (only the issuer can, and
/// the server that takes the token does): for diagnosis only. `None` for opaque tokens,
/// such as those of personal Microsoft accounts.
pub fn claims(token: &Secret) -> Option<serde_json::Value> {
    use base64::Engine;
    let mut parts = token.expose().split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v.is_object())
}
