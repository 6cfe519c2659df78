//! The audit chain: verification passes on an intact log and names the first record that was
//! changed, removed or cut off; purging old records leaves a log that still verifies.

use chrono::{DateTime, Duration, Utc};
use otv_store::{AuditEvent, Keys};

use crate::support::{TestStore, backends};

fn event(i: i64, at: DateTime<Utc>) -> AuditEvent {
    AuditEvent {
        at,
        event: "closed-question".into(),
        patient: Some(format!("{i:064x}")),
        actor: "uzi:900000001 role:01.015".into(),
        organisation: Some("00000001".into()),
        mandated: None,
        request_id: Some(format!("req-{i}")),
        decision: Some("deny".into()),
        reason: Some("no-answer".into()),
        emergency: i % 7 == 0,
        channel: Some("soap".into()),
        details: serde_json::json!({ "asked": ["GGC002", "GGC012"], "n": i, "b": { "z": 1, "a": null } }),
    }
}

fn start() -> DateTime<Utc> {
    "2015-01-01T00:00:00.000001Z".parse().unwrap()
}

/// Appends `n` events, the i-th (from 1) at `start + i * step`.
async fn append(t: &TestStore, n: i64, step: Duration) {
    for i in 1..=n {
        let seq = t
            .store
            .audit(&event(i, start() + step * i as i32))
            .await
            .unwrap();
        assert_eq!(seq, i, "{}", t.kind());
    }
}

async fn broken(t: &TestStore) -> Option<(i64, String)> {
    t.store.audit_verify().await.unwrap().first_broken
}

#[tokio::test]
async fn verification_passes_and_then_names_the_first_tampered_record() {
    for t in backends().await {
        assert_eq!(
            t.store.audit_checkpoint().await.unwrap(),
            None,
            "{}: empty log",
            t.kind()
        );
        assert_eq!(
            t.store.audit_verify().await.unwrap(),
            Default::default(),
            "{}",
            t.kind()
        );

        append(&t, 2_500, Duration::minutes(1)).await;
        let report = t.store.audit_verify().await.unwrap();
        assert_eq!(report.first_broken, None, "{}", t.kind());
        assert_eq!(report.records, 2_500, "{}", t.kind());
        assert_eq!(
            report.checkpoints,
            2,
            "{}: a checkpoint every 1000 records",
            t.kind()
        );
        assert_eq!(
            t.store.audit_checkpoint().await.unwrap(),
            Some(2_500),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.audit_verify().await.unwrap().checkpoints,
            3,
            "{}",
            t.kind()
        );

        // A changed field.
        t.exec("UPDATE audit_log SET decision = 'permit' WHERE seq = 1234")
            .await;
        assert_eq!(
            broken(&t).await,
            Some((1234, "hash does not match contents".into())),
            "{}",
            t.kind()
        );
        t.exec("UPDATE audit_log SET decision = 'deny' WHERE seq = 1234")
            .await;
        assert_eq!(broken(&t).await, None, "{}: restored", t.kind());

        // None and empty are different contents.
        t.exec("UPDATE audit_log SET mandated = '' WHERE seq = 10")
            .await;
        assert_eq!(broken(&t).await.map(|b| b.0), Some(10), "{}", t.kind());
        t.exec("UPDATE audit_log SET mandated = NULL WHERE seq = 10")
            .await;

        // Details are hashed as stored.
        t.exec(
            "UPDATE audit_log SET details = replace(details, 'GGC012', 'GGC013') WHERE seq = 20",
        )
        .await;
        assert_eq!(broken(&t).await.map(|b| b.0), Some(20), "{}", t.kind());
        t.exec(
            "UPDATE audit_log SET details = replace(details, 'GGC013', 'GGC012') WHERE seq = 20",
        )
        .await;

        // A stored hash that was changed, and a link that was changed.
        t.exec("UPDATE audit_log SET hash = (SELECT hash FROM audit_log WHERE seq = 1) WHERE seq = 1500").await;
        assert_eq!(
            broken(&t).await,
            Some((1500, "hash does not match contents".into())),
            "{}",
            t.kind()
        );
        t.exec("UPDATE audit_log SET hash = (SELECT prev_hash FROM audit_log WHERE seq = 1501) WHERE seq = 1500").await;
        t.exec("UPDATE audit_log SET prev_hash = (SELECT prev_hash FROM audit_log WHERE seq = 1500) WHERE seq = 1501").await;
        assert_eq!(
            broken(&t).await,
            Some((1501, "prev_hash does not link to record 1500".into())),
            "{}",
            t.kind()
        );
        t.exec("UPDATE audit_log SET prev_hash = (SELECT hash FROM audit_log WHERE seq = 1500) WHERE seq = 1501").await;
        assert_eq!(broken(&t).await, None, "{}", t.kind());

        // A forged checkpoint signature.
        t.exec("UPDATE audit_checkpoints SET signature = (SELECT signature FROM audit_checkpoints WHERE seq = 1000) WHERE seq = 2000").await;
        assert_eq!(
            broken(&t).await,
            Some((2000, "checkpoint signature invalid".into())),
            "{}",
            t.kind()
        );
        t.exec("DELETE FROM audit_checkpoints WHERE seq = 2000")
            .await;
        assert_eq!(
            broken(&t).await,
            None,
            "{}: a missing checkpoint is only less assurance",
            t.kind()
        );

        // A record cut from the end.
        t.exec("DELETE FROM audit_log WHERE seq = 2500").await;
        assert_eq!(broken(&t).await.map(|b| b.0), Some(2500), "{}", t.kind());

        // A record removed from the middle.
        t.exec("DELETE FROM audit_log WHERE seq = 1700").await;
        let (seq, what) = broken(&t).await.unwrap();
        assert_eq!(seq, 1700, "{}", t.kind());
        assert!(what.contains("missing"), "{}: {what}", t.kind());
    }
}

#[tokio::test]
async fn the_first_records_cannot_be_removed_unnoticed() {
    for t in backends().await {
        append(&t, 30, Duration::minutes(1)).await;
        t.exec("DELETE FROM audit_log WHERE seq <= 3").await;
        let (seq, what) = broken(&t).await.unwrap();
        assert_eq!(seq, 4, "{}: {what}", t.kind());
    }
}

#[tokio::test]
async fn checkpoints_signed_with_another_key_do_not_count() {
    for t in backends().await {
        append(&t, 1_000, Duration::seconds(1)).await;
        assert_eq!(broken(&t).await, None);
        let other = otv_store::connect(&t.url, Keys::generate()).await.unwrap();
        let (seq, what) = other.audit_verify().await.unwrap().first_broken.unwrap();
        assert_eq!(seq, 1000, "{}", t.kind());
        assert!(what.contains("another key"), "{}: {what}", t.kind());
    }
}

#[tokio::test]
async fn purging_old_records_keeps_the_rest_verifiable() {
    for t in backends().await {
        // 2,500 events two days apart: 2015 to mid-2028.
        let step = Duration::days(2);
        append(&t, 2_500, step).await;
        let cutoff: DateTime<Utc> = "2021-06-01T00:00:00Z".parse().unwrap();
        let first_kept = (1..=2_500)
            .find(|&i| start() + step * i as i32 >= cutoff)
            .unwrap();
        assert!(first_kept > 1_000 && first_kept < 2_000, "{first_kept}");

        assert_eq!(
            t.store.audit_purge(cutoff).await.unwrap(),
            1_000,
            "{}: up to the checkpoint at 1000",
            t.kind()
        );
        let report = t.store.audit_verify().await.unwrap();
        assert_eq!(report.first_broken, None, "{}", t.kind());
        assert_eq!(report.records, 1_500, "{}", t.kind());
        assert_eq!(
            t.int("SELECT min(seq) FROM audit_log").await,
            1_001,
            "{}",
            t.kind()
        );
        assert!(
            t.int("SELECT min(seq) FROM audit_log").await <= first_kept,
            "{}: a newer record went",
            t.kind()
        );
        assert_eq!(
            t.int("SELECT max(seq) FROM audit_log").await,
            2_500,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.stats().await.unwrap().audit_records,
            1_500,
            "{}",
            t.kind()
        );

        // Nothing more to purge for the same cutoff; the chain goes on from where it was.
        assert_eq!(
            t.store.audit_purge(cutoff).await.unwrap(),
            0,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.audit(&event(2_501, Utc::now())).await.unwrap(),
            2_501,
            "{}",
            t.kind()
        );
        assert_eq!(broken(&t).await, None, "{}", t.kind());

        // The anchor checkpoint is what lets the rest verify: without it the start is unproven.
        t.exec("DELETE FROM audit_checkpoints WHERE seq = 1000")
            .await;
        assert_eq!(broken(&t).await.map(|b| b.0), Some(1_001), "{}", t.kind());
    }
}

#[tokio::test]
async fn purge_spares_a_newer_record_even_when_times_are_out_of_order() {
    for t in backends().await {
        append(&t, 1_200, Duration::hours(1)).await;
        // Record 500 arrived late with a time after the cutoff; records before the checkpoint
        // at 1000 are otherwise all older.
        let late = "2030-01-01 00:00:00";
        match t.kind() {
            "sqlite" => {
                t.exec("UPDATE audit_log SET at = 1893456000000000 WHERE seq = 500")
                    .await
            }
            _ => {
                t.exec(&format!(
                    "UPDATE audit_log SET at = '{late}+00' WHERE seq = 500"
                ))
                .await
            }
        };
        let cutoff: DateTime<Utc> = "2029-01-01T00:00:00Z".parse().unwrap();
        // No checkpoint below 500, so nothing may go.
        assert_eq!(
            t.store.audit_purge(cutoff).await.unwrap(),
            0,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.stats().await.unwrap().audit_records,
            1_200,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn purging_everything_up_to_a_checkpoint_at_the_head_still_verifies() {
    for t in backends().await {
        append(&t, 50, Duration::days(1)).await;
        assert_eq!(t.store.audit_checkpoint().await.unwrap(), Some(50));
        assert_eq!(
            t.store
                .audit_purge("2030-01-01T00:00:00Z".parse().unwrap())
                .await
                .unwrap(),
            50,
            "{}",
            t.kind()
        );
        let report = t.store.audit_verify().await.unwrap();
        assert_eq!(
            (report.records, report.checkpoints, report.first_broken),
            (0, 1, None),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.audit(&event(51, Utc::now())).await.unwrap(),
            51,
            "{}",
            t.kind()
        );
        assert_eq!(broken(&t).await, None, "{}", t.kind());
    }
}

/// Records appended at the same time are committed together (group commit) and still form one
/// chain: every caller gets its own sequence number, none is lost, checkpoints fall where they
/// should, and the whole log verifies.
#[tokio::test]
async fn concurrent_appends_form_one_verifiable_chain() {
    for t in backends().await {
        let appends = (1..=2500).map(|i| {
            let store = t.store.clone();
            tokio::spawn(async move { store.audit(&event(i, start())).await.unwrap() })
        });
        let mut seqs = Vec::new();
        for a in appends.collect::<Vec<_>>() {
            seqs.push(a.await.unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=2500).collect::<Vec<_>>(), "{}", t.kind());
        let report = t.store.audit_verify().await.unwrap();
        assert_eq!(report.records, 2500, "{}", t.kind());
        assert_eq!(report.checkpoints, 2, "{}: at 1000 and 2000", t.kind());
        assert_eq!(report.first_broken, None, "{}", t.kind());
    }
}
