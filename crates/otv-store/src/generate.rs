//! A synthetic national population for benchmarks: citizens, answers and subscriptions at
//! roughly national proportions. Pure and deterministic: the same seed and index give the same
//! citizen, so a benchmark can pick existing citizens without reading them back.
//!
//! The proportions (documented in BENCHMARKS.md):
//! - 60% of citizens have a profile. Of those, 65% chose "all my providers" (yes to every option
//!   except the EU category, which 30% of them also answer), 10% chose "no provider" (no to
//!   every option), 25% answered per option (each option yes with probability 0.6).
//! - Every citizen has 6 to 14 subscriptions (10 on average) at distinct providers, drawn by
//!   organisation type with the weights of [`PROVIDER_TYPES`].

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Bsn, Catalogue, Channel, Effect, OrgType, Party,
    Provenance, Ura,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{GeneratedCitizen, NewSubscription, Provider};

/// Organisation types of the generated directory: (type, number of providers, weight among a
/// citizen's subscriptions in percent).
pub const PROVIDER_TYPES: &[(&str, u32, u32)] = &[
    ("Z3", 5_000, 15),
    ("N6", 120, 5),
    ("J8", 2_000, 20),
    ("V4", 20, 5),
    ("V5", 8, 5),
    ("V6", 80, 15),
    ("L1", 100, 12),
    ("Z5", 50, 8),
    ("G5", 600, 5),
    ("T2", 1_500, 6),
    ("X3", 1_000, 4),
];

/// The connector that "registered" every generated subscription.
pub const CONNECTOR_ID: &str = "gen-lsp";

/// The BSN of generated citizen `i` (valid, distinct for every `i` below 40 million).
///
/// The 8-digit prefix is `20000000 + 2i`; when its check digit would be 10 the prefix `+1`
/// is used, whose check digit is then 1 (the last weight is 2).
pub fn bsn(i: u64) -> Bsn {
    let check = |p: u64| -> u64 {
        let digits = format!("{p:08}");
        let sum: u64 = digits
            .bytes()
            .zip((2..=9).rev())
            .map(|(d, w)| u64::from(d - b'0') * w)
            .sum();
        sum % 11
    };
    let mut prefix = 20_000_000 + 2 * i;
    if check(prefix) == 10 {
        prefix += 1;
    }
    Bsn::parse(&format!("{prefix:08}{}", check(prefix))).expect("generated BSN passes the 11-test")
}

fn ura(type_index: usize, n: u32) -> Ura {
    Ura::parse(&format!(
        "{:08}",
        30_000_000 + type_index as u32 * 100_000 + n
    ))
    .expect("8 digits")
}

/// The generated provider directory.
pub fn providers() -> Vec<Provider> {
    PROVIDER_TYPES
        .iter()
        .enumerate()
        .flat_map(|(ti, (t, count, _))| {
            (0..*count).map(move |n| Provider {
                ura: ura(ti, n),
                name: format!("Generated {t} {n}"),
                organisation_type: OrgType::parse(t).expect("valid type"),
            })
        })
        .collect()
}

/// Generated citizen `i` of the population with `seed`.
pub fn citizen(catalogue: &Catalogue, seed: u64, i: u64) -> GeneratedCitizen {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let bsn = bsn(i);
    let birth_date = NaiveDate::from_ymd_opt(1930, 1, 1).expect("date")
        + Duration::days(rng.random_range(0..35_000));
    let epoch: DateTime<Utc> = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let recorded_at = epoch + Duration::seconds(rng.random_range(0..86_400 * 700));

    let mut answers = Vec::new();
    if rng.random_bool(0.6) {
        let channel = if rng.random_bool(0.9) {
            Channel::Portal
        } else {
            Channel::SamenNaarMijnmitz
        };
        let choice = rng.random_range(0..100);
        let answers_eu = rng.random_bool(0.3);
        for option in catalogue.options() {
            let separate = catalogue
                .consulting_categories()
                .iter()
                .any(|k| k.code == option.consulter && k.separate);
            let effect = match choice {
                0..65 if separate && !answers_eu => continue,
                0..65 if separate => rng.random_bool(0.5),
                0..65 => true,
                65..75 => false,
                _ => rng.random_bool(0.6),
            };
            answers.push(Answer {
                key: AnswerKey {
                    holder: Party::Category(option.holder.clone()),
                    data_category: option.data_category.clone(),
                    consulter: Party::Category(option.consulter.clone()),
                },
                effect: if effect { Effect::Permit } else { Effect::Deny },
                valid_from: recorded_at,
                valid_until: None,
                state: AnswerState::Active,
                provenance: Provenance {
                    recorded_at,
                    channel,
                    actor: Actor::Citizen,
                    catalogue_version: catalogue.version().to_owned(),
                },
            });
        }
    }

    let total_weight: u32 = PROVIDER_TYPES.iter().map(|(_, _, w)| w).sum();
    let wanted = rng.random_range(6..=14);
    let mut subscriptions: Vec<NewSubscription> = Vec::with_capacity(wanted);
    while subscriptions.len() < wanted {
        let mut pick = rng.random_range(0..total_weight);
        let ti = PROVIDER_TYPES
            .iter()
            .position(|(_, _, w)| {
                let hit = pick < *w;
                pick = pick.saturating_sub(*w);
                hit
            })
            .expect("weights cover the range");
        let (t, count, _) = PROVIDER_TYPES[ti];
        let holder_ura = ura(ti, rng.random_range(0..count));
        if subscriptions.iter().any(|s| s.holder_ura == holder_ura) {
            continue;
        }
        subscriptions.push(NewSubscription {
            bsn: bsn.clone(),
            birth_date: Some(birth_date),
            source_system: format!("2.16.528.1.1007.3.3.{holder_ura}.1"),
            holder_ura,
            holder_type: OrgType::parse(t).expect("valid type"),
            connector_id: CONNECTOR_ID.to_owned(),
            gateway_system: "2.16.840.1.113883.2.4.6.6.90000001".to_owned(),
            endpoint: "https://exchange.example/notify".to_owned(),
            payload: "application/fhir+json".to_owned(),
        });
    }

    GeneratedCitizen {
        bsn,
        birth_date,
        answers,
        subscriptions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bsns_are_valid_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in (0..20_000).chain(39_999_000..40_000_000) {
            assert!(seen.insert(bsn(i).expose().to_owned()), "duplicate at {i}");
        }
    }

    #[test]
    fn the_population_has_the_documented_proportions() {
        let catalogue = Catalogue::default_catalogue();
        let people: Vec<_> = (0..2_000).map(|i| citizen(&catalogue, 7, i)).collect();
        let with_profile = people.iter().filter(|c| !c.answers.is_empty()).count() as f64 / 2_000.0;
        assert!((0.55..0.65).contains(&with_profile), "{with_profile}");
        let subs = people.iter().map(|c| c.subscriptions.len()).sum::<usize>() as f64 / 2_000.0;
        assert!((9.5..10.5).contains(&subs), "{subs}");
        // Deterministic.
        assert_eq!(citizen(&catalogue, 7, 5).answers, people[5].answers);
    }
}
