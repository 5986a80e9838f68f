//! When it stops working: `mailer doctor` against the fakes (every check's ok and fail
//! path), `mailer explain`, the notify command, transport fallback, and proxies.

use crate::send::Stand;
use crate::support::harness::{Env, Output};
use crate::support::openssl::server_pki;
use crate::support::proxy::Proxy;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::tls::TlsFront;
use serde_json::Value;

const ORDER: [&str; 13] = [
    "config",
    "token-store",
    "token-store-cron",
    "refresh-token",
    "access-token-graph",
    "access-token-smtp",
    "clock",
    "network-authority",
    "network-graph",
    "network-smtp",
    "smtp-auth",
    "outbox",
    "credential-expiry",
];

pub fn doctor(env: &Env, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["doctor", "--json"];
    args.extend_from_slice(extra);
    let out = env.run(&args, None);
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    (out, v)
}

pub fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v}"))
}

fn names(v: &Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Sets `key = value` in the test profile of the config file.
pub fn set_profile(env: &Env, key: &str, value: toml::Value) {
    let path = env.config_path();
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["profiles"][&env.profile]
        .as_table_mut()
        .unwrap()
        .insert(key.to_owned(), value);
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
}

pub fn file_stand(smtp: SmtpOptions, extra: &[&str]) -> Stand {
    let mut args = vec!["--token-store", "file"];
    args.extend_from_slice(extra);
    Stand::new(Some(smtp), &args)
}

#[test]
fn doctor_passes_every_check_in_order_and_prints_no_token() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(names(&v), ORDER, "{v}");
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
    }
    assert_eq!(v["ok"], true);
    assert!(
        check(&v, "smtp-auth")["detail"]
            .as_str()
            .unwrap()
            .contains("accepted AUTH XOAUTH2")
    );
    let human = s.env.run(&["doctor"], None);
    assert_eq!(human.code, 0, "{human}");
    assert!(human.stdout.contains("all checks passed"), "{human}");
    for secret in s.entra.issued_secrets() {
        assert!(
            !out.all().contains(&secret) && !human.all().contains(&secret),
            "a token was printed"
        );
    }
    // Nothing was sent: the SMTP probe stops after AUTH.
    assert!(s.smtp().messages().is_empty());
}

#[test]
fn doctor_warns_that_cron_cannot_reach_a_session_keyring() {
    let s = Stand::new(Some(SmtpOptions::default()), &[]);
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 0, "warnings do not fail: {out}");
    let c = check(&v, "token-store-cron");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("--token-store file"),
        "{c}"
    );
}

#[test]
fn doctor_without_network_runs_only_local_checks() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let before = s.entra.stats();
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 0, "{out}");
    let names = names(&v);
    for n in [
        "clock",
        "network-authority",
        "network-graph",
        "network-smtp",
        "smtp-auth",
    ] {
        assert!(
            !names.iter().any(|x| x == n),
            "{n} ran without network: {v}"
        );
    }
    assert!(
        names.iter().any(|x| x == "access-token-graph"),
        "the cached token is decoded: {v}"
    );
    assert_eq!(
        s.entra.stats().oauth.token_requests.len(),
        before.oauth.token_requests.len(),
        "no token request"
    );
    assert_eq!(s.smtp().stats().connections, 0);
}

#[test]
fn doctor_tells_5_7_139_from_5_7_3() {
    let disabled = file_stand(
        SmtpOptions {
            disabled: true,
            ..SmtpOptions::default()
        },
        &["--transport", "smtp"],
    );
    let (out, v) = doctor(&disabled.env, &[]);
    assert_eq!(out.code, 69, "{out}");
    let c = check(&v, "smtp-auth");
    assert_eq!(c["status"], "fail");
    assert!(c["detail"].as_str().unwrap().contains("5.7.139"), "{c}");
    assert!(c["fix"].as_str().unwrap().contains("Set-CASMailbox"), "{c}");

    let rejected = file_stand(
        SmtpOptions {
            reject: Some(("535", 10)),
            ..SmtpOptions::default()
        },
        &["--transport", "smtp"],
    );
    let (out, v) = doctor(&rejected.env, &[]);
    assert_eq!(out.code, 77, "{out}");
    let c = check(&v, "smtp-auth");
    assert!(c["detail"].as_str().unwrap().contains("5.7.3"), "{c}");

    // Graph is this profile's transport: SMTP's refusal is only a warning.
    let graph_first = file_stand(
        SmtpOptions {
            disabled: true,
            ..SmtpOptions::default()
        },
        &[],
    );
    let (out, v) = doctor(&graph_first.env, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(check(&v, "smtp-auth")["status"], "warn");
}

#[test]
fn doctor_decodes_a_token_for_the_wrong_audience() {
    let s = Stand::new_with(
        Some(SmtpOptions::default()),
        &["--token-store", "file", "--transport", "smtp"],
        |e| e.set_jwt_audience(Some("https://graph.microsoft.com")),
    );
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    let c = check(&v, "access-token-smtp");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("needs https://outlook.office.com"),
        "{c}"
    );
}

#[test]
fn doctor_explains_an_expired_client_secret_and_warns_before() {
    // Tokens issued already stale, so the doctor's check must renew them.
    let s = Stand::new_with(
        Some(SmtpOptions::default()),
        &["--token-store", "file"],
        |e| e.set_access_token_lifetime(120),
    );
    s.entra.fail_next_token_request(
        401,
        "invalid_client",
        7000222,
        "The provided client secret keys for app are expired.",
    );
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 77, "{out}");
    let c = check(&v, "access-token-graph");
    assert!(
        c["detail"].as_str().unwrap().contains("AADSTS7000222"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("Certificates & secrets"),
        "{c}"
    );

    let soon =
        crate::support::server::Utc::at(crate::support::server::now_secs() + 10 * 86_400).rfc3339();
    set_profile(&s.env, "credential_expires", toml::Value::String(soon));
    let (_, v) = doctor(&s.env, &["--no-network"]);
    let c = check(&v, "credential-expiry");
    assert_eq!(c["status"], "warn", "{c}");
    set_profile(
        &s.env,
        "credential_expires",
        toml::Value::String("2020-01-01T00:00:00Z".into()),
    );
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(check(&v, "credential-expiry")["status"], "fail");
    assert_eq!(out.code, 77, "{out}");
}

#[test]
fn doctor_warns_of_a_skewed_clock() {
    let s = file_stand(SmtpOptions::default(), &[]);
    s.entra.set_date_skew(-600);
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 0, "{out}");
    let c = check(&v, "clock");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(c["detail"].as_str().unwrap().contains("ahead of"), "{c}");
}

#[test]
fn doctor_names_the_ca_file_when_the_chain_is_unknown() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let pki_dir = s.env.path("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let pki = server_pki(&pki_dir);
    let front = TlsFront::start(&s.entra.authority(), &pki.cert, &pki.key);
    set_profile(&s.env, "authority", toml::Value::String(front.url()));
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 69, "{out}");
    let c = check(&v, "network-authority");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("does not trust"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("--ca-file"), "{c}");
}

#[test]
fn doctor_reports_the_outbox_and_sends_a_test_message() {
    let s = file_stand(SmtpOptions::default(), &[]);
    s.queue_for_later();
    let (out, v) = doctor(&s.env, &["--send-test"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        check(&v, "outbox")["detail"]
            .as_str()
            .unwrap()
            .starts_with("1 queued"),
        "{v}"
    );
    assert_eq!(check(&v, "send-test-graph")["status"], "ok", "{v}");
    assert_eq!(check(&v, "send-test-smtp")["status"], "ok", "{v}");
    assert_eq!(s.graph.delivered().len(), 1);
    let smtp = s.smtp().messages();
    assert_eq!(smtp.len(), 1);
    assert_eq!(smtp[0].to, ["ada@contoso.example"]);
}

#[test]
fn doctor_with_a_broken_config_fails_the_config_check() {
    let env = Env::new();
    std::fs::create_dir_all(env.config_path().parent().unwrap()).unwrap();
    std::fs::write(env.config_path(), "colour = 1\n").unwrap();
    let (out, v) = doctor(&env, &[]);
    assert_eq!(out.code, 78, "{out}");
    assert_eq!(v["checks"][0]["name"], "config");
    assert!(
        v["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("invalid config"),
        "{v}"
    );
}

#[test]
fn explain_prints_the_entry_with_the_profile_filled_in() {
    let s = file_stand(SmtpOptions::default(), &[]);
    for (code, canonical, source) in [
        ("AADSTS70043", "AADSTS70043", "entra"),
        ("70043", "AADSTS70043", "entra"),
        ("535 5.7.139", "5.7.139", "smtp"),
        ("5.7.139", "5.7.139", "smtp"),
        ("ErrorSendAsDenied", "ErrorSendAsDenied", "graph"),
        ("invalid_grant", "invalid_grant", "entra"),
    ] {
        let out = s.env.run(&["explain", code, "--json"], None);
        assert_eq!(out.code, 0, "{code}: {out}");
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(
            (v["code"].as_str().unwrap(), v["source"].as_str().unwrap()),
            (canonical, source),
            "{v}"
        );
        for field in ["meaning", "cause", "fix"] {
            assert!(!v[field].as_str().unwrap().is_empty(), "{code}: no {field}");
            assert!(
                !v[field].as_str().unwrap().contains('{'),
                "{code}: placeholder left in {field}"
            );
        }
    }
    let out = s.env.run(&["explain", "5.7.139"], None);
    assert!(
        out.stdout
            .contains("Set-CASMailbox -Identity ada@contoso.example"),
        "{out}"
    );
    let out = s.env.run(&["explain", "AADSTS70043"], None);
    assert!(
        out.stdout.contains(&format!("--profile {}", s.env.profile)),
        "the fix is this profile's login: {out}"
    );
    let out = s.env.run(&["explain", "AADSTS1234567"], None);
    assert_eq!(out.code, 65, "{out}");
    assert!(
        out.stderr
            .contains("login.microsoftonline.com/error?code=1234567"),
        "{out}"
    );
}

#[test]
fn notify_command_runs_once_a_day_per_event() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let log = s.env.path("notified.log");
    set_profile(
        &s.env,
        "notify_command",
        toml::Value::String(format!(
            "echo \"$MAILER_EVENT $MAILER_PROFILE\" >> {}",
            log.display()
        )),
    );
    s.entra.revoke_all_refresh_tokens();
    s.entra.set_access_token_lifetime(120);
    // Stale tokens: every run must refresh, and every refresh is refused.
    let out = s.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 77, "{out}");
    let out = s.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 77, "{out}");
    let lines = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        lines,
        format!("login-needed {}\n", s.env.profile),
        "once, not twice"
    );
}

/// A `send --json` that must succeed through `via` after `from` refused; its JSON.
fn sent_via(s: &Stand, extra: &[&str], via: &str, from: &str) -> Value {
    let mut args = vec!["send", "--json", "--to", "ann@example.com"];
    args.extend_from_slice(&["--subject", "fb", "--body", "b"]);
    args.extend_from_slice(extra);
    let out = s.env.run(&args, None);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        (v["transport"].as_str(), v["fallback_from"].as_str()),
        (Some(via), Some(from)),
        "{v}"
    );
    v
}

#[test]
fn fallback_from_smtp_to_graph_when_smtp_auth_is_disabled() {
    let s = file_stand(
        SmtpOptions {
            disabled: true,
            ..SmtpOptions::default()
        },
        &["--transport", "smtp"],
    );
    let v = sent_via(&s, &["--fallback", "graph"], "graph", "smtp");
    assert!(
        v["fallback_reason"].as_str().unwrap().contains("5.7.139"),
        "{v}"
    );
    assert_eq!(s.graph.delivered().len(), 1);
    // Without a fallback it fails as before.
    let out = s.env.send_simple("ann@example.com", "no fb", &[]);
    assert_eq!(out.code, 69, "{out}");
}

#[test]
fn fallback_from_graph_to_smtp_for_a_mailbox_without_rest() {
    let s = file_stand(SmtpOptions::default(), &[]);
    set_profile(&s.env, "fallback", toml::Value::String("smtp".into()));
    s.graph.fail_next(
        1,
        404,
        None,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    );
    sent_via(&s, &[], "smtp", "graph");
    assert_eq!(s.smtp().messages().len(), 1);
    // A denied send-as fails everywhere: no second transport is tried.
    s.graph.fail_next(1, 403, None, "ErrorSendAsDenied", "The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.");
    let out = s.env.send_simple("ann@example.com", "denied", &[]);
    assert_eq!(out.code, 69, "{out}");
    assert_eq!(s.smtp().messages().len(), 1, "no fallback for send-as");
}

#[test]
fn fallback_to_smtp_for_a_large_message_without_mail_readwrite() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let big = s.env.path("big.bin");
    // Over Graph's 4 MB request once base64 is added; the profile has no Mail.ReadWrite.
    std::fs::write(&big, vec![0x5a_u8; 3_500_000]).unwrap();
    let v = sent_via(
        &s,
        &["--attach", big.to_str().unwrap(), "--fallback", "smtp"],
        "smtp",
        "graph",
    );
    assert!(
        v["fallback_reason"]
            .as_str()
            .unwrap()
            .contains("Mail.ReadWrite"),
        "{v}"
    );
    assert_eq!(s.smtp().messages().len(), 1);
    assert_eq!(s.graph.delivered().len(), 0);
}

#[test]
fn no_fallback_when_smtp_denies_send_as() {
    let s = file_stand(
        SmtpOptions {
            send_as_denied: true,
            ..SmtpOptions::default()
        },
        &["--transport", "smtp"],
    );
    let out = s.env.send_simple(
        "ann@example.com",
        "as support",
        &["--from", "support@contoso.example", "--fallback", "graph"],
    );
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("5.7.60"), "{out}");
    assert_eq!(
        s.graph.delivered().len(),
        0,
        "a denied send-as fails everywhere"
    );
    assert_eq!(s.smtp().messages().len(), 0);
}

#[test]
fn refresh_and_graph_send_go_through_a_connect_proxy() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let ca = SmtpServer::ca_file();
    let certs = ca.parent().unwrap();
    let entra_tls = TlsFront::start(
        &s.entra.authority(),
        &certs.join("server.pem"),
        &certs.join("server-key.pem"),
    );
    let graph_tls = TlsFront::start(
        &s.graph.url(),
        &certs.join("server.pem"),
        &certs.join("server-key.pem"),
    );
    set_profile(&s.env, "authority", toml::Value::String(entra_tls.url()));
    set_profile(&s.env, "graph_url", toml::Value::String(graph_tls.url()));
    let proxy = Proxy::start();
    let with_proxy = |args: &[&str], no_proxy: Option<&str>| {
        let mut c = s.env.command(args);
        c.env("HTTPS_PROXY", proxy.url());
        if let Some(n) = no_proxy {
            c.env("NO_PROXY", n);
        }
        s.env.run_cmd(c, None)
    };
    let out = with_proxy(&["token", "--refresh"], None);
    assert_eq!(out.code, 0, "{out}");
    let out = with_proxy(
        &[
            "send",
            "--to",
            "ann@example.com",
            "--subject",
            "proxied",
            "--body",
            "b",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out}");
    let tunnels = proxy.tunnels();
    assert!(
        tunnels.contains(&format!("127.0.0.1:{}", entra_tls.port())),
        "{tunnels:?}"
    );
    assert!(
        tunnels.contains(&format!("127.0.0.1:{}", graph_tls.port())),
        "{tunnels:?}"
    );
    assert_eq!(s.graph.delivered().len(), 1);

    let (out, v) = {
        let mut c = s.env.command(&["doctor", "--json"]);
        c.env("HTTPS_PROXY", proxy.url());
        let out = s.env.run_cmd(c, None);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        (out, v)
    };
    assert_eq!(out.code, 0, "{out}");
    assert!(
        check(&v, "network-graph")["detail"]
            .as_str()
            .unwrap()
            .contains("via proxy http://127.0.0.1"),
        "{v}"
    );

    let before = proxy.tunnels().len();
    let out = with_proxy(&["token", "--refresh"], Some("127.0.0.1"));
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(proxy.tunnels().len(), before, "NO_PROXY is honoured");

    // The lower-case names, as curl and most Unix tools spell them, work the same.
    let mut c = s.env.command(&["token", "--refresh"]);
    c.env("https_proxy", proxy.url());
    let out = s.env.run_cmd(c, None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(proxy.tunnels().len(), before + 1, "https_proxy is honoured");
    let mut c = s.env.command(&["token", "--refresh"]);
    c.env("https_proxy", proxy.url())
        .env("no_proxy", "127.0.0.1");
    let out = s.env.run_cmd(c, None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(proxy.tunnels().len(), before + 1, "no_proxy is honoured");
}

/// The full `mailer explain` text of every entry, against tests/golden/explain.txt (run with
/// MAILER_UPDATE_GOLDEN=1 to rewrite it after a deliberate change, and read the diff).
#[test]
fn explain_golden_output_of_every_entry() {
    let env = Env::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut text = String::new();
    for e in mailer::explain::entries() {
        let code = e.codes[0];
        if !seen.insert(code.to_ascii_lowercase()) {
            continue;
        }
        let out = env.run(&["explain", code, "--profile", "golden"], None);
        assert_eq!(out.code, 0, "{code}: {out}");
        assert!(
            out.stdout.contains("meaning") && out.stdout.contains("fix"),
            "{code}: {out}"
        );
        text.push_str(&format!("$ mailer explain {code}\n{}\n", out.stdout));
    }
    assert!(seen.len() >= 40, "{} codes", seen.len());
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/explain.txt");
    if std::env::var_os("MAILER_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/explain.txt (MAILER_UPDATE_GOLDEN=1 writes it)");
    assert!(
        expected == text,
        "explain output changed; rerun with MAILER_UPDATE_GOLDEN=1 and review the diff of tests/golden/explain.txt"
    );
}

/// A port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn doctor_fail_paths_of_the_remaining_checks() {
    let s = file_stand(SmtpOptions::default(), &[]);
    // A permanent failure in the outbox: queued, then refused by `queue run`.
    s.queue_one_that_will_fail();
    let run = s.env.run(&["queue", "run", "--json"], None);
    assert!(run.stdout.contains("\"failed\":1"), "{run}");
    let (_, v) = doctor(&s.env, &["--no-network"]);
    let c = check(&v, "outbox");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("queue purge --failed"),
        "{c}"
    );

    // Hosts that do not answer.
    set_profile(
        &s.env,
        "graph_url",
        toml::Value::String(format!("http://127.0.0.1:{}", closed_port())),
    );
    set_profile(
        &s.env,
        "smtp_port",
        toml::Value::Integer(closed_port().into()),
    );
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        check(&v, "network-graph")["detail"]
            .as_str()
            .unwrap()
            .contains("refused"),
        "{v}"
    );
    assert_eq!(
        check(&v, "network-smtp")["status"],
        "warn",
        "SMTP is not this profile's transport: {v}"
    );

    // A refresh token idle for 91 days.
    let path = s.env.token_file();
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["refresh_token_used_at"] = (crate::support::server::now_secs() - 91 * 86_400).into();
    std::fs::write(&path, record.to_string()).unwrap();
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        check(&v, "refresh-token")["detail"]
            .as_str()
            .unwrap()
            .contains("91 days"),
        "{v}"
    );

    // Nothing stored at all.
    assert_eq!(s.env.run(&["logout"], None).code, 0);
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    assert_eq!(check(&v, "token-store")["status"], "fail", "{v}");
}
