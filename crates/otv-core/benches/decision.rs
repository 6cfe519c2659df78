//! In-process decision latency of the pure engine: a full 49-answer profile plus individual
//! answers, one closed question with three data categories.
//!
//! `cargo bench -p otv-core --bench decision`

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Catalogue, Channel, DataCategory, DefaultPolicy, Effect,
    OrgType, Organisation, Party, Provenance, Question, Ura, decide,
};

fn profile(catalogue: &Catalogue) -> Vec<Answer> {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let answer = |holder, data_category, consulter, effect| Answer {
        key: AnswerKey {
            holder,
            data_category,
            consulter,
        },
        effect,
        valid_from: at,
        valid_until: None,
        state: AnswerState::Active,
        provenance: Provenance {
            recorded_at: at,
            channel: Channel::Portal,
            actor: Actor::Citizen,
            catalogue_version: "bench".into(),
        },
    };
    let mut answers: Vec<Answer> = catalogue
        .options()
        .iter()
        .map(|o| {
            answer(
                Party::Category(o.holder.clone()),
                o.data_category.clone(),
                Party::Category(o.consulter.clone()),
                Effect::Permit,
            )
        })
        .collect();
    answers.push(answer(
        Party::Provider(Ura::parse("00000001").unwrap()),
        DataCategory::parse("GGC002").unwrap(),
        Party::Category(catalogue.options()[3].consulter.clone()),
        Effect::Deny,
    ));
    answers
}

fn bench(c: &mut Criterion) {
    let catalogue = Catalogue::default_catalogue();
    let answers = profile(&catalogue);
    let holder = Organisation {
        ura: Ura::parse("00000002").unwrap(),
        organisation_type: OrgType::parse("Z3").unwrap(),
    };
    let consulter = Organisation {
        ura: Ura::parse("00000011").unwrap(),
        organisation_type: OrgType::parse("J8").unwrap(),
    };
    let asked: Vec<DataCategory> = ["GGC002", "GGC012", "GGC013"]
        .iter()
        .map(|c| DataCategory::parse(c).unwrap())
        .collect();
    let question = Question {
        holder: &holder,
        consulter: &consulter,
        at: Utc::now(),
    };
    c.bench_function("decide 3 categories against a 50-answer profile", |b| {
        b.iter(|| {
            decide(
                &catalogue,
                DefaultPolicy::OptIn,
                std::hint::black_box(&answers),
                &question,
                &asked,
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
