//! A profile resolved for use: its config, provider, endpoints, token store and HTTP client,
//! built once per process and passed to whatever needs them.
//!
//! It holds no token itself: [`crate::tokens`] reads and renews them through the store
//! named here. Building one touches neither the network nor the token store.

use crate::config::Profile;
use crate::error::{Error, Result};
use crate::explain::Fill;
use crate::provider::{self, Endpoints, Provider};
use crate::store::{AccessCache, Store};
use lettre::message::Mailbox;
use std::cell::OnceCell;
use std::path::Path;

pub struct Account {
    pub name: String,
    pub profile: Profile,
    pub provider: &'static dyn Provider,
    pub endpoints: Endpoints,
    pub store: Store,
    /// Access tokens where a read costs microseconds (the durable copy is in `store`).
    pub cache: AccessCache,
    config_path: std::path::PathBuf,
    http: OnceCell<reqwest::Client>,
}

impl Account {
    /// `config_path` tells profiles of the same name in two config files apart.
    pub fn new(name: &str, profile: Profile, config_path: &Path) -> Result<Account> {
        let provider = provider::of(profile.provider);
        let endpoints = provider.endpoints(&profile)?;
        let store = Store::open(profile.token_store, name)?;
        let cache = cache_for(name, &profile, &endpoints, config_path);
        Ok(Account {
            name: name.to_owned(),
            profile,
            provider,
            endpoints,
            store,
            cache,
            config_path: config_path.to_owned(),
            http: OnceCell::new(),
        })
    }

    /// After a login named the mailbox, cached tokens are filed under the new identity.
    pub fn identity_changed(&mut self) {
        self.cache = cache_for(
            &self.name,
            &self.profile,
            &self.endpoints,
            &self.config_path,
        );
    }

    /// The HTTP client for this profile's identity provider and API, built on first use
    /// (loading the platform's root certificates costs a few milliseconds).
    pub fn http(&self) -> Result<&reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let client = crate::http::client(self.profile.ca_file.as_deref(), self.profile.timeout())?;
        Ok(self.http.get_or_init(|| client))
    }

    /// The profile's mailbox as an address; a bad `user` is a configuration error.
    pub fn mailbox(&self) -> Result<Mailbox> {
        let name = &self.name;
        crate::message::parse_mailbox(&self.profile.user, "the profile's user").map_err(|e| {
            Error::config(format!("profile \"{name}\" has user {:?}, which is not an address", self.profile.user))
                .why(e.what)
                .fix(format!("log in again with --user you@example.com, or set user in the [profiles.{name}] section of the config"))
        })
    }

    /// Refuses a transport the profile's provider does not offer (`--transport graph` for a
    /// Google account).
    pub fn check_transport(&self, t: crate::config::TransportKind) -> Result<()> {
        let offered = self.provider.transports();
        if offered.contains(&t) {
            return Ok(());
        }
        let names: Vec<&str> = offered.iter().map(|t| t.as_str()).collect();
        Err(Error::usage(format!(
            "{} accounts do not send through {t}",
            self.provider.display_name()
        ))
        .fix(format!(
            "use --transport {}",
            names.join(" or --transport ")
        )))
    }

    /// ` --profile NAME` for printed commands, nothing for the default profile.
    pub fn profile_flag(&self) -> String {
        crate::config::profile_flag(&self.name)
    }

    /// The exact command that logs this profile in again, for "login needed" errors.
    pub fn login_command(&self) -> String {
        super::login::login_command(&self.name, &self.profile)
    }

    /// The profile's values for the fixes of explained errors.
    pub fn fill(&self) -> Fill {
        Fill {
            login: self.login_command(),
            user: self.profile.user.clone(),
            tenant: self.profile.tenant.clone(),
            client_id: self.profile.client_id.clone(),
            profile: self.name.clone(),
        }
    }

    /// What of the app's credentials expires first, and when: the client secret or
    /// certificate recorded in `credential_expires`, or the certificate file's `notAfter`.
    pub fn credential_expiry(&self) -> Result<Option<(&'static str, u64)>> {
        let p = &self.profile;
        let mut found: Vec<(&'static str, u64)> = Vec::new();
        if let Some(when) = &p.credential_expires {
            let t = crate::output::parse_rfc3339(when).ok_or_else(|| {
                Error::config(format!(
                    "credential_expires {when:?} is not an RFC 3339 time"
                ))
                .fix(format!(
                    "write it as 2027-01-31T00:00:00Z in the [profiles.{}] section",
                    self.name
                ))
            })?;
            // `app create` records a certificate's expiry too; then it is the certificate's.
            found.push(match p.certificate {
                Some(_) => ("the certificate", t),
                None => ("the app's credential", t),
            });
        }
        if let Some(path) = &p.certificate {
            let der = super::keys::pem_block(path, &["CERTIFICATE"])?;
            let t = super::keys::not_after(&der).ok_or_else(|| {
                Error::config(format!(
                    "cannot read the expiry of the certificate {}",
                    path.display()
                ))
                .fix("pass a PEM X.509 certificate with --certificate")
            })?;
            found.push(("the certificate", t));
        }
        Ok(found.into_iter().min_by_key(|(_, t)| *t))
    }

    pub fn not_logged_in(&self) -> Error {
        Error::login_needed(format!("profile \"{}\" is not logged in", self.name))
            .why(format!("nothing is stored in {}", self.store.describe()))
            .fix(self.login_command())
    }
}

fn cache_for(name: &str, p: &Profile, endpoints: &Endpoints, config_path: &Path) -> AccessCache {
    AccessCache::new(
        name,
        &crate::store::fingerprint(&[
            &config_path.to_string_lossy(),
            p.provider.as_str(),
            &p.tenant,
            &p.client_id,
            &p.user,
            endpoints.token.as_str(),
            p.token_store.as_str(),
            p.flow.as_str(),
        ]),
    )
}
