//! Citizen e-mail (PRODUCT.md §11): what the mailer needs from storage, and the bookkeeping of
//! the consent-check notices.
//!
//! Consent checks are audit records (`closed-question`, `open-question`) written on the
//! decision's hot path; nothing is added there. Instead a scan reads the audit log after a
//! stored cursor ([`crate::Backend::scan_consent_checks`]) and, for citizens who want to hear
//! about checks, queues one `mail-consent-check` outbox row per citizen and scan (immediately)
//! or adds the checks to the citizen's daily digest, which
//! [`crate::Backend::take_check_digests`] turns into one `mail-check-digest` row per citizen
//! once a day. Outbox payloads hold times and counts, never a BSN.
//!
//! Must not: decide whether a mail is sent (the mailer does, from the settings at sending
//! time) or hold a BSN.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CheckNotice;

/// Outbox kind: someone else changed the answers (written by the delivery fan-out).
pub const MAIL_PROFILE_CHANGED: &str = "mail-profile-changed";
/// Outbox kind: checks of the consent, for a citizen who chose "immediately".
pub const MAIL_CONSENT_CHECK: &str = "mail-consent-check";
/// Outbox kind: the daily digest of checks.
pub const MAIL_CHECK_DIGEST: &str = "mail-check-digest";
/// Outbox kind: an emergency consent ends soon.
pub const MAIL_EMERGENCY_EXPIRY: &str = "mail-emergency-expiry";

/// How to reach a citizen by e-mail, and what they want to hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailContact {
    /// The address, verified or not.
    pub email: Option<String>,
    /// Whether the address is verified (only a verified address gets mail other than the link).
    pub verified: bool,
    /// E-mail when someone else changes the answers.
    pub notify_changes: bool,
    /// E-mail about checks of the consent.
    pub notify_checks: CheckNotice,
}

/// One consent check as a notice states it: when, and whether an emergency consent decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckNote {
    /// The audit record.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Whether an emergency consent decided it.
    #[serde(default)]
    pub emergency: bool,
}

/// The payload of a `mail-consent-check` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckMail {
    /// The checks, oldest first (at most [`MAX_CHECKS_PER_MAIL`]).
    pub checks: Vec<CheckNote>,
}

/// The payload of a `mail-check-digest` row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestMail {
    /// The first check's time.
    pub from: DateTime<Utc>,
    /// The last check's time.
    pub until: DateTime<Utc>,
    /// How many checks.
    pub checks: i64,
    /// How many of them an emergency consent decided.
    pub emergency: i64,
}

/// The most checks one immediate mail lists; more in one scan make more rows.
pub const MAX_CHECKS_PER_MAIL: usize = 50;

/// What one scan of the audit log did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckScan {
    /// The cursor after the scan (the last audit record looked at).
    pub cursor: i64,
    /// Whether the scan reached the head of the audit log (else call again).
    pub caught_up: bool,
    /// Consent checks found for citizens who want notices.
    pub checks: u64,
    /// `mail-consent-check` rows queued.
    pub queued: u64,
}

/// One consent-check audit record as the scan reads it.
pub(crate) struct ScannedCheck {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: String,
    pub patient: Option<String>,
    pub organisation: Option<String>,
    pub emergency: bool,
    pub details: String,
}

impl ScannedCheck {
    /// The check as a notice states it. A record names the deciding answer per result; an
    /// emergency consent decided the check if any result's deciding answer was one.
    pub(crate) fn note(&self) -> CheckNote {
        let emergency = crate::citizen::checks_of(&crate::citizen::CheckRow {
            seq: self.seq,
            at: self.at,
            event: self.event.clone(),
            organisation: self.organisation.clone(),
            emergency: self.emergency,
            details: self.details.clone(),
        })
        .iter()
        .any(|c| c.emergency);
        CheckNote {
            seq: self.seq,
            at: self.at,
            emergency,
        }
    }

    /// The citizen's pseudonym (bytes) from the audit record's patient reference (hex).
    pub(crate) fn pseudonym(&self) -> Option<Vec<u8>> {
        self.patient
            .as_deref()
            .and_then(crate::crypto::pseudonym_of_reference)
    }
}

/// The outbox id of a mail that must be queued at most once (`key` names it, e.g. the
/// reminder of the emergency consent of one change): queuing it again inserts nothing.
pub(crate) fn once_id(kind: &str, citizen: uuid::Uuid, key: &str) -> uuid::Uuid {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{kind}\0{citizen}\0{key}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Groups scanned checks per citizen in scan order, each group cut into mails of at most
/// [`MAX_CHECKS_PER_MAIL`].
pub(crate) fn mails_per_citizen(
    checks: Vec<(uuid::Uuid, CheckNote)>,
) -> Vec<(uuid::Uuid, CheckMail)> {
    let mut order: Vec<uuid::Uuid> = Vec::new();
    let mut by: std::collections::HashMap<uuid::Uuid, Vec<CheckNote>> =
        std::collections::HashMap::new();
    for (c, note) in checks {
        by.entry(c)
            .or_insert_with(|| {
                order.push(c);
                Vec::new()
            })
            .push(note);
    }
    let mut out = Vec::new();
    for c in order {
        let notes = by.remove(&c).unwrap_or_default();
        for chunk in notes.chunks(MAX_CHECKS_PER_MAIL) {
            out.push((
                c,
                CheckMail {
                    checks: chunk.to_vec(),
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_queued_once_has_one_id_per_key() {
        let c = uuid::Uuid::now_v7();
        assert_eq!(once_id("k", c, "1"), once_id("k", c, "1"));
        assert_ne!(once_id("k", c, "1"), once_id("k", c, "2"));
        assert_ne!(once_id("k", c, "1"), once_id("j", c, "1"));
    }

    #[test]
    fn checks_are_mailed_per_citizen_at_most_fifty_at_a_time() {
        let (a, b) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let note = |seq| CheckNote {
            seq,
            at: DateTime::from_timestamp(seq, 0).unwrap(),
            emergency: false,
        };
        let mut checks = vec![(a, note(1)), (b, note(2))];
        checks.extend((3..=60).map(|s| (a, note(s))));
        let mails = mails_per_citizen(checks);
        assert_eq!(mails.len(), 3);
        assert_eq!((mails[0].0, mails[0].1.checks.len()), (a, 50));
        assert_eq!((mails[1].0, mails[1].1.checks.len()), (a, 9));
        assert_eq!((mails[2].0, mails[2].1.checks.len()), (b, 1));
    }
}
