//! Google Workspace service accounts with domain-wide delegation (`login --provider google
//! --service-account KEY.json --user someone@domain`): no person and no refresh token. Each
//! access token is minted by a JWT assertion (RFC 7523; RS256, `iss` the service account,
//! `sub` the mailbox, `scope` the transport's, `aud` the token URL, one hour at most, `kid`
//! the key's id), as "Using OAuth 2.0 for Server to Server Applications" describes. The key
//! file's private key is kept in the token store at login, so the file may be deleted.

use super::{Account, TokenAnswer, keys};
use crate::config::TransportKind;
use crate::error::{Class, Error, Result};
use crate::secret::Secret;
use crate::store::Record;
use serde::Deserialize;
use std::path::Path;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const KEY_FIX: &str = "download a JSON key: Google Cloud console > IAM & Admin > Service Accounts > (the account) > Keys > Add key > JSON";
/// Google refuses assertions that live longer than an hour.
const ASSERTION_LIFETIME: u64 = 3600;

/// What mailer takes from a service account's JSON key file.
#[derive(Deserialize)]
pub struct KeyFile {
    #[serde(rename = "type")]
    pub kind: String,
    pub client_email: String,
    pub client_id: String,
    pub private_key: Secret,
    pub private_key_id: String,
}

impl KeyFile {
    /// Reads and checks a key file as Google Cloud console downloads it.
    pub fn read(path: &Path) -> Result<KeyFile> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| {
            Error::new(
                Class::NoInput,
                format!("cannot read the service account key {shown}: {e}"),
            )
            .fix(KEY_FIX)
        })?;
        KeyFile::parse(&text, &shown)
    }

    /// A key file's bytes, checked: a service account's, with a usable RSA key. `shown`
    /// names the file in errors.
    pub fn parse(text: &[u8], shown: &str) -> Result<KeyFile> {
        // serde's message could quote the key: only the place it went wrong is shown.
        let key: KeyFile = serde_json::from_slice(text).map_err(|e| {
            Error::config(format!("{shown} is not a service account key file"))
                .why(format!(
                    "unexpected JSON at line {} column {}",
                    e.line(),
                    e.column()
                ))
                .fix(KEY_FIX)
        })?;
        if key.kind != "service_account" {
            return Err(Error::config(format!(
                "{shown} is a \"{}\" key, not a service account's",
                key.kind
            ))
            .fix(KEY_FIX));
        }
        keys::rsa_key(
            key.private_key.expose(),
            &format!("the private key in {shown}"),
        )?;
        Ok(key)
    }
}

/// The login: one token minted now proves the key and the delegation before the profile
/// is saved.
pub async fn sign_in(acct: &Account, record: &Record) -> Result<TokenAnswer> {
    mint(acct, record, acct.profile.transport).await
}

/// A new access token to `transport`'s scope for the profile's mailbox.
pub async fn mint(
    acct: &Account,
    record: &Record,
    transport: TransportKind,
) -> Result<TokenAnswer> {
    let assertion = assertion(acct, record, transport)?;
    let form = [("grant_type", GRANT), ("assertion", assertion.expose())];
    super::post_token_form(acct, &form, "getting a service account token").await
}

fn assertion(acct: &Account, record: &Record, transport: TransportKind) -> Result<Secret> {
    let p = &acct.profile;
    let login_again = || format!("log in again: {}", acct.login_command());
    let (Some(issuer), Some(pem)) = (&p.service_account, &record.private_key) else {
        return Err(
            Error::config("this service account profile has no key in the token store")
                .fix(login_again()),
        );
    };
    let key = keys::rsa_key(pem.expose(), "the service account key in the token store")
        .map_err(|e| e.fix(login_again()))?;
    let now = crate::tokens::now();
    let claims = serde_json::json!({
        "iss": issuer,
        "sub": p.user,
        "scope": acct.provider.app_scope(p, transport),
        "aud": acct.endpoints.token.as_str(),
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    });
    let header = match &record.key_id {
        Some(kid) => serde_json::json!({ "kid": kid }),
        None => serde_json::json!({}),
    };
    keys::sign(keys::Alg::Rs256, header, &claims, &key)
}

/// Key files are outside input: any bytes are refused with a message or read, never a
/// panic, and the message never quotes the file (it may hold the key).
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_key_file_is_read_or_refused(v in crate::strategies::json(&[
            "type", "client_email", "client_id", "private_key", "private_key_id", "token_uri",
        ]), raw in prop::collection::vec(any::<u8>(), 0..128)) {
            for bytes in [v.to_string().into_bytes(), raw] {
                if let Err(e) = KeyFile::parse(&bytes, "key.json") {
                    prop_assert!(e.fix.is_some());
                    let shown = e.to_string();
                    prop_assert!(!shown.contains("PRIVATE KEY"), "{}", shown);
                }
            }
        }
    }
}
