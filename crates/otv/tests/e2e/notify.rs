//! Consent notifications to dossier holders (PRODUCT.md §11, §12 "Notifications") through the
//! real binary: a real HTTPS receiver that requires a client certificate from the sandbox CA
//! gets a FHIR transaction Bundle after the patient changes their choices in the portal, in
//! the format each subscription asked for; a categorical change reaches every subscribed
//! holder of the category; a subscription whose endpoint is not allowed for its connector is
//! never called (its row goes dead, visible to operators); a receiver that fails gets the same
//! Bundle again later; the notifications of one subscription arrive in the order of the
//! changes. `notify_crash` kills the server during a delivery.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::portal_client::{Browser, DevLogin, record_change};
use crate::support::{Db, OTV, Server, databases, otv, text};

/// The admin API's token in these tests.
const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef0123";

/// A test citizen who is not a demo citizen (passes the 11-test).
pub const PATIENT: &str = "999990019";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub bundle_id: String,
    pub body: String,
    /// Whether the receiver answered it with success.
    pub answered_ok: bool,
    /// When it arrived.
    pub at: Instant,
}

/// What the receiver does with the next requests.
#[derive(Debug, Default)]
pub struct Behaviour {
    /// Answer this many requests (to any path) with 503 first.
    pub fail_next: usize,
    /// Never answer (the request hangs until the client gives up or dies).
    pub stall: bool,
}

/// A real HTTPS receiver with mutual TLS (the sandbox's server certificate; client
/// certificates must chain to the sandbox CA).
pub struct Receiver {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Received>>>,
    pub behaviour: Arc<Mutex<Behaviour>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct ReceiverState {
    got: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
}

fn bundle_id(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v["id"].as_str().unwrap_or_default().to_owned();
    }
    // XML: the Bundle's own id is its first `<id value="…"/>`.
    body.split("<id value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

async fn hook(
    State(state): State<ReceiverState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let (fail, stall) = {
        let mut b = state.behaviour.lock().unwrap();
        let fail = b.fail_next > 0;
        if fail {
            b.fail_next -= 1;
        }
        (fail, b.stall)
    };
    let received = Received {
        path: uri.path().to_owned(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        bundle_id: bundle_id(&body),
        body,
        answered_ok: !fail && !stall,
        at: Instant::now(),
    };
    state.got.lock().unwrap().push(received);
    if stall {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

impl Receiver {
    pub async fn start(sandbox: &std::path::Path) -> Receiver {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tls = otv_server::tls::server_config(&otv_server::tls::TlsSettings {
            server_cert_pem: sandbox.join("server.pem"),
            server_key_pem: sandbox.join("server-key.pem"),
            client_ca_pem: sandbox.join("ca.pem"),
        })
        .unwrap();
        let state = ReceiverState {
            got: Arc::default(),
            behaviour: Arc::default(),
        };
        let router = Router::new()
            .route("/hook/{*rest}", post(hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(otv_server::tls::serve_mtls(
            listener,
            tls,
            router,
            async move {
                let _ = stopped.await;
            },
        ));
        Receiver {
            port,
            got: state.got,
            behaviour: state.behaviour,
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was received (at most a minute).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got = self.got();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}; received: {:#?}",
                got.iter()
                    .map(|r| (&r.path, &r.bundle_id, r.answered_ok))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The sandbox PKI and configuration: `demo-lsp` may send notifications to `/hook/lsp…` of
/// the receiver; `demo-apotheek` to nothing.
pub struct Sandbox {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        Sandbox { _tmp: tmp, dir }
    }

    /// Writes the configuration for `receiver` and starts otv on `db`.
    pub fn start(&self, db: &Db, receiver: &Receiver, env: &[(&str, &str)]) -> Server {
        let config = self.dir.join("otv.toml");
        let toml = std::fs::read_to_string(&config).unwrap();
        let lsp = "acts_for = [\"00000001\", \"00000002\"";
        assert!(toml.contains(lsp), "{toml}");
        let toml = if toml.contains("notify_endpoints") {
            toml
        } else {
            toml.replace(
                lsp,
                &format!(
                    "notify_endpoints = [\"{}\"]\n{lsp}",
                    receiver.url("/hook/lsp")
                ),
            )
        };
        std::fs::write(&config, toml).unwrap();
        let path = |f: &str| self.dir.join(f).display().to_string();
        let (cert, key, ca) = (
            path("demo-lsp.pem"),
            path("demo-lsp-key.pem"),
            path("ca.pem"),
        );
        let mut all: Vec<(&str, &str)> = vec![
            ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
            ("OTV_LOG_FORMAT", "json"),
            ("OTV_PORTAL_DEV_LOGIN", "true"),
            ("OTV_NOTIFY_CLIENT_CERT", &cert),
            ("OTV_NOTIFY_CLIENT_KEY", &key),
            ("OTV_NOTIFY_SERVER_CA", &ca),
            ("OTV_NOTIFY_POLL_INTERVAL_MS", "200"),
        ];
        all.extend_from_slice(env);
        Server::start_with(db, &["--config", config.to_str().unwrap()], &all)
    }

    fn client(&self, who: &str) -> reqwest::Client {
        crate::support::sandbox_client(&self.dir, Some(who))
    }

    /// Registers `holder` (URA, type) for the patient through `connector`, with `endpoint` and
    /// `payload`; returns the subscription id.
    pub async fn subscribe(
        &self,
        server: &Server,
        connector: &str,
        holder: (&str, &str),
        source: &str,
        endpoint: &str,
        payload: &str,
    ) -> String {
        let body = json!({
            "resourceType": "Subscription",
            "extension": [
                {"url": "http://fhir.nl/StructureDefinition/Patient.birthDate", "valueDate": "1980-03-07"},
                {"url": "http://fhir.nl/StructureDefinition/GatewaySystem", "valueOid": "urn:oid:2.16.840.1.113883.2.4.6.6.1"},
                {"url": "http://fhir.nl/StructureDefinition/SourceSystem", "valueOid": format!("urn:oid:{source}")}
            ],
            "status": "requested",
            "reason": "OTV",
            "criteria": format!("Consent?_query=otv&patientid={PATIENT}&providerid={}&providertype={}", holder.0, holder.1),
            "channel": {"type": "rest-hook", "endpoint": endpoint, "payload": payload}
        });
        let addr = server.provider_addr().unwrap();
        let r = self
            .client(connector)
            .post(format!("https://{addr}/abonnementen/fhir/Subscription"))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let answer = r.text().await.unwrap();
        assert_eq!(status, 201, "{answer}");
        location.unwrap().rsplit('/').next().unwrap().to_owned()
    }
}

/// The patient logs in and records a choice that changes something.
pub async fn change(server: &Server, choice: &str) {
    let mut b = Browser::new(server);
    b.log_in(DevLogin::new(PATIENT).born("1980-03-07")).await;
    record_change(&mut b, choice, &[], "no").await;
}

/// The statuses of the Consents in a received Bundle (JSON or XML).
pub fn statuses(r: &Received) -> Vec<String> {
    if let Ok(v) = serde_json::from_str::<Value>(&r.body) {
        return v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Consent")
            .map(|e| e["resource"]["status"].as_str().unwrap().to_owned())
            .collect();
    }
    r.body
        .split("<status value=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .filter(|s| s == "active" || s == "inactive")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn holders_of_a_category_receive_the_bundle_in_order_retried_and_never_at_an_endpoint_not_allowed()
 {
    for db in databases().await {
        let sandbox = Sandbox::new();
        let receiver = Receiver::start(&sandbox.dir).await;
        let server = sandbox.start(&db, &receiver, &[("OTV_NOTIFY_ADMIN_TOKEN", ADMIN_TOKEN)]);
        let gp = sandbox
            .subscribe(
                &server,
                "demo-lsp",
                ("00000001", "Z3"),
                "2.16.840.1.113883.2.4.6.6.90000017",
                &receiver.url("/hook/lsp/gp"),
                "application/fhir+xml",
            )
            .await;
        let pharmacy = sandbox
            .subscribe(
                &server,
                "demo-lsp",
                ("00000010", "J8"),
                "2.16.840.1.113883.2.4.6.6.90000018",
                &receiver.url("/hook/lsp/apotheek"),
                "application/fhir+json",
            )
            .await;
        // demo-apotheek has no notify_endpoints: its subscription is never called.
        sandbox
            .subscribe(
                &server,
                "demo-apotheek",
                ("00000010", "J8"),
                "2.16.840.1.113883.2.4.6.6.90000019",
                &receiver.url("/hook/other"),
                "application/fhir+json",
            )
            .await;

        // The first delivery fails; it is retried after its back-off, and the second change's
        // notification to the same subscription waits for it.
        receiver.behaviour.lock().unwrap().fail_next = 1;
        change(&server, "all").await;
        // A notification carries the holder's view when the change is fanned out (at once, or
        // later after a crash, then possibly showing later changes too): the second change
        // waits until the first one's notifications were attempted, so the views differ.
        receiver
            .wait_for("a first attempt for the GP and the pharmacy", |got| {
                ["/hook/lsp/gp", "/hook/lsp/apotheek"]
                    .iter()
                    .all(|p| got.iter().any(|r| &r.path == p))
            })
            .await;
        change(&server, "none").await;

        let got = receiver
            .wait_for(
                "two notifications each for the GP and the pharmacy",
                |got| {
                    ["/hook/lsp/gp", "/hook/lsp/apotheek"]
                        .iter()
                        .all(|p| got.iter().filter(|r| &r.path == p && r.answered_ok).count() >= 2)
                },
            )
            .await;
        assert!(
            got.iter().all(|r| r.path.starts_with("/hook/lsp/")),
            "{got:#?}"
        );
        for (path, media) in [
            ("/hook/lsp/gp", "application/fhir+xml"),
            ("/hook/lsp/apotheek", "application/fhir+json"),
        ] {
            let mine: Vec<&Received> = got.iter().filter(|r| r.path == path).collect();
            assert!(
                mine.iter().all(|r| r.content_type.starts_with(media)),
                "{path}: {mine:#?}"
            );
            // In order of the changes: "all" (some Consent active) before "none" (all inactive).
            let delivered: Vec<&&Received> = mine.iter().filter(|r| r.answered_ok).collect();
            assert!(
                statuses(delivered[0]).contains(&"active".to_owned()),
                "{path}: first is the yes"
            );
            assert!(
                statuses(delivered[1]).iter().all(|s| s == "inactive"),
                "{path}: then the no"
            );
            assert_ne!(delivered[0].bundle_id, delivered[1].bundle_id);
            // A failed attempt is followed by the same Bundle, before anything newer.
            if let Some(i) = mine.iter().position(|r| !r.answered_ok) {
                assert_eq!(
                    mine[i + 1].bundle_id,
                    mine[i].bundle_id,
                    "{path}: the retry is the same Bundle"
                );
            }
            assert!(
                mine[0].body.contains(PATIENT),
                "the Bundle names the patient (BSN)"
            );
        }
        assert_eq!(got.iter().filter(|r| !r.answered_ok).count(), 1);

        // The not-allowed subscription is parked as dead, with the reason, for operators.
        let deadline = Instant::now() + Duration::from_secs(30);
        let dead = loop {
            let out = otv(&db, &["outbox", "dead"]);
            let t = text(&out);
            if t.matches("`demo-apotheek`").count() >= 2 || Instant::now() > deadline {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            dead.contains("is not allowed for connector `demo-apotheek`"),
            "{dead}"
        );
        assert!(!dead.contains(PATIENT));
        let status = text(&otv(&db, &["outbox", "status"]));
        assert!(status.contains(" dead"), "{status}");

        // The admin API shows it too, to the holder of the admin token only, and retries it.
        let http = crate::support::http();
        let wrong = http
            .get(server.url("/admin/v1/outbox/dead"))
            .bearer_auth("not-the-token-not-the-token-not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert!(
            wrong.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/problem+json")
        );
        let rows: Value = http
            .get(server.url("/admin/v1/outbox/dead"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // The demo data's own subscriptions (endpoints of no allowed connector) are dead too.
        let total = rows.as_array().unwrap().len();
        let rows: Vec<&Value> = rows
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("`demo-apotheek`")
            })
            .collect();
        assert_eq!(rows.len(), 2, "one per change: {rows:?}");
        let id = rows[0]["id"].as_str().unwrap();
        let retried: Value = http
            .post(server.url(&format!("/admin/v1/outbox/dead/{id}/retry")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(retried["retried"], 1);
        // Retried, the endpoint is still not allowed: dead again, and never called.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !text(&otv(&db, &["outbox", "status"])).contains(&format!(" {total} dead")) {
            assert!(
                Instant::now() < deadline,
                "the retried row did not go dead again"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(
            receiver
                .got()
                .iter()
                .all(|r| r.path.starts_with("/hook/lsp/"))
        );
        let _ = (gp, pharmacy);

        let logs = server.stop();
        assert!(!logs.contains(PATIENT), "the BSN is in the logs");
        db.cleanup().await;
    }
}

/// The notification benchmark (BENCHMARKS.md, "Notifications"), run by `scripts/bench-notify`:
/// `OTV_BENCH_PATIENTS` patients, each with a GP subscription, make `OTV_BENCH_CHANGES`
/// changes in the portal in all, a steady `OTV_BENCH_RATE` changes per second round the
/// patients; the receiver notes when each Bundle first arrives. Prints p50 and p99 of the
/// delay from the change's commit (its portal request answered) to the first delivery attempt
/// arriving at the receiver, and deliveries per second. `OTV_BENCH_BACKEND` picks `sqlite` or
/// `postgres`.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: scripts/bench-notify runs it"]
async fn bench_notify() {
    let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let changes: usize = var("OTV_BENCH_CHANGES", "100").parse().unwrap();
    let rate: f64 = var("OTV_BENCH_RATE", "10").parse().unwrap();
    let patients: usize = var("OTV_BENCH_PATIENTS", "10").parse().unwrap();
    let backend = var("OTV_BENCH_BACKEND", "sqlite");
    let db = databases()
        .await
        .into_iter()
        .find(|d| d.url.starts_with(&backend))
        .expect("OTV_BENCH_BACKEND=postgres needs OTV_TEST_DATABASE_URL");
    let sandbox = Sandbox::new();
    let receiver = Receiver::start(&sandbox.dir).await;
    let server = sandbox.start(&db, &receiver, &[]);
    // Valid test BSNs (11-test) from 999990001 up.
    let bsns: Vec<String> = (999_990_001u32..)
        .map(|n| n.to_string())
        .filter(|b| {
            let d: Vec<i64> = b.bytes().map(|c| i64::from(c - b'0')).collect();
            let sum: i64 = (0..8).map(|i| d[i] * (9 - i as i64)).sum::<i64>() - d[8];
            sum % 11 == 0
        })
        .take(patients)
        .collect();
    let mut browsers = Vec::new();
    for (i, bsn) in bsns.iter().enumerate() {
        let body = json!({
            "resourceType": "Subscription",
            "extension": [
                {"url": "http://fhir.nl/StructureDefinition/Patient.birthDate", "valueDate": "1980-03-07"},
                {"url": "http://fhir.nl/StructureDefinition/GatewaySystem", "valueOid": "urn:oid:2.16.840.1.113883.2.4.6.6.1"},
                {"url": "http://fhir.nl/StructureDefinition/SourceSystem", "valueOid": "urn:oid:2.16.840.1.113883.2.4.6.6.90000017"}
            ],
            "status": "requested", "reason": "OTV",
            "criteria": format!("Consent?_query=otv&patientid={bsn}&providerid=00000001&providertype=Z3"),
            "channel": {"type": "rest-hook", "endpoint": receiver.url(&format!("/hook/lsp/{i}")), "payload": "application/fhir+json"}
        });
        let r = sandbox
            .client("demo-lsp")
            .post(format!(
                "https://{}/abonnementen/fhir/Subscription",
                server.provider_addr().unwrap()
            ))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let mut b = Browser::new(&server);
        b.log_in(DevLogin::new(bsn).born("1980-03-07")).await;
        browsers.push(Arc::new(tokio::sync::Mutex::new(b)));
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..changes {
        let due = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let p = k % patients;
        let browser = browsers[p].clone();
        let choice = if (k / patients).is_multiple_of(2) {
            "all"
        } else {
            "none"
        };
        tasks.push(tokio::spawn(async move {
            let mut b = browser.lock().await;
            record_change(&mut b, choice, &[], "no").await;
            (p, k / patients, Instant::now())
        }));
    }
    let mut committed = std::collections::HashMap::new();
    for t in tasks {
        let (p, n, at) = t.await.unwrap();
        committed.insert((p, n), at);
    }
    let got = receiver
        .wait_for("every notification", |got| {
            got.iter()
                .map(|r| &r.bundle_id)
                .collect::<std::collections::HashSet<_>>()
                .len()
                >= changes
        })
        .await;
    let mut delays = Vec::new();
    let mut last = start;
    for p in 0..patients {
        let path = format!("/hook/lsp/{p}");
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<&Received> = got
            .iter()
            .filter(|r| r.path == path && seen.insert(r.bundle_id.clone()))
            .collect();
        for (n, r) in firsts.iter().enumerate() {
            let commit = committed[&(p, n)];
            delays.push(r.at.saturating_duration_since(commit).as_secs_f64() * 1000.0);
            last = last.max(r.at);
        }
    }
    delays.sort_by(f64::total_cmp);
    let pct = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    let seconds = last.duration_since(start).as_secs_f64();
    println!(
        "bench-notify {backend}: {changes} changes at {rate}/s over {patients} patients; \
         commit -> first attempt p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.1} deliveries/s ({} deliveries in {:.1} s)",
        pct(0.5),
        pct(0.99),
        delays[delays.len() - 1],
        got.len() as f64 / seconds,
        got.len(),
        seconds
    );
    drop(server);
    db.cleanup().await;
}
