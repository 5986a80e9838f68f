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
    fn every_code_has_one_entry() {
        let mut seen = std::collections::HashSet::new();
        for e in TABLE {
            for c in e.codes {
                assert!(seen.insert((e.source, c.to_ascii_lowercase())), "{c} twice");
            }
        }
    }
}
