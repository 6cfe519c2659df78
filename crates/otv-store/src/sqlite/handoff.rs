//! Hand-offs on SQLite (what they mean: `crate::handoff`). The single writer applies every
//! take after the other, and the take is one conditional `UPDATE`, so a link opens once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{SqliteStore, append_audit, lock_citizen, t};
use crate::codec::from_epoch_micros;
use crate::handoff::{HandOff, HandOffCols, KEEP_EXPIRED_HOURS, NewHandOff};
use crate::{AuditEvent, Result};

pub(super) async fn create(
    store: &SqliteStore,
    h: &NewHandOff<'_>,
    audit: &AuditEvent,
) -> Result<Uuid> {
    let id = Uuid::now_v7();
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(store.keys.patient_reference(h.bsn));
    }
    crate::citizen::merge_details(&mut event, serde_json::json!({ "hand_off": id }));
    let mut tx = store.begin_write().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, h.bsn, t(h.created_at)).await?;
    sqlx::query("DELETE FROM hand_offs WHERE expires_at < ?")
        .bind(t(h.created_at - chrono::Duration::hours(KEEP_EXPIRED_HOURS)))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO hand_offs (token_sha256, id, citizen_id, ura, uzi, role, mandated, mode, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&h.token_sha256[..])
    .bind(id)
    .bind(citizen)
    .bind(h.ura.as_str())
    .bind(h.uzi.as_str())
    .bind(h.role.as_str())
    .bind(h.mandated.map(|m| m.as_str()))
    .bind(h.mode)
    .bind(t(h.created_at))
    .bind(t(h.expires_at))
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
    i64,
    i64,
    Option<i64>,
    Vec<u8>,
    Vec<u8>,
);

const SELECT: &str = "SELECT h.id, h.ura, h.uzi, h.role, h.mandated, h.mode, h.created_at, h.expires_at, \
     h.used_at, c.bsn_encrypted, c.bsn_pseudonym FROM hand_offs h JOIN citizens c ON c.id = h.citizen_id";

fn read(store: &SqliteStore, r: Row) -> Result<HandOff> {
    HandOffCols {
        id: r.0,
        ura: r.1,
        uzi: r.2,
        role: r.3,
        mandated: r.4,
        mode: r.5,
        created_at: from_epoch_micros(r.6, "hand_offs.created_at")?,
        expires_at: from_epoch_micros(r.7, "hand_offs.expires_at")?,
        used_at: r
            .8
            .map(|v| from_epoch_micros(v, "hand_offs.used_at"))
            .transpose()?,
        bsn: store.keys.decrypt_bsn(&r.9, &r.10)?,
    }
    .into_hand_off()
}

pub(super) async fn take(
    store: &SqliteStore,
    token_sha256: &[u8; 32],
    session_sha256: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<HandOff>> {
    let mut tx = store.begin_write().await?;
    let taken = sqlx::query(
        "UPDATE hand_offs SET used_at = ?, session_sha256 = ? \
         WHERE token_sha256 = ? AND used_at IS NULL AND expires_at > ?",
    )
    .bind(t(now))
    .bind(&session_sha256[..])
    .bind(&token_sha256[..])
    .bind(t(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if taken != 1 {
        return Ok(None);
    }
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE h.token_sha256 = ?"
    )))
    .bind(&token_sha256[..])
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    read(store, row).map(Some)
}

pub(super) async fn of_session(
    store: &SqliteStore,
    session_sha256: &[u8; 32],
) -> Result<Option<HandOff>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE h.session_sha256 = ?"
    )))
    .bind(&session_sha256[..])
    .fetch_optional(&store.read)
    .await?;
    row.map(|r| read(store, r)).transpose()
}
