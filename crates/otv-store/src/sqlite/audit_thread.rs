//! The group commit of stand-alone audit records (`crate::audit_writer`) on a thread of its own.
//!
//! On sqlx every statement of a batch (begin, read the chain's head, insert, move the head,
//! commit) went to the writer connection's thread and back: five hand-offs, each a futex wake-up
//! and a context switch both ways, for every batch, and the closed question's only write was
//! such a batch. Here the writer is a thread that owns a rusqlite connection of its own and runs
//! the whole batch itself: one hand-off in, one answer out. SQLite's own work is the same, so
//! throughput did not change; the closed question's latency did (at 2,000/s, p50 ~20% lower,
//! BENCHMARKS.md, 2026-12-01 day). Consent checks have since moved to a queue of their own
//! (`check_queue.rs`), whose mover extends the chain with [`extend`] as this thread does.
//!
//! It is still one writer. Before each batch the thread takes the sqlx writer pool's only
//! connection and holds it until the batch is committed: no other write of this process can
//! begin meanwhile, so this connection's `BEGIN IMMEDIATE` never waits for one (SQLite's busy
//! handler waits in sleeps of milliseconds). A write of another process (a CLI beside the server)
//! is waited for with the busy timeout, as on the sqlx connections.
//!
//! The chain is extended exactly as `append_audit_batch` does inside a change's transaction: the
//! same head row, the same `Prepared` records, a signed checkpoint every `CHECKPOINT_EVERY`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqlitePool};
use tokio::runtime::{EnterGuard, Handle};

use super::{AUDIT_HEAD, AUDIT_HEAD_MOVE, AUDIT_INSERT, CHECKPOINT_INSERT, t, wal};
use crate::audit::{AuditEvent, CHECKPOINT_EVERY, Checkpoint, Prepared};
use crate::{Keys, Result, codec};

/// otv's write lock, taken by a thread outside the runtime: the sqlx writer pool's only
/// connection, held until this is dropped.
pub(super) struct WriteLock<'a> {
    _connection: PoolConnection<Sqlite>,
    // Dropped after the connection: the pool returns it from inside the runtime's context.
    _context: EnterGuard<'a>,
}

impl WriteLock<'_> {
    /// Waits for the writer pool's connection, blocking this (non-runtime) thread.
    pub(super) fn take<'a>(runtime: &'a Handle, write: &SqlitePool) -> Result<WriteLock<'a>> {
        let context = runtime.enter();
        Ok(WriteLock {
            _connection: runtime.block_on(write.acquire())?,
            _context: context,
        })
    }
}

/// Opens the audit thread's connection to the database at `path`, with the writer's settings.
pub(super) fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Per connection, so as the sqlx writer: WAL commits without an fsync each (the log is synced
    // at checkpoints), and the writer's checkpoint backstop of `wal.rs`.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {};",
        wal::WRITER_PAGES
    ))?;
    Ok(conn)
}

/// Appends `events` to the chain, in order, in one transaction; returns the sequence number of
/// the first. The caller holds otv's write lock.
pub(super) fn append(conn: &mut Connection, keys: &Keys, events: Vec<AuditEvent>) -> Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let first = extend(
        &tx,
        keys,
        events.into_iter().map(|e| {
            let details = e.details.to_string();
            (e, details)
        }),
    )?;
    tx.commit()?;
    Ok(first)
}

/// Extends the chain by `records` (each event with its details as the JSON text to store) inside
/// the caller's write transaction: reads the head, inserts the records with a signed checkpoint
/// every `CHECKPOINT_EVERY`, moves the head. Returns the sequence number of the first record.
pub(super) fn extend(
    tx: &Connection,
    keys: &Keys,
    records: impl IntoIterator<Item = (AuditEvent, String)>,
) -> Result<i64> {
    let (head, mut prev): (i64, Vec<u8>) = tx
        .prepare_cached(AUDIT_HEAD)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let mut last = head;
    {
        let mut insert = tx.prepare_cached(AUDIT_INSERT)?;
        let mut checkpoint = tx.prepare_cached(CHECKPOINT_INSERT)?;
        for (seq, (event, details)) in (head + 1..).zip(records) {
            let p = Prepared::with_details(seq, event, details, &prev);
            let e = &p.event;
            insert.execute(params![
                p.seq,
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
                p.details,
                p.prev_hash,
                p.hash,
            ])?;
            if seq % CHECKPOINT_EVERY == 0 {
                let c = Checkpoint::sign(keys, seq, &p.hash);
                checkpoint.execute(params![
                    c.seq,
                    c.hash,
                    t(codec::now()),
                    c.signature,
                    c.public_key
                ])?;
            }
            prev = p.hash;
            last = seq;
        }
    }
    tx.prepare_cached(AUDIT_HEAD_MOVE)?
        .execute(params![last, prev])?;
    Ok(head + 1)
}
