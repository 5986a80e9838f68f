//! Self-tests of the HTTP skeleton every fake runs on (`tests/support/server.rs`), over real
//! HTTP: routing a handler sees, replies as written, the body limit, a panicking handler, the
//! stop on drop, and the id and time utilities.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::http::{request, try_request};
use crate::support::server::{
    BodyError, Reply, Request, Server, Utc, guid, random_bytes, random_token, uuid,
};

/// Echoes what the handler sees of the request as JSON.
fn echo(req: &mut Request) -> Reply {
    let body = match req.read_body(16) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(BodyError::TooLarge) => return Reply::plain(413, "too large"),
        Err(BodyError::Io(e)) => return Reply::plain(400, &e.to_string()),
    };
    Reply::json(
        200,
        &json!({
            "line": req.line(),
            "method": req.method(),
            "path": req.path(),
            "query": req.query(),
            "origin": req.origin(),
            "header": req.header("x-Test"),
            "bearer": req.bearer(),
            "media_type": req.media_type(),
            "body_length": req.body_length(),
            "body": body,
        }),
    )
}

#[test]
fn a_handler_sees_the_request_split_up() {
    let server = Server::start("echo test", 2, echo);
    let url = format!("{}/a/b%20c?x=1&y=%2F", server.url());
    let resp = request(
        "POST",
        &url,
        &[
            ("X-Test", "yes"),
            ("Authorization", "bearer  tok-123 "),
            ("Content-Type", "Application/JSON; charset=utf-8"),
        ],
        b"{}",
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({
            "line": "POST /a/b%20c",
            "method": "POST",
            "path": "/a/b%20c",
            "query": "x=1&y=%2F",
            "origin": server.url(),
            "header": "yes",
            "bearer": "tok-123",
            "media_type": "application/json",
            "body_length": 2,
            "body": "{}",
        })
    );
    // Without a query, a body or the headers.
    let v = request("GET", &format!("{}/", server.url()), &[], b"").json();
    assert_eq!(
        (v["path"].as_str(), v["query"].as_str()),
        (Some("/"), Some(""))
    );
    assert!(v["header"].is_null() && v["bearer"].is_null() && v["media_type"].is_null());
    // Not a bearer token.
    let v = request(
        "GET",
        &format!("{}/", server.url()),
        &[("Authorization", "Basic dTpw")],
        b"",
    )
    .json();
    assert!(v["bearer"].is_null(), "{v}");
}

#[test]
fn the_body_limit_holds() {
    let server = Server::start("echo test", 1, echo);
    let url = format!("{}/", server.url());
    let resp = request("POST", &url, &[], &[b'a'; 16]);
    assert_eq!(resp.json()["body"], "a".repeat(16));
    let resp = request("POST", &url, &[], &[b'a'; 17]);
    assert_eq!(resp.status, 413, "{}", resp.text());
    // The worker goes on serving.
    assert_eq!(request("POST", &url, &[], b"ok").status, 200);
}

#[test]
fn replies_are_written_as_built() {
    let server = Server::start("reply test", 2, |req: &mut Request| match req.path() {
        "/json" => Reply::json(201, &json!({"a": 1})).with_header("X-One", "1"),
        "/html" => Reply::html(200, "<p>hi</p>"),
        "/plain" => Reply::plain(404, "Not Found"),
        "/redirect" => Reply::redirect("http://localhost:1/cb?code=x"),
        "/typed" => Reply::typed(200, "application/x-thing", vec![0u8, 1, 2]),
        _ => Reply::empty(204),
    });
    let get = |path: &str| request("GET", &format!("{}{path}", server.url()), &[], b"");

    let r = get("/json");
    assert_eq!((r.status, r.text().as_str()), (201, r#"{"a":1}"#));
    assert_eq!(
        r.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(r.header("X-One"), Some("1"));
    // Always a Content-Length, never chunked.
    assert_eq!(r.header("Content-Length"), Some("7"));
    assert!(r.header("Transfer-Encoding").is_none());

    let r = get("/html");
    assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.text(), "<p>hi</p>");
    let r = get("/plain");
    assert_eq!((r.status, r.text().as_str()), (404, "Not Found"));
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    let r = get("/redirect");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("http://localhost:1/cb?code=x"));
    let r = get("/typed");
    assert_eq!(r.header("Content-Type"), Some("application/x-thing"));
    assert_eq!(r.body, [0, 1, 2]);
    let r = get("/other");
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());

    let reply = Reply::empty(200)
        .with_header("A", "1")
        .with_header("a", "2");
    assert_eq!(reply.header("a"), Some("1"), "the first one, any case");
}

#[test]
fn a_panicking_handler_costs_one_request_not_the_worker() {
    // One worker: if the panic killed it, the second request would hang, not succeed.
    let server = Server::start("panic test", 1, |req: &mut Request| {
        if req.path() == "/panic" {
            panic!("handler bug (expected by this test)");
        }
        Reply::plain(200, "fine")
    });
    let resp = request("GET", &format!("{}/panic", server.url()), &[], b"");
    assert_eq!(resp.status, 500);
    let resp = request("GET", &format!("{}/", server.url()), &[], b"");
    assert_eq!((resp.status, resp.text().as_str()), (200, "fine"));
}

#[test]
fn workers_serve_concurrently() {
    let server = Server::start("slow test", 4, |_: &mut Request| {
        std::thread::sleep(Duration::from_millis(300));
        Reply::empty(204)
    });
    let url = format!("{}/", server.url());
    let started = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || request("GET", &url, &[], b"").status)
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 204);
    }
    assert!(started.elapsed() < Duration::from_millis(1100));
}

#[test]
fn drop_stops_the_server() {
    let server = Server::start("drop test", 3, |_: &mut Request| Reply::empty(204));
    let url = format!("{}/", server.url());
    assert_eq!(request("GET", &url, &[], b"").status, 204);
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        try_request("GET", &url, &[], b"").is_err(),
        "still answering after drop"
    );
}

#[test]
fn ids_are_random_and_well_formed() {
    assert_eq!(random_bytes(40).len(), 40);
    assert_ne!(random_bytes(16), random_bytes(16));
    let token = random_token(32);
    assert_eq!(token.len(), 43, "base64url without padding");
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    let id = uuid();
    let parts: Vec<&str> = id.split('-').collect();
    assert_eq!(
        parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
        [8, 4, 4, 4, 12]
    );
    assert!(parts[2].starts_with('4'), "version 4: {id}");
    assert!("89ab".contains(&parts[3][..1]), "RFC 4122 variant: {id}");
    assert_ne!(uuid(), uuid());
    assert_eq!(
        guid(&(0u8..16).collect::<Vec<_>>()),
        "00010203-0405-0607-0809-0a0b0c0d0e0f"
    );
}

#[test]
fn times_format_as_rfc_3339_and_http_dates() {
    let epoch = Utc::at(0);
    assert_eq!(epoch.rfc3339(), "1970-01-01T00:00:00Z");
    assert_eq!(epoch.http_date(), "Thu, 01 Jan 1970 00:00:00 GMT");
    // RFC 9110's own example.
    let t = Utc::at(784_111_777);
    assert_eq!(t.http_date(), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(
        (t.date(), t.time()),
        ("1994-11-06".into(), "08:49:37".into())
    );
    // A leap day, and the last second of a year.
    assert_eq!(Utc::at(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
    assert_eq!(
        Utc::at(951_782_400).http_date(),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
    assert_eq!(Utc::at(1_735_689_599).rfc3339(), "2024-12-31T23:59:59Z");
    assert!(Utc::now().year >= 2024);
}
