//! mailer: send mail as a Microsoft 365 / Outlook.com (or Gmail / Google Workspace) user
//! over OAuth2.
//!
//! How a command runs: [`cli`] parses, [`context`] resolves the flags and the config once,
//! [`cmd`] runs one command per file, and [`output`] prints. Underneath, one module per
//! concept:
//!
//! - [`auth`] signs in (one file per OAuth flow) and resolves a profile into an
//!   [`auth::Account`]; [`provider`] says what is particular to an identity provider
//!   (Microsoft, Google, any other OAuth2 one);
//! - [`tokens`] is the token lifecycle (state, refresh, cache), [`store`] where tokens rest;
//! - [`message`] builds what is sent, [`deliver`] decides how it is delivered and what a
//!   failure means, [`transport`] sends it (Graph, Gmail, SMTP), [`outbox`] keeps what waits;
//! - [`error`] is the one error type and its classes, [`explain`] what servers' codes mean;
//! - [`doctor`] checks everything a send needs, [`notify`] warns before a login or a
//!   credential runs out, [`setup`] registers the app and finds the tenant (Microsoft Entra);
//! - [`pace`] keeps bulk sends under the mailbox's rate limit;
//! - [`config`], [`secret`], [`http`], [`fsutil`] and [`sendmail_args`] are the small parts.
//!
//! README.md ("How the code is laid out") has the same map with one line per module.

pub mod auth;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod context;
pub mod deliver;
pub mod doctor;
pub mod error;
pub mod explain;
pub mod fsutil;
pub mod http;
pub mod message;
pub mod notify;
pub mod outbox;
pub mod output;
pub mod pace;
pub mod provider;
pub mod secret;
pub mod sendmail_args;
pub mod setup;
pub mod store;
#[cfg(test)]
mod strategies;
pub mod tokens;
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
