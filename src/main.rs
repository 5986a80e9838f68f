//! Entry point: parse, run, map errors to sysexits codes (SPEC section 8). Nothing else.

use clap::Parser;
use mailer::cli::Cli;
use mailer::error::Error;
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
        Err(e) if !e.use_stderr() => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(mailer::error::Exit::Usage as u8);
        }
    };
    mailer::init_logging(cli.global.verbose, cli.global.quiet);
    let json = cli.global.json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                Error::internal(format!("cannot start the async runtime: {e}")),
                json,
            );
        }
    };
    match runtime.block_on(mailer::cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(e, json),
    }
}

fn report(e: Error, json: bool) -> ExitCode {
    eprintln!("{e}");
    if json {
        println!("{}", e.to_json());
    }
    ExitCode::from(e.code() as u8)
}
