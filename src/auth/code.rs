//! The authorization-code flow with PKCE (S256, RFC 7636) and a loopback redirect
//! (RFC 8252 section 7.3).
//!
//! A `tiny_http` listener on 127.0.0.1 (and [::1] on the same port where possible) answers
//! exactly one callback whose `state` matches; a wrong or missing `state` is refused and the
//! wait goes on; other paths (`/favicon.ico`) get a 404; connections from other hosts are
//! refused. The browser is opened with `webbrowser` (which honours `$BROWSER`) and the URL is
//! always printed, so it can be opened on another machine. The code and the verifier are
//! secrets and are never logged.

use super::errors::TokenError;
use super::login::Options;
use super::{Account, TokenAnswer};
use crate::error::{Error, Result};
use crate::secret::Secret;
use oauth2::url::Url;
use oauth2::{AuthorizationCode, CsrfToken, PkceCodeChallenge, RedirectUrl, Scope};
use std::time::{Duration, Instant};

pub async fn sign_in(
    acct: &Account,
    secret: Option<&Secret>,
    opts: &Options<'_>,
) -> Result<TokenAnswer> {
    let p = &acct.profile;
    let listener = Listener::bind(p.redirect_uri.as_deref(), acct.provider.redirect_host())?;
    let client = acct
        .oauth_client(secret)?
        .set_redirect_uri(RedirectUrl::from_url(listener.redirect.clone()));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(
            acct.provider
                .authorize_scopes(p)
                .into_iter()
                .map(Scope::new),
        )
        .set_pkce_challenge(challenge);
    for (k, v) in acct.provider.authorize_params(p) {
        request = request.add_extra_param(k, v);
    }
    if let Some(hint) = opts.login_hint {
        request = request.add_extra_param("login_hint", hint);
    }
    let (url, state) = request.url();
    let state = Secret::new(state.secret().clone());

    show(&url, opts);
    let code = listener
        .wait(&state, opts.timeout)
        .map_err(|e| e.explain(acct))?;
    let token_scopes = acct.provider.token_scopes(p, p.transport);
    let mut redeem = client
        .exchange_code(AuthorizationCode::new(code.expose().to_owned()))
        .set_pkce_verifier(verifier);
    // Entra wants the one resource this token is for; providers whose tokens carry every
    // granted scope get none.
    if !token_scopes.is_empty() {
        redeem = redeem.add_extra_param("scope", token_scopes.join(" "));
    }
    redeem
        .request_async(acct.http()?)
        .await
        .map_err(|e| super::request_error(acct, e, "redeeming the sign-in code"))
}

/// The URL goes to stderr always (it may be opened on another machine), and to the
/// browser unless `--no-browser`.
fn show(url: &oauth2::url::Url, opts: &Options<'_>) {
    let printer = opts.printer;
    printer.tell(format!(
        "Open this URL in a browser to sign in (it is valid for one login):\n\n  {url}\n"
    ));
    if !opts.no_browser {
        match webbrowser::open(url.as_str()) {
            Ok(()) => printer.say(format!(
                "Opened your browser; waiting up to {} s for the sign-in…",
                opts.timeout.as_secs()
            )),
            Err(e) => printer.tell(format!(
                "Could not open a browser ({e}); open the URL above yourself."
            )),
        }
    }
}

/// Why the wait for the browser ended without a code.
enum WaitError {
    /// The identity provider redirected back with an error.
    Provider(TokenError),
    Other(Error),
}

impl WaitError {
    fn explain(self, acct: &Account) -> Error {
        match self {
            WaitError::Provider(e) => acct.provider.explain(&e, "signing in", &acct.fill()),
            WaitError::Other(e) => e,
        }
    }
}

struct Listener {
    servers: Vec<tiny_http::Server>,
    redirect: Url,
}

impl Listener {
    /// Binds the loopback listener. Without `--redirect-uri` the port is ephemeral and the
    /// redirect is `http://localhost:{port}/`, as MSAL does (Entra ignores the port of a
    /// loopback redirect).
    fn bind(redirect_uri: Option<&str>, host: &str) -> Result<Listener> {
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
            None => (
                Url::parse(&format!("http://{host}/"))
                    .map_err(|e| Error::internal(format!("bad loopback host {host}: {e}")))?,
                0,
            ),
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
    fn wait(&self, state: &Secret, timeout: Duration) -> Result<Secret, WaitError> {
        let deadline = Instant::now() + timeout;
        let slice = Duration::from_millis(if self.servers.len() > 1 { 50 } else { 200 });
        while Instant::now() < deadline {
            for server in &self.servers {
                let Ok(Some(request)) = server.recv_timeout(slice) else {
                    continue;
                };
                if let Some(outcome) = self.handle(request, state) {
                    return outcome.map_err(WaitError::Provider);
                }
            }
        }
        Err(WaitError::Other(Error::temp(format!("no sign-in arrived within {} s", timeout.as_secs()))
            .why(format!("mailer waited on {} for the browser to come back", self.redirect))
            .fix("run the login again (--timeout SECS gives more time; --no-browser prints the URL for another machine; --device-code needs no local browser)")))
    }

    /// Answers one request. `Some` ends the wait with a code or the provider's error.
    fn handle(
        &self,
        request: tiny_http::Request,
        state: &Secret,
    ) -> Option<Result<Secret, TokenError>> {
        let from_loopback = request.remote_addr().is_some_and(|a| a.ip().is_loopback());
        let is_get = *request.method() == tiny_http::Method::Get;
        let j = judge(
            request.url(),
            is_get,
            from_loopback,
            self.redirect.path(),
            state,
        );
        respond(request, j.status, j.title, &j.text);
        j.verdict
    }
}

/// What one request to the loopback listener means for the wait, and the page answering it.
#[doc(hidden)]
pub struct Judgement {
    /// `Some` ends the wait: the code, or the provider's error.
    pub verdict: Option<Result<Secret, TokenError>>,
    pub status: u16,
    pub title: &'static str,
    pub text: String,
}

/// Judges a request to the listener: `target` is its request target (path and query) as
/// the browser sent it, `redirect_path` the path of our redirect URI. Only a GET from
/// loopback to that path whose `state` matches ends the wait. A pure function of what
/// arrived, so that it is tested (and fuzzed) without a socket.
// Long because it is one decision table, checked in order (origin, path, state, error,
// code), each row with the page it answers: split, the order would be hidden.
#[doc(hidden)]
pub fn judge(
    target: &str,
    is_get: bool,
    from_loopback: bool,
    redirect_path: &str,
    state: &Secret,
) -> Judgement {
    let page = |status, title, text: &str| Judgement {
        verdict: None,
        status,
        title,
        text: text.to_owned(),
    };
    if !from_loopback {
        return page(
            403,
            "Forbidden",
            "Only this machine may complete the sign-in.",
        );
    }
    let Ok(url) = Url::parse(&format!("http://localhost{target}")) else {
        return page(400, "Bad request", "Malformed request.");
    };
    if url.path() != redirect_path || !is_get {
        return page(404, "Not found", "Nothing here.");
    }
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.expose()) {
        tracing::warn!("ignored a sign-in callback whose state does not match this login");
        return page(
            400,
            "Sign-in not accepted",
            "This response does not belong to the sign-in mailer is waiting for (state mismatch). It was ignored; mailer is still waiting.",
        );
    }
    if let Some(error) = param("error") {
        let e = TokenError::new(&error, param("error_description").as_deref());
        let text = format!("{e}. Return to the terminal for what to do next.");
        return Judgement {
            verdict: Some(Err(e)),
            status: 400,
            title: "Sign-in failed",
            text,
        };
    }
    match param("code") {
        Some(code) => Judgement {
            verdict: Some(Ok(Secret::new(code))),
            status: 200,
            title: "Signed in",
            text: "mailer received the sign-in. You can close this tab and return to the terminal."
                .into(),
        },
        None => page(
            400,
            "Sign-in not accepted",
            "The response carries no code; mailer is still waiting.",
        ),
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
        assert!(Listener::bind(Some("https://localhost:8400/cb"), "localhost").is_err());
        assert!(Listener::bind(Some("http://example.com:8400/cb"), "localhost").is_err());
        assert!(Listener::bind(Some("http://localhost/cb"), "localhost").is_err());
        let l = Listener::bind(None, "localhost").unwrap();
        assert_eq!(l.redirect.host_str(), Some("localhost"));
        assert_eq!(l.redirect.path(), "/");
        assert_ne!(l.redirect.port(), Some(0));
    }
}

/// Properties of the callback judge: whatever a browser (or anything else on this machine)
/// sends, the wait ends only with our state, and the code comes back exactly as sent.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn enc(s: &str) -> String {
        oauth2::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_request_is_judged_and_only_our_state_ends_the_wait(
            target in prop_oneof!["/[ -~]{0,40}", "/\\?(state|code|error|x)=[ -~]{0,12}(&(state|code|error)=[ -~]{0,12}){0,3}", any::<String>()],
            is_get in any::<bool>(),
            from_loopback in any::<bool>(),
        ) {
            let state = Secret::new("s3cr3t-state");
            let j = judge(&target, is_get, from_loopback, "/", &state);
            if j.verdict.is_some() {
                prop_assert!(is_get && from_loopback);
                prop_assert!(target.contains("state=s3cr3t-state"), "{}", target);
            }
            prop_assert!((200..500).contains(&j.status));
        }

        #[test]
        fn the_code_comes_back_exactly(code in any::<String>(), state in "[ -~]{1,40}", other in any::<String>()) {
            let target = format!("/cb?code={}&state={}&session_state={}", enc(&code), enc(&state), enc(&other));
            let j = judge(&target, true, true, "/cb", &Secret::new(state.clone()));
            match j.verdict {
                Some(Ok(got)) => prop_assert_eq!(got.expose(), code.as_str()),
                _ => prop_assert!(false, "refused {}", target),
            }
            prop_assert_eq!(j.status, 200);
            // A state that differs in any way is refused and the wait goes on.
            let j = judge(&target, true, true, "/cb", &Secret::new(format!("{state}x")));
            prop_assert!(j.verdict.is_none());
        }

        #[test]
        fn a_provider_error_is_kept_whole(error in "[a-z_]{1,20}", description in any::<String>(), state in "[a-zA-Z0-9_-]{8,43}") {
            let target = format!("/?error={}&error_description={}&state={}", enc(&error), enc(&description), enc(&state));
            let j = judge(&target, true, true, "/", &Secret::new(state));
            match j.verdict {
                Some(Err(e)) => {
                    prop_assert_eq!(e.error, error);
                    prop_assert_eq!(e.error_description.as_deref(), Some(description.as_str()));
                }
                _ => prop_assert!(false, "not an error verdict"),
            }
        }
    }
}
