//! Migration on PostgreSQL (the rules: `crate::migration`): one transaction per chunk, made of a
//! handful of set-based statements whatever the chunk's size (arrays bound once, `UNNEST`ed by
//! the server). The chunk's citizens are locked in pseudonym order (`FOR UPDATE`), as
//! `record_answers` locks its one citizen, so a citizen's own change and a migration apply one
//! after the other and never deadlock.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{PgStore, append_audit, append_audit_batch, enqueue, lock_citizen};
use crate::codec;
use crate::migration::{
    Found, KeyCols, MigrationItem, MigrationOutcome, citizens, group_event, group_payload, plan,
};
use crate::{AuditEvent, Result};

pub(super) async fn migrate(
    store: &PgStore,
    items: &[MigrationItem],
    audit: &AuditEvent,
) -> Result<Vec<MigrationOutcome>> {
    let now = codec::now();
    let chunk = citizens(&store.keys, items);
    let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
    let pseudonyms: Vec<Vec<u8>> = chunk.iter().map(|c| c.pseudonym.to_vec()).collect();
    let sealed: Vec<Vec<u8>> = chunk
        .iter()
        .map(|c| store.keys.encrypt_bsn(c.bsn, &c.pseudonym))
        .collect();

    let mut tx = store.pool.begin().await?;
    sqlx::query(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) \
         SELECT u.id, u.p, u.e, $4, $4 FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[]) AS u (id, p, e) \
         ORDER BY u.p ON CONFLICT (bsn_pseudonym) DO NOTHING",
    )
    .bind(&ids)
    .bind(&pseudonyms)
    .bind(&sealed)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let rows: Vec<(Uuid, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT c.id, c.bsn_pseudonym, COALESCE(s.lock_provider_changes, false) FROM citizens c \
         LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = ANY($1) \
         ORDER BY c.bsn_pseudonym FOR UPDATE OF c",
    )
    .bind(&pseudonyms)
    .fetch_all(&mut *tx)
    .await?;
    let by_pseudonym: HashMap<Vec<u8>, (Uuid, bool)> = rows
        .into_iter()
        .map(|(id, p, locked)| (p, (id, locked)))
        .collect();
    let open: Vec<Uuid> = by_pseudonym
        .values()
        .filter(|(_, locked)| !locked)
        .map(|(id, _)| *id)
        .collect();
    let current: Vec<(Uuid, String, String, String, String, String)> = sqlx::query_as(
        "SELECT citizen_id, holder_kind, holder_code, data_category, consulter_kind, consulter_code \
         FROM answers WHERE citizen_id = ANY($1) AND superseded_at IS NULL",
    )
    .bind(&open)
    .fetch_all(&mut *tx)
    .await?;
    let mut answered: HashMap<Uuid, HashSet<KeyCols>> = HashMap::new();
    for (citizen, a, b, c, d, e) in current {
        answered.entry(citizen).or_default().insert((a, b, c, d, e));
    }
    let mut found = Vec::with_capacity(chunk.len());
    for c in &chunk {
        let &(id, locked) = by_pseudonym
            .get(&c.pseudonym[..])
            .ok_or_else(|| codec::corrupt("citizens.bsn_pseudonym"))?;
        found.push(Found {
            id,
            locked,
            answered: answered.remove(&id).unwrap_or_default(),
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
    for part in events.chunks(4_000) {
        let seq = append_audit_batch(&mut tx, &store.keys, part).await?;
        first.get_or_insert(seq);
    }
    let first = first.expect("at least one group");

    let mut cols = AnswerArrays::default();
    for (g, seq) in groups.iter().zip(first..) {
        for (_, c) in &g.answers {
            cols.citizen.push(g.citizen);
            cols.id.push(Uuid::now_v7());
            cols.holder_kind.push(c.holder_kind);
            cols.holder_code.push(c.holder_code);
            cols.data_category.push(c.data_category);
            cols.consulter_kind.push(c.consulter_kind);
            cols.consulter_code.push(c.consulter_code);
            cols.effect.push(c.effect);
            cols.valid_from.push(c.valid_from);
            cols.valid_until.push(c.valid_until);
            cols.state.push(c.state);
            cols.recorded_at.push(c.recorded_at);
            cols.channel.push(c.channel);
            cols.actor.push(c.actor.to_string());
            cols.catalogue_version.push(c.catalogue_version);
            cols.change_seq.push(seq);
        }
    }
    // Keys found free under the citizens' locks stay free; the conflict clause only guards the
    // unique current-answer index.
    sqlx::query(
        "INSERT INTO answers (citizen_id, id, holder_kind, holder_code, data_category, consulter_kind, \
         consulter_code, effect, valid_from, valid_until, state, recorded_at, channel, actor, \
         catalogue_version, change_seq) \
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::timestamptz[], \
         $13::text[], $14::text[], $15::text[], $16::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(&cols.citizen)
    .bind(&cols.id)
    .bind(&cols.holder_kind)
    .bind(&cols.holder_code)
    .bind(&cols.data_category)
    .bind(&cols.consulter_kind)
    .bind(&cols.consulter_code)
    .bind(&cols.effect)
    .bind(&cols.valid_from)
    .bind(&cols.valid_until)
    .bind(&cols.state)
    .bind(&cols.recorded_at)
    .bind(&cols.channel)
    .bind(&cols.actor)
    .bind(&cols.catalogue_version)
    .bind(&cols.change_seq)
    .execute(&mut *tx)
    .await?;
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

/// The answer columns of a chunk, one array each.
#[derive(Default)]
struct AnswerArrays<'a> {
    citizen: Vec<Uuid>,
    id: Vec<Uuid>,
    holder_kind: Vec<&'a str>,
    holder_code: Vec<&'a str>,
    data_category: Vec<&'a str>,
    consulter_kind: Vec<&'a str>,
    consulter_code: Vec<&'a str>,
    effect: Vec<&'a str>,
    valid_from: Vec<DateTime<Utc>>,
    valid_until: Vec<Option<DateTime<Utc>>>,
    state: Vec<&'a str>,
    recorded_at: Vec<DateTime<Utc>>,
    channel: Vec<&'a str>,
    actor: Vec<String>,
    catalogue_version: Vec<&'a str>,
    change_seq: Vec<i64>,
}

pub(super) async fn seen_at(store: &PgStore, bsn: &otv_core::Bsn) -> Result<Option<DateTime<Utc>>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(
        "SELECT s.migration_seen_at FROM citizen_settings s JOIN citizens c ON c.id = s.citizen_id \
         WHERE c.bsn_pseudonym = $1",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&store.pool)
    .await?;
    Ok(at.flatten())
}

pub(super) async fn mark_seen(
    store: &PgStore,
    bsn: &otv_core::Bsn,
    at: DateTime<Utc>,
    audit: &AuditEvent,
) -> Result<()> {
    let now = codec::now();
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(store.keys.patient_reference(bsn));
    }
    let mut tx = store.pool.begin().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    sqlx::query(
        "INSERT INTO citizen_settings (citizen_id, updated_at, migration_seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (citizen_id) DO UPDATE SET migration_seen_at = excluded.migration_seen_at, \
         updated_at = excluded.updated_at",
    )
    .bind(citizen)
    .bind(now)
    .bind(codec::micros(at))
    .execute(&mut *tx)
    .await?;
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(())
}
