//! Pairing codes and guardian links on SQLite (what they mean: `crate::guardian`). The single
//! writer applies every attempt after the other, so a code cannot be used twice.

use chrono::{DateTime, NaiveDate, Utc};
use otv_core::Bsn;
use uuid::Uuid;

use super::{SqliteStore, append_audit, lock_citizen, t};
use crate::codec::{self, from_epoch_micros};
use crate::guardian::{
    CODE_PURPOSE, LinkedChild, PairingCodeStatus, PairingLimit, Redemption, attempt_event,
};
use crate::{AuditEvent, Result};

/// Used and expired codes are kept this long (so that a late try says "used" or "expired"
/// rather than "unknown"), then removed when the next code is made.
const KEEP_OLD_CODES_DAYS: i64 = 30;

pub(super) async fn issue(
    store: &SqliteStore,
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
    let mut tx = store.begin_write().await?;
    let child_id = lock_citizen(&mut tx, &store.keys, child, t(now)).await?;
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM guardian_pairing_codes WHERE code_tag = ?")
            .bind(&tag[..])
            .fetch_optional(&mut *tx)
            .await?;
    if taken.is_some() {
        return Ok(false);
    }
    sqlx::query(
        "DELETE FROM guardian_pairing_codes WHERE (child_id = ? AND used_at IS NULL) OR expires_at < ?",
    )
    .bind(child_id)
    .bind(t(now - chrono::Duration::days(KEEP_OLD_CODES_DAYS)))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO guardian_pairing_codes (code_tag, child_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
    )
    .bind(&tag[..])
    .bind(child_id)
    .bind(t(now))
    .bind(t(codec::micros(expires_at)))
    .execute(&mut *tx)
    .await?;
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(true)
}

pub(super) async fn status(
    store: &SqliteStore,
    child: &Bsn,
    now: DateTime<Utc>,
) -> Result<Option<PairingCodeStatus>> {
    let pseudonym = store.keys.pseudonym(child);
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT created_at, expires_at FROM guardian_pairing_codes WHERE used_at IS NULL AND expires_at > ? \
         AND child_id = (SELECT id FROM citizens WHERE bsn_pseudonym = ?) ORDER BY created_at DESC LIMIT 1",
    )
    .bind(t(now))
    .bind(&pseudonym[..])
    .fetch_optional(&store.read)
    .await?;
    row.map(|(created, expires)| {
        Ok(PairingCodeStatus {
            created_at: from_epoch_micros(created, "guardian_pairing_codes.created_at")?,
            expires_at: from_epoch_micros(expires, "guardian_pairing_codes.expires_at")?,
        })
    })
    .transpose()
}

pub(super) async fn redeem(
    store: &SqliteStore,
    guardian: &Bsn,
    code: &str,
    now: DateTime<Utc>,
    limit: &PairingLimit,
    audit: &AuditEvent,
) -> Result<Redemption> {
    let me = store.keys.pseudonym(guardian);
    let tag = store.keys.secret_tag(CODE_PURPOSE, code);
    let since = now - limit.window;
    let mut tx = store.begin_write().await?;
    // Failures leave the window for everyone at once: the table holds one window's worth.
    sqlx::query("DELETE FROM guardian_pairing_failures WHERE at < ?")
        .bind(t(since))
        .execute(&mut *tx)
        .await?;
    let (failures, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT count(*), min(at) FROM guardian_pairing_failures WHERE guardian_pseudonym = ?",
    )
    .bind(&me[..])
    .fetch_one(&mut *tx)
    .await?;
    let mut child_reference = None;
    let outcome = if failures >= i64::from(limit.max_failures) {
        let oldest = from_epoch_micros(oldest.unwrap_or(t(now)), "guardian_pairing_failures.at")?;
        Redemption::Blocked {
            until: oldest + limit.window,
        }
    } else {
        let row: Option<(Uuid, i64, Option<i64>, Vec<u8>)> = sqlx::query_as(
            "SELECT p.child_id, p.expires_at, p.used_at, c.bsn_pseudonym FROM guardian_pairing_codes p \
             JOIN citizens c ON c.id = p.child_id WHERE p.code_tag = ?",
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
                } else if expires_at <= t(now) {
                    Redemption::Expired
                } else if child_pseudonym[..] == me[..] {
                    Redemption::OwnCode
                } else {
                    sqlx::query(
                        "UPDATE guardian_pairing_codes SET used_at = ?, used_by = ? WHERE code_tag = ?",
                    )
                    .bind(t(now))
                    .bind(&me[..])
                    .bind(&tag[..])
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO guardian_links (id, guardian_pseudonym, child_id, linked_at) VALUES (?, ?, ?, ?) \
                         ON CONFLICT (guardian_pseudonym, child_id) DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(&me[..])
                    .bind(child_id)
                    .bind(t(now))
                    .execute(&mut *tx)
                    .await?;
                    let link: Uuid = sqlx::query_scalar(
                        "SELECT id FROM guardian_links WHERE guardian_pseudonym = ? AND child_id = ?",
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
        sqlx::query("INSERT INTO guardian_pairing_failures (guardian_pseudonym, at) VALUES (?, ?)")
            .bind(&me[..])
            .bind(t(now))
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
    i64,
    Vec<u8>,
    Vec<u8>,
    Option<String>,
    Option<NaiveDate>,
);

const LINK_QUERY: &str = "SELECT l.id, l.linked_at, c.bsn_encrypted, c.bsn_pseudonym, c.name, c.birth_date \
     FROM guardian_links l JOIN citizens c ON c.id = l.child_id WHERE l.guardian_pseudonym = ?";

fn linked(store: &SqliteStore, row: LinkRow) -> Result<LinkedChild> {
    let (link, linked_at, sealed, pseudonym, name, birth_date) = row;
    Ok(LinkedChild {
        link,
        bsn: store.keys.decrypt_bsn(&sealed, &pseudonym)?,
        name,
        birth_date,
        linked_at: from_epoch_micros(linked_at, "guardian_links.linked_at")?,
    })
}

pub(super) async fn children(store: &SqliteStore, guardian: &Bsn) -> Result<Vec<LinkedChild>> {
    let me = store.keys.pseudonym(guardian);
    let rows: Vec<LinkRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINK_QUERY} ORDER BY l.id")))
            .bind(&me[..])
            .fetch_all(&store.read)
            .await?;
    rows.into_iter().map(|r| linked(store, r)).collect()
}

pub(super) async fn child(
    store: &SqliteStore,
    guardian: &Bsn,
    link: Uuid,
) -> Result<Option<LinkedChild>> {
    let me = store.keys.pseudonym(guardian);
    let row: Option<LinkRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{LINK_QUERY} AND l.id = ?")))
            .bind(&me[..])
            .bind(link)
            .fetch_optional(&store.read)
            .await?;
    row.map(|r| linked(store, r)).transpose()
}

/// Removes what the pairing tables hold about a person whose profile is deleted (inside the
/// deletion's transaction): their links and failed tries as a parent, and their codes and
/// links as a child (`child`: their citizen id, when they have one).
pub(super) async fn forget(
    conn: &mut sqlx::SqliteConnection,
    pseudonym: &[u8; 32],
    child: Option<Uuid>,
) -> Result<()> {
    for sql in [
        "DELETE FROM guardian_links WHERE guardian_pseudonym = ?",
        "DELETE FROM guardian_pairing_failures WHERE guardian_pseudonym = ?",
        "UPDATE guardian_pairing_codes SET used_by = NULL WHERE used_by = ?",
    ] {
        sqlx::query(sql)
            .bind(&pseudonym[..])
            .execute(&mut *conn)
            .await?;
    }
    if let Some(child) = child {
        for sql in [
            "DELETE FROM guardian_links WHERE child_id = ?",
            "DELETE FROM guardian_pairing_codes WHERE child_id = ?",
        ] {
            sqlx::query(sql).bind(child).execute(&mut *conn).await?;
        }
    }
    Ok(())
}
