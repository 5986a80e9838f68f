//! What the servers' error codes mean and how to fix them: one table, read by every error
//! mailer prints about a server's answer.
//!
//! Entries are keyed by where the code comes from ([`Source`]) and the code as the server
//! prints it (the AADSTS number, a Graph error code, an SMTP enhanced status code). A fix
//! may name `{login}` (the profile's exact `mailer login …` command), `{user}`, `{tenant}`,
//! `{client_id}` and `{profile}`; [`Fill`] puts the profile's values in. Only data and
//! lookups here: the modules that read a server's answer decide which code it carries.

use crate::error::Class;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Microsoft Entra ID (AADSTS codes of the token endpoint and the sign-in page).
    Entra,
    /// Microsoft Graph error codes (`error.code` of its JSON errors).
    Graph,
    /// SMTP enhanced status codes (RFC 3463) as Exchange Online and Gmail send them.
    Smtp,
    /// Google's OAuth and Gmail API errors.
    Google,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Entra => "entra",
            Source::Graph => "graph",
            Source::Smtp => "smtp",
            Source::Google => "google",
        }
    }
}

pub struct Entry {
    pub source: Source,
    /// The codes this entry explains, as the server prints them (without "AADSTS").
    pub codes: &'static [&'static str],
    /// What a failure with this code is: decides the exit code and whether a message waits
    /// in the outbox.
    pub class: Class,
    /// What the server means, in one sentence.
    pub meaning: &'static str,
    /// The likely cause for someone who logged in once and sends from cron.
    pub cause: &'static str,
    /// The exact fix: a `mailer` command, a portal path, or an admin's PowerShell line.
    pub fix: &'static str,
    /// The provider's page the meaning was checked against ("" when none was found).
    pub docs: &'static str,
    /// The failure is particular to this transport: the other one may well deliver.
    pub fallback: bool,
}

/// The profile's values for the placeholders of a fix.
#[derive(Clone, Debug, Default)]
pub struct Fill {
    pub login: String,
    pub user: String,
    pub tenant: String,
    pub client_id: String,
    pub profile: String,
}

impl Fill {
    pub fn apply(&self, text: &str) -> String {
        text.replace("{login}", &self.login)
            .replace("{user}", &self.user)
            .replace("{tenant}", &self.tenant)
            .replace("{client_id}", &self.client_id)
            .replace("{profile}", &self.profile)
    }
}

/// A code as a person types it, or as a server printed it: `AADSTS70043`, `70043`,
/// `535 5.7.139`, `5.7.139`, `ErrorSendAsDenied`, `invalid_grant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The canonical form: `AADSTS70043`, `5.7.139`, `ErrorSendAsDenied`.
    pub code: String,
    /// Where such a code comes from, when its form says so.
    pub source: Option<Source>,
    /// The key the table is searched by.
    key: String,
}

impl Query {
    pub fn parse(text: &str) -> Query {
        let text = text.trim();
        if let Some(enhanced) = crate::transport::smtp::enhanced_code(text) {
            return Query {
                code: enhanced.clone(),
                source: Some(Source::Smtp),
                key: enhanced,
            };
        }
        let digits = text
            .strip_prefix("AADSTS")
            .or_else(|| text.strip_prefix("aadsts"))
            .unwrap_or(text);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Query {
                code: format!("AADSTS{digits}"),
                source: Some(Source::Entra),
                key: digits.to_owned(),
            };
        }
        Query {
            code: text.to_owned(),
            source: None,
            key: text.to_owned(),
        }
    }

    /// The entries this code may be, the preferred source first.
    pub fn matches(&self, prefer: Source) -> Vec<&'static Entry> {
        let mut found: Vec<&'static Entry> = TABLE
            .iter()
            .filter(|e| self.source.is_none_or(|s| s == e.source))
            .filter(|e| e.codes.iter().any(|c| c.eq_ignore_ascii_case(&self.key)))
            .collect();
        found.sort_by_key(|e| e.source != prefer);
        found
    }

    /// Where to look up a code this table does not know.
    pub fn docs(&self) -> String {
        match self.source {
            Some(Source::Entra) => format!("https://login.microsoftonline.com/error?code={}", self.key),
            Some(Source::Smtp) => "https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online".into(),
            _ => "https://learn.microsoft.com/graph/errors".into(),
        }
    }
}

/// Every entry, for listings and tests.
pub fn entries() -> &'static [Entry] {
    TABLE
}

/// Where to read about `code` from `source` when the table does not know it: the line an
/// error message ends with, so that an unknown code still leads somewhere.
pub fn docs_for_unknown(source: Source, code: &str) -> String {
    let q = Query::parse(code);
    match (source, q.source) {
        (Source::Entra, Some(Source::Entra)) | (Source::Graph | Source::Smtp, _) => Query {
            source: Some(source),
            ..q
        }
        .docs(),
        (Source::Entra, _) => {
            "https://learn.microsoft.com/entra/identity-platform/reference-error-codes".into()
        }
        (Source::Google, _) => "https://developers.google.com/identity/protocols/oauth2".into(),
    }
}

pub fn lookup(source: Source, code: &str) -> Option<&'static Entry> {
    TABLE
        .iter()
        .find(|e| e.source == source && e.codes.iter().any(|c| c.eq_ignore_ascii_case(code)))
}

mod table;
use table::TABLE;

#[cfg(test)]
mod tests {
    use super::*;

    use Class::*;
    use Source::*;

    #[test]
    fn unknown_codes_lead_to_the_providers_pages() {
        assert_eq!(
            docs_for_unknown(Entra, "AADSTS1234567"),
            "https://login.microsoftonline.com/error?code=1234567"
        );
        assert!(docs_for_unknown(Entra, "weird_error").contains("reference-error-codes"));
        assert_eq!(
            docs_for_unknown(Graph, "ErrorSomethingNew"),
            "https://learn.microsoft.com/graph/errors"
        );
        assert!(docs_for_unknown(Smtp, "5.9.9").contains("non-delivery-reports"));
    }

    #[test]
    fn lookups_by_source_and_code() {
        assert_eq!(lookup(Entra, "70008").unwrap().class, LoginNeeded);
        assert!(lookup(Graph, "70008").is_none());
        assert!(lookup(Graph, "errorsendasdenied").is_some());
        let fill = Fill {
            user: "ops@contoso.com".into(),
            ..Default::default()
        };
        assert!(
            fill.apply(lookup(Smtp, "5.7.139").unwrap().fix)
                .contains("ops@contoso.com")
        );
    }

    #[test]
    fn codes_in_every_form() {
        for (text, code, source) in [
            ("AADSTS70043", "AADSTS70043", Some(Entra)),
            ("70043", "AADSTS70043", Some(Entra)),
            ("535 5.7.139", "5.7.139", Some(Smtp)),
            ("5.7.139", "5.7.139", Some(Smtp)),
            ("ErrorSendAsDenied", "ErrorSendAsDenied", None),
            ("invalid_grant", "invalid_grant", None),
        ] {
            let q = Query::parse(text);
            assert_eq!((q.code.as_str(), q.source), (code, source), "{text}");
        }
        assert_eq!(
            Query::parse("errorsendasdenied").matches(Entra)[0].source,
            Graph
        );
        assert!(Query::parse("AADSTS1").matches(Entra).is_empty());
    }

    #[test]
    fn every_code_has_one_entry() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            for c in e.codes {
                assert!(seen.insert((e.source, c.to_ascii_lowercase())), "{c} twice");
            }
        }
    }
}
