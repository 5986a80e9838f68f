//! Google's error answers, explained: `{"error":{"code","message","errors":[{"reason"}],
//! "status"}}` (Gmail API guides, "Resolve errors"). Known reasons come from the
//! [`crate::explain`] table; the HTTP status says the rest.

use crate::error::{Class, Error};
use crate::explain::{self, Fill, Source};
use reqwest::StatusCode;
use serde_json::Value;

/// Google's error answer: `{"error":{"code","message","errors":[{"reason"}],"status"}}`.
pub(super) struct GoogleError {
    status: StatusCode,
    reason: String,
    message: String,
}

impl GoogleError {
    pub(super) fn parse(status: StatusCode, body: &[u8]) -> GoogleError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let e = &v["error"];
        GoogleError {
            status,
            reason: e["errors"][0]["reason"]
                .as_str()
                .or_else(|| e["status"].as_str())
                .unwrap_or_default()
                .to_owned(),
            message: e["message"].as_str().unwrap_or_default().to_owned(),
        }
    }

    pub(super) fn retryable(&self) -> bool {
        matches!(self.status.as_u16(), 429 | 500 | 502 | 503 | 504)
            || matches!(
                self.reason.as_str(),
                "rateLimitExceeded" | "userRateLimitExceeded" | "backendError"
            )
    }

    /// Gmail says when to retry in its message ("… Retry after 2026-12-07T10:00:00.000Z").
    pub(super) fn retry_after(&self) -> Option<u64> {
        let at = self.message.split("Retry after ").nth(1)?;
        let t = crate::output::parse_rfc3339(at.split_whitespace().next()?)?;
        Some(t.saturating_sub(crate::tokens::now()))
    }

    pub(super) fn explain(&self, what: &str, fill: &Fill, retries: u32) -> Error {
        let entry = explain::lookup(Source::Google, &self.reason);
        let (class, meaning, fix) = match entry {
            Some(e) => (e.class, fill.apply(e.meaning), fill.apply(e.fix)),
            None => by_status(self.status, fill),
        };
        let mut why = format!("HTTP {}", self.status.as_u16());
        if !self.reason.is_empty() {
            why.push_str(&format!(" {}", self.reason));
        }
        if !self.message.is_empty() {
            why.push_str(&format!(": {}", self.message));
        }
        if retries > 0 {
            why.push_str(&format!(" (after {retries} retries)"));
        }
        let fix = match (entry, self.reason.is_empty()) {
            (None, false) => format!(
                "{fix}; {} is described at https://developers.google.com/workspace/gmail/api/guides/handle-errors",
                self.reason
            ),
            _ => fix,
        };
        let e = Error::new(class, format!("{what} failed: {meaning}"))
            .why(why)
            .fix(fix);
        match self.reason.is_empty() {
            true => e,
            false => e.code(self.reason.clone()),
        }
    }
}

fn by_status(status: StatusCode, fill: &Fill) -> (Class, String, String) {
    match status.as_u16() {
        401 => (
            Class::LoginNeeded,
            "the Gmail API did not accept the access token".into(),
            fill.apply("log in again: {login}"),
        ),
        403 => (
            Class::Refused,
            "the Gmail API refused the send".into(),
            "check that the account may use Gmail and the login consented to gmail.send".into(),
        ),
        400 | 413 => (
            Class::BadData,
            "the Gmail API refused the message".into(),
            "check the addresses and headers (mailer send --dry-run shows the message)".into(),
        ),
        _ => (
            Class::Temporary,
            "the Gmail API failed".into(),
            "try again later (with --queue the message waits in the outbox)".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_errors_are_read_and_classified() {
        let body = br#"{"error":{"code":429,"message":"User-rate limit exceeded.  Retry after 2999-01-01T00:00:00.000Z (Mail sending)","errors":[{"message":"x","domain":"usageLimits","reason":"rateLimitExceeded"}],"status":"RESOURCE_EXHAUSTED"}}"#;
        let e = GoogleError::parse(StatusCode::TOO_MANY_REQUESTS, body);
        assert!(e.retryable());
        assert!(e.retry_after().unwrap() > 86_400);
        let err = e.explain("sending", &Fill::default(), 4);
        assert_eq!(err.class, Class::Temporary);
        assert_eq!(err.code.as_deref(), Some("rateLimitExceeded"));

        let body = br#"{"error":{"code":400,"message":"Invalid To header","errors":[{"domain":"global","reason":"invalidArgument","message":"Invalid To header"}],"status":"INVALID_ARGUMENT"}}"#;
        let e = GoogleError::parse(StatusCode::BAD_REQUEST, body);
        assert!(!e.retryable());
        let err = e.explain("sending", &Fill::default(), 0);
        assert_eq!(err.class, Class::BadData);
        assert!(err.why.unwrap().contains("Invalid To header"));

        let e = GoogleError::parse(StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert!(e.retryable());
        assert_eq!(
            e.explain("sending", &Fill::default(), 1).class,
            Class::Temporary
        );
    }
}

/// Google's error bodies come from the network: any of them is read and explained without
/// a panic, with a class and a fix, and Gmail's own words never lose the reason.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            crate::strategies::json(&["error", "code", "message", "errors", "reason", "status", "domain"])
                .prop_map(|v| serde_json::json!({ "error": v }).to_string().into_bytes()),
            (any::<String>(), any::<String>(), any::<String>()).prop_map(|(r, m, st)| {
                serde_json::json!({"error": {"code": 429, "message": m, "errors": [{"reason": r}], "status": st}})
                    .to_string()
                    .into_bytes()
            }),
            "Retry after [0-9T:.Z-]{0,30}".prop_map(|m| {
                serde_json::json!({"error": {"message": m, "errors": [{"reason": "rateLimitExceeded"}]}})
                    .to_string()
                    .into_bytes()
            }),
            prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_answer_is_explained(status in 400u16..600, body in body(), retries in 0u32..5) {
            let status = StatusCode::from_u16(status).unwrap();
            let e = GoogleError::parse(status, &body);
            let _ = e.retryable();
            let _ = e.retry_after();
            let err = e.explain("sending", &Fill::default(), retries);
            prop_assert!(err.fix.is_some());
            prop_assert!(err.what.starts_with("sending failed"));
            if !e.reason.is_empty() {
                prop_assert_eq!(err.code.as_deref(), Some(e.reason.as_str()));
            }
        }
    }
}
