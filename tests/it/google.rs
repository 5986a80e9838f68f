//! Google as a second provider, end to end against the strict fake Google and a real SMTP
//! server answering as Gmail does: the loopback login (once in real Chromium), sends through
//! the Gmail API (simple and resumable uploads, throttling, a rejected token) and Gmail SMTP
//! (the 334 challenge), a Workspace service account, the 7-day expiry of an app in Testing,
//! the refused device flow, an unverified From, and a custom provider over OAUTHBEARER.

use crate::support::fake_google::{FakeGoogle, GMAIL_SEND, MAIL_SCOPE, Upload};
use crate::support::harness::{Chromium, Env, Output, smtp_flags};
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::smtp_faults::{FaultySmtp, Sasl};
use serde_json::Value;
use std::time::Duration;

const CLIENT: &str = "1234567890-mailertest.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-not-really-secret";
const USER: &str = "ada@example.com";

/// A fake Google with the Desktop client, and an SMTP server that checks its tokens the way
/// Gmail does (`reject`: the first N AUTHs fail with Gmail's 334 challenge).
struct Google {
    env: Env,
    google: FakeGoogle,
    smtp: SmtpServer,
}

impl Google {
    fn new(reject: u32) -> Google {
        let google = FakeGoogle::start();
        google.add_desktop_client(CLIENT, SECRET);
        google.set_user(USER);
        let smtp = SmtpServer::start(SmtpOptions {
            google: true,
            introspect: google.introspect_url(),
            reject: (reject > 0).then_some(("334", reject)),
            ..SmtpOptions::default()
        });
        let mut env = Env::new();
        env.set("MAILER_CLIENT_SECRET", SECRET);
        Google { env, google, smtp }
    }

    /// `mailer login --provider google` against the fakes, file token store, then `extra`.
    fn login_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "login",
            "--provider",
            "google",
            "--client-id",
            CLIENT,
            "--authorize-url",
            &self.google.authorize_url(),
            "--token-url",
            &self.google.token_url(),
            "--api-url",
            &self.google.api_url(),
            "--token-store",
            "file",
            "--timeout",
            "60",
        ]
        .map(|s| s.to_owned())
        .to_vec();
        a.extend(smtp_flags(self.smtp.port()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    /// Logs in, playing the browser.
    fn login(&self, extra: &[&str]) -> Output {
        let mut args = self.login_args(extra);
        args.push("--no-browser".into());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.run_signing_in(&refs, 1)
    }

    fn send(&self, subject: &str, extra: &[&str]) -> Output {
        let mut a = vec!["send", "--to", "bob@example.org", "--subject", subject];
        a.extend_from_slice(&["--body", "hello from mailer"]);
        a.extend_from_slice(extra);
        self.env.run(&a, None)
    }

    fn record(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.env.token_file()).unwrap()).unwrap()
    }
}

#[test]
fn login_in_chromium_then_send_through_the_gmail_api_and_gmail_smtp() {
    let mut g = Google::new(0);
    let chromium = Chromium::attach(&mut g.env);
    let args = g.login_args(&[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = g.env.run(&refs, None);
    assert_eq!(out.code, 0, "{out}\nchromium: {}", chromium.log());
    assert!(
        chromium.last_page().contains("You can close this tab"),
        "{}",
        chromium.last_page()
    );
    let q = g.google.last_authorize_query().unwrap();
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("access_type"), "offline");
    assert_eq!(get("prompt"), "consent");
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(
        get("redirect_uri").starts_with("http://127.0.0.1:"),
        "{q:?}"
    );
    for s in [MAIL_SCOPE, GMAIL_SEND, "openid", "email"] {
        assert!(get("scope").split(' ').any(|x| x == s), "{s}: {q:?}");
    }
    let config = std::fs::read_to_string(g.env.config_path()).unwrap();
    assert!(config.contains("provider = \"google\""), "{config}");
    assert!(config.contains(&format!("user = \"{USER}\"")), "{config}");
    assert!(config.contains("transport = \"gmail\""), "{config}");
    assert!(
        !config.contains(SECRET),
        "the client secret is not in the config"
    );
    assert!(!config.contains("tenant"), "Google has no tenant: {config}");

    // Through the Gmail API, Bcc recipients included.
    let out = g.send("via the API", &["--bcc", "carol@example.net"]);
    assert_eq!(out.code, 0, "{out}");
    let sent = g.google.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].upload, Upload::Media);
    assert_eq!(sent[0].user, USER);
    assert_eq!(sent[0].recipients, ["bob@example.org", "carol@example.net"]);
    assert!(
        !String::from_utf8_lossy(&sent[0].raw).contains("carol@"),
        "Gmail removed the Bcc field"
    );

    // Through Gmail SMTP with the same login: no second consent.
    let out = g.send("via SMTP", &["--transport", "smtp"]);
    assert_eq!(out.code, 0, "{out}");
    let m = &g.smtp.wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(
        (m.user.as_str(), m.to.as_slice()),
        (USER, &["bob@example.org".to_owned()][..])
    );
    let st = g.google.stats();
    assert_eq!((st.oauth.code_grants, st.oauth.authorize), (1, 1), "{st:?}");

    // Google does not rotate refresh tokens: the one stored at login is still the one.
    let before = g.record()["refresh_token"].clone();
    let out = g.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.record()["refresh_token"], before);

    // Doctor knows the provider's hosts and transports.
    let out = g.env.run(&["doctor", "--json"], None);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(out.code, 0, "{out}");
    let names: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in [
        "access-token-gmail",
        "access-token-smtp",
        "network-gmail",
        "smtp-auth",
    ] {
        assert!(names.contains(&n), "{n}: {v}");
    }
}

#[test]
fn a_large_message_goes_through_a_resumable_upload() {
    let g = Google::new(0);
    assert_eq!(g.login(&[]).code, 0);
    let big = g.env.path("big.bin");
    std::fs::write(&big, vec![0x41_u8; 6 * 1024 * 1024]).unwrap();
    let out = g.send("big", &["--attach", big.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    let sent = g.google.sent();
    assert_eq!(sent[0].upload, Upload::Resumable);
    assert!(g.google.stats().resumable_puts >= 2, "chunked");
    assert!(
        sent[0].submitted.len() > 6 * 1024 * 1024,
        "the whole attachment"
    );
}

#[test]
fn throttling_and_a_rejected_token_are_retried_once() {
    let g = Google::new(0);
    assert_eq!(g.login(&[]).code, 0);
    g.google.fail_next_send(
        1,
        429,
        "rateLimitExceeded",
        "User-rate limit exceeded.",
        Some(1),
    );
    let out = g.send("after a 429", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.google.sent().len(), 1);

    // The fake's clock moves past the cached token's life: Gmail says 401, mailer renews.
    let refreshes = g.google.stats().oauth.refresh_grants;
    g.google.advance(Duration::from_secs(2 * 3600));
    let out = g.send("after a 401", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.google.stats().oauth.refresh_grants, refreshes + 1);
    assert!(
        g.google
            .stats()
            .gmail_errors
            .iter()
            .any(|e| e.starts_with("401"))
    );

    // A limit that lasts: kept in the outbox, exit 75.
    g.google
        .fail_next_send(9, 500, "backendError", "Backend Error", None);
    let out = g.send("queued", &["--queue"]);
    assert_eq!(out.code, 75, "{out}");
    assert!(out.stderr.contains("backendError"), "{out}");
}

#[test]
fn gmail_smtp_refuses_a_token_with_a_challenge_and_mailer_renews_it_once() {
    let g = Google::new(1);
    assert_eq!(g.login(&["--transport", "smtp"]).code, 0);
    let out = g.send("after a 334", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.smtp.messages().len(), 1);
    let stats = g.smtp.stats();
    assert_eq!((stats.auth_failed, stats.auth_ok), (1, 1), "{stats:?}");
}

#[test]
fn a_service_account_sends_as_the_mailbox_once_delegation_is_allowed() {
    let g = Google::new(0);
    let key = g
        .google
        .add_service_account("robot@mailer-test.iam.gserviceaccount.com");
    let file = g.env.path("key.json");
    std::fs::write(&file, &key.json).unwrap();
    let login = |extra: &[&str]| {
        let mut a = vec![
            "login",
            "--provider",
            "google",
            "--service-account",
            file.to_str().unwrap(),
            "--user",
            USER,
        ];
        let token = g.google.token_url();
        let api = g.google.api_url();
        a.extend_from_slice(&["--token-url", &token, "--api-url", &api]);
        a.extend_from_slice(&["--token-store", "file"]);
        a.extend_from_slice(extra);
        g.env.run(&a, None)
    };
    // Not yet allowed by an admin: the error names the page and the client id to allow.
    let out = login(&[]);
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("unauthorized_client"), "{out}");
    assert!(out.stderr.contains("Domain Wide Delegation"), "{out}");
    assert!(out.stderr.contains(&key.client_id), "{out}");

    g.google.allow_delegation(&key.client_id, &[GMAIL_SEND]);
    let out = login(&[]);
    assert_eq!(out.code, 0, "{out}");
    std::fs::remove_file(&file).unwrap();
    let record = std::fs::read_to_string(g.env.token_file()).unwrap();
    assert!(
        record.contains("PRIVATE KEY"),
        "the key moved to the token store"
    );
    let config = std::fs::read_to_string(g.env.config_path()).unwrap();
    assert!(!config.contains("PRIVATE KEY"), "{config}");
    assert!(config.contains("flow = \"service_account\""), "{config}");

    let out = g.send("from a daemon", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.google.sent()[0].user, USER);
    let st = g.google.stats();
    assert!(st.jwt_grants >= 1 && st.oauth.refresh_grants == 0, "{st:?}");
}

#[test]
fn a_testing_app_login_that_dies_after_a_week_is_named_with_the_fix() {
    let g = Google::new(0);
    g.google.set_testing(CLIENT, true);
    assert_eq!(g.login(&[]).code, 0);
    // A week and a day later, on both clocks: Google's, and the login's own record.
    g.google.advance(Duration::from_secs(8 * 86_400));
    let mut record = g.record();
    let week_ago = record["logged_in_at"].as_u64().unwrap() - 8 * 86_400;
    record["logged_in_at"] = week_ago.into();
    record["refresh_token_used_at"] = week_ago.into();
    record["access"] = serde_json::json!({});
    std::fs::write(g.env.token_file(), record.to_string()).unwrap();

    let out = g.send("a week later", &[]);
    assert_eq!(out.code, 77, "{out}");
    assert!(out.stderr.contains("8 days old"), "{out}");
    assert!(out.stderr.contains("Testing"), "{out}");
    assert!(out.stderr.contains("Publish app"), "{out}");
    assert!(
        out.stderr.contains("mailer login --profile") && out.stderr.contains("--provider google"),
        "{out}"
    );
    let explained = g
        .env
        .run(&["explain", "testing_refresh_token_expired"], None);
    assert_eq!(explained.code, 0, "{explained}");
}

#[test]
fn the_device_flow_is_refused_before_contact_with_the_way_that_works() {
    let g = Google::new(0);
    let mut args = g.login_args(&["--device-code"]);
    args.retain(|a| a != "--no-browser");
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = g.env.run(&refs, None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("ssh -L 8400:127.0.0.1:8400"), "{out}");
    assert!(
        out.stderr.contains("--redirect-uri http://127.0.0.1:8400/"),
        "{out}"
    );
    assert!(g.google.stats().oauth.token_requests.is_empty());
    assert_eq!(g.google.stats().oauth.authorize, 0);
}

#[test]
fn an_unverified_from_is_said_and_gmail_rewrites_it() {
    let g = Google::new(0);
    assert_eq!(g.login(&[]).code, 0);
    let out = g.send("as someone else", &["--from", "boss@example.com"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("Send mail as"), "{out}");
    assert_eq!(
        g.google.sent()[0]
            .original_from
            .as_deref()
            .map(|f| f.contains("boss@example.com")),
        Some(true)
    );
    // A verified alias: no rewrite (mailer still says what Gmail needs).
    g.google.add_send_as(USER, "team@example.com");
    let out = g.send("as the team", &["--from", "team@example.com"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(g.google.sent()[1].original_from, None);
}

#[test]
fn a_custom_provider_sends_over_oauthbearer() {
    let google = FakeGoogle::start();
    google.add_desktop_client(CLIENT, SECRET);
    google.set_user(USER);
    let smtp = FaultySmtp::start_with(
        &google.introspect_url(),
        Sasl::OAuthBearer {
            scope: MAIL_SCOPE.into(),
        },
        None,
    );
    let mut env = Env::new();
    env.set("MAILER_CLIENT_SECRET", SECRET);
    let port = smtp.port().to_string();
    let smtp_flags = smtp_flags(smtp.port());
    let (authorize, token) = (google.authorize_url(), google.token_url());
    let mut args = vec![
        "login",
        "--provider",
        "custom",
        "--client-id",
        CLIENT,
        "--authorize-url",
        &authorize,
        "--token-url",
        &token,
        "--scopes",
        "https://mail.google.com/ openid email",
        "--sasl",
        "oauthbearer",
        "--token-store",
        "file",
        "--no-browser",
        "--timeout",
        "30",
    ];
    args.extend(smtp_flags.iter().map(String::as_str));
    let out = env.run_signing_in(&args, 1);
    assert_eq!(out.code, 0, "{out}");
    let out = env.run(
        &[
            "send",
            "--to",
            "bob@example.org",
            "--subject",
            "custom",
            "--body",
            "b",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].user, USER);
    let auth = smtp.auth_attempts();
    assert_eq!(auth[0].mechanism, "OAUTHBEARER");
    assert_eq!(auth[0].port.as_deref(), Some(port.as_str()), "{auth:?}");
    // A token the server refuses (all logins revoked): renewed once, then the login is dead.
    google.revoke_all_refresh_tokens();
    google.advance(Duration::from_secs(2 * 3600));
    let out = env.run(
        &[
            "send",
            "--to",
            "bob@example.org",
            "--subject",
            "no",
            "--body",
            "b",
        ],
        None,
    );
    assert_eq!(out.code, 77, "{out}");
    assert_eq!(smtp.received().len(), 1);
    let refused = smtp.auth_attempts().into_iter().find(|a| !a.ok).unwrap();
    assert_eq!(
        refused.challenge_reply.as_deref(),
        Some("AQ=="),
        "{refused:?}"
    );
}

#[test]
fn provider_flags_that_do_not_fit_are_usage_errors() {
    let env = Env::new();
    let google = |rest: &[&'static str]| [&["login", "--provider", "google"], rest].concat();
    for (args, needle) in [
        (
            google(&["--client-id", "not-a-google-id"]),
            "apps.googleusercontent.com",
        ),
        (
            google(&["--client-id", CLIENT, "--tenant", "contoso.com"]),
            "--tenant is for Microsoft",
        ),
        (
            google(&["--client-id", CLIENT, "--transport", "graph"]),
            "gmail",
        ),
        (
            vec!["login", "--provider", "custom", "--client-id", "x"],
            "--authorize-url",
        ),
        (
            vec![
                "login",
                "--client-id",
                "00000000-0000-0000-0000-000000000000",
                "--api-url",
                "http://127.0.0.1:9",
            ],
            "--api-url is for Google",
        ),
    ] {
        let out = env.run(&args, None);
        assert_eq!(out.code, 64, "{args:?}: {out}");
        assert!(out.stderr.contains(needle), "{args:?}: {out}");
    }
}

#[test]
fn no_google_secret_reaches_output_or_the_config() {
    let g = Google::new(1);
    let out = g.login(&["-vvv"]);
    assert_eq!(out.code, 0, "{out}");
    let mut seen = out.all();
    for extra in [
        &["-vvv", "--json"][..],
        &["-vvv", "--json", "--transport", "smtp"][..],
    ] {
        let out = g.send("secrets", extra);
        assert_eq!(out.code, 0, "{out}");
        seen.push_str(&out.all());
    }
    let out = g.env.run(&["doctor", "-vvv", "--json"], None);
    seen.push_str(&out.all());
    seen.push_str(&std::fs::read_to_string(g.env.config_path()).unwrap());
    let record = g.record();
    let mut secrets = vec![SECRET.to_owned()];
    secrets.push(record["refresh_token"].as_str().unwrap().to_owned());
    for t in record["access"].as_object().unwrap().values() {
        secrets.push(t["token"].as_str().unwrap().to_owned());
    }
    assert!(secrets.len() >= 3, "{record}");
    for s in &secrets {
        assert!(!seen.contains(s.as_str()), "a secret was printed");
    }
}
