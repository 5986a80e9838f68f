//! An SMTP client typed out by hand, for the self-tests of the SMTP servers (the Node.js
//! sink of `smtp.rs`, the scripted one of `smtp_faults.rs`): every command and reply is the
//! test's to choose and to check, down to what a real client would never send. STARTTLS
//! trusts only the test CA ([`SmtpServer::ca_file`]).

// Shared test support: every test crate that includes it uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use super::smtp::SmtpServer;

/// How long a read or write may block before the test fails instead of hanging.
const IO_LIMIT: Duration = Duration::from_secs(10);

/// The connection under the client: plain until STARTTLS, TLS after it (or from the start).
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// An SMTP client typed out by hand: each reply read whole (multi-line included).
pub struct SmtpClient {
    io: BufReader<Conn>,
}

impl SmtpClient {
    /// Connects and returns the client with the greeting.
    pub fn connect(port: u16) -> (SmtpClient, Vec<String>) {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(IO_LIMIT)).unwrap();
        tcp.set_write_timeout(Some(IO_LIMIT)).unwrap();
        let mut smtp = SmtpClient {
            io: BufReader::new(Conn::Plain(tcp)),
        };
        let greeting = smtp.reply();
        (smtp, greeting)
    }

    /// Reads one reply whole: its lines, up to the one without `-` after the code.
    pub fn reply(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        // A reply has a handful of lines; 64 is plenty and keeps the loop bounded.
        for _ in 0..64 {
            let mut line = String::new();
            let n = self.io.read_line(&mut line).expect("read a reply");
            assert!(n > 0, "connection closed after {lines:?}");
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines;
            }
        }
        panic!("endless reply: {lines:?}");
    }

    /// Sends one line (CRLF added) without waiting for a reply.
    pub fn send(&mut self, line: &str) {
        self.io
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .unwrap();
        self.io.get_mut().flush().unwrap();
    }

    /// Sends one line and returns the reply to it.
    pub fn command(&mut self, line: &str) -> Vec<String> {
        self.send(line);
        self.reply()
    }

    /// EHLO, STARTTLS, the handshake trusting only the test CA, EHLO again; returns the
    /// EHLO lines under TLS.
    pub fn starttls(self) -> (SmtpClient, Vec<String>) {
        let mut smtp = self;
        assert!(smtp.command("EHLO localhost")[0].starts_with("250"));
        let r = smtp.command("STARTTLS");
        assert!(r[0].starts_with("220"), "{r:?}");
        let Conn::Plain(tcp) = smtp.io.into_inner() else {
            panic!("already under TLS");
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_file_iter(SmtpServer::ca_file()).unwrap()
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut smtp = SmtpClient {
            io: BufReader::new(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp)))),
        };
        let ehlo = smtp.command("EHLO localhost");
        (smtp, ehlo)
    }

    /// MAIL, RCPT, DATA and the message; returns the answer to the final dot.
    pub fn mail(&mut self, from: &str, to: &str, message: &str) -> Vec<String> {
        assert!(self.command(&format!("MAIL FROM:<{from}>"))[0].starts_with("250"));
        assert!(self.command(&format!("RCPT TO:<{to}>"))[0].starts_with("250"));
        assert!(self.command("DATA")[0].starts_with("354"));
        self.io.get_mut().write_all(message.as_bytes()).unwrap();
        self.command(".")
    }
}
