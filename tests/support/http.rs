//! A deliberately small blocking HTTP/1.1 client over `std::net::TcpStream`, for talking to the
//! local fakes from test code. It speaks plain `http://` only, sends `Connection: close`, never
//! follows redirects (tests need to see the `302` and its `Location`), and understands both
//! `Content-Length` and chunked response bodies. Also holds the form/percent codecs that the
//! fakes and the tests share, so both sides encode the same way.

// Shared test support: every test crate that includes it uses only part of it.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Generous, but bounded: a hung fake must fail the test, not hang it.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A complete HTTP response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy, for assertions and messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body in the message when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
}

/// Sends one request and panics on transport errors (a test cannot continue without an answer).
/// `url` is `http://host:port/path?query`.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    try_request(method, url, headers, body)
        .unwrap_or_else(|e| panic!("HTTP {method} {url} failed: {e}"))
}

/// `GET url?query`, the query given as decoded pairs (`Form`s and query pairs, as tests
/// keep and edit them).
pub fn get_with_query(url: &str, query: &[(String, String)]) -> Response {
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    request("GET", &format!("{url}?{}", form_encode(&pairs)), &[], b"")
}

/// `POST` of an `application/x-www-form-urlencoded` body built from `pairs`.
pub fn post_form(url: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Response {
    let mut all = vec![("Content-Type", "application/x-www-form-urlencoded")];
    all.extend_from_slice(headers);
    request("POST", url, &all, form_encode(pairs).as_bytes())
}

/// Like [`request`], but returns transport errors instead of panicking.
pub fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("only http:// URLs are supported: {url}")))?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, target) = rest.split_at(split);
    let target = match target {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let sock = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("cannot resolve {authority}")))?;

    let mut stream = TcpStream::connect_timeout(&sock, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    // Small request/response pairs: without this, Nagle + delayed ACK add ~40 ms stalls.
    stream.set_nodelay(true)?;

    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !has("Host") {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has("Connection") {
        head.push_str("Connection: close\r\n");
    }
    let bodyless = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    if !has("Content-Length") && (!body.is_empty() || !bodyless) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    read_response(&mut stream, method.eq_ignore_ascii_case("HEAD"))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn read_response(stream: &mut TcpStream, head_request: bool) -> io::Result<Response> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Interim 1xx answers are skipped; a server sends at most a couple, so this stays bounded.
    for _ in 0..8 {
        let end = loop {
            if let Some(pos) = find(&buf, b"\r\n\r\n") {
                break pos;
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(invalid("connection closed before the response head".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut rest = buf.split_off(end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line: {status_line}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if (100..200).contains(&status) {
            buf = rest;
            continue;
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let body = if head_request || status == 204 || status == 304 {
            Vec::new()
        } else if get("Transfer-Encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            // We asked for Connection: close, so the end of the stream bounds the chunks.
            stream.read_to_end(&mut rest)?;
            decode_chunked(&rest)?
        } else if let Some(len) = get("Content-Length") {
            let len: usize = len
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length: {len}")))?;
            while rest.len() < len {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    return Err(invalid(format!(
                        "body truncated: {} of {len} bytes",
                        rest.len()
                    )));
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            rest.truncate(len);
            rest
        } else {
            stream.read_to_end(&mut rest)?;
            rest
        };
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
    Err(invalid("too many interim (1xx) responses".into()))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn decode_chunked(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").ok_or_else(|| invalid("bad chunk header".into()))?;
        let line = String::from_utf8_lossy(&data[..line_end]);
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| invalid(format!("bad chunk size: {size_hex}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err(invalid("chunk truncated".into()));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters (so also valid inside a
/// form body, a query string or a Basic-auth component).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one form/query component: `+` is a space, `%XX` a byte. `None` when a `%` escape
/// is malformed or the result is not UTF-8 (a strict server rejects such input).
pub fn percent_decode(s: &str) -> Option<String> {
    decode(s, true)
}

/// Decodes `%XX` escapes of a URL path segment; `+` stays `+` (addresses like `a+tag@b` are
/// common in paths). `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode_path(s: &str) -> Option<String> {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Builds an `application/x-www-form-urlencoded` body or query string.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses a form body or query string into decoded pairs, in order, duplicates kept.
/// `None` when any component is malformed.
pub fn parse_form(s: &str) -> Option<Vec<(String, String)>> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// The decoded query pairs of a URL (e.g. a `Location` header); empty when it has no query.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    parse_form(query).unwrap_or_default()
}

/// `Content-Range: bytes a-b/total` (decimal digits only) as `(a, b, total)`.
pub fn parse_content_range(v: &str) -> Option<(u64, u64, u64)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((digits(a)?, digits(b)?, digits(total)?))
}

/// A non-empty run of decimal digits as a number.
pub fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse::<u64>().ok())
        .flatten()
}

/// First value of `key` in decoded pairs.
pub fn pair<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
