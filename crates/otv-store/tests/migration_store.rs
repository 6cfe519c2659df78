//! Migration (PRODUCT.md §9) on every backend: a provider's answers fill only the options the
//! citizen has not answered, never replace the citizen's own answer, change nothing the second
//! time, pass over a citizen who locked the profile, and leave one audit record and one outbox
//! row per citizen changed.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test migration_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{DateTime, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, CategoryCode, Channel, DataCategory, Effect, Party,
    Provenance, Ura,
};
use otv_store::{AuditEvent, MigrationItem, MigrationOutcome, SettingsChange};
use support::{backends, bsn};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn ura() -> Ura {
    Ura::parse("00000659").unwrap()
}

fn key(consulter: &str) -> AnswerKey {
    AnswerKey {
        holder: Party::Category(CategoryCode::parse("DH-HA").unwrap()),
        data_category: DataCategory::parse("GGC002").unwrap(),
        consulter: Party::Category(CategoryCode::parse(consulter).unwrap()),
    }
}

fn migrated(consulter: &str, effect: Effect) -> Answer {
    Answer {
        key: key(consulter),
        effect,
        valid_from: at("2024-11-18T10:51:16Z"),
        valid_until: None,
        state: AnswerState::Active,
        provenance: Provenance {
            recorded_at: at("2026-11-30T12:00:00Z"),
            channel: Channel::Migration,
            actor: Actor::Provider {
                ura: ura(),
                uzi: None,
                role: None,
                mandated: None,
            },
            catalogue_version: "otv-2026.1".into(),
        },
    }
}

fn own(consulter: &str, effect: Effect) -> Answer {
    Answer {
        provenance: Provenance {
            channel: Channel::Portal,
            actor: Actor::Citizen,
            ..migrated(consulter, effect).provenance
        },
        ..migrated(consulter, effect)
    }
}

fn audit() -> AuditEvent {
    AuditEvent {
        at: at("2026-11-30T12:00:00Z"),
        event: "profile-change".into(),
        actor: "citizen".into(),
        channel: Some("portal".into()),
        ..AuditEvent::default()
    }
}

fn migration_audit() -> AuditEvent {
    AuditEvent {
        event: "profile-change".into(),
        actor: "connector:lsp".into(),
        channel: Some("migration".into()),
        details: serde_json::json!({ "connector": "lsp" }),
        ..audit()
    }
}

fn item(i: u32, answers: Vec<Answer>) -> MigrationItem {
    MigrationItem {
        bsn: bsn(i),
        provider: ura(),
        answers,
    }
}

fn outcome(migrated: u32, already_answered: u32) -> MigrationOutcome {
    MigrationOutcome {
        migrated,
        already_answered,
        locked: false,
    }
}

#[tokio::test]
async fn migration_fills_only_unanswered_options_and_never_replaces_the_citizens_answer() {
    for t in backends().await {
        let s = &t.store;
        s.record_answers(&bsn(1), &[own("RPZAC005", Effect::Deny)], &audit())
            .await
            .unwrap();
        let items = [item(
            1,
            vec![
                migrated("RPZAC005", Effect::Permit),
                migrated("RPZAC001", Effect::Permit),
            ],
        )];
        let outcomes = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(outcomes, [outcome(1, 1)], "{}", t.kind());

        let profile = s.profile(&bsn(1)).await.unwrap();
        assert_eq!(profile.len(), 2);
        let pharmacies = profile.iter().find(|a| a.key == key("RPZAC005")).unwrap();
        assert_eq!(
            pharmacies.effect,
            Effect::Deny,
            "the citizen's own no stays"
        );
        assert_eq!(pharmacies.provenance.actor, Actor::Citizen);
        let gps = profile.iter().find(|a| a.key == key("RPZAC001")).unwrap();
        assert_eq!(gps.effect, Effect::Permit);
        assert_eq!(gps.provenance.channel, Channel::Migration);
        assert_eq!(gps.valid_from, at("2024-11-18T10:51:16Z"));

        // The change is numbered like any other: the answer names its audit record.
        let seq = t
            .int("SELECT MAX(seq) FROM audit_log WHERE channel = 'migration'")
            .await;
        assert_eq!(
            t.int("SELECT change_seq FROM answers WHERE consulter_code = 'RPZAC001'")
                .await,
            seq
        );
        let change = s.change_record(&bsn(1), seq).await.unwrap().unwrap();
        assert_eq!(change.answers.len(), 1);
    }
}

#[tokio::test]
async fn migrating_the_same_input_twice_changes_nothing_the_second_time() {
    for t in backends().await {
        let s = &t.store;
        let items = [
            item(1, vec![migrated("RPZAC001", Effect::Permit)]),
            item(
                2,
                vec![
                    migrated("RPZAC001", Effect::Deny),
                    migrated("RPZAC200", Effect::Deny),
                ],
            ),
        ];
        let first = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(first, [outcome(1, 0), outcome(2, 0)]);
        let answers = t.int("SELECT COUNT(*) FROM answers").await;
        let audits = t.int("SELECT COUNT(*) FROM audit_log").await;
        let outbox = t.int("SELECT COUNT(*) FROM outbox").await;
        assert_eq!((answers, audits, outbox), (3, 2, 2), "{}", t.kind());

        let second = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(second, [outcome(0, 1), outcome(0, 2)]);
        assert_eq!(t.int("SELECT COUNT(*) FROM answers").await, answers);
        assert_eq!(t.int("SELECT COUNT(*) FROM audit_log").await, audits);
        assert_eq!(t.int("SELECT COUNT(*) FROM outbox").await, outbox);
    }
}

#[tokio::test]
async fn one_audit_record_and_one_outbox_row_per_citizen_changed() {
    for t in backends().await {
        let s = &t.store;
        // Two Consents for one citizen, a third for another; within the chunk the first answer
        // for a key wins.
        let items = [
            item(1, vec![migrated("RPZAC001", Effect::Permit)]),
            item(2, vec![migrated("RPZAC001", Effect::Deny)]),
            item(
                1,
                vec![
                    migrated("RPZAC001", Effect::Deny),
                    migrated("RPZAC003", Effect::Deny),
                ],
            ),
        ];
        let outcomes = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(outcomes, [outcome(1, 0), outcome(1, 0), outcome(1, 1)]);
        assert_eq!(t.int("SELECT COUNT(*) FROM audit_log").await, 2);
        assert_eq!(
            t.int("SELECT COUNT(*) FROM outbox WHERE kind = 'profile-changed'")
                .await,
            2
        );
        let pseudonym = s.patient_reference(&bsn(1));
        let row = t
            .text(&format!(
                "SELECT event || '|' || actor || '|' || organisation || '|' || channel FROM audit_log \
                 WHERE patient = '{pseudonym}'"
            ))
            .await
            .unwrap();
        assert_eq!(row, "profile-change|provider:00000659|00000659|migration");
        let details = t
            .text(&format!(
                "SELECT details FROM audit_log WHERE patient = '{pseudonym}'"
            ))
            .await
            .unwrap();
        assert!(details.contains(r#""answers":2"#), "{details}");
        assert!(!details.contains(bsn(1).expose()));
        let payload = t
            .text("SELECT payload FROM outbox ORDER BY created_at, id LIMIT 1")
            .await
            .unwrap();
        assert!(payload.contains("audit_seq"), "{payload}");
        assert!(!payload.contains(bsn(1).expose()) && !payload.contains(bsn(2).expose()));
        let profile = s.profile(&bsn(1)).await.unwrap();
        assert_eq!(
            profile
                .iter()
                .find(|a| a.key == key("RPZAC001"))
                .unwrap()
                .effect,
            Effect::Permit
        );
    }
}

#[tokio::test]
async fn a_citizen_who_locked_the_profile_is_passed_over() {
    for t in backends().await {
        let s = &t.store;
        let lock = SettingsChange {
            notify_changes: None,
            notify_checks: None,
            lock_provider_changes: Some(true),
            refuse_emergency: None,
        };
        s.update_citizen_settings(&bsn(1), &lock, &audit())
            .await
            .unwrap();
        let audits = t.int("SELECT COUNT(*) FROM audit_log").await;
        let items = [
            item(1, vec![migrated("RPZAC001", Effect::Permit)]),
            item(2, vec![migrated("RPZAC001", Effect::Permit)]),
        ];
        let outcomes = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(
            outcomes,
            [
                MigrationOutcome {
                    migrated: 0,
                    already_answered: 0,
                    locked: true
                },
                outcome(1, 0)
            ]
        );
        assert!(s.profile(&bsn(1)).await.unwrap().is_empty());
        assert_eq!(s.profile(&bsn(2)).await.unwrap().len(), 1);
        assert_eq!(t.int("SELECT COUNT(*) FROM audit_log").await, audits + 1);
        assert_eq!(
            s.audit_verify().await.unwrap().first_broken,
            None,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn a_childs_pending_proposal_counts_as_answered() {
    for t in backends().await {
        let s = &t.store;
        let proposal = Answer {
            state: AnswerState::PendingGuardian,
            ..own("RPZAC001", Effect::Deny)
        };
        s.record_answers(&bsn(1), &[proposal], &audit())
            .await
            .unwrap();
        let items = [item(1, vec![migrated("RPZAC001", Effect::Permit)])];
        let outcomes = s.migrate_answers(&items, &migration_audit()).await.unwrap();
        assert_eq!(outcomes, [outcome(0, 1)]);
    }
}

#[tokio::test]
async fn the_citizen_says_when_they_have_seen_the_migrated_answers() {
    for t in backends().await {
        let s = &t.store;
        assert_eq!(s.migration_seen_at(&bsn(1)).await.unwrap(), None);
        let seen = at("2026-11-30T13:00:00.123456Z");
        let event = AuditEvent {
            event: "migration-seen".into(),
            ..audit()
        };
        s.mark_migration_seen(&bsn(1), seen, &event).await.unwrap();
        assert_eq!(s.migration_seen_at(&bsn(1)).await.unwrap(), Some(seen));
        // Other settings keep their defaults.
        assert!(
            !s.citizen_settings(&bsn(1))
                .await
                .unwrap()
                .lock_provider_changes
        );
        assert_eq!(
            t.int("SELECT COUNT(*) FROM audit_log WHERE event = 'migration-seen'")
                .await,
            1
        );
    }
}

#[tokio::test]
async fn a_chunk_of_five_thousand_citizens_commits_in_one_call() {
    for t in backends().await {
        let items: Vec<MigrationItem> = (0..5_000)
            .map(|i| item(i, vec![migrated("RPZAC001", Effect::Permit)]))
            .collect();
        let outcomes = t
            .store
            .migrate_answers(&items, &migration_audit())
            .await
            .unwrap();
        assert!(outcomes.iter().all(|o| *o == outcome(1, 0)), "{}", t.kind());
        assert_eq!(t.int("SELECT COUNT(*) FROM audit_log").await, 5_000);
        assert_eq!(
            t.int("SELECT COUNT(DISTINCT change_seq) FROM answers")
                .await,
            5_000
        );
        assert_eq!(t.store.audit_verify().await.unwrap().first_broken, None);
    }
}
