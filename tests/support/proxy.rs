//! A real HTTP proxy on loopback for the proxy tests: Debian's `tinyproxy`, which tunnels
//! `https://` through `CONNECT` as corporate proxies do. Its log says which tunnels it made.
//!
//! tinyproxy takes its port from its config file, so a free one is found by binding port 0
//! and handing that number over (bounded retries if another process takes it meanwhile).
//! The proxy stops when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Proxy {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub fn start() -> Proxy {
        for _ in 0..5 {
            if let Some(p) = Self::try_start() {
                return p;
            }
        }
        panic!("tinyproxy did not start (apt-get install -y tinyproxy)");
    }

    fn try_start() -> Option<Proxy> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!("Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nLogLevel Connect\nMaxClients 50\nPidFile \"{}\"\n", dir.path().join("pid").display()),
        )
        .unwrap();
        let mut child = Command::new("tinyproxy")
            .args(["-d", "-c"])
            .arg(&conf)
            .stdin(Stdio::null())
            // With -d tinyproxy logs to stdout.
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run tinyproxy (apt-get install -y tinyproxy)");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(Proxy {
                    child,
                    port,
                    log,
                    _dir: dir,
                });
            }
            if child.try_wait().ok().flatten().is_some() {
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `host:port` of every CONNECT tunnel asked for so far.
    pub fn tunnels(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lines()
            .filter_map(|l| l.split("): CONNECT ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
