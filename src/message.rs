//! The message: built from `send` flags with lettre's builder, or taken whole from stdin
//! (`--raw`, sendmail). SPEC sections 1 and 6.
//!
//! Owns validation of everything a user types into a message (addresses, header names and
//! values, files), so that bad input fails with exit 64/65/66 before any token or network
//! is touched. Header injection is impossible by construction: lettre encodes every value,
//! and CR/LF in a value or a non-token header name is refused outright.

use crate::error::{Error, Exit, Result};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, Mailboxes, MultiPart, SinglePart};
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
                Exit::NoInput,
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
        Exit::NoInput,
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
                Exit::DataErr,
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

fn bad_header(name: &str) -> Error {
    Error::new(Exit::DataErr, format!("invalid header name {name:?}"))
        .fix("use --header 'X-Name: value' with a name of letters, digits and '-'")
}

/// Parses `--to`/`--cc`/`--bcc`/`--reply-to` values: repeatable, each a comma list, display
/// names accepted (`"Doe, Jane" <jane@example.com>`).
pub fn parse_mailboxes(values: &[String], flag: &str) -> Result<Vec<Mailbox>> {
    let mut out = Vec::new();
    for v in values {
        if v.trim().is_empty() {
            continue;
        }
        check_line(v, flag)?;
        let list: Mailboxes = v.parse().map_err(|e| {
            Error::new(Exit::DataErr, format!("invalid address in {flag} {v:?}: {e}"))
                .fix("write addresses as user@example.com or \"Name <user@example.com>\", separated by commas")
        })?;
        out.extend(list);
    }
    Ok(out)
}

pub fn parse_mailbox(v: &str, flag: &str) -> Result<Mailbox> {
    let mut list = parse_mailboxes(&[v.to_owned()], flag)?;
    match list.len() {
        1 => Ok(list.remove(0)),
        _ => Err(Error::new(
            Exit::DataErr,
            format!("{flag} takes exactly one address, got {v:?}"),
        )
        .fix(format!("pass one address to {flag}"))),
    }
}

/// `--header 'X-Name: value'`.
pub fn parse_header(h: &str) -> Result<(String, String)> {
    check_line(h, "--header")?;
    let Some((name, value)) = h.split_once(':') else {
        return Err(
            Error::new(Exit::DataErr, format!("--header {h:?} has no ':'"))
                .fix("use --header 'X-Name: value'"),
        );
    };
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(bad_header(name));
    }
    const RESERVED: [&str; 10] = [
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "sender",
        "reply-to",
        "mime-version",
    ];
    if RESERVED.contains(&name.to_ascii_lowercase().as_str())
        || name.to_ascii_lowercase().starts_with("content-")
    {
        return Err(
            Error::new(Exit::DataErr, format!("--header cannot set {name}"))
                .fix("use the dedicated flag (--to, --subject, --reply-to, ...)"),
        );
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// CR or LF in a one-line value would start a new header: refuse it.
pub fn check_line(v: &str, what: &str) -> Result<()> {
    if v.contains(['\r', '\n']) {
        return Err(
            Error::new(Exit::DataErr, format!("{what} contains a line break"))
                .why("a line break in a header value would inject a header")
                .fix(format!("remove CR/LF from {what}")),
        );
    }
    Ok(())
}

/// A new Message-ID in the sender's domain.
pub fn new_message_id(sender: &Mailbox) -> String {
    format!("<{}@{}>", crate::fsutil::unique_id(), sender.email.domain())
}

/// A complete message taken from stdin (`--raw`, sendmail).
#[derive(Debug, Clone)]
pub struct Raw {
    pub bytes: Vec<u8>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub bcc: Vec<Mailbox>,
    pub subject: Option<String>,
    pub message_id: Option<String>,
}

impl Raw {
    pub fn parse(bytes: Vec<u8>) -> Result<Raw> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(Error::usage("the message on stdin is empty")
                .fix("pipe a complete RFC 5322 message into mailer"));
        }
        let headers = header_fields(&bytes);
        if headers.is_empty() {
            return Err(
                Error::new(Exit::DataErr, "the message on stdin has no header section").fix(
                    "start the message with headers such as To: and Subject:, then an empty line",
                ),
            );
        }
        let list = |name: &str| -> Result<Vec<Mailbox>> {
            let mut out = Vec::new();
            for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
                let v = v.trim();
                // "undisclosed-recipients:;" is an empty group.
                if v.is_empty() || v.ends_with(":;") {
                    continue;
                }
                let parsed: Mailboxes = v.parse().map_err(|e| {
                    Error::new(Exit::DataErr, format!("invalid {name}: header {v:?}: {e}"))
                        .fix(format!("fix the {name}: header of the message"))
                })?;
                out.extend(parsed);
            }
            Ok(out)
        };
        let single = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        Ok(Raw {
            to: list("To")?,
            cc: list("Cc")?,
            bcc: list("Bcc")?,
            subject: single("Subject"),
            message_id: single("Message-ID"),
            bytes,
        })
    }

    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }

    /// The bytes with every `Bcc:` field removed: what an SMTP recipient may see.
    pub fn without_bcc(&self) -> Vec<u8> {
        without_field(&self.bytes, "Bcc")
    }

    /// Replaces every `name:` field by `field` (a complete header line as lettre encodes it),
    /// placed first, with the message's own line ends.
    pub fn set_field(&mut self, name: &str, field: &str) {
        let eol = if self.bytes.windows(2).any(|w| w == b"\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let mut out = field.trim_end().replace("\r\n", eol).into_bytes();
        out.extend_from_slice(eol.as_bytes());
        out.extend_from_slice(&without_field(&self.bytes, name));
        self.bytes = out;
    }

    /// The unfolded value of the first `name:` field.
    pub fn field(&self, name: &str) -> Option<String> {
        header_fields(&self.bytes)
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The bytes with one `Bcc:` field naming the message's Bcc recipients plus `extra`,
    /// for a transport that delivers to the header recipients only (Graph MIME send):
    /// nobody of the envelope is dropped, and there is never a second Bcc field.
    pub fn with_bcc(&self, extra: &[Mailbox]) -> Vec<u8> {
        if extra.is_empty() {
            return self.bytes.clone();
        }
        let mut all = Mailboxes::new();
        for m in self.bcc.iter().chain(extra) {
            all.push(m.clone());
        }
        let mut copy = self.clone();
        copy.set_field(
            "Bcc",
            &encoded_field(lettre::message::header::Bcc::from(all)),
        );
        copy.bytes
    }
}

/// The message without the header field `name` (all occurrences, folded lines included).
fn without_field(bytes: &[u8], name: &str) -> Vec<u8> {
    let (head, body) = split_head(bytes);
    let prefix = format!("{name}:");
    let mut out = Vec::with_capacity(bytes.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            skipping = line.len() >= prefix.len()
                && line[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes());
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// A header line as lettre encodes it (RFC 2047 for non-ASCII names), e.g. `From: …\r\n`.
pub fn encoded_field<H: lettre::message::header::Header>(h: H) -> String {
    let mut headers = lettre::message::header::Headers::new();
    headers.set(h);
    headers.to_string()
}

/// Splits at the first empty line; the head keeps its final line break.
fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return bytes.split_at(pos);
        }
        pos += line.len();
    }
    (bytes, &[])
}

/// Unfolded `(name, value)` header fields of a message.
fn header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let (head, _) = split_head(bytes);
    let text = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            let n = n.trim();
            if !n.is_empty() && !n.contains(' ') {
                fields.push((n.to_owned(), v.trim().to_owned()));
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_lists() {
        let v = parse_mailboxes(
            &[
                "a@example.com, \"Doe, Jane\" <jane@example.com>".into(),
                "Bob <b@example.com>".into(),
            ],
            "--to",
        )
        .unwrap();
        let emails: Vec<_> = v.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(
            emails,
            ["a@example.com", "jane@example.com", "b@example.com"]
        );
        assert_eq!(v[1].name.as_deref(), Some("Doe, Jane"));
        for bad in [
            "not an address",
            "a@",
            "a@example.com\r\nBcc: evil@example.com",
        ] {
            let e = parse_mailboxes(&[bad.into()], "--to").unwrap_err();
            assert_eq!(e.code(), 65, "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Ticket: 42").unwrap(),
            ("X-Ticket".into(), "42".into())
        );
        for (bad, code) in [
            ("X-A: b\r\nBcc: x", 65),
            ("No colon", 65),
            ("Bad Name: v", 65),
            ("Subject: x", 65),
            ("Content-Type: x", 65),
        ] {
            assert_eq!(parse_header(bad).unwrap_err().code(), code, "{bad}");
        }
    }

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

    #[test]
    fn raw_messages() {
        let msg = b"From: me@example.com\r\nTo: a@example.com,\r\n\tb@example.com\r\nBcc: secret@example.com,\r\n  other@example.com\r\nSubject: hi\r\n\r\nBcc: in the body stays\r\n".to_vec();
        let r = Raw::parse(msg).unwrap();
        assert_eq!(r.to.len(), 2);
        assert_eq!(r.bcc.len(), 2);
        assert_eq!(r.subject.as_deref(), Some("hi"));
        let stripped = String::from_utf8(r.without_bcc()).unwrap();
        assert!(
            !stripped.contains("secret@") && !stripped.contains("other@"),
            "{stripped}"
        );
        assert!(stripped.contains("Bcc: in the body stays"));
        assert!(stripped.starts_with(
            "From: me@example.com\r\nTo: a@example.com,\r\n\tb@example.com\r\nSubject: hi\r\n\r\n"
        ));
        let added = String::from_utf8(r.with_bcc(&["x@example.com".parse().unwrap()])).unwrap();
        assert!(
            added.starts_with("Bcc: secret@example.com, other@example.com, x@example.com\r\nFrom:"),
            "{added}"
        );
        assert_eq!(
            added.matches("Bcc:").count(),
            2,
            "one header field plus the body line: {added}"
        );
        assert_eq!(Raw::parse(b"  \n".to_vec()).unwrap_err().code(), 64);
        assert_eq!(
            Raw::parse(b"To: not an address\n\nx".to_vec())
                .unwrap_err()
                .code(),
            65
        );
        assert!(
            Raw::parse(b"To: undisclosed-recipients:;\nSubject: s\n\nx".to_vec())
                .unwrap()
                .to
                .is_empty()
        );
    }
}
