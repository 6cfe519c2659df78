//! The direct JSON API of the raadplegersknop and the enrolment-token check (PRODUCT.md §8,
//! §12), for a provider's system over mutual TLS, without any screen: in acute care there is
//! no time for one.
//!
//! - `POST /v1/emergency-consent`: verifies and uses up the enrolment token, then records the
//!   emergency consent ([`super::emergency::record`]). `201` with the validity, the keys
//!   recorded and the change's receipt number.
//! - `POST /v1/enrolment-token/check`: the same token checks without using the token up, so
//!   that a system can test its tokens (and a token checked first still works once after).
//!   `200` with what the token says; a refused token is `422`, as above.
//!
//! The checks, in order: JSON (415, 413, 400), fields (422, naming the field by JSON pointer),
//! an allow-listed connector (403) that may act for the provider URA (403), the enrolment
//! token (422 on `/enrolment_token`, the problem type naming the failure, e.g.
//! `urn:otv:problem:enrolment-token-expired`), and for an emergency consent the citizen's own
//! settings (409 `urn:otv:problem:emergency-refused`, the text for the professional). The token
//! is checked before the citizen's settings so that nothing about the patient is told to a
//! caller without proof of enrolment; a token refused for the settings is used up.
//!
//! Every attempt is audited with the emergency flag and channel `raadplegersknop`, the
//! professional and the request id, never a BSN: the patient is recorded by pseudonym once the
//! connector is known to act for the provider, and not at all before.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use otv_core::{Bsn, Party, RoleCode, Ura, UziNumber};
use otv_store::AuditEvent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::emergency::{self, EmergencyError};
use super::token::{self, TokenError};
use super::{Mode, Professional};
use crate::AppState;
use crate::access::problem::{FieldError, FieldProblem, Problem};
use crate::provider::{AllowedConnector, Caller, count_rejection};

/// The path of the emergency consent.
pub const EMERGENCY_PATH: &str = "/v1/emergency-consent";
/// The path of the enrolment-token check.
pub const CHECK_PATH: &str = "/v1/enrolment-token/check";

/// The routes of this module, for the mutual-TLS provider listener.
pub fn routes() -> Router<AppState> {
    let limit = axum::extract::DefaultBodyLimit::max(otv_wire::MAX_INPUT_BYTES);
    Router::new()
        .route(EMERGENCY_PATH, post(emergency_consent).layer(limit))
        .route(CHECK_PATH, post(check_token).layer(limit))
}

/// The professional who asks.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfessionalBody {
    /// The professional's UZI number.
    pub uzi: String,
    /// The professional's role (RoleCodeNL), e.g. `01.015` (huisarts).
    pub role: String,
    /// UZI number of a mandated assistant acting for the professional.
    #[serde(default)]
    pub mandated: Option<String>,
}

/// A request to record an emergency consent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "bsn": "900203638",
    "consulter_ura": "00000001",
    "professional": {"uzi": "900010001", "role": "01.015"},
    "enrolment_token": "eyJhbGciOiJFUzI1NiIsIng1YyI6Wy4uLl19.eyJ1cmEiOiIwMDAwMDAwMSIsLi4ufQ.…"
}))]
pub struct EmergencyConsentRequest {
    /// The patient's BSN.
    pub bsn: String,
    /// The consulting provider (URA, 8 digits) that needs the patient's data; the connector
    /// must be allowed to act for it, and the enrolment token must be made for it.
    pub consulter_ura: String,
    /// The professional at that provider.
    pub professional: ProfessionalBody,
    /// The enrolment token (compact JWS, PRODUCT.md §8); it is used up.
    pub enrolment_token: String,
}

/// One answer recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordedKey {
    /// The holder category (e.g. `DH-HA`).
    pub holder: String,
    /// The data category (`GGC002`).
    pub data_category: String,
    /// The consulting provider's URA.
    pub consulter_ura: String,
}

/// The recorded emergency consent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "valid_from": "2026-11-30T10:00:00Z",
    "valid_until": "2026-12-03T10:00:00Z",
    "keys": [{"holder": "DH-HA", "data_category": "GGC002", "consulter_ura": "00000001"}],
    "receipt_seq": 42
}))]
pub struct EmergencyConsentResponse {
    /// From when it counts.
    pub valid_from: DateTime<Utc>,
    /// Until when it counts (exclusive: at this moment it no longer does); 72 hours after
    /// `valid_from` unless the citizen confirms or withdraws it in the portal.
    pub valid_until: DateTime<Utc>,
    /// The answers recorded: a permit for every holder category, data category GGC002.
    pub keys: Vec<RecordedKey>,
    /// The change's number (the citizen's receipt of it).
    pub receipt_seq: i64,
}

/// A request to check an enrolment token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "bsn": "900203638",
    "ura": "00000001",
    "enrolment_token": "eyJhbGciOiJFUzI1NiIsIng1YyI6Wy4uLl19.eyJ1cmEiOiIwMDAwMDAwMSIsLi4ufQ.…"
}))]
pub struct TokenCheckRequest {
    /// The patient's BSN.
    pub bsn: String,
    /// The provider (URA) the token must be made for; the connector must be allowed to act
    /// for it.
    pub ura: String,
    /// The enrolment token (compact JWS).
    pub enrolment_token: String,
}

/// A token that would be accepted now.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "valid": true, "ura": "00000001", "factor": "uzi-pas",
    "iat": "2026-11-30T10:00:00Z", "exp": "2026-11-30T10:15:00Z", "jti": "3f0c…"
}))]
pub struct TokenCheckResponse {
    /// Always `true` (a refused token is a problem document).
    pub valid: bool,
    /// The provider it was made for.
    pub ura: String,
    /// `uzi-pas` or `wid`.
    pub factor: String,
    /// When it was made.
    pub iat: DateTime<Utc>,
    /// Until when it can be used.
    pub exp: DateTime<Utc>,
    /// Its single-use id (not used up by the check).
    pub jti: String,
}

/// A request with its identifiers read.
struct Asked {
    bsn: Bsn,
    ura: Ura,
    professional: Option<Professional>,
    token: String,
}

fn read_emergency(raw: EmergencyConsentRequest) -> Result<Asked, FieldError> {
    let id = |pointer: &str, e| FieldError::id(pointer, e);
    let bsn = Bsn::parse(raw.bsn.trim()).map_err(|e| id("/bsn", e))?;
    let ura = Ura::parse(raw.consulter_ura.trim()).map_err(|e| id("/consulter_ura", e))?;
    let p = raw.professional;
    let uzi = UziNumber::parse(p.uzi.trim()).map_err(|e| id("/professional/uzi", e))?;
    let role = RoleCode::parse(p.role.trim()).map_err(|e| id("/professional/role", e))?;
    let mandated = p
        .mandated
        .as_deref()
        .map(|m| UziNumber::parse(m.trim()).map_err(|e| id("/professional/mandated", e)))
        .transpose()?;
    Ok(Asked {
        bsn,
        professional: Some(Professional {
            ura: ura.clone(),
            uzi,
            role,
            mandated,
        }),
        ura,
        token: token_field(&raw.enrolment_token)?,
    })
}

fn read_check(raw: TokenCheckRequest) -> Result<Asked, FieldError> {
    let id = |pointer: &str, e| FieldError::id(pointer, e);
    Ok(Asked {
        bsn: Bsn::parse(raw.bsn.trim()).map_err(|e| id("/bsn", e))?,
        ura: Ura::parse(raw.ura.trim()).map_err(|e| id("/ura", e))?,
        professional: None,
        token: token_field(&raw.enrolment_token)?,
    })
}

fn token_field(token: &str) -> Result<String, FieldError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(FieldError::new("/enrolment_token", "required"));
    }
    Ok(token.to_owned())
}

/// The problem of a refused token: 422 on `/enrolment_token` (500 when otv failed).
fn token_problem(e: &TokenError) -> Problem {
    if matches!(e, TokenError::Unavailable) {
        return internal("otv could not check the enrolment token; nothing was recorded");
    }
    let mut p = Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        e.code(),
        "The enrolment token is refused",
        e.to_string(),
    );
    p.errors.push(FieldProblem {
        pointer: "/enrolment_token".into(),
        detail: e.to_string(),
    });
    p
}

fn internal(detail: &str) -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "otv failed",
        detail,
    )
}

/// Who asks and for which endpoint, for the audit records of one request.
struct Attempt<'a> {
    state: &'a AppState,
    request_id: Option<String>,
    connector: Option<&'a str>,
    /// `emergency-consent` or `enrolment-token-check`.
    interface: &'static str,
}

impl Attempt<'_> {
    fn is_emergency(&self) -> bool {
        self.interface == "emergency-consent"
    }

    /// `raadplegersknop` for an emergency consent, `json` for a check.
    fn channel(&self) -> &'static str {
        if self.is_emergency() {
            Mode::Raadplegersknop.as_str()
        } else {
            "json"
        }
    }

    /// Audits a refusal made before the connector is known to act for the URA (no patient),
    /// and answers it.
    async fn refuse(&self, problem: Problem) -> Response {
        count_rejection(self.interface, "json", problem.short_kind());
        let event = AuditEvent {
            at: self.state.clock.now(),
            event: format!("{}-refused", self.interface),
            actor: self.connector.map_or_else(
                || "unknown-connector".to_owned(),
                |c| format!("connector:{c}"),
            ),
            request_id: self.request_id.clone(),
            decision: Some("refused".into()),
            reason: Some(problem.short_kind().to_owned()),
            emergency: self.is_emergency(),
            channel: Some(self.channel().to_owned()),
            details: serde_json::json!({ "problem": problem.detail }),
            ..AuditEvent::default()
        };
        self.answer(problem, event).await
    }

    /// Audits `event` and answers `problem`; if the audit record cannot be written, 500.
    async fn answer(&self, problem: Problem, event: AuditEvent) -> Response {
        if let Err(e) = self.state.store.audit(&event).await {
            tracing::error!(error = %e, interface = self.interface, "the audit record of a refusal could not be written");
            return internal("otv could not record the refusal")
                .with_request_id(self.request_id.clone())
                .into_response();
        }
        problem
            .with_request_id(self.request_id.clone())
            .into_response()
    }

    /// The audit event about the patient, for an emergency consent (the professional) or a
    /// check (the connector).
    fn event(&self, asked: &Asked, event: &str) -> AuditEvent {
        let mut e = match &asked.professional {
            Some(p) => {
                emergency::audit_event(self.state, &asked.bsn, p, self.request_id.as_deref(), event)
            }
            None => AuditEvent {
                at: self.state.clock.now(),
                event: event.to_owned(),
                patient: Some(self.state.store.patient_reference(&asked.bsn)),
                actor: format!("connector:{}", self.connector.unwrap_or_default()),
                organisation: Some(asked.ura.to_string()),
                request_id: self.request_id.clone(),
                channel: Some(self.channel().to_owned()),
                ..AuditEvent::default()
            },
        };
        if let serde_json::Value::Object(map) = &mut e.details {
            map.insert(
                "connector".into(),
                self.connector.unwrap_or_default().into(),
            );
        } else {
            e.details = serde_json::json!({ "connector": self.connector });
        }
        e
    }

    /// Audits a refusal about the patient (the connector acts for the URA) and answers it.
    async fn refuse_for_patient(&self, asked: &Asked, problem: Problem, event: &str) -> Response {
        count_rejection(self.interface, "json", problem.short_kind());
        let mut e = self.event(asked, event);
        e.decision = Some("refused".into());
        e.reason = Some(problem.short_kind().to_owned());
        if let serde_json::Value::Object(map) = &mut e.details {
            map.insert("problem".into(), problem.detail.clone().into());
        }
        self.answer(problem, e).await
    }
}

/// The intake of both endpoints: the body, the fields, the connector and its URA.
async fn intake<T>(
    attempt: &Attempt<'_>,
    connector: Option<&AllowedConnector>,
    body: Result<Json<T>, JsonRejection>,
    read: impl FnOnce(T) -> Result<Asked, FieldError>,
    ura_pointer: &str,
) -> Result<Asked, Response> {
    let raw = match body {
        Ok(Json(raw)) => raw,
        Err(rejection) => return Err(attempt.refuse(Problem::from_rejection(&rejection)).await),
    };
    let asked = match read(raw) {
        Ok(a) => a,
        Err(e) => return Err(attempt.refuse(Problem::invalid_field(e)).await),
    };
    let Some(connector) = connector else {
        return Err(attempt.refuse(Problem::unknown_connector()).await);
    };
    if !connector.may_act_for(&asked.ura) {
        let problem = Problem::not_allowed_for_ura(connector.id(), &asked.ura, ura_pointer.into());
        return Err(attempt.refuse(problem).await);
    }
    Ok(asked)
}

/// `POST /v1/emergency-consent`.
#[utoipa::path(
    post,
    path = "/v1/emergency-consent",
    tag = "Assisted recording",
    summary = "Record an emergency consent (raadplegersknop) without a screen",
    description = "Verifies and uses up the enrolment token, then records a temporary permit for the consulting \
provider (`consulter_ura` as individual consulter) for every holder category and data category GGC002, valid for 72 hours \
(until `valid_until`, exclusive). The citizen is notified at once and can confirm or withdraw it in the portal. Audited with \
the emergency flag.",
    request_body(content = EmergencyConsentRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded", body = EmergencyConsentResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for `consulter_ura`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The patient refuses emergency consents (`urn:otv:problem:emergency-refused`); `detail` is the message for the professional", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid, or the enrolment token is refused: the type names the failure (`urn:otv:problem:enrolment-token-malformed`, `-unsupported-algorithm`, `-unknown-anchor`, `-invalid-chain`, `-bad-signature`, `-ura-mismatch`, `-lifetime-too-long`, `-not-yet-valid`, `-expired`, `-wrong-provider`, `-bsn-mismatch`, `-replayed`); `errors[].pointer` names the field", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "otv failed; nothing was recorded", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn emergency_consent(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<EmergencyConsentRequest>, JsonRejection>,
) -> Response {
    let connector = caller.0;
    let attempt = Attempt {
        state: &state,
        request_id: crate::request_id(&headers),
        connector: connector.as_ref().map(AllowedConnector::id),
        interface: "emergency-consent",
    };
    let asked = match intake(
        &attempt,
        connector.as_ref(),
        body,
        read_emergency,
        "/consulter_ura",
    )
    .await
    {
        Ok(a) => a,
        Err(response) => return response,
    };
    if let Err(e) = token::verify_and_use(&state, &asked.token, &asked.ura, &asked.bsn).await {
        return attempt
            .refuse_for_patient(&asked, token_problem(&e), emergency::EVENT_REFUSED)
            .await;
    }
    let professional = asked
        .professional
        .as_ref()
        .expect("an emergency request names the professional");
    match emergency::record(
        &state,
        &asked.bsn,
        professional,
        attempt.request_id.as_deref(),
    )
    .await
    {
        Ok(recorded) => {
            let keys = recorded
                .keys
                .iter()
                .map(|k| RecordedKey {
                    holder: party(&k.holder),
                    data_category: k.data_category.to_string(),
                    consulter_ura: party(&k.consulter),
                })
                .collect();
            (
                StatusCode::CREATED,
                Json(EmergencyConsentResponse {
                    valid_from: recorded.valid_from,
                    valid_until: recorded.valid_until,
                    keys,
                    receipt_seq: recorded.receipt_seq,
                }),
            )
                .into_response()
        }
        // `record` audited the refusal.
        Err(EmergencyError::Refused(refusal)) => {
            count_rejection(attempt.interface, "json", refusal.code());
            Problem::new(
                StatusCode::CONFLICT,
                refusal.code(),
                "The patient's own settings refuse this",
                refusal.to_string(),
            )
            .with_request_id(attempt.request_id.clone())
            .into_response()
        }
        Err(EmergencyError::Unavailable) => {
            internal("otv could not record the emergency consent; nothing was recorded")
                .with_request_id(attempt.request_id.clone())
                .into_response()
        }
    }
}

fn party(p: &Party) -> String {
    match p {
        Party::Category(c) => c.to_string(),
        Party::Provider(u) => u.to_string(),
    }
}

/// `POST /v1/enrolment-token/check`.
#[utoipa::path(
    post,
    path = "/v1/enrolment-token/check",
    tag = "Assisted recording",
    summary = "Check an enrolment token without using it up",
    description = "Makes every check of an enrolment token for this patient at this provider (format, algorithm, \
certificate chain to a configured UZI-card or WID-issuer CA, signature, the UZI card's URA, lifetime, expiry, provider, \
patient, and whether it was used), but does not use it up: a token that passes can still be used once afterwards.",
    request_body(content = TokenCheckRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The token would be accepted now", body = TokenCheckResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for `ura`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid, or the token is refused (the type names the failure, as for `/v1/emergency-consent`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "otv failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn check_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<TokenCheckRequest>, JsonRejection>,
) -> Response {
    let connector = caller.0;
    let attempt = Attempt {
        state: &state,
        request_id: crate::request_id(&headers),
        connector: connector.as_ref().map(AllowedConnector::id),
        interface: "enrolment-token-check",
    };
    let asked = match intake(&attempt, connector.as_ref(), body, read_check, "/ura").await {
        Ok(a) => a,
        Err(response) => return response,
    };
    match token::verify(&state, &asked.token, &asked.ura, &asked.bsn).await {
        Ok(claims) => {
            let mut event = attempt.event(&asked, "enrolment-token-check");
            event.decision = Some("valid".into());
            if let serde_json::Value::Object(map) = &mut event.details {
                map.insert("factor".into(), claims.factor.as_str().into());
            }
            if let Err(e) = state.store.audit(&event).await {
                tracing::error!(error = %e, "the audit record of a token check could not be written");
                return internal("otv could not record the check")
                    .with_request_id(attempt.request_id.clone())
                    .into_response();
            }
            Json(TokenCheckResponse {
                valid: true,
                ura: claims.ura.to_string(),
                factor: claims.factor.as_str().into(),
                iat: claims.iat,
                exp: claims.exp,
                jti: claims.jti,
            })
            .into_response()
        }
        Err(e) => {
            attempt
                .refuse_for_patient(&asked, token_problem(&e), "enrolment-token-check")
                .await
        }
    }
}

/// The OpenAPI document of these endpoints, merged into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(paths(emergency_consent, check_token))]
pub struct Api;

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> EmergencyConsentRequest {
        EmergencyConsentRequest {
            bsn: "900203638".into(),
            consulter_ura: "00000001".into(),
            professional: ProfessionalBody {
                uzi: "900010001".into(),
                role: "01.015".into(),
                mandated: None,
            },
            enrolment_token: "a.b.c".into(),
        }
    }

    #[test]
    fn a_wrong_field_is_named_by_its_pointer() {
        let pointer = |r| read_emergency(r).err().unwrap().pointer;
        let mut r = request();
        r.bsn = "123456789".into();
        assert_eq!(pointer(r), "/bsn");
        let mut r = request();
        r.consulter_ura = "1".into();
        assert_eq!(pointer(r), "/consulter_ura");
        let mut r = request();
        r.professional.uzi = "x".into();
        assert_eq!(pointer(r), "/professional/uzi");
        let mut r = request();
        r.professional.role = "huisarts".into();
        assert_eq!(pointer(r), "/professional/role");
        let mut r = request();
        r.professional.mandated = Some("x".into());
        assert_eq!(pointer(r), "/professional/mandated");
        let mut r = request();
        r.enrolment_token = " ".into();
        assert_eq!(pointer(r), "/enrolment_token");
        assert!(read_emergency(request()).is_ok());
    }

    #[test]
    fn a_refused_token_is_a_problem_on_the_token_field_named_by_its_failure() {
        let p = token_problem(&TokenError::Expired);
        assert_eq!(p.status, 422);
        assert_eq!(p.kind, "urn:otv:problem:enrolment-token-expired");
        assert_eq!(p.errors[0].pointer, "/enrolment_token");
        assert_eq!(token_problem(&TokenError::Unavailable).status, 500);
    }
}
