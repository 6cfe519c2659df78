//! The consent profile (toestemmingsprofiel, PRODUCT.md §4): a citizen's answers.
//!
//! An [`Answer`] says yes or no to one key (holder, data category, consulter), for a validity
//! window, in a state, with its provenance. Storage keeps one current answer per key (and, beside
//! it, at most one `pending-guardian` proposal of a child) and the history of the ones it
//! replaced; the decision reads only the current ones, and of those only the ones in force.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CategoryCode, DataCategory, RoleCode, Ura, UziNumber};

/// One side of an answer's key: a whole category of providers, or one provider by URA.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// A holder category or consulting category of the catalogue.
    Category(CategoryCode),
    /// One individual provider organisation.
    Provider(Ura),
}

impl Party {
    /// Whether this names one individual provider (more specific than a category).
    pub fn is_individual(&self) -> bool {
        matches!(self, Party::Provider(_))
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Party::Category(c) => write!(f, "category {c}"),
            Party::Provider(u) => write!(f, "provider {u}"),
        }
    }
}

/// What an answer is about. One current answer per key, and at most one pending proposal.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AnswerKey {
    /// The dossier holder (dossierhouder) that makes data available.
    pub holder: Party,
    /// The data category (gegevenscategorie).
    pub data_category: DataCategory,
    /// The consulting provider (raadpleger) that receives them.
    pub consulter: Party,
}

/// Yes or no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Yes: the holder may make the data available.
    Permit,
    /// No.
    Deny,
}

impl Effect {
    /// `permit` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Permit => "permit",
            Effect::Deny => "deny",
        }
    }
}

/// The life-cycle state of an answer. Only `Active` answers take part in decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerState {
    /// In force (within its validity window).
    Active,
    /// Recorded by a child under 16, waiting for a parent or guardian to confirm.
    PendingGuardian,
    /// Past its validity, recorded as such.
    Expired,
    /// Withdrawn by the citizen.
    Withdrawn,
}

impl AnswerState {
    /// The wire and storage code.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerState::Active => "active",
            AnswerState::PendingGuardian => "pending-guardian",
            AnswerState::Expired => "expired",
            AnswerState::Withdrawn => "withdrawn",
        }
    }

    /// Reads a storage code.
    pub fn parse(s: &str) -> Option<AnswerState> {
        [
            AnswerState::Active,
            AnswerState::PendingGuardian,
            AnswerState::Expired,
            AnswerState::Withdrawn,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// How an answer was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    /// The citizen in the portal.
    Portal,
    /// Patient and professional together (Samen-naar-MijnMitz).
    SamenNaarMijnmitz,
    /// Individual-holder answer through the holder's button (dossierhoudersknop).
    Dossierhoudersknop,
    /// Emergency consent through the consulter's button (raadplegersknop).
    Raadplegersknop,
    /// Imported from a provider's earlier local records.
    Migration,
    /// A representative acting for the citizen.
    Representative,
    /// A parent or guardian confirming a child's answers.
    GuardianConfirmation,
}

impl Channel {
    /// All channels.
    pub const ALL: [Channel; 7] = [
        Channel::Portal,
        Channel::SamenNaarMijnmitz,
        Channel::Dossierhoudersknop,
        Channel::Raadplegersknop,
        Channel::Migration,
        Channel::Representative,
        Channel::GuardianConfirmation,
    ];

    /// The code of PRODUCT.md §4.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Portal => "portal",
            Channel::SamenNaarMijnmitz => "samen-naar-mijnmitz",
            Channel::Dossierhoudersknop => "dossierhoudersknop",
            Channel::Raadplegersknop => "raadplegersknop",
            Channel::Migration => "migration",
            Channel::Representative => "representative",
            Channel::GuardianConfirmation => "guardian-confirmation",
        }
    }

    /// Reads a channel code.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Who recorded an answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// The citizen themself.
    Citizen,
    /// A representative (gemachtigde) or parent/guardian, by an opaque reference (a pseudonym,
    /// never a BSN).
    Representative {
        /// Opaque reference to the person.
        reference: String,
    },
    /// A professional at a provider organisation.
    Provider {
        /// The responsible organisation.
        ura: Ura,
        /// The professional.
        uzi: Option<UziNumber>,
        /// The professional's role.
        role: Option<RoleCode>,
        /// A mandated assistant acting for the professional.
        mandated: Option<UziNumber>,
    },
}

/// Where an answer came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Through which channel.
    pub channel: Channel,
    /// By whom.
    pub actor: Actor,
    /// The catalogue version in force when it was recorded.
    pub catalogue_version: String,
}

/// One answer in a consent profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Answer {
    /// What it is about.
    pub key: AnswerKey,
    /// Yes or no.
    pub effect: Effect,
    /// In force from this moment.
    pub valid_from: DateTime<Utc>,
    /// In force until just before this moment (emergency consent); `None` for open-ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// Life-cycle state.
    pub state: AnswerState,
    /// Where it came from.
    pub provenance: Provenance,
}

impl Answer {
    /// Whether the answer is in force at `t`: active, `valid_from <= t` and `t < valid_until`.
    pub fn in_force_at(&self, t: DateTime<Utc>) -> bool {
        self.state == AnswerState::Active
            && self.valid_from <= t
            && self.valid_until.is_none_or(|until| t < until)
    }
}
