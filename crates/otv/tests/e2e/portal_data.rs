//! The citizen's own data in the portal, through the real binary over HTTP with the
//! development login, on SQLite and PostgreSQL: history with its period filter, signed
//! receipts verified with the served key by an independent JWS implementation, notification
//! settings with e-mail verification by link, lock settings, download of my data, pending
//! emergency consents (confirm, withdraw), deleting a profile; and that one citizen can never
//! read or change another's.

use chrono::{Duration, Utc};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Channel, DataCategory, Effect, Party, Provenance, Ura,
};
use otv_store::{AuditEvent, Keys};

use crate::portal_client::{DevLogin, hidden, login, start, xacml_decision};
use crate::support::{Db, Server, databases, otv, text};

/// Demo citizen: yes to every option; subscribed at the demo providers.
const JAN: &str = "900203638";
/// Demo citizen: no to every option.
const PIET: &str = "900203651";

fn keys_of(db: &Db) -> Keys {
    let key = |name: &str| {
        db.keys
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    Keys::from_hex(
        &key("OTV_PSEUDONYM_KEY"),
        &key("OTV_ENCRYPTION_KEY"),
        &key("OTV_AUDIT_SIGNING_KEY"),
        &key("OTV_RECEIPT_SIGNING_KEY"),
    )
    .unwrap()
}

/// Raw SQL on the test database (outbox links, session ages, audit counts).
async fn sql_text(db: &Db, sql: &str) -> Option<String> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        let v = sqlx::query_scalar(sql).fetch_optional(&pool).await.unwrap();
        pool.close().await;
        v
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let v = sqlx::query_scalar(sql).fetch_optional(&pool).await.unwrap();
        pool.close().await;
        v
    }
}

async fn sql_exec(db: &Db, sqlite: &str, postgres: &str) {
    if db.url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sqlite.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(postgres.to_owned()))
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    }
}

/// Verifies a compact JWS with the served key set, with `jsonwebtoken` (not otv's code).
fn verify(jws: &str, jwks: &str) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header, jwk::JwkSet};
    let set: JwkSet = serde_json::from_str(jwks).unwrap();
    let header = decode_header(jws)?;
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the key set");
    let key = DecodingKey::from_jwk(jwk)?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    Ok(decode::<serde_json::Value>(jws, &key, &validation)?.claims)
}

/// The first receipt link (`/bewijs/N`) on a page.
fn receipt_link(html: &str) -> String {
    let start = html.find("href=\"/bewijs/").expect("a receipt link") + "href=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn history_receipts_and_settings_are_the_citizens_own() {
    for db in databases().await {
        let server = start(&db, &[]);
        let mut jan = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;
        let mut piet = login(&server, DevLogin::new(PIET).name("Piet Pietersen")).await;
        assert_eq!(xacml_decision(&server, JAN).await, "Permit");

        // History: the demo change with its receipt, and the check just made.
        let history = jan.get("/geschiedenis").await;
        assert_eq!(history.status, 200);
        assert!(
            history.body.contains("Huisartsenpost Midden (00000002)"),
            "{}",
            history.body
        );
        assert!(
            history
                .body
                .contains("Huisartsenpraktijk De Linde (00000001)")
        );
        let receipt = receipt_link(&history.body);
        // A period without anything, and a date that cannot be read.
        let empty = jan.get("/geschiedenis?van=01-01-2000&tot=31-12-2000").await;
        assert!(
            empty
                .body
                .contains("In deze periode zijn uw keuzes niet veranderd")
        );
        assert!(!empty.body.contains("/bewijs/"));
        let wrong = jan.get("/geschiedenis?van=31-02-2026&lang=en").await;
        assert_eq!(wrong.status, 200);
        assert!(wrong.body.contains("error-summary"), "{}", wrong.body);
        assert!(wrong.body.contains("Enter a date as day-month-year"));
        // Back to Dutch (the choice of language is kept in a cookie).
        assert!(
            jan.get("/geschiedenis?lang=nl")
                .await
                .body
                .contains("<html lang=\"nl\">")
        );

        // The receipt, verified with the served key by an independent JWS implementation.
        let jws = jan.get(&receipt).await;
        assert_eq!(jws.status, 200);
        assert_eq!(jws.content_type, "application/jose");
        let keys = jan.get("/.well-known/otv-receipt-keys.json").await;
        assert_eq!(keys.status, 200);
        let claims = verify(&jws.body, &keys.body).expect("the receipt verifies");
        let seq: i64 = receipt.rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(claims["audit_seq"], seq);
        assert_eq!(claims["record_id"], format!("urn:otv:change:{seq}"));
        assert_eq!(claims["schema_version"], "otv-consent-receipt/1");
        assert_eq!(claims["consents"].as_array().unwrap().len(), 49);
        assert_eq!(claims["consents"][0]["decision"], "permit");
        assert_eq!(claims["pii_principal_id"].as_str().unwrap().len(), 64);
        assert!(!jws.body.contains(JAN) && !claims.to_string().contains(JAN));
        // A receipt whose content was changed does not verify.
        let mut parts: Vec<String> = jws.body.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].replacen('e', "f", 1);
        assert!(verify(&parts.join("."), &keys.body).is_err());
        // Another citizen's receipt, or no number at all, is not found.
        assert_eq!(piet.get(&receipt).await.status, 404);
        assert_eq!(jan.get("/bewijs/999999").await.status, 404);
        assert_eq!(jan.get("/bewijs/abc").await.status, 404);
        let piets = piet.get("/geschiedenis").await;
        assert!(!piets.body.contains(&receipt));
        assert!(
            !piets.body.contains("00000002"),
            "Jan's check is not in Piet's history"
        );

        // Notifications: an address verified by the link in the outbox; Piet cannot use it.
        let sent = jan
            .post_with_token(
                "/meldingen",
                "/meldingen/e-mail",
                &[("email", "jan@example.org")],
            )
            .await;
        assert_eq!(sent.status, 303);
        let payload = sql_text(
            &db,
            "SELECT payload FROM outbox WHERE kind = 'email-verification'",
        )
        .await
        .expect("an outbox row with the link");
        let payload: serde_json::Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(payload["to"], "jan@example.org");
        let link = payload["link"].as_str().unwrap();
        let path = &link[link.find("/e-mail/bevestigen").unwrap()..];
        let token = path.split("token=").nth(1).unwrap().to_owned();
        let refused = piet
            .post_with_token(path, "/e-mail/bevestigen", &[("token", &token)])
            .await;
        assert_eq!(
            refused.location.as_deref(),
            Some("/meldingen?melding=onbekend")
        );
        let page = jan.get(path).await;
        assert!(
            page.body.contains("Ja, dit is mijn e-mailadres"),
            "{}",
            page.body
        );
        let confirmed = jan
            .post_with_token(path, "/e-mail/bevestigen", &[("token", &token)])
            .await;
        assert_eq!(
            confirmed.location.as_deref(),
            Some("/meldingen?melding=bevestigd")
        );
        let settings = jan.get("/meldingen").await;
        assert!(
            settings.body.contains("Dit adres is bevestigd"),
            "{}",
            settings.body
        );
        assert!(
            !piet
                .get("/meldingen")
                .await
                .body
                .contains("jan@example.org")
        );
        let wrong = jan
            .post_with_token(
                "/meldingen",
                "/meldingen/e-mail",
                &[("email", "geen adres")],
            )
            .await;
        assert_eq!(wrong.status, 422);
        assert!(wrong.body.contains("error-summary"));
        let saved = jan
            .post_with_token(
                "/meldingen",
                "/meldingen",
                &[("changes", "off"), ("checks", "daily")],
            )
            .await;
        assert_eq!(saved.status, 303);
        let settings = jan.get("/meldingen").await;
        assert!(
            settings.body.contains(r#"value="daily" checked"#),
            "{}",
            settings.body
        );

        // Locks; a form without the CSRF token changes nothing.
        let forged = jan
            .post_form(
                "/vergrendelen",
                &[("provider", "locked"), ("emergency", "locked")],
            )
            .await;
        assert_eq!(forged.status, 403);
        assert!(
            jan.get("/vergrendelen")
                .await
                .body
                .contains(r#"value="open" checked"#)
        );
        let locked = jan
            .post_with_token(
                "/vergrendelen",
                "/vergrendelen",
                &[("provider", "locked"), ("emergency", "open")],
            )
            .await;
        assert_eq!(
            locked.location.as_deref(),
            Some("/vergrendelen?opgeslagen=1")
        );
        let page = jan.get("/vergrendelen").await;
        assert!(
            page.body
                .contains(r#"id="provider-locked" name="provider" value="locked" checked"#)
        );
        assert!(
            page.body
                .contains(r#"id="emergency-open" name="emergency" value="open" checked"#)
        );
        assert!(
            piet.get("/vergrendelen")
                .await
                .body
                .contains(r#"id="provider-open" name="provider" value="open" checked"#)
        );

        // My data: readable and as JSON, each only the citizen's own.
        let mine = jan.get("/mijn-gegevens").await;
        assert_eq!(mine.status, 200);
        assert!(mine.body.contains("Jan Jansen") && mine.body.contains("jan@example.org"));
        let json = jan.get("/mijn-gegevens.json").await;
        assert_eq!(json.status, 200);
        let export: serde_json::Value = serde_json::from_str(&json.body).unwrap();
        assert_eq!(export["settings"]["lock_provider_changes"], true);
        assert_eq!(export["settings"]["notify_checks"], "daily");
        assert_eq!(export["answers"].as_array().unwrap().len(), 49);
        assert_eq!(export["subscriptions"].as_array().unwrap().len(), 4);
        assert!(!export["consent_checks"].as_array().unwrap().is_empty());
        assert_eq!(export["terms_accepted"].as_array().unwrap().len(), 1);
        assert!(!json.body.contains(JAN));
        let theirs = piet.get("/mijn-gegevens.json").await;
        assert!(!theirs.body.contains("jan@example.org"));
        assert!(!theirs.body.contains(export["pseudonym"].as_str().unwrap()));
        let verify = otv(&db, &["audit", "verify"]);
        assert!(verify.status.success(), "{}", text(&verify));

        // Every page in both languages, with one main heading.
        for (lang, heading) in [("en", "<h1>History</h1>"), ("nl", "<h1>Geschiedenis</h1>")] {
            let page = jan.get(&format!("/geschiedenis?lang={lang}")).await;
            assert!(page.body.contains(&format!("<html lang=\"{lang}\">")));
            assert!(page.body.contains(heading), "{}", page.body);
            for path in [
                "/meldingen",
                "/vergrendelen",
                "/mijn-gegevens",
                "/profiel-verwijderen",
                "/noodtoestemmingen",
            ] {
                let page = jan.get(path).await;
                assert_eq!(page.status, 200, "{path} ({lang})");
                assert!(
                    page.body.contains(&format!("<html lang=\"{lang}\">")),
                    "{path}"
                );
                assert_eq!(page.body.matches("<h1>").count(), 1, "{path}");
            }
        }

        drop((jan, piet));
        server.stop();
        db.cleanup().await;
    }
}

/// Emergency consents for `bsn` by consulter `ura` for two holder categories, ending in 72
/// hours, recorded as the raadplegersknop interface would.
async fn emergency(db: &Db, bsn: &str, ura: &str) {
    let store = otv_store::connect(&db.url, keys_of(db)).await.unwrap();
    let now = Utc::now();
    let answers: Vec<Answer> = ["DH-HA", "DH-APO"]
        .into_iter()
        .map(|holder| Answer {
            key: AnswerKey {
                holder: Party::Category(holder.parse().unwrap()),
                data_category: DataCategory::parse("GGC002").unwrap(),
                consulter: Party::Provider(Ura::parse(ura).unwrap()),
            },
            effect: Effect::Permit,
            valid_from: now,
            valid_until: Some(now + Duration::hours(72)),
            state: AnswerState::Active,
            provenance: Provenance {
                recorded_at: now,
                channel: Channel::Raadplegersknop,
                actor: Actor::Provider {
                    ura: Ura::parse(ura).unwrap(),
                    uzi: None,
                    role: None,
                    mandated: None,
                },
                catalogue_version: "test".into(),
            },
        })
        .collect();
    let event = AuditEvent {
        at: now,
        event: "emergency-consent".into(),
        actor: format!("organisation:{ura}"),
        emergency: true,
        channel: Some("raadplegersknop".into()),
        ..AuditEvent::default()
    };
    store
        .record_answers(&otv_core::Bsn::parse(bsn).unwrap(), &answers, &event)
        .await
        .unwrap();
}

#[tokio::test]
async fn emergency_consents_are_confirmed_or_withdrawn_only_by_their_citizen() {
    for db in databases().await {
        let server = Server::start(&db, &["--demo", "--dev-login"]);
        let mut jan = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;
        let mut piet = login(&server, DevLogin::new(PIET).name("Piet Pietersen")).await;
        assert!(
            jan.get("/noodtoestemmingen")
                .await
                .body
                .contains("Er zijn nu geen noodtoestemmingen")
        );
        emergency(&db, JAN, "00000020").await;
        emergency(&db, JAN, "00000030").await;

        let page = jan.get("/noodtoestemmingen").await;
        assert!(
            page.body.contains("Ziekenhuis Rivierenland (00000020)"),
            "{}",
            page.body
        );
        assert!(page.body.contains("Laboratorium Noord (00000030)"));
        // Piet sees none, and cannot settle Jan's.
        assert!(
            piet.get("/noodtoestemmingen")
                .await
                .body
                .contains("Er zijn nu geen noodtoestemmingen")
        );
        let refused = piet
            .post_with_token(
                "/noodtoestemmingen",
                "/noodtoestemmingen/bevestigen",
                &[("consulter", "00000020")],
            )
            .await;
        assert_eq!(refused.status, 404);

        let confirmed = jan
            .post_with_token(
                "/noodtoestemmingen",
                "/noodtoestemmingen/bevestigen",
                &[("consulter", "00000020")],
            )
            .await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        let location = confirmed.location.unwrap();
        assert!(location.starts_with("/noodtoestemmingen?melding=bevestigd&bewijs="));
        let withdrawn = jan
            .post_with_token(
                "/noodtoestemmingen",
                "/noodtoestemmingen/intrekken",
                &[("consulter", "00000030")],
            )
            .await;
        assert_eq!(withdrawn.status, 303);
        let page = jan.get(&location).await;
        assert!(
            page.body.contains("Er zijn nu geen noodtoestemmingen"),
            "{}",
            page.body
        );

        // The store: the confirmed ones are normal answers without an end, by the citizen in
        // the portal; the withdrawn ones are withdrawn and no longer in force.
        let store = otv_store::connect(&db.url, keys_of(&db)).await.unwrap();
        let profile = store
            .profile(&otv_core::Bsn::parse(JAN).unwrap())
            .await
            .unwrap();
        let of = |ura: &str| -> Vec<&Answer> {
            profile
                .iter()
                .filter(|a| a.key.consulter == Party::Provider(Ura::parse(ura).unwrap()))
                .collect()
        };
        assert_eq!(of("00000020").len(), 2);
        for a in of("00000020") {
            assert_eq!(a.valid_until, None);
            assert_eq!(a.state, AnswerState::Active);
            assert_eq!(a.provenance.channel, Channel::Portal);
            assert_eq!(a.provenance.actor, Actor::Citizen);
        }
        for a in of("00000030") {
            assert_eq!(a.state, AnswerState::Withdrawn);
            assert!(!a.in_force_at(Utc::now()));
        }
        // Both changes were audited with the emergency flag and wrote outbox rows; the
        // confirmation's receipt is Jan's.
        let flagged = sql_text(
            &db,
            "SELECT CAST(count(*) AS TEXT) FROM audit_log WHERE event IN ('emergency-confirm', 'emergency-withdraw') AND emergency",
        )
        .await;
        assert_eq!(flagged.as_deref(), Some("2"));
        let receipt = format!("/bewijs/{}", location.rsplit('=').next().unwrap());
        assert_eq!(jan.get(&receipt).await.status, 200);
        assert_eq!(piet.get(&receipt).await.status, 404);

        drop((jan, piet));
        server.stop();
        db.cleanup().await;
    }
}

#[tokio::test]
async fn deleting_a_profile_needs_a_fresh_login_and_keeps_the_audit_log() {
    for db in databases().await {
        let server = start(&db, &[]);
        assert_eq!(xacml_decision(&server, JAN).await, "Permit");
        let mut piet = login(&server, DevLogin::new(PIET).name("Piet Pietersen")).await;
        let mut jan = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;

        // A login older than five minutes is sent through login again; nothing is deleted.
        sql_exec(
            &db,
            "UPDATE portal_sessions SET login_at = login_at - 600000000",
            "UPDATE portal_sessions SET login_at = login_at - interval '10 minutes'",
        )
        .await;
        let page = jan.get("/profiel-verwijderen").await;
        assert!(page.body.contains("Log eerst opnieuw in"), "{}", page.body);
        assert!(!page.body.contains(r#"name="confirm""#));
        let csrf = hidden(&page.body, "csrf");
        let refused = jan
            .post_form(
                "/profiel-verwijderen",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(refused.location.as_deref(), Some("/profiel-verwijderen"));
        assert_eq!(xacml_decision(&server, JAN).await, "Permit");
        let again = jan
            .post_form("/profiel-verwijderen/opnieuw-inloggen", &[("csrf", &csrf)])
            .await;
        assert_eq!(again.location.as_deref(), Some("/inloggen"));
        assert_eq!(jan.get("/keuzes").await.status, 303);

        // Freshly logged in: asked again, then deleted. Jan's other browser is logged out too.
        let mut jan = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;
        let mut jans_phone = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;
        assert_eq!(jans_phone.get("/keuzes").await.status, 200);
        let page = jan.get("/profiel-verwijderen").await;
        assert!(page.body.contains(r#"name="confirm""#), "{}", page.body);
        let unconfirmed = jan
            .post_with_token("/profiel-verwijderen", "/profiel-verwijderen", &[])
            .await;
        assert_eq!(unconfirmed.status, 422);
        assert!(unconfirmed.body.contains("error-summary"));
        let patient_records = |db: &Db| {
            let keys = keys_of(db);
            let reference = keys.patient_reference(&otv_core::Bsn::parse(JAN).unwrap());
            format!(
                "SELECT CAST(count(*) AS TEXT) FROM audit_log WHERE patient = '{reference}' AND event NOT LIKE 'notification%'"
            )
        };
        // Verifying the chain takes the consent checks queued beside a SQLite database into the
        // log first (`otv-store/src/sqlite/check_queue.rs`), so that both counts see them all.
        assert!(otv(&db, &["audit", "verify"]).status.success());
        let before: i64 = sql_text(&db, &patient_records(&db))
            .await
            .unwrap()
            .parse()
            .unwrap();
        let deleted = jan
            .post_with_token(
                "/profiel-verwijderen",
                "/profiel-verwijderen",
                &[("confirm", "yes")],
            )
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        assert!(deleted.body.contains("Uw profiel is verwijderd"));
        assert!(
            !jan.jar.contains_key("otv_session"),
            "the session cookie is removed"
        );
        assert_eq!(jan.get("/keuzes").await.status, 303);
        let phone = jans_phone.get("/keuzes").await;
        assert_eq!(phone.status, 303, "every session of the citizen ended");
        assert!(phone.location.unwrap().starts_with("/inloggen"));

        // The answers are gone: the closed question decides as for an unknown citizen.
        assert_eq!(xacml_decision(&server, JAN).await, "Deny");
        assert_eq!(xacml_decision(&server, "900203663").await, "Permit");
        let verify = otv(&db, &["audit", "verify"]);
        assert!(verify.status.success(), "{}", text(&verify));
        let after: i64 = sql_text(&db, &patient_records(&db))
            .await
            .unwrap()
            .parse()
            .unwrap();
        // The records stay; one for the deletion and one for the question just asked join them.
        assert_eq!(after, before + 2);
        // Piet is untouched; Jan logging in again starts empty.
        assert!(
            piet.get("/mijn-gegevens.json")
                .await
                .body
                .contains("\"answers\"")
        );
        let mut jan = login(&server, DevLogin::new(JAN).name("Jan Jansen")).await;
        let export = jan.get("/mijn-gegevens.json").await;
        let export: serde_json::Value = serde_json::from_str(&export.body).unwrap();
        assert_eq!(export["answers"].as_array().unwrap().len(), 0, "{export}");

        drop((jan, piet, jans_phone));
        server.stop();
        db.cleanup().await;
    }
}
