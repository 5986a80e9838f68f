//! `mailer send`: build a message from flags, files and stdin, then hand it to delivery
//! through the profile's transport (or `--transport`).
//!
//! Everything the user typed is validated before a token or the network is touched, so a
//! typo costs nothing and exits 64/65/66. `--dry-run` stops after building: it prints the
//! MIME message and never opens the token store.

use crate::cli::SendArgs;
use crate::context::Context;
use crate::deliver::{self, Request};
use crate::error::{Class, Error, Result};
use crate::message::{self, Draft, FilePart, Raw};
use crate::transport::{Content, Outgoing};
use lettre::message::Mailbox;
use std::io::{IsTerminal, Read};

pub async fn run(ctx: &Context, args: SendArgs) -> Result<()> {
    let content = if args.raw {
        Content::Raw(read_raw()?)
    } else {
        Content::Built(Box::new(draft(&args)?))
    };
    let send_as = args
        .from
        .as_deref()
        .map(|f| message::parse_mailbox(f, "--from"))
        .transpose()?;
    let mut recipients = envelope(&args, &content)?;
    if recipients.is_empty() {
        return Err(Error::usage("no recipient").fix("name at least one with --to, --cc or --bcc"));
    }
    message::dedupe(&mut recipients);

    // A dry run needs no profile: --from names the sender then.
    let acct = match (ctx.profile(), &send_as) {
        (None, Some(_)) if args.dry_run => None,
        _ => Some(ctx.account()?),
    };
    let sender = match (&acct, &send_as) {
        (Some(a), _) => a.mailbox()?,
        (None, Some(f)) => f.clone(),
        (None, None) => return Err(ctx.no_profile()),
    };
    let message_id = match &content {
        Content::Built(_) => Some(message::new_message_id(send_as.as_ref().unwrap_or(&sender))),
        Content::Raw(r) => r.message_id.clone(),
    };
    let outgoing = Outgoing {
        sender,
        recipients,
        content,
        message_id,
        send_as,
        no_save_sent: args.no_save_sent,
    };
    if args.dry_run {
        return dry_run(ctx, &outgoing);
    }
    let acct = acct.expect("an account unless a dry run");
    let request = Request {
        queue: args.queue || acct.profile.queue,
        transport: args.transport,
        fallback: args.fallback.or(acct.profile.fallback),
        outgoing,
    };
    let outcome = deliver::deliver(acct, &ctx.printer, &request).await?;
    super::report(ctx, acct, &request.outgoing, outcome)
}

/// The message as it would be sent, on stdout (in the `--json` document with `--json`).
fn dry_run(ctx: &Context, outgoing: &Outgoing) -> Result<()> {
    let mime = outgoing.mime()?;
    if ctx.printer.json() {
        let recipients: Vec<String> = outgoing
            .recipients
            .iter()
            .map(|m| m.email.to_string())
            .collect();
        return ctx.printer.json_only(&serde_json::json!({
            "status": "dry_run",
            "recipients": recipients,
            "message_id": outgoing.message_id,
            "message": String::from_utf8_lossy(&mime),
        }));
    }
    ctx.printer.data(&mime)?;
    ctx.printer.say(format!(
        "dry run: nothing sent ({}).",
        super::describe(outgoing)
    ));
    Ok(())
}

/// To, Cc and Bcc for the envelope: the flags, else (raw) the message's headers.
fn envelope(args: &SendArgs, content: &Content) -> Result<Vec<Mailbox>> {
    Ok(match content {
        // The draft parsed --to/--cc/--bcc already.
        Content::Built(d) => d.recipients().cloned().collect(),
        Content::Raw(r) => {
            let mut flags = message::parse_mailboxes(&args.to, "--to")?;
            flags.extend(message::parse_mailboxes(&args.cc, "--cc")?);
            flags.extend(message::parse_mailboxes(&args.bcc, "--bcc")?);
            match flags.is_empty() {
                true => r.recipients().cloned().collect(),
                false => flags,
            }
        }
    })
}

fn draft(a: &SendArgs) -> Result<Draft> {
    message::check_line(&a.subject, "--subject")?;
    let mut d = Draft {
        from: a
            .from
            .as_deref()
            .map(|f| message::parse_mailbox(f, "--from"))
            .transpose()?,
        to: message::parse_mailboxes(&a.to, "--to")?,
        cc: message::parse_mailboxes(&a.cc, "--cc")?,
        bcc: message::parse_mailboxes(&a.bcc, "--bcc")?,
        reply_to: message::parse_mailboxes(&a.reply_to, "--reply-to")?,
        subject: a.subject.clone(),
        headers: a
            .header
            .iter()
            .map(|h| message::parse_header(h))
            .collect::<Result<_>>()?,
        importance: a.importance,
        ..Default::default()
    };
    d.attachments = a
        .attach
        .iter()
        .map(|p| FilePart::open(p, false))
        .collect::<Result<_>>()?;
    d.inline = a
        .inline
        .iter()
        .map(|p| FilePart::open(p, true))
        .collect::<Result<_>>()?;
    let body = body(a)?;
    match (&a.html_file, a.html) {
        (Some(path), _) => {
            d.html = Some(read_text(path)?);
            d.text = body;
        }
        (None, true) => d.html = Some(body.ok_or_else(no_body)?),
        (None, false) => d.text = Some(body.ok_or_else(no_body)?),
    }
    if !d.inline.is_empty() && d.html.is_none() {
        return Err(Error::usage(
            "--inline images need an HTML body that references them as cid:NAME",
        )
        .fix("add --html (or --html-file) with <img src=\"cid:FILENAME\">"));
    }
    Ok(d)
}

/// The body from `--body`, `--body-file`, or stdin when it is not a terminal.
fn body(a: &SendArgs) -> Result<Option<String>> {
    if let Some(b) = &a.body {
        return Ok(Some(b.clone()));
    }
    if let Some(path) = &a.body_file {
        return read_text(path).map(Some);
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read the body from stdin: {e}")))?;
    if bytes.is_empty() {
        // An HTML file alone is a whole message; otherwise an empty pipe is a mistake
        // (a cron job whose report command printed nothing, say).
        return match a.html_file {
            Some(_) => Ok(None),
            None => Err(Error::usage("the body was expected on stdin, but stdin is empty")
                .fix("pipe the body in, or pass --body TEXT / --body-file PATH (--body '' for an empty body)")),
        };
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| not_utf8("stdin"))
}

fn no_body() -> Error {
    Error::usage("no body given").fix(
        "pass --body TEXT or --body-file PATH, or pipe the body in (--body '' for an empty body)",
    )
}

fn read_text(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::new(
            Class::NoInput,
            format!("cannot read {}: {e}", path.display()),
        )
        .fix("check the path and that you may read the file")
    })?;
    String::from_utf8(bytes).map_err(|_| not_utf8(&path.display().to_string()))
}

fn not_utf8(what: &str) -> Error {
    Error::new(
        Class::BadData,
        format!("the body from {what} is not UTF-8 text"),
    )
    .fix("convert it (iconv -t UTF-8), or send the file with --attach")
}

fn read_raw() -> Result<Raw> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read the message from stdin: {e}")))?;
    Raw::parse(bytes)
}
