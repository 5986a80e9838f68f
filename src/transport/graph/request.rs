//! One Graph request with Graph's throttling rules: 429 and 503 are retried after
//! `Retry-After` ("Microsoft Graph throttling guidance"), bounded in count and total time,
//! with jitter so that throttled clients do not return in lockstep.

use super::{MAX_RETRIES, MAX_RETRY_WAIT, Settings, error};
use crate::error::Error;
use crate::secret::Secret;
use crate::transport::{backoff, header};
use reqwest::{Method, StatusCode};
use std::time::Instant;

pub enum Payload {
    Json(Vec<u8>),
    Mime(Vec<u8>),
    Empty,
    /// A chunk for a pre-authorized upload URL: no bearer token goes with it (Graph
    /// refuses one there).
    Chunk {
        bytes: bytes::Bytes,
        range: String,
    },
}

pub struct Answer {
    pub body: Vec<u8>,
    pub request_id: Option<String>,
}

/// How a request ended when it did not succeed.
pub enum Reply {
    /// 401 on a request that carried a token: worth one renewal.
    Unauthorized(Error),
    Failed(Error),
}

impl Reply {
    pub fn into_error(self) -> Error {
        match self {
            Reply::Unauthorized(e) | Reply::Failed(e) => e,
        }
    }
}

/// One request with Graph's throttling rules: 429/503 retried after `Retry-After`.
// One loop on purpose: each retry rebuilds the request, and what a failure means (retry,
// unauthorized, lost answer) depends on the state the loop carries.
pub async fn request(
    s: &Settings,
    method: &Method,
    url: &str,
    payload: &Payload,
    token: Option<&Secret>,
    what: &str,
) -> std::result::Result<Answer, Reply> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let mut req = s.http.request(method.clone(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        req = match payload {
            Payload::Json(b) => req
                .header("Content-Type", "application/json")
                .body(b.clone()),
            Payload::Mime(b) => req.header("Content-Type", "text/plain").body(b.clone()),
            Payload::Empty => req.header("Content-Length", "0"),
            Payload::Chunk { bytes, range } => req
                .header("Content-Range", range)
                .header("Content-Type", "application/octet-stream")
                .body(bytes.clone()),
        };
        let delivers = *method == Method::POST && delivers(url);
        let response = req
            .send()
            .await
            .map_err(|e| Reply::Failed(network_error(s, what, &e, delivers)))?;
        let status = response.status();
        let retry_after =
            header(&response, "Retry-After").and_then(|v| v.trim().parse::<u64>().ok());
        let request_id = header(&response, "request-id");
        let body = response.bytes().await;
        if status.is_success() {
            // The status is the verdict: a body cut short after a 2xx does not undo a send.
            // Callers that need the body find it empty and say so.
            let body = body.map(|b| b.to_vec()).unwrap_or_default();
            return Ok(Answer { body, request_id });
        }
        let body = body.map(|b| b.to_vec()).unwrap_or_default();
        if matches!(status.as_u16(), 429 | 503) && attempt < MAX_RETRIES {
            let wait = backoff(retry_after, attempt);
            if started.elapsed() + wait <= MAX_RETRY_WAIT {
                tracing::info!(%status, ?wait, "Graph is throttling; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
        }
        let mut e = error::explain(status, request_id, &body, what, &s.fill, attempt);
        // A gateway that timed out waiting for Graph does not know whether Graph sent it.
        if delivers && status == StatusCode::GATEWAY_TIMEOUT {
            e = unconfirmed(e);
        }
        return Err(match (status, token) {
            (StatusCode::UNAUTHORIZED, Some(_)) => Reply::Unauthorized(e),
            _ => Reply::Failed(e),
        });
    }
}

/// The two Graph actions that deliver mail: `sendMail` and a draft's `send`. A failure of
/// one of them after Graph may have acted is not retried by itself.
fn delivers(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url);
    path.ends_with("/sendMail") || path.ends_with("/send")
}

fn unconfirmed(e: Error) -> Error {
    e.fix("the message may have been sent: check your Sent Items before sending it again")
        .unconfirmed()
}

fn network_error(s: &Settings, what: &str, e: &reqwest::Error, delivers: bool) -> Error {
    let error = network_error_text(s, what, e);
    // Not connected, or cut off while the request was still being written: Graph never had
    // the whole request. Anything later (no answer, a reset while reading it) may be after
    // Graph sent the message. A small request is written at once, so a server closing early
    // looks the same as one closing after acting: held for a person either way, never sent twice.
    let incomplete_request =
        e.is_connect() || crate::error::chain(e).contains("error writing a body to connection");
    match delivers && !incomplete_request {
        true => unconfirmed(Error {
            what: format!("{what}: the connection broke before Microsoft Graph answered"),
            ..error
        }),
        false => error,
    }
}

fn network_error_text(s: &Settings, what: &str, e: &reqwest::Error) -> Error {
    let mut why = crate::error::chain(e);
    // reqwest names the URL, and an upload URL carries a pre-authorized token.
    if let Some(url) = e.url() {
        why = why.replace(url.as_str(), "<url>");
    }
    if let Some((problem, fix)) = crate::http::tls_problem(e) {
        return Error::refused(format!("{what} failed: TLS with {}: {problem}", s.base))
            .why(why)
            .fix(fix);
    }
    Error::temp(format!(
        "{what} failed: cannot reach Microsoft Graph at {}",
        s.base
    ))
    .why(why)
    .fix("check the network and proxy (HTTPS_PROXY), then try again")
}
