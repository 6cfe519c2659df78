//! The consent checks by patient: an index beside the database, filled from the audit log.
//!
//! A citizen's history lists the consent checks about them (closed and open questions), so the
//! audit log must be searchable by patient. An index on `audit_log (patient, at)` did that, but
//! the patient reference is a keyed pseudonym, random by design: every closed question's audit
//! record then changed a random page of that index, in the hot path's own commit, on SQLite's
//! single writer, and again in every WAL checkpoint. It cost the closed question a third of its
//! throughput and tripled its p99 (BENCHMARKS.md).
//!
//! So SQLite keeps that index in a file of its own, `<database>-checks`, with its own writer: a
//! background task reads the audit log after a cursor and adds the consent checks it finds, up to
//! [`BATCH`] records per transaction. The index is derived: it holds only the pseudonym, time and
//! sequence number of each check, can be deleted at any time and is then rebuilt from the audit
//! log. A history read uses it for the records up to the cursor and scans the audit log after
//! the cursor (about a second of records) for the rest, so the history is always exact; the index
//! only makes it fast.
//!
//! The cursor keeps the hash of the record it stands on. If the database is restored from an
//! older copy, the records after that point are different ones (or gone): a history read then
//! does not trust the index (it scans the whole log for the patient, slowly but exactly), and the
//! background task rebuilds it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row};

use crate::citizen;
use crate::crypto::pseudonym_of_reference;
use crate::{Period, Result};

/// The most audit records (by sequence number) one pass reads and indexes in one transaction.
const BATCH: i64 = 20_000;
/// Rows per insert statement (three parameters each, below SQLite's limit).
const ROWS_PER_INSERT: usize = 10_000;
/// How long the background task waits when it has caught up, or after an error.
const PAUSE: Duration = Duration::from_secs(1);
/// The layout below. A file with another version is rebuilt (it holds nothing else).
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS checks (
    patient BLOB    NOT NULL, -- the citizen's pseudonym (32 bytes; hex in audit_log.patient)
    at      INTEGER NOT NULL, -- audit_log.at
    seq     INTEGER NOT NULL, -- audit_log.seq
    PRIMARY KEY (patient, at, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursor (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL, -- every audit record up to here is indexed
    hash BLOB             -- audit_log.hash of that record (NULL at 0)
);
INSERT OR IGNORE INTO cursor (id, seq, hash) VALUES (1, 0, NULL);
";

/// The index file of consent checks by patient, and its background task.
pub(super) struct CheckIndex {
    pool: SqlitePool,
    task: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for CheckIndex {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// What the index holds about one patient, as one read of it saw it.
pub(super) struct Lookup {
    /// Every audit record up to here was indexed…
    pub cursor: i64,
    /// …as the log held it then: the hash of the record at `cursor` (`None` at 0). A reader
    /// whose log holds another record there (restored) must not use `seqs`.
    pub hash: Option<Vec<u8>>,
    /// The sequence numbers of the patient's checks up to the cursor, newest first.
    pub seqs: Vec<i64>,
}

impl Lookup {
    /// Nothing indexed: the reader scans the whole log.
    pub(super) fn nothing() -> Lookup {
        Lookup {
            cursor: 0,
            hash: None,
            seqs: Vec::new(),
        }
    }
}

impl CheckIndex {
    /// The index file that belongs to the database file `database`.
    pub(super) fn path_beside(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_owned();
        name.push("-checks");
        PathBuf::from(name)
    }

    /// Opens (creating when missing, rebuilding when of another layout) the index at `path`.
    pub(super) async fn open(path: &Path) -> Result<CheckIndex> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .busy_timeout(Duration::from_secs(10))
            // It can always be rebuilt, so a power loss may lose its last commits.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let mut conn = pool.acquire().await?;
        let version: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await?;
        if version != VERSION {
            sqlx::raw_sql("DROP TABLE IF EXISTS checks; DROP TABLE IF EXISTS cursor;")
                .execute(&mut *conn)
                .await?;
        }
        sqlx::raw_sql(SCHEMA).execute(&mut *conn).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {VERSION}"
        )))
        .execute(&mut *conn)
        .await?;
        drop(conn);
        Ok(CheckIndex {
            pool,
            task: std::sync::OnceLock::new(),
        })
    }

    /// Starts the background task that keeps the index up to date with `audit` (the database's
    /// read pool), once. Called when the database's schema is in place.
    pub(super) fn start(&self, audit: &SqlitePool) {
        let (index, audit) = (self.pool.clone(), audit.clone());
        self.task.get_or_init(|| {
            tokio::spawn(async move {
                loop {
                    match pass(&index, &audit).await {
                        Ok(p) if !p.caught_up => continue,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "the index of consent checks could not be updated"),
                    }
                    tokio::time::sleep(PAUSE).await;
                }
            })
            .abort_handle()
        });
    }

    /// Indexes every audit record committed so far; returns how many records it went over.
    pub(super) async fn catch_up(&self, audit: &SqlitePool) -> Result<u64> {
        let mut covered = 0;
        loop {
            let p = pass(&self.pool, audit).await?;
            covered += p.covered;
            if p.caught_up {
                return Ok(covered);
            }
        }
    }

    /// The patient's checks in `period` that the index holds, newest first, at most `limit`.
    /// Read it before the database: every record it names is then in the caller's snapshot of
    /// the log, unless the log was restored or purged since (see [`Lookup::hash`]).
    pub(super) async fn lookup(
        &self,
        pseudonym: &[u8],
        period: &Period,
        limit: usize,
    ) -> Result<Lookup> {
        let (from, until) = (period.from.map(super::t), period.until.map(super::t));
        let mut tx = self.pool.begin().await?;
        let (cursor, hash) = sqlx::query_as("SELECT seq, hash FROM cursor WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let seqs = sqlx::query_scalar(
            "SELECT seq FROM checks WHERE patient = ? AND (? IS NULL OR at >= ?) \
             AND (? IS NULL OR at < ?) ORDER BY at DESC, seq DESC LIMIT ?",
        )
        .bind(pseudonym)
        .bind(from)
        .bind(from)
        .bind(until)
        .bind(until)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Lookup { cursor, hash, seqs })
    }

    /// Forgets the checks of audit records up to `seq` (purged from the audit log).
    pub(super) async fn forget_through(&self, seq: i64) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM checks WHERE seq <= ?")
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Whether the cursor at `cursor` with `hash` stands on the same record in `log`.
pub(super) async fn stands(
    log: &mut sqlx::SqliteConnection,
    cursor: i64,
    hash: Option<&[u8]>,
) -> Result<bool> {
    if cursor == 0 {
        return Ok(true);
    }
    let there: Option<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
        .bind(cursor)
        .fetch_optional(&mut *log)
        .await?;
    if let Some(h) = there {
        return Ok(hash == Some(&h[..]));
    }
    // Gone: purged since (older than every record left) stands; beyond the head does not.
    let first: Option<i64> = sqlx::query_scalar("SELECT min(seq) FROM audit_log")
        .fetch_one(&mut *log)
        .await?;
    Ok(first.is_some_and(|first| cursor < first))
}

/// What one pass did.
struct Pass {
    /// Audit records (by sequence number) it went over.
    covered: u64,
    /// Whether the index now covers every record the pass could see.
    caught_up: bool,
}

/// Indexes the next [`BATCH`] audit records after the cursor, or rebuilds the index when its
/// cursor does not stand on the record it was set on.
async fn pass(index: &SqlitePool, audit: &SqlitePool) -> Result<Pass> {
    let (cursor, hash): (i64, Option<Vec<u8>>) =
        sqlx::query_as("SELECT seq, hash FROM cursor WHERE id = 1")
            .fetch_one(index)
            .await?;
    // One snapshot of the audit log for the whole window.
    let mut log = audit.begin().await?;
    // Two subqueries: SQLite looks up a lone min() or max() in the key, but scans the whole
    // table for both in one query.
    let (first, head): (i64, i64) = sqlx::query_as(
        "SELECT coalesce((SELECT min(seq) FROM audit_log), 1), \
         coalesce((SELECT max(seq) FROM audit_log), 0)",
    )
    .fetch_one(&mut *log)
    .await?;
    if !stands(&mut log, cursor, hash.as_deref()).await? {
        tracing::warn!(
            cursor,
            head,
            "the index of consent checks does not match the audit log (was the database restored?); rebuilding it"
        );
        let mut tx = index.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM checks").execute(&mut *tx).await?;
        sqlx::query("UPDATE cursor SET seq = 0, hash = NULL WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(Pass {
            covered: 0,
            caught_up: false,
        });
    }
    let start = cursor.max(first - 1);
    let upto = head.min(start + BATCH);
    if upto <= cursor {
        metrics::gauge!("otv_consent_check_index_behind_records").set(0.0);
        return Ok(Pass {
            covered: 0,
            caught_up: true,
        });
    }
    let rows = sqlx::query(
        "SELECT seq, at, patient FROM audit_log WHERE seq > ? AND seq <= ? \
         AND event IN (?, ?) AND patient IS NOT NULL",
    )
    .bind(start)
    .bind(upto)
    .bind(citizen::CHECK_EVENTS[0])
    .bind(citizen::CHECK_EVENTS[1])
    .fetch_all(&mut *log)
    .await?;
    let upto_hash: Vec<u8> = sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = ?")
        .bind(upto)
        .fetch_one(&mut *log)
        .await?;
    log.commit().await?;
    let mut checks = Vec::with_capacity(rows.len());
    for r in &rows {
        // A reference that is not a pseudonym names no citizen, so no history shows it.
        if let Some(pseudonym) = pseudonym_of_reference(r.try_get(2)?) {
            checks.push((pseudonym, r.try_get::<i64, _>(1)?, r.try_get::<i64, _>(0)?));
        }
    }

    let mut tx = index.begin_with("BEGIN IMMEDIATE").await?;
    let now: i64 = sqlx::query_scalar("SELECT seq FROM cursor WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    if now != cursor {
        // Another process indexed this window meanwhile.
        return Ok(Pass {
            covered: 0,
            caught_up: false,
        });
    }
    for chunk in checks.chunks(ROWS_PER_INSERT) {
        let mut b = QueryBuilder::new("INSERT OR IGNORE INTO checks (patient, at, seq) ");
        b.push_values(chunk, |mut row, (patient, at, seq)| {
            row.push_bind(patient.as_slice())
                .push_bind(*at)
                .push_bind(*seq);
        });
        b.build().execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE cursor SET seq = ?, hash = ? WHERE id = 1")
        .bind(upto)
        .bind(upto_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::gauge!("otv_consent_check_index_behind_records").set((head - upto) as f64);
    Ok(Pass {
        covered: (upto - cursor) as u64,
        caught_up: upto == head,
    })
}
