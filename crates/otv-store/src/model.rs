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

/// Whether a subscription is in use (`Subscription.status` on the wire: a registration sent as
/// `requested` is stored `active`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionState {
    /// A location for the open question, and notified of consent changes.
    Active,
    /// Deactivated: kept, but neither a location for the open question nor notified.
    Off,
}

impl SubscriptionState {
    /// The stored code (`active`, `off`), also the FHIR status.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionState::Active => "active",
            SubscriptionState::Off => "off",
        }
    }

    /// The state for a stored code.
    pub fn parse(code: &str) -> Option<Self> {
        [SubscriptionState::Active, SubscriptionState::Off]
            .into_iter()
            .find(|s| s.as_str() == code)
    }
}

/// What registering one subscription did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// A new subscription, with its id.
    Created(uuid::Uuid),
    /// The same connector had already registered this patient for this source system: the id
    /// of that subscription, which was left as it was.
    Existing(uuid::Uuid),
}

impl Registration {
    /// The subscription's id, new or existing.
    pub fn id(self) -> uuid::Uuid {
        match self {
            Registration::Created(id) | Registration::Existing(id) => id,
        }
    }
}

/// A stored subscription as the connector that registered it sees it. Only that connector is
/// ever given one.
#[derive(Debug, Clone)]
pub struct SubscriptionRecord {
    /// Its id (`Subscription/{id}`).
    pub id: uuid::Uuid,
    /// Active or deactivated.
    pub state: SubscriptionState,
    /// What was registered (the BSN decrypted).
    pub registration: NewSubscription,
}

/// What an update of a subscription may change. The patient, the holder and the source system
/// identify the registration and stay as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// rest-hook endpoint for notifications.
    pub endpoint: String,
    /// `application/fhir+json` or `application/fhir+xml`.
    pub payload: String,
    /// Birth date as given in the subscription.
    pub birth_date: Option<NaiveDate>,
    /// Exchange (gateway) system OID.
    pub gateway_system: String,
    /// Active, or deactivated.
    pub state: SubscriptionState,
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

/// The most refused lines an import keeps with their reasons (the count goes on).
pub const MAX_STORED_REFUSALS: usize = 100;

/// Why one line of a bulk import was refused: its number and the problems, each with the FHIR
/// path of the element concerned. Never a BSN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRefusal {
    /// The line number (the first line is 1).
    pub line: u64,
    /// `invalid` (not valid FHIR, 400 for a single request), `business-rule` (422), or
    /// `not-allowed-for-ura` (the connector may not act for the holder, 403).
    pub reason: String,
    /// What is wrong.
    pub issues: Vec<ImportIssue>,
}

/// One problem of a refused line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportIssue {
    /// The element as a FHIR path, e.g. `Subscription.criteria`; absent for the line as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// What is wrong, for a person at the connector vendor.
    pub problem: String,
}

/// How far a bulk import (per connector and the import id the client chose) has come. Lines
/// `1..=committed_lines` are done: registered, found already registered, or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportProgress {
    /// The connector that imports.
    pub connector_id: String,
    /// The client's id for the import.
    pub import_id: String,
    /// The last line committed.
    pub committed_lines: u64,
    /// SHA-256 of the bytes of the committed lines (including their line ends).
    #[serde(skip)]
    pub prefix_sha256: Vec<u8>,
    /// Registrations created.
    pub created: u64,
    /// Lines whose registration (same connector, patient and source system) already existed.
    pub already_registered: u64,
    /// Lines refused.
    pub refused: u64,
    /// The first [`MAX_STORED_REFUSALS`] refused lines.
    pub refusals: Vec<ImportRefusal>,
    /// Whether the last request read its input to the end.
    pub complete: bool,
    /// When the first chunk was committed.
    pub started_at: DateTime<Utc>,
    /// When the last chunk was committed.
    pub updated_at: DateTime<Utc>,
}

/// One chunk of a bulk import, committed in one transaction with the import's progress.
#[derive(Debug, Clone)]
pub struct ImportChunk<'a> {
    /// The connector that imports (also the connector of every subscription).
    pub connector_id: &'a str,
    /// The client's id for the import.
    pub import_id: &'a str,
    /// The progress the chunk continues from: `committed_lines` must still be this, or the
    /// chunk is not written ([`ImportCommit::Moved`]). 0 for a new import.
    pub after_line: u64,
    /// The chunk's last line.
    pub through_line: u64,
    /// SHA-256 of lines `1..=through_line`.
    pub prefix_sha256: &'a [u8],
    /// The registrations of the chunk's accepted lines.
    pub subscriptions: &'a [NewSubscription],
    /// The chunk's refused lines.
    pub refusals: &'a [ImportRefusal],
    /// The input ends with this chunk.
    pub complete: bool,
}

/// What committing an [`ImportChunk`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportCommit {
    /// Written: how many registrations were new, and the import's progress now.
    Committed {
        /// Registrations created by this chunk (the rest already existed).
        created: u64,
        /// The import's progress after the chunk.
        progress: ImportProgress,
    },
    /// Not written: the import's progress is no longer where the chunk started (another run
    /// of the same import went ahead). The stored progress, if any.
    Moved(Option<ImportProgress>),
}

impl ImportProgress {
    /// The progress after `chunk`, of which `created` registrations were new; `now` is the
    /// commit time. The one place both backends take the arithmetic from.
    pub(crate) fn advance(
        previous: Option<ImportProgress>,
        chunk: &ImportChunk<'_>,
        created: u64,
        now: DateTime<Utc>,
    ) -> ImportProgress {
        let mut p = previous.unwrap_or_else(|| ImportProgress {
            connector_id: chunk.connector_id.to_owned(),
            import_id: chunk.import_id.to_owned(),
            committed_lines: 0,
            prefix_sha256: Vec::new(),
            created: 0,
            already_registered: 0,
            refused: 0,
            refusals: Vec::new(),
            complete: false,
            started_at: now,
            updated_at: now,
        });
        p.committed_lines = chunk.through_line;
        p.prefix_sha256 = chunk.prefix_sha256.to_vec();
        p.created += created;
        p.already_registered += chunk.subscriptions.len() as u64 - created;
        p.refused += chunk.refusals.len() as u64;
        let room = MAX_STORED_REFUSALS.saturating_sub(p.refusals.len());
        p.refusals.extend(chunk.refusals.iter().take(room).cloned());
        p.complete = chunk.complete;
        p.updated_at = now;
        p
    }
}

// ---------------------------------------------------------------------------------------------
// The citizen portal: sessions and the directory search.

/// A logged-in portal session (stored server-side; the browser holds only a random token whose
/// SHA-256 is the key). `actor` logged in; `subject` is whose profile they manage: the same
/// person, or the citizen a representative acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// Who logged in.
    pub actor: Bsn,
    /// Whose profile is managed.
    pub subject: Bsn,
    /// The name of who logged in, as the identity provider gave it.
    pub actor_name: Option<String>,
    /// The name of the citizen whose profile is managed, if known.
    pub subject_name: Option<String>,
    /// The birth date of the citizen whose profile is managed, if known.
    pub subject_birth_date: Option<NaiveDate>,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// The terms-of-use version the actor has accepted, if it is known to be current.
    pub terms_version: Option<String>,
    /// When the actor logged in (a "fresh login" is a recent one).
    pub login_at: DateTime<Utc>,
    /// The last request of the session (idle timeout).
    pub last_seen_at: DateTime<Utc>,
}

/// A search in the provider directory: a name fragment (case-insensitive), or a URA, or
/// organisation types.
#[derive(Debug, Clone, Copy)]
pub struct ProviderQuery<'a> {
    /// Matched as a part of the name, case-insensitively, and as the whole URA. Empty: not
    /// used.
    pub text: &'a str,
    /// Providers of these types match too.
    pub organisation_types: &'a [OrgType],
    /// At most this many results, ordered by name.
    pub limit: u32,
}

impl ProviderQuery<'_> {
    /// `text` as a `LIKE` pattern that matches it anywhere, with `\` escaping `%`, `_` and `\`.
    pub(crate) fn like_pattern(&self) -> String {
        let mut p = String::with_capacity(self.text.len() + 2);
        p.push('%');
        for c in self.text.chars() {
            if matches!(c, '%' | '_' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push('%');
        p
    }
}
