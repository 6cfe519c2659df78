//! The provider directory, connectors and subscriptions.

use otv_core::{OrgType, Ura};
use otv_store::{Connector, NewSubscription, Provider};

use crate::support::{backends, bsn};

fn ura(s: &str) -> Ura {
    Ura::parse(s).unwrap()
}

#[tokio::test]
async fn providers_round_trip_and_update() {
    for t in backends().await {
        let a = Provider {
            ura: ura("00000001"),
            name: "Huisartsenpraktijk A".into(),
            organisation_type: OrgType::parse("Z3").unwrap(),
        };
        let b = Provider {
            ura: ura("00000002"),
            name: "Apotheek B".into(),
            organisation_type: OrgType::parse("J8").unwrap(),
        };
        t.store
            .upsert_providers(&[a.clone(), b.clone()])
            .await
            .unwrap();
        assert_eq!(
            t.store.provider(&a.ura).await.unwrap(),
            Some(a.clone()),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.provider(&b.ura).await.unwrap(),
            Some(b.clone()),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.provider(&ura("00000003")).await.unwrap(),
            None,
            "{}",
            t.kind()
        );

        let renamed = Provider {
            name: "Gezondheidscentrum A".into(),
            organisation_type: OrgType::parse("Z4").unwrap(),
            ..a.clone()
        };
        t.store
            .upsert_providers(std::slice::from_ref(&renamed))
            .await
            .unwrap();
        assert_eq!(
            t.store.provider(&a.ura).await.unwrap(),
            Some(renamed),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.int("SELECT count(*) FROM providers").await,
            2,
            "{}",
            t.kind()
        );
        t.store.upsert_providers(&[]).await.unwrap();

        // The same URA twice in one call: the last entry wins, as if applied one by one.
        let first = Provider {
            name: "First".into(),
            ..b.clone()
        };
        let last = Provider {
            name: "Last".into(),
            ..b.clone()
        };
        t.store
            .upsert_providers(&[first, last.clone()])
            .await
            .unwrap();
        assert_eq!(
            t.store.provider(&b.ura).await.unwrap(),
            Some(last),
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn connectors_round_trip_and_their_ura_list_is_replaced() {
    for t in backends().await {
        let lsp = Connector {
            id: "lsp".into(),
            name: "Landelijk Schakelpunt".into(),
            certificate_sha256: Some("ab".repeat(32)),
            acts_for: vec![ura("00000001"), ura("00000002")],
        };
        t.store.upsert_connector(&lsp).await.unwrap();
        assert_eq!(
            t.store.connector("lsp").await.unwrap(),
            Some(lsp.clone()),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.connector("other").await.unwrap(),
            None,
            "{}",
            t.kind()
        );

        let changed = Connector {
            name: "LSP".into(),
            certificate_sha256: None,
            acts_for: vec![ura("00000003")],
            ..lsp.clone()
        };
        t.store.upsert_connector(&changed).await.unwrap();
        assert_eq!(
            t.store.connector("lsp").await.unwrap(),
            Some(changed),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.int("SELECT count(*) FROM connector_uras").await,
            1,
            "{}",
            t.kind()
        );

        let none = Connector {
            id: "solo".into(),
            name: "Solo".into(),
            certificate_sha256: Some("cd".repeat(32)),
            acts_for: vec![],
        };
        t.store.upsert_connector(&none).await.unwrap();
        assert_eq!(
            t.store.connector("solo").await.unwrap(),
            Some(none.clone()),
            "{}",
            t.kind()
        );

        // An exchange system acting for very many providers.
        let many: Vec<Ura> = (0..20_000)
            .map(|i| ura(&format!("{:08}", 10_000_000 + i)))
            .collect();
        let lsp = Connector {
            acts_for: many.clone(),
            ..lsp
        };
        t.store.upsert_connector(&lsp).await.unwrap();
        assert_eq!(
            t.store.connector("lsp").await.unwrap().unwrap().acts_for,
            many,
            "{}",
            t.kind()
        );

        // A certificate identifies one connector only.
        let thief = Connector {
            id: "thief".into(),
            ..none
        };
        assert!(
            t.store.upsert_connector(&thief).await.is_err(),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.connector("thief").await.unwrap(),
            None,
            "{}",
            t.kind()
        );
    }
}

fn subscription(patient: u32, holder: &str, connector: &str, source: &str) -> NewSubscription {
    NewSubscription {
        bsn: bsn(patient),
        birth_date: Some("2001-02-03".parse().unwrap()),
        holder_ura: ura(holder),
        holder_type: OrgType::parse("Z3").unwrap(),
        connector_id: connector.into(),
        source_system: source.into(),
        gateway_system: "2.16.840.1.113883.2.4.6.6.1".into(),
        endpoint: "https://lsp.example/notify".into(),
        payload: "application/fhir+json".into(),
    }
}

#[tokio::test]
async fn subscriptions_are_stored_and_a_repeated_registration_is_ignored() {
    for t in backends().await {
        let first = subscription(1, "00000001", "lsp", "2.16.528.1.1007.3.3.1");
        t.store
            .insert_subscriptions(&[
                first.clone(),
                subscription(1, "00000002", "lsp", "2.16.528.1.1007.3.3.2"),
                subscription(2, "00000001", "lsp", "2.16.528.1.1007.3.3.1"),
            ])
            .await
            .unwrap();
        assert_eq!(
            t.store.stats().await.unwrap().subscriptions,
            3,
            "{}",
            t.kind()
        );
        assert_eq!(t.store.stats().await.unwrap().citizens, 2, "{}", t.kind());

        // Same connector, patient and source system: ignored, the first registration stays
        // (a connector's retry is harmless). Another connector may register the same.
        let repeat = NewSubscription {
            endpoint: "https://elsewhere.example/".into(),
            ..first.clone()
        };
        t.store.insert_subscriptions(&[repeat]).await.unwrap();
        assert_eq!(
            t.store.stats().await.unwrap().subscriptions,
            3,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.int(
                "SELECT count(*) FROM subscriptions WHERE endpoint = 'https://lsp.example/notify'"
            )
            .await,
            3
        );
        t.store
            .insert_subscriptions(&[subscription(
                1,
                "00000001",
                "other",
                "2.16.528.1.1007.3.3.1",
            )])
            .await
            .unwrap();
        assert_eq!(
            t.store.stats().await.unwrap().subscriptions,
            4,
            "{}",
            t.kind()
        );

        // Round trip of the columns.
        let row = t
            .text(
                "SELECT holder_ura || '|' || holder_type || '|' || connector_id || '|' || source_system || '|' || \
                 gateway_system || '|' || endpoint || '|' || payload || '|' || status FROM subscriptions \
                 WHERE holder_ura = '00000002'",
            )
            .await
            .unwrap();
        assert_eq!(
            row,
            "00000002|Z3|lsp|2.16.528.1.1007.3.3.2|2.16.840.1.113883.2.4.6.6.1|https://lsp.example/notify|application/fhir+json|active"
        );
        let birth = t
            .text(
                "SELECT CAST(birth_date AS TEXT) FROM subscriptions WHERE holder_ura = '00000002'",
            )
            .await;
        assert_eq!(birth.as_deref(), Some("2001-02-03"), "{}", t.kind());
        // The subscription and the citizen's profile meet at the same citizen.
        assert_eq!(
            t.int("SELECT count(DISTINCT citizen_id) FROM subscriptions")
                .await,
            2,
            "{}",
            t.kind()
        );
    }
}

#[tokio::test]
async fn registrations_for_the_same_new_citizens_in_opposite_orders_do_not_deadlock() {
    for t in backends().await {
        let mut tasks = Vec::new();
        for pair in 0..10u32 {
            for forward in [true, false] {
                let store = t.store.clone();
                let source = format!("2.16.528.1.1007.3.3.{forward}");
                let a = subscription(100 + pair, "00000001", "lsp", &source);
                let b = subscription(200 + pair, "00000001", "lsp", &source);
                let batch = if forward { vec![a, b] } else { vec![b, a] };
                tasks.push(tokio::spawn(async move {
                    store.insert_subscriptions(&batch).await
                }));
            }
        }
        for task in tasks {
            task.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{}: {e}", t.kind()));
        }
        let stats = t.store.stats().await.unwrap();
        assert_eq!(
            (stats.citizens, stats.subscriptions),
            (20, 40),
            "{}",
            t.kind()
        );
    }
}
