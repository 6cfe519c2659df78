//! Pairing codes (koppelcodes) and guardian links in the store, on every backend: a code is
//! kept only as a keyed tag, works once and until it expires, a new one replaces the old one,
//! wrong codes are counted and paused, links are only their guardian's, and every step is in the
//! audit chain.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test guardian_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use aws_lc_rs::digest;
use chrono::{Duration, Utc};
use otv_store::{AuditEvent, CitizenDetails, PairingLimit, Redemption};
use support::{backends, bsn, contains};

fn event(name: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        event: name.into(),
        actor: "citizen".into(),
        channel: Some("portal".into()),
        ..Default::default()
    }
}

const CODE: &str = "K7MP-4XRT";

#[tokio::test]
async fn a_code_is_kept_only_as_a_keyed_tag_and_works_once() {
    for t in backends().await {
        let (child, parent) = (bsn(1), bsn(2));
        let s = &t.store;
        s.upsert_citizen(
            &child,
            &CitizenDetails {
                name: Some("Sam".into()),
                birth_date: Some("2012-03-04".parse().unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let now = Utc::now();
        let expires = now + Duration::days(7);
        assert!(
            s.issue_pairing_code(&child, CODE, expires, &event("guardian-code-issued"))
                .await
                .unwrap()
        );
        let status = s.pairing_code_status(&child, now).await.unwrap().unwrap();
        assert_eq!(
            status.expires_at.timestamp_micros(),
            expires.timestamp_micros(),
            "{}",
            t.kind()
        );
        assert!(s.pairing_code_status(&parent, now).await.unwrap().is_none());

        // At rest: neither the code nor its plain SHA-256 (which could be reversed by trying
        // every code).
        let stored = t.bytes("SELECT code_tag FROM guardian_pairing_codes").await;
        let plain = digest::digest(&digest::SHA256, CODE.as_bytes());
        assert_ne!(stored, plain.as_ref(), "{}", t.kind());
        assert!(!contains(&stored, CODE.as_bytes()));
        for f in t.sqlite_files() {
            assert!(!contains(&std::fs::read(f).unwrap(), CODE.as_bytes()));
        }

        let limit = PairingLimit::default();
        let wrong = s
            .redeem_pairing_code(
                &parent,
                "AAAA-AAAA",
                now,
                &limit,
                &event("guardian-pairing"),
            )
            .await
            .unwrap();
        assert_eq!(wrong, Redemption::Unknown, "{}", t.kind());
        // The child cannot confirm their own answers.
        let own = s
            .redeem_pairing_code(&child, CODE, now, &limit, &event("guardian-pairing"))
            .await
            .unwrap();
        assert_eq!(own, Redemption::OwnCode, "{}", t.kind());
        let Redemption::Paired { link } = s
            .redeem_pairing_code(&parent, CODE, now, &limit, &event("guardian-pairing"))
            .await
            .unwrap()
        else {
            panic!("the right code pairs ({})", t.kind());
        };
        assert!(s.pairing_code_status(&child, now).await.unwrap().is_none());
        let again = s
            .redeem_pairing_code(&parent, CODE, now, &limit, &event("guardian-pairing"))
            .await
            .unwrap();
        assert_eq!(again, Redemption::Used, "{}", t.kind());

        // The link is the parent's, and only the parent's.
        let children = s.linked_children(&parent).await.unwrap();
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].link, link);
        assert_eq!(children[0].bsn, child);
        assert_eq!(children[0].name.as_deref(), Some("Sam"));
        assert_eq!(children[0].birth_date, Some("2012-03-04".parse().unwrap()));
        assert_eq!(
            s.linked_child(&parent, link).await.unwrap(),
            Some(children[0].clone())
        );
        assert_eq!(s.linked_child(&bsn(3), link).await.unwrap(), None);
        assert_eq!(s.linked_child(&child, link).await.unwrap(), None);
        assert!(s.linked_children(&bsn(3)).await.unwrap().is_empty());

        // Pairing again with a new code keeps the one link.
        s.issue_pairing_code(&child, "PQRS-2345", now + Duration::days(7), &event("x"))
            .await
            .unwrap();
        let second = s
            .redeem_pairing_code(
                &parent,
                "PQRS-2345",
                now,
                &limit,
                &event("guardian-pairing"),
            )
            .await
            .unwrap();
        assert_eq!(second, Redemption::Paired { link }, "{}", t.kind());

        // Every attempt is in the chain, with its outcome and (when known) the child.
        assert_eq!(
            t.int("SELECT count(*) FROM audit_log WHERE event = 'guardian-pairing'")
                .await,
            5
        );
        let child_ref = s.patient_reference(&child);
        assert_eq!(
            t.int(&format!(
                "SELECT count(*) FROM audit_log WHERE event = 'guardian-pairing' AND decision = 'paired' \
                 AND patient = '{child_ref}'"
            ))
            .await,
            2
        );
        assert_eq!(
            t.int("SELECT count(*) FROM audit_log WHERE event = 'guardian-pairing' AND decision = 'unknown-code' AND patient IS NULL")
                .await,
            1
        );
        assert_eq!(
            t.int("SELECT count(*) FROM audit_log WHERE event = 'guardian-code-issued'")
                .await,
            1
        );
        assert!(s.audit_verify().await.unwrap().first_broken.is_none());
    }
}

#[tokio::test]
async fn codes_expire_and_a_new_code_replaces_the_old_one() {
    for t in backends().await {
        let (child, parent) = (bsn(11), bsn(12));
        let s = &t.store;
        let now = Utc::now();
        let limit = PairingLimit::default();
        s.issue_pairing_code(&child, "AAAA-BBBB", now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        s.issue_pairing_code(&child, "CCCC-DDDD", now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        assert_eq!(
            t.int("SELECT count(*) FROM guardian_pairing_codes").await,
            1,
            "only the newest code is kept ({})",
            t.kind()
        );
        let old = s
            .redeem_pairing_code(&parent, "AAAA-BBBB", now, &limit, &event("p"))
            .await
            .unwrap();
        assert_eq!(old, Redemption::Unknown, "{}", t.kind());
        // Eight days later the code has expired.
        let late = s
            .redeem_pairing_code(
                &parent,
                "CCCC-DDDD",
                now + Duration::days(8),
                &limit,
                &event("p"),
            )
            .await
            .unwrap();
        assert_eq!(late, Redemption::Expired, "{}", t.kind());
        assert!(
            s.pairing_code_status(&child, now + Duration::days(8))
                .await
                .unwrap()
                .is_none()
        );
        assert!(s.linked_children(&parent).await.unwrap().is_empty());

        // A code another child holds is not handed out twice.
        s.issue_pairing_code(&bsn(13), "EEEE-FFFF", now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        let taken = s
            .issue_pairing_code(&child, "EEEE-FFFF", now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        assert!(!taken, "{}", t.kind());
    }
}

#[tokio::test]
async fn too_many_wrong_codes_pause_the_person_who_typed_them() {
    for t in backends().await {
        let (child, parent, other) = (bsn(21), bsn(22), bsn(23));
        let s = &t.store;
        let now = Utc::now();
        let limit = PairingLimit {
            max_failures: 3,
            window: Duration::minutes(15),
        };
        s.issue_pairing_code(&child, CODE, now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        for i in 0..3 {
            let r = s
                .redeem_pairing_code(
                    &parent,
                    &format!("WRNG-000{i}"),
                    now + Duration::seconds(i),
                    &limit,
                    &event("p"),
                )
                .await
                .unwrap();
            assert_eq!(r, Redemption::Unknown);
        }
        // Now even the right code is not checked, and the code stays usable.
        let blocked = s
            .redeem_pairing_code(
                &parent,
                CODE,
                now + Duration::minutes(1),
                &limit,
                &event("p"),
            )
            .await
            .unwrap();
        assert_eq!(
            blocked,
            Redemption::Blocked {
                until: now + Duration::minutes(15)
            }
            .clone_with_micros(),
            "{}",
            t.kind()
        );
        assert!(s.pairing_code_status(&child, now).await.unwrap().is_some());
        // Hammering on is refused too, and audited only once.
        let still = s
            .redeem_pairing_code(
                &parent,
                CODE,
                now + Duration::minutes(2),
                &limit,
                &event("p"),
            )
            .await
            .unwrap();
        assert!(matches!(still, Redemption::Blocked { .. }), "{}", t.kind());
        // Someone else is not paused by it.
        assert_eq!(
            s.redeem_pairing_code(&other, "WRNG-1111", now, &limit, &event("p"))
                .await
                .unwrap(),
            Redemption::Unknown
        );
        // After the window the parent may try again.
        let later = s
            .redeem_pairing_code(
                &parent,
                CODE,
                now + Duration::minutes(16),
                &limit,
                &event("p"),
            )
            .await
            .unwrap();
        assert!(matches!(later, Redemption::Paired { .. }), "{}", t.kind());
        assert_eq!(
            t.int("SELECT count(*) FROM audit_log WHERE decision = 'blocked'")
                .await,
            1
        );
    }
}

/// Times come back from the store cut to microseconds.
trait Micros {
    fn clone_with_micros(&self) -> Self;
}

impl Micros for Redemption {
    fn clone_with_micros(&self) -> Self {
        match self {
            Redemption::Blocked { until } => Redemption::Blocked {
                until: chrono::DateTime::from_timestamp_micros(until.timestamp_micros()).unwrap(),
            },
            other => other.clone(),
        }
    }
}

#[tokio::test]
async fn deleting_a_profile_removes_its_codes_and_links() {
    for t in backends().await {
        let (child, parent, other_child) = (bsn(31), bsn(32), bsn(33));
        let s = &t.store;
        let now = Utc::now();
        let limit = PairingLimit::default();
        for (c, code) in [(&child, "AAAA-2222"), (&other_child, "BBBB-3333")] {
            s.issue_pairing_code(c, code, now + Duration::days(7), &event("i"))
                .await
                .unwrap();
            let r = s
                .redeem_pairing_code(&parent, code, now, &limit, &event("p"))
                .await
                .unwrap();
            assert!(matches!(r, Redemption::Paired { .. }), "{}", t.kind());
        }
        s.issue_pairing_code(&child, "CCCC-4444", now + Duration::days(7), &event("i"))
            .await
            .unwrap();
        assert_eq!(s.linked_children(&parent).await.unwrap().len(), 2);

        // The child goes: their code and their link go with them.
        s.delete_citizen(&child, &event("profile-deleted"))
            .await
            .unwrap();
        let left = s.linked_children(&parent).await.unwrap();
        assert_eq!(left.len(), 1, "{}", t.kind());
        assert_eq!(left[0].bsn, other_child);
        let unknown = s
            .redeem_pairing_code(&parent, "CCCC-4444", now, &limit, &event("p"))
            .await
            .unwrap();
        assert_eq!(unknown, Redemption::Unknown, "{}", t.kind());

        // The parent goes: no link and no trace of them in the codes remains.
        s.delete_citizen(&parent, &event("profile-deleted"))
            .await
            .unwrap();
        assert_eq!(t.int("SELECT count(*) FROM guardian_links").await, 0);
        assert_eq!(
            t.int("SELECT count(*) FROM guardian_pairing_codes WHERE used_by IS NOT NULL")
                .await,
            0
        );
        assert_eq!(
            t.int("SELECT count(*) FROM guardian_pairing_failures")
                .await,
            0
        );
        assert!(s.audit_verify().await.unwrap().first_broken.is_none());
    }
}
