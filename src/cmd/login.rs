//! `mailer login`: turn the flags into the profile to log in, run the login
//! ([`crate::auth::login`]), then write the profile to the config.

use crate::auth::{self, Account};
use crate::cli::LoginArgs;
use crate::config::{Flow, Profile, ProviderKind, TokenStoreKind};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::provider;
use crate::secret::Secret;
use std::io::Read;
use std::time::Duration;

pub(super) async fn run(ctx: &mut Context, args: LoginArgs) -> Result<()> {
    let name = ctx.profile_name.clone();
    let existing = ctx.profile().cloned();
    let key = args
        .service_account
        .as_deref()
        .map(auth::service_account::KeyFile::read)
        .transpose()?;
    let mut profile = merge(existing.as_ref(), &args, key.as_ref())?;
    let knows_tenant = args.tenant.is_some() || args.cloud.is_some() || existing.is_some();
    if let (Some(user), false, ProviderKind::Microsoft) =
        (&args.user, knows_tenant, profile.provider)
    {
        discover_tenant(ctx, &mut profile, user).await?;
    }
    // `login` runs its flow even with a piped stdin; only an explicit --non-interactive
    // forbids a person. App-only needs no person: it may run anywhere, cron included.
    if ctx.non_interactive_flag() && profile.flow.needs_a_person() {
        return Err(Error::login_needed(
            "a login needs a person (a browser or a device code), and --non-interactive forbids it",
        )
        .fix(format!(
            "run it in a terminal without --non-interactive: {}",
            auth::login::login_command(&name, &profile)
        )));
    }
    let mut acct = Account::new(&name, profile, &ctx.config_path)?;
    // A re-login keeps the credentials stored by the previous one (or `app create`).
    let stored = acct.store.load().ok().flatten();
    let new_app = stored.is_none();
    let creds = credentials(&args, &acct, key, stored.unwrap_or_default())?;
    let opts = auth::login::Options {
        no_browser: args.sign_in.no_browser,
        login_hint: args.login_hint.as_deref(),
        timeout: Duration::from_secs(args.sign_in.timeout),
        user_given: args.user.is_some(),
        new_app,
        printer: &ctx.printer,
    };
    auth::login::login(&mut acct, creds, &opts).await?;
    if let Some(old) = &existing {
        auth::login::forget_old_store(&name, old.token_store, acct.profile.token_store);
    }
    ctx.put_profile(&name, acct.profile.clone());
    ctx.save_config()?;
    logged_in(ctx, &acct)
}

/// What the app proves itself with: a key file named now wins over what is stored; a
/// secret from stdin or the environment, else the stored one.
fn credentials(
    args: &LoginArgs,
    acct: &Account,
    key: Option<auth::service_account::KeyFile>,
    stored: crate::store::Record,
) -> Result<auth::login::AppCredentials> {
    if let Some(k) = key {
        return Ok(auth::login::AppCredentials {
            client_secret: None,
            private_key: Some(k.private_key),
            key_id: Some(k.private_key_id),
        });
    }
    let client_secret = match client_secret(args)? {
        Some(s) => Some(s),
        // A certificate login must not silently keep authenticating with an old secret.
        None if acct.profile.certificate.is_some() => None,
        None => stored.client_secret,
    };
    Ok(auth::login::AppCredentials {
        client_secret,
        private_key: stored.private_key.filter(|_| args.private_key.is_none()),
        key_id: stored.key_id,
    })
}

fn logged_in(ctx: &Context, acct: &Account) -> Result<()> {
    let (p, name) = (&acct.profile, &acct.name);
    ctx.printer.json_only(&serde_json::json!({
        "status": "logged_in", "profile": name, "user": p.user, "tenant": p.tenant,
        "provider": p.provider.as_str(), "transport": p.transport.as_str(),
        "token_store": acct.store.kind().as_str(),
    }))?;
    let tenant = match p.tenant.as_str() {
        "" => String::new(),
        t => format!("tenant {t}, "),
    };
    ctx.printer.say(format!(
        "Logged in as {} (profile \"{name}\", {} {tenant}transport {}); tokens kept in {}.",
        p.user,
        acct.provider.display_name(),
        p.transport,
        acct.store.describe()
    ));
    Ok(())
}

/// `--user` without `--tenant`: the tenant GUID and cloud come from discovery, so that
/// nobody needs to know them.
async fn discover_tenant(ctx: &Context, profile: &mut Profile, user: &str) -> Result<()> {
    let authority = profile
        .authority
        .as_deref()
        .map(|a| crate::provider::checked_url(a, "authority"))
        .transpose()?;
    let http = crate::http::client(profile.ca_file.as_deref(), profile.timeout())?;
    let found = crate::setup::discover::discover(&http, user, authority.as_ref()).await?;
    profile.tenant = found.tenant();
    profile.cloud = found.cloud;
    ctx.printer.say(format!(
        "{user}: {} account, tenant {}, {} cloud",
        match found.kind {
            crate::setup::discover::Kind::Work => "work or school",
            crate::setup::discover::Kind::Personal => "personal Microsoft",
        },
        profile.tenant,
        found.cloud
    ));
    Ok(())
}

/// The profile this login will create: flags over the existing profile over defaults.
// Long because it is one struct literal, a line or three per field; split, the precedence
// rule (flag, then profile, then default) would be spread over helpers that each say it once.
fn merge(
    existing: Option<&Profile>,
    a: &LoginArgs,
    key: Option<&auth::service_account::KeyFile>,
) -> Result<Profile> {
    // A login for another provider starts afresh: none of the old one's hosts apply.
    let existing = existing.filter(|e| a.provider.is_none_or(|p| p == e.provider));
    let kind = a
        .provider
        .or(existing.map(|p| p.provider))
        .unwrap_or_default();
    let provider = provider::of(kind);
    let client_id = client_id_of(a, existing, key, kind)?;
    let flow = flow_of(a, existing);
    // A certificate belongs to an app-only login; another flow forgets it.
    let kept = |f: fn(&Profile) -> Option<std::path::PathBuf>| {
        existing.filter(|_| flow.is_app_only()).and_then(f)
    };
    let mut p = Profile {
        provider: kind,
        // Entra's sign-in without a tenant is /common; other providers have none.
        tenant: a
            .tenant
            .clone()
            .or_else(|| existing.map(|p| p.tenant.clone()))
            .unwrap_or_else(|| match kind {
                ProviderKind::Microsoft => "common".into(),
                _ => String::new(),
            }),
        client_id,
        user: a
            .user
            .clone()
            .or_else(|| existing.map(|p| p.user.clone()))
            .unwrap_or_default(),
        transport: a
            .transport
            .or(existing.map(|p| p.transport))
            .unwrap_or_else(|| provider.default_transport()),
        cloud: a.cloud.or(existing.map(|p| p.cloud)).unwrap_or_default(),
        flow,
        service_account: key
            .map(|k| k.client_email.clone())
            .or_else(|| existing.and_then(|p| p.service_account.clone()))
            .filter(|_| flow == Flow::ServiceAccount),
        certificate: a
            .certificate
            .as_deref()
            .map(absolute)
            .or_else(|| kept(|p| p.certificate.clone())),
        private_key: a
            .private_key
            .as_deref()
            .map(absolute)
            .or_else(|| kept(|p| p.private_key.clone())),
        token_store: a
            .token_store
            .or(existing.map(|p| p.token_store))
            .unwrap_or(TokenStoreKind::Keyring),
        client_auth: a.client_auth.or(existing.and_then(|p| p.client_auth)),
        scopes: a
            .scopes
            .as_deref()
            .map(provider::parse_scopes)
            .or_else(|| existing.and_then(|p| p.scopes.clone())),
        large_attachments: a.large_attachments || existing.is_some_and(|p| p.large_attachments),
        ..Profile::default()
    };
    keep_settings(&mut p, existing);
    set_endpoints(&mut p, existing, a);
    provider.check_login(&p)?;
    Ok(p)
}

/// What a person set in the profile (not login's flags) stays through a new login.
fn keep_settings(p: &mut Profile, existing: Option<&Profile>) {
    let Some(e) = existing else { return };
    p.queue = e.queue;
    p.notify_command = e.notify_command.clone();
    p.fallback = e.fallback;
    p.timeout = e.timeout;
    p.rate_limit = e.rate_limit;
    p.credential_expires = e.credential_expires.clone();
}

/// `--client-id`, else the key file's (a service account), else the profile's.
fn client_id_of(
    a: &LoginArgs,
    existing: Option<&Profile>,
    key: Option<&auth::service_account::KeyFile>,
    kind: ProviderKind,
) -> Result<String> {
    a.client_id
        .clone()
        .or_else(|| key.map(|k| k.client_id.clone()))
        .or_else(|| existing.map(|p| p.client_id.clone()))
        .ok_or_else(|| {
            let fix = match kind {
                ProviderKind::Microsoft => "pass the Application (client) ID of your Entra app registration: mailer login --client-id 00000000-0000-0000-0000-000000000000, or create one: mailer app create",
                _ => "pass your OAuth client's ID (for Google: a Desktop app client from Google Cloud console > APIs & Services > Credentials)",
            };
            Error::usage("--client-id is required the first time a profile logs in").fix(fix)
        })
}

/// The flow the flags ask for; without any, an app-only profile (as `mailer app create`
/// writes one) stays app-only, and anything else signs in in the browser.
fn flow_of(a: &LoginArgs, existing: Option<&Profile>) -> Flow {
    if a.service_account.is_some() {
        Flow::ServiceAccount
    } else if a.app_only {
        Flow::ClientCredentials
    } else if a.sign_in.device_code {
        Flow::DeviceCode
    } else if let Some(p) =
        existing.filter(|p| p.flow.is_app_only() && a.login_hint.is_none() && !a.sign_in.no_browser)
    {
        p.flow
    } else {
        Flow::AuthorizationCode
    }
}

/// Where requests go: each override from the flags, else kept from the existing profile.
fn set_endpoints(p: &mut Profile, existing: Option<&Profile>, a: &LoginArgs) {
    let keep = |f: fn(&Profile) -> Option<String>| existing.and_then(f);
    let pick = |flag: &Option<String>, f| flag.clone().or_else(|| keep(f));
    let e = &a.endpoints;
    p.authority = pick(&e.authority, |p| p.authority.clone());
    p.graph_url = pick(&e.graph_url, |p| p.graph_url.clone());
    p.smtp_host = pick(&e.smtp_host, |p| p.smtp_host.clone());
    p.authorize_url = pick(&a.authorize_url, |p| p.authorize_url.clone());
    p.token_url = pick(&a.token_url, |p| p.token_url.clone());
    p.api_url = pick(&a.api_url, |p| p.api_url.clone());
    p.smtp_port = e.smtp_port.or(existing.and_then(|p| p.smtp_port));
    p.sasl = a.sasl.or(existing.and_then(|p| p.sasl));
    p.smtp_security = a.smtp_security.or(existing.and_then(|p| p.smtp_security));
    // Stored absolute, so cron (another working directory) finds it.
    p.ca_file = e
        .ca_file
        .clone()
        .or_else(|| existing.and_then(|p| p.ca_file.clone()))
        .as_deref()
        .map(absolute);
    // A device-code login has no redirect; otherwise a fixed one is kept for re-logins.
    p.redirect_uri = match a.sign_in.device_code {
        true => None,
        false => pick(&a.redirect_uri, |p| p.redirect_uri.clone()),
    };
}

fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// The client secret of a confidential app: `--client-secret-stdin`, else
/// `MAILER_CLIENT_SECRET`. Never a flag value (it would show in `ps`).
fn client_secret(a: &LoginArgs) -> Result<Option<Secret>> {
    if a.client_secret_stdin {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal() {
            // Typed into a terminal, the secret would be echoed and kept in scrollback.
            return Err(Error::usage("--client-secret-stdin reads the secret from a pipe, not a terminal")
                .fix("printf %s \"$SECRET\" | mailer login --client-secret-stdin ...  (or set MAILER_CLIENT_SECRET)"));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Error::io(format!("cannot read the client secret from stdin: {e}")))?;
        let s = s.trim_end_matches(['\r', '\n']).to_owned();
        if s.is_empty() {
            return Err(Error::usage("--client-secret-stdin got an empty secret")
                .fix("pipe the secret in: printf %s \"$SECRET\" | mailer login --client-secret-stdin ..."));
        }
        return Ok(Some(Secret::new(s)));
    }
    Ok(std::env::var("MAILER_CLIENT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .map(Secret::new))
}
