//! Migration on SQLite (the rules: `crate::migration`): one write transaction per chunk, with
//! prepared statements per citizen for the reads and multi-row statements for the writes (the
//! single writer applies the chunk after or before any other change, never in between).

use std::collections::HashSet;

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{MAX_PARAMS, SqliteStore, append_audit, append_audit_batch, enqueue, lock_citizen, t};
use crate::codec::{self, answer_columns};
use crate::migration::{
    Found, KeyCols, MigrationItem, MigrationOutcome, citizens, group_event, group_payload, plan,
};
use crate::{AuditEvent, Result};

pub(super) async fn migrate(
    store: &SqliteStore,
    items: &[MigrationItem],
    audit: &AuditEvent,
) -> Result<Vec<MigrationOutcome>> {
    let now = t(codec::now());
    // The keyed work (HMAC, AES-GCM) happens before the write lock is taken.
    let chunk = citizens(&store.keys, items);
    let sealed: Vec<Vec<u8>> = chunk
        .iter()
        .map(|c| store.keys.encrypt_bsn(c.bsn, &c.pseudonym))
        .collect();

    let mut tx = store.begin_write().await?;
    let rows: Vec<_> = chunk.iter().zip(&sealed).collect();
    for part in rows.chunks(MAX_PARAMS / 5) {
        let mut b = QueryBuilder::new(
            "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) ",
        );
        b.push_values(part, |mut r, (c, sealed)| {
            r.push_bind(Uuid::now_v7())
                .push_bind(c.pseudonym.to_vec())
                .push_bind((*sealed).clone())
                .push_bind(now)
                .push_bind(now);
        });
        b.push(" ON CONFLICT (bsn_pseudonym) DO NOTHING");
        b.build().execute(&mut *tx).await?;
    }
    let mut found = Vec::with_capacity(chunk.len());
    for c in &chunk {
        let (id, locked): (Uuid, bool) = sqlx::query_as(
            "SELECT c.id, COALESCE(s.lock_provider_changes, 0) FROM citizens c \
             LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = ?",
        )
        .bind(&c.pseudonym[..])
        .fetch_one(&mut *tx)
        .await?;
        let answered: HashSet<KeyCols> = if locked {
            HashSet::new()
        } else {
            sqlx::query_as(
                "SELECT holder_kind, holder_code, data_category, consulter_kind, consulter_code \
                 FROM answers WHERE citizen_id = ? AND superseded_at IS NULL",
            )
            .bind(id)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect()
        };
        found.push(Found {
            id,
            locked,
            answered,
        });
    }
    let (outcomes, groups) = plan(items, &chunk, found)?;
    if groups.is_empty() {
        tx.commit().await?;
        return Ok(outcomes);
    }
    let events: Vec<AuditEvent> = groups.iter().map(|g| group_event(audit, g)).collect();
    // In parts, within the bound-parameter limit (15 per record); the parts follow each other
    // in the chain, so the records' sequence numbers are consecutive from the first.
    let mut first = None;
    for part in events.chunks(MAX_PARAMS / 15) {
        let seq = append_audit_batch(&mut tx, &store.keys, part).await?;
        first.get_or_insert(seq);
    }
    let first = first.expect("at least one group");

    let answers: Vec<_> = groups
        .iter()
        .zip(first..)
        .flat_map(|(g, seq)| g.answers.iter().map(move |(_, c)| (g.citizen, seq, c)))
        .collect();
    for part in answers.chunks(MAX_PARAMS / 16) {
        let mut b = QueryBuilder::new(concat!(
            "INSERT INTO answers (citizen_id, id, ",
            answer_columns!(),
            ", change_seq) "
        ));
        b.push_values(part, |mut r, (citizen, seq, c)| {
            r.push_bind(*citizen)
                .push_bind(Uuid::now_v7())
                .push_bind(c.holder_kind)
                .push_bind(c.holder_code)
                .push_bind(c.data_category)
                .push_bind(c.consulter_kind)
                .push_bind(c.consulter_code)
                .push_bind(c.effect)
                .push_bind(t(c.valid_from))
                .push_bind(c.valid_until.map(t))
                .push_bind(c.state)
                .push_bind(t(c.recorded_at))
                .push_bind(c.channel)
                .push_bind(c.actor.to_string())
                .push_bind(c.catalogue_version)
                .push_bind(*seq);
        });
        b.build().execute(&mut *tx).await?;
    }
    // The backend's one outbox insert; a prepared statement, so a row costs little.
    for (g, seq) in groups.iter().zip(first..) {
        enqueue(
            &mut tx,
            g.citizen,
            codec::PROFILE_CHANGED,
            group_payload(g, seq),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}

pub(super) async fn seen_at(
    store: &SqliteStore,
    bsn: &otv_core::Bsn,
) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let at: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT s.migration_seen_at FROM citizen_settings s JOIN citizens c ON c.id = s.citizen_id \
         WHERE c.bsn_pseudonym = ?",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&store.read)
    .await?;
    at.flatten()
        .map(|v| codec::from_epoch_micros(v, "citizen_settings.migration_seen_at"))
        .transpose()
}

pub(super) async fn mark_seen(
    store: &SqliteStore,
    bsn: &otv_core::Bsn,
    at: chrono::DateTime<chrono::Utc>,
    audit: &AuditEvent,
) -> Result<()> {
    let now = t(codec::now());
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(store.keys.patient_reference(bsn));
    }
    let mut tx = store.begin_write().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    sqlx::query(
        "INSERT INTO citizen_settings (citizen_id, updated_at, migration_seen_at) VALUES (?, ?, ?) \
         ON CONFLICT (citizen_id) DO UPDATE SET migration_seen_at = excluded.migration_seen_at, \
         updated_at = excluded.updated_at",
    )
    .bind(citizen)
    .bind(now)
    .bind(t(codec::micros(at)))
    .execute(&mut *tx)
    .await?;
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(())
}
