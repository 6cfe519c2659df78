//! The outbox delivery engine on PostgreSQL (what it means: `crate::outbox`). A claim locks
//! the rows it takes with `FOR UPDATE SKIP LOCKED` and sets their lease in the same statement,
//! so workers on any number of nodes never claim the same row and never wait for each other;
//! the lease brings back the rows of a node that died.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::PgStore;
use crate::Result;
use crate::codec;
use crate::outbox::{
    Failure, NewOutboxRow, NotifyTarget, OutboxRow, OutboxState, OutboxStatus,
    default_ordering_key, retry_delay, target_from,
};

const COLUMNS: &str = "id, citizen_id, kind, payload, ordering_key, attempts, created_at, \
     available_at, state, last_error, first_attempt_at, delivered_at, dead_at";

fn read_row(row: &sqlx::postgres::PgRow) -> Result<OutboxRow> {
    let state: String = row.try_get(8)?;
    Ok(OutboxRow {
        id: row.try_get(0)?,
        citizen_id: row.try_get(1)?,
        kind: row.try_get(2)?,
        payload: row.try_get(3)?,
        ordering_key: row.try_get(4)?,
        attempts: row.try_get(5)?,
        created_at: row.try_get(6)?,
        available_at: row.try_get(7)?,
        state: OutboxState::parse(&state).ok_or_else(|| codec::corrupt("outbox.state"))?,
        last_error: row.try_get(9)?,
        first_attempt_at: row.try_get(10)?,
        delivered_at: row.try_get(11)?,
        dead_at: row.try_get(12)?,
    })
}

pub(super) async fn enqueue(
    store: &PgStore,
    citizen: Uuid,
    kind: &str,
    payload: &str,
    available_at: DateTime<Utc>,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, ordering_key, created_at, available_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(default_ordering_key(kind, citizen))
    .bind(codec::now())
    .bind(available_at)
    .execute(&store.pool)
    .await?;
    Ok(id)
}

pub(super) async fn claim(
    store: &PgStore,
    worker: &str,
    now: DateTime<Utc>,
    lease: std::time::Duration,
    limit: usize,
) -> Result<Vec<OutboxRow>> {
    let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
    let mut tx = store.pool.begin().await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH c AS (SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.available_at <= $3 \
           AND (o.claimed_until IS NULL OR o.claimed_until <= $3) \
           AND (o.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM outbox p \
                WHERE p.state = 'pending' AND p.ordering_key = o.ordering_key AND p.seq < o.seq)) \
           ORDER BY o.available_at, o.seq LIMIT $4 FOR UPDATE SKIP LOCKED) \
         UPDATE outbox SET claimed_by = $1, claimed_until = $2, attempts = attempts + 1, \
         first_attempt_at = coalesce(first_attempt_at, $3) FROM c WHERE outbox.id = c.id \
         RETURNING {}",
        COLUMNS
            .split(", ")
            .map(|c| format!("outbox.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(worker)
    .bind(until)
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    let mut claimed = rows.iter().map(read_row).collect::<Result<Vec<_>>>()?;
    claimed.sort_by_key(|r| (r.available_at, r.id));
    Ok(claimed)
}

pub(super) async fn complete(
    store: &PgStore,
    id: Uuid,
    worker: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at = $1, claimed_by = NULL, \
         claimed_until = NULL, last_error = NULL \
         WHERE id = $2 AND state = 'pending' AND claimed_by = $3",
    )
    .bind(now)
    .bind(id)
    .bind(worker)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn fail(
    store: &PgStore,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Failure> {
    let mut tx = store.pool.begin().await?;
    let attempts: Option<i32> = sqlx::query_scalar(
        "SELECT attempts FROM outbox WHERE id = $1 AND state = 'pending' AND claimed_by = $2 FOR UPDATE",
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
                "UPDATE outbox SET available_at = $1, last_error = $2, claimed_by = NULL, \
                 claimed_until = NULL WHERE id = $3",
            )
            .bind(at)
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
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    error: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "UPDATE outbox SET state = 'dead', dead_at = $1, last_error = $2, claimed_by = NULL, \
         claimed_until = NULL WHERE id = $3",
    )
    .bind(now)
    .bind(error)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn park(
    store: &PgStore,
    id: Uuid,
    worker: &str,
    error: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'dead', dead_at = $1, last_error = $2, claimed_by = NULL, \
         claimed_until = NULL WHERE id = $3 AND state = 'pending' AND claimed_by = $4",
    )
    .bind(now)
    .bind(error)
    .bind(id)
    .bind(worker)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn release(
    store: &PgStore,
    id: Uuid,
    worker: &str,
    available_at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET available_at = $1, attempts = greatest(attempts - 1, 0), claimed_by = NULL, \
         claimed_until = NULL WHERE id = $2 AND state = 'pending' AND claimed_by = $3",
    )
    .bind(available_at)
    .bind(id)
    .bind(worker)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn fan_out(
    store: &PgStore,
    id: Uuid,
    worker: &str,
    rows: &[NewOutboxRow],
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let citizen: Option<Uuid> = sqlx::query_scalar(
        "SELECT citizen_id FROM outbox WHERE id = $1 AND state = 'pending' AND claimed_by = $2 FOR UPDATE",
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
             VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(row.id)
        .bind(citizen)
        .bind(&row.kind)
        .bind(&row.payload)
        .bind(&row.ordering_key)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "UPDATE outbox SET state = 'delivered', delivered_at = $1, claimed_by = NULL, \
         claimed_until = NULL, last_error = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn status(store: &PgStore, now: DateTime<Utc>) -> Result<OutboxStatus> {
    let row = sqlx::query(
        "SELECT \
           count(*) FILTER (WHERE state = 'pending'), \
           count(*) FILTER (WHERE state = 'pending' AND available_at <= $1 \
                        AND (claimed_until IS NULL OR claimed_until <= $1)), \
           count(*) FILTER (WHERE state = 'pending' AND claimed_until > $1), \
           count(*) FILTER (WHERE state = 'dead'), \
           count(*) FILTER (WHERE state = 'delivered'), \
           min(created_at) FILTER (WHERE state = 'pending') \
         FROM outbox",
    )
    .bind(now)
    .fetch_one(&store.pool)
    .await?;
    Ok(OutboxStatus {
        pending: row.try_get(0)?,
        due: row.try_get(1)?,
        claimed: row.try_get(2)?,
        dead: row.try_get(3)?,
        delivered: row.try_get(4)?,
        oldest_pending: row.try_get(5)?,
    })
}

pub(super) async fn dead(store: &PgStore, limit: usize) -> Result<Vec<OutboxRow>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE state = 'dead' ORDER BY dead_at, seq LIMIT $1"
    )))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(read_row).collect()
}

pub(super) async fn row(store: &PgStore, id: Uuid) -> Result<Option<OutboxRow>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    row.as_ref().map(read_row).transpose()
}

pub(super) async fn retry_dead(
    store: &PgStore,
    id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE outbox SET state = 'pending', attempts = 0, available_at = $1, dead_at = NULL, \
         claimed_by = NULL, claimed_until = NULL WHERE state = 'dead' AND ($2::uuid IS NULL OR id = $2)",
    )
    .bind(now)
    .bind(id)
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected())
}

const TARGET_COLUMNS: &str = "id, status, holder_ura, holder_type, connector_id, source_system, \
     gateway_system, endpoint, payload";

fn read_target(row: &sqlx::postgres::PgRow) -> Result<NotifyTarget> {
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

pub(super) async fn targets(store: &PgStore, citizen: Uuid) -> Result<Vec<NotifyTarget>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM subscriptions WHERE citizen_id = $1 AND status = 'active' ORDER BY id"
    )))
    .bind(citizen)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(read_target).collect()
}

pub(super) async fn target(
    store: &PgStore,
    citizen: Uuid,
    id: Uuid,
) -> Result<Option<NotifyTarget>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {TARGET_COLUMNS} FROM subscriptions WHERE citizen_id = $1 AND id = $2"
    )))
    .bind(citizen)
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    row.as_ref().map(read_target).transpose()
}
