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
use otv_core::{Answer, Bsn, OrgType, Ura};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::audit::{
    AuditEvent, CHECKPOINT_EVERY, Checkpoint, Prepared, StoredRecord, Verifier, VerifyReport,
};
use crate::audit_writer::AuditWriter;
use crate::codec::{
    self, AnswerCols, SubscriptionRow, answer_columns, in_pseudonym_order,
    subscription_record_query,
};
use crate::model::{
    CitizenDetails, Connector, GeneratedCitizen, NewSubscription, Provider, Registration,
    StoreStats, Subscription, SubscriptionChange, SubscriptionRecord,
};
use crate::{Backend, Keys, Result};

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
    ) -> Result<()> {
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
        for c in &cols {
            sqlx::query(
                "UPDATE answers SET superseded_at = $1 WHERE citizen_id = $2 AND holder_kind = $3 \
                 AND holder_code = $4 AND data_category = $5 AND consulter_kind = $6 AND consulter_code = $7 \
                 AND superseded_at IS NULL",
            )
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
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(citizen)
            .bind(Uuid::now_v7())
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
            .execute(&mut *tx)
            .await?;
        }
        // Last, so the chain's lock is held only for the end of the transaction.
        let seq = append_audit(&mut tx, &self.keys, &event).await?;
        // The attempt is audited either way; with no answer changed there is nobody to notify.
        if !answers.is_empty() {
            sqlx::query(
                "INSERT INTO outbox (id, citizen_id, kind, payload, created_at, available_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(citizen)
            .bind(codec::PROFILE_CHANGED)
            .bind(codec::profile_changed_payload(answers, seq))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
        self.audit_writer.append(event).await
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
