//! Warn before it breaks: the idle expiry and the credential expiry reach a person through
//! `notify_command` from unattended sends, and `status` and `doctor` show the same warnings.

use crate::diagnosis::{check, doctor, file_stand, set_profile};
use crate::send::Stand;
use crate::support::server::{Utc, now_secs};
use crate::support::smtp::SmtpOptions;
use serde_json::Value;

/// Pretends the refresh token was last used `days` ago.
fn age_refresh_token(s: &Stand, days: u64) {
    let path = s.env.token_file();
    let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    record["refresh_token_used_at"] = (now_secs() - days * 86_400).into();
    std::fs::write(&path, record.to_string()).unwrap();
}

fn expires_in_days(s: &Stand, days: u64) {
    let when = Utc::at(now_secs() + days * 86_400).rfc3339();
    set_profile(&s.env, "credential_expires", toml::Value::String(when));
}

/// A notify command that appends `EVENT|DETAIL` lines to a log; returns the log's path.
fn log_notifications(s: &Stand) -> std::path::PathBuf {
    let log = s.env.path("notified.log");
    set_profile(
        &s.env,
        "notify_command",
        toml::Value::String(format!(
            "printf '%s|%s\\n' \"$MAILER_EVENT\" \"$MAILER_DETAIL\" >> {}",
            log.display()
        )),
    );
    log
}

fn events(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('|').next().unwrap().to_owned())
        .collect()
}

#[test]
fn unattended_sends_notify_the_idle_and_credential_expiry_once_a_day() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let log = log_notifications(&s);
    age_refresh_token(&s, 80);
    expires_in_days(&s, 10);
    for i in 0..2 {
        let out = s.env.send_simple("ann@example.com", &format!("m{i}"), &[]);
        assert_eq!(out.code, 0, "a warning does not stop a send: {out}");
    }
    assert_eq!(s.graph.delivered().len(), 2);
    let mut got = events(&log);
    got.sort();
    assert_eq!(
        got,
        ["credential-expiry-soon", "idle-expiry-soon"],
        "each once, not once per send"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("80 days ago"), "{text}");
    assert!(text.contains("token --refresh"), "{text}");
    for secret in s.entra.issued_secrets() {
        assert!(
            !text.contains(&secret),
            "a token reached the notify command"
        );
    }
}

#[test]
fn expiries_further_away_are_shown_but_not_notified() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let log = log_notifications(&s);
    // 20 days: within the 30 days status and doctor warn of, beyond the 14 that notify.
    expires_in_days(&s, 20);
    let out = s.env.send_simple("ann@example.com", "m", &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(events(&log).is_empty(), "{:?}", events(&log));
    let status = s.env.run(&["status"], None);
    assert_eq!(status.code, 0, "{status}");
    assert!(
        status
            .stderr
            .contains("warning: the app's credential of profile")
            && status.stderr.contains("expires on"),
        "{status}"
    );
    let (_, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(check(&v, "credential-expiry")["status"], "warn", "{v}");
    assert!(
        events(&log).is_empty(),
        "status and doctor do not notify at 20 days"
    );
}

#[test]
fn status_and_doctor_warn_of_the_idle_expiry_and_failed_messages() {
    let s = file_stand(SmtpOptions::default(), &[]);
    age_refresh_token(&s, 85);
    let status = s.env.run(&["status"], None);
    assert_eq!(status.code, 0, "still usable for 5 days: {status}");
    assert!(
        status.stderr.contains("expires in 5 days unused"),
        "{status}"
    );
    let (out, v) = doctor(&s.env, &["--no-network"]);
    assert_eq!(out.code, 0, "{out}");
    let c = check(&v, "refresh-token");
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("token --refresh"),
        "{c}"
    );

    assert!(!status.stderr.contains("failed for good"), "{status}");

    // A queued message the server then refuses for good ends in the failed part.
    s.queue_one_that_will_fail();
    let run = s.env.run(&["queue", "run", "--json"], None);
    assert!(run.stdout.contains("\"failed\":1"), "{run}");
    let status = s.env.run(&["status"], None);
    assert_eq!(status.code, 0, "{status}");
    assert!(
        status
            .stderr
            .contains("1 message in the outbox failed for good"),
        "{status}"
    );
    assert!(status.stderr.contains("queue purge --failed"), "{status}");
}

#[test]
fn a_message_failed_for_good_is_notified_once_and_a_broken_notify_command_is_harmless() {
    let s = file_stand(SmtpOptions::default(), &[]);
    let log = log_notifications(&s);
    for _ in 0..2 {
        s.queue_one_that_will_fail();
        let run = s.env.run(&["queue", "run", "--json"], None);
        assert!(run.stdout.contains("\"failed\":1"), "{run}");
    }
    assert_eq!(events(&log), ["message-failed"], "once a day, not per run");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("queue list"), "{text}");

    // A notify command that fails, or does not exist, is logged and never fails the run.
    for broken in ["exit 3", "/nonexistent/notifier --now"] {
        set_profile(&s.env, "notify_command", toml::Value::String(broken.into()));
        // Forget the day's notification, so the broken command is due to run.
        std::fs::remove_dir_all(s.env.path("data/mailer/notify")).unwrap();
        s.queue_one_that_will_fail();
        let run = s.env.run(&["queue", "run", "--json"], None);
        assert!(run.stdout.contains("\"failed\":1"), "{broken}: {run}");
        assert_eq!(run.code, 0, "{broken}: {run}");
        // It did run, and its failure was said (logged, not fatal).
        assert!(run.stderr.contains("notify_command"), "{broken}: {run}");
        let out = s.env.send_simple("ann@example.com", "still sends", &[]);
        assert_eq!(out.code, 0, "{broken}: {out}");
    }
}
