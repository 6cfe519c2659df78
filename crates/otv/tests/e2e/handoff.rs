//! Provider-assisted recording through a hand-off link (PRODUCT.md §8), with the real binary,
//! the sandbox PKI over real mutual TLS, on SQLite and PostgreSQL: the provider's system asks
//! for a one-time link, the link opens the assisted portal once, the answers recorded there
//! carry the channel, the provider's URA and the professional's UZI number and role, the
//! citizen's lock refuses both at the link's creation and at saving, and an assisted session
//! reaches only its own pages.
//!
//! The link's expiry is tested in the store (`otv-store/tests/handoff_store.rs`), with an
//! explicit clock.

use std::process::Command;

use chrono::{Duration, Utc};
use otv_core::{Bsn, Ura};
use otv_server::assisted::token::Factor;
use otv_server::tls::testpki::EnrolmentIssuer;
use serde_json::{Value, json};

use crate::portal_client::{Browser, DevLogin, count, json_decision};
use crate::support::{Db, OTV, Server, databases, sandbox_client, text};

/// The patient, another patient, and the citizen whose profile is locked.
const PATIENT: &str = "900100023";
const OTHER: &str = "900100035";
const LOCKED: &str = "900100047";

const PUBLIC_URL: &str = "https://portaal.otv.test";

/// otv with the sandbox PKI (mutual-TLS provider listener, demo connectors), the development
/// login, and a test enrolment-token issuer whose UZI-card CA is a configured trust anchor.
pub struct AssistedServer {
    pub server: Server,
    sandbox: tempfile::TempDir,
    issuer: EnrolmentIssuer,
    public_url: String,
}

impl AssistedServer {
    /// Starts otv on `db`; on `port` (the links' public URL is then `http://127.0.0.1:<port>`,
    /// for a real browser), or on any port with [`PUBLIC_URL`] in the links.
    pub fn start(db: &Db, port: Option<u16>) -> AssistedServer {
        let sandbox = tempfile::tempdir().unwrap();
        let dir = sandbox.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let issuer = EnrolmentIssuer::new().unwrap();
        let anchor = sandbox.path().join("uzi-card-ca.pem");
        std::fs::write(&anchor, &issuer.uzi_card_ca().cert_pem).unwrap();
        let config = dir.join("otv.toml");
        let (listen, public_url) = match port {
            Some(p) => (format!("127.0.0.1:{p}"), format!("http://127.0.0.1:{p}")),
            None => ("127.0.0.1:0".to_owned(), PUBLIC_URL.to_owned()),
        };
        let server = Server::start_with(
            db,
            &["--config", config.to_str().unwrap()],
            &[
                ("OTV_LISTEN", &listen),
                ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
                ("OTV_LOG_FORMAT", "json"),
                ("OTV_PORTAL_DEV_LOGIN", "true"),
                ("OTV_DEV_PLAIN_PROVIDER_HTTP", "true"),
                ("OTV_PORTAL_PUBLIC_URL", &public_url),
                (
                    "OTV_ASSISTED_ENROLMENT_UZI_CARD_CA",
                    anchor.to_str().unwrap(),
                ),
            ],
        );
        AssistedServer {
            server,
            sandbox,
            issuer,
            public_url,
        }
    }

    /// `POST /v1/hand-off` as connector `who`: status and body.
    pub async fn hand_off(&self, who: &str, body: &Value) -> (u16, Value) {
        let addr = self
            .server
            .provider_addr()
            .expect("the provider listener runs");
        let res = sandbox_client(&self.sandbox.path().join("sandbox"), Some(who))
            .post(format!("https://{addr}/v1/hand-off"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// An enrolment token for `bsn` at the GP practice (UZI card), valid from a minute ago
    /// for ten minutes.
    pub fn token(&self, bsn: &str) -> String {
        let now = Utc::now();
        self.issuer.token(
            &Ura::parse("00000001").unwrap(),
            &Bsn::parse(bsn).unwrap(),
            Factor::UziPas,
            now - Duration::minutes(1),
            now + Duration::minutes(9),
            &uuid::Uuid::new_v4().to_string(),
        )
    }

    /// A link of `mode` for `bsn` from the GP practice's system (with an enrolment token when
    /// `with_token`): the whole URL.
    pub async fn link(&self, bsn: &str, mode: &str, with_token: bool) -> String {
        let mut body = request(bsn, mode);
        if with_token {
            body["enrolment_token"] = json!(self.token(bsn));
        }
        let (status, body) = self.hand_off("demo-huisarts", &body).await;
        assert_eq!(status, 201, "{body}");
        let url = body["url"].as_str().unwrap().to_owned();
        assert!(
            url.starts_with(&self.public_url),
            "{url} is built on the public URL"
        );
        url
    }

    /// A dossierhoudersknop link for `bsn`: its path and query.
    async fn holder_link(&self, bsn: &str) -> String {
        let url = self.link(bsn, "dossierhoudersknop", false).await;
        url[self.public_url.len()..].to_owned()
    }
}

fn request(bsn: &str, mode: &str) -> Value {
    json!({
        "bsn": bsn,
        "ura": "00000001",
        "professional": {"uzi": "900010001", "role": "01.015", "mandated": "900010002"},
        "mode": mode,
    })
}

/// The radio fields of the dossierhoudersknop page (`c.<consulting category>`), each once.
fn holder_fields(body: &str) -> Vec<String> {
    let mut fields: Vec<String> = body
        .split("name=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|n| n.starts_with("c."))
        .map(str::to_owned)
        .collect();
    fields.dedup();
    fields
}

/// Answers yes to every question of the dossierhoudersknop page: the response.
async fn say_yes_to_all(b: &mut Browser) -> crate::portal_client::Page {
    let page = b.get("/dossierhoudersknop").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let fields = holder_fields(&page.body);
    assert!(!fields.is_empty(), "{}", page.body);
    let answers: Vec<(&str, &str)> = fields.iter().map(|f| (f.as_str(), "yes")).collect();
    b.submit_from(&page.body, "/dossierhoudersknop", &answers)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hand_off_link_opens_the_assisted_portal_once_and_its_answers_carry_the_professional() {
    for db in databases().await {
        let s = AssistedServer::start(&db, None);
        let link = s.holder_link(PATIENT).await;
        assert!(link.starts_with("/overdracht?code="), "{link}");
        assert_eq!(json_decision(&s.server, PATIENT).await, "Deny");

        let mut b = Browser::new(&s.server);
        let (landed, page) = b.open(&link).await;
        assert_eq!(landed, "/dossierhoudersknop");
        assert_eq!(page.status, 200, "{}", page.body);
        // The banner names the professional and the provider; the patient only by the end of
        // the BSN; no navigation to the citizen's own pages.
        assert!(page.body.contains("een huisarts"), "{}", page.body);
        assert!(page.body.contains("Huisartsenpraktijk De Linde"));
        assert!(page.body.contains("..23"));
        assert!(!page.body.contains(PATIENT));
        for own in [
            "/geschiedenis",
            "/mijn-gegevens",
            "/vergrendelen",
            "/meldingen",
        ] {
            assert!(
                !page.body.contains(&format!("href=\"{own}")),
                "{own} is linked"
            );
        }

        // The link works once, also in another browser.
        let mut again = Browser::new(&s.server);
        let second = again.get(&link).await;
        assert_eq!(second.status, 410, "{}", second.body);
        assert!(second.body.contains("werkt niet"));
        assert!(!again.jar.contains_key("otv_session"));

        // The assisted session reaches only the dossierhoudersknop.
        for path in [
            "/geschiedenis",
            "/mijn-gegevens",
            "/mijn-gegevens.json",
            "/profiel-verwijderen",
            "/meldingen",
            "/vergrendelen",
            "/ouder-en-kind",
            "/noodtoestemmingen",
            "/keuzes",
        ] {
            assert_eq!(b.get(path).await.status, 404, "{path}");
        }

        let saved = say_yes_to_all(&mut b).await;
        assert_eq!(saved.status, 303, "{}", saved.body);
        let (_, confirmation) = b.open(saved.location.as_deref().unwrap()).await;
        assert!(
            confirmation.body.contains("opgeslagen"),
            "{}",
            confirmation.body
        );
        assert!(confirmation.body.contains("/bewijs/"));

        // The holder (GP practice 00000001) now may make treatment data available to the GP
        // post: the decision reads the individual-holder answer.
        assert_eq!(json_decision(&s.server, PATIENT).await, "Permit");
        let provider_answers = count(
            &db,
            "SELECT count(*) FROM answers WHERE holder_kind = 'provider' AND holder_code = '00000001' \
             AND channel = 'dossierhoudersknop' AND actor LIKE '%\"uzi\":\"900010001\"%' \
             AND actor LIKE '%\"role\":\"01.015\"%' AND actor LIKE '%\"mandated\":\"900010002\"%'",
        )
        .await;
        assert!(provider_answers > 0, "{provider_answers}");
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE holder_kind = 'provider' AND channel <> 'dossierhoudersknop'",
            )
            .await,
            0
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'profile-change' AND channel = 'dossierhoudersknop' \
                 AND organisation = '00000001' AND actor = 'uzi:900010001 role:01.015' AND mandated = '900010002'",
            )
            .await,
            1
        );
        for event in [
            "hand-off-created",
            "hand-off-opened",
            "hand-off-open-refused",
        ] {
            assert_eq!(
                count(
                    &db,
                    &format!("SELECT count(*) FROM audit_log WHERE event = '{event}'")
                )
                .await,
                1,
                "{event}"
            );
        }
        assert!(
            count(
                &db,
                "SELECT count(*) FROM outbox WHERE kind = 'profile-changed'"
            )
            .await
                >= 1,
            "the citizen is notified through the outbox"
        );

        // The citizen, logged in themselves, sees who recorded it in the data download.
        let mut citizen = Browser::new(&s.server);
        citizen.log_in(DevLogin::new(PATIENT)).await;
        let export = citizen.get("/mijn-gegevens.json").await;
        assert_eq!(export.status, 200);
        let export: Value = serde_json::from_str(&export.body).unwrap();
        let answers = export.to_string();
        assert!(
            answers.contains("\"channel\":\"dossierhoudersknop\""),
            "{answers}"
        );
        assert!(answers.contains("\"uzi\":\"900010001\""), "{answers}");
        assert!(answers.contains("\"role\":\"01.015\""), "{answers}");
        assert!(answers.contains("\"ura\":\"00000001\""), "{answers}");

        let logs = s.server.stop();
        for bsn in [PATIENT, OTHER, LOCKED] {
            assert!(!logs.contains(bsn), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_citizens_lock_refuses_at_the_links_creation_and_at_saving() {
    for db in databases().await {
        let s = AssistedServer::start(&db, None);
        // A link made before the lock, opened.
        let link = s.holder_link(LOCKED).await;
        let mut assisted = Browser::new(&s.server);
        let (landed, _) = assisted.open(&link).await;
        assert_eq!(landed, "/dossierhoudersknop");

        // The citizen locks the profile in the portal.
        let mut citizen = Browser::new(&s.server);
        citizen.log_in(DevLogin::new(LOCKED)).await;
        let locked = citizen
            .submit(
                "/vergrendelen",
                "/vergrendelen",
                &[("provider", "locked"), ("emergency", "open")],
            )
            .await;
        assert_eq!(locked.status / 100, 3, "{}", locked.body);

        // Saving in the open assisted page is refused with the message for the professional.
        let refused = say_yes_to_all(&mut assisted).await;
        assert_eq!(refused.status, 409, "{}", refused.body);
        assert!(refused.body.contains("op slot"), "{}", refused.body);
        assert!(refused.body.contains("Er is niets veranderd"));
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE holder_kind = 'provider'"
            )
            .await,
            0
        );

        // A new link is refused when it is asked for.
        let (status, problem) = s
            .hand_off("demo-huisarts", &request(LOCKED, "dossierhoudersknop"))
            .await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "urn:otv:problem:profile-locked");
        assert!(problem["detail"].as_str().unwrap().contains("op slot"));

        for (event, n) in [("assisted-change-refused", 1), ("hand-off-rejected", 1)] {
            assert_eq!(
                count(
                    &db,
                    &format!(
                        "SELECT count(*) FROM audit_log WHERE event = '{event}' AND reason = 'profile-locked' \
                         AND patient IS NOT NULL"
                    )
                )
                .await,
                n,
                "{event}"
            );
        }
        let logs = s.server.stop();
        assert!(!logs.contains(LOCKED), "a BSN in the logs");
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_reaches_only_its_own_patient_and_bad_requests_are_named() {
    for db in databases().await {
        let s = AssistedServer::start(&db, None);
        // A link for another patient starts a session about that patient only: what it
        // records lands in their profile, never in this one's.
        let link = s.holder_link(OTHER).await;
        let mut b = Browser::new(&s.server);
        let (_, page) = b.open(&link).await;
        assert!(page.body.contains("..35"), "{}", page.body);
        assert!(!page.body.contains("..23"));
        let saved = say_yes_to_all(&mut b).await;
        assert_eq!(saved.status, 303);
        assert_eq!(json_decision(&s.server, PATIENT).await, "Deny");
        assert_eq!(json_decision(&s.server, OTHER).await, "Permit");
        // A link's code cannot be guessed or altered into another's.
        let altered = format!("{}x", link);
        assert_eq!(Browser::new(&s.server).get(&altered).await.status, 410);
        assert_eq!(Browser::new(&s.server).get("/overdracht").await.status, 410);

        // A connector that may not act for the URA, fields that are wrong, a missing token.
        let (status, problem) = s
            .hand_off("demo-apotheek", &request(PATIENT, "dossierhoudersknop"))
            .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/ura");
        for (mut body, pointer) in [
            (request("123456789", "dossierhoudersknop"), "/bsn"),
            (request(PATIENT, "portaal"), "/mode"),
            (request(PATIENT, "samen-naar-mijnmitz"), "/enrolment_token"),
            (request(PATIENT, "raadplegersknop"), "/enrolment_token"),
        ] {
            body["professional"]["mandated"] = Value::Null;
            let (status, problem) = s.hand_off("demo-huisarts", &body).await;
            assert_eq!(status, 422, "{problem}");
            assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
            assert!(!problem.to_string().contains(PATIENT));
        }
        let mut bad_role = request(PATIENT, "dossierhoudersknop");
        bad_role["professional"]["role"] = json!("huisarts");
        let (status, problem) = s.hand_off("demo-huisarts", &bad_role).await;
        assert_eq!(status, 422);
        assert_eq!(problem["errors"][0]["pointer"], "/professional/role");

        // The endpoint is documented.
        let addr = s.server.provider_addr().unwrap();
        let doc: Value = sandbox_client(&s.sandbox.path().join("sandbox"), Some("demo-huisarts"))
            .get(format!("https://{addr}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(doc["paths"]["/v1/hand-off"]["post"].is_object(), "{doc}");
        let logs = s.server.stop();
        for bsn in [PATIENT, OTHER] {
            assert!(!logs.contains(bsn), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn samen_naar_mijnmitz_and_the_raadplegersknop_need_an_enrolment_token_used_once() {
    for db in databases().await {
        let s = AssistedServer::start(&db, None);
        // A token is used up by the link it made: the same token again is refused.
        let token = s.token(PATIENT);
        let mut body = request(PATIENT, "samen-naar-mijnmitz");
        body["enrolment_token"] = json!(token);
        let (status, made) = s.hand_off("demo-huisarts", &body).await;
        assert_eq!(status, 201, "{made}");
        let (status, problem) = s.hand_off("demo-huisarts", &body).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/enrolment_token");
        // A token for another patient does not make a link for this one.
        let mut other = request(PATIENT, "samen-naar-mijnmitz");
        other["enrolment_token"] = json!(s.token(OTHER));
        let (status, problem) = s.hand_off("demo-huisarts", &other).await;
        assert_eq!(status, 422, "{problem}");
        assert!(!problem.to_string().contains(PATIENT));

        // Samen-naar-MijnMitz: the overview and the normal wizard, recorded with the
        // professional; the citizen's own pages stay closed.
        let url = made["url"].as_str().unwrap();
        let mut b = Browser::new(&s.server);
        let (landed, overview) = b.open(&url[PUBLIC_URL.len()..]).await;
        assert_eq!(landed, "/keuzes");
        assert!(overview.body.contains("Huisartsenpraktijk De Linde"));
        assert_eq!(b.get("/geschiedenis").await.status, 404);
        assert_eq!(b.get("/dossierhoudersknop").await.status, 404);
        let done = crate::portal_client::choose(&mut b, "all", &[], "no").await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert!(done.body.contains("bericht"), "{}", done.body);
        assert_eq!(json_decision(&s.server, PATIENT).await, "Permit");
        assert!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE channel = 'samen-naar-mijnmitz' AND holder_kind = 'category' \
                 AND actor LIKE '%\"uzi\":\"900010001\"%' AND actor LIKE '%\"ura\":\"00000001\"%'",
            )
            .await
                > 0
        );

        // The raadplegersknop through the assisted UI: a confirm page, then the emergency
        // consent for the GP practice as consulter.
        let emergency = s.link(OTHER, "raadplegersknop", true).await;
        let mut e = Browser::new(&s.server);
        let (landed, confirm) = e.open(&emergency[PUBLIC_URL.len()..]).await;
        assert_eq!(landed, "/noodtoestemming-vastleggen");
        assert!(confirm.body.contains("72 uur"), "{}", confirm.body);
        let recorded = e
            .submit_from(&confirm.body, "/noodtoestemming-vastleggen", &[])
            .await;
        assert_eq!(recorded.status, 200, "{}", recorded.body);
        assert!(recorded.body.contains("vastgelegd"), "{}", recorded.body);
        assert!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE channel = 'raadplegersknop' AND consulter_kind = 'provider' \
                 AND consulter_code = '00000001' AND valid_until IS NOT NULL",
            )
            .await
                > 0
        );
        assert!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'hand-off-created' AND channel = 'raadplegersknop' \
                 AND emergency",
            )
            .await
                == 1
        );
        let logs = s.server.stop();
        for bsn in [PATIENT, OTHER] {
            assert!(!logs.contains(bsn), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}
