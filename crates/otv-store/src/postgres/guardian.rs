//! Pairing codes and guardian links on PostgreSQL (what they mean: `crate::guardian`). An
//! attempt locks the code's row (`FOR UPDATE`), so of two parents typing the same code at the
//! same moment only one is linked; the other is told it was used.

use chrono::{DateTime, NaiveDate, Utc};
use otv_core::Bsn;
use uuid::Uuid;

use super::{PgStore, append_audit, lock_citizen};
use crate::codec;
use crate::guardian::{
    CODE_PURPOSE, LinkedChild, PairingCodeStatus, PairingLimit, Redemption, attempt_event,
};
use crate::{AuditEvent, Result};

/// Used and expired codes are kept this long (so that a late try says "used" or "expired"
/// rather than "unknown"), then removed when the next code is made.
const KEEP_OLD_CODES_DAYS: i64 = 30;

pub(super) async fn issue(
    store: &PgStore,
    child: &Bsn,
    code: &str,
    expires_at: DateTime<Utc>,
    audit: &AuditEvent,
) -> Result<bool> {
    let now = codec::now();
    let tag = store.keys.secret_tag(CODE_PURPOSE, code);
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(store.keys.patient_reference(child));
    }
    crate::citizen::merge_details(
        &mut event,
        serde_json::json!({ "expires_at": codec::rfc3339_micros(expires_at) }),
    );
    let mut tx = store.pool.begin().await?;
    let child_id = lock_citizen(&mut tx, &store.keys, child, now).await?;
    sqlx::query(
        "DELETE FROM guardian_pairing_codes WHERE (child_id = $1 AND used_at IS NULL) OR expires_at < $2",
    )
    .bind(child_id)
    .bind(now - chrono::Duration::days(KEEP_OLD_CODES_DAYS))
    .execute(&mut *tx)
    .await?;
    let inserted = sqlx::query(
        "INSERT INTO guardian_pairing_codes (code_tag, child_id, created_at, expires_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (code_tag) DO NOTHING",
    )
    .bind(&tag[..])
    .bind(child_id)
    .bind(now)
    .bind(codec::micros(expires_at))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        // Taken: roll back (the old code stays as it was).
        return Ok(false);
    }
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn status(
    store: &PgStore,
    child: &Bsn,
    now: DateTime<Utc>,
) -> Result<Option<PairingCodeStatus>> {
    let pseudonym = store.keys.pseudonym(child);
    let row: Option<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT created_at, expires_at FROM guardian_pairing_codes WHERE used_at IS NULL AND expires_at > $1 \
         AND child_id = (SELECT id FROM citizens WHERE bsn_pseudonym = $2) ORDER BY created_at DESC LIMIT 1",
    )
    .bind(now)
    .bind(&pseudonym[..])
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.map(|(created_at, expires_at)| PairingCodeStatus {
        created_at,
        expires_at,
    }))
}

/// A code's child, expiry, use and the child's pseudonym.
type CodeRow = (Uuid, DateTime<Utc>, Option<DateTime<Utc>>, Vec<u8>);

pub(super) async fn redeem(
    store: &PgStore,
    guardian: &Bsn,
    code: &str,
    now: DateTime<Utc>,
    limit: &PairingLimit,
    audit: &AuditEvent,
) -> Result<Redemption> {
    let me = store.keys.pseudonym(guardian);
    let tag = store.keys.secret_tag(CODE_PURPOSE, code);
    let since = now - limit.window;
    let mut tx = store.pool.begin().await?;
    // Failures leave the window for everyone at once: the table holds one window's worth.
    sqlx::query("DELETE FROM guardian_pairing_failures WHERE at < $1")
        .bind(since)
        .execute(&mut *tx)
        .await?;
    let (failures, oldest): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), min(at) FROM guardian_pairing_failures WHERE guardian_pseudonym = $1",
    )
    .bind(&me[..])
    .fetch_one(&mut *tx)
    .await?;
    let mut child_reference = None;
    let outcome = if failures >= i64::from(limit.max_failures) {
        Redemption::Blocked {
            until: oldest.unwrap_or(now) + limit.window,
        }
    } else {
        let row: Option<CodeRow> = sqlx::query_as(
            "SELECT p.child_id, p.expires_at, p.used_at, c.bsn_pseudonym FROM guardian_pairing_codes p \
             JOIN citizens c ON c.id = p.child_id WHERE p.code_tag = $1 FOR UPDATE OF p",
        )
        .bind(&tag[..])
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            None => Redemption::Unknown,
            Some((child_id, expires_at, used_at, child_pseudonym)) => {
                child_reference = Some(hex::encode(&child_pseudonym));
                if used_at.is_some() {
                    Redemption::Used
                } else if expires_at <= now {
                    Redemption::Expired
                } else if child_pseudonym[..] == me[..] {
                    Redemption::OwnCode
                } else {
                    sqlx::query(
                        "UPDATE guardian_pairing_codes SET used_at = $1, used_by = $2 WHERE code_tag = $3",
                    )
                    .bind(now)
                    .bind(&me[..])
                    .bind(&tag[..])
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO guardian_links (id, guardian_pseudonym, child_id, linked_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (guardian_pseudonym, child_id) DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(&me[..])
                    .bind(child_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let link: Uuid = sqlx::query_scalar(
                        "SELECT id FROM guardian_links WHERE guardian_pseudonym = $1 AND child_id = $2",
                    )
                    .bind(&me[..])
                    .bind(child_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    Redemption::Paired { link }
                }
            }
        }
    };
    // The first refused try of a pause is counted (as a marker) and audited; later ones in the
    // same pause are neither, so that hammering cannot fill the audit chain.
    let first_refusal =
        matches!(outcome, Redemption::Blocked { .. }) && failures == i64::from(limit.max_failures);
    if outcome.is_failure() || first_refusal {
        sqlx::query(
            "INSERT INTO guardian_pairing_failures (guardian_pseudonym, at) VALUES ($1, $2)",
        )
        .bind(&me[..])
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    if first_refusal || !matches!(outcome, Redemption::Blocked { .. }) {
        let event = attempt_event(audit, &outcome, child_reference);
        append_audit(&mut tx, &store.keys, &event).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

type LinkRow = (
    Uuid,
    DateTime<Utc>,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    Option<NaiveDate>,
);

const LINK_QUERY: &str = "SELECT l.id, l.linked_at, c.bsn_encrypted, c.bsn_pseudonym, c.name, c.birth_date \
     FROM guardian_links l JOIN citizens c ON c.id = l.child_id WHERE l.guardian_pseudonym = $1";

fn linked(store: &PgStore, row: LinkRow) -> Result<LinkedChild> {
    let (link, linked_at, sealed, pseudonym, name, birth_date) = row;
    Ok(LinkedChild {
        link,
        bsn: store.keys.decrypt_bsn(&sealed, &pseudonym)?,
        name,
        birth_date,
        linked_at,
    })
}

pub(super) async fn children(store: &PgStore, guardian: &Bsn) -> Result<Vec<LinkedChild>> {
    let me = store.keys.pseudonym(guardian);
    let rows: Vec<LinkRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINK_QUERY} ORDER BY l.id")))
            .bind(&me[..])
            .fetch_all(&store.pool)
            .await?;
    rows.into_iter().map(|r| linked(store, r)).collect()
}

pub(super) async fn child(
    store: &PgStore,
    guardian: &Bsn,
    link: Uuid,
) -> Result<Option<LinkedChild>> {
    let me = store.keys.pseudonym(guardian);
    let row: Option<LinkRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINK_QUERY} AND l.id = $2")))
            .bind(&me[..])
            .bind(link)
            .fetch_optional(&store.pool)
            .await?;
    row.map(|r| linked(store, r)).transpose()
}

/// Removes what the pairing tables hold about a person whose profile is deleted (inside the
/// deletion's transaction): their links and failed tries as a parent, and their codes and
/// links as a child (`child`: their citizen id, when they have one).
pub(super) async fn forget(
    conn: &mut sqlx::PgConnection,
    pseudonym: &[u8; 32],
    child: Option<Uuid>,
) -> Result<()> {
    for sql in [
        "DELETE FROM guardian_links WHERE guardian_pseudonym = $1",
        "DELETE FROM guardian_pairing_failures WHERE guardian_pseudonym = $1",
        "UPDATE guardian_pairing_codes SET used_by = NULL WHERE used_by = $1",
    ] {
        sqlx::query(sql)
            .bind(&pseudonym[..])
            .execute(&mut *conn)
            .await?;
    }
    if let Some(child) = child {
        for sql in [
            "DELETE FROM guardian_links WHERE child_id = $1",
            "DELETE FROM guardian_pairing_codes WHERE child_id = $1",
        ] {
            sqlx::query(sql).bind(child).execute(&mut *conn).await?;
        }
    }
    Ok(())
}
