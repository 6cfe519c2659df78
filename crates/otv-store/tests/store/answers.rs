//! Answers: one current answer per key, the replaced ones kept as history, and every change
//! written together with its audit record and outbox row.

use chrono::{DateTime, Duration, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, CategoryCode, Channel, DataCategory, Effect, Party,
    Provenance, Ura,
};
use otv_store::{AuditEvent, Keys};

use crate::support::{backends, bsn};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn answer(effect: Effect, consulter: Party, recorded: DateTime<Utc>) -> Answer {
    Answer {
        key: AnswerKey {
            holder: Party::Category(CategoryCode::parse("RPZAC001").unwrap()),
            data_category: DataCategory::parse("GGC002").unwrap(),
            consulter,
        },
        effect,
        valid_from: recorded,
        valid_until: None,
        state: AnswerState::Active,
        provenance: Provenance {
            recorded_at: recorded,
            channel: Channel::Portal,
            actor: Actor::Citizen,
            catalogue_version: "2024.1".into(),
        },
    }
}

fn event() -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        event: "profile-change".into(),
        actor: "citizen".into(),
        channel: Some("portal".into()),
        ..Default::default()
    }
}

fn category(code: &str) -> Party {
    Party::Category(CategoryCode::parse(code).unwrap())
}

#[tokio::test]
async fn a_new_answer_replaces_the_current_one_and_history_keeps_both_in_order() {
    for t in backends().await {
        let patient = bsn(1);
        let permit = answer(
            Effect::Permit,
            category("RPZAC002"),
            at("2024-03-01T10:00:00Z"),
        );
        let deny = answer(
            Effect::Deny,
            category("RPZAC002"),
            at("2024-03-02T10:00:00Z"),
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&permit), &event())
            .await
            .unwrap();
        assert_eq!(
            t.store.profile(&patient).await.unwrap(),
            vec![permit.clone()],
            "{}",
            t.kind()
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&deny), &event())
            .await
            .unwrap();

        assert_eq!(
            t.store.profile(&patient).await.unwrap(),
            vec![deny.clone()],
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.answer_history(&patient).await.unwrap(),
            vec![permit.clone(), deny.clone()],
            "{}",
            t.kind()
        );
        assert_eq!(
            t.int("SELECT count(*) FROM answers WHERE superseded_at IS NOT NULL")
                .await,
            1,
            "{}",
            t.kind()
        );

        // History is the order of storing, not of the (caller-given) recording time: a migrated
        // answer dated earlier still comes last and is current.
        let migrated = Answer {
            provenance: Provenance {
                channel: Channel::Migration,
                ..deny.provenance.clone()
            },
            ..answer(
                Effect::Permit,
                category("RPZAC002"),
                at("2020-01-01T00:00:00Z"),
            )
        };
        t.store
            .record_answers(&patient, std::slice::from_ref(&migrated), &event())
            .await
            .unwrap();
        let history = t.store.answer_history(&patient).await.unwrap();
        assert_eq!(history.last(), Some(&migrated), "{}", t.kind());
        assert_eq!(
            t.store.profile(&patient).await.unwrap(),
            vec![migrated],
            "{}",
            t.kind()
        );

        // Another key, another citizen: untouched.
        let other = answer(
            Effect::Permit,
            Party::Provider(Ura::parse("00000123").unwrap()),
            at("2024-03-03T00:00:00Z"),
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&other), &event())
            .await
            .unwrap();
        assert_eq!(
            t.store.profile(&patient).await.unwrap().len(),
            2,
            "{}",
            t.kind()
        );
        assert!(
            t.store.profile(&bsn(2)).await.unwrap().is_empty(),
            "{}",
            t.kind()
        );
        assert!(
            t.store.answer_history(&bsn(2)).await.unwrap().is_empty(),
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn answers_round_trip_every_field_and_times_to_the_microsecond() {
    for t in backends().await {
        let patient = bsn(3);
        let recorded: DateTime<Utc> = at("2024-05-06T07:08:09.123456789Z");
        let full = Answer {
            valid_until: Some(recorded + Duration::hours(72)),
            state: AnswerState::PendingGuardian,
            provenance: Provenance {
                recorded_at: recorded,
                channel: Channel::Raadplegersknop,
                actor: Actor::Provider {
                    ura: Ura::parse("00000456").unwrap(),
                    uzi: Some("900000001".parse().unwrap()),
                    role: Some("01.015".parse().unwrap()),
                    mandated: None,
                },
                catalogue_version: "2024.2".into(),
            },
            ..answer(
                Effect::Permit,
                Party::Provider(Ura::parse("00000789").unwrap()),
                recorded,
            )
        };
        t.store
            .record_answers(&patient, std::slice::from_ref(&full), &event())
            .await
            .unwrap();
        let got = t.store.profile(&patient).await.unwrap();
        let cut = |d: DateTime<Utc>| d - Duration::nanoseconds(789);
        let expected = Answer {
            valid_from: cut(full.valid_from),
            valid_until: full.valid_until.map(cut),
            provenance: Provenance {
                recorded_at: cut(recorded),
                ..full.provenance.clone()
            },
            ..full.clone()
        };
        assert_eq!(got, vec![expected], "{}", t.kind());
    }
}

#[tokio::test]
async fn a_change_writes_one_audit_record_and_one_outbox_row_in_the_same_transaction() {
    for t in backends().await {
        let patient = bsn(4);
        let before = t.store.stats().await.unwrap();
        let pending = t.store.outbox_pending().await.unwrap();
        let two = [
            answer(
                Effect::Permit,
                category("RPZAC002"),
                at("2024-01-01T00:00:00Z"),
            ),
            answer(
                Effect::Deny,
                category("RPZAC003"),
                at("2024-01-01T00:00:00Z"),
            ),
        ];
        t.store
            .record_answers(&patient, &two, &event())
            .await
            .unwrap();
        let after = t.store.stats().await.unwrap();
        assert_eq!(
            after.audit_records,
            before.audit_records + 1,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.outbox_pending().await.unwrap(),
            pending + 1,
            "{}",
            t.kind()
        );
        assert_eq!(after.answers, before.answers + 2, "{}", t.kind());
        assert_eq!(after.citizens, before.citizens + 1, "{}", t.kind());

        // The audit record names the patient by pseudonym; the outbox row names the keys and
        // the audit record, and no BSN.
        let pseudonym = t
            .text(&format!(
                "SELECT {} FROM citizens",
                t.hex_sql("bsn_pseudonym")
            ))
            .await
            .unwrap();
        let seq = t.int("SELECT max(seq) FROM audit_log").await;
        assert_eq!(
            t.text(&format!("SELECT patient FROM audit_log WHERE seq = {seq}"))
                .await,
            Some(pseudonym.clone())
        );
        let payload: serde_json::Value =
            serde_json::from_str(&t.text("SELECT payload FROM outbox").await.unwrap()).unwrap();
        assert_eq!(payload["audit_seq"], seq, "{}", t.kind());
        assert_eq!(
            payload["changed"].as_array().unwrap().len(),
            2,
            "{}",
            t.kind()
        );
        assert_eq!(
            payload["changed"][0]["consulter"]["category"],
            "RPZAC002",
            "{}",
            t.kind()
        );
        assert!(
            !payload.to_string().contains(patient.expose()),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.text("SELECT kind FROM outbox").await.as_deref(),
            Some("profile-changed")
        );

        // A given patient stays as given.
        let mut named = event();
        named.patient = Some("given".into());
        t.store
            .record_answers(&patient, &two[..1], &named)
            .await
            .unwrap();
        assert_eq!(
            t.text("SELECT patient FROM audit_log ORDER BY seq DESC LIMIT 1")
                .await
                .as_deref(),
            Some("given")
        );

        // If any part fails, nothing is written: without the outbox the whole change rolls back.
        let profile = t.store.profile(&patient).await.unwrap();
        let stats = t.store.stats().await.unwrap();
        t.exec("DROP TABLE outbox").await;
        let replacement = [answer(
            Effect::Deny,
            category("RPZAC002"),
            at("2024-06-01T00:00:00Z"),
        )];
        assert!(
            t.store
                .record_answers(&patient, &replacement, &event())
                .await
                .is_err(),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.profile(&patient).await.unwrap(),
            profile,
            "{}",
            t.kind()
        );
        let now = t.store.stats().await.unwrap();
        assert_eq!(
            (now.answers, now.audit_records),
            (stats.answers, stats.audit_records),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.audit_verify().await.unwrap().first_broken,
            None,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn recording_no_answers_still_audits_but_notifies_nobody() {
    for t in backends().await {
        let pending = t.store.outbox_pending().await.unwrap();
        t.store
            .record_answers(&bsn(5), &[], &event())
            .await
            .unwrap();
        assert!(t.store.profile(&bsn(5)).await.unwrap().is_empty());
        assert_eq!(
            t.store.outbox_pending().await.unwrap(),
            pending,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.stats().await.unwrap().audit_records,
            1,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn two_answers_for_one_key_in_one_call_leave_the_last_current() {
    for t in backends().await {
        let first = answer(
            Effect::Permit,
            category("RPZAC002"),
            at("2024-01-01T00:00:00Z"),
        );
        let second = answer(
            Effect::Deny,
            category("RPZAC002"),
            at("2024-01-01T00:00:01Z"),
        );
        t.store
            .record_answers(&bsn(6), &[first.clone(), second.clone()], &event())
            .await
            .unwrap();
        assert_eq!(
            t.store.profile(&bsn(6)).await.unwrap(),
            vec![second.clone()],
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.answer_history(&bsn(6)).await.unwrap(),
            vec![first, second],
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn concurrent_changes_to_one_citizen_all_apply() {
    for t in backends().await {
        let patient = bsn(7);
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = t.store.clone();
            let patient = patient.clone();
            let effect = if i % 2 == 0 {
                Effect::Permit
            } else {
                Effect::Deny
            };
            let a = answer(
                effect,
                category("RPZAC002"),
                at("2024-01-01T00:00:00Z") + Duration::seconds(i),
            );
            tasks.push(tokio::spawn(async move {
                store.record_answers(&patient, &[a], &event()).await
            }));
        }
        for task in tasks {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", t.kind()));
        }
        assert_eq!(
            t.store.profile(&patient).await.unwrap().len(),
            1,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.answer_history(&patient).await.unwrap().len(),
            8,
            "{}",
            t.kind()
        );
        assert_eq!(t.store.stats().await.unwrap().citizens, 1, "{}", t.kind());
        assert_eq!(
            t.store.audit_verify().await.unwrap().records,
            8,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn an_in_memory_database_works() {
    let store = otv_store::connect("sqlite::memory:", Keys::development())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    let a = answer(
        Effect::Permit,
        category("RPZAC002"),
        at("2024-01-01T00:00:00Z"),
    );
    store
        .record_answers(&bsn(8), std::slice::from_ref(&a), &event())
        .await
        .unwrap();
    // Reads see the writes: one database, not one per connection.
    assert_eq!(store.profile(&bsn(8)).await.unwrap(), vec![a]);
    assert_eq!(store.audit_verify().await.unwrap().records, 1);
    assert_eq!(store.kind(), "sqlite");
}

#[tokio::test]
async fn a_sqlite_file_is_created_when_missing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("new.sqlite");
    let store = otv_store::connect(&format!("sqlite://{}", file.display()), Keys::development())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // Migrating again is a no-op.
    store.migrate().await.unwrap();
    assert!(file.exists());
    assert!(matches!(
        otv_store::connect("mysql://localhost/x", Keys::development()).await,
        Err(otv_store::StoreError::UnsupportedUrl)
    ));
}
