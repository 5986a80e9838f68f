//! A TLS front for the plain-HTTP fakes: terminates TLS on `127.0.0.1:<ephemeral port>` with
//! a given certificate and passes the bytes on to the fake, so a client talks `https://` to
//! a fake Entra or Graph (as it does to the real ones, through proxies and CA checks).
//!
//! Runs on its own thread and runtime; it stops when dropped. Uses the same tokio-rustls
//! and rustls that mailer does, so no second TLS stack enters the tree.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

pub struct TlsFront {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsFront {
    /// Serves TLS with `cert`/`key` (PEM) in front of `backend` (`http://127.0.0.1:PORT`).
    pub fn start(backend: &str, cert: &Path, key: &Path) -> TlsFront {
        let target = backend.trim_start_matches("http://").to_owned();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .expect("read the certificate")
            .collect::<Result<_, _>>()
            .expect("parse the certificate");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the key");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("the TLS front's certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the TLS front");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((tcp, _)) = accepted else { continue };
                            let (acceptor, target) = (acceptor.clone(), target.clone());
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let Ok(mut plain) = tokio::net::TcpStream::connect(&target).await else { return };
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                            });
                        }
                    }
                }
            });
        });
        TlsFront {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
