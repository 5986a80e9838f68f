//! `mailer discover ADDRESS`: what a login for an address needs, from
//! [`crate::setup::discover`].

use crate::cli::DiscoverArgs;
use crate::context::Context;
use crate::error::Result;
use crate::setup::discover::{Kind, SignIn, discover};

pub async fn run(ctx: &Context, args: DiscoverArgs) -> Result<()> {
    let authority = args
        .authority
        .as_deref()
        .map(|a| crate::provider::checked_url(a, "--authority"))
        .transpose()?;
    let ca_file = ctx.profile().and_then(|p| p.ca_file.clone());
    let http = crate::http::client(
        ca_file.as_deref(),
        crate::config::Profile::default().timeout(),
    )?;
    let d = discover(&http, &args.address, authority.as_ref()).await?;
    let json =
        serde_json::to_value(&d).map_err(|e| crate::error::Error::internal(e.to_string()))?;
    ctx.printer.result(&json, || {
        let mut lines = vec![
            format!("{}: {}", d.address, match d.kind {
                Kind::Work => "a work or school account (Microsoft 365)",
                Kind::Personal => "a personal Microsoft account (Outlook.com)",
            }),
            format!("  tenant     {}", d.tenant_id.clone().unwrap_or_else(|| "consumers (personal accounts)".into())),
            format!("  domain     {}", d.domain),
            format!("  cloud      {}", d.cloud),
            format!("  authority  {}", d.authority),
            format!("  graph      {}", d.graph_url),
            format!("  smtp       {}", d.smtp_host.as_ref().map(|h| format!("{h}:{}", d.smtp_port)).unwrap_or_else(|| "none known: pass --smtp-host".into())),
            format!("  sign-in    {}", match (d.sign_in, &d.federation_brand) {
                (SignIn::Federated, Some(b)) => format!("federated ({b})"),
                (SignIn::Federated, None) => "federated".into(),
                (SignIn::Managed, _) => "managed by Entra".into(),
            }),
        ];
        lines.push(match d.kind {
            Kind::Work => format!("next: mailer setup --user {}   (or mailer login --user {} --client-id ID)", d.address, d.address),
            Kind::Personal => format!("next: mailer login --user {} --tenant consumers --client-id ID of an app that allows personal accounts", d.address),
        });
        lines.join("\n")
    })
}
