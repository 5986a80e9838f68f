//! Command-line surface: every command, flag and environment variable mailer has.
//!
//! Parsing only. Nothing here touches the network, the token store or the config file, so
//! `--help`, completions and the man page stay instant and side-effect free.

mod login;

pub use login::{
    AppCommand, AppCreateArgs, AppInstructionsArgs, DiscoverArgs, EndpointArgs, LoginArgs,
    SetupArgs, SignInArgs,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "mailer",
    version,
    about = "Send mail as a Microsoft 365 / Outlook.com (or Gmail) user over OAuth2",
    long_about = "Send mail as a Microsoft 365 / Outlook.com (or Gmail / Google Workspace) user over OAuth2.\n\n\
        Log in once in a browser with `mailer login`; from then on commands run unattended \
        (cron, scripts) until the refresh token is revoked.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Profile to use
    #[arg(long, global = true, env = "MAILER_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Config file (default: the platform config dir, ~/.config/mailer/config.toml on Linux)
    #[arg(long, global = true, env = "MAILER_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More logging to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print nothing but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Machine-readable result on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Never open a browser or prompt (implied when stdin is not a TTY or CI is set, except for login)
    #[arg(long, global = true)]
    pub non_interactive: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Log in with OAuth2 and store the profile and its tokens
    Login(Box<LoginArgs>),
    /// Send a message through the profile's transport
    Send(Box<SendArgs>),
    /// sendmail-compatible: an RFC 5322 message on stdin (also when invoked as `sendmail`)
    #[command(disable_help_flag = true)]
    Sendmail {
        /// [-t] [-i] [-oi] [-f FROM] [-F NAME] [RCPT...]; other sendmail options are ignored
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// The outbox of messages that could not be sent yet
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Print a valid access token (a credential helper for msmtp passwordeval, curl, scripts)
    Token(TokenArgs),
    /// Show the profile, its login and whether a send would work without a human
    Status,
    /// Delete the profile's tokens from the token store
    Logout(LogoutArgs),
    /// List profiles
    Profiles,
    /// Check everything a send needs, one line per check, each with its fix
    Doctor(DoctorArgs),
    /// What a login for this address needs: account kind, tenant, cloud, endpoints
    Discover(DiscoverArgs),
    /// Register mailer's app in Entra from the command line, or print the portal steps
    #[command(subcommand)]
    App(AppCommand),
    /// Guided: discover, register the app, log in, send a test message, summary
    Setup(Box<SetupArgs>),
    /// What a server's error code means and how to fix it (AADSTS70043, 5.7.139, ErrorSendAsDenied, ...)
    Explain {
        /// The code as the server printed it: AADSTS70043, 70043, 535 5.7.139, ErrorSendAsDenied, invalid_grant
        #[arg(num_args = 1.., value_name = "CODE")]
        code: Vec<String>,
    },
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    Man,
}

#[derive(Args, Debug, Default)]
pub struct SendArgs {
    /// Recipient (repeatable; comma-separated lists and "Name <a@b>" accepted)
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
    /// Carbon-copy recipient (repeatable)
    #[arg(long, value_name = "ADDRESS")]
    pub cc: Vec<String>,
    /// Blind-copy recipient (repeatable)
    #[arg(long, value_name = "ADDRESS")]
    pub bcc: Vec<String>,
    /// Subject line (any Unicode)
    #[arg(long, short = 's', default_value = "", conflicts_with = "raw")]
    pub subject: String,
    /// Body text
    #[arg(long, conflicts_with_all = ["body_file", "raw"])]
    pub body: Option<String>,
    /// Read the body from a file
    #[arg(long, value_name = "PATH", conflicts_with = "raw")]
    pub body_file: Option<PathBuf>,
    /// The body (--body, --body-file or stdin) is HTML
    #[arg(long, conflicts_with_all = ["html_file", "raw"])]
    pub html: bool,
    /// HTML part from a file; --body/--body-file/stdin becomes the text alternative
    #[arg(long, value_name = "PATH", conflicts_with = "raw")]
    pub html_file: Option<PathBuf>,
    /// Attach a file (repeatable; content type from the file name)
    #[arg(long, value_name = "PATH", conflicts_with = "raw")]
    pub attach: Vec<PathBuf>,
    /// Embed an image for cid:FILENAME references in the HTML (repeatable)
    #[arg(long, value_name = "PATH", conflicts_with = "raw")]
    pub inline: Vec<PathBuf>,
    /// Send as / on behalf of this mailbox
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// Reply-To address (repeatable)
    #[arg(long, value_name = "ADDRESS", conflicts_with = "raw")]
    pub reply_to: Vec<String>,
    /// Extra header 'X-Name: value' (repeatable)
    #[arg(long, value_name = "HEADER", conflicts_with = "raw")]
    pub header: Vec<String>,
    /// Importance
    #[arg(long, value_enum, conflicts_with = "raw")]
    pub importance: Option<crate::message::Importance>,
    /// Do not keep a copy in Sent Items (Graph)
    #[arg(long)]
    pub no_save_sent: bool,
    /// stdin is a complete RFC 5322 message, sent as is
    #[arg(long)]
    pub raw: bool,
    /// Transport for this message instead of the profile's
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// When the transport refuses for a reason of its own (SMTP AUTH disabled, no Graph
    /// mailbox), send through this one instead [default: the profile's `fallback`]
    #[arg(long, value_enum)]
    pub fallback: Option<TransportKind>,
    /// Print the MIME message and exit: no network, no token
    #[arg(long)]
    pub dry_run: bool,
    /// On a temporary failure keep the message in the outbox (exit 75) for `mailer queue run`
    #[arg(long)]
    pub queue: bool,
}

#[derive(Args, Debug, Default)]
pub struct DoctorArgs {
    /// Also send a short test message to the profile's own mailbox through each transport
    #[arg(long)]
    pub send_test: bool,
    /// Only the local checks: no request leaves the machine
    #[arg(long, conflicts_with = "send_test")]
    pub no_network: bool,
    /// Check every profile of the config file
    #[arg(long)]
    pub all_profiles: bool,
}

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = TokenFormat::Raw)]
    pub format: TokenFormat,
    /// Token for this transport's resource instead of the profile's default
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// Refresh even if the cached token is still valid: keeps a rarely used login alive
    /// (Entra expires refresh tokens after 90 days unused; run it weekly from cron)
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// List queued and failed messages
    List,
    /// Send the queued messages in order (for cron); each is removed once accepted
    Run,
    /// Put failed messages back in the queue (after checking they were not delivered)
    Retry {
        /// The ids `mailer queue list` shows
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete queued and failed messages
    Purge {
        /// Only the failed ones
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Also remove the profile from the config file
    #[arg(long)]
    pub forget: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFormat {
    Raw,
    Xoauth2,
    Oauthbearer,
    Json,
}

pub use crate::config::{
    ClientAuth, Cloud, ProviderKind, Sasl, SmtpSecurity, TokenStoreKind, TransportKind,
};

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_work_after_the_subcommand() {
        let cli = Cli::try_parse_from(["mailer", "status", "--profile", "work", "--json", "-vv"])
            .unwrap();
        assert_eq!(cli.global.profile.as_deref(), Some("work"));
        assert!(cli.global.json);
        assert_eq!(cli.global.verbose, 2);
    }

    #[test]
    fn no_secret_flag_exists() {
        // A secret as a flag value shows in `ps` to every user of the machine.
        assert!(Cli::try_parse_from(["mailer", "login", "--client-secret", "x"]).is_err());
    }
}
