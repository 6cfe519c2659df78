//! `POST openautorisatievraag`: the open question, IHE XCPD ITI-56 with an XUA SAML assertion
//! (PRODUCT.md §6, §12): where are records of this patient that this consulter may receive?
//!
//! Every subscribed holder is decided, whatever the outcome, so the work (and its time) depends
//! on the number of registrations, not on the patient's answers; only holders whose closed
//! question would answer Permit are returned. A failure inside otv is a SOAP Receiver fault, never
//! a list: an empty list would wrongly say "nothing available".
//!
//! A signed assertion must be signed by a certificate that chains to the provider trust store
//! (`tls::SignerTrust`); an unsigned one is accepted, as §12 allows, because the connector is
//! already authenticated by its client certificate.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use otv_core::{Effect, Organisation, Question, decide_one};
use otv_store::AuditEvent;
use otv_wire::{
    FaultCode, Location, OpenQuestionRequest, open_question_response, parse_open_question,
};
use serde_json::json;

use super::{Caller, Received, Rejection, audit_rejection, fault, receive};
use crate::AppState;

/// The handler.
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let decode = |xml: &[u8]| parse_open_question(xml, state.clock.now(), &state.saml_audience);
    let received = receive(
        &state,
        "open-question",
        caller,
        &headers,
        body,
        decode,
        |q| &q.consulter.ura,
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
    if let Some(signer) = &request.signer_certificate {
        let trusted = match &state.saml_signers {
            Some(trust) => trust.check(signer),
            None => Err("no trust store is configured to check it".to_owned()),
        };
        if let Err(why) = trusted {
            let reason = format!("the SAML assertion's signer certificate is not trusted: {why}");
            let rejection = Rejection {
                interface: "open-question",
                channel: "soap",
                request_id,
                connector: Some(connector.id()),
                kind: "untrusted-signer",
                details: json!({ "problem": reason }),
            };
            audit_rejection(&state, rejection).await;
            return fault(StatusCode::FORBIDDEN, FaultCode::Sender, &reason);
        }
    }
    match locate(&state, &request, connector.id(), request_id).await {
        Ok(locations) => {
            let body = open_question_response(
                &request.message_id,
                uuid::Uuid::now_v7(),
                &request.bsn,
                &locations,
            );
            ([(header::CONTENT_TYPE, otv_wire::SOAP_CONTENT_TYPE)], body).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "open question failed");
            fault(
                StatusCode::INTERNAL_SERVER_ERROR,
                FaultCode::Receiver,
                "otv could not answer; try again",
            )
        }
    }
}

/// Decides every subscribed holder and audits; returns the permitted locations.
async fn locate(
    state: &AppState,
    q: &OpenQuestionRequest,
    connector: &str,
    request_id: Option<String>,
) -> Result<Vec<Location>, otv_store::StoreError> {
    let at = state.clock.now();
    let subscriptions = state.store.subscriptions_of(&q.bsn).await?;
    let answers = state.store.profile(&q.bsn).await?;
    let mut locations = Vec::new();
    let mut considered = Vec::with_capacity(subscriptions.len());
    for s in &subscriptions {
        let holder = Organisation {
            ura: s.holder_ura.clone(),
            organisation_type: s.holder_type.clone(),
        };
        // The data category a holder makes available comes from its category in the catalogue;
        // a holder of an unknown type makes nothing available.
        let Some(category) = state
            .catalogue
            .holder_category_of(&holder.organisation_type)
        else {
            considered.push(json!({ "holder": s.holder_ura, "decision": "deny", "reason": "unknown-organisation-type" }));
            continue;
        };
        let question = Question {
            holder: &holder,
            consulter: &q.consulter,
            at,
        };
        let outcome = decide_one(
            &state.catalogue,
            state.policy,
            &answers,
            &question,
            &category.data_category,
        );
        considered.push(json!({
            "holder": s.holder_ura,
            "data_category": category.data_category,
            "decision": outcome.effect.as_str(),
            "reason": outcome.reason.code(),
        }));
        if outcome.effect == Effect::Permit {
            locations.push(Location {
                home_community_id: oid_urn(&s.gateway_system),
                source_id: oid_urn(&s.source_system),
                holder_ura: s.holder_ura.clone(),
                data_category: category.data_category.clone(),
            });
        }
    }
    let event = AuditEvent {
        at,
        event: "open-question".into(),
        patient: Some(state.store.patient_reference(&q.bsn)),
        actor: format!("uzi:{} role:{}", q.professional, q.role),
        organisation: Some(q.consulter.ura.to_string()),
        mandated: q.mandated.as_ref().map(ToString::to_string),
        request_id,
        decision: Some(format!(
            "{} of {} locations",
            locations.len(),
            subscriptions.len()
        )),
        channel: Some("soap".into()),
        details: json!({
            "message_id": q.message_id,
            "assertion_id": q.assertion_id,
            "assertion_signed": q.signed,
            "connector": connector,
            "consulter_type": q.consulter.organisation_type,
            "purpose": q.purpose.as_str(),
            "catalogue_version": state.catalogue.version(),
            "holders": considered,
        }),
        ..AuditEvent::default()
    };
    state.store.audit_check(event).await?;
    metrics::counter!("otv_open_questions_total").increment(1);
    Ok(locations)
}

fn oid_urn(oid: &str) -> String {
    if oid.starts_with("urn:oid:") {
        oid.to_owned()
    } else {
        format!("urn:oid:{oid}")
    }
}
