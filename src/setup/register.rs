//! Registering mailer's app in the user's tenant through Microsoft Graph, as the portal's 20
//! clicks would: the application, its service principal, the permissions read by name from
//! the resource service principals (never hard-coded ids alone), consent when the user may
//! grant it, and for daemons a certificate or secret credential.
//!
//! Graph v1.0: `POST /applications`, `POST /servicePrincipals`, `GET
//! /servicePrincipals(appId='…')`, `POST /oauth2PermissionGrants` (tenant-wide delegated
//! consent), `POST /servicePrincipals/{id}/appRoleAssignedTo` (application permissions),
//! `POST /applications/{id}/addPassword`. The caller's token is the bootstrap client's and is
//! never stored.

use super::certificate::{self, NewCertificate};
pub use super::directory::{Directory, GraphFailure};
use crate::error::{Error, Result};
use crate::output::Printer;
use crate::secret::Secret;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

pub const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
pub const EXCHANGE_APP: &str = "00000002-0000-0ff1-ce00-000000000000";

/// What to register.
pub struct Plan {
    pub name: String,
    /// `AzureADMyOrg`, or `AzureADandPersonalMicrosoftAccount` for personal accounts.
    pub audience: &'static str,
    pub app_only: bool,
    /// App-only with a client secret instead of a certificate.
    pub secret: bool,
    pub credential_days: u32,
    pub large_attachments: bool,
    pub grant_consent: bool,
    pub tenant_id: String,
    /// The login host, for the admin-consent URL.
    pub authority: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Needed,
}

pub enum Credential {
    Certificate(NewCertificate),
    Secret(Secret),
}

pub struct Registered {
    pub client_id: String,
    pub object_id: String,
    pub sp_id: String,
    pub consent: Consent,
    pub admin_consent_url: String,
    pub credential: Option<Credential>,
    pub credential_expires: Option<u64>,
    /// What the user should know (an admin step, a missing resource).
    pub notes: Vec<String>,
}

/// A permission's id on a resource, by its value: `oauth2PermissionScopes` (delegated) or
/// `appRoles` (application).
fn permission_id(resource: &Value, value: &str, role: bool) -> Result<String> {
    let list = if role {
        "appRoles"
    } else {
        "oauth2PermissionScopes"
    };
    resource[list]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["value"].as_str() == Some(value))
        .and_then(|p| p["id"].as_str().map(str::to_owned))
        .ok_or_else(|| {
            Error::refused(format!(
                "{} offers no {} permission named {value}",
                resource["displayName"].as_str().unwrap_or("the API"),
                if role { "application" } else { "delegated" }
            ))
            .fix("register the app by hand: `mailer app instructions`")
        })
}

/// The delegated permissions of each resource a mailer login asks for.
fn delegated(plan: &Plan) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut graph = vec!["Mail.Send", "offline_access", "openid", "profile", "email"];
    if plan.large_attachments {
        graph.push("Mail.ReadWrite");
    }
    (graph, vec!["SMTP.Send"])
}

pub async fn register(dir: &Directory<'_>, plan: &Plan, printer: &Printer) -> Result<Registered> {
    let graph = dir.resource(GRAPH_APP).await?.ok_or_else(|| {
        Error::refused("this tenant has no Microsoft Graph service principal")
            .fix("check --graph-url and the tenant")
    })?;
    let exchange = dir.resource(EXCHANGE_APP).await?;
    let mut notes = Vec::new();
    let (body, mut credential) = application(plan, &graph, exchange.as_ref(), &mut notes)?;
    let app = match dir.call(Method::POST, "/applications", Some(body)).await? {
        Ok(v) => v,
        Err(f) if f.code == "Authorization_RequestDenied" => return Err(not_allowed(f)),
        Err(f) => return Err(f.into_error("registering the app")),
    };
    let (object_id, client_id) = (field(&app, "id")?, field(&app, "appId")?);
    printer.say(format!(
        "Registered the app \"{}\" (client id {client_id}).",
        plan.name
    ));
    let sp_id = field(&service_principal(dir, &client_id).await?, "id")?;
    let mut credential_expires = match &credential {
        Some(Credential::Certificate(c)) => Some(c.not_after),
        _ => None,
    };
    if plan.app_only && plan.secret {
        let (secret, end) = add_password(dir, &object_id, plan.credential_days).await?;
        credential_expires = Some(end);
        credential = Some(Credential::Secret(secret));
    }
    let consent = match plan.grant_consent {
        false => Consent::Needed,
        true => grant(dir, plan, &sp_id, &graph, exchange.as_ref(), &mut notes).await?,
    };
    Ok(Registered {
        admin_consent_url: format!(
            "{}/{}/adminconsent?client_id={client_id}",
            plan.authority.trim_end_matches('/'),
            plan.tenant_id
        ),
        client_id,
        object_id,
        sp_id,
        consent,
        credential,
        credential_expires,
        notes,
    })
}

/// The `POST /applications` body, and the certificate made for it (app-only): a public
/// client with a loopback redirect for a person, or a confidential one for a daemon.
fn application(
    plan: &Plan,
    graph: &Value,
    exchange: Option<&Value>,
    notes: &mut Vec<String>,
) -> Result<(Value, Option<Credential>)> {
    let mut body = json!({
        "displayName": plan.name,
        "signInAudience": plan.audience,
        "requiredResourceAccess": required_access(plan, graph, exchange, notes)?,
    });
    let mut credential = None;
    if plan.app_only && !plan.secret {
        let cert = certificate::generate(&plan.name, plan.credential_days)?;
        body["keyCredentials"] = json!([key_credential(&cert)]);
        credential = Some(Credential::Certificate(cert));
    }
    if !plan.app_only {
        body["publicClient"] = json!({ "redirectUris": ["http://localhost"] });
        body["isFallbackPublicClient"] = json!(true);
    }
    Ok((body, credential))
}

fn field(v: &Value, k: &str) -> Result<String> {
    v[k].as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::refused(format!("Graph's answer lacks {k}")))
}

/// `requiredResourceAccess`: the permissions by the ids the resources publish for them.
fn required_access(
    plan: &Plan,
    graph: &Value,
    exchange: Option<&Value>,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let access = |res: &Value, values: &[&str], role: bool| -> Result<Value> {
        let ids = values
            .iter()
            .map(|v| Ok(json!({ "id": permission_id(res, v, role)?, "type": if role { "Role" } else { "Scope" } })))
            .collect::<Result<Vec<_>>>()?;
        Ok(json!({ "resourceAppId": res["appId"], "resourceAccess": ids }))
    };
    if plan.app_only {
        return Ok(vec![access(graph, &["Mail.Send"], true)?]);
    }
    let (graph_scopes, exchange_scopes) = delegated(plan);
    let mut required = vec![access(graph, &graph_scopes, false)?];
    match exchange {
        Some(exo) => required.push(access(exo, &exchange_scopes, false)?),
        None => notes.push("this tenant has no Exchange Online service principal: SMTP.Send was not added, so only Graph can send".to_owned()),
    }
    Ok(required)
}

fn key_credential(cert: &NewCertificate) -> Value {
    use base64::Engine;
    json!({
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
        "key": base64::engine::general_purpose::STANDARD.encode(&cert.cert_der),
        "displayName": "mailer",
        "endDateTime": crate::output::rfc3339(cert.not_after),
    })
}

fn not_allowed(f: GraphFailure) -> Error {
    Error::refused("your account may not register apps in this tenant")
        .why(format!("Graph answered {} {} (request-id {})", f.status, f.code, f.request_id))
        .fix("ask an admin for the Application Developer role (Entra admin center > Roles & admins), or to register it by hand: `mailer app instructions` prints the steps")
        .code(f.code)
}

/// The app's service principal; a new app can take a moment to be found (bounded).
async fn service_principal(dir: &Directory<'_>, client_id: &str) -> Result<Value> {
    let mut wait = Duration::from_millis(500);
    for _ in 0..8 {
        match dir
            .call(
                Method::POST,
                "/servicePrincipals",
                Some(json!({ "appId": client_id })),
            )
            .await?
        {
            Ok(v) => return Ok(v),
            // Graph answers 400 "does not reference a valid application object" until the
            // new app has replicated.
            Err(f)
                if f.status == 404
                    || (f.status == 400
                        && f.message.contains("does not reference a valid application")) =>
            {
                tracing::info!("the new app is not replicated yet; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(15));
            }
            Err(f) if f.status == 409 => {
                let path = format!("/servicePrincipals(appId='{client_id}')");
                return dir
                    .call(Method::GET, &path, None)
                    .await?
                    .map_err(|f| f.into_error("reading the app's service principal"));
            }
            Err(f) => return Err(f.into_error("creating the app's service principal")),
        }
    }
    Err(
        Error::temp("the new app's service principal could not be created yet")
            .fix("run `mailer app create` again in a minute"),
    )
}

async fn add_password(dir: &Directory<'_>, object_id: &str, days: u32) -> Result<(Secret, u64)> {
    let end = crate::tokens::now() + u64::from(days) * 86_400;
    let body = json!({ "passwordCredential": { "displayName": "mailer", "endDateTime": crate::output::rfc3339(end) } });
    let v = dir
        .call(
            Method::POST,
            &format!("/applications/{object_id}/addPassword"),
            Some(body),
        )
        .await?
        .map_err(|f| f.into_error("creating the client secret"))?;
    let secret = v["secretText"]
        .as_str()
        .ok_or_else(|| Error::refused("Graph made a secret but did not say it"))?;
    let end = v["endDateTime"]
        .as_str()
        .and_then(crate::output::parse_rfc3339)
        .unwrap_or(end);
    Ok((Secret::new(secret), end))
}

/// Tenant-wide consent: delegated grants, or the app roles of an app-only app. A user who
/// may not grant it gets `Needed`, and the admin-consent URL says what an admin clicks.
async fn grant(
    dir: &Directory<'_>,
    plan: &Plan,
    sp_id: &str,
    graph: &Value,
    exchange: Option<&Value>,
    notes: &mut Vec<String>,
) -> Result<Consent> {
    let mut calls: Vec<(String, Value)> = Vec::new();
    if plan.app_only {
        let role = permission_id(graph, "Mail.Send", true)?;
        calls.push((
            format!(
                "/servicePrincipals/{}/appRoleAssignedTo",
                graph["id"].as_str().unwrap_or_default()
            ),
            json!({ "principalId": sp_id, "resourceId": graph["id"], "appRoleId": role }),
        ));
    } else {
        let (graph_scopes, exchange_scopes) = delegated(plan);
        let grant = |res: &Value, scopes: &[&str]| json!({ "clientId": sp_id, "consentType": "AllPrincipals", "resourceId": res["id"], "scope": scopes.join(" ") });
        calls.push((
            "/oauth2PermissionGrants".into(),
            grant(graph, &graph_scopes),
        ));
        if let Some(exo) = exchange {
            calls.push((
                "/oauth2PermissionGrants".into(),
                grant(exo, &exchange_scopes),
            ));
        }
    }
    for (path, body) in calls {
        match dir.call(Method::POST, &path, Some(body)).await? {
            Ok(_) | Err(GraphFailure { status: 409, .. }) => {}
            Err(f) if f.status == 403 => {
                notes.push(format!("you may not grant tenant-wide consent ({}): an admin opens the admin-consent URL below", f.code));
                return Ok(Consent::Needed);
            }
            Err(f) => return Err(f.into_error("granting consent")),
        }
    }
    Ok(Consent::Granted)
}
