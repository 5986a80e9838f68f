//! Transports: how a message leaves. One trait, one file per transport, one arm of
//! [`AnyTransport`] each (plus its name in [`TransportKind`]).
//!
//! A transport owns its connection and its retries. It gets tokens from a [`TokenSource`]
//! and knows nothing of accounts, stores or refresh tokens; when its server rejects a token,
//! [`with_token`] asks the source for a new one and tries once more, the same way for every
//! transport. It never decides what the message is (that is [`crate::message`]'s job, done
//! before any transport opens) nor what happens when it fails ([`crate::deliver`]'s).

pub mod gmail;
pub mod graph;
pub mod smtp;

use crate::auth::Account;
pub use crate::config::TransportKind;
use crate::error::{Error, Result};
use crate::message::{Draft, Raw};
use crate::output::Printer;
use crate::secret::Secret;
use crate::tokens::Tokens;
use lettre::message::Mailbox;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// What to send and to whom.
pub struct Outgoing {
    /// The logged-in mailbox: XOAUTH2 user, default From and envelope sender.
    pub sender: Mailbox,
    /// The envelope recipients (To, Cc and Bcc together).
    pub recipients: Vec<Mailbox>,
    pub content: Content,
    pub message_id: Option<String>,
    /// `--from`: send as / on behalf of this mailbox.
    pub send_as: Option<Mailbox>,
    /// `--no-save-sent` (Graph `saveToSentItems=false`).
    pub no_save_sent: bool,
}

pub enum Content {
    /// Built from flags: Graph sends it as JSON, SMTP as lettre's MIME.
    Built(Box<Draft>),
    /// Taken whole from stdin or the outbox: sent as MIME by both.
    Raw(Raw),
}

impl Outgoing {
    /// The mailbox the message is sent as: `--from` when given, else the sender.
    pub fn from_mailbox(&self) -> &Mailbox {
        self.send_as.as_ref().unwrap_or(&self.sender)
    }

    /// The complete RFC 5322 bytes, as SMTP and the outbox carry them.
    pub fn mime(&self) -> Result<Vec<u8>> {
        Ok(match &self.content {
            Content::Built(d) => d
                .to_mime(&self.sender, self.message_id.as_deref().unwrap_or_default())?
                .formatted(),
            Content::Raw(r) => r.bytes.clone(),
        })
    }

    pub fn subject(&self) -> String {
        match &self.content {
            Content::Built(d) => d.subject.clone(),
            Content::Raw(r) => r.subject.clone().unwrap_or_default(),
        }
    }
}

/// What the server said when it accepted a message.
#[derive(Debug, Default, Clone)]
pub struct Receipt {
    pub message_id: Option<String>,
    /// Graph's `request-id`, for support tickets.
    pub request_id: Option<String>,
    /// SMTP's final reply, e.g. "250 2.0.0 OK queued as 1234".
    pub reply: Option<String>,
}

/// One way of sending. Single-threaded runtime: futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt>;
    /// Ends the session politely (SMTP QUIT); errors are of no interest by then.
    async fn close(&mut self);
}

pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Secret>> + 'a>>;

/// Where a transport gets its access tokens.
pub trait TokenSource {
    /// A token: the current one, or a new one after [`TokenSource::rejected`].
    fn token(&mut self) -> TokenFuture<'_>;
    /// The server refused the last token: the next one must be newly issued.
    fn rejected(&mut self);
}

/// How one use of a token went.
pub enum Attempt<T> {
    Done(T),
    /// The server refused the token; the error is what to report if a fresh token is
    /// refused as well.
    Rejected(Error),
}

/// Runs `op` with a token; when the server rejects it, gets a newly issued token and runs
/// `op` once more. A token that was valid a moment ago can be refused (revoked, or the
/// server's clock differs), and one retry with a fresh token is what a person would do.
pub async fn with_token<T>(
    source: &mut dyn TokenSource,
    mut op: impl AsyncFnMut(Secret) -> Result<Attempt<T>>,
) -> Result<T> {
    let token = source.token().await?;
    match op(token).await? {
        Attempt::Done(v) => Ok(v),
        Attempt::Rejected(first) => {
            tracing::info!(
                "the server rejected the token ({}); renewing it once",
                first.what
            );
            source.rejected();
            let token = source.token().await?;
            match op(token).await? {
                Attempt::Done(v) => Ok(v),
                Attempt::Rejected(second) => Err(second),
            }
        }
    }
}

pub enum AnyTransport<'a> {
    Graph(graph::Graph<'a>),
    Smtp(Box<smtp::Smtp<'a>>),
    Gmail(gmail::Gmail<'a>),
}

impl<'a> AnyTransport<'a> {
    pub fn open(
        kind: TransportKind,
        acct: &'a Account,
        printer: &Printer,
    ) -> Result<AnyTransport<'a>> {
        let tokens = Box::new(Tokens::new(acct, kind));
        Ok(match kind {
            TransportKind::Graph => AnyTransport::Graph(graph::Graph::new(
                graph::Settings::of(acct, *printer)?,
                tokens,
            )),
            TransportKind::Smtp => AnyTransport::Smtp(Box::new(smtp::Smtp::new(
                smtp::Settings::of(acct)?,
                tokens,
            )?)),
            TransportKind::Gmail => AnyTransport::Gmail(gmail::Gmail::new(
                gmail::Settings::of(acct, *printer)?,
                tokens,
            )),
        })
    }

    pub fn kind(&self) -> TransportKind {
        match self {
            AnyTransport::Graph(_) => TransportKind::Graph,
            AnyTransport::Smtp(_) => TransportKind::Smtp,
            AnyTransport::Gmail(_) => TransportKind::Gmail,
        }
    }
}

impl Transport for AnyTransport<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        match self {
            AnyTransport::Graph(t) => t.send(out).await,
            AnyTransport::Smtp(t) => t.send(out).await,
            AnyTransport::Gmail(t) => t.send(out).await,
        }
    }
    async fn close(&mut self) {
        match self {
            AnyTransport::Graph(t) => t.close().await,
            AnyTransport::Smtp(t) => t.close().await,
            AnyTransport::Gmail(t) => t.close().await,
        }
    }
}

/// A response header as text.
pub(crate) fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// How long to wait before retrying a throttled HTTP request: `Retry-After` when given,
/// else exponential; plus up to 250 ms of jitter so that
/// throttled clients do not return in lockstep.
pub(crate) fn backoff(retry_after: Option<u64>, attempt: u32) -> Duration {
    let base = Duration::from_secs(retry_after.unwrap_or(1u64 << attempt.min(5)).min(60));
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 250)
        .unwrap_or(0);
    base + Duration::from_millis(u64::from(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting {
        issued: u32,
        rejected: u32,
    }

    impl TokenSource for Counting {
        fn token(&mut self) -> TokenFuture<'_> {
            self.issued += 1;
            let n = self.issued;
            Box::pin(async move { Ok(Secret::new(format!("t{n}"))) })
        }
        fn rejected(&mut self) {
            self.rejected += 1;
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_rejected_token_is_renewed_once() {
        let mut src = Counting {
            issued: 0,
            rejected: 0,
        };
        let got = run(with_token(&mut src, async |t: Secret| {
            Ok(match t.expose() {
                "t1" => Attempt::Rejected(Error::login_needed("no")),
                other => Attempt::Done(other.to_owned()),
            })
        }))
        .unwrap();
        assert_eq!((got.as_str(), src.issued, src.rejected), ("t2", 2, 1));

        let mut src = Counting {
            issued: 0,
            rejected: 0,
        };
        let err = run(with_token(&mut src, async |_t: Secret| {
            Ok::<Attempt<()>, Error>(Attempt::Rejected(Error::login_needed("still no")))
        }))
        .unwrap_err();
        assert_eq!((err.what.as_str(), src.issued), ("still no", 2));
    }

    #[test]
    fn backoff_is_bounded() {
        assert!(backoff(Some(2), 0) >= Duration::from_secs(2));
        assert!(backoff(Some(2), 0) < Duration::from_millis(2250));
        assert!(backoff(Some(99_999), 0) <= Duration::from_millis(60_250));
        assert!(backoff(None, 10) <= Duration::from_millis(32_250));
    }
}
