//! Citizen e-mail through the real binary and a real SMTP server: Python's `aiosmtpd`
//! (`tests/python/smtp_sink.py`), started by the test as a process that writes every message it
//! receives into a Maildir, which the test reads back with Python's own e-mail parser. Covered: the verification link (followed
//! through the portal), a change by a representative (mailed) and by the citizen themself (not
//! mailed), a consent check mailed at once, and the daily digest queued by `otv notify digest`.
//! No mail may hold a BSN or the citizen's name.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::portal_client::{DevLogin, count, json_decision, login, record_change, start};
use crate::support::{databases, otv, text};

/// The portal's public address in the mails (the test opens the links' paths on the server).
const PORTAL: &str = "https://toestemming.example.nl";

/// A running `aiosmtpd` writing into a Maildir.
struct Smtp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Smtp {
    fn start() -> Smtp {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/python/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path().join("Maildir"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "the SMTP server did not start: pip install -r tests/python/requirements.txt"
        );
        Smtp { child, port, dir }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// Every message received, parsed by Python's `email` package: from, to, subject,
    /// Content-Language, Auto-Submitted, content type, decoded text, and the raw message.
    fn messages(&self) -> Vec<Value> {
        const READ: &str = r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
out = []
md = mailbox.Maildir(sys.argv[1], factory=None, create=False)
for key in md.iterkeys():
    raw = md.get_bytes(key)
    m = BytesParser(policy=policy.default).parsebytes(raw)
    out.append({
        "from": str(m["From"]), "to": str(m["To"]), "subject": str(m["Subject"]),
        "content_language": str(m["Content-Language"]), "auto_submitted": str(m["Auto-Submitted"]),
        "content_type": m.get_content_type(), "charset": m.get_content_charset(),
        "text": m.get_content(), "raw": raw.decode("latin-1"),
    })
print(json.dumps(out))
"#;
        let out = Command::new(python())
            .args(["-c", READ])
            .arg(self.maildir())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until a message to `to` whose subject contains `subject` arrived; returns it.
    async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| {
                m["to"].as_str().unwrap().contains(to)
                    && m["subject"].as_str().unwrap().contains(subject)
            }) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no mail to {to} about {subject:?}; received: {:#?}",
                self.messages()
                    .iter()
                    .map(|m| (m["to"].clone(), m["subject"].clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn count(&self, to: &str, subject: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| {
                m["to"].as_str().unwrap().contains(to)
                    && m["subject"].as_str().unwrap().contains(subject)
            })
            .count()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Test BSNs of this file (valid by the 11-test, none in the demo data).
fn citizen(i: u32) -> String {
    let mut n = 9_300_000 + i * 13;
    loop {
        let prefix = format!("{n:08}");
        let sum: u32 = prefix
            .bytes()
            .zip((2..=9).rev())
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        if sum % 11 < 10 {
            return format!("{prefix}{}", sum % 11);
        }
        n += 1;
    }
}

/// Sets `address` and the notification choices, then follows the verification link from the
/// mail through the portal; returns the verification mail.
async fn verify_address(
    smtp: &Smtp,
    b: &mut crate::portal_client::Browser,
    address: &str,
    checks: &str,
) -> Value {
    let saved = b
        .submit(
            "/meldingen",
            "/meldingen",
            &[("changes", "on"), ("checks", checks)],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let sent = b
        .submit("/meldingen", "/meldingen/e-mail", &[("email", address)])
        .await;
    assert_eq!(
        sent.location.as_deref(),
        Some("/meldingen?melding=verstuurd"),
        "{}",
        sent.body
    );
    let mail = smtp.wait_for(address, "Bevestig uw e-mailadres").await;
    let body = mail["text"].as_str().unwrap();
    let prefix = format!("{PORTAL}/e-mail/bevestigen?token=");
    let link = body
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no link in {body}"));
    let path = &link[PORTAL.len()..];
    let done = b.submit(path, "/e-mail/bevestigen", &[]).await;
    assert_eq!(
        done.location.as_deref(),
        Some("/meldingen?melding=bevestigd"),
        "{}",
        done.body
    );
    mail
}

#[tokio::test(flavor = "multi_thread")]
async fn citizens_get_mail_about_their_address_changes_by_others_and_checks() {
    for db in databases().await {
        let smtp = Smtp::start();
        let url = smtp.url();
        let server = start(
            &db,
            &[
                ("OTV_MAIL_SMTP_URL", url.as_str()),
                ("OTV_MAIL_FROM", "otv <noreply@toestemming.example.nl>"),
                ("OTV_MAIL_PORTAL_URL", PORTAL),
                ("OTV_MAIL_CHECK_SCAN_SECS", "1"),
                // The server's own digest runs at its first round (hour 0 has passed), so today's
                // digest is already done: only `otv notify digest` below sends one.
                ("OTV_MAIL_DIGEST_HOUR", "0"),
                ("OTV_LOG_FORMAT", "json"),
            ],
        );
        let (anna, rob, carol) = (citizen(1), citizen(2), citizen(3));

        // The address is verified by the link in the mail, followed through the portal.
        let mut a = login(&server, DevLogin::new(&anna).name("Anna Jansen")).await;
        let verification = verify_address(&smtp, &mut a, "anna@example.nl", "immediately").await;
        assert_eq!(verification["from"], "otv <noreply@toestemming.example.nl>");
        assert_eq!(verification["content_type"], "text/plain");
        assert_eq!(verification["charset"], "utf-8");
        assert_eq!(verification["content_language"], "nl, en");
        assert_eq!(verification["auto_submitted"], "auto-generated");
        assert!(
            verification["subject"]
                .as_str()
                .unwrap()
                .contains("Confirm your e-mail address")
        );
        let (_, settings) = a.open("/meldingen").await;
        assert!(
            settings.body.contains("Dit adres is bevestigd"),
            "{}",
            settings.body
        );

        // A representative changes Anna's choices: Anna hears of it.
        let mut r = login(
            &server,
            DevLogin::new(&rob)
                .name("Rob Vertegenwoordiger")
                .acting_for(&anna),
        )
        .await;
        record_change(&mut r, "all", &[], "no").await;
        let changed = smtp
            .wait_for(
                "anna@example.nl",
                "Uw vertegenwoordiger heeft uw keuzes veranderd",
            )
            .await;
        let body = changed["text"].as_str().unwrap();
        assert!(body.contains(&format!("{PORTAL}/geschiedenis")), "{body}");
        assert!(body.contains("(your representative)"), "{body}");

        // Anna's own change is not mailed: once every change's mail row is done, there is still
        // one mail about a change.
        record_change(&mut a, "none", &[], "no").await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&db, "SELECT count(*) FROM outbox WHERE kind = 'mail-profile-changed'").await < 2
            || count(&db, "SELECT count(*) FROM outbox WHERE kind = 'mail-profile-changed' AND state = 'pending'").await > 0
        {
            assert!(Instant::now() < deadline, "the change mails were not handled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(smtp.count("anna@example.nl", "keuzes veranderd"), 1);

        // A consent check: Anna chose "immediately".
        assert_eq!(json_decision(&server, &anna).await, "Deny");
        let check = smtp
            .wait_for("anna@example.nl", "Controle van uw toestemming")
            .await;
        assert!(
            check["text"].as_str().unwrap().contains("gecontroleerd"),
            "{}",
            check["text"]
        );

        // Carol chose a daily digest: her check waits for it; `otv notify digest` sends it now.
        let mut c = login(&server, DevLogin::new(&carol).name("Carol de Vries")).await;
        verify_address(&smtp, &mut c, "carol@example.nl", "daily").await;
        assert_eq!(json_decision(&server, &carol).await, "Deny");
        let out = otv(&db, &["notify", "digest"]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("daily digests queued"),
            "{}",
            text(&out)
        );
        let digest = smtp
            .wait_for("carol@example.nl", "Overzicht van controles")
            .await;
        assert!(
            digest["text"]
                .as_str()
                .unwrap()
                .contains("1 keer gecontroleerd"),
            "{}",
            digest["text"]
        );
        assert_eq!(
            smtp.count("carol@example.nl", "Controle van uw toestemming"),
            0
        );

        // No mail holds a BSN or a name, raw or decoded; every mail sent is audited.
        let all = smtp.messages();
        for m in &all {
            for secret in [&anna, &rob, &carol] {
                assert!(!m["raw"].as_str().unwrap().contains(secret.as_str()));
                assert!(!m["text"].as_str().unwrap().contains(secret.as_str()));
            }
            for name in ["Anna", "Jansen", "Rob", "Carol"] {
                assert!(!m["text"].as_str().unwrap().contains(name), "{name}");
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while count(
            &db,
            "SELECT count(*) FROM audit_log WHERE event = 'notification-email'",
        )
        .await
            < all.len() as i64
        {
            assert!(Instant::now() < deadline, "a mail sent was not audited");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM audit_log WHERE event = 'notification-email'"
            )
            .await,
            all.len() as i64
        );

        let logs = server.stop();
        for secret in [&anna, &rob, &carol] {
            assert!(!logs.contains(secret.as_str()), "a BSN in the logs");
        }
        db.cleanup().await;
    }
}

/// Runs a statement on the test database (moves a queued row's time, as time passing would).
async fn exec(db: &crate::support::Db, sqlite: &str, postgres: &str) {
    use sqlx::Connection;
    if db.url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sqlite.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(postgres.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_emergency_consent_is_mailed_at_once_with_its_end_and_again_before_it_ends() {
    use crate::support::{OTV, Server, sandbox_client};
    for db in databases().await {
        let smtp = Smtp::start();
        let url = smtp.url();
        let sandbox = tempfile::tempdir().unwrap();
        let dir = sandbox.path().join("sandbox");
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
                ("OTV_MAIL_SMTP_URL", url.as_str()),
                ("OTV_MAIL_FROM", "otv <noreply@toestemming.example.nl>"),
                ("OTV_MAIL_PORTAL_URL", PORTAL),
            ],
        );
        let patient = citizen(4);
        let mut p = login(&server, DevLogin::new(&patient)).await;
        verify_address(&smtp, &mut p, "patient@example.nl", "off").await;

        // The GP practice records an emergency consent through the API (real mutual TLS).
        let token = Command::new(OTV)
            .args(["sandbox", "token", "--dir"])
            .arg(&dir)
            .args([
                "--bsn", &patient, "--ura", "00000001", "--factor", "uzi-pas",
            ])
            .output()
            .unwrap();
        assert!(token.status.success(), "{}", text(&token));
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        let addr = server.provider_addr().expect("the provider listener runs");
        let res = sandbox_client(&dir, Some("demo-huisarts"))
            .post(format!("https://{addr}/v1/emergency-consent"))
            .json(&serde_json::json!({
                "bsn": patient,
                "consulter_ura": "00000001",
                "professional": {"uzi": "900010001", "role": "01.015"},
                "enrolment_token": token,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);

        // At once: what happened, until when, where to confirm or stop it.
        let mail = smtp
            .wait_for(
                "patient@example.nl",
                "Een zorgverlener heeft een noodtoestemming vastgelegd",
            )
            .await;
        let body = mail["text"].as_str().unwrap();
        assert!(body.contains("De noodtoestemming stopt op "), "{body}");
        assert!(
            body.contains(&format!("{PORTAL}/noodtoestemmingen")),
            "{body}"
        );
        assert!(!body.contains("00000001"), "no provider: {body}");

        // The reminder waits until 12 hours before the end; once due (its time moved as time
        // passing would) it goes out, while the consent is still in force.
        assert_eq!(
            count(&db, "SELECT count(*) FROM outbox WHERE kind = 'mail-emergency-expiry' AND state = 'pending'").await,
            1
        );
        assert_eq!(smtp.count("patient@example.nl", "stopt bijna"), 0);
        exec(
            &db,
            "UPDATE outbox SET available_at = 0 WHERE kind = 'mail-emergency-expiry'",
            "UPDATE outbox SET available_at = now() - interval '1 minute' WHERE kind = 'mail-emergency-expiry'",
        )
        .await;
        let reminder = smtp
            .wait_for("patient@example.nl", "Uw noodtoestemming stopt bijna")
            .await;
        assert!(
            reminder["text"].as_str().unwrap().contains("Doet u niets?"),
            "{}",
            reminder["text"]
        );

        // A second emergency consent, which the citizen withdraws: its reminder, once due, is
        // not sent (and the citizen's own withdrawal is not mailed either).
        let token = Command::new(OTV)
            .args(["sandbox", "token", "--dir"])
            .arg(&dir)
            .args([
                "--bsn", &patient, "--ura", "00000001", "--factor", "uzi-pas",
            ])
            .output()
            .unwrap();
        let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
        let res = sandbox_client(&dir, Some("demo-huisarts"))
            .post(format!("https://{addr}/v1/emergency-consent"))
            .json(&serde_json::json!({
                "bsn": patient,
                "consulter_ura": "00000001",
                "professional": {"uzi": "900010001", "role": "01.015"},
                "enrolment_token": token,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let deadline = Instant::now() + Duration::from_secs(60);
        while smtp.count("patient@example.nl", "noodtoestemming vastgelegd") < 2 {
            assert!(
                Instant::now() < deadline,
                "no mail about the second emergency consent"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let withdrawn = p
            .submit("/noodtoestemmingen", "/noodtoestemmingen/intrekken", &[])
            .await;
        assert_eq!(withdrawn.status, 303, "{}", withdrawn.body);
        exec(
            &db,
            "UPDATE outbox SET available_at = 0 WHERE kind = 'mail-emergency-expiry'",
            "UPDATE outbox SET available_at = now() - interval '1 minute' WHERE kind = 'mail-emergency-expiry'",
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(
            &db,
            "SELECT count(*) FROM outbox WHERE kind LIKE 'mail-%' AND state = 'pending'",
        )
        .await
            > 0
        {
            assert!(Instant::now() < deadline, "mail rows were not handled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(
            count(
                &db,
                "SELECT count(*) FROM outbox WHERE kind = 'mail-emergency-expiry'"
            )
            .await,
            2
        );
        assert_eq!(smtp.count("patient@example.nl", "stopt bijna"), 1);
        assert_eq!(
            smtp.count("patient@example.nl", "noodtoestemming vastgelegd"),
            2
        );
        assert_eq!(
            smtp.messages().len(),
            4,
            "verification, 2 emergencies, 1 reminder"
        );

        for m in smtp.messages() {
            assert!(!m["raw"].as_str().unwrap().contains(patient.as_str()));
        }
        let logs = server.stop();
        assert!(!logs.contains(patient.as_str()), "a BSN in the logs");
        db.cleanup().await;
    }
}

/// The Python with the test tools (`OTV_TEST_PYTHON`, set by `scripts/test` to its virtual
/// environment), else `python3`.
fn python() -> String {
    std::env::var("OTV_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}
