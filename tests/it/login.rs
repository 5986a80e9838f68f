//! `mailer login` end to end against the strict fake Entra: browser and device-code flows,
//! state forgery, timeouts, provider errors, and the token store checked before any browser.

use crate::support::fake_entra::FakeEntra;
use crate::support::harness::{Env, Output, browse};
use crate::support::http;
use crate::support::oauth::DeviceVerification;
use std::time::{Duration, Instant};

pub const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
pub const TENANT: &str = "contoso.example";

pub fn fake() -> FakeEntra {
    let f = FakeEntra::start();
    f.add_public_client(CLIENT, &["http://localhost"]);
    f
}

/// `mailer login` of `client` in [`TENANT`] at the fake's `authority`, waiting at most
/// `timeout` seconds, with `--no-browser` unless `browser`; then `extra`.
pub fn login_command<'a>(
    client: &'a str,
    authority: &'a str,
    timeout: &'a str,
    browser: bool,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "login",
        "--tenant",
        TENANT,
        "--client-id",
        client,
        "--authority",
        authority,
        "--timeout",
        timeout,
    ];
    if !browser {
        a.push("--no-browser");
    }
    a.extend_from_slice(extra);
    a
}

/// The usual test login: [`CLIENT`], 30 s, no browser.
pub fn login_args<'a>(authority: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    login_command(CLIENT, authority, "30", false, extra)
}

/// Like [`login_args`], but mailer may open `$BROWSER`.
fn browser_login_args<'a>(authority: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    login_command(CLIENT, authority, "30", true, extra)
}

/// Logs in through the loopback flow, playing the browser; returns the finished run.
pub fn login(env: &Env, fake: &FakeEntra, extra: &[&str]) -> crate::support::harness::Output {
    let authority = fake.authority();
    let mut run = env.spawn(&login_args(&authority, extra));
    let url = run.authorize_url();
    let page = browse(&url);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("close this tab"), "{}", page.text());
    run.finish()
}

fn query(url: &str, key: &str) -> String {
    http::pair(&http::query_pairs(url), key)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn browser_login_consents_both_resources_and_keeps_tokens_in_the_keyring() {
    let env = Env::new();
    let f = fake();
    let out = login(&env, &f, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("Logged in as ada@contoso.example"),
        "{out}"
    );
    assert!(out.stderr.contains("keyring"), "{out}");
    assert!(!env.browser_was_opened(), "--no-browser opened a browser");

    // One authorize request names both resources; PKCE S256 and a state were sent.
    let q = f.last_authorize_query().unwrap();
    let get = |k: &str| http::pair(&q, k).unwrap_or_default().to_owned();
    let scopes: Vec<_> = get("scope").split(' ').map(str::to_owned).collect();
    assert!(
        scopes.contains(&"https://graph.microsoft.com/Mail.Send".to_owned()),
        "{scopes:?}"
    );
    assert!(
        scopes.contains(&"https://outlook.office.com/SMTP.Send".to_owned()),
        "{scopes:?}"
    );
    assert!(scopes.contains(&"offline_access".to_owned()));
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(get("state").len() >= 16);
    assert!(
        get("redirect_uri").starts_with("http://localhost:"),
        "{}",
        get("redirect_uri")
    );

    // The code redemption named one resource. (It is the last token request: a first login
    // asks first whether the token endpoint knows the app.)
    let st = f.stats();
    assert_eq!(st.oauth.code_grants, 1);
    let redeem = st.oauth.token_requests.last().unwrap();
    assert_eq!(redeem.grant_type, "authorization_code");
    assert!(
        !redeem.scope.clone().unwrap().contains("outlook.office.com"),
        "{redeem:?}"
    );

    // The config names the profile; no secret in it.
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.contains("user = \"ada@contoso.example\""),
        "{config}"
    );
    assert!(config.contains("token_store = \"keyring\""), "{config}");
    for s in f.issued_secrets() {
        assert!(!config.contains(&s), "secret in config");
    }
    assert!(
        !env.token_file().exists(),
        "keyring profile wrote a token file"
    );

    // The cached Graph token is served without a refresh; SMTP mints one from the refresh token.
    let graph = env.run(&["token"], None);
    assert_eq!(graph.code, 0, "{graph}");
    let info = f
        .access_token_info(graph.stdout.trim())
        .expect("a token the fake issued");
    assert_eq!(info.resource, "https://graph.microsoft.com");
    assert_eq!(f.stats().oauth.refresh_grants, 0);
    let smtp = env.run(&["token", "--transport", "smtp"], None);
    assert_eq!(smtp.code, 0, "{smtp}");
    let info = f
        .access_token_info(smtp.stdout.trim())
        .expect("a token the fake issued");
    assert_eq!(info.resource, "https://outlook.office.com");
    assert_eq!(info.user, "ada@contoso.example");
    assert_eq!(f.stats().oauth.refresh_grants, 1);

    let status = env.run(&["status", "--json"], None);
    assert_eq!(status.code, 0, "{status}");
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["ready"], true);
    assert_eq!(s["token_store"]["kind"], "keyring");
    assert_eq!(s["user"], "ada@contoso.example");
}

#[test]
fn forged_state_is_refused_and_the_wait_goes_on() {
    let env = Env::new();
    let f = fake();
    let authority = f.authority();
    let mut run = env.spawn(&login_args(&authority, &[]));
    let url = run.authorize_url();
    let redirect = query(&url, "redirect_uri");
    let port_base = redirect
        .trim_end_matches('/')
        .replace("localhost", "127.0.0.1");

    let forged = http::request(
        "GET",
        &format!("{port_base}/?code=stolen&state=forged"),
        &[],
        b"",
    );
    assert_eq!(forged.status, 400, "{}", forged.text());
    assert!(
        forged.text().contains("state mismatch"),
        "{}",
        forged.text()
    );
    let missing = http::request("GET", &format!("{port_base}/?code=stolen"), &[], b"");
    assert_eq!(missing.status, 400);
    let favicon = http::request("GET", &format!("{port_base}/favicon.ico"), &[], b"");
    assert_eq!(favicon.status, 404);

    let page = browse(&url);
    assert_eq!(page.status, 200, "{}", page.text());
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
    // The forged code never reached the token endpoint: one redemption (of the real code),
    // after the first login's question whether the app is known.
    let st = f.stats();
    assert_eq!(
        (st.oauth.token_requests.len(), st.oauth.code_grants),
        (2, 1),
        "{st:?}"
    );
}

#[test]
fn login_times_out_with_a_clear_message() {
    let env = Env::new();
    let f = fake();
    let authority = f.authority();
    let args = login_command(CLIENT, &authority, "2", false, &[]);
    let started = Instant::now();
    let out = env.run(&args, None);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains("no sign-in arrived within 2 s"),
        "{out}"
    );
    assert!(out.stderr.contains("--timeout"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        !env.config_path().exists(),
        "a failed login wrote a profile"
    );
}

#[test]
fn unreachable_keyring_fails_before_any_browser() {
    let mut env = Env::new();
    env.set(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/mailer-test-bus",
    );
    let f = fake();
    let authority = f.authority();
    let args = browser_login_args(&authority, &[]);
    let started = Instant::now();
    let out = env.run(&args, None);
    assert_eq!(out.code, 74, "{out}");
    assert!(out.stderr.contains("keyring"), "{out}");
    assert!(out.stderr.contains("--token-store file"), "{out}");
    assert!(out.stderr.contains("unlocked"), "{out}");
    assert!(
        !env.browser_was_opened(),
        "a browser was opened although the tokens could not be kept"
    );
    assert_eq!(f.stats().oauth.authorize, 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn non_interactive_never_opens_a_browser() {
    let env = Env::new();
    let f = fake();
    // No login yet: token is exit 77 with the command that fixes it.
    let out = env.run(&["token"], None);
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("mailer login"), "{out}");
    let out = env.run(&["status"], None);
    assert_eq!(out.code, 77, "{out}");
    // login itself refuses under an explicit --non-interactive.
    let authority = f.authority();
    let args = browser_login_args(&authority, &["--non-interactive"]);
    let out = env.run(&args, None);
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("--non-interactive"), "{out}");
    assert!(!env.browser_was_opened());
    assert_eq!(f.stats().oauth.authorize, 0);
}

#[test]
fn login_opens_the_browser_through_dollar_browser() {
    // The recording $BROWSER gets the URL; the test then completes the sign-in.
    let env = Env::new();
    let f = fake();
    let authority = f.authority();
    let mut run = env.spawn(&browser_login_args(&authority, &[]));
    let url = run.authorize_url();
    run.wait_line("Opened your browser", Duration::from_secs(10));
    // The browser command runs in the background: wait (bounded) for its record.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.browser_was_opened() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let opened = std::fs::read_to_string(env.browser_log()).expect("$BROWSER was not run");
    assert_eq!(opened.trim(), url);
    assert_eq!(browse(&url).status, 200);
    assert_eq!(run.finish().code, 0);
}

#[test]
fn device_code_login_polls_through_pending_and_slow_down() {
    let env = Env::new();
    let f = fake();
    f.set_device_auto_approve_after(1);
    f.force_slow_down_once();
    let authority = f.authority();
    let out = env.run(
        &browser_login_args(&authority, &["--device-code", "--transport", "smtp"]),
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("enter the code"), "{out}");
    let st = f.stats();
    assert_eq!(st.oauth.device_grants, 1);
    assert!(st.slow_downs >= 1, "{st:?}");
    assert!(!env.browser_was_opened());
    // The device-code token is for the first resource named: the profile's transport.
    let tok = env.run(&["token"], None);
    assert_eq!(
        f.access_token_info(tok.stdout.trim()).unwrap().resource,
        "https://outlook.office.com"
    );
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(config.contains("flow = \"device_code\""), "{config}");
}

#[test]
fn device_code_declined_is_explained() {
    let env = Env::new();
    let f = fake();
    let authority = f.authority();
    let mut run = env.spawn(&browser_login_args(&authority, &["--device-code"]));
    let line = run.wait_line("enter the code", Duration::from_secs(20));
    let code = line.split_whitespace().last().unwrap().to_owned();
    assert!(f.decline_device_code(&code));
    let out = run.finish();
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("declined"), "{out}");
}

/// A login whose code redemption the fake refuses: the failure is armed once the browser
/// URL is out, so that it meets the redemption and not the first login's app check.
fn login_refused(env: &Env, f: &FakeEntra, error: &str, aadsts: u32, text: &str) -> Output {
    let authority = f.authority();
    let mut run = env.spawn(&login_args(&authority, &[]));
    let url = run.authorize_url();
    f.fail_next_token_request(400, error, aadsts, text);
    browse(&url);
    run.finish()
}

#[test]
fn provider_errors_carry_the_aadsts_code_and_a_fix() {
    // Consent missing at redemption.
    let env = Env::new();
    let f = fake();
    let out = login_refused(
        &env,
        &f,
        "invalid_grant",
        65001,
        "The user or administrator has not consented to use the application.",
    );
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("AADSTS65001"), "{out}");
    assert!(out.stderr.contains("fix:"), "{out}");
    assert!(!out.stderr.contains("error_codes"), "raw JSON shown: {out}");

    // The user declines on the sign-in page: access_denied on the redirect.
    let env = Env::new();
    f.fail_next_authorize(
        "access_denied",
        65004,
        "User declined to consent to access the app.",
    );
    let authority = f.authority();
    let mut run = env.spawn(&login_args(&authority, &[]));
    let page = browse(&run.authorize_url());
    assert_eq!(page.status, 400);
    assert!(page.text().contains("AADSTS65004"), "{}", page.text());
    let out = run.finish();
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("AADSTS65004"), "{out}");

    // Unknown app: the fake answers the authorize page itself (no redirect), so the login
    // waits; the redemption path covers 700016 instead.
    let env = Env::new();
    let out = login_refused(
        &env,
        &f,
        "unauthorized_client",
        700016,
        "Application with identifier 'x' was not found in the directory 'contoso.example'.",
    );
    assert_eq!(out.code, 78, "{out}");
    assert!(
        out.stderr.contains("AADSTS700016") && out.stderr.contains("--client-id"),
        "{out}"
    );
}

#[test]
fn confidential_client_secret_from_env_with_basic_auth() {
    let mut env = Env::new();
    let f = fake();
    f.add_confidential_client(
        "7e57c0de-0000-4000-8000-00000000e0a1",
        "s3cr3t-value",
        &["http://localhost"],
    );
    let authority = f.authority();
    // Without the secret the provider refuses with AADSTS7000218, explained.
    let args = login_command(
        "7e57c0de-0000-4000-8000-00000000e0a1",
        &authority,
        "30",
        false,
        &["--client-auth", "basic"],
    );
    let mut run = env.spawn(&args);
    browse(&run.authorize_url());
    let out = run.finish();
    assert_eq!(out.code, 78, "{out}");
    assert!(
        out.stderr.contains("AADSTS7000218") && out.stderr.contains("--client-secret-stdin"),
        "{out}"
    );

    env.set("MAILER_CLIENT_SECRET", "s3cr3t-value");
    let mut run = env.spawn(&args);
    browse(&run.authorize_url());
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
    let last = f.stats().oauth.token_requests.last().cloned().unwrap();
    assert_eq!(last.client_auth, "basic");
    // The secret lives in the token store, not the config; refresh uses it.
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(!config.contains("s3cr3t"), "{config}");
    env.vars.retain(|(k, _)| k != "MAILER_CLIENT_SECRET");
    let smtp = env.run(&["token", "--transport", "smtp"], None);
    assert_eq!(smtp.code, 0, "{smtp}");
    assert_eq!(
        f.stats().oauth.token_requests.last().unwrap().client_auth,
        "basic"
    );
}

#[test]
fn user_flag_when_the_id_token_names_nobody() {
    let env = Env::new();
    let f = fake();
    f.set_user_in_id_token(false);
    let out = login(&env, &f, &[]);
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("--user"), "{out}");
    let out = login(&env, &f, &["--user", "shared@contoso.example"]);
    assert_eq!(out.code, 0, "{out}");
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.contains("user = \"shared@contoso.example\""),
        "{config}"
    );
}

#[test]
fn fixed_redirect_uri_and_overrides_are_remembered() {
    let env = Env::new();
    let f = FakeEntra::start();
    // Reserve a free port for the fixed redirect, then release it for mailer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redirect = format!("http://localhost:{port}/callback");
    f.add_public_client(CLIENT, &["http://localhost/callback"]);
    let out = login(
        &env,
        &f,
        &[
            "--redirect-uri",
            &redirect,
            "--cloud",
            "usgov",
            "--graph-url",
            "http://127.0.0.1:9/graph",
            "--smtp-host",
            "smtp.example.us",
            "--smtp-port",
            "2525",
            "--smtp-security",
            "tls",
            "--login-hint",
            "ada@contoso.example",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let q = f.last_authorize_query().unwrap();
    assert_eq!(http::pair(&q, "redirect_uri"), Some(redirect.as_str()));
    assert_eq!(http::pair(&q, "login_hint"), Some("ada@contoso.example"));
    // usgov: Graph scopes name that cloud's Graph resource, whatever --graph-url says.
    assert!(
        http::pair(&q, "scope")
            .unwrap()
            .contains("https://graph.microsoft.us/Mail.Send")
    );
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.contains(&format!("redirect_uri = \"{redirect}\"")),
        "{config}"
    );
    // A re-login without the flag uses the registered redirect again.
    let again = login(&env, &f, &[]);
    assert_eq!(again.code, 0, "{again}");
    let q = f.last_authorize_query().unwrap();
    assert_eq!(http::pair(&q, "redirect_uri"), Some(redirect.as_str()));
    for needle in [
        "cloud = \"usgov\"",
        "graph_url = \"http://127.0.0.1:9/graph\"",
        "smtp_host = \"smtp.example.us\"",
        "smtp_port = 2525",
        "smtp_security = \"tls\"",
    ] {
        assert!(config.contains(needle), "{needle} missing in {config}");
    }
}

#[test]
fn plain_http_authority_off_loopback_is_refused() {
    let env = Env::new();
    let out = env.run(
        &[
            "login",
            "--client-id",
            CLIENT,
            "--authority",
            "http://login.example.com",
            "--no-browser",
        ],
        None,
    );
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("https"), "{out}");
    assert!(!env.browser_was_opened());
}

#[test]
fn a_tenant_or_client_id_that_cannot_be_right_is_a_usage_error_before_any_contact() {
    let env = Env::new();
    let f = fake();
    let authority = f.authority();
    for (tenant, client, named) in [
        ("a b/c", CLIENT, "--tenant"),
        ("contoso", CLIENT, "--tenant"),
        (TENANT, "not a guid", "--client-id"),
        (TENANT, "11111111-2222-3333-4444-55555555555", "--client-id"),
    ] {
        let out = env.run(
            &[
                "login",
                "--tenant",
                tenant,
                "--client-id",
                client,
                "--authority",
                &authority,
                "--no-browser",
                "--timeout",
                "5",
            ],
            None,
        );
        assert_eq!(out.code, 64, "{tenant} {client}: {out}");
        assert!(
            out.stderr.contains(named) && out.stderr.contains("fix:"),
            "{out}"
        );
        assert!(!out.stderr.contains("authorize?"), "{out}");
    }
    assert_eq!(f.stats().oauth.authorize, 0);
}

#[test]
fn a_first_login_waits_until_a_new_app_is_known() {
    // An app registered a moment ago (in the portal, or by `app create` that gave up):
    // Entra's token endpoint says AADSTS700016 for its first two questions.
    let env = Env::new();
    let f = FakeEntra::start();
    f.set_new_app_propagation(2);
    f.hooks()
        .register_app(CLIENT, &["http://localhost".to_owned()]);
    let out = login(&env, &f, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("Waiting for the identity provider to know the app"),
        "{out}"
    );
    let st = f.stats();
    let unknown = st.errors.iter().filter(|e| e.contains("700016")).count();
    assert_eq!((unknown, st.oauth.code_grants), (2, 1), "{st:?}");

    // A later login of the same profile has tokens stored: it asks no more.
    let before = f.stats().oauth.token_requests.len();
    let out = login(&env, &f, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        f.stats().oauth.token_requests.len(),
        before + 1,
        "only the redemption"
    );
}
