//! One file per command. Each translates its flags into calls on the modules that own the
//! work and prints what they return; no policy lives here. This file dispatches and holds
//! what `send` and `sendmail` share: how a delivery outcome is reported.

mod app;
mod discover;
mod doctor;
mod explain;
mod login;
mod logout;
mod profiles;
mod queue;
mod send;
mod sendmail;
mod setup;
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
        Command::Doctor(args) => match Context::load(&cli.global) {
            Ok(ctx) => doctor::run(&ctx, args).await,
            Err(e) => doctor::config_unreadable(cli.global.json, cli.global.quiet, e),
        },
        command => {
            let mut ctx = Context::load(&cli.global)?;
            let watched = matches!(
                command,
                Command::Send(_)
                    | Command::Sendmail { .. }
                    | Command::Queue(_)
                    | Command::Token(_)
                    | Command::Status
            );
            let result = match command {
                Command::Login(args) => login::run(&mut ctx, *args).await,
                Command::Send(args) => send::run(&ctx, *args).await,
                Command::Sendmail { args } => sendmail::run(&ctx, args).await,
                Command::Queue(q) => queue::run(&ctx, q).await,
                Command::Token(args) => token::run(&ctx, args).await,
                Command::Status => status::run(&ctx),
                Command::Logout(args) => logout::run(&mut ctx, args),
                Command::Profiles => profiles::run(&ctx),
                Command::Explain { code } => explain::run(&ctx, code),
                Command::Discover(args) => discover::run(&ctx, args).await,
                Command::App(cmd) => app::run(&mut ctx, cmd).await,
                Command::Setup(args) => setup::run(&mut ctx, *args).await,
                Command::Completions { .. } | Command::Man | Command::Doctor(_) => {
                    unreachable!("handled above")
                }
            };
            if watched {
                warn_a_person(&ctx, result.as_ref().err());
            }
            result
        }
    }
}

/// After an unattended run that used the profile: tell a person what needs them.
fn warn_a_person(ctx: &Context, error: Option<&Error>) {
    if ctx.interactive() {
        return;
    }
    let Ok(acct) = ctx.account() else { return };
    let login_needed = error
        .filter(|e| e.class == crate::error::Class::LoginNeeded)
        .map(|e| e.what.as_str());
    crate::notify::warn_unattended(acct, login_needed);
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
        Outcome::Sent {
            transport,
            receipt,
            fallback,
        } => {
            let mut json = serde_json::json!({
                "status": "sent",
                "transport": transport.as_str(),
                "message_id": receipt.message_id,
                "request_id": receipt.request_id,
                "reply": receipt.reply,
                "recipients": o.recipients.len(),
            });
            let mut line = format!("sent via {transport} {}", describe(o));
            if let Some(f) = fallback {
                json["fallback_from"] = f.from.as_str().into();
                json["fallback_reason"] = f.reason.clone().into();
                line.push_str(&format!(" (fell back from {}: {})", f.from, f.reason));
            }
            ctx.printer.json_only(&json)?;
            ctx.printer.say(line);
            Ok(())
        }
        Outcome::Queued { id, reason } => Err(queued(acct, &id, reason)),
        Outcome::Failed { failure, error } => {
            // `--json` says what the failure means for the message (one that may have been
            // delivered is "unconfirmed": not to be sent again blindly).
            let mut json = error.to_json(0);
            if let Some(o) = json.as_object_mut() {
                o.remove("exit_code");
                o.insert("status".into(), "failed".into());
                o.insert("failure".into(), failure.name().into());
            }
            Err(error.with_json(Some(json)))
        }
    }
}

/// The exit-75 error that reports a queued message.
fn queued(acct: &Account, id: &str, cause: Error) -> Error {
    let flag = crate::config::profile_flag(&acct.name);
    let mut fix = format!("`mailer{flag} queue run` sends it (run it from cron)");
    if let Some(f) = &cause.fix {
        fix = format!("{f}; then {fix}");
    }
    let mut e = Error::temp(format!("not sent yet, queued as {id}: {}", cause.what)).fix(fix);
    e.why = cause.why;
    e.with_json(Some(
        serde_json::json!({ "status": "queued", "id": id, "error": cause.what }),
    ))
}
