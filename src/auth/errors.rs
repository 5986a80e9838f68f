//! Identity-provider errors, explained: the AADSTS code, what it means, and the fix.
//!
//! Entra answers `{"error","error_description":"AADSTSnnnnn: …","error_codes":[…]}`. We branch
//! on the AADSTS number where we know it and on the OAuth `error` otherwise, and never show
//! the raw JSON as the only message. The description is the provider's text and carries no
//! secret; trace and correlation IDs are kept for support tickets.

use crate::error::{Error, Exit};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Entra's token-endpoint error body. `oauth2::StandardErrorResponse` drops `error_codes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EntraError {
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

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(d) = self.summary() {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

impl oauth2::ErrorResponse for EntraError {}

impl EntraError {
    pub fn new(error: &str, description: Option<&str>) -> Self {
        EntraError {
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
}

/// What the user was doing, for the fix line.
pub struct Context<'a> {
    /// The exact `mailer login …` command that logs this profile in again.
    pub login_command: &'a str,
    pub client_id: &'a str,
    pub tenant: &'a str,
}

struct Known {
    codes: &'static [u64],
    exit: Exit,
    meaning: &'static str,
    fix: &'static str,
}

/// `{login}` in a fix is replaced by the profile's login command, `{client_id}` and
/// `{tenant}` by the profile's values.
const KNOWN: &[Known] = &[
    Known {
        codes: &[50011],
        exit: Exit::Config,
        meaning: "the redirect URI is not registered for this app",
        fix: "in the app registration add the platform \"Mobile and desktop applications\" with redirect URI http://localhost (Entra ignores the port), or pass the registered URI with --redirect-uri",
    },
    Known {
        codes: &[50020],
        exit: Exit::NoPerm,
        meaning: "the account is not a member of this tenant (a personal account against a work-only app?)",
        fix: "sign in with an account of tenant {tenant}, or use --tenant consumers (personal) / common with an app whose supported account types include personal accounts",
    },
    Known {
        codes: &[50076, 50079],
        exit: Exit::NoPerm,
        meaning: "multi-factor authentication is required",
        fix: "log in again interactively to complete MFA: {login}",
    },
    Known {
        codes: &[53003],
        exit: Exit::NoPerm,
        meaning: "access is blocked by a Conditional Access policy",
        fix: "ask your Entra admin to allow this app, device or location in Conditional Access, then: {login}",
    },
    Known {
        codes: &[65001],
        exit: Exit::NoPerm,
        meaning: "the permissions were not consented (by you or an admin)",
        fix: "log in again and accept the consent prompt ({login}), or have an admin grant consent for Mail.Send, SMTP.Send and offline_access under API permissions",
    },
    Known {
        codes: &[65004],
        exit: Exit::NoPerm,
        meaning: "consent was declined on the sign-in page",
        fix: "log in again and accept the requested permissions: {login}",
    },
    Known {
        codes: &[700016],
        exit: Exit::Config,
        meaning: "no app with client ID {client_id} exists in tenant {tenant}",
        fix: "check --client-id (the Application (client) ID) and --tenant (the tenant the app is registered in, or make the app multi-tenant)",
    },
    Known {
        codes: &[90002],
        exit: Exit::Config,
        meaning: "tenant {tenant} does not exist",
        fix: "pass --tenant as your tenant's GUID or verified domain, or common",
    },
    Known {
        codes: &[7000218],
        exit: Exit::Config,
        meaning: "this app is a confidential (\"Web\") client and needs a client secret",
        fix: "pass the secret with --client-secret-stdin or MAILER_CLIENT_SECRET, or turn on \"Allow public client flows\" and add a \"Mobile and desktop applications\" redirect http://localhost",
    },
    Known {
        codes: &[700025],
        exit: Exit::Config,
        meaning: "this app is a public client, which must not send a client secret",
        fix: "run `mailer logout` (it drops the stored secret), then log in without --client-secret-stdin and with MAILER_CLIENT_SECRET unset",
    },
    Known {
        codes: &[7000215],
        exit: Exit::Config,
        meaning: "the client secret is wrong",
        fix: "copy the secret's Value (not its Secret ID) from Certificates & secrets, then log in again with --client-secret-stdin",
    },
    Known {
        codes: &[7000222],
        exit: Exit::NoPerm,
        meaning: "the client secret has expired",
        fix: "create a new client secret in the app registration (Certificates & secrets), then log in again with it: {login} --client-secret-stdin",
    },
    Known {
        codes: &[700082, 70008, 50173, 50133, 700084],
        exit: Exit::NoPerm,
        meaning: "the login has expired or was revoked (90 days unused, password change, or an admin revoked sessions)",
        fix: "log in again: {login}",
    },
    Known {
        codes: &[9001023, 50194],
        exit: Exit::Config,
        meaning: "this app or grant cannot be used with the common / consumers / organizations endpoint",
        fix: "pass --tenant with your tenant's GUID or domain",
    },
    Known {
        codes: &[700022, 28000, 70011],
        exit: Exit::Config,
        meaning: "the requested scopes are not valid (one token request may name one resource only)",
        fix: "check --scopes, or log in again without it: {login}",
    },
    Known {
        codes: &[700027, 700024, 700023],
        exit: Exit::Config,
        meaning: "the app's signed client assertion was refused (certificate not registered on the app, key and certificate do not match, or the clock is off)",
        fix: "upload the certificate (its public part) under Certificates & secrets, pass the matching --certificate and --private-key, and check the system clock; then {login}",
    },
    Known {
        codes: &[70000],
        exit: Exit::NoPerm,
        meaning: "the sign-in was declined",
        fix: "log in again and complete the sign-in: {login}",
    },
];

/// Turns an identity-provider error into an explained [`Error`]. `action` says what was
/// attempted ("redeeming the sign-in code", "refreshing the access token", …).
pub fn explain(e: &EntraError, action: &str, ctx: &Context) -> Error {
    let code = e.aadsts();
    let fill = |s: &str| {
        s.replace("{login}", ctx.login_command)
            .replace("{client_id}", ctx.client_id)
            .replace("{tenant}", ctx.tenant)
    };
    let (exit, meaning, fix) = match code.and_then(|c| KNOWN.iter().find(|k| k.codes.contains(&c)))
    {
        Some(k) => (k.exit, fill(k.meaning), fill(k.fix)),
        None => by_error_name(&e.error, ctx),
    };
    let tag = match code {
        Some(c) => format!("AADSTS{c}"),
        None => e.error.clone(),
    };
    let mut why = e
        .summary()
        .unwrap_or_else(|| format!("error \"{}\"", e.error));
    if let Some(t) = &e.trace_id {
        why.push_str(&format!(" (trace ID {t}"));
        if let Some(c) = &e.correlation_id {
            why.push_str(&format!(", correlation ID {c}"));
        }
        why.push(')');
    }
    Error::new(exit, format!("{action} failed: {tag}: {meaning}"))
        .why(why)
        .fix(fix)
}

fn by_error_name(error: &str, ctx: &Context) -> (Exit, String, String) {
    let login = format!("log in again: {}", ctx.login_command);
    match error {
        "invalid_grant" => (Exit::NoPerm, "the login is no longer valid".into(), login),
        "access_denied" => (
            Exit::NoPerm,
            "access was denied on the sign-in page".into(),
            format!(
                "sign in and accept the requested permissions, or ask an admin to grant consent; then {login}"
            ),
        ),
        "consent_required" | "interaction_required" | "login_required" => (
            Exit::NoPerm,
            "the identity provider needs the user to sign in interactively".into(),
            login,
        ),
        "invalid_client" | "unauthorized_client" => (
            Exit::Config,
            "the app registration rejected this client".into(),
            "check --client-id, --tenant and the client secret of the app registration".into(),
        ),
        "invalid_scope" => (
            Exit::Config,
            "the requested scopes are not valid".into(),
            "check --scopes and the app's API permissions".into(),
        ),
        "temporarily_unavailable" | "server_error" => (
            Exit::TempFail,
            "the identity provider is temporarily unavailable".into(),
            "try again later".into(),
        ),
        _ => (
            Exit::Unavailable,
            "the identity provider refused the request".into(),
            login,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context {
            login_command: "mailer login --tenant t --client-id c",
            client_id: "c",
            tenant: "t",
        }
    }

    fn entra(error: &str, code: u64, text: &str) -> EntraError {
        EntraError {
            error: error.into(),
            error_description: Some(format!(
                "AADSTS{code}: {text}\r\nTrace ID: abc\r\nCorrelation ID: def\r\nTimestamp: x"
            )),
            error_codes: vec![code],
            trace_id: Some("abc".into()),
            correlation_id: Some("def".into()),
        }
    }

    #[test]
    fn every_code_the_issue_names_is_explained() {
        for (error, code, exit, needle) in [
            ("invalid_request", 50011, 78, "redirect"),
            ("invalid_grant", 50020, 77, "tenant"),
            ("invalid_grant", 50076, 77, "multi-factor"),
            ("invalid_grant", 50079, 77, "multi-factor"),
            ("invalid_grant", 53003, 77, "Conditional Access"),
            ("invalid_grant", 65001, 77, "consent"),
            ("unauthorized_client", 700016, 78, "client ID c"),
            ("invalid_client", 7000218, 78, "client secret"),
            ("invalid_client", 700025, 78, "public client"),
            ("invalid_client", 7000222, 77, "expired"),
            ("invalid_grant", 700082, 77, "expired"),
            ("invalid_grant", 70008, 77, "expired"),
            ("invalid_request", 9001023, 78, "--tenant"),
        ] {
            let err = explain(&entra(error, code, "text"), "redeeming", &ctx());
            let shown = err.to_string();
            assert_eq!(err.code(), exit, "{code}: {shown}");
            assert!(shown.contains(&format!("AADSTS{code}")), "{shown}");
            assert!(shown.contains(needle), "{code}: {shown}");
            assert!(err.fix.is_some(), "{code} has no fix");
            assert!(!shown.contains('{'), "raw JSON or placeholder in {shown}");
            assert!(shown.contains("trace ID abc"), "{shown}");
        }
    }

    #[test]
    fn access_denied_on_the_redirect() {
        let e = EntraError::new(
            "access_denied",
            Some("AADSTS65004: User declined to consent"),
        );
        let err = explain(&e, "signing in", &ctx());
        assert_eq!(err.code(), 77);
        assert!(err.to_string().contains("AADSTS65004"));
        let e = EntraError::new("access_denied", None);
        let err = explain(&e, "signing in", &ctx());
        assert!(err.to_string().contains("access_denied"));
        assert!(err.fix.unwrap().contains("mailer login --tenant t"));
    }

    #[test]
    fn aadsts_from_description_when_codes_are_missing() {
        let e = EntraError::new(
            "invalid_grant",
            Some("AADSTS700082: The refresh token has expired"),
        );
        assert_eq!(e.aadsts(), Some(700082));
        assert_eq!(EntraError::new("x", Some("no code here")).aadsts(), None);
    }

    #[test]
    fn unknown_errors_still_have_a_fix() {
        let e = EntraError::new("invalid_grant", Some("AADSTS12345: something new"));
        let err = explain(&e, "refreshing", &ctx());
        assert_eq!(err.code(), 77);
        assert!(err.fix.unwrap().contains("mailer login"));
    }
}
