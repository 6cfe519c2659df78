//! Minors and their parents or guardians (PRODUCT.md §4, §10): the pairing code (koppelcode) a
//! child under 16 gives a parent or guardian, and the link between them that using it makes.
//!
//! A code is stored only as a keyed tag (`Keys::secret_tag` with [`CODE_PURPOSE`]), works once
//! and until it expires; a child has at most one unused code. Wrong codes are counted per person
//! who typed them (by pseudonym) and, after [`PairingLimit::max_failures`] within
//! [`PairingLimit::window`], further tries are refused until the window has passed. Every
//! attempt is audited in the transaction that decides it, except the repeats of a refusal
//! during one pause (the first is audited), so that hammering cannot fill the audit chain.
//!
//! Confirming or declining the child's answers is not here: that is `Backend::record_answers`,
//! like every other change of a profile.
//!
//! Must not: hold or return a code in the clear, or a BSN in anything but [`LinkedChild::bsn`]
//! (which the portal needs to read and change the child's profile, and never shows).

use chrono::{DateTime, NaiveDate, Utc};
use otv_core::Bsn;

/// Separates the tags of pairing codes from every other keyed tag.
pub(crate) const CODE_PURPOSE: &str = "otv-guardian-pairing-code-v1";

/// How many wrong codes a person may type before a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingLimit {
    /// Wrong codes allowed within `window`; the next try is refused.
    pub max_failures: u32,
    /// The period over which wrong codes count.
    pub window: chrono::Duration,
}

impl Default for PairingLimit {
    /// 5 wrong codes per 15 minutes.
    fn default() -> Self {
        PairingLimit {
            max_failures: 5,
            window: chrono::Duration::minutes(15),
        }
    }
}

/// What typing a pairing code did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The code was right: it is used now, and the parent or guardian is linked to the child
    /// (the link existed already if they had paired before).
    Paired {
        /// The link's id (what the portal's URLs carry).
        link: uuid::Uuid,
    },
    /// No such code (counts as a wrong try).
    Unknown,
    /// The code has expired (counts as a wrong try).
    Expired,
    /// The code was used before (counts as a wrong try).
    Used,
    /// The child's own code, typed by the child (counts as a wrong try).
    OwnCode,
    /// Too many wrong codes: nothing was checked; try again after `until`.
    Blocked {
        /// When the oldest counted wrong try leaves the window.
        until: DateTime<Utc>,
    },
}

impl Redemption {
    /// The audit decision: `paired`, `unknown-code`, `expired`, `used`, `own-code`, `blocked`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Redemption::Paired { .. } => "paired",
            Redemption::Unknown => "unknown-code",
            Redemption::Expired => "expired",
            Redemption::Used => "used",
            Redemption::OwnCode => "own-code",
            Redemption::Blocked { .. } => "blocked",
        }
    }

    /// Whether this counts as a wrong try.
    pub(crate) fn is_failure(&self) -> bool {
        matches!(
            self,
            Redemption::Unknown | Redemption::Expired | Redemption::Used | Redemption::OwnCode
        )
    }
}

/// The child's current pairing code, as the child's page shows it (never the code itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingCodeStatus {
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Until when it works.
    pub expires_at: DateTime<Utc>,
}

/// A child a parent or guardian is linked to.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkedChild {
    /// The link's id.
    pub link: uuid::Uuid,
    /// The child's BSN, decrypted: to read and change the child's profile. Never shown.
    pub bsn: Bsn,
    /// The child's name, as the identity provider gave it.
    pub name: Option<String>,
    /// The child's birth date, if known.
    pub birth_date: Option<NaiveDate>,
    /// When the link was made.
    pub linked_at: DateTime<Utc>,
}

impl std::fmt::Debug for LinkedChild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedChild")
            .field("link", &self.link)
            .field("linked_at", &self.linked_at)
            .finish_non_exhaustive()
    }
}

/// The audit event of an attempt: the outcome as its decision, the child's pseudonym (when the
/// code named a child) as its patient, and the link in its details.
pub(crate) fn attempt_event(
    audit: &crate::AuditEvent,
    outcome: &Redemption,
    child_reference: Option<String>,
) -> crate::AuditEvent {
    let mut event = audit.clone();
    event.decision = Some(outcome.as_str().to_owned());
    if child_reference.is_some() {
        event.patient = child_reference;
    }
    let extra = match outcome {
        Redemption::Paired { link } => serde_json::json!({ "link": link }),
        Redemption::Blocked { until } => serde_json::json!({ "blocked_until": until }),
        _ => serde_json::json!({}),
    };
    crate::citizen::merge_details(&mut event, extra);
    event
}
