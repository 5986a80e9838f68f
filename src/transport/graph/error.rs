//! Graph's error answers, explained: `{"error":{"code","message","innerError":{"request-id"}}}`
//! ("Microsoft Graph error responses and resource types"). Named codes come from the
//! [`crate::explain`] table; the HTTP status says the rest. The `request-id` is always
//! shown, for support tickets.

use crate::error::{Class, Error};
use crate::explain::{self, Fill, Source};
use reqwest::StatusCode;
use serde_json::Value;

pub fn explain(
    status: StatusCode,
    header_id: Option<String>,
    body: &[u8],
    what: &str,
    fill: &Fill,
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
    let entry = explain::lookup(Source::Graph, &code);
    let (class, meaning, fix) = match entry {
        Some(e) => (e.class, fill.apply(e.meaning), fill.apply(e.fix)),
        None => by_status(status, fill, retries),
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
    // A code the table does not know still leads somewhere.
    let fix = match (entry, code.is_empty()) {
        (None, false) => format!(
            "{fix}; {code} is described at {}",
            explain::docs_for_unknown(Source::Graph, &code)
        ),
        _ => fix,
    };
    let e = Error::new(class, format!("{what} failed: {meaning}"))
        .why(why)
        .fix(fix)
        .transport_specific(entry.is_some_and(|e| e.fallback));
    match code.is_empty() {
        true => e,
        false => e.code(code),
    }
}

fn by_status(status: StatusCode, fill: &Fill, retries: u32) -> (Class, String, String) {
    let login = &fill.login;
    match status.as_u16() {
        401 => (
            Class::LoginNeeded,
            "Graph did not accept the access token, even after a refresh".into(),
            format!("log in again: {login}"),
        ),
        413 => (
            Class::BadData,
            "the request is too large for Graph".into(),
            format!(
                "log in with --large-attachments ({login} --large-attachments) or send with --transport smtp"
            ),
        ),
        429 | 503 => (
            Class::Temporary,
            format!("Graph is throttling this mailbox and still was after {retries} retries"),
            "try again later".into(),
        ),
        s if s >= 500 => (
            Class::Temporary,
            "Graph had a server error".into(),
            "try again later".into(),
        ),
        _ => (
            Class::Refused,
            "Graph refused the request".into(),
            "see the message above; the request-id helps Microsoft support".into(),
        ),
    }
}
