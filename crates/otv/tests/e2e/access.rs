//! otv's own JSON interfaces for the closed question over real mutual TLS, with the sandbox's
//! PKI and demo citizens: AuthZEN evaluations (single and batched, each semantic), the plain
//! JSON closed question with its explanation, problem details for refusals, the audit records,
//! and `/openapi.json`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Db, OTV, Server, databases, otv, sandbox_client, text};

fn client(dir: &Path, who: &str) -> reqwest::Client {
    sandbox_client(dir, Some(who))
}

/// The demo citizen who says yes to everything, no to everything, and yes only for GPs and
/// pharmacies as holders.
const YES: &str = "900203638";
const NO: &str = "900203651";
const GP_AND_PHARMACY: &str = "900203663";

/// The professional: a GP (01.015) at the GP post 00000002 (N6).
fn subject() -> Value {
    json!({"type": "professional", "id": "900010001", "properties": {
        "role": "01.015", "consulter_ura": "00000002", "consulter_organisation_type": "N6"}})
}

fn resource(bsn: &str, holder: (&str, &str), category: &str) -> Value {
    json!({"type": "patient_record", "id": bsn, "properties": {
        "holder_ura": holder.0, "holder_organisation_type": holder.1, "data_category": category}})
}

fn evaluation(bsn: &str, holder: (&str, &str), category: &str) -> Value {
    json!({
        "subject": subject(),
        "resource": resource(bsn, holder, category),
        "action": {"name": "consult"},
        "context": {"purpose": "TREAT"},
    })
}

const GP: (&str, &str) = ("00000001", "Z3");
const PHARMACY: (&str, &str) = ("00000010", "J8");
const HOSPITAL: (&str, &str) = ("00000020", "V6");

struct Reply {
    status: u16,
    content_type: String,
    body: Value,
    raw: String,
}

struct Provider {
    dir: std::path::PathBuf,
    addr: String,
}

impl Provider {
    async fn post(&self, who: &str, path: &str, body: &Value, request_id: &str) -> Reply {
        self.send(who, path, "application/json", body.to_string(), request_id)
            .await
    }

    async fn send(
        &self,
        who: &str,
        path: &str,
        content_type: &str,
        body: String,
        request_id: &str,
    ) -> Reply {
        let res = client(&self.dir, who)
            .post(format!("https://{}{path}", self.addr))
            .header("content-type", content_type)
            .header("x-request-id", request_id)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let raw = res.text().await.unwrap();
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            body,
            raw,
        }
    }
}

fn decisions(reply: &Reply) -> Vec<bool> {
    reply.body["evaluations"]
        .as_array()
        .unwrap_or_else(|| panic!("no evaluations: {}", reply.raw))
        .iter()
        .map(|e| e["decision"].as_bool().unwrap())
        .collect()
}

fn assert_problem(reply: &Reply, status: u16, kind: &str, pointer: &str) {
    assert_eq!(reply.status, status, "{}", reply.raw);
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{}",
        reply.raw
    );
    assert_eq!(
        reply.body["type"],
        format!("urn:otv:problem:{kind}"),
        "{}",
        reply.raw
    );
    assert_eq!(reply.body["status"], status, "{}", reply.raw);
    if !pointer.is_empty() {
        assert_eq!(reply.body["errors"][0]["pointer"], pointer, "{}", reply.raw);
    }
}

/// The audit records of closed questions: (event, channel, decision, reason, request id).
async fn audit_rows(db: &Db) -> Vec<(String, String, String, String, String)> {
    use sqlx::{Connection, Row};
    let sql = "SELECT event, COALESCE(channel, ''), COALESCE(decision, ''), COALESCE(reason, ''), \
               COALESCE(request_id, '') FROM audit_log WHERE event LIKE 'closed-question%' ORDER BY seq";
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sql)
            .fetch_all(&mut c)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    }
}

async fn break_answers_table(url: &str) {
    use sqlx::Connection;
    let sql = "ALTER TABLE answers RENAME TO answers_gone";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
    }
}

// Multi-threaded: `Server::stop` blocks its thread while otv shuts down gracefully, and the
// clients' HTTP/2 connections must keep being served meanwhile (otv's GOAWAY waits for the
// client's acknowledgement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authzen_and_plain_json_closed_questions_over_mutual_tls() {
    for db in databases().await {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let config = dir.join("otv.toml");
        let server = Server::start_with(
            &db,
            &["--config", config.to_str().unwrap()],
            &[
                ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
                ("OTV_LOG_FORMAT", "json"),
            ],
        );
        let p = Provider {
            dir: dir.clone(),
            addr: server.provider_addr().expect("the provider listener runs"),
        };
        const EVAL: &str = "/access/v1/evaluation";
        const EVALS: &str = "/access/v1/evaluations";

        // AuthZEN, one evaluation: the GP holder's own certificate asks.
        let yes = p
            .post(
                "demo-huisarts",
                EVAL,
                &evaluation(YES, GP, "GGC002"),
                "az-yes",
            )
            .await;
        assert_eq!(yes.status, 200, "{}", yes.raw);
        assert_eq!(yes.body["decision"], true, "{}", yes.raw);
        let context = &yes.body["context"];
        assert_eq!(context["decision"], "Permit");
        assert_eq!(context["reason"], "permitted-by-answer");
        assert_eq!(context["data_category"], "GGC002");
        assert_eq!(context["deciding_answer"]["effect"], "permit");
        assert_eq!(context["deciding_answer"]["channel"], "portal");
        assert_eq!(context["deciding_answer"]["holder"]["category"], "DH-HA");
        assert_eq!(context["deciding_answer"]["recorded_by"]["kind"], "citizen");
        let en = context["explanation"]["en"].as_str().unwrap();
        let nl = context["explanation"]["nl"].as_str().unwrap();
        assert!(en.starts_with("The patient said yes"), "{en}");
        assert!(en.contains("by the patient in the portal"), "{en}");
        assert!(
            nl.starts_with("De patiënt heeft hier ja op gezegd."),
            "{nl}"
        );

        let no = p
            .post(
                "demo-huisarts",
                EVAL,
                &evaluation(NO, GP, "GGC002"),
                "az-no",
            )
            .await;
        assert_eq!(no.body["decision"], false, "{}", no.raw);
        assert_eq!(no.body["context"]["decision"], "Deny");
        assert_eq!(no.body["context"]["reason"], "denied-by-answer");

        // An exchange system batches for several holders; GP_AND_PHARMACY permits GPs and
        // pharmacies as holders, not hospitals.
        let batch = |semantic: &str| {
            json!({
                "subject": subject(),
                "action": {"name": "consult"},
                "context": {"purpose": "TREAT"},
                "options": {"evaluations_semantic": semantic},
                "evaluations": [
                    {"resource": resource(GP_AND_PHARMACY, GP, "GGC002")},
                    {"resource": resource(GP_AND_PHARMACY, HOSPITAL, "GGC002")},
                    {"resource": resource(GP_AND_PHARMACY, PHARMACY, "GGC013"), "context": {"purpose": "COC"}},
                ],
            })
        };
        let all = p
            .post("demo-lsp", EVALS, &batch("execute_all"), "az-all")
            .await;
        assert_eq!(all.status, 200, "{}", all.raw);
        assert_eq!(decisions(&all), [true, false, true]);
        assert_eq!(
            all.body["evaluations"][2]["context"]["data_category"],
            "GGC013"
        );
        let deny_first = p
            .post(
                "demo-lsp",
                EVALS,
                &batch("deny_on_first_deny"),
                "az-deny-first",
            )
            .await;
        assert_eq!(decisions(&deny_first), [true, false], "{}", deny_first.raw);
        let permit_first = p
            .post(
                "demo-lsp",
                EVALS,
                &batch("permit_on_first_permit"),
                "az-permit-first",
            )
            .await;
        assert_eq!(decisions(&permit_first), [true], "{}", permit_first.raw);
        // Without `evaluations`, the defaults are one evaluation with the single response.
        let defaults_only = p
            .post(
                "demo-lsp",
                EVALS,
                &evaluation(YES, HOSPITAL, "GGC002"),
                "az-defaults",
            )
            .await;
        assert_eq!(
            defaults_only.body["decision"], true,
            "{}",
            defaults_only.raw
        );

        // Refusals: problem details naming the field, never a BSN.
        let other = p
            .post(
                "demo-apotheek",
                EVAL,
                &evaluation(YES, GP, "GGC002"),
                "az-403",
            )
            .await;
        assert_problem(
            &other,
            403,
            "not-allowed-for-ura",
            "/resource/properties/holder_ura",
        );
        assert!(
            other.body["detail"]
                .as_str()
                .unwrap()
                .contains("may not act for URA 00000001"),
            "{}",
            other.raw
        );
        let mixed = p
            .post(
                "demo-apotheek",
                EVALS,
                &batch("execute_all"),
                "az-403-batch",
            )
            .await;
        assert_problem(
            &mixed,
            403,
            "not-allowed-for-ura",
            "/evaluations/0/resource/properties/holder_ura",
        );

        let mut missing = evaluation(YES, GP, "GGC002");
        missing["subject"]["properties"]
            .as_object_mut()
            .unwrap()
            .remove("role");
        let missing = p.post("demo-huisarts", EVAL, &missing, "az-422").await;
        assert_problem(&missing, 422, "invalid-field", "/subject/properties/role");

        let bad_bsn = p
            .post(
                "demo-huisarts",
                EVAL,
                &evaluation("900203639", GP, "GGC002"),
                "az-bsn",
            )
            .await;
        assert_problem(&bad_bsn, 422, "invalid-field", "/resource/id");
        assert!(bad_bsn.raw.contains("11-test"), "{}", bad_bsn.raw);
        assert!(
            !bad_bsn.raw.contains("900203639"),
            "a BSN in a problem: {}",
            bad_bsn.raw
        );

        let mut numeric = evaluation(YES, GP, "GGC002");
        numeric["resource"]["id"] = json!(900203638);
        let numeric = p.post("demo-huisarts", EVAL, &numeric, "az-type").await;
        assert_problem(&numeric, 422, "invalid-field", "/resource/id");
        assert!(
            !numeric.raw.contains(YES),
            "a BSN in a problem: {}",
            numeric.raw
        );

        let bad_semantic = p
            .post("demo-lsp", EVALS, &batch("some_of_them"), "az-semantic")
            .await;
        assert_problem(
            &bad_semantic,
            422,
            "invalid-field",
            "/options/evaluations_semantic",
        );

        let syntax = p
            .send(
                "demo-huisarts",
                EVAL,
                "application/json",
                "{\"subject\": ".into(),
                "az-400",
            )
            .await;
        assert_problem(&syntax, 400, "malformed-json", "");
        let media = p
            .send(
                "demo-huisarts",
                EVAL,
                "text/plain",
                evaluation(YES, GP, "GGC002").to_string(),
                "az-415",
            )
            .await;
        assert_problem(&media, 415, "media-type", "");
        assert_eq!(media.body["request_id"], "az-415", "{}", media.raw);

        // The plain JSON closed question: one explained result per category, in request order.
        let question = |bsn: &str, categories: &[&str]| {
            json!({
                "bsn": bsn,
                "holder": {"ura": "00000001", "organisation_type": "Z3"},
                "consulter": {"ura": "00000002", "organisation_type": "N6"},
                "professional": {"uzi": "900010001", "role": "01.015", "mandated": "900010002"},
                "purpose": "TREAT",
                "data_categories": categories,
            })
        };
        let plain = p
            .post(
                "demo-huisarts",
                "/v1/closed-question",
                &question(YES, &["GGC013", "GGC002", "GGC099"]),
                "json-yes",
            )
            .await;
        assert_eq!(plain.status, 200, "{}", plain.raw);
        let results = plain.body["results"].as_array().unwrap();
        let summary: Vec<_> = results
            .iter()
            .map(|r| {
                (
                    r["data_category"].as_str().unwrap(),
                    r["decision"].as_str().unwrap(),
                    r["permitted"].as_bool().unwrap(),
                    r["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("GGC013", "Permit", true, "permitted-by-answer"),
                ("GGC002", "Permit", true, "permitted-by-answer"),
                ("GGC099", "Deny", false, "unknown-data-category"),
            ]
        );
        // GGC013 is decided by the answer for GGC002, which covers it.
        assert_eq!(results[0]["deciding_answer"]["data_category"], "GGC002");
        assert!(results[0]["deciding_answer"]["recorded_at"].is_string());
        assert!(results[2].get("deciding_answer").is_none());
        let nl = results[2]["explanation"]["nl"].as_str().unwrap();
        assert!(nl.contains("Daarom is het antwoord nee"), "{nl}");
        assert_eq!(plain.body["catalogue_version"], "otv-2026.1");

        let refused = p
            .post(
                "demo-huisarts",
                "/v1/closed-question",
                &question(NO, &["GGC002"]),
                "json-no",
            )
            .await;
        let r = &refused.body["results"][0];
        assert_eq!(
            (r["decision"].as_str(), r["permitted"].as_bool()),
            (Some("Deny"), Some(false))
        );
        assert!(
            r["explanation"]["en"]
                .as_str()
                .unwrap()
                .starts_with("The patient said no"),
            "{}",
            refused.raw
        );
        assert!(
            r["explanation"]["nl"].as_str().unwrap().contains("is nee"),
            "{}",
            refused.raw
        );

        let mut typo = question(YES, &["GGC002"]);
        typo["professional"]["mandatd"] = json!("900010002");
        let typo = p
            .post("demo-huisarts", "/v1/closed-question", &typo, "json-typo")
            .await;
        assert_problem(&typo, 422, "invalid-field", "/professional/mandatd");
        let bad_category = p
            .post(
                "demo-huisarts",
                "/v1/closed-question",
                &question(YES, &["GGC002", "ggc013"]),
                "json-category",
            )
            .await;
        assert_problem(&bad_category, 422, "invalid-field", "/data_categories/1");

        // The OpenAPI document, on both listeners.
        for url in [
            format!("https://{}/openapi.json", p.addr),
            server.url("/openapi.json"),
        ] {
            let http = if url.starts_with("https") {
                client(&dir, "demo-lsp")
            } else {
                crate::support::http()
            };
            let res = http.get(&url).send().await.unwrap();
            assert_eq!(res.status(), 200, "{url}");
            let doc: Value = res.json().await.unwrap();
            assert_eq!(doc["openapi"], "3.1.0");
            for path in [
                "/access/v1/evaluation",
                "/access/v1/evaluations",
                "/v1/closed-question",
                "/healthz",
                "/readyz",
                "/metrics",
            ] {
                assert!(doc["paths"].get(path).is_some(), "{path} missing at {url}");
            }
        }
        // The JSON interfaces are not on the plain listener without the development flag.
        let plain_listener = crate::support::http()
            .post(server.url(EVAL))
            .json(&evaluation(YES, GP, "GGC002"))
            .send()
            .await
            .unwrap();
        assert_eq!(plain_listener.status(), 404);

        // Every decision and every refusal is audited, by channel, with its request id. On
        // SQLite the records of consent checks join the log within about a second (the queue of
        // `otv-store/src/sqlite/check_queue.rs`); wait for them up to ten.
        let decided_in = |rows: &[(String, String, String, String, String)], channel: &str| {
            rows.iter()
                .filter(|r| r.0 == "closed-question" && r.1 == channel)
                .count()
        };
        let waited = std::time::Instant::now();
        let rows = loop {
            let rows = audit_rows(&db).await;
            let all_in = decided_in(&rows, "authzen") >= 9 && decided_in(&rows, "json") >= 2;
            if all_in || waited.elapsed() > Duration::from_secs(10) {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let decided = |channel: &str| decided_in(&rows, channel);
        // 2 single + 3 + 2 + 1 batched + 1 defaults-only.
        assert_eq!(decided("authzen"), 9, "{rows:#?}");
        assert_eq!(decided("json"), 2, "{rows:#?}");
        let row = |id: &str| {
            rows.iter()
                .find(|r| r.4 == id)
                .unwrap_or_else(|| panic!("no audit record for {id}"))
        };
        assert_eq!(
            (row("az-yes").2.as_str(), row("az-yes").3.as_str()),
            ("permit", "permitted-by-answer")
        );
        assert_eq!(row("az-no").2, "deny");
        assert_eq!(row("json-yes").2, "permit,permit,deny");
        for (id, kind) in [
            ("az-403", "not-allowed-for-ura"),
            ("az-422", "invalid-field"),
            ("az-400", "malformed-json"),
            ("az-415", "media-type"),
            ("json-typo", "invalid-field"),
        ] {
            let r = row(id);
            assert_eq!(
                (r.0.as_str(), r.2.as_str(), r.3.as_str()),
                ("closed-question-rejected", "rejected", kind),
                "{id}"
            );
        }
        let out = otv(&db, &["audit", "verify"]);
        assert!(out.status.success(), "{}", text(&out));

        // An error inside otv is never a Permit.
        break_answers_table(&db.url).await;
        let broken = p
            .post(
                "demo-huisarts",
                EVAL,
                &evaluation(YES, GP, "GGC002"),
                "az-broken",
            )
            .await;
        assert_eq!(broken.status, 200, "{}", broken.raw);
        assert_eq!(broken.body["decision"], false, "{}", broken.raw);
        assert_eq!(broken.body["context"]["decision"], "Indeterminate");
        assert_eq!(broken.body["context"]["reason"], "internal-error");
        let broken = p
            .post(
                "demo-huisarts",
                "/v1/closed-question",
                &question(YES, &["GGC002"]),
                "json-broken",
            )
            .await;
        assert_eq!(
            broken.body["results"][0]["decision"], "Indeterminate",
            "{}",
            broken.raw
        );
        assert_eq!(broken.body["results"][0]["permitted"], false);

        let logs = server.stop();
        for bsn in [YES, NO, GP_AND_PHARMACY, "900203639"] {
            assert!(!logs.contains(bsn), "a BSN reached the logs");
        }
        db.cleanup().await;
    }
}

/// Every operation `/openapi.json` lists is served by the real server: on the plain listener
/// with the development flag (where every interface is), nothing answers 404 or 405.
#[tokio::test]
async fn every_documented_route_is_served() {
    for db in databases().await {
        let server = Server::start_with(
            &db,
            &["--demo"],
            &[
                ("OTV_DEV_PLAIN_PROVIDER_HTTP", "true"),
                ("OTV_PROVIDER_BASE_PATH", "/mitz"),
            ],
        );
        let http = crate::support::http();
        let doc: Value = http
            .get(server.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        assert!(
            paths.contains_key("/mitz/geslotenautorisatievraag/xacml3"),
            "the provider interfaces are documented under the base path: {:?}",
            paths.keys().collect::<Vec<_>>()
        );
        let mut checked = 0;
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                let url = server.url(&path.replace("{id}", "0190b8a0-0000-7000-8000-000000000000"));
                let res = http
                    .request(method.to_uppercase().parse().unwrap(), url)
                    .header("x-otv-dev-connector", "demo-lsp")
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                // A route that is not there is axum's empty 404 (or 405); a resource that is
                // not there is a 404 with a body that says so.
                let body = res.bytes().await.unwrap();
                assert!(
                    status != 405 && (status != 404 || !body.is_empty()),
                    "{method} {path}: {status}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 9, "{checked} operations");
        server.stop();
        db.cleanup().await;
    }
}
