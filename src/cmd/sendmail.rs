//! `mailer sendmail` (and the binary invoked as `sendmail`): one RFC 5322 message on
//! stdin, recipients from the arguments or (`-t`) its headers, through the profile's
//! transport, with the outbox always on. Its command line is [`crate::sendmail_args`]'s.
//!
//! The message is made ready for submission as sendmail would ([`Raw::submit_as`]): the
//! From address becomes the mailbox we send as, a missing Message-ID or Date is added.

use crate::context::Context;
use crate::deliver::{self, Request};
use crate::error::{Class, Error, Result};
use crate::message::{self, Raw};
use crate::transport::{Content, Outgoing};

pub async fn run(ctx: &Context, args: Vec<String>) -> Result<()> {
    let o = crate::sendmail_args::parse(&args)?;
    let bytes = crate::sendmail_args::read_message(&mut std::io::stdin().lock(), o.ignore_dots)?;
    let mut raw = Raw::parse(bytes)?;
    if let Some(local) = o.recipients.iter().find(|r| !r.contains('@')) {
        return Err(Error::new(
            Class::BadData,
            format!("recipient {local:?} is a local user, not a mail address"),
        )
        .why("mailer delivers through Microsoft 365, which has no local mailboxes")
        .fix("pass full addresses; for cron set MAILTO=you@example.com in the crontab"));
    }
    let mut recipients = message::parse_mailboxes(&o.recipients, "a recipient")?;
    if o.extract {
        recipients.extend(raw.recipients().cloned());
    }
    message::dedupe(&mut recipients);
    if recipients.is_empty() {
        return Err(Error::usage("no recipients")
            .fix("name them as arguments, or pass -t to take them from To/Cc/Bcc"));
    }
    let acct = ctx.account()?;
    let user = acct.mailbox()?;
    let send_as = o
        .from
        .as_deref()
        .map(|f| message::parse_mailbox(f, "-f"))
        .transpose()?
        .filter(|m| m.email != user.email);
    raw.submit_as(
        send_as.as_ref().unwrap_or(&user),
        o.full_name.as_deref(),
        user.name.as_deref(),
    );
    let request = Request {
        outgoing: Outgoing {
            sender: user,
            recipients,
            message_id: raw.message_id.clone(),
            content: Content::Raw(raw),
            send_as,
            no_save_sent: false,
        },
        transport: None,
        queue: true,
        fallback: acct.profile.fallback,
    };
    let outcome = deliver::deliver(acct, &ctx.printer, &request).await?;
    super::report(ctx, acct, &request.outgoing, outcome)
}
