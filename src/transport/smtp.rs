//! SMTP with `AUTH XOAUTH2` through lettre.
//!
//! STARTTLS on 587 by default, implicit TLS when the profile says `tls`; certificates are
//! always verified (platform roots plus `ca_file`). For STARTTLS mailer opens the TCP
//! socket itself with TCP_NODELAY, because lettre does not set it and Nagle plus delayed
//! ACK costs two ~40 ms stalls per message; lettre then runs the session over it. One
//! connection serves every message of a run. A token the server rejects, whether by an
//! immediate 535 or by a 334 challenge (Gmail's way, which lettre 0.11 cannot answer), is
//! renewed once and tried once more ([`super::with_token`]).

use super::{Attempt, Content, Outgoing, Receipt, TokenSource, Transport, with_token};
use crate::auth::Account;
use crate::config::SmtpSecurity;
use crate::error::{Class, Error, Result};
use crate::explain::{self, Fill, Source};
use crate::secret::Secret;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// What SMTP needs of the profile.
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub tls: TlsParameters,
    /// The XOAUTH2 `user=`: the logged-in mailbox.
    pub user: String,
    pub fill: Fill,
}

impl Settings {
    pub fn of(acct: &Account) -> Result<Settings> {
        let e = &acct.endpoints;
        let host = e.smtp_host.clone().ok_or_else(|| {
            Error::config(format!(
                "no SMTP host is known for the {} cloud",
                acct.profile.cloud
            ))
            .fix(format!(
                "log in again naming it: {} --smtp-host HOST",
                acct.login_command()
            ))
        })?;
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(path) = &acct.profile.ca_file {
            for block in crate::http::ca_pem_blocks(path)? {
                let cert = Certificate::from_pem(&block).map_err(|e| {
                    Error::config(format!(
                        "the CA file {} is not valid PEM: {e}",
                        path.display()
                    ))
                    .fix(crate::http::CA_FIX)
                })?;
                tls = tls.add_root_certificate(cert);
            }
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| Error::internal(format!("cannot set up TLS: {e}")))?;
        Ok(Settings {
            host,
            port: e.smtp_port,
            security: e.smtp_security,
            tls,
            user: acct.profile.user.clone(),
            fill: acct.fill(),
        })
    }
}

pub struct Smtp<'a> {
    s: Settings,
    tokens: Box<dyn TokenSource + 'a>,
    conn: Option<AsyncSmtpConnection>,
}

impl<'a> Smtp<'a> {
    pub fn new(s: Settings, tokens: Box<dyn TokenSource + 'a>) -> Result<Smtp<'a>> {
        Ok(Smtp {
            s,
            tokens,
            conn: None,
        })
    }

    /// A live, authenticated connection: reuse, else connect and authenticate.
    async fn ensure(&mut self) -> Result<&mut AsyncSmtpConnection> {
        if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
            let s = &self.s;
            let conn = with_token(self.tokens.as_mut(), async |token: Secret| {
                authenticate(s, token).await
            })
            .await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }
}

impl Smtp<'_> {
    /// Connects and authenticates like a send, then says goodbye: no mail leaves.
    pub async fn probe(&mut self) -> Result<()> {
        self.ensure().await?;
        self.close().await;
        Ok(())
    }
}

/// Greets the server and sets up TLS, without authenticating; then QUIT.
pub async fn probe(s: &Settings) -> Result<()> {
    let mut c = open(s).await?;
    let _ = c.quit().await;
    Ok(())
}

async fn open(s: &Settings) -> Result<AsyncSmtpConnection> {
    let hello = ClientId::default();
    let io = |e: SmtpError| connection_error(s, &e);
    match s.security {
        SmtpSecurity::Starttls => {
            let tcp = tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::TcpStream::connect((s.host.as_str(), s.port)),
            )
            .await
            .map_err(|_| unreachable(s, "timed out"))?
            .map_err(|e| unreachable(s, &e.to_string()))?;
            tcp.set_nodelay(true)
                .map_err(|e| unreachable(s, &e.to_string()))?;
            let mut c = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                .await
                .map_err(io)?;
            if !c.can_starttls() {
                return Err(Error::refused(format!(
                    "{}:{} does not offer STARTTLS",
                    s.host, s.port
                ))
                .why("mailer never sends a token over an unencrypted connection")
                .fix(
                    "check --smtp-host/--smtp-port, or use --smtp-security tls for implicit TLS",
                ));
            }
            c.starttls(s.tls.clone(), &hello).await.map_err(io)?;
            Ok(c)
        }
        // Exchange Online offers no implicit TLS; other servers do, and for them lettre's
        // own socket is good enough.
        SmtpSecurity::Tls => AsyncSmtpConnection::connect_tokio1(
            (s.host.as_str(), s.port),
            Some(CONNECT_TIMEOUT),
            &hello,
            Some(s.tls.clone()),
            None,
        )
        .await
        .map_err(io),
    }
}

/// Connects and authenticates with `token`.
async fn authenticate(s: &Settings, token: Secret) -> Result<Attempt<AsyncSmtpConnection>> {
    let mut c = open(s).await?;
    let creds = Credentials::new(s.user.clone(), token.expose().to_owned());
    match c.auth(&[Mechanism::Xoauth2], &creds).await {
        Ok(_) => Ok(Attempt::Done(c)),
        Err(e) => {
            c.abort().await;
            classify_auth(s, &e)
        }
    }
}

/// A refused AUTH: a rejected token (worth one renewal), SMTP AUTH switched off, or else.
fn classify_auth(s: &Settings, e: &SmtpError) -> Result<Attempt<AsyncSmtpConnection>> {
    let text = e.to_string();
    let code = enhanced_code(&text);
    let known = explained(s, code.as_deref(), &text);
    // 535 5.7.139 is a policy, not a verdict on the token: no renewal helps.
    if let Some(e) = known.filter(|e| e.class != Class::LoginNeeded) {
        return Err(e);
    }
    let rejected_535 = e.is_permanent() && e.status().is_some_and(|c| c.to_string() == "535");
    // A 334 challenge (Gmail style) shows up as a client error: lettre 0.11 cannot answer
    // it. Either way the server said no to this token.
    let rejected_334 = e.is_client() && text.contains("challenge");
    if rejected_535 || rejected_334 {
        return Ok(Attempt::Rejected(
            Error::login_needed(format!("{} rejected the access token twice, the second one freshly issued", s.host))
                .why(text)
                .fix(format!("check that the app has the SMTP.Send permission and {} may use SMTP AUTH, then log in again: {}", s.user, s.fill.login))
                .code(code.unwrap_or_else(|| "535".into())),
        ));
    }
    if e.is_transient() {
        return Err(Error::temp(format!("{} deferred the login", s.host))
            .why(text)
            .fix("try again later"));
    }
    Err(connection_error(s, e))
}

/// A reply whose enhanced status code the explain table knows, as the error to report.
fn explained(s: &Settings, code: Option<&str>, text: &str) -> Option<Error> {
    let code = code?;
    let entry = explain::lookup(Source::Smtp, code)?;
    Some(
        Error::new(
            entry.class,
            format!("{}: {} ({code})", s.host, s.fill.apply(entry.meaning)),
        )
        .why(text.to_owned())
        .fix(s.fill.apply(entry.fix))
        .code(code)
        .transport_specific(entry.fallback),
    )
}

/// The RFC 3463 enhanced status code in a reply, e.g. "5.7.139".
pub fn enhanced_code(text: &str) -> Option<String> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..].iter().all(|p| (1..=3).contains(&p.len()))
        })
        .map(str::to_owned)
}

fn unreachable(s: &Settings, why: &str) -> Error {
    Error::temp(format!(
        "cannot connect to the SMTP server {}:{}",
        s.host, s.port
    ))
    .why(why.to_owned())
    .fix("check the network, firewall (outbound port 587) and --smtp-host/--smtp-port")
}

fn connection_error(s: &Settings, e: &SmtpError) -> Error {
    let text = crate::error::chain(e);
    // rustls reports an untrusted chain inside a "connection error", not as a TLS error.
    if let Some((what, fix)) = crate::http::tls_problem(&text) {
        return Error::refused(format!("TLS with {}:{}: {what}", s.host, s.port))
            .why(text)
            .fix(fix);
    }
    if e.is_tls() {
        return Error::refused(format!("the TLS handshake with {} failed", s.host))
            .why(text)
            .fix("if a proxy inspects TLS, add its root certificate with --ca-file; check --smtp-host");
    }
    if e.is_transient() || !(e.is_permanent() || e.is_client()) {
        return unreachable(s, &text);
    }
    Error::refused(format!("{} refused the session", s.host))
        .why(text)
        .fix("check --smtp-host and --smtp-port")
}

impl Transport for Smtp<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        let bytes = data(&match &out.content {
            Content::Built(_) => out.mime()?,
            // Bcc names must not reach the recipients: SMTP delivers the bytes as they are.
            Content::Raw(raw) => raw.without_bcc(),
        });
        let envelope = Envelope::new(
            Some(out.from_mailbox().email.clone()),
            out.recipients.iter().map(|m| m.email.clone()).collect(),
        )
        .map_err(|e| {
            Error::bad_data(format!("invalid envelope: {e}")).fix("name at least one recipient")
        })?;
        let conn = self.ensure().await?;
        match conn.send(&envelope, &bytes).await {
            Ok(reply) => Ok(Receipt {
                message_id: out.message_id.clone(),
                request_id: None,
                reply: Some(format!(
                    "{} {}",
                    reply.code(),
                    reply.message().collect::<Vec<_>>().join(" ")
                )),
            }),
            Err(e) => {
                // lettre has already ended the session on an error.
                self.conn = None;
                Err(send_error(&self.s, &e))
            }
        }
    }

    async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}

fn send_error(s: &Settings, e: &SmtpError) -> Error {
    let host = &s.host;
    let text = e.to_string();
    if let Some(e) = explained(s, enhanced_code(&text).as_deref(), &text) {
        return e;
    }
    if e.is_transient() {
        return Error::temp(format!("{host} deferred the message"))
            .why(text)
            .fix("try again later");
    }
    if e.is_permanent() {
        // 5.1.x: the address is wrong (bad data); 5.7.x and the rest: refused by policy.
        let address = enhanced_code(&text).is_some_and(|c| c.starts_with("5.1."));
        let (class, what, fix) = if address {
            (
                Class::BadData,
                "a recipient was rejected",
                "check the recipient addresses",
            )
        } else {
            (
                Class::Refused,
                "the server refused the message",
                "read the server's reason above; an admin can tell why it was refused",
            )
        };
        let e = Error::new(class, format!("{host}: {what}"));
        // A code the table does not know still leads somewhere.
        return match enhanced_code(&text) {
            Some(code) => e
                .fix(format!(
                    "{fix}; {code} is described at {}",
                    explain::docs_for_unknown(Source::Smtp, &code)
                ))
                .code(code),
            None => e.fix(fix),
        }
        .why(text);
    }
    Error::temp(format!("the connection to {host} failed while sending"))
        .why(text)
        .fix("try again")
}

/// The DATA payload: CRLF line ends as SMTP requires (messages piped from Unix tools often
/// have bare LF), without the final line break, which lettre adds back with the "." line.
fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes() {
        for (text, code) in [
            (
                "permanent error (535): 5.7.139 Authentication unsuccessful",
                Some("5.7.139"),
            ),
            ("permanent error (550): 5.1.1 User unknown", Some("5.1.1")),
            ("535 5.7.3 Authentication unsuccessful", Some("5.7.3")),
            (
                "421 4.7.66 TLS 1.0 and 1.1 are not supported",
                Some("4.7.66"),
            ),
            ("version 1.2.3.4 is not a code", None),
            ("no code", None),
        ] {
            assert_eq!(enhanced_code(text).as_deref(), code, "{text}");
        }
    }

    #[test]
    fn data_has_crlf_and_no_final_break() {
        for (input, expected) in [
            (&b"a\nb\n"[..], &b"a\r\nb"[..]),
            (b"a\r\nb\r\n", b"a\r\nb"),
            (b"a\r\nb", b"a\r\nb"),
            (b"\n", b""),
        ] {
            assert_eq!(data(input), expected);
        }
    }
}
