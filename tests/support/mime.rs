//! The one MIME reader of the tests, for the fakes and for assertions:
//!
//! - [`headers`]: a header section read strictly (fields unfolded, names checked), as a
//!   server reads what a client sent (the fake Graph's MIME form does); [`edit_fields`] to
//!   change it the way a server does before it stores a message (Gmail drops `Bcc`);
//! - [`address_list`], [`is_address`] and [`decode_words`]: RFC 5322 address lists and RFC 2047
//!   encoded words, as a server reads recipients and subjects;
//! - [`parse`]: a whole message split into its leaf parts with bodies decoded (base64,
//!   quoted-printable, 7bit/8bit), so tests can check delivered bytes part by part and compare
//!   structures across transports.

#![allow(dead_code)]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

#[derive(Debug, Clone)]
pub struct Part {
    pub headers: Vec<(String, String)>,
    /// Lower-case essence, e.g. "text/plain".
    pub content_type: String,
    pub filename: Option<String>,
    pub content_id: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    /// Nested content types, e.g. "multipart/mixed[multipart/alternative[text/plain,text/html],application/pdf]".
    pub structure: String,
    pub leaves: Vec<Part>,
}

impl Parsed {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }
    pub fn leaf(&self, content_type: &str) -> Option<&Part> {
        self.leaves.iter().find(|p| p.content_type == content_type)
    }
    pub fn attachment(&self, filename: &str) -> Option<&Part> {
        self.leaves
            .iter()
            .find(|p| p.filename.as_deref() == Some(filename))
    }
}

fn find<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads a whole message; panics (naming the problem) when its header section is malformed.
pub fn parse(bytes: &[u8]) -> Parsed {
    let (headers, body) = split(bytes);
    let mut leaves = Vec::new();
    let structure = walk(&headers, body, &mut leaves);
    Parsed {
        headers,
        structure,
        leaves,
    }
}

/// `(name, value)` of one header field, the value unfolded and trimmed.
pub type Field = (String, String);

/// Why a header section could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The first line is neither a field nor empty: there is no header section at all.
    NoHeaders,
    /// This line (1-based) is neither a field nor the continuation of one.
    Malformed(usize),
}

/// Reads the header section of `bytes`, up to the first empty line, strictly: each field is
/// `name: value` with a name of printable ASCII; a line starting with white space continues
/// the field before it (unfolded as RFC 5322 2.2.3 says: the line break goes, the white space
/// stays); values are trimmed. Returns the fields in order and what follows the empty line
/// (nothing without one).
pub fn headers(bytes: &[u8]) -> Result<(Vec<Field>, &[u8]), HeaderError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = 0;
    for (n, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
        pos += raw.len();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok((trimmed(fields), &bytes[pos..]));
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with([' ', '\t']) {
            match fields.last_mut() {
                Some((_, value)) => value.push_str(&line),
                None => return Err(HeaderError::NoHeaders),
            }
            continue;
        }
        let field = line.split_once(':').filter(|(name, _)| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
        });
        match field {
            Some((name, value)) => fields.push((name.to_string(), value.trim().to_string())),
            None if fields.is_empty() => return Err(HeaderError::NoHeaders),
            None => return Err(HeaderError::Malformed(n + 1)),
        }
    }
    Ok((trimmed(fields), &bytes[bytes.len()..]))
}

/// `bytes` with its header section edited field by field: `edit(name, raw)` sees each field's
/// name and raw bytes (continuation lines and line ends included) and answers `None` to keep
/// it or `Some(replacement)` (empty: the field is dropped). The body is left as it is, byte
/// for byte; so is a message whose header section [`headers`] refuses.
pub fn edit_fields(bytes: &[u8], mut edit: impl FnMut(&str, &[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    if headers(bytes).is_err() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len() + 256);
    // Start offset and name of the field being read.
    let mut current: Option<(usize, String)> = None;
    let mut flush = |current: &mut Option<(usize, String)>, end: usize, out: &mut Vec<u8>| {
        if let Some((start, name)) = current.take() {
            let raw = &bytes[start..end];
            match edit(&name, raw) {
                None => out.extend_from_slice(raw),
                Some(replacement) => out.extend_from_slice(&replacement),
            }
        }
    };
    let mut pos = 0;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        let start = pos;
        pos += raw.len();
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            flush(&mut current, start, &mut out);
            out.extend_from_slice(&bytes[start..]);
            return out;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            continue;
        }
        flush(&mut current, start, &mut out);
        let name = String::from_utf8_lossy(line)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        current = Some((start, name));
    }
    flush(&mut current, bytes.len(), &mut out);
    out
}

/// The line end a message uses (that of its first line): `\r\n` or `\n`.
pub fn line_end(bytes: &[u8]) -> &'static str {
    match bytes.iter().position(|b| *b == b'\n') {
        Some(i) if i > 0 && bytes[i - 1] == b'\r' => "\r\n",
        Some(_) => "\n",
        None => "\r\n",
    }
}

fn trimmed(fields: Vec<Field>) -> Vec<Field> {
    fields
        .into_iter()
        .map(|(name, value)| (name, value.trim_end().to_string()))
        .collect()
}

/// [`headers`] for [`parse`], which reads what mailer produced: a malformed section is a bug.
fn split(bytes: &[u8]) -> (Vec<Field>, &[u8]) {
    headers(bytes).unwrap_or_else(|e| {
        panic!(
            "malformed MIME header section ({e:?}):\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        )
    })
}

fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

fn walk(headers: &[(String, String)], body: &[u8], leaves: &mut Vec<Part>) -> String {
    let ct_header = find(headers, "Content-Type").unwrap_or("text/plain");
    let essence = ct_header
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("multipart/") {
        let boundary = param(ct_header, "boundary").expect("multipart without boundary");
        let delim = format!("--{boundary}");
        let text = body;
        let mut children = Vec::new();
        let mut rest: &[u8] = text;
        // Skip the preamble, then cut at each delimiter line.
        let positions: Vec<usize> = find_all(rest, delim.as_bytes());
        for w in positions.windows(2) {
            let start = w[0] + delim.len();
            let mut chunk = &rest[start..w[1]];
            chunk = chunk
                .strip_prefix(b"\r\n")
                .or_else(|| chunk.strip_prefix(b"\n"))
                .unwrap_or(chunk);
            chunk = chunk
                .strip_suffix(b"\r\n")
                .or_else(|| chunk.strip_suffix(b"\n"))
                .unwrap_or(chunk);
            let (h, b) = split(chunk);
            children.push(walk(&h, b, leaves));
        }
        rest = &rest[..0];
        let _ = rest;
        return format!("{essence}[{}]", children.join(","));
    }
    let encoding = find(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            STANDARD.decode(clean).expect("valid base64 part")
        }
        "quoted-printable" => decode_qp(body),
        _ => body.to_vec(),
    };
    let disposition = find(headers, "Content-Disposition").unwrap_or("");
    leaves.push(Part {
        headers: headers.to_vec(),
        content_type: essence.clone(),
        filename: param(disposition, "filename").or_else(|| param(ct_header, "name")),
        content_id: find(headers, "Content-ID").map(|v| v.trim_matches(['<', '>']).to_owned()),
        body: decoded,
    });
    essence
}

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let at_line_start = i == 0 || hay[i - 1] == b'\n';
        if at_line_start && &hay[i..i + needle.len()] == needle {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

fn decode_qp(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'=' if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if body.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 2 < body.len() => {
                let hex = std::str::from_utf8(&body[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

// ---- addresses and encoded words ----

/// `(display name, address)` of one mailbox.
pub type Address = (Option<String>, String);

/// An RFC 5322 address list, kept simple: `Name <a@b>`, `"Quoted, Name" <a@b>` or bare `a@b`,
/// comma separated; comments dropped, groups flattened, display names decoded
/// ([`decode_words`]). `None` when an address is invalid ([`is_address`]).
pub fn address_list(s: &str) -> Option<Vec<Address>> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut escaped, mut angle, mut comment) = (false, false, false, 0u32);
    for c in s.chars() {
        if escaped {
            if comment == 0 {
                cur.push(c);
            }
            escaped = false;
            continue;
        }
        if c == '\\' && (quoted || comment > 0) {
            escaped = true;
            if comment == 0 {
                cur.push(c);
            }
            continue;
        }
        if quoted {
            quoted = c != '"';
            cur.push(c);
            continue;
        }
        if comment > 0 {
            match c {
                '(' => comment += 1,
                ')' => comment -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                quoted = true;
                cur.push(c);
            }
            '(' => comment = 1,
            '<' => {
                angle = true;
                cur.push(c);
            }
            '>' => {
                angle = false;
                cur.push(c);
            }
            ',' | ';' if !angle => items.push(std::mem::take(&mut cur)),
            // `group-name: a@b, c@d;`: the group name is not an address.
            ':' if !angle => cur.clear(),
            _ => cur.push(c),
        }
    }
    items.push(cur);

    let mut out = Vec::new();
    for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
        let (name, address) = match item.find('<') {
            Some(open) => {
                let close = item.rfind('>')?;
                if close < open || !item[close + 1..].trim().is_empty() {
                    return None;
                }
                let name = item[..open].trim();
                let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
                    Some(q) => unquote(q),
                    None => decode_words(name),
                };
                (
                    (!name.is_empty()).then_some(name),
                    item[open + 1..close].trim(),
                )
            }
            None => (None, item),
        };
        if !is_address(address) {
            return None;
        }
        out.push((name, address.to_string()));
    }
    Some(out)
}

/// `local@domain`, both non-empty, no whitespace, controls or address-list punctuation.
pub fn is_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let clean = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| !c.is_whitespace() && !c.is_control() && !"<>,;:\"()[]\\@".contains(c))
    };
    clean(local)
        && clean(domain)
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

fn unquote(s: &str) -> String {
    let mut out = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?utf-8?B?…?=`, `=?utf-8?Q?…?=`; UTF-8, US-ASCII and
/// ISO-8859-1), dropping the whitespace between adjacent encoded words.
pub fn decode_words(s: &str) -> String {
    let mut out = String::new();
    // Bytes of adjacent encoded words are joined before UTF-8 decoding: an encoder may split a
    // character across words.
    let mut pending: Vec<u8> = Vec::new();
    let mut last_encoded = false;
    let mut rest = s;
    while let Some(i) = rest.find("=?") {
        let (before, at) = rest.split_at(i);
        match decode_word(at) {
            Some((bytes, used)) => {
                // Whitespace between two encoded words is not part of the text.
                if !(last_encoded && before.trim().is_empty()) {
                    out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                    out.push_str(before);
                }
                pending.extend_from_slice(&bytes);
                last_encoded = true;
                rest = &at[used..];
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                out.push_str(before);
                out.push_str("=?");
                last_encoded = false;
                rest = &at[2..];
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its bytes as UTF-8 and its length in `s`.
fn decode_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if text.contains([' ', '\t']) {
        return None;
    }
    let used = 2 + charset.len() + 1 + encoding.len() + 1 + end + 2;
    let raw = if encoding.eq_ignore_ascii_case("b") {
        STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?
    } else if encoding.eq_ignore_ascii_case("q") {
        let b = text.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'_' => out.push(b' '),
                b'=' => {
                    let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        out
    } else {
        return None;
    };
    // RFC 2231 allows `charset*language`.
    let charset = charset.split('*').next().unwrap_or_default();
    if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii") {
        Some((raw, used))
    } else if charset.eq_ignore_ascii_case("iso-8859-1") || charset.eq_ignore_ascii_case("latin1") {
        Some((
            raw.iter()
                .map(|&b| b as char)
                .collect::<String>()
                .into_bytes(),
            used,
        ))
    } else {
        None
    }
}
