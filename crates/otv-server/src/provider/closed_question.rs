//! `POST geslotenautorisatievraag/xacml3`: the closed question over SOAP 1.2 / XACML 3.0
//! (PRODUCT.md §5, §12).
//!
//! Order of work: check the media type and size, decode (a malformed request is a Sender fault
//! with status 400 that names what is wrong), check that the calling connector may act for the
//! holder (403 fault), read the patient's current answers, decide, write the audit record, and
//! only then answer. When reading the answers or writing the audit record fails, every data
//! category is answered `Indeterminate`: an otv error is never a Permit.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use otv_core::{Effect, Outcome, Question, decide};
use otv_store::AuditEvent;
use otv_wire::{ClosedQuestionRequest, Decision, closed_question_response, parse_closed_question};
use serde_json::json;

use super::{Caller, Received, receive};
use crate::AppState;

/// The handler.
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = receive(
        &state,
        "closed-question",
        caller,
        &headers,
        body,
        parse_closed_question,
        |q| &q.holder.ura,
    )
    .await;
    let Received {
        request,
        connector,
        request_id,
    } = match received {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let decisions = answer(&state, &request, connector.id(), request_id).await;
    let outcomes: Vec<_> = request
        .data_categories
        .iter()
        .cloned()
        .zip(decisions)
        .collect();
    let body = closed_question_response(
        &request.message_id,
        uuid::Uuid::now_v7(),
        &request.bsn,
        &request.holder.ura,
        &outcomes,
    );
    ([(header::CONTENT_TYPE, otv_wire::SOAP_CONTENT_TYPE)], body).into_response()
}

/// Decides and audits; on any failure, `Indeterminate` for every data category.
async fn answer(
    state: &AppState,
    q: &ClosedQuestionRequest,
    connector: &str,
    request_id: Option<String>,
) -> Vec<Decision> {
    let indeterminate = || vec![Decision::Indeterminate; q.data_categories.len()];
    let at = Utc::now();
    let answers = match state.store.profile(&q.bsn).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "closed question: reading the profile failed; answering Indeterminate");
            metrics::counter!("otv_closed_question_errors_total").increment(1);
            return indeterminate();
        }
    };
    let question = Question {
        holder: &q.holder,
        consulter: &q.consulter,
        at,
    };
    let outcomes = decide(
        &state.catalogue,
        state.policy,
        &answers,
        &question,
        &q.data_categories,
    );
    let event = audit_event(state, q, connector, request_id, &outcomes);
    if let Err(e) = state.store.audit(&event).await {
        tracing::error!(error = %e, "closed question: the audit record could not be written; answering Indeterminate");
        metrics::counter!("otv_closed_question_errors_total").increment(1);
        return indeterminate();
    }
    for o in &outcomes {
        metrics::counter!("otv_closed_question_decisions_total", "decision" => o.effect.as_str(), "reason" => o.reason.code())
            .increment(1);
    }
    outcomes.iter().map(|o| Decision::from(o.effect)).collect()
}

/// The NEN 7513 record of one closed question: who asked (professional, role, mandated
/// assistant, organisation), about whom (pseudonym), what was decided per data category and by
/// which answer.
fn audit_event(
    state: &AppState,
    q: &ClosedQuestionRequest,
    connector: &str,
    request_id: Option<String>,
    outcomes: &[Outcome<'_>],
) -> AuditEvent {
    let join = |f: &dyn Fn(&Outcome<'_>) -> &'static str| {
        outcomes.iter().map(f).collect::<Vec<_>>().join(",")
    };
    let results: Vec<_> = outcomes
        .iter()
        .map(|o| {
            json!({
                "data_category": o.data_category,
                "decision": o.effect.as_str(),
                "reason": o.reason.code(),
                "deciding": o.deciding.map(|a| json!({
                    "holder": a.key.holder,
                    "data_category": a.key.data_category,
                    "consulter": a.key.consulter,
                    "effect": a.effect.as_str(),
                    "channel": a.provenance.channel.as_str(),
                    "actor": a.provenance.actor,
                    "recorded_at": a.provenance.recorded_at,
                    "valid_until": a.valid_until,
                })),
            })
        })
        .collect();
    let emergency = outcomes.iter().any(|o| {
        o.effect == Effect::Permit
            && o.deciding
                .is_some_and(|a| a.provenance.channel == otv_core::Channel::Raadplegersknop)
    });
    AuditEvent {
        at: Utc::now(),
        event: "closed-question".into(),
        patient: Some(state.store.patient_reference(&q.bsn)),
        actor: format!("uzi:{} role:{}", q.professional, q.role),
        organisation: Some(q.holder.ura.to_string()),
        mandated: q.mandated.as_ref().map(ToString::to_string),
        request_id,
        decision: Some(join(&|o| o.effect.as_str())),
        reason: Some(join(&|o| o.reason.code())),
        emergency,
        channel: Some("soap".into()),
        details: json!({
            "message_id": q.message_id,
            "connector": connector,
            "holder_type": q.holder.organisation_type,
            "consulter": { "ura": q.consulter.ura, "organisation_type": q.consulter.organisation_type },
            "purpose": q.purpose.as_str(),
            "catalogue_version": state.catalogue.version(),
            "policy": state.policy,
            "results": results,
        }),
    }
}
