//! The closed question as an OpenID AuthZEN Authorization API 1.0 evaluation:
//! `POST /access/v1/evaluation` and `POST /access/v1/evaluations`.
//!
//! The mapping (PRODUCT.md §5 in AuthZEN's words):
//!
//! | AuthZEN | otv | JSON pointer |
//! |---|---|---|
//! | subject, `type` `professional` | the responsible professional | `/subject` |
//! | subject `id` | UZI number | `/subject/id` |
//! | subject property `role` | role (RoleCodeNL, e.g. `01.015`) | `/subject/properties/role` |
//! | subject property `consulter_ura` | the consulting provider (raadpleger) | `/subject/properties/consulter_ura` |
//! | subject property `consulter_organisation_type` | its organisation type | `/subject/properties/consulter_organisation_type` |
//! | subject property `mandated` (optional) | mandated assistant's UZI number | `/subject/properties/mandated` |
//! | resource, `type` `patient_record` | the patient's record at a holder | `/resource` |
//! | resource `id` | the patient's BSN | `/resource/id` |
//! | resource property `holder_ura` | the dossier holder (dossierhouder) | `/resource/properties/holder_ura` |
//! | resource property `holder_organisation_type` | its organisation type | `/resource/properties/holder_organisation_type` |
//! | resource property `data_category` | one data category (e.g. `GGC002`) | `/resource/properties/data_category` |
//! | action `name` `consult` | make available to the consulter | `/action/name` |
//! | context `purpose` | purpose of use, `TREAT` or `COC` | `/context/purpose` |
//!
//! The response's `decision` is `true` only for Permit. Its `context` carries otv's decision
//! (`Permit`, `Deny`, or `Indeterminate` when otv failed), the reason code, the deciding answer
//! and the decision in words (English and Dutch).
//!
//! Batches (`/access/v1/evaluations`): the top-level `subject`, `resource`, `action` and
//! `context` are defaults; an item's own member replaces the default whole (AuthZEN does not
//! merge). `options.evaluations_semantic`: `execute_all` (the default) answers every item;
//! `deny_on_first_deny` stops after the first item that is not a Permit (an Indeterminate stops
//! too); `permit_on_first_permit` stops after the first Permit. Items not reached are neither
//! decided nor audited. Without `evaluations` (or with an empty list) the request is one
//! evaluation and the response is that of `/access/v1/evaluation`. A batch is checked whole
//! before anything is decided: one wrong field (422) or one holder the connector may not act
//! for (403) refuses it. Each evaluation is decided and audited on its own (channel `authzen`).

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
use crate::closed_question::{Decided, Via, answer};
use crate::provider::Caller;

/// Path of the single evaluation.
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
/// Path of the batch of evaluations.
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";
/// The most evaluations one batch may hold.
pub const MAX_EVALUATIONS: usize = 100;

/// The audit channel of this interface.
const CHANNEL: &str = "authzen";

/// The professional who asks.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"type": "professional", "id": "900010001", "properties": {"role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}}))]
pub struct Subject {
    /// Always `professional`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The professional's UZI number.
    pub id: String,
    /// Role and organisation.
    pub properties: SubjectProperties,
}

/// The professional's role and the consulting provider they work for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SubjectProperties {
    /// Role (RoleCodeNL), e.g. `01.015` (huisarts).
    pub role: String,
    /// URA of the consulting provider (raadpleger), 8 digits.
    pub consulter_ura: String,
    /// Organisation type of the consulting provider, e.g. `N6`.
    pub consulter_organisation_type: String,
    /// UZI number of a mandated assistant (gemandateerde) asking for the professional.
    #[serde(default)]
    pub mandated: Option<String>,
}

/// The patient's record at a dossier holder, for one data category.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({"type": "patient_record", "id": "900203638", "properties": {"holder_ura": "00000001", "holder_organisation_type": "Z3", "data_category": "GGC002"}}))]
pub struct Resource {
    /// Always `patient_record`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The patient's BSN (9 digits that pass the 11-test).
    pub id: String,
    /// Holder and data category.
    pub properties: ResourceProperties,
}

/// Where the record is and which data category is asked.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ResourceProperties {
    /// URA of the dossier holder (dossierhouder), 8 digits. The connector must be allowed to act
    /// for it.
    pub holder_ura: String,
    /// Organisation type of the dossier holder, e.g. `Z3`.
    pub holder_organisation_type: String,
    /// The data category (gegevenscategorie), e.g. `GGC002`.
    pub data_category: String,
}

/// What the holder would do with the record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Action {
    /// Always `consult`: make the data available to the consulting provider.
    pub name: String,
    /// Not used.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub properties: Option<serde_json::Value>,
}

/// The circumstances of the question.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Context {
    /// Purpose of use: `TREAT` or `COC`. Required.
    #[serde(default)]
    pub purpose: Option<String>,
}

/// An AuthZEN access evaluation request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "professional", "id": "900010001", "properties": {"role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}},
    "resource": {"type": "patient_record", "id": "900203638", "properties": {"holder_ura": "00000001", "holder_organisation_type": "Z3", "data_category": "GGC002"}},
    "action": {"name": "consult"},
    "context": {"purpose": "TREAT"}
}))]
pub struct EvaluationRequest {
    /// The professional who asks.
    pub subject: Subject,
    /// The patient's record at the holder.
    pub resource: Resource,
    /// `consult`.
    pub action: Action,
    /// The purpose of use.
    #[serde(default)]
    pub context: Option<Context>,
}

/// How a batch is evaluated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationsSemantic {
    /// Evaluate every item.
    #[default]
    ExecuteAll,
    /// Stop after the first item that is not a Permit.
    DenyOnFirstDeny,
    /// Stop after the first Permit.
    PermitOnFirstPermit,
}

/// Options of a batch.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EvaluationsOptions {
    /// How the batch is evaluated; `execute_all` when absent.
    #[serde(default)]
    pub evaluations_semantic: EvaluationsSemantic,
}

/// One item of a batch: each member present replaces the request's default.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct EvaluationItem {
    /// The professional, if not the default.
    #[serde(default)]
    pub subject: Option<Subject>,
    /// The record, if not the default.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// The action, if not the default.
    #[serde(default)]
    pub action: Option<Action>,
    /// The context, if not the default.
    #[serde(default)]
    pub context: Option<Context>,
}

/// An AuthZEN access evaluations (batch) request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({
    "subject": {"type": "professional", "id": "900010001", "properties": {"role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}},
    "action": {"name": "consult"},
    "context": {"purpose": "TREAT"},
    "options": {"evaluations_semantic": "execute_all"},
    "evaluations": [
        {"resource": {"type": "patient_record", "id": "900203638", "properties": {"holder_ura": "00000001", "holder_organisation_type": "Z3", "data_category": "GGC002"}}},
        {"resource": {"type": "patient_record", "id": "900203638", "properties": {"holder_ura": "00000010", "holder_organisation_type": "J8", "data_category": "GGC013"}}}
    ]
}))]
pub struct EvaluationsRequest {
    /// Default professional.
    #[serde(default)]
    pub subject: Option<Subject>,
    /// Default record.
    #[serde(default)]
    pub resource: Option<Resource>,
    /// Default action.
    #[serde(default)]
    pub action: Option<Action>,
    /// Default context.
    #[serde(default)]
    pub context: Option<Context>,
    /// The evaluations, at most 100.
    #[serde(default)]
    pub evaluations: Vec<EvaluationItem>,
    /// How to evaluate them.
    #[serde(default)]
    pub options: Option<EvaluationsOptions>,
}

/// otv's account of one decision.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionContext {
    /// otv's decision.
    pub decision: OtvDecision,
    /// The reason code, e.g. `permitted-by-answer`, `no-answer-default-deny`, `internal-error`.
    pub reason: String,
    /// The data category decided.
    pub data_category: String,
    /// The answer that decided, if an answer decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deciding_answer: Option<DecidingAnswer>,
    /// The decision in words.
    pub explanation: Explanation,
    /// The catalogue version the decision was made with.
    pub catalogue_version: String,
    /// The moment decided for.
    pub decided_at: DateTime<Utc>,
}

/// An AuthZEN access evaluation response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationResponse {
    /// `true` only when otv's decision is Permit.
    pub decision: bool,
    /// otv's decision, reason, deciding answer and explanation.
    pub context: DecisionContext,
}

/// An AuthZEN access evaluations response: one result per item evaluated, in request order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EvaluationsResponse {
    /// The results; fewer than asked when a semantic stopped early.
    pub evaluations: Vec<EvaluationResponse>,
}

/// One member of an evaluation and its JSON pointer.
type At<'a, T> = (&'a T, String);

/// Reads an evaluation whose members are known, reporting wrong fields by pointer.
fn check(
    (subject, sp): At<'_, Subject>,
    (resource, rp): At<'_, Resource>,
    (action, ap): At<'_, Action>,
    (context, cp): (Option<&Context>, String),
) -> Result<CheckedQuestion, FieldError> {
    if subject.kind != "professional" {
        return Err(FieldError::new(
            format!("{sp}/type"),
            "the subject type is `professional`",
        ));
    }
    if resource.kind != "patient_record" {
        return Err(FieldError::new(
            format!("{rp}/type"),
            "the resource type is `patient_record`",
        ));
    }
    if action.name != "consult" {
        return Err(FieldError::new(
            format!("{ap}/name"),
            "the action name is `consult`",
        ));
    }
    let Some(purpose) = context.and_then(|c| c.purpose.as_deref()) else {
        return Err(FieldError::new(
            format!("{cp}/purpose"),
            "the purpose of use is required: TREAT or COC",
        ));
    };
    let s = &subject.properties;
    let r = &resource.properties;
    RawQuestion {
        bsn: (&resource.id, format!("{rp}/id")),
        holder_ura: (&r.holder_ura, format!("{rp}/properties/holder_ura")),
        holder_type: (
            &r.holder_organisation_type,
            format!("{rp}/properties/holder_organisation_type"),
        ),
        consulter_ura: (&s.consulter_ura, format!("{sp}/properties/consulter_ura")),
        consulter_type: (
            &s.consulter_organisation_type,
            format!("{sp}/properties/consulter_organisation_type"),
        ),
        professional: (&subject.id, format!("{sp}/id")),
        role: (&s.role, format!("{sp}/properties/role")),
        mandated: s
            .mandated
            .as_deref()
            .map(|m| (m, format!("{sp}/properties/mandated"))),
        data_categories: vec![(&r.data_category, format!("{rp}/properties/data_category"))],
        purpose: (purpose, format!("{cp}/purpose")),
    }
    .check()
}

fn check_one(r: EvaluationRequest) -> Result<CheckedQuestion, FieldError> {
    check(
        (&r.subject, "/subject".into()),
        (&r.resource, "/resource".into()),
        (&r.action, "/action".into()),
        (r.context.as_ref(), "/context".into()),
    )
}

/// A checked batch.
#[derive(Debug)]
struct Batch {
    items: Vec<CheckedQuestion>,
    semantic: EvaluationsSemantic,
    /// No `evaluations`: answer as a single evaluation.
    single: bool,
}

fn check_batch(r: EvaluationsRequest) -> Result<Batch, FieldError> {
    if r.evaluations.len() > MAX_EVALUATIONS {
        return Err(FieldError::new(
            "/evaluations",
            format!("at most {MAX_EVALUATIONS} evaluations per request"),
        ));
    }
    let single = r.evaluations.is_empty();
    let items = if single {
        vec![EvaluationItem::default()]
    } else {
        r.evaluations
    };
    // The item's own member, or the default, with the pointer of the one used.
    fn pick<'a, T>(
        own: Option<&'a T>,
        default: Option<&'a T>,
        i: Option<usize>,
        name: &str,
    ) -> (Option<&'a T>, String) {
        match (own, i) {
            (Some(v), Some(i)) => (Some(v), format!("/evaluations/{i}/{name}")),
            _ => match default {
                Some(v) => (Some(v), format!("/{name}")),
                None => (
                    None,
                    i.map_or(format!("/{name}"), |i| format!("/evaluations/{i}/{name}")),
                ),
            },
        }
    }
    fn required<'a, T>(
        (v, p): (Option<&'a T>, String),
        name: &str,
    ) -> Result<At<'a, T>, FieldError> {
        match v {
            Some(v) => Ok((v, p)),
            None => Err(FieldError::new(
                p,
                format!("a {name} is required, in the evaluation or as the default"),
            )),
        }
    }
    let checked = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let i = (!single).then_some(i);
            check(
                required(
                    pick(item.subject.as_ref(), r.subject.as_ref(), i, "subject"),
                    "subject",
                )?,
                required(
                    pick(item.resource.as_ref(), r.resource.as_ref(), i, "resource"),
                    "resource",
                )?,
                required(
                    pick(item.action.as_ref(), r.action.as_ref(), i, "action"),
                    "action",
                )?,
                pick(item.context.as_ref(), r.context.as_ref(), i, "context"),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(Batch {
        items: checked,
        semantic: r.options.unwrap_or_default().evaluations_semantic,
        single,
    })
}

/// The AuthZEN response for one decided category.
fn response(state: &AppState, at: DateTime<Utc>, d: &Decided) -> EvaluationResponse {
    let shown = show(state, d);
    EvaluationResponse {
        decision: shown.decision == OtvDecision::Permit,
        context: DecisionContext {
            decision: shown.decision,
            reason: shown.reason,
            data_category: d.data_category.to_string(),
            deciding_answer: shown.deciding_answer,
            explanation: shown.explanation,
            catalogue_version: state.catalogue.version().to_owned(),
            decided_at: at,
        },
    }
}

/// Decides and audits one checked evaluation.
async fn evaluate(
    state: &AppState,
    q: &CheckedQuestion,
    connector: &str,
    request_id: Option<String>,
) -> EvaluationResponse {
    let via = Via {
        channel: CHANNEL,
        connector,
        request_id,
        message_id: None,
    };
    let answered = answer(state, &q.asked(), via).await;
    // One data category per evaluation, so one result.
    response(state, answered.at, &answered.results[0])
}

/// Access evaluation: may the holder make this data category of this patient available to this
/// professional's organisation?
#[utoipa::path(
    post,
    path = "/access/v1/evaluation",
    tag = "AuthZEN",
    request_body(content = EvaluationRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided (or Indeterminate when otv failed: `decision` false)", body = EvaluationResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for the holder URA", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `errors[].pointer` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn evaluation(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<EvaluationRequest>, JsonRejection>,
) -> Response {
    let received = intake(&state, CHANNEL, caller, &headers, body, check_one, |q| {
        vec![(&q.holder.ura, q.holder_pointer.as_str())]
    })
    .await;
    let received = match received {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let q = &received.request;
    Json(evaluate(&state, q, received.connector.id(), received.request_id).await).into_response()
}

/// Access evaluations: several evaluations in one request, with defaults and a semantic.
#[utoipa::path(
    post,
    path = "/access/v1/evaluations",
    tag = "AuthZEN",
    request_body(content = EvaluationsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decided, one result per evaluation reached, in order. Without `evaluations` the response is a single `EvaluationResponse`.", body = EvaluationsResponse),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an allowed connector, or not allowed to act for a holder URA of the batch", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Content-Type is not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is missing or invalid; `errors[].pointer` names it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn evaluations(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<EvaluationsRequest>, JsonRejection>,
) -> Response {
    let received = intake(&state, CHANNEL, caller, &headers, body, check_batch, |b| {
        b.items
            .iter()
            .map(|q| (&q.holder.ura, q.holder_pointer.as_str()))
            .collect()
    })
    .await;
    let received = match received {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let batch = &received.request;
    let connector = received.connector.id();
    if batch.single {
        let one = evaluate(&state, &batch.items[0], connector, received.request_id).await;
        return Json(one).into_response();
    }
    let mut results = Vec::with_capacity(batch.items.len());
    for q in &batch.items {
        let r = evaluate(&state, q, connector, received.request_id.clone()).await;
        let stop = match batch.semantic {
            EvaluationsSemantic::ExecuteAll => false,
            EvaluationsSemantic::DenyOnFirstDeny => !r.decision,
            EvaluationsSemantic::PermitOnFirstPermit => r.decision,
        };
        results.push(r);
        if stop {
            break;
        }
    }
    Json(EvaluationsResponse {
        evaluations: results,
    })
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(v: serde_json::Value) -> Result<Batch, FieldError> {
        check_batch(serde_json::from_value(v).unwrap())
    }

    fn subject() -> serde_json::Value {
        serde_json::json!({"type": "professional", "id": "900010001", "properties": {"role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}})
    }

    fn resource(category: &str) -> serde_json::Value {
        serde_json::json!({"type": "patient_record", "id": "900203638", "properties": {"holder_ura": "00000001", "holder_organisation_type": "Z3", "data_category": category}})
    }

    #[test]
    fn items_take_the_defaults_they_do_not_replace() {
        let b = batch(serde_json::json!({
            "subject": subject(), "action": {"name": "consult"}, "context": {"purpose": "COC"},
            "options": {"evaluations_semantic": "permit_on_first_permit"},
            "evaluations": [{"resource": resource("GGC002")}, {"resource": resource("GGC013"), "context": {"purpose": "TREAT"}}],
        }))
        .unwrap();
        assert_eq!(b.items.len(), 2);
        assert_eq!(b.semantic, EvaluationsSemantic::PermitOnFirstPermit);
        assert_eq!(b.items[0].purpose.as_str(), "COC");
        assert_eq!(b.items[1].purpose.as_str(), "TREAT");
        assert_eq!(b.items[1].data_categories[0].as_str(), "GGC013");
        assert_eq!(
            b.items[1].holder_pointer,
            "/evaluations/1/resource/properties/holder_ura"
        );
        assert!(!b.single);
    }

    #[test]
    fn a_wrong_field_is_named_where_it_was_written() {
        let e = batch(serde_json::json!({
            "subject": subject(), "action": {"name": "consult"}, "context": {"purpose": "TREAT"},
            "evaluations": [{"resource": resource("GGC002")}, {"resource": resource("GG")}],
        }))
        .unwrap_err();
        assert_eq!(
            e.pointer,
            "/evaluations/1/resource/properties/data_category"
        );

        let mut bad = subject();
        bad["properties"]["role"] = "huisarts".into();
        let e = batch(serde_json::json!({
            "subject": bad, "action": {"name": "consult"}, "context": {"purpose": "TREAT"},
            "evaluations": [{"resource": resource("GGC002")}],
        }))
        .unwrap_err();
        assert_eq!(e.pointer, "/subject/properties/role");

        let e = batch(serde_json::json!({
            "subject": subject(), "action": {"name": "consult"},
            "evaluations": [{"resource": resource("GGC002")}],
        }))
        .unwrap_err();
        // Neither the item nor the defaults have it: named in the item.
        assert_eq!(e.pointer, "/evaluations/0/context/purpose");

        let e = batch(serde_json::json!({
            "subject": subject(), "context": {"purpose": "TREAT"},
            "evaluations": [{"resource": resource("GGC002"), "action": {"name": "read"}}],
        }))
        .unwrap_err();
        assert_eq!(e.pointer, "/evaluations/0/action/name");

        let e = batch(serde_json::json!({
            "subject": subject(), "action": {"name": "consult"}, "context": {"purpose": "TREAT"},
            "evaluations": [{}],
        }))
        .unwrap_err();
        assert_eq!(e.pointer, "/evaluations/0/resource");
    }

    #[test]
    fn without_evaluations_the_defaults_are_one_evaluation() {
        let b = batch(serde_json::json!({
            "subject": subject(), "resource": resource("GGC002"), "action": {"name": "consult"}, "context": {"purpose": "TREAT"},
        }))
        .unwrap();
        assert!(b.single);
        assert_eq!(b.items.len(), 1);
        assert_eq!(b.items[0].holder_pointer, "/resource/properties/holder_ura");
    }

    #[test]
    fn a_batch_is_bounded() {
        let items: Vec<_> = (0..=MAX_EVALUATIONS)
            .map(|_| serde_json::json!({"resource": resource("GGC002")}))
            .collect();
        let e = batch(serde_json::json!({
            "subject": subject(), "action": {"name": "consult"}, "context": {"purpose": "TREAT"},
            "evaluations": items,
        }))
        .unwrap_err();
        assert_eq!(e.pointer, "/evaluations");
    }
}
