//! Self-tests of the fake Google (`tests/support/fake_google.rs`), of the SMTP sink in Gmail's
//! manner (`tests/support/smtp.rs` with `google`) and of OAUTHBEARER in the scripted SMTP
//! server (`tests/support/smtp_faults.rs`), over real HTTP, SMTP and TLS. They pin down the
//! strictness: each rule refuses what it must and accepts what it must, so that mailer's
//! Google path is tested against Google's behaviour and not against a fake's leniency.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::support::fake_google::*;
use crate::support::http::{
    Response, get_with_query, pair, percent_encode, post_form, query_pairs, request,
};
use crate::support::oauth::{DeviceVerification, authorize_query, set_param};
use crate::support::server::now_secs;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::smtp_client::SmtpClient;
use crate::support::smtp_faults::{FaultySmtp, Sasl};

const CLIENT: &str = "1234567890-abc123def456.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-fake+secret/with:special=chars";
const OTHER: &str = "9876543210-zyx987wvu654.apps.googleusercontent.com";
const OTHER_SECRET: &str = "GOCSPX-other";
const TV: &str = "5555555555-tv0device1client.apps.googleusercontent.com";
const TV_SECRET: &str = "GOCSPX-tv";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:53124/";
const STATE: &str = "st a&te=/é+%";
const USER: &str = "ada@example.com";
const MAIL: &str = "https://mail.google.com/";
const READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
const DAY: Duration = Duration::from_secs(86_400);
const REFRESH_DEAD: &str = "Token has been expired or revoked.";
const ASSERTION_TIME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values and use a clock with skew to account for clock differences between systems.";
const SA: &str = "mailer-sender@mailer-project.iam.gserviceaccount.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// A message with every recipient header and a From of the signed-in user.
const MESSAGE: &str = "From: Ada <ada@example.com>\r\n\
                       To: Bob <bob@example.org>\r\n\
                       Cc: carol@example.net\r\n\
                       Bcc: Dave <dave@example.com>,\r\n \
                       erin@example.com\r\n\
                       Subject: fake Google self-test\r\n\
                       \r\n\
                       Hello.\r\n";
const IO_LIMIT: Duration = Duration::from_secs(10);

fn fake() -> FakeGoogle {
    let fake = FakeGoogle::start();
    fake.add_desktop_client(CLIENT, SECRET);
    fake.add_desktop_client(OTHER, OTHER_SECRET);
    fake.add_device_client(TV, TV_SECRET);
    fake
}

// ---- OAuth helpers ----

/// A Desktop client's authorize query, asking for a refresh token (`access_type=offline`).
fn authorize_pairs(client_id: &str, redirect_uri: &str, scope: &str) -> Vec<(String, String)> {
    let mut pairs = authorize_query(client_id, redirect_uri, scope, STATE, VERIFIER);
    set_param(&mut pairs, "access_type", Some("offline"));
    pairs
}

fn authorize_raw(fake: &FakeGoogle, pairs: &[(String, String)]) -> Response {
    get_with_query(&fake.authorize_url(), pairs)
}

/// The query of the redirect an authorize request answered with.
fn redirected(resp: &Response) -> Vec<(String, String)> {
    assert_eq!(resp.status, 302, "authorize: {}", resp.text());
    let location = resp.header("Location").expect("Location");
    assert!(location.starts_with(REDIRECT), "{location}");
    query_pairs(location)
}

/// Signs in through the authorize endpoint with `pairs` and returns the code.
fn code_with(fake: &FakeGoogle, pairs: &[(String, String)]) -> String {
    let q = redirected(&authorize_raw(fake, pairs));
    assert_eq!(pair(&q, "state"), Some(STATE), "state echoed");
    pair(&q, "code").expect("code").to_string()
}

fn login(fake: &FakeGoogle, scope: &str) -> String {
    code_with(fake, &authorize_pairs(CLIENT, REDIRECT, scope))
}

fn token(fake: &FakeGoogle, pairs: &[(&str, &str)]) -> Response {
    post_form(&fake.token_url(), &[], pairs)
}

fn redeem_pairs(code: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ]
}

/// `pairs` with `key` replaced (`Some`) or removed (`None`).
fn edit<'a>(
    mut pairs: Vec<(&'a str, &'a str)>,
    key: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    pairs.retain(|(k, _)| *k != key);
    if let Some(v) = value {
        pairs.push((key, v));
    }
    pairs
}

/// Redeems `code` with `key` replaced (`Some`) or removed (`None`) in the correct pairs.
fn redeem_with(fake: &FakeGoogle, code: &str, key: &str, value: Option<&str>) -> Response {
    token(fake, &edit(redeem_pairs(code), key, value))
}

/// A code that cannot be redeemed (used, burned, expired or never issued) gets Google's bare
/// `invalid_grant`.
fn assert_unredeemable(fake: &FakeGoogle, code: &str) {
    assert_oauth_error(
        &token(fake, &redeem_pairs(code)),
        400,
        "invalid_grant",
        "Bad Request",
    );
}

fn refresh_pairs(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
        ("refresh_token", rt),
    ]
}

fn ok_json(resp: &Response) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(
        resp.header("Content-Type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        resp.headers
    );
    resp.json()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key} in {v}"))
}

/// A token-endpoint error: exactly `{"error", "error_description"}`.
fn assert_oauth_error(resp: &Response, status: u16, error: &str, description: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"error": error, "error_description": description}),
        "{}",
        resp.text()
    );
}

/// An authorize error shown as a Google page: no redirect, `Error <status>: <error>` on it.
fn assert_page(resp: &Response, status: u16, error: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert!(resp.header("Location").is_none(), "{:?}", resp.headers);
    assert!(
        resp.text().contains(&format!("Error {status}: {error}")),
        "{}",
        resp.text()
    );
}

fn jwt_claims(jwt: &str) -> (Value, Value) {
    let part = |i: usize| -> Value {
        serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(jwt.split('.').nth(i).unwrap())
                .unwrap(),
        )
        .unwrap()
    };
    (part(0), part(1))
}

/// A signed-in token answer of [`CLIENT`] for `scopes`.
fn sign_in(fake: &FakeGoogle, scopes: &str) -> Value {
    fake.sign_in(CLIENT, SECRET, REDIRECT, scopes)
}

fn access_token(fake: &FakeGoogle, scopes: &str) -> String {
    str_field(&sign_in(fake, scopes), "access_token").to_string()
}

// ---- authorize and code redemption ----

#[test]
fn code_flow_issues_google_shaped_tokens() {
    let fake = fake();
    let q = redirected(&authorize_raw(
        &fake,
        &authorize_pairs(CLIENT, REDIRECT, &format!("openid email {MAIL}")),
    ));
    // state first, then code, scope, authuser and prompt, as Google writes them.
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["state", "code", "scope", "authuser", "prompt"]);
    assert_eq!(pair(&q, "state"), Some(STATE));
    let code = pair(&q, "code").unwrap();
    assert!(code.starts_with("4/0"), "Google's codes hold a '/': {code}");
    assert_eq!(
        pair(&q, "scope"),
        Some(format!("openid https://www.googleapis.com/auth/userinfo.email {MAIL}").as_str()),
        "email comes back as the userinfo.email URL"
    );
    assert_eq!(
        pair(&q, "prompt"),
        Some("consent"),
        "first sign-in consents"
    );
    assert_eq!(
        pair(&fake.last_authorize_query().unwrap(), "client_id"),
        Some(CLIENT)
    );

    let v = ok_json(&token(&fake, &redeem_pairs(code)));
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "expires_in",
            "id_token",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert!(str_field(&v, "access_token").starts_with("ya29."));
    assert!(str_field(&v, "refresh_token").starts_with("1//"));
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(
        v["scope"],
        format!("openid https://www.googleapis.com/auth/userinfo.email {MAIL}")
    );
    let (header, claims) = jwt_claims(str_field(&v, "id_token"));
    assert_eq!(header["alg"], "RS256");
    assert_eq!(claims["iss"], "https://accounts.google.com");
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["email"], USER);
    assert_eq!(claims["email_verified"], true);
    assert!(
        claims["sub"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
    assert!(claims["exp"].as_u64().unwrap() > claims["iat"].as_u64().unwrap());

    let info = fake
        .access_token_info(str_field(&v, "access_token"))
        .unwrap();
    assert_eq!(
        (
            info.user.as_str(),
            info.client_id.as_str(),
            info.expired,
            info.app
        ),
        (USER, CLIENT, false, false)
    );
    assert!(info.scopes.iter().any(|s| s == MAIL));
    assert_eq!(fake.stats().oauth.code_grants, 1);

    // Only openid: an id_token without the email claims; no identity scope: none at all.
    let v = sign_in(&fake, &format!("openid {MAIL}"));
    let (_, claims) = jwt_claims(str_field(&v, "id_token"));
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(sign_in(&fake, MAIL).get("id_token").is_none());
}

#[test]
fn authorize_errors_are_google_pages_not_redirects() {
    let fake = fake();
    let good = authorize_pairs(CLIENT, REDIRECT, MAIL);
    let page = |key: &str, value: Option<&str>, status: u16, error: &str| {
        let mut pairs = good.clone();
        set_param(&mut pairs, key, value);
        assert_page(&authorize_raw(&fake, &pairs), status, error);
    };
    page(
        "client_id",
        Some("1111-nobody.apps.googleusercontent.com"),
        401,
        "invalid_client",
    );
    page("client_id", None, 400, "invalid_request");
    // The Desktop loopback rule: 127.0.0.1 or [::1], http, an explicit port.
    for uri in [
        "http://localhost:53124/",
        "https://127.0.0.1:53124/",
        "http://127.0.0.1/",
        "http://192.168.1.2:53124/",
        "urn:ietf:wg:oauth:2.0:oob",
        "http://127.0.0.1:53124/#frag",
    ] {
        page("redirect_uri", Some(uri), 400, "redirect_uri_mismatch");
    }
    page("redirect_uri", None, 400, "invalid_request");
    page(
        "scope",
        Some("openid https://www.googleapis.com/auth/nonsense"),
        400,
        "invalid_scope",
    );
    page("scope", None, 400, "invalid_request");
    page("response_type", Some("token"), 400, "invalid_request");
    page("response_type", None, 400, "invalid_request");
    // PKCE with S256 is required: plain (Google's default) and no PKCE at all are refused.
    page(
        "code_challenge_method",
        Some("plain"),
        400,
        "invalid_request",
    );
    page("code_challenge_method", None, 400, "invalid_request");
    page("code_challenge", None, 400, "invalid_request");
    page("code_challenge", Some("short"), 400, "invalid_request");
    page("access_type", Some("forever"), 400, "invalid_request");
    page("prompt", Some("none consent"), 400, "invalid_request");
    // A repeated parameter is a malformed request.
    let mut twice = good.clone();
    twice.push(("scope".into(), "openid".into()));
    assert_page(&authorize_raw(&fake, &twice), 400, "invalid_request");
    // A TV client has no loopback redirect.
    let mut tv = good.clone();
    set_param(&mut tv, "client_id", Some(TV));
    assert_page(&authorize_raw(&fake, &tv), 400, "redirect_uri_mismatch");

    // Injected pages: the user is stuck on Google's page, nothing reaches the listener.
    fake.fail_next_authorize_page(
        "admin_policy_enforced",
        "Access to your account data is restricted by policies within your organization.",
    );
    assert_page(&authorize_raw(&fake, &good), 400, "admin_policy_enforced");
    fake.fail_next_authorize_page(
        "org_internal",
        "This client is restricted to users within its organization.",
    );
    assert_page(&authorize_raw(&fake, &good), 403, "org_internal");

    // The user's Cancel comes back to the loopback listener, with the state.
    fake.fail_next_authorize_redirect("access_denied");
    let q = redirected(&authorize_raw(&fake, &good));
    assert_eq!(pair(&q, "error"), Some("access_denied"));
    assert_eq!(pair(&q, "state"), Some(STATE));
    assert!(pair(&q, "code").is_none());

    // The knobs are one-shot, and [::1] and a path are fine.
    let v6 = "http://[::1]:40123/callback";
    let resp = authorize_raw(&fake, &authorize_pairs(CLIENT, v6, MAIL));
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert!(
        resp.header("Location")
            .unwrap()
            .starts_with(&format!("{v6}?"))
    );
    redirected(&authorize_raw(&fake, &good));

    let errors = fake.stats().errors;
    for e in [
        "page invalid_client",
        "page redirect_uri_mismatch",
        "page invalid_scope",
        "page admin_policy_enforced",
        "redirect access_denied",
    ] {
        assert!(errors.iter().any(|x| x == e), "{e} in {errors:?}");
    }
}

#[test]
fn pkce_verifier_is_checked_at_redemption() {
    let fake = fake();
    let code = login(&fake, MAIL);
    let other = "0123456789012345678901234567890123456789abc";
    let resp = redeem_with(&fake, &code, "code_verifier", Some(other));
    assert_oauth_error(&resp, 400, "invalid_grant", "Invalid code verifier.");
    // The attempt burned the code.
    assert_unredeemable(&fake, &code);

    let code = login(&fake, MAIL);
    let resp = redeem_with(&fake, &code, "code_verifier", None);
    assert_oauth_error(&resp, 400, "invalid_grant", "Missing code verifier.");
    let code = login(&fake, MAIL);
    ok_json(&token(&fake, &redeem_pairs(&code)));
}

#[test]
fn desktop_clients_must_send_their_secret() {
    let fake = fake();
    let code = login(&fake, MAIL);
    let resp = redeem_with(&fake, &code, "client_secret", None);
    assert_oauth_error(&resp, 400, "invalid_request", "client_secret is missing.");
    let resp = redeem_with(&fake, &code, "client_secret", Some("wrong"));
    assert_oauth_error(&resp, 401, "invalid_client", "Unauthorized");
    let resp = redeem_with(
        &fake,
        &code,
        "client_id",
        Some("42-unknown.apps.googleusercontent.com"),
    );
    assert_oauth_error(
        &resp,
        401,
        "invalid_client",
        "The OAuth client was not found.",
    );
    let resp = redeem_with(&fake, &code, "client_id", None);
    assert_oauth_error(
        &resp,
        400,
        "invalid_request",
        "Could not determine client ID from request.",
    );
    // Failed client authentication does not consume the code.
    ok_json(&token(&fake, &redeem_pairs(&code)));

    // HTTP Basic works (both halves form-encoded, RFC 6749 2.3.1) ...
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            percent_encode(CLIENT),
            percent_encode(SECRET)
        ))
    );
    let code = login(&fake, MAIL);
    let body = edit(
        edit(redeem_pairs(&code), "client_secret", None),
        "client_id",
        None,
    );
    ok_json(&post_form(
        &fake.token_url(),
        &[("Authorization", &basic)],
        &body,
    ));
    // ... but not together with a secret in the body.
    let code = login(&fake, MAIL);
    let resp = post_form(
        &fake.token_url(),
        &[("Authorization", &basic)],
        &redeem_pairs(&code),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.json()["error"], "invalid_request");

    let log = fake.stats().oauth.token_requests;
    let auths: Vec<&str> = log.iter().map(|l| l.client_auth.as_str()).collect();
    assert_eq!(
        auths,
        ["none", "post", "post", "post", "post", "basic", "basic"]
    );
    assert!(log.iter().all(|l| l.grant_type == "authorization_code"));

    // Form bodies only, POST only.
    let resp = request(
        "POST",
        &fake.token_url(),
        &[("Content-Type", "application/json")],
        br#"{"grant_type":"authorization_code"}"#,
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.json()["error"], "invalid_request");
    assert_eq!(request("GET", &fake.token_url(), &[], b"").status, 405);
    assert_eq!(fake.stats().unrouted, ["GET /token"]);
    let resp = token(&fake, &[("grant_type", "password")]);
    assert_oauth_error(
        &resp,
        400,
        "unsupported_grant_type",
        "Invalid grant_type: password",
    );
}

#[test]
fn codes_are_single_use_bound_and_short_lived() {
    let fake = fake();
    let code = login(&fake, MAIL);
    // Another client cannot redeem it (and does not burn it).
    let resp = token(
        &fake,
        &edit(
            edit(redeem_pairs(&code), "client_id", Some(OTHER)),
            "client_secret",
            Some(OTHER_SECRET),
        ),
    );
    assert_oauth_error(&resp, 400, "invalid_grant", "Bad Request");
    // A scope parameter is ignored: the grant is what was consented to.
    let v = ok_json(&redeem_with(&fake, &code, "scope", Some("openid")));
    assert_eq!(v["scope"], MAIL);
    assert_unredeemable(&fake, &code);
    assert_unredeemable(&fake, "4/0nonsense");

    let code = login(&fake, MAIL);
    let resp = redeem_with(
        &fake,
        &code,
        "redirect_uri",
        Some("http://127.0.0.1:53125/"),
    );
    assert_oauth_error(&resp, 400, "redirect_uri_mismatch", "Bad Request");
    assert_unredeemable(&fake, &code);
    let code = login(&fake, MAIL);
    let resp = redeem_with(&fake, &code, "redirect_uri", None);
    assert_oauth_error(
        &resp,
        400,
        "invalid_request",
        "Missing required parameter: redirect_uri",
    );

    // Ten minutes on the fake's clock.
    let code = login(&fake, MAIL);
    fake.advance(Duration::from_secs(601));
    assert_unredeemable(&fake, &code);
}

#[test]
fn refresh_tokens_need_offline_access_and_a_consent_screen() {
    let fake = fake();
    let redeem = |pairs: &[(String, String)]| {
        ok_json(&token(&fake, &redeem_pairs(&code_with(&fake, pairs))))
    };
    // First sign-in, offline: consent screen, refresh token.
    let v = redeem(&authorize_pairs(CLIENT, REDIRECT, MAIL));
    assert!(v.get("refresh_token").is_some(), "{v}");
    // Again without prompt: no consent screen, so no refresh token.
    let pairs = authorize_pairs(CLIENT, REDIRECT, MAIL);
    let q = redirected(&authorize_raw(&fake, &pairs));
    assert_eq!(pair(&q, "prompt"), Some("none"));
    let v = ok_json(&token(&fake, &redeem_pairs(pair(&q, "code").unwrap())));
    assert!(v.get("refresh_token").is_none(), "{v}");
    // prompt=consent shows it again.
    let mut consent = authorize_pairs(CLIENT, REDIRECT, MAIL);
    set_param(&mut consent, "prompt", Some("consent"));
    assert!(redeem(&consent).get("refresh_token").is_some());
    // Online access: never one.
    set_param(&mut consent, "access_type", None);
    assert!(redeem(&consent).get("refresh_token").is_none());
    // prompt=none for a user who never consented comes back as consent_required.
    fake.set_user("grace@example.com");
    let mut none = authorize_pairs(CLIENT, REDIRECT, MAIL);
    set_param(&mut none, "prompt", Some("none"));
    let q = redirected(&authorize_raw(&fake, &none));
    assert_eq!(pair(&q, "error"), Some("consent_required"));
    // A new user is a first consent.
    assert!(
        redeem(&authorize_pairs(CLIENT, REDIRECT, MAIL))
            .get("refresh_token")
            .is_some()
    );
}

#[test]
fn refresh_never_rotates_and_only_narrows_scopes() {
    let fake = fake();
    let v = sign_in(&fake, &format!("openid email {MAIL}"));
    let rt = str_field(&v, "refresh_token").to_string();
    for _ in 0..3 {
        let r = ok_json(&token(&fake, &refresh_pairs(&rt)));
        assert!(
            r.get("refresh_token").is_none(),
            "Google does not rotate: {r}"
        );
        assert!(str_field(&r, "access_token").starts_with("ya29."));
        assert_eq!(r["scope"], v["scope"]);
        assert!(r.get("id_token").is_some(), "openid was granted: {r}");
    }
    let narrow = ok_json(&token(
        &fake,
        &edit(refresh_pairs(&rt), "scope", Some(MAIL)),
    ));
    assert_eq!(narrow["scope"], MAIL);
    let info = fake
        .access_token_info(str_field(&narrow, "access_token"))
        .unwrap();
    assert_eq!(info.scopes, [MAIL]);
    let resp = token(&fake, &edit(refresh_pairs(&rt), "scope", Some(READONLY)));
    assert_oauth_error(
        &resp,
        400,
        "invalid_scope",
        "Invalid OAuth scope or ID token audience provided.",
    );
    // Another client's refresh token.
    let resp = token(
        &fake,
        &edit(
            edit(refresh_pairs(&rt), "client_id", Some(OTHER)),
            "client_secret",
            Some(OTHER_SECRET),
        ),
    );
    assert_oauth_error(&resp, 400, "unauthorized_client", "Unauthorized");
    assert_oauth_error(
        &token(&fake, &refresh_pairs("1//0unknown")),
        400,
        "invalid_grant",
        REFRESH_DEAD,
    );
    assert_oauth_error(
        &token(&fake, &edit(refresh_pairs(&rt), "client_secret", None)),
        400,
        "invalid_request",
        "client_secret is missing.",
    );
    fake.revoke_all_refresh_tokens();
    assert_oauth_error(
        &token(&fake, &refresh_pairs(&rt)),
        400,
        "invalid_grant",
        REFRESH_DEAD,
    );
    assert_eq!(fake.stats().oauth.refresh_grants, 4);
}

#[test]
fn testing_clients_lose_refresh_tokens_after_seven_days() {
    let fake = fake();
    fake.set_testing(CLIENT, true);
    let mail_rt =
        str_field(&sign_in(&fake, &format!("openid {MAIL}")), "refresh_token").to_string();
    let basic_rt = str_field(&sign_in(&fake, "openid email profile"), "refresh_token").to_string();
    let prod_rt = str_field(
        &fake.sign_in(OTHER, OTHER_SECRET, REDIRECT, MAIL),
        "refresh_token",
    )
    .to_string();
    let prod_refresh = |rt: &str| {
        token(
            &fake,
            &edit(
                edit(refresh_pairs(rt), "client_id", Some(OTHER)),
                "client_secret",
                Some(OTHER_SECRET),
            ),
        )
    };

    fake.advance(6 * DAY);
    ok_json(&token(&fake, &refresh_pairs(&mail_rt)));
    fake.advance(DAY + Duration::from_secs(1));
    assert_oauth_error(
        &token(&fake, &refresh_pairs(&mail_rt)),
        400,
        "invalid_grant",
        REFRESH_DEAD,
    );
    // "unless the only OAuth scopes requested are a subset of name, email address, and user
    // profile", and production clients are not affected.
    ok_json(&token(&fake, &refresh_pairs(&basic_rt)));
    ok_json(&prod_refresh(&prod_rt));

    // Six months unused kills any refresh token; use keeps it alive.
    fake.advance(150 * DAY);
    ok_json(&prod_refresh(&prod_rt));
    fake.advance(150 * DAY);
    ok_json(&prod_refresh(&prod_rt));
    fake.advance(184 * DAY);
    assert_oauth_error(&prod_refresh(&prod_rt), 400, "invalid_grant", REFRESH_DEAD);
}

#[test]
fn access_tokens_expire_on_the_fake_clock() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let resp = request(
        "GET",
        &format!("{}?token={at}", fake.introspect_url()),
        &[],
        b"",
    );
    let v = ok_json(&resp);
    assert_eq!(v["expired"], false);
    assert_eq!(v["user"], USER);
    assert_eq!(v["scopes"], json!([MAIL]));
    assert_eq!(v["app"], false);
    fake.advance(Duration::from_secs(3599));
    assert!(fake.access_token_info(&at).unwrap().expired);
    assert_eq!(
        ok_json(&request(
            "GET",
            &format!("{}?token={at}", fake.introspect_url()),
            &[],
            b""
        ))["expired"],
        true
    );
    let resp = request(
        "GET",
        &format!("{}?token=ya29.nope", fake.introspect_url()),
        &[],
        b"",
    );
    assert_eq!(resp.status, 404);
    let resp = media_send(&fake, &at, MESSAGE.as_bytes());
    assert_gmail_error(&resp, 401, "authError");
}

#[test]
fn revoke_and_userinfo() {
    let fake = fake();
    let v = sign_in(&fake, &format!("openid email {MAIL}"));
    let (at, rt) = (
        str_field(&v, "access_token"),
        str_field(&v, "refresh_token"),
    );
    let info = ok_json(&request(
        "GET",
        &format!("{}/v1/userinfo", fake.url()),
        &[("Authorization", &format!("Bearer {at}"))],
        b"",
    ));
    assert_eq!(info["email"], USER);
    assert_eq!(info["email_verified"], true);
    let resp = request("GET", &format!("{}/v1/userinfo", fake.url()), &[], b"");
    assert_eq!(resp.status, 401);

    ok_json(&post_form(&fake.revoke_url(), &[], &[("token", rt)]));
    assert_oauth_error(
        &token(&fake, &refresh_pairs(rt)),
        400,
        "invalid_grant",
        REFRESH_DEAD,
    );
    assert!(
        fake.access_token_info(at).is_none(),
        "the access token went with it"
    );
    let resp = post_form(&fake.revoke_url(), &[], &[("token", rt)]);
    assert_oauth_error(&resp, 400, "invalid_token", "Token expired or revoked");
}

#[test]
fn discovery_document_points_at_the_fake() {
    let fake = fake();
    let resp = request("GET", &fake.discovery_url(), &[], b"");
    let v = ok_json(&resp);
    assert!(
        resp.header("Date").is_some(),
        "doctor reads the Date: {:?}",
        resp.headers
    );
    assert_eq!(v["issuer"], "https://accounts.google.com");
    assert_eq!(v["authorization_endpoint"], fake.authorize_url());
    assert_eq!(v["token_endpoint"], fake.token_url());
    assert_eq!(v["device_authorization_endpoint"], fake.device_url());
    assert_eq!(v["revocation_endpoint"], fake.revoke_url());
    assert_eq!(
        v["userinfo_endpoint"],
        format!("{}/v1/userinfo", fake.url())
    );
    assert!(
        v["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(JWT_BEARER))
    );
    assert_eq!(fake.stats().discovery_requests, 1);
}

#[test]
fn token_failure_injection_is_one_shot() {
    let fake = fake();
    let v = sign_in(&fake, MAIL);
    let rt = str_field(&v, "refresh_token");
    fake.fail_next_token_request(503, "temporarily_unavailable", "Try again later.");
    let resp = token(&fake, &refresh_pairs(rt));
    assert_oauth_error(&resp, 503, "temporarily_unavailable", "Try again later.");
    ok_json(&token(&fake, &refresh_pairs(rt)));
    let stats = fake.stats();
    assert_eq!(stats.errors, ["temporarily_unavailable"]);
    let grants: Vec<&str> = stats
        .oauth
        .token_requests
        .iter()
        .map(|l| l.grant_type.as_str())
        .collect();
    assert_eq!(
        grants,
        ["authorization_code", "refresh_token", "refresh_token"]
    );
}

// ---- service accounts ----

fn jwt_grant(fake: &FakeGoogle, assertion: &str) -> Response {
    token(
        fake,
        &[("grant_type", JWT_BEARER), ("assertion", assertion)],
    )
}

#[test]
fn service_account_key_file_is_googles_format() {
    let fake = fake();
    let key = fake.add_service_account(SA);
    let v: Value = serde_json::from_str(&key.json).unwrap();
    let keys: Vec<&str> = key
        .json
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .collect();
    assert_eq!(
        keys,
        [
            "type",
            "project_id",
            "private_key_id",
            "private_key",
            "client_email",
            "client_id",
            "auth_uri",
            "token_uri",
            "auth_provider_x509_cert_url",
            "client_x509_cert_url",
            "universe_domain"
        ]
    );
    assert!(key.json.ends_with("}\n") && key.json.starts_with("{\n  \"type\""));
    assert_eq!(v["type"], "service_account");
    assert_eq!(v["project_id"], "mailer-project");
    assert_eq!(v["client_email"], SA);
    assert_eq!(v["token_uri"], fake.token_url());
    assert_eq!(v["universe_domain"], "googleapis.com");
    let id = str_field(&v, "private_key_id");
    assert!(
        id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let client_id = str_field(&v, "client_id");
    assert!(client_id.len() == 21 && client_id.bytes().all(|b| b.is_ascii_digit()));
    // The PEM's newlines are real newlines, escaped as \n in the JSON text.
    assert!(key.json.contains("\"-----BEGIN PRIVATE KEY-----\\nMII"));
    let pem = str_field(&v, "private_key");
    assert!(
        pem.starts_with("-----BEGIN PRIVATE KEY-----\n")
            && pem.ends_with("-----END PRIVATE KEY-----\n")
    );
    assert!(pem.lines().all(|l| l.len() <= 64));
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64).unwrap();
    assert!(
        ring::signature::RsaKeyPair::from_pkcs8(&der).is_ok(),
        "PKCS#8 RSA"
    );
    assert_eq!(
        (key.client_id.as_str(), key.private_key_id.as_str()),
        (client_id, id)
    );
}

#[test]
fn jwt_bearer_grant_verifies_the_assertion_strictly() {
    let fake = fake();
    let key = fake.add_service_account(SA);
    let impostor = fake.add_service_account("impostor@mailer-project.iam.gserviceaccount.com");
    fake.allow_delegation(&key.client_id, &[MAIL, READONLY]);

    let v = ok_json(&jwt_grant(
        &fake,
        &key.assertion(Some("bob@example.com"), MAIL),
    ));
    let mut names: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["access_token", "expires_in", "token_type"],
        "no refresh token"
    );
    let info = fake
        .access_token_info(str_field(&v, "access_token"))
        .unwrap();
    assert_eq!(
        (
            info.user.as_str(),
            info.scopes.as_slice(),
            info.app,
            info.client_id.as_str()
        ),
        (
            "bob@example.com",
            [MAIL.to_string()].as_slice(),
            false,
            key.client_id.as_str()
        )
    );
    // Without kid, too.
    let mut header = key.header();
    header.as_object_mut().unwrap().remove("kid");
    ok_json(&jwt_grant(
        &fake,
        &key.sign(&header, &key.claims(Some("bob@example.com"), MAIL)),
    ));

    let claims = key.claims(Some("bob@example.com"), MAIL);
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let refused = |jwt: &str, status: u16, error: &str, description: &str| {
        assert_oauth_error(&jwt_grant(&fake, jwt), status, error, description);
    };
    let signature = "Invalid JWT Signature.";
    // Signed with another key, a tampered payload, a wrong kid, another algorithm.
    refused(
        &impostor.sign(&impostor.header(), &claims),
        400,
        "invalid_grant",
        signature,
    );
    refused(
        &impostor.sign(&key.header(), &claims),
        400,
        "invalid_grant",
        signature,
    );
    let good = key.assertion(Some("bob@example.com"), MAIL);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = URL_SAFE_NO_PAD.encode(with("sub", "eve@example.com".into()).to_string());
    refused(
        &format!("{}.{tampered}.{}", parts[0], parts[2]),
        400,
        "invalid_grant",
        signature,
    );
    refused(
        &key.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "0".repeat(40)}),
            &claims,
        ),
        400,
        "invalid_grant",
        signature,
    );
    refused(
        &key.sign(&json!({"alg": "PS256", "typ": "JWT"}), &claims),
        400,
        "invalid_grant",
        signature,
    );
    refused("not.a.jwt", 400, "invalid_grant", signature);
    // Claims: issuer, audience, times, scope, subject.
    let sign = |c: &Value| key.sign(&key.header(), c);
    refused(
        &sign(&with(
            "iss",
            "nobody@elsewhere.iam.gserviceaccount.com".into(),
        )),
        400,
        "invalid_grant",
        "Not a valid email or user ID.",
    );
    refused(
        &sign(&with("aud", "https://oauth2.googleapis.com/token".into())),
        400,
        "invalid_grant",
        "Invalid JWT: Failed audience check.",
    );
    let now = now_secs();
    refused(
        &sign(&with("exp", (now + 3601).into())),
        400,
        "invalid_grant",
        ASSERTION_TIME,
    );
    let dated = |iat: u64, exp: u64| {
        let mut c = claims.clone();
        c["iat"] = iat.into();
        c["exp"] = exp.into();
        sign(&c)
    };
    // Issued in the future, beyond the skew; expired an hour ago.
    refused(
        &dated(now + 900, now + 1800),
        400,
        "invalid_grant",
        ASSERTION_TIME,
    );
    refused(
        &dated(now - 7200, now - 3600),
        400,
        "invalid_grant",
        ASSERTION_TIME,
    );
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    refused(&sign(&no_exp), 400, "invalid_grant", ASSERTION_TIME);
    let mut no_scope = claims.clone();
    no_scope.as_object_mut().unwrap().remove("scope");
    refused(
        &sign(&no_scope),
        400,
        "invalid_scope",
        "Invalid OAuth scope or ID token audience provided.",
    );
    refused(
        &sign(&with("sub", "not-an-address".into())),
        400,
        "invalid_grant",
        "Invalid email or User ID",
    );
    // Domain-wide delegation: every scope must be in the list, and the list must exist.
    let unauthorized = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";
    refused(
        &sign(&with(
            "scope",
            format!("{MAIL} https://www.googleapis.com/auth/gmail.send").into(),
        )),
        401,
        "unauthorized_client",
        unauthorized,
    );
    refused(
        &impostor.assertion(Some("bob@example.com"), MAIL),
        401,
        "unauthorized_client",
        unauthorized,
    );
    // Both scopes allowed: fine. A client clock a minute off: fine.
    ok_json(&jwt_grant(
        &fake,
        &sign(&with("scope", format!("{MAIL} {READONLY}").into())),
    ));
    ok_json(&jwt_grant(
        &fake,
        &sign(&json!({
            "iss": SA, "scope": MAIL, "aud": fake.token_url(), "sub": "bob@example.com",
            "iat": now + 60, "exp": now + 3660,
        })),
    ));
    // The real clock judges assertions: advancing the fake does not age them.
    fake.advance(10 * DAY);
    ok_json(&jwt_grant(
        &fake,
        &key.assertion(Some("bob@example.com"), MAIL),
    ));
    assert_eq!(fake.stats().jwt_grants, 5);
}

#[test]
fn a_service_accounts_own_token_is_refused_by_gmail() {
    let fake = fake();
    let key = fake.add_service_account(SA);
    // No sub, no delegation needed: Google issues the service account's own token ...
    let v = ok_json(&jwt_grant(&fake, &key.assertion(None, MAIL)));
    let at = str_field(&v, "access_token");
    let info = fake.access_token_info(at).unwrap();
    assert!(info.app && info.user == SA, "{info:?}");
    // ... which has no mailbox.
    let resp = media_send(&fake, at, MESSAGE.as_bytes());
    let e = assert_gmail_error(&resp, 400, "failedPrecondition");
    assert_eq!(e["message"], "Precondition check failed.");
    assert_eq!(e["status"], "FAILED_PRECONDITION");
    // Impersonating a user works once delegated.
    fake.allow_delegation(&key.client_id, &[MAIL]);
    let v = ok_json(&jwt_grant(
        &fake,
        &key.assertion(Some("bob@example.com"), MAIL),
    ));
    let resp = media_send(
        &fake,
        str_field(&v, "access_token"),
        MESSAGE.replace(USER, "bob@example.com").as_bytes(),
    );
    ok_json(&resp);
    assert_eq!(fake.sent()[0].user, "bob@example.com");
}

// ---- the device flow ----

fn device_code(fake: &FakeGoogle, client: &str, scope: &str) -> Response {
    post_form(
        &fake.device_url(),
        &[],
        &[("client_id", client), ("scope", scope)],
    )
}

#[test]
fn device_flow_refuses_gmail_scopes() {
    let fake = fake();
    for scope in [MAIL, "https://www.googleapis.com/auth/gmail.send", READONLY] {
        let resp = device_code(&fake, TV, &format!("openid {scope}"));
        assert_oauth_error(
            &resp,
            400,
            "invalid_scope",
            &format!("Invalid device flow scope: {scope}"),
        );
    }
    // Before any client check: a Desktop client asking for Gmail gets the same.
    let resp = device_code(&fake, CLIENT, MAIL);
    assert_oauth_error(
        &resp,
        400,
        "invalid_scope",
        &format!("Invalid device flow scope: {MAIL}"),
    );
    let resp = device_code(&fake, CLIENT, "openid email");
    assert_oauth_error(&resp, 401, "invalid_client", "Invalid client type.");
    let resp = device_code(&fake, "42-nobody.apps.googleusercontent.com", "email");
    assert_oauth_error(
        &resp,
        401,
        "invalid_client",
        "The OAuth client was not found.",
    );

    // The allowed scopes work, on a TV client.
    let v = ok_json(&device_code(&fake, TV, "openid email profile"));
    let (dc, uc) = (str_field(&v, "device_code"), str_field(&v, "user_code"));
    assert_eq!(v["verification_url"], format!("{}/device", fake.url()));
    assert_eq!(
        (v["expires_in"].as_u64(), v["interval"].as_u64()),
        (Some(1800), Some(5))
    );
    let poll = || {
        token(
            &fake,
            &[
                ("grant_type", DEVICE_GRANT),
                ("client_id", TV),
                ("client_secret", TV_SECRET),
                ("device_code", dc),
            ],
        )
    };
    assert_oauth_error(
        &poll(),
        428,
        "authorization_pending",
        "Precondition Required",
    );
    assert_oauth_error(&poll(), 403, "slow_down", "Forbidden");
    assert!(fake.approve_device_code(uc));
    fake.advance(Duration::from_secs(5));
    let t = ok_json(&poll());
    assert!(t.get("refresh_token").is_some());
    assert_eq!(
        t["scope"],
        "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile"
    );
    assert_eq!(fake.stats().oauth.device_polls, 3);
}

// ---- Gmail ----

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn media_send(fake: &FakeGoogle, token: &str, message: &[u8]) -> Response {
    request(
        "POST",
        &format!(
            "{}/upload/gmail/v1/users/me/messages/send?uploadType=media",
            fake.api_url()
        ),
        &[
            ("Authorization", &bearer(token)),
            ("Content-Type", "message/rfc822"),
        ],
        message,
    )
}

fn json_send(fake: &FakeGoogle, token: &str, body: &Value) -> Response {
    request(
        "POST",
        &format!("{}/gmail/v1/users/me/messages/send", fake.api_url()),
        &[
            ("Authorization", &bearer(token)),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    )
}

/// A Gmail error in the v1 envelope with `status`; returns `error`.
fn assert_gmail_error(resp: &Response, status: u16, reason: &str) -> Value {
    assert_eq!(resp.status, status, "{}", resp.text());
    let v = resp.json();
    let e = v["error"].clone();
    assert_eq!(e["code"], status, "{v}");
    assert_eq!(e["errors"][0]["reason"], reason, "{v}");
    assert!(e["message"].is_string() && e["status"].is_string(), "{v}");
    e
}

/// The `Message` answer of an accepted send.
fn assert_sent(resp: &Response) -> Value {
    let v = ok_json(resp);
    let id = str_field(&v, "id");
    assert!(
        id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{v}"
    );
    assert!(v["threadId"].is_string(), "{v}");
    v
}

#[test]
fn gmail_media_upload_delivers_to_header_recipients_without_bcc() {
    let fake = fake();
    let at = access_token(&fake, "https://www.googleapis.com/auth/gmail.send");
    let v = assert_sent(&media_send(&fake, &at, MESSAGE.as_bytes()));
    assert_eq!(v["labelIds"], json!(["SENT"]));
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    let s = &sent[0];
    assert_eq!(s.upload, Upload::Media);
    assert_eq!(s.user, USER);
    assert_eq!(
        s.recipients,
        [
            "bob@example.org",
            "carol@example.net",
            "dave@example.com",
            "erin@example.com"
        ]
    );
    assert!(s.bcc_header_present);
    assert_eq!(s.submitted, MESSAGE.as_bytes());
    // Gmail keeps the message without its Bcc field (folded continuation line included).
    assert_eq!(
        String::from_utf8_lossy(&s.raw),
        MESSAGE.replace("Bcc: Dave <dave@example.com>,\r\n erin@example.com\r\n", "")
    );
    assert_eq!(s.from_header, "Ada <ada@example.com>");
    assert_eq!(s.original_from, None);
    assert_eq!(
        (s.id.as_str(), s.thread_id.as_str()),
        (str_field(&v, "id"), str_field(&v, "threadId"))
    );

    // message/* only.
    let resp = request(
        "POST",
        &format!(
            "{}/upload/gmail/v1/users/me/messages/send?uploadType=media",
            fake.api_url()
        ),
        &[
            ("Authorization", &bearer(&at)),
            ("Content-Type", "text/plain"),
        ],
        MESSAGE.as_bytes(),
    );
    let e = assert_gmail_error(&resp, 400, "badRequest");
    assert_eq!(
        e["message"],
        "Media type 'text/plain' is not supported. Valid media types: [message/*]"
    );
    // More than 5 MiB is for the resumable protocol.
    let big = format!("{MESSAGE}{}", "x".repeat(5 << 20));
    assert_gmail_error(&media_send(&fake, &at, big.as_bytes()), 400, "badRequest");
    // Without uploadType.
    let resp = request(
        "POST",
        &format!("{}/upload/gmail/v1/users/me/messages/send", fake.api_url()),
        &[
            ("Authorization", &bearer(&at)),
            ("Content-Type", "message/rfc822"),
        ],
        MESSAGE.as_bytes(),
    );
    assert_gmail_error(&resp, 400, "badRequest");
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(
        fake.stats().gmail_errors,
        ["400 badRequest", "400 badRequest", "400 badRequest"]
    );
}

/// Starts a resumable upload of `total` bytes; returns the session URL.
fn start_resumable(fake: &FakeGoogle, token: &str, total: usize) -> String {
    let resp = request(
        "POST",
        &format!(
            "{}/upload/gmail/v1/users/me/messages/send?uploadType=resumable",
            fake.api_url()
        ),
        &[
            ("Authorization", &bearer(token)),
            ("X-Upload-Content-Type", "message/rfc822"),
            ("X-Upload-Content-Length", &total.to_string()),
        ],
        b"",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.is_empty());
    let location = resp.header("Location").expect("Location").to_string();
    assert!(
        location.starts_with(&format!(
            "{}/upload/gmail/v1/users/me/messages/send?uploadType=resumable&upload_id=",
            fake.api_url()
        )),
        "{location}"
    );
    location
}

fn put(url: &str, range: &str, body: &[u8]) -> Response {
    request("PUT", url, &[("Content-Range", range)], body)
}

#[test]
fn gmail_resumable_upload_takes_256k_chunks_in_order() {
    const K256: usize = 256 * 1024;
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let body_line = format!("{}\r\n", "y".repeat(76));
    let message = format!(
        "{MESSAGE}{}",
        body_line.repeat(K256 * 5 / 2 / body_line.len())
    );
    let bytes = message.as_bytes();
    let n = bytes.len();
    assert!(n > 2 * K256 && n < 3 * K256);
    let url = start_resumable(&fake, &at, n);
    let range = |a: usize, b: usize| format!("bytes {a}-{b}/{n}");

    let resp = put(&url, &range(0, K256 - 1), &bytes[..K256]);
    assert_eq!(resp.status, 308, "{}", resp.text());
    assert_eq!(
        resp.header("Range"),
        Some(format!("bytes=0-{}", K256 - 1).as_str())
    );
    // A status query says the same.
    let resp = put(&url, &format!("bytes */{n}"), b"");
    assert_eq!(
        (resp.status, resp.header("Range")),
        (308, Some(format!("bytes=0-{}", K256 - 1).as_str()))
    );
    // A chunk that is not a multiple of 256 KiB (and not the last) is refused ...
    let resp = put(
        &url,
        &range(K256, K256 + 99_999),
        &bytes[K256..K256 + 100_000],
    );
    assert_gmail_error(&resp, 400, "badRequest");
    // ... one that leaves a gap is answered with what the session has ...
    let resp = put(&url, &range(2 * K256, n - 1), &bytes[2 * K256..]);
    assert_eq!(
        (resp.status, resp.header("Range")),
        (308, Some(format!("bytes=0-{}", K256 - 1).as_str()))
    );
    // ... as is one that says a wrong total.
    let resp = put(
        &url,
        &format!("bytes {K256}-{}/{}", 2 * K256 - 1, n + 1),
        &bytes[K256..2 * K256],
    );
    assert_gmail_error(&resp, 400, "badRequest");
    let resp = put(&url, &range(K256, 2 * K256 - 1), &bytes[K256..2 * K256]);
    assert_eq!(
        (resp.status, resp.header("Range")),
        (308, Some(format!("bytes=0-{}", 2 * K256 - 1).as_str()))
    );
    assert!(fake.sent().is_empty(), "nothing sent before the last byte");
    // The last chunk may be of any size; it sends.
    let v = assert_sent(&put(&url, &range(2 * K256, n - 1), &bytes[2 * K256..]));
    let sent = fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].upload, Upload::Resumable);
    assert_eq!(sent[0].submitted, bytes);
    // A finished session answers again with its result; nothing is sent twice.
    let again = put(&url, &format!("bytes */{n}"), b"");
    assert_eq!(again.json(), v);
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(fake.stats().resumable_puts, 8);

    // One PUT without Content-Range carries the whole message.
    let url = start_resumable(&fake, &at, MESSAGE.len());
    assert_sent(&request("PUT", &url, &[], MESSAGE.as_bytes()));
    // The bearer token is optional on the session URL, but a bad one is refused.
    let url = start_resumable(&fake, &at, MESSAGE.len());
    let resp = request(
        "PUT",
        &url,
        &[("Authorization", "Bearer ya29.bogus")],
        MESSAGE.as_bytes(),
    );
    assert_gmail_error(&resp, 401, "authError");
    let resp = request(
        "PUT",
        &url,
        &[("Authorization", &bearer(&at))],
        MESSAGE.as_bytes(),
    );
    assert_sent(&resp);
    let unknown = format!(
        "{}/upload/gmail/v1/users/me/messages/send?uploadType=resumable&upload_id=nope",
        fake.api_url()
    );
    assert_gmail_error(
        &request("PUT", &unknown, &[], MESSAGE.as_bytes()),
        404,
        "notFound",
    );
}

#[test]
fn gmail_resumable_sessions_must_declare_length_and_type() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let start = |headers: &[(&str, &str)], body: &[u8]| {
        let mut all = vec![("Authorization", bearer(&at))];
        all.extend(headers.iter().map(|(k, v)| (*k, v.to_string())));
        let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(
            "POST",
            &format!(
                "{}/upload/gmail/v1/users/me/messages/send?uploadType=resumable",
                fake.api_url()
            ),
            &borrowed,
            body,
        )
    };
    let resp = start(&[("X-Upload-Content-Type", "message/rfc822")], b"");
    assert_gmail_error(&resp, 400, "badRequest");
    let resp = start(&[("X-Upload-Content-Length", "1000")], b"");
    assert_gmail_error(&resp, 400, "badRequest");
    // 35 MiB is the API's maxSize.
    let resp = start(
        &[
            ("X-Upload-Content-Type", "message/rfc822"),
            ("X-Upload-Content-Length", "36700161"),
        ],
        b"",
    );
    assert_gmail_error(&resp, 413, "uploadTooLarge");
    let ok = [
        ("X-Upload-Content-Type", "message/rfc822"),
        ("X-Upload-Content-Length", "36700160"),
    ];
    assert_eq!(start(&ok, b"").status, 200);
    // Metadata is JSON with Message's names only.
    let mut json_ok = ok.to_vec();
    json_ok.push(("Content-Type", "application/json; charset=UTF-8"));
    assert_eq!(start(&json_ok, br#"{"threadId":"abc"}"#).status, 200);
    let resp = start(&json_ok, br#"{"threadID":"abc"}"#);
    let e = assert_gmail_error(&resp, 400, "invalidArgument");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name \"threadID\""),
        "{e}"
    );
}

#[test]
fn gmail_json_send_takes_raw_in_any_base64_within_1_mib() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    for raw in [
        URL_SAFE_NO_PAD.encode(MESSAGE),
        URL_SAFE.encode(MESSAGE),
        STANDARD.encode(MESSAGE),
    ] {
        assert_sent(&json_send(&fake, &at, &json!({ "raw": raw })));
    }
    let sent = fake.sent();
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|s| s.upload == Upload::Json && s.submitted == MESSAGE.as_bytes())
    );

    let big = format!("{MESSAGE}{}", "z".repeat(800 * 1024));
    let resp = json_send(&fake, &at, &json!({ "raw": URL_SAFE_NO_PAD.encode(&big) }));
    let e = assert_gmail_error(&resp, 400, "badRequest");
    assert_eq!(
        e["message"],
        "Request payload size exceeds the limit: 1048576 bytes."
    );
    let e = assert_gmail_error(&json_send(&fake, &at, &json!({})), 400, "badRequest");
    assert_eq!(
        e["message"],
        "'raw' RFC822 payload message string or uploading message via /upload/* URL required"
    );
    let e = assert_gmail_error(
        &json_send(
            &fake,
            &at,
            &json!({"raw": URL_SAFE_NO_PAD.encode(MESSAGE), "to": "x"}),
        ),
        400,
        "invalidArgument",
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Unknown name \"to\"")
    );
    assert_gmail_error(
        &json_send(&fake, &at, &json!({"raw": "%%%"})),
        400,
        "invalid",
    );
    // A thread id of an earlier message threads; an unknown one starts a new thread.
    let first = &fake.sent()[0];
    let v = assert_sent(&json_send(
        &fake,
        &at,
        &json!({"raw": URL_SAFE_NO_PAD.encode(MESSAGE), "threadId": first.thread_id}),
    ));
    assert_eq!(v["threadId"], first.thread_id.as_str());
    assert_eq!(fake.sent().len(), 4);
}

#[test]
fn gmail_checks_the_bearer_token_and_its_scope() {
    let fake = fake();
    let url = format!(
        "{}/upload/gmail/v1/users/me/messages/send?uploadType=media",
        fake.api_url()
    );
    let send = |headers: &[(&str, &str)]| {
        let mut all = vec![("Content-Type", "message/rfc822")];
        all.extend_from_slice(headers);
        request("POST", &url, &all, MESSAGE.as_bytes())
    };
    let e = assert_gmail_error(&send(&[]), 401, "required");
    assert_eq!(e["status"], "UNAUTHENTICATED");
    assert_eq!(e["errors"][0]["message"], "Login Required.");
    let resp = send(&[("Authorization", "Bearer ya29.bogus")]);
    let e = assert_gmail_error(&resp, 401, "authError");
    assert_eq!(
        e,
        json!({
            "code": 401,
            "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError", "location": "Authorization", "locationType": "header"}],
            "status": "UNAUTHENTICATED",
        })
    );
    assert!(
        resp.header("WWW-Authenticate")
            .unwrap()
            .contains("invalid_token")
    );

    // A live token without a send scope.
    let at = access_token(&fake, &format!("openid email {READONLY}"));
    let resp = send(&[("Authorization", &bearer(&at))]);
    let e = assert_gmail_error(&resp, 403, "insufficientPermissions");
    assert_eq!(
        e["message"],
        "Request had insufficient authentication scopes."
    );
    assert_eq!(e["status"], "PERMISSION_DENIED");
    assert_eq!(e["errors"][0]["message"], "Insufficient Permission");
    assert_eq!(e["details"][0]["reason"], "ACCESS_TOKEN_SCOPE_INSUFFICIENT");
    assert!(
        resp.header("WWW-Authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    // readonly reads the profile and the send-as list, which gmail.send cannot.
    let profile = ok_json(&request(
        "GET",
        &format!("{}/gmail/v1/users/me/profile", fake.api_url()),
        &[("Authorization", &bearer(&at))],
        b"",
    ));
    assert_eq!(profile["emailAddress"], USER);
    let send_only = access_token(&fake, "https://www.googleapis.com/auth/gmail.send");
    let resp = request(
        "GET",
        &format!("{}/gmail/v1/users/me/settings/sendAs", fake.api_url()),
        &[("Authorization", &bearer(&send_only))],
        b"",
    );
    assert_gmail_error(&resp, 403, "insufficientPermissions");

    // The path names the token's own mailbox, or me.
    let mail = access_token(&fake, MAIL);
    let path = |user: &str| {
        request(
            "POST",
            &format!(
                "{}/upload/gmail/v1/users/{user}/messages/send?uploadType=media",
                fake.api_url()
            ),
            &[
                ("Authorization", &bearer(&mail)),
                ("Content-Type", "message/rfc822"),
            ],
            MESSAGE.as_bytes(),
        )
    };
    assert_sent(&path("ada%40example.com"));
    let e = assert_gmail_error(&path("bob@example.org"), 403, "forbidden");
    assert_eq!(e["message"], "Delegation denied for bob@example.org");
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn gmail_recipient_and_from_rules() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let send = |m: &str| media_send(&fake, &at, m.as_bytes());
    let e = assert_gmail_error(
        &send("From: ada@example.com\r\nSubject: x\r\n\r\nbody\r\n"),
        400,
        "invalidArgument",
    );
    assert_eq!(e["message"], "Recipient address required");
    assert_eq!(e["status"], "INVALID_ARGUMENT");
    let e = assert_gmail_error(
        &send("To: bob@@example.org\r\nSubject: x\r\n\r\nb\r\n"),
        400,
        "invalidArgument",
    );
    assert_eq!(e["message"], "Invalid To header");
    assert!(fake.sent().is_empty());

    // A From that is neither the user nor an alias is rewritten; the original is kept.
    let spoof = "From: Boss <boss@corp.example>\r\nTo: bob@example.org\r\n\r\nhi\r\n";
    assert_sent(&send(spoof));
    let s = fake.sent().pop().unwrap();
    assert_eq!(s.from_header, USER);
    assert_eq!(s.original_from.as_deref(), Some("Boss <boss@corp.example>"));
    assert_eq!(
        String::from_utf8_lossy(&s.raw),
        "From: ada@example.com\r\nX-Google-Original-From: Boss <boss@corp.example>\r\nTo: bob@example.org\r\n\r\nhi\r\n"
    );
    // A verified alias is kept as it is; so is the user's own address in any case.
    fake.add_send_as(USER, "Sales@Example.com");
    for from in ["Sales <sales@example.com>", "ADA@example.com"] {
        let m = format!("From: {from}\r\nTo: bob@example.org\r\n\r\nhi\r\n");
        assert_sent(&send(&m));
        let s = fake.sent().pop().unwrap();
        assert_eq!((s.from_header.as_str(), s.original_from), (from, None));
        assert_eq!(s.raw, m.as_bytes());
    }
    // No From at all: Gmail fills it in. LF-only messages keep LF.
    assert_sent(&send("To: bob@example.org\n\nhi\n"));
    assert_eq!(
        fake.sent().pop().unwrap().raw,
        b"From: ada@example.com\nTo: bob@example.org\n\nhi\n"
    );
    // To oneself: it also lands in the inbox.
    let v = assert_sent(&send("To: Ada <ada@example.com>\r\n\r\nnote\r\n"));
    assert_eq!(v["labelIds"], json!(["UNREAD", "SENT", "INBOX"]));
    // Only Bcc is a recipient too.
    assert_sent(&send("Bcc: dave@example.com\r\n\r\nsecret\r\n"));
    let s = fake.sent().pop().unwrap();
    assert_eq!(s.recipients, ["dave@example.com"]);
    assert_eq!(s.raw, b"From: ada@example.com\r\n\r\nsecret\r\n");
}

#[test]
fn send_failures_are_injected_in_googles_shape() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    fake.fail_next_send(
        2,
        429,
        "rateLimitExceeded",
        "Resource has been exhausted (e.g. check quota).",
        Some(30),
    );
    for _ in 0..2 {
        let resp = media_send(&fake, &at, MESSAGE.as_bytes());
        let e = assert_gmail_error(&resp, 429, "rateLimitExceeded");
        assert_eq!(resp.header("Retry-After"), Some("30"));
        assert_eq!(
            (e["status"].as_str(), e["errors"][0]["domain"].as_str()),
            (Some("RESOURCE_EXHAUSTED"), Some("global"))
        );
    }
    assert_sent(&media_send(&fake, &at, MESSAGE.as_bytes()));
    for (status, reason, message, rpc, domain) in [
        (
            403,
            "userRateLimitExceeded",
            "User Rate Limit Exceeded",
            "PERMISSION_DENIED",
            "usageLimits",
        ),
        (500, "backendError", "Backend Error", "INTERNAL", "global"),
        (
            400,
            "failedPrecondition",
            "Mail service not enabled",
            "FAILED_PRECONDITION",
            "global",
        ),
    ] {
        fake.fail_next_send(1, status, reason, message, None);
        let resp = json_send(&fake, &at, &json!({"raw": URL_SAFE_NO_PAD.encode(MESSAGE)}));
        let e = assert_gmail_error(&resp, status, reason);
        assert_eq!(e["message"], message);
        assert_eq!(
            (e["status"].as_str(), e["errors"][0]["domain"].as_str()),
            (Some(rpc), Some(domain))
        );
        assert!(resp.header("Retry-After").is_none());
    }
    // A resumable upload fails at its last chunk, and the session keeps that answer.
    fake.fail_next_send(1, 500, "backendError", "Backend Error", None);
    let url = start_resumable(&fake, &at, MESSAGE.len());
    assert_gmail_error(
        &request("PUT", &url, &[], MESSAGE.as_bytes()),
        500,
        "backendError",
    );
    assert_gmail_error(
        &put(&url, &format!("bytes */{}", MESSAGE.len()), b""),
        500,
        "backendError",
    );
    assert_eq!(fake.sent().len(), 1);
}

#[test]
fn unrouted_requests_are_logged() {
    let fake = fake();
    assert_eq!(
        request("GET", &format!("{}/oauth2/v4/token", fake.url()), &[], b"").status,
        404
    );
    assert_eq!(
        request(
            "POST",
            &format!("{}/o/oauth2/v2/auth", fake.url()),
            &[],
            b""
        )
        .status,
        405
    );
    let resp = request(
        "GET",
        &format!("{}/gmail/v1/users/me/messages/send", fake.url()),
        &[],
        b"",
    );
    assert_eq!(resp.status, 404);
    assert_eq!(
        fake.stats().unrouted,
        [
            "GET /oauth2/v4/token",
            "POST /o/oauth2/v2/auth",
            "GET /gmail/v1/users/me/messages/send"
        ]
    );
}

#[test]
fn drop_stops_the_server() {
    let fake = fake();
    let url = fake.discovery_url();
    drop(fake);
    assert!(crate::support::http::try_request("GET", &url, &[], b"").is_err());
}

// ---- SMTP by hand over TLS ----

fn xoauth2(user: &str, token: &str) -> String {
    STANDARD.encode(format!("user={user}\x01auth=Bearer {token}\x01\x01"))
}

fn gmail_smtp(fake: &FakeGoogle) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        introspect: fake.introspect_url(),
        google: true,
        ..SmtpOptions::default()
    })
}

#[test]
fn gmail_smtp_mode_accepts_a_mail_google_com_token() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let server = gmail_smtp(&fake);
    let (smtp, greeting) = SmtpClient::connect(server.port());
    assert!(
        greeting[0].starts_with("220 ") && greeting[0].ends_with("- gsmtp"),
        "{greeting:?}"
    );
    let (mut smtp, ehlo) = smtp.starttls();
    assert!(
        ehlo.iter()
            .any(|l| l.contains("AUTH") && l.contains("XOAUTH2")),
        "{ehlo:?}"
    );
    let auth = smtp.command(&format!("AUTH XOAUTH2 {}", xoauth2("Ada@Example.com", &at)));
    assert!(auth[0].starts_with("235 "), "{auth:?}");
    let dot = smtp.mail(USER, "bob@example.org", "Subject: hi\r\n\r\nhello\r\n");
    assert!(
        dot[0].starts_with("250 2.0.0 OK ") && dot[0].ends_with(" - gsmtp"),
        "{dot:?}"
    );
    assert!(smtp.command("QUIT")[0].starts_with("221"));
    let m = server.wait_messages(1, IO_LIMIT);
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].user.as_str(), m[0].to.as_slice()),
        (
            "Ada@Example.com",
            ["bob@example.org".to_string()].as_slice()
        )
    );
    assert_eq!(server.stats().auth_ok, 1);
}

#[test]
fn gmail_smtp_mode_refuses_bad_tokens_with_the_334_then_535_dance() {
    let fake = fake();
    let mail = access_token(&fake, MAIL);
    let send_only = access_token(&fake, "https://www.googleapis.com/auth/gmail.send");
    let key = fake.add_service_account(SA);
    let own = str_field(
        &ok_json(&jwt_grant(&fake, &key.assertion(None, MAIL))),
        "access_token",
    )
    .to_string();
    let server = gmail_smtp(&fake);
    let cases = [
        (USER, "ya29.never-issued".to_string()),
        // Gmail's SMTP wants https://mail.google.com/; gmail.send is for the API.
        (USER, send_only),
        // Someone else's token.
        ("bob@example.org", mail),
        // A service account's own token has no mailbox.
        (SA, own),
    ];
    for (user, token) in &cases {
        let (smtp, _) = SmtpClient::connect(server.port());
        let (mut smtp, _) = smtp.starttls();
        let challenge = smtp.command(&format!("AUTH XOAUTH2 {}", xoauth2(user, token)));
        // Byte for byte the challenge Gmail sends.
        assert_eq!(
            challenge,
            [
                "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="
            ],
            "{user}"
        );
        let refusal = smtp.command("");
        assert_eq!(refusal.len(), 2, "{refusal:?}");
        assert_eq!(
            refusal[0],
            "535-5.7.8 Username and Password not accepted. Learn more at"
        );
        assert!(
            refusal[1].starts_with("535 5.7.8  https://support.google.com/mail/?p=BadCredentials ")
                && refusal[1].ends_with(" - gsmtp"),
            "{refusal:?}"
        );
        let mail_from = smtp.command(&format!("MAIL FROM:<{USER}>"));
        assert!(
            mail_from[0].starts_with("530"),
            "no mail without AUTH: {mail_from:?}"
        );
    }
    assert!(server.messages().is_empty());
    let stats = server.stats();
    assert_eq!((stats.auth_ok, stats.auth_failed), (0, cases.len() as u32));
}

// ---- OAUTHBEARER in the scripted SMTP server ----

fn oauthbearer_server(fake: &FakeGoogle) -> FaultySmtp {
    FaultySmtp::start_with(
        &fake.introspect_url(),
        Sasl::OAuthBearer {
            scope: MAIL.to_string(),
        },
        None,
    )
}

fn bearer_response(gs2: &str, pairs: &[&str]) -> String {
    let mut msg = format!("{gs2}\x01");
    for p in pairs {
        msg.push_str(p);
        msg.push('\x01');
    }
    msg.push('\x01');
    STANDARD.encode(msg)
}

#[test]
fn oauthbearer_accepts_a_good_token_with_its_gs2_header() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let server = oauthbearer_server(&fake);
    let port = server.port();
    let (smtp, _) = SmtpClient::connect(port);
    let (mut smtp, ehlo) = smtp.starttls();
    assert!(
        ehlo.contains(&"250-AUTH OAUTHBEARER".to_string()),
        "{ehlo:?}"
    );
    let initial = bearer_response(
        "n,a=ada@example.com,",
        &[
            "host=127.0.0.1",
            &format!("port={port}"),
            &format!("auth=Bearer {at}"),
        ],
    );
    let auth = smtp.command(&format!("AUTH OAUTHBEARER {initial}"));
    assert_eq!(auth, ["235 2.7.0 Authentication successful"]);
    let dot = smtp.mail(USER, "bob@example.org", "Subject: hi\r\n\r\nhello\r\n");
    assert!(dot[0].starts_with("250"), "{dot:?}");
    smtp.command("QUIT");

    // Without an initial response: an empty challenge first. An escaped authzid and no
    // host/port are fine too.
    fake.set_user("o=ne@example.com");
    let other = access_token(&fake, MAIL);
    let (smtp, _) = SmtpClient::connect(port);
    let (mut smtp, _) = smtp.starttls();
    // ("334 " on the wire; replies are read trimmed.)
    assert_eq!(smtp.command("AUTH OAUTHBEARER"), ["334"]);
    let r = smtp.command(&bearer_response(
        "n,a=o=3Dne@example.com,",
        &[&format!("auth=Bearer {other}")],
    ));
    assert_eq!(r, ["235 2.7.0 Authentication successful"]);

    let attempts = server.auth_attempts();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].mechanism, "OAUTHBEARER");
    assert_eq!(attempts[0].user.as_deref(), Some(USER));
    assert_eq!(attempts[0].host.as_deref(), Some("127.0.0.1"));
    assert_eq!(attempts[0].port, Some(port.to_string()));
    assert!(attempts[0].ok && attempts[1].ok);
    assert_eq!(attempts[1].user.as_deref(), Some("o=ne@example.com"));
    let received = server.received();
    assert_eq!((received.len(), received[0].user.as_str()), (1, USER));
}

#[test]
fn oauthbearer_failures_follow_rfc_7628() {
    let fake = fake();
    let at = access_token(&fake, MAIL);
    let readonly = access_token(&fake, READONLY);
    let server = oauthbearer_server(&fake);
    let port = server.port();
    let session = || SmtpClient::connect(port).0.starttls().0;
    let challenge = |status: &str| {
        format!(
            "334 {}",
            STANDARD.encode(format!(
                r#"{{"status":"{status}","schemes":"bearer","scope":"https://mail.google.com/"}}"#
            ))
        )
    };
    // Bad tokens: the JSON challenge, the client's %x01, then 535.
    for (gs2, token) in [
        ("n,a=ada@example.com,", "ya29.never-issued"),
        ("n,a=ada@example.com,", readonly.as_str()),
        ("n,a=bob@example.org,", at.as_str()),
    ] {
        let mut smtp = session();
        let r = smtp.command(&format!(
            "AUTH OAUTHBEARER {}",
            bearer_response(gs2, &[&format!("auth=Bearer {token}")])
        ));
        assert_eq!(r, [challenge("invalid_token")]);
        assert_eq!(
            smtp.command("AQ=="),
            ["535 5.7.8 Authentication credentials invalid"]
        );
        assert!(smtp.command("MAIL FROM:<ada@example.com>")[0].starts_with("530"));
    }
    // host/port that do not name this server.
    let mut smtp = session();
    let wrong_port = bearer_response(
        "n,a=ada@example.com,",
        &["host=127.0.0.1", "port=1", &format!("auth=Bearer {at}")],
    );
    assert_eq!(
        smtp.command(&format!("AUTH OAUTHBEARER {wrong_port}")),
        [challenge("invalid_request")]
    );
    // An XOAUTH2 habit (an empty line) instead of %x01 is a protocol error.
    let r = smtp.command("");
    assert!(r[0].starts_with("501 "), "{r:?}");
    // Malformed client responses: no authzid, p= channel binding, no final %x01, no auth.
    for bad in [
        bearer_response("n,,", &[&format!("auth=Bearer {at}")]),
        bearer_response(
            "p=tls-unique,a=ada@example.com,",
            &[&format!("auth=Bearer {at}")],
        ),
        STANDARD.encode(format!("n,a=ada@example.com,\x01auth=Bearer {at}\x01")),
        bearer_response("n,a=ada@example.com,", &["host=127.0.0.1"]),
        "not base64!".to_string(),
    ] {
        let mut smtp = session();
        let r = smtp.command(&format!("AUTH OAUTHBEARER {bad}"));
        assert!(r[0].starts_with("501 "), "{bad}: {r:?}");
    }
    let mut smtp = session();
    assert!(smtp.command(&format!("AUTH XOAUTH2 {}", xoauth2(USER, &at)))[0].starts_with("504 "));

    let attempts = server.auth_attempts();
    assert!(attempts.iter().all(|a| !a.ok), "{attempts:?}");
    assert_eq!(attempts[0].challenge_reply.as_deref(), Some("AQ=="));
    assert_eq!(attempts[3].challenge_reply.as_deref(), Some(""));
    assert_eq!(attempts[3].port.as_deref(), Some("1"));
    assert_eq!(attempts.len(), 10);
    assert!(server.received().is_empty());
}
