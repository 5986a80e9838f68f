//! `mailer explain CODE`: what a server's error code means and how to fix it, with this
//! profile's values in the fix. The knowledge is [`crate::explain`]'s table.

use crate::config::ProviderKind;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::explain::{Entry, Fill, Query, Source};
use serde_json::json;

pub fn run(ctx: &Context, words: Vec<String>) -> Result<()> {
    let query = Query::parse(&words.join(" "));
    let fill = fill(ctx);
    let prefer = match ctx.profile().map(|p| p.provider) {
        Some(ProviderKind::Microsoft) | None => Source::Entra,
        Some(ProviderKind::Google) => Source::Google,
        // A custom provider's errors are standard OAuth ones; its server speaks SMTP.
        Some(ProviderKind::Custom) => Source::Smtp,
    };
    let found = query.matches(prefer);
    let Some(first) = found.first() else {
        let docs = query.docs();
        return Err(Error::bad_data(format!("mailer does not know the code {}", query.code))
            .why(format!("look it up at {docs}"))
            .fix("run the failing command with -vv for the server's full answer")
            .with_json(Some(json!({ "code": query.code, "source": query.source.map(|s| s.name()), "known": false, "docs": docs }))));
    };
    let doc = |e: &Entry| {
        json!({
            "code": query.code,
            "source": e.source.name(),
            "class": e.class.name(),
            "meaning": fill.apply(e.meaning),
            "cause": fill.apply(e.cause),
            "fix": fill.apply(e.fix),
            "docs": e.docs,
        })
    };
    ctx.printer.result(&doc(first), || {
        let mut text = String::new();
        for (i, e) in found.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&format!("{} ({})\n", query.code, source_name(e.source)));
            for (label, value) in [
                ("meaning", fill.apply(e.meaning)),
                ("cause", fill.apply(e.cause)),
                ("fix", fill.apply(e.fix)),
                ("docs", e.docs.to_owned()),
            ] {
                if !value.is_empty() {
                    text.push_str(&format!("  {label:<8} {value}\n"));
                }
            }
        }
        text
    })
}

fn source_name(s: Source) -> &'static str {
    match s {
        Source::Entra => "Microsoft Entra ID",
        Source::Graph => "Microsoft Graph",
        Source::Smtp => "SMTP",
        Source::Google => "Google",
    }
}

/// The profile's values when there is a profile, else placeholders a person fills in.
fn fill(ctx: &Context) -> Fill {
    match ctx.account() {
        Ok(acct) => acct.fill(),
        Err(_) => Fill {
            login: "mailer login --tenant YOUR_TENANT --client-id YOUR_APP_ID".into(),
            user: "you@example.com".into(),
            tenant: "YOUR_TENANT".into(),
            client_id: "YOUR_APP_ID".into(),
            profile: ctx.profile_name.clone(),
        },
    }
}
