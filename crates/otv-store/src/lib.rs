//! otv's storage: one interface ([`Store`]) over embedded SQLite (the default) and PostgreSQL.
//!
//! What lives here: the provider directory, connectors and the URAs they may act for,
//! subscriptions (localization), citizens (minimal personal data), answers with their full
//! history and provenance, the tamper-evident audit log, and the outbox.
//!
//! Architecture invariants:
//! - A BSN is stored only as a keyed pseudonym (HMAC-SHA256, for lookup) and encrypted
//!   (AES-256-GCM, where the number itself is needed). Keys come from configuration
//!   ([`Keys`]), never from the database. No BSN appears in an error text or a log line.
//! - Every profile change writes its answers, its audit record and its outbox row in one
//!   transaction.
//! - Migrations live in `migrations/sqlite` and `migrations/postgres` and are applied by the
//!   binary ([`Store::migrate`]), in tests exactly as in production.
#![deny(missing_docs)]

mod audit;
mod audit_writer;
mod codec;
mod crypto;
pub mod generate;
mod model;
mod postgres;
mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use otv_core::{Answer, Bsn};

pub use audit::{AuditEvent, AuditRecord, VerifyReport};
pub use crypto::{KeyError, Keys};
pub use model::{
    CitizenDetails, Connector, GeneratedCitizen, NewSubscription, Provider, Registration,
    StoreStats, Subscription, SubscriptionChange, SubscriptionRecord, SubscriptionState,
};
pub use model::{
    ImportChunk, ImportCommit, ImportIssue, ImportProgress, ImportRefusal, MAX_STORED_REFUSALS,
};

/// A storage error. Never carries a BSN.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Stored data could not be read back (corrupt row, wrong key).
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    /// An audit record could not be appended (its batch failed, or the writer stopped).
    #[error("audit log: {0}")]
    AuditLog(String),
    /// The database URL names no supported backend.
    #[error("unsupported database URL scheme (use sqlite: or postgres:)")]
    UnsupportedUrl,
}

/// Result of storage operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage interface. Both backends implement it; the rest of otv sees only this.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers (readiness).
    async fn ping(&self) -> Result<()>;
    /// The patient's pseudonym for audit records (hex HMAC of the BSN).
    fn patient_reference(&self, bsn: &Bsn) -> String;

    /// Adds or updates providers in the directory.
    async fn upsert_providers(&self, providers: &[Provider]) -> Result<()>;
    /// Looks a provider up by URA.
    async fn provider(&self, ura: &otv_core::Ura) -> Result<Option<Provider>>;
    /// Adds or replaces a connector and the URAs it may act for.
    async fn upsert_connector(&self, connector: &Connector) -> Result<()>;
    /// Looks a connector up by id.
    async fn connector(&self, id: &str) -> Result<Option<Connector>>;

    /// Creates the citizen if unknown, updates the given details; returns the citizen id.
    async fn upsert_citizen(&self, bsn: &Bsn, details: &CitizenDetails) -> Result<uuid::Uuid>;
    /// The BSN of a citizen, decrypted (for notifications to the holder).
    async fn citizen_bsn(&self, citizen: uuid::Uuid) -> Result<Option<Bsn>>;

    /// Records answers for a citizen in one transaction: each replaces the current answer with
    /// the same key (which stays in the history), with one audit record and one outbox row.
    async fn record_answers(&self, bsn: &Bsn, answers: &[Answer], audit: &AuditEvent)
    -> Result<()>;
    /// The current answers of a citizen (empty for an unknown citizen). The decision's hot path.
    async fn profile(&self, bsn: &Bsn) -> Result<Vec<Answer>>;
    /// Every answer ever recorded for a citizen, current and replaced, oldest first.
    async fn answer_history(&self, bsn: &Bsn) -> Result<Vec<Answer>>;

    /// Registers subscriptions (localization).
    async fn insert_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<()>;
    /// The active subscriptions for a patient (where records are), in registration order.
    async fn subscriptions_of(&self, bsn: &Bsn) -> Result<Vec<Subscription>>;
    /// Registers one subscription, active: [`Registration::Created`], or
    /// [`Registration::Existing`] when the same connector, patient and source system are
    /// already registered (that subscription is left as it is, whatever its state).
    ///
    /// `audit` is appended in the same transaction, with the subscription's id added to its
    /// details and `created` or `existing` as its decision; so are the audit records of the
    /// update and the deletion below.
    async fn create_subscription(
        &self,
        subscription: &NewSubscription,
        audit: &AuditEvent,
    ) -> Result<Registration>;
    /// The subscription `id` if `connector` registered it; `None` when unknown or registered by
    /// another connector (localization data are never shown to other providers).
    async fn subscription(
        &self,
        connector: &str,
        id: uuid::Uuid,
    ) -> Result<Option<SubscriptionRecord>>;
    /// Changes the subscription `id` of `connector` (deactivates it with
    /// [`SubscriptionState::Off`]); returns it as changed, `None` as for [`Backend::subscription`].
    async fn update_subscription(
        &self,
        connector: &str,
        id: uuid::Uuid,
        change: &SubscriptionChange,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>>;
    /// Deletes the subscription `id` of `connector`; returns what was deleted, `None` as for
    /// [`Backend::subscription`].
    async fn delete_subscription(
        &self,
        connector: &str,
        id: uuid::Uuid,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>>;

    /// Appends to the audit log and waits until the record is committed; returns its sequence
    /// number. Concurrent calls are committed together (group commit, see `audit_writer`).
    async fn audit(&self, event: &AuditEvent) -> Result<i64>;
    /// Writes a signed checkpoint at the current head of the chain.
    async fn audit_checkpoint(&self) -> Result<Option<i64>>;
    /// Walks the chain and the checkpoints; names the first broken record.
    async fn audit_verify(&self) -> Result<VerifyReport>;
    /// Removes records older than `before`, up to and including the newest checkpoint older
    /// than that, so that the rest still verifies from that checkpoint. Returns how many went.
    async fn audit_purge(&self, before: DateTime<Utc>) -> Result<u64>;

    /// Number of outbox rows waiting.
    async fn outbox_pending(&self) -> Result<i64>;

    /// Loads generated benchmark data (citizens, answers, subscriptions) in bulk.
    async fn load_generated(&self, batch: &[GeneratedCitizen]) -> Result<()>;
    /// Row counts and database size.
    async fn stats(&self) -> Result<StoreStats>;

    /// The progress of the bulk import `import_id` of `connector`, if a chunk was committed.
    async fn import_progress(
        &self,
        connector: &str,
        import_id: &str,
    ) -> Result<Option<ImportProgress>>;
    /// Commits one chunk of a bulk import in one transaction: registers its subscriptions
    /// (a registration that exists is left as it is) and moves the import's progress to the
    /// chunk's last line, but only if the progress is still where the chunk started.
    async fn commit_import_chunk(&self, chunk: &ImportChunk<'_>) -> Result<ImportCommit>;
}

/// A shared handle to the storage backend.
pub type Store = Arc<dyn Backend>;

/// Opens the database named by `url` (`sqlite://FILE`, `sqlite::memory:`, `postgres://…`).
/// Does not migrate; call [`Backend::migrate`].
pub async fn connect(url: &str, keys: Keys) -> Result<Store> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, keys).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url, keys).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
