//! The JSON bodies of Graph's `sendMail` and `messages` calls ("message resource type",
//! Microsoft Graph v1.0 reference): recipients, body, headers, attachments.

use crate::message::{Draft, FilePart};
use base64::Engine;
use lettre::message::Mailbox;
use serde_json::{Value, json};

fn recipients(list: &[Mailbox]) -> Vec<Value> {
    list.iter()
        .map(|m| match &m.name {
            Some(n) => json!({ "emailAddress": { "address": m.email.to_string(), "name": n } }),
            None => json!({ "emailAddress": { "address": m.email.to_string() } }),
        })
        .collect()
}

/// The `message` object of sendMail / create message. Graph's JSON has one body: with
/// both --body and --html the HTML goes, and Exchange derives the text alternative.
pub fn message(d: &Draft, attachments: Vec<Value>) -> Value {
    let (kind, content) = match (&d.html, &d.text) {
        (Some(h), _) => ("HTML", h.clone()),
        (None, t) => ("Text", t.clone().unwrap_or_default()),
    };
    let mut m = json!({
        "subject": d.subject,
        "body": { "contentType": kind, "content": content },
        "toRecipients": recipients(&d.to),
    });
    for (key, list) in [
        ("ccRecipients", &d.cc),
        ("bccRecipients", &d.bcc),
        ("replyTo", &d.reply_to),
    ] {
        if !list.is_empty() {
            m[key] = json!(recipients(list));
        }
    }
    if let Some(i) = d.importance {
        m["importance"] = json!(i.as_str());
    }
    if !d.headers.is_empty() {
        m["internetMessageHeaders"] = d
            .headers
            .iter()
            .map(|(n, v)| json!({ "name": n, "value": v }))
            .collect();
    }
    if !attachments.is_empty() {
        m["attachments"] = json!(attachments);
    }
    m
}

/// A `fileAttachment` with its bytes inline (base64 `contentBytes`).
pub fn file_attachment(f: &FilePart, bytes: &[u8]) -> Value {
    let mut a = json!({
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": f.name,
        "contentType": f.content_type,
        "contentBytes": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    inline_fields(&mut a, f);
    a
}

/// The `AttachmentItem` of `createUploadSession`, for attachments too large to inline.
pub fn upload_item(f: &FilePart) -> Value {
    let mut item = json!({ "attachmentType": "file", "name": f.name, "size": f.size, "contentType": f.content_type });
    inline_fields(&mut item, f);
    json!({ "AttachmentItem": item })
}

fn inline_fields(v: &mut Value, f: &FilePart) {
    if let Some(cid) = &f.content_id {
        v["isInline"] = json!(true);
        v["contentId"] = json!(cid);
    }
}

/// A rough size of the JSON request for `d`: base64 grows attachments by a third, and
/// JSON escaping may double text.
pub fn estimate(d: &Draft) -> u64 {
    d.attachments
        .iter()
        .chain(&d.inline)
        .map(|f| f.size.div_ceil(3) * 4 + 512)
        .sum::<u64>()
        + d.text.as_ref().map_or(0, |t| t.len() as u64 * 2)
        + d.html.as_ref().map_or(0, |t| t.len() as u64 * 2)
        + 8 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let d = Draft {
            to: crate::message::parse_mailboxes(&["Ann <a@example.com>".into()], "--to").unwrap(),
            subject: "s".into(),
            text: Some("t".into()),
            headers: vec![("X-A".into(), "1".into())],
            importance: Some(crate::message::Importance::High),
            ..Default::default()
        };
        let m = message(&d, vec![]);
        assert_eq!(
            m["toRecipients"][0]["emailAddress"]["address"],
            "a@example.com"
        );
        assert_eq!(m["toRecipients"][0]["emailAddress"]["name"], "Ann");
        assert_eq!(m["body"]["contentType"], "Text");
        assert_eq!(m["importance"], "high");
        assert_eq!(m["internetMessageHeaders"][0]["name"], "X-A");
        assert!(m.get("ccRecipients").is_none());
    }
}
