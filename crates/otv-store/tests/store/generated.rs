//! The bulk path of the benchmark data generator.

use std::collections::HashSet;

use otv_core::{Answer, Catalogue};
use otv_store::generate;

use crate::support::backends;

#[tokio::test]
async fn generated_citizens_load_in_bulk_and_read_back() {
    let catalogue = Catalogue::default_catalogue();
    let people: Vec<_> = (0..300)
        .map(|i| generate::citizen(&catalogue, 11, i))
        .collect();
    let answers: usize = people.iter().map(|p| p.answers.len()).sum();
    let subscriptions: usize = people.iter().map(|p| p.subscriptions.len()).sum();
    assert!(
        answers > 1_000 && subscriptions > 1_000,
        "a realistic batch"
    );
    for t in backends().await {
        // Two batches, one of them larger than a single SQLite statement can bind.
        t.store.load_generated(&people[..250]).await.unwrap();
        t.store.load_generated(&people[250..]).await.unwrap();
        t.store.load_generated(&[]).await.unwrap();

        let stats = t.store.stats().await.unwrap();
        assert_eq!(stats.citizens, 300, "{}", t.kind());
        assert_eq!(stats.answers, answers as i64, "{}", t.kind());
        assert_eq!(stats.subscriptions, subscriptions as i64, "{}", t.kind());
        assert_eq!(
            stats.audit_records,
            0,
            "{}: generated data is not audited",
            t.kind()
        );
        assert!(
            stats.size_bytes > 100_000,
            "{}: {}",
            t.kind(),
            stats.size_bytes
        );
        assert!(stats.at.is_some());

        for p in people.iter().step_by(7) {
            let loaded = t.store.profile(&p.bsn).await.unwrap();
            assert_eq!(
                loaded.iter().collect::<HashSet<&Answer>>(),
                p.answers.iter().collect::<HashSet<&Answer>>(),
                "{}",
                t.kind()
            );
        }
        // Generated citizens are ordinary citizens: their profile can change.
        let p = people.iter().find(|p| !p.answers.is_empty()).unwrap();
        let mut changed = p.answers[0].clone();
        changed.effect = match changed.effect {
            otv_core::Effect::Permit => otv_core::Effect::Deny,
            otv_core::Effect::Deny => otv_core::Effect::Permit,
        };
        t.store
            .record_answers(&p.bsn, std::slice::from_ref(&changed), &Default::default())
            .await
            .unwrap();
        let loaded = t.store.profile(&p.bsn).await.unwrap();
        assert_eq!(loaded.len(), p.answers.len(), "{}", t.kind());
        assert!(loaded.contains(&changed), "{}", t.kind());
    }
}
