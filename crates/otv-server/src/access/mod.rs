//! otv's own JSON interfaces for the closed question (PRODUCT.md §12, "otv's own"), next to the
//! Mitz SOAP interface and deciding through the same path (`crate::closed_question`):
//!
//! - `POST /access/v1/evaluation` and `POST /access/v1/evaluations`: OpenID AuthZEN
//!   Authorization API 1.0 ([`authzen`]);
//! - `POST /v1/closed-question`: the closed question as plain JSON, every data category
//!   explained in words ([`plain`]);
//! - `GET /openapi.json`: the OpenAPI 3.1 document of otv's HTTP interfaces ([`openapi`]).
//!
//! The paths are absolute (not under the Mitz base path): these interfaces are otv's own. They
//! are served where the provider interfaces are (the mutual-TLS listener; the plain listener only
//! with the development flag), and make the same checks in the same order as the SOAP intake:
//! media type (415), size (413), JSON syntax (400), fields (422, naming the field by JSON
//! pointer), an allow-listed connector (403) that may act for every holder URA asked about
//! (403). Refusals are RFC 9457 problem details ([`problem`]) and are audited.
//!
//! Must not: decide anything itself, or answer Permit when otv failed (an internal error is
//! `Indeterminate`, `decision: false`).

pub mod authzen;
pub mod explain;
pub mod openapi;
pub mod plain;
pub mod problem;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use otv_core::{
    Bsn, DataCategory, IdError, OrgType, Organisation, Purpose, RoleCode, Ura, UziNumber,
};

use crate::AppState;
use crate::closed_question::{Asked, Decided};
use crate::provider::{AllowedConnector, Caller, Rejection, audit_rejection};
use explain::{DecidingAnswer, Explanation, INTERNAL_ERROR, OtvDecision};
use problem::{FieldError, Problem};

/// The JSON closed-question interfaces, at their absolute paths.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(authzen::EVALUATION_PATH, post(authzen::evaluation))
        .route(authzen::EVALUATIONS_PATH, post(authzen::evaluations))
        .route(plain::PATH, post(plain::closed_question))
        .layer(DefaultBodyLimit::max(otv_wire::MAX_INPUT_BYTES))
}

/// `GET /openapi.json`, served on both listeners.
pub fn openapi_routes() -> Router<AppState> {
    Router::new().route(openapi::PATH, get(openapi::serve))
}

/// A closed question read from JSON, every identifier valid.
#[derive(Debug, Clone)]
pub struct CheckedQuestion {
    /// The patient.
    pub bsn: Bsn,
    /// The dossier holder.
    pub holder: Organisation,
    /// The consulting provider.
    pub consulter: Organisation,
    /// The responsible professional.
    pub professional: UziNumber,
    /// The professional's role.
    pub role: RoleCode,
    /// The mandated assistant, if any.
    pub mandated: Option<UziNumber>,
    /// The data categories, in request order.
    pub data_categories: Vec<DataCategory>,
    /// The purpose of use.
    pub purpose: Purpose,
    /// JSON pointer to the holder's URA, named when the connector may not act for it.
    pub holder_pointer: String,
}

impl CheckedQuestion {
    /// The question as the shared decide-and-audit path takes it.
    pub fn asked(&self) -> Asked<'_> {
        Asked {
            bsn: &self.bsn,
            holder: &self.holder,
            consulter: &self.consulter,
            professional: &self.professional,
            role: &self.role,
            mandated: self.mandated.as_ref(),
            data_categories: &self.data_categories,
            purpose: self.purpose,
        }
    }
}

/// The raw fields of a closed question, wherever an interface keeps them, with the JSON pointer
/// of each.
struct RawQuestion<'a> {
    bsn: (&'a str, String),
    holder_ura: (&'a str, String),
    holder_type: (&'a str, String),
    consulter_ura: (&'a str, String),
    consulter_type: (&'a str, String),
    professional: (&'a str, String),
    role: (&'a str, String),
    mandated: Option<(&'a str, String)>,
    data_categories: Vec<(&'a str, String)>,
    purpose: (&'a str, String),
}

impl RawQuestion<'_> {
    /// Validates every field, reporting the first wrong one by its pointer.
    fn check(self) -> Result<CheckedQuestion, FieldError> {
        fn id<T>(
            (value, pointer): &(&str, String),
            parse: fn(&str) -> Result<T, IdError>,
        ) -> Result<T, FieldError> {
            parse(value).map_err(|e| FieldError::id(pointer.clone(), e))
        }
        let purpose = Purpose::parse(self.purpose.0)
            .map_err(|e| FieldError::id(self.purpose.1.clone(), e))?;
        Ok(CheckedQuestion {
            bsn: id(&self.bsn, Bsn::parse)?,
            holder: Organisation {
                ura: id(&self.holder_ura, Ura::parse)?,
                organisation_type: id(&self.holder_type, OrgType::parse)?,
            },
            consulter: Organisation {
                ura: id(&self.consulter_ura, Ura::parse)?,
                organisation_type: id(&self.consulter_type, OrgType::parse)?,
            },
            professional: id(&self.professional, UziNumber::parse)?,
            role: id(&self.role, RoleCode::parse)?,
            mandated: self
                .mandated
                .as_ref()
                .map(|m| id(m, UziNumber::parse))
                .transpose()?,
            data_categories: self
                .data_categories
                .iter()
                .map(|c| id(c, DataCategory::parse))
                .collect::<Result<_, _>>()?,
            purpose,
            holder_pointer: self.holder_ura.1,
        })
    }
}

/// A JSON request that passed the intake checks.
pub struct Received<T> {
    /// The checked request.
    pub request: T,
    /// The connector that sent it.
    pub connector: AllowedConnector,
    /// The request id.
    pub request_id: Option<String>,
}

/// The intake every JSON closed-question interface runs: the body as JSON (axum's rejections
/// become problems), the fields (`check`), an allow-listed connector that may act for every
/// holder of the request (`holders`). Each refusal is a problem document and is audited.
pub async fn intake<R, T>(
    state: &AppState,
    channel: &'static str,
    caller: Caller,
    headers: &HeaderMap,
    body: Result<Json<R>, JsonRejection>,
    check: impl FnOnce(R) -> Result<T, FieldError>,
    holders: impl Fn(&T) -> Vec<(&Ura, &str)>,
) -> Result<Received<T>, Response> {
    let request_id = crate::request_id(headers);
    let connector = caller.0;
    let refuse = async |problem: Problem| {
        let rejection = Rejection {
            interface: "closed-question",
            channel,
            request_id: request_id.clone(),
            connector: connector.as_ref().map(AllowedConnector::id),
            kind: problem.short_kind(),
            details: serde_json::json!({ "problem": problem.detail }),
        };
        audit_rejection(state, rejection).await;
        problem.with_request_id(request_id.clone()).into_response()
    };
    let raw = match body {
        Ok(Json(raw)) => raw,
        Err(rejection) => return Err(refuse(Problem::from_rejection(&rejection)).await),
    };
    let request = match check(raw) {
        Ok(r) => r,
        Err(e) => return Err(refuse(Problem::invalid_field(e)).await),
    };
    let Some(allowed) = connector.clone() else {
        return Err(refuse(Problem::unknown_connector()).await);
    };
    for (ura, pointer) in holders(&request) {
        if !allowed.may_act_for(ura) {
            let problem = Problem::not_allowed_for_ura(allowed.id(), ura, pointer.to_owned());
            return Err(refuse(problem).await);
        }
    }
    Ok(Received {
        request,
        connector: allowed,
        request_id,
    })
}

/// One decided data category, as both JSON interfaces show it.
pub struct Shown {
    /// Permit, Deny or Indeterminate.
    pub decision: OtvDecision,
    /// The reason code (`internal-error` when Indeterminate).
    pub reason: String,
    /// The answer that decided, if one did.
    pub deciding_answer: Option<DecidingAnswer>,
    /// The decision in words.
    pub explanation: Explanation,
}

/// Shows one decided data category.
pub fn show(state: &AppState, d: &Decided) -> Shown {
    Shown {
        decision: d.decision.into(),
        reason: d
            .reason
            .map_or(INTERNAL_ERROR, otv_core::Reason::code)
            .to_owned(),
        deciding_answer: d
            .deciding
            .as_ref()
            .map(|a| explain::deciding_answer(&state.catalogue, a)),
        explanation: explain::explain(&state.catalogue, d),
    }
}
