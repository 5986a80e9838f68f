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
//! through the fallback: twice is as wrong as never. `queue run` sends what waits ([`Delivery::flush`]) over one
//! connection per transport. Commands print outcomes; nothing here prints a result.

use crate::auth::Account;
use crate::config::TransportKind;
use crate::error::{Class, Error, Result};
use crate::message::{self, Raw};
use crate::outbox::{Claim, Entry, Outbox, OutboxLock};
use crate::output::Printer;
use crate::transport::{AnyTransport, Content, Outgoing, Receipt, Transport};

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

/// What a failed attempt means for the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The message itself is wrong: no retry can help.
    BadData,
    /// The service refused, or the setup is wrong: retrying the same way will not help.
    Permanent,
    /// The network, a server error, throttling: later may work.
    Temporary,
    /// A person must log in again; then it will work.
    LoginNeeded,
    /// The server had the whole message when the connection broke, before it answered:
    /// it may have been delivered. Sending it again could deliver it twice, so it is held
    /// among the failed messages for a person to check (`mailer queue retry ID`).
    Unconfirmed,
}

impl Failure {
    pub fn of(e: &Error) -> Failure {
        if e.unconfirmed {
            return Failure::Unconfirmed;
        }
        match e.class {
            Class::Temporary => Failure::Temporary,
            Class::LoginNeeded => Failure::LoginNeeded,
            Class::Usage | Class::BadData | Class::NoInput => Failure::BadData,
            _ => Failure::Permanent,
        }
    }

    /// Worth keeping the message for a later attempt.
    pub fn keeps(self) -> bool {
        matches!(self, Failure::Temporary | Failure::LoginNeeded)
    }
}

/// What one `queue run` did.
#[derive(Debug, Default)]
pub struct Flush {
    pub sent: usize,
    pub failed: usize,
    pub remaining: usize,
    /// Why the run stopped early (a login that a person must renew fails every message).
    pub stopped: Option<Error>,
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
        let ahead = match req.queue {
            true => self.write_ahead(req, kind)?,
            false => None,
        };
        let (result, via, fallback) = self
            .attempt_or_fall_back(kind, req.fallback, &req.outgoing)
            .await;
        let Some((claim, mut entry)) = ahead else {
            return Ok(match result {
                Ok(receipt) => Outcome::Sent {
                    transport: via,
                    receipt,
                    fallback,
                },
                Err(error) => Outcome::Failed {
                    failure: Failure::of(&error),
                    error,
                },
            });
        };
        match result {
            Ok(receipt) => {
                self.outbox.remove(claim)?;
                Ok(Outcome::Sent {
                    transport: via,
                    receipt,
                    fallback,
                })
            }
            Err(error) if Failure::of(&error).keeps() => {
                entry.attempts = 1;
                entry.last_error = Some(error.what.clone());
                self.outbox.update(&claim, &entry)?;
                Ok(Outcome::Queued {
                    id: entry.id,
                    reason: error,
                })
            }
            Err(error) if error.unconfirmed => {
                let error = held(error, &entry.id);
                self.outbox.fail(claim, &mut entry, error.what.clone())?;
                Ok(Outcome::Failed {
                    failure: Failure::Unconfirmed,
                    error,
                })
            }
            Err(error) => {
                self.outbox.remove(claim)?;
                Ok(Outcome::Failed {
                    failure: Failure::of(&error),
                    error,
                })
            }
        }
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
    async fn attempt_or_fall_back(
        &mut self,
        kind: TransportKind,
        fallback: Option<TransportKind>,
        o: &Outgoing,
    ) -> (Result<Receipt>, TransportKind, Option<Fallback>) {
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
                (second, other, note)
            }
            (result, _) => (result, kind, None),
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

    /// Sends the queued messages oldest first; each is removed once accepted, permanent
    /// failures move to `failed/`, and a login that needs a person stops the run.
    pub async fn flush(&mut self, _lock: &OutboxLock) -> Result<Flush> {
        let entries = self.outbox.queued()?;
        let mut report = Flush {
            remaining: entries.len(),
            ..Flush::default()
        };
        for mut entry in entries {
            // Written ahead by a send that is still sending it: not ours to touch.
            let Some(claim) = self.outbox.claim(&entry)? else {
                report.remaining -= 1;
                continue;
            };
            let kind = entry.transport.unwrap_or(self.acct.profile.transport);
            let fallback = self.acct.profile.fallback;
            let result = match queued_message(&entry, self.acct) {
                Ok(o) => self.attempt_or_fall_back(kind, fallback, &o).await.0,
                Err(e) => Err(e),
            };
            match result {
                Ok(_) => {
                    self.outbox.remove(claim)?;
                    report.sent += 1;
                    report.remaining -= 1;
                    tracing::info!(id = %entry.id, "sent");
                }
                Err(e) if Failure::of(&e).keeps() => {
                    entry.attempts += 1;
                    entry.last_error = Some(e.what.clone());
                    self.outbox.update(&claim, &entry)?;
                    if Failure::of(&e) == Failure::LoginNeeded {
                        report.stopped = Some(e);
                        break;
                    }
                }
                Err(e) if e.unconfirmed => {
                    let e = held(e, &entry.id);
                    self.printer.warn(format!("{}: {}", entry.id, e.what));
                    self.outbox.fail(claim, &mut entry, e.what.clone())?;
                    report.failed += 1;
                    report.remaining -= 1;
                }
                Err(e) => {
                    self.printer.say(format!(
                        "{}: permanent failure, moved to failed: {}",
                        entry.id, e.what
                    ));
                    self.outbox.fail(claim, &mut entry, e.to_string())?;
                    report.failed += 1;
                    report.remaining -= 1;
                }
            }
        }
        Ok(report)
    }

    pub async fn close(mut self) {
        for t in &mut self.open {
            t.close().await;
        }
    }
}

/// An unconfirmed delivery as the outbox keeps it: among the failed, with what to check.
fn held(e: Error, id: &str) -> Error {
    let what = format!("{} (the message may have been delivered)", e.what);
    Error { what, ..e }
        .fix(format!("check the recipient's mailbox or your Sent folder; if it did not arrive, send it again: mailer queue retry {id}"))
}

/// The message of an outbox entry, ready for a transport.
fn queued_message(entry: &Entry, acct: &Account) -> Result<Outgoing> {
    let raw = Raw::parse(entry.bytes()?)?;
    let mut recipients = entry
        .recipients
        .iter()
        .map(|r| message::parse_mailbox(r, "a queued recipient"))
        .collect::<Result<Vec<_>>>()?;
    message::dedupe(&mut recipients);
    Ok(Outgoing {
        sender: acct.mailbox()?,
        recipients,
        message_id: raw.message_id.clone(),
        content: Content::Raw(raw),
        send_as: entry
            .send_as
            .as_deref()
            .map(|s| message::parse_mailbox(s, "a queued sender"))
            .transpose()?,
        no_save_sent: entry.no_save_sent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_by_class() {
        for (class, failure, keeps) in [
            (Class::Temporary, Failure::Temporary, true),
            (Class::LoginNeeded, Failure::LoginNeeded, true),
            (Class::BadData, Failure::BadData, false),
            (Class::NoInput, Failure::BadData, false),
            (Class::Refused, Failure::Permanent, false),
            (Class::Config, Failure::Permanent, false),
        ] {
            let f = Failure::of(&Error::new(class, "x"));
            assert_eq!((f, f.keeps()), (failure, keeps), "{class:?}");
        }
    }
}
