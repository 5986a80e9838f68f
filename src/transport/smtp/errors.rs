//! What an SMTP server's refusals mean: a rejected token (worth one renewal), a policy the
//! explain table knows, a recipient or a message refused, a connection that broke. Turns
//! lettre's errors into mailer's; never retries or reconnects itself.

use super::super::Attempt;
use super::Settings;
use crate::error::{Class, Error, Result};
use crate::explain::{self, Source};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::AsyncSmtpConnection;

/// A refused AUTH: a rejected token (worth one renewal), SMTP AUTH switched off, or else.
pub(super) fn classify_auth(s: &Settings, e: &SmtpError) -> Result<Attempt<AsyncSmtpConnection>> {
    let text = e.to_string();
    let code = enhanced_code(&text);
    let known = explained(s, code.as_deref(), &text);
    // 535 5.7.139 is a policy, not a verdict on the token: no renewal helps.
    if let Some(e) = known.filter(|e| e.class != Class::LoginNeeded) {
        return Err(e);
    }
    let rejected_535 = e.is_permanent() && e.status().is_some_and(|c| c.to_string() == "535");
    // A 334 challenge (Gmail style) shows up as a client error: lettre 0.11 cannot answer
    // it. Either way the server said no to this token.
    let rejected_334 = e.is_client() && text.contains("challenge");
    if rejected_535 || rejected_334 {
        return Ok(Attempt::Rejected(token_rejected(s, text, code)));
    }
    if e.is_transient() {
        return Err(Error::temp(format!("{} deferred the login", s.host))
            .why(text)
            .fix("try again later"));
    }
    Err(connection_error(s, e))
}

/// The server said no to the token: what is reported when a freshly issued one is refused
/// as well.
pub(super) fn token_rejected(s: &Settings, why: String, code: Option<String>) -> Error {
    Error::login_needed(format!(
        "{} rejected the access token twice, the second one freshly issued",
        s.host
    ))
    .why(why)
    .fix(format!(
        "check that the login grants {} and that {} may send through SMTP, then log in again: {}",
        s.permission, s.user, s.fill.login
    ))
    .code(code.unwrap_or_else(|| "535".into()))
}

/// A reply whose enhanced status code the explain table knows, as the error to report.
pub(super) fn explained(s: &Settings, code: Option<&str>, text: &str) -> Option<Error> {
    let code = code?;
    let entry = explain::lookup(Source::Smtp, code)?;
    Some(
        Error::new(
            entry.class,
            format!("{}: {} ({code})", s.host, s.fill.apply(entry.meaning)),
        )
        .why(text.to_owned())
        .fix(s.fill.apply(entry.fix))
        .code(code)
        .transport_specific(entry.fallback),
    )
}

/// The RFC 3463 enhanced status code in a reply, e.g. "5.7.139".
pub fn enhanced_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..].iter().all(|p| (1..=3).contains(&p.len()))
        })
        .map(str::to_owned)
}

/// A server that went quiet for longer than `limit`.
pub(super) fn quiet(s: &Settings, limit: std::time::Duration) -> Error {
    Error::temp(format!(
        "{} did not answer within {} s",
        s.host,
        limit.as_secs()
    ))
    .fix("check the network; a slow server gets longer with timeout = SECONDS in the profile")
}

pub(super) fn unreachable(s: &Settings, why: &str) -> Error {
    Error::temp(format!(
        "cannot connect to the SMTP server {}:{}",
        s.host, s.port
    ))
    .why(why.to_owned())
    .fix("check the network, firewall (outbound port 587) and --smtp-host/--smtp-port")
}

pub(super) fn connection_error(s: &Settings, e: &SmtpError) -> Error {
    let text = crate::error::chain(e);
    // rustls reports an untrusted chain inside a "connection error", not as a TLS error.
    if let Some((what, fix)) = crate::http::tls_problem(e) {
        return Error::refused(format!("TLS with {}:{}: {what}", s.host, s.port))
            .why(text)
            .fix(fix);
    }
    if e.is_tls() {
        return Error::refused(format!("the TLS handshake with {} failed", s.host))
            .why(text)
            .fix("if a proxy inspects TLS, add its root certificate with --ca-file; check --smtp-host");
    }
    if e.is_transient() || !(e.is_permanent() || e.is_client()) {
        return unreachable(s, &text);
    }
    Error::refused(format!("{} refused the session", s.host))
        .why(text)
        .fix("check --smtp-host and --smtp-port")
}

pub(super) fn send_error(s: &Settings, e: &SmtpError) -> Error {
    let host = &s.host;
    let text = e.to_string();
    if let Some(e) = explained(s, enhanced_code(&text).as_deref(), &text) {
        return e;
    }
    if e.is_transient() {
        return Error::temp(format!("{host} deferred the message"))
            .why(text)
            .fix("try again later");
    }
    if e.is_permanent() {
        // 5.1.x: the address is wrong (bad data); 5.7.x and the rest: refused by policy.
        let address = enhanced_code(&text).is_some_and(|c| c.starts_with("5.1."));
        let (class, what, fix) = if address {
            (
                Class::BadData,
                "a recipient was rejected",
                "check the recipient addresses",
            )
        } else {
            (
                Class::Refused,
                "the server refused the message",
                "read the server's reason above; an admin can tell why it was refused",
            )
        };
        let e = Error::new(class, format!("{host}: {what}"));
        // A code the table does not know still leads somewhere.
        return match enhanced_code(&text) {
            Some(code) => e
                .fix(format!(
                    "{fix}; {code} is described at {}",
                    explain::docs_for_unknown(Source::Smtp, &code)
                ))
                .code(code),
            None => e.fix(fix),
        }
        .why(text);
    }
    Error::temp(format!("the connection to {host} failed while sending"))
        .why(text)
        .fix("try again")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes() {
        for (text, code) in [
            (
                "permanent error (535): 5.7.139 Authentication unsuccessful",
                Some("5.7.139"),
            ),
            ("permanent error (550): 5.1.1 User unknown", Some("5.1.1")),
            ("535 5.7.3 Authentication unsuccessful", Some("5.7.3")),
            (
                "421 4.7.66 TLS 1.0 and 1.1 are not supported",
                Some("4.7.66"),
            ),
            ("version 1.2.3.4 is not a code", None),
            ("no code", None),
        ] {
            assert_eq!(enhanced_code(text).as_deref(), code, "{text}");
        }
    }
}

/// Properties of reading an SMTP reply's enhanced status code (RFC 3463): any text is read
/// without a panic, what is found is a code that stands in the text, and a code written
/// into a reply is found.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn is_code(c: &str) -> bool {
        let parts: Vec<&str> = c.split('.').collect();
        parts.len() == 3
            && matches!(parts[0], "2" | "4" | "5")
            && parts[1..]
                .iter()
                .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn any_reply_text_is_read(text in prop_oneof![
            "[0-9 .]{0,30}",
            "[245][0-9]{2}[ -][0-9.]{0,12} [ -~]{0,20}",
            any::<String>(),
        ]) {
            if let Some(code) = enhanced_code(&text) {
                prop_assert!(is_code(&code), "{}", code);
                prop_assert!(text.contains(&code));
            }
        }

        #[test]
        fn a_code_in_a_reply_is_found(
            reply in prop::sample::select(vec!["421", "450", "451", "535", "550", "552", "554"]),
            class in prop::sample::select(vec!["4", "5"]),
            subject in 0u16..1000,
            detail in 0u16..1000,
            text in "[A-Za-z ,]{0,40}",
        ) {
            let code = format!("{class}.{subject}.{detail}");
            let line = format!("permanent error ({reply}): {code} {text}");
            prop_assert_eq!(enhanced_code(&line), Some(code));
        }
    }
}
