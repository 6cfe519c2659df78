//! Hand-offs (the assisted portal's one-time links, PRODUCT.md §8) on every backend: only the
//! token's hash is stored, a link opens once and only before it expires, two opens at the same
//! moment cannot both succeed, and the session it started carries its context.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test handoff_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{DateTime, Duration, Utc};
use otv_core::{RoleCode, Ura, UziNumber};
use otv_store::{AuditEvent, NewHandOff};
use support::{backends, bsn, contains};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

struct Ids {
    ura: Ura,
    uzi: UziNumber,
    role: RoleCode,
    mandated: UziNumber,
}

fn ids() -> Ids {
    Ids {
        ura: Ura::parse("00000001").unwrap(),
        uzi: UziNumber::parse("900010001").unwrap(),
        role: RoleCode::parse("01.015").unwrap(),
        mandated: UziNumber::parse("900010002").unwrap(),
    }
}

fn audit(now: DateTime<Utc>) -> AuditEvent {
    AuditEvent {
        at: now,
        event: "hand-off-created".into(),
        actor: "connector:his-1".into(),
        channel: Some("dossierhoudersknop".into()),
        details: serde_json::json!({ "mode": "dossierhoudersknop" }),
        ..AuditEvent::default()
    }
}

fn new_hand_off<'a>(
    ids: &'a Ids,
    patient: &'a otv_core::Bsn,
    token: u8,
    created: DateTime<Utc>,
) -> NewHandOff<'a> {
    NewHandOff {
        token_sha256: [token; 32],
        bsn: patient,
        ura: &ids.ura,
        uzi: &ids.uzi,
        role: &ids.role,
        mandated: Some(&ids.mandated),
        mode: "dossierhoudersknop",
        created_at: created,
        expires_at: created + Duration::minutes(5),
    }
}

#[tokio::test]
async fn a_hand_off_opens_once_and_its_session_carries_the_professional_and_the_patient() {
    for t in backends().await {
        let ids = ids();
        let patient = bsn(1);
        let made = at("2026-11-30T10:00:00Z");
        let id = t
            .store
            .create_hand_off(&new_hand_off(&ids, &patient, 7, made), &audit(made))
            .await
            .unwrap();
        let opened = made + Duration::minutes(1);
        let taken = t
            .store
            .take_hand_off(&[7; 32], &[70; 32], opened)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{}: an unused link opens", t.kind()));
        assert_eq!(taken.id, id);
        assert_eq!(taken.bsn, patient);
        assert_eq!(taken.ura, ids.ura);
        assert_eq!(taken.uzi, ids.uzi);
        assert_eq!(taken.role, ids.role);
        assert_eq!(taken.mandated.as_ref(), Some(&ids.mandated));
        assert_eq!(taken.mode, "dossierhoudersknop");
        assert_eq!(taken.expires_at, made + Duration::minutes(5));
        assert_eq!(taken.used_at, Some(opened), "{}", t.kind());
        assert!(
            t.store
                .take_hand_off(&[7; 32], &[71; 32], opened)
                .await
                .unwrap()
                .is_none(),
            "{}: a used link does not open again",
            t.kind()
        );
        assert!(
            t.store
                .take_hand_off(&[8; 32], &[72; 32], opened)
                .await
                .unwrap()
                .is_none(),
            "an unknown link opens nothing"
        );
        let context = t
            .store
            .hand_off_of_session(&[70; 32])
            .await
            .unwrap()
            .expect("the session started by the link");
        assert_eq!(context, taken);
        assert!(
            t.store
                .hand_off_of_session(&[71; 32])
                .await
                .unwrap()
                .is_none(),
            "the refused second open started no assisted session"
        );
        // The audit record names the hand-off and the patient by pseudonym only.
        let detail = t
            .text("SELECT details FROM audit_log WHERE event = 'hand-off-created'")
            .await
            .unwrap();
        assert!(detail.contains(&id.to_string()), "{detail}");
        assert!(!detail.contains(patient.expose()));
    }
}

#[tokio::test]
async fn a_hand_off_expires_after_its_lifetime() {
    for t in backends().await {
        let ids = ids();
        let patient = bsn(2);
        let made = at("2026-11-30T10:00:00Z");
        t.store
            .create_hand_off(&new_hand_off(&ids, &patient, 1, made), &audit(made))
            .await
            .unwrap();
        t.store
            .create_hand_off(&new_hand_off(&ids, &patient, 2, made), &audit(made))
            .await
            .unwrap();
        let at_expiry = made + Duration::minutes(5);
        assert!(
            t.store
                .take_hand_off(&[1; 32], &[10; 32], at_expiry)
                .await
                .unwrap()
                .is_none(),
            "{}: at five minutes the link no longer opens",
            t.kind()
        );
        let just_before = at_expiry - Duration::microseconds(1);
        assert!(
            t.store
                .take_hand_off(&[2; 32], &[20; 32], just_before)
                .await
                .unwrap()
                .is_some(),
            "{}: just before, it does",
            t.kind()
        );
    }
}

#[tokio::test]
async fn two_opens_of_one_link_at_the_same_moment_start_one_session() {
    for t in backends().await {
        let ids = ids();
        let patient = bsn(3);
        let made = at("2026-11-30T10:00:00Z");
        for round in 0..10u8 {
            t.store
                .create_hand_off(&new_hand_off(&ids, &patient, round, made), &audit(made))
                .await
                .unwrap();
            let opened = made + Duration::seconds(30);
            let (token, first, second) = ([round; 32], [100 + round; 32], [200 + round; 32]);
            let (a, b) = tokio::join!(
                t.store.take_hand_off(&token, &first, opened),
                t.store.take_hand_off(&token, &second, opened),
            );
            let opened: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
            assert_eq!(opened.len(), 1, "{} round {round}", t.kind());
        }
    }
}

#[tokio::test]
async fn only_the_hash_of_the_link_is_stored_and_no_bsn() {
    for t in backends().await {
        let ids = ids();
        let patient = bsn(4);
        let made = at("2026-11-30T10:00:00Z");
        t.store
            .create_hand_off(&new_hand_off(&ids, &patient, 9, made), &audit(made))
            .await
            .unwrap();
        let sql = match t.kind() {
            "sqlite" => {
                "SELECT CAST(token_sha256 AS BLOB) || CAST(ura AS BLOB) || CAST(uzi AS BLOB) || CAST(role AS BLOB) || CAST(mode AS BLOB) FROM hand_offs"
            }
            _ => {
                "SELECT token_sha256 || convert_to(ura || uzi || role || mode, 'UTF8') FROM hand_offs"
            }
        };
        let row = t.bytes(sql).await;
        assert!(row.starts_with(&[9; 32]));
        assert!(!contains(&row, patient.expose().as_bytes()), "{}", t.kind());
    }
}
