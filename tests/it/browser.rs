//! One login end to end as a person does it: `webbrowser` opens the authorize URL through
//! `$BROWSER` in real headless Chromium, which follows the fake's redirect to mailer's
//! loopback listener. Needs Debian's `chromium` (scripts/test installs it).

use crate::login::{CLIENT, fake, login_command};
use crate::support::harness::{Env, support_file};
use std::time::{Duration, Instant};

/// Kills Chromium's whole process group when the test ends, however it ends.
struct KillGroup(std::path::PathBuf);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}

#[test]
fn login_through_real_headless_chromium() {
    assert!(
        std::process::Command::new("chromium")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "Debian's chromium is needed for this test: run scripts/test (it installs it) or apt-get install chromium"
    );
    let mut env = Env::new();
    let pidfile = env.path("chromium.pid");
    let dom = env.path("chromium.dom");
    let _guard = KillGroup(pidfile.clone());
    env.set(
        "BROWSER",
        &format!("{} %s", support_file("chromium-browser.sh").display()),
    );
    env.set("MAILER_TEST_CHROMIUM_PIDFILE", pidfile.to_str().unwrap());
    env.set("MAILER_TEST_CHROMIUM_DOM", dom.to_str().unwrap());
    let f = fake();
    let authority = f.authority();
    let out = env.run(&login_command(CLIENT, &authority, "60", true, &[]), None);
    assert_eq!(
        out.code,
        0,
        "{out}\nchromium log: {}",
        std::fs::read_to_string(dom.with_extension("dom.log")).unwrap_or_default()
    );
    assert!(
        out.stderr.contains("Logged in as ada@contoso.example"),
        "{out}"
    );
    assert_eq!(f.stats().code_grants, 1);
    // What the person saw: mailer's page, dumped by Chromium once loaded (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut page = String::new();
    while Instant::now() < deadline {
        page = std::fs::read_to_string(&dom).unwrap_or_default();
        if page.contains("</html>") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        page.contains("You can close this tab"),
        "Chromium showed: {page}"
    );
    assert_eq!(env.run(&["status"], None).code, 0);
}
