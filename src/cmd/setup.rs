//! `mailer setup`: from nothing to a sent message. Asks only what the flags did not answer
//! (a run without a terminal that lacks an answer exits 64 naming the flag), then strings
//! the steps together: discover, register the app (or take `--client-id`, or print the
//! portal steps), log in, send a test message to oneself, summarize.

use crate::cli::{AppCreateArgs, LoginArgs, SetupArgs};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::setup::discover::{Discovery, Kind};
use std::io::{BufRead, Write};

pub async fn run(ctx: &mut Context, a: SetupArgs) -> Result<()> {
    let address = match &a.user {
        Some(u) => u.clone(),
        None => ask(ctx, "Your mail address", "--user ADDRESS")?,
    };
    let authority = a
        .authority
        .as_deref()
        .map(|t| crate::provider::checked_url(t, "--authority"))
        .transpose()?;
    let t = super::app::target(
        ctx,
        None,
        Some(&address),
        authority.as_ref(),
        a.ca_file.as_deref(),
    )
    .await?;
    let Some(found) = t.found.as_ref() else {
        return Err(Error::internal(
            "discovery of the address returned no result",
        ));
    };
    say_found(ctx, &address, &t, found);
    let client_id = match (&a.client_id, found.kind) {
        (Some(id), _) => id.clone(),
        (None, Kind::Personal) => return Err(personal(&address)),
        (None, Kind::Work) => register(ctx, &a, &address).await?,
    };
    ctx.printer.say(
        "3. Logging in with the app (a browser opens; the sign-in is kept for unattended use)…",
    );
    let login = login_args(&a, &t.tenant, client_id, &address);
    super::login::run(ctx, login).await?;
    let acct = ctx.account()?;
    let sent = match a.no_test_send {
        true => Vec::new(),
        false => test_sends(ctx, acct, &address).await?,
    };
    summary(ctx, acct, &sent)
}

/// Step 1's line: what discovery found for the address.
fn say_found(ctx: &Context, address: &str, t: &super::app::Target, found: &Discovery) {
    ctx.printer.say(format!(
        "1. {address}: {} account, tenant {}, {} cloud{}.",
        match found.kind {
            Kind::Work => "work or school",
            Kind::Personal => "personal Microsoft",
        },
        t.tenant,
        t.cloud,
        found
            .federation_brand
            .as_ref()
            .map(|b| format!(", sign-in federated to {b}"))
            .unwrap_or_default()
    ));
}

/// Step 3 is `mailer login` with what the earlier steps found.
fn login_args(a: &SetupArgs, tenant: &str, client_id: String, address: &str) -> LoginArgs {
    LoginArgs {
        tenant: Some(tenant.to_owned()),
        client_id: Some(client_id),
        user: Some(address.to_owned()),
        transport: a.transport,
        token_store: a.token_store,
        authority: a.authority.clone(),
        graph_url: a.graph_url.clone(),
        smtp_host: a.smtp_host.clone(),
        smtp_port: a.smtp_port,
        ca_file: a.ca_file.clone(),
        device_code: a.device_code,
        no_browser: a.no_browser,
        login_hint: Some(address.to_owned()),
        timeout: a.timeout,
        ..LoginArgs::default()
    }
}

/// Step 4: a message to oneself through each transport. Only the profile's own transport
/// failing fails the setup; the other one is a warning.
async fn test_sends(
    ctx: &Context,
    acct: &crate::auth::Account,
    address: &str,
) -> Result<Vec<&'static str>> {
    let mut sent = Vec::new();
    for &transport in acct.provider.transports() {
        match crate::doctor::test_message(acct, &ctx.printer, transport, "mailer setup").await {
            Ok(note) => {
                ctx.printer.say(format!(
                    "4. Test message to {address} sent via {transport} ({note})."
                ));
                sent.push(transport.as_str());
            }
            Err(e) if transport == acct.profile.transport => return Err(e),
            Err(e) => ctx.printer.warn(format!(
                "the test through {transport} failed ({}); `mailer doctor` says more",
                e.what
            )),
        }
    }
    Ok(sent)
}

/// Step 2: no client id given. Registers the app when the flags or the person say so.
async fn register(ctx: &mut Context, a: &SetupArgs, address: &str) -> Result<String> {
    let create = a.create_app
        || a.yes
        || {
            let answer = ask(
                ctx,
                "2. Register mailer's app in your tenant now? You sign in once as a user who may register apps [Y/n]",
                "--create-app (or --client-id ID)",
            )?;
            !answer.trim().to_ascii_lowercase().starts_with('n')
        };
    if !create {
        let mut i = crate::cli::AppInstructionsArgs {
            user: Some(address.to_owned()),
            authority: a.authority.clone(),
            ..Default::default()
        };
        i.name = None;
        super::app::run(ctx, crate::cli::AppCommand::Instructions(i)).await?;
        return Err(Error::usage("setup needs an app registration to go on")
            .fix(format!("register it with the steps above, then: mailer setup --user {address} --client-id ID")));
    }
    let args = AppCreateArgs {
        user: Some(address.to_owned()),
        authority: a.authority.clone(),
        graph_url: a.graph_url.clone(),
        ca_file: a.ca_file.clone(),
        device_code: a.device_code,
        no_browser: a.no_browser,
        timeout: a.timeout,
        token_store: a.token_store,
        cert_days: 365,
        ..AppCreateArgs::default()
    };
    ctx.printer
        .say("2. Registering mailer's app (sign in once as a user who may register apps)…");
    let created = super::app::create(ctx, &args).await?;
    let r = &created.registered;
    ctx.printer.say(format!(
        "   App registered: client id {} in tenant {}.",
        r.client_id, created.tenant_id
    ));
    for note in &r.notes {
        ctx.printer.say(format!("   Note: {note}"));
    }
    Ok(r.client_id.clone())
}

fn personal(address: &str) -> Error {
    Error::usage(format!("{address} is a personal Microsoft account: setup needs --client-id"))
        .why("personal accounts cannot register apps; they use an app registered in an Entra tenant whose supported account types include personal Microsoft accounts")
        .fix(format!("get such an app's Application (client) ID (its owner follows `mailer app instructions`), then: mailer setup --user {address} --client-id ID"))
}

/// One question on the terminal; without one, a usage error that names the flag.
fn ask(ctx: &Context, question: &str, flag: &str) -> Result<String> {
    if !ctx.interactive() {
        return Err(Error::usage(format!("setup has no answer for: {question}"))
            .why("it runs without a terminal to ask on")
            .fix(format!("pass {flag}")));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}: ");
    let _ = err.flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::io(format!("cannot read the answer: {e}")))?;
    let line = line.trim().to_owned();
    if line.is_empty() && question.ends_with(':') {
        return Err(Error::usage("no answer given").fix(format!("pass {flag}")));
    }
    Ok(line)
}

fn summary(ctx: &Context, acct: &crate::auth::Account, sent: &[&str]) -> Result<()> {
    let p = &acct.profile;
    let flag = crate::config::profile_flag(&acct.name);
    let json = serde_json::json!({
        "status": "ready", "profile": acct.name, "user": p.user, "tenant": p.tenant, "cloud": p.cloud.as_str(),
        "client_id": p.client_id, "transport": p.transport.as_str(), "token_store": acct.store.describe(),
        "test_sent": sent,
    });
    ctx.printer.result(&json, || {
        format!(
            "Ready: profile \"{}\" sends as {} via {} (tenant {}, {} cloud); tokens in {}.\n\
             Send:      echo 'Backup done.' | mailer{flag} send --to {} --subject 'Nightly backup'\n\
             Cron:      */10 * * * * mailer{flag} queue run -q     (sends what waited in the outbox)\n\
             Keepalive: 0 9 * * 1 mailer{flag} token --refresh >/dev/null   (a login unused for 90 days expires)\n\
             Check:     mailer{flag} doctor\n",
            acct.name, p.user, p.transport, p.tenant, p.cloud, acct.store.describe(), p.user
        )
    })
}
