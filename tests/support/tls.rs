//! A TLS front for the plain-HTTP fakes: terminates TLS on `127.0.0.1:<ephemeral port>` with
//! a given certificate and passes the bytes on to the fake, so a client talks `https://` to
//! a fake Entra or Graph (as it does to the real ones, through proxies and CA checks).
//!
//! Runs on the raw-TCP skeleton ([`TcpServer`]); it stops when dropped. Uses the same tokio-rustls
//! and rustls that mailer does, so no second TLS stack enters the tree.

#![allow(dead_code)]

use super::server::{TcpServer, tls_acceptor};
use std::path::Path;

pub struct TlsFront {
    server: TcpServer,
}

impl TlsFront {
    /// Serves TLS with `cert`/`key` (PEM) in front of `backend` (`http://127.0.0.1:PORT`).
    pub fn start(backend: &str, cert: &Path, key: &Path) -> TlsFront {
        let target = backend.trim_start_matches("http://").to_owned();
        let acceptor = tls_acceptor(cert, key);
        let server = TcpServer::start("TLS front", move |tcp| {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
        TlsFront { server }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.server.port())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }
}

/// Which server certificate [`broken_pki`] makes.
#[derive(Clone, Copy, Debug)]
pub enum Leaf {
    /// Valid for 127.0.0.1 and signed by the CA: the control.
    Good,
    /// Signed by the CA for 127.0.0.1, but its validity ended in 2020.
    Expired,
    /// Signed by the CA, valid now, but for `wrong.example` only.
    WrongHost,
}

/// A fresh CA (`ca.pem`) and a server certificate it signed (`server.pem`,
/// `server-key.pem`) in `dir`, broken as `leaf` says. Made with rcgen, which mailer already
/// depends on, because the openssl CLI here cannot back-date a certificate.
pub fn broken_pki(dir: &Path, leaf: Leaf) -> crate::support::openssl::ServerPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "fault test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = match leaf {
        Leaf::WrongHost => vec![SanType::DnsName("wrong.example".try_into().unwrap())],
        _ => vec![SanType::IpAddress("127.0.0.1".parse().unwrap())],
    };
    if let Leaf::Expired = leaf {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    }
    let cert = p.signed_by(&key, &issuer).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem()).unwrap();
    crate::support::openssl::ServerPki {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server-key.pem"),
    }
}
