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
    /// SMTP enhanced status codes (RFC 3463) as Exchange Online sends them.
    Smtp,
}

pub struct Entry {
    pub source: Source,
    /// The codes this entry explains, as the server prints them (without "AADSTS").
    pub codes: &'static [&'static str],
    /// What a failure with this code is: decides the exit code and whether a message waits
    /// in the outbox.
    pub class: Class,
    pub meaning: &'static str,
    pub fix: &'static str,
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

use Class::*;
use Source::*;

const TABLE: &[Entry] = &[
    Entry {
        source: Entra,
        codes: &["50011"],
        class: Config,
        meaning: "the redirect URI is not registered for this app",
        fix: "in the app registration add the platform \"Mobile and desktop applications\" with redirect URI http://localhost (Entra ignores the port), or pass the registered URI with --redirect-uri",
    },
    Entry {
        source: Entra,
        codes: &["50020"],
        class: LoginNeeded,
        meaning: "the account is not a member of this tenant (a personal account against a work-only app?)",
        fix: "sign in with an account of tenant {tenant}, or use --tenant consumers (personal) / common with an app whose supported account types include personal accounts",
    },
    Entry {
        source: Entra,
        codes: &["50076", "50079"],
        class: LoginNeeded,
        meaning: "multi-factor authentication is required",
        fix: "log in again interactively to complete MFA: {login}",
    },
    Entry {
        source: Entra,
        codes: &["53003"],
        class: LoginNeeded,
        meaning: "access is blocked by a Conditional Access policy",
        fix: "ask your Entra admin to allow this app, device or location in Conditional Access, then: {login}",
    },
    Entry {
        source: Entra,
        codes: &["65001"],
        class: LoginNeeded,
        meaning: "the permissions were not consented (by you or an admin)",
        fix: "log in again and accept the consent prompt ({login}), or have an admin grant consent for Mail.Send, SMTP.Send and offline_access under API permissions",
    },
    Entry {
        source: Entra,
        codes: &["65004"],
        class: LoginNeeded,
        meaning: "consent was declined on the sign-in page",
        fix: "log in again and accept the requested permissions: {login}",
    },
    Entry {
        source: Entra,
        codes: &["700016"],
        class: Config,
        meaning: "no app with client ID {client_id} exists in tenant {tenant}",
        fix: "check --client-id (the Application (client) ID) and --tenant (the tenant the app is registered in, or make the app multi-tenant)",
    },
    Entry {
        source: Entra,
        codes: &["90002"],
        class: Config,
        meaning: "tenant {tenant} does not exist",
        fix: "pass --tenant as your tenant's GUID or verified domain, or common",
    },
    Entry {
        source: Entra,
        codes: &["7000218"],
        class: Config,
        meaning: "this app is a confidential (\"Web\") client and needs a client secret",
        fix: "pass the secret with --client-secret-stdin or MAILER_CLIENT_SECRET, or turn on \"Allow public client flows\" and add a \"Mobile and desktop applications\" redirect http://localhost",
    },
    Entry {
        source: Entra,
        codes: &["700025"],
        class: Config,
        meaning: "this app is a public client, which must not send a client secret",
        fix: "run `mailer logout` (it drops the stored secret), then log in without --client-secret-stdin and with MAILER_CLIENT_SECRET unset",
    },
    Entry {
        source: Entra,
        codes: &["7000215"],
        class: Config,
        meaning: "the client secret is wrong",
        fix: "copy the secret's Value (not its Secret ID) from Certificates & secrets, then log in again with --client-secret-stdin",
    },
    Entry {
        source: Entra,
        codes: &["7000222"],
        class: LoginNeeded,
        meaning: "the client secret has expired",
        fix: "create a new client secret in the app registration (Certificates & secrets), then log in again with it: {login} --client-secret-stdin",
    },
    Entry {
        source: Entra,
        codes: &["700082", "70008", "50173", "50133", "700084"],
        class: LoginNeeded,
        meaning: "the login has expired or was revoked (90 days unused, password change, or an admin revoked sessions)",
        fix: "log in again: {login}",
    },
    Entry {
        source: Entra,
        codes: &["9001023", "50194"],
        class: Config,
        meaning: "this app or grant cannot be used with the common / consumers / organizations endpoint",
        fix: "pass --tenant with your tenant's GUID or domain",
    },
    Entry {
        source: Entra,
        codes: &["700022", "28000", "70011"],
        class: Config,
        meaning: "the requested scopes are not valid (one token request may name one resource only)",
        fix: "check --scopes, or log in again without it: {login}",
    },
    Entry {
        source: Entra,
        codes: &["700027", "700024", "700023"],
        class: Config,
        meaning: "the app's signed client assertion was refused (certificate not registered on the app, key and certificate do not match, or the clock is off)",
        fix: "upload the certificate (its public part) under Certificates & secrets, pass the matching --certificate and --private-key, and check the system clock; then {login}",
    },
    Entry {
        source: Entra,
        codes: &["70000"],
        class: LoginNeeded,
        meaning: "the sign-in was declined",
        fix: "log in again and complete the sign-in: {login}",
    },
    Entry {
        source: Graph,
        codes: &["ErrorSendAsDenied"],
        class: Refused,
        meaning: "{user} may not send as that mailbox",
        fix: "ask an Exchange admin to grant Send As or Send on Behalf (Add-RecipientPermission / Set-Mailbox -GrantSendOnBehalfTo) and give the app the delegated Mail.Send.Shared permission (then log in again), or drop --from",
    },
    Entry {
        source: Graph,
        codes: &["ErrorAccessDenied"],
        class: Refused,
        meaning: "access to the mailbox was denied",
        fix: "check the app's Mail.Send permission and admin consent, and any application access policy for {user}; then {login}",
    },
    Entry {
        source: Graph,
        codes: &["NoPermissionsInAccessToken"],
        class: LoginNeeded,
        meaning: "the token carries no mail permission",
        fix: "grant Mail.Send to the app registration and log in again: {login}",
    },
    Entry {
        source: Graph,
        codes: &["MailboxNotEnabledForRESTAPI"],
        class: Refused,
        meaning: "{user} has no Exchange Online mailbox Graph can use (no licence, or the mailbox is on-premises)",
        fix: "assign an Exchange Online licence, or send with --transport smtp",
    },
    Entry {
        source: Graph,
        codes: &["ErrorMessageSizeExceeded"],
        class: BadData,
        meaning: "the message is larger than the mailbox allows (35 MB by default)",
        fix: "send smaller attachments, or ask an admin to raise MaxSendSize",
    },
    Entry {
        source: Graph,
        codes: &["ErrorQuotaExceeded"],
        class: Refused,
        meaning: "the mailbox of {user} is full",
        fix: "free space in the mailbox, or send with --no-save-sent",
    },
    Entry {
        source: Graph,
        codes: &["InvalidInternetMessageHeader"],
        class: BadData,
        meaning: "Graph refused a custom header",
        fix: "name custom headers X-… (--header 'X-Name: value')",
    },
    Entry {
        source: Graph,
        codes: &["ErrorInvalidRecipients"],
        class: BadData,
        meaning: "Graph refused a recipient",
        fix: "check the addresses",
    },
    Entry {
        source: Smtp,
        codes: &["5.7.139"],
        class: Refused,
        meaning: "SMTP AUTH is disabled for this mailbox or tenant",
        fix: "an Exchange admin can enable it (Set-CASMailbox -Identity {user} -SmtpClientAuthenticationDisabled $false, or the tenant-wide Set-TransportConfig -SmtpClientAuthenticationDisabled $false); or send with --transport graph",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

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
