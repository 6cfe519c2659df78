//! An emergency consent counts for 72 hours, to the second (PRODUCT.md §8, §5: an answer is
//! in force when `valid_from ≤ t < valid_until`), through the closed question.
//!
//! otv's router runs in process on a real database (a SQLite file; PostgreSQL too when
//! `OTV_TEST_DATABASE_URL` is set) with a fixed clock, reached with tower's `oneshot` on the
//! development plain-HTTP provider routes. The emergency consent is recorded at T through the
//! direct API with a real enrolment token (test UZI-card CA); the closed question is asked at
//! T + 72 h − 1 s (Permit for every holder category) and at T + 72 h (Deny), both as plain
//! JSON and as an AuthZEN evaluation.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use otv_core::{Bsn, Catalogue, DefaultPolicy, Ura};
use otv_server::AppState;
use otv_server::assisted::token::{Factor, TrustAnchors};
use otv_server::assisted::{Assisted, handoff};
use otv_server::clock::Clock;
use otv_server::tls::testpki::EnrolmentIssuer;
use otv_store::{Connector, Keys, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

const PATIENT: &str = "900203638";
const CONSULTER: &str = "00000001";
const OTHER_CONSULTER: &str = "00000002";
const HOLDER: &str = "00000010";
const CONNECTOR: &str = "test-lsp";

/// A database for one run; a PostgreSQL one is dropped by [`Db::cleanup`].
struct Db {
    url: String,
    admin: Option<String>,
    _dir: tempfile::TempDir,
}

impl Db {
    async fn cleanup(self) {
        use sqlx::Connection;
        if let Some(admin) = &self.admin {
            let name = self.url.rsplit('/').next().unwrap();
            let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
}

async fn databases() -> Vec<Db> {
    let dir = tempfile::tempdir().unwrap();
    let mut dbs = vec![Db {
        url: format!("sqlite://{}", dir.path().join("otv.sqlite").display()),
        admin: None,
        _dir: dir,
    }];
    if let Ok(admin) = std::env::var("OTV_TEST_DATABASE_URL") {
        use sqlx::Connection;
        let name = format!("otv_clock_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').unwrap().0;
        dbs.push(Db {
            url: format!("{base}/{name}"),
            admin: Some(admin),
            _dir: tempfile::tempdir().unwrap(),
        });
    }
    dbs
}

/// The application as `otv serve` builds it, on `store`, standing at `clock`, trusting the
/// issuer's UZI-card CA, with the provider routes on plain HTTP for connector `test-lsp`.
fn state(store: Store, clock: Clock, issuer: &EnrolmentIssuer) -> AppState {
    let uras = [CONSULTER, OTHER_CONSULTER, HOLDER]
        .iter()
        .map(|u| Ura::parse(u).unwrap())
        .collect();
    let connector = Connector {
        id: CONNECTOR.into(),
        name: "test exchange system".into(),
        certificate_sha256: None,
        acts_for: uras,
    };
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    AppState {
        store,
        catalogue: Arc::new(Catalogue::default_catalogue()),
        policy: DefaultPolicy::OptIn,
        metrics,
        connectors: Arc::new(otv_server::provider::Connectors::new([connector])),
        dev_plain_provider_http: true,
        provider_base_path: String::new(),
        saml_audience: "urn:test".into(),
        subscription_throttle: Arc::new(otv_server::provider::subscription::Throttle::new(
            otv_server::provider::subscription::ThrottleSettings {
                rate_per_second: 1000.0,
                burst: 1000,
            },
        )),
        saml_signers: None,
        portal: Arc::new(
            otv_server::portal::Portal::new(otv_server::portal::PortalConfig::default()).unwrap(),
        ),
        clock,
        assisted: Arc::new(Assisted {
            hand_off: handoff::Settings::default(),
            enrolment: TrustAnchors::from_der(
                &[issuer.uzi_card_ca().der.clone()],
                &[issuer.wid_ca().der.clone()],
            )
            .unwrap(),
        }),
        mail: None,
        outbox: Arc::new(
            otv_server::notify::Outbox::new(otv_server::notify::OutboxSettings::default()).unwrap(),
        ),
    }
}

/// `POST path` with `body` as the test connector: status and JSON body.
async fn post(state: &AppState, path: &str, body: &Value) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header(otv_server::provider::DEV_CONNECTOR_HEADER, CONNECTOR)
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = otv_server::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// For every holder category (its first organisation type), the plain-JSON closed question of
/// `consulter` about GGC002 and the category's own data: each decision.
async fn decisions(state: &AppState, consulter: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in state.catalogue.holder_categories() {
        let question = json!({
            "bsn": PATIENT,
            "holder": {"ura": HOLDER, "organisation_type": h.organisation_types[0].as_str()},
            "consulter": {"ura": consulter, "organisation_type": "Z3"},
            "professional": {"uzi": "900010001", "role": "01.015"},
            "purpose": "TREAT",
            "data_categories": ["GGC002", h.data_category.as_str()],
        });
        let (status, body) = post(state, "/v1/closed-question", &question).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for r in body["results"].as_array().unwrap() {
            out.push(r["decision"].as_str().unwrap().to_owned());
        }
    }
    out
}

/// The AuthZEN evaluation of `consulter` about a pharmacy's medication data: the decision.
async fn authzen(state: &AppState, consulter: &str) -> bool {
    let body = json!({
        "subject": {"type": "professional", "id": "900010001", "properties": {
            "role": "01.015", "consulter_ura": consulter, "consulter_organisation_type": "Z3"}},
        "resource": {"type": "patient_record", "id": PATIENT, "properties": {
            "holder_ura": HOLDER, "holder_organisation_type": "J8", "data_category": "GGC013"}},
        "action": {"name": "consult"},
        "context": {"purpose": "TREAT"},
    });
    let (status, v) = post(state, "/access/v1/evaluation", &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["decision"].as_bool().unwrap()
}

fn all(decisions: &[String], decision: &str) -> bool {
    !decisions.is_empty() && decisions.iter().all(|d| d == decision)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_consent_permits_until_72_hours_later_to_the_second() {
    let issuer = EnrolmentIssuer::new().unwrap();
    // A whole second, now (the test certificates are valid from yesterday).
    let t: DateTime<Utc> = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    for db in databases().await {
        let keys = if db.admin.is_some() {
            Keys::generate()
        } else {
            Keys::development()
        };
        let store = otv_store::connect(&db.url, keys).await.unwrap();
        store.migrate().await.unwrap();
        let clock = Clock::fixed(t);
        let state = state(store, clock.clone(), &issuer);
        assert!(all(&decisions(&state, CONSULTER).await, "Deny"));

        let token = issuer.token(
            &Ura::parse(CONSULTER).unwrap(),
            &Bsn::parse(PATIENT).unwrap(),
            Factor::UziPas,
            t,
            t + Duration::minutes(15),
            "clock-test",
        );
        let (status, recorded) = post(
            &state,
            "/v1/emergency-consent",
            &json!({
                "bsn": PATIENT,
                "consulter_ura": CONSULTER,
                "professional": {"uzi": "900010001", "role": "01.015"},
                "enrolment_token": token,
            }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{recorded}");
        let until: DateTime<Utc> = recorded["valid_until"].as_str().unwrap().parse().unwrap();
        assert_eq!(until, t + Duration::hours(72));

        // One second before the end: Permit for the consulter, from every holder category.
        clock.set(t + Duration::hours(72) - Duration::seconds(1));
        let before = decisions(&state, CONSULTER).await;
        assert_eq!(before.len(), 2 * state.catalogue.holder_categories().len());
        assert!(all(&before, "Permit"), "{before:?}");
        assert!(authzen(&state, CONSULTER).await);
        assert!(all(&decisions(&state, OTHER_CONSULTER).await, "Deny"));
        assert!(!authzen(&state, OTHER_CONSULTER).await);

        // At the end: Deny.
        clock.set(t + Duration::hours(72));
        let after = decisions(&state, CONSULTER).await;
        assert!(all(&after, "Deny"), "{after:?}");
        assert!(!authzen(&state, CONSULTER).await);

        db.cleanup().await;
    }
}
