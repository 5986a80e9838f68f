//! `mailer app create|instructions`: register mailer's app from the command line
//! ([`crate::setup::register`]), or print the portal steps ([`crate::setup::instructions`]).
//! `create` writes the new ids into the profile, so the next `mailer login` needs no flags.

use crate::auth::{self, Account};
use crate::cli::{AppCommand, AppCreateArgs, AppInstructionsArgs};
use crate::config::{Cloud, Flow, Profile};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::provider::microsoft::cloud_info;
use crate::setup::discover::{self, Discovery, Kind};
use crate::setup::register::{self, Consent, Credential, Directory, Plan, Registered};
use crate::setup::{self, Bootstrap, instructions};
use crate::store::{ProfileLock, Record};
use oauth2::url::Url;
use serde_json::json;
use std::time::Duration;

pub async fn run(ctx: &mut Context, cmd: AppCommand) -> Result<()> {
    match cmd {
        AppCommand::Create(args) => {
            let r = create(ctx, &args).await?;
            print(ctx, &args, &r)
        }
        AppCommand::Instructions(args) => print_instructions(ctx, &args).await,
    }
}

/// Where the tenant comes from: `--tenant`, the address's discovery, the profile.
pub(super) struct Target {
    pub tenant: String,
    pub cloud: Cloud,
    pub found: Option<Discovery>,
}

pub(super) async fn target(
    ctx: &Context,
    tenant: Option<&str>,
    user: Option<&str>,
    authority: Option<&Url>,
    ca_file: Option<&std::path::Path>,
) -> Result<Target> {
    let profile = ctx.profile();
    if let Some(t) = tenant {
        return Ok(Target {
            tenant: t.to_owned(),
            cloud: profile.map(|p| p.cloud).unwrap_or_default(),
            found: None,
        });
    }
    if let Some(user) = user {
        let http = crate::http::client(ca_file, crate::config::Profile::default().timeout())?;
        let found = discover::discover(&http, user, authority).await?;
        return Ok(Target {
            tenant: found.tenant(),
            cloud: found.cloud,
            found: Some(found),
        });
    }
    match profile.filter(|p| !["common", ""].contains(&p.tenant.as_str())) {
        Some(p) => Ok(Target {
            tenant: p.tenant.clone(),
            cloud: p.cloud,
            found: None,
        }),
        None => Ok(Target {
            tenant: "organizations".into(),
            cloud: Cloud::Global,
            found: None,
        }),
    }
}

pub(super) struct Created {
    pub registered: Registered,
    pub tenant_id: String,
}

fn personal_refusal(user: &str) -> Error {
    Error::usage(format!("{user} is a personal Microsoft account, which cannot register apps in Entra"))
        .why("personal accounts sign in with an app registered in some Entra tenant whose supported account types include personal Microsoft accounts")
        .fix("get the Application (client) ID of such an app (its owner can make one: `mailer app instructions --tenant THEIR_TENANT`), then: mailer login --tenant consumers --client-id ID --user ADDRESS")
}

/// What `app create` works with: its flags, else the existing profile's values.
struct Inputs {
    existing: Option<Profile>,
    authority_text: Option<String>,
    authority: Option<Url>,
    ca_file: Option<std::path::PathBuf>,
    graph_url: Option<String>,
    user: Option<String>,
}

impl Inputs {
    fn of(ctx: &Context, a: &AppCreateArgs) -> Result<Inputs> {
        let existing = ctx.profile().cloned();
        let from_profile = |f: fn(&Profile) -> Option<String>| existing.as_ref().and_then(f);
        let authority_text = a
            .endpoints
            .authority
            .clone()
            .or_else(|| from_profile(|p| p.authority.clone()));
        let authority = authority_text
            .as_deref()
            .map(|t| crate::provider::checked_url(t, "--authority"))
            .transpose()?;
        Ok(Inputs {
            authority_text,
            authority,
            ca_file: a
                .endpoints
                .ca_file
                .clone()
                .or_else(|| existing.as_ref().and_then(|p| p.ca_file.clone())),
            graph_url: a
                .endpoints
                .graph_url
                .clone()
                .or_else(|| from_profile(|p| p.graph_url.clone())),
            user: a
                .user
                .clone()
                .or_else(|| from_profile(|p| Some(p.user.clone()).filter(|u| !u.is_empty()))),
            existing,
        })
    }
}

/// Registers the app and writes it into the profile; waits until Entra knows it.
pub(super) async fn create(ctx: &mut Context, a: &AppCreateArgs) -> Result<Created> {
    let i = Inputs::of(ctx, a)?;
    let t = target(
        ctx,
        a.tenant.as_deref(),
        i.user.as_deref(),
        i.authority.as_ref(),
        i.ca_file.as_deref(),
    )
    .await?;
    if t.found.as_ref().is_some_and(|d| d.kind == Kind::Personal) {
        return Err(personal_refusal(i.user.as_deref().unwrap_or_default()));
    }
    let bootstrap = bootstrap(ctx, a, &i, &t);
    let (boot, token) =
        setup::bootstrap_token(&bootstrap, a.grant_consent, a.app_only, &ctx.config_path).await?;
    let tenant_id = tenant_guid(&t, &token);
    let plan = Plan {
        name: a.name.clone().unwrap_or_else(default_name),
        audience: "AzureADMyOrg",
        app_only: a.app_only,
        secret: a.secret,
        credential_days: a.cert_days,
        large_attachments: a.large_attachments
            || i.existing.as_ref().is_some_and(|p| p.large_attachments),
        grant_consent: a.grant_consent,
        tenant_id: tenant_id.clone(),
        authority: boot.endpoints.authority.as_str().to_owned(),
    };
    let dir = Directory {
        http: boot.http()?,
        base: format!("{}/v1.0", boot.endpoints.api.as_str().trim_end_matches('/')),
        token,
    };
    let registered = register::register(&dir, &plan, &ctx.printer).await?;
    let mut profile = new_profile(a, i, &t, &plan, &registered);
    keep_credential(ctx, &mut profile, &registered)?;
    let acct = Account::new(&ctx.profile_name, profile.clone(), &ctx.config_path)?;
    let name = ctx.profile_name.clone();
    ctx.put_profile(&name, profile);
    ctx.save_config()?;
    auth::propagation::wait_until_known(&acct, &ctx.printer).await?;
    Ok(Created {
        registered,
        tenant_id,
    })
}

/// The bootstrap sign-in: Microsoft's Graph CLI client unless `--bootstrap-client-id`.
fn bootstrap<'a>(ctx: &'a Context, a: &AppCreateArgs, i: &'a Inputs, t: &Target) -> Bootstrap<'a> {
    Bootstrap {
        client_id: a
            .bootstrap_client_id
            .clone()
            .unwrap_or_else(|| setup::BOOTSTRAP_CLIENT.to_owned()),
        tenant: t.tenant.clone(),
        cloud: t.cloud,
        user: i.user.clone(),
        authority: i.authority_text.clone(),
        graph_url: i.graph_url.clone(),
        ca_file: i.ca_file.clone(),
        device_code: a.sign_in.device_code,
        opts: auth::login::Options {
            no_browser: a.sign_in.no_browser,
            login_hint: i.user.as_deref(),
            timeout: Duration::from_secs(a.sign_in.timeout),
            user_given: true,
            // The bootstrap client is Microsoft's own, long known everywhere.
            new_app: false,
            printer: &ctx.printer,
        },
    }
}

/// A domain names the tenant for signing in; the profile keeps its GUID, read from the
/// bootstrap token's `tid`.
fn tenant_guid(t: &Target, token: &crate::secret::Secret) -> String {
    match crate::config::is_guid(&t.tenant) {
        true => t.tenant.clone(),
        false => crate::tokens::claims(token)
            .and_then(|c| c["tid"].as_str().map(str::to_owned))
            .unwrap_or_else(|| t.tenant.clone()),
    }
}

/// The profile for the new app: its ids and flow over what the profile had.
fn new_profile(
    a: &AppCreateArgs,
    i: Inputs,
    t: &Target,
    plan: &Plan,
    registered: &Registered,
) -> Profile {
    Profile {
        provider: crate::config::ProviderKind::Microsoft,
        tenant: plan.tenant_id.clone(),
        client_id: registered.client_id.clone(),
        user: i.user.unwrap_or_default(),
        cloud: t.cloud,
        flow: if a.app_only {
            Flow::ClientCredentials
        } else {
            Flow::AuthorizationCode
        },
        token_store: a
            .token_store
            .or(i.existing.as_ref().map(|p| p.token_store))
            .unwrap_or_default(),
        large_attachments: plan.large_attachments,
        authority: i.authority_text,
        graph_url: i.graph_url,
        ca_file: i.ca_file,
        smtp_host: a
            .endpoints
            .smtp_host
            .clone()
            .or_else(|| i.existing.as_ref().and_then(|p| p.smtp_host.clone())),
        smtp_port: a
            .endpoints
            .smtp_port
            .or_else(|| i.existing.as_ref().and_then(|p| p.smtp_port)),
        // Written for a certificate too, although doctor can read the file: the profile
        // says when it stops working even after the file moved.
        credential_expires: registered
            .credential
            .as_ref()
            .and(registered.credential_expires)
            .map(crate::output::rfc3339),
        ..i.existing.unwrap_or_default()
    }
}

/// A secret or private key goes to the token store; the public certificate to a file.
fn keep_credential(ctx: &Context, profile: &mut Profile, r: &Registered) -> Result<()> {
    let Some(credential) = &r.credential else {
        return Ok(());
    };
    let mut record = Record {
        version: Record::VERSION,
        ..Record::default()
    };
    match credential {
        Credential::Secret(s) => record.client_secret = Some(s.clone()),
        Credential::Certificate(c) => {
            let dir = crate::fsutil::data_dir()
                .ok_or_else(|| {
                    Error::io("cannot find a data directory for this user")
                        .fix("set XDG_DATA_HOME (or HOME)")
                })?
                .join("certificates");
            let path = dir.join(format!("{}.pem", ctx.profile_name));
            crate::fsutil::create_private_dir(&dir)
                .map_err(|e| Error::io(format!("cannot create {}: {e}", dir.display())))?;
            crate::fsutil::write_atomic(&path, c.cert_pem.as_bytes(), Some(0o644))
                .map_err(|e| Error::io(format!("cannot write {}: {e}", path.display())))?;
            profile.certificate = Some(path);
            profile.private_key = None;
            record.private_key = Some(c.key_pem.clone());
        }
    }
    let store = crate::store::Store::open(profile.token_store, &ctx.profile_name)?;
    store.check_writable()?;
    let _lock = ProfileLock::acquire(&ctx.profile_name)?;
    store.save(&record)
}

/// `mailer (ops@build-01)`: who made it, where, so that an admin can tell apps apart.
fn default_name() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".into());
    format!("mailer ({user}@{})", crate::fsutil::host_name())
}

fn print(ctx: &Context, a: &AppCreateArgs, c: &Created) -> Result<()> {
    let r = &c.registered;
    let json = json!({
        "client_id": r.client_id,
        "object_id": r.object_id,
        "tenant_id": c.tenant_id,
        "consent": match r.consent { Consent::Granted => "granted", Consent::Needed => "needed" },
        "admin_consent_url": r.admin_consent_url,
        "credential_expires": r.credential_expires.map(crate::output::rfc3339),
    });
    let flag = crate::config::profile_flag(&ctx.profile_name);
    ctx.printer.result(&json, || {
        let mut out = format!(
            "App registered: client id {} in tenant {} (profile \"{}\").\n",
            r.client_id, c.tenant_id, ctx.profile_name
        );
        out.push_str(&match r.consent {
            Consent::Granted => "Consent: granted for the whole tenant.\n".to_owned(),
            Consent::Needed if a.app_only => format!("Consent: an admin must grant the application permission Mail.Send: {}\n", r.admin_consent_url),
            Consent::Needed => format!("Consent: each user accepts it at their first login; where users may not consent, an admin opens {}\n", r.admin_consent_url),
        });
        for note in &r.notes {
            out.push_str(&format!("Note: {note}\n"));
        }
        if let Some(end) = r.credential_expires {
            out.push_str(&format!("The credential expires on {}; `mailer doctor` warns 30 days ahead.\n", crate::output::fmt_time(end)));
        }
        if a.app_only {
            let user = a.user.as_deref().unwrap_or("sender@contoso.com");
            out.push_str(&format!(
                "Scope the app to the mailboxes it may send as (Exchange Online PowerShell, as an Exchange admin):\n  New-ApplicationAccessPolicy -AppId {} -PolicyScopeGroupId {user} -AccessRight RestrictAccess -Description \"mailer\"\n  Test-ApplicationAccessPolicy -Identity {user} -AppId {}\nor, with RBAC for Applications (then remove the Entra Mail.Send grant, or the scope has no effect):\n  New-ServicePrincipal -AppId {} -ObjectId {} -DisplayName \"mailer\"\n  New-ManagementScope -Name \"mailer senders\" -RecipientRestrictionFilter \"PrimarySmtpAddress -eq '{user}'\"\n  New-ManagementRoleAssignment -Name \"mailer Mail.Send\" -Role \"Application Mail.Send\" -App {} -CustomResourceScope \"mailer senders\"\n",
                r.client_id, r.client_id, r.client_id, r.sp_id, r.sp_id
            ));
        }
        out.push_str(&format!("Next: mailer{flag} login\n"));
        out
    })
}

async fn print_instructions(ctx: &Context, a: &AppInstructionsArgs) -> Result<()> {
    let authority = a
        .authority
        .as_deref()
        .map(|t| crate::provider::checked_url(t, "--authority"))
        .transpose()?;
    let user = a.user.clone().or_else(|| {
        ctx.profile()
            .map(|p| p.user.clone())
            .filter(|u| !u.is_empty())
    });
    let t = target(
        ctx,
        a.tenant.as_deref(),
        user.as_deref(),
        authority.as_ref(),
        None,
    )
    .await?;
    let personal = t.found.as_ref().is_some_and(|d| d.kind == Kind::Personal);
    let tenant = match (&t.found, personal) {
        (_, true) => "YOUR_TENANT".to_owned(),
        _ => t.tenant.clone(),
    };
    let authority = authority
        .map(|u| u.to_string())
        .unwrap_or_else(|| cloud_info(t.cloud).authority.to_owned());
    let name = a.name.clone().unwrap_or_else(default_name);
    let text = instructions::steps(&instructions::Values {
        tenant: &tenant,
        name: &name,
        user: user.as_deref(),
        personal,
        app_only: a.app_only,
        large_attachments: a.large_attachments,
        authority: &authority,
    });
    let json = json!({ "tenant": tenant, "steps": text.lines().filter(|l| !l.trim().is_empty()).skip(1).collect::<Vec<_>>() });
    ctx.printer.result(&json, || {
        let mut text = text.clone();
        if personal {
            text.insert_str(0, "A personal account cannot register apps: these are the steps for whoever registers one in an Entra tenant they manage (choose account types that include personal accounts).\n\n");
        }
        text
    })
}
