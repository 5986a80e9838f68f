//! Entry point: parse, run, and map the error's class to a sysexits code. Nothing else.

use clap::Parser;
use mailer::cli::Cli;
use mailer::error::{Class, Error};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Installed as (or linked to) `sendmail`: every argument is a sendmail argument.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_os_string());
    if invoked_as.as_deref() == Some(std::ffi::OsStr::new("sendmail")) {
        args.splice(1..1, ["sendmail".into(), "--".into()]);
    }
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        // --help and --version; a closed pipe is no reason to complain.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(exit_code(Class::Usage));
        }
    };
    mailer::init_logging(cli.global.verbose, cli.global.quiet);
    let json = cli.global.json;
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(mailer::cmd::run(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e, json),
    }
}

/// sysexits.h, as msmtp and sendmail use them.
fn exit_code(class: Class) -> u8 {
    match class {
        Class::OutputClosed => 0,
        Class::Usage => 64,
        Class::BadData => 65,
        Class::NoInput => 66,
        Class::NoTenant => 68,
        Class::Refused => 69,
        Class::Internal => 70,
        Class::Io => 74,
        Class::Temporary => 75,
        Class::LoginNeeded => 77,
        Class::Config => 78,
    }
}

/// The one place an error reaches the user: its text on stderr and, with `--json`, its
/// object on stdout. A reader that went away hears nothing more.
fn report(e: Error, json: bool) -> ExitCode {
    let code = exit_code(e.class);
    if e.class == Class::OutputClosed || e.shown {
        return ExitCode::from(code);
    }
    mailer::output::report(&e.to_string());
    if json {
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), "{}", e.to_json(code));
    }
    ExitCode::from(code)
}
