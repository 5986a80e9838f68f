//! SMTP with `AUTH XOAUTH2` through lettre (SPEC section 6).
//!
//! STARTTLS on 587 by default, implicit TLS when the profile says `tls`; certificates are
//! always verified (platform roots plus `ca_file`). For STARTTLS mailer opens the TCP
//! socket itself with TCP_NODELAY, because lettre does not set it and Nagle plus delayed
//! ACK costs two ~40 ms stalls per message (FACTS.md); lettre then runs the session over it.
//! One connection serves every message of a run. A token the server rejects, whether by an
//! immediate 535 or by a 334 challenge, is refreshed once and tried once more.

use super::{Content, Outgoing, Receipt, Transport};
use crate::auth::{self, Account};
use crate::config::{SmtpSecurity, Transport as Kind};
use crate::error::{Error, Exit, Result};
use crate::store::Store;
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Smtp<'a> {
    acct: &'a Account,
    store: &'a Store,
    host: String,
    port: u16,
    security: SmtpSecurity,
    tls: TlsParameters,
    hello: ClientId,
    conn: Option<AsyncSmtpConnection>,
}

/// Why a connection attempt failed.
enum Failure {
    /// The server rejected the token: worth one refresh.
    TokenRejected(String),
    Other(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Other(e)
    }
}

impl<'a> Smtp<'a> {
    pub fn new(acct: &'a Account, store: &'a Store) -> Result<Smtp<'a>> {
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
        Ok(Smtp {
            acct,
            store,
            host,
            port: e.smtp_port,
            security: e.smtp_security,
            tls,
            hello: ClientId::default(),
            conn: None,
        })
    }

    async fn open(&self) -> Result<AsyncSmtpConnection> {
        let io = |e: SmtpError| self.connection_error(&e);
        match self.security {
            SmtpSecurity::Starttls => {
                let tcp = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio::net::TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| self.unreachable("timed out"))?
                .map_err(|e| self.unreachable(&e.to_string()))?;
                tcp.set_nodelay(true)
                    .map_err(|e| self.unreachable(&e.to_string()))?;
                let mut c = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(io)?;
                if !c.can_starttls() {
                    return Err(Error::new(Exit::Unavailable, format!("{}:{} does not offer STARTTLS", self.host, self.port))
                        .why("mailer never sends a token over an unencrypted connection")
                        .fix("check --smtp-host/--smtp-port, or use --smtp-security tls for implicit TLS"));
                }
                c.starttls(self.tls.clone(), &self.hello)
                    .await
                    .map_err(io)?;
                Ok(c)
            }
            // Exchange Online offers no implicit TLS; other servers do, and for them
            // lettre's own socket is good enough.
            SmtpSecurity::Tls => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(CONNECT_TIMEOUT),
                &self.hello,
                Some(self.tls.clone()),
                None,
            )
            .await
            .map_err(io),
        }
    }

    /// Connects and authenticates with the cached token, or a fresh one with `force`.
    async fn connect(&mut self, force: bool) -> std::result::Result<AsyncSmtpConnection, Failure> {
        let token = auth::access_token(self.acct, self.store, Kind::Smtp, force).await?;
        let mut c = self.open().await?;
        let creds = Credentials::new(
            self.acct.profile.user.clone(),
            token.token.expose().to_owned(),
        );
        match c.auth(&[Mechanism::Xoauth2], &creds).await {
            Ok(_) => Ok(c),
            Err(e) => {
                c.abort().await;
                Err(self.classify_auth(&e))
            }
        }
    }

    fn classify_auth(&self, e: &SmtpError) -> Failure {
        let text = e.to_string();
        if text.contains("5.7.139") {
            return Failure::Other(
                Error::new(Exit::Unavailable, "SMTP AUTH is disabled for this mailbox or tenant (535 5.7.139)")
                    .why(text)
                    .fix("an Exchange admin can enable it (Set-CASMailbox -Identity USER -SmtpClientAuthenticationDisabled $false, or the tenant-wide Set-TransportConfig); or send with --transport graph"),
            );
        }
        let rejected_535 = e.is_permanent() && e.status().is_some_and(|c| c.to_string() == "535");
        // A 334 challenge (Gmail style) shows up as a client error: lettre 0.11 cannot
        // answer it. Either way the server said no to this token.
        let rejected_334 = e.is_client() && text.contains("challenge");
        if rejected_535 || rejected_334 {
            Failure::TokenRejected(text)
        } else if e.is_transient() {
            Failure::Other(
                Error::temp(format!("{} deferred the login", self.host))
                    .why(text)
                    .fix("try again later"),
            )
        } else {
            Failure::Other(self.connection_error(e))
        }
    }

    /// A live, authenticated connection: reuse, else connect, else refresh once and retry.
    async fn ensure(&mut self) -> Result<()> {
        if self.conn.as_ref().is_some_and(|c| !c.has_broken()) {
            return Ok(());
        }
        let conn = match self.connect(false).await {
            Ok(c) => c,
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::TokenRejected(first)) => {
                tracing::info!("the SMTP server rejected the token ({first}); refreshing once");
                match self.connect(true).await {
                    Ok(c) => c,
                    Err(Failure::Other(e)) => return Err(e),
                    Err(Failure::TokenRejected(second)) => {
                        return Err(Error::login_needed(format!("{} rejected the access token twice, the second one freshly issued", self.host))
                            .why(second)
                            .fix(format!("check that the app has the SMTP.Send permission and {} may use SMTP AUTH, then log in again: {}", self.acct.profile.user, self.acct.login_command())));
                    }
                }
            }
        };
        self.conn = Some(conn);
        Ok(())
    }

    fn unreachable(&self, why: &str) -> Error {
        Error::temp(format!(
            "cannot connect to the SMTP server {}:{}",
            self.host, self.port
        ))
        .why(why.to_owned())
        .fix("check the network, firewall (outbound port 587) and --smtp-host/--smtp-port")
    }

    fn connection_error(&self, e: &SmtpError) -> Error {
        let text = e.to_string();
        if e.is_tls() {
            return Error::new(Exit::Unavailable, format!("the TLS handshake with {} failed", self.host))
                .why(text)
                .fix("if a proxy inspects TLS, add its root certificate with --ca-file; check --smtp-host");
        }
        if e.is_transient() || !(e.is_permanent() || e.is_client()) {
            return self.unreachable(&text);
        }
        Error::new(
            Exit::Unavailable,
            format!("{} refused the session", self.host),
        )
        .why(text)
        .fix("check --smtp-host and --smtp-port")
    }
}

impl Transport for Smtp<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        let bytes = data(&match &out.content {
            Content::Built(d) => d
                .to_mime(&out.sender, out.message_id.as_deref().unwrap_or_default())?
                .formatted(),
            // Bcc names must not reach the recipients: SMTP delivers the bytes as they are.
            Content::Raw(raw) => raw.without_bcc(),
        });
        let envelope = Envelope::new(
            Some(out.from_mailbox().email.clone()),
            out.recipients.iter().map(|m| m.email.clone()).collect(),
        )
        .map_err(|e| {
            Error::new(Exit::DataErr, format!("invalid envelope: {e}"))
                .fix("name at least one recipient")
        })?;
        self.ensure().await?;
        let conn = self.conn.as_mut().expect("ensure connected");
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
                Err(send_error(&self.host, &e))
            }
        }
    }

    async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}

fn send_error(host: &str, e: &SmtpError) -> Error {
    let text = e.to_string();
    if e.is_transient() {
        return Error::temp(format!("{host} deferred the message"))
            .why(text)
            .fix("try again later");
    }
    if e.is_permanent() {
        // 5.1.x: the address is wrong (bad data); 5.7.x and the rest: refused by policy.
        let (exit, what, fix) =
            if text.contains(" 5.1.") || text.contains("(550)") && text.contains("5.1.") {
                (
                    Exit::DataErr,
                    "a recipient was rejected",
                    "check the recipient addresses",
                )
            } else {
                (
                    Exit::Unavailable,
                    "the server refused the message",
                    "read the server's reason above; an admin can tell why it was refused",
                )
            };
        return Error::new(exit, format!("{host}: {what}"))
            .why(text)
            .fix(fix);
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
