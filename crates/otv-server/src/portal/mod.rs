//! The citizen portal (PRODUCT.md §10): server-rendered HTML on the public listener, in Dutch
//! (B1) and English, without any JavaScript.
//!
//! # Pieces
//! - [`Portal`] (in [`AppState::portal`]): the configuration ([`PortalConfig`]) and the OpenID
//!   Connect client.
//! - [`session`]: the store-backed session and the extractors [`Session`], [`Citizen`] and
//!   [`CsrfForm`].
//! - [`text`]: the words, Dutch and English side by side ([`texts!`](text::texts)); [`Page`]:
//!   the request's language and path.
//! - [`layout`]: the page frame ([`Layout`]); `templates/portal/base.html` renders it.
//! - [`error`]: [`PortalError`], rendered as a readable page by the middleware.
//! - The middleware ([`with_layers`]): picks the language (`?lang=en` sets the `otv_lang`
//!   cookie), renders error pages, and sets the security headers (CSP without
//!   `unsafe-inline`, `nosniff`, `no-referrer`, `no-store`) on every portal response.
//!
//! # How to add a page
//! 1. Create `portal/<name>.rs` with `pub(crate) fn routes() -> Router<AppState>` and your
//!    handlers; declare it below (`mod <name>;`) and add `.merge(<name>::routes())` in
//!    [`routes`], in the marked block. URLs are Dutch (`/geschiedenis`); the navigation entry
//!    is in `layout.rs` (`NAV`).
//! 2. Words: declare a text struct in your module with
//!    `texts! { pub(crate) struct HistoryText { title: "Geschiedenis" / "History", } }` and
//!    use `HistoryText::get(citizen.lang())`.
//! 3. Template: `templates/portal/<name>.html` starting with
//!    `{% extends "portal/base.html" %}` and filling `{% block content %}`; its struct has a
//!    field `l: Layout` (from `citizen.layout(title)`), e.g.
//!    `#[derive(Template)] #[template(path = "portal/<name>.html")] struct HistoryPage { l: Layout, t: &'static HistoryText, … }`
//!    and the handler returns `Ok(Html(page.render()?))` (see `overview.rs`).
//! 4. Handlers take [`Citizen`] (logged in, terms accepted) and return
//!    `Result<impl IntoResponse, PortalError>`. The profile managed is `citizen.subject()`
//!    (never a BSN from the request: a citizen can only reach their own data). Changes use
//!    `citizen.channel()` and `citizen.actor(&state)` as provenance and
//!    `citizen.audit_event(&state, "event-name")` as the audit record.
//! 5. Forms: `method="post"`, a hidden field `<input type="hidden" name="csrf" value="{{ l.csrf() }}">`,
//!    and the handler takes `CsrfForm<YourForm>` (after `Citizen`): a wrong token or a
//!    cross-site post gets a 403 page before the handler runs. Answer a successful POST with
//!    a redirect (303) or a confirmation page.
//! 6. Accessibility: one `<h1>`, headings in order, a `<label>` for every field,
//!    `<fieldset>`/`<legend>` around radio groups, errors in an error summary linked to the
//!    fields (`templates/portal/login.html` shows the pattern), no meaning by colour alone.
//!
//! Must not: serve JavaScript or third-party assets; put a BSN in a URL, a log line, an error or
//! an HTML attribute; show a full BSN (at most "BSN eindigend op ..12"); decide anything about
//! consent (that is otv-core's) or write to the database except through the store.

pub mod error;
pub mod layout;
pub mod session;
pub mod text;

mod choices;
mod directory;
mod followers;
mod login;
mod logout;
mod oidc;
mod overview;
mod terms;
// The citizen's data, settings and receipts.
mod data;
mod delete;
mod emergency;
pub(crate) mod history;
mod lock;
mod minors;
mod notifications;
pub mod receipt;
mod wizard;
// Provider-assisted recording: hand-off links and the assisted pages.
mod assisted;

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::AppState;
pub use error::PortalError;
pub use layout::Layout;
pub use session::{Citizen, CsrfForm, Session};
pub use text::Lang;

/// The bundled terms of use's version (`portal.terms_version` defaults to it).
pub const BUNDLED_TERMS_VERSION: &str = terms::BUNDLED_VERSION;

/// The names of the claims the portal reads from the identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// The citizen's BSN (default `bsn`).
    pub bsn: String,
    /// Birth date, `YYYY-MM-DD` (default `birthdate`, as in OpenID Connect).
    pub birth_date: String,
    /// The BSN of the citizen a representative acts for (default `acting_for`).
    pub acting_for: String,
    /// The name (default `name`).
    pub name: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            bsn: "bsn".into(),
            birth_date: "birthdate".into(),
            acting_for: "acting_for".into(),
            name: "name".into(),
        }
    }
}

/// The OpenID Connect client's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer; its discovery document is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// otv's client id at the issuer.
    pub client_id: String,
    /// The client secret; `None` makes otv a public client (PKCE only).
    pub client_secret: Option<String>,
    /// Where the issuer sends the browser back, e.g. `http://127.0.0.1:8080/inloggen/terug`.
    pub redirect_url: String,
}

/// The portal's configuration (the `[portal]` table of the configuration file).
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// Development login (type a test BSN): only when explicitly enabled; every page says so.
    pub dev_login: bool,
    /// Login through OpenID Connect, when configured.
    pub oidc: Option<OidcSettings>,
    /// Which claims hold the BSN, birth date, "acting for" and name.
    pub claims: ClaimNames,
    /// A session without requests for this long ends.
    pub idle_timeout: Duration,
    /// The version of the terms of use citizens must have accepted.
    pub terms_version: String,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            dev_login: false,
            oidc: None,
            claims: ClaimNames::default(),
            idle_timeout: Duration::from_secs(900),
            terms_version: BUNDLED_TERMS_VERSION.into(),
        }
    }
}

/// The portal: its configuration and OpenID Connect client.
pub struct Portal {
    /// The configuration.
    pub config: PortalConfig,
    csp: HeaderValue,
    oidc: oidc::Oidc,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Portal {
    /// Checks the configuration and builds the portal. Errors name the setting.
    pub fn new(config: PortalConfig) -> Result<Portal, String> {
        let mut form_action = "'self'".to_owned();
        if let Some(o) = &config.oidc {
            let origin = oidc::origin_of(&o.issuer)
                .ok_or("setting `portal.oidc_issuer`: must be an http(s) URL")?;
            form_action.push(' ');
            form_action.push_str(&origin);
        }
        let csp = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'"
        );
        Ok(Portal {
            oidc: oidc::Oidc::new(config.oidc.clone())?,
            csp: HeaderValue::from_str(&csp)
                .map_err(|_| "setting `portal.oidc_issuer`: not usable in a header")?,
            config,
        })
    }
}

/// What a page needs to know about the request: its language and path, and whether the
/// development login is on. Put into every portal request by the middleware.
#[derive(Debug, Clone)]
pub struct Page {
    /// The page's language.
    pub lang: Lang,
    /// The path of a GET request (the navigation marks it); `/keuzes` otherwise.
    pub path: String,
    /// The query of a GET request without `lang` (the language switch keeps it).
    pub query: String,
    /// The development login is on.
    pub dev_login: bool,
}

impl Page {
    /// This page in the other language.
    pub fn lang_href(&self) -> String {
        let other = self.lang.other().code();
        if self.query.is_empty() {
            format!("{}?lang={other}", self.path)
        } else {
            format!("{}?{}&lang={other}", self.path, self.query)
        }
    }
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Page, Infallible> {
        Ok(parts
            .extensions
            .get::<Page>()
            .cloned()
            .unwrap_or_else(|| page_of(parts.method.clone(), parts, state)))
    }
}

/// Query parameters the language switch keeps (`name=`).
const KEPT_PARAMETERS: &[&str] = &["wijziging=", "van=", "tot=", "verlopen=", "uitgelogd="];

/// The language cookie.
const LANG_COOKIE: &str = "otv_lang";

fn query_lang(parts: &Parts) -> Option<Lang> {
    parts
        .uri
        .query()?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

fn page_of(method: Method, parts: &Parts, state: &AppState) -> Page {
    let lang = query_lang(parts)
        .or_else(|| session::cookie(&parts.headers, LANG_COOKIE).and_then(|c| Lang::parse(&c)))
        .unwrap_or_default();
    let get = method == Method::GET;
    Page {
        lang,
        path: if get {
            parts.uri.path().to_owned()
        } else {
            "/keuzes".to_owned()
        },
        query: match parts.uri.query() {
            // Only parameters known to carry no personal data survive the switch.
            Some(q) if get => q
                .split('&')
                .filter(|p| KEPT_PARAMETERS.iter().any(|k| p.starts_with(k)))
                .collect::<Vec<_>>()
                .join("&"),
            _ => String::new(),
        },
        dev_login: state.portal.config.dev_login,
    }
}

/// Every portal route. Other modules' pages are merged in the marked block.
pub fn routes() -> Router<AppState> {
    Router::new()
        // A mistyped address gets a readable page too (the whole public listener's fallback).
        .fallback(|| async { PortalError::NotFound })
        .route("/", get(|| async { Redirect::to("/keuzes") }))
        .route("/static/portal.css", get(stylesheet))
        .merge(login::routes())
        .merge(logout::routes())
        .merge(terms::routes())
        .merge(overview::routes())
        .merge(wizard::routes())
        .merge(directory::routes())
        .merge(followers::routes())
        .merge(history::routes())
        .merge(notifications::routes())
        .merge(data::routes())
        .merge(delete::routes())
        .merge(lock::routes())
        .merge(emergency::routes())
        .merge(receipt::routes())
        .merge(minors::routes())
        .merge(assisted::routes())
    // --- pages of other modules: add `.merge(<module>::routes())` above this line ---
}

/// `routes` with the portal middleware (language, error pages, security headers).
pub fn with_layers(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    routes.layer(middleware::from_fn_with_state(
        state.clone(),
        portal_middleware,
    ))
}

/// The stylesheet, compiled in.
const PORTAL_CSS: &str = include_str!("../../static/portal.css");

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        PORTAL_CSS,
    )
}

async fn portal_middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let page = page_of(parts.method.clone(), &parts, &state);
    let chosen = query_lang(&parts);
    parts.extensions.insert(page.clone());
    let (method, uri, request_headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(kind) = response.extensions().get::<error::ErrorPage>().copied() {
        // Someone logged in keeps their header (name, logout, navigation) on an error page.
        let mut request = Request::new(axum::body::Body::empty());
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = request_headers;
        let (mut request, _) = request.into_parts();
        request.extensions.insert(page.clone());
        let session = Session::from_request_parts(&mut request, &state).await.ok();
        let (parts, _) = response.into_parts();
        let mut rendered = error::render(&page, session.as_ref(), kind).into_response();
        *rendered.status_mut() = parts.status;
        for (name, value) in &parts.headers {
            if name == SET_COOKIE {
                rendered.headers_mut().append(name, value.clone());
            }
        }
        response = rendered;
    }
    let headers = response.headers_mut();
    headers.insert("content-security-policy", state.portal.csp.clone());
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(lang) = chosen {
        headers.append(
            SET_COOKIE,
            session::set_cookie(LANG_COOKIE, lang.code(), "/", Some(365 * 24 * 3600)),
        );
    }
    response
}
