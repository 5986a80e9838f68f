//! `mailer sendmail` (and the binary invoked as `sendmail`): one RFC 5322 message on
//! stdin, recipients from the arguments or (`-t`) its headers, through the profile's
//! transport, with the outbox always on (SPEC sections 1 and 7).
//!
//! Mail from cron and scripts often carries `From: root (Cron Daemon)`, which Exchange
//! refuses to send as; the From address is set to the mailbox we send as, keeping the
//! display name (or `-F`). A missing Message-ID or Date is added, as sendmail does.

use super::Loaded;
use super::send::{dedupe, deliver};
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::message::{self, Raw, encoded_field};
use crate::transport::{Content, Outgoing};
use lettre::message::header;
use lettre::message::{Mailbox, Mailboxes};

pub async fn run(g: &Global, args: Vec<String>) -> Result<()> {
    let o = crate::sendmail::parse(&args)?;
    let bytes = crate::sendmail::read_message(&mut std::io::stdin().lock(), o.ignore_dots)?;
    let mut raw = Raw::parse(bytes)?;
    if let Some(local) = o.recipients.iter().find(|r| !r.contains('@')) {
        return Err(Error::new(
            crate::error::Exit::DataErr,
            format!("recipient {local:?} is a local user, not a mail address"),
        )
        .why("mailer delivers through Microsoft 365, which has no local mailboxes")
        .fix("pass full addresses; for cron set MAILTO=you@example.com in the crontab"));
    }
    let mut recipients = message::parse_mailboxes(&o.recipients, "a recipient")?;
    if o.extract {
        recipients.extend(raw.recipients().cloned());
    }
    dedupe(&mut recipients);
    if recipients.is_empty() {
        return Err(Error::usage("no recipients")
            .fix("name them as arguments, or pass -t to take them from To/Cc/Bcc"));
    }
    let loaded = Loaded::new(g)?;
    let acct = loaded.account()?;
    let user = super::profile_mailbox(&acct.name, &acct.profile)?;
    let send_as = o
        .from
        .as_deref()
        .map(|f| message::parse_mailbox(f, "-f"))
        .transpose()?
        .filter(|m| m.email != user.email);
    let address = send_as.as_ref().unwrap_or(&user).email.clone();

    let current = raw.field("From");
    let current_box = current.as_deref().and_then(|f| f.parse::<Mailbox>().ok());
    if current_box.as_ref().map(|m| &m.email) != Some(&address) {
        let name = o
            .full_name
            .clone()
            .or_else(|| current_box.and_then(|m| m.name))
            .or_else(|| current.as_deref().and_then(comment))
            .or_else(|| user.name.clone());
        let from = header::From::from(Mailboxes::from(Mailbox::new(name, address.clone())));
        raw.set_field("From", &encoded_field(from));
    }
    if raw.message_id.is_none() {
        let id = message::new_message_id(send_as.as_ref().unwrap_or(&user));
        raw.set_field("Message-ID", &format!("Message-ID: {id}"));
        raw.message_id = Some(id);
    }
    if raw.field("Date").is_none() {
        raw.set_field("Date", &encoded_field(header::Date::now()));
    }
    let outgoing = Outgoing {
        sender: user,
        recipients,
        message_id: raw.message_id.clone(),
        content: Content::Raw(raw),
        send_as,
        no_save_sent: false,
    };
    deliver(g, &acct, outgoing, None, true).await
}

/// `root (Cron Daemon)` → `Cron Daemon`.
fn comment(from: &str) -> Option<String> {
    let start = from.find('(')?;
    let end = from.rfind(')')?;
    let inner = from.get(start + 1..end)?.trim();
    (!inner.is_empty()).then(|| inner.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn display_name_from_a_comment() {
        assert_eq!(
            super::comment("root (Cron Daemon)").as_deref(),
            Some("Cron Daemon")
        );
        assert_eq!(super::comment("root"), None);
    }
}
