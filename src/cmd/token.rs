//! `mailer token`: a valid access token on stdout, for msmtp `passwordeval`, curl and
//! scripts. The one command that prints a secret, by design; it never starts a login.
//! `--refresh` is the keepalive: a weekly cron line keeps the refresh token in use.

use crate::cli::{TokenArgs, TokenFormat};
use crate::context::Context;
use crate::error::Result;
use base64::Engine;

pub async fn run(ctx: &Context, args: TokenArgs) -> Result<()> {
    let acct = ctx.account()?;
    let transport = args.transport.unwrap_or(acct.profile.transport);
    acct.check_transport(transport)?;
    let t = crate::tokens::access_token(acct, transport, args.refresh).await?;
    let user = &acct.profile.user;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    // The global --json asks for the JSON document too, as it does of every command.
    let format = match ctx.printer.json() {
        true => TokenFormat::Json,
        false => args.format,
    };
    let out = match format {
        TokenFormat::Raw => t.token.expose().to_owned(),
        TokenFormat::Xoauth2 => b64(format!(
            "user={user}\x01auth=Bearer {}\x01\x01",
            t.token.expose()
        )),
        TokenFormat::Oauthbearer => {
            // RFC 7628 section 3.1: gs2 header, then host and port of the SMTP server.
            let host = acct.endpoints.smtp_host.clone().unwrap_or_default();
            b64(format!(
                "n,a={},\x01host={host}\x01port={}\x01auth=Bearer {}\x01\x01",
                user.replace('=', "=3D").replace(',', "=2C"),
                acct.endpoints.smtp_port,
                t.token.expose()
            ))
        }
        TokenFormat::Json => serde_json::json!({
            "access_token": t.token.expose(),
            "token_type": "Bearer",
            "expires_at": t.expires_at,
            "user": user,
            "scope": t.scope,
            "transport": transport.as_str(),
        })
        .to_string(),
    };
    ctx.printer.data(format!("{out}\n").as_bytes())
}
