//! One file per command; this module holds what they share: the loaded config, the
//! resolved profile and how results are printed (`-q`, `--json`).

mod login;
mod logout;
mod profiles;
mod queue;
mod send;
mod sendmail;
mod status;
mod token;

use crate::auth::Account;
use crate::cli::{Cli, Command, Global};
use crate::config::Config;
use crate::error::{Error, Result};
use std::path::PathBuf;

pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Login(args) => login::run(g, *args).await,
        Command::Send(args) => send::run(g, *args).await,
        Command::Sendmail { args } => sendmail::run(g, args).await,
        Command::Queue(q) => queue::run(g, q).await,
        Command::Token(args) => token::run(g, args).await,
        Command::Status => status::run(g),
        Command::Logout(args) => logout::run(g, args),
        Command::Profiles => profiles::run(g),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "mailer", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| Error::io(format!("cannot write the man page: {e}")))
        }
    }
}

/// The config file and the profile name a command works on.
pub struct Loaded {
    pub path: PathBuf,
    pub config: Config,
    pub name: String,
}

impl Loaded {
    pub fn new(g: &Global) -> Result<Loaded> {
        let path = match &g.config {
            Some(p) => p.clone(),
            None => crate::config::default_path()?,
        };
        let config = Config::load(&path)?;
        let name = config.profile_name(g.profile.as_deref());
        check_profile_name(&name)?;
        Ok(Loaded { path, config, name })
    }

    /// The profile's account; a profile that does not exist yet means nobody logged in.
    pub fn account(&self) -> Result<Account> {
        let Some(profile) = self.config.profiles.get(&self.name) else {
            let flag = if self.name == "default" {
                String::new()
            } else {
                format!(" --profile {}", self.name)
            };
            return Err(Error::login_needed(format!(
                "no profile \"{}\" in {}",
                self.name,
                self.path.display()
            ))
            .why("nobody has logged in with this profile yet")
            .fix(format!(
                "mailer login{flag} --tenant YOUR_TENANT --client-id YOUR_APP_ID"
            )));
        };
        Account::new(&self.name, profile.clone())
    }
}

/// The profile's mailbox as an address; a bad `user` is a configuration error (78).
pub fn profile_mailbox(name: &str, p: &crate::config::Profile) -> Result<lettre::message::Mailbox> {
    crate::message::parse_mailbox(&p.user, "the profile's user").map_err(|e| {
        Error::config(format!("profile \"{name}\" has user {:?}, which is not an address", p.user))
            .why(e.what)
            .fix(format!("log in again with --user you@example.com, or set user in the [profiles.{name}] section of the config"))
    })
}

/// Profile names become file and keyring entry names.
fn check_profile_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("invalid profile name {name:?}"))
            .fix("use letters, digits, '.', '_' and '-' (at most 64, not starting with '.')"))
    }
}

/// How results reach the user: human lines on stderr unless `-q`, JSON on stdout with
/// `--json`.
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    pub fn new(g: &Global) -> Out {
        Out {
            json: g.json,
            quiet: g.quiet,
        }
    }
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", line.as_ref());
        }
    }
    pub fn print_json(&self, value: &serde_json::Value) {
        println!("{value}");
    }
}

/// `2026-11-22 10:04 UTC`, without a date crate: civil-from-days (Howard Hinnant).
pub fn fmt_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// `3 days`, `5 min`: a coarse duration for people.
pub fn fmt_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs} s"),
        60..=5_399 => format!("{} min", secs / 60),
        5_400..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        for (unix, text) in [
            (0, "1970-01-01 00:00 UTC"),
            (951_782_400, "2000-02-29 00:00 UTC"),
            (1_795_347_840, "2026-11-22 11:44 UTC"),
        ] {
            assert_eq!(fmt_time(unix), text);
        }
        assert_eq!(fmt_duration(59), "59 s");
        assert_eq!(fmt_duration(600), "10 min");
        assert_eq!(fmt_duration(7200), "2 h");
        assert_eq!(fmt_duration(90 * 86_400), "90 days");
    }

    #[test]
    fn profile_names() {
        for (name, ok) in [
            ("work", true),
            ("a.b-c_1", true),
            ("", false),
            (".x", false),
            ("a/b", false),
            ("a b", false),
        ] {
            assert_eq!(check_profile_name(name).is_ok(), ok, "{name}");
        }
    }
}
