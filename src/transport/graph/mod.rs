//! Microsoft Graph `sendMail` ("user: sendMail", Microsoft Graph v1.0 reference).
//!
//! Built messages go as JSON (`message` + `saveToSentItems`); raw messages as MIME
//! (`Content-Type: text/plain`, base64 of the bytes). A message that would not fit Graph's
//! ~4 MB request limit goes through a draft: small attachments are posted to it, large
//! ones through an upload session (chunks read from the file one at a time, so a 150 MB
//! attachment never sits in memory, and the pre-authorized upload URL gets no bearer
//! token), then the draft is sent. That path needs Mail.ReadWrite.
//!
//! 429 and 503 are retried after `Retry-After` (bounded in count and total time, with
//! jitter); a 401 renews the token once ([`super::with_token`]). Requests are made one at a
//! time, well under Graph's 4 concurrent requests per mailbox ("Microsoft Graph throttling
//! limits"). Every failure names Graph's error code, a fix, and the `request-id`.

mod body;
// Public for the fuzz targets only (fuzz/), which feed it any answer.
#[doc(hidden)]
pub mod error;
mod request;

use super::{Attempt, Content, Outgoing, Receipt, TokenSource, Transport, with_token};
use crate::auth::Account;
use crate::error::{Error, Result};
use crate::explain::Fill;
use crate::message::{Draft, FilePart};
use crate::output::Printer;
use crate::secret::Secret;
use base64::Engine;
use request::{Answer, Payload, Reply, request};
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// Graph rejects request bodies over about 4 MB; keep a margin for the JSON around them.
const REQUEST_LIMIT: u64 = 4 * 1024 * 1024 - 16 * 1024;
/// Attachments from this size on must use an upload session.
const UPLOAD_SESSION_FROM: u64 = 3 * 1024 * 1024;
/// 12 × 320 KiB: under Graph's 4 MB chunk limit, on the 320 KiB grid its docs recommend.
const CHUNK: usize = 12 * 320 * 1024;
const MAX_ATTACHMENT: u64 = 150 * 1024 * 1024;
pub(super) const MAX_RETRIES: u32 = 4;
pub(super) const MAX_RETRY_WAIT: Duration = Duration::from_secs(120);

/// What Graph needs of the profile.
pub struct Settings {
    /// `{graph}/v1.0`.
    pub base: String,
    pub http: reqwest::Client,
    /// Delegated logins may say `/me`; an app has no `me`.
    pub me_allowed: bool,
    /// Mail.ReadWrite was granted: drafts and upload sessions work.
    pub large_attachments: bool,
    pub fill: Fill,
    pub printer: Printer,
}

impl Settings {
    pub fn of(acct: &Account, printer: Printer) -> Result<Settings> {
        Ok(Settings {
            base: format!("{}/v1.0", acct.endpoints.api.as_str().trim_end_matches('/')),
            http: acct.http()?.clone(),
            me_allowed: !acct.profile.flow.acts_as_itself(),
            large_attachments: acct.profile.large_attachments,
            fill: acct.fill(),
            printer,
        })
    }
}

pub struct Graph<'a> {
    s: Settings,
    tokens: Box<dyn TokenSource + 'a>,
}

impl<'a> Graph<'a> {
    pub fn new(s: Settings, tokens: Box<dyn TokenSource + 'a>) -> Graph<'a> {
        Graph { s, tokens }
    }

    /// `me`, or `users/{mailbox}` when sending as someone else or app-only.
    fn mailbox(&self, out: &Outgoing) -> String {
        let from = out.from_mailbox();
        if from.email == out.sender.email && self.s.me_allowed {
            "me".to_owned()
        } else {
            format!("users/{}", percent_encode(from.email.as_ref()))
        }
    }

    /// One Graph call with a bearer token, renewed once on a 401.
    async fn call(
        &mut self,
        method: Method,
        url: &str,
        payload: &Payload,
        what: &str,
    ) -> Result<Answer> {
        let s = &self.s;
        with_token(self.tokens.as_mut(), async |token: Secret| {
            match request(s, &method, url, payload, Some(&token), what).await {
                Err(Reply::Unauthorized(e)) => Ok(Attempt::Rejected(e)),
                Err(Reply::Failed(e)) => Err(e),
                Ok(answer) => Ok(Attempt::Done(answer)),
            }
        })
        .await
    }

    async fn send_json(&mut self, out: &Outgoing, d: &Draft) -> Result<Receipt> {
        let mut attachments = Vec::new();
        for f in d.attachments.iter().chain(&d.inline) {
            attachments.push(body::file_attachment(f, &f.read()?));
        }
        let request = json!({ "message": body::message(d, attachments), "saveToSentItems": !out.no_save_sent });
        let url = format!("{}/{}/sendMail", self.s.base, self.mailbox(out));
        let payload = Payload::Json(request.to_string().into_bytes());
        let a = self
            .call(Method::POST, &url, &payload, "sending through Graph")
            .await?;
        Ok(Receipt {
            message_id: None,
            request_id: a.request_id,
            reply: None,
        })
    }

    async fn send_mime(&mut self, out: &Outgoing, bytes: &[u8]) -> Result<Receipt> {
        if !fits_mime_send(bytes.len()) {
            return Err(Error::bad_data(format!(
                "the message is {} MB, over the ~3 MB Graph accepts for a MIME send",
                bytes.len() / 1_000_000
            ))
            .fix("send it with --transport smtp, or as a built message (send --attach) that can use an upload session")
            .transport_specific(true));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url = format!("{}/{}/sendMail", self.s.base, self.mailbox(out));
        let payload = Payload::Mime(encoded.into_bytes());
        let a = self
            .call(Method::POST, &url, &payload, "sending through Graph")
            .await?;
        Ok(Receipt {
            message_id: out.message_id.clone(),
            request_id: a.request_id,
            reply: None,
        })
    }

    /// Draft, attachments (upload sessions for large ones), send.
    async fn send_large(&mut self, out: &Outgoing, d: &Draft) -> Result<Receipt> {
        if !self.s.large_attachments {
            return Err(Error::login_needed("the message is over Graph's 4 MB request limit, and large messages need the Mail.ReadWrite permission, which this profile did not ask for")
                .why("Graph sends large attachments through a draft and an upload session")
                .fix(format!("log in again with it: {} --large-attachments   (or send with --transport smtp)", self.s.fill.login))
                // SMTP carries a message of any size the mailbox allows.
                .transport_specific(true));
        }
        let mailbox = self.mailbox(out);
        let url = format!("{}/{mailbox}/messages", self.s.base);
        let draft = Payload::Json(body::message(d, vec![]).to_string().into_bytes());
        let created = self
            .call(Method::POST, &url, &draft, "creating the draft")
            .await?;
        let id = answer_field(
            &created.body,
            "id",
            "Graph created a draft but did not say its id",
        )?;
        let draft_url = format!("{}/{mailbox}/messages/{}", self.s.base, percent_encode(&id));
        for f in d.attachments.iter().chain(&d.inline) {
            if f.size >= UPLOAD_SESSION_FROM {
                self.upload(&draft_url, f).await?;
            } else {
                let att = body::file_attachment(f, &f.read()?)
                    .to_string()
                    .into_bytes();
                let url = format!("{draft_url}/attachments");
                self.call(Method::POST, &url, &Payload::Json(att), "attaching a file")
                    .await?;
            }
        }
        let url = format!("{draft_url}/send");
        let sent = self
            .call(Method::POST, &url, &Payload::Empty, "sending the draft")
            .await?;
        Ok(Receipt {
            message_id: None,
            request_id: sent.request_id,
            reply: None,
        })
    }

    async fn upload(&mut self, draft_url: &str, f: &FilePart) -> Result<()> {
        let item = body::upload_item(f).to_string().into_bytes();
        let url = format!("{draft_url}/attachments/createUploadSession");
        let session = self
            .call(
                Method::POST,
                &url,
                &Payload::Json(item),
                "starting an upload session",
            )
            .await?;
        let upload_url = answer_field(
            &session.body,
            "uploadUrl",
            "Graph opened an upload session without an upload URL",
        )?;
        let mut file = std::fs::File::open(&f.path).map_err(|e| unreadable(f, &e))?;
        let bar = self
            .s
            .printer
            .progress(f.size, &format!("uploading {}", f.name));
        let mut offset = 0u64;
        while offset < f.size {
            let len = (f.size - offset).min(CHUNK as u64) as usize;
            let mut chunk = vec![0u8; len];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut chunk))
                .map_err(|e| unreadable(f, &e))?;
            let range = format!("bytes {}-{}/{}", offset, offset + len as u64 - 1, f.size);
            let chunk = Payload::Chunk {
                bytes: chunk.into(),
                range,
            };
            request(
                &self.s,
                &Method::PUT,
                &upload_url,
                &chunk,
                None,
                "uploading an attachment",
            )
            .await
            .map_err(Reply::into_error)?;
            offset += len as u64;
            bar.set_position(offset);
        }
        bar.finish_and_clear();
        Ok(())
    }

    fn check_built(d: &Draft) -> Result<()> {
        if let Some(name) = d.non_x_headers().first() {
            return Err(Error::bad_data(format!(
                "Graph only accepts custom headers named X-…, not {name}"
            ))
            .fix(format!(
                "rename it to X-{name}, or send with --transport smtp"
            )));
        }
        for f in d.attachments.iter().chain(&d.inline) {
            if f.size > MAX_ATTACHMENT {
                return Err(Error::bad_data(format!(
                    "{} is {} MB; Graph takes at most 150 MB per attachment",
                    f.name,
                    f.size / 1_000_000
                ))
                .fix("share the file by link instead"));
            }
        }
        Ok(())
    }
}

impl Transport for Graph<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        match &out.content {
            Content::Raw(raw) => {
                let bytes = raw.for_header_delivery(&out.recipients)?;
                self.send_mime(out, &bytes).await
            }
            Content::Built(d) => {
                Self::check_built(d)?;
                if body::estimate(d) <= REQUEST_LIMIT {
                    self.send_json(out, d).await
                } else {
                    self.send_large(out, d).await
                }
            }
        }
    }

    async fn close(&mut self) {}
}

/// A string field of a Graph JSON answer, or an error saying it was missing.
fn answer_field(body: &[u8], field: &str, missing: &str) -> Result<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get(field)?.as_str().map(str::to_owned))
        .ok_or_else(|| Error::refused(missing).fix("try again"))
}

/// Whether a message of `len` bytes fits Graph's MIME send (base64 inside one request).
pub fn fits_mime_send(len: usize) -> bool {
    (len as u64).div_ceil(3) * 4 <= REQUEST_LIMIT
}

fn unreadable(f: &FilePart, e: &std::io::Error) -> Error {
    Error::new(
        crate::error::Class::NoInput,
        format!("cannot read {}: {e}", f.path.display()),
    )
    .fix("check that the file is still there and readable")
}

fn percent_encode(s: &str) -> String {
    oauth2::url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
