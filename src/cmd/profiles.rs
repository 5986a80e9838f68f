//! `mailer profiles`: the profiles of the config file, the default one marked.
//! Reads only the config: listing never touches the keyring.

use crate::context::Context;
use crate::error::Result;

pub fn run(ctx: &Context) -> Result<()> {
    let c = &ctx.config;
    // The default only counts when such a profile exists.
    let default = Some(c.profile_name(None)).filter(|d| c.profiles.contains_key(d));
    let list: Vec<_> = c
        .profiles
        .iter()
        .map(|(name, p)| {
            serde_json::json!({
                "name": name, "default": default.as_ref() == Some(name), "user": p.user, "tenant": p.tenant,
                "transport": p.transport.as_str(), "cloud": p.cloud.as_str(), "token_store": p.token_store.as_str(),
            })
        })
        .collect();
    let json = serde_json::json!({ "default": default, "profiles": list });
    if c.profiles.is_empty() {
        ctx.printer.json_only(&json)?;
        ctx.printer.say(format!(
            "No profiles in {}. Create one with `mailer login --tenant ... --client-id ...`.",
            ctx.config_path.display()
        ));
        return Ok(());
    }
    ctx.printer.result(&json, || {
        c.profiles
            .iter()
            .map(|(name, p)| {
                let mark = if default.as_ref() == Some(name) {
                    '*'
                } else {
                    ' '
                };
                format!(
                    "{mark} {name}\t{}\t{}\t{}\t{}\n",
                    p.user, p.tenant, p.transport, p.token_store
                )
            })
            .collect()
    })
}
