//! The reminder before an emergency consent ends (PRODUCT.md §8, §11).
//!
//! When the mail about a new emergency consent is delivered, a `mail-emergency-expiry` row is
//! queued for `until − expiry_notice` (12 hours by default), at most once per change (its
//! outbox id derives from the change, so a retried delivery queues nothing more). When that
//! row is due, [`still_pending`] checks that the emergency consent is still in force as given:
//! a citizen who confirmed or withdrew it, or a consent already ended, gets no reminder. A
//! consent that ends within the notice period gets none either: the first mail already says
//! when it stops.

use chrono::{DateTime, Utc};
use otv_core::{AnswerState, Channel};
use otv_store::{ChangeRecord, MAIL_EMERGENCY_EXPIRY};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{MailError, Mailer, store_failed};
use crate::AppState;

/// The payload of a `mail-emergency-expiry` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    /// The change (audit record) that recorded the emergency consent.
    pub audit_seq: i64,
    /// When it was given.
    pub given: DateTime<Utc>,
    /// When it stops.
    pub until: DateTime<Utc>,
}

/// Queues the reminder of the emergency consent recorded by `record`, ending at `until`.
pub(super) async fn schedule(
    state: &AppState,
    mailer: &Mailer,
    citizen: Uuid,
    record: &ChangeRecord,
    until: DateTime<Utc>,
) -> Result<(), MailError> {
    let at = until - mailer.settings.expiry_notice;
    if at <= state.clock.now() {
        return Ok(());
    }
    let reminder = Reminder {
        audit_seq: record.seq,
        given: record.at,
        until,
    };
    let payload = serde_json::to_string(&reminder).expect("a reminder serialises");
    state
        .store
        .enqueue_mail_once(
            citizen,
            MAIL_EMERGENCY_EXPIRY,
            &record.seq.to_string(),
            &payload,
            at,
        )
        .await
        .map_err(store_failed)?;
    Ok(())
}

/// Whether the emergency consent of `reminder` is still in force as given, and not over yet.
pub(super) async fn still_pending(
    state: &AppState,
    citizen: Uuid,
    reminder: &Reminder,
) -> Result<bool, MailError> {
    let now = state.clock.now();
    if reminder.until <= now {
        return Ok(false);
    }
    let Some(bsn) = state
        .store
        .citizen_bsn(citizen)
        .await
        .map_err(store_failed)?
    else {
        return Ok(false);
    };
    let profile = state.store.profile(&bsn).await.map_err(store_failed)?;
    Ok(profile.iter().any(|a| {
        a.provenance.channel == Channel::Raadplegersknop
            && a.state == AnswerState::Active
            && a.valid_until == Some(reminder.until)
            && a.in_force_at(now)
    }))
}
