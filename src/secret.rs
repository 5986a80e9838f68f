//! A string that must never be printed: tokens, client secrets, authorization codes.
//!
//! `Debug` and `Display` redact, so a secret that slips into a log line, an error or a panic
//! shows as `[redacted]`. The only way to the value is [`Secret::expose`], which makes every
//! place that hands a secret to the wire easy to find with grep.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("hunter2-token");
        assert!(!format!("{s} {s:?} {s:#?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-token");
        // Serialization is how it reaches the token store, and must keep the value.
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2-token\"");
    }
}
