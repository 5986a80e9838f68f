//! Access tokens cached in the Linux kernel's persistent keyring (keyctl(2)), so that a cron
//! job or `mailer token` with a cached token never waits on the Secret Service.
//!
//! A read costs a few system calls, microseconds, where a Secret Service lookup costs D-Bus
//! round trips and a key exchange. The persistent keyring is the kernel's per-user keyring
//! meant for exactly this: it outlives login sessions, so cron and an interactive shell of
//! the same user share it (keyctl_get_persistent(3)). Each key expires with its token (the
//! kernel removes it), and a reboot empties the cache: then the durable store answers.
//!
//! Only access tokens live here, never refresh tokens or client secrets: losing this cache
//! loses nothing. Keys are named by profile and a fingerprint of what the token was issued
//! for (config file, tenant, client, user, endpoints), so an edited profile or a second
//! config file never gets another's token. Every failure here is a cache miss, never an
//! error. Elsewhere than on Linux the cache is empty.

use super::CachedToken;
use crate::config::TransportKind;

pub struct AccessCache {
    /// `mailer:{profile}:{fingerprint}:` — the key description without the transport.
    prefix: String,
}

impl AccessCache {
    pub fn new(profile: &str, fingerprint: &str) -> AccessCache {
        AccessCache {
            prefix: format!("mailer:{profile}:{fingerprint}:"),
        }
    }

    fn description(&self, transport: TransportKind) -> String {
        format!("{}{}", self.prefix, transport.as_str())
    }

    pub fn get(&self, transport: TransportKind) -> Option<CachedToken> {
        let bytes = imp::read(&self.description(transport))?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Keeps `token` until it expires; `now` is the current Unix time.
    pub fn put(&self, transport: TransportKind, token: &CachedToken, now: u64) {
        let Some(lifetime) = token.expires_at.checked_sub(now).filter(|s| *s > 0) else {
            return;
        };
        if let Ok(bytes) = serde_json::to_vec(token) {
            imp::write(&self.description(transport), &bytes, lifetime);
        }
    }

    pub fn remove(&self, transport: TransportKind) {
        imp::remove(&self.description(transport));
    }

    pub fn clear(&self) {
        for t in [TransportKind::Graph, TransportKind::Smtp] {
            self.remove(t);
        }
    }
}

/// FNV-1a, 64 bits, in hex: enough to tell profiles apart, and no crate for ten lines.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(target_os = "linux")]
mod imp {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};

    /// The user's persistent keyring, linked into this process's keyring so that its keys
    /// are "possessed" (readable) by us whatever session we run in.
    fn ring() -> Option<KeyRing> {
        if std::env::var_os("MAILER_NO_KERNEL_CACHE").is_some() {
            return None;
        }
        KeyRing::get_persistent(KeyRingIdentifier::Process).ok()
    }

    pub fn read(description: &str) -> Option<Vec<u8>> {
        let key = ring()?.search(description).ok()?;
        key.read_to_vec().ok()
    }

    pub fn write(description: &str, bytes: &[u8], lifetime: u64) {
        let Some(ring) = ring() else { return };
        match ring.add_key(description, bytes) {
            Ok(key) => {
                let secs = usize::try_from(lifetime).unwrap_or(usize::MAX);
                if key.set_timeout(secs).is_err() {
                    // A key that cannot expire must not outlive its token.
                    let _ = key.invalidate();
                }
            }
            Err(e) => tracing::debug!("kernel keyring cache not written: {e:?}"),
        }
    }

    pub fn remove(description: &str) {
        if let Some(key) = ring().and_then(|r| r.search(description).ok()) {
            let _ = key.invalidate();
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn read(_description: &str) -> Option<Vec<u8>> {
        None
    }
    pub fn write(_description: &str, _bytes: &[u8], _lifetime: u64) {}
    pub fn remove(_description: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn fingerprints_separate_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x"]), fingerprint(&["x"]));
    }

    #[test]
    fn round_trip_and_removal() {
        let cache = AccessCache::new("unit-test", &fingerprint(&[&crate::fsutil::unique_id()]));
        let now = 1_000;
        let token = CachedToken {
            token: Secret::new("at"),
            expires_at: now + 600,
            scope: "s".into(),
        };
        cache.put(TransportKind::Graph, &token, now);
        // Where the kernel offers no keyring (some containers), the cache stays empty.
        if let Some(got) = cache.get(TransportKind::Graph) {
            assert_eq!(got, token);
            cache.clear();
            assert!(cache.get(TransportKind::Graph).is_none());
        }
        assert!(cache.get(TransportKind::Smtp).is_none());
    }
}
