//! `mailer profiles`: the profiles of the config file, the default one marked.
//! Reads only the config: listing never touches the keyring.

use super::{Loaded, Out};
use crate::cli::Global;
use crate::error::Result;

pub fn run(g: &Global) -> Result<()> {
    let loaded = Loaded::new(g)?;
    let out = Out::new(g);
    let c = &loaded.config;
    // The default only counts when such a profile exists.
    let default = Some(c.profile_name(None)).filter(|d| c.profiles.contains_key(d));
    if out.json {
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
        out.print_json(&serde_json::json!({ "default": default, "profiles": list }));
        return Ok(());
    }
    if c.profiles.is_empty() {
        eprintln!(
            "No profiles in {}. Create one with `mailer login --tenant ... --client-id ...`.",
            loaded.path.display()
        );
        return Ok(());
    }
    for (name, p) in &c.profiles {
        let mark = if default.as_ref() == Some(name) {
            '*'
        } else {
            ' '
        };
        println!(
            "{mark} {name}\t{}\t{}\t{}\t{}",
            p.user, p.tenant, p.transport, p.token_store
        );
    }
    Ok(())
}
