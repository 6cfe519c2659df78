//! The mailer against a real SMTP server (Python's `aiosmtpd`, `tests/python/smtp_sink.py`,
//! started as a process): every kind of mail arrives as one UTF-8 plain-text part, Dutch then
//! English, with `Content-Language: nl, en`; a permanent refusal (5xx) and a temporary one
//! (4xx) are told apart, and an unreachable server is temporary.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use chrono::{DateTime, Utc};
use otv_server::notify::mail::compose::{self, ChangedBy};
use otv_server::notify::mail::{MailError, MailSettings, Mailer};
use otv_store::{CheckNote, DigestMail};
use serde_json::Value;

const PORTAL: &str = "https://toestemming.example.nl";

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Sink {
    fn start() -> Sink {
        Sink::start_with(&[])
    }

    /// With `tls` (certificate and key PEM files) the sink requires STARTTLS.
    fn start_with(tls: &[&std::path::Path]) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/python/smtp_sink.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(dir.path().join("Maildir"))
            .args(tls)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut ready = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "pip install -r tests/python/requirements.txt"
        );
        Sink { child, port, dir }
    }

    fn messages(&self) -> Vec<Value> {
        const READ: &str = r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
out = []
for key in mailbox.Maildir(sys.argv[1], factory=None, create=False).iterkeys():
    raw = mailbox.Maildir(sys.argv[1], factory=None, create=False).get_bytes(key)
    m = BytesParser(policy=policy.default).parsebytes(raw)
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
        "content_language": str(m["Content-Language"]), "auto_submitted": str(m["Auto-Submitted"]),
        "multipart": m.is_multipart(), "content_type": m.get_content_type(),
        "charset": m.get_content_charset(), "text": m.get_content(),
        "message_id": str(m["Message-ID"]), "date": str(m["Date"])})
print(json.dumps(out))
"#;
        let out = Command::new(python())
            .args(["-c", READ])
            .arg(self.dir.path().join("Maildir"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn mailer(port: u16) -> Mailer {
    mailer_for(&format!("smtp://127.0.0.1:{port}"), None)
}

fn mailer_for(url: &str, ca: Option<Vec<u8>>) -> Mailer {
    let settings = MailSettings::new(
        url,
        "otv <noreply@toestemming.example.nl>",
        PORTAL,
        8,
        60,
        12,
        ca,
    )
    .unwrap();
    Mailer::new(settings).unwrap()
}

#[tokio::test]
async fn starttls_is_required_and_the_servers_certificate_checked() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let sink = Sink::start_with(&[&cert_file, &key_file]);
    let url = format!("smtp://localhost:{}?tls=required", sink.port);
    let mail = compose::changed(PORTAL, ChangedBy::Provider, at("2026-11-30T13:05:00Z"));

    // A certificate of a CA the mailer does not trust: refused, temporarily (TLS).
    let untrusting = mailer_for(&url, None);
    match untrusting.send("burger@example.nl", &mail).await {
        Err(MailError::Transient(e)) => assert!(e.contains("certificate"), "{e}"),
        other => panic!("an untrusted certificate must fail TLS: {other:?}"),
    }
    assert!(sink.messages().is_empty());
    // With the CA configured (`mail.smtp_ca_file`) the mail goes through STARTTLS.
    let trusting = mailer_for(&url, Some(ca.pem().into_bytes()));
    trusting.send("burger@example.nl", &mail).await.unwrap();
    assert_eq!(sink.messages().len(), 1);
    // The sink requires STARTTLS: a mailer without TLS is refused.
    let plain = mailer_for(&format!("smtp://127.0.0.1:{}", sink.port), None);
    assert!(plain.send("burger@example.nl", &mail).await.is_err());
    assert_eq!(sink.messages().len(), 1);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[tokio::test]
async fn every_kind_of_mail_arrives_dutch_first_in_one_plain_text_part() {
    let sink = Sink::start();
    let m = mailer(sink.port);
    let t = at("2026-11-30T13:05:00Z");
    let until = at("2026-12-03T13:05:00Z");
    let note = CheckNote {
        seq: 7,
        at: t,
        emergency: true,
    };
    let mails = [
        compose::verification(PORTAL, &format!("{PORTAL}/e-mail/bevestigen?token=abc"), t),
        compose::changed(PORTAL, ChangedBy::Provider, t),
        compose::changed(PORTAL, ChangedBy::Migration, t),
        compose::changed(PORTAL, ChangedBy::Representative, t),
        compose::changed(PORTAL, ChangedBy::Guardian, t),
        compose::changed(PORTAL, ChangedBy::Emergency { until }, t),
        compose::emergency_ends(PORTAL, t, until),
        compose::checks(PORTAL, &[note]),
        compose::digest(
            PORTAL,
            &DigestMail {
                from: t,
                until,
                checks: 3,
                emergency: 1,
            },
        ),
    ];
    for (i, mail) in mails.iter().enumerate() {
        m.send(&format!("burger{i}@example.nl"), mail)
            .await
            .unwrap();
    }
    let got = sink.messages();
    assert_eq!(got.len(), mails.len());
    for (i, mail) in mails.iter().enumerate() {
        let to = format!("burger{i}@example.nl");
        let g = got
            .iter()
            .find(|g| g["to"] == to.as_str())
            .unwrap_or_else(|| panic!("no mail to {to}"));
        assert_eq!(g["subject"], mail.subject.as_str());
        assert_eq!(g["from"], "otv <noreply@toestemming.example.nl>");
        assert_eq!(g["multipart"], false);
        assert_eq!(g["content_type"], "text/plain");
        assert_eq!(g["charset"], "utf-8");
        assert_eq!(g["content_language"], "nl, en");
        assert_eq!(g["auto_submitted"], "auto-generated");
        assert_ne!(g["message_id"], "None");
        assert_ne!(g["date"], "None");
        // The text arrives as written (line ends as the mail program reads them).
        assert_eq!(
            g["text"].as_str().unwrap().replace("\r\n", "\n").trim_end(),
            mail.text.trim_end()
        );
        let text = g["text"].as_str().unwrap();
        let nl = text.find("Hallo,").unwrap();
        let en = text.find("Hello,").unwrap();
        assert!(nl < en, "Dutch comes first");
    }
}

#[tokio::test]
async fn a_permanent_refusal_is_told_apart_from_a_temporary_one() {
    let sink = Sink::start();
    let m = mailer(sink.port);
    let mail = compose::changed(PORTAL, ChangedBy::Provider, at("2026-11-30T13:05:00Z"));
    match m.send("refused@example.nl", &mail).await {
        Err(MailError::Permanent(e)) => {
            assert!(e.contains("550"), "{e}");
            assert!(
                !e.contains("refused@example.nl"),
                "no address in errors: {e}"
            );
        }
        other => panic!("550 must be permanent: {other:?}"),
    }
    match m.send("later@example.nl", &mail).await {
        Err(MailError::Transient(e)) => assert!(e.contains("451"), "{e}"),
        other => panic!("451 must be temporary: {other:?}"),
    }
    assert!(sink.messages().is_empty());
    // Nobody listening: temporary (the server may come back).
    let gone = mailer(free_port());
    assert!(matches!(
        gone.send("burger@example.nl", &mail).await,
        Err(MailError::Transient(_))
    ));
    // A stored address that is no address is permanent.
    assert!(matches!(
        m.send("not an address", &mail).await,
        Err(MailError::Permanent(_))
    ));
}

/// The Python with the test tools (`OTV_TEST_PYTHON`, set by `scripts/test` to its virtual
/// environment), else `python3`.
fn python() -> String {
    std::env::var("OTV_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}
