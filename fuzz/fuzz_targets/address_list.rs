//! What users type into address and header flags.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::message::{check_line, parse_header, parse_mailbox, parse_mailboxes};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    if let Ok(list) = parse_mailboxes(std::slice::from_ref(&text), "--to") {
        // Written out and read again: the same mailboxes. Names with control characters
        // or outer white space, or empty ones, are lettre's to normalize, not a round trip to hold.
        let written: Vec<String> = list.iter().map(|m| m.to_string()).collect();
        let plain = list
            .iter()
            .filter_map(|m| m.name.as_deref())
            .all(|n| !n.is_empty() && !n.chars().any(char::is_control) && n.trim() == n);
        if !written.is_empty() && plain {
            let again = parse_mailboxes(&[written.join(", ")], "--to").expect("reads back");
            // Runs of white space inside a name may come back as one (RFC 5322 folding
            // white space): compare names with runs collapsed.
            let norm = |l: &[lettre::message::Mailbox]| -> Vec<(Option<String>, String)> {
                l.iter()
                    .map(|m| {
                        let name = m
                            .name
                            .as_deref()
                            .map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "));
                        (name, m.email.to_string())
                    })
                    .collect()
            };
            assert_eq!(norm(&again), norm(&list));
        }
    }
    let _ = parse_mailbox(&text, "--from");
    if let Ok((_, value)) = parse_header(&text) {
        assert!(check_line(&value, "--header").is_ok());
    }
});
