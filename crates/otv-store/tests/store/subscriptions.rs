//! Subscriptions (abonnementen) one at a time, as the FHIR endpoints keep them: registered once
//! per connector, patient and source system; read, changed, deactivated and deleted only by the
//! connector that registered them.

use otv_core::{OrgType, Ura};
use otv_store::{AuditEvent, NewSubscription, Registration, SubscriptionChange, SubscriptionState};
use uuid::Uuid;

use crate::support::{backends, bsn, contains};

/// Pharmacy 00000010 registers patient `i` through `connector`, from source system `source`.
fn registration(i: u32, connector: &str, source: &str) -> NewSubscription {
    NewSubscription {
        bsn: bsn(i),
        birth_date: Some("1984-11-02".parse().unwrap()),
        holder_ura: Ura::parse("00000010").unwrap(),
        holder_type: OrgType::parse("J8").unwrap(),
        connector_id: connector.into(),
        source_system: source.into(),
        gateway_system: "2.16.840.1.113883.2.4.6.6.1".into(),
        endpoint: "https://apotheek.example.nl/otv/notify".into(),
        payload: "application/fhir+json".into(),
    }
}

/// The audit record the caller hands over with a change (the store adds the id).
fn audit() -> AuditEvent {
    AuditEvent {
        at: chrono::Utc::now(),
        event: "subscription-change".into(),
        actor: "connector:test".into(),
        details: serde_json::json!({ "source_system": "2.16.528.1.1" }),
        ..AuditEvent::default()
    }
}

/// What was registered, comparable field by field.
fn content(s: &NewSubscription) -> (String, &str, &str, &str, &str, &str) {
    (
        s.bsn.expose().to_owned(),
        s.holder_ura.as_str(),
        s.source_system.as_str(),
        s.gateway_system.as_str(),
        s.endpoint.as_str(),
        s.payload.as_str(),
    )
}

#[tokio::test]
async fn a_registration_is_created_once_per_connector_patient_and_source_system() {
    for t in backends().await {
        let first = registration(1, "lsp", "2.16.528.1.1");
        let Registration::Created(id) =
            t.store.create_subscription(&first, &audit()).await.unwrap()
        else {
            panic!("{}: the first registration creates", t.kind());
        };

        // A repeat (even with another endpoint) names the existing one and changes nothing.
        let repeat = NewSubscription {
            endpoint: "https://elsewhere.example.nl/notify".into(),
            ..first.clone()
        };
        assert_eq!(
            t.store
                .create_subscription(&repeat, &audit())
                .await
                .unwrap(),
            Registration::Existing(id),
            "{}",
            t.kind()
        );
        let stored = t.store.subscription("lsp", id).await.unwrap().unwrap();
        assert_eq!(
            content(&stored.registration),
            content(&registration(1, "lsp", "2.16.528.1.1"))
        );
        assert_eq!(stored.state, SubscriptionState::Active, "{}", t.kind());
        assert_eq!(stored.registration.birth_date, first.birth_date);

        // Another source system, another connector, another patient: each its own registration.
        for other in [
            registration(1, "lsp", "2.16.528.1.2"),
            registration(1, "huisarts", "2.16.528.1.1"),
            registration(2, "lsp", "2.16.528.1.1"),
        ] {
            let created = t.store.create_subscription(&other, &audit()).await.unwrap();
            assert!(
                matches!(created, Registration::Created(other_id) if other_id != id),
                "{}: {created:?}",
                t.kind()
            );
        }
        assert_eq!(
            t.int("SELECT count(*) FROM subscriptions").await,
            4,
            "{}",
            t.kind()
        );
        assert_eq!(t.store.subscriptions_of(&bsn(1)).await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn only_the_registering_connector_sees_changes_or_deletes_a_subscription() {
    for t in backends().await {
        let id = t
            .store
            .create_subscription(&registration(3, "lsp", "2.16.528.1.1"), &audit())
            .await
            .unwrap()
            .id();
        let change = SubscriptionChange {
            endpoint: "https://other.example.nl/notify".into(),
            payload: "application/fhir+xml".into(),
            birth_date: None,
            gateway_system: "2.16.528.1.9".into(),
            state: SubscriptionState::Active,
        };

        assert!(
            t.store
                .subscription("huisarts", id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.store
                .update_subscription("huisarts", id, &change, &audit())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.store
                .delete_subscription("huisarts", id, &audit())
                .await
                .unwrap()
                .is_none()
        );
        let unknown = Uuid::now_v7();
        assert!(
            t.store
                .subscription("lsp", unknown)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.store
                .update_subscription("lsp", unknown, &change, &audit())
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            t.store
                .delete_subscription("lsp", unknown, &audit())
                .await
                .unwrap()
                .is_none()
        );

        let unchanged = t.store.subscription("lsp", id).await.unwrap().unwrap();
        assert_eq!(
            content(&unchanged.registration),
            content(&registration(3, "lsp", "2.16.528.1.1")),
            "{}: another connector changed nothing",
            t.kind()
        );
    }
}

#[tokio::test]
async fn an_update_changes_endpoint_payload_birth_date_and_gateway_system() {
    for t in backends().await {
        let id = t
            .store
            .create_subscription(&registration(4, "lsp", "2.16.528.1.1"), &audit())
            .await
            .unwrap()
            .id();
        let change = SubscriptionChange {
            endpoint: "https://other.example.nl/notify".into(),
            payload: "application/fhir+xml".into(),
            birth_date: None,
            gateway_system: "2.16.528.1.9".into(),
            state: SubscriptionState::Active,
        };
        let updated = t
            .store
            .update_subscription("lsp", id, &change, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated.id, id);
        let read = t.store.subscription("lsp", id).await.unwrap().unwrap();
        for r in [&updated, &read] {
            let s = &r.registration;
            assert_eq!(
                (
                    s.endpoint.as_str(),
                    s.payload.as_str(),
                    s.birth_date,
                    s.gateway_system.as_str()
                ),
                (
                    "https://other.example.nl/notify",
                    "application/fhir+xml",
                    None,
                    "2.16.528.1.9"
                ),
                "{}",
                t.kind()
            );
            assert_eq!(s.bsn, bsn(4), "{}: the patient stays", t.kind());
            assert_eq!(s.source_system, "2.16.528.1.1");
        }
        let located = t.store.subscriptions_of(&bsn(4)).await.unwrap();
        assert_eq!(located.len(), 1);
        assert_eq!(located[0].gateway_system, "2.16.528.1.9", "{}", t.kind());
    }
}

#[tokio::test]
async fn a_deactivated_subscription_is_kept_but_no_longer_a_location() {
    for t in backends().await {
        let registered = registration(5, "lsp", "2.16.528.1.1");
        let id = t
            .store
            .create_subscription(&registered, &audit())
            .await
            .unwrap()
            .id();
        assert_eq!(t.store.subscriptions_of(&bsn(5)).await.unwrap().len(), 1);

        let off = SubscriptionChange {
            endpoint: registered.endpoint.clone(),
            payload: registered.payload.clone(),
            birth_date: registered.birth_date,
            gateway_system: registered.gateway_system.clone(),
            state: SubscriptionState::Off,
        };
        let deactivated = t
            .store
            .update_subscription("lsp", id, &off, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(deactivated.state, SubscriptionState::Off, "{}", t.kind());
        assert!(
            t.store.subscriptions_of(&bsn(5)).await.unwrap().is_empty(),
            "{}: no longer used by the open question",
            t.kind()
        );
        let kept = t.store.subscription("lsp", id).await.unwrap().unwrap();
        assert_eq!(kept.state, SubscriptionState::Off);

        // Registering again names the kept subscription; it stays off until updated.
        assert_eq!(
            t.store
                .create_subscription(&registered, &audit())
                .await
                .unwrap(),
            Registration::Existing(id)
        );
        assert!(t.store.subscriptions_of(&bsn(5)).await.unwrap().is_empty());
        let on = SubscriptionChange {
            state: SubscriptionState::Active,
            ..off
        };
        t.store
            .update_subscription("lsp", id, &on, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(t.store.subscriptions_of(&bsn(5)).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_deleted_subscription_is_gone_and_may_be_registered_anew() {
    for t in backends().await {
        let registered = registration(6, "lsp", "2.16.528.1.1");
        let id = t
            .store
            .create_subscription(&registered, &audit())
            .await
            .unwrap()
            .id();
        let deleted = t
            .store
            .delete_subscription("lsp", id, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(deleted.id, id);
        assert_eq!(deleted.registration.bsn, bsn(6), "{}", t.kind());
        assert!(t.store.subscription("lsp", id).await.unwrap().is_none());
        assert!(
            t.store
                .delete_subscription("lsp", id, &audit())
                .await
                .unwrap()
                .is_none()
        );
        assert!(t.store.subscriptions_of(&bsn(6)).await.unwrap().is_empty());

        let again = t
            .store
            .create_subscription(&registered, &audit())
            .await
            .unwrap();
        assert!(
            matches!(again, Registration::Created(new_id) if new_id != id),
            "{}: {again:?}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn a_subscribed_patient_is_stored_as_pseudonym_and_ciphertext_only() {
    for t in backends().await {
        t.store
            .create_subscription(&registration(7, "lsp", "2.16.528.1.1"), &audit())
            .await
            .unwrap();
        let digits = bsn(7).expose().as_bytes().to_vec();
        for column in t.citizen_columns().await {
            assert!(
                !contains(&column, &digits),
                "{}: BSN in the clear",
                t.kind()
            );
        }
        for file in t.sqlite_files() {
            let bytes = std::fs::read(file).unwrap();
            assert!(!contains(&bytes, &digits), "BSN in the SQLite file");
        }
    }
}

/// A change and its audit record are one transaction: each create (new or existing), update and
/// delete leaves exactly one record in the chain, and a change that finds nothing leaves none.
#[tokio::test]
async fn every_change_is_audited_with_it() {
    for t in backends().await {
        let records = async || t.store.audit_verify().await.unwrap().records;
        let registered = registration(8, "lsp", "2.16.528.1.1");
        let id = t
            .store
            .create_subscription(&registered, &audit())
            .await
            .unwrap()
            .id();
        assert_eq!(records().await, 1, "{}: create", t.kind());
        t.store
            .create_subscription(&registered, &audit())
            .await
            .unwrap();
        assert_eq!(records().await, 2, "{}: existing", t.kind());
        let off = SubscriptionChange {
            endpoint: registered.endpoint.clone(),
            payload: registered.payload.clone(),
            birth_date: registered.birth_date,
            gateway_system: registered.gateway_system.clone(),
            state: SubscriptionState::Off,
        };
        t.store
            .update_subscription("lsp", id, &off, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(records().await, 3, "{}: update", t.kind());
        assert!(
            t.store
                .update_subscription("other", id, &off, &audit())
                .await
                .unwrap()
                .is_none()
        );
        t.store
            .delete_subscription("lsp", id, &audit())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(records().await, 4, "{}: delete", t.kind());
        assert!(
            t.store
                .delete_subscription("lsp", id, &audit())
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(records().await, 4, "{}: nothing found", t.kind());
        assert_eq!(
            t.store.audit_verify().await.unwrap().first_broken,
            None,
            "{}",
            t.kind()
        );
    }
}
