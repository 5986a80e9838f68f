//! The config file: any text parses or is refused with a message, and what parses is
//! written and read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Ok(c) => {
            // `login` saves what it read: that must work, and read back the same.
            let written = toml::to_string_pretty(&c).expect("a config that parses can be saved");
            assert_eq!(Config::parse(&written).as_ref(), Ok(&c), "{written}");
        }
        Err(msg) => assert!(!msg.is_empty()),
    }
});
