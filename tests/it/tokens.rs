//! The token lifecycle after login: cache, rotation under the per-profile lock, revoked
//! logins, the file store's permissions, the credential-helper formats, logout, and that no
//! secret reaches logs.

use crate::login::{CLIENT, TENANT, fake, login, login_command};
use crate::support::fake_entra::FakeEntra;
use crate::support::harness::{Env, Output};
use base64::Engine;
use std::time::Duration;

/// A login (with `extra` flags) whose access token is stale the moment it is stored: issued
/// for less than the 5-minute refresh margin. Later tokens get that lifetime too.
fn stale_login(extra: &[&str]) -> (Env, FakeEntra) {
    let env = Env::new();
    let f = fake();
    f.set_access_token_lifetime(120);
    let out = login(&env, &f, extra);
    assert_eq!(out.code, 0, "{out}");
    (env, f)
}

/// Runs `n` `mailer token` processes at once.
fn concurrent_tokens(env: &Env, n: usize) -> Vec<Output> {
    env.run_concurrently(&vec![vec!["token".to_string()]; n], Duration::from_secs(90))
}

#[test]
fn twenty_concurrent_token_calls_refresh_once() {
    let (env, f) = stale_login(&[]);
    f.set_access_token_lifetime(3600);
    let results = concurrent_tokens(&env, 20);
    for out in &results {
        assert_eq!(out.code, 0, "{out}");
    }
    let first = results[0].stdout.trim();
    assert!(
        results.iter().all(|out| out.stdout.trim() == first),
        "processes got different tokens"
    );
    let st = f.stats();
    assert_eq!(st.oauth.refresh_grants, 1, "{st:?}");
    assert_eq!(st.refresh_reuse, 0);
    assert!(!f.access_token_info(first).unwrap().expired);
}

#[test]
fn twenty_concurrent_refreshes_never_reuse_a_rotated_token() {
    // Every token issued is short-lived, so every process must refresh: 20 rotations in a
    // row through the lock, each saving the new refresh token before the next reads it.
    let (env, f) = stale_login(&[]);
    for out in concurrent_tokens(&env, 20) {
        assert_eq!(out.code, 0, "{out}");
    }
    let st = f.stats();
    assert_eq!(st.refresh_reuse, 0, "{st:?}");
    assert_eq!(st.oauth.refresh_grants, 20);
    // The family is intact: one more refresh works.
    assert_eq!(env.run(&["token"], None).code, 0);
}

#[test]
fn revoked_refresh_token_exits_77_with_the_exact_login_command() {
    let (env, f) = stale_login(&[]);
    f.revoke_all_refresh_tokens();
    let out = env.run(&["token"], None);
    assert_eq!(out.code, 77, "{out}");
    let expected = format!(
        "mailer login --profile {} --tenant {TENANT} --client-id {CLIENT} --authority {}",
        env.profile,
        f.authority()
    );
    assert!(
        out.stderr.contains(&expected),
        "expected {expected:?} in {out}"
    );
    assert!(out.stderr.contains("AADSTS50173"), "{out}");
    // The stored login is left in place (a human decides), so status still shows it.
    let status = env.run(&["status", "--json"], None);
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["logged_in"], true, "{status}");
}

#[test]
fn cached_access_token_is_reused_without_the_network() {
    let env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &[]).code, 0);
    let before = f.stats().oauth.token_requests.len();
    for _ in 0..3 {
        assert_eq!(env.run(&["token"], None).code, 0);
    }
    assert_eq!(f.stats().oauth.token_requests.len(), before);
    // Even with the identity provider gone.
    drop(f);
    assert_eq!(env.run(&["token"], None).code, 0);
}

#[cfg(unix)]
#[test]
fn file_store_is_private_and_refuses_loose_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let (env, _f) = stale_login(&["--token-store", "file"]);
    let file = env.token_file();
    let dir = file.parent().unwrap().to_owned();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&dir), 0o700);
    // A refresh rewrites the file atomically and keeps it private.
    assert_eq!(env.run(&["token"], None).code, 0);
    assert_eq!(mode(&file), 0o600);
    let status = env.run(&["status"], None);
    assert!(status.stdout.contains("file ("), "{status}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run(&["token"], None);
    assert_eq!(out.code, 74, "{out}");
    assert!(
        out.stderr
            .contains(&format!("chmod 600 {}", file.display())),
        "{out}"
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["token"], None);
    assert_eq!(out.code, 74, "{out}");
    assert!(out.stderr.contains("chmod 700"), "{out}");
}

#[test]
fn token_formats_for_credential_helpers() {
    let env = Env::new();
    let f = fake();
    assert_eq!(
        login(&env, &f, &["--smtp-host", "smtp.contoso.example"]).code,
        0
    );
    let raw = env
        .run(&["token", "--transport", "smtp"], None)
        .stdout
        .trim()
        .to_owned();
    let b64 = |s: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .unwrap(),
        )
        .unwrap()
    };

    let x = env.run(
        &["token", "--transport", "smtp", "--format", "xoauth2"],
        None,
    );
    assert_eq!(x.code, 0, "{x}");
    assert_eq!(
        b64(&x.stdout),
        format!("user=ada@contoso.example\x01auth=Bearer {raw}\x01\x01")
    );

    let o = env.run(
        &["token", "--transport", "smtp", "--format", "oauthbearer"],
        None,
    );
    assert_eq!(
        b64(&o.stdout),
        format!(
            "n,a=ada@contoso.example,\x01host=smtp.contoso.example\x01port=587\x01auth=Bearer {raw}\x01\x01"
        )
    );

    let j = env.run(&["token", "--transport", "smtp", "--format", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["access_token"], raw.as_str());
    assert_eq!(v["user"], "ada@contoso.example");
    assert!(v["expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(v["scope"].as_str().unwrap().contains("SMTP.Send"), "{v}");
}

#[test]
fn no_secret_reaches_logs_even_at_trace_level() {
    let env = Env::new();
    let f = fake();
    f.add_confidential_client(
        "7e57c0de-0000-4000-8000-00000000c0f1",
        "a-long-client-secret-value-42",
        &["http://localhost"],
    );
    f.set_access_token_lifetime(120);
    let authority = f.authority();
    let args = login_command(
        "7e57c0de-0000-4000-8000-00000000c0f1",
        &authority,
        "30",
        false,
        &["--client-secret-stdin", "-vvv"],
    );
    let mut run = env.spawn_with_stdin(&args, Some("a-long-client-secret-value-42\n"));
    let page = crate::support::harness::browse(&run.authorize_url());
    assert_eq!(page.status, 200);
    let login = run.finish();
    assert_eq!(login.code, 0, "{login}");
    let refresh = env.run(&["token", "--transport", "smtp", "-vvv"], None);
    assert_eq!(refresh.code, 0, "{refresh}");
    let status = env.run(&["status", "--json", "-vvv"], None);
    let failed = {
        f.revoke_all_refresh_tokens();
        env.run(&["token", "-vvv"], None)
    };
    assert_eq!(failed.code, 77);

    let logs = [
        login.all(),
        refresh.stderr.clone(),
        status.all(),
        failed.all(),
    ]
    .join("\n");
    assert!(
        logs.contains("refreshing the access token"),
        "-vvv logged nothing useful: {logs}"
    );
    let secrets = f.issued_secrets();
    assert!(secrets.len() >= 5, "{secrets:?}");
    for s in secrets.iter().filter(|s| s.len() >= 8) {
        assert!(
            !logs.contains(s.as_str()),
            "a secret reached the output: {s}"
        );
    }
}

#[test]
fn logout_deletes_tokens_and_forget_drops_the_profile() {
    let env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &[]).code, 0);
    let out = env.run(&["logout"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("deleted its tokens"), "{out}");
    let out = env.run(&["token"], None);
    assert_eq!(out.code, 77, "{out}");
    // status --json: one JSON document on stdout even when a login is needed.
    let status = env.run(&["status", "--json"], None);
    assert_eq!(status.code, 77, "{status}");
    let v: serde_json::Value =
        serde_json::from_str(status.stdout.trim()).expect("one JSON document");
    assert_eq!(v["ready"], false);
    assert_eq!(v["logged_in"], false);
    let listed = env.run(&["profiles", "--json"], None);
    assert!(listed.stdout.contains(&env.profile), "{listed}");
    // Nothing of ours is left in the keyring for this profile.
    if let Ok(o) = std::process::Command::new("secret-tool")
        .args(["search", "--all", "service", "mailer"])
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default(),
        )
        .output()
    {
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        assert!(
            !text.contains(&format!("username = {}", env.profile)),
            "{text}"
        );
    }
    let out = env.run(&["logout", "--forget"], None);
    assert_eq!(out.code, 0, "{out}");
    let listed = env.run(&["profiles", "--json"], None);
    assert!(!listed.stdout.contains(&env.profile), "{listed}");
}

#[test]
fn profiles_and_default_profile() {
    let mut env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &[]).code, 0);
    let first = env.profile.clone();
    env.profile = format!("{first}-b");
    assert_eq!(login(&env, &f, &["--transport", "smtp"]).code, 0);
    let out = env.run(&["profiles"], None);
    assert_eq!(out.code, 0, "{out}");
    // The first login became the default.
    assert!(out.stdout.contains(&format!("* {first}\t")), "{out}");
    assert!(out.stdout.contains(&format!("  {first}-b\t")), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&env.run(&["profiles", "--json"], None).stdout).unwrap();
    assert_eq!(v["default"], first.as_str());
    assert_eq!(v["profiles"].as_array().unwrap().len(), 2);
}

#[test]
fn unknown_config_keys_are_named_with_the_file() {
    let env = Env::new();
    let path = env.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "[profiles.x]\ntenant = 't'\nclient_id = 'c'\nuser = 'u@x'\nsmtp_prot = 25\n",
    )
    .unwrap();
    let out = env.run(&["status", "--profile", "x"], None);
    assert_eq!(out.code, 78, "{out}");
    assert!(out.stderr.contains("smtp_prot"), "{out}");
    assert!(out.stderr.contains(&path.display().to_string()), "{out}");
}

#[test]
fn usage_errors_exit_64() {
    let env = Env::new();
    let out = env.run(&["token", "--format", "yaml"], None);
    assert_eq!(out.code, 64, "{out}");
    let out = env.run(&["login"], None);
    assert_eq!(out.code, 64, "{out}");
    assert!(out.stderr.contains("--client-id"), "{out}");
    let out = env.run(&["status", "--profile", "../etc"], None);
    assert_eq!(out.code, 64, "{out}");
}

#[test]
fn status_reports_a_login_past_the_inactivity_limit() {
    let env = Env::new();
    let f = fake();
    assert_eq!(login(&env, &f, &["--token-store", "file"]).code, 0);
    let path = env.token_file();
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let now = crate::support::server::now_secs();
    let write = |r: &serde_json::Value| {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(r).unwrap()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        std::fs::rename(&tmp, &path).unwrap();
    };
    record["refresh_token_used_at"] = (now - 80 * 86_400).into();
    write(&record);
    let out = env.run(&["status"], None);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("warning: the refresh token of profile")
            && out.stderr.contains("was last used 80 days ago"),
        "{out}"
    );
    record["refresh_token_used_at"] = (now - 91 * 86_400).into();
    write(&record);
    let out = env.run(&["status"], None);
    assert_eq!(out.code, 77, "{out}");
    assert!(
        out.stderr.contains("has expired") && out.stderr.contains("mailer login"),
        "{out}"
    );
}
