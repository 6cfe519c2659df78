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
mod citizen;
mod codec;
mod crypto;
mod enrolment;
pub mod generate;
mod guardian;
mod handoff;
mod mail;
mod migration;
mod model;
mod outbox;
mod postgres;
mod sqlite;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use otv_core::{Answer, Bsn, Sides};

pub use audit::{AuditEvent, AuditRecord, VerifyReport};
pub use citizen::{
    ChangeEntry, ChangeRecord, CheckNotice, CitizenExport, CitizenSettings, ConsentCheck, Deletion,
    EMAIL_VERIFICATION, EmailConfirmation, EmailVerification, ExportAnswer, ExportDetails,
    ExportSubscription, ExportTerms, History, PROFILE_DELETED, Period, SettingsChange,
};
pub use crypto::{KeyError, Keys};
pub use guardian::{LinkedChild, PairingCodeStatus, PairingLimit, Redemption};
pub use handoff::{HandOff, NewHandOff};
pub use mail::{
    CheckMail, CheckNote, CheckScan, DigestMail, MAIL_CHECK_DIGEST, MAIL_CONSENT_CHECK,
    MAIL_EMERGENCY_EXPIRY, MAIL_PROFILE_CHANGED, MAX_CHECKS_PER_MAIL, MailContact,
};
pub use migration::{MigrationItem, MigrationOutcome};
pub use model::{
    CitizenDetails, Connector, GeneratedCitizen, NewSubscription, Provider, Registration,
    StoreStats, Subscription, SubscriptionChange, SubscriptionRecord, SubscriptionState,
};
pub use model::{
    ImportChunk, ImportCommit, ImportIssue, ImportProgress, ImportRefusal, MAX_STORED_REFUSALS,
};
pub use model::{PortalSession, ProviderQuery};
pub use outbox::{
    FIRST_RETRY_DELAY, Failure, MAX_ATTEMPTS, MAX_RETRY_DELAY, NewOutboxRow, NotifyTarget,
    OutboxRow, OutboxState, OutboxStatus, citizen_ordering_key, outbox_writes, retry_delay,
};

/// A storage error. Never carries a BSN.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused or failed a read on the calling thread (the closed question's).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

    /// Records answers for a citizen in one transaction, with one audit record and one outbox
    /// row. Returns the sequence number of that audit record, which identifies the change (its
    /// receipt, `/bewijs/<seq>`); every answer stored by the change carries it.
    ///
    /// A key has at most one current answer in force (any state but `pending-guardian`) and at
    /// most one current proposal (`pending-guardian`, a child's answer waiting for a parent or
    /// guardian). A new answer replaces (the replaced ones stay in the history):
    /// - `pending-guardian`: only the current proposal with its key; the answer in force stays
    ///   in force (a proposal never counts, so it may not remove what counts either);
    /// - `active`: both the answer in force and the proposal (a confirmation, an adult's own
    ///   change or a provider's answer is a decision made after the proposal; a parent must
    ///   not later confirm a proposal that a newer answer overtook);
    /// - `withdrawn`, `expired`: only the answer in force (e.g. an emergency consent withdrawn);
    ///   a proposal keeps waiting.
    ///
    /// A parent or guardian who declines proposals uses [`Backend::decline_pending`] instead.
    async fn record_answers(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64>;
    /// Declines a child's proposals (PRODUCT.md §10): for each answer's key, the current
    /// `pending-guardian` answer is replaced by the given answer (the caller records it
    /// `withdrawn`, channel `guardian-confirmation`), which is kept in the history only and is
    /// never current; the answer in force for the key stays in force. One transaction with one
    /// audit record and one outbox row, as `record_answers`; returns the audit record's
    /// sequence number.
    async fn decline_pending(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64>;
    /// The current answers of a citizen (empty for an unknown citizen). The decision's hot path.
    /// Per key at most one answer in force and one `pending-guardian` proposal (which the
    /// decision ignores); readers that show or compare answers per key must tell them apart.
    async fn profile(&self, bsn: &Bsn) -> Result<Vec<Answer>>;
    /// The current answers of a citizen that name both `sides` (holder side one of
    /// `sides.holder`, consulter side one of `sides.consulter`): all that the decision can use
    /// for a question between them. The closed question's hot path: a citizen has dozens of
    /// answers, a question needs a handful.
    async fn answers_between(&self, bsn: &Bsn, sides: &Sides) -> Result<Vec<Answer>>;
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
    /// Appends a consent check's record (a closed or open question): durable when this returns,
    /// as with [`Backend::audit`], and seen by every read of the log from then on, but it may
    /// take its place in the chain (and get its sequence number) up to a second later. SQLite
    /// queues such records in a file of their own (`sqlite/check_queue.rs` says why);
    /// PostgreSQL appends them as [`Backend::audit`] does. Takes the record, which the hot path
    /// has no further use for, so that it is written without a copy.
    async fn audit_check(&self, event: AuditEvent) -> Result<()>;
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

    // -----------------------------------------------------------------------------------------
    // The citizen's own data (portal: settings, e-mail, history, export, deletion, receipts).
    // Every change appends its audit record (`audit`, the patient filled in by the store) in
    // its own transaction.

    /// Signs a consent receipt with the configured receipt key (Ed25519): the signature of
    /// `message` (64 bytes).
    fn sign_receipt(&self, message: &[u8]) -> Vec<u8>;
    /// The raw Ed25519 public key (32 bytes) that verifies consent receipts.
    fn receipt_public_key(&self) -> Vec<u8>;
    /// The citizen's settings; the defaults for a citizen who never changed one, or is unknown.
    async fn citizen_settings(&self, bsn: &Bsn) -> Result<CitizenSettings>;
    /// Changes settings (the citizen is created if unknown); returns them as they are now.
    async fn update_citizen_settings(
        &self,
        bsn: &Bsn,
        change: &SettingsChange,
        audit: &AuditEvent,
    ) -> Result<CitizenSettings>;
    /// Sets a new e-mail address, not yet verified, and writes the outbox row
    /// ([`EMAIL_VERIFICATION`]) that will send the link; a link sent earlier stops working.
    async fn request_email_verification(
        &self,
        bsn: &Bsn,
        request: &EmailVerification<'_>,
        audit: &AuditEvent,
    ) -> Result<()>;
    /// Verifies the citizen's waiting address if `token_sha256` is that of the last link sent
    /// to this citizen and it has not expired at `now`. A link works once.
    async fn confirm_email(
        &self,
        bsn: &Bsn,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<EmailConfirmation>;
    /// Removes the e-mail address (nothing is sent any more).
    async fn remove_email(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<()>;
    /// The changes and consent checks of the citizen in `period`, newest first, at most
    /// `limit` of each.
    async fn history(&self, bsn: &Bsn, period: &Period, limit: usize) -> Result<History>;
    /// Brings the index of consent checks by patient (what [`history`](Self::history) reads)
    /// up to date with the audit log now; returns how many audit records it went over.
    /// SQLite keeps that index in a file of its own, filled in the background a second or so
    /// behind the log, and `history` reads the rest from the log, so this changes only how fast
    /// `history` is, never what it says. PostgreSQL indexes each record in its own transaction
    /// and has nothing to catch up.
    async fn index_consent_checks(&self) -> Result<u64>;
    /// The change `seq` if it recorded answers of this citizen; `None` otherwise (another
    /// citizen's change, or no change of answers).
    async fn change_record(&self, bsn: &Bsn, seq: i64) -> Result<Option<ChangeRecord>>;
    /// Everything otv holds about the citizen; `None` for an unknown citizen.
    async fn export_citizen(&self, bsn: &Bsn) -> Result<Option<CitizenExport>>;
    /// Deletes the citizen's personal data, settings, answers (history included), pending
    /// outbox rows and portal sessions, in one transaction with `audit`. Audit records stay
    /// (they hold only the pseudonym). Registrations by providers (subscriptions) stay: they
    /// are the provider's statement that it holds a record, not the citizen's choice; the
    /// citizen row then keeps only the pseudonym and the encrypted BSN they need, and a
    /// [`PROFILE_DELETED`] outbox row tells those holders the answers are gone. Without
    /// registrations the citizen row goes too.
    async fn delete_citizen(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<Deletion>;

    // -----------------------------------------------------------------------------------------
    // The citizen portal: sessions, terms of use, personal details, the directory search.

    /// Stores a new portal session under the SHA-256 of its token, and removes every session
    /// idle since before `idle_cutoff`.
    async fn create_portal_session(
        &self,
        token_sha256: &[u8; 32],
        session: &PortalSession,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<()>;
    /// The session of a token: `None` when unknown or idle since before `idle_cutoff` (then it
    /// is removed). A session that is found has its last activity moved to `now`.
    async fn touch_portal_session(
        &self,
        token_sha256: &[u8; 32],
        idle_cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<PortalSession>>;
    /// Ends a session (logout). Ending an unknown one does nothing.
    async fn delete_portal_session(&self, token_sha256: &[u8; 32]) -> Result<()>;
    /// Whether `bsn` has accepted the terms-of-use `version`.
    async fn terms_accepted(&self, bsn: &Bsn, version: &str) -> Result<bool>;
    /// Records that `bsn` accepted the terms-of-use `version` (the first acceptance's time
    /// stays), marks the session `token_sha256` as having accepted it, and appends `audit`, in
    /// one transaction.
    async fn accept_terms(
        &self,
        bsn: &Bsn,
        version: &str,
        token_sha256: &[u8; 32],
        audit: &AuditEvent,
    ) -> Result<()>;
    /// The stored personal details of a citizen (`None` for an unknown citizen).
    async fn citizen_details(&self, bsn: &Bsn) -> Result<Option<CitizenDetails>>;
    /// Searches the provider directory; at most `query.limit` results, by name.
    async fn search_providers(&self, query: &ProviderQuery<'_>) -> Result<Vec<Provider>>;

    // -----------------------------------------------------------------------------------------
    // Minors and their parents or guardians (`guardian`): pairing codes and links. Confirming
    // a child's answers is `record_answers`, like every change.

    /// Makes `code` the child's pairing code until `expires_at` (stored only as a keyed tag); a
    /// code the child made before and did not use stops working. Appends `audit` (the child's
    /// pseudonym as patient, the expiry in its details) in the same transaction. `false` (and
    /// nothing changed) when `code` is already taken: make another.
    async fn issue_pairing_code(
        &self,
        child: &Bsn,
        code: &str,
        expires_at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool>;
    /// The child's unused pairing code that still works at `now` (when made, until when).
    async fn pairing_code_status(
        &self,
        child: &Bsn,
        now: DateTime<Utc>,
    ) -> Result<Option<PairingCodeStatus>>;
    /// `guardian` types `code`: unless they typed `limit.max_failures` wrong codes within
    /// `limit.window` ([`Redemption::Blocked`], nothing checked), a right code is used up and
    /// links them to the child; a wrong one is counted. One transaction with `audit` (the
    /// outcome as decision, the child as patient when the code named one); of the tries
    /// refused during one pause only the first is audited.
    async fn redeem_pairing_code(
        &self,
        guardian: &Bsn,
        code: &str,
        now: DateTime<Utc>,
        limit: &PairingLimit,
        audit: &AuditEvent,
    ) -> Result<Redemption>;
    /// The children `guardian` is linked to, oldest link first.
    async fn linked_children(&self, guardian: &Bsn) -> Result<Vec<LinkedChild>>;
    /// The child of link `link`, if that link is `guardian`'s (`None` for anyone else's).
    async fn linked_child(&self, guardian: &Bsn, link: uuid::Uuid) -> Result<Option<LinkedChild>>;

    // --- citizen e-mail (helper E): contact, consent-check notices, mails queued once (`mail`) ---

    /// The e-mail address and notification settings of the citizen `citizen` (`None` for an
    /// unknown citizen).
    async fn mail_contact(&self, citizen: uuid::Uuid) -> Result<Option<MailContact>>;
    /// Reads the consent checks (audit records) after the stored cursor, at most `limit`
    /// records, and in one transaction queues a `mail-consent-check` row per citizen who
    /// chose immediately, adds the checks of citizens who chose a daily digest to their
    /// digest, and moves the cursor. The first scan only sets the cursor at the head of the
    /// audit log. Scans never overlap.
    async fn scan_consent_checks(&self, limit: usize, now: DateTime<Utc>) -> Result<CheckScan>;
    /// Once per Dutch calendar day `day` (or again with `force`): queues one
    /// `mail-check-digest` row per citizen with checks waiting, and empties the digests, in
    /// one transaction. Returns how many rows were queued (0 when `day` had its digest).
    async fn take_check_digests(
        &self,
        day: chrono::NaiveDate,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Queues a mail outbox row, available from `available_at`, unless the row of the same
    /// `kind`, citizen and `key` was queued before (then nothing happens: `false`).
    async fn enqueue_mail_once(
        &self,
        citizen: uuid::Uuid,
        kind: &str,
        key: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool>;

    // --- hand-offs (helper B): the assisted portal's one-time links (`handoff`) ---

    /// Stores a hand-off (only its token's SHA-256), the citizen created if unknown, with
    /// `audit` (the hand-off's id added to its details) in one transaction. Hand-offs expired
    /// for more than a day are removed. Returns the hand-off's id.
    async fn create_hand_off(
        &self,
        hand_off: &NewHandOff<'_>,
        audit: &AuditEvent,
    ) -> Result<uuid::Uuid>;
    /// Takes the hand-off of `token_sha256` if it is unused and not expired at `now`: marks it
    /// used and binds it to the portal session `session_sha256`, in one statement, so that a
    /// link opens once even when opened twice at the same moment. `None`: unknown, used or
    /// expired.
    async fn take_hand_off(
        &self,
        token_sha256: &[u8; 32],
        session_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<HandOff>>;
    /// The hand-off that started the portal session `session_sha256` (its assisted context);
    /// `None` for a citizen's own session.
    async fn hand_off_of_session(&self, session_sha256: &[u8; 32]) -> Result<Option<HandOff>>;

    // --- enrolment tokens (helper A): single-use jti's (`enrolment`) ---

    /// Uses up the enrolment token `jti` (of provider `ura`, expiring at `expires_at`) at
    /// `now`: `true` when this is its first use, `false` when it was used before (a replay).
    /// Rows of tokens expired long ago are removed on the way.
    async fn use_enrolment_token(
        &self,
        jti: &str,
        ura: &otv_core::Ura,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Whether the enrolment token `jti` was used (a check that uses nothing up).
    async fn enrolment_token_used(&self, jti: &str) -> Result<bool>;

    // --- the outbox delivery engine (helper D): claims, back-off, dead rows (`outbox`) ---

    /// Queues a row outside a change (e.g. a scheduled mail), due from `available_at`; returns
    /// its id. `profile-changed` and `profile-deleted` rows are ordered per citizen.
    async fn enqueue_outbox(
        &self,
        citizen: uuid::Uuid,
        kind: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<uuid::Uuid>;
    /// Claims at most `limit` claimable rows (see `outbox`) for `worker` until `now + lease`,
    /// counting an attempt for each, in due order. Two workers never get the same row while
    /// its lease lasts.
    async fn claim_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<OutboxRow>>;
    /// Marks the row delivered, if `worker` still holds its lease (`false`: it does not).
    async fn complete_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Records a failed attempt of `worker`'s row: due again after [`retry_delay`], or dead
    /// when the back-off is used up.
    async fn fail_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Failure>;
    /// Parks `worker`'s row as dead at once (the attempt can never succeed), with the reason.
    async fn park_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Gives `worker`'s row back without counting the attempt, due again at `available_at`
    /// (e.g. mail is not configured yet).
    async fn release_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool>;
    /// In one transaction: writes `rows` for the citizen of `worker`'s row `id` (a row whose id
    /// exists is skipped, so a fan-out done twice writes each row once) and marks `id`
    /// delivered. `false` (nothing written) when `worker` no longer holds the lease.
    async fn fan_out_outbox(
        &self,
        id: uuid::Uuid,
        worker: &str,
        rows: &[NewOutboxRow],
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Counts of the outbox by state at `now`.
    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<OutboxStatus>;
    /// The dead rows, longest dead first, at most `limit`.
    async fn dead_outbox(&self, limit: usize) -> Result<Vec<OutboxRow>>;
    /// One row by id.
    async fn outbox_row(&self, id: uuid::Uuid) -> Result<Option<OutboxRow>>;
    /// Makes the dead row `id` (or, with `None`, every dead row) pending again with a fresh
    /// back-off, due at `now`; returns how many.
    async fn retry_dead_outbox(&self, id: Option<uuid::Uuid>, now: DateTime<Utc>) -> Result<u64>;
    /// The active subscriptions of the citizen `citizen` with their ids (who to notify).
    async fn notify_targets(&self, citizen: uuid::Uuid) -> Result<Vec<NotifyTarget>>;
    /// The subscription `id` of the citizen `citizen`, whatever its state.
    async fn notify_target(
        &self,
        citizen: uuid::Uuid,
        id: uuid::Uuid,
    ) -> Result<Option<NotifyTarget>>;

    // --- migration (helper C): Consents a provider kept locally (`migration`) ---

    /// Migrates one chunk in one transaction (the rules: the `migration` module): per item,
    /// stores the answers whose key has no current answer, never replacing one; skips citizens
    /// who locked their profile against provider changes; per citizen and provider that got
    /// answers, one audit record (`audit` completed with patient, actor and counts) and one
    /// `profile-changed` outbox row. Unknown citizens are created. Returns one outcome per
    /// item, in order.
    async fn migrate_answers(
        &self,
        items: &[MigrationItem],
        audit: &AuditEvent,
    ) -> Result<Vec<MigrationOutcome>>;
    /// When the citizen last said they had seen the answers migrated into their profile
    /// (`None`: never, or an unknown citizen). Migrated answers recorded after it are news.
    async fn migration_seen_at(&self, bsn: &Bsn) -> Result<Option<DateTime<Utc>>>;
    /// Records that the citizen has seen the migrated answers, at `at`, with `audit` (the
    /// patient filled in) in one transaction.
    async fn mark_migration_seen(
        &self,
        bsn: &Bsn,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<()>;
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
