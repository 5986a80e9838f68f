//! The message: built from `send` flags with lettre's builder ([`Draft`]), or taken whole
//! from stdin or the outbox ([`Raw`]).
//!
//! Owns validation of everything a user types into a message (addresses, header names and
//! values, files), so that bad input fails with exit 64/65/66 before any token or network
//! is touched. Header injection is impossible by construction: lettre encodes every value
//! (RFC 2047), and CR/LF in a value or a non-token header name is refused outright.

mod address;
mod raw;

pub use address::{check_line, dedupe, parse_header, parse_mailbox, parse_mailboxes};
pub use raw::{Raw, encoded_field};

use crate::error::{Class, Error, Result};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Importance {
    Low,
    Normal,
    High,
}

impl Importance {
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
        }
    }
}

/// A file to attach, checked readable when the message is assembled.
#[derive(Debug, Clone)]
pub struct FilePart {
    pub path: PathBuf,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// Set for `--inline` parts: referenced from the HTML as `cid:{content_id}`.
    pub content_id: Option<String>,
}

impl FilePart {
    pub fn open(path: &Path, inline: bool) -> Result<FilePart> {
        let meta = std::fs::metadata(path).map_err(|e| unreadable(path, &e))?;
        if !meta.is_file() {
            return Err(Error::new(
                Class::NoInput,
                format!("{} is not a regular file", path.display()),
            )
            .fix("attach files, not directories"));
        }
        // Opening now catches a file we may see but not read (permissions).
        std::fs::File::open(path).map_err(|e| unreadable(path, &e))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "attachment".into());
        let content_type = mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_owned();
        Ok(FilePart {
            path: path.to_owned(),
            content_id: inline.then(|| name.clone()),
            name,
            content_type,
            size: meta.len(),
        })
    }

    pub fn read(&self) -> Result<Vec<u8>> {
        std::fs::read(&self.path).map_err(|e| unreadable(&self.path, &e))
    }
}

fn unreadable(path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        Class::NoInput,
        format!("cannot read {}: {e}", path.display()),
    )
    .fix("check the path and that you may read the file")
}

/// A message as the `send` flags describe it.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// `--from`: send as / on behalf of this mailbox.
    pub from: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub subject: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<FilePart>,
    pub inline: Vec<FilePart>,
    pub headers: Vec<(String, String)>,
    pub importance: Option<Importance>,
}

impl Draft {
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }

    /// Header names a transport that only takes `X-` headers (Graph) would refuse.
    pub fn non_x_headers(&self) -> Vec<&str> {
        self.headers
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.to_ascii_lowercase().starts_with("x-"))
            .collect()
    }

    /// The RFC 5322 message. `sender` is the From when `--from` is absent.
    pub fn to_mime(&self, sender: &Mailbox, message_id: &str) -> Result<lettre::Message> {
        let from = self.from.clone().unwrap_or_else(|| sender.clone());
        let mut b = lettre::Message::builder()
            .from(from)
            .subject(self.subject.clone())
            .message_id(Some(message_id.to_owned()))
            .user_agent(concat!("mailer/", env!("CARGO_PKG_VERSION")).to_owned());
        if self.from.as_ref().is_some_and(|f| f.email != sender.email) {
            // Sent on behalf of --from by the logged-in user.
            b = b.sender(sender.clone());
        }
        for m in &self.to {
            b = b.to(m.clone());
        }
        for m in &self.cc {
            b = b.cc(m.clone());
        }
        for m in &self.bcc {
            b = b.bcc(m.clone());
        }
        for m in &self.reply_to {
            b = b.reply_to(m.clone());
        }
        if let Some(i) = self.importance {
            let (importance, priority) = match i {
                Importance::Low => ("low", "5"),
                Importance::Normal => ("normal", "3"),
                Importance::High => ("high", "1"),
            };
            b = b
                .raw_header(raw("Importance", importance)?)
                .raw_header(raw("X-Priority", priority)?);
        }
        for (name, value) in &self.headers {
            b = b.raw_header(raw(name, value)?);
        }
        let built = match self.body()? {
            Body::Single(part) => b.singlepart(part),
            Body::Multi(parts) => b.multipart(parts),
        };
        built.map_err(|e| {
            Error::new(
                Class::BadData,
                format!("the message cannot be assembled: {e}"),
            )
            .fix("check the addresses and headers")
        })
    }

    /// text, html, or both as alternatives; inline images make it related; attachments
    /// make it mixed. The simplest structure that carries what was given.
    fn body(&self) -> Result<Body> {
        let mut body = match (&self.text, &self.html) {
            (text, None) => Body::Single(SinglePart::plain(text.clone().unwrap_or_default())),
            (None, Some(html)) => Body::Single(SinglePart::html(html.clone())),
            (Some(text), Some(html)) => Body::Multi(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text.clone()))
                    .singlepart(SinglePart::html(html.clone())),
            ),
        };
        if !self.inline.is_empty() {
            let mut related = body.start(MultiPart::related());
            for f in &self.inline {
                related = related.singlepart(file_part(f)?);
            }
            body = Body::Multi(related);
        }
        if !self.attachments.is_empty() {
            let mut mixed = body.start(MultiPart::mixed());
            for f in &self.attachments {
                mixed = mixed.singlepart(file_part(f)?);
            }
            body = Body::Multi(mixed);
        }
        Ok(body)
    }
}

enum Body {
    Single(SinglePart),
    Multi(MultiPart),
}

impl Body {
    /// A multipart of `kind` whose first part is this body.
    fn start(self, kind: lettre::message::MultiPartBuilder) -> MultiPart {
        match self {
            Body::Single(p) => kind.singlepart(p),
            Body::Multi(m) => kind.multipart(m),
        }
    }
}

fn file_part(f: &FilePart) -> Result<SinglePart> {
    let ct = ContentType::parse(&f.content_type)
        .unwrap_or(ContentType::parse("application/octet-stream").expect("static"));
    let bytes = f.read()?;
    Ok(match &f.content_id {
        Some(cid) => Attachment::new_inline(cid.clone()).body(bytes, ct),
        None => Attachment::new(f.name.clone()).body(bytes, ct),
    })
}

fn raw(name: &str, value: &str) -> Result<HeaderValue> {
    let n = HeaderName::new_from_ascii(name.to_owned()).map_err(|_| bad_header(name))?;
    Ok(HeaderValue::new(n, value.to_owned()))
}

pub(crate) fn bad_header(name: &str) -> Error {
    Error::new(Class::BadData, format!("invalid header name {name:?}"))
        .fix("use --header 'X-Name: value' with a name of letters, digits and '-'")
}

/// A new Message-ID in the sender's domain.
pub fn new_message_id(sender: &Mailbox) -> String {
    format!("<{}@{}>", crate::fsutil::unique_id(), sender.email.domain())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_is_encoded_not_injected() {
        let d = Draft {
            to: parse_mailboxes(&["a@example.com".into()], "--to").unwrap(),
            subject: "Grüße — ünïcode".into(),
            text: Some("hi".into()),
            ..Default::default()
        };
        let sender: Mailbox = "me@example.com".parse().unwrap();
        let bytes = d.to_mime(&sender, "<1@example.com>").unwrap().formatted();
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Subject: =?utf-8?"), "{text}");
        assert!(text.contains("Message-ID: <1@example.com>"));
    }

    #[test]
    fn bcc_never_in_built_bytes_but_in_envelope() {
        let d = Draft {
            to: parse_mailboxes(&["a@example.com".into()], "--to").unwrap(),
            bcc: parse_mailboxes(&["hidden@example.com".into()], "--bcc").unwrap(),
            text: Some("x".into()),
            ..Default::default()
        };
        let m = d
            .to_mime(&"me@example.com".parse().unwrap(), "<1@x>")
            .unwrap();
        assert!(
            !String::from_utf8(m.formatted())
                .unwrap()
                .contains("hidden@")
        );
        assert_eq!(m.envelope().to().len(), 2);
    }
}
