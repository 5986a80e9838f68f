//! Microsoft Graph `sendMail` (SPEC section 6).
//!
//! Built messages go as JSON (`message` + `saveToSentItems`); raw messages as MIME
//! (`Content-Type: text/plain`, base64 of the bytes). A message that would not fit Graph's
//! ~4 MB request limit goes through a draft: small attachments are posted to it, large
//! ones through an upload session (chunks read from the file one at a time, so a 150 MB
//! attachment never sits in memory, and the pre-authorized upload URL gets no bearer
//! token), then the draft is sent. That path needs Mail.ReadWrite.
//!
//! 429 and 503 are retried after `Retry-After` (bounded in count and total time, with
//! jitter), and a 401 refreshes the token once. Requests are made one at a time, well
//! under Graph's 4 concurrent requests per mailbox (a `queue run` sends in order too). Every failure names Graph's error code, a fix, and the `request-id`.

use super::{Content, Outgoing, Receipt, Transport};
use crate::auth::{self, Account};
use crate::config::Transport as Kind;
use crate::error::{Error, Exit, Result};
use crate::message::{Draft, FilePart};
use crate::secret::Secret;
use crate::store::Store;
use base64::Engine;
use lettre::message::Mailbox;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

/// Graph rejects request bodies over about 4 MB; keep a margin for the JSON around them.
const REQUEST_LIMIT: u64 = 4 * 1024 * 1024 - 16 * 1024;
/// Attachments from this size on must use an upload session.
const UPLOAD_SESSION_FROM: u64 = 3 * 1024 * 1024;
/// 12 × 320 KiB: under Graph's 4 MB chunk limit, on the 320 KiB grid its docs recommend.
const CHUNK: usize = 12 * 320 * 1024;
const MAX_ATTACHMENT: u64 = 150 * 1024 * 1024;
const MAX_RETRIES: u32 = 4;
const MAX_RETRY_WAIT: Duration = Duration::from_secs(120);

pub struct Graph<'a> {
    acct: &'a Account,
    store: &'a Store,
    http: reqwest::Client,
    base: String,
    token: Option<Secret>,
    progress: bool,
}

enum Payload {
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

struct Answer {
    body: Vec<u8>,
    request_id: Option<String>,
}

impl<'a> Graph<'a> {
    pub fn new(acct: &'a Account, store: &'a Store) -> Result<Graph<'a>> {
        Ok(Graph {
            acct,
            store,
            http: acct.http()?,
            base: format!(
                "{}/v1.0",
                acct.endpoints.graph.as_str().trim_end_matches('/')
            ),
            token: None,
            progress: std::io::stderr().is_terminal(),
        })
    }

    pub fn set_progress(&mut self, on: bool) {
        self.progress = on;
    }

    /// `me`, or `users/{mailbox}` when sending as someone else or app-only (an app has no
    /// `me`).
    fn mailbox(&self, out: &Outgoing) -> String {
        let from = out.from_mailbox();
        let app_only = self.acct.profile.flow == crate::config::Flow::ClientCredentials;
        if from.email == out.sender.email && !app_only {
            "me".to_owned()
        } else {
            format!("users/{}", percent_encode(from.email.as_ref()))
        }
    }

    async fn token(&mut self, force: bool) -> Result<Secret> {
        if force || self.token.is_none() {
            let t = auth::access_token(self.acct, self.store, Kind::Graph, force).await?;
            self.token = Some(t.token);
        }
        Ok(self.token.clone().expect("token set above"))
    }

    /// One request with Graph's retry rules: bearer token (refreshed once on a 401) except
    /// for upload chunks, 429/503 retried after `Retry-After`.
    async fn call(
        &mut self,
        method: Method,
        url: &str,
        payload: &Payload,
        what: &str,
    ) -> Result<Answer> {
        let started = Instant::now();
        let mut refreshed = false;
        let mut attempt = 0;
        loop {
            let authed = !matches!(payload, Payload::Chunk { .. });
            let mut req = self.http.request(method.clone(), url);
            if authed {
                req = req.bearer_auth(self.token(false).await?.expose());
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
            let response = req.send().await.map_err(|e| self.network_error(what, &e))?;
            let status = response.status();
            let retry_after =
                header(&response, "Retry-After").and_then(|v| v.trim().parse::<u64>().ok());
            let request_id = header(&response, "request-id");
            let body = response
                .bytes()
                .await
                .map_err(|e| self.network_error(what, &e))?
                .to_vec();
            if status.is_success() {
                return Ok(Answer { body, request_id });
            }
            if status == StatusCode::UNAUTHORIZED && authed && !refreshed {
                tracing::debug!("Graph answered 401: refreshing the token once");
                refreshed = true;
                self.token = Some(
                    auth::access_token(self.acct, self.store, Kind::Graph, true)
                        .await?
                        .token,
                );
                continue;
            }
            if matches!(status.as_u16(), 429 | 503) && attempt < MAX_RETRIES {
                let wait = backoff(retry_after, attempt);
                if started.elapsed() + wait <= MAX_RETRY_WAIT {
                    tracing::info!(%status, ?wait, "Graph is throttling; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                    continue;
                }
            }
            return Err(graph_error(
                status, request_id, &body, what, self.acct, attempt,
            ));
        }
    }

    fn network_error(&self, what: &str, e: &reqwest::Error) -> Error {
        let mut why = crate::error::chain(e);
        // reqwest names the URL, and an upload URL carries a pre-authorized token.
        if let Some(url) = e.url() {
            why = why.replace(url.as_str(), "<url>");
        }
        Error::temp(format!(
            "{what} failed: cannot reach Microsoft Graph at {}",
            self.base
        ))
        .why(why)
        .fix("check the network and proxy (HTTPS_PROXY), then try again")
    }

    async fn send_json(&mut self, out: &Outgoing, d: &Draft, save: bool) -> Result<Receipt> {
        let mut attachments = Vec::new();
        for f in d.attachments.iter().chain(&d.inline) {
            attachments.push(file_attachment(f, &f.read()?));
        }
        let body = json!({ "message": message_json(d, attachments), "saveToSentItems": save });
        let url = format!("{}/{}/sendMail", self.base, self.mailbox(out));
        let a = self
            .call(
                Method::POST,
                &url,
                &Payload::Json(body.to_string().into_bytes()),
                "sending through Graph",
            )
            .await?;
        Ok(Receipt {
            message_id: None,
            request_id: a.request_id,
            reply: None,
        })
    }

    async fn send_mime(&mut self, out: &Outgoing, bytes: &[u8]) -> Result<Receipt> {
        if !fits_mime_send(bytes.len()) {
            return Err(Error::new(Exit::DataErr, format!(
                "the message is {} MB, over the ~3 MB Graph accepts for a MIME send",
                bytes.len() / 1_000_000
            ))
            .fix("send it with --transport smtp, or as a built message (send --attach) that can use an upload session"));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let url = format!("{}/{}/sendMail", self.base, self.mailbox(out));
        let a = self
            .call(
                Method::POST,
                &url,
                &Payload::Mime(encoded.into_bytes()),
                "sending through Graph",
            )
            .await?;
        Ok(Receipt {
            message_id: out.message_id.clone(),
            request_id: a.request_id,
            reply: None,
        })
    }

    /// Draft, attachments (upload sessions for large ones), send.
    async fn send_large(&mut self, out: &Outgoing, d: &Draft) -> Result<Receipt> {
        if !self.acct.profile.large_attachments {
            return Err(Error::new(Exit::NoPerm, "the message is over Graph's 4 MB request limit, and large messages need the Mail.ReadWrite permission, which this profile did not ask for")
                .why("Graph sends large attachments through a draft and an upload session")
                .fix(format!("log in again with it: {} --large-attachments   (or send with --transport smtp)", self.acct.login_command())));
        }
        let mailbox = self.mailbox(out);
        let url = format!("{}/{mailbox}/messages", self.base);
        let created = self
            .call(
                Method::POST,
                &url,
                &Payload::Json(message_json(d, vec![]).to_string().into_bytes()),
                "creating the draft",
            )
            .await?;
        let id = answer_field(
            &created.body,
            "id",
            "Graph created a draft but did not say its id",
        )?;
        let draft_url = format!("{}/{mailbox}/messages/{}", self.base, percent_encode(&id));
        for f in d.attachments.iter().chain(&d.inline) {
            if f.size >= UPLOAD_SESSION_FROM {
                self.upload(&draft_url, f).await?;
            } else {
                let body = file_attachment(f, &f.read()?).to_string().into_bytes();
                self.call(
                    Method::POST,
                    &format!("{draft_url}/attachments"),
                    &Payload::Json(body),
                    "attaching a file",
                )
                .await?;
            }
        }
        let sent = self
            .call(
                Method::POST,
                &format!("{draft_url}/send"),
                &Payload::Empty,
                "sending the draft",
            )
            .await?;
        Ok(Receipt {
            message_id: None,
            request_id: sent.request_id,
            reply: None,
        })
    }

    async fn upload(&mut self, draft_url: &str, f: &FilePart) -> Result<()> {
        let mut item = json!({ "attachmentType": "file", "name": f.name, "size": f.size, "contentType": f.content_type });
        if let Some(cid) = &f.content_id {
            item["isInline"] = json!(true);
            item["contentId"] = json!(cid);
        }
        let body = json!({ "AttachmentItem": item }).to_string().into_bytes();
        let session = self
            .call(
                Method::POST,
                &format!("{draft_url}/attachments/createUploadSession"),
                &Payload::Json(body),
                "starting an upload session",
            )
            .await?;
        let upload_url = answer_field(
            &session.body,
            "uploadUrl",
            "Graph opened an upload session without an upload URL",
        )?;
        let mut file = std::fs::File::open(&f.path).map_err(|e| unreadable(f, &e))?;
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
            self.call(Method::PUT, &upload_url, &chunk, "uploading an attachment")
                .await?;
            offset += len as u64;
            if self.progress {
                eprint!(
                    "\ruploading {}: {:>3}% ({} of {} MB)",
                    f.name,
                    offset * 100 / f.size,
                    offset / 1_000_000,
                    f.size / 1_000_000
                );
            }
        }
        if self.progress {
            eprintln!();
        }
        Ok(())
    }
}

impl Transport for Graph<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        match &out.content {
            Content::Raw(raw) => {
                // Graph delivers to the header recipients, not to an envelope: a header
                // recipient outside the envelope would get mail SMTP would not send them.
                let stray: Vec<String> = raw
                    .recipients()
                    .filter(|h| !out.recipients.iter().any(|r| r.email == h.email))
                    .map(|m| m.email.to_string())
                    .collect();
                if !stray.is_empty() {
                    return Err(Error::new(
                        Exit::DataErr,
                        format!("the message names recipients this send leaves out: {}", stray.join(", ")),
                    )
                    .why("Graph delivers a MIME message to everyone in its To/Cc/Bcc headers; it takes no separate envelope")
                    .fix("add them to the recipients, or send with --transport smtp, which delivers to the envelope only"));
                }
                // Envelope recipients the headers lack become Bcc, so nobody is dropped.
                let named: Vec<&Mailbox> = raw.recipients().collect();
                let extra: Vec<Mailbox> = out
                    .recipients
                    .iter()
                    .filter(|r| !named.iter().any(|n| n.email == r.email))
                    .cloned()
                    .collect();
                self.send_mime(out, &raw.with_bcc(&extra)).await
            }
            Content::Built(d) => {
                if let Some(name) = d.non_x_headers().first() {
                    return Err(Error::new(
                        Exit::DataErr,
                        format!("Graph only accepts custom headers named X-…, not {name}"),
                    )
                    .fix(format!(
                        "rename it to X-{name}, or send with --transport smtp"
                    )));
                }
                for f in d.attachments.iter().chain(&d.inline) {
                    if f.size > MAX_ATTACHMENT {
                        return Err(Error::new(
                            Exit::DataErr,
                            format!(
                                "{} is {} MB; Graph takes at most 150 MB per attachment",
                                f.name,
                                f.size / 1_000_000
                            ),
                        )
                        .fix("share the file by link instead"));
                    }
                }
                let estimate: u64 = d
                    .attachments
                    .iter()
                    .chain(&d.inline)
                    .map(|f| f.size.div_ceil(3) * 4 + 512)
                    .sum::<u64>()
                    + d.text.as_ref().map_or(0, |t| t.len() as u64 * 2)
                    + d.html.as_ref().map_or(0, |t| t.len() as u64 * 2)
                    + 8 * 1024;
                if estimate <= REQUEST_LIMIT {
                    let save = !out.no_save_sent;
                    self.send_json(out, d, save).await
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
        .ok_or_else(|| Error::new(Exit::Unavailable, missing).fix("try again"))
}

/// Whether a message of `len` bytes fits Graph's MIME send (base64 inside one request).
pub fn fits_mime_send(len: usize) -> bool {
    (len as u64).div_ceil(3) * 4 <= REQUEST_LIMIT
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `Retry-After` when given, else exponential; plus up to 250 ms of jitter so that
/// throttled clients do not return in lockstep.
fn backoff(retry_after: Option<u64>, attempt: u32) -> Duration {
    let base = Duration::from_secs(retry_after.unwrap_or(1u64 << attempt.min(5)).min(60));
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 250)
        .unwrap_or(0);
    base + Duration::from_millis(u64::from(jitter))
}

fn unreadable(f: &FilePart, e: &std::io::Error) -> Error {
    Error::new(
        Exit::NoInput,
        format!("cannot read {}: {e}", f.path.display()),
    )
    .fix("check that the file is still there and readable")
}

fn recipients(list: &[Mailbox]) -> Vec<Value> {
    list.iter()
        .map(|m| match &m.name {
            Some(n) => json!({ "emailAddress": { "address": m.email.to_string(), "name": n } }),
            None => json!({ "emailAddress": { "address": m.email.to_string() } }),
        })
        .collect()
}

/// The `message` object of sendMail / create message. Graph's JSON has one body: with
/// both --body and --html the HTML goes, and Exchange derives the text alternative.
fn message_json(d: &Draft, attachments: Vec<Value>) -> Value {
    let (kind, content) = match (&d.html, &d.text) {
        (Some(h), _) => ("HTML", h.clone()),
        (None, t) => ("Text", t.clone().unwrap_or_default()),
    };
    let mut m = json!({
        "subject": d.subject,
        "body": { "contentType": kind, "content": content },
        "toRecipients": recipients(&d.to),
    });
    if !d.cc.is_empty() {
        m["ccRecipients"] = json!(recipients(&d.cc));
    }
    if !d.bcc.is_empty() {
        m["bccRecipients"] = json!(recipients(&d.bcc));
    }
    if !d.reply_to.is_empty() {
        m["replyTo"] = json!(recipients(&d.reply_to));
    }
    if let Some(i) = d.importance {
        m["importance"] = json!(i.as_str());
    }
    if !d.headers.is_empty() {
        m["internetMessageHeaders"] = d
            .headers
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect();
    }
    if !attachments.is_empty() {
        m["attachments"] = json!(attachments);
    }
    m
}

fn file_attachment(f: &FilePart, bytes: &[u8]) -> Value {
    let mut a = json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": f.name,
        "contentType": f.content_type,
        "contentBytes": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    if let Some(cid) = &f.content_id {
        a["isInline"] = json!(true);
        a["contentId"] = json!(cid);
    }
    a
}

fn percent_encode(s: &str) -> String {
    oauth2::url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Graph's error JSON, explained: `{"error":{"code","message","innerError":{"request-id"}}}`.
fn graph_error(
    status: StatusCode,
    header_id: Option<String>,
    body: &[u8],
    what: &str,
    acct: &Account,
    retries: u32,
) -> Error {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = v["error"]["code"].as_str().unwrap_or("").to_owned();
    let message = v["error"]["message"].as_str().unwrap_or("").to_owned();
    let request_id = header_id.or_else(|| {
        v["error"]["innerError"]["request-id"]
            .as_str()
            .map(str::to_owned)
    });
    let user = &acct.profile.user;
    let login = acct.login_command();
    let (exit, meaning, fix): (Exit, String, String) = match (status.as_u16(), code.as_str()) {
        (_, "ErrorSendAsDenied") => (Exit::Unavailable, format!("{user} may not send as that mailbox"),
            "ask an Exchange admin to grant Send As or Send on Behalf (Add-RecipientPermission / Set-Mailbox -GrantSendOnBehalfTo) and give the app the delegated Mail.Send.Shared permission (then log in again), or drop --from".into()),
        (_, "ErrorAccessDenied") => (Exit::Unavailable, "access to the mailbox was denied".into(),
            format!("check the app's Mail.Send permission and admin consent, and any application access policy for {user}; then {login}")),
        (_, "NoPermissionsInAccessToken") => (Exit::NoPerm, "the token carries no mail permission".into(),
            format!("grant Mail.Send to the app registration and log in again: {login}")),
        (_, "MailboxNotEnabledForRESTAPI") => (Exit::Unavailable, format!("{user} has no Exchange Online mailbox Graph can use (no licence, or the mailbox is on-premises)"),
            "assign an Exchange Online licence, or send with --transport smtp".into()),
        (_, "ErrorMessageSizeExceeded") => (Exit::DataErr, "the message is larger than the mailbox allows (35 MB by default)".into(),
            "send smaller attachments, or ask an admin to raise MaxSendSize".into()),
        (_, "ErrorQuotaExceeded") => (Exit::Unavailable, format!("the mailbox of {user} is full"),
            "free space in the mailbox, or send with --no-save-sent".into()),
        (_, "InvalidInternetMessageHeader") => (Exit::DataErr, "Graph refused a custom header".into(),
            "name custom headers X-… (--header 'X-Name: value')".into()),
        (_, "ErrorInvalidRecipients") => (Exit::DataErr, "Graph refused a recipient".into(), "check the addresses".into()),
        (401, _) => (Exit::NoPerm, "Graph did not accept the access token, even after a refresh".into(), format!("log in again: {login}")),
        (413, _) => (Exit::DataErr, "the request is too large for Graph".into(),
            format!("log in with --large-attachments ({login} --large-attachments) or send with --transport smtp")),
        (429, _) | (503, _) => (Exit::TempFail, format!("Graph is throttling this mailbox and still was after {retries} retries"),
            "try again later".into()),
        (s, _) if s >= 500 => (Exit::TempFail, "Graph had a server error".into(), "try again later".into()),
        _ => (Exit::Unavailable, "Graph refused the request".into(), "see the message above; the request-id helps Microsoft support".into()),
    };
    let mut why = format!("HTTP {}", status.as_u16());
    if !code.is_empty() {
        why.push_str(&format!(" {code}"));
    }
    if !message.is_empty() {
        why.push_str(&format!(": {message}"));
    }
    why.push_str(&format!(
        " (request-id {})",
        request_id.as_deref().unwrap_or("none")
    ));
    Error::new(exit, format!("{what} failed: {meaning}"))
        .why(why)
        .fix(fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(Some(2), 0) >= Duration::from_secs(2));
        assert!(backoff(Some(2), 0) < Duration::from_millis(2250));
        assert!(backoff(Some(99_999), 0) <= Duration::from_millis(60_250));
        assert!(backoff(None, 10) <= Duration::from_millis(32_250));
    }

    #[test]
    fn json_shape() {
        let d = Draft {
            to: crate::message::parse_mailboxes(&["Ann <a@example.com>".into()], "--to").unwrap(),
            subject: "s".into(),
            text: Some("t".into()),
            headers: vec![("X-A".into(), "1".into())],
            importance: Some(crate::message::Importance::High),
            ..Default::default()
        };
        let m = message_json(&d, vec![]);
        assert_eq!(
            m["toRecipients"][0]["emailAddress"]["address"],
            "a@example.com"
        );
        assert_eq!(m["toRecipients"][0]["emailAddress"]["name"], "Ann");
        assert_eq!(m["body"]["contentType"], "Text");
        assert_eq!(m["importance"], "high");
        assert_eq!(m["internetMessageHeaders"][0]["name"], "X-A");
        assert!(m.get("ccRecipients").is_none());
    }
}
