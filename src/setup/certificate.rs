//! A certificate credential for an app-only registration, made on this machine: an RSA key
//! (Entra's client assertions are RSA-signed) and a self-signed X.509 certificate for it.
//! The public certificate goes to the app registration; the private key never leaves the
//! token store.

use crate::error::{Error, Result};
use crate::secret::Secret;
use base64::Engine;
use rsa::pkcs8::EncodePrivateKey;
use rsa::rand_core::{CryptoRng, Error as RandError, RngCore};

pub struct NewCertificate {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8, PEM.
    pub key_pem: Secret,
    pub not_after: u64,
}

/// ring's system randomness, for the `rsa` crate (no second source of randomness).
struct SystemRng(ring::rand::SystemRandom);

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        ring::rand::SecureRandom::fill(&self.0, dest).expect("the system's random source failed");
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), RandError> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for SystemRng {}

/// PEM of DER bytes (RFC 7468): base64 in lines of 64.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A 2048-bit RSA key and a certificate `CN={name}` valid from today for `days` days.
pub fn generate(name: &str, days: u32) -> Result<NewCertificate> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::internal(format!("cannot make the certificate: {what}: {e}"))
    };
    let key = rsa::RsaPrivateKey::new(&mut SystemRng(ring::rand::SystemRandom::new()), 2048)
        .map_err(|e| failed("RSA key generation", &e))?;
    let der = key.to_pkcs8_der().map_err(|e| failed("PKCS#8", &e))?;
    let key_pem = Secret::new(pem("PRIVATE KEY", der.as_bytes()));
    let pair =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(key_pem.expose(), &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| failed("key pair", &e))?;
    let now = crate::tokens::now();
    let not_after = now + u64::from(days) * 86_400;
    let ymd = |t: u64| {
        let s = crate::output::rfc3339(t);
        let n = |r: std::ops::Range<usize>| s[r].parse::<i32>().unwrap_or(1);
        rcgen::date_time_ymd(n(0..4), n(5..7) as u8, n(8..10) as u8)
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| failed("parameters", &e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.not_before = ymd(now);
    params.not_after = ymd(not_after);
    let cert = params
        .self_signed(&pair)
        .map_err(|e| failed("signing", &e))?;
    Ok(NewCertificate {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem,
        // Day granularity: the certificate ends at midnight UTC of that day.
        not_after: not_after - not_after % 86_400,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_and_its_key_make_a_client_assertion_key() {
        let c = generate("mailer test", 30).unwrap();
        assert!(c.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!format!("{:?}", c.key_pem).contains("PRIVATE"));
        let b64: String = c
            .key_pem
            .expose()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        // ring reads it, as the client assertion will.
        assert!(ring::signature::RsaKeyPair::from_pkcs8(&der).is_ok());
        let days = (c.not_after - crate::tokens::now()) / 86_400;
        assert!((28..=30).contains(&days), "{days}");
    }
}
