//! A token endpoint's answer: the error shape (Entra's) and the token shape, folded into
//! a token record as a refresh would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailer::auth::errors::TokenError;
use mailer::auth::{TokenAnswer, apply_response, user_from_id_token};
use mailer::config::TransportKind;
use mailer::store::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = serde_json::from_slice::<TokenError>(data) {
        let _ = (e.aadsts(), e.summary(), e.why(), e.to_string());
    }
    if let Ok(answer) = serde_json::from_slice::<TokenAnswer>(data) {
        let mut record = Record::default();
        let now = 1_800_000_000;
        let cached = apply_response(&mut record, TransportKind::Graph, &answer, now);
        assert!(cached.expires_at >= now);
        if let Some(id) = &answer.extra_fields().id_token {
            let _ = user_from_id_token(id);
        }
    }
});
