//! `mailer logout [--forget]`: delete the profile's tokens; `--forget` also drops its config.
//!
//! Entra has no revocation endpoint for a public client, so logging out is deleting the
//! local tokens (as `gh auth logout` does for hosts without revocation).

use super::{Loaded, Out};
use crate::cli::{Global, LogoutArgs};
use crate::error::{Error, Result};
use crate::store::Store;

pub fn run(g: &Global, args: LogoutArgs) -> Result<()> {
    let mut loaded = Loaded::new(g)?;
    let out = Out::new(g);
    let Some(profile) = loaded.config.profiles.get(&loaded.name).cloned() else {
        return Err(Error::usage(format!(
            "no profile \"{}\" in {}",
            loaded.name,
            loaded.path.display()
        ))
        .fix("see `mailer profiles` for the names"));
    };
    let store = Store::open(profile.token_store, &loaded.name)?;
    let deleted = {
        let _lock = crate::store::ProfileLock::acquire(&loaded.name)?;
        store.delete()?
    };
    if args.forget {
        loaded.config.profiles.remove(&loaded.name);
        if loaded.config.default_profile.as_deref() == Some(loaded.name.as_str()) {
            loaded.config.default_profile = None;
        }
        loaded.config.save(&loaded.path)?;
    }
    if out.json {
        out.print_json(&serde_json::json!({
            "status": "logged_out", "profile": loaded.name, "tokens_deleted": deleted, "forgotten": args.forget,
        }));
    }
    let what = if deleted {
        "deleted its tokens from"
    } else {
        "no tokens were stored in"
    };
    out.say(format!(
        "Logged out of profile \"{}\": {what} {}.",
        loaded.name,
        store.describe()
    ));
    if args.forget {
        out.say(format!(
            "Removed the profile from {}.",
            loaded.path.display()
        ));
    }
    Ok(())
}
