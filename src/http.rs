//! The HTTP client every request to the identity provider (and later Graph) goes through.
//!
//! rustls with the platform's roots plus the profile's `ca_file`; verification cannot be
//! turned off (SPEC section 9). Redirects are never followed: a token request that is
//! redirected would carry a code or a refresh token to a host we did not choose.

use crate::error::{Error, Result};
use std::path::Path;
use std::time::Duration;

pub fn client(ca_file: Option<&Path>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailer/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(15))
        .timeout(Duration::from_secs(120));
    if let Some(path) = ca_file {
        for cert in read_ca_file(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| Error::internal(format!("cannot set up the HTTP client: {e}")))
}

fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let fix = "point --ca-file (or ca_file in the config) at a PEM file of CA certificates";
    let pem = std::fs::read(path).map_err(|e| {
        Error::config(format!("cannot read the CA file {}: {e}", path.display())).fix(fix)
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        Error::config(format!(
            "the CA file {} is not valid PEM: {e}",
            path.display()
        ))
        .fix(fix)
    })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "the CA file {} holds no certificate",
            path.display()
        ))
        .fix(fix));
    }
    Ok(certs)
}
