//! The progress record of bulk imports: each chunk's registrations and the move of the
//! import's progress are one transaction, a chunk that does not continue the stored progress
//! writes nothing, and registrations that exist are counted, not repeated.

use otv_core::{OrgType, Ura};
use otv_store::{
    ImportChunk, ImportCommit, ImportIssue, ImportRefusal, MAX_STORED_REFUSALS, NewSubscription,
};

use crate::support::{backends, bsn};

fn registration(patient: u32) -> NewSubscription {
    NewSubscription {
        bsn: bsn(patient),
        birth_date: Some("1990-05-06".parse().unwrap()),
        holder_ura: Ura::parse("00000010").unwrap(),
        holder_type: OrgType::parse("J8").unwrap(),
        connector_id: "lsp".into(),
        source_system: "2.16.840.1.113883.2.4.6.6.10.1".into(),
        gateway_system: "2.16.840.1.113883.2.4.6.6.1".into(),
        endpoint: "https://lsp.example/notify".into(),
        payload: "application/fhir+json".into(),
    }
}

fn refusal(line: u64) -> ImportRefusal {
    ImportRefusal {
        line,
        reason: "invalid".into(),
        issues: vec![ImportIssue {
            path: Some("Subscription.criteria".into()),
            problem: "not the otv query".into(),
        }],
    }
}

fn chunk<'a>(
    import_id: &'a str,
    after_line: u64,
    through_line: u64,
    subscriptions: &'a [NewSubscription],
    refusals: &'a [ImportRefusal],
    complete: bool,
) -> ImportChunk<'a> {
    ImportChunk {
        connector_id: "lsp",
        import_id,
        after_line,
        through_line,
        prefix_sha256: b"prefix-hash",
        subscriptions,
        refusals,
        complete,
    }
}

#[tokio::test]
async fn import_progress_moves_with_each_chunk_and_only_from_where_it_stands() {
    for t in backends().await {
        let k = t.kind();
        assert_eq!(
            t.store.import_progress("lsp", "a").await.unwrap(),
            None,
            "{k}"
        );

        // Lines 1-3: two registrations, one refused line.
        let first = [registration(1), registration(2)];
        let ImportCommit::Committed { created, progress } = t
            .store
            .commit_import_chunk(&chunk("a", 0, 3, &first, &[refusal(2)], false))
            .await
            .unwrap()
        else {
            panic!("{k}: the first chunk is committed");
        };
        assert_eq!((created, progress.committed_lines), (2, 3), "{k}");
        assert_eq!((progress.refused, progress.complete), (1, false), "{k}");
        assert_eq!(progress.refusals, vec![refusal(2)], "{k}");
        assert_eq!(progress.prefix_sha256, b"prefix-hash", "{k}");

        // A chunk that starts where the import no longer stands writes nothing.
        let stale = [registration(3)];
        let moved = t
            .store
            .commit_import_chunk(&chunk("a", 0, 2, &stale, &[], false))
            .await
            .unwrap();
        assert_eq!(moved, ImportCommit::Moved(Some(progress.clone())), "{k}");
        assert_eq!(t.int("SELECT count(*) FROM subscriptions").await, 2, "{k}");

        // Lines 4-6: one registration again (left as it is), one new; the end of the input.
        let second = [registration(1), registration(3)];
        let ImportCommit::Committed { created, progress } = t
            .store
            .commit_import_chunk(&chunk("a", 3, 6, &second, &[], true))
            .await
            .unwrap()
        else {
            panic!("{k}: the second chunk is committed");
        };
        assert_eq!(created, 1, "{k}");
        assert_eq!(
            (
                progress.committed_lines,
                progress.created,
                progress.already_registered
            ),
            (6, 3, 1),
            "{k}"
        );
        assert!(progress.complete, "{k}");
        assert_eq!(t.int("SELECT count(*) FROM subscriptions").await, 3, "{k}");
        assert_eq!(t.int("SELECT count(*) FROM citizens").await, 3, "{k}");
        assert_eq!(
            t.store.import_progress("lsp", "a").await.unwrap(),
            Some(progress),
            "{k}"
        );

        // Imports are per connector and id.
        assert_eq!(
            t.store.import_progress("other", "a").await.unwrap(),
            None,
            "{k}"
        );
        assert_eq!(
            t.store.import_progress("lsp", "b").await.unwrap(),
            None,
            "{k}"
        );

        // Refusals are kept up to the cap; the count goes on.
        let many: Vec<ImportRefusal> = (1..=150).map(refusal).collect();
        let ImportCommit::Committed { progress, .. } = t
            .store
            .commit_import_chunk(&chunk("b", 0, 150, &[], &many, true))
            .await
            .unwrap()
        else {
            panic!("{k}: a chunk of refusals only is committed");
        };
        assert_eq!(progress.refused, 150, "{k}");
        assert_eq!(progress.refusals.len(), MAX_STORED_REFUSALS, "{k}");
        let stored = t.store.import_progress("lsp", "b").await.unwrap().unwrap();
        assert_eq!(stored.refusals, many[..MAX_STORED_REFUSALS], "{k}");
    }
}
