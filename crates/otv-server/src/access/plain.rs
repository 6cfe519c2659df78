//! `POST /v1/closed-question`: the closed question (PRODUCT.md §5) as plain JSON, in otv's own
//! words: one request names the patient, holder, consulter, professional, purpose and one or
//! more data categories; the response has one result per data category, in request order, each
//! with otv's decision, the reason code, the deciding answer (what it says, when, through which
//! channel and by whom it was recorded) and the decision in words, in English and Dutch.
//!
//! Unknown fields are refused (422), so that a misspelt optional field such as `mandated` is
//! not silently ignored. Decided and audited through the shared path (channel `json`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::explain::{DecidingAnswer, Explanation, OtvDecision};
use super::problem::{FieldError, Problem};
use super::{CheckedQuestion, RawQuestion, intake, show};
use crate::AppState;
use crate::closed_question::{Via, answer};
use crate::provider::Caller;

/// The path.
pub const PATH: &str = "/v1/closed-question";
/// The most data categories one question may ask.
pub const MAX_DATA_CATEGORIES: usize = 32;

/// The audit channel of this interface.
const CHANNEL: &str = "json";

/// A provider organisation.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationRef {
    /// URA, 8 digits.
    pub ura: String,
    /// Organisation type (zorgaanbiedertype), e.g. `Z3`.
    pub organisation_type: String,
}

/// The responsible professional at the consulting provider.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Professional {
    /// UZI number.
    pub uzi: String,
    /// Role (RoleCodeNL), e.g. `01.015`.
    pub role: String,
    /// UZI number of a mandated assistant (gemandateerde) asking for the professional.
    #[serde(default)]
    pub mandated: Option<String>,
}

/// The closed question.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "bsn": "900203638",
    "holder": {"ura": "00000001", "organisation_type": "Z3"},
    "consulter": {"ura": "00000002", "organisation_type": "N6"},
    "professional": {"uzi": "900010001", "role": "01.015"},
    "purpose": "TREAT",
    "data_categories": ["GGC002", "GGC013"]
}))]
pub struct ClosedQuestionRequest {
    /// The patient's BSN (9 digits that pass the 11-test).
    pub bsn: String,
    /// The dossier holder (dossierhouder) that would make the data available. The connector must
    /// be allowed to act for its URA.
    pub holder: OrganisationRef,
    /// The consulting provider (raadpleger) that would receive them.
    pub consulter: OrganisationRef,
    /// The responsible professional at the consulter.
    pub professional: Professional,
    /// Purpose of use: `TREAT` or `COC`.
    pub purpose: String,
    /// The data categories asked (1 to 32), e.g. `GGC002`.
    pub data_categories: Vec<String>,
}

/// The decision for one data category.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryResult {
    /// The data category asked.
    pub data_category: String,
    /// otv's decision.
    pub decision: OtvDecision,
    /// `true` only for Permit.
    pub permitted: bool,
    /// The reason code, e.g. `permitted-by-answer`, `no-answer-default-deny`, `internal-error`.
    pub reason: String,
    /// The answer that decided, if an answer decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciding_answer: Option<DecidingAnswer>,
    /// The decision in words.
    pub explanation: Explanation,
}

/// The answer to a closed question.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClosedQuestionResponse {
    /// The moment decided for.
    pub decided_at: DateTime<Utc>,
    /// The catalogue version the decisions were made with.
    pub catalogue_version: String,
    /// One result per data category asked, in request order.
    pub results: Vec<CategoryResult>,
}

fn check(r: ClosedQuestionRequest) -> Result<CheckedQuestion, FieldError> {
    if r.data_categories.is_empty() || r.data_categories.len() > MAX_DATA_CATEGORIES {
        return Err(FieldError::new(
            "/data_categories",
            format!("ask 1 to {MAX_DATA_CATEGORIES} data categories"),
        ));
    }
    RawQuestion {
        bsn: (&r.bsn, "/bsn".into()),
        holder_ura: (&r.holder.ura, "/holder/ura".into()),
        holder_type: (
            &r.holder.organisation_type,
            "/holder/organisation_type".into(),
        ),
        consulter_ura: (&r.consulter.ura, "/consulter/ura".into()),
        consulter_type: (
            &r.consulter.organisation_type,
            "/consulter/organisation_type".into(),
        ),
        professional: (&r.professional.uzi, "/professional/uzi".into()),
        role: (&r.professional.role, "/professional/role".into()),
        mandated: r
            .professional
            .mandated
            .as_deref()
            .map(|m| (m, "/professional/mandated".into())),
        data_categories: r
            .data_categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), format!("/data_categories/{i}")))
            .collect(),
        purpose: (&r.purpose, "/purpose".into()),
    }
    .check()
}

/// The closed question: may the holder make these data categories of this patient available to
/// the consulter? One explained result per data category.
#[utoipa::path(
    post,
    path = "/v1/closed-question",
    tag = "Closed question",
    request_body(content = ClosedQuestionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided, one result per data category in request order (Indeterminate for every category when otv failed)", body = ClosedQuestionResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for the holder URA", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing, unknown or invalid; `errors[].pointer` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn closed_question(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<ClosedQuestionRequest>, JsonRejection>,
) -> Response {
    let received = intake(&state, CHANNEL, caller, &headers, body, check, |q| {
        vec![(&q.holder.ura, q.holder_pointer.as_str())]
    })
    .await;
    let received = match received {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let via = Via {
        channel: CHANNEL,
        connector: received.connector.id(),
        request_id: received.request_id.clone(),
        message_id: None,
    };
    let answered = answer(&state, &received.request.asked(), via).await;
    let results = answered
        .results
        .iter()
        .map(|d| {
            let shown = show(&state, d);
            CategoryResult {
                data_category: d.data_category.to_string(),
                permitted: shown.decision == OtvDecision::Permit,
                decision: shown.decision,
                reason: shown.reason,
                deciding_answer: shown.deciding_answer,
                explanation: shown.explanation,
            }
        })
        .collect();
    Json(ClosedQuestionResponse {
        decided_at: answered.at,
        catalogue_version: state.catalogue.version().to_owned(),
        results,
    })
    .into_response()
}
