//! sendmail's command line and its message reader: the input is split at NUL bytes into
//! arguments (as argv is) up to a 0xFF byte, and the rest is the message on stdin.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::sendmail_args::{parse, read_message};

fuzz_target!(|data: &[u8]| {
    let (argv, stdin) = match data.iter().position(|b| *b == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let args: Vec<String> = argv
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let _ = parse(&args);
    for ignore_dots in [false, true] {
        let out = read_message(&mut &stdin[..], ignore_dots).expect("reading a slice cannot fail");
        assert!(stdin.starts_with(&out));
    }
});
