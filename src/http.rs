//! The HTTP client every request to the identity provider and Graph goes through, and the
//! `ca_file` reader SMTP's TLS shares.
//!
//! rustls with the platform's roots plus the profile's `ca_file`; verification cannot be
//! turned off (README, "Security"). Redirects are never followed: a token request that is
//! redirected would carry a code or a refresh token to a host we did not choose.

use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

/// `timeout` bounds the wait for each read of an answer (a server that accepts and never
/// answers); connecting gets at most 15 s of it, and a whole request ten times it, so a
/// stalled upload ends too.
pub fn client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailer/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(timeout.min(Duration::from_secs(15)))
        .read_timeout(timeout)
        .timeout(timeout * 10);
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("cannot set up the HTTP client: {e}")))
}

pub const CA_FIX: &str =
    "point --ca-file (or ca_file in the config) at a PEM file of CA certificates";

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    ca_pem_blocks(path)?
        .iter()
        .map(|block| {
            reqwest::Certificate::from_pem(block).map_err(|e| {
                Error::config(format!(
                    "the CA file {} is not valid PEM: {e}",
                    path.display()
                ))
                .fix(CA_FIX)
            })
        })
        .collect()
}

/// The certificates of a PEM bundle, one PEM block each (lettre takes them one at a time).
pub fn ca_pem_blocks(path: &Path) -> Result<Vec<Vec<u8>>> {
    let pem = std::fs::read(path).map_err(|e| {
        Error::config(format!("cannot read the CA file {}: {e}", path.display())).fix(CA_FIX)
    })?;
    let blocks = pem_blocks(&pem);
    if blocks.is_empty() {
        return Err(Error::config(format!(
            "the CA file {} holds no certificate",
            path.display()
        ))
        .fix(CA_FIX));
    }
    Ok(blocks)
}

fn pem_blocks(pem: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE-----") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END CERTIFICATE-----") {
            out.push(std::mem::take(&mut current).into_bytes());
        }
    }
    out
}

/// The proxy a request to `url` goes through, as reqwest picks it from the environment
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, upper or lower case, minus `NO_PROXY`), with
/// any password taken out: for messages and `doctor`.
pub fn proxy_for(url: &oauth2::url::Url) -> Option<String> {
    let var = |name: &str| {
        std::env::var(name)
            .or_else(|_| std::env::var(name.to_ascii_lowercase()))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let host = url
        .host_str()?
        .trim_matches(['[', ']'])
        .to_ascii_lowercase();
    if let Some(no) = var("NO_PROXY") {
        let bypass = no.split(',').map(str::trim).any(|n| {
            let n = n.trim_start_matches('.').to_ascii_lowercase();
            n == "*" || (!n.is_empty() && (host == n || host.ends_with(&format!(".{n}"))))
        });
        if bypass {
            return None;
        }
    }
    let scheme_var = if url.scheme() == "https" {
        "HTTPS_PROXY"
    } else {
        "HTTP_PROXY"
    };
    let proxy = var(scheme_var).or_else(|| var("ALL_PROXY"))?;
    Some(match oauth2::url::Url::parse(&proxy) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => proxy,
    })
}

/// What is wrong with a TLS connection, and what fixes it: the certificate error rustls
/// reported, found by type anywhere in the error's chain (HTTP clients and SMTP wrap it in
/// an `io::Error`).
pub fn tls_problem(e: &(dyn std::error::Error + 'static)) -> Option<(&'static str, &'static str)> {
    use rustls::CertificateError as C;
    let mut next = Some(e);
    while let Some(err) = next {
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        let found = [Some(err), inner]
            .into_iter()
            .flatten()
            .find_map(|x| x.downcast_ref::<rustls::Error>());
        if let Some(rustls::Error::InvalidCertificate(c)) = found {
            return Some(match c {
                C::UnknownIssuer | C::BadSignature => (
                    "the server's certificate is signed by a CA this machine does not trust (a TLS-inspecting proxy?)",
                    CA_FIX,
                ),
                C::Expired | C::ExpiredContext { .. } => (
                    "the server's certificate has expired",
                    "check the host's certificate, or the system clock",
                ),
                C::NotValidForName | C::NotValidForNameContext { .. } => (
                    "the server's certificate is not valid for this host name",
                    "check the host name (--authority, --graph-url, --smtp-host)",
                ),
                _ => (
                    "the server's certificate was refused",
                    "check the host's certificate; a TLS-inspecting proxy needs its root in --ca-file",
                ),
            });
        }
        next = inner.or_else(|| err.source());
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_pem_bundles() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n";
        let blocks = super::pem_blocks(pem);
        assert_eq!(blocks.len(), 2);
        assert!(String::from_utf8_lossy(&blocks[1]).contains("BBB"));
    }
}
