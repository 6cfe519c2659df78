//! The raadplegersknop (PRODUCT.md §8): an emergency consent, a temporary permit for one
//! consulting provider to see the patient's data in an emergency.
//!
//! [`record`] is the one way to record it, used by the direct API (`assisted/api.rs`) and by
//! the assisted portal. It records, in one `record_answers` call (answers, one audit record
//! with the emergency flag, the `profile-changed` outbox row that notifies the citizen at
//! once), one answer per holder category of the catalogue for data category GGC002 (which
//! covers its subcategories) with the consulting provider's URA as individual consulter:
//! permit, state active, valid from now until now + [`MAX_DURATION`] (the decision reads
//! `valid_from ≤ t < valid_until`, so at exactly now + 72 h it no longer counts), channel
//! `raadplegersknop`, recorded by the professional.
//!
//! A key for which the consulter already has a lasting permit in force (an emergency consent
//! the citizen confirmed, or the citizen's own yes for this provider) is left alone: an
//! emergency consent never shortens a permit to 72 hours. When every key has one, nothing is
//! recorded (`keys` is empty) and the attempt is audited all the same.
//!
//! It is refused, and the refusal audited, when the citizen chose to refuse emergency
//! consents ([`super::allowed`]). The enrolment token is the caller's to verify first.
//!
//! Afterwards the citizen can confirm the emergency consent in the portal (it becomes a normal
//! answer without an end) or withdraw it (`portal/emergency.rs`).

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use otv_core::{Answer, AnswerKey, AnswerState, Bsn, DataCategory, Effect, Party, Provenance};
use otv_store::AuditEvent;

use super::{Mode, Professional, Refusal, allowed};
use crate::AppState;

/// The longest an emergency consent lasts (PRODUCT.md §8: at most 72 hours).
pub const MAX_DURATION: Duration = Duration::from_secs(72 * 3600);
/// The data category an emergency consent is for: all medical data (GGC002 and below).
pub const DATA_CATEGORY: &str = "GGC002";
/// The audit event of a recorded emergency consent.
pub const EVENT: &str = "emergency-consent";
/// The audit event of a refused one.
pub const EVENT_REFUSED: &str = "emergency-consent-refused";

/// A recorded emergency consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// From when it counts.
    pub valid_from: DateTime<Utc>,
    /// Until just before when it counts.
    pub valid_until: DateTime<Utc>,
    /// The keys recorded (every holder category × GGC002 × the consulter, but those with a
    /// lasting permit already).
    pub keys: Vec<AnswerKey>,
    /// The change's audit sequence number (its receipt, `/bewijs/<seq>`); when nothing was
    /// recorded (`keys` empty), the sequence number of the attempt's audit record.
    pub receipt_seq: i64,
}

/// Why no emergency consent was recorded.
#[derive(Debug, thiserror::Error)]
pub enum EmergencyError {
    /// The citizen's settings refuse it (the refusal is audited).
    #[error("{0}")]
    Refused(Refusal),
    /// otv failed (storage); nothing was recorded.
    #[error("otv could not record the emergency consent; nothing was recorded")]
    Unavailable,
}

/// Details of an audit event about an emergency consent: who, where, through what.
pub fn audit_event(
    state: &AppState,
    bsn: &Bsn,
    professional: &Professional,
    request_id: Option<&str>,
    event: &str,
) -> AuditEvent {
    AuditEvent {
        at: state.clock.now(),
        event: event.to_owned(),
        patient: Some(state.store.patient_reference(bsn)),
        actor: super::handoff::professional_actor(professional),
        organisation: Some(professional.ura.to_string()),
        mandated: professional.mandated.as_ref().map(ToString::to_string),
        request_id: request_id.map(str::to_owned),
        emergency: true,
        channel: Some(Mode::Raadplegersknop.as_str().to_owned()),
        details: serde_json::json!({ "consulter": professional.ura }),
        ..AuditEvent::default()
    }
}

/// Records an emergency consent for `professional.ura` as consulter (every holder category ×
/// GGC002, valid from now to now + 72 h), channel raadplegersknop, audit emergency = true.
/// Checks `allowed(.., Raadplegersknop)`; a refusal is audited.
pub async fn record(
    state: &AppState,
    bsn: &Bsn,
    professional: &Professional,
    request_id: Option<&str>,
) -> Result<Recorded, EmergencyError> {
    let settings = state.store.citizen_settings(bsn).await.map_err(|e| {
        tracing::error!(error = %e, "emergency consent: reading the citizen's settings failed");
        EmergencyError::Unavailable
    })?;
    if let Err(refusal) = allowed(&settings, Mode::Raadplegersknop) {
        let mut event = audit_event(state, bsn, professional, request_id, EVENT_REFUSED);
        event.decision = Some("refused".into());
        event.reason = Some(refusal.code().into());
        state.store.audit(&event).await.map_err(|e| {
            tracing::error!(error = %e, "the audit record of a refused emergency consent could not be written");
            EmergencyError::Unavailable
        })?;
        return Err(EmergencyError::Refused(refusal));
    }
    // Whole seconds: what is stored, answered and shown to the citizen is the same moment.
    // Whether a lasting permit is in force is asked at the exact moment, though: one given
    // earlier within this second has not begun at the rounded-down moment.
    let exact = state.clock.now();
    let now = exact.trunc_subsecs(0);
    let valid_until = now + chrono::Duration::from_std(MAX_DURATION).expect("72 hours");
    let data_category = DataCategory::parse(DATA_CATEGORY).expect("GGC002 is a data category");
    let provenance = Provenance {
        recorded_at: now,
        channel: Mode::Raadplegersknop.channel(),
        actor: professional.actor(),
        catalogue_version: state.catalogue.version().to_owned(),
    };
    let profile = state.store.profile(bsn).await.map_err(|e| {
        tracing::error!(error = %e, "emergency consent: reading the profile failed");
        EmergencyError::Unavailable
    })?;
    let lasting_permit = |key: &AnswerKey| {
        profile.iter().any(|a| {
            &a.key == key
                && a.effect == Effect::Permit
                && a.valid_until.is_none()
                && a.in_force_at(exact)
        })
    };
    let answers: Vec<Answer> = state
        .catalogue
        .holder_categories()
        .iter()
        .map(|h| Answer {
            key: AnswerKey {
                holder: Party::Category(h.code.clone()),
                data_category: data_category.clone(),
                consulter: Party::Provider(professional.ura.clone()),
            },
            effect: Effect::Permit,
            valid_from: now,
            valid_until: Some(valid_until),
            state: AnswerState::Active,
            provenance: provenance.clone(),
        })
        .filter(|a| !lasting_permit(&a.key))
        .collect();
    let mut event = audit_event(state, bsn, professional, request_id, EVENT);
    event.decision = Some("recorded".into());
    event.details = serde_json::json!({
        "consulter": professional.ura,
        "answers": answers.len(),
        "valid_until": valid_until.to_rfc3339(),
    });
    let stored = if answers.is_empty() {
        event.decision = Some("already-permitted".into());
        state.store.audit(&event).await
    } else {
        state.store.record_answers(bsn, &answers, &event).await
    };
    let receipt_seq = stored.map_err(|e| {
        tracing::error!(error = %e, "emergency consent: recording failed");
        EmergencyError::Unavailable
    })?;
    Ok(Recorded {
        valid_from: now,
        valid_until,
        keys: answers.into_iter().map(|a| a.key).collect(),
        receipt_seq,
    })
}
