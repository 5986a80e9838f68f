//! The token store: one [`Record`] per profile, durable in the OS keyring or a private
//! file, with access tokens also cached where a read costs microseconds ([`AccessCache`]).
//!
//! Owns where secrets rest and the per-profile lock that serializes read-refresh-write
//! ([`ProfileLock`]). It never falls back from the keyring to a file on its own: plaintext on
//! disk is only ever the user's explicit choice (`--token-store file`). It never logs a
//! secret: every secret field is a [`Secret`]. What the tokens mean is [`crate::tokens`]'s.

mod file;
mod kernel;
mod keyring;
mod lock;

use crate::config::{TokenStoreKind, TransportKind};
use crate::error::{Error, Result};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use file::FileStore;
pub use kernel::{AccessCache, fingerprint};
pub use keyring::KeyringStore;
pub use lock::ProfileLock;

/// What is kept for one profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Unix seconds of the login that started this refresh-token family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logged_in_at: Option<u64>,
    /// Unix seconds of the last time the identity provider accepted our refresh token or
    /// issued a new one; Entra expires refresh tokens after 90 days without use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token_used_at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// An app-only certificate's private key (PEM) made by `mailer app create`, or a
    /// Google service account's key (PEM) taken from its key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<Secret>,
    /// The service account key's id (`private_key_id`), named in its assertions' `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Cached access tokens by transport ("graph", "smtp").
    #[serde(default)]
    pub access: BTreeMap<String, CachedToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CachedToken {
    pub token: Secret,
    /// Unix seconds.
    pub expires_at: u64,
    pub scope: String,
}

impl Record {
    pub const VERSION: u32 = 1;

    pub fn cached(&self, transport: TransportKind) -> Option<&CachedToken> {
        self.access.get(transport.as_str())
    }
}

/// A token store of either kind, bound to one profile.
pub enum Store {
    Keyring(KeyringStore),
    File(FileStore),
}

impl Store {
    pub fn open(kind: TokenStoreKind, profile: &str) -> Result<Store> {
        // Opening touches nothing: a keyring entry or file is reached on first use.
        Ok(match kind {
            TokenStoreKind::Keyring => Store::Keyring(KeyringStore::new(profile)),
            TokenStoreKind::File => Store::File(FileStore::new(profile)?),
        })
    }

    pub fn kind(&self) -> TokenStoreKind {
        match self {
            Store::Keyring(_) => TokenStoreKind::Keyring,
            Store::File(_) => TokenStoreKind::File,
        }
    }

    /// For `status`: which backend, and where.
    pub fn describe(&self) -> String {
        match self {
            Store::Keyring(k) => k.describe(),
            Store::File(f) => format!("file ({})", f.path().display()),
        }
    }

    pub fn load(&self) -> Result<Option<Record>> {
        let bytes = match self {
            Store::Keyring(k) => k.read()?,
            Store::File(f) => f.read()?,
        };
        let Some(bytes) = bytes else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::io(format!(
                "the stored tokens are unreadable: {}",
                self.describe()
            ))
            // Only where it went wrong: serde's words may quote a value, and values here
            // are tokens.
            .why(format!(
                "not the JSON mailer writes (line {} column {})",
                e.line(),
                e.column()
            ))
            .fix("run `mailer logout` and then `mailer login` again")
        })
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::internal(format!("cannot serialize tokens: {e}")))?;
        match self {
            Store::Keyring(k) => k.write(&bytes),
            Store::File(f) => f.write(&bytes),
        }
    }

    /// Returns whether anything was deleted.
    pub fn delete(&self) -> Result<bool> {
        match self {
            Store::Keyring(k) => k.delete(),
            Store::File(f) => f.delete(),
        }
    }

    /// Proves the store can keep a token before a human spends time on a login.
    pub fn check_writable(&self) -> Result<()> {
        match self {
            Store::Keyring(k) => k.check_writable(),
            Store::File(f) => f.check_writable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_keeps_secrets() {
        let mut r = Record {
            version: Record::VERSION,
            ..Default::default()
        };
        r.refresh_token = Some(Secret::new("rt"));
        r.access.insert(
            "graph".into(),
            CachedToken {
                token: Secret::new("at"),
                expires_at: 5,
                scope: "s".into(),
            },
        );
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(serde_json::from_slice::<Record>(&json).unwrap(), r);
        assert!(!format!("{r:?}").contains("\"rt\""));
    }
}
