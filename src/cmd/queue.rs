//! `mailer queue list|run|purge`: the outbox (SPEC section 7).
//!
//! `run` is for cron: it sends queued messages oldest first over one connection per
//! transport, removes each only after the server accepted it, moves permanent failures to
//! `failed/`, keeps going past a bad message, and reports counts. One run at a time per
//! profile; a second one finds the lock taken and leaves.

use super::send::{dedupe, queueable};
use super::{Loaded, Out, fmt_time};
use crate::auth::Account;
use crate::cli::{Global, QueueCommand};
use crate::config::Transport as Kind;
use crate::error::{Error, Exit, Result};
use crate::message::{self, Raw};
use crate::outbox::{Entry, Outbox};
use crate::store::{ProfileLock, Store};
use crate::transport::{AnyTransport, Content, Outgoing, Transport};

pub async fn run(g: &Global, q: QueueCommand) -> Result<()> {
    let loaded = Loaded::new(g)?;
    let outbox = Outbox::new(&loaded.name)?;
    let out = Out::new(g);
    match q {
        QueueCommand::List => list(&out, &outbox),
        QueueCommand::Purge { failed } => {
            let n = outbox.purge(!failed, true)?;
            if out.json {
                out.print_json(&serde_json::json!({ "purged": n }));
            }
            out.say(format!(
                "purged {n} message{}",
                if n == 1 { "" } else { "s" }
            ));
            Ok(())
        }
        QueueCommand::Run => send_all(&out, &loaded.account()?, &outbox).await,
    }
}

fn list(out: &Out, outbox: &Outbox) -> Result<()> {
    let (queued, failed) = (outbox.queued()?, outbox.failed()?);
    if out.json {
        out.print_json(&serde_json::json!({
            "queued": queued.iter().map(Entry::summary).collect::<Vec<_>>(),
            "failed": failed.iter().map(Entry::summary).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if queued.is_empty() && failed.is_empty() {
        eprintln!("The outbox is empty ({}).", outbox.dir().display());
        return Ok(());
    }
    for (title, entries) in [("queued", &queued), ("failed", &failed)] {
        if entries.is_empty() {
            continue;
        }
        println!("{title} ({}):", entries.len());
        for e in entries.iter() {
            println!(
                "  {}  {}  {:?} to {}",
                e.id,
                fmt_time(e.created),
                e.subject,
                e.recipients.join(", ")
            );
            let note = e.reason.as_ref().or(e.last_error.as_ref());
            if let Some(n) = note {
                println!(
                    "      {} attempt{}: {n}",
                    e.attempts,
                    if e.attempts == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(())
}

/// The message of an outbox entry, ready for a transport.
fn outgoing(entry: &Entry, acct: &Account) -> Result<Outgoing> {
    let raw = Raw::parse(entry.bytes()?)?;
    let mut recipients = entry
        .recipients
        .iter()
        .map(|r| message::parse_mailbox(r, "a queued recipient"))
        .collect::<Result<Vec<_>>>()?;
    dedupe(&mut recipients);
    Ok(Outgoing {
        sender: super::profile_mailbox(&acct.name, &acct.profile)?,
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

async fn send_all(out: &Out, acct: &Account, outbox: &Outbox) -> Result<()> {
    // Its own directory: profile names cannot contain '/', so no profile lock collides.
    let Some(_lock) = ProfileLock::try_acquire(&format!("outbox/{}", acct.name))? else {
        out.say("another `mailer queue run` is working on this outbox; nothing to do");
        return Ok(());
    };
    let entries = outbox.queued()?;
    let total = entries.len();
    let store = Store::open(acct.profile.token_store, &acct.name)?;
    let mut transports: Vec<AnyTransport> = Vec::new();
    let (mut sent, mut failed) = (0usize, 0usize);
    let mut stopped: Option<Error> = None;
    for mut entry in entries {
        let kind: Kind = entry.transport.unwrap_or(acct.profile.transport);
        let result = match outgoing(&entry, acct) {
            Err(e) => Err(e),
            Ok(o) => {
                let t = match transports.iter().position(|t| t.kind() == kind) {
                    Some(i) => Ok(&mut transports[i]),
                    None => AnyTransport::open(kind, acct, &store).map(|t| {
                        transports.push(t);
                        transports.last_mut().expect("just pushed")
                    }),
                };
                match t {
                    Ok(t) => t.send(&o).await,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(_) => {
                outbox.remove(&entry.id)?;
                sent += 1;
                tracing::info!(id = %entry.id, "sent");
            }
            Err(e) if queueable(&e) => {
                entry.attempts += 1;
                entry.last_error = Some(e.what.clone());
                outbox.update(&entry)?;
                // A login that needs a human fails every message the same way: stop asking.
                if e.exit == Exit::NoPerm {
                    stopped = Some(e);
                    break;
                }
            }
            Err(e) => {
                out.say(format!(
                    "{}: permanent failure, moved to failed: {}",
                    entry.id, e.what
                ));
                outbox.fail(&mut entry, e.to_string())?;
                failed += 1;
            }
        }
    }
    for t in &mut transports {
        t.close().await;
    }
    let remaining = total - sent - failed;
    let summary = serde_json::json!({ "sent": sent, "failed": failed, "queued": remaining });
    if total == 0 {
        out.say("the outbox is empty");
    } else {
        out.say(format!(
            "queue run: sent {sent}, failed {failed}, still queued {remaining}"
        ));
    }
    let error = match stopped {
        Some(e) => e,
        None if remaining > 0 => Error::temp(format!("{remaining} message(s) could not be sent yet"))
            .fix("they stay queued; the next `mailer queue run` tries again (`mailer queue list` shows why)"),
        None => {
            if out.json {
                out.print_json(&summary);
            }
            return Ok(());
        }
    };
    Err(Error {
        json: Some(summary),
        ..error
    })
}
