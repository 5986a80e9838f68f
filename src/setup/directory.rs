//! Graph's directory as `mailer app create` talks to it: one call with the bootstrap token,
//! and Graph's error answer kept whole, so that the registration can tell a refusal
//! (`Authorization_RequestDenied`) from a failure. The token is held in memory only.

use crate::error::{Class, Error, Result};
use crate::secret::Secret;
use reqwest::Method;
use serde_json::Value;

/// Graph's directory, with the bootstrap token.
pub struct Directory<'a> {
    pub http: &'a reqwest::Client,
    /// `{graph}/v1.0`.
    pub base: String,
    pub token: Secret,
}

/// A Graph error answer, kept whole so that callers can tell a refusal from a failure.
#[derive(Debug)]
pub struct GraphFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub request_id: String,
}

impl GraphFailure {
    pub(super) fn into_error(self, what: &str) -> Error {
        let class = match self.status {
            401 => Class::LoginNeeded,
            403 => Class::Refused,
            429 | 500..=599 => Class::Temporary,
            _ => Class::Refused,
        };
        Error::new(class, format!("{what} failed: {}", self.code))
            .why(format!("HTTP {} {}: {} (request-id {})", self.status, self.code, self.message, self.request_id))
            .fix("try again; if it persists, an admin can create the app by hand: `mailer app instructions`")
            .code(self.code)
    }
}

impl Directory<'_> {
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<std::result::Result<Value, GraphFailure>> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.map_err(|e| {
            Error::temp(format!("cannot reach Microsoft Graph at {}", self.base))
                .why(crate::error::chain(&e))
                .fix("check the network and proxy (HTTPS_PROXY), or --graph-url")
        })?;
        let status = response.status().as_u16();
        let header_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::temp("Graph broke off its answer").why(crate::error::chain(&e)))?;
        let v: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if (200..300).contains(&status) {
            return Ok(Ok(v));
        }
        let e = &v["error"];
        Ok(Err(GraphFailure {
            status,
            code: e["code"].as_str().unwrap_or("unknown").to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
            request_id: header_id
                .or_else(|| e["innerError"]["request-id"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "none".into()),
        }))
    }

    /// A resource's service principal (`Microsoft Graph`, `Office 365 Exchange Online`).
    pub(super) async fn resource(&self, app_id: &str) -> Result<Option<Value>> {
        let path = format!(
            "/servicePrincipals(appId='{app_id}')?$select=id,appId,displayName,oauth2PermissionScopes,appRoles"
        );
        match self.call(Method::GET, &path, None).await? {
            Ok(v) => Ok(Some(v)),
            Err(f) if f.status == 404 => Ok(None),
            Err(f) => Err(f.into_error("reading the permissions of a Microsoft API")),
        }
    }
}
