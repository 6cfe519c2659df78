//! The outbox delivery engine on SQLite (what it means: `crate::outbox`). The single writer
//! (`BEGIN IMMEDIATE` on the one write connection) makes each claim one atomic step, so two
//! workers, in this process or in a CLI beside it, never claim the same row; the lease brings
//! back the rows of a worker that died.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::{SqliteStore, t};
use crate::Result;
use crate::codec::{self, from_epoch_micros};
use crate::outbox::{
    Failure, NewOutboxRow, NotifyTarget, OutboxRow, OutboxState, OutboxStatus,
    default_ordering_key, retry_delay, target_from,
};

const COLUMNS: &str = "id, citizen_id, kind, payload, ordering_key, attempts, created_at, \
     available_at, state, last_error, first_attempt_at, delivered_at, dead_at";

fn read_row(row: &sqlx::sqlite::SqliteRow) -> Result<OutboxRow> {
    let time = |i: usize, column: &str| -> Result<Option<DateTime<Utc>>> {
        row.try_get::<Option<i64>, _>(i)?
            .map(|v| from_epoch_micros(v, column))
            .transpose()
    };
    let state: String = row.try_get(8)?;
    Ok(OutboxRow {
        id: row.try_get(0)?,
        citizen_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        payload: row.try_get(3)?,
        ordering_key: row.try_get(4)?,
        attempts: row.try_get(5)?,
        created_at: from_epoch_micros(row.try_get(6)?, "outbox.created_at")?,
        available_at: from_epoch_micros(row.try_get(7)?, "outbox.available_at")?,
        state: OutboxState::parse(&state).ok_or_else(|| codec::corrupt("outbox.state"))?,
        last_error: row.try_get(9)?,
        first_attempt_at: time(10, "outbox.first_attempt_at")?,
        delivered_at: time(11, "outbox.delivered_at")?,
        dead_at: time(12, "outbox.dead_at")?,
    })
}

pub(super) async fn enqueue(
    store: &SqliteStore,
    citizen: Uuid,
    kind: &str,
    payload: &str,
    available_at: DateTime<Utc>,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, ordering_key, created_at, available_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(default_ordering_key(kind, citizen))
    .bind(t(codec::now()))
    .bind(t(available_at))
    .execute(&store.write)
    .await?;
    Ok(id)
}

pub(super) async fn claim(
    store: &SqliteStore,
    worker: &str,
    now: DateTime<Utc>,
    lease: std::time::Duration,
    limit: usize,
) -> Result<Vec<OutboxRow>> {
    let now_t = t(now);
    let until = now_t.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
    let mut tx = store.begin_write().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE outbox SET claimed_by = ?1, claimed_until = ?2, attempts = attempts + 1, \
         first_attempt_at = coalesce(first_attempt_at, ?3) \
         WHERE id IN (SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.available_at <= ?3 \
           AND (o.claimed_until IS NULL OR o.claimed_until <= ?3) \
           AND (o.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox p \
                WHERE p.state = 'pending' AND p.ordering_key = o.ordering_key AND p.seq < o.seq)) \
           ORDER BY o.available_at, o.seq LIMIT ?4) \
         RETURNING {COLUMNS}"
    )))
    .bind(worker)
    .bind(until)
    .bind(now_t)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut claimed = rows.iter().map(read_row).collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|r| (r.available_at, r.id));
    Ok(claimed)
}

pub(super) async fn complete(
    store: &SqliteStore,
    id: Uuid,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at = ?, claimed_by = NULL, \
         claimed_until = NULL, last_error = NULL \
         WHERE id = ? AND state = 'pending' AND claimed_by = ?",
    )
    .bind(t(now))
    .bind(id)
    .bind(worker)
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn fail(
    store: &SqliteStore,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Failure> {
    let mut tx = store.begin_write().await?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "SELECT attempts FROM outbox WHERE id = ? AND state = 'pending' AND claimed_by = ?",
    )
    .bind(id)
    .bind(worker)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(attempts) = attempts else {
        return Ok(Failure::LeaseLost);
    };
    let failure = match retry_delay(attempts) {
        Some(delay) => {
            let at = now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
            sqlx::query(
                "UPDATE outbox SET available_at = ?, last_error = ?, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = ?",
            )
            .bind(t(at))
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Failure::RetryAt(at)
        }
        None => {
            park_in(&mut tx, id, error, now).await?;
            Failure::Dead
        }
    };
    tx.commit().await?;
    Ok(failure)
}

async fn park_in(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET state = 'dead', dead_at = ?, last_error = ?, claimed_by = NULL, \
         claimed_until = NULL WHERE id = ?",
    )
    .bind(t(now))
    .bind(error)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn park(
    store: &SqliteStore,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'dead', dead_at = ?, last_error = ?, claimed_by = NULL, \
         claimed_until = NULL WHERE id = ? AND state = 'pending' AND claimed_by = ?",
    )
    .bind(t(now))
    .bind(error)
    .bind(id)
    .bind(worker)
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release(
    store: &SqliteStore,
    id: Uuid,
    worker: &str,
    available_at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET available_at = ?, attempts = max(attempts - 1, 0), claimed_by = NULL, \
         claimed_until = NULL WHERE id = ? AND state = 'pending' AND claimed_by = ?",
    )
    .bind(t(available_at))
    .bind(id)
    .bind(worker)
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn fan_out(
    store: &SqliteStore,
    id: Uuid,
    worker: &str,
    rows: &[NewOutboxRow],
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    let citizen: Option<Uuid> = sqlx::query_scalar(
        "SELECT citizen_id FROM outbox WHERE id = ? AND state = 'pending' AND claimed_by = ?",
    )
    .bind(id)
    .bind(worker)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(citizen) = citizen else {
        return Ok(false);
    };
    for row in rows {
        sqlx::query(
            "INSERT INTO outbox (id, citizen_id, kind, payload, ordering_key, created_at, available_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(row.id)
        .bind(citizen)
        .bind(&row.kind)
        .bind(&row.payload)
        .bind(&row.ordering_key)
        .bind(t(now))
        .bind(t(now))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at = ?, claimed_by = NULL, \
         claimed_until = NULL, last_error = NULL WHERE id = ?",
    )
    .bind(t(now))
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn status(store: &SqliteStore, now: DateTime<Utc>) -> Result<OutboxStatus> {
    let now = t(now);
    let row = sqlx::query(
        "SELECT \
           coalesce(sum(state = 'pending'), 0), \
           coalesce(sum(state = 'pending' AND available_at <= ?1 \
                        AND (claimed_until IS NULL OR claimed_until <= ?1)), 0), \
           coalesce(sum(state = 'pending' AND claimed_until > ?1), 0), \
           coalesce(sum(state = 'dead'), 0), \
           coalesce(sum(state = 'delivered'), 0), \
           min(CASE WHEN state = 'pending' THEN created_at END) \
         FROM outbox",
    )
    .bind(now)
    .fetch_one(&store.read)
    .await?;
    Ok(OutboxStatus {
        pending: row.try_get(0)?,
        due: row.try_get(1)?,
        claimed: row.try_get(2)?,
        dead: row.try_get(3)?,
        delivered: row.try_get(4)?,
        oldest_pending: row
            .try_get::<Option<i64>, _>(5)?
            .map(|v| from_epoch_micros(v, "outbox.created_at"))
            .transpose()?,
    })
}

pub(super) async fn dead(store: &SqliteStore, limit: usize) -> Result<Vec<OutboxRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE state = 'dead' ORDER BY dead_at, seq LIMIT ?"
    )))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&store.read)
    .await?;
    rows.iter().map(read_row).collect()
}

pub(super) async fn row(store: &SqliteStore, id: Uuid) -> Result<Option<OutboxRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&store.read)
    .await?;
    row.as_ref().map(read_row).transpose()
}

pub(super) async fn retry_dead(
    store: &SqliteStore,
    id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, available_at = ?, dead_at = NULL, \
         claimed_by = NULL, claimed_until = NULL WHERE state = 'dead' AND (?2 IS NULL OR id = ?2)",
    )
    .bind(t(now))
    .bind(id)
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected())
}

const TARGET_COLUMNS: &str = "id, status, holder_ura, holder_type, connector_id, source_system, \
     gateway_system, endpoint, payload";

fn read_target(row: &sqlx::sqlite::SqliteRow) -> Result<NotifyTarget> {
    let text = |i: usize| row.try_get::<String, _>(i);
    target_from(
        row.try_get(0)?,
        &text(1)?,
        [
            text(2)?,
            text(3)?,
            text(4)?,
            text(5)?,
            text(6)?,
            text(7)?,
            text(8)?,
        ],
    )
}

pub(super) async fn targets(store: &SqliteStore, citizen: Uuid) -> Result<Vec<NotifyTarget>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM subscriptions WHERE citizen_id = ? AND status = 'active' ORDER BY id"
    )))
    .bind(citizen)
    .fetch_all(&store.read)
    .await?;
    rows.iter().map(read_target).collect()
}

pub(super) async fn target(
    store: &SqliteStore,
    citizen: Uuid,
    id: Uuid,
) -> Result<Option<NotifyTarget>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM subscriptions WHERE citizen_id = ? AND id = ?"
    )))
    .bind(citizen)
    .bind(id)
    .fetch_optional(&store.read)
    .await?;
    row.as_ref().map(read_target).transpose()
}
