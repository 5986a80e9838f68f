//! Keys and certificates for app-only (certificate credential) tests, made with the `openssl`
//! CLI the way an admin makes them for an app registration.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh 2048-bit RSA key and a self-signed certificate for it (`CN=mailer-test`, 2 days).
pub struct TestCertificate {
    /// The private key, PEM, PKCS#8 (`BEGIN PRIVATE KEY`), unencrypted.
    pub key_pem: PathBuf,
    /// The certificate, PEM.
    pub cert_pem: PathBuf,
    /// The certificate, DER (its thumbprints name the key in client assertions).
    pub cert_der: Vec<u8>,
    /// The RSA public key as PKCS#1 `RSAPublicKey`, DER, as
    /// `FakeEntra::add_app_client_certificate` takes it.
    pub public_key_der: Vec<u8>,
}

/// Runs `openssl ARGS` in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run the openssl CLI (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Makes `key.pem`, `cert.pem`, `cert.der` and `pub.der` in `dir`.
pub fn self_signed_certificate(dir: &Path) -> TestCertificate {
    #[rustfmt::skip]
    openssl(dir, &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem",
        "-out", "cert.pem", "-days", "2", "-subj", "/CN=mailer-test"]);
    #[rustfmt::skip]
    openssl(dir, &["rsa", "-in", "key.pem", "-RSAPublicKey_out", "-outform", "DER", "-out", "pub.der"]);
    #[rustfmt::skip]
    openssl(dir, &["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("read {n}: {e}"));
    TestCertificate {
        key_pem: dir.join("key.pem"),
        cert_pem: dir.join("cert.pem"),
        cert_der: read("cert.der"),
        public_key_der: read("pub.der"),
    }
}

/// A CA and a server certificate it signed (SAN `IP:127.0.0.1`, `DNS:localhost`), made the
/// way tests/support/certs/gen.sh makes the committed one: for a TLS server whose CA the
/// client may or may not trust.
pub struct ServerPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes `ca.pem`, `server.pem` and `server-key.pem` in `dir`.
pub fn server_pki(dir: &Path) -> ServerPki {
    #[rustfmt::skip]
    openssl(dir, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=untrusted test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"]);
    #[rustfmt::skip]
    openssl(dir, &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost"]);
    std::fs::write(
        dir.join("leaf.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    #[rustfmt::skip]
    openssl(dir, &["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "server.pem"]);
    ServerPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    }
}
