//! The outbox delivery engine's storage (PRODUCT.md §11): rows written in the same transaction
//! as the change that causes them, claimed by workers on any number of nodes through the
//! database, delivered at least once, in order per ordering key, with exponential back-off for
//! at least 24 hours, then parked as dead where operators see and retry them.
//!
//! The rules shared by both backends:
//! - A row is claimable when it is `pending`, due (`available_at` has passed), no live lease
//!   holds it (`claimed_until` unset or passed: a crashed node's rows come back when their
//!   lease ends) and no earlier `pending` row has the same ordering key. Dead rows do not
//!   block the rows after them: each notification carries the holder's full current view, so
//!   a later one supersedes an earlier one.
//! - A claim sets the lease (`claimed_by`, `claimed_until`); completing, failing or fanning
//!   out a row only works for the worker that holds its lease, so a worker whose lease ran out
//!   cannot overwrite what another worker did since.
//! - The back-off schedule is [`retry_delay`], a pure function.
//!
//! Must not: hold a BSN in a payload or an error text.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::model::Subscription;

/// Outbox rows this process has written (committed or not): changes when a request queued a
/// notification, so that the server wakes a delivery worker only then (`outbox_writes`).
static WRITES: AtomicU64 = AtomicU64::new(0);

/// How many outbox rows this process has written so far, committed or not. A caller that reads
/// it before and after a piece of work, and sees it change, knows that work queued something
/// (or that concurrent work did); a change that rolled back makes a worker look once for
/// nothing.
pub fn outbox_writes() -> u64 {
    WRITES.load(Ordering::Relaxed)
}

/// Counts a row written by a backend's `enqueue`.
pub(crate) fn count_write() {
    WRITES.fetch_add(1, Ordering::Relaxed);
}

/// The state of an outbox row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// To do (possibly waiting for its next attempt).
    Pending,
    /// Delivered (or nothing was to be delivered).
    Delivered,
    /// Given up: parked until an operator retries it.
    Dead,
}

impl OutboxState {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }

    /// The state of a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        [
            OutboxState::Pending,
            OutboxState::Delivered,
            OutboxState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == code)
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    /// Its id (also the idempotency key of what it delivers).
    pub id: Uuid,
    /// The citizen it is about.
    pub citizen_id: Uuid,
    /// What to deliver, e.g. `profile-changed`, `fhir-notification`, `mail-profile-changed`.
    pub kind: String,
    /// JSON, never a BSN.
    pub payload: String,
    /// Rows with the same key are delivered one after the other, in the order written
    /// (a subscription id for a notification; `citizen:<id>` for a citizen's changes).
    pub ordering_key: Option<String>,
    /// Attempts made so far.
    pub attempts: i32,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// Due from (the next attempt).
    pub available_at: DateTime<Utc>,
    /// Its state.
    pub state: OutboxState,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the first attempt was made.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// When it was delivered.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it was parked as dead.
    pub dead_at: Option<DateTime<Utc>>,
}

/// A row to write (by the fan-out of a change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxRow {
    /// A deterministic id (so that a fan-out done twice writes each row once).
    pub id: Uuid,
    /// What to deliver.
    pub kind: String,
    /// JSON, never a BSN.
    pub payload: String,
    /// The ordering key, if the row must wait for earlier rows of the same key.
    pub ordering_key: Option<String>,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Tried again at this moment.
    RetryAt(DateTime<Utc>),
    /// The back-off is used up: parked as dead.
    Dead,
    /// This worker no longer holds the row's lease: nothing was changed.
    LeaseLost,
}

/// Counts of the outbox by state, for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutboxStatus {
    /// Rows to do, due now or later.
    pub pending: i64,
    /// Of those, the ones due now (not waiting for a back-off).
    pub due: i64,
    /// Rows held by a live lease (being delivered).
    pub claimed: i64,
    /// Rows parked as dead.
    pub dead: i64,
    /// Rows delivered.
    pub delivered: i64,
    /// When the oldest pending row was written.
    pub oldest_pending: Option<DateTime<Utc>>,
}

/// A subscription as the notifier needs it: its id, and where and how to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyTarget {
    /// The subscription's id.
    pub id: Uuid,
    /// Whether it is active (only active subscriptions are notified).
    pub active: bool,
    /// The registration.
    pub subscription: Subscription,
}

/// The first delay of the back-off.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(10);
/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(2 * 60 * 60);
/// The attempts made before a row is parked as dead. With the delays of [`retry_delay`] the
/// attempts span more than 24 hours (see the test).
pub const MAX_ATTEMPTS: i32 = 22;

/// The back-off schedule: after `attempts` failed attempts (1 after the first), the delay
/// before the next one: 10 s, 20 s, 40 s, … doubling, at most 2 h; `None` once
/// [`MAX_ATTEMPTS`] attempts failed (the row goes dead).
pub fn retry_delay(attempts: i32) -> Option<Duration> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let exponent = attempts.saturating_sub(1).clamp(0, 20) as u32;
    let delay = FIRST_RETRY_DELAY.saturating_mul(1u32 << exponent);
    Some(delay.min(MAX_RETRY_DELAY))
}

/// The ordering key of a citizen's own rows (their changes are fanned out in order).
pub fn citizen_ordering_key(citizen: Uuid) -> String {
    format!("citizen:{citizen}")
}

/// The ordering key of the kinds that are ordered per citizen, `None` for the others.
pub(crate) fn default_ordering_key(kind: &str, citizen: Uuid) -> Option<String> {
    matches!(kind, crate::codec::PROFILE_CHANGED | crate::PROFILE_DELETED)
        .then(|| citizen_ordering_key(citizen))
}

/// A [`NotifyTarget`] from a `subscriptions` row's id, status and the columns holder_ura,
/// holder_type, connector_id, source_system, gateway_system, endpoint, payload.
pub(crate) fn target_from(
    id: Uuid,
    status: &str,
    [
        ura,
        org_type,
        connector_id,
        source_system,
        gateway_system,
        endpoint,
        payload,
    ]: [String; 7],
) -> crate::Result<NotifyTarget> {
    Ok(NotifyTarget {
        id,
        active: status == "active",
        subscription: Subscription {
            holder_ura: otv_core::Ura::parse(&ura)
                .map_err(|_| crate::codec::corrupt("subscriptions.holder_ura"))?,
            holder_type: otv_core::OrgType::parse(&org_type)
                .map_err(|_| crate::codec::corrupt("subscriptions.holder_type"))?,
            connector_id,
            source_system,
            gateway_system,
            endpoint,
            payload,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_up_to_two_hours_and_lasts_at_least_a_day_before_a_row_goes_dead() {
        assert_eq!(retry_delay(1), Some(Duration::from_secs(10)));
        assert_eq!(retry_delay(2), Some(Duration::from_secs(20)));
        assert_eq!(retry_delay(3), Some(Duration::from_secs(40)));
        assert_eq!(retry_delay(MAX_ATTEMPTS - 1), Some(MAX_RETRY_DELAY));
        assert_eq!(retry_delay(MAX_ATTEMPTS), None);
        let mut total = Duration::ZERO;
        let mut previous = Duration::ZERO;
        for attempts in 1..MAX_ATTEMPTS {
            let delay = retry_delay(attempts).expect("retried before MAX_ATTEMPTS");
            assert!(delay >= previous, "the delay never shrinks");
            previous = delay;
            total += delay;
        }
        assert!(
            total >= Duration::from_secs(24 * 60 * 60),
            "attempts span {total:?}, less than 24 hours"
        );
        assert!(total < Duration::from_secs(26 * 60 * 60));
    }

    #[test]
    fn a_citizens_changes_are_ordered_per_citizen_and_mails_are_not_ordered() {
        let c = Uuid::nil();
        assert_eq!(
            default_ordering_key("profile-changed", c).as_deref(),
            Some("citizen:00000000-0000-0000-0000-000000000000")
        );
        assert!(default_ordering_key("profile-deleted", c).is_some());
        assert_eq!(default_ordering_key("mail-profile-changed", c), None);
    }
}
