//! Doctor's token and transport checks beyond the happy path: a token without the
//! permission, for another user or tenant, over 4 KB; an SMTP server whose certificate is
//! not trusted; several profiles at once. And errors with codes the explain table does not
//! know, and a bad recipient that must not fall back.

use crate::diagnosis::{check, doctor, file_stand, set_profile};
use crate::send::Stand;
use crate::support::fake_entra::{FakeCloud, HOME_TID, TenantSpec};
use crate::support::openssl::server_pki;
use crate::support::smtp::SmtpOptions;
use serde_json::Value;

const OTHER_TID: &str = "0b5e7a1c-3d2f-4e6a-8b9c-1d2e3f4a5b6c";

fn detail(v: &Value, name: &str) -> String {
    check(v, name)["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn doctor_fails_a_token_without_the_send_permission() {
    let s = file_stand(
        SmtpOptions::default(),
        &["--scopes", "https://graph.microsoft.com/User.Read"],
    );
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    let c = check(&v, "access-token-graph");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        detail(&v, "access-token-graph").contains("does not carry the Mail.Send permission"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("mailer login"), "{c}");
}

#[test]
fn doctor_fails_a_token_for_another_user_or_tenant() {
    let s = file_stand(SmtpOptions::default(), &[]);
    set_profile(
        &s.env,
        "user",
        toml::Value::String("bob@contoso.example".into()),
    );
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        detail(&v, "access-token-graph")
            .contains("is for ada@contoso.example, but the profile sends as bob@contoso.example"),
        "{v}"
    );
    set_profile(
        &s.env,
        "user",
        toml::Value::String("ada@contoso.example".into()),
    );

    // A profile naming its tenant by GUID: checked from the token alone.
    set_profile(&s.env, "tenant", toml::Value::String(OTHER_TID.into()));
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        detail(&v, "access-token-graph").contains(&format!(
            "issued by tenant {HOME_TID}, not the profile's {OTHER_TID}"
        )),
        "{v}"
    );

    // By domain: the authority's discovery document says which tenant that is.
    set_profile(
        &s.env,
        "tenant",
        toml::Value::String("contoso.example".into()),
    );
    let tenant = |id: &str| TenantSpec {
        id: id.into(),
        domains: vec!["contoso.example".into()],
        cloud: FakeCloud::Global,
        federation_brand: None,
    };
    s.entra.add_tenant(tenant(HOME_TID));
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 0, "the same tenant: {out}");
    assert_eq!(check(&v, "access-token-graph")["status"], "ok", "{v}");
    // The domain now belongs to another tenant (the fake lets the last one added win).
    // Doctor asks for a newly issued token, and Entra refuses the refresh token, which was
    // issued in the old tenant: the check fails with Entra's own words, a login needed.
    s.entra.add_tenant(tenant(OTHER_TID));
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        detail(&v, "access-token-graph").contains("AADSTS700005"),
        "{v}"
    );
}

#[test]
fn doctor_notes_a_token_over_4_kb_for_smtp() {
    let s = Stand::new_with(
        Some(SmtpOptions::default()),
        &["--token-store", "file"],
        |e| e.set_access_token_size(5000),
    );
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 0, "{out}");
    let smtp = detail(&v, "access-token-smtp");
    assert!(smtp.contains("over 4 KB"), "{v}");
    assert!(
        !detail(&v, "access-token-graph").contains("over 4 KB"),
        "{v}"
    );
}

#[test]
fn doctor_names_the_ca_file_when_the_smtp_certificate_is_not_trusted() {
    let s = file_stand(SmtpOptions::default(), &["--transport", "smtp"]);
    // Trust another CA than the one that signed the SMTP server's certificate.
    let pki = server_pki(&s.env.path(""));
    set_profile(
        &s.env,
        "ca_file",
        toml::Value::String(pki.ca.display().to_string()),
    );
    let (out, v) = doctor(&s.env, &[]);
    assert_eq!(out.code, 69, "{out}");
    let c = check(&v, "network-smtp");
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"].as_str().unwrap().contains("does not trust"),
        "{c}"
    );
    assert!(c["fix"].as_str().unwrap().contains("--ca-file"), "{c}");
    // And a send says the same.
    let out = s.env.send_simple("ann@example.com", "x", &[]);
    assert_eq!(out.code, 69, "{out}");
    assert!(out.stderr.contains("does not trust"), "{out}");
}

#[test]
fn doctor_all_profiles_reports_each_and_exits_with_the_first_failure() {
    let s = file_stand(SmtpOptions::default(), &[]);
    // A second profile that lacks its client id.
    let path = s.env.config_path();
    let mut doc: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut second = doc["profiles"][&s.env.profile].as_table().unwrap().clone();
    second.insert("client_id".into(), toml::Value::String(String::new()));
    doc["profiles"]
        .as_table_mut()
        .unwrap()
        .insert("second".into(), toml::Value::Table(second));
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();

    let (out, v) = doctor(&s.env, &["--all-profiles", "--no-network"]);
    assert_eq!(out.code, 78, "the second profile's config failure: {out}");
    assert_eq!(v["ok"], false, "{v}");
    let profiles = v["profiles"].as_array().unwrap();
    let names: Vec<&str> = profiles
        .iter()
        .map(|p| p["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{v}");
    assert!(names.contains(&s.env.profile.as_str()) && names.contains(&"second"));
    for p in profiles {
        let ok = p["ok"].as_bool().unwrap();
        assert_eq!(ok, p["profile"] != "second", "{p}");
    }
    let second = profiles.iter().find(|p| p["profile"] == "second").unwrap();
    assert!(second.to_string().contains("client_id"), "{second}");
    let human = s
        .env
        .run(&["doctor", "--all-profiles", "--no-network"], None);
    assert_eq!(human.code, 78, "{human}");
    assert!(
        human.stdout.contains("second") && human.stdout.contains(&s.env.profile),
        "{human}"
    );
}

#[test]
fn errors_with_unknown_codes_name_the_code_and_where_to_read_about_it() {
    let s = file_stand(SmtpOptions::default(), &[]);
    // Graph.
    s.graph.fail_next(
        1,
        400,
        None,
        "ErrorSomethingNobodyDocumented",
        "Something new went wrong.",
    );
    let out = s.env.send_simple("ann@example.com", "g", &[]);
    assert_eq!(out.code, 69, "{out}");
    assert!(
        out.stderr.contains("ErrorSomethingNobodyDocumented"),
        "{out}"
    );
    assert!(out.stderr.contains("Something new went wrong."), "{out}");
    assert!(
        out.stderr
            .contains("https://learn.microsoft.com/graph/errors"),
        "{out}"
    );
    assert!(out.stderr.contains("request-id"), "{out}");

    // Entra.
    s.entra.fail_next_token_request(
        400,
        "invalid_request",
        9999999,
        "AADSTS9999999: A code from the future.",
    );
    let out = s.env.run(&["token", "--refresh"], None);
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("AADSTS9999999"), "{out}");
    assert!(
        out.stderr
            .contains("https://login.microsoftonline.com/error?code=9999999"),
        "{out}"
    );

    // SMTP: 5.1.1 is not in the table.
    let out = s.env.send_simple(
        "reject@example.com",
        "s",
        &["--transport", "smtp", "--json"],
    );
    assert_eq!(out.code, 65, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v["code"], "5.1.1", "{v}");
    assert!(v["why"].as_str().unwrap().contains("User unknown"), "{v}");
    assert!(
        v["fix"].as_str().unwrap().contains("non-delivery-reports"),
        "{v}"
    );
}

#[test]
fn a_bad_recipient_does_not_fall_back_to_the_other_transport() {
    let s = file_stand(SmtpOptions::default(), &[]);
    set_profile(&s.env, "fallback", toml::Value::String("smtp".into()));
    s.graph.fail_next(
        1,
        400,
        None,
        "ErrorInvalidRecipients",
        "At least one recipient is not valid.",
    );
    let out = s.env.send_simple("ann@example.com", "x", &[]);
    assert_eq!(
        out.code, 65,
        "a bad message, not a transport problem: {out}"
    );
    assert!(
        !out.stderr.contains("sending through smtp instead"),
        "{out}"
    );
    assert!(s.smtp().messages().is_empty(), "SMTP must not be tried");
    assert!(s.graph.delivered().is_empty());
}
