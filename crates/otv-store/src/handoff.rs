//! Hand-offs (overdrachten, PRODUCT.md §8): the one-time links with which a provider's system
//! opens the portal for one patient, in assisted mode.
//!
//! Only the SHA-256 of a link's token is stored: a copy of the table opens nothing. A hand-off
//! works once and until `expires_at`; taking it ([`Backend::take_hand_off`](crate::Backend))
//! marks it used and binds it to the portal session it starts in one statement, so of two
//! browsers opening the same link at the same moment only one gets a session. The session's
//! assisted context (provider, professional, mode) is read back from the hand-off by the
//! session's token hash.

use chrono::{DateTime, Utc};
use otv_core::{Bsn, RoleCode, Ura, UziNumber};

/// Hand-offs that expired longer ago than this are removed when a new one is made (their
/// sessions ended long before: a session lives at most its idle timeout after its last use).
pub const KEEP_EXPIRED_HOURS: i64 = 24;

/// A hand-off to store.
#[derive(Debug, Clone)]
pub struct NewHandOff<'a> {
    /// SHA-256 of the link's token (the token itself is never stored).
    pub token_sha256: [u8; 32],
    /// The patient.
    pub bsn: &'a Bsn,
    /// The provider organisation that acts.
    pub ura: &'a Ura,
    /// The professional's UZI number.
    pub uzi: &'a UziNumber,
    /// The professional's role.
    pub role: &'a RoleCode,
    /// A mandated assistant acting for the professional.
    pub mandated: Option<&'a UziNumber>,
    /// The mode's code (`samen-naar-mijnmitz`, `dossierhoudersknop`, `raadplegersknop`).
    pub mode: &'a str,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Until when it can be opened (exclusive).
    pub expires_at: DateTime<Utc>,
}

/// A stored hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOff {
    /// Its id (audit records name it).
    pub id: uuid::Uuid,
    /// The patient.
    pub bsn: Bsn,
    /// The provider organisation that acts.
    pub ura: Ura,
    /// The professional's UZI number.
    pub uzi: UziNumber,
    /// The professional's role.
    pub role: RoleCode,
    /// A mandated assistant acting for the professional.
    pub mandated: Option<UziNumber>,
    /// The mode's code.
    pub mode: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Until when it could be opened.
    pub expires_at: DateTime<Utc>,
    /// When it was opened (taken), if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// Reads the stored identifiers back.
pub(crate) struct HandOffCols {
    pub id: uuid::Uuid,
    pub bsn: Bsn,
    pub ura: String,
    pub uzi: String,
    pub role: String,
    pub mandated: Option<String>,
    pub mode: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

impl HandOffCols {
    pub(crate) fn into_hand_off(self) -> crate::Result<HandOff> {
        let bad = |c: &str| crate::StoreError::Corrupt(format!("hand_offs.{c}"));
        Ok(HandOff {
            id: self.id,
            bsn: self.bsn,
            ura: Ura::parse(&self.ura).map_err(|_| bad("ura"))?,
            uzi: UziNumber::parse(&self.uzi).map_err(|_| bad("uzi"))?,
            role: RoleCode::parse(&self.role).map_err(|_| bad("role"))?,
            mandated: self
                .mandated
                .as_deref()
                .map(UziNumber::parse)
                .transpose()
                .map_err(|_| bad("mandated"))?,
            mode: self.mode,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
        })
    }
}
