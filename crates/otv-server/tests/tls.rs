//! The mutual-TLS provider listener over real TLS: a test PKI is issued per test
//! (`otv_server::tls::testpki`), `serve_mtls` runs on 127.0.0.1:0 with a router whose handler
//! echoes the `ClientIdentity`, and real clients (reqwest, and raw tokio-rustls where the exact
//! TLS failure matters) connect to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Json, Router};
use otv_server::identity::ClientIdentity;
use otv_server::tls::testpki::{ClientSpec, Issued, OtherName, StringEncoding, TestCa};
use otv_server::tls::{self, IdentityError, TlsSettings};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const HUISARTS_UZI: &str = "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000-01000001";

/// A test PKI on disk: the CA, otv's server certificate, and a CA nobody trusts.
struct Pki {
    ca: TestCa,
    rogue: TestCa,
    settings: TlsSettings,
    _dir: tempfile::TempDir,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("otv test CA").unwrap();
    let rogue = TestCa::new("rogue CA").unwrap();
    let server = ca.server_certificate(&["localhost", "127.0.0.1"]).unwrap();
    let settings = TlsSettings {
        server_cert_pem: dir.path().join("server.pem"),
        server_key_pem: dir.path().join("server-key.pem"),
        client_ca_pem: dir.path().join("ca.pem"),
    };
    std::fs::write(&settings.server_cert_pem, &server.cert_pem).unwrap();
    std::fs::write(&settings.server_key_pem, &server.key_pem).unwrap();
    std::fs::write(&settings.client_ca_pem, &ca.certificate().cert_pem).unwrap();
    Pki {
        ca,
        rogue,
        settings,
        _dir: dir,
    }
}

fn huisarts(ca: &TestCa) -> Issued {
    ca.client_certificate(&ClientSpec::uzi(
        "Huisartsinformatiesysteem De Linde",
        "Huisartsenpraktijk De Linde",
        "900010001",
        "00000001",
        "01000001",
    ))
    .unwrap()
}

/// A running `serve_mtls`.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(settings: &TlsSettings) -> Server {
        let config = tls::server_config(settings).unwrap();
        let router = Router::new()
            .route("/whoami", get(whoami))
            .route("/slow", get(slow));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tls::serve_mtls(listener, config, router, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Requests shutdown and waits (at most 5 s) for `serve_mtls` to return.
    async fn shut_down(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve_mtls returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

async fn whoami(
    Extension(id): Extension<ClientIdentity>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Json<Value> {
    Json(json!({
        "certificate_sha256": id.certificate_sha256,
        "ura": id.ura.map(|u| u.to_string()),
        "subject": id.subject,
        "peer_is_loopback": peer.ip().is_loopback(),
    }))
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(400)).await;
    "done"
}

/// A reqwest client that trusts the test CA and presents `identity`, if any.
fn client(ca: &TestCa, identity: Option<&Issued>, http1_only: bool) -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.certificate().cert_pem.as_bytes()).unwrap(),
        )
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .timeout(Duration::from_secs(5));
    if let Some(issued) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(issued.identity_pem().as_bytes()).unwrap());
    }
    if http1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

/// Raw TLS: the exact outcome of a handshake and one HTTP/1.1 request, as text.
async fn raw_request(
    addr: SocketAddr,
    ca: &TestCa,
    identity: Option<&Issued>,
    version: &'static rustls::SupportedProtocolVersion,
) -> Result<String, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.certificate().der.clone()))
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(issued.der.clone())],
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tls.write_all(b"GET /whoami HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[tokio::test]
async fn a_uzi_certificate_from_the_trusted_ca_reaches_the_handler_with_its_identity() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let issued = huisarts(&pki.ca);

    for (http1_only, version) in [
        (false, reqwest::Version::HTTP_2),
        (true, reqwest::Version::HTTP_11),
    ] {
        let response = client(&pki.ca, Some(&issued), http1_only)
            .get(server.url("/whoami"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.version(), version, "ALPN");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["ura"], "00000001");
        assert_eq!(body["certificate_sha256"], issued.sha256());
        assert_eq!(body["peer_is_loopback"], true);
        let subject = body["subject"].as_str().unwrap();
        assert!(
            subject.contains("CN=Huisartsinformatiesysteem De Linde")
                && subject.contains("O=Huisartsenpraktijk De Linde"),
            "{subject}"
        );
    }
    server.shut_down().await;
}

#[tokio::test]
async fn tls_1_2_and_1_3_both_require_the_client_certificate() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let issued = huisarts(&pki.ca);
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let ok = raw_request(server.addr, &pki.ca, Some(&issued), version)
            .await
            .unwrap();
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("\"ura\":\"00000001\""), "{ok}");

        let refused = raw_request(server.addr, &pki.ca, None, version)
            .await
            .unwrap_err();
        assert!(refused.contains("CertificateRequired"), "{refused}");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn without_a_client_certificate_the_connection_fails() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let err = client(&pki.ca, None, false)
        .get(server.url("/whoami"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    let refused = raw_request(server.addr, &pki.ca, None, &rustls::version::TLS13)
        .await
        .unwrap_err();
    assert!(
        refused.contains("alert"),
        "fails at the TLS layer: {refused}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn a_certificate_from_another_ca_fails() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let rogue = huisarts(&pki.rogue);
    let err = client(&pki.ca, Some(&rogue), false)
        .get(server.url("/whoami"))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let refused = raw_request(server.addr, &pki.ca, Some(&rogue), version)
            .await
            .unwrap_err();
        assert!(refused.contains("UnknownCA"), "{refused}");
    }
    server.shut_down().await;
}

#[tokio::test]
async fn a_verified_certificate_with_a_malformed_uzi_name_is_answered_403() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let malformed = pki
        .ca
        .client_certificate(&spec(vec![uzi(
            "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000",
            StringEncoding::Ia5,
        )]))
        .unwrap();
    let response = client(&pki.ca, Some(&malformed), false)
        .get(server.url("/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("expected 7 fields"),
        "{body}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_closes_idle_connections_abandons_handshakes_and_finishes_requests_in_flight() {
    let pki = pki();
    let server = Server::start(&pki.settings).await;
    let issued = huisarts(&pki.ca);
    let url = server.url("/slow");
    let addr = server.addr;

    // An HTTP/1.1 and an HTTP/2 client each hold an idle kept-alive connection...
    let idle_h1 = client(&pki.ca, Some(&issued), true);
    let idle_h2 = client(&pki.ca, Some(&issued), false);
    for c in [&idle_h1, &idle_h2] {
        assert_eq!(
            c.get(server.url("/whoami")).send().await.unwrap().status(),
            200
        );
    }
    // ...a client has connected but not started its handshake...
    let _stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    // ...and a slow request is in flight when shutdown is requested.
    let busy = client(&pki.ca, Some(&issued), false);
    let in_flight = tokio::spawn(async move { busy.get(url).send().await?.text().await });
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.shut_down().await;
    assert_eq!(in_flight.await.unwrap().unwrap(), "done");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[test]
fn server_config_errors_name_the_file() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-pem.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, huisarts(&pki.ca).key_pem).unwrap();
    let missing = dir.path().join("missing.pem");

    let cases = [
        (
            TlsSettings {
                server_cert_pem: missing.clone(),
                ..pki.settings.clone()
            },
            &missing,
            "cannot read",
        ),
        (
            TlsSettings {
                client_ca_pem: not_pem.clone(),
                ..pki.settings.clone()
            },
            &not_pem,
            "no CERTIFICATE",
        ),
        (
            TlsSettings {
                server_key_pem: not_pem.clone(),
                ..pki.settings.clone()
            },
            &not_pem,
            "no usable private key",
        ),
        (
            TlsSettings {
                server_key_pem: other_key.clone(),
                ..pki.settings.clone()
            },
            &other_key,
            "KeyMismatch",
        ),
    ];
    for (settings, file, expect) in cases {
        let err = format!("{:#}", tls::server_config(&settings).unwrap_err());
        assert!(
            err.contains(&file.display().to_string()) && err.contains(expect),
            "{err}"
        );
    }
    tls::server_config(&pki.settings).unwrap();
}

// ---- identity_from_certificate: what each certificate yields ----

fn spec(other_names: Vec<OtherName>) -> ClientSpec {
    ClientSpec {
        common_name: "connector".into(),
        organisation: Some("Zorg BV".into()),
        serial_number: Some("900010001".into()),
        other_names,
    }
}

fn uzi(value: &str, encoding: StringEncoding) -> OtherName {
    OtherName::Uzi {
        value: value.into(),
        encoding,
    }
}

fn permanent(value: Option<&str>, assigner: Option<&str>) -> OtherName {
    OtherName::PermanentIdentifier {
        value: value.map(Into::into),
        assigner: assigner.map(Into::into),
    }
}

/// The identity a certificate with these otherNames yields: the URA, or the error's text.
fn check(other_names: Vec<OtherName>, expect: Result<Option<&str>, &str>) {
    let ca = TestCa::new("otv test CA").unwrap();
    let issued = ca.client_certificate(&spec(other_names.clone())).unwrap();
    let got = tls::identity_from_certificate(&issued.der);
    match (got, expect) {
        (Ok(id), Ok(ura)) => {
            assert_eq!(id.ura.as_ref().map(|u| u.as_str()), ura, "{other_names:?}");
            assert_eq!(id.certificate_sha256, issued.sha256());
            assert_eq!(id.certificate_sha256.len(), 64);
            assert!(id.subject.contains("CN=connector"), "{}", id.subject);
        }
        (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{other_names:?}: {e}"),
        (got, expect) => panic!("{other_names:?}: got {got:?}, expected {expect:?}"),
    }
}

const URA_OID: &str = "2.16.528.1.1007.3.3";

#[test]
fn the_ura_comes_from_the_uzi_other_name_in_either_string_type() {
    check(
        vec![uzi(HUISARTS_UZI, StringEncoding::Ia5)],
        Ok(Some("00000001")),
    );
    check(
        vec![uzi(HUISARTS_UZI, StringEncoding::Utf8)],
        Ok(Some("00000001")),
    );
}

#[test]
fn the_ura_comes_from_a_permanent_identifier_assigned_by_the_ura_register() {
    check(
        vec![permanent(Some("00000010"), Some(URA_OID))],
        Ok(Some("00000010")),
    );
    check(
        vec![
            uzi(HUISARTS_UZI, StringEncoding::Ia5),
            permanent(Some("00000001"), Some(URA_OID)),
        ],
        Ok(Some("00000001")),
    );
}

#[test]
fn other_permanent_identifiers_carry_no_ura() {
    check(vec![permanent(Some("00000010"), Some("1.2.3.4"))], Ok(None));
    check(vec![permanent(Some("00000010"), None)], Ok(None));
}

#[test]
fn a_certificate_without_subject_alt_name_has_no_ura() {
    check(vec![], Ok(None));
}

#[test]
fn malformed_uzi_names_are_refused_with_the_reason() {
    check(
        vec![uzi(
            "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000",
            StringEncoding::Ia5,
        )],
        Err("expected 7 fields separated by '-'"),
    );
    check(
        vec![uzi(
            "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-0001-00.000-01000001",
            StringEncoding::Utf8,
        )],
        Err("the fifth field (URA) `0001`: a URA is 8 digits"),
    );
    check(
        vec![permanent(Some("1"), Some(URA_OID))],
        Err("permanentIdentifier is malformed: identifierValue `1`: a URA is 8 digits"),
    );
    check(
        vec![permanent(None, Some(URA_OID))],
        Err("without identifierValue"),
    );
}

#[test]
fn names_that_disagree_on_the_ura_are_refused() {
    check(
        vec![
            uzi(HUISARTS_UZI, StringEncoding::Ia5),
            permanent(Some("00000010"), Some(URA_OID)),
        ],
        Err("two different URAs: 00000001 and 00000010"),
    );
}

#[test]
fn what_is_not_a_certificate_is_unreadable() {
    assert!(matches!(
        tls::identity_from_certificate(b"not a certificate"),
        Err(IdentityError::Unreadable(_))
    ));
}

/// The signer of an open question's SAML assertion is trusted only when its certificate chains
/// to the provider trust store and is meant for client authentication.
#[test]
fn assertion_signers_must_chain_to_the_trust_store() {
    let pki = pki();
    let trust = tls::SignerTrust::from_pem(&pki.settings.client_ca_pem).unwrap();

    assert_eq!(trust.check(&huisarts(&pki.ca).der), Ok(()));

    let stranger = trust.check(&huisarts(&pki.rogue).der).unwrap_err();
    assert!(stranger.contains("UnknownIssuer"), "{stranger}");

    let ca_itself = trust.check(&pki.ca.certificate().der);
    assert!(ca_itself.is_err(), "a CA certificate is not a signer");

    let server_only = pki.ca.server_certificate(&["localhost"]).unwrap();
    assert!(
        trust.check(&server_only.der).is_err(),
        "a certificate without clientAuth is not a connector's"
    );

    assert!(trust.check(b"not a certificate").is_err());
}
