//! The directory part of the fake Graph (a child module of `fake_graph.rs`, sharing its error
//! shape): `POST /v1.0/applications`, `POST /v1.0/applications/{id}/addPassword`,
//! `GET /v1.0/servicePrincipals(appId='…')`, `POST /v1.0/servicePrincipals`,
//! `POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo` and `POST /v1.0/oauth2PermissionGrants`,
//! as app registration from the command line uses them.
//!
//! Strict where Graph is and a sloppy client goes wrong: a delegated Graph token with
//! `Application.ReadWrite.All` for every call (403 `Authorization_RequestDenied` otherwise, as
//! for a tenant that blocks user app registration: [`super::FakeGraph::deny_app_registration`]);
//! consent grants need `DelegatedPermissionGrant.ReadWrite.All`, role assignments
//! `AppRoleAssignment.ReadWrite.All`, and both an admin ([`super::FakeGraph::set_admin`]); no
//! unknown JSON properties; permission ids that the resource's service principal really has
//! (Microsoft Graph and Office 365 Exchange Online, with their real ids: a client that
//! hard-codes a wrong id is caught); key credentials that are X.509 certificates; a new app's
//! service principal cannot be created for a few tries while the app replicates
//! ([`super::FakeGraph::set_sp_propagation`], 400 `Request_BadRequest` as Graph answers it).
//! What it registers reaches the fake Entra through [`EntraHooks`]: the new client, its
//! certificate or secret, its application permissions.
//!
//! Deliberately stricter than Graph: `requiredResourceAccess` ids are checked against the
//! resource (Graph stores unknown ids and fails later, at consent).

use super::json as reply;
use super::{
    Answer, GraphError, Validator, error, has_permission, invalid_token, parse_json_object,
    read_body, require_json,
};
use crate::support::fake_entra::EntraHooks;
use crate::support::http::percent_decode_path;
use crate::support::server::{Request, SharedState, Utc, now_secs, random_token, uuid};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use std::sync::MutexGuard;

const GRAPH_APP: &str = "00000003-0000-0000-c000-000000000000";
const EXCHANGE_APP: &str = "00000002-0000-0ff1-ce00-000000000000";

/// Microsoft Graph's delegated permissions (`oauth2PermissionScopes`), with their real ids.
const GRAPH_SCOPES: &[(&str, &str)] = &[
    ("e383f46e-2787-4529-855e-0e479a3ffac0", "Mail.Send"),
    ("024d486e-b451-40bb-833d-3e66d98c5c73", "Mail.ReadWrite"),
    ("7427e0e9-2fba-42fe-b0c0-848c9e6a8182", "offline_access"),
    ("37f7f235-527c-4136-accd-4a02d197296e", "openid"),
    ("14dad69e-099b-42c9-810b-d002981feec1", "profile"),
    ("64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0", "email"),
    ("e1fe6dd8-ba31-4d61-89e7-88639da4683d", "User.Read"),
    (
        "bdfbf15f-ee85-4955-8675-146e8e5296b5",
        "Application.ReadWrite.All",
    ),
];
/// Microsoft Graph's application permissions (`appRoles`).
const GRAPH_ROLES: &[(&str, &str)] = &[
    ("b633e1c5-b582-4048-a93e-9f11b44c7e96", "Mail.Send"),
    ("e2a3a72e-5f79-4c64-b1b1-878b674786c9", "Mail.ReadWrite"),
];
const EXCHANGE_SCOPES: &[(&str, &str)] = &[
    ("258f6531-6087-4cc4-bb90-092c5fb3ed3f", "SMTP.Send"),
    (
        "652390e4-393a-48de-9484-05f9b1212954",
        "IMAP.AccessAsUser.All",
    ),
];
const EXCHANGE_ROLES: &[(&str, &str)] =
    &[("dc890d15-9560-4a4c-9b7f-a736ec74ec40", "full_access_as_app")];

const INSUFFICIENT: &str = "Insufficient privileges to complete the operation.";

/// One registered application, as a test reads it back.
#[derive(Clone, Debug)]
pub struct DirApp {
    pub object_id: String,
    pub app_id: String,
    pub display_name: String,
    pub sign_in_audience: String,
    pub public_redirect_uris: Vec<String>,
    pub is_fallback_public_client: bool,
    /// `(resourceAppId, permission value, "Scope" | "Role")`.
    pub required: Vec<(String, String, String)>,
    pub key_credentials: Vec<DirKey>,
    pub passwords: Vec<DirPassword>,
    pub service_principal_id: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DirKey {
    pub key_id: String,
    pub end_date_time: Option<String>,
    /// base64 SHA-1 of the certificate, as Graph's `customKeyIdentifier`.
    pub thumbprint: String,
}

#[derive(Clone, Debug)]
pub struct DirPassword {
    pub key_id: String,
    pub end_date_time: String,
    pub hint: String,
}

#[derive(Clone, Debug)]
pub struct DirGrant {
    /// The client's service principal id.
    pub client_id: String,
    pub resource_id: String,
    pub scope: String,
    pub consent_type: String,
}

#[derive(Clone, Debug)]
pub struct DirRoleAssignment {
    pub principal_id: String,
    pub resource_id: String,
    pub app_role_id: String,
    /// The role's value (`Mail.Send`).
    pub value: String,
}

/// What the directory holds now.
#[derive(Clone, Debug, Default)]
pub struct DirectorySnapshot {
    pub apps: Vec<DirApp>,
    pub grants: Vec<DirGrant>,
    pub role_assignments: Vec<DirRoleAssignment>,
}

struct ServicePrincipal {
    id: String,
    app_id: String,
    display_name: String,
    /// The token resource its application permissions are for (`https://graph.microsoft.com`).
    resource: Option<&'static str>,
    scopes: &'static [(&'static str, &'static str)],
    roles: &'static [(&'static str, &'static str)],
}

impl ServicePrincipal {
    fn to_json(&self) -> Value {
        let scopes: Vec<Value> = self
            .scopes
            .iter()
            .map(|(id, v)| json!({ "id": id, "value": v, "type": "User", "isEnabled": true, "adminConsentDisplayName": v, "adminConsentDescription": v, "userConsentDisplayName": v, "userConsentDescription": v }))
            .collect();
        let roles: Vec<Value> = self
            .roles
            .iter()
            .map(|(id, v)| json!({ "id": id, "value": v, "allowedMemberTypes": ["Application"], "isEnabled": true, "displayName": v, "description": v, "origin": "Application" }))
            .collect();
        json!({
            "id": self.id, "appId": self.app_id, "displayName": self.display_name,
            "servicePrincipalType": "Application", "accountEnabled": true,
            "oauth2PermissionScopes": scopes, "appRoles": roles,
        })
    }
}

struct State {
    admin: bool,
    deny_registration: bool,
    sp_propagation: u32,
    sps: Vec<ServicePrincipal>,
    snapshot: DirectorySnapshot,
}

pub(super) struct Directory {
    hooks: EntraHooks,
    state: SharedState<State>,
}

impl Directory {
    pub(super) fn new(hooks: EntraHooks) -> Directory {
        let resource = |app_id: &str, name: &str, resource, scopes, roles| ServicePrincipal {
            id: uuid(),
            app_id: app_id.into(),
            display_name: name.into(),
            resource: Some(resource),
            scopes,
            roles,
        };
        Directory {
            hooks,
            state: SharedState::new(State {
                admin: false,
                deny_registration: false,
                sp_propagation: 0,
                sps: vec![
                    resource(
                        GRAPH_APP,
                        "Microsoft Graph",
                        "https://graph.microsoft.com",
                        GRAPH_SCOPES,
                        GRAPH_ROLES,
                    ),
                    resource(
                        EXCHANGE_APP,
                        "Office 365 Exchange Online",
                        "https://outlook.office365.com",
                        EXCHANGE_SCOPES,
                        EXCHANGE_ROLES,
                    ),
                ],
                snapshot: DirectorySnapshot::default(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    pub(super) fn snapshot(&self) -> DirectorySnapshot {
        self.lock().snapshot.clone()
    }

    pub(super) fn set_admin(&self, on: bool) {
        self.lock().admin = on;
    }

    pub(super) fn deny_registration(&self, on: bool) {
        self.lock().deny_registration = on;
    }

    pub(super) fn set_sp_propagation(&self, n: u32) {
        self.lock().sp_propagation = n;
    }
}

/// Routes `/v1.0/{rest…}` when it is a directory path; `None` leaves it to the mail routes.
pub(super) fn route(
    dir: &Directory,
    validator: &Validator,
    req: &mut Request,
    rest: &[&str],
) -> Option<Answer> {
    let decoded: Vec<String> = rest
        .iter()
        .map(|s| percent_decode_path(s).unwrap_or_default())
        .collect();
    let seg: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let post = req.method() == "POST";
    let op = match seg.as_slice() {
        ["applications"] if post => Op::CreateApp,
        ["applications", id, "addPassword"] if post => Op::AddPassword(id.to_string()),
        ["servicePrincipals"] if post => Op::CreateSp,
        ["servicePrincipals", id, "appRoleAssignedTo"] if post => Op::AssignRole(id.to_string()),
        ["oauth2PermissionGrants"] if post => Op::Grant,
        [sp] if req.method() == "GET" => {
            let app_id = sp
                .strip_prefix("servicePrincipals(appId='")?
                .strip_suffix("')")?;
            Op::GetSp(app_id.to_string())
        }
        [first, ..]
            if [
                "applications",
                "servicePrincipals",
                "oauth2PermissionGrants",
            ]
            .contains(first) =>
        {
            return Some(Err(error(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request uri.",
            )));
        }
        _ => return None,
    };
    Some(answer(dir, validator, req, op))
}

enum Op {
    CreateApp,
    AddPassword(String),
    GetSp(String),
    CreateSp,
    AssignRole(String),
    Grant,
}

fn denied() -> GraphError {
    error(403, "Authorization_RequestDenied", INSUFFICIENT)
}

fn bad(message: impl Into<String>) -> GraphError {
    error(400, "Request_BadRequest", message)
}

fn not_found(id: &str) -> GraphError {
    error(
        404,
        "Request_ResourceNotFound",
        format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn answer(dir: &Directory, validator: &Validator, req: &mut Request, op: Op) -> Answer {
    let info = match req.bearer().map(|t| validator(t)) {
        None => return Err(invalid_token("Access token is empty.")),
        Some(None) => return Err(invalid_token("IDX14100: JWT is not well formed.")),
        Some(Some(i)) if i.expired => {
            return Err(invalid_token(
                "Lifetime validation failed, the token is expired.",
            ));
        }
        Some(Some(i))
            if !i
                .resource
                .trim_end_matches('/')
                .eq_ignore_ascii_case("https://graph.microsoft.com") =>
        {
            return Err(invalid_token("Invalid audience."));
        }
        Some(Some(i)) => i,
    };
    if info.app || !has_permission(&info, "Application.ReadWrite.All") {
        return Err(denied());
    }
    let body = match op {
        Op::GetSp(_) => Map::new(),
        _ => {
            require_json(req)?;
            parse_json_object(&read_body(req)?)?
        }
    };
    let mut st = dir.lock();
    match op {
        Op::GetSp(app_id) => get_sp(&st, &app_id, req.query()),
        Op::CreateApp => {
            if st.deny_registration {
                return Err(denied());
            }
            create_app(dir, &mut st, &body)
        }
        Op::AddPassword(id) => add_password(dir, &mut st, &id, &body),
        Op::CreateSp => create_sp(&mut st, &body),
        Op::AssignRole(id) => {
            if !has_permission(&info, "AppRoleAssignment.ReadWrite.All") || !st.admin {
                return Err(denied());
            }
            assign_role(dir, &mut st, &id, &body)
        }
        Op::Grant => {
            if !has_permission(&info, "DelegatedPermissionGrant.ReadWrite.All") || !st.admin {
                return Err(denied());
            }
            grant(&mut st, &body)
        }
    }
}

/// Rejects properties the entity type does not declare, as OData does.
fn only(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), GraphError> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(error(
            400,
            "BadRequest",
            format!("Property '{k}' does not exist as a declared property or extension property."),
        )),
        None => Ok(()),
    }
}

fn text<'a>(body: &'a Map<String, Value>, key: &str, entity: &str) -> Result<&'a str, GraphError> {
    body.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "Invalid value specified for property '{key}' of resource '{entity}'."
            ))
        })
}

fn get_sp(st: &State, app_id: &str, query: &str) -> Answer {
    let Some(sp) = st
        .sps
        .iter()
        .find(|s| s.app_id.eq_ignore_ascii_case(app_id))
    else {
        return Err(not_found(&format!("servicePrincipals(appId='{app_id}')")));
    };
    let mut v = sp.to_json();
    let select = crate::support::http::parse_form(query)
        .unwrap_or_default()
        .into_iter()
        .find(|(k, _)| k == "$select")
        .map(|(_, v)| v);
    if let Some(select) = select {
        let all = v.as_object().cloned().unwrap_or_default();
        let mut picked = Map::new();
        for field in select.split(',') {
            match all.get(field) {
                Some(x) => picked.insert(field.to_string(), x.clone()),
                None => {
                    return Err(bad(format!(
                        "Could not find a property named '{field}' on type 'microsoft.graph.servicePrincipal'."
                    )));
                }
            };
        }
        v = Value::Object(picked);
    }
    v["@odata.context"] =
        json!("https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity");
    Ok(reply(200, v))
}

/// `(resourceAppId, value, type)` of each `requiredResourceAccess` entry, checked against the
/// resource service principals.
fn required_access(
    st: &State,
    v: Option<&Value>,
) -> Result<Vec<(String, String, String)>, GraphError> {
    let invalid = || bad("Property requiredResourceAccess.resourceAccess is invalid.");
    let mut out = Vec::new();
    for res in v.and_then(Value::as_array).into_iter().flatten() {
        let res = res.as_object().ok_or_else(invalid)?;
        only(res, &["resourceAppId", "resourceAccess"])?;
        let app_id = res
            .get("resourceAppId")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?;
        let sp = st
            .sps
            .iter()
            .find(|s| s.app_id == app_id && s.resource.is_some())
            .ok_or_else(invalid)?;
        for access in res
            .get("resourceAccess")
            .and_then(Value::as_array)
            .ok_or_else(invalid)?
        {
            let access = access.as_object().ok_or_else(invalid)?;
            only(access, &["id", "type"])?;
            let id = access
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(invalid)?;
            let (list, ty) = match access.get("type").and_then(Value::as_str) {
                Some("Scope") => (sp.scopes, "Scope"),
                Some("Role") => (sp.roles, "Role"),
                _ => return Err(invalid()),
            };
            let (_, value) = list.iter().find(|(i, _)| *i == id).ok_or_else(invalid)?;
            out.push((app_id.to_string(), value.to_string(), ty.to_string()));
        }
    }
    Ok(out)
}

fn create_app(dir: &Directory, st: &mut State, body: &Map<String, Value>) -> Answer {
    only(
        body,
        &[
            "displayName",
            "signInAudience",
            "requiredResourceAccess",
            "publicClient",
            "isFallbackPublicClient",
            "keyCredentials",
            "description",
            "notes",
            "tags",
            "web",
            "spa",
        ],
    )?;
    let display_name = text(body, "displayName", "Application")?.to_string();
    let audience = body
        .get("signInAudience")
        .and_then(Value::as_str)
        .unwrap_or("AzureADandPersonalMicrosoftAccount");
    if ![
        "AzureADMyOrg",
        "AzureADMultipleOrgs",
        "AzureADandPersonalMicrosoftAccount",
        "PersonalMicrosoftAccount",
    ]
    .contains(&audience)
    {
        return Err(bad(format!(
            "Invalid value specified for property 'signInAudience' of resource 'Application': {audience}."
        )));
    }
    let required = required_access(st, body.get("requiredResourceAccess"))?;
    let mut redirect_uris = Vec::new();
    if let Some(pc) = body.get("publicClient") {
        let pc = pc.as_object().ok_or_else(|| {
            bad("Invalid value specified for property 'publicClient' of resource 'Application'.")
        })?;
        only(pc, &["redirectUris"])?;
        for uri in pc
            .get("redirectUris")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let uri = uri.as_str().unwrap_or_default();
            if !(uri.starts_with("http://localhost")
                || uri.starts_with("https://")
                || uri.starts_with("ms-appx-web://"))
            {
                return Err(bad(format!(
                    "Invalid value specified for property 'redirectUris' of resource 'Application': {uri}."
                )));
            }
            redirect_uris.push(uri.to_string());
        }
    }
    let is_fallback = match body.get("isFallbackPublicClient") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(error(
                400,
                "BadRequest",
                "Cannot convert the literal to the expected type 'Edm.Boolean'.",
            ));
        }
    };
    let mut certificates = Vec::new();
    let mut keys = Vec::new();
    for k in body
        .get("keyCredentials")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = k
            .as_object()
            .ok_or_else(|| bad("Invalid keyCredentials."))?;
        only(
            k,
            &[
                "type",
                "usage",
                "key",
                "displayName",
                "startDateTime",
                "endDateTime",
                "customKeyIdentifier",
            ],
        )?;
        if k.get("type").and_then(Value::as_str) != Some("AsymmetricX509Cert")
            || k.get("usage").and_then(Value::as_str) != Some("Verify")
        {
            return Err(bad(
                "Key credential type must be AsymmetricX509Cert with usage Verify.",
            ));
        }
        let der = k
            .get("key")
            .and_then(Value::as_str)
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| bad("Key credential key is not valid base64."))?;
        certificates.push(der.clone());
        keys.push(DirKey {
            key_id: uuid(),
            end_date_time: k
                .get("endDateTime")
                .and_then(Value::as_str)
                .map(str::to_owned),
            thumbprint: STANDARD.encode(ring::digest::digest(
                &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
                &der,
            )),
        });
    }
    let app = DirApp {
        object_id: uuid(),
        app_id: uuid(),
        display_name,
        sign_in_audience: audience.to_string(),
        public_redirect_uris: redirect_uris,
        is_fallback_public_client: is_fallback,
        required,
        key_credentials: keys,
        passwords: Vec::new(),
        service_principal_id: None,
    };
    // A certificate that does not parse is refused before anything is created.
    dir.hooks
        .register_app(&app.app_id, &app.public_redirect_uris);
    for der in &certificates {
        dir.hooks.add_certificate(&app.app_id, der).map_err(|e| {
            bad(format!(
                "Key credential key is invalid: {}",
                e.lines().next().unwrap_or_default()
            ))
        })?;
    }
    let v = app_json(&app, body);
    st.snapshot.apps.push(app);
    Ok(reply(201, v))
}

fn app_json(app: &DirApp, body: &Map<String, Value>) -> Value {
    let keys: Vec<Value> = app
        .key_credentials
        .iter()
        .map(|k| json!({ "keyId": k.key_id, "type": "AsymmetricX509Cert", "usage": "Verify", "key": null, "customKeyIdentifier": k.thumbprint, "endDateTime": k.end_date_time, "displayName": "mailer" }))
        .collect();
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
        "id": app.object_id, "appId": app.app_id, "displayName": app.display_name,
        "signInAudience": app.sign_in_audience, "createdDateTime": Utc::now().rfc3339(),
        "isFallbackPublicClient": app.is_fallback_public_client,
        "publicClient": { "redirectUris": app.public_redirect_uris },
        "requiredResourceAccess": body.get("requiredResourceAccess").cloned().unwrap_or(json!([])),
        "keyCredentials": keys, "passwordCredentials": [],
    })
}

fn add_password(
    dir: &Directory,
    st: &mut State,
    object_id: &str,
    body: &Map<String, Value>,
) -> Answer {
    only(body, &["passwordCredential"])?;
    let pc = match body.get("passwordCredential") {
        None => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(bad(
                "Invalid value specified for property 'passwordCredential'.",
            ));
        }
    };
    only(&pc, &["displayName", "endDateTime", "startDateTime"])?;
    let Some(app) = st
        .snapshot
        .apps
        .iter_mut()
        .find(|a| a.object_id == object_id)
    else {
        return Err(not_found(object_id));
    };
    // Shaped like Graph's secrets (`abc8Q~…`).
    let secret = format!("{}8Q~{}", &random_token(4)[..3], &random_token(30)[..37]);
    let end = pc
        .get("endDateTime")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| Utc::at(now_secs() + 2 * 365 * 86_400).rfc3339());
    let password = DirPassword {
        key_id: uuid(),
        end_date_time: end.clone(),
        hint: secret[..3].to_string(),
    };
    dir.hooks.add_secret(&app.app_id, &secret);
    let v = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.passwordCredential",
        "customKeyIdentifier": null, "displayName": pc.get("displayName"), "endDateTime": end,
        "hint": password.hint, "keyId": password.key_id, "secretText": secret,
        "startDateTime": Utc::now().rfc3339(),
    });
    app.passwords.push(password);
    Ok(reply(200, v))
}

fn create_sp(st: &mut State, body: &Map<String, Value>) -> Answer {
    only(body, &["appId", "accountEnabled", "tags"])?;
    let app_id = text(body, "appId", "ServicePrincipal")?.to_string();
    let unknown = || {
        bad(format!(
            "The appId '{app_id}' of the service principal does not reference a valid application object."
        ))
    };
    if st.sp_propagation > 0 {
        st.sp_propagation -= 1;
        return Err(unknown());
    }
    if st.sps.iter().any(|s| s.app_id == app_id) {
        return Err(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            format!(
                "The service principal cannot be created, updated, or restored because the service principal name {app_id} is already in use."
            ),
        ));
    }
    let Some(app) = st.snapshot.apps.iter_mut().find(|a| a.app_id == app_id) else {
        return Err(unknown());
    };
    let sp = ServicePrincipal {
        id: uuid(),
        app_id: app_id.clone(),
        display_name: app.display_name.clone(),
        resource: None,
        scopes: &[],
        roles: &[],
    };
    app.service_principal_id = Some(sp.id.clone());
    let mut v = sp.to_json();
    v["@odata.context"] =
        json!("https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity");
    st.sps.push(sp);
    Ok(reply(201, v))
}

fn assign_role(
    dir: &Directory,
    st: &mut State,
    resource_id: &str,
    body: &Map<String, Value>,
) -> Answer {
    only(body, &["principalId", "resourceId", "appRoleId"])?;
    let principal = text(body, "principalId", "AppRoleAssignment")?.to_string();
    let role_id = text(body, "appRoleId", "AppRoleAssignment")?.to_string();
    if text(body, "resourceId", "AppRoleAssignment")? != resource_id {
        return Err(bad(
            "resourceId must be the service principal of the request URI.",
        ));
    }
    let Some(resource) = st.sps.iter().find(|s| s.id == resource_id) else {
        return Err(not_found(resource_id));
    };
    let Some((_, value)) = resource.roles.iter().find(|(id, _)| *id == role_id) else {
        return Err(bad(
            "Permission being assigned was not found on application",
        ));
    };
    let Some(client) = st.sps.iter().find(|s| s.id == principal) else {
        return Err(bad(format!("Invalid principal ID '{principal}'.")));
    };
    if st
        .snapshot
        .role_assignments
        .iter()
        .any(|r| r.principal_id == principal && r.app_role_id == role_id)
    {
        return Err(error(
            409,
            "Request_BadRequest",
            "Permission being assigned already exists on the object",
        ));
    }
    dir.hooks
        .grant_role(&client.app_id, resource.resource.unwrap_or_default(), value);
    let v = json!({
        "@odata.context": format!("https://graph.microsoft.com/v1.0/$metadata#servicePrincipals('{resource_id}')/appRoleAssignedTo/$entity"),
        "id": random_token(32), "appRoleId": role_id, "principalId": principal, "principalType": "ServicePrincipal",
        "principalDisplayName": client.display_name, "resourceId": resource_id, "resourceDisplayName": resource.display_name,
        "createdDateTime": Utc::now().rfc3339(), "deletedDateTime": null,
    });
    st.snapshot.role_assignments.push(DirRoleAssignment {
        principal_id: principal,
        resource_id: resource_id.to_string(),
        app_role_id: role_id,
        value: value.to_string(),
    });
    Ok(reply(201, v))
}

fn grant(st: &mut State, body: &Map<String, Value>) -> Answer {
    only(
        body,
        &[
            "clientId",
            "consentType",
            "resourceId",
            "scope",
            "principalId",
        ],
    )?;
    let client_id = text(body, "clientId", "OAuth2PermissionGrant")?.to_string();
    let resource_id = text(body, "resourceId", "OAuth2PermissionGrant")?.to_string();
    let scope = text(body, "scope", "OAuth2PermissionGrant")?.to_string();
    let consent_type = text(body, "consentType", "OAuth2PermissionGrant")?.to_string();
    match (
        consent_type.as_str(),
        body.get("principalId").and_then(Value::as_str),
    ) {
        ("AllPrincipals", None) | ("Principal", Some(_)) => {}
        _ => {
            return Err(bad(
                "consentType AllPrincipals takes no principalId; Principal needs one.",
            ));
        }
    }
    if !st
        .sps
        .iter()
        .any(|s| s.id == client_id && s.resource.is_none())
    {
        return Err(bad(format!("Invalid client ID '{client_id}'.")));
    }
    let Some(resource) = st
        .sps
        .iter()
        .find(|s| s.id == resource_id && s.resource.is_some())
    else {
        return Err(bad(format!("Invalid resource ID '{resource_id}'.")));
    };
    if let Some(s) = scope
        .split(' ')
        .find(|s| !resource.scopes.iter().any(|(_, v)| v == s))
    {
        return Err(bad(format!(
            "Permission entry '{s}' does not exist on resource {}.",
            resource.display_name
        )));
    }
    let g = &st.snapshot.grants;
    if g.iter().any(|g| {
        g.client_id == client_id && g.resource_id == resource_id && g.consent_type == consent_type
    }) {
        return Err(error(
            409,
            "Request_MultipleObjectsWithSameKeyValue",
            "Permission entry already exists.",
        ));
    }
    let v = json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#oauth2PermissionGrants/$entity",
        "id": random_token(32), "clientId": client_id, "consentType": consent_type,
        "principalId": body.get("principalId"), "resourceId": resource_id, "scope": scope,
    });
    st.snapshot.grants.push(DirGrant {
        client_id,
        resource_id,
        scope,
        consent_type,
    });
    Ok(reply(201, v))
}
