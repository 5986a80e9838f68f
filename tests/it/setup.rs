//! Setup without the portal, against the fakes: `mailer discover` for every cloud, `login
//! --user` without a tenant, `mailer app create` (delegated, consent, app-only with a
//! certificate or a secret, refusals), `mailer app instructions`, and `mailer setup` end to
//! end with Chromium signing in.

use crate::login::{CLIENT, login};
use crate::support::fake_entra::{FakeCloud, FakeEntra, TenantSpec};
use crate::support::fake_graph::FakeGraph;
use crate::support::harness::{Chromium, Env, Output, browse, smtp_flags};
use crate::support::smtp::{SmtpOptions, SmtpServer};
use serde_json::Value;

const TENANT_ID: &str = "5a1c3f9e-2b7d-4e6a-9c0f-1d2e3f4a5b6c";
const BOOTSTRAP: &str = "14d82eec-204b-4c2f-b7e8-296a70dab67e";
pub const USER: &str = "ada@contoso.example";
/// `mailer app create --app-only` for [`USER`], who grants the admin consent at once; the
/// key or secret goes to the file token store.
pub const APP_ONLY_CREATE: [&str; 8] = [
    "app",
    "create",
    "--app-only",
    "--user",
    USER,
    "--grant-consent",
    "--token-store",
    "file",
];

fn tenant(id: &str, domain: &str, cloud: FakeCloud, brand: Option<&str>) -> TenantSpec {
    TenantSpec {
        id: id.into(),
        domains: vec![domain.into()],
        cloud,
        federation_brand: brand.map(str::to_owned),
    }
}

/// A fake Entra with the contoso tenant and the bootstrap client, a Graph with the
/// directory, and an SMTP server.
pub struct Directory {
    pub env: Env,
    pub entra: FakeEntra,
    pub graph: FakeGraph,
    pub smtp: SmtpServer,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::new_with(|_| {})
    }

    /// Like [`Directory::new`], with `configure` run on the fake Entra before the rest starts.
    pub fn new_with(configure: impl FnOnce(&FakeEntra)) -> Directory {
        let entra = FakeEntra::start();
        entra.add_tenant(tenant(
            TENANT_ID,
            "contoso.example",
            FakeCloud::Global,
            None,
        ));
        entra.add_public_client(BOOTSTRAP, &["http://localhost"]);
        configure(&entra);
        let graph = FakeGraph::start_with_directory(entra.validator(), entra.hooks());
        let smtp = SmtpServer::start(SmtpOptions {
            introspect: format!("{}/_test/introspect", entra.authority()),
            ..SmtpOptions::default()
        });
        Directory {
            env: Env::new(),
            entra,
            graph,
            smtp,
        }
    }

    /// The endpoint flags every command of these tests takes.
    pub fn endpoints(&self) -> Vec<String> {
        vec![
            "--authority".into(),
            self.entra.authority(),
            "--graph-url".into(),
            self.graph.url(),
        ]
    }

    /// Runs `args` (+ endpoints, --no-browser) and plays the browser for every sign-in it
    /// prints, in order.
    fn run_signing_in(&self, args: &[&str], sign_ins: usize) -> Output {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(self.endpoints());
        all.push("--no-browser".into());
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.env.run_signing_in(&refs, sign_ins)
    }

    fn profile(&self) -> toml::Table {
        let text = std::fs::read_to_string(self.env.config_path()).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        doc["profiles"][&self.env.profile]
            .as_table()
            .unwrap()
            .clone()
    }
}

fn discover(env: &Env, authority: &str, address: &str) -> (Output, Value) {
    let out = env.run(
        &["discover", address, "--authority", authority, "--json"],
        None,
    );
    let v = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

#[test]
fn discover_finds_tenant_and_cloud_for_every_kind_of_address() {
    let entra = FakeEntra::start();
    let ids = [
        "11111111-0000-0000-0000-000000000001",
        "11111111-0000-0000-0000-000000000002",
        "11111111-0000-0000-0000-000000000003",
        "11111111-0000-0000-0000-000000000004",
        "11111111-0000-0000-0000-000000000005",
        "11111111-0000-0000-0000-000000000006",
    ];
    entra.add_tenant(tenant(ids[0], "contoso.example", FakeCloud::Global, None));
    entra.add_tenant(tenant(ids[1], "gcc.example", FakeCloud::Gcc, None));
    entra.add_tenant(tenant(ids[2], "high.example", FakeCloud::GccHigh, None));
    entra.add_tenant(tenant(ids[3], "dod.example", FakeCloud::Dod, None));
    entra.add_tenant(tenant(ids[4], "china.example", FakeCloud::China, None));
    entra.add_tenant(tenant(
        ids[5],
        "fed.example",
        FakeCloud::Global,
        Some("Fabrikam ADFS"),
    ));
    let env = Env::new();
    let a = entra.authority();
    for (address, id, cloud, graph) in [
        (
            "ops@contoso.example",
            ids[0],
            "global",
            "https://graph.microsoft.com",
        ),
        (
            "ops@gcc.example",
            ids[1],
            "global",
            "https://graph.microsoft.com",
        ),
        (
            "ops@high.example",
            ids[2],
            "usgov",
            "https://graph.microsoft.us",
        ),
        (
            "ops@dod.example",
            ids[3],
            "usgov-dod",
            "https://dod-graph.microsoft.us",
        ),
        (
            "ops@china.example",
            ids[4],
            "china",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
    ] {
        let (out, v) = discover(&env, &a, address);
        assert_eq!(out.code, 0, "{address}: {out}");
        assert_eq!(v["kind"], "work", "{v}");
        assert_eq!(
            (v["tenant_id"].as_str(), v["cloud"].as_str()),
            (Some(id), Some(cloud)),
            "{address}: {v}"
        );
        assert_eq!(v["graph_url"], graph, "{v}");
        assert_eq!(v["sign_in"], "managed", "{v}");
    }
    let (_, v) = discover(&env, &a, "ops@fed.example");
    assert_eq!(
        (v["sign_in"].as_str(), v["federation_brand"].as_str()),
        (Some("federated"), Some("Fabrikam ADFS")),
        "{v}"
    );
    let (out, v) = discover(&env, &a, "someone@outlook.com");
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        (
            v["kind"].as_str(),
            v["tenant_id"].as_str(),
            v["smtp_host"].as_str()
        ),
        (Some("personal"), None, Some("smtp-mail.outlook.com")),
        "{v}"
    );
    let (out, _) = discover(&env, &a, "ops@nowhere.example");
    assert_eq!(out.code, 68, "{out}");
    assert!(
        out.stderr
            .contains("nowhere.example has no Microsoft 365 / Entra tenant"),
        "{out}"
    );
    assert!(!out.stderr.contains("{\""), "no raw JSON: {out}");
    let human = env.run(&["discover", "ops@high.example", "--authority", &a], None);
    assert!(
        human.stdout.contains("usgov") && human.stdout.contains(ids[2]),
        "{human}"
    );
}

#[test]
fn login_with_only_the_address_finds_the_tenant() {
    let d = Directory::new();
    d.entra.add_public_client(CLIENT, &["http://localhost"]);
    let out = login(&d.env, &d.entra, &["--user", USER]);
    // login_args passes --tenant; log in again without it, as a new profile would.
    assert_eq!(out.code, 0, "{out}");
    let env = Env::new();
    let authority = d.entra.authority();
    let mut run = env.spawn(&[
        "login",
        "--client-id",
        CLIENT,
        "--user",
        USER,
        "--authority",
        &authority,
        "--no-browser",
        "--timeout",
        "30",
    ]);
    let url = run.authorize_url();
    assert!(
        url.contains(&format!("/{TENANT_ID}/oauth2/v2.0/authorize")),
        "{url}"
    );
    assert_eq!(browse(&url).status, 200);
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains(&format!("tenant {TENANT_ID}")), "{out}");
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        text.contains(&format!("tenant = \"{TENANT_ID}\"")),
        "{text}"
    );
}

#[test]
fn app_create_registers_a_public_client_then_login_needs_no_flags() {
    let d = Directory::new();
    d.entra.set_new_app_propagation(2);
    let out = d.run_signing_in(&["app", "create", "--user", USER, "--json"], 1);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (v["tenant_id"].as_str(), v["consent"].as_str()),
        (Some(TENANT_ID), Some("needed")),
        "{v}"
    );
    assert!(
        out.stderr
            .contains("Waiting for the identity provider to know the app"),
        "{out}"
    );
    let dir = d.graph.directory();
    assert_eq!(dir.apps.len(), 1);
    let app = &dir.apps[0];
    assert_eq!(v["client_id"], app.app_id.as_str());
    assert!(
        app.display_name.starts_with("mailer ("),
        "{}",
        app.display_name
    );
    assert_eq!(
        (app.sign_in_audience.as_str(), app.is_fallback_public_client),
        ("AzureADMyOrg", true)
    );
    assert_eq!(app.public_redirect_uris, ["http://localhost"]);
    let mut perms: Vec<String> = app
        .required
        .iter()
        .map(|(_, v, t)| format!("{v}:{t}"))
        .collect();
    perms.sort();
    assert_eq!(
        perms,
        [
            "Mail.Send:Scope",
            "SMTP.Send:Scope",
            "email:Scope",
            "offline_access:Scope",
            "openid:Scope",
            "profile:Scope"
        ]
    );
    assert!(app.service_principal_id.is_some());
    let p = d.profile();
    assert_eq!(p["client_id"].as_str(), Some(app.app_id.as_str()));
    assert_eq!(p["tenant"].as_str(), Some(TENANT_ID));
    for secret in d.entra.issued_secrets() {
        assert!(
            !out.all().contains(&secret),
            "the bootstrap token was printed"
        );
    }
    // The bootstrap token is never stored; the next login uses the new app, no flags needed.
    let mut run = d.env.spawn(&["login", "--no-browser", "--timeout", "30"]);
    let url = run.authorize_url();
    assert!(url.contains(&app.app_id), "{url}");
    assert_eq!(browse(&url).status, 200);
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
    let out = d.env.run(&["token", "--json"], None);
    assert_eq!(out.code, 0, "{out}");
}

#[test]
fn app_create_grants_consent_when_the_user_may_and_says_who_may_otherwise() {
    let d = Directory::new();
    let out = d.run_signing_in(
        &["app", "create", "--user", USER, "--grant-consent", "--json"],
        1,
    );
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["consent"], "needed", "a non-admin: {v}");
    assert!(
        v["admin_consent_url"].as_str().unwrap().ends_with(&format!(
            "/{TENANT_ID}/adminconsent?client_id={}",
            v["client_id"].as_str().unwrap()
        )),
        "{v}"
    );
    assert!(d.graph.directory().grants.is_empty());

    let admin = Directory::new();
    admin.graph.set_admin(true);
    let out = admin.run_signing_in(
        &["app", "create", "--user", USER, "--grant-consent", "--json"],
        1,
    );
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(v["consent"], "granted", "{v}");
    let grants = admin.graph.directory().grants;
    assert_eq!(grants.len(), 2, "Graph and Exchange: {grants:?}");
    assert!(grants.iter().all(|g| g.consent_type == "AllPrincipals"));
    assert!(
        grants
            .iter()
            .any(|g| g.scope.split(' ').any(|s| s == "SMTP.Send"))
    );
}

#[test]
fn app_create_without_the_right_to_register_names_the_role_and_the_fallback() {
    let d = Directory::new();
    d.graph.deny_app_registration(true);
    let out = d.run_signing_in(&["app", "create", "--user", USER], 1);
    assert_eq!(out.code, 69, "{out}");
    assert!(
        out.stderr.contains("Application Developer")
            && out.stderr.contains("mailer app instructions"),
        "{out}"
    );
    assert!(out.stderr.contains("Authorization_RequestDenied"), "{out}");
    // A tenant where the bootstrap client itself needs an admin's approval.
    d.entra.fail_next_authorize("consent_required", 65001, "The user or administrator has not consented to use the application with ID '14d82eec-204b-4c2f-b7e8-296a70dab67e' named 'Microsoft Graph Command Line Tools'.");
    let mut args = vec!["app", "create", "--user", USER, "--no-browser"];
    let endpoints = d.endpoints();
    args.extend(endpoints.iter().map(String::as_str));
    let mut run = d.env.spawn(&args);
    assert_eq!(
        browse(&run.authorize_url()).status,
        400,
        "the loopback page shows the refusal"
    );
    let out = run.finish();
    assert_eq!(out.code, 77, "{out}");
    assert!(
        out.stderr
            .contains(&format!("mailer app instructions --user {USER}")),
        "{out}"
    );
    let before = d.entra.stats().discovery_requests.len();
    let out = d
        .env
        .run(&["app", "instructions", "--tenant", TENANT_ID], None);
    assert_eq!(out.code, 0, "{out}");
    for needle in [
        "http://localhost",
        "Mail.Send, offline_access, openid, profile, email",
        "SMTP.Send",
        &format!("{TENANT_ID}/adminconsent"),
    ] {
        assert!(out.stdout.contains(needle), "{needle}: {out}");
    }
    assert_eq!(
        d.entra.stats().discovery_requests.len(),
        before,
        "--tenant needs no network"
    );
}

/// An admin's [`APP_ONLY_CREATE`] with `extra`, which must succeed.
fn create_app_only(extra: &[&str]) -> (Directory, Output) {
    let d = Directory::new();
    d.graph.set_admin(true);
    let out = d.run_signing_in(&[&APP_ONLY_CREATE[..], extra].concat(), 1);
    assert_eq!(out.code, 0, "{out}");
    (d, out)
}

#[test]
fn app_only_with_a_certificate_sends_as_the_mailbox() {
    let (d, out) = create_app_only(&["--cert-days", "200"]);
    assert!(
        out.stdout.contains("New-ApplicationAccessPolicy -AppId"),
        "{out}"
    );
    let dir = d.graph.directory();
    let app = &dir.apps[0];
    assert_eq!(app.key_credentials.len(), 1);
    assert!(app.public_redirect_uris.is_empty());
    assert_eq!(dir.role_assignments.len(), 1);
    assert_eq!(dir.role_assignments[0].value, "Mail.Send");
    let p = d.profile();
    assert_eq!(p["flow"].as_str(), Some("client_credentials"));
    assert!(p.get("certificate").is_some(), "{p:?}");
    let record = std::fs::read_to_string(d.env.token_file()).unwrap();
    assert!(
        record.contains("PRIVATE KEY"),
        "the key is in the token store"
    );
    assert!(
        !std::fs::read_to_string(d.env.config_path())
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let out = d.env.run(&["login"], None);
    assert_eq!(out.code, 0, "app-only login with no flags: {out}");
    let out = d.env.send_simple("ann@example.com", "from a daemon", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(d.graph.delivered()[0].mailbox, USER);
    let doctor = d.env.run(&["doctor", "--no-network", "--json"], None);
    assert!(
        doctor.stdout.contains("the certificate is valid until"),
        "{doctor}"
    );
}

#[test]
fn app_only_with_a_secret_records_its_expiry() {
    let (d, out) = create_app_only(&["--secret", "--json"]);
    let v: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert!(v["credential_expires"].as_str().is_some(), "{v}");
    assert_eq!(d.graph.directory().apps[0].passwords.len(), 1);
    let out = d.env.run(&["login"], None);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(d.env.send_simple("ann@example.com", "s", &[]).code, 0);
}

#[test]
fn setup_asks_nothing_it_was_told_and_names_the_flag_it_lacks() {
    let d = Directory::new();
    let out = d.env.run(&["setup"], None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("--user"), "{out}");
    let a = d.entra.authority();
    let out = d
        .env
        .run(&["setup", "--user", USER, "--authority", &a], None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("--create-app"), "{out}");
    let out = d.env.run(&["setup", "--user", "me@outlook.com"], None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("--client-id"), "{out}");
}

/// From an empty config to a message in the SMTP sink and one accepted by Graph, with
/// Chromium doing both sign-ins (the bootstrap one and the new app's).
#[test]
fn setup_end_to_end_with_chromium() {
    let mut d = Directory::new();
    let chromium = Chromium::attach(&mut d.env);
    let smtp_flags = smtp_flags(d.smtp.port());
    let authority = d.entra.authority();
    let graph = d.graph.url();
    let mut args = vec![
        "setup",
        "--user",
        USER,
        "--create-app",
        "--yes",
        "--transport",
        "smtp",
        "--token-store",
        "file",
        "--authority",
        &authority,
        "--graph-url",
        &graph,
        "--timeout",
        "60",
    ];
    args.extend(smtp_flags.iter().map(String::as_str));
    let out = d.env.run(&args, None);
    assert_eq!(out.code, 0, "{out}\nchromium: {}", chromium.log());
    eprintln!(
        "--- mailer {}\n{}{}",
        args.join(" "),
        out.stderr,
        out.stdout
    );
    assert_eq!(d.graph.directory().apps.len(), 1);
    let smtp = d.smtp.messages();
    assert_eq!(smtp.len(), 1, "{out}");
    assert_eq!(smtp[0].to, [USER]);
    assert_eq!(d.graph.delivered().len(), 1, "{out}");
    assert!(
        out.stdout.contains("queue run") && out.stdout.contains("Ready"),
        "{out}"
    );
    assert_eq!(d.env.run(&["status"], None).code, 0);
}

/// `setup --client-id` for a GCC High address: the profile signs in at that cloud and asks
/// for its Graph, not the global one (discovery's cloud goes with its tenant).
#[test]
fn setup_with_a_client_id_keeps_the_cloud_discovery_found() {
    let d = Directory::new();
    const HIGH: &str = "22222222-0000-4000-8000-000000000002";
    d.entra
        .add_tenant(tenant(HIGH, "high.example", FakeCloud::GccHigh, None));
    d.entra.add_public_client(CLIENT, &["http://localhost"]);
    let mut args: Vec<String> = [
        "setup",
        "--user",
        "ada@high.example",
        "--client-id",
        CLIENT,
        "--no-test-send",
        "--token-store",
        "file",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(d.endpoints());
    args.push("--no-browser".into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = d.env.spawn(&refs);
    let url = run.authorize_url();
    assert!(
        url.contains(&format!("/{HIGH}/oauth2/v2.0/authorize")),
        "{url}"
    );
    assert!(
        url.contains("graph.microsoft.us%2FMail.Send"),
        "the US Gov Graph's scope: {url}"
    );
    assert_eq!(browse(&url).status, 200);
    let out = run.finish();
    assert_eq!(out.code, 0, "{out}");
    let p = d.profile();
    assert_eq!(
        (p["tenant"].as_str(), p["cloud"].as_str()),
        (Some(HIGH), Some("usgov")),
        "{p:?}"
    );
    assert!(out.stdout.contains("Ready"), "{out}");
}

/// `--name` and `--large-attachments` reach the registration, and a service principal that
/// Graph cannot create yet (the new application is still replicating) is asked for again.
#[test]
fn app_create_names_the_app_asks_for_large_attachments_and_waits_for_replication() {
    let d = Directory::new();
    d.graph.set_sp_propagation(2);
    let out = d.run_signing_in(
        &[
            "app",
            "create",
            "--user",
            USER,
            "--name",
            "nightly reports",
            "--large-attachments",
            "--json",
        ],
        1,
    );
    assert_eq!(out.code, 0, "{out}");
    let dir = d.graph.directory();
    let app = &dir.apps[0];
    assert_eq!(app.display_name, "nightly reports");
    assert!(
        app.required
            .iter()
            .any(|(_, v, t)| v == "Mail.ReadWrite" && t == "Scope"),
        "{:?}",
        app.required
    );
    assert!(app.service_principal_id.is_some(), "created after the wait");
    assert_eq!(d.profile()["large_attachments"].as_bool(), Some(true));
}
