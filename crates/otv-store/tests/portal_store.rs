//! The citizen portal's storage, on every backend: sessions (stored by the hash of their token,
//! BSNs never in the clear, idle ones ended), terms-of-use acceptances with their audit record,
//! the citizen's details, and the directory search.
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store --test portal_store`.

#[path = "store/support.rs"]
#[allow(
    dead_code,
    reason = "shared with the main storage tests; not every helper is used here"
)]
mod support;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use otv_core::{OrgType, Ura};
use otv_store::{AuditEvent, CitizenDetails, PortalSession, Provider, ProviderQuery};
use support::{backends, bsn, contains};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn session(actor: u32, subject: u32, login: DateTime<Utc>) -> PortalSession {
    PortalSession {
        actor: bsn(actor),
        subject: bsn(subject),
        actor_name: Some("Ans de Vries".into()),
        subject_name: None,
        subject_birth_date: Some(NaiveDate::from_ymd_opt(2012, 5, 1).unwrap()),
        csrf_token: "csrf-token-1".into(),
        terms_version: None,
        login_at: login,
        last_seen_at: login,
    }
}

fn hash(n: u8) -> [u8; 32] {
    [n; 32]
}

#[tokio::test]
async fn a_session_is_found_by_its_token_hash_and_moves_its_last_activity() {
    for t in backends().await {
        let login = at("2026-11-30T10:00:00Z");
        let s = session(1, 2, login);
        t.store
            .create_portal_session(&hash(1), &s, login - Duration::minutes(15))
            .await
            .unwrap();
        let later = login + Duration::minutes(10);
        let found = t
            .store
            .touch_portal_session(&hash(1), later - Duration::minutes(15), later)
            .await
            .unwrap()
            .expect("an active session");
        assert_eq!(found.actor, bsn(1), "{}", t.kind());
        assert_eq!(found.subject, bsn(2));
        assert_eq!(found.actor_name.as_deref(), Some("Ans de Vries"));
        assert_eq!(found.subject_birth_date, s.subject_birth_date);
        assert_eq!(found.csrf_token, "csrf-token-1");
        assert_eq!(found.login_at, login);
        assert_eq!(found.last_seen_at, later, "{}", t.kind());
        assert!(
            t.store
                .touch_portal_session(&hash(9), later, later)
                .await
                .unwrap()
                .is_none(),
            "another token finds nothing"
        );
    }
}

#[tokio::test]
async fn an_idle_session_ends_and_stays_ended() {
    for t in backends().await {
        let login = at("2026-11-30T10:00:00Z");
        t.store
            .create_portal_session(&hash(1), &session(1, 1, login), login)
            .await
            .unwrap();
        // Idle since before the cutoff: gone, even for a later request within a new window.
        let late = login + Duration::minutes(20);
        let cutoff = late - Duration::minutes(15);
        assert!(
            t.store
                .touch_portal_session(&hash(1), cutoff, late)
                .await
                .unwrap()
                .is_none(),
            "{}",
            t.kind()
        );
        assert_eq!(t.int("SELECT count(*) FROM portal_sessions").await, 0);
        assert!(
            t.store
                .touch_portal_session(&hash(1), login - Duration::hours(1), late)
                .await
                .unwrap()
                .is_none(),
            "an ended session does not come back"
        );
    }
}

#[tokio::test]
async fn a_new_session_sweeps_idle_ones_and_logout_ends_one() {
    for t in backends().await {
        let old = at("2026-11-30T08:00:00Z");
        let now = at("2026-11-30T10:00:00Z");
        t.store
            .create_portal_session(&hash(1), &session(1, 1, old), old)
            .await
            .unwrap();
        t.store
            .create_portal_session(&hash(2), &session(2, 2, now), now - Duration::minutes(15))
            .await
            .unwrap();
        assert_eq!(
            t.int("SELECT count(*) FROM portal_sessions").await,
            1,
            "{}",
            t.kind()
        );
        t.store.delete_portal_session(&hash(2)).await.unwrap();
        t.store.delete_portal_session(&hash(2)).await.unwrap();
        assert!(
            t.store
                .touch_portal_session(&hash(2), now - Duration::minutes(15), now)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn sessions_hold_no_bsn_and_no_token_in_the_clear() {
    for t in backends().await {
        let login = Utc::now();
        t.store
            .create_portal_session(&hash(7), &session(1, 2, login), login)
            .await
            .unwrap();
        let columns = [
            "actor_pseudonym",
            "actor_encrypted",
            "subject_pseudonym",
            "subject_encrypted",
        ];
        for column in columns {
            let bytes = t
                .bytes(&format!("SELECT {column} FROM portal_sessions"))
                .await;
            for who in [bsn(1), bsn(2)] {
                assert!(
                    !contains(&bytes, who.expose().as_bytes()),
                    "{column} holds a BSN ({})",
                    t.kind()
                );
            }
        }
        let everything = t
            .text(match t.kind() {
                "sqlite" => {
                    "SELECT group_concat(coalesce(actor_name, '') || csrf_token || coalesce(subject_birth_date, ''), '') FROM portal_sessions"
                }
                _ => "SELECT string_agg(row_to_json(s)::text, '') FROM portal_sessions s",
            })
            .await
            .unwrap();
        for who in [bsn(1), bsn(2)] {
            assert!(!everything.contains(who.expose()), "{}", t.kind());
        }
    }
}

#[tokio::test]
async fn accepting_the_terms_is_stored_per_version_marks_the_session_and_is_audited() {
    for t in backends().await {
        let now = Utc::now();
        let citizen = bsn(3);
        t.store
            .create_portal_session(&hash(3), &session(3, 3, now), now - Duration::minutes(15))
            .await
            .unwrap();
        assert!(!t.store.terms_accepted(&citizen, "2026-11").await.unwrap());
        let audit = AuditEvent {
            at: now,
            event: "terms-accepted".into(),
            actor: "citizen".into(),
            channel: Some("portal".into()),
            details: serde_json::json!({ "version": "2026-11" }),
            ..AuditEvent::default()
        };
        let before = t.int("SELECT count(*) FROM audit_log").await;
        t.store
            .accept_terms(&citizen, "2026-11", &hash(3), &audit)
            .await
            .unwrap();
        // Accepting twice keeps the first acceptance.
        t.store
            .accept_terms(&citizen, "2026-11", &hash(3), &audit)
            .await
            .unwrap();
        assert!(t.store.terms_accepted(&citizen, "2026-11").await.unwrap());
        assert!(
            !t.store.terms_accepted(&citizen, "2027-01").await.unwrap(),
            "a new version must be accepted again ({})",
            t.kind()
        );
        assert!(!t.store.terms_accepted(&bsn(4), "2026-11").await.unwrap());
        assert_eq!(t.int("SELECT count(*) FROM terms_acceptances").await, 1);
        assert_eq!(t.int("SELECT count(*) FROM audit_log").await, before + 2);
        let s = t
            .store
            .touch_portal_session(&hash(3), now - Duration::minutes(15), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.terms_version.as_deref(), Some("2026-11"), "{}", t.kind());
        let report = t.store.audit_verify().await.unwrap();
        assert_eq!(report.first_broken, None);
    }
}

#[tokio::test]
async fn citizen_details_are_read_back() {
    for t in backends().await {
        assert_eq!(t.store.citizen_details(&bsn(5)).await.unwrap(), None);
        let details = CitizenDetails {
            name: Some("Piet".into()),
            email: None,
            birth_date: NaiveDate::from_ymd_opt(1980, 2, 29),
        };
        t.store.upsert_citizen(&bsn(5), &details).await.unwrap();
        assert_eq!(
            t.store.citizen_details(&bsn(5)).await.unwrap(),
            Some(details),
            "{}",
            t.kind()
        );
    }
}

fn provider(ura: &str, name: &str, org_type: &str) -> Provider {
    Provider {
        ura: Ura::parse(ura).unwrap(),
        name: name.into(),
        organisation_type: OrgType::parse(org_type).unwrap(),
    }
}

async fn search(t: &support::TestStore, text: &str, types: &[&str], limit: u32) -> Vec<String> {
    let types: Vec<OrgType> = types.iter().map(|c| OrgType::parse(c).unwrap()).collect();
    t.store
        .search_providers(&ProviderQuery {
            text,
            organisation_types: &types,
            limit,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.ura.to_string())
        .collect()
}

#[tokio::test]
async fn the_directory_is_searched_by_name_ura_and_type_bounded_and_ordered_by_name() {
    for t in backends().await {
        t.store
            .upsert_providers(&[
                provider("00000001", "Huisartsenpraktijk De Linde", "Z3"),
                provider("00000010", "Apotheek Het Plein", "J8"),
                provider("00000011", "Ziekenhuisapotheek Oost", "K9"),
                provider("00000020", "Ziekenhuis Rivierenland", "V6"),
                provider("00000030", "Lab 100% Zeker_Noord", "L1"),
            ])
            .await
            .unwrap();
        let k = t.kind();
        assert_eq!(
            search(&t, "apotheek", &[], 10).await,
            ["00000010", "00000011"],
            "{k}"
        );
        assert_eq!(
            search(&t, "LINDE", &[], 10).await,
            ["00000001"],
            "case-insensitive ({k})"
        );
        assert_eq!(search(&t, "00000020", &[], 10).await, ["00000020"], "{k}");
        assert!(
            search(&t, "0000002", &[], 10).await.is_empty(),
            "a URA matches whole ({k})"
        );
        assert_eq!(
            search(&t, "", &["V6", "Z3"], 10).await,
            ["00000001", "00000020"],
            "by type, ordered by name ({k})"
        );
        assert_eq!(search(&t, "100%", &[], 10).await, ["00000030"], "{k}");
        assert!(
            search(&t, "b%Z", &[], 10).await.is_empty(),
            "% is a character, not a wildcard ({k})"
        );
        assert!(
            search(&t, "l_n", &[], 10).await.is_empty(),
            "_ is a character, not a wildcard ({k})"
        );
        assert_eq!(search(&t, "e", &[], 2).await.len(), 2, "bounded ({k})");
        assert!(search(&t, "", &[], 10).await.is_empty(), "{k}");
    }
}
