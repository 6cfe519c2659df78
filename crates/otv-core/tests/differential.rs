//! Randomised differential test: the decision engine against a deliberately naive reference
//! written straight from PRODUCT.md §5, on at least 100,000 random profiles and questions.
//!
//! The seed is random per run and printed on failure; set `OTV_DIFF_SEED` to replay one.

use chrono::{DateTime, Duration, TimeZone, Utc};
use otv_core::decision::{DefaultPolicy, Organisation, Question, Reason, decide};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Catalogue, CategoryCode, Channel, DataCategory, Effect,
    OrgType, Party, Provenance, Ura,
};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

const RUNS: usize = 100_000;

/// The reference: filter, rank, pick, exactly as the numbered steps of §5 read, using only the
/// catalogue's plain lists (no lookup tables).
fn reference(
    cat: &Catalogue,
    policy: DefaultPolicy,
    answers: &[Answer],
    holder: &Organisation,
    consulter: &Organisation,
    at: DateTime<Utc>,
    asked: &DataCategory,
) -> (Effect, Reason, Option<usize>) {
    // Step 2.
    let h = cat
        .holder_categories()
        .iter()
        .find(|h| h.organisation_types.contains(&holder.organisation_type));
    let Some(h) = h else {
        return (Effect::Deny, Reason::UnknownHolderOrganisationType, None);
    };
    let k = cat
        .consulting_categories()
        .iter()
        .find(|k| k.organisation_types.contains(&consulter.organisation_type));
    let Some(k) = k else {
        return (Effect::Deny, Reason::UnknownConsulterOrganisationType, None);
    };
    if !cat.data_categories().iter().any(|d| &d.code == asked) {
        return (Effect::Deny, Reason::UnknownDataCategory, None);
    }
    // Ancestors of the category asked, by walking parents.
    let mut lineage = vec![asked.clone()];
    while let Some(p) = cat
        .data_categories()
        .iter()
        .find(|d| &d.code == lineage.last().unwrap())
        .and_then(|d| d.parent.clone())
    {
        lineage.push(p);
    }
    // Step 3.
    let applicable: Vec<(usize, &Answer)> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.state == AnswerState::Active)
        .filter(|(_, a)| a.valid_from <= at)
        .filter(|(_, a)| match a.valid_until {
            Some(u) => at < u,
            None => true,
        })
        .filter(|(_, a)| {
            a.key.holder == Party::Provider(holder.ura.clone())
                || a.key.holder == Party::Category(h.code.clone())
        })
        .filter(|(_, a)| {
            a.key.consulter == Party::Provider(consulter.ura.clone())
                || a.key.consulter == Party::Category(k.code.clone())
        })
        .filter(|(_, a)| lineage.contains(&a.key.data_category))
        .collect();
    if applicable.is_empty() {
        return match policy {
            DefaultPolicy::OptIn => (Effect::Deny, Reason::NoAnswerDefaultDeny, None),
            DefaultPolicy::OptOut => (Effect::Permit, Reason::NoAnswerDefaultPermit, None),
        };
    }
    // Step 4.
    let rank = |a: &Answer| {
        (
            matches!(a.key.holder, Party::Provider(_)),
            matches!(a.key.consulter, Party::Provider(_)),
            &a.key.data_category == asked,
        )
    };
    let top = applicable.iter().map(|(_, a)| rank(a)).max().unwrap();
    let winners: Vec<&(usize, &Answer)> =
        applicable.iter().filter(|(_, a)| rank(a) == top).collect();
    // Step 5, and the deciding answer: the latest recorded of the deciding effect, first on ties.
    let pick = |effect: Effect| {
        let mut of: Vec<&&(usize, &Answer)> =
            winners.iter().filter(|(_, a)| a.effect == effect).collect();
        of.sort_by(|(i, a), (j, b)| {
            b.provenance
                .recorded_at
                .cmp(&a.provenance.recorded_at)
                .then(i.cmp(j))
        });
        of.first().map(|(i, _)| *i)
    };
    match (pick(Effect::Deny), pick(Effect::Permit)) {
        (Some(d), Some(_)) => (Effect::Deny, Reason::DenyWinsOverPermit, Some(d)),
        (Some(d), None) => (Effect::Deny, Reason::DeniedByAnswer, Some(d)),
        (None, Some(p)) => (Effect::Permit, Reason::PermittedByAnswer, Some(p)),
        (None, None) => unreachable!("winners are not empty"),
    }
}

fn deep_catalogue() -> Catalogue {
    let extra = "\n[[data_category]]\ncode = \"GGC020\"\nname = \"Medicatieafspraken\"\nparent = \"GGC013\"\n";
    Catalogue::from_toml(&format!(
        "{}{extra}",
        otv_core::catalogue::DEFAULT_CATALOGUE_TOML
    ))
    .unwrap()
}

struct World {
    holder_codes: Vec<CategoryCode>,
    consulter_codes: Vec<CategoryCode>,
    categories: Vec<DataCategory>,
    types: Vec<OrgType>,
    uras: Vec<Ura>,
    base: DateTime<Utc>,
}

impl World {
    fn new(cat: &Catalogue) -> World {
        let mut types: Vec<OrgType> = cat
            .organisation_types()
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        types.push(OrgType::parse("Q1").unwrap()); // unknown to the catalogue
        let mut categories: Vec<DataCategory> = cat
            .data_categories()
            .iter()
            .map(|d| d.code.clone())
            .collect();
        categories.push(DataCategory::parse("GGC099").unwrap()); // unknown to the catalogue
        World {
            holder_codes: cat
                .holder_categories()
                .iter()
                .map(|h| h.code.clone())
                .collect(),
            consulter_codes: cat
                .consulting_categories()
                .iter()
                .map(|k| k.code.clone())
                .collect(),
            categories,
            types,
            uras: ["00000001", "00000002", "00000003"]
                .iter()
                .map(|u| Ura::parse(u).unwrap())
                .collect(),
            base: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
        }
    }

    fn time(&self, rng: &mut StdRng) -> DateTime<Utc> {
        // A small range so that boundaries (equal instants) happen often.
        self.base + Duration::seconds(rng.random_range(-3..=3))
    }

    /// A side of a key: usually the question's own category or URA (so that answers
    /// often apply), otherwise any category or URA.
    fn party(&self, rng: &mut StdRng, codes: &[CategoryCode], own: &[Party]) -> Party {
        if !own.is_empty() && rng.random_bool(0.75) {
            own.choose(rng).unwrap().clone()
        } else if rng.random_bool(0.35) {
            Party::Provider(self.uras.choose(rng).unwrap().clone())
        } else {
            Party::Category(codes.choose(rng).unwrap().clone())
        }
    }

    fn answer(
        &self,
        rng: &mut StdRng,
        own_holder: &[Party],
        own_consulter: &[Party],
        asked: &[DataCategory],
    ) -> Answer {
        let states = [
            AnswerState::Active,
            AnswerState::Active,
            AnswerState::Active,
            AnswerState::Active,
            AnswerState::Active,
            AnswerState::PendingGuardian,
            AnswerState::Expired,
            AnswerState::Withdrawn,
        ];
        let known = &self.categories[..self.categories.len() - 1];
        Answer {
            key: AnswerKey {
                holder: self.party(rng, &self.holder_codes, own_holder),
                data_category: if rng.random_bool(0.6) {
                    asked.choose(rng).unwrap()
                } else {
                    known.choose(rng).unwrap()
                }
                .clone(),
                consulter: self.party(rng, &self.consulter_codes, own_consulter),
            },
            effect: if rng.random_bool(0.5) {
                Effect::Permit
            } else {
                Effect::Deny
            },
            valid_from: self.time(rng),
            valid_until: rng.random_bool(0.3).then(|| self.time(rng)),
            state: *states.choose(rng).unwrap(),
            provenance: Provenance {
                recorded_at: self.time(rng),
                channel: *Channel::ALL.choose(rng).unwrap(),
                actor: Actor::Citizen,
                catalogue_version: "test".into(),
            },
        }
    }

    fn organisation(&self, rng: &mut StdRng) -> Organisation {
        // Mostly known types, so that most questions reach the answers.
        let t = if rng.random_bool(0.95) {
            &self.types[..self.types.len() - 1]
        } else {
            &self.types[..]
        };
        Organisation {
            organisation_type: t.choose(rng).unwrap().clone(),
            ura: self.uras.choose(rng).unwrap().clone(),
        }
    }
}

#[test]
fn engine_agrees_with_the_naive_reference_on_random_profiles() {
    let seed: u64 = std::env::var("OTV_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let catalogues = [Catalogue::default_catalogue(), deep_catalogue()];
    let worlds: Vec<World> = catalogues.iter().map(World::new).collect();
    let mut decided_by_answer = 0usize;
    let mut outcomes = 0usize;
    for run in 0..RUNS {
        let which = rng.random_range(0..2);
        let (cat, world) = (&catalogues[which], &worlds[which]);
        let holder = world.organisation(&mut rng);
        let consulter = world.organisation(&mut rng);
        let own_holder: Vec<Party> = [
            Some(Party::Provider(holder.ura.clone())),
            cat.holder_category_of(&holder.organisation_type)
                .map(|h| Party::Category(h.code.clone())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let own_consulter: Vec<Party> = [
            Some(Party::Provider(consulter.ura.clone())),
            cat.consulting_category_of(&consulter.organisation_type)
                .map(|k| Party::Category(k.code.clone())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let asked: Vec<DataCategory> = (0..rng.random_range(1..=3))
            .map(|_| world.categories.choose(&mut rng).unwrap().clone())
            .collect();
        let n = rng.random_range(0..=14);
        let answers: Vec<Answer> = (0..n)
            .map(|_| world.answer(&mut rng, &own_holder, &own_consulter, &asked))
            .collect();
        let at = world.time(&mut rng);
        let policy = if rng.random_bool(0.5) {
            DefaultPolicy::OptIn
        } else {
            DefaultPolicy::OptOut
        };
        let question = Question {
            holder: &holder,
            consulter: &consulter,
            at,
        };
        let got = decide(cat, policy, &answers, &question, &asked);
        for (o, c) in got.iter().zip(&asked) {
            let index = o
                .deciding
                .map(|d| answers.iter().position(|a| std::ptr::eq(a, d)).unwrap());
            let want = reference(cat, policy, &answers, &holder, &consulter, at, c);
            decided_by_answer += usize::from(index.is_some());
            outcomes += 1;
            assert_eq!(
                (o.effect, o.reason, index),
                want,
                "run {run} (replay with OTV_DIFF_SEED={seed}): category {c}, holder {holder:?}, consulter {consulter:?}, at {at}, policy {policy:?}, answers {answers:#?}"
            );
        }
    }
    // The generator must reach the interesting paths, or the comparison proves little.
    assert!(
        decided_by_answer > outcomes / 4,
        "only {decided_by_answer} of {outcomes} outcomes were decided by an answer"
    );
}
