//! One request to the Gmail API with Google's retry rules: 429, rate-limit 403s and 5xx
//! are tried again after a wait (`Retry-After`, or the time Gmail names in its message),
//! bounded in count and total time; a connection lost after a delivering request left whole
//! is an unconfirmed delivery, never a silent resend.

use super::error::GoogleError;
use super::{MAX_RETRIES, MAX_RETRY_WAIT, Settings};
use crate::error::Error;
use crate::secret::Secret;
use crate::transport::{backoff, header};
use reqwest::{Method, StatusCode};
use std::time::Instant;

/// One request to send: where, what, and whether its success is the delivery.
pub(super) struct Call<'b> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'b [u8],
    /// With a bearer token (the upload session's URL is authorized by itself).
    pub bearer: bool,
    /// A success (or a lost answer) of this request means the message went out.
    pub delivers: bool,
}

/// A successful answer.
pub(super) struct Answer {
    pub status: StatusCode,
    /// Where an upload session lives (the answer that opened it).
    pub location: Option<String>,
    /// How much of an upload arrived (a 308 Resume Incomplete).
    pub range: Option<String>,
    pub body: Vec<u8>,
}

/// How a request ended when it did not succeed.
pub(super) enum Failed {
    /// 401: worth one renewal of the token.
    Unauthorized(Error),
    Other(Error),
}

/// One request with Google's retry rules: 429, rate-limit 403s and 5xx again after a
/// wait, bounded in count and time.
// One loop on purpose, as Graph's: each retry rebuilds the request, and what a failure
// means (retry, unauthorized, lost answer) depends on the state the loop carries.
pub(super) async fn request(
    s: &Settings,
    call: &Call<'_>,
    token: Option<&Secret>,
    what: &str,
) -> std::result::Result<Answer, Failed> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let mut req = s.http.request(call.method.clone(), &call.url);
        if let (true, Some(t)) = (call.bearer, token) {
            req = req.bearer_auth(t.expose());
        }
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let response = req
            .body(call.body.to_vec())
            .send()
            .await
            .map_err(|e| Failed::Other(network_error(what, &e, call.delivers)))?;
        let status = response.status();
        let retry_after = header(&response, "Retry-After").and_then(|v| v.trim().parse().ok());
        let location = header(&response, "Location");
        let range = header(&response, "Range");
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
            return Ok(Answer {
                status,
                location,
                range,
                body,
            });
        }
        let e = GoogleError::parse(status, &body);
        // A limit that lifts in an hour (Gmail's daily sending limit) is no reason to wait
        // here: the message waits in the outbox instead.
        let hint = retry_after.or_else(|| e.retry_after());
        if e.retryable() && attempt < MAX_RETRIES && hint.is_none_or(|h| h <= 60) {
            let wait = backoff(hint, attempt);
            if started.elapsed() + wait <= MAX_RETRY_WAIT {
                tracing::info!(%status, ?wait, "the Gmail API is throttling; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
        }
        let mut error = e.explain(what, &s.fill, attempt);
        // A gateway that timed out does not know whether Gmail sent it.
        if call.delivers && status == StatusCode::GATEWAY_TIMEOUT {
            error = error
                .fix("the message may have been sent: check your Sent folder before sending it again")
                .unconfirmed();
        }
        return Err(match status {
            StatusCode::UNAUTHORIZED if call.bearer => Failed::Unauthorized(error),
            _ => Failed::Other(error),
        });
    }
}

fn network_error(what: &str, e: &reqwest::Error, delivers: bool) -> Error {
    if let Some((problem, fix)) = crate::http::tls_problem(e) {
        return Error::refused(format!("{what} failed: TLS with the Gmail API: {problem}"))
            .why(crate::error::chain(e))
            .fix(fix);
    }
    let error = Error::temp(format!("{what} failed: cannot reach the Gmail API"))
        .why(crate::error::chain(e))
        .fix("check the network and proxy (HTTPS_PROXY), then try again");
    // Once the request left whole, only the answer was lost: Gmail may have sent it.
    match delivers && !e.is_connect() {
        true => Error {
            what: format!("{what} failed: the connection broke before the Gmail API answered"),
            ..error
        }
        .fix("the message may have been sent: check your Sent folder before sending it again")
        .unconfirmed(),
        false => error,
    }
}
