//! The device-code flow (RFC 8628): print a code and a URL, poll until the user signs in.
//!
//! For machines without a browser (ssh, servers). Polling honours the server's interval and
//! `slow_down` (oauth2 adds 5 s each time), and gives up after `--timeout`. The device code
//! is a secret; the user code is meant to be shown.

use super::errors::TokenError;
use super::login::Options;
use super::{Account, TokenAnswer};
use crate::error::{Error, Result};
use crate::secret::Secret;
use oauth2::{DeviceCodeErrorResponseType, StandardDeviceAuthorizationResponse};
use oauth2::{RequestTokenError, Scope, StandardErrorResponse};

pub async fn sign_in(
    acct: &Account,
    secret: Option<&Secret>,
    scopes: &[String],
    opts: &Options<'_>,
) -> Result<TokenAnswer> {
    let client = acct.oauth_client(secret)?;
    let http = acct.http()?;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .request_async(http)
        .await
        .map_err(|e| super::request_error(acct, e, "starting the device-code sign-in"))?;
    opts.printer.tell(format!(
        "To sign in, open {} in a browser on any device and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    ));
    opts.printer.say(format!(
        "Waiting up to {} s for the sign-in…",
        opts.timeout.as_secs()
    ));
    client
        .exchange_device_access_token(&details)
        .request_async(http, tokio::time::sleep, Some(opts.timeout))
        .await
        .map_err(|e| poll_error(acct, e, opts.timeout.as_secs()))
}

type PollError<RE> = RequestTokenError<RE, StandardErrorResponse<DeviceCodeErrorResponseType>>;

fn poll_error<RE: std::error::Error + 'static>(
    acct: &Account,
    e: PollError<RE>,
    secs: u64,
) -> Error {
    let again = format!(
        "run the login again and complete it in time: {}",
        acct.login_command()
    );
    match e {
        RequestTokenError::ServerResponse(r) => {
            let description = r.error_description().cloned();
            let base = match r.error() {
                DeviceCodeErrorResponseType::AccessDenied => {
                    Error::login_needed("the device-code sign-in was denied")
                }
                // Entra's own word for a user who pressed "No" on the sign-in page.
                other if other.as_ref() == "authorization_declined" => {
                    Error::login_needed("the device-code sign-in was declined")
                }
                DeviceCodeErrorResponseType::ExpiredToken => {
                    Error::temp("the device code expired before the sign-in was completed")
                }
                other => {
                    let e = TokenError::new(other.as_ref(), description.as_deref());
                    return acct
                        .provider
                        .explain(&e, "the device-code sign-in", &acct.fill());
                }
            };
            let base = match description {
                Some(d) => base.why(d.lines().next().unwrap_or_default().trim().to_owned()),
                None => base,
            };
            base.fix(again)
        }
        RequestTokenError::Request(e) => {
            super::network_error(acct, "polling for the device-code sign-in", &e)
        }
        RequestTokenError::Parse(e, _) => {
            Error::refused("the identity provider sent an unreadable answer while polling")
                .why(format!("unexpected JSON at `{}`", e.path()))
                .fix("check --authority")
        }
        RequestTokenError::Other(msg) => {
            Error::temp(format!("no sign-in arrived within {secs} s ({msg})")).fix(format!(
                "run the login again (--timeout SECS gives more time): {}",
                acct.login_command()
            ))
        }
    }
}
