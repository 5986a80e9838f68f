//! What a user types into a message's header fields: address lists (RFC 5322 section
//! 3.4, display names accepted), `--header 'X-Name: value'`, and one-line values.

use super::bad_header;
use crate::error::{Class, Error, Result};
use lettre::message::{Mailbox, Mailboxes};

/// Parses `--to`/`--cc`/`--bcc`/`--reply-to` values: repeatable, each a comma list, display
/// names accepted (`"Doe, Jane" <jane@example.com>`).
pub fn parse_mailboxes(values: &[String], flag: &str) -> Result<Vec<Mailbox>> {
    let mut out = Vec::new();
    for v in values {
        if v.trim().is_empty() {
            continue;
        }
        check_line(v, flag)?;
        let list: Mailboxes = v.parse().map_err(|e| {
            Error::new(Class::BadData, format!("invalid address in {flag} {v:?}: {e}"))
                .fix("write addresses as user@example.com or \"Name <user@example.com>\", separated by commas")
        })?;
        out.extend(list);
    }
    Ok(out)
}

pub fn parse_mailbox(v: &str, flag: &str) -> Result<Mailbox> {
    let mut list = parse_mailboxes(&[v.to_owned()], flag)?;
    match list.len() {
        1 => Ok(list.remove(0)),
        _ => Err(Error::new(
            Class::BadData,
            format!("{flag} takes exactly one address, got {v:?}"),
        )
        .fix(format!("pass one address to {flag}"))),
    }
}

/// Drops repeated addresses (case-insensitively), keeping the first of each.
pub fn dedupe(list: &mut Vec<Mailbox>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|m| seen.insert(m.email.to_string().to_ascii_lowercase()));
}

/// `--header 'X-Name: value'`.
pub fn parse_header(h: &str) -> Result<(String, String)> {
    check_line(h, "--header")?;
    let Some((name, value)) = h.split_once(':') else {
        return Err(
            Error::new(Class::BadData, format!("--header {h:?} has no ':'"))
                .fix("use --header 'X-Name: value'"),
        );
    };
    let name = name.trim();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(bad_header(name));
    }
    const RESERVED: [&str; 10] = [
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "sender",
        "reply-to",
        "mime-version",
    ];
    if RESERVED.contains(&name.to_ascii_lowercase().as_str())
        || name.to_ascii_lowercase().starts_with("content-")
    {
        return Err(
            Error::new(Class::BadData, format!("--header cannot set {name}"))
                .fix("use the dedicated flag (--to, --subject, --reply-to, ...)"),
        );
    }
    Ok((name.to_owned(), value.trim().to_owned()))
}

/// CR or LF in a one-line value would start a new header: refuse it.
pub fn check_line(v: &str, what: &str) -> Result<()> {
    if v.contains(['\r', '\n']) {
        return Err(
            Error::new(Class::BadData, format!("{what} contains a line break"))
                .why("a line break in a header value would inject a header")
                .fix(format!("remove CR/LF from {what}")),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_lists() {
        let v = parse_mailboxes(
            &[
                "a@example.com, \"Doe, Jane\" <jane@example.com>".into(),
                "Bob <b@example.com>".into(),
            ],
            "--to",
        )
        .unwrap();
        let emails: Vec<_> = v.iter().map(|m| m.email.to_string()).collect();
        assert_eq!(
            emails,
            ["a@example.com", "jane@example.com", "b@example.com"]
        );
        assert_eq!(v[1].name.as_deref(), Some("Doe, Jane"));
        for bad in [
            "not an address",
            "a@",
            "a@example.com\r\nBcc: evil@example.com",
        ] {
            let e = parse_mailboxes(&[bad.into()], "--to").unwrap_err();
            assert_eq!(e.class, Class::BadData, "{bad}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Ticket: 42").unwrap(),
            ("X-Ticket".into(), "42".into())
        );
        for (bad, code) in [
            ("X-A: b\r\nBcc: x", Class::BadData),
            ("No colon", Class::BadData),
            ("Bad Name: v", Class::BadData),
            ("Subject: x", Class::BadData),
            ("Content-Type: x", Class::BadData),
        ] {
            assert_eq!(parse_header(bad).unwrap_err().class, code, "{bad}");
        }
    }
}

/// Strategies for addresses, shared by the property tests of the message modules.
#[cfg(test)]
pub(crate) mod strategies {
    use lettre::message::Mailbox;
    use proptest::prelude::*;

    /// A dot-atom local part and a domain of one to three labels.
    pub fn email() -> impl Strategy<Value = String> {
        (
            "[a-z0-9+_-]{1,8}(\\.[a-z0-9+_-]{1,8}){0,2}",
            "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]{1,8}){0,2}\\.(com|example|org)",
        )
            .prop_map(|(l, d)| format!("{l}@{d}"))
    }

    /// A display name as people write them: words, with commas, quotes, dots, apostrophes,
    /// parentheses and non-ASCII letters.
    pub fn name() -> impl Strategy<Value = String> {
        prop::collection::vec("[A-Za-z0-9éüßØ李,.'\"()@<>;:-]{1,10}", 1..4)
            .prop_map(|w| w.join(" "))
    }

    pub fn mailbox() -> impl Strategy<Value = Mailbox> {
        (prop::option::of(name()), email())
            .prop_map(|(n, e)| Mailbox::new(n, e.parse().expect("generated address")))
    }
}

/// Properties: any text in an address or header flag is judged without a panic, and an
/// address list written out by lettre reads back as the same mailboxes.
#[cfg(test)]
mod props {
    use super::strategies::mailbox;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_address_text_parses_or_is_bad_data(values in prop::collection::vec(any::<String>(), 0..4)) {
            if let Err(e) = parse_mailboxes(&values, "--to") {
                prop_assert_eq!(e.class, Class::BadData);
                prop_assert!(e.fix.is_some());
            }
        }

        #[test]
        fn address_lists_round_trip(list in prop::collection::vec(mailbox(), 1..5)) {
            let text = list.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ");
            let back = parse_mailboxes(std::slice::from_ref(&text), "--to").unwrap();
            prop_assert_eq!(back, list, "{}", text);
        }

        #[test]
        fn any_header_flag_is_judged_and_never_injects(h in any::<String>()) {
            match parse_header(&h) {
                Ok((name, value)) => {
                    prop_assert!(!name.is_empty());
                    prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                    prop_assert!(!value.contains(['\r', '\n']));
                }
                Err(e) => prop_assert_eq!(e.class, Class::BadData),
            }
        }

        #[test]
        fn check_line_refuses_exactly_line_breaks(v in any::<String>()) {
            prop_assert_eq!(check_line(&v, "--subject").is_ok(), !v.contains(['\r', '\n']));
        }
    }
}
