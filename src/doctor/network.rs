//! The checks that talk to the servers: a fresh token per transport, the clock against the
//! login host's `Date`, each host reached (DNS, TCP, TLS, through the proxy in use), an
//! SMTP session up to AUTH (no mail), and with `--send-test` a message to oneself.

use super::token::{check_name, token_check};
use super::{Check, Options};
use crate::auth::Account;
use crate::error::{Class, Error};
use crate::message::Draft;
use crate::output::Printer;
use crate::transport::{AnyTransport, Content, Outgoing, Transport, TransportKind, smtp};
use std::time::{Duration, Instant};

/// A clock this far off makes tokens look expired or not yet valid to servers.
const MAX_SKEW: u64 = 120;
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

pub async fn run(acct: &Account, printer: &Printer, opts: &Options, checks: &mut Vec<Check>) {
    let transports = acct.provider.transports();
    let matters =
        |t: TransportKind| t == acct.profile.transport || acct.profile.fallback == Some(t);
    // Asked first, reported in its place below: its discovery document names the tenant's
    // GUID, which a profile with a domain tenant (`contoso.com`) lacks for the token check.
    let e = &acct.endpoints;
    let discovery = acct
        .provider
        .discovery_url(&acct.profile, e)
        .unwrap_or_else(|| e.token.to_string());
    let login_host = probe_http(acct, "network-authority", &discovery).await;
    let tenant_id = login_host.as_ref().ok().and_then(|p| p.tenant_id.clone());
    for &t in transports {
        // Newly issued, not cached: a refresh token that a policy, a password change or an
        // expired secret killed an hour ago must show now, not when the cache runs out.
        let check = match crate::tokens::access_token(acct, t, true).await {
            Ok(c) => token_check(acct, t, &c.token, c.expires_at, tenant_id.as_deref()),
            Err(e) => Check::from_error(check_name(t), &e),
        };
        checks.push(if matters(t) { check } else { check.softened() });
    }
    checks.push(clock(login_host.as_ref().ok().and_then(|p| p.date)));
    checks.push(into_check(login_host));
    for (t, name, path) in [
        (TransportKind::Graph, "network-graph", "/v1.0/"),
        (TransportKind::Gmail, "network-gmail", "/"),
    ] {
        if !transports.contains(&t) {
            continue;
        }
        let api = format!("{}{path}", e.api.as_str().trim_end_matches('/'));
        let check = into_check(probe_http(acct, name, &api).await);
        checks.push(if matters(t) { check } else { check.softened() });
    }
    if transports.contains(&TransportKind::Smtp) {
        let soft = !matters(TransportKind::Smtp);
        for check in smtp_checks(acct).await {
            checks.push(if soft { check.softened() } else { check });
        }
    }
    if opts.send_test {
        for &t in transports {
            checks.push(send_test(acct, printer, t).await);
        }
    }
}

struct Probe {
    name: &'static str,
    detail: String,
    /// The server's clock, from its `Date` header.
    date: Option<u64>,
    /// The tenant GUID, when the answer was an OpenID discovery document.
    tenant_id: Option<String>,
}

/// Discovery documents are a few KB; anything much larger is not one.
const MAX_PROBE_BODY: usize = 64 * 1024;

/// Whether `url` answers at all: any HTTP status means DNS, TCP and TLS worked.
async fn probe_http(acct: &Account, name: &'static str, url: &str) -> Result<Probe, Check> {
    let via = oauth2::url::Url::parse(url)
        .ok()
        .and_then(|u| crate::http::proxy_for(&u))
        .map(|p| format!(" via proxy {p}"))
        .unwrap_or_default();
    let http = acct.http().map_err(|e| Check::from_error(name, &e))?;
    let started = Instant::now();
    match tokio::time::timeout(PROBE_TIMEOUT, http.get(url).send()).await {
        Err(_) => Err(Check::fail(
            name,
            Class::Temporary,
            format!(
                "{url}{via} did not answer within {} s",
                PROBE_TIMEOUT.as_secs()
            ),
            "check the network, firewall and proxy (HTTPS_PROXY, NO_PROXY)",
        )),
        Ok(Err(e)) => Err(network_failure(name, url, &via, &e)),
        Ok(Ok(r)) => {
            let date = r
                .headers()
                .get("Date")
                .and_then(|v| v.to_str().ok())
                .and_then(parse_http_date);
            let status = r.status().as_u16();
            let body = match tokio::time::timeout(PROBE_TIMEOUT, r.bytes()).await {
                Ok(Ok(b)) if b.len() <= MAX_PROBE_BODY => b,
                _ => Default::default(),
            };
            let tenant_id = serde_json::from_slice(&body)
                .ok()
                .and_then(|doc| crate::setup::discover::tenant_of(&doc));
            Ok(Probe {
                name,
                detail: format!(
                    "{}{via} answered HTTP {} in {} ms",
                    host_of(url),
                    status,
                    started.elapsed().as_millis()
                ),
                date,
                tenant_id,
            })
        }
    }
}

fn into_check(probe: Result<Probe, Check>) -> Check {
    match probe {
        Ok(p) => Check::ok(p.name, p.detail),
        Err(c) => c,
    }
}

fn host_of(url: &str) -> String {
    oauth2::url::Url::parse(url)
        .ok()
        .and_then(|u| {
            Some(format!(
                "{}{}",
                u.host_str()?,
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ))
        })
        .unwrap_or_else(|| url.to_owned())
}

fn network_failure(name: &'static str, url: &str, via: &str, e: &reqwest::Error) -> Check {
    let chain = crate::error::chain(e);
    let host = host_of(url);
    if let Some((what, fix)) = crate::http::tls_problem(e) {
        return Check::fail(
            name,
            Class::Refused,
            format!("TLS with {host}{via}: {what}"),
            fix,
        );
    }
    let lower = chain.to_ascii_lowercase();
    let what = if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        "its name does not resolve (DNS)"
    } else if lower.contains("refused") {
        "the connection was refused"
    } else if lower.contains("timed out") {
        "the connection timed out"
    } else {
        "it cannot be reached"
    };
    Check::fail(
        name,
        Class::Temporary,
        format!("{host}{via}: {what} ({chain})"),
        "check the network, firewall and proxy (HTTPS_PROXY, NO_PROXY), and the endpoint settings (--authority, --graph-url)",
    )
}

fn clock(server: Option<u64>) -> Check {
    const NAME: &str = "clock";
    let Some(server) = server else {
        return Check::warn(
            NAME,
            "the login host sent no Date to compare the clock with",
            "make sure the system clock is synchronized (timedatectl, chrony, ntpd)",
        );
    };
    let now = crate::tokens::now();
    let skew = now.abs_diff(server);
    let ahead = if now >= server { "ahead of" } else { "behind" };
    if skew > MAX_SKEW {
        return Check::warn(
            NAME,
            format!("this machine's clock is {skew} s {ahead} the login host's"),
            "synchronize the clock (timedatectl set-ntp true, or chrony/ntpd): tokens and certificate assertions are checked against it",
        );
    }
    Check::ok(NAME, format!("within {skew} s of the login host's"))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 section 5.6.7) to Unix seconds.
fn parse_http_date(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let hms: Vec<i64> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, s] = hms[..] else { return None };
    crate::output::unix_from_civil(
        year.parse().ok()?,
        month,
        day.parse().ok()?,
        h * 3600 + m * 60 + s,
    )
}

/// `network-smtp` (TCP and TLS, no AUTH) and `smtp-auth` (AUTH XOAUTH2, then QUIT).
async fn smtp_checks(acct: &Account) -> Vec<Check> {
    let settings = match smtp::Settings::of(acct) {
        Ok(s) => s,
        Err(e) => return vec![Check::from_error("network-smtp", &e)],
    };
    let target = format!("{}:{}", settings.host, settings.port);
    let started = Instant::now();
    if let Err(e) = smtp::probe(&settings).await {
        return vec![Check::from_error("network-smtp", &e)];
    }
    // Whoever set HTTPS_PROXY may expect SMTP to take it too; it does not (no CONNECT for
    // SMTP), and saying so explains a firewall that only lets the proxy out.
    let direct = oauth2::url::Url::parse(&format!("https://{}", settings.host))
        .ok()
        .and_then(|u| crate::http::proxy_for(&u))
        .map(|p| format!(", directly (SMTP does not go through the proxy {p})"))
        .unwrap_or_default();
    let reached = Check::ok(
        "network-smtp",
        format!(
            "{target} greeted and completed {} in {} ms{direct}",
            match settings.security {
                crate::config::SmtpSecurity::Starttls => "STARTTLS",
                crate::config::SmtpSecurity::Tls => "the TLS handshake",
            },
            started.elapsed().as_millis()
        ),
    );
    let auth = match AnyTransport::open(TransportKind::Smtp, acct, &Printer::new(false, true)) {
        Ok(AnyTransport::Smtp(mut t)) => match t.probe().await {
            Ok(()) => Check::ok(
                "smtp-auth",
                format!("{target} accepted AUTH XOAUTH2 for {}", acct.profile.user),
            ),
            Err(e) => Check::from_error("smtp-auth", &e),
        },
        Ok(_) => Check::fail(
            "smtp-auth",
            Class::Internal,
            "the SMTP transport did not open as SMTP",
            "report this as a bug",
        ),
        Err(e) => Check::from_error("smtp-auth", &e),
    };
    vec![reached, auth]
}

async fn send_test(acct: &Account, printer: &Printer, t: TransportKind) -> Check {
    let name = match t {
        TransportKind::Graph => "send-test-graph",
        TransportKind::Smtp => "send-test-smtp",
        TransportKind::Gmail => "send-test-gmail",
    };
    match test_message(acct, printer, t, "mailer doctor --send-test").await {
        Ok(note) => Check::ok(
            name,
            format!(
                "a test message to {} was accepted ({note})",
                acct.profile.user
            ),
        ),
        Err(e) => Check::from_error(name, &e),
    }
}

/// Sends a short message to the profile's own mailbox through `t`; returns what the server
/// said (its request-id or reply).
pub async fn test_message(
    acct: &Account,
    printer: &Printer,
    t: TransportKind,
    by: &str,
) -> Result<String, Error> {
    let me = acct.mailbox()?;
    let draft = Draft {
        to: vec![me.clone()],
        subject: format!("mailer: test via {t}"),
        text: Some(format!(
            "This message was sent by `{by}` for profile \"{}\" through {t}. It can be deleted.\n",
            acct.name
        )),
        ..Default::default()
    };
    let out = Outgoing {
        message_id: Some(crate::message::new_message_id(&me)),
        sender: me.clone(),
        recipients: vec![me],
        content: Content::Built(Box::new(draft)),
        send_as: None,
        no_save_sent: false,
    };
    let mut transport = AnyTransport::open(t, acct, printer)?;
    let receipt = transport.send(&out).await;
    transport.close().await;
    let receipt = receipt?;
    Ok(receipt
        .request_id
        .map(|r| format!("request-id {r}"))
        .or(receipt.reply)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn clock_skew_warns_past_two_minutes() {
        let now = crate::tokens::now();
        assert!(clock(Some(now + 30)).is_ok());
        assert!(!clock(Some(now - 600)).is_ok());
    }
}
