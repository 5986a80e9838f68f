//! The portal steps for registering mailer's app by hand, with this tenant's values filled
//! in: the fallback when `mailer app create` may not run, and for an admin who registers the
//! app for someone else. Text only; nothing here talks to a server.

pub struct Values<'a> {
    pub tenant: &'a str,
    pub name: &'a str,
    pub user: Option<&'a str>,
    pub personal: bool,
    pub app_only: bool,
    pub large_attachments: bool,
    /// The login host, for the admin-consent URL.
    pub authority: &'a str,
}

pub fn steps(v: &Values) -> String {
    let mut steps: Vec<String> = vec![
        "Open the Microsoft Entra admin center (https://entra.microsoft.com) and go to Identity > Applications > App registrations > New registration.".into(),
        format!("Name: {}", v.name),
        match v.personal {
            true => "Supported account types: \"Accounts in any organizational directory and personal Microsoft accounts\".".into(),
            false => format!("Supported account types: \"Accounts in this organizational directory only ({} - Single tenant)\".", v.tenant),
        },
    ];
    let user = v.user.unwrap_or("you@example.com");
    let then = if v.app_only {
        steps.extend([
            "Leave the redirect URI empty and click Register.".to_owned(),
            "Certificates & secrets > Certificates > Upload certificate: the public certificate (PEM or .cer) whose private key mailer will use (or, less safe because it expires unnoticed, Client secrets > New client secret).".to_owned(),
            "API permissions > Add a permission > Microsoft Graph > Application permissions: Mail.Send.".to_owned(),
            format!("API permissions > Grant admin consent for {} (an admin must).", v.tenant),
            format!("Scope the app to the mailboxes it may send as (Exchange Online PowerShell): New-ApplicationAccessPolicy -AppId <Application (client) ID> -PolicyScopeGroupId {user} -AccessRight RestrictAccess -Description \"mailer\""),
        ]);
        format!(
            "mailer login --app-only --tenant {} --client-id <Application (client) ID> --user {user} --certificate cert.pem --private-key key.pem",
            v.tenant
        )
    } else {
        let mut graph = "Mail.Send, offline_access, openid, profile, email".to_owned();
        if v.large_attachments {
            graph.push_str(", Mail.ReadWrite");
        }
        steps.extend([
            "Redirect URI: platform \"Public client/native (mobile & desktop)\", URI http://localhost (exactly: not 127.0.0.1, no port). Click Register.".to_owned(),
            "Authentication > Advanced settings > Allow public client flows: Yes. Save.".to_owned(),
            format!("API permissions > Add a permission > Microsoft Graph > Delegated permissions: {graph}."),
            "API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > Delegated permissions: SMTP.Send.".to_owned(),
            format!(
                "If users may not consent to apps: an admin clicks \"Grant admin consent for {}\", or opens {}/{}/adminconsent?client_id=<Application (client) ID>.",
                v.tenant,
                v.authority.trim_end_matches('/'),
                v.tenant
            ),
        ]);
        format!(
            "mailer login --tenant {} --client-id <Application (client) ID> --user {user}",
            v.tenant
        )
    };
    steps.push(format!(
        "Overview: copy the Application (client) ID, then run:\n      {then}"
    ));
    let mut out = format!(
        "Register mailer's app by hand, for tenant {}:\n\n",
        v.tenant
    );
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!("{:>3}. {s}\n", i + 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegated_steps_name_the_exact_permissions_and_the_tenant() {
        let text = steps(&Values {
            tenant: "11111111-2222-3333-4444-555555555555",
            name: "mailer (ops@host)",
            user: Some("ops@contoso.com"),
            personal: false,
            app_only: false,
            large_attachments: true,
            authority: "https://login.microsoftonline.com",
        });
        for needle in [
            "http://localhost",
            "Mail.Send, offline_access, openid, profile, email, Mail.ReadWrite",
            "SMTP.Send",
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/adminconsent",
            "mailer login --tenant 11111111-2222-3333-4444-555555555555",
            "mailer (ops@host)",
        ] {
            assert!(text.contains(needle), "{needle}: {text}");
        }
        assert!(text.contains("  9. Overview"), "{text}");
    }
}
