//! The outbox delivery engine's storage on every backend: workers claim rows with a lease, two
//! workers never get the same row, a crashed worker's rows come back when the lease ends, rows
//! of one subscription go out in the order written, failures back off and finally park the row
//! as dead, and an operator's retry makes it pending again.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test outbox_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use otv_store::{
    CitizenDetails, Failure, MAX_ATTEMPTS, NewOutboxRow, OutboxState, Store, retry_delay,
};
use support::{backends, bsn};
use uuid::Uuid;

const LEASE: Duration = Duration::from_secs(60);

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn citizen(store: &Store, i: u32) -> Uuid {
    store
        .upsert_citizen(&bsn(i), &CitizenDetails::default())
        .await
        .unwrap()
}

fn notification(key: &str, n: u32) -> NewOutboxRow {
    NewOutboxRow {
        id: Uuid::new_v4(),
        kind: "fhir-notification".into(),
        payload: format!("{{\"n\":{n}}}"),
        ordering_key: Some(key.into()),
    }
}

/// Writes `rows` through a fan-out of a fresh source row (as the worker does).
async fn fan_out(store: &Store, citizen: Uuid, rows: &[NewOutboxRow], now: DateTime<Utc>) {
    let source = store
        .enqueue_outbox(citizen, "mail-test-source", "{}", now)
        .await
        .unwrap();
    let claimed = store
        .claim_outbox("fanner", now, LEASE, 1000)
        .await
        .unwrap();
    assert!(claimed.iter().any(|r| r.id == source));
    assert!(
        store
            .fan_out_outbox(source, "fanner", rows, now)
            .await
            .unwrap()
    );
    for r in claimed.iter().filter(|r| r.id != source) {
        store.release_outbox(r.id, "fanner", now).await.unwrap();
    }
}

#[tokio::test]
async fn a_claimed_row_is_not_claimed_again_until_its_lease_ends() {
    for t in backends().await {
        let s = &t.store;
        let now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 1).await;
        let id = s
            .enqueue_outbox(c, "mail-profile-changed", "{\"changed\":[]}", now)
            .await
            .unwrap();

        let first = s.claim_outbox("node-a", now, LEASE, 10).await.unwrap();
        assert_eq!(first.len(), 1, "{}", t.kind());
        assert_eq!(first[0].id, id);
        assert_eq!(first[0].attempts, 1);
        assert_eq!(first[0].first_attempt_at, Some(now));
        let during = now + chrono::Duration::seconds(59);
        assert!(
            s.claim_outbox("node-b", during, LEASE, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}: claimed twice during the lease",
            t.kind()
        );

        // node-a died: after the lease node-b gets the row, and node-a can no longer complete it.
        let after = now + chrono::Duration::seconds(61);
        let again = s.claim_outbox("node-b", after, LEASE, 10).await.unwrap();
        assert_eq!(again.len(), 1, "{}", t.kind());
        assert_eq!(again[0].attempts, 2);
        assert_eq!(
            again[0].first_attempt_at,
            Some(now),
            "the first attempt stays"
        );
        assert!(!s.complete_outbox(id, "node-a", after).await.unwrap());
        assert!(s.complete_outbox(id, "node-b", after).await.unwrap());
        let row = s.outbox_row(id).await.unwrap().unwrap();
        assert_eq!(row.state, OutboxState::Delivered);
        assert_eq!(row.delivered_at, Some(after));
        assert!(
            s.claim_outbox("node-c", after + chrono::Duration::hours(1), LEASE, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn a_row_is_not_claimed_before_it_is_due() {
    for t in backends().await {
        let s = &t.store;
        let now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 2).await;
        s.enqueue_outbox(
            c,
            "mail-check-digest",
            "{}",
            now + chrono::Duration::hours(1),
        )
        .await
        .unwrap();
        assert!(
            s.claim_outbox("w", now, LEASE, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let status = s.outbox_status(now).await.unwrap();
        assert_eq!((status.pending, status.due), (1, 0), "{}", t.kind());
        assert_eq!(
            s.claim_outbox("w", now + chrono::Duration::hours(1), LEASE, 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn concurrent_claimers_never_get_the_same_row() {
    for t in backends().await {
        let s = &t.store;
        let now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 3).await;
        let mut ids = HashSet::new();
        for _ in 0..200 {
            ids.insert(s.enqueue_outbox(c, "mail-x", "{}", now).await.unwrap());
        }
        let mut tasks = Vec::new();
        for w in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let name = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let batch = s.claim_outbox(&name, now, LEASE, 7).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    for r in batch {
                        assert!(s.complete_outbox(r.id, &name, now).await.unwrap());
                        mine.push(r.id);
                    }
                }
            }));
        }
        let mut seen = Vec::new();
        for task in tasks {
            seen.extend(task.await.unwrap());
        }
        let distinct: HashSet<_> = seen.iter().copied().collect();
        assert_eq!(
            seen.len(),
            distinct.len(),
            "{}: a row claimed twice",
            t.kind()
        );
        assert_eq!(distinct, ids, "{}: every row delivered", t.kind());
    }
}

#[tokio::test]
async fn rows_of_one_subscription_go_out_in_the_order_written_and_others_do_not_wait() {
    for t in backends().await {
        let s = &t.store;
        let now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 4).await;
        let rows: Vec<_> = (0..3).map(|n| notification("sub-a", n)).collect();
        let other = notification("sub-b", 9);
        fan_out(
            s,
            c,
            &[
                rows[0].clone(),
                rows[1].clone(),
                rows[2].clone(),
                other.clone(),
            ],
            now,
        )
        .await;

        // Only the first of sub-a and the one of sub-b are claimable.
        let batch = s.claim_outbox("w", now, LEASE, 10).await.unwrap();
        let got: HashSet<_> = batch.iter().map(|r| r.id).collect();
        assert_eq!(got, HashSet::from([rows[0].id, other.id]), "{}", t.kind());

        // The first fails: the second still waits (in order), through the back-off too.
        let Failure::RetryAt(next) = s.fail_outbox(rows[0].id, "w", "503", now).await.unwrap()
        else {
            panic!("retried")
        };
        assert_eq!(next, now + chrono::Duration::seconds(10));
        assert!(
            s.claim_outbox("w", now + chrono::Duration::seconds(5), LEASE, 10)
                .await
                .unwrap()
                .is_empty(),
            "{}: a later row overtook the one backing off",
            t.kind()
        );
        for (i, row) in rows.iter().enumerate() {
            let when = next + chrono::Duration::seconds(i as i64);
            let batch = s.claim_outbox("w", when, LEASE, 10).await.unwrap();
            assert_eq!(
                batch.iter().map(|r| r.id).collect::<Vec<_>>(),
                vec![row.id],
                "{}: row {i}",
                t.kind()
            );
            assert!(s.complete_outbox(row.id, "w", when).await.unwrap());
        }
    }
}

#[tokio::test]
async fn failures_back_off_until_the_row_is_dead_and_an_operator_retries_it() {
    for t in backends().await {
        let s = &t.store;
        let mut now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 5).await;
        let first = notification("sub-a", 0);
        let second = notification("sub-a", 1);
        fan_out(s, c, &[first.clone(), second.clone()], now).await;
        let start = now;
        for attempt in 1..=MAX_ATTEMPTS {
            let batch = s.claim_outbox("w", now, LEASE, 10).await.unwrap();
            assert_eq!(batch.len(), 1, "{}: attempt {attempt}", t.kind());
            assert_eq!(batch[0].id, first.id);
            assert_eq!(batch[0].attempts, attempt);
            match s
                .fail_outbox(first.id, "w", "receiver answered 503", now)
                .await
                .unwrap()
            {
                Failure::RetryAt(next) => {
                    assert_eq!(
                        next - now,
                        chrono::Duration::from_std(retry_delay(attempt).unwrap()).unwrap()
                    );
                    now = next;
                }
                Failure::Dead => {
                    assert_eq!(attempt, MAX_ATTEMPTS);
                    assert!(now - start >= chrono::Duration::hours(24));
                }
                Failure::LeaseLost => panic!("lease lost"),
            }
        }
        let dead = s.dead_outbox(10).await.unwrap();
        assert_eq!(dead.len(), 1, "{}", t.kind());
        assert_eq!(dead[0].id, first.id);
        assert_eq!(dead[0].state, OutboxState::Dead);
        assert_eq!(dead[0].last_error.as_deref(), Some("receiver answered 503"));
        assert_eq!(s.outbox_status(now).await.unwrap().dead, 1);

        // A dead row does not hold up the rows after it.
        let batch = s.claim_outbox("w", now, LEASE, 10).await.unwrap();
        assert_eq!(
            batch.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![second.id]
        );
        assert!(s.complete_outbox(second.id, "w", now).await.unwrap());

        assert_eq!(s.retry_dead_outbox(Some(first.id), now).await.unwrap(), 1);
        assert!(s.dead_outbox(10).await.unwrap().is_empty());
        let batch = s.claim_outbox("w", now, LEASE, 10).await.unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0].attempts, 1,
            "a retried row starts a fresh back-off"
        );
        assert!(
            s.park_outbox(first.id, "w", "endpoint not allowed", now)
                .await
                .unwrap()
        );
        assert_eq!(s.retry_dead_outbox(None, now).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn a_fan_out_done_twice_writes_each_row_once_and_only_by_the_lease_holder() {
    for t in backends().await {
        let s = &t.store;
        let now = at("2026-01-05T10:00:00Z");
        let c = citizen(s, 6).await;
        let source = s
            .enqueue_outbox(c, "profile-changed", "{}", now)
            .await
            .unwrap();
        let row = notification("sub-a", 0);
        let claimed = s.claim_outbox("a", now, LEASE, 10).await.unwrap();
        assert_eq!(
            claimed[0].ordering_key.as_deref(),
            Some(&*format!("citizen:{c}"))
        );
        assert!(
            !s.fan_out_outbox(source, "b", std::slice::from_ref(&row), now)
                .await
                .unwrap()
        );
        assert!(
            s.fan_out_outbox(source, "a", std::slice::from_ref(&row), now)
                .await
                .unwrap()
        );
        // A second worker repeats it after a lost lease: the rows exist, nothing doubles.
        assert!(
            !s.fan_out_outbox(source, "a", std::slice::from_ref(&row), now)
                .await
                .unwrap()
        );
        let status = s.outbox_status(now).await.unwrap();
        assert_eq!((status.pending, status.delivered), (1, 1), "{}", t.kind());
    }
}
