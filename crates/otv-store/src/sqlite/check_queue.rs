//! Consent checks wait in a queue file beside the database before they join the audit chain.
//!
//! Every closed question writes an audit record, and on SQLite every commit to the database
//! file costs the readers: a read transaction that finds the database changed since its
//! connection's last one drops that connection's whole page cache. With a commit per audit batch
//! (hundreds a second under load), the closed question's own read found its cache empty nearly
//! every time and fetched every page of its lookup again (a quarter of the server's CPU at full
//! speed, BENCHMARKS.md).
//!
//! So a consent check's record ([`Backend::audit_check`](crate::Backend::audit_check)) is
//! committed to `<database>-queue`, a SQLite file of its own, by a thread of its own
//! (`otv-audit-queue`, group commit as in `audit_writer`): durable when the caller is answered,
//! as before. A second thread (`otv-audit-move`) moves the queued records into the chain once a
//! second, a thousand per transaction under otv's write lock, computing their hashes there,
//! off the question's path. The database then changes about once a second instead of with every
//! batch, and the readers keep their pages. Every read of the audit log in this store
//! ([`CheckQueue::flush`]) first has the mover take everything queued, so nothing queued is ever
//! missing from a history, a verification or a purge.
//!
//! Exactly once: the queue file has a random id, made when it is created, and its rows have
//! ids that are never reused (`enqueue` says how). The chain's head records which queue
//! (`queue_id`) it has taken rows from and up to which id (`queue_moved`), in the same
//! transaction that appends them; the mover takes only rows after that id, so a crash between
//! the chain's commit and the removal of the moved rows moves nothing twice. Moved rows are
//! removed by the queue's writer (the queue file's only writer, so the mover never waits for
//! it) in its next transaction.
//! A queue file the head does not know (new, or replaced) is taken from its first row; if the
//! head knew another one, the records still in that one are lost, which is logged. Copy the
//! queue file with the database.
//!
//! Consent checks therefore take their place in the chain up to a second after they were asked,
//! in the order they were asked, after records appended meanwhile by changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use sqlx::SqlitePool;
use tokio::sync::oneshot;

use super::audit_thread::{self, WriteLock};
use super::t;
use crate::audit::AuditEvent;
use crate::audit_writer::AuditWriter;
use crate::codec::from_epoch_micros;
use crate::{Keys, Result, StoreError};

/// How often the mover takes what is queued.
const PAUSE: Duration = Duration::from_secs(1);
/// Records moved per transaction of the database (each holds otv's write lock).
const CHUNK: i64 = 1_000;
/// The layout below (`PRAGMA user_version`).
const VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE queue_file (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    queue_id TEXT    NOT NULL -- random, made with the file; audit_head.queue_id
);
-- A consent check's record as audit_log holds it, before it has a place in the chain.
CREATE TABLE queue (
    id           INTEGER PRIMARY KEY, -- never reused (see enqueue): audit_head.queue_moved
    at           INTEGER NOT NULL,
    event        TEXT    NOT NULL,
    patient      TEXT,
    actor        TEXT    NOT NULL,
    organisation TEXT,
    mandated     TEXT,
    request_id   TEXT,
    decision     TEXT,
    reason       TEXT,
    emergency    INTEGER NOT NULL,
    channel      TEXT,
    details      TEXT    NOT NULL -- JSON, hashed as stored when it joins the chain
);
";

const QUEUE_INSERT: &str = "INSERT INTO queue (at, event, patient, actor, organisation, mandated, \
     request_id, decision, reason, emergency, channel, details) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const QUEUE_READ: &str = "SELECT id, at, event, patient, actor, organisation, mandated, request_id, \
     decision, reason, emergency, channel, details FROM queue WHERE id > ? ORDER BY id LIMIT ?";

/// A caller waiting until everything queued before it asked is in the chain.
type Flush = oneshot::Sender<Result<(), String>>;

/// The queue of consent checks and its two threads, which end when it is dropped.
pub(super) struct CheckQueue {
    writer: AuditWriter,
    mover: Sender<Flush>,
}

impl CheckQueue {
    /// The queue file of the database at `database`.
    pub(super) fn path_beside(database: &Path) -> PathBuf {
        let mut path = database.as_os_str().to_owned();
        path.push("-queue");
        PathBuf::from(path)
    }

    /// Opens (creating if missing) the queue of the database at `database` and starts its
    /// threads. `write` is the sqlx writer pool, whose only connection is otv's write lock.
    /// Must be called inside a Tokio runtime.
    pub(super) fn start(database: &Path, write: SqlitePool, keys: Keys) -> Result<CheckQueue> {
        let path = CheckQueue::path_beside(database);
        let (mut queue, queue_id) = open(&path)?;
        let moved = Arc::new(AtomicI64::new(0));

        let mut removed = 0;
        let writer = AuditWriter::spawn_thread("otv-audit-queue", {
            let moved = moved.clone();
            move |events| enqueue(&mut queue, &moved, &mut removed, events)
        })?;

        let mover = Mover {
            main: audit_thread::open(database)?,
            queue: Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?,
            queue_id,
            keys,
            write,
            runtime: tokio::runtime::Handle::current(),
            moved,
        };
        let (flushes, requests) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("otv-audit-move".into())
            .spawn(move || mover.run(requests))
            .map_err(|e| StoreError::AuditLog(format!("the audit queue could not start: {e}")))?;
        Ok(CheckQueue {
            writer,
            mover: flushes,
        })
    }

    /// Queues a consent check's record and waits until it is committed to the queue file.
    pub(super) async fn append(&self, event: AuditEvent) -> Result<()> {
        self.writer.append(event).await.map(|_| ())
    }

    /// Waits until every record queued before this call is in the chain.
    pub(super) async fn flush(&self) -> Result<()> {
        let stopped = || StoreError::AuditLog("the audit queue's mover has stopped".into());
        let (done, moved) = oneshot::channel();
        self.mover.send(done).map_err(|_| stopped())?;
        moved
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::AuditLog)
    }
}

/// Opens the queue file at `path`, creating it with a new id if it has no layout yet.
fn open(path: &Path) -> Result<(Connection, String)> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL with commits that are durable against a crash of the process, as the database's.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)?;
            tx.execute(
                "INSERT INTO queue_file (id, queue_id) VALUES (1, ?)",
                [uuid::Uuid::new_v4().to_string()],
            )?;
            tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
        }
        VERSION => {}
        other => {
            return Err(StoreError::AuditLog(format!(
                "the audit queue file {} has layout {other}, which this otv does not know",
                path.display()
            )));
        }
    }
    let queue_id: String = tx.query_row("SELECT queue_id FROM queue_file", [], |r| r.get(0))?;
    tx.commit()?;
    Ok((conn, queue_id))
}

/// Commits `events` to the queue in one transaction, after removing the rows the chain has
/// taken since the last time (up to `removed` so far); returns the first new row's id.
///
/// The newest row the chain has taken is kept: SQLite gives a new row the highest id + 1, so
/// with that row in place a new row's id is always above `audit_head.queue_moved`, and no id is
/// ever used twice (what `AUTOINCREMENT` would guarantee at the price of a second page written
/// with every commit).
fn enqueue(
    conn: &mut Connection,
    moved: &AtomicI64,
    removed: &mut i64,
    events: Vec<AuditEvent>,
) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let through = moved.load(Ordering::Acquire);
    if through > *removed {
        tx.prepare_cached("DELETE FROM queue WHERE id < ?")?
            .execute([through])?;
    }
    let mut first = None;
    {
        let mut insert = tx.prepare_cached(QUEUE_INSERT)?;
        for e in events {
            insert.execute(params![
                t(e.at),
                e.event,
                e.patient,
                e.actor,
                e.organisation,
                e.mandated,
                e.request_id,
                e.decision,
                e.reason,
                e.emergency,
                e.channel,
                e.details.to_string(),
            ])?;
            first.get_or_insert(tx.last_insert_rowid());
        }
    }
    tx.commit()?;
    *removed = (*removed).max(through);
    Ok(first.unwrap_or(0))
}

/// The thread that moves queued records into the chain.
struct Mover {
    /// A connection to the database, as the audit thread's.
    main: Connection,
    /// A read-only connection to the queue file.
    queue: Connection,
    queue_id: String,
    keys: Keys,
    /// otv's write lock (`audit_thread`).
    write: SqlitePool,
    runtime: tokio::runtime::Handle,
    /// Every row up to here is in the chain (shared with the queue's writer, which removes them).
    moved: Arc<AtomicI64>,
}

impl Mover {
    /// Moves once a second and whenever asked, until the queue is dropped. What is left then
    /// is moved by the next start.
    fn run(mut self, requests: Receiver<Flush>) {
        loop {
            let mut waiting = Vec::new();
            match requests.recv_timeout(PAUSE) {
                Ok(flush) => waiting.push(flush),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // Everyone who asked meanwhile is served by the same move.
            waiting.extend(requests.try_iter());
            let moved = self.move_all();
            if let Err(e) = &moved {
                tracing::error!(error = %e, "queued consent checks could not join the audit chain");
            }
            for flush in waiting {
                let _ = flush.send(moved.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            }
        }
    }

    /// Moves every queued record into the chain, `CHUNK` per transaction.
    fn move_all(&mut self) -> Result<()> {
        while self.move_chunk()? == CHUNK {}
        Ok(())
    }

    /// Moves up to `CHUNK` queued records in one transaction; returns how many.
    fn move_chunk(&mut self) -> Result<i64> {
        // Nothing queued after the rows known to be in the chain: no need for the write lock
        // (an idle server does not take it every second, and a database that is still being
        // migrated is left alone).
        let newest: Option<i64> = self
            .queue
            .prepare_cached("SELECT max(id) FROM queue")?
            .query_row([], |r| r.get(0))?;
        if newest.is_none_or(|n| n <= self.moved.load(Ordering::Acquire)) {
            return Ok(0);
        }
        let _lock = WriteLock::take(&self.runtime, &self.write)?;
        let tx = self
            .main
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (known, after): (Option<String>, i64) = tx.query_row(
            "SELECT queue_id, queue_moved FROM audit_head WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let after = if known.as_deref() == Some(self.queue_id.as_str()) {
            after
        } else {
            0
        };
        let records = read(&self.queue, after)?;
        let Some(&(through, _, _)) = records.last() else {
            self.moved.store(after, Ordering::Release);
            return Ok(0);
        };
        if let Some(known) = known.filter(|k| *k != self.queue_id) {
            tracing::warn!(
                known,
                queue = self.queue_id,
                "the audit queue file is not the one the chain last took records from; \
                 records still queued in that one are lost"
            );
        }
        let count = records.len() as i64;
        audit_thread::extend(
            &tx,
            &self.keys,
            records
                .into_iter()
                .map(|(_, event, details)| (event, details)),
        )?;
        tx.prepare_cached("UPDATE audit_head SET queue_id = ?, queue_moved = ? WHERE id = 1")?
            .execute(params![self.queue_id, through])?;
        tx.commit()?;
        self.moved.store(through, Ordering::Release);
        Ok(count)
    }
}

/// Up to `CHUNK` queued records after row `after`, in order: (row id, event, details JSON).
fn read(queue: &Connection, after: i64) -> Result<Vec<(i64, AuditEvent, String)>> {
    let mut statement = queue.prepare_cached(QUEUE_READ)?;
    let mut rows = statement.query(params![after, CHUNK])?;
    let mut records = Vec::new();
    while let Some(r) = rows.next()? {
        let event = AuditEvent {
            at: from_epoch_micros(r.get(1)?, "queue.at")?,
            event: r.get(2)?,
            patient: r.get(3)?,
            actor: r.get(4)?,
            organisation: r.get(5)?,
            mandated: r.get(6)?,
            request_id: r.get(7)?,
            decision: r.get(8)?,
            reason: r.get(9)?,
            emergency: r.get(10)?,
            channel: r.get(11)?,
            details: serde_json::Value::Null,
        };
        records.push((r.get(0)?, event, r.get(12)?));
    }
    Ok(records)
}
