//! Migration of locally kept consents (PRODUCT.md §9) through the real binary: a batch Bundle
//! (FHIR JSON and XML) and NDJSON over real mutual TLS, and `otv import consents` from the
//! CLI. Migration fills only options a citizen has not answered (a citizen's own "no" survives),
//! refuses what it cannot map with the element's FHIR path, changes nothing the second time, the
//! closed question then reflects the migrated answers, and the portal shows "migrated by
//! <provider>" in the overview (with a notice until the citizen has seen it) and the history.

use std::process::Command;

use serde_json::{Value, json};

use crate::portal_client::{DevLogin, login};
use crate::support::{OTV, Server, databases, otv, text};

const PATH: &str = "/v1/migration/consents";
/// The demo citizen who said no to every option herself.
const BSN_DENY_ALL: &str = "900203651";
/// The demo GP practice and its name in the directory.
const GP: &str = "00000001";
const GP_NAME: &str = "Huisartsenpraktijk De Linde";

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

/// A Consent of holder `ura` (type `kind`): `status` for GP posts and GPs (RPZAC001) about the
/// data category `data`, with Patient and Organization contained (the NDJSON form).
fn consent(bsn: &str, ura: &str, kind: &str, status: &str, data: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "contained": [
            {"resourceType": "Patient", "id": "p",
             "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": bsn}]},
            {"resourceType": "Organization", "id": "o",
             "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": ura}],
             "type": [{"coding": [{"system": "http://nictiz.nl/fhir/NamingSystem/organization-type", "code": kind}]}]}
        ],
        "extension": [{"url": "http://fhir.nl/StructureDefinition/OTV-ProviderCategory",
            "valueCodeableConcept": {"coding": [{"system": "http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie", "code": "RPZAC001"}]}}],
        "status": status,
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://fhir.nl/otv/CodeSystem/gegevenscategorie", "code": data}]}],
        "patient": {"reference": "#p"},
        "dateTime": "2024-11-18T10:51:16Z",
        "provision": {"actor": [{
            "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "CST"}]},
            "reference": {"reference": "#o"}}]}
    })
}

fn gp_yes(bsn: &str) -> Value {
    consent(bsn, GP, "Z3", "active", "GGC002")
}

/// A batch Bundle of `consents`, each a `POST Consent` entry.
fn bundle(consents: &[Value]) -> String {
    let entries: Vec<Value> = consents
        .iter()
        .map(|c| json!({"resource": c, "request": {"method": "POST", "url": "Consent"}}))
        .collect();
    json!({"resourceType": "Bundle", "type": "batch", "entry": entries}).to_string()
}

fn ndjson(lines: &[Value]) -> String {
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

/// The closed question over mutual TLS (GP 00000001 asked about GP post 00000002, treatment
/// data), as the demo GP's connector: `Permit` or `Deny`.
async fn decision(client: &reqwest::Client, base: &str, bsn: &str) -> String {
    let question = json!({
        "bsn": bsn,
        "holder": {"ura": GP, "organisation_type": "Z3"},
        "consulter": {"ura": "00000002", "organisation_type": "N6"},
        "professional": {"uzi": "900010001", "role": "01.015"},
        "purpose": "TREAT",
        "data_categories": ["GGC002"],
    });
    let res = client
        .post(format!("{base}/v1/closed-question"))
        .json(&question)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["results"][0]["decision"]
        .as_str()
        .unwrap_or_else(|| panic!("no decision: {body}"))
        .to_owned()
}

// Several threads: the clients' connections must be able to close while `stop` blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consents_migrate_by_bundle_ndjson_and_cli_without_overwriting_the_citizen() {
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
                ("OTV_PORTAL_DEV_LOGIN", "true"),
            ],
        );
        let base = format!("https://{}", server.provider_addr().unwrap());
        let lsp = crate::support::sandbox_client(&dir, Some("demo-lsp"));
        let gp = crate::support::sandbox_client(&dir, Some("demo-huisarts"));
        let fresh = bsns(6);
        let (bundle_bsn, xml_bsn, ndjson_bsn, cli_bsn) =
            (&fresh[0], &fresh[1], &fresh[2], &fresh[3]);
        assert_eq!(decision(&gp, &base, bundle_bsn).await, "Deny");

        // A batch Bundle in FHIR JSON: one new citizen, the citizen who said no herself, a
        // pharmacy Consent about the wrong data category, and a holder the GP system may not
        // act for.
        let body = bundle(&[
            gp_yes(bundle_bsn),
            gp_yes(BSN_DENY_ALL),
            consent(&fresh[4], "00000010", "J8", "active", "GGC002"),
        ]);
        let res = lsp
            .post(format!("{base}{PATH}"))
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let r: Value = res.json().await.unwrap();
        assert_eq!(r["type"], "batch-response", "{r}");
        let status = |i: usize| {
            r["entry"][i]["response"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(status(0), "201 Created", "{r}");
        assert_eq!(status(1), "200 OK", "the citizen's own no stays: {r}");
        assert_eq!(status(2), "422 Unprocessable Entity", "{r}");
        assert_eq!(
            r["entry"][2]["response"]["outcome"]["issue"][0]["expression"][0], "Consent.category",
            "{r}"
        );
        assert!(!r.to_string().contains(bundle_bsn.as_str()), "no BSN: {r}");

        let res = gp
            .post(format!("{base}{PATH}"))
            .header("content-type", "application/fhir+json")
            .body(bundle(&[consent(
                &fresh[5], "00000010", "J8", "active", "GGC013",
            )]))
            .send()
            .await
            .unwrap();
        let r: Value = res.json().await.unwrap();
        assert_eq!(r["entry"][0]["response"]["status"], "403 Forbidden", "{r}");

        // The same Bundle shape in FHIR XML.
        let xml = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../otv-wire/tests/fixtures/fhir/consent-batch.xml"),
        )
        .unwrap()
        .replace("900186021", xml_bsn)
        .replace("00000659", GP);
        let res = lsp
            .post(format!("{base}{PATH}"))
            .header("content-type", "application/fhir+xml")
            .body(xml)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let r = res.text().await.unwrap();
        assert_eq!(r.matches("201 Created").count(), 2, "{r}");

        // NDJSON: a good line, a broken one, and the good one again.
        let lines = ndjson(&[
            gp_yes(ndjson_bsn),
            json!({"resourceType": "Consent"}),
            gp_yes(ndjson_bsn),
        ]);
        let res = lsp
            .post(format!("{base}{PATH}"))
            .header("content-type", "application/x-ndjson")
            .body(lines)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let r: Value = res.json().await.unwrap();
        assert_eq!(r["lines_read"], 3, "{r}");
        assert_eq!(r["answers_migrated"], 1, "{r}");
        assert_eq!(r["keys_already_answered"], 1, "{r}");
        assert_eq!(r["refused"], 1, "{r}");
        assert_eq!(r["refusals"][0]["line"], 2, "{r}");
        assert!(
            r["refusals"][0]["issues"][0]["path"]
                .as_str()
                .unwrap()
                .starts_with("Consent."),
            "{r}"
        );

        // The CLI, twice: the second run changes nothing.
        let file = tmp.path().join("consents.ndjson");
        std::fs::write(&file, ndjson(&[gp_yes(cli_bsn)])).unwrap();
        let args = [
            "--config",
            config.to_str().unwrap(),
            "import",
            "consents",
            "--connector",
            "demo-lsp",
            file.to_str().unwrap(),
        ];
        let out = otv(&db, &args);
        assert!(out.status.success(), "{}", text(&out));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["answers_migrated"], 1, "{r}");
        let out = otv(&db, &args);
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["answers_migrated"], 0, "{r}");
        assert_eq!(r["keys_already_answered"], 1, "{r}");

        // The closed question reflects the migrated answers, and not where the citizen answered.
        for bsn in [bundle_bsn, ndjson_bsn, cli_bsn] {
            assert_eq!(decision(&gp, &base, bsn).await, "Permit", "{bsn}");
        }
        // The Mitz fixture's second Consent says no to GPs and GP posts.
        assert_eq!(decision(&gp, &base, xml_bsn).await, "Deny");
        assert_eq!(decision(&gp, &base, BSN_DENY_ALL).await, "Deny");

        // The portal: a notice until seen, "migrated by" in the overview and the history.
        let mut b = login(&server, DevLogin::new(bundle_bsn)).await;
        let overview = b.get("/keuzes").await;
        assert_eq!(overview.status, 200);
        assert!(
            overview.body.contains("Overgenomen van:"),
            "{}",
            overview.body
        );
        assert!(
            overview
                .body
                .contains(&format!("Overgenomen van {GP_NAME}")),
            "{}",
            overview.body
        );
        let seen = b
            .submit_from(&overview.body, "/keuzes/overgenomen-gezien", &[])
            .await;
        assert_eq!(seen.status, 303, "{}", seen.body);
        let overview = b.get("/keuzes").await;
        assert!(
            !overview.body.contains("Overgenomen van:"),
            "{}",
            overview.body
        );
        assert!(
            overview
                .body
                .contains(&format!("Overgenomen van {GP_NAME}"))
        );
        let history = b.get("/geschiedenis").await;
        assert!(
            history
                .body
                .contains(&format!("{GP_NAME} ({GP}) (overgenomen)")),
            "{}",
            history.body
        );

        let logs = server.stop();
        for bsn in fresh.iter().map(String::as_str).chain([BSN_DENY_ALL]) {
            assert!(!logs.contains(bsn), "no BSN in the logs");
        }
        db.cleanup().await;
    }
}
