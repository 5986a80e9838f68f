//! A small MIME reader for assertions: splits a message into its leaf parts with headers
//! unfolded and bodies decoded (base64, quoted-printable, 7bit/8bit), so tests can check
//! delivered bytes part by part and compare structures across transports.

#![allow(dead_code)]

use base64::Engine;

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

fn split(bytes: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut pos = 0;
    let mut head_end = bytes.len();
    let mut body_start = bytes.len();
    for line in bytes.split_inclusive(|b| *b == b'\n') {
        if line == b"\r\n" || line == b"\n" {
            head_end = pos;
            body_start = pos + line.len();
            break;
        }
        pos += line.len();
    }
    let text = String::from_utf8_lossy(&bytes[..head_end]);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(l) = headers.last_mut() {
                l.1.push(' ');
                l.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    (headers, &bytes[body_start.min(bytes.len())..])
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
            base64::engine::general_purpose::STANDARD
                .decode(clean)
                .expect("valid base64 part")
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
