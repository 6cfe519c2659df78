//! Sessions (PRODUCT.md §13): server-side, in the store's `portal_sessions` table. The browser
//! holds only a random token in the cookie `otv_session` (`Secure; HttpOnly; SameSite=Lax;
//! Path=/`); the table holds its SHA-256, who logged in and whose profile they manage (BSNs
//! encrypted), the login time, the last activity and the CSRF token.
//!
//! Extractors, for handlers:
//! - [`Session`]: someone is logged in (idle sessions end after `idle_timeout`). Without one
//!   the request is sent to `/inloggen`.
//! - [`Citizen`]: logged in *and* has accepted the current terms of use; otherwise sent to
//!   `/voorwaarden`. Every page with personal data takes this one.
//! - [`CsrfForm`]: a POSTed form whose hidden `csrf` field matches the session's token and
//!   whose `Origin`/`Sec-Fetch-Site` headers do not say another site sent it; otherwise a 403
//!   page and nothing changes.
//!
//! Assisted sessions (PRODUCT.md §8): a provider's hand-off link starts a session for one
//! patient ([`AssistedContext`], read from the hand-off by the session's token hash). Its
//! changes carry the professional and the mode's channel; it reaches only the mode's pages.
//!
//! Must not: put a BSN in a cookie, a URL, a log line or an error.

use std::ops::Deref;
use std::sync::Arc;

use aws_lc_rs::{constant_time, digest, rand};
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDate, Utc};
use otv_core::age::AgeGroup;
use otv_core::{Actor, Bsn, Channel};
use otv_store::{AuditEvent, PortalSession};
use serde::de::DeserializeOwned;

use super::error::PortalError;
use super::layout::{Layout, UserBar};
use super::text::{Common, Lang};
use super::{Page, Portal};
use crate::assisted::{Mode, Professional};
use crate::{AppState, REQUEST_ID};

/// The session cookie.
pub const SESSION_COOKIE: &str = "otv_session";

/// 32 random bytes as URL-safe base64: session tokens, CSRF tokens, OIDC state.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes).expect("the system random generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a token: what the session table stores.
pub(crate) fn token_hash(token: &str) -> [u8; 32] {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: `Secure; HttpOnly; SameSite=Lax`, for `path`, living `max_age`
/// seconds (`None`: until the browser closes; `Some(0)`: remove it).
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: Option<u64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).expect("cookie names and values are URL-safe")
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    constant_time::verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// Refuses a state-changing request that a browser says another site sent: `Sec-Fetch-Site`
/// other than `same-origin` (or `none`, typed by the user), or an `Origin` naming another host
/// than this request's `Host`.
///
/// `Origin: null` decides nothing: browsers send it for every form post from a page with
/// `Referrer-Policy: no-referrer` (the portal's own), so it cannot tell our pages from others;
/// `Sec-Fetch-Site` (not subject to the referrer policy) and the CSRF token do.
pub(crate) fn check_same_origin(headers: &HeaderMap) -> Result<(), PortalError> {
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        return Err(PortalError::Forbidden("Sec-Fetch-Site is not same-origin"));
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if origin != "null" {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            if origin_host.is_none() || origin_host != host {
                return Err(PortalError::Forbidden("Origin is another site"));
            }
        }
    }
    Ok(())
}

/// A logged-in session (the terms of use may not be accepted yet).
#[derive(Debug, Clone)]
pub struct Session {
    data: PortalSession,
    token_sha256: [u8; 32],
    page: Page,
    request_id: Option<String>,
    assisted: Option<Arc<AssistedContext>>,
}

/// The context of an assisted session (PRODUCT.md §8), one a provider's hand-off link started:
/// who records with the patient, for which provider, in which mode. Changes made in it carry
/// the professional as actor and the mode as channel; only the mode's pages are reachable
/// (`portal/assisted.rs`).
#[derive(Debug, Clone)]
pub struct AssistedContext {
    /// The flow.
    pub mode: Mode,
    /// The professional, at the provider (`professional.ura`).
    pub professional: Professional,
    /// The provider's name in the directory (its URA when it is no longer there).
    pub provider_name: String,
    /// The provider's organisation type, when it is in the directory.
    pub provider_type: Option<otv_core::OrgType>,
    /// The hand-off that started the session.
    pub hand_off: uuid::Uuid,
}

impl Session {
    /// The citizen whose profile is managed (the logged-in person, or the one they represent).
    pub fn subject(&self) -> &Bsn {
        &self.data.subject
    }

    /// Who logged in.
    pub fn actor_bsn(&self) -> &Bsn {
        &self.data.actor
    }

    /// Whether a representative acts for someone else.
    pub fn is_representative(&self) -> bool {
        self.data.actor != self.data.subject
    }

    /// The assisted context, when a provider's hand-off link started this session.
    pub fn assisted(&self) -> Option<&AssistedContext> {
        self.assisted.as_deref()
    }

    /// The channel of changes made in this session: `portal`, or `representative`; in an
    /// assisted session the mode's channel.
    pub fn channel(&self) -> Channel {
        if let Some(a) = &self.assisted {
            a.mode.channel()
        } else if self.is_representative() {
            Channel::Representative
        } else {
            Channel::Portal
        }
    }

    /// Who records answers in this session: the citizen, or the representative by pseudonym;
    /// in an assisted session the professional.
    pub fn actor(&self, portal: &AppState) -> Actor {
        if let Some(a) = &self.assisted {
            a.professional.actor()
        } else if self.is_representative() {
            Actor::Representative {
                reference: portal.store.patient_reference(&self.data.actor),
            }
        } else {
            Actor::Citizen
        }
    }

    /// An audit event of this session about the managed profile: `citizen` or
    /// `representative:<pseudonym>` as the actor, the channel, the patient pseudonym and the
    /// request id filled in.
    pub fn audit_event(&self, state: &AppState, event: &str) -> AuditEvent {
        if let Some(a) = &self.assisted {
            return AuditEvent {
                at: state.clock.now(),
                event: event.to_owned(),
                patient: Some(state.store.patient_reference(&self.data.subject)),
                actor: crate::assisted::handoff::professional_actor(&a.professional),
                organisation: Some(a.professional.ura.to_string()),
                mandated: a.professional.mandated.as_ref().map(ToString::to_string),
                request_id: self.request_id.clone(),
                channel: Some(self.channel().as_str().to_owned()),
                details: serde_json::json!({}),
                ..AuditEvent::default()
            };
        }
        let actor = if self.is_representative() {
            format!(
                "representative:{}",
                state.store.patient_reference(&self.data.actor)
            )
        } else {
            "citizen".to_owned()
        };
        AuditEvent {
            at: state.clock.now(),
            event: event.to_owned(),
            patient: Some(state.store.patient_reference(&self.data.subject)),
            actor,
            request_id: self.request_id.clone(),
            channel: Some(self.channel().as_str().to_owned()),
            details: serde_json::json!({}),
            ..AuditEvent::default()
        }
    }

    /// The session's CSRF token, for the hidden `csrf` field of every form.
    pub fn csrf(&self) -> &str {
        &self.data.csrf_token
    }

    /// When the person logged in (deletion asks for a recent login).
    pub fn login_at(&self) -> chrono::DateTime<Utc> {
        self.data.login_at
    }

    /// The stored session.
    pub fn data(&self) -> &PortalSession {
        &self.data
    }

    /// SHA-256 of the session token (the session's key in the store).
    pub fn token_sha256(&self) -> &[u8; 32] {
        &self.token_sha256
    }

    /// The request's language and path.
    pub fn page(&self) -> &Page {
        &self.page
    }

    /// The page language.
    pub fn lang(&self) -> Lang {
        self.page.lang
    }

    /// Birth date of the managed citizen, if known.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        self.data.subject_birth_date
    }

    /// The managed citizen's age group today. Unknown birth date: 16 or older (the identity
    /// provider always gives one in production; the development login may leave it out).
    pub fn age_group(&self) -> AgeGroup {
        self.data.subject_birth_date.map_or(AgeGroup::From16, |b| {
            AgeGroup::of(b, Utc::now().date_naive())
        })
    }

    /// How the managed citizen is named on screen: their name, or the last two digits of the
    /// BSN (never the whole number).
    pub fn subject_label(&self) -> String {
        label(
            self.data.subject_name.as_deref(),
            &self.data.subject,
            self.lang(),
        )
    }

    /// How the logged-in person is named on screen.
    pub fn actor_label(&self) -> String {
        label(
            self.data.actor_name.as_deref(),
            &self.data.actor,
            self.lang(),
        )
    }

    /// The request id (`X-Request-Id`).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The page frame for this session's page titled `title`.
    pub fn layout(&self, title: &str) -> Layout {
        if let Some(a) = &self.assisted {
            return Layout::assisted(
                &self.page,
                title,
                UserBar {
                    actor: self.subject_label(),
                    representing: None,
                    csrf: self.data.csrf_token.clone(),
                },
                a,
            );
        }
        Layout::logged_in(
            &self.page,
            title,
            UserBar {
                actor: self.actor_label(),
                representing: self.is_representative().then(|| self.subject_label()),
                csrf: self.data.csrf_token.clone(),
            },
        )
    }
}

fn label(name: Option<&str>, bsn: &Bsn, lang: Lang) -> String {
    match name {
        Some(n) if !n.trim().is_empty() => n.trim().to_owned(),
        _ => {
            let digits = bsn.expose();
            format!("{} ..{}", Common::get(lang).bsn_ending_in, &digits[7..])
        }
    }
}

/// Where a visitor without a session goes; `expired`: their session ended by the idle timeout.
fn to_login(expired: bool) -> Response {
    let target = if expired {
        "/inloggen?verlopen=1"
    } else {
        "/inloggen"
    };
    let mut r = Redirect::to(target).into_response();
    if expired {
        r.headers_mut().append(
            axum::http::header::SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", "/", Some(0)),
        );
    }
    r
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        // A state-changing request from another site is refused as such (403), whether or not
        // its browser sent the session cookie (with SameSite=Lax it does not).
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            check_same_origin(&parts.headers).map_err(IntoResponse::into_response)?;
        }
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(to_login(false));
        };
        let hash = token_hash(&token);
        let now = state.clock.now();
        let idle = chrono::Duration::from_std(state.portal.config.idle_timeout)
            .unwrap_or(chrono::Duration::minutes(15));
        let data = state
            .store
            .touch_portal_session(&hash, now - idle, now)
            .await
            .map_err(|e| PortalError::from(e).into_response())?;
        let Some(data) = data else {
            return Err(to_login(true));
        };
        let page = Page::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let assisted = assisted_context(state, &hash)
            .await
            .map_err(IntoResponse::into_response)?;
        // An assisted session reaches only its mode's pages (`portal/assisted.rs`).
        if let Some(a) = &assisted
            && !super::assisted::reachable(a.mode, &parts.method, parts.uri.path())
        {
            return Err(PortalError::NotFound.into_response());
        }
        let session = Session {
            data,
            token_sha256: hash,
            page,
            request_id: parts
                .headers
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            assisted: assisted.map(Arc::new),
        };
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// The assisted context of the session `hash`, if a hand-off started it.
async fn assisted_context(
    state: &AppState,
    hash: &[u8; 32],
) -> Result<Option<AssistedContext>, PortalError> {
    let Some(h) = state.store.hand_off_of_session(hash).await? else {
        return Ok(None);
    };
    let mode = Mode::parse(&h.mode)
        .ok_or_else(|| PortalError::Internal("a stored hand-off has an unknown mode".into()))?;
    let provider = state.store.provider(&h.ura).await?;
    Ok(Some(AssistedContext {
        mode,
        provider_name: provider
            .as_ref()
            .map_or_else(|| h.ura.to_string(), |p| p.name.clone()),
        provider_type: provider.map(|p| p.organisation_type),
        professional: Professional {
            ura: h.ura,
            uzi: h.uzi,
            role: h.role,
            mandated: h.mandated,
        },
        hand_off: h.id,
    }))
}

/// A logged-in person who has accepted the current terms of use.
#[derive(Debug, Clone)]
pub struct Citizen(pub Session);

impl Deref for Citizen {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Citizen {
    fn accepted(session: &Session, portal: &Portal) -> bool {
        session.data.terms_version.as_deref() == Some(portal.config.terms_version.as_str())
    }
}

impl FromRequestParts<AppState> for Citizen {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, state).await?;
        if Citizen::accepted(&session, &state.portal) {
            Ok(Citizen(session))
        } else {
            Err(Redirect::to("/voorwaarden").into_response())
        }
    }
}

/// Largest form body the portal reads.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// A POSTed form of a logged-in session whose `csrf` field matches the session and that no
/// other site sent (see [`check_same_origin`]). `T` is read from the same fields (it may
/// ignore `csrf`). Refusals are 403 pages; nothing has changed.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

/// The form's fields, in order, as sent (for forms with repeated or dynamic field names).
pub type Fields = Vec<(String, String)>;

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        // Another site's post is refused as such, before anything else (it carries no session
        // cookie anyway: SameSite=Lax).
        check_same_origin(&parts.headers).map_err(IntoResponse::into_response)?;
        let session = Session::from_request_parts(&mut parts, state).await?;
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| PortalError::BadRequest("form body too large").into_response())?;
        let form = |bytes: axum::body::Bytes| Request::from_parts(parts.clone(), Body::from(bytes));
        let axum::Form(fields): axum::Form<Fields> =
            axum::Form::from_request(form(bytes.clone()), state)
                .await
                .map_err(|_| PortalError::BadRequest("not a form").into_response())?;
        let sent = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !same_secret(sent, session.csrf()) {
            return Err(PortalError::Forbidden("CSRF token does not match").into_response());
        }
        let axum::Form(value): axum::Form<T> =
            axum::Form::from_request(form(bytes), state)
                .await
                .map_err(|_| PortalError::BadRequest("form fields").into_response())?;
        Ok(CsrfForm(value))
    }
}

// ---------------------------------------------------------------------------------------------
// Minors (`portal/minors.rs`, PRODUCT.md §4 and §10, terms of use §5d): in which state the
// answers recorded in a session are stored. Every page that records the managed citizen's own
// choices (the wizard) takes the state from here, so the rule lives in one place.

impl Session {
    /// The state of answers recorded in this session: otv-core's rule
    /// ([`AgeGroup::state_of_answers`]) for the managed citizen's age, by them or by a
    /// representative. Pending answers wait for a parent or guardian at `/ouder-en-kind`.
    pub fn answer_state(&self) -> otv_core::AnswerState {
        self.age_group().state_of_answers(self.is_representative())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("portal.example:8080"));
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_posts_from_this_site_pass() {
        for ok in [
            headers(&[]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("sec-fetch-site", "none")]),
            headers(&[("origin", "http://portal.example:8080")]),
            headers(&[("origin", "https://portal.example:8080")]),
            // What a browser sends from a page with Referrer-Policy: no-referrer.
            headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]),
        ] {
            assert!(check_same_origin(&ok).is_ok(), "{ok:?}");
        }
        for refused in [
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[("origin", "http://evil.example")]),
            headers(&[("origin", "http://portal.example:8081")]),
            headers(&[("origin", "null"), ("sec-fetch-site", "cross-site")]),
            headers(&[("origin", "file://")]),
        ] {
            assert!(check_same_origin(&refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn cookies_are_read_by_name_and_set_secure_httponly_lax() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; otv_session=tok; b=2"),
        );
        assert_eq!(cookie(&h, "otv_session").as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "otv"), None);
        let c = set_cookie("otv_session", "tok", "/", None);
        assert_eq!(
            c.to_str().unwrap(),
            "otv_session=tok; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert_ne!(token_hash("a"), token_hash("b"));
        assert_ne!(random_token(), random_token());
    }
}
