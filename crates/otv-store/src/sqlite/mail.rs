//! Citizen e-mail on SQLite (what it means: `crate::mail`). The single writer runs one scan
//! after the other, so the cursor moves in order.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{SqliteStore, enqueue, t};
use crate::codec::{self, from_epoch_micros};
use crate::mail::{
    CheckNote, CheckScan, DigestMail, MAIL_CHECK_DIGEST, MAIL_CONSENT_CHECK, MailContact,
    ScannedCheck, mails_per_citizen, once_id,
};
use crate::{CheckNotice, Result, citizen};

pub(super) async fn contact(store: &SqliteStore, citizen: Uuid) -> Result<Option<MailContact>> {
    type Row = (Option<String>, Option<bool>, Option<String>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT c.email, s.notify_changes, s.notify_checks, s.email_verified_at \
         FROM citizens c LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.id = ?",
    )
    .bind(citizen)
    .fetch_optional(&store.read)
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

pub(super) async fn scan(
    store: &SqliteStore,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<CheckScan> {
    let now = t(now);
    let mut tx = store.begin_write().await?;
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let cursor: Option<i64> = sqlx::query_scalar("SELECT seq FROM mail_check_cursor WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?;
    let Some(cursor) = cursor else {
        sqlx::query("INSERT INTO mail_check_cursor (id, seq) VALUES (1, ?)")
            .bind(head)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        return Ok(CheckScan {
            cursor: head,
            caught_up: true,
            ..CheckScan::default()
        });
    };
    let rows = sqlx::query(
        "SELECT seq, at, event, patient, organisation, emergency, details FROM audit_log \
         WHERE seq > ? AND seq <= ? AND event IN (?, ?) ORDER BY seq LIMIT ?",
    )
    .bind(cursor)
    .bind(head)
    .bind(citizen::CHECK_EVENTS[0])
    .bind(citizen::CHECK_EVENTS[1])
    .bind(limit as i64)
    .fetch_all(&mut *tx)
    .await?;
    let mut scanned = Vec::with_capacity(rows.len());
    for r in &rows {
        scanned.push(ScannedCheck {
            seq: r.try_get(0)?,
            at: from_epoch_micros(r.try_get(1)?, "audit_log.at")?,
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
    // Who of these patients wants notices (and has a verified address to get them at).
    let mut pseudonyms: Vec<Vec<u8>> = scanned.iter().filter_map(|s| s.pseudonym()).collect();
    pseudonyms.sort();
    pseudonyms.dedup();
    let mut wants: HashMap<Vec<u8>, (Uuid, CheckNotice)> = HashMap::new();
    for chunk in pseudonyms.chunks(500) {
        let mut b = QueryBuilder::new(
            "SELECT c.bsn_pseudonym, c.id, s.notify_checks FROM citizens c \
             JOIN citizen_settings s ON s.citizen_id = c.id \
             WHERE s.notify_checks <> 'off' AND c.email IS NOT NULL AND s.email_verified_at IS NOT NULL \
             AND c.bsn_pseudonym IN (",
        );
        let mut list = b.separated(", ");
        for p in chunk {
            list.push_bind(p.as_slice());
        }
        b.push(")");
        let found: Vec<(Vec<u8>, Uuid, String)> = b.build_query_as().fetch_all(&mut *tx).await?;
        for (p, id, notice) in found {
            let notice = CheckNotice::parse(&notice)
                .ok_or_else(|| codec::corrupt("citizen_settings.notify_checks"))?;
            wants.insert(p, (id, notice));
        }
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
             VALUES (?, ?, ?, 1, ?) ON CONFLICT (citizen_id) DO UPDATE SET \
             first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at), \
             checks = checks + 1, emergency = emergency + excluded.emergency",
        )
        .bind(id)
        .bind(t(note.at))
        .bind(t(note.at))
        .bind(i64::from(note.emergency))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE mail_check_cursor SET seq = ? WHERE id = 1")
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
    store: &SqliteStore,
    day: NaiveDate,
    force: bool,
    now: DateTime<Utc>,
) -> Result<u64> {
    let now = t(now);
    let day_text = day.to_string();
    let mut tx = store.begin_write().await?;
    let last: Option<Option<String>> =
        sqlx::query_scalar("SELECT digest_day FROM mail_check_cursor WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
    if !force && last.as_ref().and_then(Option::as_deref) == Some(day_text.as_str()) {
        return Ok(0);
    }
    type DigestRow = (Uuid, i64, i64, i64, i64);
    let rows: Vec<DigestRow> = sqlx::query_as(
        "SELECT d.citizen_id, d.first_at, d.last_at, d.checks, d.emergency FROM mail_check_digests d \
         JOIN citizens c ON c.id = d.citizen_id ORDER BY d.first_at",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (id, first, last, checks, emergency) in &rows {
        let payload = DigestMail {
            from: from_epoch_micros(*first, "mail_check_digests.first_at")?,
            until: from_epoch_micros(*last, "mail_check_digests.last_at")?,
            checks: *checks,
            emergency: *emergency,
        };
        let payload = serde_json::to_string(&payload).expect("a digest serialises");
        enqueue(&mut tx, *id, MAIL_CHECK_DIGEST, payload, now).await?;
    }
    sqlx::query("DELETE FROM mail_check_digests")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO mail_check_cursor (id, seq, digest_day) \
         VALUES (1, (SELECT seq FROM audit_head WHERE id = 1), ?) \
         ON CONFLICT (id) DO UPDATE SET digest_day = excluded.digest_day",
    )
    .bind(&day_text)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

pub(super) async fn enqueue_once(
    store: &SqliteStore,
    citizen: Uuid,
    kind: &str,
    key: &str,
    payload: &str,
    available_at: DateTime<Utc>,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, created_at, available_at) VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(once_id(kind, citizen, key))
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(t(codec::now()))
    .bind(t(available_at))
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}
