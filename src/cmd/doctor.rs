//! `mailer doctor`: runs [`crate::doctor`]'s checks for the profile (or every profile) and
//! prints them; exits with the code of the first failure.

use crate::cli::DoctorArgs;
use crate::context::Context;
use crate::doctor::{self, Options, Report};
use crate::error::{Error, Result};

pub async fn run(ctx: &Context, args: DoctorArgs) -> Result<()> {
    let opts = Options {
        network: !args.no_network,
        send_test: args.send_test,
    };
    let names: Vec<String> = match args.all_profiles {
        true => ctx.config.profiles.keys().cloned().collect(),
        false => vec![ctx.profile_name.clone()],
    };
    if names.is_empty() {
        return Err(
            Error::login_needed(format!("no profiles in {}", ctx.config_path.display()))
                .fix("create one: mailer login --tenant YOUR_TENANT --client-id YOUR_APP_ID"),
        );
    }
    let mut reports = Vec::new();
    for name in &names {
        let acct = match ctx.config.profiles.get(name) {
            Some(p) => crate::auth::Account::new(name, p.clone(), &ctx.config_path),
            None => Err(ctx.no_profile()),
        };
        reports.push(doctor::examine(name, acct, &ctx.printer, &opts).await);
    }
    print(ctx, &reports, args.all_profiles)
}

/// Prints reports whose config could not even be read: one failing `config` check.
pub fn config_unreadable(json: bool, quiet: bool, e: Error) -> Result<()> {
    let report = Report {
        profile: String::new(),
        checks: vec![doctor::Check::from_error("config", &e)],
    };
    let printer = crate::output::Printer::new(json, quiet);
    printer.result(&report.to_json(), || report.to_text())?;
    Err(e.shown())
}

fn print(ctx: &Context, reports: &[Report], all: bool) -> Result<()> {
    let json = match all {
        true => serde_json::json!({
            "ok": reports.iter().all(|r| r.first_failure().is_none()),
            "profiles": reports.iter().map(Report::to_json).collect::<Vec<_>>(),
        }),
        false => reports[0].to_json(),
    };
    ctx.printer.result(&json, || {
        reports
            .iter()
            .map(Report::to_text)
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    match reports.iter().find_map(Report::first_failure) {
        None => Ok(()),
        Some(class) => {
            // The checks above are the report; this only carries the exit code.
            Err(Error::new(class, "doctor found a problem").shown())
        }
    }
}
