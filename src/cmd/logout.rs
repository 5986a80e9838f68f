//! `mailer logout [--forget]`: delete the profile's tokens; `--forget` also drops its config.
//!
//! Entra has no revocation endpoint for a public client, so logging out is deleting the
//! local tokens (as `gh auth logout` does for hosts without revocation).

use crate::cli::LogoutArgs;
use crate::context::Context;
use crate::error::{Error, Result};

pub fn run(ctx: &mut Context, args: LogoutArgs) -> Result<()> {
    if ctx.profile().is_none() {
        return Err(Error::usage(format!(
            "no profile \"{}\" in {}",
            ctx.profile_name,
            ctx.config_path.display()
        ))
        .fix("see `mailer profiles` for the names"));
    }
    let (deleted, store) = {
        let acct = ctx.account()?;
        let _lock = crate::store::ProfileLock::acquire(&acct.name)?;
        acct.cache.clear();
        (acct.store.delete()?, acct.store.describe())
    };
    let name = ctx.profile_name.clone();
    if args.forget {
        ctx.forget_profile(&name);
        ctx.save_config()?;
    }
    ctx.printer.json_only(&serde_json::json!({
        "status": "logged_out", "profile": name, "tokens_deleted": deleted, "forgotten": args.forget,
    }))?;
    let what = if deleted {
        "deleted its tokens from"
    } else {
        "no tokens were stored in"
    };
    ctx.printer
        .say(format!("Logged out of profile \"{name}\": {what} {store}."));
    if args.forget {
        ctx.printer.say(format!(
            "Removed the profile from {}.",
            ctx.config_path.display()
        ));
    }
    Ok(())
}
