//! The error answer of an OAuth token endpoint (RFC 6749 section 5.2), as Entra sends it.
//!
//! Entra answers `{"error","error_description":"AADSTSnnnnn: …","error_codes":[…],
//! "trace_id","correlation_id"}`; `oauth2::StandardErrorResponse` would drop `error_codes`.
//! The same shape arrives on the sign-in redirect (`?error=…&error_description=…`). The
//! description is the provider's text and carries no secret; trace and correlation IDs are
//! kept for support tickets. What an error means is the provider's to say
//! ([`crate::provider::Provider::explain`]).

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
    #[serde(default)]
    pub error_codes: Vec<u64>,
    #[serde(default)]
    pub trace_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(d) = self.summary() {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl oauth2::ErrorResponse for TokenError {}

impl TokenError {
    pub fn new(error: &str, description: Option<&str>) -> Self {
        TokenError {
            error: error.to_owned(),
            error_description: description.map(str::to_owned),
            ..Default::default()
        }
    }

    /// The AADSTS number, from `error_codes` or else from the description's prefix.
    pub fn aadsts(&self) -> Option<u64> {
        self.error_codes.first().copied().or_else(|| {
            let d = self.error_description.as_deref()?;
            let rest = &d[d.find("AADSTS")? + 6..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// The description's first line, without the "Trace ID: …" tail Entra appends.
    pub fn summary(&self) -> Option<String> {
        let d = self.error_description.as_deref()?;
        let first = d.split(['\r', '\n']).find(|l| !l.trim().is_empty())?;
        Some(first.trim().to_owned())
    }

    /// The "why" line of an explained error: the provider's words and the support IDs.
    pub fn why(&self) -> String {
        let mut why = self
            .summary()
            .unwrap_or_else(|| format!("error \"{}\"", self.error));
        if let Some(t) = &self.trace_id {
            why.push_str(&format!(" (trace ID {t}"));
            if let Some(c) = &self.correlation_id {
                why.push_str(&format!(", correlation ID {c}"));
            }
            why.push(')');
        }
        why
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_from_description_when_codes_are_missing() {
        let e = TokenError::new(
            "invalid_grant",
            Some("AADSTS700082: The refresh token has expired"),
        );
        assert_eq!(e.aadsts(), Some(700082));
        assert_eq!(TokenError::new("x", Some("no code here")).aadsts(), None);
    }

    #[test]
    fn summary_drops_the_trace_tail() {
        let e = TokenError::new("x", Some("AADSTS1: first\r\nTrace ID: t"));
        assert_eq!(e.summary().as_deref(), Some("AADSTS1: first"));
    }
}

/// Properties: any error answer (JSON or redirect parameters) is read and explained without
/// a panic, and what mailer keeps of one survives a serialize/parse round trip.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    /// Descriptions as Entra writes them and as a broken server might: AADSTS prefixes
    /// (cut short, huge numbers, multi-byte neighbours), CRLF tails, anything.
    fn description() -> impl Strategy<Value = String> {
        prop_oneof![
            "AADSTS[0-9]{0,25}(: [ -~]{0,30})?(\r\nTrace ID: [a-f0-9-]{0,36})?",
            "[ -~é✓]{0,10}AADSTS[0-9é]{0,4}",
            any::<String>(),
        ]
    }

    fn token_error() -> impl Strategy<Value = TokenError> {
        (
            any::<String>(),
            prop::option::of(description()),
            prop::collection::vec(any::<u64>(), 0..3),
            prop::option::of(any::<String>()),
            prop::option::of(any::<String>()),
        )
            .prop_map(|(error, d, codes, trace, corr)| TokenError {
                error,
                error_description: d,
                error_codes: codes,
                trace_id: trace,
                correlation_id: corr,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_description_is_summarized(error in any::<String>(), d in prop::option::of(description())) {
            let e = TokenError::new(&error, d.as_deref());
            let _ = e.aadsts();
            let summary = e.summary();
            prop_assert!(summary.is_none_or(|s| !s.contains(['\r', '\n'])));
            prop_assert!(!e.why().is_empty());
            prop_assert!(e.to_string().starts_with(&error));
        }

        #[test]
        fn the_aadsts_number_is_read_from_the_description(n in 1u64..10_000_000, tail in "[ -~]{0,30}") {
            let e = TokenError::new("invalid_grant", Some(&format!("AADSTS{n}: {tail}")));
            prop_assert_eq!(e.aadsts(), Some(n));
        }

        #[test]
        fn error_answers_round_trip(e in token_error()) {
            let json = serde_json::to_vec(&e).unwrap();
            let back: TokenError = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(back.error, e.error);
            prop_assert_eq!(back.error_description, e.error_description);
            prop_assert_eq!(back.error_codes, e.error_codes);
            prop_assert_eq!(back.trace_id, e.trace_id);
            prop_assert_eq!(back.correlation_id, e.correlation_id);
        }

        #[test]
        fn any_json_as_an_error_answer_never_panics(v in crate::strategies::json(&[
            "error", "error_description", "error_codes", "trace_id", "correlation_id", "timestamp",
        ])) {
            if let Ok(e) = serde_json::from_value::<TokenError>(v) {
                let _ = (e.aadsts(), e.why(), e.to_string());
            }
        }
    }
}
