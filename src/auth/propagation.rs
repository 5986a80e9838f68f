//! A new app registration reaches the identity provider's token servers a minute or two
//! after it was made; until then they answer that the app does not exist (Entra:
//! AADSTS700016). A login right after `mailer app create`, or after a registration in the
//! portal, waits for it here, bounded and saying so, instead of failing or leaving a browser
//! on an error page until the login times out. Which answer means "not known yet" is the
//! provider's to say ([`crate::provider::Provider::app_unknown`]).

use super::Account;
use super::errors::TokenError;
use crate::error::{Error, Result};
use crate::output::Printer;
use std::time::{Duration, Instant};

/// How long a login waits for a new app before giving up.
pub const LIMIT: Duration = Duration::from_secs(180);
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(10);

/// Runs `op` until its answer is anything but "the app is not known yet", within [`LIMIT`].
pub async fn retry_while_unknown<T>(
    acct: &Account,
    printer: &Printer,
    mut op: impl AsyncFnMut() -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    let mut wait = FIRST_WAIT;
    let mut told = false;
    loop {
        match op().await {
            Err(e) if acct.provider.app_unknown(e.code.as_deref()) => {
                if started.elapsed() + wait > LIMIT {
                    return Err(still_unknown(acct, e));
                }
                if !told {
                    printer.say(format!(
                        "Waiting for the identity provider to know the app {} (a new app takes a minute or two)…",
                        acct.profile.client_id
                    ));
                    told = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            result => return result,
        }
    }
}

/// Waits until the token endpoint knows the profile's app, before a browser opens for it.
/// The question is a redemption of a code that cannot be valid: the answer names the app
/// as unknown, or refuses the code (the app is known).
pub async fn wait_until_known(acct: &Account, printer: &Printer) -> Result<()> {
    retry_while_unknown(acct, printer, async || probe(acct).await).await
}

async fn probe(acct: &Account) -> Result<()> {
    let form = [
        ("client_id", acct.profile.client_id.as_str()),
        ("grant_type", "authorization_code"),
        ("code", "mailer-propagation-probe"),
        ("redirect_uri", "http://localhost"),
        (
            "code_verifier",
            "mailer-propagation-probe-mailer-propagation-probe",
        ),
    ];
    let (_, body) = super::post_form(acct, &form, "checking that the app is known").await?;
    match serde_json::from_slice::<TokenError>(&body) {
        Ok(e) => match acct.provider.explain(&e, "checking the app", &acct.fill()) {
            e if acct.provider.app_unknown(e.code.as_deref()) => Err(e),
            _ => Ok(()),
        },
        // Not an error answer at all: nothing says the app is unknown.
        Err(_) => Ok(()),
    }
}

fn still_unknown(acct: &Account, last: Error) -> Error {
    Error::temp(format!(
        "the identity provider still does not know the app {} after {} s",
        acct.profile.client_id,
        LIMIT.as_secs()
    ))
    .why("a new app registration takes a while to reach every token server")
    .fix(format!(
        "wait a few minutes, then run the login again: {}",
        acct.login_command()
    ))
    .code(last.code.unwrap_or_default())
}
