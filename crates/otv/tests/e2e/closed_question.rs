//! The closed question through the real binary, on the plain-HTTP development listener (the
//! connector named by header). The same handler serves the mutual-TLS listener.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Server, databases, otv, text};

fn fixture() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otv-wire/tests/fixtures/mitz/closed-question-request.xml");
    std::fs::read_to_string(path).unwrap()
}

/// The Mitz fixture, asked by holder GP 00000001 about consulter GP 00000002 for `bsn`.
fn question(bsn: &str) -> String {
    fixture()
        .replace("900186021", bsn)
        .replace("00000659", "00000001")
        .replace("00000666", "00000002")
}

struct Answer {
    status: u16,
    body: String,
}

async fn ask(server: &Server, connector: Option<&str>, content_type: &str, body: String) -> Answer {
    let mut req = crate::support::http()
        .post(server.url("/geslotenautorisatievraag/xacml3"))
        .header("content-type", content_type)
        .header("x-request-id", "cq-test")
        .body(body);
    if let Some(c) = connector {
        req = req.header("x-otv-dev-connector", c);
    }
    let res = req.send().await.unwrap();
    Answer {
        status: res.status().as_u16(),
        body: res.text().await.unwrap(),
    }
}

fn decisions(body: &str) -> Vec<&str> {
    body.split("<Decision>")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect()
}

#[tokio::test]
async fn closed_questions_are_decided_refused_and_audited() {
    for db in databases().await {
        let server =
            Server::start_with(&db, &["--demo"], &[("OTV_DEV_PLAIN_PROVIDER_HTTP", "true")]);
        const SOAP: &str = "application/soap+xml; charset=utf-8";

        let yes = ask(&server, Some("demo-lsp"), SOAP, question("900203638")).await;
        assert_eq!(yes.status, 200, "{}", yes.body);
        assert_eq!(decisions(&yes.body), ["Permit"], "{}", yes.body);
        assert!(
            yes.body
                .contains("urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697"),
            "RelatesTo echoes the MessageID"
        );

        let no = ask(&server, Some("demo-lsp"), "text/xml", question("900203651")).await;
        assert_eq!(
            (no.status, decisions(&no.body)),
            (200, vec!["Deny"]),
            "{}",
            no.body
        );

        let unknown = ask(&server, Some("demo-huisarts"), SOAP, question("111222333")).await;
        assert_eq!(
            decisions(&unknown.body),
            ["Deny"],
            "no profile means no: {}",
            unknown.body
        );

        let three = question("900203638").replacen(
            "<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:action\"",
            "<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:action\"><Attribute AttributeId=\"urn:ihe:iti:appc:2016:document-entry:event-code\" IncludeInResult=\"false\"><AttributeValue DataType=\"urn:hl7-org:v3#CV\"><CodedValue code=\"GGC099\" codeSystem=\"2.16.840.1.113883.2.4.3.111.5.10.1\" xmlns=\"urn:hl7-org:v3\"/></AttributeValue></Attribute></Attributes><Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:action\"",
            1,
        );
        let both = ask(&server, Some("demo-lsp"), SOAP, three).await;
        assert_eq!(
            decisions(&both.body),
            ["Deny", "Permit"],
            "one Result per category, in order: {}",
            both.body
        );

        let other = ask(&server, Some("demo-apotheek"), SOAP, question("900203638")).await;
        assert_eq!(other.status, 403, "{}", other.body);
        assert!(
            other.body.contains("Sender") && other.body.contains("may not act for URA 00000001"),
            "{}",
            other.body
        );

        let nobody = ask(&server, None, SOAP, question("900203638")).await;
        assert_eq!(nobody.status, 403, "{}", nobody.body);

        let malformed = ask(
            &server,
            Some("demo-lsp"),
            SOAP,
            question("900203638")
                .replace("<wsa:MessageID>", "<wsa:Message>")
                .replace("</wsa:MessageID>", "</wsa:Message>"),
        )
        .await;
        assert_eq!(malformed.status, 400, "{}", malformed.body);
        assert!(malformed.body.contains("MessageID"), "{}", malformed.body);

        let bad_bsn = ask(&server, Some("demo-lsp"), SOAP, question("900203639")).await;
        assert_eq!(bad_bsn.status, 400);
        assert!(
            bad_bsn.body.contains("11-test") && !bad_bsn.body.contains("900203639"),
            "{}",
            bad_bsn.body
        );

        let json = ask(
            &server,
            Some("demo-lsp"),
            "application/json",
            question("900203638"),
        )
        .await;
        assert_eq!(json.status, 415, "{}", json.body);

        // A 50 MB body is refused after the first MiB: the client either reads the 413 fault or,
        // when the server closes while the client is still sending, gets a broken connection.
        // Either way it is quick, and the server keeps answering.
        let started = Instant::now();
        let huge = crate::support::http()
            .post(server.url("/geslotenautorisatievraag/xacml3"))
            .header("content-type", SOAP)
            .header("x-otv-dev-connector", "demo-lsp")
            .body("<a>".repeat(50 * 1024 * 1024 / 3))
            .send()
            .await;
        match huge {
            Ok(res) => assert_eq!(res.status(), 413),
            Err(e) => assert!(e.is_request(), "unexpected failure: {e}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        let after = ask(&server, Some("demo-lsp"), SOAP, question("900203638")).await;
        assert_eq!(decisions(&after.body), ["Permit"], "{}", after.body);

        let out = otv(&db, &["audit", "verify"]);
        assert!(out.status.success(), "{}", text(&out));

        // An error inside otv is never a Permit: take the answers away from under the running
        // server and ask again for the citizen who said yes to everything.
        break_answers_table(&db.url).await;
        let broken = ask(&server, Some("demo-lsp"), SOAP, question("900203638")).await;
        assert_eq!(
            (broken.status, decisions(&broken.body)),
            (200, vec!["Indeterminate"]),
            "{}",
            broken.body
        );

        let logs = server.stop();
        assert!(
            !logs.contains("900203638") && !logs.contains("900203651"),
            "a BSN reached the logs"
        );
        db.cleanup().await;
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
