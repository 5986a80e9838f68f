//! One file per command. Each translates its flags into calls on the modules that own the
//! work and prints what they return; no policy lives here. This file dispatches and holds
//! what `send` and `sendmail` share: how a delivery outcome is reported.

mod login;
mod logout;
mod profiles;
mod queue;
mod send;
mod sendmail;
mod status;
mod token;

use crate::auth::Account;
use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::deliver::Outcome;
use crate::error::{Error, Result};
use crate::output::{Printer, plural};
use crate::transport::Outgoing;

pub async fn run(cli: Cli) -> Result<()> {
    let printer = Printer::new(cli.global.json, cli.global.quiet);
    match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "mailer", &mut out);
            printer.data(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .map_err(|e| Error::internal(format!("cannot render the man page: {e}")))?;
            printer.data(&out)
        }
        command => {
            let mut ctx = Context::load(&cli.global)?;
            match command {
                Command::Login(args) => login::run(&mut ctx, *args).await,
                Command::Send(args) => send::run(&ctx, *args).await,
                Command::Sendmail { args } => sendmail::run(&ctx, args).await,
                Command::Queue(q) => queue::run(&ctx, q).await,
                Command::Token(args) => token::run(&ctx, args).await,
                Command::Status => status::run(&ctx),
                Command::Logout(args) => logout::run(&mut ctx, args),
                Command::Profiles => profiles::run(&ctx),
                Command::Completions { .. } | Command::Man => unreachable!("handled above"),
            }
        }
    }
}

/// `as a@b to 3 recipients`.
fn describe(o: &Outgoing) -> String {
    format!(
        "as {} to {}",
        o.from_mailbox().email,
        plural(o.recipients.len(), "recipient")
    )
}

/// Prints a delivery's outcome; an outcome that is not "sent" becomes the command's error.
fn report(ctx: &Context, acct: &Account, o: &Outgoing, outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Sent { transport, receipt } => {
            ctx.printer.json_only(&serde_json::json!({
                "status": "sent",
                "transport": transport.as_str(),
                "message_id": receipt.message_id,
                "request_id": receipt.request_id,
                "reply": receipt.reply,
                "recipients": o.recipients.len(),
            }))?;
            ctx.printer
                .say(format!("sent via {transport} {}", describe(o)));
            Ok(())
        }
        Outcome::Queued { id, reason } => Err(queued(acct, &id, reason)),
        Outcome::Failed { error, .. } => Err(error),
    }
}

/// The exit-75 error that reports a queued message.
fn queued(acct: &Account, id: &str, cause: Error) -> Error {
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
    e.json = Some(serde_json::json!({ "status": "queued", "id": id, "error": cause.what }));
    e
}
