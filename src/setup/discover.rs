//! What a login for a mail address needs, found from the address alone: personal or work
//! account, the tenant (GUID), the national cloud and so the hosts, managed or federated
//! sign-in. No sign-in is needed.
//!
//! Sources (Microsoft's "National cloud deployments" and the OpenID Connect Discovery 1.0
//! document Entra publishes): the tenant's OpenID discovery document
//! `{authority}/{domain}/v2.0/.well-known/openid-configuration` (the GUID is in `issuer`;
//! `cloud_instance_name`, `tenant_region_sub_scope` and `msgraph_host` say the cloud) and
//! the user-realm answer `{authority}/getuserrealm.srf?login=…&json=1` (`NameSpaceType`,
//! `FederationBrandName`). Personal Microsoft account domains are known by name, as
//! Thunderbird's autoconfig database knows them: they are not Entra tenants.

use crate::config::Cloud;
use crate::error::{Class, Error, Result};
use crate::provider::microsoft::cloud_info;
use oauth2::url::Url;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Work,
    Personal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignIn {
    Managed,
    Federated,
}

/// What `mailer discover --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub address: String,
    pub kind: Kind,
    /// `None` for personal accounts (they sign in at `consumers`).
    pub tenant_id: Option<String>,
    pub domain: String,
    pub cloud: Cloud,
    pub authority: String,
    pub graph_url: String,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub sign_in: SignIn,
    pub federation_brand: Option<String>,
}

impl Discovery {
    /// The `--tenant` a login uses: the GUID, or `consumers` for personal accounts.
    pub fn tenant(&self) -> String {
        self.tenant_id.clone().unwrap_or_else(|| "consumers".into())
    }
}

/// Microsoft's consumer (Outlook.com) mail domains: the list of Thunderbird's autoconfig
/// database entry for Outlook.com (`ispdb/hotmail.com.xml`).
const PERSONAL: &[&str] = &[
    "hotmail.com",
    "live.com",
    "msn.com",
    "outlook.com",
    "windowslive.com",
    "passport.com",
    "outlook.at",
    "outlook.be",
    "outlook.cl",
    "outlook.cz",
    "outlook.de",
    "outlook.dk",
    "outlook.es",
    "outlook.fr",
    "outlook.hu",
    "outlook.ie",
    "outlook.in",
    "outlook.it",
    "outlook.jp",
    "outlook.kr",
    "outlook.lv",
    "outlook.my",
    "outlook.ph",
    "outlook.pt",
    "outlook.sa",
    "outlook.sg",
    "outlook.sk",
    "outlook.co.id",
    "outlook.co.il",
    "outlook.co.th",
    "outlook.com.ar",
    "outlook.com.au",
    "outlook.com.br",
    "outlook.com.gr",
    "outlook.com.tr",
    "outlook.com.vn",
    "hotmail.be",
    "hotmail.ca",
    "hotmail.cl",
    "hotmail.cz",
    "hotmail.de",
    "hotmail.dk",
    "hotmail.es",
    "hotmail.fi",
    "hotmail.fr",
    "hotmail.gr",
    "hotmail.hu",
    "hotmail.it",
    "hotmail.lt",
    "hotmail.lv",
    "hotmail.my",
    "hotmail.nl",
    "hotmail.no",
    "hotmail.ph",
    "hotmail.rs",
    "hotmail.se",
    "hotmail.sg",
    "hotmail.sk",
    "hotmail.co.id",
    "hotmail.co.il",
    "hotmail.co.in",
    "hotmail.co.jp",
    "hotmail.co.kr",
    "hotmail.co.th",
    "hotmail.co.uk",
    "hotmail.co.za",
    "hotmail.com.ar",
    "hotmail.com.au",
    "hotmail.com.br",
    "hotmail.com.hk",
    "hotmail.com.tr",
    "hotmail.com.tw",
    "hotmail.com.vn",
    "live.at",
    "live.be",
    "live.ca",
    "live.cl",
    "live.cn",
    "live.de",
    "live.dk",
    "live.fi",
    "live.fr",
    "live.hk",
    "live.ie",
    "live.in",
    "live.it",
    "live.jp",
    "live.nl",
    "live.no",
    "live.ru",
    "live.se",
    "live.co.jp",
    "live.co.kr",
    "live.co.uk",
    "live.co.za",
    "live.com.ar",
    "live.com.au",
    "live.com.mx",
    "live.com.my",
    "live.com.ph",
    "live.com.pt",
    "live.com.sg",
    "livemail.tw",
];

pub fn is_personal_domain(domain: &str) -> bool {
    PERSONAL.iter().any(|d| d.eq_ignore_ascii_case(domain))
}

/// Finds what a login for `address` needs. `authority` points discovery at another login
/// host (sovereign clouds, tests); the login then uses it too.
pub async fn discover(
    http: &reqwest::Client,
    address: &str,
    authority: Option<&Url>,
) -> Result<Discovery> {
    let mailbox = crate::message::parse_mailbox(address, "the address")?;
    let domain = mailbox.email.domain().to_ascii_lowercase();
    let address = mailbox.email.to_string();
    let base = authority
        .cloned()
        .unwrap_or_else(|| Url::parse(cloud_info(Cloud::Global).authority).expect("static URL"));
    let login_host = |cloud: Cloud| match authority {
        Some(a) => a.as_str().trim_end_matches('/').to_owned(),
        None => cloud_info(cloud).authority.to_owned(),
    };
    if is_personal_domain(&domain) {
        return Ok(personal(address, domain, login_host(Cloud::Global)));
    }
    let doc = openid_configuration(http, &base, &domain).await?;
    let tenant_id = tenant_of(&doc).ok_or_else(|| {
        Error::refused(format!(
            "the discovery document of {domain} names no tenant"
        ))
        .why("its issuer holds no tenant GUID")
        .fix("pass --tenant and --cloud to `mailer login` yourself")
    })?;
    let cloud = cloud_of(&doc);
    let graph_url = doc["msgraph_host"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(|h| format!("https://{h}"))
        .unwrap_or_else(|| cloud_info(cloud).graph.to_owned());
    let realm = user_realm(http, &base, &address).await;
    let federated = realm["NameSpaceType"].as_str() == Some("Federated");
    Ok(Discovery {
        address,
        kind: Kind::Work,
        tenant_id: Some(tenant_id),
        domain: realm["DomainName"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or(domain),
        smtp_host: (cloud == Cloud::Global).then(|| "smtp.office365.com".to_owned()),
        smtp_port: 587,
        cloud,
        authority: login_host(cloud),
        graph_url,
        sign_in: if federated {
            SignIn::Federated
        } else {
            SignIn::Managed
        },
        federation_brand: realm["FederationBrandName"]
            .as_str()
            .filter(|_| federated)
            .map(str::to_owned),
    })
}

/// Outlook.com, Hotmail, Live: no tenant to discover, Microsoft's consumer hosts.
fn personal(address: String, domain: String, authority: String) -> Discovery {
    Discovery {
        address,
        kind: Kind::Personal,
        tenant_id: None,
        domain,
        cloud: Cloud::Global,
        authority,
        graph_url: cloud_info(Cloud::Global).graph.to_owned(),
        smtp_host: Some("smtp-mail.outlook.com".into()),
        smtp_port: 587,
        sign_in: SignIn::Managed,
        federation_brand: None,
    }
}

async fn get_json(http: &reqwest::Client, url: &str, what: &str) -> Result<(u16, Value)> {
    let response = http.get(url).send().await.map_err(|e| {
        Error::temp(format!("cannot reach {what}"))
            .why(crate::error::chain(&e))
            .fix("check the network and proxy (HTTPS_PROXY), or --authority")
    })?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(|e| {
        Error::temp(format!("{what} broke off its answer")).why(crate::error::chain(&e))
    })?;
    let v = serde_json::from_slice(&body).map_err(|_| {
        Error::refused(format!(
            "{what} sent an answer mailer cannot read (HTTP {status})"
        ))
        .fix("check --authority: a proxy or captive portal may be answering instead")
    })?;
    Ok((status, v))
}

async fn openid_configuration(http: &reqwest::Client, base: &Url, domain: &str) -> Result<Value> {
    let url = format!(
        "{}/{domain}/v2.0/.well-known/openid-configuration",
        base.as_str().trim_end_matches('/')
    );
    let (status, v) = get_json(http, &url, "the login host's discovery document").await?;
    let unknown = v["error_codes"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c.as_u64() == Some(90002)));
    match status {
        200 => Ok(v),
        400 if unknown => Err(Error::new(
            Class::NoTenant,
            format!("{domain} has no Microsoft 365 / Entra tenant"),
        )
        .why(format!("{} does not know the domain (AADSTS90002)", base.host_str().unwrap_or("the login host")))
        .fix("check the spelling of the address; a tenant in a national cloud is found with --authority https://login.microsoftonline.us (or login.chinacloudapi.cn); for Gmail or Google Workspace mail log in to Google instead: mailer login --provider google --client-id ID")
        .code("AADSTS90002")),
        s => Err(Error::refused(format!("discovery of {domain} failed with HTTP {s}"))
            .why(v["error_description"].as_str().unwrap_or_default().lines().next().unwrap_or_default().to_owned())
            .fix("try again later, or pass --tenant and --cloud to `mailer login` yourself")),
    }
}

/// The realm is a courtesy: when it cannot be had, sign-in is taken as managed.
async fn user_realm(http: &reqwest::Client, base: &Url, address: &str) -> Value {
    let mut url = match base.join("getuserrealm.srf") {
        Ok(u) => u,
        Err(_) => return Value::Null,
    };
    url.query_pairs_mut()
        .append_pair("login", address)
        .append_pair("json", "1");
    match get_json(http, url.as_str(), "the user-realm endpoint").await {
        Ok((200, v)) => v,
        Ok(_) => Value::Null,
        Err(e) => {
            tracing::debug!("user realm not known: {}", e.what);
            Value::Null
        }
    }
}

/// The tenant GUID of `issuer` (`https://login.microsoftonline.com/{GUID}/v2.0`).
pub fn tenant_of(doc: &Value) -> Option<String> {
    let issuer = Url::parse(doc["issuer"].as_str()?).ok()?;
    let first = issuer.path_segments()?.next()?.to_owned();
    crate::config::is_guid(&first).then_some(first)
}

/// The national cloud a discovery document describes.
fn cloud_of(doc: &Value) -> Cloud {
    let instance = doc["cloud_instance_name"].as_str().unwrap_or_default();
    let sub_scope = doc["tenant_region_sub_scope"].as_str().unwrap_or_default();
    match instance {
        "microsoftonline.us" if sub_scope.eq_ignore_ascii_case("DOD") => Cloud::UsGovDod,
        "microsoftonline.us" => Cloud::UsGov,
        "partner.microsoftonline.cn" => Cloud::China,
        _ => Cloud::Global,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clouds_from_documents() {
        for (instance, sub, cloud) in [
            ("microsoftonline.com", None, Cloud::Global),
            ("microsoftonline.com", Some("GCC"), Cloud::Global),
            ("microsoftonline.us", Some("DODCON"), Cloud::UsGov),
            ("microsoftonline.us", Some("DOD"), Cloud::UsGovDod),
            ("partner.microsoftonline.cn", None, Cloud::China),
        ] {
            let doc = json!({ "cloud_instance_name": instance, "tenant_region_sub_scope": sub });
            assert_eq!(cloud_of(&doc), cloud, "{instance} {sub:?}");
        }
    }

    #[test]
    fn tenant_from_the_issuer() {
        let doc = json!({ "issuer": "https://login.microsoftonline.com/12345678-1234-1234-1234-123456789012/v2.0" });
        assert_eq!(
            tenant_of(&doc).as_deref(),
            Some("12345678-1234-1234-1234-123456789012")
        );
        assert_eq!(
            tenant_of(&json!({ "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0" })),
            None
        );
    }

    #[test]
    fn personal_domains() {
        assert!(is_personal_domain("Outlook.com"));
        assert!(is_personal_domain("hotmail.co.uk"));
        assert!(!is_personal_domain("contoso.com"));
    }
}
