//! Property tests that need the tests' own MIME reader (tests/support/mime.rs): a message
//! mailer builds reads back, through an independent reader, as the same headers. Subjects
//! and display names in any script survive lettre's RFC 2047 encoding and line folding, and
//! every recipient is where it was put. (The parsers' own properties live beside them in
//! src/, as unit tests.)

use crate::support::mime;
use lettre::message::Mailbox;
use mailer::message::{Draft, Raw};
use proptest::prelude::*;

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z0-9+_-]{1,8}(\\.[a-z0-9+_-]{1,8}){0,2}",
        "[a-z0-9]{1,8}\\.(com|example)",
    )
        .prop_map(|(l, d)| format!("{l}@{d}"))
}

/// Names as people write them, in several scripts, with the punctuation that needs quoting.
fn name() -> impl Strategy<Value = String> {
    prop::collection::vec("[A-Za-zéüßØ李Ж,.'\"()@-]{1,10}", 1..4).prop_map(|w| w.join(" "))
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    (prop::option::of(name()), email()).prop_map(|(n, e)| Mailbox::new(n, e.parse().unwrap()))
}

fn as_pairs(list: &[Mailbox]) -> Vec<mime::Address> {
    list.iter()
        .map(|m| (m.name.clone(), m.email.to_string()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_built_message_reads_back_with_the_same_headers(
        to in prop::collection::vec(mailbox(), 1..4),
        cc in prop::collection::vec(mailbox(), 0..3),
        reply_to in prop::collection::vec(mailbox(), 0..2),
        // Printable text in any script, words separated by single spaces (folding turns a
        // run of white space into one, as RFC 5322 allows).
        subject in prop::collection::vec("[\\p{L}\\p{N}\\p{P}\\p{S}]{1,12}", 1..12).prop_map(|w| w.join(" ")),
        header in "[ -~]{0,60}",
    ) {
        let d = Draft {
            to: to.clone(),
            cc: cc.clone(),
            reply_to: reply_to.clone(),
            subject: subject.clone(),
            headers: vec![("X-Ticket".into(), header.trim().to_owned())],
            text: Some("body".into()),
            ..Default::default()
        };
        let sender: Mailbox = "me@example.com".parse().unwrap();
        let bytes = d.to_mime(&sender, "<1@example.com>").unwrap().formatted();
        let (fields, _) = mime::headers(&bytes).unwrap();
        let field = |n: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        prop_assert_eq!(mime::decode_words(&field("Subject").unwrap()), subject);
        prop_assert_eq!(mime::address_list(&field("To").unwrap()), Some(as_pairs(&to)));
        if !cc.is_empty() {
            prop_assert_eq!(mime::address_list(&field("Cc").unwrap()), Some(as_pairs(&cc)));
        }
        if !reply_to.is_empty() {
            prop_assert_eq!(mime::address_list(&field("Reply-To").unwrap()), Some(as_pairs(&reply_to)));
        }
        prop_assert_eq!(field("X-Ticket"), Some(header.trim().to_owned()));
        prop_assert_eq!(field("Message-ID"), Some("<1@example.com>".to_owned()));
        // mailer's own reader agrees on the envelope.
        let raw = Raw::parse(bytes).unwrap();
        let emails = |l: &[Mailbox]| l.iter().map(|m| m.email.to_string()).collect::<Vec<_>>();
        prop_assert_eq!(emails(&raw.to), emails(&to));
        prop_assert_eq!(emails(&raw.cc), emails(&cc));
    }
}
