//! A child's proposal (`pending-guardian`) waits beside the answer in force with the same key
//! (PRODUCT.md §4, §5.3, §10; migration 0007): it never replaces it, so it never permits
//! anything, not even by displacing a no. A confirmation replaces both; a decline only the
//! proposal; a withdrawal only the answer in force.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Catalogue, CategoryCode, Channel, DataCategory,
    DefaultPolicy, Effect, OrgType, Organisation, Party, Provenance, Question, Reason, Ura, decide,
};
use otv_store::{AuditEvent, Store};

use crate::support::{backends, bsn};

fn key() -> AnswerKey {
    AnswerKey {
        holder: Party::Category(CategoryCode::parse("DH-HA").unwrap()),
        data_category: DataCategory::parse("GGC002").unwrap(),
        consulter: Party::Category(CategoryCode::parse("RPZAC005").unwrap()),
    }
}

fn answer(effect: Effect, state: AnswerState, channel: Channel, at: DateTime<Utc>) -> Answer {
    Answer {
        key: key(),
        effect,
        valid_from: at,
        valid_until: None,
        state,
        provenance: Provenance {
            recorded_at: at,
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

/// A GP (Z3) asks about a pharmacy (J8) consulting treatment data: the key of [`key`].
fn decision(answers: &[Answer], policy: DefaultPolicy) -> (Effect, Reason, Option<Answer>) {
    let catalogue = Catalogue::default_catalogue();
    let holder = Organisation {
        ura: Ura::parse("00000001").unwrap(),
        organisation_type: OrgType::parse("Z3").unwrap(),
    };
    let consulter = Organisation {
        ura: Ura::parse("00000011").unwrap(),
        organisation_type: OrgType::parse("J8").unwrap(),
    };
    let q = Question {
        holder: &holder,
        consulter: &consulter,
        at: Utc::now() + Duration::minutes(1),
    };
    let out = decide(
        &catalogue,
        policy,
        answers,
        &q,
        &[DataCategory::parse("GGC002").unwrap()],
    );
    (out[0].effect, out[0].reason, out[0].deciding.cloned())
}

fn states(profile: &[Answer]) -> Vec<(AnswerState, Effect)> {
    let mut v: Vec<_> = profile.iter().map(|a| (a.state, a.effect)).collect();
    v.sort_by_key(|(s, _)| s.as_str());
    v
}

/// Active no, then the child's pending yes: both current, and the no decides.
async fn no_then_pending_yes(store: &Store, patient: &otv_core::Bsn, t0: DateTime<Utc>) -> Answer {
    let no = answer(
        Effect::Deny,
        AnswerState::Active,
        Channel::GuardianConfirmation,
        t0,
    );
    store
        .record_answers(
            patient,
            std::slice::from_ref(&no),
            &event("guardian-confirmation"),
        )
        .await
        .unwrap();
    let yes = answer(
        Effect::Permit,
        AnswerState::PendingGuardian,
        Channel::Portal,
        t0 + Duration::seconds(1),
    );
    store
        .record_answers(
            patient,
            std::slice::from_ref(&yes),
            &event("profile-change"),
        )
        .await
        .unwrap();
    no
}

#[tokio::test]
async fn a_pending_yes_waits_beside_an_active_no_which_keeps_deciding() {
    for t in backends().await {
        let patient = bsn(1);
        let t0 = Utc::now().trunc_subsecs(0) - Duration::hours(1);
        let no = no_then_pending_yes(&t.store, &patient, t0).await;
        let profile = t.store.profile(&patient).await.unwrap();
        assert_eq!(
            states(&profile),
            vec![
                (AnswerState::Active, Effect::Deny),
                (AnswerState::PendingGuardian, Effect::Permit)
            ],
            "{}",
            t.kind()
        );
        for policy in [DefaultPolicy::OptIn, DefaultPolicy::OptOut] {
            assert_eq!(
                decision(&profile, policy),
                (Effect::Deny, Reason::DeniedByAnswer, Some(no.clone())),
                "{}: {policy:?}",
                t.kind()
            );
        }

        // A second proposal replaces the first proposal only.
        let no_again = answer(
            Effect::Deny,
            AnswerState::PendingGuardian,
            Channel::Portal,
            t0 + Duration::seconds(2),
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&no_again), &event("x"))
            .await
            .unwrap();
        let yes_again = answer(
            Effect::Permit,
            AnswerState::PendingGuardian,
            Channel::Portal,
            t0 + Duration::seconds(3),
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&yes_again), &event("x"))
            .await
            .unwrap();
        let profile = t.store.profile(&patient).await.unwrap();
        assert_eq!(profile.len(), 2, "{}", t.kind());
        assert!(profile.contains(&no) && profile.contains(&yes_again));
        assert_eq!(
            t.int("SELECT count(*) FROM answers WHERE superseded_at IS NULL")
                .await,
            2
        );
    }
}

#[tokio::test]
async fn a_confirmation_replaces_the_proposal_and_the_answer_in_force() {
    for t in backends().await {
        let patient = bsn(2);
        let t0 = Utc::now().trunc_subsecs(0) - Duration::hours(1);
        no_then_pending_yes(&t.store, &patient, t0).await;
        let confirmed = answer(
            Effect::Permit,
            AnswerState::Active,
            Channel::GuardianConfirmation,
            t0 + Duration::seconds(5),
        );
        t.store
            .record_answers(
                &patient,
                std::slice::from_ref(&confirmed),
                &event("guardian-confirmation"),
            )
            .await
            .unwrap();
        let profile = t.store.profile(&patient).await.unwrap();
        assert_eq!(profile, vec![confirmed.clone()], "{}", t.kind());
        for policy in [DefaultPolicy::OptIn, DefaultPolicy::OptOut] {
            assert_eq!(
                decision(&profile, policy),
                (
                    Effect::Permit,
                    Reason::PermittedByAnswer,
                    Some(confirmed.clone())
                ),
                "{}",
                t.kind()
            );
        }
        assert_eq!(t.store.answer_history(&patient).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn a_decline_replaces_only_the_proposal_and_is_kept_as_history() {
    for t in backends().await {
        let patient = bsn(3);
        let t0 = Utc::now().trunc_subsecs(0) - Duration::hours(1);
        let no = no_then_pending_yes(&t.store, &patient, t0).await;
        let declined = answer(
            Effect::Permit,
            AnswerState::Withdrawn,
            Channel::GuardianConfirmation,
            t0 + Duration::seconds(5),
        );
        let outbox_before = t.int("SELECT count(*) FROM outbox").await;
        let seq = t
            .store
            .decline_pending(
                &patient,
                std::slice::from_ref(&declined),
                &event("guardian-declined"),
            )
            .await
            .unwrap();
        let profile = t.store.profile(&patient).await.unwrap();
        assert_eq!(profile, vec![no.clone()], "{}", t.kind());
        for policy in [DefaultPolicy::OptIn, DefaultPolicy::OptOut] {
            assert_eq!(
                decision(&profile, policy),
                (Effect::Deny, Reason::DeniedByAnswer, Some(no.clone())),
                "{}",
                t.kind()
            );
        }
        // In the history, named by its change, with its audit record and outbox row.
        let history = t.store.answer_history(&patient).await.unwrap();
        assert_eq!(history.last(), Some(&declined), "{}", t.kind());
        let change = t.store.change_record(&patient, seq).await.unwrap().unwrap();
        assert_eq!(change.answers, vec![declined], "{}", t.kind());
        assert_eq!(change.event, "guardian-declined");
        assert_eq!(
            t.int("SELECT count(*) FROM outbox").await,
            outbox_before + 1
        );

        // Declining when nothing was in force leaves nothing current.
        let other = bsn(4);
        let pending = answer(
            Effect::Permit,
            AnswerState::PendingGuardian,
            Channel::Portal,
            t0,
        );
        t.store
            .record_answers(&other, std::slice::from_ref(&pending), &event("x"))
            .await
            .unwrap();
        let declined = Answer {
            state: AnswerState::Withdrawn,
            ..pending
        };
        t.store
            .decline_pending(&other, std::slice::from_ref(&declined), &event("y"))
            .await
            .unwrap();
        assert!(
            t.store.profile(&other).await.unwrap().is_empty(),
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn a_withdrawal_replaces_only_the_answer_in_force_and_a_providers_answer_both() {
    for t in backends().await {
        let patient = bsn(5);
        let t0 = Utc::now().trunc_subsecs(0) - Duration::hours(1);
        no_then_pending_yes(&t.store, &patient, t0).await;
        // Withdrawn (as an emergency consent is): the proposal keeps waiting.
        let withdrawn = answer(
            Effect::Deny,
            AnswerState::Withdrawn,
            Channel::Portal,
            t0 + Duration::seconds(5),
        );
        t.store
            .record_answers(&patient, std::slice::from_ref(&withdrawn), &event("x"))
            .await
            .unwrap();
        let profile = t.store.profile(&patient).await.unwrap();
        assert_eq!(
            states(&profile),
            vec![
                (AnswerState::PendingGuardian, Effect::Permit),
                (AnswerState::Withdrawn, Effect::Deny),
            ],
            "{}",
            t.kind()
        );
        // A provider's answer, recorded after the proposal, replaces both.
        let provider = Answer {
            provenance: Provenance {
                channel: Channel::SamenNaarMijnmitz,
                actor: Actor::Provider {
                    ura: Ura::parse("00000010").unwrap(),
                    uzi: None,
                    role: None,
                    mandated: None,
                },
                ..withdrawn.provenance.clone()
            },
            ..answer(
                Effect::Deny,
                AnswerState::Active,
                Channel::SamenNaarMijnmitz,
                t0 + Duration::seconds(6),
            )
        };
        t.store
            .record_answers(&patient, std::slice::from_ref(&provider), &event("x"))
            .await
            .unwrap();
        assert_eq!(
            t.store.profile(&patient).await.unwrap(),
            vec![provider],
            "{}",
            t.kind()
        );
    }
}
