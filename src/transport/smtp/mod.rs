//! SMTP with `AUTH XOAUTH2` (or `AUTH OAUTHBEARER`, RFC 7628, for custom providers)
//! through lettre.
//!
//! STARTTLS on 587 by default, implicit TLS when the profile says `tls`; certificates are
//! always verified (platform roots plus `ca_file`). For STARTTLS mailer opens the TCP
//! socket itself with TCP_NODELAY, because lettre does not set it and Nagle plus delayed
//! ACK costs two ~40 ms stalls per message; lettre then runs the session over it. One
//! connection serves every message of a run. A token the server rejects, whether by an
//! immediate 535 or by a 334 challenge (Gmail's way, which lettre 0.11 cannot answer), is
//! renewed once and tried once more ([`super::with_token`]).

mod errors;
mod transaction;

pub use errors::enhanced_code;

use super::{Attempt, Content, Outgoing, Receipt, TokenSource, Transport, with_token};
use crate::auth::Account;
use crate::config::{Sasl, SmtpSecurity};
use crate::error::{Error, Result};
use crate::explain::Fill;
use crate::secret::Secret;
use errors::{classify_auth, connection_error, quiet, unreachable};
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
    /// The XOAUTH2 `user=` (OAUTHBEARER `a=`): the logged-in mailbox.
    pub user: String,
    pub sasl: Sasl,
    /// What the token must grant to send (for messages): `SMTP.Send`, `https://mail.google.com/`.
    pub permission: &'static str,
    pub fill: Fill,
    /// How long any one server answer may take (the profile's `timeout`).
    pub timeout: Duration,
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
            sasl: acct.profile.sasl.unwrap_or_default(),
            permission: acct
                .provider
                .send_permission(&acct.profile, crate::config::TransportKind::Smtp),
            fill: acct.fill(),
            timeout: acct.profile.timeout(),
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
                // The greeting, EHLO, STARTTLS and AUTH together get one `timeout`.
                tokio::time::timeout(s.timeout, authenticate(s, token))
                    .await
                    .map_err(|_| quiet(s, s.timeout))?
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
    let mut c = tokio::time::timeout(s.timeout, open(s))
        .await
        .map_err(|_| quiet(s, s.timeout))??;
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
    let result = match s.sasl {
        Sasl::Xoauth2 => {
            let creds = Credentials::new(s.user.clone(), token.expose().to_owned());
            c.auth(&[Mechanism::Xoauth2], &creds).await.map(|_| None)
        }
        Sasl::Oauthbearer => oauthbearer(&mut c, s, &token).await,
    };
    match result {
        Ok(None) => Ok(Attempt::Done(c)),
        // OAUTHBEARER's error challenge, answered: the server refused the token.
        Ok(Some(challenge)) => {
            c.abort().await;
            Ok(Attempt::Rejected(errors::token_rejected(
                s, challenge, None,
            )))
        }
        Err(e) => {
            c.abort().await;
            classify_auth(s, &e)
        }
    }
}

/// `AUTH OAUTHBEARER` (RFC 7628 section 3.1), which lettre does not know: the GS2 header
/// names the mailbox, then host, port and the bearer token. A refusal comes as a 334
/// challenge with a JSON status, which the client must answer with a lone %x01 before the
/// server says 535 (section 3.2.3). `Some(status)` is such a refusal.
async fn oauthbearer(
    c: &mut AsyncSmtpConnection,
    s: &Settings,
    token: &Secret,
) -> std::result::Result<Option<String>, SmtpError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let user = s.user.replace('=', "=3D").replace(',', "=2C");
    let initial = b64.encode(format!(
        "n,a={user},\x01host={}\x01port={}\x01auth=Bearer {}\x01\x01",
        s.host,
        s.port,
        token.expose()
    ));
    let response = c
        .command(Line(format!("AUTH OAUTHBEARER {initial}")))
        .await?;
    if !response.has_code(334) {
        return Ok(None);
    }
    let status = response
        .first_line()
        .and_then(|l| b64.decode(l.trim()).ok())
        .and_then(|j| serde_json::from_slice::<serde_json::Value>(&j).ok())
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "a challenge".into());
    // The dummy response; the server's 535 that follows is the expected end.
    let _ = c.command(Line("AQ==".into())).await;
    Ok(Some(status))
}

/// One command line as given; its text holds a token, so it is never logged.
struct Line(String);

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

impl Transport for Smtp<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        let bytes = transaction::data(&match &out.content {
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
        self.ensure().await?;
        let conn = self.conn.as_mut().expect("connected by ensure");
        match transaction::transmit(conn, &self.s, &envelope, &bytes).await {
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
                // A session that failed mid-transaction is not reused: its state is unknown.
                self.conn = None;
                Err(e)
            }
        }
    }

    async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}
