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

/// Properties: whatever Graph (or a proxy in front of it) answers, the error is explained
/// in words with a fix and the request-id line, and never panics.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn fill() -> Fill {
        Fill {
            login: "mailer login".into(),
            user: "ada@contoso.example".into(),
            tenant: "contoso.example".into(),
            client_id: "c".into(),
            profile: "default".into(),
        }
    }

    /// Bodies: Graph's error shape with any values, other JSON, HTML pages, bytes.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            crate::strategies::json(&["error", "code", "message", "innerError", "request-id", "date"])
                .prop_map(|v| serde_json::json!({"error": v}).to_string().into_bytes()),
            (any::<String>(), any::<String>(), any::<String>()).prop_map(|(c, m, r)| {
                serde_json::json!({"error": {"code": c, "message": m, "innerError": {"request-id": r}}})
                    .to_string()
                    .into_bytes()
            }),
            prop::sample::select(vec!["ErrorAccessDenied", "ErrorSendAsDenied", "MailboxNotEnabledForRESTAPI", "ErrorQuotaExceeded", "ErrorMessageSizeExceeded"])
                .prop_map(|c| serde_json::json!({"error": {"code": c}}).to_string().into_bytes()),
            Just(b"<html><body>502 Bad Gateway</body></html>".to_vec()),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_answer_is_explained(
            status in 400u16..600,
            header_id in prop::option::of("[a-f0-9-]{1,36}"),
            body in body(),
            retries in 0u32..10,
        ) {
            let status = StatusCode::from_u16(status).unwrap();
            let e = explain(status, header_id.clone(), &body, "sending", &fill(), retries);
            prop_assert!(e.what.starts_with("sending failed: "));
            prop_assert!(e.fix.as_deref().is_some_and(|f| !f.is_empty()));
            let why = e.why.unwrap_or_default();
            prop_assert!(why.starts_with(&format!("HTTP {}", status.as_u16())), "{}", why);
            prop_assert!(why.contains("(request-id "), "{}", why);
            if let Some(id) = header_id {
                prop_assert!(why.contains(&id));
            }
            // Throttling and server errors stay temporary, so a queued message waits.
            if status.as_u16() >= 500 && e.code.is_none() {
                prop_assert_eq!(e.class, Class::Temporary);
            }
        }
    }
}
