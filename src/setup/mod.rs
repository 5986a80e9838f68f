//! Getting set up without the portal (Microsoft Entra): find the tenant and cloud from the
//! address ([`discover`]), register the app from the command line ([`register`], signed in
//! with a bootstrap client whose token is used once and never stored), or print the
//! portal steps filled in ([`instructions`]). `mailer setup` strings these together with a
//! login and a test send; the questions it asks are `cmd/setup.rs`'s.

pub mod certificate;
pub mod directory;
pub mod discover;
pub mod instructions;
pub mod register;

use crate::auth::{self, Account};
use crate::config::{Cloud, Flow, Profile};
use crate::error::Result;
use crate::secret::Secret;
use std::path::Path;

/// Microsoft Graph Command Line Tools (the client of `Connect-MgGraph`): a public client
/// with a loopback redirect that may ask for `Application.ReadWrite.All` on the fly.
pub const BOOTSTRAP_CLIENT: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";

/// Where and as whom the bootstrap sign-in happens.
pub struct Bootstrap<'a> {
    pub client_id: String,
    pub tenant: String,
    pub cloud: Cloud,
    pub user: Option<String>,
    pub authority: Option<String>,
    pub graph_url: Option<String>,
    /// Extra trusted roots (TLS inspection): the bootstrap sign-in and every directory call
    /// go through the same proxy as the login that follows.
    pub ca_file: Option<std::path::PathBuf>,
    pub device_code: bool,
    pub opts: auth::login::Options<'a>,
}

/// The Graph permissions app registration needs, for the bootstrap sign-in.
fn bootstrap_scopes(graph: &str, grant_consent: bool, app_only: bool) -> Vec<String> {
    let mut s = vec![format!("{graph}/Application.ReadWrite.All")];
    if grant_consent {
        s.push(format!(
            "{graph}/{}",
            if app_only {
                "AppRoleAssignment.ReadWrite.All"
            } else {
                "DelegatedPermissionGrant.ReadWrite.All"
            }
        ));
    }
    s
}

/// Signs in with the bootstrap client and returns its Graph token (kept in memory only),
/// and the account it signed in with (for its endpoints and HTTP client).
pub async fn bootstrap_token(
    b: &Bootstrap<'_>,
    grant_consent: bool,
    app_only: bool,
    config_path: &Path,
) -> Result<(Account, Secret)> {
    let graph = crate::provider::microsoft::cloud_info(b.cloud).graph;
    let profile = Profile {
        tenant: b.tenant.clone(),
        client_id: b.client_id.clone(),
        user: b.user.clone().unwrap_or_default(),
        cloud: b.cloud,
        flow: if b.device_code {
            Flow::DeviceCode
        } else {
            Flow::AuthorizationCode
        },
        authority: b.authority.clone(),
        graph_url: b.graph_url.clone(),
        ca_file: b.ca_file.clone(),
        scopes: Some(bootstrap_scopes(graph, grant_consent, app_only)),
        ..Profile::default()
    };
    let acct = Account::new("bootstrap", profile, config_path)?;
    b.opts.printer.say(
        "Sign in as a user who may register apps (the sign-in is used for this command only).",
    );
    let answer = auth::login::first_token(&acct, &b.opts).await.map_err(|e| match e.code.as_deref() {
        // Application.ReadWrite.All needs an admin's approval for the bootstrap client in
        // most tenants: the way on is an admin, or the portal steps.
        Some("AADSTS65001" | "AADSTS90094" | "AADSTS90095" | "AADSTS900941") => e
            .fix(format!(
                "ask an admin to run `mailer app create` (or approve \"Microsoft Graph Command Line Tools\" for Application.ReadWrite.All), pass --bootstrap-client-id for a client your tenant allows, or register the app by hand: mailer app instructions{}",
                b.user.as_deref().map(|u| format!(" --user {u}")).unwrap_or_default()
            )),
        _ => e,
    })?;
    use oauth2::TokenResponse;
    let token = Secret::new(answer.access_token().secret().clone());
    Ok((acct, token))
}
