//! Enrolment tokens used up, on SQLite (what it means: `crate::enrolment`). The single writer
//! applies one insert after the other, so a `jti` is inserted once.

use chrono::{DateTime, Utc};
use otv_core::Ura;

use super::{SqliteStore, t};
use crate::Result;
use crate::enrolment::KEEP_EXPIRED_HOURS;

pub(super) async fn use_token(
    store: &SqliteStore,
    jti: &str,
    ura: &Ura,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = store.begin_write().await?;
    sqlx::query("DELETE FROM enrolment_tokens_used WHERE expires_at < ?")
        .bind(t(now - chrono::Duration::hours(KEEP_EXPIRED_HOURS)))
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO enrolment_tokens_used (jti, ura, expires_at, used_at) VALUES (?, ?, ?, ?) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(ura.as_str())
    .bind(t(expires_at))
    .bind(t(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted == 1)
}

pub(super) async fn is_used(store: &SqliteStore, jti: &str) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM enrolment_tokens_used WHERE jti = ?")
            .bind(jti)
            .fetch_optional(&store.read)
            .await?;
    Ok(found.is_some())
}
