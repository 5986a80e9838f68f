//! `mailer send`: build a message from flags, files and stdin, then send it through the
//! profile's transport (or `--transport`).
//!
//! Everything the user typed is validated before a token or the network is touched, so a
//! typo costs nothing and exits 64/65/66. `--dry-run` stops after building: it prints the
//! MIME message and never opens the token store.

use super::{Loaded, Out};
use crate::auth::Account;
use crate::cli::{Global, SendArgs};
use crate::config::Transport as Kind;
use crate::error::{Error, Exit, Result};
use crate::message::{self, Draft, FilePart, Raw};
use crate::store::Store;
use crate::transport::{AnyTransport, Content, Outgoing, Transport};
use lettre::message::Mailbox;
use std::io::{IsTerminal, Read};

pub async fn run(g: &Global, args: SendArgs) -> Result<()> {
    let out = Out::new(g);
    let loaded = Loaded::new(g)?;
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
    dedupe(&mut recipients);

    let profile = loaded.config.profiles.get(&loaded.name);
    let sender = match (profile, &send_as) {
        (Some(p), _) => super::profile_mailbox(&loaded.name, p)?,
        (None, Some(f)) if args.dry_run => f.clone(),
        // No profile: the account lookup explains which login is missing.
        (None, _) => {
            return Err(loaded
                .account()
                .err()
                .unwrap_or_else(|| Error::internal("profile vanished")));
        }
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
        let bytes = match &outgoing.content {
            Content::Built(d) => d
                .to_mime(
                    &outgoing.sender,
                    outgoing.message_id.as_deref().unwrap_or_default(),
                )?
                .formatted(),
            Content::Raw(r) => r.bytes.clone(),
        };
        use std::io::Write;
        std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| Error::io(format!("cannot write the message to stdout: {e}")))?;
        out.say(format!("dry run: nothing sent ({}).", describe(&outgoing)));
        return Ok(());
    }

    let acct: Account = loaded.account()?;
    let queue = args.queue || acct.profile.queue;
    deliver(g, &acct, outgoing, args.transport, queue).await
}

/// Sends one message. With `queue`, the message is written to the outbox *before* the
/// send (write-ahead), so a crash at any instant leaves it queued or sent; it is removed
/// once the server accepted it, kept on a temporary failure (exit 75 with its id), and
/// dropped on a permanent one (reported as the error it is). Shared by `send` and
/// `sendmail`.
pub async fn deliver(
    g: &Global,
    acct: &Account,
    outgoing: Outgoing,
    transport: Option<crate::config::Transport>,
    queue: bool,
) -> Result<()> {
    let out = Out::new(g);
    let store = Store::open(acct.profile.token_store, &acct.name)?;
    let kind = transport.unwrap_or(acct.profile.transport);
    let outbox = crate::outbox::Outbox::new(&acct.name)?;
    let mut entry = match queue {
        true => queue_entry(&outgoing, transport, kind)?,
        false => None,
    };
    if let Some(e) = &entry {
        outbox.add(e)?;
    }
    let result = match AnyTransport::open(kind, acct, &store) {
        Ok(mut t) => {
            if let AnyTransport::Graph(graph) = &mut t {
                graph.set_progress(!g.quiet && std::io::stderr().is_terminal());
            }
            let r = t.send(&outgoing).await;
            t.close().await;
            r
        }
        Err(e) => Err(e),
    };
    let receipt = match (result, entry.as_mut()) {
        (Ok(r), Some(e)) => {
            outbox.remove(&e.id)?;
            r
        }
        (Ok(r), None) => r,
        (Err(cause), Some(e)) if queueable(&cause) => {
            e.attempts = 1;
            e.last_error = Some(cause.what.clone());
            outbox.update(e)?;
            return Err(queued_error(acct, &e.id, cause));
        }
        (Err(cause), Some(e)) => {
            outbox.remove(&e.id)?;
            return Err(cause);
        }
        (Err(cause), None) => return Err(cause),
    };
    if out.json {
        out.print_json(&serde_json::json!({
            "status": "sent",
            "transport": kind.as_str(),
            "message_id": receipt.message_id,
            "request_id": receipt.request_id,
            "reply": receipt.reply,
            "recipients": outgoing.recipients.len(),
        }));
    }
    out.say(format!("sent via {kind} {}", describe(&outgoing)));
    Ok(())
}

/// Temporary failures, and logins that a human will renew: worth keeping the message for.
pub(super) fn queueable(e: &Error) -> bool {
    matches!(e.exit, Exit::TempFail | Exit::NoPerm)
}

/// The outbox copy of a message: its complete bytes and envelope. `None` when a later
/// `queue run` could never send it: the outbox holds MIME, and Graph takes MIME only up
/// to its ~4 MB request limit (a large built message needs the draft path, from files).
fn queue_entry(
    o: &Outgoing,
    transport: Option<Kind>,
    kind: Kind,
) -> Result<Option<crate::outbox::Entry>> {
    let (bytes, subject) = match &o.content {
        Content::Built(d) => (
            d.to_mime(&o.sender, o.message_id.as_deref().unwrap_or_default())?
                .formatted(),
            d.subject.clone(),
        ),
        Content::Raw(r) => (r.bytes.clone(), r.subject.clone().unwrap_or_default()),
    };
    if kind == Kind::Graph && !crate::transport::graph::fits_mime_send(bytes.len()) {
        tracing::warn!("the message is too large to queue for Graph; sending without the outbox");
        return Ok(None);
    }
    let mut entry = crate::outbox::Entry::new(
        &bytes,
        subject,
        o.recipients.iter().map(|m| m.email.to_string()).collect(),
    );
    entry.send_as = o.send_as.as_ref().map(|m| m.email.to_string());
    entry.no_save_sent = o.no_save_sent;
    entry.transport = transport;
    Ok(Some(entry))
}

/// The exit-75 error that reports a queued message.
fn queued_error(acct: &Account, id: &str, cause: Error) -> Error {
    let flag = if acct.name == "default" {
        String::new()
    } else {
        format!(" --profile {}", acct.name)
    };
    let mut fix = format!("`mailer{flag} queue run` sends it (run it from cron)");
    if let Some(f) = &cause.fix {
        fix = format!("{f}; then {fix}");
    }
    let mut e = Error::temp(format!("not sent yet, queued as {id}: {}", cause.what)).fix(fix);
    e.why = cause.why;
    e.json = Some(
        serde_json::json!({ "status": "queued", "id": id, "error": cause.what, "exit_code": 75 }),
    );
    e
}

pub(super) fn describe(o: &Outgoing) -> String {
    let n = o.recipients.len();
    format!(
        "as {} to {n} recipient{}",
        o.from_mailbox().email,
        if n == 1 { "" } else { "s" }
    )
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

pub(super) fn dedupe(list: &mut Vec<Mailbox>) {
    let mut seen = std::collections::HashSet::new();
    list.retain(|m| seen.insert(m.email.to_string().to_ascii_lowercase()));
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
            Exit::NoInput,
            format!("cannot read {}: {e}", path.display()),
        )
        .fix("check the path and that you may read the file")
    })?;
    String::from_utf8(bytes).map_err(|_| not_utf8(&path.display().to_string()))
}

fn not_utf8(what: &str) -> Error {
    Error::new(
        Exit::DataErr,
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
