//! How domain values become columns and back, the same for both backends: answers, times,
//! the outbox payload.
//!
//! Nothing here touches a database. Reading back is strict: a value the domain would not
//! accept is reported as [`StoreError::Corrupt`] (naming the column, never the value of a BSN)
//! rather than guessed at, because a consent decision must never rest on a misread row.

use std::borrow::Cow;

use chrono::{DateTime, Timelike, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, CategoryCode, Channel, DataCategory, Effect, Party,
    Provenance, Ura,
};

use crate::model::NewSubscription;
use crate::{Keys, StoreError};

/// The answer columns in the order every backend selects and inserts them.
macro_rules! answer_columns {
    () => {
        "holder_kind, holder_code, data_category, consulter_kind, consulter_code, effect, \
         valid_from, valid_until, state, recorded_at, channel, actor, catalogue_version"
    };
}
pub(crate) use answer_columns;

/// The sides of [`Backend::answers_between`](crate::Backend::answers_between) as column values:
/// holder kind and code, twice, then consulter kind and code, twice.
pub(crate) fn sides_params(sides: &otv_core::Sides) -> [&str; 8] {
    let [h0, h1] = sides.holder.each_ref().map(party_cols);
    let [c0, c1] = sides.consulter.each_ref().map(party_cols);
    [h0.0, h0.1, h1.0, h1.1, c0.0, c0.1, c1.0, c1.1]
}

/// Number of columns in [`answer_columns!`].
pub(crate) const ANSWER_COLUMNS: usize = 13;

/// Cuts a time to whole microseconds, the precision of PostgreSQL, so that what is written is
/// exactly what either backend reads back.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.nanosecond();
    t.with_nanosecond(nanos - nanos % 1_000)
        .expect("fewer nanoseconds stay valid")
}

/// The current time, cut to microseconds.
pub(crate) fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

/// RFC 3339 in UTC with exactly six fractional digits and `Z`; fixed width, so it sorts.
pub(crate) fn rfc3339_micros(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// SQLite keeps times as integer microseconds since the Unix epoch.
pub(crate) fn to_epoch_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_epoch_micros`].
pub(crate) fn from_epoch_micros(v: i64, column: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| corrupt(column))
}

pub(crate) fn corrupt(column: &str) -> StoreError {
    StoreError::Corrupt(format!("column `{column}` holds a value otv cannot read"))
}

/// An answer as columns. Borrowed both ways: from an [`Answer`] to bind, from a row to read.
pub(crate) struct AnswerCols<'a> {
    pub holder_kind: &'a str,
    pub holder_code: &'a str,
    pub data_category: &'a str,
    pub consulter_kind: &'a str,
    pub consulter_code: &'a str,
    pub effect: &'a str,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub state: &'a str,
    pub recorded_at: DateTime<Utc>,
    pub channel: &'a str,
    pub actor: Cow<'a, str>,
    pub catalogue_version: &'a str,
}

/// Which current answers with its key a newly stored answer replaces, as a condition on the
/// `state` column appended to the replacing `UPDATE` (see `Backend::record_answers`): a
/// proposal (`pending-guardian`) and a declined proposal replace only the current proposal;
/// `active` replaces both the answer in force and the proposal; `withdrawn` and `expired`
/// only the answer in force.
pub(crate) fn replaced_condition(a: &Answer, declines_proposal: bool) -> &'static str {
    const PROPOSAL: &str = " AND state = 'pending-guardian'";
    const IN_FORCE: &str = " AND state <> 'pending-guardian'";
    if declines_proposal {
        return PROPOSAL;
    }
    match a.state {
        AnswerState::PendingGuardian => PROPOSAL,
        AnswerState::Active => "",
        AnswerState::Withdrawn | AnswerState::Expired => IN_FORCE,
    }
}

pub(crate) fn party_cols(p: &Party) -> (&'static str, &str) {
    match p {
        Party::Category(c) => ("category", c.as_str()),
        Party::Provider(u) => ("provider", u.as_str()),
    }
}

fn party(kind: &str, code: &str, kind_column: &str) -> Result<Party, StoreError> {
    match kind {
        "category" => CategoryCode::parse(code)
            .map(Party::Category)
            .map_err(|_| corrupt(kind_column)),
        "provider" => Ura::parse(code)
            .map(Party::Provider)
            .map_err(|_| corrupt(kind_column)),
        _ => Err(corrupt(kind_column)),
    }
}

impl<'a> AnswerCols<'a> {
    /// The columns of `a`, times cut to microseconds.
    pub fn from_answer(a: &'a Answer) -> Result<AnswerCols<'a>, StoreError> {
        let (holder_kind, holder_code) = party_cols(&a.key.holder);
        let (consulter_kind, consulter_code) = party_cols(&a.key.consulter);
        let actor = serde_json::to_string(&a.provenance.actor)
            .map_err(|_| StoreError::Corrupt("an answer's actor could not be encoded".into()))?;
        Ok(AnswerCols {
            holder_kind,
            holder_code,
            data_category: a.key.data_category.as_str(),
            consulter_kind,
            consulter_code,
            effect: a.effect.as_str(),
            valid_from: micros(a.valid_from),
            valid_until: a.valid_until.map(micros),
            state: a.state.as_str(),
            recorded_at: micros(a.provenance.recorded_at),
            channel: a.provenance.channel.as_str(),
            actor: Cow::Owned(actor),
            catalogue_version: &a.provenance.catalogue_version,
        })
    }

    /// The answer these columns hold.
    pub fn to_answer(&self) -> Result<Answer, StoreError> {
        let effect = match self.effect {
            "permit" => Effect::Permit,
            "deny" => Effect::Deny,
            _ => return Err(corrupt("effect")),
        };
        let actor: Actor = serde_json::from_str(&self.actor).map_err(|_| corrupt("actor"))?;
        Ok(Answer {
            key: AnswerKey {
                holder: party(
                    self.holder_kind,
                    self.holder_code,
                    "holder_kind/holder_code",
                )?,
                data_category: DataCategory::parse(self.data_category)
                    .map_err(|_| corrupt("data_category"))?,
                consulter: party(
                    self.consulter_kind,
                    self.consulter_code,
                    "consulter_kind/consulter_code",
                )?,
            },
            effect,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            state: AnswerState::parse(self.state).ok_or_else(|| corrupt("state"))?,
            provenance: Provenance {
                recorded_at: self.recorded_at,
                channel: Channel::parse(self.channel).ok_or_else(|| corrupt("channel"))?,
                actor,
                catalogue_version: self.catalogue_version.to_owned(),
            },
        })
    }
}

/// Registrations with their citizens' pseudonyms, ordered by pseudonym. Transactions that
/// touch several citizens take them in this one order, so two of them never wait for each
/// other crosswise (a deadlock).
pub(crate) fn in_pseudonym_order<'a>(
    keys: &Keys,
    subscriptions: &'a [NewSubscription],
) -> Vec<([u8; 32], &'a NewSubscription)> {
    let mut v: Vec<_> = subscriptions
        .iter()
        .map(|s| (keys.pseudonym(&s.bsn), s))
        .collect();
    v.sort_by_key(|(pseudonym, _)| *pseudonym);
    v
}

/// The outbox row of a profile change: which keys changed and which audit record says so.
/// Never a BSN; the notifier finds the citizen by the row's `citizen_id`. Each key once, in
/// the order first named (a key can have an answer in force and a proposal).
pub(crate) fn profile_changed_payload(answers: &[Answer], audit_seq: i64) -> String {
    let mut changed: Vec<&AnswerKey> = Vec::with_capacity(answers.len());
    for a in answers {
        if !changed.contains(&&a.key) {
            changed.push(&a.key);
        }
    }
    serde_json::json!({ "changed": changed, "audit_seq": audit_seq }).to_string()
}

/// The outbox kind of a profile change.
pub(crate) const PROFILE_CHANGED: &str = "profile-changed";

/// A `subscriptions` row (holder_ura, holder_type, connector_id, source_system, gateway_system,
/// endpoint, payload) as a [`Subscription`](crate::model::Subscription); the same on both
/// backends.
pub(crate) fn read_subscription<R>(row: &R) -> Result<crate::model::Subscription, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let text = |i: usize| row.try_get::<String, usize>(i).map_err(StoreError::from);
    Ok(crate::model::Subscription {
        holder_ura: otv_core::Ura::parse(&text(0)?)
            .map_err(|_| corrupt("subscriptions.holder_ura"))?,
        holder_type: otv_core::OrgType::parse(&text(1)?)
            .map_err(|_| corrupt("subscriptions.holder_type"))?,
        connector_id: text(2)?,
        source_system: text(3)?,
        gateway_system: text(4)?,
        endpoint: text(5)?,
        payload: text(6)?,
    })
}

/// The query of one subscription by connector and id, with its citizen's BSN columns, as every
/// backend runs it, with that backend's placeholders for the two parameters (`?` or `$1`, `$2`).
macro_rules! subscription_record_query {
    ($connector:literal, $id:literal) => {
        concat!(
            "SELECT s.id, s.status, s.holder_ura, s.holder_type, s.connector_id, s.source_system, ",
            "s.gateway_system, s.endpoint, s.payload, s.birth_date, c.bsn_encrypted, c.bsn_pseudonym ",
            "FROM subscriptions s JOIN citizens c ON c.id = s.citizen_id ",
            "WHERE s.connector_id = ",
            $connector,
            " AND s.id = ",
            $id
        )
    };
}
pub(crate) use subscription_record_query;

/// A row of [`subscription_record_query!`], as either backend decodes it.
#[derive(sqlx::FromRow)]
pub(crate) struct SubscriptionRow {
    id: uuid::Uuid,
    status: String,
    holder_ura: String,
    holder_type: String,
    connector_id: String,
    source_system: String,
    gateway_system: String,
    endpoint: String,
    payload: String,
    birth_date: Option<chrono::NaiveDate>,
    bsn_encrypted: Vec<u8>,
    bsn_pseudonym: Vec<u8>,
}

impl SubscriptionRow {
    /// The record this row holds, the BSN decrypted.
    pub(crate) fn into_record(
        self,
        keys: &Keys,
    ) -> Result<crate::model::SubscriptionRecord, StoreError> {
        Ok(crate::model::SubscriptionRecord {
            id: self.id,
            state: crate::model::SubscriptionState::parse(&self.status)
                .ok_or_else(|| corrupt("subscriptions.status"))?,
            registration: NewSubscription {
                bsn: keys.decrypt_bsn(&self.bsn_encrypted, &self.bsn_pseudonym)?,
                birth_date: self.birth_date,
                holder_ura: Ura::parse(&self.holder_ura)
                    .map_err(|_| corrupt("subscriptions.holder_ura"))?,
                holder_type: otv_core::OrgType::parse(&self.holder_type)
                    .map_err(|_| corrupt("subscriptions.holder_type"))?,
                connector_id: self.connector_id,
                source_system: self.source_system,
                gateway_system: self.gateway_system,
                endpoint: self.endpoint,
                payload: self.payload,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_cut_to_microseconds_and_print_fixed_width() {
        let t: DateTime<Utc> = "2024-05-06T07:08:09.123456789Z".parse().unwrap();
        assert_eq!(rfc3339_micros(micros(t)), "2024-05-06T07:08:09.123456Z");
        let whole: DateTime<Utc> = "2024-05-06T07:08:09Z".parse().unwrap();
        assert_eq!(rfc3339_micros(whole), "2024-05-06T07:08:09.000000Z");
        assert_eq!(
            from_epoch_micros(to_epoch_micros(micros(t)), "t").unwrap(),
            micros(t)
        );
    }
}
