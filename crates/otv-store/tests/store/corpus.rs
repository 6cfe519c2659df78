//! The decision conformance corpus of otv-core, through storage: every case's profile is
//! recorded, read back, and must decide exactly as the case expects.

use std::collections::HashSet;

use otv_core::corpus::{DECISIONS_TOML, load};
use otv_core::{Answer, Question, Sides};
use otv_store::AuditEvent;

use crate::support::{backends, bsn};

#[tokio::test]
async fn every_corpus_case_decides_the_same_after_a_round_trip() {
    let cases = load(DECISIONS_TOML).expect("corpus loads");
    assert!(cases.len() > 10, "the corpus has cases");
    assert!(
        cases.iter().any(|c| c.answers.is_empty()),
        "the corpus has a case without answers"
    );
    for t in backends().await {
        for (i, case) in cases.iter().enumerate() {
            let patient = bsn(i as u32);
            let event = AuditEvent {
                at: case.at,
                event: "profile-change".into(),
                actor: "citizen".into(),
                ..Default::default()
            };
            t.store
                .record_answers(&patient, &case.answers, &event)
                .await
                .unwrap();
            let loaded = t.store.profile(&patient).await.unwrap();
            assert_eq!(
                loaded.iter().collect::<HashSet<&Answer>>(),
                case.answers.iter().collect::<HashSet<&Answer>>(),
                "{}: case `{}` reads back different answers",
                t.kind(),
                case.name
            );
            assert_eq!(
                loaded.len(),
                case.answers.len(),
                "{}: case `{}`",
                t.kind(),
                case.name
            );
            case.check(&loaded)
                .unwrap_or_else(|e| panic!("{}: {e}", t.kind()));
            // The closed question's read: only the answers naming the case's two sides.
            let question = Question {
                holder: &case.holder,
                consulter: &case.consulter,
                at: case.at,
            };
            if let Some(sides) = Sides::of(&case.catalogue, &question) {
                let between = t.store.answers_between(&patient, &sides).await.unwrap();
                let expected: HashSet<&Answer> =
                    case.answers.iter().filter(|a| sides.named_by(a)).collect();
                assert_eq!(
                    between.iter().collect::<HashSet<&Answer>>(),
                    expected,
                    "{}: case `{}`: answers between its sides",
                    t.kind(),
                    case.name
                );
                case.check(&between)
                    .unwrap_or_else(|e| panic!("{}: {e}", t.kind()));
            }
        }
    }
}
