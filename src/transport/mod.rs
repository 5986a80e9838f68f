//! Transports: how a message leaves (SPEC section 6). One trait, one file per transport,
//! and one variant of [`AnyTransport`] each (plus its name in `config::Transport`).
//!
//! A transport owns its connection and its retries, and asks [`crate::auth`] for tokens
//! (refreshing once when the server rejects one). It never decides what the message is:
//! that is [`crate::message`]'s job, done before any transport is opened.

pub mod graph;
pub mod smtp;

use crate::auth::Account;
use crate::config::Transport as Kind;
use crate::error::Result;
use crate::message::{Draft, Raw};
use crate::store::Store;
use lettre::message::Mailbox;

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
    /// Taken whole from stdin: sent as MIME by both.
    Raw(Raw),
}

impl Outgoing {
    /// The mailbox the message is sent as: `--from` when given, else the sender.
    pub fn from_mailbox(&self) -> &Mailbox {
        self.send_as.as_ref().unwrap_or(&self.sender)
    }
}

/// What the server said when it accepted a message.
#[derive(Debug, Default, Clone)]
pub struct Receipt {
    pub message_id: Option<String>,
    /// Graph's `request-id`, for support tickets.
    pub request_id: Option<String>,
    /// SMTP's final reply, e.g. "2.0.0 OK queued as 1234".
    pub reply: Option<String>,
}

/// One way of sending. Single-threaded runtime: futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt>;
    /// Ends the session politely (SMTP QUIT); errors are of no interest by then.
    async fn close(&mut self);
}

pub enum AnyTransport<'a> {
    Graph(graph::Graph<'a>),
    Smtp(Box<smtp::Smtp<'a>>),
}

impl<'a> AnyTransport<'a> {
    pub fn open(kind: Kind, acct: &'a Account, store: &'a Store) -> Result<AnyTransport<'a>> {
        Ok(match kind {
            Kind::Graph => AnyTransport::Graph(graph::Graph::new(acct, store)?),
            Kind::Smtp => AnyTransport::Smtp(Box::new(smtp::Smtp::new(acct, store)?)),
        })
    }

    pub fn kind(&self) -> Kind {
        match self {
            AnyTransport::Graph(_) => Kind::Graph,
            AnyTransport::Smtp(_) => Kind::Smtp,
        }
    }
}

impl Transport for AnyTransport<'_> {
    async fn send(&mut self, out: &Outgoing) -> Result<Receipt> {
        match self {
            AnyTransport::Graph(t) => t.send(out).await,
            AnyTransport::Smtp(t) => t.send(out).await,
        }
    }
    async fn close(&mut self) {
        match self {
            AnyTransport::Graph(t) => t.close().await,
            AnyTransport::Smtp(t) => t.close().await,
        }
    }
}
