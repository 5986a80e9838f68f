//! A complete message taken whole (`send --raw`, sendmail, the outbox): its header fields
//! read (RFC 5322 section 2.2, folding undone), its recipients, and the few edits mailer
//! makes to it (From, Message-ID, Date, Bcc).

use crate::error::{Class, Error, Result};
use lettre::message::{Mailbox, Mailboxes};

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
        check_text(&bytes)?;
        let headers = header_fields(&bytes);
        if headers.is_empty() {
            return Err(
                Error::new(Class::BadData, "the message on stdin has no header section").fix(
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
                    Error::new(Class::BadData, format!("invalid {name}: header {v:?}: {e}"))
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

impl Raw {
    /// The bytes for a transport that delivers to the recipients in the headers and takes
    /// no envelope (Graph's MIME send). A header recipient outside the envelope would get
    /// mail an envelope-based transport would not send them, so that is refused; envelope
    /// recipients the headers lack are added as Bcc, so that nobody is dropped.
    pub fn for_header_delivery(&self, envelope: &[Mailbox]) -> Result<Vec<u8>> {
        let stray: Vec<String> = self
            .recipients()
            .filter(|h| !envelope.iter().any(|r| r.email == h.email))
            .map(|m| m.email.to_string())
            .collect();
        if !stray.is_empty() {
            return Err(Error::new(
                Class::BadData,
                format!("the message names recipients this send leaves out: {}", stray.join(", ")),
            )
            .why("Graph delivers a MIME message to everyone in its To/Cc/Bcc headers; it takes no separate envelope")
            .fix("add them to the recipients, or send with --transport smtp, which delivers to the envelope only"));
        }
        let extra: Vec<Mailbox> = envelope
            .iter()
            .filter(|r| !self.recipients().any(|n| n.email == r.email))
            .cloned()
            .collect();
        Ok(self.with_bcc(&extra))
    }
}

impl Raw {
    /// Makes a message from cron or a script fit to submit as `sender`: mail from those
    /// often carries `From: root (Cron Daemon)`, which Exchange refuses to send as, so the
    /// From address becomes `sender`'s, keeping the display name (or `full_name`, sendmail's
    /// `-F`). A missing Message-ID or Date is added, as sendmail does (RFC 5322 section
    /// 3.6 requires a Date; Message-ID "SHOULD" be there).
    pub fn submit_as(
        &mut self,
        sender: &Mailbox,
        full_name: Option<&str>,
        fallback_name: Option<&str>,
    ) {
        use lettre::message::header;
        let current = self.field("From");
        let current_box = current.as_deref().and_then(|f| f.parse::<Mailbox>().ok());
        if current_box.as_ref().map(|m| &m.email) != Some(&sender.email) {
            let name = full_name
                .map(str::to_owned)
                .or_else(|| current_box.and_then(|m| m.name))
                .or_else(|| current.as_deref().and_then(comment))
                .or_else(|| fallback_name.map(str::to_owned));
            let from =
                header::From::from(Mailboxes::from(Mailbox::new(name, sender.email.clone())));
            self.set_field("From", &encoded_field(from));
        }
        if self.message_id.is_none() {
            let id = super::new_message_id(sender);
            self.set_field("Message-ID", &format!("Message-ID: {id}"));
            self.message_id = Some(id);
        }
        if self.field("Date").is_none() {
            self.set_field("Date", &encoded_field(header::Date::now()));
        }
    }
}

/// Longest line RFC 5322 (section 2.1.1) allows, without its CRLF.
const MAX_LINE: usize = 998;

/// What no server takes as mail, refused before any is asked: NUL bytes (RFC 5322 has no
/// place for them; servers refuse or strip them) and header lines over [`MAX_LINE`] (SMTP
/// servers cut or refuse them). Long body lines are left to the server: some generated
/// reports have them and Exchange takes them.
fn check_text(bytes: &[u8]) -> Result<()> {
    if let Some(at) = bytes.iter().position(|b| *b == 0) {
        return Err(Error::new(
            Class::BadData,
            format!("the message contains a NUL byte (at byte {at})"),
        )
        .why("mail is text: RFC 5322 has no place for NUL, and servers refuse or mangle it")
        .fix("send binary data as an attachment (mailer send --attach FILE), or strip the NULs (tr -d '\\000')"));
    }
    let (head, _) = split_head(bytes);
    let mut field = String::new();
    for line in head.split_inclusive(|b| *b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            let name = text.split(|b| *b == b':').next().unwrap_or_default();
            field = String::from_utf8_lossy(&name[..name.len().min(40)]).into_owned();
        }
        if text.len() > MAX_LINE {
            return Err(Error::new(
                Class::BadData,
                format!(
                    "the {field}: header has a line of {} characters; RFC 5322 allows {MAX_LINE}",
                    text.len()
                ),
            )
            .why("SMTP servers cut or refuse longer lines")
            .fix(format!(
                "fold the {field}: value onto more lines, each continuation starting with a space"
            )));
        }
    }
    Ok(())
}

/// `root (Cron Daemon)` → `Cron Daemon`.
fn comment(from: &str) -> Option<String> {
    let start = from.find('(')?;
    let end = from.rfind(')')?;
    let inner = from.get(start + 1..end)?.trim();
    (!inner.is_empty()).then(|| inner.to_owned())
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
    fn display_name_from_a_comment() {
        assert_eq!(
            comment("root (Cron Daemon)").as_deref(),
            Some("Cron Daemon")
        );
        assert_eq!(comment("root"), None);
    }

    #[test]
    fn submitted_as_the_sender() {
        let mut r =
            Raw::parse(b"From: root (Cron Daemon)\nTo: a@example.com\n\nbody\n".to_vec()).unwrap();
        r.submit_as(&"ops@contoso.com".parse().unwrap(), None, None);
        let text = String::from_utf8(r.bytes.clone()).unwrap();
        assert!(
            text.contains("From: \"Cron Daemon\" <ops@contoso.com>\n")
                || text.contains("From: Cron Daemon <ops@contoso.com>\n"),
            "{text}"
        );
        assert!(
            text.contains("Message-ID: <") && text.contains("Date: "),
            "{text}"
        );
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
        assert_eq!(
            Raw::parse(b"  \n".to_vec()).unwrap_err().class,
            Class::Usage
        );
        assert_eq!(
            Raw::parse(b"To: not an address\n\nx".to_vec())
                .unwrap_err()
                .class,
            Class::BadData
        );
        let nul = Raw::parse(b"To: a@example.com\n\nx\0y".to_vec()).unwrap_err();
        assert_eq!(nul.class, Class::BadData);
        assert!(nul.what.contains("NUL"), "{}", nul.what);
        let long = format!("To: a@example.com\nX-Long: {}\n\nbody", "x".repeat(999));
        let long = Raw::parse(long.into_bytes()).unwrap_err();
        assert!(
            long.what.contains("X-Long") && long.what.len() < 200,
            "{}",
            long.what
        );
        let folded = format!(
            "To: a@example.com\nX-Long: {}\n {}\n\n{}",
            "x".repeat(900),
            "y".repeat(900),
            "z".repeat(5000)
        );
        assert!(
            Raw::parse(folded.into_bytes()).is_ok(),
            "folded headers and long body lines pass"
        );
        assert!(
            Raw::parse(b"To: undisclosed-recipients:;\nSubject: s\n\nx".to_vec())
                .unwrap()
                .to
                .is_empty()
        );
    }
}
