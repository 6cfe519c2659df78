//! Checks of the real `otv` binary: start-up, configuration, the operational endpoints, graceful
//! shutdown, demo data, and the audit and catalogue commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{OTV, Server, databases, otv, text};

#[tokio::test]
async fn serve_answers_health_readiness_and_metrics_and_stops_on_sigterm() {
    for db in databases().await {
        let server = Server::start(&db, &["--demo"]);
        let http = crate::support::http();

        let health = http
            .get(server.url("/healthz"))
            .header("x-request-id", "test-req-1")
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(
            health.headers()["x-request-id"],
            "test-req-1",
            "the request id is echoed"
        );
        assert_eq!(
            health.json::<serde_json::Value>().await.unwrap()["status"],
            "ok"
        );

        let ready = http.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200);
        assert!(
            ready.headers().contains_key("x-request-id"),
            "a request id is made when none is sent"
        );

        let metrics = http
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("otv_http_requests_total"), "{metrics}");
        assert!(metrics.contains(r#"route="/healthz""#), "{metrics}");

        let logs = server.stop();
        assert!(
            logs.contains("test-req-1"),
            "the request id is logged:\n{logs}"
        );
        for line in logs.lines() {
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "not a JSON log line: {line}"
            );
        }
        assert!(
            !logs.contains("900203638") && !logs.contains("900203651"),
            "a BSN reached the logs:\n{logs}"
        );
        db.cleanup().await;
    }
}

#[tokio::test]
async fn demo_data_audit_verify_and_purge() {
    for db in databases().await {
        let out = otv(&db, &["demo"]);
        assert!(out.status.success(), "{}", text(&out));
        // Loading twice changes nothing and stays valid.
        let out = otv(&db, &["demo"]);
        assert!(out.status.success(), "{}", text(&out));

        let out = otv(&db, &["audit", "checkpoint"]);
        assert!(out.status.success(), "{}", text(&out));
        let out = otv(&db, &["audit", "verify"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains("audit chain intact"), "{}", text(&out));

        // Nothing is older than a year: nothing goes, and the chain still verifies.
        let out = otv(&db, &["audit", "purge", "--older-than", "1y"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("purged 0 audit records"),
            "{}",
            text(&out)
        );
        assert!(otv(&db, &["audit", "verify"]).status.success());

        // Tamper with a record directly in the database: verify names it and fails.
        tamper(&db.url, 1).await;
        let out = otv(&db, &["audit", "verify"]);
        assert!(
            !out.status.success(),
            "verify must fail after tampering: {}",
            text(&out)
        );
        assert!(text(&out).contains("BROKEN at record 1"), "{}", text(&out));
        db.cleanup().await;
    }
}

async fn tamper(url: &str, seq: i64) {
    use sqlx::Connection;
    let sql = "UPDATE audit_log SET decision = 'permit' WHERE seq = $1";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(seq).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query(sql).bind(seq).execute(&mut c).await.unwrap();
    }
}

#[tokio::test]
async fn start_up_refuses_bad_configuration_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("x.sqlite").display());
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let out = Command::new(OTV)
            .args(args)
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    let (ok, msg) = run(&[("OTV_DATABASE_URL", &sqlite)], &["migrate"]);
    assert!(!ok && msg.contains("no keys configured"), "{msg}");
    let (ok, msg) = run(
        &[("DATABASE_URL", "postgres://127.0.0.1/none")],
        &["--demo", "serve"],
    );
    assert!(!ok && msg.contains("without real keys"), "{msg}");
    let (ok, msg) = run(
        &[
            ("OTV_DATABASE_URL", &sqlite),
            ("OTV_LISTEN", "not-an-address"),
        ],
        &["--demo", "serve"],
    );
    assert!(!ok && msg.contains("`listen`"), "{msg}");
    let (ok, msg) = run(
        &[
            ("OTV_DATABASE_URL", &sqlite),
            ("OTV_DEFAULT_POLICY", "maybe"),
        ],
        &["--demo", "migrate"],
    );
    assert!(
        !ok && msg.to_lowercase().contains("default_policy"),
        "{msg}"
    );

    // A broken replacement catalogue stops start-up, naming the entry.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../otv-core/catalogue/default.toml"),
    )
    .unwrap();
    let broken = dir.path().join("catalogue.toml");
    std::fs::write(
        &broken,
        shipped.replacen(
            "data_category = \"GGC013\"",
            "data_category = \"GGC014\"",
            1,
        ),
    )
    .unwrap();
    let (ok, msg) = run(
        &[
            ("OTV_DATABASE_URL", &sqlite),
            ("OTV_CATALOGUE", broken.to_str().unwrap()),
        ],
        &["--demo", "serve"],
    );
    assert!(
        !ok && msg.contains("holder_category[1] (DH-APO): data category `GGC014` is not listed"),
        "{msg}"
    );

    // A file sets a value, the environment overrides it.
    let file = dir.path().join("otv.toml");
    std::fs::write(&file, "listen = \"nowhere-from-file\"\n").unwrap();
    let (ok, msg) = run(
        &[("OTV_DATABASE_URL", &sqlite)],
        &["--demo", "--config", file.to_str().unwrap(), "serve"],
    );
    assert!(!ok && msg.contains("nowhere-from-file"), "{msg}");
    let (ok, msg) = run(
        &[
            ("OTV_DATABASE_URL", &sqlite),
            ("OTV_LISTEN", "127.0.0.1:0"),
            ("OTV_AUDIT_RETENTION_DAYS", "0"),
        ],
        &["--demo", "--config", file.to_str().unwrap(), "migrate"],
    );
    assert!(
        !ok && msg.contains("audit_retention_days") && !msg.contains("nowhere-from-file"),
        "{msg}"
    );
}

#[test]
fn catalogue_check_accepts_the_shipped_file_and_names_a_broken_entry() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../otv-core/catalogue/default.toml");
    let out = Command::new(OTV)
        .args(["catalogue", "check"])
        .arg(&shipped)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("49 options"), "{}", text(&out));

    let dir = tempfile::tempdir().unwrap();
    let broken: PathBuf = dir.path().join("broken.toml");
    let original = std::fs::read_to_string(&shipped).unwrap();
    std::fs::write(
        &broken,
        original.replacen("consulter = \"RPZAC001\"", "consulter = \"RPZAC999\"", 1),
    )
    .unwrap();
    let out = Command::new(OTV)
        .args(["catalogue", "check"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "option[0] (DH-HA GGC002 RPZAC999): consulting category `RPZAC999` is not defined"
        ),
        "{}",
        text(&out)
    );
}
