//! Command-line surface: every command, flag and environment variable mailer has.
//!
//! Parsing only. Nothing here touches the network, the token store or the config file, so
//! `--help`, completions and the man page stay instant and side-effect free.

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

/// Where a profile's requests go, when not where its cloud says: the same flags for
/// `login`, `app create` and `setup`, remembered in the profile.
#[derive(Args, Debug, Default, Clone)]
pub struct EndpointArgs {
    /// Login host, e.g. https://login.microsoftonline.us
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// Graph host, e.g. https://graph.microsoft.us
    #[arg(long, value_name = "URL")]
    pub graph_url: Option<String>,
    /// SMTP host
    #[arg(long, value_name = "HOST")]
    pub smtp_host: Option<String>,
    /// SMTP port
    #[arg(long, value_name = "N")]
    pub smtp_port: Option<u16>,
    /// Extra trusted root certificates (PEM), for TLS inspection proxies and tests
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
}

/// How a person signs in: the same flags for `login`, `app create` and `setup`.
#[derive(Args, Debug, Clone)]
pub struct SignInArgs {
    /// Use the device-code flow (prints a code and a URL, then polls)
    #[arg(long, conflicts_with = "no_browser")]
    pub device_code: bool,
    /// Print the sign-in URL but do not open a browser
    #[arg(long)]
    pub no_browser: bool,
    /// Give up waiting for the browser or device code after this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub timeout: u64,
}

impl Default for SignInArgs {
    fn default() -> SignInArgs {
        SignInArgs {
            device_code: false,
            no_browser: false,
            timeout: 300,
        }
    }
}

#[derive(Args, Debug, Default)]
pub struct LoginArgs {
    /// Identity provider [default: microsoft]
    #[arg(long, value_enum)]
    pub provider: Option<ProviderKind>,
    /// Tenant: common, organizations, consumers, a tenant GUID or a domain [default: common]
    #[arg(long)]
    pub tenant: Option<String>,
    /// Application (client) ID of the Entra app registration (or the Google / custom OAuth
    /// client ID); remembered in the profile
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Google Workspace: a service account's JSON key file, for domain-wide delegation
    /// (sends as --user; the key goes to the token store)
    #[arg(long, value_name = "KEY.json", requires = "user", conflicts_with_all = ["device_code", "app_only", "client_id"])]
    pub service_account: Option<PathBuf>,
    /// Google / custom: the sign-in page, instead of the provider's
    #[arg(long, value_name = "URL")]
    pub authorize_url: Option<String>,
    /// Google / custom: the token endpoint, instead of the provider's
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// Google: the Gmail API host, instead of https://gmail.googleapis.com
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// SASL mechanism for SMTP AUTH [default: xoauth2]
    #[arg(long, value_enum)]
    pub sasl: Option<Sasl>,
    /// Read the client secret of a confidential ("Web") app from stdin (or set MAILER_CLIENT_SECRET)
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// How a client secret is sent to the token endpoint [default: post]
    #[arg(long, value_enum)]
    pub client_auth: Option<ClientAuth>,
    /// Default transport of the profile [default: graph]
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// Resource scopes to request instead of the defaults (space or comma separated)
    #[arg(long)]
    pub scopes: Option<String>,
    /// Mailbox address; otherwise taken from the id_token
    #[arg(long, value_name = "ADDRESS")]
    pub user: Option<String>,
    /// National cloud [default: global]
    #[arg(long, value_enum)]
    pub cloud: Option<Cloud>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    /// SMTP TLS mode [default: starttls]
    #[arg(long, value_enum)]
    pub smtp_security: Option<SmtpSecurity>,
    #[command(flatten)]
    pub sign_in: SignInArgs,
    /// App-only (client credentials): no user sign-in, no refresh token; sends as --user
    #[arg(long, conflicts_with_all = ["device_code", "redirect_uri", "login_hint"], requires = "user")]
    pub app_only: bool,
    /// App-only with a certificate: its PEM (the key stays in --private-key)
    #[arg(long, value_name = "PEM", requires_all = ["app_only", "private_key"])]
    pub certificate: Option<PathBuf>,
    /// App-only with a certificate: the RSA private key (PEM, PKCS#8 or PKCS#1)
    #[arg(long, value_name = "PEM", requires_all = ["app_only", "certificate"])]
    pub private_key: Option<PathBuf>,
    /// Fixed registered redirect URI, e.g. http://localhost:8400/callback
    #[arg(long, value_name = "URI", conflicts_with = "device_code")]
    pub redirect_uri: Option<String>,
    /// Pre-fill the account on the sign-in page
    #[arg(long, value_name = "ADDRESS")]
    pub login_hint: Option<String>,
    /// Also ask for Mail.ReadWrite, which Graph needs for attachments over 3 MB
    #[arg(long)]
    pub large_attachments: bool,
    /// Where tokens are kept [default: keyring]
    #[arg(long, value_enum)]
    pub token_store: Option<TokenStoreKind>,
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

#[derive(Args, Debug)]
pub struct DiscoverArgs {
    /// The mail address, e.g. ops@contoso.com
    #[arg(value_name = "ADDRESS")]
    pub address: String,
    /// Ask this login host instead of login.microsoftonline.com (sovereign clouds, tests)
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Register the app through Microsoft Graph, signed in with a bootstrap client
    Create(Box<AppCreateArgs>),
    /// Print the portal steps, filled in for this tenant
    Instructions(AppInstructionsArgs),
}

#[derive(Args, Debug, Default)]
pub struct AppCreateArgs {
    /// Display name of the app [default: mailer (USER@HOST)]
    #[arg(long)]
    pub name: Option<String>,
    /// The public client to sign in with for the registration [default: Microsoft Graph Command Line Tools]
    #[arg(long, value_name = "ID")]
    pub bootstrap_client_id: Option<String>,
    /// Also grant tenant-wide consent (needs an admin role); otherwise say what the admin must do
    #[arg(long)]
    pub grant_consent: bool,
    /// Also ask for Mail.ReadWrite, which Graph needs for attachments over 3 MB
    #[arg(long)]
    pub large_attachments: bool,
    /// An app for daemons: application permission Mail.Send and a certificate, no user sign-in
    #[arg(long, requires = "user")]
    pub app_only: bool,
    /// App-only with a client secret instead of a certificate (it expires; doctor warns)
    #[arg(long, requires = "app_only")]
    pub secret: bool,
    /// Days the certificate or secret is valid
    #[arg(long, value_name = "N", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=730))]
    pub cert_days: u32,
    /// The mailbox; its domain tells the tenant and cloud
    #[arg(long, value_name = "ADDRESS")]
    pub user: Option<String>,
    /// The tenant (GUID or domain), when --user does not say it
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub sign_in: SignInArgs,
    /// Where an app-only credential is kept [default: keyring]
    #[arg(long, value_enum)]
    pub token_store: Option<TokenStoreKind>,
}

#[derive(Args, Debug, Default)]
pub struct AppInstructionsArgs {
    /// The mailbox; its domain tells the tenant
    #[arg(long, value_name = "ADDRESS")]
    pub user: Option<String>,
    /// The tenant (GUID or domain): no network is needed then
    #[arg(long)]
    pub tenant: Option<String>,
    /// Display name of the app
    #[arg(long)]
    pub name: Option<String>,
    /// Steps for an app-only (daemon) app
    #[arg(long)]
    pub app_only: bool,
    /// Include Mail.ReadWrite
    #[arg(long)]
    pub large_attachments: bool,
    /// Login host, e.g. https://login.microsoftonline.us
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct SetupArgs {
    /// The mail address to send from
    #[arg(long, value_name = "ADDRESS")]
    pub user: Option<String>,
    /// The Application (client) ID of an existing app registration
    #[arg(long, value_name = "ID", conflicts_with = "create_app")]
    pub client_id: Option<String>,
    /// Register mailer's app now (you sign in once as a user who may register apps)
    #[arg(long)]
    pub create_app: bool,
    /// Default transport of the profile [default: graph]
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// Where tokens are kept [default: keyring]
    #[arg(long, value_enum)]
    pub token_store: Option<TokenStoreKind>,
    /// Answer yes to every question (register the app when no --client-id is given)
    #[arg(long)]
    pub yes: bool,
    /// Skip the test message
    #[arg(long)]
    pub no_test_send: bool,
    #[command(flatten)]
    pub endpoints: EndpointArgs,
    #[command(flatten)]
    pub sign_in: SignInArgs,
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
