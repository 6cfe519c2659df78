//! `otv sandbox DIR`: a complete test PKI and a configuration that uses it, so that the
//! mutual-TLS provider listener can be tried with curl in a minute.
//!
//! Writes, as PEM: a test CA, otv's server certificate for `localhost` and `127.0.0.1`, one
//! UZI-style client certificate per demo connector, and a client certificate from a second,
//! untrusted CA for negative tests; then `otv.toml` and `README.txt`. The certificates come from
//! [`otv_server::tls::testpki`]; the connectors' names and URAs from [`crate::demo`].
//!
//! `demo-lsp` stands for an exchange system (LSP-like) that acts for many providers: its
//! certificate carries no URA, as a PKIoverheid services certificate of an exchange operator
//! would not, so it may act only for the URAs its allow-list entry names. That is also the
//! sandbox's example of `ura: None`.
//!
//! For enrolment tokens (PRODUCT.md §8) it also writes a UZI-card CA with one UZI card per demo
//! connector's URA (the URA in the card's UZI otherName) and a WID-issuer CA with one certified
//! key, configures both CAs as trust anchors (`[assisted]`), and [`token`] (`otv sandbox token`)
//! signs test tokens with them.
//!
//! Test material only: the CA key is written next to the certificates.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use otv_server::tls::testpki::ClientSpec;
use otv_server::tls::testpki::{
    Algorithm, EnrolmentIssuer, Factor, Issued, TestCa, TokenClaims, TokenSigner,
};

use crate::demo;

/// What a demo connector's UZI server certificate says.
struct Uzi {
    number: &'static str,
    ura: &'static str,
    agb: &'static str,
}

/// The demo connectors' certificates: connector id and, for a UZI server certificate, what it
/// says.
const CLIENTS: &[(&str, Option<Uzi>)] = &[
    (
        "demo-huisarts",
        Some(Uzi {
            number: "900010001",
            ura: "00000001",
            agb: "01000001",
        }),
    ),
    (
        "demo-apotheek",
        Some(Uzi {
            number: "900010010",
            ura: "00000010",
            agb: "06000010",
        }),
    ),
    ("demo-lsp", None),
];

/// The files of a sandbox, relative to its directory.
const CA: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const SERVER: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";
const ROGUE_CA: &str = "rogue-ca.pem";
const ROGUE: &str = "rogue-client.pem";
const ROGUE_KEY: &str = "rogue-client-key.pem";
const UZI_CARD_CA: &str = "enrolment-uzi-card-ca.pem";
const WID_CA: &str = "enrolment-wid-ca.pem";
const WID: &str = "wid.pem";
const WID_KEY: &str = "wid-key.pem";
const CONFIG: &str = "otv.toml";
const README: &str = "README.txt";
const DATABASE: &str = "otv.sqlite";

/// What [`write_sandbox`] wrote.
#[derive(Debug, Clone)]
pub struct SandboxSummary {
    /// The sandbox directory (absolute).
    pub dir: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// The client certificates of the demo connectors.
    pub connectors: Vec<SandboxConnector>,
    /// The provider listener's address.
    pub provider_listen: String,
}

/// One demo connector's client certificate.
#[derive(Debug, Clone)]
pub struct SandboxConnector {
    /// Connector id.
    pub id: String,
    /// The URA in its certificate, if any.
    pub ura: Option<String>,
    /// SHA-256 of the certificate (the allow-list key).
    pub certificate_sha256: String,
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file.
    pub key: PathBuf,
}

/// Writes a sandbox into `dir` (created if needed). Refuses when `dir` already holds sandbox
/// files, unless `force`; `force` replaces the certificates and the configuration but leaves
/// an existing database alone.
pub fn write_sandbox(
    dir: &Path,
    listen_http: &str,
    listen_provider: &str,
    force: bool,
) -> anyhow::Result<SandboxSummary> {
    let client_files: Vec<(String, String)> = CLIENTS
        .iter()
        .map(|(id, _)| (format!("{id}.pem"), format!("{id}-key.pem")))
        .collect();
    let mut files = vec![
        CA,
        CA_KEY,
        SERVER,
        SERVER_KEY,
        ROGUE_CA,
        ROGUE,
        ROGUE_KEY,
        CONFIG,
        README,
        UZI_CARD_CA,
        WID_CA,
        WID,
        WID_KEY,
    ];
    files.extend(
        client_files
            .iter()
            .flat_map(|(c, k)| [c.as_str(), k.as_str()]),
    );
    if !force && let Some(existing) = files.iter().find(|f| dir.join(f).exists()) {
        bail!(
            "{} already holds a sandbox ({existing} exists); pass --force to replace it",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;

    let ca = TestCa::new("otv sandbox CA")?;
    write(&dir, CA, &ca.certificate().cert_pem, false)?;
    write(&dir, CA_KEY, &ca.certificate().key_pem, true)?;
    let server = ca.server_certificate(&["localhost", "127.0.0.1"])?;
    write_pair(&dir, SERVER, SERVER_KEY, &server)?;

    let mut connectors = Vec::new();
    for ((id, uzi), (cert_file, key_file)) in CLIENTS.iter().zip(&client_files) {
        let (_, name, _) = demo::CONNECTORS
            .iter()
            .find(|(demo_id, _, _)| demo_id == id)
            .with_context(|| format!("sandbox connector {id} is not a demo connector"))?;
        let spec = match uzi {
            Some(u) => ClientSpec::uzi(name, &organisation(u.ura), u.number, u.ura, u.agb),
            None => ClientSpec::plain(name, "Demo uitwisselsysteem"),
        };
        let issued = ca.client_certificate(&spec)?;
        write_pair(&dir, cert_file, key_file, &issued)?;
        connectors.push(SandboxConnector {
            id: (*id).into(),
            ura: uzi.as_ref().map(|u| u.ura.to_owned()),
            certificate_sha256: issued.sha256(),
            cert: dir.join(cert_file),
            key: dir.join(key_file),
        });
    }

    let rogue_ca = TestCa::new("otv sandbox rogue CA")?;
    write(&dir, ROGUE_CA, &rogue_ca.certificate().cert_pem, false)?;
    let rogue = rogue_ca.client_certificate(&ClientSpec::uzi(
        "Rogue connector",
        "Not a provider",
        "900666666",
        "00000001",
        "01000001",
    ))?;
    write_pair(&dir, ROGUE, ROGUE_KEY, &rogue)?;

    // Enrolment tokens: the two CAs, a UZI card per demo URA and a WID key. The certificate
    // files hold the chain (card, CA) as it goes into `x5c`.
    let enrolment = EnrolmentIssuer::new()?;
    write(&dir, UZI_CARD_CA, &enrolment.uzi_card_ca().cert_pem, false)?;
    write(&dir, WID_CA, &enrolment.wid_ca().cert_pem, false)?;
    let chain = |signer: &TokenSigner, ca: &Issued| Issued {
        cert_pem: format!("{}{}", signer.leaf.cert_pem, ca.cert_pem),
        ..signer.leaf.clone()
    };
    for (_, uzi) in CLIENTS {
        if let Some(u) = uzi {
            let card = enrolment.uzi_card(u.ura, u.number, Algorithm::Es256)?;
            let (cert, key) = card_files(u.ura);
            write_pair(&dir, &cert, &key, &chain(&card, enrolment.uzi_card_ca()))?;
        }
    }
    let wid = enrolment.wid_key(Algorithm::Es256)?;
    write_pair(&dir, WID, WID_KEY, &chain(&wid, enrolment.wid_ca()))?;

    let summary = SandboxSummary {
        config: dir.join(CONFIG),
        connectors,
        provider_listen: listen_provider.to_owned(),
        dir,
    };
    write(
        &summary.dir,
        CONFIG,
        &config_toml(&summary, listen_http)?,
        false,
    )?;
    write(&summary.dir, README, &readme(&summary), false)?;
    Ok(summary)
}

/// The files of the sandbox's UZI card for `ura`.
fn card_files(ura: &str) -> (String, String) {
    (
        format!("uzi-card-{ura}.pem"),
        format!("uzi-card-{ura}-key.pem"),
    )
}

/// What `otv sandbox token` is asked for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The sandbox directory.
    pub dir: PathBuf,
    /// The patient.
    pub bsn: String,
    /// The provider.
    pub ura: String,
    /// `uzi-pas` or `wid`.
    pub factor: String,
    /// Seconds from `iat` to `exp` (otv accepts at most 900).
    pub lifetime_secs: i64,
    /// The `jti`; a new UUID when absent.
    pub jti: Option<String>,
    /// Sign with this card (chain PEM) and key instead of the sandbox's card for `ura`.
    pub card: Option<(PathBuf, PathBuf)>,
}

/// A test enrolment token (compact JWS, ES256) signed with the sandbox's UZI card for the URA
/// (`uzi-pas`) or its WID key (`wid`), made now.
pub fn token(request: &TokenRequest) -> anyhow::Result<String> {
    let bsn = otv_core::Bsn::parse(request.bsn.trim()).context("--bsn")?;
    let ura = otv_core::Ura::parse(request.ura.trim()).context("--ura")?;
    let factor = Factor::parse(&request.factor)
        .with_context(|| format!("--factor: `{}` is not uzi-pas or wid", request.factor))?;
    let dir = &request.dir;
    let (cert, key) = match (&request.card, factor) {
        (Some((cert, key)), _) => (cert.clone(), key.clone()),
        (None, Factor::UziPas) => {
            let (cert, key) = card_files(ura.as_str());
            if !dir.join(&cert).exists() {
                bail!(
                    "{} has no UZI card for URA {ura} ({cert}); the sandbox has cards for {}, or pass --card and --card-key",
                    dir.display(),
                    CLIENTS
                        .iter()
                        .filter_map(|(_, u)| u.as_ref().map(|u| u.ura))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            (dir.join(cert), dir.join(key))
        }
        (None, Factor::Wid) => (dir.join(WID), dir.join(WID_KEY)),
    };
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let signer = TokenSigner::from_pem(&read(&cert)?, &read(&key)?, None)
        .map_err(|e| anyhow::anyhow!("{}: {e}", cert.display()))?;
    let iat = chrono::Utc::now();
    Ok(signer.token(&TokenClaims {
        ura: ura.to_string(),
        bsn: bsn.expose().to_owned(),
        factor,
        iat,
        exp: iat + chrono::Duration::seconds(request.lifetime_secs),
        jti: request
            .jti
            .clone()
            .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>())),
    }))
}

/// The organisation name of a demo provider.
fn organisation(ura: &str) -> String {
    demo::PROVIDERS
        .iter()
        .find(|(u, _, _)| *u == ura)
        .map(|(_, name, _)| (*name).to_owned())
        .unwrap_or_else(|| format!("Zorgaanbieder {ura}"))
}

fn config_toml(summary: &SandboxSummary, listen_http: &str) -> anyhow::Result<String> {
    let path = |file: &str| quote(&summary.dir.join(file).display().to_string());
    let mut text = format!(
        "# otv sandbox: TEST CERTIFICATES AND DEVELOPMENT KEYS, never for real patients.\n\
         # Start:  otv --config {config} serve\n\
         \n\
         database_url = {database}\n\
         # Plain HTTP: /healthz, /readyz, /metrics.\n\
         listen = {listen}\n\
         # Development keys on SQLite, demo providers and test citizens.\n\
         demo = true\n\
         log_format = \"text\"\n\
         \n\
         # Mutual TLS: the provider interfaces. Client certificates must chain to tls_client_ca.\n\
         provider_listen = {provider}\n\
         tls_server_cert = {cert}\n\
         tls_server_key = {key}\n\
         tls_client_ca = {ca}\n\
         \n\
         # Enrolment tokens (`otv sandbox token`): the UZI-card CA and the WID-issuer CA.\n\
         [assisted]\n\
         enrolment_uzi_card_ca = {uzi_card_ca}\n\
         enrolment_wid_ca = {wid_ca}\n",
        config = summary.config.display(),
        database = quote(&format!(
            "sqlite://{}",
            summary.dir.join(DATABASE).display()
        )),
        listen = quote(listen_http),
        provider = quote(&summary.provider_listen),
        cert = path(SERVER),
        key = path(SERVER_KEY),
        ca = path(CA),
        uzi_card_ca = path(UZI_CARD_CA),
        wid_ca = path(WID_CA),
    );
    for c in &summary.connectors {
        let (_, name, acts_for) = demo::CONNECTORS
            .iter()
            .find(|(id, _, _)| *id == c.id)
            .context("demo connector")?;
        let acts_for: Vec<String> = acts_for.iter().map(|u| quote(u)).collect();
        text.push_str(&format!(
            "\n# Certificate {file}{ura}.\n\
             [[connector]]\n\
             id = {id}\n\
             name = {name}\n\
             certificate_sha256 = {sha}\n\
             acts_for = [{acts_for}]\n",
            file = c.cert.file_name().unwrap_or_default().display(),
            ura = match &c.ura {
                Some(ura) => format!(" (URA {ura} in the certificate)"),
                None => " (no URA in the certificate)".into(),
            },
            id = quote(&c.id),
            name = quote(name),
            sha = quote(&c.certificate_sha256),
            acts_for = acts_for.join(", "),
        ));
    }
    Ok(text)
}

fn readme(summary: &SandboxSummary) -> String {
    let dir = summary.dir.display();
    let port = summary
        .provider_listen
        .rsplit_once(':')
        .map_or("8443", |(_, p)| p);
    let mut connectors = String::new();
    for c in &summary.connectors {
        connectors.push_str(&format!(
            "  {:<14} {}  {}\n",
            c.id,
            c.ura.as_deref().unwrap_or("(no URA)"),
            c.certificate_sha256
        ));
    }
    format!(
        "otv sandbox
============

TEST MATERIAL ONLY: a throw-away CA (its key is here), development keys, demo data.

Files
  ca.pem, ca-key.pem            the sandbox CA (the provider listener's client trust store)
  server.pem, server-key.pem    otv's server certificate for localhost and 127.0.0.1
  <connector>.pem, -key.pem     client certificates of the demo connectors (clientAuth)
  rogue-ca.pem, rogue-client.pem, rogue-client-key.pem
                                a client certificate from ANOTHER CA: must be refused
  enrolment-uzi-card-ca.pem     the UZI-card CA (trust anchor of enrolment tokens, uzi-pas)
  uzi-card-<URA>.pem, -key.pem  a professional's UZI card per demo URA (card, then CA)
  enrolment-wid-ca.pem          the WID-issuer CA (trust anchor of enrolment tokens, wid)
  wid.pem, wid-key.pem          a key certified by the WID issuer (certificate, then CA)
  otv.toml                      configuration: SQLite database otv.sqlite in this directory,
                                the provider listener on {provider}, the connector allow-list

Connectors (id, URA in the certificate, certificate SHA-256)
{connectors}
Client certificates look like UZI server certificates: subjectAltName otherName 2.5.5.5 with
2.16.528.1.1003.1.3.5.5.2-1-<UZI nr>-S-<URA>-00.000-<AGB> (IA5String) and the URA as
permanentIdentifier (assigner 2.16.528.1.1007.3.3). demo-lsp has none: an exchange system acts
for the URAs of its allow-list entry.

Start otv
  otv --config {dir}/otv.toml serve

Call the provider listener as demo-huisarts
  curl --cert {dir}/demo-huisarts.pem --key {dir}/demo-huisarts-key.pem --cacert {dir}/ca.pem https://127.0.0.1:{port}/healthz

The closed question (a SOAP 1.2 XACML request in request.xml)
  curl --cert {dir}/demo-huisarts.pem --key {dir}/demo-huisarts-key.pem --cacert {dir}/ca.pem \\
       -H 'content-type: application/soap+xml' --data-binary @request.xml \\
       https://127.0.0.1:{port}/geslotenautorisatievraag/xacml3
  (under provider_base_path when that is set, e.g. /mitz/geslotenautorisatievraag/xacml3)

An enrolment token (15 minutes, single use) and the raadplegersknop without a screen
  TOKEN=$(otv sandbox token --dir {dir} --bsn 900203638 --ura 00000001 --factor uzi-pas)
  curl --cert {dir}/demo-huisarts.pem --key {dir}/demo-huisarts-key.pem --cacert {dir}/ca.pem \\
       -H 'content-type: application/json' \\
       --data '{{\"bsn\":\"900203638\",\"consulter_ura\":\"00000001\",\"professional\":{{\"uzi\":\"900010001\",\"role\":\"01.015\"}},\"enrolment_token\":\"'$TOKEN'\"}}' \\
       https://127.0.0.1:{port}/v1/emergency-consent
  (--factor wid signs with the WID key instead; /v1/enrolment-token/check with
  bsn, ura and enrolment_token checks a token without using it up)

These must fail during the TLS handshake
  curl --cacert {dir}/ca.pem https://127.0.0.1:{port}/healthz
  curl --cert {dir}/rogue-client.pem --key {dir}/rogue-client-key.pem --cacert {dir}/ca.pem https://127.0.0.1:{port}/healthz

Make a new sandbox over this one: otv sandbox --force {dir}
(the database otv.sqlite is kept).
",
        provider = summary.provider_listen,
    )
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn write_pair(dir: &Path, cert: &str, key: &str, issued: &Issued) -> anyhow::Result<()> {
    write(dir, cert, &issued.cert_pem, false)?;
    write(dir, key, &issued.key_pem, true)
}

/// Writes `dir/name`; private keys readable by the owner only.
fn write(dir: &Path, name: &str, text: &str, private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

impl fmt::Display for SandboxSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "sandbox written to {}", self.dir.display())?;
        for c in &self.connectors {
            writeln!(
                f,
                "  {:<14} {:<10} {} (key {})",
                c.id,
                c.ura.as_deref().unwrap_or("(no URA)"),
                c.cert.display(),
                c.key.display()
            )?;
        }
        writeln!(f, "start:  otv --config {} serve", self.config.display())?;
        write!(
            f,
            "see {} for curl examples",
            self.dir.join(README).display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use otv_server::tls::{self, TlsSettings};

    fn sandbox() -> (tempfile::TempDir, SandboxSummary) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let summary = write_sandbox(&dir, "127.0.0.1:8080", "127.0.0.1:8443", false).unwrap();
        (tmp, summary)
    }

    #[test]
    fn the_certificates_carry_the_demo_connectors_identities() {
        let (_tmp, summary) = sandbox();
        let expected = [
            ("demo-huisarts", Some("00000001")),
            ("demo-apotheek", Some("00000010")),
            ("demo-lsp", None),
        ];
        assert_eq!(summary.connectors.len(), expected.len());
        for (c, (id, ura)) in summary.connectors.iter().zip(expected) {
            assert_eq!(c.id, id);
            let pem = std::fs::read(&c.cert).unwrap();
            let der = rustls_pem_der(&pem);
            let identity = tls::identity_from_certificate(&der).unwrap();
            assert_eq!(identity.ura.as_ref().map(|u| u.as_str()), ura, "{id}");
            assert_eq!(identity.certificate_sha256, c.certificate_sha256, "{id}");
        }
    }

    #[test]
    fn the_configuration_names_the_files_and_the_allow_list() {
        let (_tmp, summary) = sandbox();
        let text = std::fs::read_to_string(&summary.config).unwrap();
        let config: toml::Table = text.parse().unwrap();
        let file = |key: &str| PathBuf::from(config[key].as_str().unwrap());
        let settings = TlsSettings {
            server_cert_pem: file("tls_server_cert"),
            server_key_pem: file("tls_server_key"),
            client_ca_pem: file("tls_client_ca"),
        };
        tls::server_config(&settings).expect("the sandbox's TLS files go together");
        assert_eq!(config["provider_listen"].as_str(), Some("127.0.0.1:8443"));
        assert_eq!(config["listen"].as_str(), Some("127.0.0.1:8080"));
        assert_eq!(config["demo"].as_bool(), Some(true));
        assert!(
            config["database_url"]
                .as_str()
                .unwrap()
                .starts_with("sqlite:///")
        );

        let connectors = config["connector"].as_array().unwrap();
        assert_eq!(connectors.len(), summary.connectors.len());
        for (entry, written) in connectors.iter().zip(&summary.connectors) {
            assert_eq!(entry["id"].as_str(), Some(written.id.as_str()));
            assert_eq!(
                entry["certificate_sha256"].as_str(),
                Some(written.certificate_sha256.as_str())
            );
            let (_, name, acts_for) = demo::CONNECTORS
                .iter()
                .find(|(id, _, _)| *id == written.id)
                .unwrap();
            assert_eq!(entry["name"].as_str(), Some(*name));
            let listed: Vec<&str> = entry["acts_for"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap())
                .collect();
            assert_eq!(listed, *acts_for);
        }
        let readme = std::fs::read_to_string(summary.dir.join(README)).unwrap();
        assert!(readme.contains(&format!(
            "curl --cert {dir}/demo-huisarts.pem --key {dir}/demo-huisarts-key.pem --cacert {dir}/ca.pem https://127.0.0.1:8443/healthz",
            dir = summary.dir.display()
        )));
    }

    #[test]
    fn otv_accepts_the_configuration() {
        let (_tmp, summary) = sandbox();
        let settings = crate::config::Config::load(Some(&summary.config))
            .unwrap()
            .validate()
            .unwrap();
        let provider = settings
            .provider
            .expect("the provider listener is configured");
        assert_eq!(provider.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(provider.client_ca, summary.dir.join(CA));
        assert_eq!(settings.connectors.len(), summary.connectors.len());
        for (allowed, written) in settings.connectors.iter().zip(&summary.connectors) {
            assert_eq!(allowed.id, written.id);
            assert_eq!(
                allowed.certificate_sha256.as_deref(),
                Some(written.certificate_sha256.as_str())
            );
        }
    }

    #[test]
    fn the_sandbox_tokens_verify_against_the_configured_anchors() {
        let (_tmp, summary) = sandbox();
        let settings = crate::config::Config::load(Some(&summary.config))
            .unwrap()
            .validate()
            .unwrap();
        assert_eq!(settings.enrolment_anchors.counts(), (1, 1));
        let bsn = otv_core::Bsn::parse("900203638").unwrap();
        let request = |ura: &str, factor: &str| TokenRequest {
            dir: summary.dir.clone(),
            bsn: "900203638".into(),
            ura: ura.into(),
            factor: factor.into(),
            lifetime_secs: 900,
            jti: None,
            card: None,
        };
        for (ura, factor) in [
            ("00000001", "uzi-pas"),
            ("00000010", "uzi-pas"),
            ("00000001", "wid"),
        ] {
            let token = token(&request(ura, factor)).unwrap();
            let ura = otv_core::Ura::parse(ura).unwrap();
            let claims = otv_server::assisted::token::verify_at(
                &settings.enrolment_anchors,
                &token,
                &ura,
                &bsn,
                chrono::Utc::now(),
            )
            .unwrap_or_else(|e| panic!("{factor}: {e}"));
            assert_eq!(claims.factor.as_str(), factor);
        }
        // No card for a URA the sandbox has no connector for.
        let err = token(&request("00000002", "uzi-pas"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no UZI card for URA 00000002"), "{err}");
        assert!(token(&request("00000001", "sms")).is_err());
    }

    #[test]
    fn an_existing_sandbox_is_replaced_only_when_forced() {
        let (_tmp, summary) = sandbox();
        let err = write_sandbox(&summary.dir, "127.0.0.1:8080", "127.0.0.1:8443", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        let again = write_sandbox(&summary.dir, "127.0.0.1:8080", "127.0.0.1:9443", true).unwrap();
        assert_ne!(
            again.connectors[0].certificate_sha256,
            summary.connectors[0].certificate_sha256
        );
        let text = std::fs::read_to_string(&again.config).unwrap();
        assert!(text.contains("127.0.0.1:9443"));
    }

    #[cfg(unix)]
    #[test]
    fn private_keys_are_readable_by_the_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, summary) = sandbox();
        for key in [CA_KEY, SERVER_KEY, ROGUE_KEY, "demo-huisarts-key.pem"] {
            let mode = std::fs::metadata(summary.dir.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{key}");
        }
    }

    /// The DER of the first certificate in a PEM text.
    fn rustls_pem_der(pem: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(pem).unwrap();
        let body: String = text
            .lines()
            .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }
}
