//! A message taken whole (`send --raw`, sendmail, the outbox) and the edits mailer makes
//! to it before sending.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::message::Raw;

fuzz_target!(|data: &[u8]| {
    let Ok(mut raw) = Raw::parse(data.to_vec()) else {
        return;
    };
    let _ = raw.without_bcc();
    let _ = raw.for_header_delivery(&raw.to.clone());
    let extra: lettre::message::Mailbox = "extra@example.com".parse().unwrap();
    let _ = raw.with_bcc(&[extra]);
    raw.submit_as(&"me@example.com".parse().unwrap(), None, Some("Me"));
    // What mailer edited still reads as a message.
    let again = Raw::parse(raw.bytes.clone()).expect("an edited message reads back");
    assert!(again.message_id.is_some());
});
