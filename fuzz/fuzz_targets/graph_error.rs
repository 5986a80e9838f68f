//! Graph's error answers: the first two bytes pick the status (400-599), the rest is the
//! body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::explain::Fill;
use mailer::transport::graph::error::explain;

fuzz_target!(|data: &[u8]| {
    let [a, b, body @ ..] = data else {
        return;
    };
    let status = 400 + u16::from_le_bytes([*a, *b]) % 200;
    let status = reqwest::StatusCode::from_u16(status).expect("400-599 are statuses");
    let fill = Fill {
        login: "mailer login".into(),
        user: "ada@contoso.example".into(),
        tenant: "contoso.example".into(),
        client_id: "c".into(),
        profile: "default".into(),
    };
    let e = explain(status, None, body, "sending", &fill, 3);
    assert!(e.fix.is_some());
    assert!(e.why.is_some_and(|w| w.contains("request-id")));
});
