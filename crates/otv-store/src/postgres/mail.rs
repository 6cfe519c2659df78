//! Citizen e-mail on PostgreSQL (what it means: `crate::mail`). A scan locks the cursor's row
//! (`FOR UPDATE`), so two scans (the server's and `otv notify digest`, or two servers) never
//! read the same checks; the audit log's appends serialise on `audit_head`, so every record up
//! to the head read is committed.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::{PgStore, enqueue};
use crate::codec;
use crate::mail::{
    CheckNote, CheckScan, DigestMail, MAIL_CHECK_DIGEST, MAIL_CONSENT_CHECK, MailContact,
    ScannedCheck, mails_per_citizen, once_id,
};
use crate::{CheckNotice, Result, citizen};

pub(super) async fn contact(store: &PgStore, citizen: Uuid) -> Result<Option<MailContact>> {
    type Row = (
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<DateTime<Utc>>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.email, s.notify_changes, s.notify_checks, s.email_verified_at \
         FROM citizens c LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.id = $1",
    )
    .bind(citizen)
    .fetch_optional(&store.pool)
    .await?;
    let Some((email, changes, checks, verified)) = row else {
        return Ok(None);
    };
    let d = crate::CitizenSettings::default();
    Ok(Some(MailContact {
        verified: email.is_some() && verified.is_some(),
        email,
        notify_changes: changes.unwrap_or(d.notify_changes),
        notify_checks: match checks {
            Some(c) => CheckNotice::parse(&c)
                .ok_or_else(|| codec::corrupt("citizen_settings.notify_checks"))?,
            None => d.notify_checks,
        },
    }))
}

pub(super) async fn scan(store: &PgStore, limit: usize, now: DateTime<Utc>) -> Result<CheckScan> {
    let now = codec::micros(now);
    let mut tx = store.pool.begin().await?;
    sqlx::query(
        "INSERT INTO mail_check_cursor (id, seq) SELECT 1, seq FROM audit_head WHERE id = 1 \
         ON CONFLICT (id) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    // Waits for a scan that holds the row, then reads the cursor it left.
    let cursor: i64 =
        sqlx::query_scalar("SELECT seq FROM mail_check_cursor WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let rows = sqlx::query(
        "SELECT seq, at, event, patient, organisation, emergency, details FROM audit_log \
         WHERE seq > $1 AND seq <= $2 AND event = ANY($3) ORDER BY seq LIMIT $4",
    )
    .bind(cursor)
    .bind(head)
    .bind(&citizen::CHECK_EVENTS[..])
    .bind(limit as i64)
    .fetch_all(&mut *tx)
    .await?;
    let mut scanned = Vec::with_capacity(rows.len());
    for r in &rows {
        scanned.push(ScannedCheck {
            seq: r.try_get(0)?,
            at: r.try_get(1)?,
            event: r.try_get(2)?,
            patient: r.try_get(3)?,
            organisation: r.try_get(4)?,
            emergency: r.try_get(5)?,
            details: r.try_get(6)?,
        });
    }
    let new_cursor = match scanned.last() {
        Some(last) if scanned.len() == limit => last.seq,
        _ => head,
    };
    let mut pseudonyms: Vec<Vec<u8>> = scanned.iter().filter_map(|s| s.pseudonym()).collect();
    pseudonyms.sort();
    pseudonyms.dedup();
    let found: Vec<(Vec<u8>, Uuid, String)> = sqlx::query_as(
        "SELECT c.bsn_pseudonym, c.id, s.notify_checks FROM citizens c \
         JOIN citizen_settings s ON s.citizen_id = c.id \
         WHERE s.notify_checks <> 'off' AND c.email IS NOT NULL AND s.email_verified_at IS NOT NULL \
         AND c.bsn_pseudonym = ANY($1)",
    )
    .bind(&pseudonyms)
    .fetch_all(&mut *tx)
    .await?;
    let mut wants: HashMap<Vec<u8>, (Uuid, CheckNotice)> = HashMap::new();
    for (p, id, notice) in found {
        let notice = CheckNotice::parse(&notice)
            .ok_or_else(|| codec::corrupt("citizen_settings.notify_checks"))?;
        wants.insert(p, (id, notice));
    }
    let mut immediate: Vec<(Uuid, CheckNote)> = Vec::new();
    let mut daily: Vec<(Uuid, CheckNote)> = Vec::new();
    for s in &scanned {
        let Some((id, notice)) = s.pseudonym().and_then(|p| wants.get(&p).copied()) else {
            continue;
        };
        match notice {
            CheckNotice::Immediately => immediate.push((id, s.note())),
            CheckNotice::Daily => daily.push((id, s.note())),
            CheckNotice::Off => {}
        }
    }
    let checks = (immediate.len() + daily.len()) as u64;
    let mut queued = 0;
    for (id, mail) in mails_per_citizen(immediate) {
        let payload = serde_json::to_string(&mail).expect("a check mail serialises");
        enqueue(&mut tx, id, MAIL_CONSENT_CHECK, payload, now).await?;
        queued += 1;
    }
    for (id, note) in daily {
        sqlx::query(
            "INSERT INTO mail_check_digests (citizen_id, first_at, last_at, checks, emergency) \
             VALUES ($1, $2, $2, 1, $3) ON CONFLICT (citizen_id) DO UPDATE SET \
             first_at = least(mail_check_digests.first_at, excluded.first_at), \
             last_at = greatest(mail_check_digests.last_at, excluded.last_at), \
             checks = mail_check_digests.checks + 1, \
             emergency = mail_check_digests.emergency + excluded.emergency",
        )
        .bind(id)
        .bind(note.at)
        .bind(i64::from(note.emergency))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE mail_check_cursor SET seq = $1 WHERE id = 1")
        .bind(new_cursor)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(CheckScan {
        cursor: new_cursor,
        caught_up: new_cursor == head,
        checks,
        queued,
    })
}

pub(super) async fn take_digests(
    store: &PgStore,
    day: NaiveDate,
    force: bool,
    now: DateTime<Utc>,
) -> Result<u64> {
    let now = codec::micros(now);
    let mut tx = store.pool.begin().await?;
    sqlx::query(
        "INSERT INTO mail_check_cursor (id, seq) SELECT 1, seq FROM audit_head WHERE id = 1 \
         ON CONFLICT (id) DO NOTHING",
    )
    .execute(&mut *tx)
    .await?;
    let last: Option<NaiveDate> =
        sqlx::query_scalar("SELECT digest_day FROM mail_check_cursor WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    if !force && last == Some(day) {
        return Ok(0);
    }
    type DigestRow = (Uuid, DateTime<Utc>, DateTime<Utc>, i64, i64);
    let rows: Vec<DigestRow> = sqlx::query_as(
        "DELETE FROM mail_check_digests d USING citizens c WHERE c.id = d.citizen_id \
         RETURNING d.citizen_id, d.first_at, d.last_at, d.checks, d.emergency",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, from, until, checks, emergency) in &rows {
        let payload = DigestMail {
            from: *from,
            until: *until,
            checks: *checks,
            emergency: *emergency,
        };
        let payload = serde_json::to_string(&payload).expect("a digest serialises");
        enqueue(&mut tx, *id, MAIL_CHECK_DIGEST, payload, now).await?;
    }
    // Digests of citizens deleted meanwhile.
    sqlx::query("DELETE FROM mail_check_digests")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE mail_check_cursor SET digest_day = $1 WHERE id = 1")
        .bind(day)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

pub(super) async fn enqueue_once(
    store: &PgStore,
    citizen: Uuid,
    kind: &str,
    key: &str,
    payload: &str,
    available_at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, created_at, available_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
    )
    .bind(once_id(kind, citizen, key))
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(codec::now())
    .bind(codec::micros(available_at))
    .execute(&store.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
