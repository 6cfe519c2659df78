//! The raadplegersknop as a direct API call without a screen (PRODUCT.md §8), with the real
//! binary, the sandbox PKI over real mutual TLS, enrolment tokens made by `otv sandbox token`,
//! on SQLite and PostgreSQL: an emergency consent lets the consulting provider see the
//! patient's data from every holder category and no other consulter; the citizen sees it in the
//! portal's history and can withdraw or confirm it; a citizen who refuses emergency consents
//! is not given one; every refusal of a token names its own failure; every attempt is audited
//! with the emergency flag and never with a BSN.
//!
//! The 72-hour boundary, to the second, is tested in process with a fixed clock
//! (`otv-server/tests/emergency_clock.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::portal_client::{Browser, DevLogin, audit_count, count};
use crate::support::{Db, OTV, Server, databases, sandbox_client, text};

/// The patient, and the citizen who refuses emergency consents.
const PATIENT: &str = "900100059";
const REFUSER: &str = "900100060";

/// The GP practice (demo-huisarts) that needs the data, and another GP.
const CONSULTER: &str = "00000001";
const OTHER_CONSULTER: &str = "00000002";

/// One organisation type per holder category of the default catalogue, a provider of it in
/// the demo directory, and the data category that category makes available.
const HOLDERS: &[(&str, &str, &str)] = &[
    ("00000001", "Z3", "GGC002"), // DH-HA
    ("00000010", "J8", "GGC013"), // DH-APO
    ("00000020", "V6", "GGC002"), // DH-ZKH
    ("00000030", "L1", "GGC012"), // DH-LAB
    ("00000040", "G5", "GGC002"), // DH-GGZ
    ("00000050", "T2", "GGC002"), // DH-VVT
    ("00000002", "G3", "GGC002"), // DH-OVERIG
];

struct Setup {
    server: Server,
    sandbox: tempfile::TempDir,
}

impl Setup {
    fn start(db: &Db) -> Setup {
        let sandbox = tempfile::tempdir().unwrap();
        let dir = sandbox.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let config = dir.join("otv.toml");
        let server = Server::start_with(
            db,
            &["--config", config.to_str().unwrap()],
            &[
                ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
                ("OTV_LOG_FORMAT", "json"),
                ("OTV_PORTAL_DEV_LOGIN", "true"),
                ("OTV_DEV_PLAIN_PROVIDER_HTTP", "true"),
            ],
        );
        Setup { server, sandbox }
    }

    fn dir(&self) -> PathBuf {
        self.sandbox.path().join("sandbox")
    }

    /// `otv sandbox token` with `args` after the directory: the token.
    fn token(&self, args: &[&str]) -> String {
        let out = Command::new(OTV)
            .args(["sandbox", "token", "--dir"])
            .arg(self.dir())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// A token of the GP practice's UZI card for `bsn`.
    fn card_token(&self, bsn: &str) -> String {
        self.token(&["--bsn", bsn, "--ura", CONSULTER, "--factor", "uzi-pas"])
    }

    /// `POST path` over mutual TLS as connector `who`: status and body.
    async fn post(&self, who: &str, path: &str, body: &Value) -> (u16, Value) {
        let addr = self
            .server
            .provider_addr()
            .expect("the provider listener runs");
        let res = sandbox_client(&self.dir(), Some(who))
            .post(format!("https://{addr}{path}"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    async fn emergency(&self, who: &str, bsn: &str, token: &str) -> (u16, Value) {
        self.post(who, "/v1/emergency-consent", &request(bsn, token))
            .await
    }

    /// The closed question over mutual TLS (demo-lsp acts for every demo provider): for each
    /// holder category, `consulter` asks for GGC002 and the category's own data; `true` when
    /// every answer is Permit, `false` when every answer is Deny.
    async fn permitted_everywhere(&self, bsn: &str, consulter: (&str, &str)) -> bool {
        let mut decisions = Vec::new();
        for (ura, kind, data) in HOLDERS {
            let question = json!({
                "bsn": bsn,
                "holder": {"ura": ura, "organisation_type": kind},
                "consulter": {"ura": consulter.0, "organisation_type": consulter.1},
                "professional": {"uzi": "900010001", "role": "01.015"},
                "purpose": "TREAT",
                "data_categories": ["GGC002", data],
            });
            let (status, body) = self
                .post("demo-lsp", "/v1/closed-question", &question)
                .await;
            assert_eq!(status, 200, "{body}");
            for r in body["results"].as_array().unwrap() {
                decisions.push((kind.to_string(), r["decision"].as_str().unwrap().to_owned()));
            }
        }
        let permits = decisions.iter().filter(|(_, d)| d == "Permit").count();
        assert!(
            permits == 0 || permits == decisions.len(),
            "some but not all: {decisions:?}"
        );
        permits == decisions.len()
    }
}

fn request(bsn: &str, token: &str) -> Value {
    json!({
        "bsn": bsn,
        "consulter_ura": CONSULTER,
        "professional": {"uzi": "900010001", "role": "01.015", "mandated": "900010002"},
        "enrolment_token": token,
    })
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_raadplegersknop_lets_only_the_consulter_see_data_of_every_holder_category_until_the_citizen_decides()
 {
    for db in databases().await {
        let s = Setup::start(&db);
        let gp = (CONSULTER, "Z3");
        assert!(!s.permitted_everywhere(PATIENT, gp).await);

        // A check first: it does not use the token up.
        let token = s.card_token(PATIENT);
        let (status, checked) = s
            .post(
                "demo-huisarts",
                "/v1/enrolment-token/check",
                &json!({"bsn": PATIENT, "ura": CONSULTER, "enrolment_token": token}),
            )
            .await;
        assert_eq!(status, 200, "{checked}");
        assert_eq!(checked["factor"], "uzi-pas");
        assert_eq!(checked["ura"], CONSULTER);

        let (status, recorded) = s.emergency("demo-huisarts", PATIENT, &token).await;
        assert_eq!(status, 201, "{recorded}");
        let from: chrono::DateTime<chrono::Utc> =
            recorded["valid_from"].as_str().unwrap().parse().unwrap();
        let until: chrono::DateTime<chrono::Utc> =
            recorded["valid_until"].as_str().unwrap().parse().unwrap();
        assert_eq!(until - from, chrono::Duration::hours(72));
        let keys = recorded["keys"].as_array().unwrap();
        assert_eq!(keys.len(), HOLDERS.len(), "{recorded}");
        for k in keys {
            assert_eq!(k["data_category"], "GGC002");
            assert_eq!(k["consulter_ura"], CONSULTER);
        }
        assert!(recorded["receipt_seq"].as_i64().unwrap() > 0);

        // The consulter may see data of every holder category; another GP may not.
        assert!(s.permitted_everywhere(PATIENT, gp).await);
        assert!(
            !s.permitted_everywhere(PATIENT, (OTHER_CONSULTER, "N6"))
                .await
        );

        // The token worked once.
        let (status, replayed) = s.emergency("demo-huisarts", PATIENT, &token).await;
        assert_eq!(status, 422, "{replayed}");
        assert_eq!(replayed["type"], "urn:otv:problem:enrolment-token-replayed");

        // Audited with the emergency flag, the channel and the professional; the citizen is
        // told through the outbox.
        assert_eq!(
            audit_count(
                &db,
                "event = 'emergency-consent' AND emergency = true AND channel = 'raadplegersknop' \
                 AND actor = 'uzi:900010001 role:01.015' AND mandated = '900010002' \
                 AND organisation = '00000001' AND patient IS NOT NULL AND request_id IS NOT NULL"
            )
            .await,
            1
        );
        assert!(
            count(
                &db,
                "SELECT count(*) FROM outbox WHERE kind = 'profile-changed'"
            )
            .await
                >= 1
        );

        // The citizen sees it in the history, flagged as an emergency consent, and withdraws
        // it in the portal: the consulter no longer sees anything.
        let mut citizen = Browser::new(&s.server);
        citizen.log_in(DevLogin::new(PATIENT)).await;
        let history = citizen.get("/geschiedenis").await;
        assert_eq!(history.status, 200);
        assert!(
            history
                .body
                .contains("Noodtoestemming door een zorgverlener"),
            "{}",
            history.body
        );
        let pending = citizen.get("/noodtoestemmingen").await;
        assert!(
            pending.body.contains("Huisartsenpraktijk De Linde"),
            "{}",
            pending.body
        );
        let withdrawn = citizen
            .post_with_token(
                "/noodtoestemmingen",
                "/noodtoestemmingen/intrekken",
                &[("consulter", CONSULTER)],
            )
            .await;
        assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
        assert!(!s.permitted_everywhere(PATIENT, gp).await);

        // A new emergency consent, confirmed: it becomes a normal answer without an end.
        let (status, body) = s
            .emergency("demo-huisarts", PATIENT, &s.card_token(PATIENT))
            .await;
        assert_eq!(status, 201, "{body}");
        let confirmed = citizen
            .post_with_token(
                "/noodtoestemmingen",
                "/noodtoestemmingen/bevestigen",
                &[("consulter", CONSULTER)],
            )
            .await;
        assert_eq!(confirmed.status, 303, "{}", confirmed.body);
        assert!(s.permitted_everywhere(PATIENT, gp).await);
        assert!(
            !citizen
                .get("/noodtoestemmingen")
                .await
                .body
                .contains("Huisartsenpraktijk De Linde")
        );
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE consulter_kind = 'provider' AND channel = 'portal' \
                 AND state = 'active' AND valid_until IS NULL AND superseded_at IS NULL"
            )
            .await,
            HOLDERS.len() as i64
        );
        // A WID key (e.g. an ambulance crew's, after checking the patient's driving licence)
        // works as well; a confirmed consent is not shortened to 72 hours again.
        let wid = s.token(&["--bsn", PATIENT, "--ura", CONSULTER, "--factor", "wid"]);
        let (status, body) = s.emergency("demo-huisarts", PATIENT, &wid).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["keys"], json!([]), "{body}");
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM answers WHERE consulter_kind = 'provider' AND state = 'active' \
                 AND valid_until IS NULL AND superseded_at IS NULL"
            )
            .await,
            HOLDERS.len() as i64
        );
        let other_patient = "900100084";
        let wid = s.token(&[
            "--bsn",
            other_patient,
            "--ura",
            CONSULTER,
            "--factor",
            "wid",
        ]);
        let (status, body) = s.emergency("demo-huisarts", other_patient, &wid).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["keys"].as_array().unwrap().len(), HOLDERS.len());
        assert!(s.permitted_everywhere(other_patient, gp).await);

        let logs = s.server.stop();
        assert!(!logs.contains(PATIENT), "a BSN in the logs");
        assert!(!logs.contains(other_patient), "a BSN in the logs");
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_citizen_gets_no_emergency_consent_and_every_bad_token_is_named() {
    for db in databases().await {
        let s = Setup::start(&db);
        let dir = s.dir();

        // The citizen refuses emergency consents in the portal.
        let mut citizen = Browser::new(&s.server);
        citizen.log_in(DevLogin::new(REFUSER)).await;
        let saved = citizen
            .submit(
                "/vergrendelen",
                "/vergrendelen",
                &[("provider", "open"), ("emergency", "locked")],
            )
            .await;
        assert_eq!(saved.status / 100, 3, "{}", saved.body);
        let (status, problem) = s
            .emergency("demo-huisarts", REFUSER, &s.card_token(REFUSER))
            .await;
        assert_eq!(status, 409, "{problem}");
        assert_eq!(problem["type"], "urn:otv:problem:emergency-refused");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("noodtoestemmingen")
        );
        assert!(!s.permitted_everywhere(REFUSER, (CONSULTER, "Z3")).await);
        assert_eq!(
            audit_count(
                &db,
                "event = 'emergency-consent-refused' AND reason = 'emergency-refused' \
                 AND emergency = true AND channel = 'raadplegersknop' AND patient IS NOT NULL"
            )
            .await,
            1
        );

        // Each bad token is refused with its own error, on the token field.
        let cases: Vec<(String, &str)> = vec![
            ("not.a.token".into(), "malformed"),
            (
                s.token(&["--bsn", REFUSER, "--ura", CONSULTER]),
                "bsn-mismatch",
            ),
            (
                s.token(&["--bsn", PATIENT, "--ura", "00000010"]),
                "wrong-provider",
            ),
            (
                s.token(&[
                    "--bsn",
                    PATIENT,
                    "--ura",
                    CONSULTER,
                    "--card",
                    &file(&dir, "uzi-card-00000010.pem"),
                    "--card-key",
                    &file(&dir, "uzi-card-00000010-key.pem"),
                ]),
                "ura-mismatch",
            ),
            (
                s.token(&[
                    "--bsn",
                    PATIENT,
                    "--ura",
                    CONSULTER,
                    "--card",
                    &file(&dir, "rogue-client.pem"),
                    "--card-key",
                    &file(&dir, "rogue-client-key.pem"),
                ]),
                "unknown-anchor",
            ),
            (
                s.token(&[
                    "--bsn",
                    PATIENT,
                    "--ura",
                    CONSULTER,
                    "--lifetime-secs",
                    "901",
                ]),
                "lifetime-too-long",
            ),
            (
                s.token(&["--bsn", PATIENT, "--ura", CONSULTER, "--lifetime-secs=-60"]),
                "lifetime-too-long",
            ),
        ];
        for (token, failure) in &cases {
            let (status, problem) = s.emergency("demo-huisarts", PATIENT, token).await;
            assert_eq!(status, 422, "{failure}: {problem}");
            assert_eq!(
                problem["type"],
                format!("urn:otv:problem:enrolment-token-{failure}")
            );
            assert_eq!(problem["errors"][0]["pointer"], "/enrolment_token");
            assert!(!problem.to_string().contains(PATIENT));
        }
        // A forged signature: the claims of one token with the signature of another made with
        // the same card (the same header).
        let (one, other) = (s.card_token(PATIENT), s.card_token(PATIENT));
        let one: Vec<&str> = one.split('.').collect();
        let other: Vec<&str> = other.split('.').collect();
        assert_eq!(one[0], other[0]);
        let forged = format!("{}.{}.{}", one[0], one[1], other[2]);
        let (status, problem) = s.emergency("demo-huisarts", PATIENT, &forged).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(
            problem["type"],
            "urn:otv:problem:enrolment-token-bad-signature"
        );
        assert!(!s.permitted_everywhere(PATIENT, (CONSULTER, "Z3")).await);
        assert_eq!(
            audit_count(
                &db,
                "event = 'emergency-consent-refused' AND reason LIKE 'enrolment-token-%' \
                 AND emergency = true AND patient IS NOT NULL"
            )
            .await,
            cases.len() as i64 + 1
        );

        // A connector that may not act for the consulter, and a wrong field.
        let (status, problem) = s
            .emergency("demo-apotheek", PATIENT, &s.card_token(PATIENT))
            .await;
        assert_eq!(status, 403, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/consulter_ura");
        let mut bad = request(PATIENT, "x.y.z");
        bad["professional"]["role"] = "huisarts".into();
        let (status, problem) = s.post("demo-huisarts", "/v1/emergency-consent", &bad).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/professional/role");
        assert!(
            audit_count(
                &db,
                "event = 'emergency-consent-refused' AND patient IS NULL"
            )
            .await
                >= 2
        );

        let logs = s.server.stop();
        for bsn in [PATIENT, REFUSER] {
            assert!(!logs.contains(bsn), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}
