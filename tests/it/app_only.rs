//! App-only login (client credentials with a secret or a certificate) and sending as a
//! mailbox without any person in the loop.

use crate::support::fake_entra::FakeEntra;
use crate::support::fake_graph::FakeGraph;
use crate::support::harness::Env;
use crate::support::openssl::{openssl, self_signed_certificate};
use crate::support::smtp::{SmtpOptions, SmtpServer};
use std::time::Duration;

const APP: &str = "99999999-aaaa-bbbb-cccc-dddddddddddd";
const SECRET: &str = "app-secret-value-with-some-length";
const MAILBOX: &str = "reports@contoso.example";

struct AppStand {
    env: Env,
    entra: FakeEntra,
    graph: FakeGraph,
    smtp: Option<SmtpServer>,
}

impl AppStand {
    fn new(smtp: bool) -> AppStand {
        let entra = FakeEntra::start();
        entra.add_app_client_secret(APP, SECRET);
        let graph = FakeGraph::start(entra.validator());
        let smtp = smtp.then(|| {
            SmtpServer::start(SmtpOptions {
                introspect: format!("{}/_test/introspect", entra.authority()),
                ..Default::default()
            })
        });
        AppStand {
            env: Env::new(),
            entra,
            graph,
            smtp,
        }
    }

    fn login_args(&self, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "login",
            "--app-only",
            "--non-interactive",
            "--tenant",
            "contoso.example",
            "--client-id",
            APP,
            "--user",
            MAILBOX,
            "--authority",
            &self.entra.authority(),
            "--graph-url",
            &self.graph.url(),
            "--token-store",
            "file",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(s) = &self.smtp {
            a.extend([
                "--smtp-host".into(),
                "127.0.0.1".into(),
                "--smtp-port".into(),
                s.port().to_string(),
            ]);
            a.extend([
                "--ca-file".into(),
                SmtpServer::ca_file().display().to_string(),
            ]);
        }
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    fn run(&self, args: &[String], stdin: Option<&str>) -> crate::support::harness::Output {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.run(&a, stdin)
    }
}

#[test]
fn app_only_with_a_secret_sends_as_the_mailbox_unattended() {
    let s = AppStand::new(false);
    let out = s.run(&s.login_args(&["--client-secret-stdin"]), Some(SECRET));
    assert_eq!(out.code, 0, "{out}");
    assert!(!s.env.browser_was_opened());
    assert_eq!(
        s.entra.stats().oauth.authorize,
        0,
        "app-only must not sign anybody in"
    );
    let config = std::fs::read_to_string(s.env.config_path()).unwrap();
    assert!(config.contains("flow = \"client_credentials\""), "{config}");
    assert!(!config.contains(SECRET));

    for i in 0..2 {
        let out = s
            .env
            .send_simple("ann@example.com", &format!("report {i}"), &[]);
        assert_eq!(out.code, 0, "{out}");
    }
    let d = s.graph.delivered();
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.mailbox == MAILBOX), "{d:?}");
    // One token minted at login and reused: no refresh token exists to spend.
    assert_eq!(s.entra.stats().client_credentials_grants, 1);
    let status = s.env.run(&["status", "--json"], None);
    assert_eq!(status.code, 0, "{status}");
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(v["flow"], "client_credentials");
    assert_eq!(v["ready"], true);
    // --refresh (or an expired token) mints a new one from the stored secret.
    let out = s.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.entra.stats().client_credentials_grants, 2);
    let info = s.entra.access_token_info(out.stdout.trim()).unwrap();
    assert!(info.app);
}

#[test]
fn app_only_needs_a_tenant_and_a_credential() {
    let s = AppStand::new(false);
    let mut args = s.login_args(&["--client-secret-stdin"]);
    let t = args.iter().position(|a| a == "contoso.example").unwrap();
    args[t] = "common".into();
    let out = s.run(&args, Some(SECRET));
    assert_eq!(out.code, 64, "{out}");
    assert!(
        out.stderr.contains("--tenant") && out.stderr.contains("AADSTS9001023"),
        "{out}"
    );
    let out = s.run(&s.login_args(&[]), None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("--certificate"), "{out}");
    let out = s.run(
        &s.login_args(&["--client-secret-stdin"]),
        Some("wrong-secret-value-of-some-length"),
    );
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("AADSTS7000215"), "{out}");
    assert!(!s.env.config_path().exists());
}

/// A fresh RSA key and self-signed certificate; registers the app on the fake. Returns the
/// paths of the certificate and the key.
fn certificate(s: &AppStand, client: &str) -> (String, String) {
    let c = self_signed_certificate(&s.env.path(""));
    s.entra
        .add_app_client_certificate(client, &c.cert_der, &c.public_key_der);
    (
        c.cert_pem.display().to_string(),
        c.key_pem.display().to_string(),
    )
}

#[test]
fn app_only_with_a_certificate_signs_its_assertion() {
    let s = AppStand::new(true);
    let (cert, key) = certificate(&s, "7e57c0de-0000-4000-8000-0000000ce271");
    let mut args = s.login_args(&[
        "--certificate",
        &cert,
        "--private-key",
        &key,
        "--transport",
        "smtp",
    ]);
    let c = args.iter().position(|a| a == APP).unwrap();
    args[c] = "7e57c0de-0000-4000-8000-0000000ce271".into();
    let out = s.run(&args, None);
    assert_eq!(out.code, 0, "{out}");
    let config = std::fs::read_to_string(s.env.config_path()).unwrap();
    assert!(config.contains("private_key = "), "{config}");
    // SMTP with an app token (outlook.office365.com/.default) as the mailbox.
    let out = s.env.send_simple("ann@example.com", "cert smtp", &[]);
    assert_eq!(out.code, 0, "{out}");
    let m = &s
        .smtp
        .as_ref()
        .unwrap()
        .wait_messages(1, Duration::from_secs(10))[0];
    assert_eq!(m.user, MAILBOX);
    // Graph with a token for the Graph resource, minted on demand.
    let out = s
        .env
        .send_simple("ann@example.com", "cert graph", &["--transport", "graph"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(s.graph.delivered()[0].mailbox, MAILBOX);
    assert_eq!(s.entra.stats().client_credentials_grants, 2);

    // A key that does not match the registered certificate is refused, explained.
    let other = s.env.path("other");
    std::fs::create_dir_all(&other).unwrap();
    openssl(
        &other,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    let config = std::fs::read_to_string(s.env.config_path())
        .unwrap()
        .replace(&key, &other.join("key.pem").display().to_string());
    std::fs::write(s.env.config_path(), config).unwrap();
    let out = s.env.run(&["token", "--refresh"], None);
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("AADSTS700027"), "{out}");
}
