//! mailer: send mail as a Microsoft 365 / Outlook.com user over OAuth2.
//!
//! The contract is SPEC.md (commands, config, token storage, exit codes, security rules).
//! Map: [`cli`] parses, [`cmd`] runs one command per file, [`auth`] logs in and keeps tokens
//! fresh, [`store`] keeps them (secrets wrapped in [`secret::Secret`]), [`config`] and
//! [`provider`] say where requests go, [`message`] builds what is sent, [`transport`] sends
//! it, [`outbox`] keeps what could not be sent yet, and [`sendmail`] speaks sendmail's
//! command line.

pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod message;
pub mod outbox;
pub mod provider;
pub mod secret;
pub mod sendmail;
pub mod store;
pub mod transport;

/// Logging goes to stderr. Without `RUST_LOG`, only mailer's own events are shown, so a
/// dependency's trace output cannot carry a header or a body to the terminal.
pub fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::new(s),
        _ => EnvFilter::new(match (quiet, verbose) {
            (true, _) => "mailer=error",
            (false, 0) => "mailer=warn",
            (false, 1) => "mailer=info",
            (false, 2) => "mailer=debug",
            (false, _) => "mailer=trace",
        }),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
