//! The citizen's own data in the store, on every backend: settings and e-mail verification,
//! the history of changes and consent checks, the record of one change (for its receipt), the
//! export, and deleting a profile.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test citizen_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{DateTime, Duration, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, CategoryCode, Channel, DataCategory, Effect, OrgType,
    Party, Provenance, Ura,
};
use otv_store::{
    AuditEvent, CheckNotice, CitizenSettings, EmailConfirmation, EmailVerification,
    NewSubscription, Period, Provider, SettingsChange,
};
use support::{backends, bsn};

fn answer(holder: &str, consulter: Party, channel: Channel, recorded: DateTime<Utc>) -> Answer {
    Answer {
        key: AnswerKey {
            holder: Party::Category(CategoryCode::parse(holder).unwrap()),
            data_category: DataCategory::parse("GGC002").unwrap(),
            consulter,
        },
        effect: Effect::Permit,
        valid_from: recorded,
        valid_until: None,
        state: AnswerState::Active,
        provenance: Provenance {
            recorded_at: recorded,
            channel,
            actor: Actor::Citizen,
            catalogue_version: "2024.1".into(),
        },
    }
}

fn event(name: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        event: name.into(),
        actor: "citizen".into(),
        channel: Some("portal".into()),
        ..Default::default()
    }
}

fn gp() -> Party {
    Party::Category(CategoryCode::parse("RPZAC001").unwrap())
}

fn ura(s: &str) -> Ura {
    Ura::parse(s).unwrap()
}

/// A closed question's audit record as `otv-server` writes it (the fields the history reads).
fn closed_question(patient: String, holder: &str, consulter: &str, decision: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        event: "closed-question".into(),
        patient: Some(patient),
        actor: "uzi:900010001 role:01.015".into(),
        organisation: Some(holder.into()),
        decision: Some(decision.into()),
        channel: Some("soap".into()),
        details: serde_json::json!({
            "consulter": { "ura": consulter, "organisation_type": "Z3" },
            "results": [{ "data_category": "GGC002", "decision": decision, "reason": "x", "deciding": null }],
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn each_change_is_numbered_and_its_record_belongs_only_to_its_citizen() {
    for t in backends().await {
        let (me, other) = (bsn(1), bsn(2));
        let now: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap();
        let two = [
            answer("DH-HA", gp(), Channel::Portal, now),
            answer("DH-APO", gp(), Channel::Portal, now),
        ];
        let first = t
            .store
            .record_answers(&me, &two, &event("profile-change"))
            .await
            .unwrap();
        let second = t
            .store
            .record_answers(&me, &two[..1], &event("profile-change"))
            .await
            .unwrap();
        assert!(second > first, "{}", t.kind());

        let record = t.store.change_record(&me, first).await.unwrap().unwrap();
        assert_eq!(record.seq, first);
        assert_eq!(record.answers, two, "{}", t.kind());
        assert_eq!(record.event, "profile-change");
        assert_eq!(record.patient, t.store.patient_reference(&me));
        assert_eq!(
            t.store
                .change_record(&me, second)
                .await
                .unwrap()
                .unwrap()
                .answers
                .len(),
            1
        );
        // Another citizen, or a number that is no change of answers, has no record.
        assert!(
            t.store
                .change_record(&other, first)
                .await
                .unwrap()
                .is_none()
        );
        let settings_seq = t.store.audit(&event("login")).await.unwrap();
        assert!(
            t.store
                .change_record(&me, settings_seq)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn settings_start_at_the_defaults_and_each_change_is_audited() {
    for t in backends().await {
        let me = bsn(3);
        assert_eq!(
            t.store.citizen_settings(&me).await.unwrap(),
            CitizenSettings::default()
        );
        let before = t.int("SELECT count(*) FROM audit_log").await;
        let s = t
            .store
            .update_citizen_settings(
                &me,
                &SettingsChange {
                    notify_checks: Some(CheckNotice::Daily),
                    lock_provider_changes: Some(true),
                    ..Default::default()
                },
                &event("settings-change"),
            )
            .await
            .unwrap();
        assert_eq!(s.notify_checks, CheckNotice::Daily);
        assert!(s.lock_provider_changes && s.notify_changes && !s.refuse_emergency);
        let s = t
            .store
            .update_citizen_settings(
                &me,
                &SettingsChange {
                    refuse_emergency: Some(true),
                    notify_changes: Some(false),
                    ..Default::default()
                },
                &event("settings-change"),
            )
            .await
            .unwrap();
        assert_eq!(t.store.citizen_settings(&me).await.unwrap(), s);
        assert!(s.lock_provider_changes && s.refuse_emergency && !s.notify_changes);
        assert_eq!(s.notify_checks, CheckNotice::Daily, "{}", t.kind());
        assert_eq!(t.int("SELECT count(*) FROM audit_log").await, before + 2);
        let details = t
            .text("SELECT details FROM audit_log ORDER BY seq DESC LIMIT 1")
            .await
            .unwrap();
        assert!(details.contains(r#""refuse_emergency":true"#), "{details}");
        let patient = t
            .text("SELECT patient FROM audit_log ORDER BY seq DESC LIMIT 1")
            .await;
        assert_eq!(patient, Some(t.store.patient_reference(&me)));
        assert!(t.store.audit_verify().await.unwrap().first_broken.is_none());
    }
}

#[tokio::test]
async fn an_email_address_is_verified_once_by_the_token_of_its_last_link() {
    for t in backends().await {
        let (me, other) = (bsn(4), bsn(5));
        let request = |token: [u8; 32], expires_at| EmailVerification {
            address: "jan@example.org",
            token_sha256: token,
            expires_at,
            link: "https://otv.example/e-mail/bevestigen?token=abc",
        };
        let later = Utc::now() + Duration::hours(24);
        t.store
            .request_email_verification(&me, &request([1; 32], later), &event("email-set"))
            .await
            .unwrap();
        let s = t.store.citizen_settings(&me).await.unwrap();
        assert_eq!(s.email.as_deref(), Some("jan@example.org"));
        assert!(s.email_verified_at.is_none() && s.email_link_expires_at.is_some());
        let payload = t
            .text("SELECT payload FROM outbox WHERE kind = 'email-verification'")
            .await
            .unwrap();
        assert!(payload.contains("bevestigen?token=abc"), "{payload}");
        // A second request replaces the first link.
        t.store
            .request_email_verification(&me, &request([2; 32], later), &event("email-set"))
            .await
            .unwrap();
        let now = Utc::now();
        let confirm = |who, token| {
            let store = t.store.clone();
            async move {
                store
                    .confirm_email(who, &token, now, &event("email-verify"))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(confirm(&me, [1; 32]).await, EmailConfirmation::Unknown);
        assert_eq!(confirm(&other, [2; 32]).await, EmailConfirmation::Unknown);
        assert_eq!(confirm(&me, [2; 32]).await, EmailConfirmation::Confirmed);
        assert!(
            t.store
                .citizen_settings(&me)
                .await
                .unwrap()
                .email_verified_at
                .is_some()
        );
        assert_eq!(confirm(&me, [2; 32]).await, EmailConfirmation::Unknown);

        // An old link is refused as expired.
        t.store
            .request_email_verification(
                &me,
                &request([3; 32], now - Duration::minutes(1)),
                &event("email-set"),
            )
            .await
            .unwrap();
        assert_eq!(confirm(&me, [3; 32]).await, EmailConfirmation::Expired);
        t.store
            .remove_email(&me, &event("email-remove"))
            .await
            .unwrap();
        let s = t.store.citizen_settings(&me).await.unwrap();
        assert!(
            s.email.is_none() && s.email_verified_at.is_none(),
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn the_history_lists_changes_and_checks_of_one_citizen_by_period() {
    for t in backends().await {
        let (me, other) = (bsn(6), bsn(7));
        t.store
            .upsert_providers(&[
                Provider {
                    ura: ura("00000001"),
                    name: "Huisartsenpraktijk De Linde".into(),
                    organisation_type: OrgType::parse("Z3").unwrap(),
                },
                Provider {
                    ura: ura("00000002"),
                    name: "Huisartsenpost Zuid".into(),
                    organisation_type: OrgType::parse("N6").unwrap(),
                },
            ])
            .await
            .unwrap();
        let old: DateTime<Utc> = "2024-01-10T10:00:00Z".parse().unwrap();
        let now = Utc::now();
        let a = t
            .store
            .record_answers(
                &me,
                &[
                    answer("DH-HA", gp(), Channel::Migration, old),
                    answer("DH-APO", gp(), Channel::Migration, old),
                ],
                &event("profile-change"),
            )
            .await
            .unwrap();
        let b = t
            .store
            .record_answers(
                &me,
                &[answer("DH-HA", gp(), Channel::Portal, now)],
                &event("profile-change"),
            )
            .await
            .unwrap();
        t.store
            .record_answers(
                &other,
                &[answer("DH-HA", gp(), Channel::Portal, now)],
                &event("profile-change"),
            )
            .await
            .unwrap();
        let mine = t.store.patient_reference(&me);
        t.store
            .audit(&closed_question(
                mine.clone(),
                "00000001",
                "00000002",
                "permit",
            ))
            .await
            .unwrap();
        t.store
            .audit(&closed_question(
                t.store.patient_reference(&other),
                "00000001",
                "00000002",
                "deny",
            ))
            .await
            .unwrap();

        let all = t.store.history(&me, &Period::default(), 50).await.unwrap();
        let seqs: Vec<_> = all.changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [Some(b), Some(a)], "{}", t.kind());
        assert_eq!(all.changes[1].answers.len(), 2);
        assert_eq!(all.changes[1].channel, Channel::Migration);
        assert!(!all.more_changes && !all.more_checks);
        assert_eq!(all.checks.len(), 1, "{}", t.kind());
        let check = &all.checks[0];
        assert_eq!(check.holder_ura.as_deref(), Some("00000001"));
        assert_eq!(
            check.holder_name.as_deref(),
            Some("Huisartsenpraktijk De Linde")
        );
        assert_eq!(check.consulter_name.as_deref(), Some("Huisartsenpost Zuid"));
        assert_eq!(check.decision, "permit");
        assert_eq!(check.data_category.as_deref(), Some("GGC002"));
        assert!(!check.emergency);

        // A period in 2024 holds only the migrated change, and no check.
        let in_2024 = Period {
            from: Some("2024-01-01T00:00:00Z".parse().unwrap()),
            until: Some("2025-01-01T00:00:00Z".parse().unwrap()),
        };
        let h = t.store.history(&me, &in_2024, 50).await.unwrap();
        assert_eq!(h.changes.len(), 1);
        assert_eq!(h.changes[0].seq, Some(a));
        assert!(h.checks.is_empty());
        // Bounded: one of each, and it says there is more.
        let h = t.store.history(&me, &Period::default(), 1).await.unwrap();
        assert_eq!(h.changes.len(), 1);
        assert!(h.more_changes);
        // Another citizen's history does not hold my change or check.
        let theirs = t
            .store
            .history(&other, &Period::default(), 50)
            .await
            .unwrap();
        assert_eq!(theirs.changes.len(), 1);
        assert_eq!(theirs.checks.len(), 1);
        assert_eq!(theirs.checks[0].decision, "deny");
    }
}

/// The history finds consent checks through an index (on SQLite a file beside the database,
/// filled a moment after each check) and the newest ones in the audit log itself: it says the
/// same before the index has caught up, after, and with the two mixed, periods and pages
/// included.
#[tokio::test]
async fn the_checks_in_the_history_are_the_same_before_and_after_they_are_indexed() {
    for t in backends().await {
        let (me, other) = (bsn(41), bsn(42));
        let mine = t.store.patient_reference(&me);
        let start = Utc::now() - Duration::hours(1);
        let ask = |patient: &String, minute: i64, decision: &str| {
            let mut e = closed_question(patient.clone(), "00000001", "00000002", decision);
            e.at = start + Duration::minutes(minute);
            e
        };
        // Three checks about me and one about someone else go into the index…
        for (minute, decision) in [(0, "permit"), (1, "deny"), (2, "permit")] {
            t.store.audit(&ask(&mine, minute, decision)).await.unwrap();
        }
        let theirs = t.store.patient_reference(&other);
        t.store.audit(&ask(&theirs, 2, "deny")).await.unwrap();
        t.store.index_consent_checks().await.unwrap();
        // …two more about me are only in the audit log.
        for (minute, decision) in [(3, "deny"), (4, "indeterminate")] {
            t.store.audit(&ask(&mine, minute, decision)).await.unwrap();
        }
        let decisions = |h: &otv_store::History| -> Vec<String> {
            h.checks.iter().map(|c| c.decision.clone()).collect()
        };
        let all = Period::default();
        let middle = Period {
            from: Some(start + Duration::minutes(1)),
            until: Some(start + Duration::minutes(4)),
        };
        let read =
            async |period: &Period, limit| t.store.history(&me, period, limit).await.unwrap();
        let before = [
            read(&all, 50).await,
            read(&middle, 50).await,
            read(&all, 3).await,
        ];
        assert_eq!(
            decisions(&before[0]),
            ["indeterminate", "deny", "permit", "deny", "permit"],
            "{}",
            t.kind()
        );
        assert!(!before[0].more_checks);
        assert_eq!(
            decisions(&before[1]),
            ["deny", "permit", "deny"],
            "{}",
            t.kind()
        );
        // A page that ends inside the index says there is more.
        assert_eq!(decisions(&before[2]), ["indeterminate", "deny", "permit"]);
        assert!(before[2].more_checks, "{}", t.kind());

        t.store.index_consent_checks().await.unwrap();
        let after = [
            read(&all, 50).await,
            read(&middle, 50).await,
            read(&all, 3).await,
        ];
        assert_eq!(after, before, "{}", t.kind());
        let h = t.store.history(&other, &all, 50).await.unwrap();
        assert_eq!(decisions(&h), ["deny"], "{}", t.kind());
    }
}

#[tokio::test]
async fn the_export_holds_details_settings_answers_registrations_and_checks() {
    for t in backends().await {
        let me = bsn(8);
        assert!(t.store.export_citizen(&me).await.unwrap().is_none());
        t.store
            .upsert_citizen(
                &me,
                &otv_store::CitizenDetails {
                    name: Some("Jan Jansen".into()),
                    email: None,
                    birth_date: Some("1960-05-01".parse().unwrap()),
                },
            )
            .await
            .unwrap();
        let now = Utc::now();
        let seq = t
            .store
            .record_answers(
                &me,
                &[answer("DH-HA", gp(), Channel::Portal, now)],
                &event("profile-change"),
            )
            .await
            .unwrap();
        t.store
            .record_answers(
                &me,
                &[answer("DH-HA", gp(), Channel::Portal, now)],
                &event("profile-change"),
            )
            .await
            .unwrap();
        t.store
            .insert_subscriptions(&[subscription(&me, "00000001")])
            .await
            .unwrap();
        t.store
            .audit(&closed_question(
                t.store.patient_reference(&me),
                "00000001",
                "00000002",
                "permit",
            ))
            .await
            .unwrap();
        let export = t.store.export_citizen(&me).await.unwrap().unwrap();
        assert_eq!(export.details.name.as_deref(), Some("Jan Jansen"));
        assert_eq!(export.answers.len(), 2, "{}", t.kind());
        assert!(export.answers[0].replaced_at.is_none());
        assert!(export.answers[1].replaced_at.is_some());
        assert_eq!(export.answers[1].change_seq, Some(seq));
        assert_eq!(export.subscriptions.len(), 1);
        assert_eq!(export.subscriptions[0].holder_ura, "00000001");
        assert_eq!(export.consent_checks.len(), 1);
        assert_eq!(export.settings, CitizenSettings::default());
        let json = serde_json::to_string(&export).unwrap();
        assert!(
            !json.contains(me.expose()),
            "the export never repeats the BSN"
        );
    }
}

fn subscription(who: &otv_core::Bsn, holder: &str) -> NewSubscription {
    NewSubscription {
        bsn: who.clone(),
        birth_date: None,
        holder_ura: ura(holder),
        holder_type: OrgType::parse("Z3").unwrap(),
        connector_id: "lsp".into(),
        source_system: format!("2.16.840.1.113883.2.4.6.6.{holder}.1"),
        gateway_system: "2.16.840.1.113883.2.4.6.6.90000001".into(),
        endpoint: "https://example.org/notify".into(),
        payload: "application/fhir+json".into(),
    }
}

#[tokio::test]
async fn deleting_a_profile_removes_personal_data_and_answers_and_keeps_the_audit_log() {
    for t in backends().await {
        let (registered, alone) = (bsn(9), bsn(10));
        let now = Utc::now();
        for who in [&registered, &alone] {
            t.store
                .upsert_citizen(
                    who,
                    &otv_store::CitizenDetails {
                        name: Some("Piet".into()),
                        email: Some("piet@example.org".into()),
                        birth_date: None,
                    },
                )
                .await
                .unwrap();
            t.store
                .record_answers(
                    who,
                    &[answer("DH-HA", gp(), Channel::Portal, now)],
                    &event("profile-change"),
                )
                .await
                .unwrap();
            t.store
                .update_citizen_settings(
                    who,
                    &SettingsChange {
                        lock_provider_changes: Some(true),
                        ..Default::default()
                    },
                    &event("settings-change"),
                )
                .await
                .unwrap();
        }
        t.store
            .insert_subscriptions(&[subscription(&registered, "00000001")])
            .await
            .unwrap();
        let records = t.int("SELECT count(*) FROM audit_log").await;

        let d = t
            .store
            .delete_citizen(&registered, &event("profile-delete"))
            .await
            .unwrap();
        assert_eq!((d.answers, d.subscriptions_kept), (1, 1), "{}", t.kind());
        let d = t
            .store
            .delete_citizen(&alone, &event("profile-delete"))
            .await
            .unwrap();
        assert_eq!((d.answers, d.subscriptions_kept), (1, 0));

        for who in [&registered, &alone] {
            assert!(t.store.profile(who).await.unwrap().is_empty());
            assert!(t.store.answer_history(who).await.unwrap().is_empty());
            assert_eq!(
                t.store.citizen_settings(who).await.unwrap(),
                CitizenSettings::default()
            );
        }
        assert_eq!(t.int("SELECT count(*) FROM answers").await, 0);
        assert_eq!(t.int("SELECT count(*) FROM citizen_settings").await, 0);
        // The registered citizen keeps only what the registration needs.
        assert_eq!(t.int("SELECT count(*) FROM citizens").await, 1);
        assert_eq!(
            t.int("SELECT count(*) FROM citizens WHERE name IS NULL AND email IS NULL")
                .await,
            1
        );
        assert_eq!(
            t.store.subscriptions_of(&registered).await.unwrap().len(),
            1
        );
        // The holder still registered hears that the answers are gone; nothing else waits.
        assert_eq!(
            t.text("SELECT kind FROM outbox").await.as_deref(),
            Some("profile-deleted")
        );
        // Audit records stay, plus one per deletion, and the chain still verifies.
        assert_eq!(t.int("SELECT count(*) FROM audit_log").await, records + 2);
        assert_eq!(
            t.int("SELECT count(*) FROM audit_log WHERE event = 'profile-delete'")
                .await,
            2
        );
        let report = t.store.audit_verify().await.unwrap();
        assert!(report.first_broken.is_none(), "{report:?}");
    }
}
