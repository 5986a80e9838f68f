//! Self-tests of the fake Microsoft Graph mail endpoints (`tests/support/fake_graph.rs`), over
//! real HTTP with tokens from the fake Entra. They pin down its strictness: a fake that quietly
//! accepted a broken client would make every other integration test worthless.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::fake_entra::FakeEntra;
use crate::support::fake_graph::*;
use crate::support::http::{Response, post_form, request};

const APP: &str = "0a1b2c3d-0000-4000-8000-0000000000a1";
const LOOPBACK: &str = "http://localhost:53123";
const USER: &str = "ada@contoso.example";
const SEND: &str = "https://graph.microsoft.com/Mail.Send";
const READ_WRITE: &str = "https://graph.microsoft.com/Mail.ReadWrite";
const USER_READ: &str = "https://graph.microsoft.com/User.Read";
const SMTP_SEND: &str = "https://outlook.office.com/SMTP.Send";
const MIB: usize = 1024 * 1024;

fn entra() -> FakeEntra {
    let entra = FakeEntra::start();
    entra.add_public_client(APP, &["http://localhost"]);
    entra
}

/// An access token for `scope` (one resource), through a full auth-code + PKCE sign-in that
/// consents to `consent`.
fn token_for(entra: &FakeEntra, consent: &str, scope: &str) -> String {
    let v = entra.sign_in(APP, LOOPBACK, consent, scope);
    v["access_token"].as_str().unwrap().to_string()
}

/// A Graph token with Mail.Send and Mail.ReadWrite.
fn full_token(entra: &FakeEntra) -> String {
    let scopes = format!("{SEND} {READ_WRITE} offline_access");
    token_for(entra, &scopes, &scopes)
}

fn setup() -> (FakeEntra, FakeGraph, String) {
    let entra = entra();
    let graph = FakeGraph::start(entra.validator());
    let token = full_token(&entra);
    (entra, graph, token)
}

fn post_json(graph: &FakeGraph, path: &str, token: Option<&str>, body: &Value) -> Response {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    request(
        "POST",
        &format!("{}{path}", graph.url()),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn post_mime(graph: &FakeGraph, token: &str, body: &[u8]) -> Response {
    let auth = format!("Bearer {token}");
    request(
        "POST",
        &format!("{}/v1.0/me/sendMail", graph.url()),
        &[("Content-Type", "text/plain"), ("Authorization", &auth)],
        body,
    )
}

fn to(addr: &str) -> Value {
    json!([{"emailAddress": {"address": addr}}])
}

fn simple_mail(addr: &str) -> Value {
    json!({"message": {"subject": "Hi", "toRecipients": to(addr)}})
}

/// Checks Graph's error shape, not just the status; returns the message.
fn assert_graph_error(resp: &Response, status: u16, code: &str) -> String {
    assert_eq!(resp.status, status, "{}", resp.text());
    let request_id = resp.header("request-id").expect("request-id header");
    let v = resp.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["error"], "{v}");
    let e = &v["error"];
    assert_eq!(e["code"], code, "{v}");
    assert_eq!(e["innerError"]["request-id"], request_id, "{v}");
    assert!(
        e["innerError"]["date"]
            .as_str()
            .is_some_and(|d| d.len() == 19)
    );
    assert!(e["innerError"]["client-request-id"].is_string());
    e["message"].as_str().expect("message").to_string()
}

fn sha256_hex(b: &[u8]) -> String {
    format!("{:x}", Sha256::digest(b))
}

#[test]
fn json_send_is_delivered() {
    let (_entra, graph, token) = setup();
    let png = vec![0x89u8, b'P', b'N', b'G', 0, 1, 2, 3];
    let body = json!({
        "message": {
            "subject": "Grüße",
            "body": {"contentType": "html", "content": "<p>Hi</p>"},
            "toRecipients": [
                {"emailAddress": {"address": "bob@example.com", "name": "Bob"}},
                {"emailAddress": {"address": "carol+tag@example.com"}},
            ],
            "ccRecipients": to("cc@example.com"),
            "bccRecipients": to("bcc@example.com"),
            "replyTo": to("replies@example.com"),
            "importance": "High",
            "internetMessageHeaders": [{"name": "X-Mailer-Id", "value": "42"}],
            "attachments": [{
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": "logo.png",
                "contentType": "image/png",
                "contentBytes": STANDARD.encode(&png),
                "isInline": true,
                "contentId": "logo",
            }],
        },
        "saveToSentItems": false,
    });
    let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&token), &body);
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty());
    let request_id = resp.header("request-id").expect("request-id").to_string();
    assert_eq!(request_id.len(), 36);

    let d = graph.delivered();
    assert_eq!(d.len(), 1);
    let d = &d[0];
    assert_eq!(d.mailbox, USER);
    assert_eq!(d.via, "json");
    assert!(!d.save_to_sent_items);
    assert_eq!(d.subject, "Grüße");
    assert_eq!(d.body_type.as_deref(), Some("HTML"));
    assert_eq!(d.body.as_deref(), Some("<p>Hi</p>"));
    assert_eq!(
        d.to,
        [
            (Some("Bob".to_string()), "bob@example.com".to_string()),
            (None, "carol+tag@example.com".to_string())
        ]
    );
    assert_eq!(d.cc, [(None, "cc@example.com".to_string())]);
    assert_eq!(d.bcc, [(None, "bcc@example.com".to_string())]);
    assert_eq!(d.reply_to, [(None, "replies@example.com".to_string())]);
    assert_eq!(d.importance.as_deref(), Some("high"));
    assert_eq!(d.headers, [("X-Mailer-Id".to_string(), "42".to_string())]);
    let a = &d.attachments[0];
    assert_eq!(a.name, "logo.png");
    assert_eq!(a.content_type.as_deref(), Some("image/png"));
    assert_eq!(a.size, png.len() as u64);
    assert_eq!(a.sha256, sha256_hex(&png));
    assert!(a.is_inline);
    assert_eq!(a.content_id.as_deref(), Some("logo"));
    assert_eq!(a.bytes.as_deref(), Some(png.as_slice()));
    assert!(d.mime.is_none());

    // /users/{id} with the user's own address (percent-encoded, other case) is the same mailbox;
    // saveToSentItems defaults to true.
    let resp = post_json(
        &graph,
        "/v1.0/users/ADA%40contoso.example/sendMail",
        Some(&token),
        &simple_mail("bob@example.com"),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered();
    assert_eq!(d[1].mailbox, "ADA@contoso.example");
    assert!(d[1].save_to_sent_items);

    let stats = graph.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.status_counts.get(&202), Some(&2));
    assert_eq!(stats.request_ids[0], request_id);
    assert!(stats.errors.is_empty() && stats.unrouted.is_empty());
}

#[test]
fn bad_tokens_are_401() {
    let entra = entra();
    let graph = FakeGraph::start(entra.validator());
    let mail = simple_mail("bob@example.com");
    let path = "/v1.0/me/sendMail";

    let msg = assert_graph_error(
        &post_json(&graph, path, None, &mail),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(msg.contains("empty"), "{msg}");
    assert_graph_error(
        &post_json(&graph, path, Some("not-a-token"), &mail),
        401,
        "InvalidAuthenticationToken",
    );
    // Not a Graph token: SMTP's resource.
    let consent = format!("{SEND} {SMTP_SEND} offline_access");
    let smtp = token_for(&entra, &consent, SMTP_SEND);
    let msg = assert_graph_error(
        &post_json(&graph, path, Some(&smtp), &mail),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(msg.contains("audience"), "{msg}");
    entra.set_access_token_lifetime(0);
    let expired = full_token(&entra);
    let resp = post_json(&graph, path, Some(&expired), &mail);
    let msg = assert_graph_error(&resp, 401, "InvalidAuthenticationToken");
    assert!(msg.contains("expired"), "{msg}");
    assert!(resp.header("WWW-Authenticate").is_some());

    let stats = graph.stats();
    assert_eq!(stats.unauthorized, 4);
    assert_eq!(stats.errors, ["InvalidAuthenticationToken"; 4]);
    assert!(graph.delivered().is_empty());
}

#[test]
fn permissions_are_checked_per_endpoint() {
    let entra = entra();
    let graph = FakeGraph::start(entra.validator());
    let user_read = token_for(&entra, USER_READ, USER_READ);
    assert_graph_error(
        &post_json(
            &graph,
            "/v1.0/me/sendMail",
            Some(&user_read),
            &simple_mail("bob@example.com"),
        ),
        403,
        "ErrorAccessDenied",
    );
    // Mail.Send sends, but drafts need Mail.ReadWrite.
    let send_only = token_for(&entra, SEND, SEND);
    let resp = post_json(
        &graph,
        "/v1.0/me/sendMail",
        Some(&send_only),
        &simple_mail("bob@example.com"),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let msg = assert_graph_error(
        &post_json(
            &graph,
            "/v1.0/me/messages",
            Some(&send_only),
            &json!({"subject": "big"}),
        ),
        403,
        "ErrorAccessDenied",
    );
    assert_eq!(msg, "Access is denied. Check credentials and try again.");
    assert_eq!(graph.stats().unauthorized, 0);
}

#[test]
fn json_bodies_are_validated_like_graph() {
    let (_entra, graph, token) = setup();
    let send = |body: Value| post_json(&graph, "/v1.0/me/sendMail", Some(&token), &body);
    let with = |key: &str, value: Value| {
        let mut m = simple_mail("bob@example.com");
        m["message"][key] = value;
        m
    };

    let msg = assert_graph_error(
        &send(with(
            "internetMessageHeaders",
            json!([{"name": "X-Ok", "value": "1"}, {"name": "Mailer", "value": "2"}]),
        )),
        400,
        "InvalidInternetMessageHeader",
    );
    assert!(msg.contains("'Mailer'"), "{msg}");
    assert_graph_error(
        &send(with("unknownThing", json!(1))),
        400,
        "RequestBodyRead",
    );
    let mut extra_top = simple_mail("bob@example.com");
    extra_top["saveToSentItem"] = json!(true);
    assert_graph_error(&send(extra_top), 400, "RequestBodyRead");
    assert_graph_error(
        &send(json!({"message": {"subject": "no one"}})),
        400,
        "ErrorInvalidRecipients",
    );
    assert_graph_error(
        &send(with("toRecipients", to("not an address"))),
        400,
        "ErrorInvalidRecipients",
    );
    assert_graph_error(
        &send(with("importance", json!("urgent"))),
        400,
        "RequestBodyRead",
    );
    assert_graph_error(
        &send(with("ccRecipients", Value::Null)),
        400,
        "RequestBodyRead",
    );
    let attachment = |extra: Value| {
        let mut a = json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "a.txt",
            "contentBytes": "aGk=",
        });
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        with("attachments", json!([a]))
    };
    assert_graph_error(
        &send(attachment(json!({"contentBytes": "aGk"}))),
        400,
        "ErrorInvalidRequest",
    );
    assert_graph_error(
        &send(attachment(
            json!({"@odata.type": "#microsoft.graph.attachment"}),
        )),
        400,
        "RequestBodyRead",
    );
    let resp = request(
        "POST",
        &format!("{}/v1.0/me/sendMail", graph.url()),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &format!("Bearer {token}")),
        ],
        b"{not json",
    );
    assert_graph_error(&resp, 400, "RequestBodyRead");
    assert!(graph.delivered().is_empty());
    assert_eq!(graph.stats().errors.len(), 10);
}

#[test]
fn mime_form_round_trips_and_checks_base64() {
    let (_entra, graph, token) = setup();
    let mime = "From: Ada <ada@contoso.example>\r\n\
                To: \"Lovelace, Bob\" <bob@example.com>, =?utf-8?b?w4lsaXNl?= <elise@example.com>\r\n\
                Cc: carol@example.com\r\n\
                Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and\r\n folded\r\n\
                MIME-Version: 1.0\r\n\
                Content-Type: text/plain; charset=utf-8\r\n\
                \r\n\
                Body line\r\n";
    let encoded = STANDARD.encode(mime);
    let resp = post_mime(&graph, &token, encoded.as_bytes());
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered();
    let d = &d[0];
    assert_eq!(d.via, "mime");
    assert_eq!(d.mailbox, USER);
    assert_eq!(d.mime.as_deref(), Some(mime.as_bytes()));
    assert_eq!(d.subject, "Grüße and folded");
    assert_eq!(
        d.to,
        [
            (
                Some("Lovelace, Bob".to_string()),
                "bob@example.com".to_string()
            ),
            (Some("Élise".to_string()), "elise@example.com".to_string())
        ]
    );
    assert_eq!(d.cc, [(None, "carol@example.com".to_string())]);
    assert!(d.bcc.is_empty() && d.body.is_none() && d.attachments.is_empty());

    assert_graph_error(
        &post_mime(&graph, &token, b"this is not base64!"),
        400,
        "ErrorMimeContentInvalidBase64String",
    );
    let no_rcpt = STANDARD.encode("Subject: x\r\n\r\nbody\r\n");
    assert_graph_error(
        &post_mime(&graph, &token, no_rcpt.as_bytes()),
        400,
        "ErrorInvalidRecipients",
    );
    // Bcc-only is fine: Graph delivers to the header recipients, Bcc included.
    let bcc_only = STANDARD.encode("Bcc: hidden@example.com\r\nSubject: x\r\n\r\nbody\r\n");
    assert_eq!(post_mime(&graph, &token, bcc_only.as_bytes()).status, 202);
    assert_eq!(
        graph.delivered()[1].bcc,
        [(None, "hidden@example.com".to_string())]
    );
}

#[test]
fn requests_over_4_mib_are_413() {
    let (_entra, graph, token) = setup();
    // Base64 of 3.2 MiB is about 4.3 MiB.
    let big = STANDARD.encode(vec![b'a'; 3_300_000]);
    let mut mail = simple_mail("bob@example.com");
    mail["message"]["attachments"] = json!([{
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": "big.bin",
        "contentBytes": big,
    }]);
    let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&token), &mail);
    assert_graph_error(&resp, 413, "ErrorRequestEntityTooLarge");
    let resp = post_mime(&graph, &token, &vec![b'A'; MAX_REQUEST as usize + 4]);
    assert_graph_error(&resp, 413, "ErrorRequestEntityTooLarge");
    assert!(graph.delivered().is_empty());
    // The connection was drained: the server still answers normally.
    let resp = post_json(
        &graph,
        "/v1.0/me/sendMail",
        Some(&token),
        &simple_mail("bob@example.com"),
    );
    assert_eq!(resp.status, 202);
}

/// Creates a draft with one recipient; returns its id.
fn create_draft(graph: &FakeGraph, token: &str) -> String {
    let resp = post_json(
        graph,
        "/v1.0/me/messages",
        Some(token),
        &json!({
            "subject": "Large",
            "body": {"contentType": "Text", "content": "see attached"},
            "toRecipients": to("bob@example.com"),
        }),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["isDraft"], true);
    v["id"].as_str().expect("draft id").to_string()
}

/// Creates an upload session; returns the upload URL.
fn upload_session(graph: &FakeGraph, token: &str, draft: &str, name: &str, size: usize) -> String {
    let resp = post_json(
        graph,
        &format!("/v1.0/me/messages/{draft}/attachments/createUploadSession"),
        Some(token),
        &json!({"AttachmentItem": {
            "attachmentType": "file",
            "name": name,
            "size": size,
            "contentType": "application/octet-stream",
        }}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let v = resp.json();
    assert_eq!(v["nextExpectedRanges"], json!(["0-"]));
    assert!(v["expirationDateTime"].as_str().unwrap().ends_with('Z'));
    v["uploadUrl"].as_str().expect("uploadUrl").to_string()
}

fn put_chunk(
    url: &str,
    data: &[u8],
    first: usize,
    total: usize,
    extra: &[(&str, &str)],
) -> Response {
    let range = format!("bytes {first}-{}/{total}", first + data.len() - 1);
    let mut headers = vec![
        ("Content-Type", "application/octet-stream"),
        ("Content-Range", range.as_str()),
    ];
    headers.extend_from_slice(extra);
    request("PUT", url, &headers, data)
}

fn send_draft(graph: &FakeGraph, token: &str, draft: &str) -> Response {
    request(
        "POST",
        &format!("{}/v1.0/me/messages/{draft}/send", graph.url()),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn draft_with_upload_session_is_sent() {
    let (_entra, graph, token) = setup();
    let draft = create_draft(&graph, &token);

    // A small attachment goes through the attachments endpoint.
    let resp = post_json(
        &graph,
        &format!("/v1.0/me/messages/{draft}/attachments"),
        Some(&token),
        &json!({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": "small.txt",
            "contentBytes": STANDARD.encode("small"),
        }),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());

    let total = 7 * MIB + 12_345;
    let data = pattern(total);
    let url = upload_session(&graph, &token, &draft, "big.bin", total);
    assert!(
        url.starts_with(&format!("{}/upload/", graph.url())),
        "{url}"
    );

    let first = 4 * MIB;
    let resp = put_chunk(&url, &data[..first], 0, total, &[]);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["nextExpectedRanges"],
        json!([format!("{first}-")])
    );
    let resp = put_chunk(&url, &data[first..], first, total, &[]);
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert!(resp.body.is_empty());

    assert!(graph.delivered().is_empty(), "not sent before /send");
    let resp = send_draft(&graph, &token, &draft);
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered();
    assert_eq!(d.len(), 1);
    let d = &d[0];
    assert_eq!(d.via, "draft");
    assert_eq!(d.subject, "Large");
    assert!(d.save_to_sent_items);
    assert_eq!(d.to, [(None, "bob@example.com".to_string())]);
    assert_eq!(d.attachments.len(), 2);
    assert_eq!(d.attachments[0].name, "small.txt");
    let big = &d.attachments[1];
    assert_eq!(big.name, "big.bin");
    assert_eq!(big.size, total as u64);
    assert_eq!(big.sha256, sha256_hex(&data));
    assert_eq!(big.bytes.as_deref(), Some(data.as_slice()));

    // Sent drafts are gone.
    assert_graph_error(
        &send_draft(&graph, &token, &draft),
        404,
        "ErrorItemNotFound",
    );
    let stats = graph.stats();
    assert_eq!(stats.upload_puts, 2);
    assert_eq!(stats.unauthorized, 0);
}

#[test]
fn upload_sessions_are_strict() {
    let (_entra, graph, token) = setup();
    let draft = create_draft(&graph, &token);
    let total = 3 * MIB + 10;
    let data = pattern(total);

    // Small attachments must use the attachments endpoint.
    let resp = post_json(
        &graph,
        &format!("/v1.0/me/messages/{draft}/attachments/createUploadSession"),
        Some(&token),
        &json!({"AttachmentItem": {"attachmentType": "file", "name": "s", "size": 1000}}),
    );
    let msg = assert_graph_error(
        &resp,
        400,
        "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
    );
    assert!(msg.contains("attachments endpoint"), "{msg}");

    let url = upload_session(&graph, &token, &draft, "big.bin", total);
    // Bearer token on the pre-authenticated URL.
    let auth = format!("Bearer {token}");
    assert_graph_error(
        &put_chunk(&url, &data[..MIB], 0, total, &[("Authorization", &auth)]),
        401,
        "InvalidAuthenticationToken",
    );
    // Out of order: starts at 1 MiB while 0 is expected.
    assert_graph_error(
        &put_chunk(&url, &data[MIB..2 * MIB], MIB, total, &[]),
        416,
        "ErrorInvalidRange",
    );
    // Wrong total.
    assert_graph_error(
        &put_chunk(&url, &data[..MIB], 0, total + 1, &[]),
        400,
        "ErrorInvalidRequest",
    );
    assert_eq!(put_chunk(&url, &data[..MIB], 0, total, &[]).status, 200);
    // The same range again overlaps.
    assert_graph_error(
        &put_chunk(&url, &data[..MIB], 0, total, &[]),
        416,
        "ErrorInvalidRange",
    );

    // Not complete yet: the draft cannot be sent.
    let msg = assert_graph_error(
        &send_draft(&graph, &token, &draft),
        400,
        "ErrorInvalidRequest",
    );
    assert!(msg.contains("upload incomplete"), "{msg}");
    assert!(graph.delivered().is_empty());

    // The rest, in one chunk over 4 MiB? No: total is small; finish and send.
    assert_eq!(put_chunk(&url, &data[MIB..], MIB, total, &[]).status, 201);
    assert_eq!(send_draft(&graph, &token, &draft).status, 202);
    assert_eq!(
        graph.delivered()[0].attachments[0].sha256,
        sha256_hex(&data)
    );

    // Chunks over 4 MiB are refused.
    let draft = create_draft(&graph, &token);
    let total = 5 * MIB;
    let data = pattern(total);
    let url = upload_session(&graph, &token, &draft, "huge.bin", total);
    assert_graph_error(
        &put_chunk(&url, &data, 0, total, &[]),
        413,
        "ErrorRequestEntityTooLarge",
    );
    // Unknown draft.
    assert_graph_error(
        &send_draft(&graph, &token, "AAMkADnope="),
        404,
        "ErrorItemNotFound",
    );
    assert_eq!(graph.stats().unauthorized, 1);
}

#[test]
fn fail_next_injects_throttling() {
    let (_entra, graph, token) = setup();
    graph.fail_next(
        2,
        429,
        Some(3),
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
    );
    let mail = simple_mail("bob@example.com");
    for _ in 0..2 {
        let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&token), &mail);
        let msg = assert_graph_error(&resp, 429, "ApplicationThrottled");
        assert!(msg.contains("MailboxConcurrency"));
        assert_eq!(resp.header("Retry-After"), Some("3"));
    }
    let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&token), &mail);
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(graph.delivered().len(), 1);

    // 503 without Retry-After; a request refused for its token does not consume the failure.
    graph.fail_next(1, 503, None, "ServiceUnavailable", "Try later.");
    let resp = post_json(&graph, "/v1.0/me/sendMail", None, &mail);
    assert_eq!(resp.status, 401);
    let resp = post_json(&graph, "/v1.0/me/messages", Some(&token), &json!({}));
    assert_graph_error(&resp, 503, "ServiceUnavailable");
    assert_eq!(resp.header("Retry-After"), None);
    let stats = graph.stats();
    assert_eq!(stats.status_counts.get(&429), Some(&2));
    assert_eq!(stats.status_counts.get(&503), Some(&1));
}

#[test]
fn send_as_needs_delegation() {
    let (_entra, graph, token) = setup();
    let mail = simple_mail("bob@example.com");
    let path = "/v1.0/users/shared%40contoso.example/sendMail";
    assert_graph_error(
        &post_json(&graph, path, Some(&token), &mail),
        403,
        "ErrorSendAsDenied",
    );
    // message.from naming another mailbox is send-as too.
    let mut from_shared = mail.clone();
    from_shared["message"]["from"] = json!({"emailAddress": {"address": "shared@contoso.example"}});
    assert_graph_error(
        &post_json(&graph, "/v1.0/me/sendMail", Some(&token), &from_shared),
        403,
        "ErrorSendAsDenied",
    );
    assert!(graph.delivered().is_empty());

    graph.allow_send_as(USER, "Shared@Contoso.example");
    let resp = post_json(&graph, path, Some(&token), &mail);
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&token), &from_shared);
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered();
    assert_eq!(d[0].mailbox, "shared@contoso.example");
    assert_eq!(d[1].mailbox, USER);
    assert_eq!(d[1].from.as_deref(), Some("shared@contoso.example"));
}

#[test]
fn in_flight_requests_are_measured_per_mailbox() {
    let (_entra, graph, token) = setup();
    graph.set_request_delay(Duration::from_millis(300));
    let started = Instant::now();
    let url = graph.url();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                request(
                    "POST",
                    &format!("{url}/v1.0/me/sendMail"),
                    &[
                        ("Content-Type", "application/json"),
                        ("Authorization", &format!("Bearer {token}")),
                    ],
                    simple_mail("bob@example.com").to_string().as_bytes(),
                )
                .status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 202);
    }
    // Served concurrently, not one after the other.
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert_eq!(graph.stats().max_in_flight_per_mailbox, 6);
    assert_eq!(graph.delivered().len(), 6);
}

#[test]
fn routing_is_strict() {
    let (_entra, graph, token) = setup();
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str())];
    for (method, path, status, code) in [
        ("GET", "/v1.0/me/sendMail", 405, "Request_BadRequest"),
        ("POST", "/beta/me/sendMail", 404, "UnknownError"),
        ("POST", "/v1.0//me/sendMail", 404, "UnknownError"),
    ] {
        let resp = request(method, &format!("{}{path}", graph.url()), &headers, b"");
        assert_graph_error(&resp, status, code);
    }
    // Graph's segments are case-insensitive.
    let resp = post_json(
        &graph,
        "/v1.0/ME/sendmail",
        Some(&token),
        &simple_mail("bob@example.com"),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = request(
        "POST",
        &format!("{}/v1.0/me/sendMail", graph.url()),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/xml"),
        ],
        b"<x/>",
    );
    assert_graph_error(&resp, 415, "UnsupportedMediaType");
    assert_eq!(graph.stats().unrouted.len(), 3);
}

#[test]
fn drop_stops_the_server() {
    let entra = entra();
    let graph = FakeGraph::start(entra.validator());
    let url = graph.url();
    let started = Instant::now();
    drop(graph);
    assert!(started.elapsed() < Duration::from_secs(2));
    let result =
        crate::support::http::try_request("POST", &format!("{url}/v1.0/me/sendMail"), &[], b"");
    assert!(result.is_err(), "server still answering after drop");
}

// ---- App-only tokens (client credentials) ----

const DAEMON: &str = "0a1b2c3d-0000-4000-8000-0000000000d1";
const DAEMON_SECRET: &str = "daemon-secret";
const TENANT: &str = "6f0c3a1e-2b4d-4e8f-9a7c-5d1e3b2a4c6f";

/// An app-only token for `{resource}/.default` of a secret-authenticated app.
fn app_token(entra: &FakeEntra, scope: &str) -> String {
    let resp = post_form(
        &format!("{}/{TENANT}/oauth2/v2.0/token", entra.authority()),
        &[],
        &[
            ("grant_type", "client_credentials"),
            ("client_id", DAEMON),
            ("client_secret", DAEMON_SECRET),
            ("scope", scope),
        ],
    );
    assert_eq!(resp.status, 200, "token: {}", resp.text());
    let v = resp.json();
    assert!(v.get("refresh_token").is_none(), "{v}");
    v["access_token"].as_str().unwrap().to_string()
}

#[test]
fn app_tokens_send_for_any_mailbox_but_not_me() {
    let entra = entra();
    entra.add_app_client_secret(DAEMON, DAEMON_SECRET);
    let graph = FakeGraph::start(entra.validator());
    let token = app_token(&entra, "https://graph.microsoft.com/.default");
    let mail = simple_mail("bob@example.com");

    // There is no signed-in user behind an app token.
    let msg = assert_graph_error(
        &post_json(&graph, "/v1.0/me/sendMail", Some(&token), &mail),
        400,
        "BadRequest",
    );
    assert_eq!(
        msg,
        "/me request is only valid with delegated authentication flow."
    );
    assert_graph_error(
        &post_json(
            &graph,
            "/v1.0/me/messages",
            Some(&token),
            &json!({"subject": "x"}),
        ),
        400,
        "BadRequest",
    );

    // Application Mail.Send covers every mailbox, without send-as grants.
    for (path, mailbox) in [
        ("/v1.0/users/x/sendMail", "x"),
        (
            "/v1.0/users/grace%40contoso.example/sendMail",
            "grace@contoso.example",
        ),
        (
            "/v1.0/Users/noreply@contoso.example/sendMail",
            "noreply@contoso.example",
        ),
    ] {
        let resp = post_json(&graph, path, Some(&token), &mail);
        assert_eq!(resp.status, 202, "{path}: {}", resp.text());
        assert_eq!(graph.delivered().last().unwrap().mailbox, mailbox);
    }
    // MIME form too.
    let auth = format!("Bearer {token}");
    let mime = STANDARD.encode("To: bob@example.com\r\nSubject: mime\r\n\r\nhi\r\n");
    let resp = request(
        "POST",
        &format!(
            "{}/v1.0/users/grace%40contoso.example/sendMail",
            graph.url()
        ),
        &[("Content-Type", "text/plain"), ("Authorization", &auth)],
        mime.as_bytes(),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered().last().unwrap().clone();
    assert_eq!(
        (d.mailbox.as_str(), d.via.as_str()),
        ("grace@contoso.example", "mime")
    );

    // message.from is still the mailbox's own business: send-as rights of {id}.
    let mut from_shared = mail.clone();
    from_shared["message"]["from"] = json!({"emailAddress": {"address": "shared@contoso.example"}});
    let path = "/v1.0/users/grace%40contoso.example/sendMail";
    assert_graph_error(
        &post_json(&graph, path, Some(&token), &from_shared),
        403,
        "ErrorSendAsDenied",
    );
    graph.allow_send_as("grace@contoso.example", "shared@contoso.example");
    let resp = post_json(&graph, path, Some(&token), &from_shared);
    assert_eq!(resp.status, 202, "{}", resp.text());

    // Drafts need Mail.ReadWrite, which this app does not have by default.
    assert_graph_error(
        &post_json(
            &graph,
            "/v1.0/users/grace%40contoso.example/messages",
            Some(&token),
            &json!({"subject": "big"}),
        ),
        403,
        "ErrorAccessDenied",
    );
    assert_eq!(graph.delivered().len(), 5);
    assert_eq!(graph.stats().unauthorized, 0);
}

#[test]
fn app_tokens_need_graph_audience_and_roles() {
    let entra = entra();
    entra.add_app_client_secret(DAEMON, DAEMON_SECRET);
    let graph = FakeGraph::start(entra.validator());
    let mail = simple_mail("bob@example.com");
    let path = "/v1.0/users/grace%40contoso.example/sendMail";

    // An Exchange (SMTP) app token is not a Graph token.
    let exchange = app_token(&entra, "https://outlook.office365.com/.default");
    let msg = assert_graph_error(
        &post_json(&graph, path, Some(&exchange), &mail),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(msg.contains("audience"), "{msg}");

    // No application permissions at all.
    entra.set_app_roles(DAEMON, "https://graph.microsoft.com", &[]);
    let none = app_token(&entra, "https://graph.microsoft.com/.default");
    assert_graph_error(
        &post_json(&graph, path, Some(&none), &mail),
        403,
        "NoPermissionsInAccessToken",
    );

    // With Mail.ReadWrite the large-message path works for any mailbox.
    entra.set_app_roles(
        DAEMON,
        "https://graph.microsoft.com",
        &["Mail.Send", "Mail.ReadWrite"],
    );
    let token = app_token(&entra, "https://graph.microsoft.com/.default");
    let resp = post_json(
        &graph,
        "/v1.0/users/grace%40contoso.example/messages",
        Some(&token),
        &json!({"subject": "Large", "toRecipients": to("bob@example.com")}),
    );
    assert_eq!(resp.status, 201, "{}", resp.text());
    let draft = resp.json()["id"].as_str().unwrap().to_string();
    // The draft lives in grace's mailbox only.
    assert_graph_error(
        &post_json(
            &graph,
            &format!("/v1.0/users/other%40contoso.example/messages/{draft}/send"),
            Some(&token),
            &json!({}),
        ),
        404,
        "ErrorItemNotFound",
    );
    let resp = post_json(
        &graph,
        &format!("/v1.0/users/grace%40contoso.example/messages/{draft}/send"),
        Some(&token),
        &json!({}),
    );
    assert_eq!(resp.status, 202, "{}", resp.text());
    let d = graph.delivered();
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].mailbox.as_str(), d[0].via.as_str()),
        ("grace@contoso.example", "draft")
    );

    // Delegated behaviour is unchanged next to app tokens: /users/{other} needs send-as.
    let delegated = full_token(&entra);
    assert_graph_error(
        &post_json(&graph, path, Some(&delegated), &mail),
        403,
        "ErrorSendAsDenied",
    );
    let resp = post_json(&graph, "/v1.0/me/sendMail", Some(&delegated), &mail);
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(graph.delivered()[1].mailbox, USER);
}
