//! Registrations (abonnementen) through the real binary, over mutual TLS with the sandbox's
//! certificates, in FHIR JSON and XML: register (201, then 202 with the same id), read,
//! change, deactivate (the open question stops naming the holder), delete (then 404), a batch
//! with a bad entry, a connector that may not act for the holder, another connector's id, and
//! the throttle.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::open_question_request as open_question;
use crate::support::{Db, OTV, Server, databases, text};

/// A test citizen who is not a demo citizen, and passes the 11-test.
const NEW_PATIENT: &str = "999990019";
/// The demo citizen who says yes to everything.
const PERMIT_ALL: &str = "900203638";
/// The fixture's patient id: fails the 11-test.
const FIXTURE_PATIENT: &str = "123456789";
/// The fixture's holder (providerid), which the sandbox's `demo-lsp` is allowed to act for here.
const FIXTURE_HOLDER: &str = "01234567";
/// The fixture's source system.
const FIXTURE_SOURCE: &str = "2.16.840.1.113883.2.4.6.6.90000017";

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otv-wire/tests/fixtures/fhir")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// The Mitz fixture (`subscription.xml`, or its JSON twin) with another patient.
fn subscription(file: &str, bsn: &str) -> String {
    fixture(file).replace(FIXTURE_PATIENT, bsn)
}

/// A sandbox (PKI and configuration) in which `demo-lsp` may also act for the fixture's holder.
struct Sandbox {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let config = dir.join("otv.toml");
        let lsp = "acts_for = [\"00000001\", \"00000002\"";
        let toml = std::fs::read_to_string(&config).unwrap();
        assert!(toml.contains(lsp), "{toml}");
        let toml = toml.replace(
            lsp,
            &format!("acts_for = [\"{FIXTURE_HOLDER}\", \"00000001\", \"00000002\""),
        );
        std::fs::write(&config, toml).unwrap();
        Sandbox { _tmp: tmp, dir }
    }

    fn start(&self, db: &Db, env: &[(&str, &str)]) -> Server {
        let config = self.dir.join("otv.toml");
        let mut env = env.to_vec();
        env.extend([
            ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
            ("OTV_LOG_FORMAT", "json"),
            ("OTV_PROVIDER_BASE_PATH", "/mitz"),
        ]);
        Server::start_with(db, &["--config", config.to_str().unwrap()], &env)
    }

    /// An HTTPS client with `who`'s client certificate.
    fn client(&self, who: &str) -> reqwest::Client {
        crate::support::sandbox_client(&self.dir, Some(who))
    }
}

/// An answer: status, headers that matter, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    location: Option<String>,
    content_type: String,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// The id in `Location: Subscription/<id>`.
    fn id(&self) -> String {
        let location = self.location.as_deref().expect("a Location");
        location
            .strip_prefix("Subscription/")
            .unwrap_or_else(|| panic!("{location}"))
            .to_owned()
    }
}

/// A provider connection: one connector talking to one server.
struct Provider {
    client: reqwest::Client,
    base: String,
}

impl Provider {
    fn new(sandbox: &Sandbox, server: &Server, who: &str) -> Provider {
        let addr = server.provider_addr().expect("the provider listener runs");
        Provider {
            client: sandbox.client(who),
            base: format!("https://{addr}/mitz"),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let res = request.send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (location, content_type, retry_after) = (
            header("location"),
            header("content-type").unwrap_or_default(),
            header("retry-after"),
        );
        Answer {
            status: res.status().as_u16(),
            location,
            content_type,
            retry_after,
            body: res.text().await.unwrap(),
        }
    }

    async fn post(&self, path: &str, media_type: &str, body: String) -> Answer {
        let url = format!("{}/abonnementen/fhir{path}", self.base);
        self.send(
            self.client
                .post(url)
                .header("content-type", media_type)
                .body(body),
        )
        .await
    }

    async fn register(&self, media_type: &str, body: String) -> Answer {
        self.post("/Subscription", media_type, body).await
    }

    async fn read(&self, id: &str, accept: &str) -> Answer {
        let url = format!("{}/abonnementen/fhir/Subscription/{id}", self.base);
        self.send(self.client.get(url).header("accept", accept))
            .await
    }

    async fn update(&self, id: &str, body: String) -> Answer {
        let url = format!("{}/abonnementen/fhir/Subscription/{id}", self.base);
        self.send(self.client.put(url).header("content-type", JSON).body(body))
            .await
    }

    async fn delete(&self, id: &str) -> Answer {
        let url = format!("{}/abonnementen/fhir/Subscription/{id}", self.base);
        self.send(self.client.delete(url)).await
    }

    /// The open question for `bsn`, asked by GP post 00000002.
    async fn locate(&self, bsn: &str) -> String {
        let url = format!("{}/openautorisatievraag", self.base);
        let answer = self
            .send(
                self.client
                    .post(url)
                    .header("content-type", "application/soap+xml")
                    .body(open_question(bsn)),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body
    }
}

const JSON: &str = "application/fhir+json";
const XML: &str = "application/fhir+xml";

/// Stops the server (SIGTERM) off the runtime's thread, so that the dropped clients' connection
/// tasks can close their connections meanwhile; returns what it logged.
async fn stop(server: Server) -> String {
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap()
}

/// The FHIR paths (`expression`) of a JSON OperationOutcome's issues.
fn issue_paths(outcome: &Value) -> Vec<String> {
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The audit events of subscriptions, and whether any audit column holds `bsn`.
async fn audit_log(db: &Db, bsn: &str) -> (Vec<String>, bool) {
    use sqlx::Connection;
    let select = "SELECT event, coalesce(patient, '') || actor || coalesce(organisation, '') || \
                  coalesce(reason, '') || details FROM audit_log WHERE event LIKE 'subscription%' \
                  ORDER BY seq";
    let rows: Vec<(String, String)> = if db.url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_as(select).fetch_all(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_as(select).fetch_all(&mut conn).await.unwrap()
    };
    let leaked = rows.iter().any(|(_, text)| text.contains(bsn));
    (rows.into_iter().map(|(event, _)| event).collect(), leaked)
}

#[tokio::test]
async fn the_mitz_fixture_is_refused_for_its_bsn_and_accepted_with_a_valid_one() {
    let sandbox = Sandbox::new();
    for db in databases().await {
        let server = sandbox.start(&db, &[]);
        let lsp = Provider::new(&sandbox, &server, "demo-lsp");

        // As published: the patient id fails the 11-test, and that is the only fault.
        let as_is = lsp.register(XML, fixture("subscription.xml")).await;
        assert_eq!(as_is.status, 422, "{}", as_is.body);
        assert!(as_is.content_type.starts_with(XML), "{as_is:?}");
        assert_eq!(as_is.body.matches("<issue>").count(), 1, "{}", as_is.body);
        assert!(
            as_is
                .body
                .contains("<expression value=\"Subscription.criteria\"/>"),
            "{}",
            as_is.body
        );
        assert!(!as_is.body.contains(FIXTURE_PATIENT), "{}", as_is.body);

        // With a valid BSN: registered, and registered once.
        let created = lsp
            .register(XML, subscription("subscription.xml", NEW_PATIENT))
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert!(created.content_type.starts_with(XML), "{created:?}");
        let id = created.id();
        assert!(
            created.body.contains(&format!("<id value=\"{id}\"/>")),
            "{}",
            created.body
        );
        let again = lsp
            .register(XML, subscription("subscription.xml", NEW_PATIENT))
            .await;
        assert_eq!(again.status, 202, "{}", again.body);
        assert_eq!(again.id(), id);

        // The JSON twin is the same registration (same connector, patient and source system).
        let json_twin = lsp
            .register(JSON, subscription("subscription.json", NEW_PATIENT))
            .await;
        assert_eq!((json_twin.status, json_twin.id()), (202, id.clone()));
        assert!(json_twin.content_type.starts_with(JSON), "{json_twin:?}");
        assert_eq!(json_twin.json()["id"], id.as_str());

        // Shutdown waits for open connections: close the clients' and let the runtime run while
        // the server stops.
        drop(lsp);
        let logs = stop(server).await;
        assert!(!logs.contains(NEW_PATIENT), "a BSN in the logs");
        let (events, leaked) = audit_log(&db, NEW_PATIENT).await;
        assert!(!leaked, "a BSN in the audit log");
        assert_eq!(
            events,
            [
                "subscription-rejected",
                "subscription-create",
                "subscription-create",
                "subscription-create"
            ]
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_holder_registers_reads_changes_deactivates_and_deletes_its_registration() {
    let sandbox = Sandbox::new();
    for db in databases().await {
        let server = sandbox.start(&db, &[]);
        let lsp = Provider::new(&sandbox, &server, "demo-lsp");
        let huisarts = Provider::new(&sandbox, &server, "demo-huisarts");

        // GP 00000001 registers the citizen who says yes to everything, from its own source
        // system, in JSON.
        let source = "2.16.528.1.1007.99.4242";
        let registration = subscription("subscription.json", PERMIT_ALL)
            .replace(FIXTURE_HOLDER, "00000001")
            .replace(FIXTURE_SOURCE, source);
        let created = lsp.register(JSON, registration.clone()).await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.id();
        let resource = created.json();
        assert_eq!(resource["id"], id.as_str());
        assert_eq!(resource["status"], "active");
        assert!(lsp.locate(PERMIT_ALL).await.contains(source));

        // Read, in either format.
        let read = lsp.read(&id, JSON).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.json()["channel"]["payload"], XML);
        let read_xml = lsp.read(&id, XML).await;
        assert_eq!(read_xml.status, 200);
        assert!(read_xml.body.contains("<Subscription"), "{}", read_xml.body);

        // Another connector does not learn that it exists.
        for answer in [
            huisarts.read(&id, JSON).await,
            huisarts.delete(&id).await,
            huisarts.update(&id, registration.clone()).await,
        ] {
            assert_eq!(answer.status, 404, "{}", answer.body);
            assert_eq!(answer.json()["issue"][0]["code"], "not-found");
        }

        // Change the endpoint and the payload.
        let mut changed: Value = serde_json::from_str(&registration).unwrap();
        changed["id"] = json!(id);
        changed["status"] = json!("active");
        changed["channel"]["endpoint"] = json!("https://huisarts.example.nl/otv/notify");
        changed["channel"]["payload"] = json!(JSON);
        let updated = lsp.update(&id, changed.to_string()).await;
        assert_eq!(updated.status, 200, "{}", updated.body);
        let read = lsp.read(&id, JSON).await.json();
        assert_eq!(
            read["channel"]["endpoint"],
            "https://huisarts.example.nl/otv/notify"
        );
        assert_eq!(read["channel"]["payload"], JSON);

        // The patient cannot change under a registration.
        let mut other_patient = changed.clone();
        other_patient["criteria"] = json!(
            read["criteria"]
                .as_str()
                .unwrap()
                .replace(PERMIT_ALL, NEW_PATIENT)
        );
        let refused = lsp.update(&id, other_patient.to_string()).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(issue_paths(&refused.json()), ["Subscription.criteria"]);

        // Deactivate: kept, but no longer a location.
        let mut off = changed.clone();
        off["status"] = json!("off");
        let deactivated = lsp.update(&id, off.to_string()).await;
        assert_eq!(deactivated.status, 200, "{}", deactivated.body);
        assert_eq!(lsp.read(&id, JSON).await.json()["status"], "off");
        let located = lsp.locate(PERMIT_ALL).await;
        assert!(!located.contains(source), "{located}");
        assert!(
            located.contains("00000001"),
            "the demo registrations remain"
        );

        // Delete: gone.
        let deleted = lsp.delete(&id).await;
        assert_eq!(deleted.status, 204, "{}", deleted.body);
        assert_eq!(lsp.read(&id, JSON).await.status, 404);
        assert_eq!(lsp.delete(&id).await.status, 404);
        assert_eq!(lsp.read("not-a-uuid", JSON).await.status, 404);

        // Shutdown waits for open connections: close the clients' and let the runtime run while
        // the server stops.
        drop(lsp);
        drop(huisarts);
        stop(server).await;
        let (events, leaked) = audit_log(&db, PERMIT_ALL).await;
        assert!(!leaked, "a BSN in the audit log");
        for event in [
            "subscription-create",
            "subscription-read",
            "subscription-update",
            "subscription-deactivate",
            "subscription-delete",
            "subscription-rejected",
        ] {
            assert!(events.iter().any(|e| e == event), "{event}: {events:?}");
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_batch_carries_out_each_entry_on_its_own() {
    let sandbox = Sandbox::new();
    for db in databases().await {
        let server = sandbox.start(&db, &[]);
        let lsp = Provider::new(&sandbox, &server, "demo-lsp");

        let good: Value =
            serde_json::from_str(&subscription("subscription.json", NEW_PATIENT)).unwrap();
        let mut insecure = good.clone();
        insecure["channel"]["endpoint"] = json!("http://zim.example.nl/otv/notify");
        let mut not_mine = good.clone();
        not_mine["criteria"] = json!(
            good["criteria"]
                .as_str()
                .unwrap()
                .replace(FIXTURE_HOLDER, "00000666")
        );
        let entry = |resource: &Value| json!({ "resource": resource, "request": { "method": "POST", "url": "Subscription" } });
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                entry(&good),
                entry(&insecure),
                entry(&not_mine),
                { "request": { "method": "DELETE", "url": "Subscription/0190a6a8-7a3e-7cc1-a3b2-000000000000" } },
                entry(&good),
            ],
        });
        let answer = lsp.post("", JSON, bundle.to_string()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let response = answer.json();
        assert_eq!(response["type"], "batch-response");
        let entries = response["entry"].as_array().unwrap();
        let statuses: Vec<&str> = entries
            .iter()
            .map(|e| e["response"]["status"].as_str().unwrap())
            .collect();
        assert_eq!(
            statuses,
            [
                "201 Created",
                "422 Unprocessable Entity",
                "403 Forbidden",
                "404 Not Found",
                "202 Accepted"
            ]
        );
        assert_eq!(
            issue_paths(&entries[1]["response"]["outcome"]),
            ["Subscription.channel.endpoint"]
        );
        assert_eq!(
            entries[0]["response"]["location"],
            entries[4]["response"]["location"]
        );

        // The registration made in the batch is there.
        let location = entries[0]["response"]["location"].as_str().unwrap();
        let id = location.strip_prefix("Subscription/").unwrap();
        assert_eq!(lsp.read(id, JSON).await.status, 200);

        // A Bundle that is not a batch is refused as a whole.
        let mut transaction = bundle.clone();
        transaction["type"] = json!("transaction");
        let refused = lsp.post("", JSON, transaction.to_string()).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(issue_paths(&refused.json()), ["Bundle.type"]);

        // Shutdown waits for open connections: close the clients' and let the runtime run while
        // the server stops.
        drop(lsp);
        stop(server).await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn requests_that_cannot_be_served_are_refused_with_an_operation_outcome() {
    let sandbox = Sandbox::new();
    for db in databases().await {
        let server = sandbox.start(&db, &[]);
        let apotheek = Provider::new(&sandbox, &server, "demo-apotheek");

        // demo-apotheek acts for pharmacy 00000010 only, not for the fixture's holder.
        let refused = apotheek
            .register(JSON, subscription("subscription.json", NEW_PATIENT))
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
        let outcome = refused.json();
        assert_eq!(outcome["issue"][0]["code"], "forbidden");
        assert_eq!(issue_paths(&outcome), ["Subscription.criteria"]);
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains(FIXTURE_HOLDER)
        );

        let plain_text = apotheek
            .register("text/plain", subscription("subscription.json", NEW_PATIENT))
            .await;
        assert_eq!(plain_text.status, 415, "{}", plain_text.body);
        assert_eq!(plain_text.json()["resourceType"], "OperationOutcome");

        let huge = format!(
            "{{\"resourceType\": \"Subscription\", \"x\": \"{}\"}}",
            "a".repeat(100_000)
        );
        let too_large = apotheek.register(JSON, huge).await;
        assert_eq!(too_large.status, 413, "{}", too_large.body);

        let not_fhir = apotheek.register(JSON, "{\"resourceType\": ".into()).await;
        assert_eq!(not_fhir.status, 400, "{}", not_fhir.body);
        assert_eq!(not_fhir.json()["resourceType"], "OperationOutcome");

        // Shutdown waits for open connections: close the clients' and let the runtime run while
        // the server stops.
        drop(apotheek);
        let logs = stop(server).await;
        assert!(!logs.contains(NEW_PATIENT), "a BSN in the logs");
        let (events, _) = audit_log(&db, NEW_PATIENT).await;
        assert_eq!(events.len(), 4, "every refusal is audited: {events:?}");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_connector_over_its_rate_is_told_when_to_come_back() {
    let sandbox = Sandbox::new();
    for db in databases().await {
        // Two requests at once, then one every thousand seconds.
        let server = sandbox.start(
            &db,
            &[
                ("OTV_SUBSCRIPTION_RATE", "0.001"),
                ("OTV_SUBSCRIPTION_BURST", "2"),
            ],
        );
        let huisarts = Provider::new(&sandbox, &server, "demo-huisarts");
        let lsp = Provider::new(&sandbox, &server, "demo-lsp");
        let unknown = "0190a6a8-7a3e-7cc1-a3b2-000000000000";

        assert_eq!(huisarts.read(unknown, JSON).await.status, 404);
        assert_eq!(huisarts.read(unknown, JSON).await.status, 404);
        let throttled = huisarts.read(unknown, JSON).await;
        assert_eq!(throttled.status, 429, "{}", throttled.body);
        let retry_after: u64 = throttled
            .retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(retry_after >= 1, "{retry_after}");
        assert_eq!(throttled.json()["issue"][0]["code"], "throttled");

        // Each connector has its own bucket.
        assert_eq!(lsp.read(unknown, JSON).await.status, 404);

        // Shutdown waits for open connections: close the clients' and let the runtime run while
        // the server stops.
        drop(huisarts);
        drop(lsp);
        stop(server).await;
        db.cleanup().await;
    }
}
