//! `queue run`: what waits in the outbox, sent oldest first over one connection per
//! transport, each message settled by the one rule of [`super::Delivery`].

use super::{Attempted, Delivery, Failure, Outcome, Permanent};
use crate::auth::Account;
use crate::error::{Error, Result};
use crate::message::{self, Raw};
use crate::outbox::{Entry, OutboxLock};
use crate::transport::{Content, Outgoing};

/// What one `queue run` did.
#[derive(Debug, Default)]
pub struct Flush {
    pub sent: usize,
    pub failed: usize,
    pub remaining: usize,
    /// Why the run stopped early (a login that a person must renew fails every message).
    pub stopped: Option<Error>,
}

impl Delivery<'_> {
    /// Sends the queued messages oldest first, each settled by the rule of [`Self::settle`]
    /// with permanent failures held in `failed/` (nobody is watching a cron run); a login
    /// that needs a person, or a token store that cannot be reached, stops the run, since
    /// every message after would fail the same way.
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
            let attempt = match queued_message(&entry, self.acct) {
                Ok(o) => {
                    self.attempt_or_fall_back(kind, self.acct.profile.fallback, &o)
                        .await
                }
                Err(e) => Attempted {
                    result: Err(e),
                    via: kind,
                    fallback: None,
                },
            };
            match self.settle(claim, &mut entry, attempt, Permanent::Hold)? {
                Outcome::Sent { .. } => {
                    report.sent += 1;
                    report.remaining -= 1;
                    tracing::info!(id = %entry.id, "sent");
                }
                Outcome::Queued { reason, .. } => {
                    if Failure::of(&reason).stops_a_run() {
                        report.stopped = Some(reason);
                        break;
                    }
                }
                Outcome::Failed { failure, error } => {
                    match failure {
                        Failure::Unconfirmed => {
                            self.printer.warn(format!("{}: {}", entry.id, error.what))
                        }
                        _ => self.printer.say(format!(
                            "{}: permanent failure, moved to failed: {}",
                            entry.id, error.what
                        )),
                    }
                    report.failed += 1;
                    report.remaining -= 1;
                }
            }
        }
        Ok(report)
    }
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
