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
                let parsed: Mailboxes = parse_list(v).map_err(|e| {
                    Error::new(Class::BadData, format!("invalid {name}: header {v:?}: {e}"))
                        .fix(format!("fix the {name}: header of the message"))
                })?;
                out.extend(parsed.into_iter().map(|m| Mailbox {
                    name: m.name.as_deref().and_then(display_name),
                    ..m
                }));
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
                .or_else(|| fallback_name.map(str::to_owned))
                .as_deref()
                .and_then(display_name);
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
        if !is_continuation(line) {
            field = field_name(line).unwrap_or_else(|| "(unnamed)".into());
            field.truncate(field.char_indices().nth(40).map_or(field.len(), |(i, _)| i));
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

/// An address list from a header. lettre writes a display name of letters, digits, `.`,
/// `-` and `_` unquoted, even one that starts with a dot (`.NET Team`), which its own
/// parser then refuses (RFC 5322 has no phrase starting with "."): such names are read
/// as if quoted, so that a message mailer built (and queued) reads back.
fn parse_list(v: &str) -> std::result::Result<Mailboxes, lettre::address::AddressError> {
    v.parse()
        .or_else(|e| quote_bare_names(v).parse().map_err(|_| e))
}

/// `.NET <a@b>, x@y` → `".NET" <a@b>, x@y`: bare display names quoted.
fn quote_bare_names(v: &str) -> String {
    let mut items = Vec::new();
    let (mut start, mut quoted, mut angle) = (0, false, false);
    for (i, c) in v.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&v[start..]);
    let quote = |item: &str| match item.split_once('<') {
        Some((name, rest))
            if !name.trim().is_empty()
                && name
                    .trim()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._- ".contains(&b)) =>
        {
            format!("\"{}\" <{rest}", name.trim())
        }
        _ => item.trim().to_owned(),
    };
    items.into_iter().map(quote).collect::<Vec<_>>().join(", ")
}

/// A display name fit for a header mailer writes: control characters (a bare CR in a
/// From comment, a `-F` with a line break) become spaces, because lettre's encoder refuses
/// them with an error its `Display` turns into a panic. `None` when nothing is left.
fn display_name(name: &str) -> Option<String> {
    let words: Vec<&str> = name
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `root (Cron Daemon)` → `Cron Daemon`.
fn comment(from: &str) -> Option<String> {
    let start = from.find('(')?;
    let end = from.rfind(')')?;
    let inner = from.get(start + 1..end)?.trim();
    (!inner.is_empty()).then(|| inner.to_owned())
}

/// The message without the header field `name` (all occurrences, folded lines included).
/// Fields are told apart exactly as [`header_fields`] reads them, so that what is removed
/// is what was read (a `Bcc :` with obsolete white space before the colon included).
fn without_field(bytes: &[u8], name: &str) -> Vec<u8> {
    let (head, body) = split_head(bytes);
    let mut out = Vec::with_capacity(bytes.len());
    let mut skipping = false;
    for line in head.split_inclusive(|b| *b == b'\n') {
        if !is_continuation(line) {
            skipping = field_name(line).is_some_and(|n| n.eq_ignore_ascii_case(name));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

fn is_continuation(line: &[u8]) -> bool {
    line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
}

/// The name of the field a (non-continuation) header line starts: the text before the
/// colon, white space before the colon allowed (RFC 5322 section 4.5.3); `None` for a line
/// that starts no field.
fn field_name(line: &[u8]) -> Option<String> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = String::from_utf8_lossy(&line[..colon]);
    let name = name.trim_end_matches([' ', '\t']);
    (!name.is_empty() && !name.contains([' ', '\t'])).then(|| name.to_owned())
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

/// Unfolded `(name, value)` header fields of a message. A line that is neither a field nor
/// a continuation starts nothing, and continuations after it belong to no field, as in
/// [`without_field`]: an edit never moves text into another field.
fn header_fields(bytes: &[u8]) -> Vec<(String, String)> {
    let (head, _) = split_head(bytes);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut current = false;
    for raw in head.split_inclusive(|b| *b == b'\n') {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if is_continuation(line) {
            if let (true, Some(last)) = (current, fields.last_mut()) {
                last.1.push(' ');
                last.1.push_str(text.trim());
            }
            continue;
        }
        current = match field_name(line) {
            Some(n) => {
                let value = text.split_once(':').map_or("", |(_, v)| v).trim();
                fields.push((n, value.to_owned()));
                true
            }
            None => false,
        };
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
    fn control_characters_never_reach_a_written_name() {
        // Found by fuzzing (fuzz/fuzz_targets/raw_message.rs): a bare CR in the From
        // comment, or a -F with a line break, made lettre's encoder fail inside a panic.
        let mut r = Raw::parse(
            b"From: root (C Daemon)\rCB <0@example.com>\r\nTo: a@example.com\r\n\r\nx".to_vec(),
        )
        .unwrap();
        r.submit_as(&"ops@contoso.com".parse().unwrap(), None, None);
        let mut r = Raw::parse(b"To: a@example.com\n\nx".to_vec()).unwrap();
        r.submit_as(
            &"ops@contoso.com".parse().unwrap(),
            Some("a\r\nBcc: b"),
            None,
        );
        assert!(r.field("From").unwrap().ends_with("<ops@contoso.com>"));
        assert!(r.field("Bcc").is_none() && !r.bytes.contains(&b'\r'));
        assert_eq!(display_name(" \t\r "), None);
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

    // One message walked through every edit a send makes of it, in order.
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
        // lettre writes a name starting with "." bare; it still reads back.
        let dot =
            Raw::parse(b"To: .NET Team <a@example.com>, b@example.com\n\nx".to_vec()).unwrap();
        assert_eq!(dot.to.len(), 2);
        assert_eq!(dot.to[0].name.as_deref(), Some(".NET Team"));
        // Obsolete white space before the colon: still a Bcc field, read and removed.
        let spaced =
            Raw::parse(b"To: a@example.com\nBcc : hidden@example.com\n\nx".to_vec()).unwrap();
        assert_eq!(spaced.bcc.len(), 1);
        assert!(
            !String::from_utf8(spaced.without_bcc())
                .unwrap()
                .contains("hidden@")
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

/// Properties: any bytes on stdin are judged without a panic; the edits mailer makes keep
/// one Bcc field and the rest of the message; a message lettre built reads back the same.
#[cfg(test)]
mod props {
    use super::super::address::strategies::mailbox;
    use super::*;
    use proptest::prelude::*;

    /// Messages rich in what the reader must get right: header-like lines, folding,
    /// CRLF and LF, empty lines, 8-bit bytes, NUL, long lines.
    fn message() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                "(To|Cc|Bcc|From|Subject|Message-ID|X-[a-z]{1,5})[ \t]?: [ -~]{0,30}\r?\n"
                    .prop_map(String::into_bytes),
                "[ \t][ -~]{0,20}\r?\n".prop_map(String::into_bytes),
                Just(b"\r\n".to_vec()),
                Just(b"\n".to_vec()),
                "[a-z@.<>,;: \"]{0,20}\r?\n".prop_map(String::into_bytes),
                prop::collection::vec(any::<u8>(), 0..16),
                (990usize..1010).prop_map(|n| [
                    b"X-Long: ".to_vec(),
                    vec![b'x'; n],
                    b"\n".to_vec()
                ]
                .concat()),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    fn bcc_fields(bytes: &[u8]) -> usize {
        header_fields(bytes)
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Bcc"))
            .count()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_message_parses_or_is_refused_as_bad_input(bytes in message()) {
            match Raw::parse(bytes.clone()) {
                Ok(r) => {
                    prop_assert_eq!(&r.bytes, &bytes);
                    prop_assert_eq!(bcc_fields(&r.without_bcc()), 0);
                    let _ = r.for_header_delivery(&r.to);
                    let mut sent = r.clone();
                    sent.submit_as(&"me@example.com".parse().unwrap(), Some("Me"), None);
                    prop_assert_eq!(sent.field("From").map(|f| f.contains("me@example.com")), Some(true));
                    prop_assert!(sent.field("Date").is_some() && sent.message_id.is_some());
                    // The edits moved no text between fields: it reads back, same recipients.
                    let again = Raw::parse(sent.bytes.clone()).unwrap();
                    let emails = |l: &[Mailbox]| l.iter().map(|m| m.email.to_string()).collect::<Vec<_>>();
                    prop_assert_eq!(emails(&again.to), emails(&r.to));
                    prop_assert_eq!(emails(&again.bcc), emails(&r.bcc));
                }
                Err(e) => {
                    prop_assert!(matches!(e.class, Class::Usage | Class::BadData), "{}", e);
                    prop_assert!(e.fix.is_some());
                    // A refusal names the problem without echoing a whole long line.
                    prop_assert!(e.what.len() < 400, "{}", e.what);
                }
            }
        }

        #[test]
        fn with_bcc_keeps_one_field_naming_everyone(
            bcc in prop::collection::vec(mailbox(), 0..3),
            extra in prop::collection::vec(mailbox(), 1..3),
            crlf in any::<bool>(),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = format!("To: a@example.com{eol}");
            for m in &bcc {
                text.push_str(&format!("Bcc: {m}{eol}"));
            }
            text.push_str(&format!("Subject: s{eol}{eol}Bcc: body line{eol}"));
            let r = Raw::parse(text.into_bytes()).unwrap();
            let out = r.with_bcc(&extra);
            prop_assert_eq!(bcc_fields(&out), 1);
            let again = Raw::parse(out.clone()).unwrap();
            let want: Vec<String> = bcc.iter().chain(&extra).map(|m| m.email.to_string()).collect();
            let got: Vec<String> = again.bcc.iter().map(|m| m.email.to_string()).collect();
            prop_assert_eq!(got, want);
            let tail = format!("Bcc: body line{eol}");
            prop_assert!(out.ends_with(tail.as_bytes()));
        }

        #[test]
        fn a_built_message_parses_back_to_the_same_headers(
            to in prop::collection::vec(mailbox(), 1..4),
            cc in prop::collection::vec(mailbox(), 0..3),
            subject in "[A-Za-z0-9!?.,:()-]{1,12}( [A-Za-z0-9!?.,:()-]{1,12}){0,15}",
        ) {
            let d = crate::message::Draft {
                to: to.clone(),
                cc: cc.clone(),
                subject: subject.clone(),
                text: Some("body".into()),
                ..Default::default()
            };
            let sender: Mailbox = "me@example.com".parse().unwrap();
            let bytes = d.to_mime(&sender, "<1@example.com>").unwrap().formatted();
            let r = Raw::parse(bytes).unwrap();
            let emails = |l: &[Mailbox]| l.iter().map(|m| m.email.to_string()).collect::<Vec<_>>();
            prop_assert_eq!(emails(&r.to), emails(&to));
            prop_assert_eq!(emails(&r.cc), emails(&cc));
            prop_assert_eq!(r.subject.as_deref(), Some(subject.as_str()));
            prop_assert_eq!(r.message_id.as_deref(), Some("<1@example.com>"));
        }
    }
}
