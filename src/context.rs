//! What a command runs against, resolved once per process: the printer, the config file
//! and the profile name (ripgrep's "HiArgs": one context built from the flags, passed down).
//!
//! Reading the config is the only I/O here; the profile's [`Account`] (endpoints, token
//! store) is built once, when a command asks for it. Commands that need no config
//! (`completions`, `man`) never build a context.

use crate::auth::Account;
use crate::cli::Global;
use crate::config::{self, Config, Profile};
use crate::error::{Error, Result};
use crate::output::Printer;
use std::io::IsTerminal;
use std::path::PathBuf;

pub struct Context {
    pub printer: Printer,
    pub config_path: PathBuf,
    pub config: Config,
    pub profile_name: String,
    non_interactive: bool,
}

impl Context {
    pub fn load(g: &Global) -> Result<Context> {
        let config_path = match &g.config {
            Some(p) => p.clone(),
            None => config::default_path()?,
        };
        let config = Config::load(&config_path)?;
        let profile_name = config.profile_name(g.profile.as_deref());
        config::check_profile_name(&profile_name)?;
        Ok(Context {
            printer: Printer::new(g.json, g.quiet),
            config_path,
            config,
            profile_name,
            non_interactive: g.non_interactive,
        })
    }

    /// `--non-interactive` was given explicitly.
    pub fn non_interactive_flag(&self) -> bool {
        self.non_interactive
    }

    /// Whether a person may be asked something: not with `--non-interactive`, not when
    /// stdin is not a terminal (cron, pipes), not under CI.
    pub fn interactive(&self) -> bool {
        !self.non_interactive && std::io::stdin().is_terminal() && std::env::var_os("CI").is_none()
    }

    pub fn profile(&self) -> Option<&Profile> {
        self.config.profiles.get(&self.profile_name)
    }

    /// The profile's account; a profile that does not exist yet means nobody logged in.
    pub fn account(&self) -> Result<Account> {
        let Some(profile) = self.profile() else {
            return Err(self.no_profile());
        };
        Account::new(&self.profile_name, profile.clone(), &self.config_path)
    }

    pub fn no_profile(&self) -> Error {
        let flag = crate::config::profile_flag(&self.profile_name);
        Error::login_needed(format!(
            "no profile \"{}\" in {}",
            self.profile_name,
            self.config_path.display()
        ))
        .why("nobody has logged in with this profile yet")
        .fix(format!(
            "mailer login{flag} --tenant YOUR_TENANT --client-id YOUR_APP_ID"
        ))
    }

    pub fn save_config(&self) -> Result<()> {
        self.config.save(&self.config_path)
    }
}
