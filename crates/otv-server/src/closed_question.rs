//! The closed question's one decide-and-audit path (PRODUCT.md §5), shared by every interface
//! that asks it: SOAP/XACML (channel `soap`), AuthZEN (`authzen`) and otv's plain JSON (`json`).
//!
//! An interface decodes and checks its request (media type, fields, connector, URA), then hands
//! the question here as an [`Asked`]. This module reads the patient's current answers, lets
//! otv-core decide, writes the NEN 7513 audit record and only then returns one [`Decided`] per
//! data category, in the order asked. When the read or the audit write fails, every category is
//! [`Decision::Indeterminate`]: an otv error is never a Permit.
//!
//! Must not: decide anything itself, or know any wire format.

use chrono::{DateTime, Utc};
use otv_core::{
    Answer, Bsn, DataCategory, Effect, Organisation, Outcome, Purpose, Question, Reason, RoleCode,
    Sides, UziNumber, decide,
};
use otv_store::AuditEvent;
use otv_wire::{ClosedQuestionRequest, Decision};
use serde_json::json;

use crate::AppState;

/// A closed question that passed its interface's checks, borrowed from the interface's request.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The patient.
    pub bsn: &'a Bsn,
    /// The dossier holder (dossierhouder) that would make the data available.
    pub holder: &'a Organisation,
    /// The consulting provider (raadpleger) that would receive them.
    pub consulter: &'a Organisation,
    /// The responsible professional at the consulter.
    pub professional: &'a UziNumber,
    /// The professional's role.
    pub role: &'a RoleCode,
    /// The mandated assistant (gemandateerde) acting for the professional, if any.
    pub mandated: Option<&'a UziNumber>,
    /// The data categories asked, in request order. Never empty.
    pub data_categories: &'a [DataCategory],
    /// The purpose of use.
    pub purpose: Purpose,
}

impl<'a> From<&'a ClosedQuestionRequest> for Asked<'a> {
    fn from(q: &'a ClosedQuestionRequest) -> Self {
        Asked {
            bsn: &q.bsn,
            holder: &q.holder,
            consulter: &q.consulter,
            professional: &q.professional,
            role: &q.role,
            mandated: q.mandated.as_ref(),
            data_categories: &q.data_categories,
            purpose: q.purpose,
        }
    }
}

/// How a question reached otv, for the audit record.
#[derive(Debug, Clone)]
pub struct Via<'a> {
    /// The interface: `soap`, `authzen` or `json`.
    pub channel: &'static str,
    /// The allow-listed connector that asked.
    pub connector: &'a str,
    /// The request id (`X-Request-Id`).
    pub request_id: Option<String>,
    /// The WS-Addressing `MessageID` (SOAP only).
    pub message_id: Option<&'a str>,
}

/// The decision for one data category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// The data category asked.
    pub data_category: DataCategory,
    /// Permit, Deny, or Indeterminate when otv failed.
    pub decision: Decision,
    /// Why (absent when Indeterminate).
    pub reason: Option<Reason>,
    /// The answer that decided, if an answer decided.
    pub deciding: Option<Answer>,
}

/// The decisions of one closed question.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The moment the question was decided for.
    pub at: DateTime<Utc>,
    /// One per data category asked, in request order.
    pub results: Vec<Decided>,
}

/// Decides and audits; on any failure, `Indeterminate` for every data category.
pub async fn answer(state: &AppState, q: &Asked<'_>, via: Via<'_>) -> Answered {
    let at = state.clock.now();
    let indeterminate = || Answered {
        at,
        results: q
            .data_categories
            .iter()
            .map(|c| Decided {
                data_category: c.clone(),
                decision: Decision::Indeterminate,
                reason: None,
                deciding: None,
            })
            .collect(),
    };
    let question = Question {
        holder: q.holder,
        consulter: q.consulter,
        at,
    };
    // Only the answers that name this holder and this consulter can decide; with an unknown
    // organisation type none can (the decision denies), so nothing is read.
    let read = match Sides::of(&state.catalogue, &question) {
        Some(sides) => state.store.answers_between(q.bsn, &sides).await,
        None => Ok(Vec::new()),
    };
    let answers = match read {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, channel = via.channel, "closed question: reading the profile failed; answering Indeterminate");
            metrics::counter!("otv_closed_question_errors_total", "channel" => via.channel)
                .increment(1);
            return indeterminate();
        }
    };
    let outcomes = decide(
        &state.catalogue,
        state.policy,
        &answers,
        &question,
        q.data_categories,
    );
    let channel = via.channel;
    let event = audit_event(state, q, via, &outcomes);
    if let Err(e) = state.store.audit_check(event).await {
        tracing::error!(error = %e, channel, "closed question: the audit record could not be written; answering Indeterminate");
        metrics::counter!("otv_closed_question_errors_total", "channel" => channel).increment(1);
        return indeterminate();
    }
    for o in &outcomes {
        metrics::counter!("otv_closed_question_decisions_total", "decision" => o.effect.as_str(), "reason" => o.reason.code(), "channel" => channel)
            .increment(1);
    }
    Answered {
        at,
        results: outcomes
            .into_iter()
            .map(|o| Decided {
                data_category: o.data_category,
                decision: Decision::from(o.effect),
                reason: Some(o.reason),
                deciding: o.deciding.cloned(),
            })
            .collect(),
    }
}

/// The NEN 7513 record of one closed question: who asked (professional, role, mandated
/// assistant, organisation), about whom (pseudonym), through which interface, what was decided
/// per data category and by which answer.
fn audit_event(
    state: &AppState,
    q: &Asked<'_>,
    via: Via<'_>,
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
    let mut details = json!({
        "connector": via.connector,
        "holder_type": q.holder.organisation_type,
        "consulter": { "ura": q.consulter.ura, "organisation_type": q.consulter.organisation_type },
        "purpose": q.purpose.as_str(),
        "catalogue_version": state.catalogue.version(),
        "policy": state.policy,
        "results": results,
    });
    if let Some(id) = via.message_id {
        details["message_id"] = json!(id);
    }
    AuditEvent {
        at: state.clock.now(),
        event: "closed-question".into(),
        patient: Some(state.store.patient_reference(q.bsn)),
        actor: format!("uzi:{} role:{}", q.professional, q.role),
        organisation: Some(q.holder.ura.to_string()),
        mandated: q.mandated.map(ToString::to_string),
        request_id: via.request_id,
        decision: Some(join(&|o| o.effect.as_str())),
        reason: Some(join(&|o| o.reason.code())),
        emergency,
        channel: Some(via.channel.into()),
        details,
    }
}
