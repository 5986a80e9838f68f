//! `mailer login`: run an OAuth2 flow, then store the profile (config) and its tokens.
//!
//! Order matters: the token store is proven writable before any browser opens (SPEC
//! section 4), and the tokens are saved before the config names the profile, so a profile
//! in the config always had a working login at some point.

use super::{Loaded, Out};
use crate::auth::{self, Account};
use crate::cli::{Global, LoginArgs};
use crate::config::{Flow, Profile, TokenStoreKind};
use crate::error::{Error, Exit, Result};
use crate::provider;
use crate::secret::Secret;
use crate::store::{ProfileLock, Record, Store};
use std::io::Read;
use std::time::Duration;

pub async fn run(g: &Global, args: LoginArgs) -> Result<()> {
    let mut loaded = Loaded::new(g)?;
    let out = Out::new(g);
    let existing = loaded.config.profiles.get(&loaded.name).cloned();
    let mut profile = merge(existing.as_ref(), &args)?;
    // App-only needs no person: it may run anywhere, cron included.
    if g.non_interactive && profile.flow != Flow::ClientCredentials {
        return Err(Error::login_needed(
            "a login needs a person (a browser or a device code), and --non-interactive forbids it",
        )
        .fix(format!(
            "run it in a terminal without --non-interactive: {}",
            auth::login_command(&loaded.name, &profile)
        )));
    }
    let acct = Account::new(&loaded.name, profile.clone())?;
    acct.http()?; // a bad --ca-file fails now, not after the sign-in

    let store = Store::open(profile.token_store, &loaded.name)?;
    store.check_writable()?;
    let secret = match client_secret(&args)? {
        Some(s) => Some(s),
        // A certificate login must not silently keep authenticating with an old secret.
        None if profile.certificate.is_some() => None,
        // A re-login keeps the secret stored by the previous one.
        None => store.load().ok().flatten().and_then(|r| r.client_secret),
    };
    let record = match profile.flow {
        Flow::ClientCredentials => app_only_record(&acct, secret).await?,
        _ => delegated_record(g, &args, &acct, &mut profile, secret).await?,
    };
    {
        let _lock = ProfileLock::acquire(&loaded.name)?;
        store.save(&record)?;
    }
    if let Some(old) = existing
        .as_ref()
        .filter(|o| o.token_store != profile.token_store)
    {
        // The old store's tokens would otherwise linger where nobody looks.
        if let Ok(old_store) = Store::open(old.token_store, &loaded.name) {
            let _ = old_store.delete();
        }
    }
    loaded
        .config
        .profiles
        .insert(loaded.name.clone(), profile.clone());
    if loaded.config.default_profile.is_none() {
        loaded.config.default_profile = Some(loaded.name.clone());
    }
    loaded.config.save(&loaded.path)?;

    if out.json {
        out.print_json(&serde_json::json!({
            "status": "logged_in", "profile": loaded.name, "user": profile.user, "tenant": profile.tenant,
            "transport": profile.transport.as_str(), "token_store": store.kind().as_str(),
        }));
    }
    out.say(format!(
        "Logged in as {} (profile \"{}\", tenant {}, transport {}); tokens kept in {}.",
        profile.user,
        loaded.name,
        profile.tenant,
        profile.transport,
        store.describe()
    ));
    Ok(())
}

/// The browser or device-code sign-in: a refresh token, and the mailbox from the id_token.
async fn delegated_record(
    g: &Global,
    args: &LoginArgs,
    acct: &Account,
    profile: &mut Profile,
    secret: Option<Secret>,
) -> Result<Record> {
    let client = acct.oauth_client(secret.as_ref())?;
    let authorize_scopes = provider::authorize_scopes(profile);
    let timeout = Duration::from_secs(args.timeout);
    let response = if args.device_code {
        auth::device::login(acct, &client, &authorize_scopes, timeout).await?
    } else {
        let opts = auth::code::Options {
            redirect_uri: profile.redirect_uri.as_deref(),
            no_browser: args.no_browser,
            login_hint: args.login_hint.as_deref(),
            timeout,
            quiet: g.quiet,
        };
        let token_scopes = provider::token_scopes(profile, profile.transport);
        auth::code::login(acct, client, &authorize_scopes, &token_scopes, &opts).await?
    };

    use oauth2::TokenResponse;
    if response.refresh_token().is_none() {
        return Err(Error::new(
            Exit::Unavailable,
            "the identity provider issued no refresh token",
        )
        .why("without one every send would need a new login")
        .fix("make sure the app may request offline_access (API permissions), then log in again"));
    }
    if args.user.is_none() {
        match response
            .extra_fields()
            .id_token
            .as_ref()
            .and_then(auth::user_from_id_token)
        {
            Some(u) => profile.user = u,
            None if !profile.user.is_empty() => {}
            None => {
                return Err(
                    Error::config("the sign-in did not say which mailbox to send from")
                        .why("the id_token has no preferred_username or email claim")
                        .fix(format!(
                            "{} --user you@example.com",
                            auth::login_command(&acct.name, profile)
                        )),
                );
            }
        }
    }

    let mut record = Record {
        version: Record::VERSION,
        client_secret: secret,
        ..Default::default()
    };
    auth::apply_response(&mut record, profile.transport, &response);
    record.logged_in_at = record.refresh_token_used_at;
    Ok(record)
}

/// App-only: no person, no refresh token. One token is minted now to prove the credentials.
async fn app_only_record(acct: &Account, secret: Option<Secret>) -> Result<Record> {
    let p = &acct.profile;
    if ["common", "organizations", "consumers"].contains(&p.tenant.to_ascii_lowercase().as_str()) {
        return Err(Error::usage(format!("--app-only needs your tenant, not {}", p.tenant))
            .why("an app acts in one tenant; Entra refuses client credentials on /common, /organizations and /consumers (AADSTS9001023)")
            .fix("pass --tenant with your tenant's GUID or domain, e.g. --tenant contoso.onmicrosoft.com"));
    }
    if secret.is_none() && p.certificate.is_none() {
        return Err(Error::usage("--app-only needs a client secret or a certificate")
            .fix("pipe the secret to --client-secret-stdin (or set MAILER_CLIENT_SECRET), or pass --certificate cert.pem --private-key key.pem"));
    }
    let mut record = Record {
        version: Record::VERSION,
        client_secret: secret,
        ..Default::default()
    };
    let response = auth::app::mint(acct, record.client_secret.as_ref(), p.transport).await?;
    auth::apply_response(&mut record, p.transport, &response);
    record.logged_in_at = record.refresh_token_used_at;
    Ok(record)
}

/// The profile this login will create: flags over the existing profile over defaults.
fn merge(existing: Option<&Profile>, a: &LoginArgs) -> Result<Profile> {
    let client_id = a.client_id.clone().or_else(|| existing.map(|p| p.client_id.clone())).ok_or_else(|| {
        Error::usage("--client-id is required the first time a profile logs in")
            .fix("pass the Application (client) ID of your Entra app registration: mailer login --client-id 00000000-0000-0000-0000-000000000000")
    })?;
    let keep = |f: fn(&Profile) -> Option<String>| existing.and_then(f);
    let mut p = Profile {
        provider: Default::default(),
        tenant: a
            .tenant
            .clone()
            .or_else(|| keep(|p| Some(p.tenant.clone())))
            .unwrap_or_else(|| "common".into()),
        client_id,
        user: a
            .user
            .clone()
            .or_else(|| keep(|p| Some(p.user.clone())))
            .unwrap_or_default(),
        transport: a
            .transport
            .or(existing.map(|p| p.transport))
            .unwrap_or_default(),
        cloud: a.cloud.or(existing.map(|p| p.cloud)).unwrap_or_default(),
        flow: if a.app_only {
            Flow::ClientCredentials
        } else if a.device_code {
            Flow::DeviceCode
        } else {
            Flow::AuthorizationCode
        },
        certificate: a.certificate.as_deref().map(absolute).or_else(|| {
            existing
                .filter(|_| a.app_only)
                .and_then(|p| p.certificate.clone())
        }),
        private_key: a.private_key.as_deref().map(absolute).or_else(|| {
            existing
                .filter(|_| a.app_only)
                .and_then(|p| p.private_key.clone())
        }),
        token_store: a
            .token_store
            .or(existing.map(|p| p.token_store))
            .unwrap_or(TokenStoreKind::Keyring),
        queue: existing.is_some_and(|p| p.queue),
        client_auth: a.client_auth.or(existing.and_then(|p| p.client_auth)),
        scopes: a
            .scopes
            .as_deref()
            .map(provider::parse_scopes)
            .or_else(|| existing.and_then(|p| p.scopes.clone())),
        large_attachments: a.large_attachments || existing.is_some_and(|p| p.large_attachments),
        authority: a
            .authority
            .clone()
            .or_else(|| keep(|p| p.authority.clone())),
        graph_url: a
            .graph_url
            .clone()
            .or_else(|| keep(|p| p.graph_url.clone())),
        smtp_host: a
            .smtp_host
            .clone()
            .or_else(|| keep(|p| p.smtp_host.clone())),
        smtp_port: a.smtp_port.or(existing.and_then(|p| p.smtp_port)),
        smtp_security: a.smtp_security.or(existing.and_then(|p| p.smtp_security)),
        ca_file: a
            .ca_file
            .clone()
            .or_else(|| existing.and_then(|p| p.ca_file.clone())),
        // A device-code login has no redirect; otherwise a fixed one is kept for re-logins.
        redirect_uri: match a.device_code {
            true => None,
            false => a
                .redirect_uri
                .clone()
                .or_else(|| keep(|p| p.redirect_uri.clone())),
        },
    };
    // Stored absolute, so cron (another working directory) finds it.
    p.ca_file = p.ca_file.as_deref().map(absolute);
    if p.tenant.trim().is_empty() {
        return Err(Error::usage("--tenant is empty")
            .fix("use common, organizations, consumers, a GUID or a domain"));
    }
    Ok(p)
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
