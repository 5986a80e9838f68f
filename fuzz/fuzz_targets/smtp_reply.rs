//! The enhanced status code (RFC 3463) read from an SMTP server's reply text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::transport::smtp::enhanced_code;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(code) = enhanced_code(&text) {
        assert!(text.contains(&code));
        assert_eq!(code.split('.').count(), 3);
    }
});
