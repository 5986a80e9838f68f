//! One login end to end as a person does it: `webbrowser` opens the authorize URL through
//! `$BROWSER` in real headless Chromium, which follows the fake's redirect to mailer's
//! loopback listener. Needs Debian's `chromium` (scripts/test installs it).

use crate::login::{CLIENT, fake, login_command};
use crate::support::harness::{Chromium, Env};

#[test]
fn login_through_real_headless_chromium() {
    let mut env = Env::new();
    let chromium = Chromium::attach(&mut env);
    let f = fake();
    let authority = f.authority();
    let out = env.run(&login_command(CLIENT, &authority, "60", true, &[]), None);
    assert_eq!(out.code, 0, "{out}\nchromium log: {}", chromium.log());
    assert!(
        out.stderr.contains("Logged in as ada@contoso.example"),
        "{out}"
    );
    assert_eq!(f.stats().oauth.code_grants, 1);
    // What the person saw: mailer's page, dumped by Chromium once loaded.
    let page = chromium.last_page();
    assert!(
        page.contains("You can close this tab"),
        "Chromium showed: {page}"
    );
    assert_eq!(env.run(&["status"], None).code, 0);
}
