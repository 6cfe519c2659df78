//! No BSN in an error text: the errors of the paths that handle one are checked for its digits.

use otv_core::Catalogue;
use otv_store::{AuditEvent, Keys, generate};

use crate::support::backends;

#[tokio::test]
async fn errors_never_carry_a_bsn() {
    let catalogue = Catalogue::default_catalogue();
    let people: Vec<_> = (0..20)
        .map(|i| generate::citizen(&catalogue, 3, i))
        .collect();
    let shows_a_bsn = |text: &str| people.iter().any(|p| text.contains(p.bsn.expose()));
    for t in backends().await {
        t.store.load_generated(&people).await.unwrap();

        // The same citizens again: a uniqueness violation, reported by the database.
        let err = t.store.load_generated(&people).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("database"), "{}: {text}", t.kind());
        assert!(!shows_a_bsn(&text), "{}: {text}", t.kind());

        // Unreadable ciphertext under other keys.
        let id = t
            .store
            .upsert_citizen(&people[0].bsn, &Default::default())
            .await
            .unwrap();
        let other = otv_store::connect(&t.url, Keys::generate()).await.unwrap();
        let err = other.citizen_bsn(id).await.unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!shows_a_bsn(&text), "{}: {text}", t.kind());

        // A write that fails half-way.
        t.exec("DROP TABLE audit_log").await;
        let err = t
            .store
            .record_answers(&people[1].bsn, &people[1].answers, &AuditEvent::default())
            .await
            .unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(!shows_a_bsn(&text), "{}: {text}", t.kind());
    }
}
