//! The authorization-code flow with PKCE (S256) and a loopback redirect (SPEC section 4).
//!
//! A `tiny_http` listener on 127.0.0.1 (and [::1] on the same port where possible) answers
//! exactly one callback whose `state` matches; a wrong or missing `state` is refused and the
//! wait goes on; other paths (`/favicon.ico`) get a 404; connections from other hosts are
//! refused. The browser is opened with `webbrowser` (which honours `$BROWSER`) and the URL is
//! always printed, so it can be opened on another machine. The code and the verifier are
//! secrets and are never logged.

use super::errors::EntraError;
use super::{Account, EntraClient, EntraTokenResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;
use oauth2::url::Url;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use std::time::{Duration, Instant};

pub struct Options<'a> {
    pub redirect_uri: Option<&'a str>,
    pub no_browser: bool,
    pub login_hint: Option<&'a str>,
    pub timeout: Duration,
    pub quiet: bool,
}

pub async fn login(
    acct: &Account,
    client: EntraClient,
    authorize_scopes: &[String],
    token_scopes: &[String],
    opts: &Options<'_>,
) -> Result<EntraTokenResponse> {
    let listener = Listener::bind(opts.redirect_uri)?;
    let redirect = RedirectUrl::from_url(listener.redirect.clone());
    let client = client.set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(authorize_scopes.iter().cloned().map(Scope::new))
        .set_pkce_challenge(challenge);
    if let Some(hint) = opts.login_hint {
        request = request.add_extra_param("login_hint", hint);
    }
    let (url, state) = request.url();
    let state = Secret::new(state.secret().clone());

    eprintln!("Open this URL in a browser to sign in (it is valid for one login):\n\n  {url}\n");
    if !opts.no_browser {
        match webbrowser::open(url.as_str()) {
            Ok(()) => {
                if !opts.quiet {
                    eprintln!(
                        "Opened your browser; waiting up to {} s for the sign-in…",
                        opts.timeout.as_secs()
                    );
                }
            }
            Err(e) => eprintln!("Could not open a browser ({e}); open the URL above yourself."),
        }
    }

    let code = listener.wait(&state, opts.timeout, acct)?;
    client
        .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
        .set_pkce_verifier(verifier)
        .add_extra_param("scope", token_scopes.join(" "))
        .request_async(&acct.http()?)
        .await
        .map_err(|e| super::request_error(acct, e, "redeeming the sign-in code"))
}

struct Listener {
    servers: Vec<tiny_http::Server>,
    redirect: Url,
}

impl Listener {
    /// Binds the loopback listener. Without `--redirect-uri` the port is ephemeral and the
    /// redirect is `http://localhost:{port}/`, as MSAL does (Entra ignores the port of a
    /// loopback redirect).
    fn bind(redirect_uri: Option<&str>) -> Result<Listener> {
        let (mut redirect, port) = match redirect_uri {
            Some(text) => {
                let url = Url::parse(text).map_err(|e| {
                    Error::usage(format!("--redirect-uri {text:?} is not a URL: {e}"))
                        .fix("pass it as http://localhost:PORT/PATH, exactly as registered")
                })?;
                let loopback_http = url.scheme() == "http" && crate::provider::is_loopback(&url);
                let Some(port) = url.port().filter(|_| loopback_http) else {
                    return Err(Error::usage(format!(
                        "--redirect-uri {text} is not a loopback http URL with a port"
                    ))
                    .why("mailer receives the sign-in on a local listener")
                    .fix("register and pass e.g. http://localhost:8400/callback"));
                };
                (url, port)
            }
            None => (Url::parse("http://localhost/").expect("static URL"), 0),
        };
        let v4 = tiny_http::Server::http(("127.0.0.1", port)).map_err(|e| {
            Error::temp(format!(
                "cannot listen on 127.0.0.1:{port} for the sign-in redirect: {e}"
            ))
            .fix(if port == 0 {
                "check that loopback networking works"
            } else {
                "stop what uses that port, or register and pass another --redirect-uri"
            })
        })?;
        let port = v4.server_addr().to_ip().map(|a| a.port()).unwrap_or(port);
        let mut servers = vec![v4];
        // Browsers may resolve localhost to ::1 first; serve it too where the host has IPv6.
        if redirect.host_str() != Some("127.0.0.1")
            && let Ok(v6) = tiny_http::Server::http(("::1", port))
        {
            servers.push(v6);
        }
        if redirect_uri.is_none() {
            redirect
                .set_port(Some(port))
                .expect("http URL takes a port");
        }
        tracing::debug!(%redirect, listeners = servers.len(), "loopback listener ready");
        Ok(Listener { servers, redirect })
    }

    /// Waits for the one callback with our `state`, until `timeout`.
    fn wait(&self, state: &Secret, timeout: Duration, acct: &Account) -> Result<Secret> {
        let deadline = Instant::now() + timeout;
        let slice = Duration::from_millis(if self.servers.len() > 1 { 50 } else { 200 });
        while Instant::now() < deadline {
            for server in &self.servers {
                let Ok(Some(request)) = server.recv_timeout(slice) else {
                    continue;
                };
                if let Some(outcome) = self.handle(request, state) {
                    return outcome.map_err(|e| {
                        let (login, client_id, tenant) = acct.error_context();
                        let ctx = super::errors::Context {
                            login_command: &login,
                            client_id: &client_id,
                            tenant: &tenant,
                        };
                        super::errors::explain(&e, "signing in", &ctx)
                    });
                }
            }
        }
        Err(Error::temp(format!("no sign-in arrived within {} s", timeout.as_secs()))
            .why(format!("mailer waited on {} for the browser to come back", self.redirect))
            .fix("run the login again (--timeout SECS gives more time; --no-browser prints the URL for another machine; --device-code needs no local browser)"))
    }

    /// Answers one request. `Some` ends the wait with a code or the provider's error.
    fn handle(
        &self,
        request: tiny_http::Request,
        state: &Secret,
    ) -> Option<Result<Secret, EntraError>> {
        let from_loopback = request
            .remote_addr()
            .map(|a| a.ip().is_loopback())
            .unwrap_or(false);
        if !from_loopback {
            respond(
                request,
                403,
                "Forbidden",
                "Only this machine may complete the sign-in.",
            );
            return None;
        }
        let Ok(url) = Url::parse(&format!("http://localhost{}", request.url())) else {
            respond(request, 400, "Bad request", "Malformed request.");
            return None;
        };
        if url.path() != self.redirect.path() || *request.method() != tiny_http::Method::Get {
            respond(request, 404, "Not found", "Nothing here.");
            return None;
        }
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        if param("state").as_deref() != Some(state.expose()) {
            tracing::warn!("ignored a sign-in callback whose state does not match this login");
            respond(
                request,
                400,
                "Sign-in not accepted",
                "This response does not belong to the sign-in mailer is waiting for (state mismatch). It was ignored; mailer is still waiting.",
            );
            return None;
        }
        if let Some(error) = param("error") {
            let e = EntraError::new(&error, param("error_description").as_deref());
            respond(
                request,
                400,
                "Sign-in failed",
                &format!("{e}. Return to the terminal for what to do next."),
            );
            return Some(Err(e));
        }
        match param("code") {
            Some(code) => {
                respond(
                    request,
                    200,
                    "Signed in",
                    "mailer received the sign-in. You can close this tab and return to the terminal.",
                );
                Some(Ok(Secret::new(code)))
            }
            None => {
                respond(
                    request,
                    400,
                    "Sign-in not accepted",
                    "The response carries no code; mailer is still waiting.",
                );
                None
            }
        }
    }
}

fn respond(request: tiny_http::Request, status: u16, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mailer: {t}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{t}</h1><p>{x}</p></body></html>",
        t = html_escape(title),
        x = html_escape(text)
    );
    let header = tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8")
        .expect("static header");
    let response = tiny_http::Response::from_string(body)
        .with_status_code(status)
        .with_header(header);
    if let Err(e) = request.respond(response) {
        tracing::debug!("could not answer the browser: {e}");
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            html_escape("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(Listener::bind(Some("https://localhost:8400/cb")).is_err());
        assert!(Listener::bind(Some("http://example.com:8400/cb")).is_err());
        assert!(Listener::bind(Some("http://localhost/cb")).is_err());
        let l = Listener::bind(None).unwrap();
        assert_eq!(l.redirect.host_str(), Some("localhost"));
        assert_eq!(l.redirect.path(), "/");
        assert_ne!(l.redirect.port(), Some(0));
    }
}
