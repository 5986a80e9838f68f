//! The device-code flow (RFC 8628): print a code and a URL, poll until the user signs in.
//!
//! For machines without a browser (ssh, servers). Polling honours the server's interval and
//! `slow_down` (oauth2 adds 5 s each time), and gives up after `--timeout`. The device code
//! is a secret; the user code is meant to be shown.

use super::{Account, EntraClient, EntraTokenResponse};
use crate::error::{Error, Exit, Result};
use oauth2::{DeviceCodeErrorResponseType, StandardDeviceAuthorizationResponse};
use oauth2::{RequestTokenError, Scope};
use std::time::Duration;

pub async fn login(
    acct: &Account,
    client: &EntraClient,
    scopes: &[String],
    timeout: Duration,
) -> Result<EntraTokenResponse> {
    let http = acct.http()?;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes.iter().cloned().map(Scope::new))
        .request_async(&http)
        .await
        .map_err(|e| super::request_error(acct, e, "starting the device-code sign-in"))?;
    eprintln!(
        "To sign in, open {} in a browser on any device and enter the code {}",
        details.verification_uri().as_str(),
        details.user_code().secret()
    );
    eprintln!("Waiting up to {} s for the sign-in…", timeout.as_secs());
    client
        .exchange_device_access_token(&details)
        .request_async(&http, tokio::time::sleep, Some(timeout))
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => {
                let description = r.error_description().cloned();
                let base = match r.error() {
                    DeviceCodeErrorResponseType::AccessDenied => {
                        Error::new(Exit::NoPerm, "the device-code sign-in was denied")
                    }
                    // Entra's own word for a user who pressed "No" on the sign-in page.
                    other if other.as_ref() == "authorization_declined" => {
                        Error::new(Exit::NoPerm, "the device-code sign-in was declined")
                    }
                    DeviceCodeErrorResponseType::ExpiredToken => {
                        Error::temp("the device code expired before the sign-in was completed")
                    }
                    other => {
                        let entra =
                            super::errors::EntraError::new(other.as_ref(), description.as_deref());
                        let (login, client_id, tenant) = acct.error_context();
                        let ctx = super::errors::Context {
                            login_command: &login,
                            client_id: &client_id,
                            tenant: &tenant,
                        };
                        return super::errors::explain(&entra, "the device-code sign-in", &ctx);
                    }
                };
                let base = match description {
                    Some(d) => base.why(d.lines().next().unwrap_or_default().trim().to_owned()),
                    None => base,
                };
                base.fix(format!(
                    "run the login again and complete it in time: {}",
                    acct.login_command()
                ))
            }
            RequestTokenError::Request(e) => {
                super::network_error(acct, "polling for the device-code sign-in", &e)
            }
            RequestTokenError::Parse(e, _) => Error::new(
                Exit::Unavailable,
                "the identity provider sent an unreadable answer while polling",
            )
            .why(format!("unexpected JSON at `{}`", e.path()))
            .fix("check --authority"),
            RequestTokenError::Other(msg) => Error::temp(format!(
                "no sign-in arrived within {} s ({msg})",
                timeout.as_secs()
            ))
            .fix(format!(
                "run the login again (--timeout SECS gives more time): {}",
                acct.login_command()
            )),
        })
}
