//! Notices of consent checks, off the decision's hot path: a scheduled task reads the audit log
//! after a stored cursor (`Backend::scan_consent_checks`) every `check_scan_interval`, which
//! queues `mail-consent-check` rows for citizens who chose "immediately" and fills the daily
//! digests of those who chose "daily"; from `digest_hour` (Dutch time) on, once per Dutch
//! calendar day, the digests become `mail-check-digest` rows. `otv notify digest` does both
//! at once, for operators (and tests).
//!
//! Nothing here sends mail: the rows go through the outbox like every other mail, so the
//! delivery retries, and the settings are checked again when a mail is sent.

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use otv_store::{CheckScan, Store};

use crate::AppState;
use crate::portal::history::nl_local;

/// Audit records one scan transaction reads at most.
pub const SCAN_BATCH: usize = 5_000;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    /// Consent checks found for citizens who want notices.
    pub checks: u64,
    /// `mail-consent-check` rows queued.
    pub queued: u64,
    /// `mail-check-digest` rows queued.
    pub digests: u64,
}

/// Scans until the cursor reaches the head of the audit log.
pub async fn scan(store: &Store, now: DateTime<Utc>) -> Result<Round, otv_store::StoreError> {
    let mut round = Round::default();
    loop {
        let CheckScan {
            caught_up,
            checks,
            queued,
            ..
        } = store.scan_consent_checks(SCAN_BATCH, now).await?;
        round.checks += checks;
        round.queued += queued;
        if caught_up {
            return Ok(round);
        }
    }
}

/// The Dutch calendar day of `t`.
pub fn dutch_day(t: DateTime<Utc>) -> NaiveDate {
    nl_local(t).date()
}

/// Scans, then queues today's digests when `digest_hour` has passed in the Netherlands (or
/// at once with `force`: `otv notify digest`).
pub async fn round(
    store: &Store,
    now: DateTime<Utc>,
    digest_hour: u32,
    force: bool,
) -> Result<Round, otv_store::StoreError> {
    let mut round = scan(store, now).await?;
    if force || nl_local(now).hour() >= digest_hour {
        round.digests = store.take_check_digests(dutch_day(now), force, now).await?;
    }
    Ok(round)
}

/// Runs [`round`] every `check_scan_interval` until `stop` completes. Does nothing when mail
/// is not configured.
pub async fn run(state: AppState, stop: impl std::future::Future<Output = ()>) {
    let Some(mailer) = state.mail.clone() else {
        return;
    };
    let settings = mailer.settings().clone();
    let mut tick = tokio::time::interval(settings.check_scan_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => {}
        }
        match round(&state.store, state.clock.now(), settings.digest_hour, false).await {
            Ok(r) if r.checks + r.digests > 0 => {
                tracing::info!(
                    checks = r.checks,
                    queued = r.queued,
                    digests = r.digests,
                    "consent-check notices queued"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the scan for consent-check notices failed; next round retries")
            }
        }
    }
}
