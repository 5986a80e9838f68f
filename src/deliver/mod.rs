//! Delivery: from a built message, its envelope and the resolved profile to a typed
//! [`Outcome`]. The one place that decides which transport sends, what a failure means
//! ([`Failure`]), and whether a message waits in the outbox.
//!
//! With queueing on (`send --queue`, `queue = true`, always for sendmail) a message is
//! written to the outbox *before* the first attempt, so a crash at any instant leaves it
//! queued or sent; it is removed once the server accepted it, kept on a temporary failure
//! or a login that a person will renew, and dropped on a permanent one, which is reported
//! as the error it is. A delivery the server may have taken without saying so
//! ([`Failure::Unconfirmed`]) is held among the failed and never resent by itself, nor
//! through the fallback: twice is as wrong as never. `queue run` sends what waits
//! ([`Delivery::flush`], in `flush.rs`) over one connection per transport; what a failure
//! means is `failure.rs`'s. Commands print outcomes; nothing here prints a result.

mod failure;
mod flush;

pub use failure::Failure;
pub use flush::Flush;

use crate::auth::Account;
use crate::config::TransportKind;
use crate::error::{Error, Result};
use crate::outbox::{Claim, Entry, Outbox};
use crate::output::Printer;
use crate::transport::{AnyTransport, Outgoing, Receipt, Transport};
use failure::held;

/// One message to deliver.
pub struct Request {
    pub outgoing: Outgoing,
    /// `--transport`: instead of the profile's.
    pub transport: Option<TransportKind>,
    /// Keep the message in the outbox when it cannot be sent now.
    pub queue: bool,
    /// Where to send when the transport refuses for a reason of its own.
    pub fallback: Option<TransportKind>,
}

/// A delivery that went through the other transport, and why.
#[derive(Debug, Clone)]
pub struct Fallback {
    pub from: TransportKind,
    pub reason: String,
}

pub enum Outcome {
    Sent {
        transport: TransportKind,
        receipt: Receipt,
        fallback: Option<Fallback>,
    },
    /// Not sent yet: waiting in the outbox for `queue run`.
    Queued {
        id: String,
        reason: Error,
    },
    Failed {
        failure: Failure,
        error: Error,
    },
}

/// One attempt's result, with the transport that made it and the fallback it took.
pub(crate) struct Attempted {
    pub(crate) result: Result<Receipt>,
    pub(crate) via: TransportKind,
    pub(crate) fallback: Option<Fallback>,
}

impl Attempted {
    fn outcome(self) -> Outcome {
        match self.result {
            Ok(receipt) => Outcome::Sent {
                transport: self.via,
                receipt,
                fallback: self.fallback,
            },
            Err(error) => Outcome::Failed {
                failure: Failure::of(&error),
                error,
            },
        }
    }
}

/// What a permanent failure does to the outbox copy of a message.
#[derive(Clone, Copy)]
pub(crate) enum Permanent {
    /// Removed: the command reports the error to the person who ran it.
    Drop,
    /// Moved to `failed/`, for `queue list` and a person to look at later.
    Hold,
}

/// Delivers one message through the profile's (or the requested) transport.
pub async fn deliver(acct: &Account, printer: &Printer, request: &Request) -> Result<Outcome> {
    let mut d = Delivery::new(acct, printer)?;
    let outcome = d.deliver(request).await;
    d.close().await;
    outcome
}

/// Open transports of one run, reused from message to message.
pub struct Delivery<'a> {
    acct: &'a Account,
    printer: Printer,
    outbox: Outbox,
    open: Vec<AnyTransport<'a>>,
}

impl<'a> Delivery<'a> {
    pub fn new(acct: &'a Account, printer: &Printer) -> Result<Delivery<'a>> {
        Ok(Delivery {
            acct,
            printer: *printer,
            outbox: Outbox::new(&acct.name)?,
            open: Vec::new(),
        })
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub async fn deliver(&mut self, req: &Request) -> Result<Outcome> {
        let kind = req.transport.unwrap_or(self.acct.profile.transport);
        self.acct.check_transport(kind)?;
        if let Some(note) = req.outgoing.send_as.as_ref().and_then(|from| {
            let user = &self.acct.profile.user;
            self.acct.provider.send_as_note(from.email.as_ref(), user)
        }) {
            self.printer.warn(note);
        }
        // Without its outbox copy a message could be lost in a crash: not sent at all then,
        // and the caller (cron, a script) still has it.
        let ahead = match req.queue {
            true => self.write_ahead(req, kind).map_err(|e| Error {
                what: format!(
                    "not sent: the message could not be put in the outbox first: {}",
                    e.what
                ),
                ..e
            })?,
            false => None,
        };
        let attempt = self
            .attempt_or_fall_back(kind, req.fallback, &req.outgoing)
            .await;
        match ahead {
            // The person who ran the command sees a permanent failure as the error it is;
            // nobody would ever look at the copy.
            Some((claim, mut entry)) => self.settle(claim, &mut entry, attempt, Permanent::Drop),
            None => Ok(attempt.outcome()),
        }
    }

    /// What becomes of a message that has an outbox copy, after one attempt: removed once
    /// sent; kept for later on a temporary failure or a login a person will renew; held
    /// among the failed when the server may have taken it; on a permanent failure dropped
    /// or held as `permanent` says. The one rule for `send`, `sendmail` and `queue run`.
    pub(crate) fn settle(
        &self,
        claim: Claim,
        entry: &mut Entry,
        attempt: Attempted,
        permanent: Permanent,
    ) -> Result<Outcome> {
        let error = match attempt.result {
            Ok(_) => {
                self.outbox.remove(claim)?;
                return Ok(attempt.outcome());
            }
            Err(e) => e,
        };
        let failure = Failure::of(&error);
        if failure.keeps() {
            entry.attempts += 1;
            entry.last_error = Some(error.what.clone());
            self.outbox.update(&claim, entry)?;
            return Ok(Outcome::Queued {
                id: entry.id.clone(),
                reason: error,
            });
        }
        let error = match failure {
            Failure::Unconfirmed => held(error, &entry.id),
            _ => error,
        };
        match (failure, permanent) {
            (Failure::Unconfirmed, _) => self.outbox.fail(claim, entry, error.what.clone())?,
            (_, Permanent::Hold) => self.outbox.fail(claim, entry, error.to_string())?,
            (_, Permanent::Drop) => self.outbox.remove(claim)?,
        }
        Ok(Outcome::Failed { failure, error })
    }

    /// The outbox copy of a message: its complete bytes and envelope, claimed by us. Not
    /// written when a later `queue run` could never send it: the outbox holds MIME, and
    /// Graph takes MIME only up to its ~4 MB request limit (a large built message needs
    /// the draft path, from the files).
    fn write_ahead(&self, req: &Request, kind: TransportKind) -> Result<Option<(Claim, Entry)>> {
        let o = &req.outgoing;
        let bytes = o.mime()?;
        if kind == TransportKind::Graph && !crate::transport::graph::fits_mime_send(bytes.len()) {
            self.printer
                .warn("the message is too large to queue for Graph; sending it without the outbox");
            return Ok(None);
        }
        let mut entry = Entry::new(
            &bytes,
            o.subject(),
            o.recipients.iter().map(|m| m.email.to_string()).collect(),
        );
        entry.send_as = o.send_as.as_ref().map(|m| m.email.to_string());
        entry.no_save_sent = o.no_save_sent;
        entry.transport = req.transport;
        let claim = self.outbox.add(&entry)?;
        Ok(Some((claim, entry)))
    }

    /// An attempt through `kind`; when it refuses for a reason the other transport does not
    /// share (SMTP AUTH off for the tenant, no Graph mailbox, a large message without
    /// Mail.ReadWrite), one more through `fallback`. Never for a bad message or a denied
    /// send-as: those fail everywhere.
    pub(crate) async fn attempt_or_fall_back(
        &mut self,
        kind: TransportKind,
        fallback: Option<TransportKind>,
        o: &Outgoing,
    ) -> Attempted {
        let first = self.attempt(kind, o).await;
        let other = fallback.filter(|f| *f != kind && self.acct.provider.transports().contains(f));
        match (first, other) {
            (Err(e), Some(other)) if e.transport_specific => {
                self.printer.warn(format!(
                    "{kind} refused ({}); sending through {other} instead",
                    e.what
                ));
                let reason = e.what;
                let second = self.attempt(other, o).await;
                let note = second.is_ok().then_some(Fallback { from: kind, reason });
                Attempted {
                    result: second,
                    via: other,
                    fallback: note,
                }
            }
            (result, _) => Attempted {
                result,
                via: kind,
                fallback: None,
            },
        }
    }

    /// One attempt through `kind`, opening it on first use.
    async fn attempt(&mut self, kind: TransportKind, o: &Outgoing) -> Result<Receipt> {
        let i = match self.open.iter().position(|t| t.kind() == kind) {
            Some(i) => i,
            None => {
                self.open
                    .push(AnyTransport::open(kind, self.acct, &self.printer)?);
                self.open.len() - 1
            }
        };
        let turn = crate::pace::wait_turn(&self.acct.name, self.acct.profile.rate_limit()).await;
        let result = self.open[i].send(o).await;
        turn.done();
        result
    }

    pub async fn close(mut self) {
        for t in &mut self.open {
            t.close().await;
        }
    }
}
