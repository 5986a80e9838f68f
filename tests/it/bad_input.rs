//! Bad input, as a table: send flags, sendmail input, config files, token store files, the
//! outbox and login's ids. Each row is run by the real binary against a logged-in profile
//! (file token store, strict fake Entra and Graph, a real SMTP server) and asserts its
//! sysexits code (README, "Exit codes"), that stderr names the problem and a fix (no panic, not
//! a bare JSON dump), and what the servers saw: nothing at all for every refusal, exactly
//! one message for the few inputs that are odd but fine (LF-only, 8-bit headers, a lone
//! dot) and for an outbox run that sets a damaged file aside and sends the good one.
//!
//! One profile serves every row: before each, the config, the token file and the outbox
//! are put back as the login left them, so rows cannot leak into each other.

use crate::login::CLIENT;
use crate::send::Stand;
use crate::support::harness::{Output, SEND_SIMPLE};
use crate::support::smtp::SmtpOptions;
use base64::Engine;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// What a row feeds on stdin.
enum Input {
    Closed,
    Text(&'static str),
    /// Bytes made when the row runs (large, or not UTF-8).
    Made(fn() -> Vec<u8>),
}

struct Case {
    /// Also the group (the first word) the summary counts by.
    name: &'static str,
    /// `{tmp}` is the fixture's scratch directory, `{authority}` the fake Entra.
    args: &'static [&'static str],
    input: Input,
    /// Damage done before the run (the fixture is reset first).
    prep: fn(&Fx),
    code: i32,
    /// Messages the servers (Graph and SMTP together) must have after the run.
    sent: usize,
    /// Stderr names the problem with each of these.
    says: &'static [&'static str],
}

/// The profile and everything a row may damage, with the state to put back.
struct Fx {
    s: Stand,
    config: String,
    token: Vec<u8>,
    tmp: PathBuf,
}

impl Fx {
    fn new() -> Fx {
        let mut s = Stand::new(Some(SmtpOptions::default()), &["--token-store", "file"]);
        // The kernel cache would serve the login's access token without reading the token
        // file, and the token store rows are about that file.
        s.env.set("MAILER_NO_KERNEL_CACHE", "1");
        let tmp = s.env.path("scratch");
        std::fs::create_dir_all(tmp.join("a-directory")).unwrap();
        // Latin-1 "é": not UTF-8.
        std::fs::write(tmp.join("latin1.txt"), b"caf\xe9\n").unwrap();
        std::fs::write(tmp.join("logo.png"), b"\x89PNG\r\n\x1a\n").unwrap();
        std::fs::write(tmp.join("body.txt"), b"body\n").unwrap();
        Fx {
            config: std::fs::read_to_string(s.env.config_path()).unwrap(),
            token: std::fs::read(s.env.token_file()).unwrap(),
            s,
            tmp,
        }
    }

    fn outbox(&self) -> PathBuf {
        self.s
            .env
            .path(&format!("data/mailer/outbox/{}", self.s.env.profile))
    }

    fn token_dir(&self) -> PathBuf {
        self.s.env.token_file().parent().unwrap().to_owned()
    }

    /// As the login left it: config, token file (0600 in 0700), empty outbox.
    fn reset(&self) {
        let config = self.s.env.config_path();
        if config.is_dir() {
            std::fs::remove_dir_all(&config).unwrap();
        }
        std::fs::write(&config, &self.config).unwrap();
        let token = self.s.env.token_file();
        if token.is_dir() {
            std::fs::remove_dir_all(&token).unwrap();
        }
        std::fs::set_permissions(self.token_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(&token, &self.token).unwrap();
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let outbox = self.outbox();
        if outbox.is_dir() {
            std::fs::remove_dir_all(&outbox).unwrap();
        } else if outbox.exists() {
            std::fs::remove_file(&outbox).unwrap();
        }
    }

    /// Sets `key = value` (TOML text, written as is) in the profile, the file's last table.
    fn config_set(&self, key: &str, value: &str) {
        let kept: Vec<&str> = self
            .config
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .collect();
        let text = format!("{}\n{key} = {value}\n", kept.join("\n"));
        std::fs::write(self.s.env.config_path(), text).unwrap();
    }

    fn config_write(&self, bytes: &[u8]) {
        std::fs::write(self.s.env.config_path(), bytes).unwrap();
    }

    fn token_write(&self, bytes: &[u8]) {
        std::fs::write(self.s.env.token_file(), bytes).unwrap();
    }

    /// A file in the outbox (made 0700 as mailer makes it).
    fn outbox_file(&self, name: &str, bytes: &[u8]) {
        let dir = self.outbox();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }

    /// A good queued message to ann@example.com, as `send --queue` writes one.
    fn queue_good(&self) {
        let message =
            b"From: ada@contoso.example\r\nTo: ann@example.com\r\nSubject: queued\r\n\r\nhi\r\n";
        let entry = serde_json::json!({
            "id": "00000000000000000001-1-0",
            "created": 1,
            "subject": "queued",
            "recipients": ["ann@example.com"],
            "attempts": 0,
            "message": base64::engine::general_purpose::STANDARD.encode(message),
        });
        self.outbox_file(
            "00000000000000000001-1-0.json",
            entry.to_string().as_bytes(),
        );
    }

    /// Graph deliveries plus SMTP messages so far.
    fn sent(&self) -> usize {
        self.s.graph.delivered().len() + self.s.smtp().messages().len()
    }

    /// Every request either fake has seen: a refusal must cost none of them.
    fn contacts(&self) -> (u32, usize, u32, u32) {
        let e = self.s.entra.stats();
        (
            e.oauth.authorize,
            e.oauth.token_requests.len(),
            self.s.graph.stats().requests,
            self.s.smtp().stats().connections,
        )
    }

    fn run(&self, c: &Case) -> Output {
        let tmp = self.tmp.to_str().unwrap();
        let authority = self.s.entra.authority();
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| a.replace("{tmp}", tmp).replace("{authority}", &authority))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match &c.input {
            Input::Closed => self.s.env.run(&args, None),
            Input::Text(t) => self.s.env.run(&args, Some(t)),
            Input::Made(f) => self.s.env.run_bytes(&args, &f()),
        }
    }
}

/// A message for sendmail: To ann, the given extra header lines, a body.
fn sendmail_message(extra: &[u8]) -> Vec<u8> {
    let mut m = b"To: ann@example.com\nSubject: bad input\n".to_vec();
    m.extend_from_slice(extra);
    m.extend_from_slice(b"\nbody\n");
    m
}

const SEND: &[&str] = &SEND_SIMPLE;

fn nothing(_: &Fx) {}

// One row per line: the table is easier to read than rustfmt's nine lines a row.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Input::*;
    macro_rules! case {
        ($name:expr, $args:expr, $input:expr, $prep:expr, $code:expr, $sent:expr, $says:expr) => {
            Case {
                name: $name,
                args: $args,
                input: $input,
                prep: $prep,
                code: $code,
                sent: $sent,
                says: $says,
            }
        };
    }
    vec![
        // --- send flags: refused before any token or network is touched.
        case!("send: no recipient", &["send", "--subject", "s", "--body", "b"], Closed, nothing, 64, 0, &["no recipient"]),
        case!("send: only an empty --to", &["send", "--to", "", "--body", "b"], Closed, nothing, 64, 0, &["no recipient"]),
        case!("send: --to not an address", &["send", "--to", "not an address", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --to"]),
        case!("send: --to without a domain", &["send", "--to", "ann@", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --to"]),
        case!("send: --to with a line break", &["send", "--to", "ann@example.com\r\nBcc: eve@example.com", "--body", "b"], Closed, nothing, 65, 0, &["--to contains a line break"]),
        case!("send: --cc not an address", &["send", "--to", "ann@example.com", "--cc", "bob", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --cc"]),
        case!("send: --bcc empty angle brackets", &["send", "--to", "ann@example.com", "--bcc", "<>", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --bcc"]),
        case!("send: --from two addresses", &["send", "--to", "ann@example.com", "--from", "a@example.com, b@example.com", "--body", "b"], Closed, nothing, 65, 0, &["--from takes exactly one address"]),
        case!("send: --from not an address", &["send", "--to", "ann@example.com", "--from", "me", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --from"]),
        case!("send: --reply-to not an address", &["send", "--to", "ann@example.com", "--reply-to", "x y", "--body", "b"], Closed, nothing, 65, 0, &["invalid address in --reply-to"]),
        case!("send: --subject with a line break", &["send", "--to", "ann@example.com", "--subject", "hi\nBcc: eve@example.com", "--body", "b"], Closed, nothing, 65, 0, &["--subject contains a line break"]),
        case!("send: --header without a colon", &["send", "--to", "ann@example.com", "--header", "X-Ticket 42", "--body", "b"], Closed, nothing, 65, 0, &["has no ':'"]),
        case!("send: --header with a space in the name", &["send", "--to", "ann@example.com", "--header", "X Ticket: 42", "--body", "b"], Closed, nothing, 65, 0, &["invalid header name"]),
        case!("send: --header with an empty name", &["send", "--to", "ann@example.com", "--header", ": 42", "--body", "b"], Closed, nothing, 65, 0, &["invalid header name"]),
        case!("send: --header setting Subject", &["send", "--to", "ann@example.com", "--header", "Subject: x", "--body", "b"], Closed, nothing, 65, 0, &["--header cannot set Subject"]),
        case!("send: --header setting Content-Type", &["send", "--to", "ann@example.com", "--header", "Content-Type: text/html", "--body", "b"], Closed, nothing, 65, 0, &["--header cannot set Content-Type"]),
        case!("send: --header with a line break", &["send", "--to", "ann@example.com", "--header", "X-A: b\r\nBcc: eve@example.com", "--body", "b"], Closed, nothing, 65, 0, &["--header contains a line break"]),
        case!("send: --attach a missing file", &["send", "--to", "ann@example.com", "--body", "b", "--attach", "{tmp}/missing.pdf"], Closed, nothing, 66, 0, &["cannot read", "missing.pdf"]),
        case!("send: --attach a directory", &["send", "--to", "ann@example.com", "--body", "b", "--attach", "{tmp}/a-directory"], Closed, nothing, 66, 0, &["is not a regular file"]),
        case!("send: --body-file missing", &["send", "--to", "ann@example.com", "--body-file", "{tmp}/missing.txt"], Closed, nothing, 66, 0, &["cannot read", "missing.txt"]),
        case!("send: --body-file not UTF-8", &["send", "--to", "ann@example.com", "--body-file", "{tmp}/latin1.txt"], Closed, nothing, 65, 0, &["is not UTF-8"]),
        case!("send: --html-file missing", &["send", "--to", "ann@example.com", "--body", "b", "--html-file", "{tmp}/missing.html"], Closed, nothing, 66, 0, &["cannot read", "missing.html"]),
        case!("send: --inline without HTML", &["send", "--to", "ann@example.com", "--body", "b", "--inline", "{tmp}/logo.png"], Closed, nothing, 64, 0, &["--inline images need an HTML body"]),
        case!("send: --body and --body-file", &["send", "--to", "ann@example.com", "--body", "b", "--body-file", "{tmp}/body.txt"], Closed, nothing, 64, 0, &["cannot be used with"]),
        case!("send: --importance urgent", &["send", "--to", "ann@example.com", "--body", "b", "--importance", "urgent"], Closed, nothing, 64, 0, &["invalid value 'urgent'"]),
        case!("send: --transport fax", &["send", "--to", "ann@example.com", "--body", "b", "--transport", "fax"], Closed, nothing, 64, 0, &["invalid value 'fax'"]),
        case!("send: an unknown flag", &["send", "--to", "ann@example.com", "--body", "b", "--colour"], Closed, nothing, 64, 0, &["unexpected argument '--colour'"]),
        case!("send: --raw with --subject", &["send", "--raw", "--subject", "s"], Text("To: ann@example.com\n\nx\n"), nothing, 64, 0, &["cannot be used with"]),
        case!("send: --raw with empty stdin", &["send", "--raw"], Closed, nothing, 64, 0, &["the message on stdin is empty"]),
        case!("send: --raw without headers", &["send", "--raw", "--to", "ann@example.com"], Text("just a line of text\n"), nothing, 65, 0, &["has no header section"]),
        case!("send: --raw with a bad To header", &["send", "--raw"], Text("To: not an address\nSubject: s\n\nx\n"), nothing, 65, 0, &["invalid To: header"]),
        case!("send: body expected on an empty stdin", &["send", "--to", "ann@example.com"], Text(""), nothing, 64, 0, &["stdin is empty"]),
        case!("send: body on stdin not UTF-8", &["send", "--to", "ann@example.com"], Made(|| b"caf\xe9\n".to_vec()), nothing, 65, 0, &["is not UTF-8"]),
        case!("send: --profile with a slash", &["--profile", "a/b", "send", "--to", "ann@example.com", "--body", "b"], Closed, nothing, 64, 0, &["invalid profile name"]),
        case!("send: --profile nobody logged in to", &["--profile", "nosuch", "send", "--to", "ann@example.com", "--body", "b"], Closed, nothing, 77, 0, &["nosuch"]),
        // --- sendmail input.
        case!("sendmail: no header section", &["sendmail", "ann@example.com"], Text("just a line of text\nand another\n"), nothing, 65, 0, &["has no header section"]),
        case!("sendmail: empty stdin", &["sendmail", "ann@example.com"], Closed, nothing, 64, 0, &["the message on stdin is empty"]),
        case!("sendmail: a lone dot first", &["sendmail", "ann@example.com"], Text(".\nTo: ann@example.com\n\nx\n"), nothing, 64, 0, &["the message on stdin is empty"]),
        case!("sendmail: NUL bytes", &["sendmail", "-t"], Made(|| sendmail_message(b"X-Nul: a\0b\n")), nothing, 65, 0, &["NUL"]),
        case!("sendmail: NUL bytes in the body", &["sendmail", "-t"], Made(|| [sendmail_message(b""), b"x\0y\n".to_vec()].concat()), nothing, 65, 0, &["NUL"]),
        case!("sendmail: a 1 MB header line", &["sendmail", "-t"], Made(|| sendmail_message(format!("X-Long: {}\n", "x".repeat(1 << 20)).as_bytes())), nothing, 65, 0, &["X-Long", "998"]),
        case!("sendmail: 8-bit To header (Latin-1)", &["sendmail", "-t"], Made(|| b"To: Ren\xe9 <ren\xe9@example.com>\nSubject: s\n\nx\n".to_vec()), nothing, 65, 0, &["invalid To: header"]),
        case!("sendmail: -bs (SMTP on stdin)", &["sendmail", "-bs"], Closed, nothing, 64, 0, &["sendmail mode -bs is not supported"]),
        case!("sendmail: -bp (list the queue)", &["sendmail", "-bp"], Closed, nothing, 64, 0, &["sendmail mode -bp is not supported"]),
        case!("sendmail: -q30m (a queue daemon)", &["sendmail", "-q30m"], Closed, nothing, 64, 0, &["sendmail mode -q30m is not supported"]),
        case!("sendmail: an unknown option", &["sendmail", "-Z", "ann@example.com"], Text("To: ann@example.com\n\nx\n"), nothing, 64, 0, &["unknown sendmail option -Z"]),
        case!("sendmail: -f without its value", &["sendmail", "-f"], Closed, nothing, 64, 0, &["-f needs a value"]),
        case!("sendmail: -f not an address", &["sendmail", "-f", "not an address", "ann@example.com"], Text("To: ann@example.com\n\nx\n"), nothing, 65, 0, &["invalid address in -f"]),
        case!("sendmail: no recipients", &["sendmail"], Text("Subject: s\n\nx\n"), nothing, 64, 0, &["no recipients"]),
        case!("sendmail: -t with undisclosed recipients", &["sendmail", "-t"], Text("To: undisclosed-recipients:;\nSubject: s\n\nx\n"), nothing, 64, 0, &["no recipients"]),
        case!("sendmail: a local user", &["sendmail", "root"], Text("Subject: s\n\nx\n"), nothing, 65, 0, &["\"root\" is a local user"]),
        case!("sendmail: a recipient without a domain", &["sendmail", "ann@"], Text("Subject: s\n\nx\n"), nothing, 65, 0, &["invalid address in a recipient"]),
        case!("sendmail: a bad Cc header with -t", &["sendmail", "-t"], Text("To: ann@example.com\nCc: <<>>\nSubject: s\n\nx\n"), nothing, 65, 0, &["invalid Cc: header"]),
        // Odd but fine: sent once.
        case!("sendmail: LF-only line ends", &["sendmail", "-t"], Text("To: ann@example.com\nSubject: lf\n\nline one\nline two\n"), nothing, 0, 1, &[]),
        case!("sendmail: 8-bit UTF-8 Subject", &["sendmail", "-t"], Text("To: ann@example.com\nSubject: Grüße ✓\n\nx\n"), nothing, 0, 1, &[]),
        case!("sendmail: a lone dot ends the message", &["sendmail", "ann@example.com"], Text("Subject: dot\n\nbefore\n.\nafter\n"), nothing, 0, 1, &[]),
        case!("sendmail: -i keeps a lone dot", &["sendmail", "-i", "ann@example.com"], Text("Subject: dot\n\nbefore\n.\nafter\n"), nothing, 0, 1, &[]),
        // --- config files.
        case!("config: a syntax error", SEND, Closed, |f| f.config_write(format!("{}\n[profiles.broken\n", f.config).as_bytes()), 78, 0, &["invalid config file", "config.toml"]),
        case!("config: an unknown top-level key", SEND, Closed, |f| f.config_write(format!("colour = 1\n{}", f.config).as_bytes()), 78, 0, &["unknown field `colour`"]),
        case!("config: an unknown profile key", SEND, Closed, |f| f.config_set("smtp_prot", "25"), 78, 0, &["unknown field `smtp_prot`"]),
        case!("config: smtp_port as a string", SEND, Closed, |f| f.config_set("smtp_port", "\"587\""), 78, 0, &["smtp_port"]),
        case!("config: smtp_port out of range", SEND, Closed, |f| f.config_set("smtp_port", "70000"), 78, 0, &["smtp_port"]),
        case!("config: an unknown transport", SEND, Closed, |f| f.config_set("transport", "\"fax\""), 78, 0, &["fax"]),
        case!("config: a negative timeout", SEND, Closed, |f| f.config_set("timeout", "-1"), 78, 0, &["timeout"]),
        case!("config: rate_limit as a word", SEND, Closed, |f| f.config_set("rate_limit", "\"fast\""), 78, 0, &["rate_limit"]),
        case!("config: queue as a string", SEND, Closed, |f| f.config_set("queue", "\"yes\""), 78, 0, &["queue"]),
        case!("config: a profile without user", SEND, Closed, |f| f.config_write(format!("[profiles.{}]\ntenant = \"contoso.example\"\nclient_id = \"{CLIENT}\"\n", f.s.env.profile).as_bytes()), 78, 0, &["missing field `user`"]),
        case!("config: not UTF-8", SEND, Closed, |f| f.config_write(b"default_profile = \"caf\xe9\"\n"), 78, 0, &["is not UTF-8 text"]),
        case!("config: a directory", SEND, Closed, |f| { std::fs::remove_file(f.s.env.config_path()).unwrap(); std::fs::create_dir(f.s.env.config_path()).unwrap(); }, 78, 0, &["cannot read", "config.toml"]),
        case!("config: plain http authority off loopback", SEND, Closed, |f| f.config_set("authority", "\"http://login.example.com\""), 78, 0, &["https"]),
        case!("config: graph_url not a URL", SEND, Closed, |f| f.config_set("graph_url", "\"not a url\""), 78, 0, &["graph_url"]),
        case!("config: an empty file (the profile is gone)", SEND, Closed, |f| f.config_write(b""), 77, 0, &["mailer login"]),
        case!("send: an empty --profile", &["--profile", "", "send", "--to", "ann@example.com", "--body", "b"], Closed, nothing, 64, 0, &["invalid profile name"]),
        // --- the file token store.
        case!("token store: not JSON", SEND, Closed, |f| f.token_write(b"this is not json"), 74, 0, &["the stored tokens are unreadable", "mailer logout"]),
        case!("token store: truncated", SEND, Closed, |f| f.token_write(&f.token[..f.token.len() / 2]), 74, 0, &["the stored tokens are unreadable"]),
        case!("token store: empty", SEND, Closed, |f| f.token_write(b""), 74, 0, &["the stored tokens are unreadable"]),
        case!("token store: JSON of another shape", SEND, Closed, |f| f.token_write(b"[1,2,3]"), 74, 0, &["the stored tokens are unreadable"]),
        case!("token store: a directory", SEND, Closed, |f| { std::fs::remove_file(f.s.env.token_file()).unwrap(); std::fs::create_dir(f.s.env.token_file()).unwrap(); }, 74, 0, &["is not a regular file"]),
        case!("token store: file readable by others", SEND, Closed, |f| std::fs::set_permissions(f.s.env.token_file(), std::fs::Permissions::from_mode(0o644)).unwrap(), 74, 0, &["accessible by other users", "chmod 600"]),
        case!("token store: directory open to others", SEND, Closed, |f| std::fs::set_permissions(f.token_dir(), std::fs::Permissions::from_mode(0o755)).unwrap(), 74, 0, &["accessible by other users", "chmod 700"]),
        // --- the outbox: a damaged or foreign file is set aside, the run goes on.
        case!("outbox: a corrupt file", &["queue", "run"], Closed, |f| { f.queue_good(); f.outbox_file("00000000000000000002-1-0.json", b"{\"id\": \"trunc"); }, 0, 1, &["is not a message mailer wrote", "damaged"]),
        case!("outbox: a foreign file", &["queue", "run"], Closed, |f| { f.queue_good(); f.outbox_file("notes.json", b"{\"hello\": \"world\"}"); }, 0, 1, &["is not a message mailer wrote", "damaged"]),
        case!("outbox: a directory named like a message", &["queue", "run"], Closed, |f| { f.queue_good(); std::fs::create_dir_all(f.outbox().join("dir.json")).unwrap(); }, 0, 1, &["is not a message mailer wrote", "damaged"]),
        case!("outbox: a message whose bytes are not base64", &["queue", "run"], Closed, |f| { f.queue_good(); f.outbox_file("00000000000000000002-1-0.json", br#"{"id":"00000000000000000002-1-0","created":1,"subject":"s","recipients":["ann@example.com"],"attempts":0,"message":"***"}"#); }, 0, 1, &["damaged"]),
        case!("outbox: a corrupt file seen by queue list", &["queue", "list"], Closed, |f| f.outbox_file("00000000000000000002-1-0.json", b"\x00\x01garbage"), 0, 0, &["is not a message mailer wrote"]),
        case!("outbox: a file where its directory belongs", &["send", "--queue", "--to", "ann@example.com", "--body", "b"], Closed, |f| { std::fs::create_dir_all(f.outbox().parent().unwrap()).unwrap(); std::fs::write(f.outbox(), b"x").unwrap(); }, 74, 0, &["outbox"]),
        // --- login: ids that cannot be right, refused before any contact.
        case!("login: a tenant with a space and a slash", &["login", "--tenant", "a b/c", "--client-id", CLIENT, "--authority", "{authority}", "--no-browser", "--timeout", "5"], Closed, nothing, 64, 0, &["--tenant \"a b/c\" is not a tenant"]),
        case!("login: a client id that is not a GUID", &["login", "--tenant", "contoso.example", "--client-id", "not a guid", "--authority", "{authority}", "--no-browser", "--timeout", "5"], Closed, nothing, 64, 0, &["--client-id \"not a guid\" is not an application id"]),
        case!("login: a redirect URI that is not loopback http", &["login", "--tenant", "contoso.example", "--client-id", CLIENT, "--authority", "{authority}", "--no-browser", "--timeout", "5", "--redirect-uri", "https://example.com/cb"], Closed, nothing, 64, 0, &["--redirect-uri"]),
        case!("login: --smtp-port out of range", &["login", "--smtp-port", "99999"], Closed, nothing, 64, 0, &["--smtp-port"]),
        case!("login: --timeout not a number", &["login", "--timeout", "soon"], Closed, nothing, 64, 0, &["--timeout"]),
        case!("login: --cloud unknown", &["login", "--cloud", "mars"], Closed, nothing, 64, 0, &["invalid value 'mars'"]),
    ]
}

/// Stderr says how to fix it: mailer's `fix:` line, or clap's pointer to `--help`.
fn has_fix(stderr: &str) -> bool {
    stderr.contains("fix:") || stderr.contains("try '--help'")
}

/// Some line of stderr is prose, not a JSON document a person would have to read.
fn has_prose(stderr: &str) -> bool {
    stderr
        .lines()
        .map(str::trim)
        .any(|l| !l.is_empty() && !l.starts_with('{') && !l.starts_with('[') && !l.starts_with('"'))
}

#[test]
fn bad_input_table() {
    let fx = Fx::new();
    let cases = cases();
    let mut failures = Vec::new();
    let mut by_code = std::collections::BTreeMap::<i32, usize>::new();
    for c in &cases {
        fx.reset();
        (c.prep)(&fx);
        let sent_before = fx.sent();
        let contacts_before = fx.contacts();
        let out = fx.run(c);
        let sent = fx.sent() - sent_before;
        let contacts = fx.contacts();
        *by_code.entry(c.code).or_default() += 1;
        let mut wrong = Vec::new();
        if out.code != c.code {
            wrong.push(format!("exit {} (want {})", out.code, c.code));
        }
        if sent != c.sent {
            wrong.push(format!("{sent} sent (want {})", c.sent));
        }
        if c.sent == 0 && contacts != contacts_before {
            wrong.push(format!(
                "contacted a server: (authorize, token, graph, smtp) {contacts_before:?} -> {contacts:?}"
            ));
        }
        if out.stderr.contains("panicked") || out.stderr.contains("RUST_BACKTRACE") {
            wrong.push("panicked".into());
        }
        if c.code != 0 {
            if !has_prose(&out.stderr) {
                wrong.push("stderr has no message in words".into());
            }
            if !has_fix(&out.stderr) {
                wrong.push("stderr names no fix".into());
            }
        }
        for s in c.says {
            if !out.stderr.contains(s) {
                wrong.push(format!("stderr does not say {s:?}"));
            }
        }
        if fx.s.env.browser_was_opened() {
            wrong.push("a browser was opened".into());
        }
        eprintln!(
            "{:<50} exit {:>2} sent {sent}  {}",
            c.name,
            out.code,
            out.stderr.lines().next().unwrap_or_default()
        );
        if !wrong.is_empty() {
            failures.push(format!("{}: {}\n{out}", c.name, wrong.join("; ")));
        }
    }
    eprintln!(
        "{} bad-input cases; by exit code: {}",
        cases.len(),
        by_code
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(cases.len() >= 60, "the issue asks for at least 60 cases");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
