//! Self-tests of the fake Entra identity platform (`tests/support/fake_entra.rs`), over real
//! HTTP. They pin down its strictness: a fake that quietly accepted a broken client would make
//! every other integration test worthless.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::support::fake_entra::*;
use crate::support::http::{
    Response, form_encode, get_with_query, pair, post_form, query_pairs, request,
};
use crate::support::oauth::{DeviceVerification, authorize_query, set_param, sign_jws};
use crate::support::openssl::self_signed_certificate;
use crate::support::server::{now_secs, random_token};

const APP: &str = "0a1b2c3d-0000-4000-8000-000000000001";
const OTHER_APP: &str = "0a1b2c3d-0000-4000-8000-000000000002";
const WEB_APP: &str = "0a1b2c3d-0000-4000-8000-000000000003";
/// Characters that must be url-encoded inside HTTP Basic credentials (RFC 6749 2.3.1).
const WEB_SECRET: &str = "s3cr:t+/%&=x y";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const GRAPH_SEND: &str = "https://graph.microsoft.com/Mail.Send";
const SMTP_SEND: &str = "https://outlook.office.com/SMTP.Send";
const LOOPBACK: &str = "http://localhost:53123";
const STATE: &str = "st a&te=/é+%";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn fake() -> FakeEntra {
    let fake = FakeEntra::start();
    fake.add_public_client(APP, &["http://localhost"]);
    fake.add_public_client(OTHER_APP, &["http://localhost"]);
    fake.add_confidential_client(WEB_APP, WEB_SECRET, &["https://app.example/cb"]);
    fake
}

fn all_scopes() -> String {
    format!("{GRAPH_SEND} {SMTP_SEND} openid profile email offline_access")
}

fn authorize_pairs(client_id: &str, redirect_uri: &str, scope: &str) -> Vec<(String, String)> {
    authorize_query(client_id, redirect_uri, scope, STATE, VERIFIER)
}

fn authorize_raw(fake: &FakeEntra, tenant: &str, pairs: &[(String, String)]) -> Response {
    let url = format!("{}/{tenant}/oauth2/v2.0/authorize", fake.authority());
    get_with_query(&url, pairs)
}

/// Signs in through /authorize and returns the code, checking the redirect on the way.
fn login_at(
    fake: &FakeEntra,
    tenant: &str,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
) -> String {
    let resp = authorize_raw(
        fake,
        tenant,
        &authorize_pairs(client_id, redirect_uri, scope),
    );
    assert_eq!(resp.status, 302, "authorize: {}", resp.text());
    let location = resp.header("Location").expect("Location").to_string();
    let q = query_pairs(&location);
    assert_eq!(pair(&q, "state"), Some(STATE), "state echoed in {location}");
    pair(&q, "code")
        .unwrap_or_else(|| panic!("no code in {location}"))
        .to_string()
}

fn login(fake: &FakeEntra, scope: &str) -> String {
    login_at(fake, "organizations", APP, LOOPBACK, scope)
}

fn token_at(
    fake: &FakeEntra,
    tenant: &str,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Response {
    post_form(
        &format!("{}/{tenant}/oauth2/v2.0/token", fake.authority()),
        headers,
        pairs,
    )
}

fn token(fake: &FakeEntra, pairs: &[(&str, &str)]) -> Response {
    token_at(fake, "organizations", &[], pairs)
}

/// The pairs of a correct redemption of `code` by [`APP`], without a scope.
fn redeem_pairs(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", APP),
        ("code", code),
        ("redirect_uri", LOOPBACK),
        ("code_verifier", VERIFIER),
    ]
}

/// `pairs` with each `(key, Some(value))` set (in place, or appended) and each `(key, None)`
/// removed.
fn edit<'a>(
    mut pairs: Vec<(&'a str, &'a str)>,
    changes: &[(&'a str, Option<&'a str>)],
) -> Vec<(&'a str, &'a str)> {
    for &(key, value) in changes {
        match (pairs.iter().position(|(k, _)| *k == key), value) {
            (Some(i), Some(v)) => pairs[i].1 = v,
            (Some(i), None) => {
                pairs.remove(i);
            }
            (None, Some(v)) => pairs.push((key, v)),
            (None, None) => {}
        }
    }
    pairs
}

fn redeem(fake: &FakeEntra, code: &str, scope: Option<&str>) -> Response {
    token(fake, &edit(redeem_pairs(code), &[("scope", scope)]))
}

fn refresh_pairs(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", APP),
        ("refresh_token", rt),
    ]
}

fn refresh(fake: &FakeEntra, rt: &str, scope: Option<&str>) -> Response {
    token(fake, &edit(refresh_pairs(rt), &[("scope", scope)]))
}

fn ok_json(resp: &Response) -> Value {
    assert_eq!(resp.status, 200, "expected success: {}", resp.text());
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    resp.json()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// Checks the Entra error shape, not just the status.
fn assert_entra_error(resp: &Response, status: u16, error: &str, aadsts: u32) -> Value {
    assert_eq!(resp.status, status, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], serde_json::json!([aadsts]), "{v}");
    let description = str_field(&v, "error_description");
    assert!(
        description.starts_with(&format!("AADSTS{aadsts}: ")),
        "{description}"
    );
    assert!(description.contains("\r\nTrace ID: "), "{description}");
    assert!(
        description.contains("\r\nCorrelation ID: "),
        "{description}"
    );
    for key in ["timestamp", "trace_id", "correlation_id"] {
        assert!(!str_field(&v, key).is_empty());
    }
    assert_eq!(
        v["error_uri"],
        format!("https://login.microsoftonline.com/error?code={aadsts}")
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "exactly Entra's fields: {keys:?}");
    v
}

/// The redirect-back error of /authorize.
fn assert_redirect_error(resp: &Response, error: &str, aadsts: u32) {
    assert_eq!(resp.status, 302, "{}", resp.text());
    let location = resp.header("Location").unwrap();
    assert!(
        location.starts_with("http://localhost:53123/?"),
        "{location}"
    );
    let q = query_pairs(location);
    assert_eq!(pair(&q, "error"), Some(error), "{location}");
    assert!(
        pair(&q, "error_description")
            .unwrap_or_default()
            .starts_with(&format!("AADSTS{aadsts}: ")),
        "{location}"
    );
    assert_eq!(pair(&q, "state"), Some(STATE));
    assert_eq!(pair(&q, "code"), None);
}

fn id_token_claims(id_token: &str) -> Value {
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "{id_token}");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

#[test]
fn auth_code_flow_issues_entra_shaped_tokens() {
    let fake = fake();
    let code = login(&fake, &all_scopes());
    let q = fake.last_authorize_query().unwrap();
    assert_eq!(pair(&q, "client_id"), Some(APP));
    assert_eq!(pair(&q, "state"), Some(STATE));

    let v = ok_json(&redeem(
        &fake,
        &code,
        Some(&format!("{GRAPH_SEND} openid offline_access")),
    ));
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    let scope = str_field(&v, "scope");
    assert!(
        scope.contains(GRAPH_SEND) && !scope.contains(SMTP_SEND),
        "{scope}"
    );
    let at = str_field(&v, "access_token");
    assert!(at.len() >= 40);
    let rt = str_field(&v, "refresh_token").to_string();
    let claims = id_token_claims(str_field(&v, "id_token"));
    assert_eq!(claims["preferred_username"], "ada@contoso.example");
    assert_eq!(claims["email"], "ada@contoso.example");
    assert_eq!(claims["aud"], APP);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(
        claims["iss"],
        format!("{}/{HOME_TID}/v2.0", fake.authority())
    );

    let info = fake.access_token_info(at).unwrap();
    assert_eq!(
        info,
        AccessTokenInfo {
            resource: "https://graph.microsoft.com".into(),
            scopes: vec![GRAPH_SEND.into()],
            user: "ada@contoso.example".into(),
            client_id: APP.into(),
            tid: HOME_TID.into(),
            expired: false,
            app: false,
        }
    );
    assert!(fake.access_token_info("not-a-token").is_none());

    // The same sign-in consented to SMTP too: the refresh token mints an Outlook token.
    let v2 = ok_json(&refresh(&fake, &rt, Some(SMTP_SEND)));
    let info2 = fake
        .access_token_info(str_field(&v2, "access_token"))
        .unwrap();
    assert_eq!(info2.resource, "https://outlook.office.com");
    assert_eq!(info2.scopes, vec![SMTP_SEND.to_string()]);

    let stats = fake.stats();
    assert_eq!(
        (stats.oauth.code_grants, stats.oauth.refresh_grants),
        (1, 1)
    );
    assert_eq!(stats.oauth.authorize, 1);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert_eq!(
        stats.oauth.token_requests[0],
        TokenRequestLog {
            grant_type: "authorization_code".into(),
            client_auth: "none".into(),
            scope: Some(format!("{GRAPH_SEND} openid offline_access")),
        }
    );
    let secrets = fake.issued_secrets();
    for s in [code.as_str(), at, &rt, VERIFIER, WEB_SECRET] {
        assert!(secrets.iter().any(|x| x == s), "{s} not in issued_secrets");
    }
}

#[test]
fn pkce_is_mandatory_and_verified() {
    let fake = fake();
    for (challenge, method) in [
        (None, Some("S256")),
        (Some(s256_challenge(VERIFIER)), Some("plain")),
        (Some(s256_challenge(VERIFIER)), None),
        (Some("too-short".to_string()), Some("S256")),
    ] {
        let mut q = authorize_pairs(APP, LOOPBACK, &all_scopes());
        set_param(&mut q, "code_challenge", challenge.as_deref());
        set_param(&mut q, "code_challenge_method", method);
        assert_redirect_error(
            &authorize_raw(&fake, "organizations", &q),
            "invalid_request",
            501491,
        );
    }

    let code = login(&fake, &all_scopes());
    let wrong = "x".repeat(43);
    let resp = token(
        &fake,
        &edit(redeem_pairs(&code), &[("code_verifier", Some(&wrong))]),
    );
    assert_entra_error(&resp, 400, "invalid_grant", 501481);
    // A failed attempt burns the code: no retrying with another verifier.
    assert_entra_error(&redeem(&fake, &code, None), 400, "invalid_grant", 54005);

    let code = login(&fake, &all_scopes());
    let resp = token(
        &fake,
        &edit(redeem_pairs(&code), &[("code_verifier", None)]),
    );
    assert_entra_error(&resp, 400, "invalid_request", 900144);
}

#[test]
fn codes_are_single_use_and_bound_to_client_and_tenant() {
    let fake = fake();
    let code = login(&fake, &all_scopes());
    ok_json(&redeem(&fake, &code, None));
    assert_entra_error(&redeem(&fake, &code, None), 400, "invalid_grant", 54005);
    assert_entra_error(
        &redeem(&fake, "no-such-code", None),
        400,
        "invalid_grant",
        70008,
    );

    let code = login_at(&fake, "organizations", APP, LOOPBACK, &all_scopes());
    let resp = token_at(&fake, "common", &[], &redeem_pairs(&code));
    assert_entra_error(&resp, 400, "invalid_grant", 700005);

    let code = login(&fake, &all_scopes());
    let resp = token(
        &fake,
        &edit(redeem_pairs(&code), &[("client_id", Some(OTHER_APP))]),
    );
    assert_entra_error(&resp, 400, "invalid_grant", 70000);
}

#[test]
fn redirect_uris_follow_the_loopback_rule() {
    let fake = fake();
    fake.add_public_client("with-path", &["http://localhost/cb"]);
    let scopes = all_scopes();

    for bad in [
        "http://localhost:1234/callback",
        "http://127.0.0.1:1234",
        "https://localhost:1234",
        "http://localhost:1234/#frag",
    ] {
        let resp = authorize_raw(&fake, "organizations", &authorize_pairs(APP, bad, &scopes));
        assert_eq!(resp.status, 400, "{bad}");
        assert!(
            resp.text().contains("AADSTS50011"),
            "{bad}: {}",
            resp.text()
        );
    }
    // Port ignored; a registration without a path means "/", and Entra adds that slash.
    for (good, prefix) in [
        ("http://localhost:1234", "http://localhost:1234/?code="),
        ("http://localhost:4321/", "http://localhost:4321/?code="),
    ] {
        let resp = authorize_raw(&fake, "organizations", &authorize_pairs(APP, good, &scopes));
        assert_eq!(resp.status, 302, "{good}: {}", resp.text());
        assert!(resp.header("Location").unwrap().starts_with(prefix));
    }
    let resp = authorize_raw(
        &fake,
        "organizations",
        &authorize_pairs("with-path", "http://localhost:99/cb?x=1", &scopes),
    );
    assert_eq!(resp.status, 400, "query is part of the compared path");
    let resp = authorize_raw(
        &fake,
        "organizations",
        &authorize_pairs("with-path", "http://localhost:99/cb", &scopes),
    );
    assert!(
        resp.header("Location")
            .unwrap()
            .starts_with("http://localhost:99/cb?code=")
    );

    let resp = authorize_raw(
        &fake,
        "organizations",
        &authorize_pairs("unknown-app", LOOPBACK, &scopes),
    );
    assert_eq!(resp.status, 400);
    assert!(resp.text().contains("AADSTS700016"));

    // The token request must repeat the exact redirect_uri string, port included.
    let code = login_at(
        &fake,
        "organizations",
        APP,
        "http://localhost:1234",
        &scopes,
    );
    let resp = token(
        &fake,
        &edit(
            redeem_pairs(&code),
            &[("redirect_uri", Some("http://localhost:1235"))],
        ),
    );
    assert_entra_error(&resp, 400, "invalid_grant", 500112);
    let errors = fake.stats().errors;
    assert!(errors.contains(&"invalid_request AADSTS50011".to_string()));
    assert!(errors.contains(&"unauthorized_client AADSTS700016".to_string()));
}

#[test]
fn one_resource_per_token_request_and_only_consented_scopes() {
    let fake = fake();
    let code = login(&fake, &all_scopes());
    assert_entra_error(
        &redeem(&fake, &code, Some(&format!("{GRAPH_SEND} {SMTP_SEND}"))),
        400,
        "invalid_scope",
        700022,
    );
    let code = login(&fake, &all_scopes());
    assert_entra_error(
        &redeem(
            &fake,
            &code,
            Some("https://graph.microsoft.com/Mail.ReadWrite"),
        ),
        400,
        "invalid_grant",
        65001,
    );

    // No scope: the first consented resource.
    let code = login(&fake, &all_scopes());
    let v = ok_json(&redeem(&fake, &code, None));
    let info = fake
        .access_token_info(str_field(&v, "access_token"))
        .unwrap();
    assert_eq!(info.resource, "https://graph.microsoft.com");
    let rt = str_field(&v, "refresh_token").to_string();

    let v = ok_json(&refresh(
        &fake,
        &rt,
        Some("https://outlook.office.com/.default"),
    ));
    let info = fake
        .access_token_info(str_field(&v, "access_token"))
        .unwrap();
    assert_eq!(info.scopes, vec![SMTP_SEND.to_string()]);
    let rt = str_field(&v, "refresh_token").to_string();

    assert_entra_error(
        &refresh(
            &fake,
            &rt,
            Some("https://management.azure.com/user_impersonation"),
        ),
        400,
        "invalid_grant",
        65001,
    );
    assert_entra_error(
        &refresh(
            &fake,
            &rt,
            Some(&format!(
                "https://graph.microsoft.com/.default {GRAPH_SEND}"
            )),
        ),
        400,
        "invalid_scope",
        70011,
    );
    // Failed requests did not rotate the token.
    ok_json(&refresh(&fake, &rt, Some(GRAPH_SEND)));
}

#[test]
fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let fake = fake();
    let v = ok_json(&redeem(&fake, &login(&fake, &all_scopes()), None));
    let rt1 = str_field(&v, "refresh_token").to_string();
    let v = ok_json(&refresh(&fake, &rt1, Some(GRAPH_SEND)));
    let rt2 = str_field(&v, "refresh_token").to_string();
    assert_ne!(rt1, rt2);

    assert_entra_error(&refresh(&fake, &rt1, None), 400, "invalid_grant", 70008);
    assert_eq!(fake.stats().refresh_reuse, 1);
    // The newest token of that sign-in is gone too.
    assert_entra_error(&refresh(&fake, &rt2, None), 400, "invalid_grant", 70008);

    // Another sign-in is not affected.
    let v = ok_json(&redeem(&fake, &login(&fake, &all_scopes()), None));
    ok_json(&refresh(&fake, str_field(&v, "refresh_token"), None));

    let resp = refresh(&fake, "junk", None);
    assert_eq!(resp.json()["error"], "invalid_grant");

    // Bound to the client.
    let rt = str_field(&v, "refresh_token");
    let resp = token(
        &fake,
        &edit(refresh_pairs(rt), &[("client_id", Some(OTHER_APP))]),
    );
    assert_entra_error(&resp, 400, "invalid_grant", 70000);

    // No offline_access at sign-in: no refresh token at all.
    let v = ok_json(&redeem(
        &fake,
        &login(&fake, &format!("{GRAPH_SEND} openid")),
        None,
    ));
    assert!(v.get("refresh_token").is_none(), "{v}");
    assert!(v.get("id_token").is_some());
}

#[test]
fn revoked_refresh_tokens_answer_50173() {
    let fake = fake();
    let v = ok_json(&redeem(&fake, &login(&fake, &all_scopes()), None));
    fake.revoke_all_refresh_tokens();
    assert_entra_error(
        &refresh(&fake, str_field(&v, "refresh_token"), None),
        400,
        "invalid_grant",
        50173,
    );
    let v = ok_json(&redeem(&fake, &login(&fake, &all_scopes()), None));
    ok_json(&refresh(&fake, str_field(&v, "refresh_token"), None));
}

#[test]
fn client_authentication_matches_the_app_type() {
    let fake = fake();
    let redirect = "https://app.example/cb";
    let resp = authorize_raw(
        &fake,
        "organizations",
        &authorize_pairs(WEB_APP, "https://app.example/cb/", &all_scopes()),
    );
    assert_eq!(resp.status, 400, "non-loopback URIs compare exactly");

    let code = login_at(&fake, "organizations", WEB_APP, redirect, &all_scopes());
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect),
        ("code_verifier", VERIFIER),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p = base.to_vec();
        p.extend_from_slice(extra);
        p
    };
    // Client authentication fails before the code is looked at, so the code survives these.
    assert_entra_error(
        &token(&fake, &with(&[("client_id", WEB_APP)])),
        401,
        "invalid_client",
        7000218,
    );
    assert_entra_error(
        &token(
            &fake,
            &with(&[("client_id", WEB_APP), ("client_secret", "wrong")]),
        ),
        401,
        "invalid_client",
        7000215,
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            crate::support::http::percent_encode(WEB_APP),
            crate::support::http::percent_encode(WEB_SECRET)
        ))
    );
    let url = |t: &str| format!("{}/{t}/oauth2/v2.0/token", fake.authority());
    let resp = post_form(
        &url("organizations"),
        &[("Authorization", &basic)],
        &with(&[("client_secret", WEB_SECRET)]),
    );
    assert_entra_error(&resp, 400, "invalid_request", 9002313);
    let resp = post_form(&url("organizations"), &[("Authorization", &basic)], &base);
    let v = ok_json(&resp);

    let resp = token(
        &fake,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", WEB_APP),
            ("client_secret", WEB_SECRET),
            ("refresh_token", str_field(&v, "refresh_token")),
        ],
    );
    ok_json(&resp);
    let auth: Vec<String> = fake
        .stats()
        .oauth
        .token_requests
        .iter()
        .map(|t| t.client_auth.clone())
        .collect();
    assert_eq!(auth, ["none", "post", "basic", "basic", "post"]);

    let code = login(&fake, &all_scopes());
    for ((key, value), status, error, aadsts) in [
        (("client_secret", "anything"), 401, "invalid_client", 700025),
        (("client_id", "nobody"), 400, "unauthorized_client", 700016),
    ] {
        let resp = token(&fake, &edit(redeem_pairs(&code), &[(key, Some(value))]));
        assert_entra_error(&resp, status, error, aadsts);
    }
}

fn devicecode(fake: &FakeEntra, client_id: &str, scope: &str) -> Response {
    post_form(
        &format!("{}/organizations/oauth2/v2.0/devicecode", fake.authority()),
        &[],
        &[("client_id", client_id), ("scope", scope)],
    )
}

fn poll_pairs(device_code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", DEVICE_GRANT),
        ("client_id", APP),
        ("device_code", device_code),
    ]
}

fn poll(fake: &FakeEntra, device_code: &str) -> Response {
    token(fake, &poll_pairs(device_code))
}

/// Starts a device flow; returns (device_code, user_code).
fn start_device(fake: &FakeEntra, scope: &str) -> (String, String) {
    let v = ok_json(&devicecode(fake, APP, scope));
    (
        str_field(&v, "device_code").to_string(),
        str_field(&v, "user_code").to_string(),
    )
}

#[test]
fn device_code_flow_pending_then_approved() {
    let fake = fake();
    let v = ok_json(&devicecode(
        &fake,
        APP,
        &format!("{GRAPH_SEND} {SMTP_SEND} offline_access openid"),
    ));
    let user_code = str_field(&v, "user_code");
    assert_eq!(user_code.len(), 8);
    assert!(
        user_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    let verification_uri = format!("{}/devicelogin", fake.authority());
    assert_eq!(v["verification_uri"], verification_uri);
    assert_eq!(
        (v["expires_in"].as_u64(), v["interval"].as_u64()),
        (Some(900), Some(1))
    );
    assert_eq!(
        v["message"],
        format!(
            "To sign in, use a web browser to open the page {verification_uri} and enter the code {user_code} to authenticate."
        )
    );
    let device_code = str_field(&v, "device_code");

    assert_entra_error(
        &poll(&fake, device_code),
        400,
        "authorization_pending",
        70016,
    );
    assert!(fake.approve_device_code(user_code));
    std::thread::sleep(Duration::from_millis(1000));
    let t = ok_json(&poll(&fake, device_code));
    assert!(t.get("refresh_token").is_some() && t.get("id_token").is_some());
    let info = fake
        .access_token_info(str_field(&t, "access_token"))
        .unwrap();
    assert_eq!(info.resource, "https://graph.microsoft.com");
    assert_eq!(poll(&fake, device_code).status, 400, "redeemed once only");
    let stats = fake.stats();
    assert_eq!(
        (stats.oauth.device_grants, stats.oauth.device_polls),
        (1, 3)
    );
    // The refresh token of a device sign-in serves every consented resource.
    let t = ok_json(&refresh(
        &fake,
        str_field(&t, "refresh_token"),
        Some(SMTP_SEND),
    ));
    assert_eq!(
        fake.access_token_info(str_field(&t, "access_token"))
            .unwrap()
            .resource,
        "https://outlook.office.com"
    );

    // Without offline_access/openid: neither refresh token nor id_token; first resource wins.
    fake.set_device_auto_approve_after(0);
    let (dc, _) = start_device(&fake, &format!("{SMTP_SEND} {GRAPH_SEND}"));
    let t = ok_json(&poll(&fake, &dc));
    assert!(
        t.get("refresh_token").is_none() && t.get("id_token").is_none(),
        "{t}"
    );
    assert_eq!(
        fake.access_token_info(str_field(&t, "access_token"))
            .unwrap()
            .resource,
        "https://outlook.office.com"
    );
}

#[test]
fn device_code_decline_devicelogin_and_client_rules() {
    let fake = fake();
    let (dc, uc) = start_device(&fake, GRAPH_SEND);
    assert!(fake.decline_device_code(&uc));
    assert!(!fake.approve_device_code(&uc), "only pending codes");
    assert_entra_error(&poll(&fake, &dc), 400, "authorization_declined", 70000);

    let (dc, uc) = start_device(&fake, GRAPH_SEND);
    let page = request(
        "GET",
        &format!("{}/devicelogin?code={uc}", fake.authority()),
        &[],
        b"",
    );
    assert_eq!(page.status, 200);
    ok_json(&poll(&fake, &dc));
    let page = request(
        "GET",
        &format!("{}/devicelogin?code=NOPE1234", fake.authority()),
        &[],
        b"",
    );
    assert_eq!(page.status, 400);

    assert_entra_error(
        &devicecode(&fake, WEB_APP, GRAPH_SEND),
        400,
        "invalid_client",
        7000218,
    );
    assert_entra_error(
        &devicecode(&fake, "nobody", GRAPH_SEND),
        400,
        "unauthorized_client",
        700016,
    );
    let resp = post_form(
        &format!("{}/organizations/oauth2/v2.0/devicecode", fake.authority()),
        &[],
        &[("client_id", APP)],
    );
    assert_entra_error(&resp, 400, "invalid_request", 900144);

    // A device code belongs to the client that asked for it.
    let (dc, _) = start_device(&fake, GRAPH_SEND);
    let resp = token(
        &fake,
        &edit(poll_pairs(&dc), &[("client_id", Some(OTHER_APP))]),
    );
    assert_entra_error(&resp, 400, "invalid_grant", 70000);
}

#[test]
fn device_polling_too_fast_gets_slow_down() {
    let fake = fake();
    let (dc, _) = start_device(&fake, GRAPH_SEND);
    fake.force_slow_down_once();
    assert_entra_error(&poll(&fake, &dc), 400, "slow_down", 70016);
    // The interval is now 6 s; an immediate poll is too soon.
    assert_entra_error(&poll(&fake, &dc), 400, "slow_down", 70016);

    let (dc, _) = start_device(&fake, GRAPH_SEND);
    assert_entra_error(&poll(&fake, &dc), 400, "authorization_pending", 70016);
    assert_entra_error(&poll(&fake, &dc), 400, "slow_down", 70016);
    assert_eq!(fake.stats().slow_downs, 3);

    // Within the 200 ms tolerance of the 1 s interval is fine.
    fake.set_device_auto_approve_after(1);
    let (dc, _) = start_device(&fake, GRAPH_SEND);
    assert_entra_error(&poll(&fake, &dc), 400, "authorization_pending", 70016);
    std::thread::sleep(Duration::from_millis(900));
    ok_json(&poll(&fake, &dc));
    assert_eq!(fake.stats().slow_downs, 3);
}

#[test]
fn transport_and_routing_are_strict() {
    let fake = fake();
    let url = format!("{}/organizations/oauth2/v2.0/token", fake.authority());
    assert_entra_error(
        &request("GET", &url, &[], b""),
        400,
        "invalid_request",
        900561,
    );
    let json_body = br#"{"grant_type":"authorization_code"}"#;
    assert_entra_error(
        &request(
            "POST",
            &url,
            &[("Content-Type", "application/json")],
            json_body,
        ),
        400,
        "invalid_request",
        900144,
    );
    let dup = request(
        "POST",
        &url,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=refresh_token&client_id=a&client_id=b",
    );
    assert_entra_error(&dup, 400, "invalid_request", 9002313);
    assert_entra_error(
        &token(
            &fake,
            &[("grant_type", "client_credentials"), ("client_id", APP)],
        ),
        400,
        "unsupported_grant_type",
        70003,
    );
    // charset parameter on the content type is fine; the correlation id is echoed.
    let corr = "12345678-1234-4234-8234-123456789abc";
    let resp = request(
        "POST",
        &url,
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            ),
            ("client-request-id", corr),
        ],
        form_encode(&[("grant_type", "refresh_token"), ("client_id", APP)]).as_bytes(),
    );
    let v = assert_entra_error(&resp, 400, "invalid_request", 900144);
    assert_eq!(v["correlation_id"], corr);
    assert!(str_field(&v, "error_description").contains("'refresh_token'"));

    assert_eq!(
        request("GET", &format!("{}/nope", fake.authority()), &[], b"").status,
        404
    );
    assert_eq!(
        request(
            "GET",
            &format!("{}/organizations/oauth2/v2.0/nope", fake.authority()),
            &[],
            b""
        )
        .status,
        404
    );
    let resp = request(
        "POST",
        &format!("{}/organizations/oauth2/v2.0/authorize", fake.authority()),
        &[],
        b"",
    );
    assert_eq!(resp.status, 405);
    assert_eq!(fake.stats().unrouted.len(), 3);
}

#[test]
fn injected_failures_are_one_shot() {
    let fake = fake();
    let code = login(&fake, &all_scopes());
    fake.fail_next_token_request(503, "temporarily_unavailable", 50196, "Server busy");
    let v = assert_entra_error(
        &redeem(&fake, &code, None),
        503,
        "temporarily_unavailable",
        50196,
    );
    assert!(str_field(&v, "error_description").starts_with("AADSTS50196: Server busy"));
    ok_json(&redeem(&fake, &code, None));

    fake.fail_next_authorize("access_denied", 65004, "User declined to consent");
    let resp = authorize_raw(
        &fake,
        "organizations",
        &authorize_pairs(APP, LOOPBACK, &all_scopes()),
    );
    assert_redirect_error(&resp, "access_denied", 65004);
    login(&fake, &all_scopes());
    let errors = fake.stats().errors;
    assert_eq!(
        errors,
        [
            "temporarily_unavailable AADSTS50196",
            "access_denied AADSTS65004"
        ]
    );
}

#[test]
fn user_and_lifetime_knobs() {
    let fake = fake();
    fake.set_user("grace@contoso.example");
    fake.set_user_in_id_token(false);
    fake.set_access_token_lifetime(0);
    let v = ok_json(&redeem(&fake, &login(&fake, &all_scopes()), None));
    assert_eq!(v["expires_in"], 0);
    let info = fake
        .access_token_info(str_field(&v, "access_token"))
        .unwrap();
    assert!(info.expired);
    assert_eq!(info.user, "grace@contoso.example");
    let claims = id_token_claims(str_field(&v, "id_token"));
    assert!(claims.get("preferred_username").is_none() && claims.get("email").is_none());
    assert_eq!(claims["name"], "Ada Lovelace");
}

#[test]
fn concurrent_clients_are_all_served() {
    let fake = fake();
    let started = Instant::now();
    let codes: Vec<String> = (0..20).map(|_| login(&fake, &all_scopes())).collect();
    let authority = fake.authority();
    let handles: Vec<_> = codes
        .into_iter()
        .map(|code| {
            let url = format!("{authority}/organizations/oauth2/v2.0/token");
            std::thread::spawn(move || {
                let resp = post_form(&url, &[], &redeem_pairs(&code));
                assert_eq!(resp.status, 200, "{}", resp.text());
                resp.json()["access_token"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 20);
    assert_eq!(fake.stats().oauth.code_grants, 20);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn drop_stops_the_server() {
    let fake = fake();
    let authority = fake.authority();
    let started = Instant::now();
    drop(fake);
    assert!(started.elapsed() < Duration::from_secs(2));
    let result = crate::support::http::try_request(
        "GET",
        &format!("{authority}/devicelogin?code=X"),
        &[],
        b"",
    );
    assert!(result.is_err(), "server still answering after drop");
}

// ---- App-only access: the client-credentials grant ----

const SECRET_APP: &str = "0a1b2c3d-0000-4000-8000-0000000000c1";
const CERT_APP: &str = "0a1b2c3d-0000-4000-8000-0000000000c2";
const APP_SECRET: &str = "app~secret:+/%&=";
const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";
const EXCHANGE_DEFAULT: &str = "https://outlook.office365.com/.default";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An RSA key and self-signed certificate made with the `openssl` CLI, as an admin would,
/// with the key loaded for signing.
struct TestCert {
    key: ring::signature::RsaKeyPair,
    cert_der: Vec<u8>,
    /// PKCS#1 RSAPublicKey, DER.
    public_der: Vec<u8>,
}

fn make_cert() -> TestCert {
    let dir = tempfile::tempdir().unwrap();
    let c = self_signed_certificate(dir.path());
    // `req -newkey … -nodes` writes PKCS#8 ("BEGIN PRIVATE KEY"), which ring reads.
    let pem = std::fs::read_to_string(&c.key_pem).unwrap();
    let b64: String = pem
        .lines()
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PKCS#8 PEM");
    TestCert {
        key: ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).expect("PKCS#8 RSA key"),
        cert_der: c.cert_der,
        public_der: c.public_key_der,
    }
}

fn b64url(b: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn token_url(fake: &FakeEntra, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/token", fake.authority())
}

/// The claims MSAL puts in a certificate credential's assertion.
fn claims(fake: &FakeEntra) -> Value {
    let now = now_secs();
    serde_json::json!({
        "aud": token_url(fake, HOME_TID),
        "iss": CERT_APP,
        "sub": CERT_APP,
        "jti": random_token(16),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

/// `alg` PS256 or RS256, with the matching thumbprint header of `cert`.
fn header(cert: &TestCert, alg: &str) -> Value {
    let mut h = serde_json::json!({"alg": alg, "typ": "JWT"});
    if alg == "RS256" {
        h["x5t"] = b64url(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &cert.cert_der,
        ))
        .into();
    } else {
        h["x5t#S256"] = b64url(ring::digest::digest(&ring::digest::SHA256, &cert.cert_der)).into();
    }
    h
}

/// A compact JWS signed with `cert`'s key (PSS for PS256, PKCS#1 v1.5 otherwise).
fn sign(cert: &TestCert, header: &Value, claims: &Value) -> String {
    let padding: &'static dyn ring::signature::RsaEncoding = if header["alg"] == "PS256" {
        &ring::signature::RSA_PSS_SHA256
    } else {
        &ring::signature::RSA_PKCS1_SHA256
    };
    sign_jws(&cert.key, padding, header, claims)
}

/// A client-credentials token request to `tenant`: `pairs` after the grant type.
fn app_token_at(fake: &FakeEntra, tenant: &str, pairs: &[(&str, &str)]) -> Response {
    let mut all = vec![("grant_type", "client_credentials")];
    all.extend_from_slice(pairs);
    token_at(fake, tenant, &[], &all)
}

fn app_token_with_assertion(fake: &FakeEntra, tenant: &str, jwt: &str, scope: &str) -> Response {
    app_token_at(
        fake,
        tenant,
        &[
            ("client_id", CERT_APP),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", jwt),
            ("scope", scope),
        ],
    )
}

fn app_token_with_secret(fake: &FakeEntra, tenant: &str, secret: &str, scope: &str) -> Response {
    app_token_at(
        fake,
        tenant,
        &[
            ("client_id", SECRET_APP),
            ("client_secret", secret),
            ("scope", scope),
        ],
    )
}

/// Checks the app-only success answer (no refresh token, no id_token, no scope) and returns
/// what the access token stands for.
fn app_token_info(fake: &FakeEntra, resp: &Response) -> AccessTokenInfo {
    let v = ok_json(resp);
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "ext_expires_in", "token_type"],
        "{v}"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    fake.access_token_info(str_field(&v, "access_token"))
        .expect("issued token is known")
}

#[test]
fn secret_app_gets_app_only_tokens_without_refresh_token() {
    let fake = fake();
    fake.add_app_client_secret(SECRET_APP, APP_SECRET);

    let info = app_token_info(
        &fake,
        &app_token_with_secret(&fake, HOME_TID, APP_SECRET, GRAPH_DEFAULT),
    );
    assert_eq!(
        info,
        AccessTokenInfo {
            resource: "https://graph.microsoft.com".into(),
            scopes: vec!["https://graph.microsoft.com/Mail.Send".into()],
            user: String::new(),
            client_id: SECRET_APP.into(),
            tid: HOME_TID.into(),
            expired: false,
            app: true,
        }
    );

    // HTTP Basic works too, and a domain names the tenant as well as its id.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            crate::support::http::percent_encode(SECRET_APP),
            crate::support::http::percent_encode(APP_SECRET)
        ))
    );
    let resp = token_at(
        &fake,
        "contoso.example",
        &[("Authorization", &basic)],
        &[
            ("grant_type", "client_credentials"),
            ("scope", EXCHANGE_DEFAULT),
        ],
    );
    let info = app_token_info(&fake, &resp);
    assert_eq!(info.resource, "https://outlook.office365.com");
    assert_eq!(
        info.scopes,
        ["https://outlook.office365.com/SMTP.SendAsApp"]
    );
    assert!(info.app && info.user.is_empty());

    // The introspection endpoint (for the SMTP fake) says it is an app token.
    let v = ok_json(&request(
        "GET",
        &format!(
            "{}/_test/introspect?{}",
            fake.authority(),
            form_encode(&[("token", str_field(&resp.json(), "access_token"))])
        ),
        &[],
        b"",
    ));
    assert_eq!(v["app"], true, "{v}");
    assert_eq!(v["user"], "", "{v}");
    // Delegated tokens say app: false.
    let code = login(&fake, &all_scopes());
    let delegated = ok_json(&redeem(&fake, &code, Some(GRAPH_SEND)));
    let v = ok_json(&request(
        "GET",
        &format!(
            "{}/_test/introspect?{}",
            fake.authority(),
            form_encode(&[("token", str_field(&delegated, "access_token"))])
        ),
        &[],
        b"",
    ));
    assert_eq!(v["app"], false, "{v}");

    for (client_id, secret, status, error, aadsts) in [
        (SECRET_APP, Some("wrong"), 401, "invalid_client", 7000215),
        (SECRET_APP, None, 401, "invalid_client", 7000218),
        ("nobody", Some("x"), 400, "unauthorized_client", 700016),
        // Apps registered only for delegated flows do not get app-only tokens from this fake.
        (
            WEB_APP,
            Some(WEB_SECRET),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ] {
        let mut pairs = vec![("client_id", client_id), ("scope", GRAPH_DEFAULT)];
        if let Some(secret) = secret {
            pairs.insert(1, ("client_secret", secret));
        }
        let resp = app_token_at(&fake, HOME_TID, &pairs);
        assert_entra_error(&resp, status, error, aadsts);
    }
    // An app-only registration has no redirect URI, so no delegated sign-in either.
    let resp = authorize_raw(
        &fake,
        HOME_TID,
        &authorize_pairs(SECRET_APP, LOOPBACK, &all_scopes()),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());

    let stats = fake.stats();
    assert_eq!(stats.client_credentials_grants, 2);
    assert_eq!(stats.oauth.refresh_grants, 0);
    let auth: Vec<&str> = stats
        .oauth
        .token_requests
        .iter()
        .filter(|t| t.grant_type == "client_credentials")
        .map(|t| t.client_auth.as_str())
        .collect();
    assert_eq!(auth, ["post", "basic", "post", "none", "post", "post"]);
    assert!(fake.issued_secrets().iter().any(|s| s == APP_SECRET));
}

#[test]
fn certificate_app_with_ps256_or_rs256_assertion_is_accepted() {
    let fake = fake();
    let cert = make_cert();
    fake.add_app_client_certificate(CERT_APP, &cert.cert_der, &cert.public_der);

    let jwt = sign(&cert, &header(&cert, "PS256"), &claims(&fake));
    let info = app_token_info(
        &fake,
        &app_token_with_assertion(&fake, HOME_TID, &jwt, GRAPH_DEFAULT),
    );
    assert_eq!(info.resource, "https://graph.microsoft.com");
    assert_eq!(info.scopes, ["https://graph.microsoft.com/Mail.Send"]);
    assert_eq!(info.client_id, CERT_APP);
    assert!(info.app && info.user.is_empty() && !info.expired);
    assert!(
        fake.issued_secrets().contains(&jwt),
        "assertions are secrets"
    );

    // RS256 names the certificate by its SHA-1 thumbprint (x5t).
    let jwt = sign(&cert, &header(&cert, "RS256"), &claims(&fake));
    let info = app_token_info(
        &fake,
        &app_token_with_assertion(&fake, HOME_TID, &jwt, EXCHANGE_DEFAULT),
    );
    assert_eq!(
        info.scopes,
        ["https://outlook.office365.com/SMTP.SendAsApp"]
    );

    // Both thumbprints at once (MSAL may send both) are fine when both match.
    let mut h = header(&cert, "PS256");
    h["x5t"] = header(&cert, "RS256")["x5t"].clone();
    app_token_info(
        &fake,
        &app_token_with_assertion(
            &fake,
            HOME_TID,
            &sign(&cert, &h, &claims(&fake)),
            GRAPH_DEFAULT,
        ),
    );

    // Certificate rollover: a second certificate works alongside the first.
    let cert2 = make_cert();
    fake.add_app_client_certificate(CERT_APP, &cert2.cert_der, &cert2.public_der);
    let jwt = sign(&cert2, &header(&cert2, "PS256"), &claims(&fake));
    app_token_info(
        &fake,
        &app_token_with_assertion(&fake, HOME_TID, &jwt, GRAPH_DEFAULT),
    );

    let stats = fake.stats();
    assert_eq!(stats.client_credentials_grants, 4);
    assert!(
        stats
            .oauth
            .token_requests
            .iter()
            .all(|t| t.client_auth == "assertion")
    );
    // A certificate app has no secret and no public client flows.
    assert_entra_error(
        &devicecode(&fake, CERT_APP, GRAPH_SEND),
        400,
        "invalid_client",
        7000218,
    );
}

#[test]
fn client_assertions_are_verified_strictly() {
    let fake = fake();
    let cert = make_cert();
    fake.add_app_client_certificate(CERT_APP, &cert.cert_der, &cert.public_der);
    let ps = header(&cert, "PS256");
    let send = |jwt: &str| app_token_with_assertion(&fake, HOME_TID, jwt, GRAPH_DEFAULT);
    let refused = |jwt: &str, aadsts: u32| {
        let v = assert_entra_error(&send(jwt), 401, "invalid_client", aadsts);
        str_field(&v, "error_description").to_string()
    };
    let with = |key: &str, value: Value| {
        let mut c = claims(&fake);
        c[key] = value;
        c
    };
    let without = |key: &str| {
        let mut c = claims(&fake);
        c.as_object_mut().unwrap().remove(key);
        c
    };

    // Signature: flipped bit, tampered payload, another key under this certificate's name.
    let good = sign(&cert, &ps, &claims(&fake));
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig[10] ^= 1;
    refused(&format!("{input}.{}", b64url(&sig)), 700027);
    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered = claims(&fake);
    tampered["sub"] = "someone-else".into();
    refused(
        &format!("{}.{}.{}", parts[0], b64url(tampered.to_string()), parts[2]),
        700027,
    );
    let other = make_cert();
    refused(&sign(&other, &ps, &claims(&fake)), 700027);
    // The other certificate is not registered: its thumbprint names no key.
    let d = refused(
        &sign(&other, &header(&other, "PS256"), &claims(&fake)),
        700027,
    );
    assert!(d.contains("The key was not found"), "{d}");
    // A PS256 signature presented as RS256 (and the right x5t) does not verify.
    let mut rs = header(&cert, "RS256");
    let ps_sig = sign(&cert, &ps, &claims(&fake));
    rs["x5t#S256"] = ps["x5t#S256"].clone();
    let (_, s) = ps_sig.rsplit_once('.').unwrap();
    let c = claims(&fake);
    refused(
        &format!("{}.{}.{s}", b64url(rs.to_string()), b64url(c.to_string())),
        700027,
    );

    // Header: unsupported alg, missing or mismatched thumbprints.
    for alg in ["none", "HS256", "ES256", "PS384"] {
        let mut h = ps.clone();
        h["alg"] = alg.into();
        refused(&sign(&cert, &h, &claims(&fake)), 700027);
    }
    let mut h = ps.clone();
    h.as_object_mut().unwrap().remove("x5t#S256");
    h["x5t"] = header(&cert, "RS256")["x5t"].clone();
    refused(&sign(&cert, &h, &claims(&fake)), 700027);
    let mut h = ps.clone();
    h["x5t"] = "AAAA".into();
    refused(&sign(&cert, &h, &claims(&fake)), 700027);
    let mut h = ps.clone();
    // Standard base64 instead of base64url (with padding) names no key.
    h["x5t#S256"] = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, &cert.cert_der))
        .into();
    refused(&sign(&cert, &h, &claims(&fake)), 700027);

    // Shape.
    for bad in ["a.b", "a.b.c.d", "a..c", &format!("{good}=")] {
        refused(bad, 700027);
    }
    // An empty parameter counts as absent.
    refused("", 7000218);
    let unsigned = format!("{}.", good.rsplit_once('.').unwrap().0);
    refused(&unsigned, 700027);

    // Claims: audience, issuer, subject, jti.
    for aud in [
        token_url(&fake, "organizations"),
        token_url(&fake, "contoso.example"),
        format!("{}/{HOME_TID}/v2.0", fake.authority()),
        format!("{}/", token_url(&fake, HOME_TID)),
    ] {
        let d = refused(&sign(&cert, &ps, &with("aud", aud.into())), 700027);
        assert!(d.contains("aud"), "{d}");
    }
    refused(
        &sign(
            &cert,
            &ps,
            &with("aud", serde_json::json!([token_url(&fake, HOME_TID)])),
        ),
        700027,
    );
    refused(&sign(&cert, &ps, &with("iss", OTHER_APP.into())), 700027);
    refused(&sign(&cert, &ps, &with("sub", OTHER_APP.into())), 700027);
    refused(&sign(&cert, &ps, &without("jti")), 700027);
    refused(&sign(&cert, &ps, &with("jti", "".into())), 700027);

    // Time: expired, not yet valid, too long, missing or non-integer times.
    let now = now_secs();
    let mut expired = claims(&fake);
    expired["nbf"] = (now - 600).into();
    expired["iat"] = (now - 600).into();
    expired["exp"] = (now - 1).into();
    let d = refused(&sign(&cert, &ps, &expired), 700024);
    assert!(d.contains("not within its valid time range"), "{d}");
    let mut future = claims(&fake);
    future["nbf"] = (now + 300).into();
    future["exp"] = (now + 600).into();
    refused(&sign(&cert, &ps, &future), 700024);
    refused(&sign(&cert, &ps, &with("exp", (now + 3600).into())), 700024);
    let mut old_iat = claims(&fake);
    old_iat["iat"] = (now - 3000).into();
    refused(&sign(&cert, &ps, &old_iat), 700024);
    refused(&sign(&cert, &ps, &without("exp")), 700024);
    refused(&sign(&cert, &ps, &without("nbf")), 700024);
    refused(&sign(&cert, &ps, &with("exp", "soon".into())), 700024);
    // Up to 10 minutes plus a minute of skew is fine; iat is optional.
    let mut long = without("iat");
    long["exp"] = (now + 660).into();
    app_token_info(&fake, &send(&sign(&cert, &ps, &long)));

    // Replay: a jti is single-use, even in an otherwise perfect assertion.
    let once = sign(&cert, &ps, &claims(&fake));
    app_token_info(&fake, &send(&once));
    let d = refused(&once, 700027);
    assert!(d.contains("replayed"), "{d}");
    let mut same_jti = claims(&fake);
    same_jti["jti"] = serde_json::from_str::<Value>(
        &String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(once.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap()["jti"]
        .clone();
    refused(&sign(&cert, &ps, &same_jti), 700027);

    // The request around the assertion.
    let jwt = sign(&cert, &ps, &claims(&fake));
    let assertion = [
        ("client_id", CERT_APP),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt.as_str()),
        ("scope", GRAPH_DEFAULT),
    ];
    for (changes, status, error, aadsts) in [
        // No client_assertion_type.
        (
            &[("client_assertion_type", None)][..],
            400,
            "invalid_request",
            900144,
        ),
        (
            &[("client_assertion_type", Some("jwt-bearer"))][..],
            400,
            "invalid_request",
            9002313,
        ),
        // Two credentials at once.
        (
            &[("client_secret", Some("also"))][..],
            400,
            "invalid_request",
            9002313,
        ),
        // A secret is no credential of a certificate app.
        (
            &[
                ("client_assertion_type", None),
                ("client_assertion", None),
                ("client_secret", Some("guess")),
            ][..],
            401,
            "invalid_client",
            7000215,
        ),
    ] {
        let resp = app_token_at(&fake, HOME_TID, &edit(assertion.to_vec(), changes));
        assert_entra_error(&resp, status, error, aadsts);
    }
    // The untouched assertion still works: refusals above did not burn its jti.
    app_token_info(&fake, &send(&jwt));
    assert_eq!(fake.stats().client_credentials_grants, 3);
}

#[test]
fn client_credentials_need_a_tenant_and_one_default_scope() {
    let fake = fake();
    fake.add_app_client_secret(SECRET_APP, APP_SECRET);
    for tenant in ["common", "consumers", "organizations", "Common"] {
        let v = assert_entra_error(
            &app_token_with_secret(&fake, tenant, APP_SECRET, GRAPH_DEFAULT),
            400,
            "invalid_request",
            9001023,
        );
        assert!(
            str_field(&v, "error_description")
                .contains("not supported over the /common or /consumers endpoints"),
            "{v}"
        );
    }
    for scope in [
        GRAPH_SEND,
        "Mail.Send",
        ".default",
        "https://graph.microsoft.com/.default offline_access",
        "https://graph.microsoft.com/.default https://outlook.office365.com/.default",
        "https://graph.microsoft.com/Mail.Send/.default",
        "https://graph.microsoft.com/",
    ] {
        let v = assert_entra_error(
            &app_token_with_secret(&fake, HOME_TID, APP_SECRET, scope),
            400,
            "invalid_scope",
            1002012,
        );
        assert!(
            str_field(&v, "error_description").contains("/.default"),
            "{v}"
        );
    }
    let resp = token_at(
        &fake,
        HOME_TID,
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", SECRET_APP),
            ("client_secret", APP_SECRET),
        ],
    );
    assert_entra_error(&resp, 400, "invalid_request", 900144);
    assert_entra_error(
        &app_token_with_secret(&fake, HOME_TID, APP_SECRET, "https://api.example/.default"),
        400,
        "invalid_resource",
        500011,
    );

    // Roles can be configured per resource; an empty list issues a token without any.
    fake.set_app_roles(
        SECRET_APP,
        "https://graph.microsoft.com",
        &["Mail.Send", "Mail.ReadWrite"],
    );
    fake.set_app_roles(SECRET_APP, "https://api.example", &[]);
    let info = app_token_info(
        &fake,
        &app_token_with_secret(
            &fake,
            HOME_TID,
            APP_SECRET,
            "HTTPS://Graph.Microsoft.com/.default",
        ),
    );
    assert_eq!(
        info.scopes,
        [
            "https://graph.microsoft.com/Mail.Send",
            "https://graph.microsoft.com/Mail.ReadWrite"
        ]
    );
    let info = app_token_info(
        &fake,
        &app_token_with_secret(&fake, HOME_TID, APP_SECRET, "https://api.example/.default"),
    );
    assert!(info.scopes.is_empty() && info.app);
    assert_eq!(fake.stats().client_credentials_grants, 2);
}
