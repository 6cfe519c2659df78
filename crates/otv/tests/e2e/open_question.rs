//! The open question through the real binary (development listener, connector by header): only
//! subscribed holders whose closed question would answer Permit are returned.

use crate::support::open_question_request as question;
use crate::support::{Server, databases};

async fn ask(server: &Server, connector: &str, body: String) -> (u16, String) {
    let res = crate::support::http()
        .post(server.url("/openautorisatievraag"))
        .header("content-type", "application/soap+xml")
        .header("x-otv-dev-connector", connector)
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The holder URAs in the response, in order.
fn holders(body: &str) -> Vec<String> {
    body.split("author-institution")
        .skip(1)
        .filter_map(|s| s.split("extension=\"").nth(1))
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn open_questions_reveal_only_permitted_locations() {
    for db in databases().await {
        let server =
            Server::start_with(&db, &["--demo"], &[("OTV_DEV_PLAIN_PROVIDER_HTTP", "true")]);

        let (status, body) = ask(&server, "demo-lsp", question("900203638")).await;
        assert_eq!(status, 200, "{body}");
        let mut all = holders(&body);
        all.sort();
        assert_eq!(
            all,
            ["00000001", "00000010", "00000020", "00000030"],
            "{body}"
        );
        assert!(
            body.contains("urn:ihe:iti:2009:PatientLocationQueryResponse"),
            "{body}"
        );

        // Registered at four holders, consent for two: the hospital and the lab must not appear.
        let (_, body) = ask(&server, "demo-lsp", question("900203663")).await;
        let mut some = holders(&body);
        some.sort();
        assert_eq!(some, ["00000001", "00000010"], "{body}");
        assert!(
            !body.contains("00000020") && !body.contains("00000030"),
            "{body}"
        );

        let (status, body) = ask(&server, "demo-lsp", question("900203651")).await;
        assert_eq!((status, holders(&body).len()), (200, 0), "{body}");

        // demo-huisarts acts for 00000001, not for the consulter 00000002.
        let (status, body) = ask(&server, "demo-huisarts", question("900203638")).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("may not act for URA 00000002"), "{body}");

        let expired = question("900203638").replace(
            "NotOnOrAfter=\"",
            "NotOnOrAfter=\"2020-01-01T00:00:00Z\" Old=\"",
        );
        let (status, body) = ask(&server, "demo-lsp", expired).await;
        assert_eq!(status, 400, "{body}");

        server.stop();
        db.cleanup().await;
    }
}
