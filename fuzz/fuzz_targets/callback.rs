//! The loopback listener's judgement of a request (the sign-in redirect): the first byte
//! sets the method and origin, the rest is the request target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::auth::code::judge;
use mailer::secret::Secret;

fuzz_target!(|data: &[u8]| {
    let Some((flags, target)) = data.split_first() else {
        return;
    };
    let target = String::from_utf8_lossy(target);
    let state = Secret::new("fuzz-state");
    let j = judge(&target, flags & 1 == 0, flags & 2 == 0, "/", &state);
    if j.verdict.is_some() {
        assert!(
            flags & 3 == 0,
            "a callback ended the wait without GET from loopback"
        );
        // The state parameter, as decoded, is ours (it may arrive percent-encoded).
        let url = url::Url::parse(&format!("http://localhost{target}")).expect("it was judged");
        assert!(
            url.query_pairs()
                .any(|(k, v)| k == "state" && v == "fuzz-state")
        );
    }
});
