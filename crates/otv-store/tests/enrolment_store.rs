//! Enrolment tokens used up (PRODUCT.md §8: "a replayed `jti` is refused") on every backend: a
//! `jti` is used once, two uses at the same moment cannot both succeed, and rows of tokens
//! expired long ago are removed when another token is used.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test enrolment_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{DateTime, Duration, Utc};
use otv_core::Ura;
use support::backends;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_used_once() {
    let ura = Ura::parse("00000001").unwrap();
    let now = at("2026-11-30T10:00:00Z");
    let exp = now + Duration::minutes(15);
    for t in backends().await {
        assert!(!t.store.enrolment_token_used("jti-1").await.unwrap());
        assert!(
            t.store
                .use_enrolment_token("jti-1", &ura, exp, now)
                .await
                .unwrap()
        );
        assert!(t.store.enrolment_token_used("jti-1").await.unwrap());
        assert!(
            !t.store
                .use_enrolment_token("jti-1", &ura, exp, now + Duration::seconds(1))
                .await
                .unwrap(),
            "{}: a replay",
            t.kind()
        );
        // Another token is its own.
        assert!(
            t.store
                .use_enrolment_token("jti-2", &ura, exp, now)
                .await
                .unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_uses_at_the_same_moment_cannot_both_succeed() {
    let ura = Ura::parse("00000001").unwrap();
    let now = at("2026-11-30T10:00:00Z");
    let exp = now + Duration::minutes(15);
    for t in backends().await {
        for round in 0..5 {
            let jti = format!("race-{round}");
            let uses = (0..8).map(|_| {
                let (store, ura, jti) = (t.store.clone(), ura.clone(), jti.clone());
                tokio::spawn(async move { store.use_enrolment_token(&jti, &ura, exp, now).await })
            });
            let mut first = 0;
            for u in uses {
                if u.await.unwrap().unwrap() {
                    first += 1;
                }
            }
            assert_eq!(first, 1, "{}: round {round}", t.kind());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expired_more_than_a_day_ago_are_forgotten_when_another_is_used() {
    let ura = Ura::parse("00000001").unwrap();
    let now = at("2026-11-30T10:00:00Z");
    for t in backends().await {
        let exp = now + Duration::minutes(15);
        t.store
            .use_enrolment_token("old", &ura, exp, now)
            .await
            .unwrap();
        t.store
            .use_enrolment_token("recent", &ura, exp, now)
            .await
            .unwrap();
        // A day after "old" expired it is kept (clocks may disagree a little) ...
        let later = exp + Duration::hours(24);
        t.store
            .use_enrolment_token("a", &ura, later + Duration::minutes(15), later)
            .await
            .unwrap();
        assert!(t.store.enrolment_token_used("old").await.unwrap());
        // ... and after that it goes.
        let later = later + Duration::seconds(1);
        t.store
            .use_enrolment_token("b", &ura, later + Duration::minutes(15), later)
            .await
            .unwrap();
        assert!(
            !t.store.enrolment_token_used("old").await.unwrap(),
            "{}",
            t.kind()
        );
        assert!(!t.store.enrolment_token_used("recent").await.unwrap());
        assert!(t.store.enrolment_token_used("a").await.unwrap());
        assert_eq!(t.int("SELECT count(*) FROM enrolment_tokens_used").await, 2);
    }
}
