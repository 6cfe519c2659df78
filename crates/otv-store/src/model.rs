//! Rows of the provider directory, connectors, citizens and subscriptions, as the rest of otv
//! sees them.

use chrono::{DateTime, NaiveDate, Utc};
use otv_core::{Answer, Bsn, OrgType, Ura};
use serde::{Deserialize, Serialize};

/// A provider organisation in the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    /// Its URA.
    pub ura: Ura,
    /// Its name.
    pub name: String,
    /// Its organisation type.
    pub organisation_type: OrgType,
}

/// A connector: a system (exchange system, provider system) that talks to otv over mTLS, and
/// the URAs it may act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    /// Stable id chosen by the operator, e.g. `lsp`.
    pub id: String,
    /// Human name.
    pub name: String,
    /// SHA-256 fingerprint (lower-case hex) of the client certificate it presents, if pinned.
    pub certificate_sha256: Option<String>,
    /// The URAs it may act for.
    pub acts_for: Vec<Ura>,
}

/// Minimal personal data of a citizen (PRODUCT.md §10). `None` leaves a stored value as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CitizenDetails {
    /// Name as given by the identity provider.
    pub name: Option<String>,
    /// E-mail address (verified separately).
    pub email: Option<String>,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
}

/// A subscription (abonnement): the holder registers that it holds a record for this patient,
/// which also subscribes it to notifications.
#[derive(Debug, Clone)]
pub struct NewSubscription {
    /// The patient.
    pub bsn: Bsn,
    /// Birth date as given in the subscription.
    pub birth_date: Option<NaiveDate>,
    /// The dossier holder.
    pub holder_ura: Ura,
    /// The holder's organisation type.
    pub holder_type: OrgType,
    /// The connector that registered it.
    pub connector_id: String,
    /// Source system OID.
    pub source_system: String,
    /// Exchange (gateway) system OID.
    pub gateway_system: String,
    /// rest-hook endpoint for notifications.
    pub endpoint: String,
    /// `application/fhir+json` or `application/fhir+xml`.
    pub payload: String,
}

/// One generated citizen with answers and subscriptions (benchmark data).
#[derive(Debug, Clone)]
pub struct GeneratedCitizen {
    /// The citizen.
    pub bsn: Bsn,
    /// Birth date.
    pub birth_date: NaiveDate,
    /// Current answers.
    pub answers: Vec<Answer>,
    /// Subscriptions for this citizen.
    pub subscriptions: Vec<NewSubscription>,
}

/// Row counts and size of the database.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    /// Citizens.
    pub citizens: i64,
    /// Answers, current and replaced.
    pub answers: i64,
    /// Subscriptions.
    pub subscriptions: i64,
    /// Audit records.
    pub audit_records: i64,
    /// Database size in bytes.
    pub size_bytes: i64,
    /// When the numbers were read.
    pub at: Option<DateTime<Utc>>,
}

/// A stored subscription (localization record), as the open question and notifications read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The holder registered for the patient.
    pub holder_ura: Ura,
    /// The holder's organisation type.
    pub holder_type: OrgType,
    /// The connector that registered it.
    pub connector_id: String,
    /// Source system OID (`SourceId` in the open question).
    pub source_system: String,
    /// Exchange (gateway) system OID (`HomeCommunityId`).
    pub gateway_system: String,
    /// rest-hook endpoint.
    pub endpoint: String,
    /// Payload media type.
    pub payload: String,
}
