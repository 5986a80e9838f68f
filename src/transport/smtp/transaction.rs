//! One SMTP mail transaction over an authenticated connection: MAIL FROM, one RCPT TO per
//! recipient, DATA, the message (RFC 5321 section 3.3), each answer awaited for at most
//! the profile's `timeout`.
//!
//! mailer runs the steps itself, not through lettre's `send`, to know where a failure fell:
//! - a recipient refused among good ones is named, and the whole message is held back
//!   (RSET): half a delivery is worse than none, and a retry would repeat the good half;
//! - the connection breaking after the whole message was written and before the server
//!   answered the final "." is the one point where SMTP cannot say whether the mail was
//!   taken (RFC 1047). A retry could deliver it twice, dropping it could lose it, so the
//!   error is marked unconfirmed and delivery holds the message for a person to check.
//!   A close while the message is still being written is an ordinary temporary failure.

use super::Settings;
use super::errors::{quiet, send_error};
use crate::error::{Error, Result};
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How fast a server must at least take the message: slower counts as not answering.
const SLOWEST_BYTES_PER_SEC: u64 = 64 * 1024;

pub(super) async fn transmit(
    c: &mut AsyncSmtpConnection,
    s: &Settings,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Response> {
    let options = mail_options(c, envelope, bytes)?;
    within(
        s,
        s.timeout,
        c.command(Mail::new(envelope.from().cloned(), options)),
    )
    .await?
    .map_err(|e| send_error(s, &e))?;
    let mut refused = Vec::new();
    for to in envelope.to() {
        match within(s, s.timeout, c.command(Rcpt::new(to.clone(), vec![]))).await? {
            Ok(_) => {}
            Err(e) if e.is_permanent() || e.is_transient() => refused.push((to.to_string(), e)),
            Err(e) => return Err(send_error(s, &e)),
        }
    }
    if !refused.is_empty() {
        let _ = within(s, s.timeout, c.command(Rset)).await;
        return Err(recipients_refused(s, &refused));
    }
    within(s, s.timeout, c.command(Data))
        .await?
        .map_err(|e| send_error(s, &e))?;
    let written = AtomicBool::new(false);
    let body = Body {
        bytes: Some(bytes),
        written: &written,
    };
    let allowed = s.timeout + Duration::from_secs(bytes.len() as u64 / SLOWEST_BYTES_PER_SEC);
    match within(s, allowed, c.message_iter(body)).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.is_permanent() || e.is_transient() => Err(send_error(s, &e)),
        Ok(Err(e)) if written.load(Ordering::SeqCst) => Err(unconfirmed(s, &e.to_string())),
        Ok(Err(e)) => Err(send_error(s, &e)),
        Err(e) if written.load(Ordering::SeqCst) => Err(unconfirmed(s, &e.what)),
        Err(e) => Err(e),
    }
}

/// SMTPUTF8 and 8BITMIME when the envelope or message needs them (RFC 6531, RFC 6152).
fn mail_options(
    c: &AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Vec<MailParameter>> {
    let info = c.server_info();
    let mut options = Vec::new();
    let non_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a| !AsRef::<str>::as_ref(a).is_ascii());
    if non_ascii {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(Error::bad_data(
                "an address has non-ASCII characters and the server does not offer SMTPUTF8",
            )
            .fix("use the ASCII (punycode) form of the domain, or send through Graph (--transport graph)"));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(Error::bad_data(
                "the message has 8-bit bytes and the server does not offer 8BITMIME",
            )
            .fix("encode the body (mailer's own messages are), or send through Graph"));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(options)
}

/// An answer within `limit`, or a temporary error saying the server went quiet.
async fn within<T>(s: &Settings, limit: Duration, f: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| quiet(s, limit))
}

/// Refused recipients, named: a permanent refusal of any is the message's verdict.
fn recipients_refused(s: &Settings, refused: &[(String, SmtpError)]) -> Error {
    let (address, first) = refused
        .iter()
        .find(|(_, e)| e.is_permanent())
        .unwrap_or(&refused[0]);
    let base = send_error(s, first);
    let others: Vec<&str> = refused
        .iter()
        .map(|(a, _)| a.as_str())
        .filter(|a| a != address)
        .collect();
    let also = match others.is_empty() {
        true => String::new(),
        false => format!(" (also refused: {})", others.join(", ")),
    };
    let what = format!(
        "{} refused the recipient {address}{also}; the message went to nobody",
        s.host
    );
    Error { what, ..base }
}

fn unconfirmed(s: &Settings, why: &str) -> Error {
    Error::temp(format!(
        "the connection to {} broke after the whole message was sent and before the server confirmed it",
        s.host
    ))
    .why(why.to_owned())
    .fix("the message may have been delivered: check the recipient's mailbox or your Sent folder before sending it again")
    .unconfirmed()
}

/// The message as lettre's `message_iter` takes it, noting when lettre has written all of
/// it: the iterator is asked for its next part only after the previous one was written.
struct Body<'a> {
    bytes: Option<&'a [u8]>,
    written: &'a AtomicBool,
}

impl<'a> Iterator for Body<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let part = self.bytes.take();
        if part.is_none() {
            self.written.store(true, Ordering::SeqCst);
        }
        part
    }
}

/// The DATA payload: CRLF line ends as SMTP requires (messages piped from Unix tools often
/// have bare LF), without the final line break, which lettre adds back with the "." line.
pub(super) fn data(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_has_crlf_and_no_final_break() {
        for (input, expected) in [
            (&b"a\nb\n"[..], &b"a\r\nb"[..]),
            (b"a\r\nb\r\n", b"a\r\nb"),
            (b"a\r\nb", b"a\r\nb"),
            (b"\n", b""),
        ] {
            assert_eq!(data(input), expected);
        }
    }
}

/// Properties of the DATA payload: any message becomes CRLF-only lines with the same text.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn data_has_only_crlf_line_ends_and_the_same_text(bytes in prop::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'.'), any::<u8>()], 0..200,
        )) {
            let out = data(&bytes);
            for (i, b) in out.iter().enumerate() {
                if *b == b'\n' {
                    prop_assert!(i > 0 && out[i - 1] == b'\r');
                }
            }
            // Only CRs before bare LFs were added, and only one final line break dropped.
            let strip = |b: &[u8]| b.iter().filter(|c| **c != b'\r').copied().collect::<Vec<u8>>();
            let mut want = strip(&bytes);
            if bytes.ends_with(b"\n") {
                want.pop();
            }
            prop_assert_eq!(strip(&out), want);
        }
    }
}
