//! Pacing of `queue run`: `rate_limit` messages a minute at most (default 30, Exchange
//! Online's per-mailbox limit), over one SMTP connection. The CI test is fast: the window
//! file starts nearly full, so the flush must wait for it to free up, by seconds. The
//! figure for a flush of 100 at the default rate takes three minutes: it is an ignored
//! test, run by `scripts/pace-figure`.

use crate::diagnosis::set_profile;
use crate::send::Stand;
use crate::support::harness::Env;
use crate::support::smtp::SmtpOptions;
use base64::Engine;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Writes `n` queued messages to ann@example.com for SMTP, oldest first, as `send --queue`
/// writes them.
fn queue(env: &Env, n: usize) {
    let dir = env.path(&format!("data/mailer/outbox/{}", env.profile));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        let id = format!("{:020x}-1-{i}", 1_000_000 + i);
        let message = format!(
            "From: ada@contoso.example\r\nTo: ann@example.com\r\nSubject: paced {i}\r\nMessage-ID: <{id}@contoso.example>\r\n\r\nbody {i}\r\n"
        );
        let entry = serde_json::json!({
            "id": id, "created": 1, "subject": format!("paced {i}"),
            "recipients": ["ann@example.com"], "attempts": 0, "transport": "smtp",
            "message": base64::engine::general_purpose::STANDARD.encode(message),
        });
        std::fs::write(dir.join(format!("{id}.json")), entry.to_string()).unwrap();
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// When each message reached the SMTP server (its file's time), in seconds after `start`.
fn arrivals(s: &Stand, start: SystemTime) -> Vec<f64> {
    let mut t: Vec<f64> = std::fs::read_dir(s.smtp().out_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| {
            let m = e.metadata().unwrap().modified().unwrap();
            m.duration_since(start).unwrap_or_default().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t
}

#[test]
fn queue_run_waits_for_the_window_and_keeps_one_connection() {
    let s = Stand::with_smtp(SmtpOptions::default());
    set_profile(&s.env, "rate_limit", toml::Value::Integer(3));
    queue(&s.env, 3);
    // Three sends 57-58 s ago fill the window: the next three wait until they leave it,
    // 2, 2.5 and 3 s from now.
    let now = unix_now();
    let pace = s.env.path("data/mailer/pace");
    std::fs::create_dir_all(&pace).unwrap();
    let seeded = [now - 58.0, now - 57.5, now - 57.0].map(|t| format!("{t:.3}"));
    std::fs::write(pace.join(&s.env.profile), seeded.join("\n")).unwrap();
    let connections = s.smtp().stats().connections;
    let start = SystemTime::now();
    let out = s.env.run(&["queue", "run"], None);
    assert_eq!(out.code, 0, "{out}");
    let t = arrivals(&s, start);
    assert_eq!(t.len(), 3, "{out}");
    assert!(
        t[0] >= 1.5,
        "the first left before the window freed up: {t:?}"
    );
    assert!(t[2] >= 2.5 && t[2] < 15.0, "{t:?}");
    assert_eq!(
        s.smtp().stats().connections - connections,
        1,
        "one connection for the flush"
    );
}

/// The figure: a flush of 100 at the default rate_limit (30 a minute). Prints messages a
/// minute over the flush and the most sent in any 60 s; about three minutes.
#[test]
#[ignore = "takes three minutes: run by scripts/pace-figure"]
fn pace_figure() {
    const N: usize = 100;
    let s = Stand::with_smtp(SmtpOptions::default());
    queue(&s.env, N);
    let connections = s.smtp().stats().connections;
    let start = SystemTime::now();
    let clock = Instant::now();
    let mut child = s
        .env
        .command(&["queue", "run"])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(clock.elapsed() < Duration::from_secs(400), "queue run hung");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success());
    let t = arrivals(&s, start);
    assert_eq!(t.len(), N);
    let most_in_a_minute = t
        .iter()
        .map(|a| t.iter().filter(|b| **b >= *a && **b < a + 60.0).count())
        .max()
        .unwrap();
    let last = t[N - 1];
    let used = s.smtp().stats().connections - connections;
    eprintln!(
        "pace figure: {N} messages flushed in {last:.1} s = {:.1} messages/minute over the flush; \
         at most {most_in_a_minute} in any 60 s; {used} SMTP connection(s); \
         first 30 by {:.1} s, 31st at {:.1} s, 61st at {:.1} s, 91st at {:.1} s",
        N as f64 / (last / 60.0),
        t[29],
        t[30],
        t[60],
        t[90],
    );
    assert!(most_in_a_minute <= 30, "{t:?}");
    assert_eq!(used, 1);
}
