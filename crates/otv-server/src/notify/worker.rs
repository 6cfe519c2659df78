//! The delivery workers: N tasks per node (`[notify] workers`) claim outbox rows through the
//! database and dispatch them by kind:
//! - `profile-changed`, `profile-deleted` → the fan-out: one `fhir-notification` row per
//!   affected active subscription (a categorical answer: every subscription whose holder's
//!   organisation type maps to that category; an individual answer: that URA's subscriptions)
//!   plus, for a change, one `mail-profile-changed` row, in one transaction with marking the
//!   change done. A deletion tells the holders that had answers their view now (everything
//!   no under opt-in: the answers are gone).
//! - `fhir-notification` → `resthook::deliver`;
//! - `mail-*`, `email-verification` → `mail::deliver`.
//!
//! Every outcome of a notification attempt is audited (event `notification`, the holder's URA
//! as responsible organisation, the patient's pseudonym, never a BSN).
//!
//! A claimed batch holds at most one row per ordering key (the store's rule), so its rows are
//! delivered concurrently without breaking the order per subscription.

use std::time::Duration;

use chrono::{DateTime, Utc};
use otv_core::{AnswerKey, Party};
use otv_store::{AuditEvent, Failure, MAIL_PROFILE_CHANGED, NewOutboxRow, OutboxRow};
use serde::Deserialize;
use tokio::sync::watch;
use uuid::Uuid;

use super::mail::{self, MailError};
use super::resthook::{
    self, DeliveryError, FHIR_NOTIFICATION, NotificationPayload, Outcome, Target,
};
use super::view::holder_view;
use crate::AppState;

/// How long a row waits when its channel is not configured (mail, rest-hook client).
const NOT_CONFIGURED_RETRY: Duration = Duration::from_secs(60);

/// Starts the configured number of workers; they stop when `stop` changes.
pub fn spawn(state: &AppState, stop: watch::Receiver<()>) -> Vec<tokio::task::JoinHandle<()>> {
    let node = Uuid::now_v7();
    (0..state.outbox.settings.workers)
        .map(|i| {
            let name = format!("{node}/{i}");
            tokio::spawn(run(state.clone(), name, stop.clone()))
        })
        .collect()
}

/// One worker: claims and delivers until nothing is due, then waits for a wake-up, the poll
/// interval or the stop signal.
pub async fn run(state: AppState, worker: String, mut stop: watch::Receiver<()>) {
    let settings = &state.outbox.settings;
    loop {
        if stop.has_changed().unwrap_or(true) {
            return;
        }
        let now = state.clock.now();
        match state
            .store
            .claim_outbox(&worker, now, settings.lease, settings.batch)
            .await
        {
            Ok(rows) if !rows.is_empty() => {
                futures_util::future::join_all(
                    rows.iter().map(|row| process(&state, &worker, row)),
                )
                .await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox: claiming failed"),
        }
        tokio::select! {
            () = state.outbox.wake.notified() => {}
            () = tokio::time::sleep(settings.poll_interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Delivers one claimed row and records the outcome.
pub async fn process(state: &AppState, worker: &str, row: &OutboxRow) {
    let kind = row.kind.as_str();
    let result = match kind {
        otv_store::PROFILE_DELETED | "profile-changed" => fan_out(state, worker, row).await,
        FHIR_NOTIFICATION => notify(state, worker, row).await,
        k if mail::handles(k) => {
            match mail::deliver(state, row.id, row.citizen_id, kind, &row.payload).await {
                Ok(_) => done(state, worker, row).await,
                Err(MailError::NotConfigured) => release(state, worker, row).await,
                Err(MailError::Transient(e)) => fail(state, worker, row, &e).await.map(|_| ()),
                Err(MailError::Permanent(e)) => park(state, worker, row, &e).await,
            }
        }
        other => {
            park(
                state,
                worker,
                row,
                &format!("no delivery for outbox kind `{other}`"),
            )
            .await
        }
    };
    metrics::histogram!("otv_outbox_commit_to_attempt_seconds", "kind" => kind.to_owned())
        .record(attempt_delay(row));
    if let Err(e) = result {
        tracing::warn!(id = %row.id, kind, error = %e, "outbox: recording the outcome failed");
    }
}

fn attempt_delay(row: &OutboxRow) -> f64 {
    let first = row.first_attempt_at.unwrap_or(row.created_at);
    (first - row.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6
}

type Recorded = Result<(), otv_store::StoreError>;

async fn done(state: &AppState, worker: &str, row: &OutboxRow) -> Recorded {
    state
        .store
        .complete_outbox(row.id, worker, state.clock.now())
        .await
        .map(|_| ())
}

async fn release(state: &AppState, worker: &str, row: &OutboxRow) -> Recorded {
    let later = state.clock.now()
        + chrono::Duration::from_std(NOT_CONFIGURED_RETRY).expect("a minute fits");
    state
        .store
        .release_outbox(row.id, worker, later)
        .await
        .map(|_| ())
}

async fn fail(
    state: &AppState,
    worker: &str,
    row: &OutboxRow,
    error: &str,
) -> Result<Failure, otv_store::StoreError> {
    let failure = state
        .store
        .fail_outbox(row.id, worker, error, state.clock.now())
        .await?;
    if failure == Failure::Dead {
        tracing::warn!(id = %row.id, kind = %row.kind, error, "outbox: row parked as dead after its back-off");
    }
    Ok(failure)
}

async fn park(state: &AppState, worker: &str, row: &OutboxRow, error: &str) -> Recorded {
    tracing::warn!(id = %row.id, kind = %row.kind, error, "outbox: row parked as dead");
    state
        .store
        .park_outbox(row.id, worker, error, state.clock.now())
        .await
        .map(|_| ())
}

#[derive(Deserialize)]
struct Change {
    changed: Vec<AnswerKey>,
    audit_seq: i64,
}

/// The fan-out of a change (or a deletion) into notifications and the citizen's mail row.
async fn fan_out(state: &AppState, worker: &str, row: &OutboxRow) -> Recorded {
    let Ok(change) = serde_json::from_str::<Change>(&row.payload) else {
        return park(
            state,
            worker,
            row,
            &format!("the payload of a {} row cannot be read", row.kind),
        )
        .await;
    };
    let targets = state.store.notify_targets(row.citizen_id).await?;
    let answers = match state.store.citizen_bsn(row.citizen_id).await? {
        Some(bsn) if row.kind != otv_store::PROFILE_DELETED => state.store.profile(&bsn).await?,
        _ => Vec::new(),
    };
    let now = state.clock.now();
    let catalogue = &state.catalogue;
    let mut rows = Vec::new();
    for t in &targets {
        let s = &t.subscription;
        if !affects(catalogue, &change.changed, &s.holder_ura, &s.holder_type) {
            continue;
        }
        let groups = holder_view(
            catalogue,
            state.policy,
            &answers,
            &s.holder_ura,
            &s.holder_type,
            now,
        );
        let payload = NotificationPayload::new(
            t.id,
            change.audit_seq,
            row.created_at,
            catalogue.version(),
            &groups,
        );
        rows.push(NewOutboxRow {
            id: payload.bundle_id(),
            kind: FHIR_NOTIFICATION.to_owned(),
            payload: serde_json::to_string(&payload).expect("a payload serializes"),
            ordering_key: Some(t.id.to_string()),
        });
    }
    if row.kind != otv_store::PROFILE_DELETED {
        rows.push(NewOutboxRow {
            id: derived_row_id(row.id, MAIL_PROFILE_CHANGED),
            kind: MAIL_PROFILE_CHANGED.to_owned(),
            payload: row.payload.clone(),
            ordering_key: None,
        });
    }
    let written = state
        .store
        .fan_out_outbox(row.id, worker, &rows, now)
        .await?;
    if written {
        tracing::debug!(id = %row.id, notifications = rows.len(), "outbox: change fanned out");
    }
    Ok(())
}

/// Whether a change of the answers with `changed` keys concerns the holder (URA, organisation
/// type): a categorical answer concerns every holder whose type maps to that category, an
/// individual answer only that URA.
pub fn affects(
    catalogue: &otv_core::Catalogue,
    changed: &[AnswerKey],
    ura: &otv_core::Ura,
    org_type: &otv_core::OrgType,
) -> bool {
    let category = catalogue.holder_category_of(org_type).map(|h| &h.code);
    changed.iter().any(|k| match &k.holder {
        Party::Provider(u) => u == ura,
        Party::Category(code) => Some(code) == category,
    })
}

/// A row id derived from another row's id (a fan-out done twice writes the row once).
fn derived_row_id(source: Uuid, what: &str) -> Uuid {
    let hash = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("otv-outbox:{source}:{what}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// One notification to one subscription, audited.
async fn notify(state: &AppState, worker: &str, row: &OutboxRow) -> Recorded {
    let mut target = Target::default();
    let outcome = resthook::deliver(state, row.citizen_id, &row.payload, &mut target).await;
    let (decision, reason) = match &outcome {
        Ok(Outcome::Delivered { status }) => {
            done(state, worker, row).await?;
            (
                "delivered".to_owned(),
                format!("the receiver answered {status}"),
            )
        }
        Ok(Outcome::Skipped(why)) => {
            done(state, worker, row).await?;
            ("skipped".to_owned(), (*why).to_owned())
        }
        Err(DeliveryError::NotConfigured) => {
            release(state, worker, row).await?;
            (
                "waiting".to_owned(),
                DeliveryError::NotConfigured.to_string(),
            )
        }
        Err(DeliveryError::Transient(e)) => match fail(state, worker, row, e).await? {
            Failure::RetryAt(at) => (
                "retry".to_owned(),
                format!("{e}; next attempt at {}", rfc3339(at)),
            ),
            Failure::Dead => ("dead".to_owned(), format!("{e}; back-off used up")),
            Failure::LeaseLost => ("lease-lost".to_owned(), e.clone()),
        },
        Err(DeliveryError::Permanent(e)) => {
            park(state, worker, row, e).await?;
            ("dead".to_owned(), e.clone())
        }
    };
    metrics::counter!("otv_notifications_total", "outcome" => decision.clone()).increment(1);
    let event = AuditEvent {
        at: state.clock.now(),
        event: "notification".into(),
        patient: target.patient.clone(),
        actor: "otv".into(),
        organisation: target.holder_ura.clone(),
        request_id: target.bundle_id.map(|id| id.to_string()),
        decision: Some(decision),
        reason: Some(reason),
        channel: Some("rest-hook".into()),
        details: serde_json::json!({
            "outbox_id": row.id,
            "bundle_id": target.bundle_id,
            "subscription": target.subscription,
            "attempt": row.attempts,
        }),
        ..AuditEvent::default()
    };
    state.store.audit(&event).await?;
    Ok(())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use otv_core::{Catalogue, CategoryCode, DataCategory, OrgType, Ura};

    use super::*;

    fn key(holder: Party) -> AnswerKey {
        AnswerKey {
            holder,
            data_category: DataCategory::parse("GGC002").unwrap(),
            consulter: Party::Category(CategoryCode::parse("RPZAC001").unwrap()),
        }
    }

    #[test]
    fn a_categorical_answer_reaches_every_holder_of_the_category_an_individual_one_only_that_holder()
     {
        let catalogue = Catalogue::default_catalogue();
        let (z3, n6, j8) = (
            OrgType::parse("Z3").unwrap(),
            OrgType::parse("N6").unwrap(),
            OrgType::parse("J8").unwrap(),
        );
        let gp_category = catalogue.holder_category_of(&z3).unwrap().code.clone();
        let (a, b) = (
            Ura::parse("00000001").unwrap(),
            Ura::parse("00000002").unwrap(),
        );
        let categorical = [key(Party::Category(gp_category))];
        assert!(affects(&catalogue, &categorical, &a, &z3));
        assert!(
            affects(&catalogue, &categorical, &b, &n6),
            "a GP post is in the GP category"
        );
        assert!(
            !affects(&catalogue, &categorical, &a, &j8),
            "a pharmacy is not"
        );
        let individual = [key(Party::Provider(a.clone()))];
        assert!(affects(&catalogue, &individual, &a, &z3));
        assert!(
            !affects(&catalogue, &individual, &b, &z3),
            "another GP is not"
        );
    }

    #[test]
    fn a_fan_out_done_twice_derives_the_same_mail_row() {
        let id = Uuid::now_v7();
        assert_eq!(derived_row_id(id, "m"), derived_row_id(id, "m"));
        assert_ne!(derived_row_id(id, "m"), derived_row_id(Uuid::now_v7(), "m"));
    }
}
