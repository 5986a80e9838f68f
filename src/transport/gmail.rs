//! The Gmail API's `users.messages.send` (Gmail API guides: "Uploading attachments",
//! "Resolve errors").
//!
//! The message goes as MIME (`message/rfc822`): in one `uploadType=media` request up to
//! 5 MB, through a resumable upload session above that (chunks on Google's 256 KiB grid,
//! `308 Resume Incomplete` between them, a progress bar on a terminal), up to Gmail's
//! 35 MB. Gmail delivers to the recipients in the headers and removes the `Bcc` field
//! itself, so Bcc recipients are kept in the message on this path. 429, rate-limit 403s and
//! 5xx are retried with backoff, bounded; a 401 renews the token once
//! ([`super::with_token`]). Google's error JSON is explained through [`crate::explain`].

use super::{
    Attempt, Content, Outgoing, Receipt, TokenSource, Transport, backoff, header, with_token,
};
use crate::auth::Account;
use crate::error::{Class, Error, Result};
use crate::explain::{self, Fill, Source};
use crate::message::Raw;
use crate::output::Printer;
use crate::secret::Secret;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Google suggests a simple upload for "5 MB or less".
const MEDIA_LIMIT: usize = 5 * 1024 * 1024;
/// The send method's `maxSize` in Gmail's discovery document: 35 MiB.
const MAX_MESSAGE: usize = 36_700_160;
/// 16 × 256 KiB: resumable chunks must be multiples of 256 KiB.
const CHUNK: usize = 16 * 256 * 1024;
const MAX_RETRIES: u32 = 4;
const MAX_RETRY_WAIT: Duration = Duration::from_secs(120);

/// What the Gmail API needs of the profile.
pub struct Settings {
    /// `https://gmail.googleapis.com`, or the profile's `api_url`.
    pub base: String,
    pub http: reqwest::Client,
    pub fill: Fill,
    pub printer: Printer,
}

impl Settings {
    pub fn of(acct: &Account, printer: Printer) -> Result<Settings> {
        Ok(Settings {
            base: acct.endpoints.api.as_str().trim_end_matches('/').to_owned(),
            http: acct.http()?.clone(),
            fill: acct.fill(),
            printer,
        })
    }
}

pub struct Gmail<'a> {
    s: Settings,
    tokens: Box<dyn TokenSource + 'a>,
}

/// One request to send: where, what, and whether its success is the delivery.
struct Call<'b> {
    method: Method,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: &'b [u8],
    /// With a bearer token (the upload session's URL is authorized by itself).
    bearer: bool,
    /// A success (or a lost answer) of this request means the message went out.
    delivers: bool,
}

/// A successful answer.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: Vec<u8>,
}

/// How a request ended when it did not succeed.
enum Failed {
    /// 401: worth one renewal of the token.
    Unauthorized(Error),
    Other(Error),
}

impl<'a> Gmail<'a> {
    pub fn new(s: Settings, tokens: Box<dyn TokenSource + 'a>) -> Gmail<'a> {
        Gmail { s, tokens }
    }

    /// One request with a bearer token, renewed once on a 401.
    async fn authorized(&mut self, call: &Call<'_>, what: &str) -> Result<Answer> {
        let s = &self.s;
        with_token(self.tokens.as_mut(), async |token: Secret| {
            match request(s, call, Some(&token), what).await {
                Ok(a) => Ok(Attempt::Done(a)),
                Err(Failed::Unauthorized(e)) => Ok(Attempt::Rejected(e)),
                Err(Failed::Other(e)) => Err(e),
            }
        })
        .await
    }

    async fn media(&mut self, bytes: &[u8]) -> Result<Answer> {
        let call = Call {
            method: Method::POST,
            url: format!(
                "{}/upload/gmail/v1/users/me/messages/send?uploadType=media",
                self.s.base
            ),
            headers: vec![("Content-Type", "message/rfc822".into())],
            body: bytes,
            bearer: true,
            delivers: true,
        };
        self.authorized(&call, "sending through the Gmail API")
            .await
    }

    /// A resumable upload session: opened with the token, then fed chunk by chunk.
    async fn resumable(&mut self, bytes: &[u8]) -> Result<Answer> {
        let open = Call {
            method: Method::POST,
            url: format!(
                "{}/upload/gmail/v1/users/me/messages/send?uploadType=resumable",
                self.s.base
            ),
            headers: vec![
                ("Content-Type", "application/json; charset=UTF-8".into()),
                ("X-Upload-Content-Type", "message/rfc822".into()),
                ("X-Upload-Content-Length", bytes.len().to_string()),
            ],
            body: b"{}",
            bearer: true,
            delivers: false,
        };
        let session = self
            .authorized(&open, "starting an upload to the Gmail API")
            .await?;
        let url = session.location.ok_or_else(|| {
            Error::temp("the Gmail API opened an upload session without saying where")
                .fix("try again")
        })?;
        let bar = self
            .s
            .printer
            .progress(bytes.len() as u64, "uploading to Gmail");
        let mut offset = 0;
        loop {
            let end = (offset + CHUNK).min(bytes.len());
            let call = Call {
                method: Method::PUT,
                url: url.clone(),
                headers: vec![
                    ("Content-Type", "message/rfc822".into()),
                    (
                        "Content-Range",
                        format!("bytes {offset}-{}/{}", end - 1, bytes.len()),
                    ),
                ],
                body: &bytes[offset..end],
                bearer: false,
                delivers: end == bytes.len(),
            };
            let answer = match request(&self.s, &call, None, "uploading to the Gmail API").await {
                Ok(a) => a,
                Err(Failed::Unauthorized(e) | Failed::Other(e)) => {
                    bar.abandon();
                    return Err(e);
                }
            };
            if answer.status != StatusCode::PERMANENT_REDIRECT {
                bar.finish_and_clear();
                return Ok(answer);
            }
            // 308 Resume Incomplete: the server says how much it has.
            offset = received(&answer).unwrap_or(end);
            bar.set_position(offset as u64);
            if offset >= bytes.len() {
                bar.abandon();
                return Err(Error::temp(
                    "the Gmail API took the whole upload but did not answer with the sent message",
                )
                .fix("check the Sent folder before sending again")
                .unconfirmed());
            }
        }
    }
}

/// The bytes Gmail has of an upload, from a 308's `Range: bytes=0-N`.
fn received(a: &Answer) -> Option<usize> {
    let range = a.location.as_deref()?;
    let last = range.rsplit('-').next()?.trim().parse::<usize>().ok()?;
    Some(last + 1)
}

impl Transport for Gmail<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        // Gmail sends to the header recipients and strips Bcc itself: the envelope's Bcc
        // recipients go into the header, or they would not get the message.
        let bytes = match &out.content {
            Content::Raw(raw) => raw.for_header_delivery(&out.recipients)?,
            Content::Built(_) => Raw::parse(out.mime()?)?.for_header_delivery(&out.recipients)?,
        };
        if bytes.len() > MAX_MESSAGE {
            return Err(Error::bad_data(format!(
                "the message is {} MB, over the 35 MB Gmail accepts",
                bytes.len() / 1_000_000
            ))
            .fix("share large files by link (Google Drive) instead of attaching them"));
        }
        let answer = match bytes.len() <= MEDIA_LIMIT {
            true => self.media(&bytes).await?,
            false => self.resumable(&bytes).await?,
        };
        let id = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        Ok(Receipt {
            message_id: out.message_id.clone(),
            request_id: id,
            reply: None,
        })
    }

    async fn close(&mut self) {}
}

/// One request with Google's retry rules: 429, rate-limit 403s and 5xx again after a
/// wait, bounded in count and time.
async fn request(
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
        // A 308 tells its progress in `Range`; the session URL comes in `Location`.
        let location = header(&response, "Location").or_else(|| header(&response, "Range"));
        let body = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        if status.is_success() || status == StatusCode::PERMANENT_REDIRECT {
            return Ok(Answer {
                status,
                location,
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

/// Google's error answer: `{"error":{"code","message","errors":[{"reason"}],"status"}}`.
struct GoogleError {
    status: StatusCode,
    reason: String,
    message: String,
}

impl GoogleError {
    fn parse(status: StatusCode, body: &[u8]) -> GoogleError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        GoogleError {
            status,
            reason: e["errors"][0]["reason"]
                .as_str()
                .or_else(|| e["status"].as_str())
                .unwrap_or_default()
                .to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        }
    }

    fn retryable(&self) -> bool {
        matches!(self.status.as_u16(), 429 | 500 | 502 | 503 | 504)
            || matches!(
                self.reason.as_str(),
                "rateLimitExceeded" | "userRateLimitExceeded" | "backendError"
            )
    }

    /// Gmail says when to retry in its message ("… Retry after 2026-12-07T10:00:00.000Z").
    fn retry_after(&self) -> Option<u64> {
        let at = self.message.split("Retry after ").nth(1)?;
        let t = crate::output::parse_rfc3339(at.split_whitespace().next()?)?;
        Some(t.saturating_sub(crate::tokens::now()))
    }

    fn explain(&self, what: &str, fill: &Fill, retries: u32) -> Error {
        let entry = explain::lookup(Source::Google, &self.reason);
        let (class, meaning, fix) = match entry {
            Some(e) => (e.class, fill.apply(e.meaning), fill.apply(e.fix)),
            None => by_status(self.status, fill),
        };
        let mut why = format!("HTTP {}", self.status.as_u16());
        if !self.reason.is_empty() {
            why.push_str(&format!(" {}", self.reason));
        }
        if !self.message.is_empty() {
            why.push_str(&format!(": {}", self.message));
        }
        if retries > 0 {
            why.push_str(&format!(" (after {retries} retries)"));
        }
        let fix = match (entry, self.reason.is_empty()) {
            (None, false) => format!(
                "{fix}; {} is described at https://developers.google.com/workspace/gmail/api/guides/handle-errors",
                self.reason
            ),
            _ => fix,
        };
        let e = Error::new(class, format!("{what} failed: {meaning}"))
            .why(why)
            .fix(fix);
        match self.reason.is_empty() {
            true => e,
            false => e.code(self.reason.clone()),
        }
    }
}

fn by_status(status: StatusCode, fill: &Fill) -> (Class, String, String) {
    match status.as_u16() {
        401 => (
            Class::LoginNeeded,
            "the Gmail API did not accept the access token".into(),
            fill.apply("log in again: {login}"),
        ),
        403 => (
            Class::Refused,
            "the Gmail API refused the send".into(),
            "check that the account may use Gmail and the login consented to gmail.send".into(),
        ),
        400 | 413 => (
            Class::BadData,
            "the Gmail API refused the message".into(),
            "check the addresses and headers (mailer send --dry-run shows the message)".into(),
        ),
        _ => (
            Class::Temporary,
            "the Gmail API failed".into(),
            "try again later (with --queue the message waits in the outbox)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_are_read_and_classified() {
        let body = br#"{"error":{"code":429,"message":"User-rate limit exceeded.  Retry after 2999-01-01T00:00:00.000Z (Mail sending)","errors":[{"message":"x","domain":"usageLimits","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}"#;
        let e = GoogleError::parse(StatusCode::TOO_MANY_REQUESTS, body);
        assert!(e.retryable());
        assert!(e.retry_after().unwrap() > 86_400);
        let err = e.explain("sending", &Fill::default(), 4);
        assert_eq!(err.class, Class::Temporary);
        assert_eq!(err.code.as_deref(), Some("rateLimitExceeded"));

        let body = br#"{"error":{"code":400,"message":"Invalid To header","errors":[{"domain":"global","reason":"invalidArgument","message":"Invalid To header"}],"status":"INVALID_ARGUMENT"}}"#;
        let e = GoogleError::parse(StatusCode::BAD_REQUEST, body);
        assert!(!e.retryable());
        let err = e.explain("sending", &Fill::default(), 0);
        assert_eq!(err.class, Class::BadData);
        assert!(err.why.unwrap().contains("Invalid To header"));

        let e = GoogleError::parse(StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert!(e.retryable());
        assert_eq!(
            e.explain("sending", &Fill::default(), 1).class,
            Class::Temporary
        );
    }

    #[test]
    fn a_308_says_how_much_arrived() {
        let a = |range: &str| Answer {
            status: StatusCode::PERMANENT_REDIRECT,
            location: Some(range.into()),
            body: vec![],
        };
        assert_eq!(received(&a("bytes=0-4194303")), Some(4_194_304));
        assert_eq!(received(&a("0-42")), Some(43));
    }
}
