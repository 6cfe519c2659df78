//! Hand-offs on PostgreSQL (what they mean: `crate::handoff`). The take is one conditional
//! `UPDATE … RETURNING`: of two transactions opening the same link at the same moment, the
//! second waits for the first's row lock, sees `used_at` set and takes nothing.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgStore, append_audit, lock_citizen};
use crate::codec;
use crate::handoff::{HandOff, HandOffCols, KEEP_EXPIRED_HOURS, NewHandOff};
use crate::{AuditEvent, Result};

pub(super) async fn create(
    store: &PgStore,
    h: &NewHandOff<'_>,
    audit: &AuditEvent,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(store.keys.patient_reference(h.bsn));
    }
    crate::citizen::merge_details(&mut event, serde_json::json!({ "hand_off": id }));
    let mut tx = store.pool.begin().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, h.bsn, codec::micros(h.created_at)).await?;
    sqlx::query("DELETE FROM hand_offs WHERE expires_at < $1")
        .bind(h.created_at - chrono::Duration::hours(KEEP_EXPIRED_HOURS))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO hand_offs (token_sha256, id, citizen_id, ura, uzi, role, mandated, mode, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&h.token_sha256[..])
    .bind(id)
    .bind(citizen)
    .bind(h.ura.as_str())
    .bind(h.uzi.as_str())
    .bind(h.role.as_str())
    .bind(h.mandated.map(|m| m.as_str()))
    .bind(h.mode)
    .bind(codec::micros(h.created_at))
    .bind(codec::micros(h.expires_at))
    .execute(&mut *tx)
    .await?;
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(id)
}

type Row = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Vec<u8>,
    Vec<u8>,
);

const COLUMNS: &str = "h.id, h.ura, h.uzi, h.role, h.mandated, h.mode, h.created_at, h.expires_at, \
     h.used_at, c.bsn_encrypted, c.bsn_pseudonym";

fn read(store: &PgStore, r: Row) -> Result<HandOff> {
    HandOffCols {
        id: r.0,
        ura: r.1,
        uzi: r.2,
        role: r.3,
        mandated: r.4,
        mode: r.5,
        created_at: r.6,
        expires_at: r.7,
        used_at: r.8,
        bsn: store.keys.decrypt_bsn(&r.9, &r.10)?,
    }
    .into_hand_off()
}

pub(super) async fn take(
    store: &PgStore,
    token_sha256: &[u8; 32],
    session_sha256: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<HandOff>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH taken AS (UPDATE hand_offs SET used_at = $1, session_sha256 = $2 \
         WHERE token_sha256 = $3 AND used_at IS NULL AND expires_at > $1 RETURNING *) \
         SELECT {COLUMNS} FROM taken h JOIN citizens c ON c.id = h.citizen_id"
    )))
    .bind(codec::micros(now))
    .bind(&session_sha256[..])
    .bind(&token_sha256[..])
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| read(store, r)).transpose()
}

pub(super) async fn of_session(
    store: &PgStore,
    session_sha256: &[u8; 32],
) -> Result<Option<HandOff>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM hand_offs h JOIN citizens c ON c.id = h.citizen_id \
         WHERE h.session_sha256 = $1"
    )))
    .bind(&session_sha256[..])
    .fetch_optional(&store.pool)
    .await?;
    row.map(|r| read(store, r)).transpose()
}
