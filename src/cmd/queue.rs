//! `mailer queue list|run|purge`: the outbox. `run` is for cron; what it does with each
//! message is [`crate::deliver::Delivery::flush`]'s. One run at a time per profile: a
//! second one finds the outbox locked and leaves.

use crate::cli::QueueCommand;
use crate::context::Context;
use crate::deliver::Delivery;
use crate::error::{Error, Result};
use crate::outbox::{Entry, Outbox};
use crate::output::{fmt_time, plural};
use serde_json::json;

pub async fn run(ctx: &Context, q: QueueCommand) -> Result<()> {
    match q {
        QueueCommand::List => list(ctx, &Outbox::new(&ctx.profile_name)?),
        QueueCommand::Purge { failed } => {
            let n = Outbox::new(&ctx.profile_name)?.purge(!failed, true)?;
            ctx.printer.json_only(&json!({ "purged": n }))?;
            ctx.printer.say(format!("purged {}", plural(n, "message")));
            Ok(())
        }
        QueueCommand::Run => flush(ctx).await,
        QueueCommand::Retry { ids } => retry(ctx, &ids),
    }
}

fn retry(ctx: &Context, ids: &[String]) -> Result<()> {
    let outbox = Outbox::new(&ctx.profile_name)?;
    let unknown = outbox.retry(ids)?;
    report_set_aside(ctx, &outbox);
    if !unknown.is_empty() {
        return Err(Error::usage(format!(
            "no failed message {} in the outbox of profile \"{}\"",
            unknown.join(", "),
            ctx.profile_name
        ))
        .fix("`mailer queue list` shows the ids of the failed messages"));
    }
    let n = ids.len();
    ctx.printer.json_only(&json!({ "requeued": n }))?;
    ctx.printer.say(format!(
        "{} back in the queue; `mailer queue run` sends {}",
        plural(n, "message"),
        if n == 1 { "it" } else { "them" }
    ));
    Ok(())
}

/// Files in the outbox that were not messages, moved aside by the read.
fn report_set_aside(ctx: &Context, outbox: &Outbox) {
    for note in outbox.take_set_aside() {
        ctx.printer.warn(note);
    }
}

fn list(ctx: &Context, outbox: &Outbox) -> Result<()> {
    let (queued, failed) = (outbox.queued()?, outbox.failed()?);
    report_set_aside(ctx, outbox);
    let json = json!({
        "queued": queued.iter().map(Entry::summary).collect::<Vec<_>>(),
        "failed": failed.iter().map(Entry::summary).collect::<Vec<_>>(),
    });
    if queued.is_empty() && failed.is_empty() {
        ctx.printer.json_only(&json)?;
        ctx.printer
            .say(format!("The outbox is empty ({}).", outbox.dir().display()));
        return Ok(());
    }
    ctx.printer.result(&json, || {
        let mut text = String::new();
        for (title, entries) in [("queued", &queued), ("failed", &failed)] {
            if !entries.is_empty() {
                text.push_str(&format!("{title} ({}):\n", entries.len()));
                entries.iter().for_each(|e| text.push_str(&line(e)));
            }
        }
        text
    })
}

fn line(e: &Entry) -> String {
    let mut text = format!(
        "  {}  {}  {:?} to {}\n",
        e.id,
        fmt_time(e.created),
        e.subject,
        e.recipients.join(", ")
    );
    if let Some(n) = e.reason.as_ref().or(e.last_error.as_ref()) {
        text.push_str(&format!(
            "      {}: {n}\n",
            plural(e.attempts as usize, "attempt")
        ));
    }
    text
}

async fn flush(ctx: &Context) -> Result<()> {
    let acct = ctx.account()?;
    let mut delivery = Delivery::new(acct, &ctx.printer)?;
    let Some(lock) = delivery.outbox().lock()? else {
        ctx.printer
            .say("another `mailer queue run` is working on this outbox; nothing to do");
        return Ok(());
    };
    let report = delivery.flush(&lock).await;
    report_set_aside(ctx, delivery.outbox());
    delivery.close().await;
    let report = report?;
    if report.failed > 0 && !ctx.interactive() {
        let detail = format!(
            "{} of profile \"{}\" failed for good and moved to the failed part of the outbox (`mailer queue list` shows why)",
            plural(report.failed, "message"),
            acct.name
        );
        crate::notify::notify(acct, crate::notify::Event::MessageFailed, &detail);
    }
    let (sent, failed, remaining) = (report.sent, report.failed, report.remaining);
    let summary = json!({ "sent": sent, "failed": failed, "queued": remaining });
    if sent + failed + remaining == 0 {
        ctx.printer.say("the outbox is empty");
    } else {
        ctx.printer.say(format!(
            "queue run: sent {sent}, failed {failed}, still queued {remaining}"
        ));
    }
    let error = match report.stopped {
        Some(e) => e,
        None if remaining > 0 => Error::temp(format!("{} could not be sent yet", plural(remaining, "message")))
            .fix("they stay queued; the next `mailer queue run` tries again (`mailer queue list` shows why)"),
        None => return ctx.printer.json_only(&summary),
    };
    Err(error.with_json(Some(summary)))
}
