//! The app's own keys: PEM files, RSA private keys, the signed JWTs (RFC 7519) that prove
//! who an app is (Entra's certificate client assertion, PS256; a Google service account's
//! assertion, RS256), and when a certificate expires. Only signing: mailer never verifies
//! a token it was given (the server that takes it does). Key bytes live in a [`Secret`] or
//! are read from their file each time; nothing here logs them.

use crate::error::{Error, Result};
use crate::secret::Secret;
use base64::Engine;
use ring::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair};
use std::path::Path;

/// The signature algorithms mailer signs with (RFC 7518 section 3).
#[derive(Clone, Copy, Debug)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what Google's token endpoint takes.
    Rs256,
    /// RSASSA-PSS with SHA-256: what Entra recommends for client assertions.
    Ps256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }

    fn encoding(self) -> &'static dyn RsaEncoding {
        match self {
            Alg::Rs256 => &RSA_PKCS1_SHA256,
            Alg::Ps256 => &RSA_PSS_SHA256,
        }
    }
}

/// `header.claims.signature`, base64url without padding. `header` gets `alg` and `typ`.
pub fn sign(
    alg: Alg,
    mut header: serde_json::Value,
    claims: &serde_json::Value,
    key: &RsaKeyPair,
) -> Result<Secret> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    header["alg"] = alg.name().into();
    header["typ"] = "JWT".into();
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0u8; key.public().modulus_len()];
    key.sign(
        alg.encoding(),
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::internal("signing an assertion failed"))?;
    Ok(Secret::new(format!(
        "{signing_input}.{}",
        b64.encode(signature)
    )))
}

/// A random JWT id (`jti`), so that a server can refuse a replayed assertion.
pub fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::internal("no randomness for an assertion"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The PEM labels an RSA private key comes under: PKCS#8 (Google's key files, openssl's
/// default) or PKCS#1.
const KEY_LABELS: [&str; 2] = ["PRIVATE KEY", "RSA PRIVATE KEY"];

/// An RSA key pair from a PEM block (PKCS#8 or PKCS#1). `where_` names its origin in errors.
pub fn rsa_key(pem: &str, where_: &str) -> Result<RsaKeyPair> {
    let (label, der) = pem_decode(pem, &KEY_LABELS).map_err(|e| Error {
        what: format!("{where_}: {}", e.what),
        ..e
    })?;
    match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        _ => RsaKeyPair::from_der(&der),
    }
    .map_err(|e| {
        Error::config(format!("{where_} is not a usable RSA private key: {e}"))
            .fix("pass an RSA key as PEM (openssl pkey -in key -out key.pem)")
    })
}

/// The RSA key pair in a PEM file (`--private-key`).
pub fn rsa_key_file(path: &Path) -> Result<RsaKeyPair> {
    rsa_key(&read_pem(path)?, &path.display().to_string())
}

/// The first PEM block with one of `labels` in a file, decoded.
pub fn pem_block(path: &Path, labels: &[&str]) -> Result<Vec<u8>> {
    pem_decode(&read_pem(path)?, labels)
        .map(|(_, der)| der)
        .map_err(|e| Error {
            what: format!("{}: {}", path.display(), e.what),
            ..e
        })
}

fn read_pem(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::config(format!("cannot read {}: {e}", path.display()))
            .fix("check --certificate / --private-key")
    })
}

/// The first PEM block with one of `labels` in `text`, decoded; the label found.
fn pem_decode(text: &str, labels: &[&str]) -> Result<(String, Vec<u8>)> {
    for label in labels {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        if let Some(start) = text.find(&begin) {
            let rest = &text[start + begin.len()..];
            let Some(stop) = rest.find(&end) else { break };
            let body: String = rest[..stop]
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| {
                    Error::config(format!("a damaged PEM block: {e}")).fix("export it again")
                })?;
            return Ok((label.to_string(), der));
        }
    }
    Err(
        Error::config(format!("no {} PEM block", labels.join(" or "))).fix(
            "pass PEM files: the certificate (BEGIN CERTIFICATE) and its key (BEGIN PRIVATE KEY)",
        ),
    )
}

/// `notAfter` of an X.509 certificate (RFC 5280 section 4.1.2.5), from its DER.
pub fn not_after(der: &[u8]) -> Option<u64> {
    let (_, cert, _) = der_item(der)?;
    let (_, tbs, _) = der_item(cert)?;
    let mut rest = tbs;
    // version [0] (optional), serialNumber, signature, issuer, then validity.
    if rest.first() == Some(&0xa0) {
        rest = der_item(rest)?.2;
    }
    for _ in 0..3 {
        rest = der_item(rest)?.2;
    }
    let (_, validity, _) = der_item(rest)?;
    let (_, _, after) = der_item(validity)?;
    let (tag, time, _) = der_item(after)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        0x17 => format!(
            "{}{}",
            if text[..2].parse::<u32>().ok()? >= 50 {
                "19"
            } else {
                "20"
            },
            text
        ),
        0x18 => text.to_owned(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| full.get(r)?.parse::<i64>().ok();
    crate::output::unix_from_civil(
        n(0..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)? * 3600 + n(10..12)? * 60 + n(12..14)?,
    )
}

/// One DER item: (tag, content, what follows).
fn der_item(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (
            rest[..n].iter().fold(0usize, |a, b| a << 8 | *b as usize),
            &rest[n..],
        )
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths() {
        assert_eq!(
            der_item(&[0x30, 0x01, 0xff, 0x00]),
            Some((0x30, &[0xff][..], &[0x00][..]))
        );
        assert_eq!(
            der_item(&[0x30, 0x81, 0x01, 0x05]),
            Some((0x30, &[0x05][..], &[][..]))
        );
        assert_eq!(der_item(&[0x30, 0x05, 0x01]), None);
    }
}
