//! The SQLite backend: otv's embedded default, a single file next to the binary (or, for
//! `sqlite::memory:`, in a private temporary directory), with the index of consent checks in a
//! second file beside it (`sqlite/checks.rs`).
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so
//! they never race each other for the write lock (in-process they queue for the connection,
//! across processes, e.g. a CLI beside the server, the busy timeout makes them wait). Reads use
//! their own pool and, with WAL, never wait for a writer. Checkpoints run mostly beside the
//! writer (`sqlite/wal.rs`).
//!
//! This module only moves rows: what a valid answer, audit record or checkpoint is lives in
//! `codec` and `audit`, shared with PostgreSQL. It must not put a BSN in a query (only the
//! pseudonym and the ciphertext), so no database error can ever carry one.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use otv_core::{Answer, Bsn, OrgType, Sides, Ura};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use uuid::Uuid;

use self::checks::CheckIndex;
use self::hot::HotReaders;
use self::wal::Checkpointer;
use crate::audit::{
    AuditEvent, CHECKPOINT_EVERY, Checkpoint, Prepared, StoredRecord, Verifier, VerifyReport,
};
use crate::audit_writer::AuditWriter;
use crate::citizen;
use crate::codec::{
    self, ANSWER_COLUMNS, AnswerCols, SubscriptionRow, answer_columns, from_epoch_micros,
    in_pseudonym_order, subscription_record_query, to_epoch_micros,
};
use crate::model::{
    CitizenDetails, Connector, GeneratedCitizen, NewSubscription, Provider, Registration,
    StoreStats, Subscription, SubscriptionChange, SubscriptionRecord,
};
use crate::model::{PortalSession, ProviderQuery};
use crate::{Backend, Keys, Result};
use check_queue::CheckQueue;

mod audit_thread;
mod check_queue;
mod checks;
mod enrolment;
mod guardian;
mod handoff;
mod hot;
mod mail;
mod migration;
mod outbox;
mod wal;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite refuses statements with more bound parameters than this.
const MAX_PARAMS: usize = 32_766;

/// A store on one SQLite database.
pub(crate) struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    keys: Keys,
    audit_writer: AuditWriter,
    /// Consent checks' records on their way into the chain, in a file of their own.
    check_queue: CheckQueue,
    /// The closed question's read, on the calling thread.
    hot: HotReaders,
    /// The consent checks by patient, in a file of their own.
    checks: CheckIndex,
    _checkpointer: Checkpointer,
    /// For `sqlite::memory:`: the private directory of its file, removed with the store.
    _scratch: Option<tempfile::TempDir>,
}

impl SqliteStore {
    /// `record_answers` and, with `declines_proposal`, `decline_pending`: the declined
    /// proposals are stored as history only (replaced as they are stored).
    async fn write_answers(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
        declines_proposal: bool,
    ) -> Result<i64> {
        let now = t(codec::now());
        let cols = answers
            .iter()
            .map(AnswerCols::from_answer)
            .collect::<Result<Vec<_>>>()?;
        let mut event = audit.clone();
        if event.patient.is_none() {
            event.patient = Some(self.keys.patient_reference(bsn));
        }
        let mut tx = self.begin_write().await?;
        let citizen = lock_citizen(&mut tx, &self.keys, bsn, now).await?;
        // First, so that each answer can name its change (the single writer holds the lock for
        // the whole transaction anyway).
        let seq = append_audit(&mut tx, &self.keys, &event).await?;
        for (a, c) in answers.iter().zip(&cols) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE answers SET superseded_at = ? WHERE citizen_id = ? AND holder_kind = ? AND holder_code = ? \
                 AND data_category = ? AND consulter_kind = ? AND consulter_code = ? AND superseded_at IS NULL{}",
                codec::replaced_condition(a, declines_proposal)
            )))
            .bind(now)
            .bind(citizen)
            .bind(c.holder_kind)
            .bind(c.holder_code)
            .bind(c.data_category)
            .bind(c.consulter_kind)
            .bind(c.consulter_code)
            .execute(&mut *tx)
            .await?;
            sqlx::query(concat!(
                "INSERT INTO answers (citizen_id, id, ",
                answer_columns!(),
                ", change_seq, superseded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .bind(citizen)
            .bind(Uuid::now_v7())
            .bind(c.holder_kind)
            .bind(c.holder_code)
            .bind(c.data_category)
            .bind(c.consulter_kind)
            .bind(c.consulter_code)
            .bind(c.effect)
            .bind(t(c.valid_from))
            .bind(c.valid_until.map(t))
            .bind(c.state)
            .bind(t(c.recorded_at))
            .bind(c.channel)
            .bind(&*c.actor)
            .bind(c.catalogue_version)
            .bind(seq)
            .bind(declines_proposal.then_some(now))
            .execute(&mut *tx)
            .await?;
        }
        // The attempt is audited either way; with no answer changed there is nobody to notify.
        if !answers.is_empty() {
            enqueue(
                &mut tx,
                citizen,
                codec::PROFILE_CHANGED,
                codec::profile_changed_payload(answers, seq),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(seq)
    }

    /// Opens (and creates if missing) the database at `url`. `sqlite::memory:` is a database that
    /// lives as long as the store: a file in a private temporary directory, removed when the store
    /// is dropped, so that it works exactly as a file does (WAL, readers beside the writer).
    pub(crate) async fn connect(url: &str, keys: Keys) -> Result<SqliteStore> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let scratch = in_memory
            .then(tempfile::tempdir)
            .transpose()
            .map_err(sqlx::Error::Io)?;
        let options = match &scratch {
            Some(dir) => SqliteConnectOptions::new().filename(dir.path().join("otv.sqlite")),
            None => SqliteConnectOptions::from_str(url)?,
        }
        .create_if_missing(true)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .synchronous(SqliteSynchronous::Normal)
        .journal_mode(SqliteJournalMode::Wal);
        // The writer gets a large page cache (64 MiB) for bulk loads and index upkeep, and
        // leaves most checkpoints to the checkpointer.
        let write = single_connection()
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-65536")
                    .pragma("wal_autocheckpoint", wal::WRITER_PAGES),
            )
            .await?;
        let checkpointer = Checkpointer::start(&options).await?;
        // Readers map the file (up to 1 GiB of address space, not memory) so that hot pages are
        // read without a system call each; the decision's lookups are mostly such pages.
        let readers =
            std::thread::available_parallelism().map_or(4, |n| (n.get() * 2).clamp(4, 16));
        let read = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", "-16384")
                    .pragma("mmap_size", "1073741824"),
            )
            .await?;
        let hot = HotReaders::new(options.get_filename().to_path_buf());
        let checks = CheckIndex::open(&CheckIndex::path_beside(options.get_filename())).await?;
        let audit_writer = {
            let (write, keys) = (write.clone(), keys.clone());
            let mut conn = audit_thread::open(options.get_filename())?;
            let runtime = tokio::runtime::Handle::current();
            AuditWriter::spawn_thread("otv-audit", move |events| {
                let _lock = audit_thread::WriteLock::take(&runtime, &write)?;
                audit_thread::append(&mut conn, &keys, events)
            })?
        };
        let check_queue = CheckQueue::start(options.get_filename(), write.clone(), keys.clone())?;
        Ok(SqliteStore {
            read,
            write,
            keys,
            audit_writer,
            check_queue,
            hot,
            checks,
            _checkpointer: checkpointer,
            _scratch: scratch,
        })
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>> {
        Ok(self.write.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn single_connection() -> SqlitePoolOptions {
    // A local file does not drop connections the way a network does: testing each one before
    // use would only add a round trip to SQLite's thread to every query.
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
}

fn t(v: DateTime<Utc>) -> i64 {
    to_epoch_micros(v)
}

/// One answer as `json_array(…)` of [`answer_columns!`] gives it.
type JsonAnswer = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    i64,
    String,
    String,
    String,
);

/// Reads the answers of one citizen, aggregated by SQLite into a single JSON array. One row
/// instead of one per answer: sqlx hands every row from SQLite's thread to the caller's
/// separately, and those hand-offs, not SQLite, were most of the decision's time.
fn read_answers_json(json: &str) -> Result<Vec<Answer>> {
    let rows: Vec<JsonAnswer> =
        serde_json::from_str(json).map_err(|_| codec::corrupt("answers (aggregated)"))?;
    rows.iter()
        .map(|r| {
            AnswerCols {
                holder_kind: &r.0,
                holder_code: &r.1,
                data_category: &r.2,
                consulter_kind: &r.3,
                consulter_code: &r.4,
                effect: &r.5,
                valid_from: from_epoch_micros(r.6, "valid_from")?,
                valid_until: r
                    .7
                    .map(|v| from_epoch_micros(v, "valid_until"))
                    .transpose()?,
                state: &r.8,
                recorded_at: from_epoch_micros(r.9, "recorded_at")?,
                channel: &r.10,
                actor: Cow::Borrowed(&r.11),
                catalogue_version: &r.12,
            }
            .to_answer()
        })
        .collect()
}

/// Creates the citizen if unknown and returns the id, touching `updated_at`: for a change to
/// the citizen's profile. (The single writer already applies changes one after the other.)
async fn lock_citizen(
    conn: &mut SqliteConnection,
    keys: &Keys,
    bsn: &Bsn,
    now: i64,
) -> Result<Uuid> {
    let pseudonym = keys.pseudonym(bsn);
    let encrypted = keys.encrypt_bsn(bsn, &pseudonym);
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (bsn_pseudonym) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&pseudonym[..])
    .bind(encrypted)
    .bind(now)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Creates the citizen if unknown and returns the id, leaving an existing row untouched: for
/// registrations that only need to point at the citizen.
async fn ensure_citizen(
    conn: &mut SqliteConnection,
    keys: &Keys,
    pseudonym: &[u8; 32],
    bsn: &Bsn,
    now: i64,
) -> Result<Uuid> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (bsn_pseudonym) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&pseudonym[..])
    .bind(keys.encrypt_bsn(bsn, pseudonym))
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(id);
    }
    Ok(
        sqlx::query_scalar("SELECT id FROM citizens WHERE bsn_pseudonym = ?")
            .bind(&pseudonym[..])
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Registers one subscription inside the caller's transaction (the citizen is created if
/// unknown). A repeated registration (same connector, patient and source system) changes
/// nothing: the first one stays, which makes retries by a connector harmless.
async fn register(
    conn: &mut SqliteConnection,
    keys: &Keys,
    pseudonym: &[u8; 32],
    s: &NewSubscription,
    now: i64,
) -> Result<Registration> {
    let citizen = ensure_citizen(&mut *conn, keys, pseudonym, &s.bsn, now).await?;
    let created: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
         gateway_system, endpoint, payload, birth_date, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
         ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING RETURNING id",
    )
    .bind(citizen)
    .bind(Uuid::now_v7())
    .bind(s.holder_ura.as_str())
    .bind(s.holder_type.as_str())
    .bind(&s.connector_id)
    .bind(&s.source_system)
    .bind(&s.gateway_system)
    .bind(&s.endpoint)
    .bind(&s.payload)
    .bind(s.birth_date)
    .bind(now)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        return Ok(Registration::Created(id));
    }
    let existing = sqlx::query_scalar(
        "SELECT id FROM subscriptions WHERE connector_id = ? AND citizen_id = ? AND source_system = ?",
    )
    .bind(&s.connector_id)
    .bind(citizen)
    .bind(&s.source_system)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Registration::Existing(existing))
}

/// The columns of an audit record, in the order both appends bind them.
macro_rules! audit_columns {
    () => {
        "seq, at, event, patient, actor, organisation, mandated, request_id, decision, reason, \
         emergency, channel, details, prev_hash, hash"
    };
}

/// The statements of an append that both the sqlx appends here and the audit thread
/// (`sqlite/audit_thread.rs`, on rusqlite) run: one chain, written the same way by both.
const AUDIT_INSERT: &str = concat!(
    "INSERT INTO audit_log (",
    audit_columns!(),
    ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
);
const AUDIT_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
const AUDIT_HEAD_MOVE: &str = "UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1";
const CHECKPOINT_INSERT: &str = "INSERT INTO audit_checkpoints (seq, hash, signed_at, signature, public_key) \
     VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING";

/// Appends one record to the chain inside the caller's write transaction.
async fn append_audit(conn: &mut SqliteConnection, keys: &Keys, event: &AuditEvent) -> Result<i64> {
    append_audit_batch(conn, keys, std::slice::from_ref(event)).await
}

/// Appends records to the chain, in order, inside the caller's write transaction (one statement
/// for all of them); returns the sequence number of the first.
async fn append_audit_batch(
    conn: &mut SqliteConnection,
    keys: &Keys,
    events: &[AuditEvent],
) -> Result<i64> {
    let (head, mut prev): (i64, Vec<u8>) = sqlx::query_as(AUDIT_HEAD).fetch_one(&mut *conn).await?;
    let mut records = Vec::with_capacity(events.len());
    for (seq, event) in (head + 1..).zip(events) {
        let p = Prepared::new(seq, event, &prev);
        prev.clone_from(&p.hash);
        records.push(p);
    }
    let mut insert = QueryBuilder::new(concat!("INSERT INTO audit_log (", audit_columns!(), ") "));
    insert.push_values(&records, |mut row, p| {
        let e = &p.event;
        row.push_bind(p.seq)
            .push_bind(t(e.at))
            .push_bind(&e.event)
            .push_bind(&e.patient)
            .push_bind(&e.actor)
            .push_bind(&e.organisation)
            .push_bind(&e.mandated)
            .push_bind(&e.request_id)
            .push_bind(&e.decision)
            .push_bind(&e.reason)
            .push_bind(e.emergency)
            .push_bind(&e.channel)
            .push_bind(&p.details)
            .push_bind(&p.prev_hash)
            .push_bind(&p.hash);
    });
    insert.build().execute(&mut *conn).await?;
    let last = records.last().expect("at least one audit record");
    sqlx::query(AUDIT_HEAD_MOVE)
        .bind(last.seq)
        .bind(&last.hash)
        .execute(&mut *conn)
        .await?;
    for p in records.iter().filter(|p| p.seq % CHECKPOINT_EVERY == 0) {
        insert_checkpoint(conn, &Checkpoint::sign(keys, p.seq, &p.hash)).await?;
    }
    Ok(head + 1)
}

/// Queues a notification event (the outbox, PRODUCT.md §11) inside the caller's transaction, so
/// that it is written with the change that causes it or not at all.
async fn enqueue(
    conn: &mut SqliteConnection,
    citizen: Uuid,
    kind: &str,
    payload: String,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, created_at, available_at, ordering_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(Uuid::now_v7())
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(now)
    .bind(now)
    // A citizen's changes are delivered in order (the outbox engine, helper D).
    .bind(crate::outbox::default_ordering_key(kind, citizen))
    .execute(&mut *conn)
    .await?;
    crate::outbox::count_write();
    Ok(())
}

async fn insert_checkpoint(conn: &mut SqliteConnection, c: &Checkpoint) -> Result<()> {
    sqlx::query(CHECKPOINT_INSERT)
        .bind(c.seq)
        .bind(&c.hash)
        .bind(t(codec::now()))
        .bind(&c.signature)
        .bind(&c.public_key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Backend for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn patient_reference(&self, bsn: &Bsn) -> String {
        self.keys.patient_reference(bsn)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.write).await?;
        // The audit log exists now, so its index of consent checks can follow it.
        self.checks.start(&self.read);
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn upsert_providers(&self, providers: &[Provider]) -> Result<()> {
        let now = t(codec::now());
        let mut tx = self.begin_write().await?;
        for chunk in providers.chunks(MAX_PARAMS / 5) {
            let mut b = QueryBuilder::new(
                "INSERT INTO providers (ura, name, organisation_type, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut r, p| {
                r.push_bind(p.ura.as_str())
                    .push_bind(p.name.as_str())
                    .push_bind(p.organisation_type.as_str())
                    .push_bind(now)
                    .push_bind(now);
            });
            // A URA twice in one statement is fine: SQLite applies the rows in order.
            b.push(
                " ON CONFLICT (ura) DO UPDATE SET name = excluded.name, \
                 organisation_type = excluded.organisation_type, updated_at = excluded.updated_at",
            );
            b.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn provider(&self, ura: &Ura) -> Result<Option<Provider>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, organisation_type FROM providers WHERE ura = ?")
                .bind(ura.as_str())
                .fetch_optional(&self.read)
                .await?;
        row.map(|(name, t)| {
            let organisation_type =
                OrgType::parse(&t).map_err(|_| codec::corrupt("providers.organisation_type"))?;
            Ok(Provider {
                ura: ura.clone(),
                name,
                organisation_type,
            })
        })
        .transpose()
    }

    async fn upsert_connector(&self, c: &Connector) -> Result<()> {
        let now = t(codec::now());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO connectors (id, name, certificate_sha256, created_at, updated_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             certificate_sha256 = excluded.certificate_sha256, updated_at = excluded.updated_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.certificate_sha256)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM connector_uras WHERE connector_id = ?")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        // An exchange system may act for thousands of URAs: many rows per statement.
        for chunk in c.acts_for.chunks(MAX_PARAMS / 2) {
            let mut b = QueryBuilder::new("INSERT INTO connector_uras (connector_id, ura) ");
            b.push_values(chunk, |mut r, ura| {
                r.push_bind(c.id.as_str()).push_bind(ura.as_str());
            });
            b.push(" ON CONFLICT DO NOTHING");
            b.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn connector(&self, id: &str) -> Result<Option<Connector>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT name, certificate_sha256 FROM connectors WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        let Some((name, certificate_sha256)) = row else {
            return Ok(None);
        };
        let uras: Vec<String> = sqlx::query_scalar(
            "SELECT ura FROM connector_uras WHERE connector_id = ? ORDER BY ura",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        let acts_for = uras
            .iter()
            .map(|u| Ura::parse(u).map_err(|_| codec::corrupt("connector_uras.ura")))
            .collect::<Result<_>>()?;
        Ok(Some(Connector {
            id: id.to_owned(),
            name,
            certificate_sha256,
            acts_for,
        }))
    }

    async fn upsert_citizen(&self, bsn: &Bsn, d: &CitizenDetails) -> Result<Uuid> {
        let now = t(codec::now());
        let pseudonym = self.keys.pseudonym(bsn);
        let encrypted = self.keys.encrypt_bsn(bsn, &pseudonym);
        let mut tx = self.begin_write().await?;
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, name, email, birth_date, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (bsn_pseudonym) DO UPDATE SET \
             name = coalesce(excluded.name, citizens.name), email = coalesce(excluded.email, citizens.email), \
             birth_date = coalesce(excluded.birth_date, citizens.birth_date), updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(&pseudonym[..])
        .bind(encrypted)
        .bind(&d.name)
        .bind(&d.email)
        .bind(d.birth_date)
        .bind(now)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn citizen_bsn(&self, citizen: Uuid) -> Result<Option<Bsn>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT bsn_encrypted, bsn_pseudonym FROM citizens WHERE id = ?")
                .bind(citizen)
                .fetch_optional(&self.read)
                .await?;
        row.map(|(sealed, pseudonym)| self.keys.decrypt_bsn(&sealed, &pseudonym))
            .transpose()
    }

    async fn record_answers(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64> {
        self.write_answers(bsn, answers, audit, false).await
    }

    async fn decline_pending(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64> {
        self.write_answers(bsn, answers, audit, true).await
    }

    async fn profile(&self, bsn: &Bsn) -> Result<Vec<Answer>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let json: String = sqlx::query_scalar(concat!(
            "SELECT json_group_array(json_array(",
            answer_columns!(),
            ")) FROM answers WHERE superseded_at IS NULL AND citizen_id = ",
            "(SELECT id FROM citizens WHERE bsn_pseudonym = ?)"
        ))
        .bind(&pseudonym[..])
        .fetch_one(&self.read)
        .await?;
        read_answers_json(&json)
    }

    async fn answers_between(&self, bsn: &Bsn, sides: &Sides) -> Result<Vec<Answer>> {
        self.hot.answers_between(&self.keys.pseudonym(bsn), sides)
    }

    async fn subscriptions_of(&self, bsn: &Bsn) -> Result<Vec<Subscription>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let rows = sqlx::query(
            "SELECT holder_ura, holder_type, connector_id, source_system, gateway_system, endpoint, payload \
             FROM subscriptions WHERE status = 'active' AND citizen_id = \
             (SELECT id FROM citizens WHERE bsn_pseudonym = ?) ORDER BY id",
        )
        .bind(&pseudonym[..])
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(codec::read_subscription).collect()
    }

    async fn answer_history(&self, bsn: &Bsn) -> Result<Vec<Answer>> {
        let pseudonym = self.keys.pseudonym(bsn);
        // UUIDv7 ids order the answers as they were stored; recorded_at is the caller's and
        // may lie in the past (migrated answers).
        let json: String = sqlx::query_scalar(concat!(
            "SELECT json_group_array(json_array(",
            answer_columns!(),
            ") ORDER BY id) FROM answers WHERE citizen_id = ",
            "(SELECT id FROM citizens WHERE bsn_pseudonym = ?)"
        ))
        .bind(&pseudonym[..])
        .fetch_one(&self.read)
        .await?;
        read_answers_json(&json)
    }

    async fn insert_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<()> {
        let now = t(codec::now());
        let mut tx = self.begin_write().await?;
        for (pseudonym, s) in in_pseudonym_order(&self.keys, subscriptions) {
            register(&mut tx, &self.keys, &pseudonym, s, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_subscription(
        &self,
        s: &NewSubscription,
        audit: &AuditEvent,
    ) -> Result<Registration> {
        let now = t(codec::now());
        let pseudonym = self.keys.pseudonym(&s.bsn);
        let mut tx = self.begin_write().await?;
        let registration = register(&mut tx, &self.keys, &pseudonym, s, now).await?;
        let (id, outcome) = match registration {
            Registration::Created(id) => (id, "created"),
            Registration::Existing(id) => (id, "existing"),
        };
        append_audit(
            &mut tx,
            &self.keys,
            &audit.about_subscription(id, Some(outcome)),
        )
        .await?;
        tx.commit().await?;
        Ok(registration)
    }

    async fn subscription(&self, connector: &str, id: Uuid) -> Result<Option<SubscriptionRecord>> {
        let row: Option<SubscriptionRow> = sqlx::query_as(subscription_record_query!("?", "?"))
            .bind(connector)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| r.into_record(&self.keys)).transpose()
    }

    async fn update_subscription(
        &self,
        connector: &str,
        id: Uuid,
        change: &SubscriptionChange,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE subscriptions SET endpoint = ?, payload = ?, birth_date = ?, gateway_system = ?, \
             status = ?, updated_at = ? WHERE connector_id = ? AND id = ?",
        )
        .bind(&change.endpoint)
        .bind(&change.payload)
        .bind(change.birth_date)
        .bind(&change.gateway_system)
        .bind(change.state.as_str())
        .bind(t(codec::now()))
        .bind(connector)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let row: SubscriptionRow = sqlx::query_as(subscription_record_query!("?", "?"))
            .bind(connector)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, &audit.about_subscription(id, None)).await?;
        tx.commit().await?;
        row.into_record(&self.keys).map(Some)
    }

    async fn delete_subscription(
        &self,
        connector: &str,
        id: Uuid,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>> {
        let mut tx = self.begin_write().await?;
        let row: Option<SubscriptionRow> = sqlx::query_as(subscription_record_query!("?", "?"))
            .bind(connector)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM subscriptions WHERE connector_id = ? AND id = ?")
            .bind(connector)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, &audit.about_subscription(id, None)).await?;
        tx.commit().await?;
        row.into_record(&self.keys).map(Some)
    }

    async fn audit(&self, event: &AuditEvent) -> Result<i64> {
        self.audit_writer.append(event.clone()).await
    }

    async fn audit_check(&self, event: AuditEvent) -> Result<()> {
        self.check_queue.append(event).await
    }

    async fn audit_checkpoint(&self) -> Result<Option<i64>> {
        self.check_queue.flush().await?;
        let mut tx = self.begin_write().await?;
        let (seq, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        if seq == 0 {
            return Ok(None);
        }
        insert_checkpoint(&mut tx, &Checkpoint::sign(&self.keys, seq, &hash)).await?;
        tx.commit().await?;
        Ok(Some(seq))
    }

    async fn audit_verify(&self) -> Result<VerifyReport> {
        self.check_queue.flush().await?;
        // One read transaction: one snapshot for head, checkpoints and records, so a purge or
        // an append meanwhile does not show up half-way.
        let mut conn = self.read.begin().await?;
        let head: (i64, Vec<u8>) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        let checkpoints = sqlx::query_as::<_, (i64, Vec<u8>, Vec<u8>, Vec<u8>)>(
            "SELECT seq, hash, signature, public_key FROM audit_checkpoints WHERE seq <= ? ORDER BY seq",
        )
        .bind(head.0)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(seq, hash, signature, public_key)| Checkpoint { seq, hash, signature, public_key })
        .collect();
        let mut verifier = Verifier::new(&self.keys, head.clone(), checkpoints);
        let mut rows = sqlx::query(
            "SELECT seq, at, event, patient, actor, organisation, mandated, request_id, decision, reason, \
             emergency, channel, details, prev_hash, hash FROM audit_log WHERE seq <= ? ORDER BY seq",
        )
        .bind(head.0)
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let record = StoredRecord {
                seq: row.try_get(0)?,
                event: AuditEvent {
                    at: from_epoch_micros(row.try_get(1)?, "audit_log.at")?,
                    event: row.try_get(2)?,
                    patient: row.try_get(3)?,
                    actor: row.try_get(4)?,
                    organisation: row.try_get(5)?,
                    mandated: row.try_get(6)?,
                    request_id: row.try_get(7)?,
                    decision: row.try_get(8)?,
                    reason: row.try_get(9)?,
                    emergency: row.try_get(10)?,
                    channel: row.try_get(11)?,
                    details: serde_json::Value::Null,
                },
                details: row.try_get(12)?,
                prev_hash: row.try_get(13)?,
                hash: row.try_get(14)?,
            };
            if !verifier.record(&record) {
                break;
            }
        }
        drop(rows);
        Ok(verifier.finish())
    }

    async fn audit_purge(&self, before: DateTime<Utc>) -> Result<u64> {
        self.check_queue.flush().await?;
        let mut tx = self.begin_write().await?;
        let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        // The first record that must stay bounds the purge. Times normally rise with seq, so the
        // scan stops right after the purged range.
        let keep: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_log WHERE at >= ? ORDER BY seq LIMIT 1")
                .bind(t(before))
                .fetch_optional(&mut *tx)
                .await?;
        let limit = keep.map_or(head, |k| k - 1);
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM audit_checkpoints WHERE seq <= ?")
                .bind(limit)
                .fetch_one(&mut *tx)
                .await?;
        let Some(checkpoint) = checkpoint else {
            return Ok(0);
        };
        let gone = sqlx::query("DELETE FROM audit_log WHERE seq <= ?")
            .bind(checkpoint)
            .execute(&mut *tx)
            .await?;
        // The checkpoint itself stays: it anchors the first remaining record.
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < ?")
            .bind(checkpoint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.checks.forget_through(checkpoint).await?;
        Ok(gone.rows_affected())
    }

    async fn outbox_pending(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(&self.read)
                .await?,
        )
    }

    async fn load_generated(&self, batch: &[GeneratedCitizen]) -> Result<()> {
        let now = t(codec::now());
        struct Row<'a> {
            id: Uuid,
            pseudonym: [u8; 32],
            encrypted: Vec<u8>,
            birth_date: NaiveDate,
            source: &'a GeneratedCitizen,
        }
        let citizens: Vec<Row> = batch
            .iter()
            .map(|g| {
                let pseudonym = self.keys.pseudonym(&g.bsn);
                let encrypted = self.keys.encrypt_bsn(&g.bsn, &pseudonym);
                Row {
                    id: Uuid::now_v7(),
                    pseudonym,
                    encrypted,
                    birth_date: g.birth_date,
                    source: g,
                }
            })
            .collect();
        let mut answers = Vec::new();
        for c in &citizens {
            for a in &c.source.answers {
                answers.push((c.id, AnswerCols::from_answer(a)?));
            }
        }
        let subscriptions: Vec<(Uuid, &NewSubscription)> = citizens
            .iter()
            .flat_map(|c| c.source.subscriptions.iter().map(move |s| (c.id, s)))
            .collect();

        let mut tx = self.begin_write().await?;
        for chunk in citizens.chunks(MAX_PARAMS / 6) {
            let mut b = QueryBuilder::new(
                "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, birth_date, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut r, c| {
                r.push_bind(c.id)
                    .push_bind(c.pseudonym.to_vec())
                    .push_bind(c.encrypted.clone())
                    .push_bind(c.birth_date)
                    .push_bind(now)
                    .push_bind(now);
            });
            b.build().execute(&mut *tx).await?;
        }
        for chunk in answers.chunks(MAX_PARAMS / (ANSWER_COLUMNS + 2)) {
            let mut b = QueryBuilder::new(concat!(
                "INSERT INTO answers (citizen_id, id, ",
                answer_columns!(),
                ") "
            ));
            b.push_values(chunk, |mut r, (citizen, c)| {
                r.push_bind(*citizen)
                    .push_bind(Uuid::now_v7())
                    .push_bind(c.holder_kind)
                    .push_bind(c.holder_code)
                    .push_bind(c.data_category)
                    .push_bind(c.consulter_kind)
                    .push_bind(c.consulter_code)
                    .push_bind(c.effect)
                    .push_bind(t(c.valid_from))
                    .push_bind(c.valid_until.map(t))
                    .push_bind(c.state)
                    .push_bind(t(c.recorded_at))
                    .push_bind(c.channel)
                    .push_bind(c.actor.to_string())
                    .push_bind(c.catalogue_version);
            });
            b.build().execute(&mut *tx).await?;
        }
        for chunk in subscriptions.chunks(MAX_PARAMS / 12) {
            let mut b = QueryBuilder::new(
                "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
                 gateway_system, endpoint, payload, birth_date, created_at, updated_at) ",
            );
            b.push_values(chunk, |mut r, (citizen, s)| {
                r.push_bind(*citizen)
                    .push_bind(Uuid::now_v7())
                    .push_bind(s.holder_ura.as_str())
                    .push_bind(s.holder_type.as_str())
                    .push_bind(s.connector_id.as_str())
                    .push_bind(s.source_system.as_str())
                    .push_bind(s.gateway_system.as_str())
                    .push_bind(s.endpoint.as_str())
                    .push_bind(s.payload.as_str())
                    .push_bind(s.birth_date)
                    .push_bind(now)
                    .push_bind(now);
            });
            b.push(" ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING");
            b.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats> {
        self.check_queue.flush().await?;
        let at = codec::now();
        let (citizens, answers, subscriptions, audit_records, size_bytes): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM citizens), (SELECT count(*) FROM answers), \
             (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM audit_log), \
             (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size())",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(StoreStats {
            citizens,
            answers,
            subscriptions,
            audit_records,
            size_bytes,
            at: Some(at),
        })
    }

    async fn import_progress(
        &self,
        connector: &str,
        import_id: &str,
    ) -> Result<Option<crate::ImportProgress>> {
        let mut conn = self.read.acquire().await?;
        read_import(&mut conn, connector, import_id).await
    }

    async fn commit_import_chunk(
        &self,
        chunk: &crate::ImportChunk<'_>,
    ) -> Result<crate::ImportCommit> {
        commit_import(self, chunk).await
    }

    // -----------------------------------------------------------------------------------------
    // The citizen portal.

    async fn create_portal_session(
        &self,
        token_sha256: &[u8; 32],
        s: &PortalSession,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<()> {
        let actor = self.keys.pseudonym(&s.actor);
        let subject = self.keys.pseudonym(&s.subject);
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE last_seen_at < ?")
            .bind(t(idle_cutoff))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_sessions (token_sha256, actor_pseudonym, actor_encrypted, subject_pseudonym, \
             subject_encrypted, actor_name, subject_name, subject_birth_date, csrf_token, terms_version, login_at, \
             last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token_sha256[..])
        .bind(&actor[..])
        .bind(self.keys.encrypt_bsn(&s.actor, &actor))
        .bind(&subject[..])
        .bind(self.keys.encrypt_bsn(&s.subject, &subject))
        .bind(&s.actor_name)
        .bind(&s.subject_name)
        .bind(s.subject_birth_date)
        .bind(&s.csrf_token)
        .bind(&s.terms_version)
        .bind(t(s.login_at))
        .bind(t(s.last_seen_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_portal_session(
        &self,
        token_sha256: &[u8; 32],
        idle_cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<PortalSession>> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE portal_sessions SET last_seen_at = ? WHERE token_sha256 = ? AND last_seen_at >= ? \
             RETURNING actor_pseudonym, actor_encrypted, subject_pseudonym, subject_encrypted, actor_name, \
             subject_name, subject_birth_date, csrf_token, terms_version, login_at, last_seen_at",
        )
        .bind(t(now))
        .bind(&token_sha256[..])
        .bind(t(idle_cutoff))
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            sqlx::query("DELETE FROM portal_sessions WHERE token_sha256 = ?")
                .bind(&token_sha256[..])
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let Some(row) = row else { return Ok(None) };
        let bsn = |sealed: usize, pseudonym: usize| -> Result<Bsn> {
            let sealed: Vec<u8> = row.try_get(sealed)?;
            let pseudonym: Vec<u8> = row.try_get(pseudonym)?;
            self.keys.decrypt_bsn(&sealed, &pseudonym)
        };
        Ok(Some(PortalSession {
            actor: bsn(1, 0)?,
            subject: bsn(3, 2)?,
            actor_name: row.try_get(4)?,
            subject_name: row.try_get(5)?,
            subject_birth_date: row.try_get(6)?,
            csrf_token: row.try_get(7)?,
            terms_version: row.try_get(8)?,
            login_at: from_epoch_micros(row.try_get(9)?, "portal_sessions.login_at")?,
            last_seen_at: from_epoch_micros(row.try_get(10)?, "portal_sessions.last_seen_at")?,
        }))
    }

    async fn delete_portal_session(&self, token_sha256: &[u8; 32]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE token_sha256 = ?")
            .bind(&token_sha256[..])
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn terms_accepted(&self, bsn: &Bsn, version: &str) -> Result<bool> {
        let pseudonym = self.keys.pseudonym(bsn);
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM terms_acceptances WHERE bsn_pseudonym = ? AND version = ?",
        )
        .bind(&pseudonym[..])
        .bind(version)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    async fn accept_terms(
        &self,
        bsn: &Bsn,
        version: &str,
        token_sha256: &[u8; 32],
        audit: &AuditEvent,
    ) -> Result<()> {
        let now = t(codec::now());
        let pseudonym = self.keys.pseudonym(bsn);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO terms_acceptances (bsn_pseudonym, version, accepted_at) VALUES (?, ?, ?) \
             ON CONFLICT (bsn_pseudonym, version) DO NOTHING",
        )
        .bind(&pseudonym[..])
        .bind(version)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE portal_sessions SET terms_version = ? WHERE token_sha256 = ?")
            .bind(version)
            .bind(&token_sha256[..])
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn citizen_details(&self, bsn: &Bsn) -> Result<Option<CitizenDetails>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let row: Option<(Option<String>, Option<String>, Option<NaiveDate>)> =
            sqlx::query_as("SELECT name, email, birth_date FROM citizens WHERE bsn_pseudonym = ?")
                .bind(&pseudonym[..])
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(name, email, birth_date)| CitizenDetails {
            name,
            email,
            birth_date,
        }))
    }

    async fn search_providers(&self, q: &ProviderQuery<'_>) -> Result<Vec<Provider>> {
        let types = serde_json::to_string(
            &q.organisation_types
                .iter()
                .map(OrgType::as_str)
                .collect::<Vec<_>>(),
        )
        .expect("strings serialise");
        // LIKE is case-insensitive for ASCII in SQLite.
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT ura, name, organisation_type FROM providers \
             WHERE (? <> '' AND (name LIKE ? ESCAPE '\\' OR ura = ?)) \
             OR organisation_type IN (SELECT value FROM json_each(?)) ORDER BY name, ura LIMIT ?",
        )
        .bind(q.text)
        .bind(q.like_pattern())
        .bind(q.text)
        .bind(types)
        .bind(i64::from(q.limit))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(ura, name, t)| {
                Ok(Provider {
                    ura: Ura::parse(&ura).map_err(|_| codec::corrupt("providers.ura"))?,
                    name,
                    organisation_type: OrgType::parse(&t)
                        .map_err(|_| codec::corrupt("providers.organisation_type"))?,
                })
            })
            .collect()
    }
    // -----------------------------------------------------------------------------------------
    // The citizen's own data (settings, e-mail, history, export, deletion, receipts); the
    // work is in the functions at the end of this file.

    fn sign_receipt(&self, message: &[u8]) -> Vec<u8> {
        self.keys.sign_receipt(message)
    }

    fn receipt_public_key(&self) -> Vec<u8> {
        self.keys.receipt_public_key()
    }

    async fn citizen_settings(&self, bsn: &Bsn) -> Result<crate::CitizenSettings> {
        let mut conn = self.read.acquire().await?;
        read_settings(&mut conn, &self.keys.pseudonym(bsn)).await
    }

    async fn update_citizen_settings(
        &self,
        bsn: &Bsn,
        change: &crate::SettingsChange,
        audit: &AuditEvent,
    ) -> Result<crate::CitizenSettings> {
        update_settings(self, bsn, change, audit).await
    }

    async fn request_email_verification(
        &self,
        bsn: &Bsn,
        request: &crate::EmailVerification<'_>,
        audit: &AuditEvent,
    ) -> Result<()> {
        request_email(self, bsn, request, audit).await
    }

    async fn confirm_email(
        &self,
        bsn: &Bsn,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<crate::EmailConfirmation> {
        confirm_email(self, bsn, token_sha256, now, audit).await
    }

    async fn remove_email(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<()> {
        remove_email(self, bsn, audit).await
    }

    async fn history(
        &self,
        bsn: &Bsn,
        period: &crate::Period,
        limit: usize,
    ) -> Result<crate::History> {
        self.check_queue.flush().await?;
        history(self, bsn, period, limit).await
    }

    async fn index_consent_checks(&self) -> Result<u64> {
        self.check_queue.flush().await?;
        self.checks.catch_up(&self.read).await
    }

    async fn change_record(&self, bsn: &Bsn, seq: i64) -> Result<Option<crate::ChangeRecord>> {
        change_record(self, bsn, seq).await
    }

    async fn export_citizen(&self, bsn: &Bsn) -> Result<Option<crate::CitizenExport>> {
        self.check_queue.flush().await?;
        export_citizen(self, bsn).await
    }

    async fn delete_citizen(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<crate::Deletion> {
        delete_citizen(self, bsn, audit).await
    }

    // -----------------------------------------------------------------------------------------
    // Minors and their parents or guardians: the work is in `sqlite/guardian.rs`.

    async fn issue_pairing_code(
        &self,
        child: &Bsn,
        code: &str,
        expires_at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        guardian::issue(self, child, code, expires_at, audit).await
    }

    async fn pairing_code_status(
        &self,
        child: &Bsn,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::PairingCodeStatus>> {
        guardian::status(self, child, now).await
    }

    async fn redeem_pairing_code(
        &self,
        guardian: &Bsn,
        code: &str,
        now: DateTime<Utc>,
        limit: &crate::PairingLimit,
        audit: &AuditEvent,
    ) -> Result<crate::Redemption> {
        guardian::redeem(self, guardian, code, now, limit, audit).await
    }

    async fn linked_children(&self, guardian: &Bsn) -> Result<Vec<crate::LinkedChild>> {
        guardian::children(self, guardian).await
    }

    async fn linked_child(&self, guardian: &Bsn, link: Uuid) -> Result<Option<crate::LinkedChild>> {
        guardian::child(self, guardian, link).await
    }

    // --- citizen e-mail: the work is in `sqlite/mail.rs` ---

    async fn mail_contact(&self, citizen: Uuid) -> Result<Option<crate::MailContact>> {
        mail::contact(self, citizen).await
    }

    async fn scan_consent_checks(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<crate::CheckScan> {
        self.check_queue.flush().await?;
        mail::scan(self, limit, now).await
    }

    async fn take_check_digests(
        &self,
        day: NaiveDate,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        mail::take_digests(self, day, force, now).await
    }

    async fn enqueue_mail_once(
        &self,
        citizen: Uuid,
        kind: &str,
        key: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool> {
        mail::enqueue_once(self, citizen, kind, key, payload, available_at).await
    }

    // --- hand-offs: the work is in `sqlite/handoff.rs` ---

    async fn create_hand_off(
        &self,
        hand_off: &crate::NewHandOff<'_>,
        audit: &AuditEvent,
    ) -> Result<Uuid> {
        handoff::create(self, hand_off, audit).await
    }

    async fn take_hand_off(
        &self,
        token_sha256: &[u8; 32],
        session_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<crate::HandOff>> {
        handoff::take(self, token_sha256, session_sha256, now).await
    }

    async fn hand_off_of_session(
        &self,
        session_sha256: &[u8; 32],
    ) -> Result<Option<crate::HandOff>> {
        handoff::of_session(self, session_sha256).await
    }

    // --- enrolment tokens: the work is in `sqlite/enrolment.rs` ---

    async fn use_enrolment_token(
        &self,
        jti: &str,
        ura: &otv_core::Ura,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        enrolment::use_token(self, jti, ura, expires_at, now).await
    }

    async fn enrolment_token_used(&self, jti: &str) -> Result<bool> {
        enrolment::is_used(self, jti).await
    }

    // --- the outbox delivery engine (helper D) ---

    async fn enqueue_outbox(
        &self,
        citizen: Uuid,
        kind: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<Uuid> {
        outbox::enqueue(self, citizen, kind, payload, available_at).await
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>> {
        outbox::claim(self, worker, now, lease, limit).await
    }

    async fn complete_outbox(&self, id: Uuid, worker: &str, now: DateTime<Utc>) -> Result<bool> {
        outbox::complete(self, id, worker, now).await
    }

    async fn fail_outbox(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::Failure> {
        outbox::fail(self, id, worker, error, now).await
    }

    async fn park_outbox(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::park(self, id, worker, error, now).await
    }

    async fn release_outbox(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::release(self, id, worker, available_at).await
    }

    async fn fan_out_outbox(
        &self,
        id: Uuid,
        worker: &str,
        rows: &[crate::NewOutboxRow],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::fan_out(self, id, worker, rows, now).await
    }

    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<crate::OutboxStatus> {
        outbox::status(self, now).await
    }

    async fn dead_outbox(&self, limit: usize) -> Result<Vec<crate::OutboxRow>> {
        outbox::dead(self, limit).await
    }

    async fn outbox_row(&self, id: Uuid) -> Result<Option<crate::OutboxRow>> {
        outbox::row(self, id).await
    }

    async fn retry_dead_outbox(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64> {
        outbox::retry_dead(self, id, now).await
    }

    async fn notify_targets(&self, citizen: Uuid) -> Result<Vec<crate::NotifyTarget>> {
        outbox::targets(self, citizen).await
    }

    async fn notify_target(&self, citizen: Uuid, id: Uuid) -> Result<Option<crate::NotifyTarget>> {
        outbox::target(self, citizen, id).await
    }

    // --- migration: the work is in `sqlite/migration.rs` ---

    async fn migrate_answers(
        &self,
        items: &[crate::MigrationItem],
        audit: &AuditEvent,
    ) -> Result<Vec<crate::MigrationOutcome>> {
        migration::migrate(self, items, audit).await
    }

    async fn migration_seen_at(&self, bsn: &Bsn) -> Result<Option<DateTime<Utc>>> {
        migration::seen_at(self, bsn).await
    }

    async fn mark_migration_seen(
        &self,
        bsn: &Bsn,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<()> {
        migration::mark_seen(self, bsn, at, audit).await
    }
}

/// The stored progress of one bulk import.
async fn read_import(
    conn: &mut SqliteConnection,
    connector: &str,
    import_id: &str,
) -> Result<Option<crate::ImportProgress>> {
    type ImportRow = (i64, Vec<u8>, i64, i64, i64, String, bool, i64, i64);
    let row: Option<ImportRow> = sqlx::query_as(
        "SELECT committed_lines, prefix_sha256, created, already_registered, refused, refusals, complete, \
         started_at, updated_at FROM subscription_imports WHERE connector_id = ? AND import_id = ?",
    )
    .bind(connector)
    .bind(import_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((lines, prefix, created, existing, refused, refusals, complete, started, updated)) =
        row
    else {
        return Ok(None);
    };
    Ok(Some(crate::ImportProgress {
        connector_id: connector.to_owned(),
        import_id: import_id.to_owned(),
        committed_lines: lines as u64,
        prefix_sha256: prefix,
        created: created as u64,
        already_registered: existing as u64,
        refused: refused as u64,
        refusals: serde_json::from_str(&refusals)
            .map_err(|_| codec::corrupt("subscription_imports.refusals"))?,
        complete,
        started_at: from_epoch_micros(started, "subscription_imports.started_at")?,
        updated_at: from_epoch_micros(updated, "subscription_imports.updated_at")?,
    }))
}

/// One chunk of a bulk import in one write transaction: the citizens it needs, its
/// registrations (existing ones untouched), and the import's progress. Multi-row statements:
/// SQLite's own work per row is small, sqlx's hand-off per statement is not.
async fn commit_import(
    store: &SqliteStore,
    chunk: &crate::ImportChunk<'_>,
) -> Result<crate::ImportCommit> {
    let now = codec::now();
    let n = t(now);
    // The keyed work (HMAC, AES-GCM) happens before the write lock is taken. In pseudonym
    // order, the lookups of the citizens' index walk it once instead of jumping about.
    let mut rows: Vec<([u8; 32], &NewSubscription)> = chunk
        .subscriptions
        .iter()
        .map(|s| (store.keys.pseudonym(&s.bsn), s))
        .collect();
    rows.sort_by_key(|(pseudonym, _)| *pseudonym);
    let mut citizens = std::collections::BTreeMap::new();
    for (pseudonym, s) in &rows {
        citizens
            .entry(*pseudonym)
            .or_insert_with(|| store.keys.encrypt_bsn(&s.bsn, pseudonym));
    }
    let citizens: Vec<([u8; 32], Vec<u8>)> = citizens.into_iter().collect();

    let mut tx = store.begin_write().await?;
    let previous = read_import(&mut tx, chunk.connector_id, chunk.import_id).await?;
    if previous.as_ref().map_or(0, |p| p.committed_lines) != chunk.after_line {
        return Ok(crate::ImportCommit::Moved(previous));
    }
    for part in citizens.chunks(MAX_PARAMS / 5) {
        let mut b = QueryBuilder::new(
            "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) ",
        );
        b.push_values(part, |mut r, (pseudonym, encrypted)| {
            r.push_bind(Uuid::now_v7())
                .push_bind(pseudonym.to_vec())
                .push_bind(encrypted.clone())
                .push_bind(n)
                .push_bind(n);
        });
        b.push(" ON CONFLICT (bsn_pseudonym) DO NOTHING");
        b.build().execute(&mut *tx).await?;
    }
    let mut created = 0;
    for part in rows.chunks(MAX_PARAMS / 9 - 1) {
        let mut b = QueryBuilder::new(
            "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
             gateway_system, endpoint, payload, birth_date, created_at, updated_at) \
             SELECT c.id, v.column2, v.column3, v.column4, ",
        );
        b.push_bind(chunk.connector_id);
        b.push(", v.column5, v.column6, v.column7, v.column8, v.column9, ");
        b.push_bind(n);
        b.push(", ");
        b.push_bind(n);
        b.push(" FROM (");
        b.push_values(part, |mut r, (pseudonym, s)| {
            r.push_bind(pseudonym.to_vec())
                .push_bind(Uuid::now_v7())
                .push_bind(s.holder_ura.as_str())
                .push_bind(s.holder_type.as_str())
                .push_bind(s.source_system.as_str())
                .push_bind(s.gateway_system.as_str())
                .push_bind(s.endpoint.as_str())
                .push_bind(s.payload.as_str())
                .push_bind(s.birth_date);
        });
        // `WHERE true` tells SQLite's parser that the following ON belongs to the upsert.
        b.push(
            ") AS v JOIN citizens c ON c.bsn_pseudonym = v.column1 WHERE true \
             ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING",
        );
        created += b.build().execute(&mut *tx).await?.rows_affected();
    }
    let progress = crate::ImportProgress::advance(previous, chunk, created, now);
    sqlx::query(
        "INSERT INTO subscription_imports (connector_id, import_id, committed_lines, prefix_sha256, created, \
         already_registered, refused, refusals, complete, started_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (connector_id, import_id) DO UPDATE SET \
         committed_lines = excluded.committed_lines, prefix_sha256 = excluded.prefix_sha256, \
         created = excluded.created, already_registered = excluded.already_registered, \
         refused = excluded.refused, refusals = excluded.refusals, complete = excluded.complete, \
         updated_at = excluded.updated_at",
    )
    .bind(&progress.connector_id)
    .bind(&progress.import_id)
    .bind(progress.committed_lines as i64)
    .bind(&progress.prefix_sha256)
    .bind(progress.created as i64)
    .bind(progress.already_registered as i64)
    .bind(progress.refused as i64)
    .bind(serde_json::to_string(&progress.refusals).expect("refusals serialise"))
    .bind(progress.complete)
    .bind(t(progress.started_at))
    .bind(t(progress.updated_at))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(crate::ImportCommit::Committed { created, progress })
}

// ---------------------------------------------------------------------------------------------
// The citizen's own data: settings, e-mail verification, history, export, deletion, and the
// record of one change for its receipt. What the rows mean lives in `citizen`.

/// The audit event with the patient and `extra` details filled in.
fn citizen_event(
    keys: &Keys,
    bsn: &Bsn,
    audit: &AuditEvent,
    extra: serde_json::Value,
) -> AuditEvent {
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(keys.patient_reference(bsn));
    }
    citizen::merge_details(&mut event, extra);
    event
}

type SettingsRow = (
    Option<String>,
    Option<bool>,
    Option<String>,
    Option<bool>,
    Option<bool>,
    Option<i64>,
    Option<i64>,
);

async fn read_settings(
    conn: &mut SqliteConnection,
    pseudonym: &[u8; 32],
) -> Result<crate::CitizenSettings> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT c.email, s.notify_changes, s.notify_checks, s.lock_provider_changes, s.refuse_emergency, \
         s.email_verified_at, s.email_token_expires_at \
         FROM citizens c LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = ?",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *conn)
    .await?;
    let Some((email, changes, checks, lock, refuse, verified, expires)) = row else {
        return Ok(crate::CitizenSettings::default());
    };
    let d = crate::CitizenSettings::default();
    let time = |v: Option<i64>, c| v.map(|v| from_epoch_micros(v, c)).transpose();
    Ok(crate::CitizenSettings {
        notify_changes: changes.unwrap_or(d.notify_changes),
        notify_checks: match checks {
            Some(c) => crate::CheckNotice::parse(&c)
                .ok_or_else(|| codec::corrupt("citizen_settings.notify_checks"))?,
            None => d.notify_checks,
        },
        lock_provider_changes: lock.unwrap_or(d.lock_provider_changes),
        refuse_emergency: refuse.unwrap_or(d.refuse_emergency),
        email,
        email_verified_at: time(verified, "citizen_settings.email_verified_at")?,
        email_link_expires_at: time(expires, "citizen_settings.email_token_expires_at")?,
    })
}

/// Writes the four preferences of `s` for the citizen (creating the settings row).
async fn write_preferences(
    conn: &mut SqliteConnection,
    citizen: Uuid,
    s: &crate::CitizenSettings,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO citizen_settings (citizen_id, notify_changes, notify_checks, lock_provider_changes, \
         refuse_emergency, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (citizen_id) DO UPDATE SET \
         notify_changes = excluded.notify_changes, notify_checks = excluded.notify_checks, \
         lock_provider_changes = excluded.lock_provider_changes, refuse_emergency = excluded.refuse_emergency, \
         updated_at = excluded.updated_at",
    )
    .bind(citizen)
    .bind(s.notify_changes)
    .bind(s.notify_checks.as_str())
    .bind(s.lock_provider_changes)
    .bind(s.refuse_emergency)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update_settings(
    store: &SqliteStore,
    bsn: &Bsn,
    change: &crate::SettingsChange,
    audit: &AuditEvent,
) -> Result<crate::CitizenSettings> {
    let now = t(codec::now());
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.begin_write().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    let settings = change.apply(&read_settings(&mut tx, &pseudonym).await?);
    write_preferences(&mut tx, citizen, &settings, now).await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        citizen::preferences_json(&settings),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(settings)
}

async fn request_email(
    store: &SqliteStore,
    bsn: &Bsn,
    r: &crate::EmailVerification<'_>,
    audit: &AuditEvent,
) -> Result<()> {
    let now = t(codec::now());
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.begin_write().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    let settings = read_settings(&mut tx, &pseudonym).await?;
    write_preferences(&mut tx, citizen, &settings, now).await?;
    sqlx::query("UPDATE citizens SET email = ?, updated_at = ? WHERE id = ?")
        .bind(r.address)
        .bind(now)
        .bind(citizen)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = NULL, email_token_sha256 = ?, \
         email_token_expires_at = ?, updated_at = ? WHERE citizen_id = ?",
    )
    .bind(&r.token_sha256[..])
    .bind(t(r.expires_at))
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "set, waiting for verification" }),
    );
    let seq = append_audit(&mut tx, &store.keys, &event).await?;
    enqueue(
        &mut tx,
        citizen,
        crate::EMAIL_VERIFICATION,
        citizen::email_verification_payload(r, seq),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn confirm_email(
    store: &SqliteStore,
    bsn: &Bsn,
    token_sha256: &[u8; 32],
    at: DateTime<Utc>,
    audit: &AuditEvent,
) -> Result<crate::EmailConfirmation> {
    let now = t(codec::now());
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.begin_write().await?;
    type TokenRow = (Uuid, Option<Vec<u8>>, Option<i64>);
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT c.id, s.email_token_sha256, s.email_token_expires_at FROM citizens c \
         JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = ? AND c.email IS NOT NULL",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some((citizen, Some(stored), Some(expires))) = row else {
        return Ok(crate::EmailConfirmation::Unknown);
    };
    match citizen::check_token(&stored, token_sha256, expires <= t(at)) {
        crate::EmailConfirmation::Confirmed => {}
        other => return Ok(other),
    }
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = ?, email_token_sha256 = NULL, \
         email_token_expires_at = NULL, updated_at = ? WHERE citizen_id = ?",
    )
    .bind(t(at))
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "verified" }),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(crate::EmailConfirmation::Confirmed)
}

async fn remove_email(store: &SqliteStore, bsn: &Bsn, audit: &AuditEvent) -> Result<()> {
    let now = t(codec::now());
    let mut tx = store.begin_write().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    sqlx::query("UPDATE citizens SET email = NULL, updated_at = ? WHERE id = ?")
        .bind(now)
        .bind(citizen)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = NULL, email_token_sha256 = NULL, \
         email_token_expires_at = NULL, updated_at = ? WHERE citizen_id = ?",
    )
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "removed" }),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// An answer from `row`, its columns from `first` on in [`answer_columns!`] order.
fn answer_at(row: &sqlx::sqlite::SqliteRow, first: usize) -> Result<Answer> {
    let at = |i: usize, c: &str| -> Result<DateTime<Utc>> {
        from_epoch_micros(row.try_get(first + i)?, c)
    };
    let until: Option<i64> = row.try_get(first + 7)?;
    AnswerCols {
        holder_kind: row.try_get(first)?,
        holder_code: row.try_get(first + 1)?,
        data_category: row.try_get(first + 2)?,
        consulter_kind: row.try_get(first + 3)?,
        consulter_code: row.try_get(first + 4)?,
        effect: row.try_get(first + 5)?,
        valid_from: at(6, "valid_from")?,
        valid_until: until
            .map(|v| from_epoch_micros(v, "valid_until"))
            .transpose()?,
        state: row.try_get(first + 8)?,
        recorded_at: at(9, "recorded_at")?,
        channel: row.try_get(first + 10)?,
        actor: Cow::Borrowed(row.try_get(first + 11)?),
        catalogue_version: row.try_get(first + 12)?,
    }
    .to_answer()
}

async fn provider_names(
    conn: &mut SqliteConnection,
    uras: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut names = std::collections::BTreeMap::new();
    for chunk in uras.chunks(500) {
        let mut b = QueryBuilder::new("SELECT ura, name FROM providers WHERE ura IN (");
        let mut list = b.separated(", ");
        for u in chunk {
            list.push_bind(u.as_str());
        }
        b.push(")");
        let rows: Vec<(String, String)> = b.build_query_as().fetch_all(&mut *conn).await?;
        names.extend(rows);
    }
    Ok(names)
}

/// The patient's consent checks in `period`, newest first: from the index of checks up to its
/// cursor (`indexed`, read with `limit + 1` before the snapshot of `conn`), and from the audit
/// log itself after it (`sqlite/checks.rs`). Every record comes from the snapshot of `conn`.
async fn consent_checks(
    conn: &mut SqliteConnection,
    indexed: checks::Lookup,
    pseudonym: &[u8],
    period: &crate::Period,
    limit: usize,
) -> Result<(Vec<crate::ConsentCheck>, bool)> {
    let patient = hex::encode(pseudonym);
    let indexed = if checks::stands(&mut *conn, indexed.cursor, indexed.hash.as_deref()).await? {
        indexed
    } else {
        checks::Lookup::nothing()
    };
    let seqs = serde_json::to_string(&indexed.seqs).expect("numbers serialise");
    let (from, until) = (period.from.map(t), period.until.map(t));
    let rows = sqlx::query(
        "SELECT seq, at, event, organisation, emergency, details FROM audit_log \
         WHERE seq IN (SELECT value FROM json_each(?)) AND patient = ? \
         UNION ALL \
         SELECT seq, at, event, organisation, emergency, details FROM audit_log \
         WHERE seq > ? AND patient = ? AND event IN (?, ?) \
         AND (? IS NULL OR at >= ?) AND (? IS NULL OR at < ?) \
         ORDER BY 2 DESC, 1 DESC LIMIT ?",
    )
    .bind(seqs)
    .bind(&patient)
    .bind(indexed.cursor)
    .bind(&patient)
    .bind(citizen::CHECK_EVENTS[0])
    .bind(citizen::CHECK_EVENTS[1])
    .bind(from)
    .bind(from)
    .bind(until)
    .bind(until)
    .bind(limit as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() > limit;
    let mut checks = Vec::new();
    for row in rows.iter().take(limit) {
        checks.extend(citizen::checks_of(&citizen::CheckRow {
            seq: row.try_get(0)?,
            at: from_epoch_micros(row.try_get(1)?, "audit_log.at")?,
            event: row.try_get(2)?,
            organisation: row.try_get(3)?,
            emergency: row.try_get(4)?,
            details: row.try_get(5)?,
        }));
    }
    let names = provider_names(conn, &citizen::uras_of(&checks)).await?;
    citizen::name_checks(&mut checks, &names);
    Ok((checks, more))
}

async fn history(
    store: &SqliteStore,
    bsn: &Bsn,
    period: &crate::Period,
    limit: usize,
) -> Result<crate::History> {
    let pseudonym = store.keys.pseudonym(bsn);
    let (from, until) = (period.from.map(t), period.until.map(t));
    let indexed = store.checks.lookup(&pseudonym, period, limit + 1).await?;
    let mut conn = store.read.begin().await?;
    let rows = sqlx::query(concat!(
        "SELECT change_seq, ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = (SELECT id FROM citizens WHERE bsn_pseudonym = ?) \
         AND (? IS NULL OR recorded_at >= ?) AND (? IS NULL OR recorded_at < ?) ORDER BY id DESC LIMIT ?"
    ))
    .bind(&pseudonym[..])
    .bind(from)
    .bind(from)
    .bind(until)
    .bind(until)
    .bind(citizen::MAX_HISTORY_ROWS)
    .fetch_all(&mut *conn)
    .await?;
    let capped = rows.len() as i64 == citizen::MAX_HISTORY_ROWS;
    let answers = rows
        .iter()
        .map(|r| Ok((r.try_get::<Option<i64>, _>(0)?, answer_at(r, 1)?)))
        .collect::<Result<Vec<_>>>()?;
    let (changes, more_changes) = citizen::group_changes(answers, limit);
    let (checks, more_checks) =
        consent_checks(&mut conn, indexed, &pseudonym, period, limit).await?;
    Ok(crate::History {
        changes,
        more_changes: more_changes || capped,
        checks,
        more_checks,
    })
}

async fn change_record(
    store: &SqliteStore,
    bsn: &Bsn,
    seq: i64,
) -> Result<Option<crate::ChangeRecord>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let patient = store.keys.patient_reference(bsn);
    let mut conn = store.read.begin().await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = (SELECT id FROM citizens WHERE bsn_pseudonym = ?) \
         AND change_seq = ? ORDER BY id"
    ))
    .bind(&pseudonym[..])
    .bind(seq)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let answers = rows
        .iter()
        .map(|r| answer_at(r, 0))
        .collect::<Result<Vec<_>>>()?;
    type AuditRow = (i64, String, String, Option<String>, Option<String>);
    let audit: Option<AuditRow> = sqlx::query_as(
        "SELECT at, event, actor, organisation, channel FROM audit_log WHERE seq = ? AND patient = ?",
    )
    .bind(seq)
    .bind(&patient)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((at, event, actor, organisation, channel)) = audit else {
        return Ok(None);
    };
    Ok(Some(crate::ChangeRecord {
        seq,
        at: from_epoch_micros(at, "audit_log.at")?,
        event,
        actor,
        organisation,
        channel,
        patient,
        answers,
    }))
}

async fn export_citizen(store: &SqliteStore, bsn: &Bsn) -> Result<Option<crate::CitizenExport>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let patient = store.keys.patient_reference(bsn);
    let limit = citizen::MAX_EXPORT_CHECKS;
    let indexed = (store.checks)
        .lookup(&pseudonym, &crate::Period::default(), limit + 1)
        .await?;
    let mut conn = store.read.begin().await?;
    type CitizenRow = (Uuid, Option<String>, Option<String>, Option<NaiveDate>, i64);
    let row: Option<CitizenRow> = sqlx::query_as(
        "SELECT id, name, email, birth_date, created_at FROM citizens WHERE bsn_pseudonym = ?",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *conn)
    .await?;
    let Some((citizen, name, email, birth_date, created)) = row else {
        return Ok(None);
    };
    let settings = read_settings(&mut conn, &pseudonym).await?;
    let rows = sqlx::query(concat!(
        "SELECT change_seq, superseded_at, ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = ? ORDER BY id DESC"
    ))
    .bind(citizen)
    .fetch_all(&mut *conn)
    .await?;
    let answers = rows
        .iter()
        .map(|r| {
            let replaced: Option<i64> = r.try_get(1)?;
            Ok(crate::ExportAnswer {
                change_seq: r.try_get(0)?,
                replaced_at: replaced
                    .map(|v| from_epoch_micros(v, "answers.superseded_at"))
                    .transpose()?,
                answer: answer_at(r, 2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    type RegistrationRow = (String, Option<String>, String, String, i64);
    let subs: Vec<RegistrationRow> = sqlx::query_as(
        "SELECT s.holder_ura, p.name, s.holder_type, s.status, s.created_at FROM subscriptions s \
         LEFT JOIN providers p ON p.ura = s.holder_ura WHERE s.citizen_id = ? ORDER BY s.id",
    )
    .bind(citizen)
    .fetch_all(&mut *conn)
    .await?;
    let subscriptions = subs
        .into_iter()
        .map(|(holder_ura, holder_name, holder_type, status, created)| {
            Ok(crate::ExportSubscription {
                holder_ura,
                holder_name,
                holder_type,
                status,
                registered_at: from_epoch_micros(created, "subscriptions.created_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (consent_checks, _) = consent_checks(
        &mut conn,
        indexed,
        &pseudonym,
        &crate::Period::default(),
        limit,
    )
    .await?;
    let terms: Vec<(String, i64)> = sqlx::query_as(
        "SELECT version, accepted_at FROM terms_acceptances WHERE bsn_pseudonym = ? ORDER BY accepted_at",
    )
    .bind(&pseudonym[..])
    .fetch_all(&mut *conn)
    .await?;
    let terms_accepted = terms
        .into_iter()
        .map(|(version, at)| {
            Ok(crate::ExportTerms {
                version,
                accepted_at: from_epoch_micros(at, "terms_acceptances.accepted_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(crate::CitizenExport {
        exported_at: codec::now(),
        pseudonym: patient,
        details: crate::ExportDetails {
            name,
            birth_date,
            email,
            known_since: from_epoch_micros(created, "citizens.created_at")?,
        },
        settings,
        answers,
        subscriptions,
        consent_checks,
        terms_accepted,
    }))
}

async fn delete_citizen(
    store: &SqliteStore,
    bsn: &Bsn,
    audit: &AuditEvent,
) -> Result<crate::Deletion> {
    let now = t(codec::now());
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.begin_write().await?;
    let citizen: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM citizens WHERE bsn_pseudonym = ?")
            .bind(&pseudonym[..])
            .fetch_optional(&mut *tx)
            .await?;
    let mut deletion = crate::Deletion {
        answers: 0,
        subscriptions_kept: 0,
    };
    let mut current = Vec::new();
    if let Some(citizen) = citizen {
        let rows = sqlx::query(concat!(
            "SELECT ",
            answer_columns!(),
            " FROM answers WHERE citizen_id = ? AND superseded_at IS NULL"
        ))
        .bind(citizen)
        .fetch_all(&mut *tx)
        .await?;
        current = rows
            .iter()
            .map(|r| answer_at(r, 0))
            .collect::<Result<Vec<_>>>()?;
        deletion.answers = sqlx::query("DELETE FROM answers WHERE citizen_id = ?")
            .bind(citizen)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in ["citizen_settings", "outbox"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE citizen_id = ?"
            )))
            .bind(citizen)
            .execute(&mut *tx)
            .await?;
        }
        let kept: i64 =
            sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE citizen_id = ?")
                .bind(citizen)
                .fetch_one(&mut *tx)
                .await?;
        deletion.subscriptions_kept = kept as u64;
        if kept == 0 {
            sqlx::query("DELETE FROM citizens WHERE id = ?")
                .bind(citizen)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE citizens SET name = NULL, email = NULL, birth_date = NULL, updated_at = ? WHERE id = ?",
            )
            .bind(now)
            .bind(citizen)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("DELETE FROM portal_sessions WHERE subject_pseudonym = ? OR actor_pseudonym = ?")
        .bind(&pseudonym[..])
        .bind(&pseudonym[..])
        .execute(&mut *tx)
        .await?;
    guardian::forget(&mut tx, &pseudonym, citizen).await?;
    sqlx::query("DELETE FROM terms_acceptances WHERE bsn_pseudonym = ?")
        .bind(&pseudonym[..])
        .execute(&mut *tx)
        .await?;
    let event = citizen_event(&store.keys, bsn, audit, citizen::deletion_json(&deletion));
    let seq = append_audit(&mut tx, &store.keys, &event).await?;
    if let Some(citizen) = citizen
        && deletion.subscriptions_kept > 0
        && !current.is_empty()
    {
        enqueue(
            &mut tx,
            citizen,
            crate::PROFILE_DELETED,
            codec::profile_changed_payload(&current, seq),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deletion)
}
