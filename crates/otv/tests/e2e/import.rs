//! Bulk registration by NDJSON over real mutual TLS (the sandbox's PKI) and from the CLI: bad
//! lines and lines for URAs the connector may not act for are refused and reported; importing
//! again creates nothing; an import cut off (a body broken mid-way, the CLI killed) resumes and
//! ends with every registration exactly once; the open question then finds the imported
//! holders the patient consented to.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::open_question_request as open_question;
use crate::support::{Db, OTV, Server, databases, otv, text};

const PATH: &str = "/abonnementen/fhir/Subscription/$import";
/// The demo citizen who says yes to every option.
const BSN_PERMIT_ALL: &str = "900203638";

fn client(dir: &std::path::Path, who: &str) -> reqwest::Client {
    crate::support::sandbox_client(dir, Some(who))
}

/// One registration line.
fn line(bsn: &str, ura: &str, org_type: &str, source: u64) -> String {
    serde_json::json!({
        "resourceType": "Subscription",
        "extension": [
            {"url": "http://fhir.nl/StructureDefinition/GatewaySystem",
             "valueOid": "urn:oid:2.16.840.1.113883.2.4.6.6.1"},
            {"url": "http://fhir.nl/StructureDefinition/SourceSystem",
             "valueOid": format!("urn:oid:2.16.840.1.113883.2.4.6.6.9.{source}")}
        ],
        "status": "requested",
        "reason": "OTV",
        "criteria": format!(
            "Consent?_query=otv&patientid={bsn}&providerid={ura}&providertype={org_type}"
        ),
        "channel": {"type": "rest-hook", "endpoint": "https://lsp.example/notify",
                    "payload": "application/fhir+json"}
    })
    .to_string()
}

/// `n` BSNs that pass the 11-test, none of them a demo citizen's.
fn bsns(n: usize) -> Vec<String> {
    (100_000_000u64..)
        .map(|v| v.to_string())
        .filter(|s| {
            let d: Vec<i64> = s.bytes().map(|b| i64::from(b - b'0')).collect();
            let sum: i64 = (0..8).map(|i| d[i] * (9 - i as i64)).sum::<i64>() - d[8];
            sum % 11 == 0
        })
        .take(n)
        .collect()
}

/// The test file: two lines for the consenting demo citizen at holders the demo does not
/// register (GGZ, home care), a malformed line (3), a line for a URA `demo-lsp` may not act for
/// (4), then `bulk` registrations at the demo pharmacy.
fn body(bulk: usize) -> String {
    let mut lines = vec![
        line(BSN_PERMIT_ALL, "00000040", "G5", 40),
        line(BSN_PERMIT_ALL, "00000050", "T2", 50),
        r#"{"resourceType": "Patient"}"#.to_owned(),
        line("900203651", "00000099", "Z3", 99),
    ];
    lines.extend(bsns(bulk).iter().map(|b| line(b, "00000010", "J8", 10)));
    lines.join("\n") + "\n"
}

/// Registrations of `demo-lsp` outside the demo's own (which use other source systems).
async fn imported_rows(db: &Db) -> i64 {
    let sql = "SELECT count(*) FROM subscriptions WHERE source_system LIKE '2.16.840.1.113883.2.4.6.6.9.%'";
    if db.url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}

// Several threads: the clients' connections must be able to close while `stop` blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_import_over_mutual_tls_refuses_bad_lines_is_idempotent_and_resumes() {
    for db in databases().await {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let server = Server::start_with(
            &db,
            &["--config", dir.join("otv.toml").to_str().unwrap()],
            &[
                ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
                ("OTV_LOG_FORMAT", "json"),
            ],
        );
        let base = format!("https://{}", server.provider_addr().unwrap());
        let lsp = client(&dir, "demo-lsp");
        let url = |id: &str| format!("{base}{PATH}?import_id={id}");
        let post = async |id: &str, body: reqwest::Body| {
            let res = lsp
                .post(url(id))
                .header("content-type", "application/fhir+ndjson")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let v: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
            (status, v)
        };

        // 12,004 lines: three chunks of 5,000 lines.
        let full = body(12_000);
        let (status, r) = post("first", full.clone().into()).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["lines_read"], 12_004, "{r}");
        assert_eq!(r["created"], 12_002, "{r}");
        assert_eq!(r["already_registered"], 0, "{r}");
        assert_eq!(r["refused"], 2, "{r}");
        assert_eq!(r["committed_through_line"], 12_004, "{r}");
        assert_eq!(r["complete"], true, "{r}");
        let refusals = r["refusals"].as_array().unwrap();
        assert_eq!(refusals[0]["line"], 3, "{r}");
        assert_eq!(refusals[0]["reason"], "invalid", "{r}");
        assert!(refusals[0]["issues"][0]["problem"].is_string(), "{r}");
        assert_eq!(refusals[1]["line"], 4, "{r}");
        assert_eq!(refusals[1]["reason"], "not-allowed-for-ura", "{r}");
        assert_eq!(
            refusals[1]["issues"][0]["path"], "Subscription.criteria",
            "{r}"
        );
        assert!(
            !r.to_string().contains("900203651"),
            "no BSN in a report: {r}"
        );
        assert_eq!(imported_rows(&db).await, 12_002);

        // The same lines again, under a new id: nothing new.
        let (status, r) = post("again", full.clone().into()).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            (&r["created"], &r["already_registered"], &r["refused"]),
            (&Value::from(0), &Value::from(12_002), &Value::from(2)),
            "{r}"
        );
        // And under the same id: every line skipped, none decoded.
        let (status, r) = post("first", full.clone().into()).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(
            (&r["skipped"], &r["created"]),
            (&Value::from(12_004), &Value::from(0)),
            "{r}"
        );
        assert_eq!(imported_rows(&db).await, 12_002);

        // A body cut off after line 7,000 of another file: the first chunk stays committed.
        // The same patients at the demo hospital (lines 1 to 4 as before).
        let other = body(20_000)
            .replace(
                "providerid=00000010&providertype=J8",
                "providerid=00000020&providertype=V6",
            )
            .replace(".9.10\"", ".9.20\"");
        let cut: String = other.split_inclusive('\n').take(7_000).collect();
        // The body breaks only once the server has committed the first chunk, so that the
        // cut is known to come after it.
        let watcher = client(&dir, "demo-lsp");
        let status_url = url("cut");
        let breaks = async move {
            for _ in 0..600 {
                let res = watcher.get(&status_url).send().await.unwrap();
                if res.status() == 200 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err::<String, _>(std::io::Error::other("the client gave up"))
        };
        let parts = futures_util::stream::iter(
            cut.split_inclusive('\n')
                .map(|l| Ok::<_, std::io::Error>(l.to_owned()))
                .collect::<Vec<_>>(),
        )
        .chain(futures_util::stream::once(breaks));
        let broken = reqwest::Body::wrap_stream(parts);
        let outcome = lsp
            .post(url("cut"))
            .header("content-type", "application/x-ndjson")
            .body(broken)
            .send()
            .await;
        assert!(outcome.is_err(), "the broken body fails the request");
        let status: Value = lsp
            .get(url("cut"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["committed_lines"], 5_000, "{status}");
        assert_eq!(status["complete"], false, "{status}");
        // Re-sent whole, it continues after line 5,000.
        let (code, r) = post("cut", other.clone().into()).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(r["skipped"], 5_000, "{r}");
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["import"]["created"], 20_000, "{r}");
        assert_eq!(r["import"]["already_registered"], 2, "{r}");
        assert_eq!(imported_rows(&db).await, 12_002 + 20_000);
        // Different lines under a committed id are refused, not resumed.
        let (code, r) = post("first", other.clone().into()).await;
        assert_eq!(code, 409, "{r}");
        assert_eq!(r["type"], "urn:otv:problem:different-input", "{r}");

        // Whole-request problems.
        let res = lsp
            .post(url("x"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 415);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["type"], "urn:otv:problem:media-type", "{p}");
        let res = lsp
            .post(format!("{base}{PATH}"))
            .header("content-type", "application/fhir+ndjson")
            .body("")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let res = lsp.get(url("never")).send().await.unwrap();
        assert_eq!(res.status(), 404);
        // Imports are per connector: the GP's system does not see the LSP's.
        let gp = client(&dir, "demo-huisarts");
        assert_eq!(gp.get(url("first")).send().await.unwrap().status(), 404);

        // The open question finds the imported holders of the consenting citizen.
        let res = lsp
            .post(format!("{base}/openautorisatievraag"))
            .header("content-type", "application/soap+xml")
            .body(open_question(BSN_PERMIT_ALL))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let answer = res.text().await.unwrap();
        for holder in ["00000040", "00000050", "00000001"] {
            assert!(
                answer.contains(&format!("extension=\"{holder}\"")),
                "{holder}: {answer}"
            );
        }
        assert!(!answer.contains("00000099"), "{answer}");

        // Kept-alive client connections would hold the graceful shutdown up.
        drop((lsp, gp));
        let logs = server.stop();
        assert!(!logs.contains(BSN_PERMIT_ALL), "no BSN in the logs");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_cli_import_resumes_after_being_killed() {
    for db in databases().await {
        // The demo connectors (demo-lsp acts for the demo pharmacy) are in the database.
        let out = otv(&db, &["demo"]);
        assert!(out.status.success(), "{}", text(&out));
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("registrations.ndjson");
        std::fs::write(&file, body(30_000)).unwrap();
        let args = [
            "import",
            "subscriptions",
            file.to_str().unwrap(),
            "--connector",
            "demo-lsp",
            "--chunk",
            "1000",
        ];

        // Killed as soon as it has committed its first chunk.
        let mut child = Command::new(OTV)
            .args(args)
            .env("OTV_DATABASE_URL", &db.url)
            .envs(db.keys.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut said = Vec::new();
        for l in stderr.lines().map_while(Result::ok) {
            let committed = l.starts_with("committed through line");
            said.push(l);
            if committed {
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(said.iter().any(|l| l.starts_with("committed")), "{said:?}");

        let out = otv(&db, &args);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert!(r["skipped"].as_u64().unwrap() >= 1_000, "{r}");
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["lines_read"], 30_004, "{r}");
        assert_eq!(imported_rows(&db).await, 30_002);

        // Once more: everything skipped, nothing new.
        let out = otv(&db, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let r: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(
            (&r["skipped"], &r["created"]),
            (&Value::from(30_004), &Value::from(0)),
            "{r}"
        );
        assert_eq!(imported_rows(&db).await, 30_002);
        db.cleanup().await;
    }
}
