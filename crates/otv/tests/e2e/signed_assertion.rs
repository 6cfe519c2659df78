//! A signed XUA assertion in the open question, over real mutual TLS with the sandbox's PKI: a
//! valid signature counts only when the signer's certificate chains to the provider trust store;
//! one by a certificate from anywhere else is refused with a fault, and audited.
//!
//! The signer here writes the signature by hand (RSA-SHA256 over exclusive-canonical
//! `SignedInfo`, SHA-256 digest of the assertion, which the fixture already carries in canonical
//! form), independently of otv's own canonicalization.

use std::process::Command;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose,
};

use crate::support::{OTV, Server, databases, open_question_request, sandbox_client, text};

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ASSERTION_ID: &str = "_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21";

/// An RSA key and a certificate for it (clientAuth), issued by a new CA; returns the key, the
/// certificate's DER and the CA's PEM.
fn signer_issued_by_new_ca(ca_name: &str) -> (KeyPair, Vec<u8>, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, ca_name);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8 = AsDer::<Pkcs8V1Der<'static>>::as_der(&key).unwrap();
    let leaf_key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let mut leaf = CertificateParams::new(vec!["lsp.example".to_owned()]).unwrap();
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let certificate = leaf.signed_by(&leaf_key, &issuer).unwrap();
    (key, certificate.der().to_vec(), ca_pem)
}

/// `doc` with its assertion signed (enveloped, exclusive C14N, RSA-SHA256) by `key`, whose
/// certificate goes into `KeyInfo`.
fn sign(doc: &str, key: &KeyPair, certificate: &[u8]) -> String {
    let start = doc.find("<saml2:Assertion").unwrap();
    let end = doc.find("</saml2:Assertion>").unwrap() + "</saml2:Assertion>".len();
    let digest_value =
        STANDARD.encode(digest::digest(&digest::SHA256, &doc.as_bytes()[start..end]));
    let written = signed_info(&digest_value, false);
    let canonical = signed_info(&digest_value, true);
    let mut value = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        canonical.as_bytes(),
        &mut value,
    )
    .unwrap();
    let signature = format!(
        "<ds:Signature xmlns:ds=\"{DSIG}\">{written}<ds:SignatureValue>{}</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>",
        STANDARD.encode(&value),
        STANDARD.encode(certificate),
    );
    let after = doc.find("</saml2:Issuer>").unwrap() + "</saml2:Issuer>".len();
    let mut signed = doc.to_owned();
    signed.insert_str(after, &signature);
    signed
}

/// `SignedInfo` as a sender writes it inside `ds:Signature` (empty-element tags), or in its
/// exclusive canonical form (end tags written out, `ds` declared on it).
fn signed_info(digest_value: &str, canonical: bool) -> String {
    let empty = |tag: &str, algorithm: &str| {
        if canonical {
            format!("<{tag} Algorithm=\"{algorithm}\"></{tag}>")
        } else {
            format!("<{tag} Algorithm=\"{algorithm}\"/>")
        }
    };
    format!(
        "<ds:SignedInfo{ns}>{}{}<ds:Reference URI=\"#{ASSERTION_ID}\"><ds:Transforms>{}{}</ds:Transforms>{}<ds:DigestValue>{digest_value}</ds:DigestValue></ds:Reference></ds:SignedInfo>",
        empty("ds:CanonicalizationMethod", EXC_C14N),
        empty(
            "ds:SignatureMethod",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        ),
        empty(
            "ds:Transform",
            "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
        ),
        empty("ds:Transform", EXC_C14N),
        empty("ds:DigestMethod", "http://www.w3.org/2001/04/xmlenc#sha256"),
        ns = if canonical {
            format!(" xmlns:ds=\"{DSIG}\"")
        } else {
            String::new()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_assertion_counts_only_from_a_trusted_signer() {
    for db in databases().await {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sandbox");
        let out = Command::new(OTV).arg("sandbox").arg(&dir).output().unwrap();
        assert!(out.status.success(), "{}", text(&out));

        // The operator's trust store: the sandbox CA and the CA of the exchange's signing
        // certificate. A second CA signs for a stranger.
        let (trusted_key, trusted_certificate, trusted_ca) = signer_issued_by_new_ca("exchange CA");
        let (stranger_key, stranger_certificate, _) = signer_issued_by_new_ca("stranger CA");
        let store = dir.join("ca.pem");
        let mut pem = std::fs::read_to_string(&store).unwrap();
        pem.push_str(&trusted_ca);
        std::fs::write(&store, pem).unwrap();

        let config = dir.join("otv.toml");
        let server = Server::start_with(
            &db,
            &["--config", config.to_str().unwrap()],
            &[
                ("OTV_PROVIDER_LISTEN", "127.0.0.1:0"),
                ("OTV_LOG_FORMAT", "json"),
            ],
        );
        let url = format!(
            "https://{}/openautorisatievraag",
            server.provider_addr().expect("the provider listener runs")
        );
        let client = sandbox_client(&dir, Some("demo-lsp"));
        let ask = async |body: String| {
            let res = client
                .post(&url)
                .header("content-type", "application/soap+xml")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        };
        let request = open_question_request("900203663");

        let (status, body) = ask(request.clone()).await;
        assert_eq!(status, 200, "unsigned: {body}");
        let (status, body) = ask(sign(&request, &trusted_key, &trusted_certificate)).await;
        assert_eq!(status, 200, "signed by a trusted certificate: {body}");
        assert!(body.contains("PatientLocationQueryResponse"), "{body}");

        let (status, body) = ask(sign(&request, &stranger_key, &stranger_certificate)).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("Sender"), "{body}");
        assert!(body.contains("signer certificate is not trusted"), "{body}");

        let logs = server.stop();
        assert!(!logs.contains("900203663"), "no BSN in the logs");
        let audit = crate::support::otv(&db, &["audit", "verify"]);
        assert!(audit.status.success(), "{}", text(&audit));
        db.cleanup().await;
    }
}
