//! A BSN at rest: only its keyed pseudonym and its ciphertext are stored; the keys are needed
//! to find the citizen and to read the number back.

use otv_store::{CitizenDetails, Keys};

use crate::support::{backends, bsn, contains};

#[tokio::test]
async fn a_bsn_is_stored_only_as_pseudonym_and_ciphertext() {
    for t in backends().await {
        let patient = bsn(42);
        let digits = patient.expose().as_bytes().to_vec();
        let details = CitizenDetails {
            name: Some("J. de Vries".into()),
            email: Some("j@example.org".into()),
            birth_date: Some("1980-02-03".parse().unwrap()),
        };
        let id = t.store.upsert_citizen(&patient, &details).await.unwrap();

        let columns = t.citizen_columns().await;
        assert!(!columns.is_empty());
        for c in &columns {
            assert!(
                !contains(c, &digits),
                "{}: the BSN is stored in the clear",
                t.kind()
            );
            assert!(
                !contains(hex::encode(c).as_bytes(), &digits),
                "{}",
                t.kind()
            );
        }
        assert_eq!(
            t.bytes("SELECT bsn_pseudonym FROM citizens").await.len(),
            32,
            "{}",
            t.kind()
        );
        assert_eq!(
            t.bytes("SELECT bsn_encrypted FROM citizens").await.len(),
            12 + 9 + 16,
            "{}",
            t.kind()
        );
        // Not in the file either, not even in a page the write-ahead log still holds.
        for file in t.sqlite_files() {
            assert!(
                !contains(&std::fs::read(&file).unwrap(), &digits),
                "BSN found in {}",
                file.display()
            );
        }

        assert_eq!(
            t.store.citizen_bsn(id).await.unwrap(),
            Some(patient.clone()),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.store.citizen_bsn(uuid::Uuid::now_v7()).await.unwrap(),
            None,
            "{}",
            t.kind()
        );

        // Upserting again finds the same citizen; None leaves stored details as they are.
        let again = t
            .store
            .upsert_citizen(
                &patient,
                &CitizenDetails {
                    email: Some("new@example.org".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(again, id, "{}", t.kind());
        assert_eq!(
            t.text("SELECT name FROM citizens").await.as_deref(),
            Some("J. de Vries"),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.text("SELECT email FROM citizens").await.as_deref(),
            Some("new@example.org"),
            "{}",
            t.kind()
        );
        assert_eq!(
            t.int("SELECT count(*) FROM citizens").await,
            1,
            "{}",
            t.kind()
        );

        // Other keys: the citizen cannot be found (another pseudonym) nor read (another
        // encryption key); the error says so without the number.
        let other = otv_store::connect(&t.url, Keys::generate()).await.unwrap();
        assert!(
            other.profile(&patient).await.unwrap().is_empty(),
            "{}",
            t.kind()
        );
        let err = other.citizen_bsn(id).await.unwrap_err();
        assert!(
            matches!(err, otv_store::StoreError::Corrupt(_)),
            "{}: {err}",
            t.kind()
        );
        assert!(!err.to_string().contains(patient.expose()), "{}", t.kind());
        let other_id = other
            .upsert_citizen(&patient, &CitizenDetails::default())
            .await
            .unwrap();
        assert_ne!(
            other_id,
            id,
            "{}: a different pseudonym key found the citizen",
            t.kind()
        );
    }
}
