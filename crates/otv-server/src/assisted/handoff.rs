//! `POST /v1/hand-off` (PRODUCT.md §8): a provider's system asks, over mutual TLS, for a
//! one-time link that opens the portal for one patient in assisted mode.
//!
//! The request names the patient (`bsn`), the provider (`ura`), the professional (`uzi`,
//! `role`, optionally the mandated assistant) and the mode; Samen-naar-MijnMitz and the
//! raadplegersknop also need an enrolment token, which is verified and used up here. The checks,
//! in order: JSON (415, 413, 400), fields (422, naming the field by JSON pointer), an
//! allow-listed connector (403) that may act for the URA (403), the provider in the directory
//! (422 on `/ura`: the portal names it to the patient), the citizen's own settings (409, the
//! [`Refusal`](super::Refusal) text for the professional), the enrolment token (422 on
//! `/enrolment_token`). Every refusal is a problem document and is audited; refusals after the
//! connector is known to act for the URA are audited with the patient's pseudonym.
//!
//! The answer is `201 {"url", "expires_at"}`: `<public portal URL>/overdracht?code=<token>`,
//! valid once and for at most [`MAX_LIFETIME`]. The token travels in the query (request logs
//! record the path only) and only its SHA-256 is stored. Opening it is
//! `portal/assisted.rs`'s work.
//!
//! An enrolment token sent with a dossierhoudersknop hand-off is not needed and not read.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use otv_core::{Bsn, RoleCode, Ura, UziNumber};
use otv_store::{AuditEvent, NewHandOff};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Mode, Professional, allowed};
use crate::AppState;
use crate::access::problem::{FieldError, Problem};
use crate::portal::session::{random_token, token_hash};
use crate::provider::{AllowedConnector, Caller, Rejection, audit_rejection};

/// The path of the hand-off API.
pub const PATH: &str = "/v1/hand-off";
/// The path of the portal page that opens a hand-off (`?code=<token>`).
pub const OPEN_PATH: &str = "/overdracht";
/// The longest a link may live (PRODUCT.md §8: "valid minutes"; the issue: at most 5).
pub const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// The audit interface name of refusals (`hand-off-rejected`).
const INTERFACE: &str = "hand-off";

/// The hand-off settings (`[portal]` `public_url` and `hand_off_lifetime_secs`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where citizens reach the portal, e.g. `https://otv.example.nl` (no trailing slash): the
    /// links are built on it.
    pub public_url: String,
    /// How long a link can be opened; at most [`MAX_LIFETIME`].
    pub lifetime: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            public_url: "http://127.0.0.1:8080".into(),
            lifetime: MAX_LIFETIME,
        }
    }
}

impl Settings {
    /// Checks the settings. Errors name the setting.
    pub fn new(public_url: &str, lifetime: Duration) -> Result<Settings, String> {
        let public_url = public_url.trim_end_matches('/');
        let rest = public_url
            .strip_prefix("https://")
            .or_else(|| public_url.strip_prefix("http://"))
            .ok_or("setting `portal.public_url`: must be an http(s) URL")?;
        if rest.is_empty() || rest.contains(['?', '#', ' ']) {
            return Err("setting `portal.public_url`: must be an http(s) URL without query".into());
        }
        if lifetime.is_zero() || lifetime > MAX_LIFETIME {
            return Err(format!(
                "setting `portal.hand_off_lifetime_secs`: must be 1 to {}",
                MAX_LIFETIME.as_secs()
            ));
        }
        Ok(Settings {
            public_url: public_url.to_owned(),
            lifetime,
        })
    }
}

/// The professional who will sit with the patient.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOffProfessional {
    /// The professional's UZI number.
    pub uzi: String,
    /// The professional's role (RoleCodeNL), e.g. `01.015` (huisarts).
    pub role: String,
    /// UZI number of a mandated assistant acting for the professional.
    #[serde(default)]
    pub mandated: Option<String>,
}

/// A request for a hand-off link.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "bsn": "900203638",
    "ura": "00000001",
    "professional": {"uzi": "900010001", "role": "01.015"},
    "mode": "dossierhoudersknop"
}))]
pub struct HandOffRequest {
    /// The patient's BSN.
    pub bsn: String,
    /// The provider organisation (URA, 8 digits) the professional works for; the connector
    /// must be allowed to act for it, and it must be in otv's provider directory.
    pub ura: String,
    /// The professional.
    pub professional: HandOffProfessional,
    /// `samen-naar-mijnmitz` (patient and professional fill in the patient's choices
    /// together), `dossierhoudersknop` (answers for this provider as holder) or
    /// `raadplegersknop` (emergency consent for this provider as consulter).
    pub mode: String,
    /// The enrolment token (compact JWS), required for `samen-naar-mijnmitz` and
    /// `raadplegersknop`; it is used up.
    #[serde(default)]
    pub enrolment_token: Option<String>,
}

/// The link.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "url": "https://otv.example.nl/overdracht?code=3q2-7wE…",
    "expires_at": "2026-11-30T10:05:00Z"
}))]
pub struct HandOffResponse {
    /// Open it once, in the browser the patient and professional look at, before `expires_at`.
    pub url: String,
    /// Until when it can be opened.
    pub expires_at: DateTime<Utc>,
}

/// A checked request.
struct Checked {
    bsn: Bsn,
    professional: Professional,
    mode: Mode,
    token: Option<String>,
}

fn check(raw: HandOffRequest) -> Result<Checked, FieldError> {
    let id = |pointer: &str, e| FieldError::id(pointer, e);
    let bsn = Bsn::parse(raw.bsn.trim()).map_err(|e| id("/bsn", e))?;
    let ura = Ura::parse(raw.ura.trim()).map_err(|e| id("/ura", e))?;
    let uzi =
        UziNumber::parse(raw.professional.uzi.trim()).map_err(|e| id("/professional/uzi", e))?;
    let role =
        RoleCode::parse(raw.professional.role.trim()).map_err(|e| id("/professional/role", e))?;
    let mandated = raw
        .professional
        .mandated
        .as_deref()
        .map(|m| UziNumber::parse(m.trim()).map_err(|e| id("/professional/mandated", e)))
        .transpose()?;
    let mode = Mode::parse(raw.mode.trim()).ok_or_else(|| {
        FieldError::new(
            "/mode",
            "must be samen-naar-mijnmitz, dossierhoudersknop or raadplegersknop",
        )
    })?;
    let token = if mode.needs_enrolment_token() {
        match raw.enrolment_token.as_deref().map(str::trim) {
            Some(t) if !t.is_empty() => Some(t.to_owned()),
            _ => {
                return Err(FieldError::new(
                    "/enrolment_token",
                    format!("required for mode {}", mode.as_str()),
                ));
            }
        }
    } else {
        None
    };
    Ok(Checked {
        bsn,
        professional: Professional {
            ura,
            uzi,
            role,
            mandated,
        },
        mode,
        token,
    })
}

/// An audit event of the professional about this hand-off's patient.
fn event(
    state: &AppState,
    c: &Checked,
    event: &str,
    connector: &str,
    request_id: Option<String>,
) -> AuditEvent {
    AuditEvent {
        at: state.clock.now(),
        event: event.to_owned(),
        patient: Some(state.store.patient_reference(&c.bsn)),
        actor: professional_actor(&c.professional),
        organisation: Some(c.professional.ura.to_string()),
        mandated: c.professional.mandated.as_ref().map(ToString::to_string),
        request_id,
        channel: Some(c.mode.as_str().to_owned()),
        emergency: c.mode == Mode::Raadplegersknop,
        details: serde_json::json!({ "mode": c.mode.as_str(), "connector": connector }),
        ..AuditEvent::default()
    }
}

/// The audit actor of a professional: `uzi:<nr> role:<code>`.
pub fn professional_actor(p: &Professional) -> String {
    format!("uzi:{} role:{}", p.uzi, p.role)
}

/// `POST /v1/hand-off`.
#[utoipa::path(
    post,
    path = "/v1/hand-off",
    tag = "Assisted recording",
    request_body(content = HandOffRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The one-time link", body = HandOffResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for the URA", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The patient's own settings refuse this (`urn:otv:problem:profile-locked` or `urn:otv:problem:emergency-refused`); `detail` is the message for the professional", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid, the URA is not in the directory, or the enrolment token is refused; `errors[].pointer` names the field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<HandOffRequest>, JsonRejection>,
) -> Response {
    let request_id = crate::request_id(&headers);
    let connector = caller.0;
    let connector_id = connector.as_ref().map(AllowedConnector::id);
    // Refusals before the connector is known to act for the URA: without a patient.
    let refuse = async |problem: Problem| {
        let rejection = Rejection {
            interface: INTERFACE,
            channel: "json",
            request_id: request_id.clone(),
            connector: connector_id,
            kind: problem.short_kind(),
            details: serde_json::json!({ "problem": problem.detail }),
        };
        audit_rejection(&state, rejection).await;
        problem.with_request_id(request_id.clone()).into_response()
    };
    let raw = match body {
        Ok(Json(raw)) => raw,
        Err(rejection) => return refuse(Problem::from_rejection(&rejection)).await,
    };
    let checked = match check(raw) {
        Ok(c) => c,
        Err(e) => return refuse(Problem::invalid_field(e)).await,
    };
    let Some(allowed_connector) = connector.as_ref() else {
        return refuse(Problem::unknown_connector()).await;
    };
    let ura = &checked.professional.ura;
    if !allowed_connector.may_act_for(ura) {
        let problem = Problem::not_allowed_for_ura(allowed_connector.id(), ura, "/ura".into());
        return refuse(problem).await;
    }
    let connector_id = allowed_connector.id();
    // From here the patient is audited by pseudonym: the connector may act for the provider.
    let refuse_for_patient = async |problem: Problem, reason: &str| {
        let mut e = event(
            &state,
            &checked,
            "hand-off-rejected",
            connector_id,
            request_id.clone(),
        );
        e.decision = Some("rejected".into());
        e.reason = Some(reason.to_owned());
        crate::provider::count_rejection(INTERFACE, "json", reason);
        if let serde_json::Value::Object(map) = &mut e.details {
            map.insert("problem".into(), problem.detail.clone().into());
        }
        if let Err(err) = state.store.audit(&e).await {
            tracing::error!(error = %err, "the audit record of a refused hand-off could not be written");
            return internal(request_id.clone());
        }
        problem.with_request_id(request_id.clone()).into_response()
    };
    match state.store.provider(ura).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            let problem = Problem::invalid_field(FieldError::new(
                "/ura",
                "not in otv's provider directory (the portal names the provider to the patient)",
            ));
            return refuse_for_patient(problem, "unknown-provider").await;
        }
        Err(e) => {
            tracing::error!(error = %e, "hand-off: reading the directory failed");
            return internal(request_id);
        }
    }
    let settings = match state.store.citizen_settings(&checked.bsn).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "hand-off: reading the citizen's settings failed");
            return internal(request_id);
        }
    };
    if let Err(refusal) = allowed(&settings, checked.mode) {
        let problem = Problem::new(
            StatusCode::CONFLICT,
            refusal.code(),
            "The patient's own settings refuse this",
            refusal.to_string(),
        );
        return refuse_for_patient(problem, refusal.code()).await;
    }
    if let Some(token) = &checked.token {
        match super::token::verify_and_use(&state, token, ura, &checked.bsn).await {
            Ok(_) => {}
            Err(super::token::TokenError::Unavailable) => {
                tracing::error!("hand-off: the enrolment token could not be checked");
                return internal(request_id);
            }
            Err(e) => {
                let problem = Problem::invalid_field(FieldError::new(
                    "/enrolment_token",
                    format!("refused ({}): {e}", e.code()),
                ));
                return refuse_for_patient(problem, e.code()).await;
            }
        }
    }
    let now = state.clock.now();
    let lifetime = chrono::Duration::from_std(state.assisted.hand_off.lifetime)
        .unwrap_or(chrono::Duration::minutes(5));
    let expires_at = now + lifetime;
    let token = random_token();
    let p = &checked.professional;
    let mut audit = event(
        &state,
        &checked,
        "hand-off-created",
        connector_id,
        request_id.clone(),
    );
    audit.decision = Some("created".into());
    if let serde_json::Value::Object(map) = &mut audit.details {
        map.insert("expires_at".into(), expires_at.to_rfc3339().into());
    }
    let stored = state
        .store
        .create_hand_off(
            &NewHandOff {
                token_sha256: token_hash(&token),
                bsn: &checked.bsn,
                ura: &p.ura,
                uzi: &p.uzi,
                role: &p.role,
                mandated: p.mandated.as_ref(),
                mode: checked.mode.as_str(),
                created_at: now,
                expires_at,
            },
            &audit,
        )
        .await;
    if let Err(e) = stored {
        tracing::error!(error = %e, "hand-off: storing failed");
        return internal(request_id);
    }
    let url = format!(
        "{}{OPEN_PATH}?code={token}",
        state.assisted.hand_off.public_url
    );
    (
        StatusCode::CREATED,
        Json(HandOffResponse { url, expires_at }),
    )
        .into_response()
}

fn internal(request_id: Option<String>) -> Response {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "otv failed",
        "otv could not make the link; nothing was stored",
    )
    .with_request_id(request_id)
    .into_response()
}

/// The OpenAPI document of this endpoint, merged into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create),
    tags((name = "Assisted recording", description = "Provider-assisted recording (PRODUCT.md §8): \
a one-time link that opens the portal for one patient, in assisted mode, with the professional."))
)]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mode: &str, token: Option<&str>) -> HandOffRequest {
        HandOffRequest {
            bsn: "900203638".into(),
            ura: "00000001".into(),
            professional: HandOffProfessional {
                uzi: "900010001".into(),
                role: "01.015".into(),
                mandated: None,
            },
            mode: mode.into(),
            enrolment_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn the_modes_that_need_an_enrolment_token_refuse_a_request_without_one() {
        for mode in ["samen-naar-mijnmitz", "raadplegersknop"] {
            let e = check(request(mode, None)).err().expect(mode);
            assert_eq!(e.pointer, "/enrolment_token");
            let e = check(request(mode, Some("  "))).err().expect(mode);
            assert_eq!(e.pointer, "/enrolment_token");
            assert!(check(request(mode, Some("a.b.c"))).is_ok());
        }
        let c = check(request("dossierhoudersknop", None)).unwrap();
        assert_eq!(c.mode, Mode::Dossierhoudersknop);
        assert!(c.token.is_none());
    }

    #[test]
    fn a_wrong_field_is_named_by_its_pointer() {
        let mut r = request("dossierhoudersknop", None);
        r.bsn = "123456789".into();
        assert_eq!(check(r).err().unwrap().pointer, "/bsn");
        let mut r = request("dossierhoudersknop", None);
        r.professional.role = "huisarts".into();
        assert_eq!(check(r).err().unwrap().pointer, "/professional/role");
        let mut r = request("dossierhoudersknop", None);
        r.professional.mandated = Some("x".into());
        assert_eq!(check(r).err().unwrap().pointer, "/professional/mandated");
        assert_eq!(
            check(request("portal", None)).err().unwrap().pointer,
            "/mode"
        );
    }

    #[test]
    fn the_public_url_and_the_lifetime_are_checked() {
        let s = Settings::new("https://otv.example.nl/", Duration::from_secs(60)).unwrap();
        assert_eq!(s.public_url, "https://otv.example.nl");
        assert!(Settings::new("otv.example.nl", MAX_LIFETIME).is_err());
        assert!(Settings::new("https://x/?a", MAX_LIFETIME).is_err());
        assert!(Settings::new("https://x", Duration::from_secs(301)).is_err());
        assert!(Settings::new("https://x", Duration::ZERO).is_err());
    }
}
