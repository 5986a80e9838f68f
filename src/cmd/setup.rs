//! `mailer setup`: from nothing to a sent message. Asks only what the flags did not answer
//! (a run without a terminal that lacks an answer exits 64 naming the flag), then strings
//! the steps together: discover, register the app (or take `--client-id`, or print the
//! portal steps), log in, send a test message to oneself, summarize.

use crate::cli::{AppCreateArgs, LoginArgs, SetupArgs};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::setup::discover::{Discovery, Kind};

pub async fn run(ctx: &mut Context, a: SetupArgs) -> Result<()> {
    let address = match &a.user {
        Some(u) => u.clone(),
        None => ask(ctx, "Your mail address", "--user ADDRESS", true)?,
    };
    let authority = a
        .endpoints
        .authority
        .as_deref()
        .map(|t| crate::provider::checked_url(t, "--authority"))
        .transpose()?;
    let t = super::app::target(
        ctx,
        None,
        Some(&address),
        authority.as_ref(),
        a.endpoints.ca_file.as_deref(),
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
    let login = login_args(&a, &t, client_id, &address);
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
/// The cloud goes with the tenant: a US Gov or China tenant signs in at its own authority.
fn login_args(
    a: &SetupArgs,
    t: &super::app::Target,
    client_id: String,
    address: &str,
) -> LoginArgs {
    LoginArgs {
        tenant: Some(t.tenant.clone()),
        cloud: Some(t.cloud),
        client_id: Some(client_id),
        user: Some(address.to_owned()),
        transport: a.transport,
        token_store: a.token_store,
        endpoints: a.endpoints.clone(),
        sign_in: a.sign_in.clone(),
        login_hint: Some(address.to_owned()),
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

/// Step 2: no client id given. Registers the app when the flags or the person say so; the
/// person may instead paste the client id of an app they already have, or ask for the
/// portal steps.
async fn register(ctx: &mut Context, a: &SetupArgs, address: &str) -> Result<String> {
    let answer = match a.create_app || a.yes {
        true => String::new(),
        false => ask(
            ctx,
            "2. Register mailer's app in your tenant now (you sign in once as a user who may register apps)? \
             [Y]es, [p]ortal steps instead, or paste an existing Application (client) ID",
            "--create-app (or --client-id ID)",
            false,
        )?,
    };
    let answer = answer.trim();
    if crate::config::is_guid(answer) {
        return Ok(answer.to_owned());
    }
    if !matches!(answer.to_ascii_lowercase().as_str(), "" | "y" | "yes") {
        let i = crate::cli::AppInstructionsArgs {
            user: Some(address.to_owned()),
            authority: a.endpoints.authority.clone(),
            ..Default::default()
        };
        super::app::run(ctx, crate::cli::AppCommand::Instructions(i)).await?;
        return Err(Error::usage("setup needs an app registration to go on")
            .fix(format!("register it with the steps above, then: mailer setup --user {address} --client-id ID")));
    }
    let args = AppCreateArgs {
        user: Some(address.to_owned()),
        endpoints: a.endpoints.clone(),
        sign_in: a.sign_in.clone(),
        token_store: a.token_store,
        cert_days: 365,
        ..AppCreateArgs::default()
    };
    ctx.printer
        .say("2. Registering mailer's app (sign in once as a user who may register apps)…");
    let created = super::app::create(ctx, &args).await?;
    // The registration itself said which client id it made.
    let r = &created.registered;
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

/// One question on the terminal; without one, a usage error that names the flag. An empty
/// answer to a `required` question is the same error.
fn ask(ctx: &Context, question: &str, flag: &str, required: bool) -> Result<String> {
    if !ctx.interactive() {
        return Err(Error::usage(format!("setup has no answer for: {question}"))
            .why("it runs without a terminal to ask on")
            .fix(format!("pass {flag}")));
    }
    let line = ctx.printer.prompt(question)?;
    if line.is_empty() && required {
        return Err(Error::usage(format!("no answer given to: {question}"))
            .fix(format!("answer it, or pass {flag}")));
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
    // The keepalive line only where the provider expires unused logins.
    let keepalive = acct
        .provider
        .idle_limit_days()
        .map(|days| format!("Keepalive: 0 9 * * 1 mailer{flag} token --refresh >/dev/null   (a login unused for {days} days expires)\n"))
        .unwrap_or_default();
    ctx.printer.result(&json, || {
        format!(
            "Ready: profile \"{}\" sends as {} via {} (tenant {}, {} cloud); tokens in {}.\n\
             Send:      echo 'Backup done.' | mailer{flag} send --to {} --subject 'Nightly backup'\n\
             Cron:      */10 * * * * mailer{flag} queue run -q     (sends what waited in the outbox)\n\
             {keepalive}\
             Check:     mailer{flag} doctor\n",
            acct.name, p.user, p.transport, p.tenant, p.cloud, acct.store.describe(), p.user
        )
    })
}
