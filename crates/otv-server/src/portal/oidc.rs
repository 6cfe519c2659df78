//! Login through OpenID Connect (PRODUCT.md §10): the authorization code flow with PKCE
//! (S256), `state` and `nonce`, against the configured issuer (DigiD through a broker in
//! production; any certified OpenID Provider in tests).
//!
//! `GET /inloggen/start` discovers the issuer (once; retried after a failure), keeps `state`,
//! `nonce` and the PKCE verifier in the short-lived login-state cookie `otv_oidc` (HttpOnly,
//! `Path=/inloggen`, separate from the session cookie) and sends the browser to the issuer.
//! `GET /inloggen/terug` checks `state` against that cookie, exchanges the code (with the
//! verifier), verifies the ID token (signature, issuer, audience, expiry, nonce) and reads the
//! claims by their configured names from the ID token, and where absent from the userinfo
//! endpoint (whose `sub` must be the ID token's). A representative is someone for whom the
//! `acting_for` claim names another BSN.
//!
//! Must not: follow redirects from the issuer's endpoints (SSRF), or log a claim's value.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDate;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessToken, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use otv_core::Bsn;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::PortalError;
use super::login::{Identity, establish};
use super::session::{cookie, set_cookie};
use super::{ClaimNames, OidcSettings};
use crate::AppState;

/// The login-state cookie: `state.nonce.verifier`, for the ten minutes a login may take.
const LOGIN_STATE_COOKIE: &str = "otv_oidc";
const LOGIN_STATE_SECONDS: u64 = 600;

/// `scheme://host[:port]` of an http(s) URL.
pub(crate) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The issuer as discovered.
struct Discovered {
    client: Client,
    userinfo: Option<String>,
}

/// The OpenID Connect client: settings, an HTTP client that follows no redirects, and the
/// discovered issuer (kept once discovery succeeded).
pub(crate) struct Oidc {
    settings: Option<OidcSettings>,
    http: reqwest::Client,
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

impl Oidc {
    pub(crate) fn new(settings: Option<OidcSettings>) -> Result<Oidc, String> {
        if let Some(s) = &settings {
            IssuerUrl::new(s.issuer.clone())
                .map_err(|_| "setting `portal.oidc_issuer`: not a URL")?;
            RedirectUrl::new(s.redirect_url.clone())
                .map_err(|_| "setting `portal.oidc_redirect_url`: not a URL")?;
        }
        // reqwest's TLS is rustls without a built-in provider: make aws-lc-rs the process
        // default (a no-op when the binary already did).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("OpenID Connect HTTP client: {e}"))?;
        Ok(Oidc {
            settings,
            http,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, PortalError> {
        let settings = self.settings.as_ref().ok_or(PortalError::NotFound)?;
        let mut slot = self.discovered.lock().await;
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| PortalError::Login(format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| PortalError::Login(format!("discovery: {e}")))?;
        let userinfo = metadata.userinfo_endpoint().map(|u| u.url().to_string());
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(
            RedirectUrl::new(settings.redirect_url.clone())
                .map_err(|e| PortalError::Login(format!("redirect URL: {e}")))?,
        );
        let d = Arc::new(Discovered { client, userinfo });
        *slot = Some(d.clone());
        Ok(d)
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/inloggen/start", get(start))
        .route("/inloggen/terug", get(callback))
}

async fn start(State(state): State<AppState>) -> Result<Response, PortalError> {
    let d = state.portal.oidc.discovered().await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = d
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let value = [csrf.secret(), nonce.secret(), verifier.secret()]
        .map(|s| URL_SAFE_NO_PAD.encode(s))
        .join(".");
    let mut response = Redirect::to(url.as_str()).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(
            LOGIN_STATE_COOKIE,
            &value,
            "/inloggen",
            Some(LOGIN_STATE_SECONDS),
        ),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The login state kept in the cookie.
struct LoginState {
    state: String,
    nonce: String,
    verifier: String,
}

fn read_login_state(headers: &HeaderMap) -> Option<LoginState> {
    let raw = cookie(headers, LOGIN_STATE_COOKIE)?;
    let mut parts = raw.split('.').map(|p| {
        URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    });
    let (Some(Some(state)), Some(Some(nonce)), Some(Some(verifier)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(LoginState {
        state,
        nonce,
        verifier,
    })
}

async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PortalError> {
    let d = state.portal.oidc.discovered().await?;
    if let Some(e) = q.error {
        // The issuer's error code only (e.g. access_denied): no personal data.
        return Err(PortalError::Login(format!(
            "issuer answered {}",
            e.chars().take(64).collect::<String>()
        )));
    }
    let login = read_login_state(&headers)
        .ok_or_else(|| PortalError::Login("no login-state cookie".into()))?;
    let (Some(code), Some(returned_state)) = (q.code, q.state) else {
        return Err(PortalError::Login("code or state missing".into()));
    };
    if !super::session::same_secret(&returned_state, &login.state) {
        return Err(PortalError::Login("state does not match".into()));
    }
    let token = d
        .client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| PortalError::Login(format!("token endpoint: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.verifier))
        .request_async(&state.portal.oidc.http)
        .await
        .map_err(|e| PortalError::Login(format!("code exchange: {e}")))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| PortalError::Login("no ID token".into()))?;
    let verified = id_token
        .claims(&d.client.id_token_verifier(), &Nonce::new(login.nonce))
        .map_err(|e| PortalError::Login(format!("ID token: {e}")))?;
    let subject = verified.subject().as_str().to_owned();
    // The signature covers exactly these bytes; read the claims by their configured names.
    let mut claims = jwt_payload(&id_token.to_string())
        .ok_or_else(|| PortalError::Login("ID token payload".into()))?;
    let names = &state.portal.config.claims;
    let wanted = [
        &names.bsn,
        &names.birth_date,
        &names.acting_for,
        &names.name,
    ];
    if wanted.iter().any(|n| !claims.contains_key(n.as_str()))
        && let Some(url) = &d.userinfo
    {
        let info = userinfo(&state.portal.oidc.http, url, token.access_token()).await?;
        if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
            return Err(PortalError::Login(
                "userinfo is about another subject".into(),
            ));
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
    }
    let identity = identity_from(&claims, names)?;
    let mut response = establish(&state, &headers, identity, "oidc").await?;
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(LOGIN_STATE_COOKIE, "", "/inloggen", Some(0)),
    );
    Ok(response)
}

/// The claims of a compact JWS (its verified payload).
fn jwt_payload(jws: &str) -> Option<Map<String, Value>> {
    let payload = jws.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

async fn userinfo(
    http: &reqwest::Client,
    url: &str,
    access_token: &AccessToken,
) -> Result<Map<String, Value>, PortalError> {
    let response = http
        .get(url)
        .bearer_auth(access_token.secret())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| PortalError::Login(format!("userinfo: {e}")))?;
    if !response.status().is_success() {
        return Err(PortalError::Login(format!(
            "userinfo answered {}",
            response.status()
        )));
    }
    match response
        .json::<Value>()
        .await
        .map_err(|_| PortalError::Login("userinfo is not JSON".into()))?
    {
        Value::Object(map) => Ok(map),
        _ => Err(PortalError::Login("userinfo is not a JSON object".into())),
    }
}

/// A claim as text: a string, or a number written as digits (a BSN sent as a number).
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Who logged in, from the claims. The BSN is required; a malformed birth date or
/// "acting for" refuses the login rather than guessing.
fn identity_from(claims: &Map<String, Value>, names: &ClaimNames) -> Result<Identity, PortalError> {
    let bsn_text = claim_text(claims, &names.bsn)
        .ok_or_else(|| PortalError::Login(format!("claim `{}` missing", names.bsn)))?;
    // BSNs sent as numbers lose their leading zeros.
    let bsn = Bsn::parse(&format!("{bsn_text:0>9}"))
        .map_err(|_| PortalError::Login(format!("claim `{}` is not a valid BSN", names.bsn)))?;
    let birth_date = claim_text(claims, &names.birth_date)
        .map(|d| {
            d.parse::<NaiveDate>().map_err(|_| {
                PortalError::Login(format!("claim `{}` is not a date", names.birth_date))
            })
        })
        .transpose()?;
    let acting_for = claim_text(claims, &names.acting_for)
        .map(|b| {
            Bsn::parse(&format!("{b:0>9}")).map_err(|_| {
                PortalError::Login(format!("claim `{}` is not a valid BSN", names.acting_for))
            })
        })
        .transpose()?;
    Ok(Identity {
        bsn,
        name: claim_text(claims, &names.name),
        birth_date,
        acting_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_keep_scheme_host_and_port() {
        assert_eq!(
            origin_of("http://127.0.0.1:3000/oidc").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(
            origin_of("https://login.example/").as_deref(),
            Some("https://login.example")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://"), None);
    }

    #[test]
    fn claims_are_read_by_their_configured_names() {
        let claims: Map<String, Value> = serde_json::from_str(
            r#"{"sub":"x","nummer":900203638,"geb":"2012-05-01","namens":"900203651","naam":"Ans"}"#,
        )
        .unwrap();
        let names = ClaimNames {
            bsn: "nummer".into(),
            birth_date: "geb".into(),
            acting_for: "namens".into(),
            name: "naam".into(),
        };
        let id = identity_from(&claims, &names).unwrap();
        assert_eq!(id.bsn, Bsn::parse("900203638").unwrap());
        assert_eq!(id.acting_for, Some(Bsn::parse("900203651").unwrap()));
        assert_eq!(id.birth_date, Some("2012-05-01".parse().unwrap()));
        assert_eq!(id.name.as_deref(), Some("Ans"));
        let err = identity_from(&claims, &ClaimNames::default())
            .err()
            .unwrap();
        assert!(err.to_string().contains("`bsn` missing"), "{err}");
        assert!(!err.to_string().contains("900203638"));
    }
}
