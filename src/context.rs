//! What a command runs against, resolved once per process: the printer, the config file
//! and the profile name (ripgrep's "HiArgs": one context built from the flags, passed down).
//!
//! Reading the config is the only I/O here; the profile's [`Account`] (endpoints, token
//! store) is built once, when a command first asks for it, and rebuilt only after the
//! command changed the profile through [`Context::put_profile`]. Commands that need no
//! config (`completions`, `man`) never build a context.

use crate::auth::Account;
use crate::cli::Global;
use crate::config::{self, Config, Profile};
use crate::error::{Error, Result};
use crate::output::Printer;
use std::cell::OnceCell;
use std::io::IsTerminal;
use std::path::PathBuf;

pub struct Context {
    pub printer: Printer,
    pub config_path: PathBuf,
    /// Read freely; changed only through [`Context::put_profile`] and
    /// [`Context::forget_profile`], which keep the built account in step.
    pub config: Config,
    pub profile_name: String,
    non_interactive: bool,
    account: OnceCell<Account>,
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
            account: OnceCell::new(),
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

    /// The profile's account, built on first use; a profile that does not exist yet means
    /// nobody logged in.
    pub fn account(&self) -> Result<&Account> {
        if let Some(a) = self.account.get() {
            return Ok(a);
        }
        let Some(profile) = self.profile() else {
            return Err(self.no_profile());
        };
        let built = Account::new(&self.profile_name, profile.clone(), &self.config_path)?;
        Ok(self.account.get_or_init(|| built))
    }

    /// Files `profile` under `name` (the default profile when there is none yet); the
    /// caller saves the config.
    pub fn put_profile(&mut self, name: &str, profile: Profile) {
        self.config.profiles.insert(name.to_owned(), profile);
        if self.config.default_profile.is_none() {
            self.config.default_profile = Some(name.to_owned());
        }
        self.account = OnceCell::new();
    }

    /// Removes the profile `name` (and its place as the default); the caller saves.
    pub fn forget_profile(&mut self, name: &str) {
        self.config.profiles.remove(name);
        if self.config.default_profile.as_deref() == Some(name) {
            self.config.default_profile = None;
        }
        self.account = OnceCell::new();
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
