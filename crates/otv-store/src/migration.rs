//! Migration (PRODUCT.md §9): answers a provider kept locally, stored only where the citizen has
//! no answer yet. The rules both backends follow (`sqlite/migration.rs`, `postgres/migration.rs`;
//! the planning is here, once):
//!
//! - One call ([`Backend::migrate_answers`](crate::Backend::migrate_answers)) is one transaction
//!   over a chunk of items (one item = one Consent's answers for one citizen). Citizens unknown
//!   to otv are created, as registrations do.
//! - A key that has a current answer (in force or a child's pending proposal, whoever recorded
//!   it, this migration included) is left alone and counted as already answered: migration
//!   never replaces anything, so running the same input again stores nothing.
//! - A citizen who locked the profile against provider changes
//!   (`citizen_settings.lock_provider_changes`) gets nothing; the item is reported as locked.
//! - Per citizen and migrating provider that got answers: one audit record (`profile-change`,
//!   channel `migration`, actor `provider:<URA>`, the URA as organisation, the pseudonym as
//!   patient, counts in the details) whose sequence number every stored answer carries as its
//!   change (`change_seq`, as `record_answers` does), and one `profile-changed` outbox row. Nothing
//!   new, nothing written: no audit record and no outbox row.
//! - Within one chunk the first item that answers a key wins; later ones count it as already
//!   answered (input order decides, as it would over two chunks).

use std::collections::{BTreeMap, HashSet};

use otv_core::{Answer, Bsn, Ura};
use serde::Serialize;

use crate::codec::AnswerCols;
use crate::{AuditEvent, Keys, Result};

/// One Consent's answers for one citizen, to migrate.
#[derive(Debug, Clone)]
pub struct MigrationItem {
    /// The citizen.
    pub bsn: Bsn,
    /// The provider that hands the answers over: their actor, and the audit record's
    /// organisation.
    pub provider: Ura,
    /// The answers (channel `migration`, state `active`), each key once.
    pub answers: Vec<Answer>,
}

/// What migrating one item did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MigrationOutcome {
    /// Answers stored.
    pub migrated: u32,
    /// Keys left alone because they had a current answer.
    pub already_answered: u32,
    /// The citizen locked the profile against provider changes: nothing was stored.
    pub locked: bool,
}

/// An answer key as its five columns.
pub(crate) type KeyCols = (String, String, String, String, String);

pub(crate) fn key_cols(c: &AnswerCols<'_>) -> KeyCols {
    (
        c.holder_kind.to_owned(),
        c.holder_code.to_owned(),
        c.data_category.to_owned(),
        c.consulter_kind.to_owned(),
        c.consulter_code.to_owned(),
    )
}

/// The citizens of a chunk, in pseudonym order (the one order in which transactions that touch
/// several citizens lock them), each with the indices of its items.
pub(crate) struct ChunkCitizen<'a> {
    pub pseudonym: [u8; 32],
    pub bsn: &'a Bsn,
    pub items: Vec<usize>,
}

pub(crate) fn citizens<'a>(keys: &Keys, items: &'a [MigrationItem]) -> Vec<ChunkCitizen<'a>> {
    let mut by: BTreeMap<[u8; 32], ChunkCitizen<'a>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let pseudonym = keys.pseudonym(&item.bsn);
        by.entry(pseudonym)
            .or_insert_with(|| ChunkCitizen {
                pseudonym,
                bsn: &item.bsn,
                items: Vec::new(),
            })
            .items
            .push(i);
    }
    by.into_values().collect()
}

/// What the citizens' rows say: their id, the lock, and the keys with a current answer.
pub(crate) struct Found {
    pub id: uuid::Uuid,
    pub locked: bool,
    pub answered: HashSet<KeyCols>,
}

/// The answers one citizen gets from one provider.
pub(crate) struct Group<'a> {
    pub citizen: uuid::Uuid,
    pub pseudonym: [u8; 32],
    pub provider: &'a Ura,
    pub answers: Vec<(&'a Answer, AnswerCols<'a>)>,
    pub already_answered: u32,
}

/// Decides per item what is stored: `found[i]` belongs to `citizens[i]`.
pub(crate) fn plan<'a>(
    items: &'a [MigrationItem],
    citizens: &[ChunkCitizen<'_>],
    found: Vec<Found>,
) -> Result<(Vec<MigrationOutcome>, Vec<Group<'a>>)> {
    let mut outcomes = vec![MigrationOutcome::default(); items.len()];
    let mut groups = Vec::new();
    for (citizen, mut f) in citizens.iter().zip(found) {
        if f.locked {
            for &i in &citizen.items {
                outcomes[i].locked = true;
            }
            continue;
        }
        let mut by_provider: BTreeMap<&Ura, Group<'a>> = BTreeMap::new();
        for &i in &citizen.items {
            let item = &items[i];
            let group = by_provider.entry(&item.provider).or_insert_with(|| Group {
                citizen: f.id,
                pseudonym: citizen.pseudonym,
                provider: &item.provider,
                answers: Vec::new(),
                already_answered: 0,
            });
            for a in &item.answers {
                let cols = AnswerCols::from_answer(a)?;
                if f.answered.insert(key_cols(&cols)) {
                    outcomes[i].migrated += 1;
                    group.answers.push((a, cols));
                } else {
                    outcomes[i].already_answered += 1;
                    group.already_answered += 1;
                }
            }
        }
        groups.extend(by_provider.into_values().filter(|g| !g.answers.is_empty()));
    }
    Ok((outcomes, groups))
}

/// The audit record of one group.
pub(crate) fn group_event(template: &AuditEvent, group: &Group<'_>) -> AuditEvent {
    let mut event = template.clone();
    event.event = "profile-change".into();
    event.channel = Some("migration".into());
    event.actor = format!("provider:{}", group.provider);
    event.organisation = Some(group.provider.to_string());
    event.patient = Some(hex::encode(group.pseudonym));
    crate::citizen::merge_details(
        &mut event,
        serde_json::json!({
            "answers": group.answers.len(),
            "already_answered": group.already_answered,
        }),
    );
    event
}

/// The outbox payload of one group (the keys it changed and its audit record).
pub(crate) fn group_payload(group: &Group<'_>, seq: i64) -> String {
    let answers: Vec<Answer> = group.answers.iter().map(|(a, _)| (*a).clone()).collect();
    crate::codec::profile_changed_payload(&answers, seq)
}
