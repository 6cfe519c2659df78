//! The PostgreSQL backend: production, shared by any number of stateless otv nodes.
//!
//! Coordination between nodes goes through the database only: appends to the audit chain lock
//! the single `audit_head` row (`SELECT … FOR UPDATE`), and changes to one citizen lock that
//! citizen's row (the upsert at the start of the transaction), so they apply one after the
//! other. No advisory locks, nothing that would not carry over to a distributed PostgreSQL.
//!
//! This module only moves rows: what a valid answer, audit record or checkpoint is lives in
//! `codec` and `audit`, shared with SQLite. It must not put a BSN in a query (only the
//! pseudonym and the ciphertext), so no database error can ever carry one.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use otv_core::{Answer, Bsn, OrgType, Sides, Ura};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::audit::{
    AuditEvent, CHECKPOINT_EVERY, Checkpoint, Prepared, StoredRecord, Verifier, VerifyReport,
};
use crate::audit_writer::AuditWriter;
use crate::citizen;
use crate::codec::{
    self, AnswerCols, SubscriptionRow, answer_columns, in_pseudonym_order,
    subscription_record_query,
};
use crate::model::{
    CitizenDetails, Connector, GeneratedCitizen, NewSubscription, Provider, Registration,
    StoreStats, Subscription, SubscriptionChange, SubscriptionRecord,
};
use crate::model::{PortalSession, ProviderQuery};
use crate::{Backend, Keys, Result};

mod enrolment;
mod guardian;
mod handoff;
mod mail;
mod migration;
mod outbox;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows per bulk statement in `load_generated`: bounds the memory of one statement's arrays.
const BULK_ROWS: usize = 50_000;

/// A store on one PostgreSQL database.
pub(crate) struct PgStore {
    pool: PgPool,
    keys: Keys,
    audit_writer: AuditWriter,
}

impl PgStore {
    /// `record_answers` and, with `declines_proposal`, `decline_pending`: the declined
    /// proposals are stored as history only (replaced as they are stored).
    async fn write_answers(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
        declines_proposal: bool,
    ) -> Result<i64> {
        let now = codec::now();
        let cols = answers
            .iter()
            .map(AnswerCols::from_answer)
            .collect::<Result<Vec<_>>>()?;
        let mut event = audit.clone();
        if event.patient.is_none() {
            event.patient = Some(self.keys.patient_reference(bsn));
        }
        let mut tx = self.pool.begin().await?;
        let citizen = lock_citizen(&mut tx, &self.keys, bsn, now).await?;
        let mut ids = Vec::with_capacity(cols.len());
        for (a, c) in answers.iter().zip(&cols) {
            let id = Uuid::now_v7();
            ids.push(id);
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE answers SET superseded_at = $1 WHERE citizen_id = $2 AND holder_kind = $3 \
                 AND holder_code = $4 AND data_category = $5 AND consulter_kind = $6 AND consulter_code = $7 \
                 AND superseded_at IS NULL{}",
                codec::replaced_condition(a, declines_proposal)
            )))
            .bind(now)
            .bind(citizen)
            .bind(c.holder_kind)
            .bind(c.holder_code)
            .bind(c.data_category)
            .bind(c.consulter_kind)
            .bind(c.consulter_code)
            .execute(&mut *tx)
            .await?;
            sqlx::query(concat!(
                "INSERT INTO answers (citizen_id, id, ",
                answer_columns!(),
                ", superseded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ))
            .bind(citizen)
            .bind(id)
            .bind(c.holder_kind)
            .bind(c.holder_code)
            .bind(c.data_category)
            .bind(c.consulter_kind)
            .bind(c.consulter_code)
            .bind(c.effect)
            .bind(c.valid_from)
            .bind(c.valid_until)
            .bind(c.state)
            .bind(c.recorded_at)
            .bind(c.channel)
            .bind(&*c.actor)
            .bind(c.catalogue_version)
            .bind(declines_proposal.then_some(now))
            .execute(&mut *tx)
            .await?;
        }
        // Last, so the chain's lock is held only for the end of the transaction.
        let seq = append_audit(&mut tx, &self.keys, &event).await?;
        // The attempt is audited either way; with no answer changed there is nobody to notify.
        if !answers.is_empty() {
            // Each answer names its change, for the change's receipt.
            sqlx::query(
                "UPDATE answers SET change_seq = $1 WHERE citizen_id = $2 AND id = ANY($3)",
            )
            .bind(seq)
            .bind(citizen)
            .bind(&ids)
            .execute(&mut *tx)
            .await?;
            enqueue(
                &mut tx,
                citizen,
                codec::PROFILE_CHANGED,
                codec::profile_changed_payload(answers, seq),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(seq)
    }

    /// Connects to the database at `url`.
    pub(crate) async fn connect(url: &str, keys: Keys) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(url)?.application_name("otv");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await?;
        // The audit writer has a connection of its own: behind the shared pool it would wait for
        // a free connection while every question that waits for it holds one.
        let writer_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        let audit_writer = {
            let (pool, keys) = (writer_pool, keys.clone());
            AuditWriter::spawn(move |events| {
                let (pool, keys) = (pool.clone(), keys.clone());
                async move {
                    let mut tx = pool.begin().await?;
                    let first = append_audit_batch(&mut tx, &keys, &events).await?;
                    tx.commit().await?;
                    Ok(first)
                }
            })
        };
        Ok(PgStore {
            pool,
            keys,
            audit_writer,
        })
    }
}

fn read_answer(row: &PgRow) -> Result<Answer> {
    AnswerCols {
        holder_kind: row.try_get(0)?,
        holder_code: row.try_get(1)?,
        data_category: row.try_get(2)?,
        consulter_kind: row.try_get(3)?,
        consulter_code: row.try_get(4)?,
        effect: row.try_get(5)?,
        valid_from: row.try_get(6)?,
        valid_until: row.try_get(7)?,
        state: row.try_get(8)?,
        recorded_at: row.try_get(9)?,
        channel: row.try_get(10)?,
        actor: Cow::Borrowed(row.try_get(11)?),
        catalogue_version: row.try_get(12)?,
    }
    .to_answer()
}

/// Creates the citizen if unknown and returns the id. The upsert locks the citizen's row until
/// the transaction ends, so concurrent changes to one citizen's profile apply one after the
/// other (and each sees the answers the previous one wrote).
async fn lock_citizen(
    conn: &mut PgConnection,
    keys: &Keys,
    bsn: &Bsn,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let pseudonym = keys.pseudonym(bsn);
    let encrypted = keys.encrypt_bsn(bsn, &pseudonym);
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (bsn_pseudonym) DO UPDATE SET updated_at = excluded.updated_at RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&pseudonym[..])
    .bind(encrypted)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Creates the citizen if unknown and returns the id, without locking or rewriting an existing
/// row: registrations only need to point at the citizen.
async fn ensure_citizen(
    conn: &mut PgConnection,
    keys: &Keys,
    pseudonym: &[u8; 32],
    bsn: &Bsn,
    now: DateTime<Utc>,
) -> Result<Uuid> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (bsn_pseudonym) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&pseudonym[..])
    .bind(keys.encrypt_bsn(bsn, pseudonym))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        return Ok(id);
    }
    // Read committed: this statement sees the row whose concurrent insert we waited for.
    Ok(
        sqlx::query_scalar("SELECT id FROM citizens WHERE bsn_pseudonym = $1")
            .bind(&pseudonym[..])
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Registers one subscription inside the caller's transaction (the citizen is created if
/// unknown). A repeated registration (same connector, patient and source system) changes
/// nothing: the first one stays, which makes retries by a connector harmless.
async fn register(
    conn: &mut PgConnection,
    keys: &Keys,
    pseudonym: &[u8; 32],
    s: &NewSubscription,
    now: DateTime<Utc>,
) -> Result<Registration> {
    let citizen = ensure_citizen(&mut *conn, keys, pseudonym, &s.bsn, now).await?;
    let created: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
         gateway_system, endpoint, payload, birth_date, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
         ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING RETURNING id",
    )
    .bind(citizen)
    .bind(Uuid::now_v7())
    .bind(s.holder_ura.as_str())
    .bind(s.holder_type.as_str())
    .bind(&s.connector_id)
    .bind(&s.source_system)
    .bind(&s.gateway_system)
    .bind(&s.endpoint)
    .bind(&s.payload)
    .bind(s.birth_date)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = created {
        return Ok(Registration::Created(id));
    }
    // Read committed: this statement sees the row whose concurrent insert made ours a
    // conflict.
    let existing = sqlx::query_scalar(
        "SELECT id FROM subscriptions WHERE connector_id = $1 AND citizen_id = $2 AND source_system = $3",
    )
    .bind(&s.connector_id)
    .bind(citizen)
    .bind(&s.source_system)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Registration::Existing(existing))
}

/// Appends one record to the chain inside the caller's transaction; the head's row lock is
/// held until that transaction ends.
async fn append_audit(conn: &mut PgConnection, keys: &Keys, event: &AuditEvent) -> Result<i64> {
    append_audit_batch(conn, keys, std::slice::from_ref(event)).await
}

/// Appends records to the chain, in order, inside the caller's transaction (one statement for
/// all of them); returns the sequence number of the first.
async fn append_audit_batch(
    conn: &mut PgConnection,
    keys: &Keys,
    events: &[AuditEvent],
) -> Result<i64> {
    let (head, mut prev): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *conn)
            .await?;
    let mut records = Vec::with_capacity(events.len());
    for (seq, event) in (head + 1..).zip(events) {
        let p = Prepared::new(seq, event, &prev);
        prev.clone_from(&p.hash);
        records.push(p);
    }
    let mut insert = sqlx::QueryBuilder::new(
        "INSERT INTO audit_log (seq, at, event, patient, actor, organisation, mandated, request_id, decision, \
         reason, emergency, channel, details, prev_hash, hash) ",
    );
    insert.push_values(&records, |mut row, p| {
        let e = &p.event;
        row.push_bind(p.seq)
            .push_bind(e.at)
            .push_bind(&e.event)
            .push_bind(&e.patient)
            .push_bind(&e.actor)
            .push_bind(&e.organisation)
            .push_bind(&e.mandated)
            .push_bind(&e.request_id)
            .push_bind(&e.decision)
            .push_bind(&e.reason)
            .push_bind(e.emergency)
            .push_bind(&e.channel)
            .push_bind(&p.details)
            .push_bind(&p.prev_hash)
            .push_bind(&p.hash);
    });
    insert.build().execute(&mut *conn).await?;
    let last = records.last().expect("at least one audit record");
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last.seq)
        .bind(&last.hash)
        .execute(&mut *conn)
        .await?;
    for p in records.iter().filter(|p| p.seq % CHECKPOINT_EVERY == 0) {
        insert_checkpoint(conn, &Checkpoint::sign(keys, p.seq, &p.hash)).await?;
    }
    Ok(head + 1)
}

/// Queues a notification event (the outbox, PRODUCT.md §11) inside the caller's transaction, so
/// that it is written with the change that causes it or not at all.
async fn enqueue(
    conn: &mut PgConnection,
    citizen: Uuid,
    kind: &str,
    payload: String,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, citizen_id, kind, payload, created_at, available_at, ordering_key) VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(citizen)
    .bind(kind)
    .bind(payload)
    .bind(now)
    // A citizen's changes are delivered in order (the outbox engine, helper D).
    .bind(crate::outbox::default_ordering_key(kind, citizen))
    .execute(&mut *conn)
    .await?;
    crate::outbox::count_write();
    Ok(())
}

async fn insert_checkpoint(conn: &mut PgConnection, c: &Checkpoint) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, signed_at, signature, public_key) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (seq) DO NOTHING",
    )
    .bind(c.seq)
    .bind(&c.hash)
    .bind(codec::now())
    .bind(&c.signature)
    .bind(&c.public_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Backend for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn patient_reference(&self, bsn: &Bsn) -> String {
        self.keys.patient_reference(bsn)
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn upsert_providers(&self, providers: &[Provider]) -> Result<()> {
        // One statement may not update a row twice: the last entry for a URA wins, as it would
        // one by one.
        let mut latest = std::collections::BTreeMap::new();
        for p in providers {
            latest.insert(p.ura.as_str(), p);
        }
        let uras: Vec<&str> = latest.keys().copied().collect();
        let names: Vec<&str> = latest.values().map(|p| p.name.as_str()).collect();
        let types: Vec<&str> = latest
            .values()
            .map(|p| p.organisation_type.as_str())
            .collect();
        sqlx::query(
            "INSERT INTO providers (ura, name, organisation_type, created_at, updated_at) \
             SELECT u.*, $4, $4 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u \
             ON CONFLICT (ura) DO UPDATE SET name = excluded.name, \
             organisation_type = excluded.organisation_type, updated_at = excluded.updated_at",
        )
        .bind(uras)
        .bind(names)
        .bind(types)
        .bind(codec::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn provider(&self, ura: &Ura) -> Result<Option<Provider>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, organisation_type FROM providers WHERE ura = $1")
                .bind(ura.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(name, t)| {
            let organisation_type =
                OrgType::parse(&t).map_err(|_| codec::corrupt("providers.organisation_type"))?;
            Ok(Provider {
                ura: ura.clone(),
                name,
                organisation_type,
            })
        })
        .transpose()
    }

    async fn upsert_connector(&self, c: &Connector) -> Result<()> {
        let now = codec::now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO connectors (id, name, certificate_sha256, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             certificate_sha256 = excluded.certificate_sha256, updated_at = excluded.updated_at",
        )
        .bind(&c.id)
        .bind(&c.name)
        .bind(&c.certificate_sha256)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM connector_uras WHERE connector_id = $1")
            .bind(&c.id)
            .execute(&mut *tx)
            .await?;
        let uras: Vec<&str> = c.acts_for.iter().map(Ura::as_str).collect();
        sqlx::query(
            "INSERT INTO connector_uras (connector_id, ura) SELECT $1, u FROM UNNEST($2::text[]) AS u \
             ON CONFLICT DO NOTHING",
        )
        .bind(&c.id)
        .bind(uras)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn connector(&self, id: &str) -> Result<Option<Connector>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT name, certificate_sha256 FROM connectors WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((name, certificate_sha256)) = row else {
            return Ok(None);
        };
        let uras: Vec<String> = sqlx::query_scalar(
            "SELECT ura FROM connector_uras WHERE connector_id = $1 ORDER BY ura",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let acts_for = uras
            .iter()
            .map(|u| Ura::parse(u).map_err(|_| codec::corrupt("connector_uras.ura")))
            .collect::<Result<_>>()?;
        Ok(Some(Connector {
            id: id.to_owned(),
            name,
            certificate_sha256,
            acts_for,
        }))
    }

    async fn upsert_citizen(&self, bsn: &Bsn, d: &CitizenDetails) -> Result<Uuid> {
        let now = codec::now();
        let pseudonym = self.keys.pseudonym(bsn);
        let encrypted = self.keys.encrypt_bsn(bsn, &pseudonym);
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, name, email, birth_date, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (bsn_pseudonym) DO UPDATE SET \
             name = coalesce(excluded.name, citizens.name), email = coalesce(excluded.email, citizens.email), \
             birth_date = coalesce(excluded.birth_date, citizens.birth_date), updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(Uuid::now_v7())
        .bind(&pseudonym[..])
        .bind(encrypted)
        .bind(&d.name)
        .bind(&d.email)
        .bind(d.birth_date)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn citizen_bsn(&self, citizen: Uuid) -> Result<Option<Bsn>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT bsn_encrypted, bsn_pseudonym FROM citizens WHERE id = $1")
                .bind(citizen)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(sealed, pseudonym)| self.keys.decrypt_bsn(&sealed, &pseudonym))
            .transpose()
    }

    async fn record_answers(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64> {
        self.write_answers(bsn, answers, audit, false).await
    }

    async fn decline_pending(
        &self,
        bsn: &Bsn,
        answers: &[Answer],
        audit: &AuditEvent,
    ) -> Result<i64> {
        self.write_answers(bsn, answers, audit, true).await
    }

    async fn profile(&self, bsn: &Bsn) -> Result<Vec<Answer>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let rows = sqlx::query(concat!(
            "SELECT ",
            answer_columns!(),
            " FROM answers WHERE superseded_at IS NULL AND citizen_id = ",
            "(SELECT id FROM citizens WHERE bsn_pseudonym = $1)"
        ))
        .bind(&pseudonym[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_answer).collect()
    }

    async fn answers_between(&self, bsn: &Bsn, sides: &Sides) -> Result<Vec<Answer>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let mut query = sqlx::query(concat!(
            "SELECT ",
            answer_columns!(),
            " FROM answers WHERE superseded_at IS NULL AND citizen_id = ",
            "(SELECT id FROM citizens WHERE bsn_pseudonym = $1) AND ",
            "((holder_kind = $2 AND holder_code = $3) OR (holder_kind = $4 AND holder_code = $5)) AND ",
            "((consulter_kind = $6 AND consulter_code = $7) OR (consulter_kind = $8 AND consulter_code = $9))"
        ))
        .bind(&pseudonym[..]);
        for p in codec::sides_params(sides) {
            query = query.bind(p);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(read_answer).collect()
    }

    async fn subscriptions_of(&self, bsn: &Bsn) -> Result<Vec<Subscription>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let rows = sqlx::query(
            "SELECT holder_ura, holder_type, connector_id, source_system, gateway_system, endpoint, payload \
             FROM subscriptions WHERE status = 'active' AND citizen_id = \
             (SELECT id FROM citizens WHERE bsn_pseudonym = $1) ORDER BY id",
        )
        .bind(&pseudonym[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(codec::read_subscription).collect()
    }

    async fn answer_history(&self, bsn: &Bsn) -> Result<Vec<Answer>> {
        let pseudonym = self.keys.pseudonym(bsn);
        // UUIDv7 ids order the answers as they were stored; recorded_at is the caller's and
        // may lie in the past (migrated answers).
        let rows = sqlx::query(concat!(
            "SELECT ",
            answer_columns!(),
            " FROM answers WHERE citizen_id = (SELECT id FROM citizens WHERE bsn_pseudonym = $1) ORDER BY id"
        ))
        .bind(&pseudonym[..])
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(read_answer).collect()
    }

    async fn insert_subscriptions(&self, subscriptions: &[NewSubscription]) -> Result<()> {
        let now = codec::now();
        let mut tx = self.pool.begin().await?;
        for (pseudonym, s) in in_pseudonym_order(&self.keys, subscriptions) {
            register(&mut tx, &self.keys, &pseudonym, s, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_subscription(
        &self,
        s: &NewSubscription,
        audit: &AuditEvent,
    ) -> Result<Registration> {
        let now = codec::now();
        let pseudonym = self.keys.pseudonym(&s.bsn);
        let mut tx = self.pool.begin().await?;
        let registration = register(&mut tx, &self.keys, &pseudonym, s, now).await?;
        let (id, outcome) = match registration {
            Registration::Created(id) => (id, "created"),
            Registration::Existing(id) => (id, "existing"),
        };
        append_audit(
            &mut tx,
            &self.keys,
            &audit.about_subscription(id, Some(outcome)),
        )
        .await?;
        tx.commit().await?;
        Ok(registration)
    }

    async fn subscription(&self, connector: &str, id: Uuid) -> Result<Option<SubscriptionRecord>> {
        let row: Option<SubscriptionRow> = sqlx::query_as(subscription_record_query!("$1", "$2"))
            .bind(connector)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.into_record(&self.keys)).transpose()
    }

    async fn update_subscription(
        &self,
        connector: &str,
        id: Uuid,
        change: &SubscriptionChange,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE subscriptions SET endpoint = $1, payload = $2, birth_date = $3, gateway_system = $4, \
             status = $5, updated_at = $6 WHERE connector_id = $7 AND id = $8",
        )
        .bind(&change.endpoint)
        .bind(&change.payload)
        .bind(change.birth_date)
        .bind(&change.gateway_system)
        .bind(change.state.as_str())
        .bind(codec::now())
        .bind(connector)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        let row: SubscriptionRow = sqlx::query_as(subscription_record_query!("$1", "$2"))
            .bind(connector)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, &audit.about_subscription(id, None)).await?;
        tx.commit().await?;
        row.into_record(&self.keys).map(Some)
    }

    async fn delete_subscription(
        &self,
        connector: &str,
        id: Uuid,
        audit: &AuditEvent,
    ) -> Result<Option<SubscriptionRecord>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<SubscriptionRow> = sqlx::query_as(concat!(
            subscription_record_query!("$1", "$2"),
            " FOR UPDATE OF s"
        ))
        .bind(connector)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM subscriptions WHERE connector_id = $1 AND id = $2")
            .bind(connector)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, &audit.about_subscription(id, None)).await?;
        tx.commit().await?;
        row.into_record(&self.keys).map(Some)
    }

    async fn audit(&self, event: &AuditEvent) -> Result<i64> {
        self.audit_writer.append(event.clone()).await
    }

    async fn audit_check(&self, event: AuditEvent) -> Result<()> {
        self.audit_writer.append(event).await.map(|_| ())
    }

    async fn audit_checkpoint(&self) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let (seq, hash): (i64, Vec<u8>) =
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        if seq == 0 {
            return Ok(None);
        }
        insert_checkpoint(&mut tx, &Checkpoint::sign(&self.keys, seq, &hash)).await?;
        tx.commit().await?;
        Ok(Some(seq))
    }

    async fn audit_verify(&self) -> Result<VerifyReport> {
        // One snapshot for head, checkpoints and records, so appends meanwhile do not show up
        // half-way.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let head: (i64, Vec<u8>) = sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let checkpoints = sqlx::query_as::<_, (i64, Vec<u8>, Vec<u8>, Vec<u8>)>(
            "SELECT seq, hash, signature, public_key FROM audit_checkpoints WHERE seq <= $1 ORDER BY seq",
        )
        .bind(head.0)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(seq, hash, signature, public_key)| Checkpoint { seq, hash, signature, public_key })
        .collect();
        let mut verifier = Verifier::new(&self.keys, head.clone(), checkpoints);
        let mut rows = sqlx::query(
            "SELECT seq, at, event, patient, actor, organisation, mandated, request_id, decision, reason, \
             emergency, channel, details, prev_hash, hash FROM audit_log WHERE seq <= $1 ORDER BY seq",
        )
        .bind(head.0)
        .fetch(&mut *tx);
        while let Some(row) = rows.try_next().await? {
            let record = StoredRecord {
                seq: row.try_get(0)?,
                event: AuditEvent {
                    at: row.try_get(1)?,
                    event: row.try_get(2)?,
                    patient: row.try_get(3)?,
                    actor: row.try_get(4)?,
                    organisation: row.try_get(5)?,
                    mandated: row.try_get(6)?,
                    request_id: row.try_get(7)?,
                    decision: row.try_get(8)?,
                    reason: row.try_get(9)?,
                    emergency: row.try_get(10)?,
                    channel: row.try_get(11)?,
                    details: serde_json::Value::Null,
                },
                details: row.try_get(12)?,
                prev_hash: row.try_get(13)?,
                hash: row.try_get(14)?,
            };
            if !verifier.record(&record) {
                break;
            }
        }
        drop(rows);
        tx.rollback().await?;
        Ok(verifier.finish())
    }

    async fn audit_purge(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        // The first record that must stay bounds the purge. Times normally rise with seq, so the
        // scan stops right after the purged range.
        let keep: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_log WHERE at >= $1 ORDER BY seq LIMIT 1")
                .bind(before)
                .fetch_optional(&mut *tx)
                .await?;
        let limit = keep.map_or(head, |k| k - 1);
        let checkpoint: Option<i64> =
            sqlx::query_scalar("SELECT max(seq) FROM audit_checkpoints WHERE seq <= $1")
                .bind(limit)
                .fetch_one(&mut *tx)
                .await?;
        let Some(checkpoint) = checkpoint else {
            return Ok(0);
        };
        let gone = sqlx::query("DELETE FROM audit_log WHERE seq <= $1")
            .bind(checkpoint)
            .execute(&mut *tx)
            .await?;
        // The checkpoint itself stays: it anchors the first remaining record.
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(checkpoint)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone.rows_affected())
    }

    async fn outbox_pending(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn load_generated(&self, batch: &[GeneratedCitizen]) -> Result<()> {
        let now = codec::now();
        let mut ids = Vec::with_capacity(batch.len());
        let mut pseudonyms = Vec::with_capacity(batch.len());
        let mut encrypted = Vec::with_capacity(batch.len());
        let mut birth_dates: Vec<NaiveDate> = Vec::with_capacity(batch.len());
        for g in batch {
            let p = self.keys.pseudonym(&g.bsn);
            encrypted.push(self.keys.encrypt_bsn(&g.bsn, &p));
            pseudonyms.push(p.to_vec());
            ids.push(Uuid::now_v7());
            birth_dates.push(g.birth_date);
        }
        let mut answers = Vec::new();
        let mut subscriptions = Vec::new();
        for (g, &id) in batch.iter().zip(&ids) {
            for a in &g.answers {
                answers.push((id, AnswerCols::from_answer(a)?));
            }
            subscriptions.extend(g.subscriptions.iter().map(|s| (id, s)));
        }

        let mut tx = self.pool.begin().await?;
        // Generated data can be generated again; waiting for the WAL flush buys nothing.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, birth_date, created_at, updated_at) \
             SELECT u.*, $5, $5 FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[], $4::date[]) AS u",
        )
        .bind(ids)
        .bind(pseudonyms)
        .bind(encrypted)
        .bind(birth_dates)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        for chunk in answers.chunks(BULK_ROWS) {
            let col = |f: for<'c> fn(&'c AnswerCols<'c>) -> &'c str| {
                chunk.iter().map(|(_, c)| f(c)).collect::<Vec<&str>>()
            };
            sqlx::query(concat!(
                "INSERT INTO answers (citizen_id, id, ",
                answer_columns!(),
                ") SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                 $7::text[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::text[], $12::timestamptz[], \
                 $13::text[], $14::text[], $15::text[])"
            ))
            .bind(chunk.iter().map(|(id, _)| *id).collect::<Vec<Uuid>>())
            .bind(chunk.iter().map(|_| Uuid::now_v7()).collect::<Vec<Uuid>>())
            .bind(col(|c| c.holder_kind))
            .bind(col(|c| c.holder_code))
            .bind(col(|c| c.data_category))
            .bind(col(|c| c.consulter_kind))
            .bind(col(|c| c.consulter_code))
            .bind(col(|c| c.effect))
            .bind(chunk.iter().map(|(_, c)| c.valid_from).collect::<Vec<_>>())
            .bind(chunk.iter().map(|(_, c)| c.valid_until).collect::<Vec<_>>())
            .bind(col(|c| c.state))
            .bind(chunk.iter().map(|(_, c)| c.recorded_at).collect::<Vec<_>>())
            .bind(col(|c| c.channel))
            .bind(col(|c| &c.actor))
            .bind(col(|c| c.catalogue_version))
            .execute(&mut *tx)
            .await?;
        }
        for chunk in subscriptions.chunks(BULK_ROWS) {
            let col = |f: fn(&NewSubscription) -> &str| {
                chunk.iter().map(|(_, s)| f(s)).collect::<Vec<&str>>()
            };
            sqlx::query(
                "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
                 gateway_system, endpoint, payload, birth_date, created_at, updated_at) \
                 SELECT u.*, $11, $11 FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], \
                 $6::text[], $7::text[], $8::text[], $9::text[], $10::date[]) AS u \
                 ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING",
            )
            .bind(chunk.iter().map(|(id, _)| *id).collect::<Vec<Uuid>>())
            .bind(chunk.iter().map(|_| Uuid::now_v7()).collect::<Vec<Uuid>>())
            .bind(col(|s| s.holder_ura.as_str()))
            .bind(col(|s| s.holder_type.as_str()))
            .bind(col(|s| &s.connector_id))
            .bind(col(|s| &s.source_system))
            .bind(col(|s| &s.gateway_system))
            .bind(col(|s| &s.endpoint))
            .bind(col(|s| &s.payload))
            .bind(chunk.iter().map(|(_, s)| s.birth_date).collect::<Vec<Option<NaiveDate>>>())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn stats(&self) -> Result<StoreStats> {
        let at = codec::now();
        let (citizens, answers, subscriptions, audit_records, size_bytes): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM citizens), (SELECT count(*) FROM answers), \
             (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM audit_log), \
             pg_database_size(current_database())",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(StoreStats {
            citizens,
            answers,
            subscriptions,
            audit_records,
            size_bytes,
            at: Some(at),
        })
    }

    async fn import_progress(
        &self,
        connector: &str,
        import_id: &str,
    ) -> Result<Option<crate::ImportProgress>> {
        let mut conn = self.pool.acquire().await?;
        read_import(&mut conn, connector, import_id, false).await
    }

    async fn commit_import_chunk(
        &self,
        chunk: &crate::ImportChunk<'_>,
    ) -> Result<crate::ImportCommit> {
        commit_import(self, chunk).await
    }

    // -----------------------------------------------------------------------------------------
    // The citizen portal.

    async fn create_portal_session(
        &self,
        token_sha256: &[u8; 32],
        s: &PortalSession,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<()> {
        let actor = self.keys.pseudonym(&s.actor);
        let subject = self.keys.pseudonym(&s.subject);
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM portal_sessions WHERE last_seen_at < $1")
            .bind(codec::micros(idle_cutoff))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_sessions (token_sha256, actor_pseudonym, actor_encrypted, subject_pseudonym, \
             subject_encrypted, actor_name, subject_name, subject_birth_date, csrf_token, terms_version, login_at, \
             last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&token_sha256[..])
        .bind(&actor[..])
        .bind(self.keys.encrypt_bsn(&s.actor, &actor))
        .bind(&subject[..])
        .bind(self.keys.encrypt_bsn(&s.subject, &subject))
        .bind(&s.actor_name)
        .bind(&s.subject_name)
        .bind(s.subject_birth_date)
        .bind(&s.csrf_token)
        .bind(&s.terms_version)
        .bind(codec::micros(s.login_at))
        .bind(codec::micros(s.last_seen_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_portal_session(
        &self,
        token_sha256: &[u8; 32],
        idle_cutoff: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<PortalSession>> {
        let row: Option<PgRow> = sqlx::query(
            "UPDATE portal_sessions SET last_seen_at = $1 WHERE token_sha256 = $2 AND last_seen_at >= $3 \
             RETURNING actor_pseudonym, actor_encrypted, subject_pseudonym, subject_encrypted, actor_name, \
             subject_name, subject_birth_date, csrf_token, terms_version, login_at, last_seen_at",
        )
        .bind(codec::micros(now))
        .bind(&token_sha256[..])
        .bind(codec::micros(idle_cutoff))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            sqlx::query("DELETE FROM portal_sessions WHERE token_sha256 = $1")
                .bind(&token_sha256[..])
                .execute(&self.pool)
                .await?;
            return Ok(None);
        };
        let bsn = |sealed: usize, pseudonym: usize| -> Result<Bsn> {
            let sealed: Vec<u8> = row.try_get(sealed)?;
            let pseudonym: Vec<u8> = row.try_get(pseudonym)?;
            self.keys.decrypt_bsn(&sealed, &pseudonym)
        };
        Ok(Some(PortalSession {
            actor: bsn(1, 0)?,
            subject: bsn(3, 2)?,
            actor_name: row.try_get(4)?,
            subject_name: row.try_get(5)?,
            subject_birth_date: row.try_get(6)?,
            csrf_token: row.try_get(7)?,
            terms_version: row.try_get(8)?,
            login_at: row.try_get(9)?,
            last_seen_at: row.try_get(10)?,
        }))
    }

    async fn delete_portal_session(&self, token_sha256: &[u8; 32]) -> Result<()> {
        sqlx::query("DELETE FROM portal_sessions WHERE token_sha256 = $1")
            .bind(&token_sha256[..])
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn terms_accepted(&self, bsn: &Bsn, version: &str) -> Result<bool> {
        let pseudonym = self.keys.pseudonym(bsn);
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM terms_acceptances WHERE bsn_pseudonym = $1 AND version = $2",
        )
        .bind(&pseudonym[..])
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn accept_terms(
        &self,
        bsn: &Bsn,
        version: &str,
        token_sha256: &[u8; 32],
        audit: &AuditEvent,
    ) -> Result<()> {
        let pseudonym = self.keys.pseudonym(bsn);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO terms_acceptances (bsn_pseudonym, version, accepted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (bsn_pseudonym, version) DO NOTHING",
        )
        .bind(&pseudonym[..])
        .bind(version)
        .bind(codec::now())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE portal_sessions SET terms_version = $1 WHERE token_sha256 = $2")
            .bind(version)
            .bind(&token_sha256[..])
            .execute(&mut *tx)
            .await?;
        append_audit(&mut tx, &self.keys, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn citizen_details(&self, bsn: &Bsn) -> Result<Option<CitizenDetails>> {
        let pseudonym = self.keys.pseudonym(bsn);
        let row: Option<(Option<String>, Option<String>, Option<NaiveDate>)> =
            sqlx::query_as("SELECT name, email, birth_date FROM citizens WHERE bsn_pseudonym = $1")
                .bind(&pseudonym[..])
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(name, email, birth_date)| CitizenDetails {
            name,
            email,
            birth_date,
        }))
    }

    async fn search_providers(&self, q: &ProviderQuery<'_>) -> Result<Vec<Provider>> {
        let types: Vec<&str> = q.organisation_types.iter().map(OrgType::as_str).collect();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT ura, name, organisation_type FROM providers \
             WHERE ($1 <> '' AND (name ILIKE $2 ESCAPE '\\' OR ura = $1)) \
             OR organisation_type = ANY($3) ORDER BY name, ura LIMIT $4",
        )
        .bind(q.text)
        .bind(q.like_pattern())
        .bind(&types)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(ura, name, t)| {
                Ok(Provider {
                    ura: Ura::parse(&ura).map_err(|_| codec::corrupt("providers.ura"))?,
                    name,
                    organisation_type: OrgType::parse(&t)
                        .map_err(|_| codec::corrupt("providers.organisation_type"))?,
                })
            })
            .collect()
    }
    // -----------------------------------------------------------------------------------------
    // The citizen's own data (settings, e-mail, history, export, deletion, receipts); the
    // work is in the functions at the end of this file.

    fn sign_receipt(&self, message: &[u8]) -> Vec<u8> {
        self.keys.sign_receipt(message)
    }

    fn receipt_public_key(&self) -> Vec<u8> {
        self.keys.receipt_public_key()
    }

    async fn citizen_settings(&self, bsn: &Bsn) -> Result<crate::CitizenSettings> {
        let mut conn = self.pool.acquire().await?;
        read_settings(&mut conn, &self.keys.pseudonym(bsn)).await
    }

    async fn update_citizen_settings(
        &self,
        bsn: &Bsn,
        change: &crate::SettingsChange,
        audit: &AuditEvent,
    ) -> Result<crate::CitizenSettings> {
        update_settings(self, bsn, change, audit).await
    }

    async fn request_email_verification(
        &self,
        bsn: &Bsn,
        request: &crate::EmailVerification<'_>,
        audit: &AuditEvent,
    ) -> Result<()> {
        request_email(self, bsn, request, audit).await
    }

    async fn confirm_email(
        &self,
        bsn: &Bsn,
        token_sha256: &[u8; 32],
        now: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<crate::EmailConfirmation> {
        confirm_email(self, bsn, token_sha256, now, audit).await
    }

    async fn remove_email(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<()> {
        remove_email(self, bsn, audit).await
    }

    async fn history(
        &self,
        bsn: &Bsn,
        period: &crate::Period,
        limit: usize,
    ) -> Result<crate::History> {
        history(self, bsn, period, limit).await
    }

    async fn index_consent_checks(&self) -> Result<u64> {
        Ok(0)
    }

    async fn change_record(&self, bsn: &Bsn, seq: i64) -> Result<Option<crate::ChangeRecord>> {
        change_record(self, bsn, seq).await
    }

    async fn export_citizen(&self, bsn: &Bsn) -> Result<Option<crate::CitizenExport>> {
        export_citizen(self, bsn).await
    }

    async fn delete_citizen(&self, bsn: &Bsn, audit: &AuditEvent) -> Result<crate::Deletion> {
        delete_citizen(self, bsn, audit).await
    }

    // -----------------------------------------------------------------------------------------
    // Minors and their parents or guardians: the work is in `postgres/guardian.rs`.

    async fn issue_pairing_code(
        &self,
        child: &Bsn,
        code: &str,
        expires_at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        guardian::issue(self, child, code, expires_at, audit).await
    }

    async fn pairing_code_status(
        &self,
        child: &Bsn,
        now: DateTime<Utc>,
    ) -> Result<Option<crate::PairingCodeStatus>> {
        guardian::status(self, child, now).await
    }

    async fn redeem_pairing_code(
        &self,
        guardian: &Bsn,
        code: &str,
        now: DateTime<Utc>,
        limit: &crate::PairingLimit,
        audit: &AuditEvent,
    ) -> Result<crate::Redemption> {
        guardian::redeem(self, guardian, code, now, limit, audit).await
    }

    async fn linked_children(&self, guardian: &Bsn) -> Result<Vec<crate::LinkedChild>> {
        guardian::children(self, guardian).await
    }

    async fn linked_child(&self, guardian: &Bsn, link: Uuid) -> Result<Option<crate::LinkedChild>> {
        guardian::child(self, guardian, link).await
    }

    // --- citizen e-mail: the work is in `postgres/mail.rs` ---

    async fn mail_contact(&self, citizen: Uuid) -> Result<Option<crate::MailContact>> {
        mail::contact(self, citizen).await
    }

    async fn scan_consent_checks(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<crate::CheckScan> {
        mail::scan(self, limit, now).await
    }

    async fn take_check_digests(
        &self,
        day: NaiveDate,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        mail::take_digests(self, day, force, now).await
    }

    async fn enqueue_mail_once(
        &self,
        citizen: Uuid,
        kind: &str,
        key: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool> {
        mail::enqueue_once(self, citizen, kind, key, payload, available_at).await
    }

    // --- hand-offs: the work is in `postgres/handoff.rs` ---

    async fn create_hand_off(
        &self,
        hand_off: &crate::NewHandOff<'_>,
        audit: &AuditEvent,
    ) -> Result<Uuid> {
        handoff::create(self, hand_off, audit).await
    }

    async fn take_hand_off(
        &self,
        token_sha256: &[u8; 32],
        session_sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<crate::HandOff>> {
        handoff::take(self, token_sha256, session_sha256, now).await
    }

    async fn hand_off_of_session(
        &self,
        session_sha256: &[u8; 32],
    ) -> Result<Option<crate::HandOff>> {
        handoff::of_session(self, session_sha256).await
    }

    // --- enrolment tokens: the work is in `postgres/enrolment.rs` ---

    async fn use_enrolment_token(
        &self,
        jti: &str,
        ura: &otv_core::Ura,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        enrolment::use_token(self, jti, ura, expires_at, now).await
    }

    async fn enrolment_token_used(&self, jti: &str) -> Result<bool> {
        enrolment::is_used(self, jti).await
    }

    // --- the outbox delivery engine (helper D) ---

    async fn enqueue_outbox(
        &self,
        citizen: Uuid,
        kind: &str,
        payload: &str,
        available_at: DateTime<Utc>,
    ) -> Result<Uuid> {
        outbox::enqueue(self, citizen, kind, payload, available_at).await
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<crate::OutboxRow>> {
        outbox::claim(self, worker, now, lease, limit).await
    }

    async fn complete_outbox(&self, id: Uuid, worker: &str, now: DateTime<Utc>) -> Result<bool> {
        outbox::complete(self, id, worker, now).await
    }

    async fn fail_outbox(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<crate::Failure> {
        outbox::fail(self, id, worker, error, now).await
    }

    async fn park_outbox(
        &self,
        id: Uuid,
        worker: &str,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::park(self, id, worker, error, now).await
    }

    async fn release_outbox(
        &self,
        id: Uuid,
        worker: &str,
        available_at: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::release(self, id, worker, available_at).await
    }

    async fn fan_out_outbox(
        &self,
        id: Uuid,
        worker: &str,
        rows: &[crate::NewOutboxRow],
        now: DateTime<Utc>,
    ) -> Result<bool> {
        outbox::fan_out(self, id, worker, rows, now).await
    }

    async fn outbox_status(&self, now: DateTime<Utc>) -> Result<crate::OutboxStatus> {
        outbox::status(self, now).await
    }

    async fn dead_outbox(&self, limit: usize) -> Result<Vec<crate::OutboxRow>> {
        outbox::dead(self, limit).await
    }

    async fn outbox_row(&self, id: Uuid) -> Result<Option<crate::OutboxRow>> {
        outbox::row(self, id).await
    }

    async fn retry_dead_outbox(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64> {
        outbox::retry_dead(self, id, now).await
    }

    async fn notify_targets(&self, citizen: Uuid) -> Result<Vec<crate::NotifyTarget>> {
        outbox::targets(self, citizen).await
    }

    async fn notify_target(&self, citizen: Uuid, id: Uuid) -> Result<Option<crate::NotifyTarget>> {
        outbox::target(self, citizen, id).await
    }

    // --- migration: the work is in `postgres/migration.rs` ---

    async fn migrate_answers(
        &self,
        items: &[crate::MigrationItem],
        audit: &AuditEvent,
    ) -> Result<Vec<crate::MigrationOutcome>> {
        migration::migrate(self, items, audit).await
    }

    async fn migration_seen_at(&self, bsn: &Bsn) -> Result<Option<DateTime<Utc>>> {
        migration::seen_at(self, bsn).await
    }

    async fn mark_migration_seen(
        &self,
        bsn: &Bsn,
        at: DateTime<Utc>,
        audit: &AuditEvent,
    ) -> Result<()> {
        migration::mark_seen(self, bsn, at, audit).await
    }
}

/// The stored progress of one bulk import; with `lock`, the row stays locked until the
/// transaction ends.
async fn read_import(
    conn: &mut PgConnection,
    connector: &str,
    import_id: &str,
    lock: bool,
) -> Result<Option<crate::ImportProgress>> {
    type ImportRow = (
        i64,
        Vec<u8>,
        i64,
        i64,
        i64,
        String,
        bool,
        DateTime<Utc>,
        DateTime<Utc>,
    );
    let sql = if lock {
        "SELECT committed_lines, prefix_sha256, created, already_registered, refused, refusals, complete, \
         started_at, updated_at FROM subscription_imports WHERE connector_id = $1 AND import_id = $2 FOR UPDATE"
    } else {
        "SELECT committed_lines, prefix_sha256, created, already_registered, refused, refusals, complete, \
         started_at, updated_at FROM subscription_imports WHERE connector_id = $1 AND import_id = $2"
    };
    let row: Option<ImportRow> = sqlx::query_as(sql)
        .bind(connector)
        .bind(import_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((lines, prefix, created, existing, refused, refusals, complete, started, updated)) =
        row
    else {
        return Ok(None);
    };
    Ok(Some(crate::ImportProgress {
        connector_id: connector.to_owned(),
        import_id: import_id.to_owned(),
        committed_lines: lines as u64,
        prefix_sha256: prefix,
        created: created as u64,
        already_registered: existing as u64,
        refused: refused as u64,
        refusals: serde_json::from_str(&refusals)
            .map_err(|_| codec::corrupt("subscription_imports.refusals"))?,
        complete,
        started_at: started,
        updated_at: updated,
    }))
}

/// One chunk of a bulk import in one transaction: the citizens it needs, its registrations
/// (existing ones untouched) and the import's progress, each one `UNNEST` statement. The
/// import's row is locked first, so two runs of the same import cannot both write a chunk;
/// citizens and registrations go in pseudonym order, so concurrent imports that share patients
/// take their row locks in the same order and do not deadlock.
async fn commit_import(
    store: &PgStore,
    chunk: &crate::ImportChunk<'_>,
) -> Result<crate::ImportCommit> {
    let now = codec::now();
    let mut rows: Vec<([u8; 32], &NewSubscription)> = chunk
        .subscriptions
        .iter()
        .map(|s| (store.keys.pseudonym(&s.bsn), s))
        .collect();
    rows.sort_by_key(|(pseudonym, _)| *pseudonym);
    let (mut ids, mut pseudonyms, mut encrypted) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (pseudonym, s)) in rows.iter().enumerate() {
        if i == 0 || rows[i - 1].0 != *pseudonym {
            ids.push(Uuid::now_v7());
            pseudonyms.push(pseudonym.to_vec());
            encrypted.push(store.keys.encrypt_bsn(&s.bsn, pseudonym));
        }
    }

    let mut tx = store.pool.begin().await?;
    // A row to lock even for a new import: a concurrent first chunk of the same import waits
    // here and then finds the progress moved.
    sqlx::query(
        "INSERT INTO subscription_imports (connector_id, import_id, committed_lines, prefix_sha256, created, \
         already_registered, refused, refusals, complete, started_at, updated_at) \
         VALUES ($1, $2, 0, '', 0, 0, 0, '[]', false, $3, $3) ON CONFLICT (connector_id, import_id) DO NOTHING",
    )
    .bind(chunk.connector_id)
    .bind(chunk.import_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let previous = read_import(&mut tx, chunk.connector_id, chunk.import_id, true).await?;
    if previous.as_ref().map_or(0, |p| p.committed_lines) != chunk.after_line {
        return Ok(crate::ImportCommit::Moved(previous));
    }
    sqlx::query(
        "INSERT INTO citizens (id, bsn_pseudonym, bsn_encrypted, created_at, updated_at) \
         SELECT u.*, $4, $4 FROM UNNEST($1::uuid[], $2::bytea[], $3::bytea[]) AS u \
         ON CONFLICT (bsn_pseudonym) DO NOTHING",
    )
    .bind(ids)
    .bind(&pseudonyms)
    .bind(encrypted)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let col =
        |f: fn(&NewSubscription) -> &str| rows.iter().map(|(_, s)| f(s)).collect::<Vec<&str>>();
    let created = sqlx::query(
        "INSERT INTO subscriptions (citizen_id, id, holder_ura, holder_type, connector_id, source_system, \
         gateway_system, endpoint, payload, birth_date, created_at, updated_at) \
         SELECT c.id, u.id, u.holder_ura, u.holder_type, $10, u.source_system, u.gateway_system, u.endpoint, \
         u.payload, u.birth_date, $11, $11 \
         FROM UNNEST($1::bytea[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
         $8::text[], $9::date[]) WITH ORDINALITY \
         AS u (pseudonym, id, holder_ura, holder_type, source_system, gateway_system, endpoint, payload, birth_date, n) \
         JOIN citizens c ON c.bsn_pseudonym = u.pseudonym ORDER BY u.n \
         ON CONFLICT (connector_id, citizen_id, source_system) DO NOTHING",
    )
    .bind(rows.iter().map(|(p, _)| p.to_vec()).collect::<Vec<Vec<u8>>>())
    .bind(rows.iter().map(|_| Uuid::now_v7()).collect::<Vec<Uuid>>())
    .bind(col(|s| s.holder_ura.as_str()))
    .bind(col(|s| s.holder_type.as_str()))
    .bind(col(|s| &s.source_system))
    .bind(col(|s| &s.gateway_system))
    .bind(col(|s| &s.endpoint))
    .bind(col(|s| &s.payload))
    .bind(rows.iter().map(|(_, s)| s.birth_date).collect::<Vec<Option<NaiveDate>>>())
    .bind(chunk.connector_id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let progress = crate::ImportProgress::advance(previous, chunk, created, now);
    sqlx::query(
        "UPDATE subscription_imports SET committed_lines = $3, prefix_sha256 = $4, created = $5, \
         already_registered = $6, refused = $7, refusals = $8, complete = $9, started_at = $10, updated_at = $11 \
         WHERE connector_id = $1 AND import_id = $2",
    )
    .bind(&progress.connector_id)
    .bind(&progress.import_id)
    .bind(progress.committed_lines as i64)
    .bind(&progress.prefix_sha256)
    .bind(progress.created as i64)
    .bind(progress.already_registered as i64)
    .bind(progress.refused as i64)
    .bind(serde_json::to_string(&progress.refusals).expect("refusals serialise"))
    .bind(progress.complete)
    .bind(progress.started_at)
    .bind(progress.updated_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(crate::ImportCommit::Committed { created, progress })
}

// ---------------------------------------------------------------------------------------------
// The citizen's own data: settings, e-mail verification, history, export, deletion, and the
// record of one change for its receipt. What the rows mean lives in `citizen`.

/// The audit event with the patient and `extra` details filled in.
fn citizen_event(
    keys: &Keys,
    bsn: &Bsn,
    audit: &AuditEvent,
    extra: serde_json::Value,
) -> AuditEvent {
    let mut event = audit.clone();
    if event.patient.is_none() {
        event.patient = Some(keys.patient_reference(bsn));
    }
    citizen::merge_details(&mut event, extra);
    event
}

type SettingsRow = (
    Option<String>,
    Option<bool>,
    Option<String>,
    Option<bool>,
    Option<bool>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

async fn read_settings(
    conn: &mut PgConnection,
    pseudonym: &[u8; 32],
) -> Result<crate::CitizenSettings> {
    let row: Option<SettingsRow> = sqlx::query_as(
        "SELECT c.email, s.notify_changes, s.notify_checks, s.lock_provider_changes, s.refuse_emergency, \
         s.email_verified_at, s.email_token_expires_at \
         FROM citizens c LEFT JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = $1",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *conn)
    .await?;
    let Some((email, changes, checks, lock, refuse, verified, expires)) = row else {
        return Ok(crate::CitizenSettings::default());
    };
    let d = crate::CitizenSettings::default();
    Ok(crate::CitizenSettings {
        notify_changes: changes.unwrap_or(d.notify_changes),
        notify_checks: match checks {
            Some(c) => crate::CheckNotice::parse(&c)
                .ok_or_else(|| codec::corrupt("citizen_settings.notify_checks"))?,
            None => d.notify_checks,
        },
        lock_provider_changes: lock.unwrap_or(d.lock_provider_changes),
        refuse_emergency: refuse.unwrap_or(d.refuse_emergency),
        email,
        email_verified_at: verified,
        email_link_expires_at: expires,
    })
}

/// Writes the four preferences of `s` for the citizen (creating the settings row).
async fn write_preferences(
    conn: &mut PgConnection,
    citizen: Uuid,
    s: &crate::CitizenSettings,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO citizen_settings (citizen_id, notify_changes, notify_checks, lock_provider_changes, \
         refuse_emergency, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (citizen_id) DO UPDATE SET \
         notify_changes = excluded.notify_changes, notify_checks = excluded.notify_checks, \
         lock_provider_changes = excluded.lock_provider_changes, refuse_emergency = excluded.refuse_emergency, \
         updated_at = excluded.updated_at",
    )
    .bind(citizen)
    .bind(s.notify_changes)
    .bind(s.notify_checks.as_str())
    .bind(s.lock_provider_changes)
    .bind(s.refuse_emergency)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update_settings(
    store: &PgStore,
    bsn: &Bsn,
    change: &crate::SettingsChange,
    audit: &AuditEvent,
) -> Result<crate::CitizenSettings> {
    let now = codec::now();
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.pool.begin().await?;
    // The upsert locks the citizen's row: concurrent changes of one citizen apply in turn.
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    let settings = change.apply(&read_settings(&mut tx, &pseudonym).await?);
    write_preferences(&mut tx, citizen, &settings, now).await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        citizen::preferences_json(&settings),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(settings)
}

async fn request_email(
    store: &PgStore,
    bsn: &Bsn,
    r: &crate::EmailVerification<'_>,
    audit: &AuditEvent,
) -> Result<()> {
    let now = codec::now();
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.pool.begin().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    let settings = read_settings(&mut tx, &pseudonym).await?;
    write_preferences(&mut tx, citizen, &settings, now).await?;
    sqlx::query("UPDATE citizens SET email = $1, updated_at = $2 WHERE id = $3")
        .bind(r.address)
        .bind(now)
        .bind(citizen)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = NULL, email_token_sha256 = $1, \
         email_token_expires_at = $2, updated_at = $3 WHERE citizen_id = $4",
    )
    .bind(&r.token_sha256[..])
    .bind(codec::micros(r.expires_at))
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "set, waiting for verification" }),
    );
    let seq = append_audit(&mut tx, &store.keys, &event).await?;
    enqueue(
        &mut tx,
        citizen,
        crate::EMAIL_VERIFICATION,
        citizen::email_verification_payload(r, seq),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn confirm_email(
    store: &PgStore,
    bsn: &Bsn,
    token_sha256: &[u8; 32],
    at: DateTime<Utc>,
    audit: &AuditEvent,
) -> Result<crate::EmailConfirmation> {
    let now = codec::now();
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.pool.begin().await?;
    type TokenRow = (Uuid, Option<Vec<u8>>, Option<DateTime<Utc>>);
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT c.id, s.email_token_sha256, s.email_token_expires_at FROM citizens c \
         JOIN citizen_settings s ON s.citizen_id = c.id WHERE c.bsn_pseudonym = $1 AND c.email IS NOT NULL \
         FOR UPDATE OF s",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *tx)
    .await?;
    let Some((citizen, Some(stored), Some(expires))) = row else {
        return Ok(crate::EmailConfirmation::Unknown);
    };
    match citizen::check_token(&stored, token_sha256, expires <= at) {
        crate::EmailConfirmation::Confirmed => {}
        other => return Ok(other),
    }
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = $1, email_token_sha256 = NULL, \
         email_token_expires_at = NULL, updated_at = $2 WHERE citizen_id = $3",
    )
    .bind(codec::micros(at))
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "verified" }),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(crate::EmailConfirmation::Confirmed)
}

async fn remove_email(store: &PgStore, bsn: &Bsn, audit: &AuditEvent) -> Result<()> {
    let now = codec::now();
    let mut tx = store.pool.begin().await?;
    let citizen = lock_citizen(&mut tx, &store.keys, bsn, now).await?;
    sqlx::query("UPDATE citizens SET email = NULL, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(citizen)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE citizen_settings SET email_verified_at = NULL, email_token_sha256 = NULL, \
         email_token_expires_at = NULL, updated_at = $1 WHERE citizen_id = $2",
    )
    .bind(now)
    .bind(citizen)
    .execute(&mut *tx)
    .await?;
    let event = citizen_event(
        &store.keys,
        bsn,
        audit,
        serde_json::json!({ "email": "removed" }),
    );
    append_audit(&mut tx, &store.keys, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// An answer from `row`, its columns from `first` on in [`answer_columns!`] order.
fn answer_at(row: &PgRow, first: usize) -> Result<Answer> {
    AnswerCols {
        holder_kind: row.try_get(first)?,
        holder_code: row.try_get(first + 1)?,
        data_category: row.try_get(first + 2)?,
        consulter_kind: row.try_get(first + 3)?,
        consulter_code: row.try_get(first + 4)?,
        effect: row.try_get(first + 5)?,
        valid_from: row.try_get(first + 6)?,
        valid_until: row.try_get(first + 7)?,
        state: row.try_get(first + 8)?,
        recorded_at: row.try_get(first + 9)?,
        channel: row.try_get(first + 10)?,
        actor: Cow::Borrowed(row.try_get(first + 11)?),
        catalogue_version: row.try_get(first + 12)?,
    }
    .to_answer()
}

async fn provider_names(
    conn: &mut PgConnection,
    uras: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT ura, name FROM providers WHERE ura = ANY($1)")
            .bind(uras)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().collect())
}

async fn consent_checks(
    conn: &mut PgConnection,
    patient: &str,
    period: &crate::Period,
    limit: usize,
) -> Result<(Vec<crate::ConsentCheck>, bool)> {
    let rows = sqlx::query(
        "SELECT seq, at, event, organisation, emergency, details FROM audit_log \
         WHERE patient = $1 AND event = ANY($2) AND ($3::timestamptz IS NULL OR at >= $3) \
         AND ($4::timestamptz IS NULL OR at < $4) ORDER BY at DESC, seq DESC LIMIT $5",
    )
    .bind(patient)
    .bind(&citizen::CHECK_EVENTS[..])
    .bind(period.from)
    .bind(period.until)
    .bind(limit as i64 + 1)
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() > limit;
    let mut checks = Vec::new();
    for row in rows.iter().take(limit) {
        checks.extend(citizen::checks_of(&citizen::CheckRow {
            seq: row.try_get(0)?,
            at: row.try_get(1)?,
            event: row.try_get(2)?,
            organisation: row.try_get(3)?,
            emergency: row.try_get(4)?,
            details: row.try_get(5)?,
        }));
    }
    let names = provider_names(conn, &citizen::uras_of(&checks)).await?;
    citizen::name_checks(&mut checks, &names);
    Ok((checks, more))
}

async fn history(
    store: &PgStore,
    bsn: &Bsn,
    period: &crate::Period,
    limit: usize,
) -> Result<crate::History> {
    let pseudonym = store.keys.pseudonym(bsn);
    let mut conn = store.pool.begin().await?;
    let rows = sqlx::query(concat!(
        "SELECT change_seq, ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = (SELECT id FROM citizens WHERE bsn_pseudonym = $1) \
         AND ($2::timestamptz IS NULL OR recorded_at >= $2) AND ($3::timestamptz IS NULL OR recorded_at < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(&pseudonym[..])
    .bind(period.from)
    .bind(period.until)
    .bind(citizen::MAX_HISTORY_ROWS)
    .fetch_all(&mut *conn)
    .await?;
    let capped = rows.len() as i64 == citizen::MAX_HISTORY_ROWS;
    let answers = rows
        .iter()
        .map(|r| Ok((r.try_get::<Option<i64>, _>(0)?, answer_at(r, 1)?)))
        .collect::<Result<Vec<_>>>()?;
    let (changes, more_changes) = citizen::group_changes(answers, limit);
    let patient = store.keys.patient_reference(bsn);
    let (checks, more_checks) = consent_checks(&mut conn, &patient, period, limit).await?;
    Ok(crate::History {
        changes,
        more_changes: more_changes || capped,
        checks,
        more_checks,
    })
}

async fn change_record(
    store: &PgStore,
    bsn: &Bsn,
    seq: i64,
) -> Result<Option<crate::ChangeRecord>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let patient = store.keys.patient_reference(bsn);
    let mut conn = store.pool.begin().await?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = (SELECT id FROM citizens WHERE bsn_pseudonym = $1) \
         AND change_seq = $2 ORDER BY id"
    ))
    .bind(&pseudonym[..])
    .bind(seq)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let answers = rows
        .iter()
        .map(|r| answer_at(r, 0))
        .collect::<Result<Vec<_>>>()?;
    type AuditRow = (
        DateTime<Utc>,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let audit: Option<AuditRow> = sqlx::query_as(
        "SELECT at, event, actor, organisation, channel FROM audit_log WHERE seq = $1 AND patient = $2",
    )
    .bind(seq)
    .bind(&patient)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((at, event, actor, organisation, channel)) = audit else {
        return Ok(None);
    };
    Ok(Some(crate::ChangeRecord {
        seq,
        at,
        event,
        actor,
        organisation,
        channel,
        patient,
        answers,
    }))
}

async fn export_citizen(store: &PgStore, bsn: &Bsn) -> Result<Option<crate::CitizenExport>> {
    let pseudonym = store.keys.pseudonym(bsn);
    let patient = store.keys.patient_reference(bsn);
    let mut conn = store.pool.begin().await?;
    type CitizenRow = (
        Uuid,
        Option<String>,
        Option<String>,
        Option<NaiveDate>,
        DateTime<Utc>,
    );
    let row: Option<CitizenRow> = sqlx::query_as(
        "SELECT id, name, email, birth_date, created_at FROM citizens WHERE bsn_pseudonym = $1",
    )
    .bind(&pseudonym[..])
    .fetch_optional(&mut *conn)
    .await?;
    let Some((citizen, name, email, birth_date, created)) = row else {
        return Ok(None);
    };
    let settings = read_settings(&mut conn, &pseudonym).await?;
    let rows = sqlx::query(concat!(
        "SELECT change_seq, superseded_at, ",
        answer_columns!(),
        " FROM answers WHERE citizen_id = $1 ORDER BY id DESC"
    ))
    .bind(citizen)
    .fetch_all(&mut *conn)
    .await?;
    let answers = rows
        .iter()
        .map(|r| {
            Ok(crate::ExportAnswer {
                change_seq: r.try_get(0)?,
                replaced_at: r.try_get(1)?,
                answer: answer_at(r, 2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    type RegistrationRow = (String, Option<String>, String, String, DateTime<Utc>);
    let subs: Vec<RegistrationRow> = sqlx::query_as(
        "SELECT s.holder_ura, p.name, s.holder_type, s.status, s.created_at FROM subscriptions s \
         LEFT JOIN providers p ON p.ura = s.holder_ura WHERE s.citizen_id = $1 ORDER BY s.id",
    )
    .bind(citizen)
    .fetch_all(&mut *conn)
    .await?;
    let subscriptions = subs
        .into_iter()
        .map(
            |(holder_ura, holder_name, holder_type, status, registered_at)| {
                crate::ExportSubscription {
                    holder_ura,
                    holder_name,
                    holder_type,
                    status,
                    registered_at,
                }
            },
        )
        .collect();
    let (consent_checks, _) = consent_checks(
        &mut conn,
        &patient,
        &crate::Period::default(),
        citizen::MAX_EXPORT_CHECKS,
    )
    .await?;
    let terms: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT version, accepted_at FROM terms_acceptances WHERE bsn_pseudonym = $1 ORDER BY accepted_at",
    )
    .bind(&pseudonym[..])
    .fetch_all(&mut *conn)
    .await?;
    let terms_accepted = terms
        .into_iter()
        .map(|(version, accepted_at)| crate::ExportTerms {
            version,
            accepted_at,
        })
        .collect();
    Ok(Some(crate::CitizenExport {
        exported_at: codec::now(),
        pseudonym: patient,
        details: crate::ExportDetails {
            name,
            birth_date,
            email,
            known_since: created,
        },
        settings,
        answers,
        subscriptions,
        consent_checks,
        terms_accepted,
    }))
}

async fn delete_citizen(store: &PgStore, bsn: &Bsn, audit: &AuditEvent) -> Result<crate::Deletion> {
    let now = codec::now();
    let pseudonym = store.keys.pseudonym(bsn);
    let mut tx = store.pool.begin().await?;
    // Locks the citizen's row: a change of the same citizen waits, and then finds no citizen.
    let citizen: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM citizens WHERE bsn_pseudonym = $1 FOR UPDATE")
            .bind(&pseudonym[..])
            .fetch_optional(&mut *tx)
            .await?;
    let mut deletion = crate::Deletion {
        answers: 0,
        subscriptions_kept: 0,
    };
    let mut current = Vec::new();
    if let Some(citizen) = citizen {
        let rows = sqlx::query(concat!(
            "SELECT ",
            answer_columns!(),
            " FROM answers WHERE citizen_id = $1 AND superseded_at IS NULL"
        ))
        .bind(citizen)
        .fetch_all(&mut *tx)
        .await?;
        current = rows
            .iter()
            .map(|r| answer_at(r, 0))
            .collect::<Result<Vec<_>>>()?;
        deletion.answers = sqlx::query("DELETE FROM answers WHERE citizen_id = $1")
            .bind(citizen)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for table in ["citizen_settings", "outbox"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE citizen_id = $1"
            )))
            .bind(citizen)
            .execute(&mut *tx)
            .await?;
        }
        let kept: i64 =
            sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE citizen_id = $1")
                .bind(citizen)
                .fetch_one(&mut *tx)
                .await?;
        deletion.subscriptions_kept = kept as u64;
        if kept == 0 {
            sqlx::query("DELETE FROM citizens WHERE id = $1")
                .bind(citizen)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE citizens SET name = NULL, email = NULL, birth_date = NULL, updated_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(citizen)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("DELETE FROM portal_sessions WHERE subject_pseudonym = $1 OR actor_pseudonym = $1")
        .bind(&pseudonym[..])
        .execute(&mut *tx)
        .await?;
    guardian::forget(&mut tx, &pseudonym, citizen).await?;
    sqlx::query("DELETE FROM terms_acceptances WHERE bsn_pseudonym = $1")
        .bind(&pseudonym[..])
        .execute(&mut *tx)
        .await?;
    let event = citizen_event(&store.keys, bsn, audit, citizen::deletion_json(&deletion));
    let seq = append_audit(&mut tx, &store.keys, &event).await?;
    if let Some(citizen) = citizen
        && deletion.subscriptions_kept > 0
        && !current.is_empty()
    {
        enqueue(
            &mut tx,
            citizen,
            crate::PROFILE_DELETED,
            codec::profile_changed_payload(&current, seq),
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(deletion)
}
