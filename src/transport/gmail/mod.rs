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

mod error;
mod request;

use super::{Attempt, Content, Outgoing, Receipt, TokenSource, Transport, with_token};
use crate::auth::Account;
use crate::error::{Error, Result};
use crate::explain::Fill;
use crate::message::Raw;
use crate::output::Printer;
use crate::secret::Secret;
use request::{Answer, Call, Failed, request};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

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
        let answer = self.feed(&url, bytes, &bar).await;
        match &answer {
            Ok(_) => bar.finish_and_clear(),
            Err(_) => bar.abandon(),
        }
        answer
    }

    /// The chunks of an upload session, each where Gmail says it stopped (`308 Resume
    /// Incomplete` carries `Range`), until the answer with the sent message.
    async fn feed(&self, url: &str, bytes: &[u8], bar: &indicatif::ProgressBar) -> Result<Answer> {
        let mut offset = 0;
        loop {
            let end = (offset + CHUNK).min(bytes.len());
            let call = Call {
                method: Method::PUT,
                url: url.to_owned(),
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
            let answer = request(&self.s, &call, None, "uploading to the Gmail API")
                .await
                .map_err(|(Failed::Unauthorized(e) | Failed::Other(e))| e)?;
            if answer.status != StatusCode::PERMANENT_REDIRECT {
                return Ok(answer);
            }
            offset = received(&answer).unwrap_or(end);
            bar.set_position(offset as u64);
            if offset >= bytes.len() {
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
    let range = a.range.as_deref()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_308_says_how_much_arrived() {
        let a = |range: &str| Answer {
            status: StatusCode::PERMANENT_REDIRECT,
            location: None,
            range: Some(range.into()),
            body: vec![],
        };
        assert_eq!(received(&a("bytes=0-4194303")), Some(4_194_304));
        assert_eq!(received(&a("0-42")), Some(43));
    }
}
