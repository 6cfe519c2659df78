//! The provider listener over real mutual TLS, with the PKI and configuration that
//! `otv sandbox` writes: allow-listed client certificates get answers, a connector gets a fault
//! for a URA it may not act for, and certificates from elsewhere never get past the handshake.

use std::process::Command;

use crate::support::{OTV, Server, databases, sandbox_client as client, text};

fn question(bsn: &str) -> String {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../otv-wire/tests/fixtures/mitz/closed-question-request.xml");
    std::fs::read_to_string(fixture)
        .unwrap()
        .replace("900186021", bsn)
        .replace("00000659", "00000001")
        .replace("00000666", "00000002")
}

#[tokio::test]
async fn sandbox_connectors_ask_closed_questions_over_mutual_tls() {
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
        let addr = server.provider_addr().expect("the provider listener runs");
        let url = format!("https://{addr}/geslotenautorisatievraag/xacml3");
        let ask = async |who: Option<&str>, bsn: &str| {
            client(&dir, who)
                .post(&url)
                .header("content-type", "application/soap+xml")
                .body(question(bsn))
                .send()
                .await
        };

        let res = ask(Some("demo-huisarts"), "900203638").await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("<Decision>Permit</Decision>")
        );

        // An exchange system without a URA in its certificate acts for its allow-list.
        let res = ask(Some("demo-lsp"), "900203651").await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("<Decision>Deny</Decision>")
        );

        let res = ask(Some("demo-apotheek"), "900203638").await.unwrap();
        assert_eq!(res.status(), 403);
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("may not act for URA 00000001")
        );

        assert!(
            ask(Some("rogue-client"), "900203638").await.is_err(),
            "another CA's certificate is refused"
        );
        assert!(
            ask(None, "900203638").await.is_err(),
            "no client certificate, no connection"
        );

        // The provider interfaces are not on the plain-HTTP listener without the development flag.
        let plain = crate::support::http()
            .post(server.url("/geslotenautorisatievraag/xacml3"))
            .header("content-type", "application/soap+xml")
            .header("x-otv-dev-connector", "demo-lsp")
            .body(question("900203638"))
            .send()
            .await
            .unwrap();
        assert_eq!(plain.status(), 404);

        server.stop();
        db.cleanup().await;
    }
}
