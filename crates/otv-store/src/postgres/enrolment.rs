//! Enrolment tokens used up, on PostgreSQL (what it means: `crate::enrolment`). Of two
//! transactions inserting the same `jti`, the second waits on the first's unique index entry
//! and then inserts nothing.

use chrono::{DateTime, Utc};
use otv_core::Ura;

use super::PgStore;
use crate::Result;
use crate::codec;
use crate::enrolment::KEEP_EXPIRED_HOURS;

pub(super) async fn use_token(
    store: &PgStore,
    jti: &str,
    ura: &Ura,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    sqlx::query("DELETE FROM enrolment_tokens_used WHERE expires_at < $1")
        .bind(now - chrono::Duration::hours(KEEP_EXPIRED_HOURS))
        .execute(&mut *tx)
        .await?;
    let inserted = sqlx::query(
        "INSERT INTO enrolment_tokens_used (jti, ura, expires_at, used_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(ura.as_str())
    .bind(codec::micros(expires_at))
    .bind(codec::micros(now))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted == 1)
}

pub(super) async fn is_used(store: &PgStore, jti: &str) -> Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM enrolment_tokens_used WHERE jti = $1")
            .bind(jti)
            .fetch_optional(&store.pool)
            .await?;
    Ok(found.is_some())
}
