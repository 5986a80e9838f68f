//! The flags of getting a profile: `login`, `discover`, `app create|instructions` and
//! `setup`, with the endpoint and sign-in flags they share. Parsing only.

use super::{ClientAuth, Cloud, ProviderKind, Sasl, SmtpSecurity, TokenStoreKind, TransportKind};
use clap::{Args, Subcommand};
use std::path::PathBuf;

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
