//! The open question: an XCPD ITI-56 Patient Location Query whose consulter attributes come in a
//! XUA SAML assertion, unsigned or signed; and the `PatientLocationQueryResponse`.
//!
//! The request is `tests/fixtures/open-question/request.xml` (its README describes the shape).
//! Signed variants are signed here with an RSA key made once per run (aws-lc-rs) and a
//! self-signed certificate for it (rcgen). The signer never uses otv's canonicalization: it
//! digests and signs canonical forms written out by hand (the fixture's assertion is written in
//! its canonical form; `SignedInfo` has a hand-written canonical twin). A signature verifies
//! only if otv's canonical form is byte for byte the hand-written one.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use otv_core::{Bsn, DataCategory, OrgType, Organisation, Purpose, RoleCode, Ura, UziNumber};
use otv_wire::{
    AssertionProblem, AttributeProblem, CLOCK_SKEW_SECONDS, Location, OpenQuestionRequest,
    SignatureProblem, WireError, open_question_response, parse_open_question,
};
use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use uuid::Uuid;

use crate::support::{FIXTURE_BSN, assert_golden, assert_no_bsn, replace};

const REQUEST: &str = include_str!("../fixtures/open-question/request.xml");
/// The audience the fixture's assertion names; a deployment configures its own.
const AUDIENCE: &str = "urn:oid:2.16.840.1.113883.2.4.3.111.2.1";
const ASSERTION_ID: &str = "_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21";
const NOT_BEFORE: &str = "2025-06-02T09:59:30Z";
const NOT_ON_OR_AFTER: &str = "2025-06-02T10:09:30Z";

const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

/// Half a minute into the assertion's ten-minute window.
fn now() -> DateTime<Utc> {
    at("2025-06-02T10:00:00Z")
}

fn expected() -> OpenQuestionRequest {
    OpenQuestionRequest {
        message_id: "urn:uuid:6a2f41a3-c54c-4c3b-8e5e-0b1f7d9c2e11".to_owned(),
        bsn: Bsn::parse(FIXTURE_BSN).unwrap(),
        consulter: Organisation {
            ura: Ura::parse("00000666").unwrap(),
            organisation_type: OrgType::parse("Z3").unwrap(),
        },
        professional: UziNumber::parse("000095254").unwrap(),
        role: RoleCode::parse("01.015").unwrap(),
        mandated: None,
        purpose: Purpose::Treat,
        assertion_id: ASSERTION_ID.to_owned(),
        signed: false,
        signer_certificate: None,
    }
}

fn expected_signed() -> OpenQuestionRequest {
    OpenQuestionRequest {
        signed: true,
        signer_certificate: Some(test_key().certificate.clone()),
        ..expected()
    }
}

fn parse_at(doc: &str, now: DateTime<Utc>) -> Result<OpenQuestionRequest, WireError> {
    parse_open_question(doc.as_bytes(), now, AUDIENCE)
}

fn parse_ok(doc: &str) -> OpenQuestionRequest {
    parse_at(doc, now()).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Parses `doc`, which must be refused, and returns the error after checking that it shows no
/// BSN in its text or `Debug` form.
fn parse_err_at(doc: &str, now: DateTime<Utc>) -> WireError {
    let e = match parse_at(doc, now) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    };
    assert_no_bsn(&e);
    e
}

fn parse_err(doc: &str) -> WireError {
    parse_err_at(doc, now())
}

/// The assertion element of `doc`, as text.
fn assertion_of(doc: &str) -> &str {
    let start = doc.find("<saml2:Assertion").expect("assertion");
    let end = doc.find("</saml2:Assertion>").expect("closed") + "</saml2:Assertion>".len();
    &doc[start..end]
}

/// The `<saml2:Attribute Name="{name}" …>…</saml2:Attribute>` element of `doc`, as text.
fn attribute_of<'a>(doc: &'a str, name: &str) -> &'a str {
    let start = doc
        .find(&format!("<saml2:Attribute Name=\"{name}\""))
        .unwrap_or_else(|| panic!("attribute {name}"));
    let end = start + doc[start..].find("</saml2:Attribute>").unwrap() + "</saml2:Attribute>".len();
    &doc[start..end]
}

// ---------------------------------------------------------------------------------------------
// Signing, by hand.

struct TestKey {
    key: KeyPair,
    /// A self-signed certificate for `key`, DER.
    certificate: Vec<u8>,
}

fn test_key() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = AsDer::<Pkcs8V1Der<'static>>::as_der(&key).unwrap();
        let rcgen_key = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
        let certificate = rcgen::CertificateParams::new(vec!["connector.example".to_owned()])
            .unwrap()
            .self_signed(&rcgen_key)
            .unwrap();
        TestKey {
            key,
            certificate: certificate.der().to_vec(),
        }
    })
}

/// base64 broken into lines, as many signers write it.
fn wrapped(bytes: &[u8]) -> String {
    let text = STANDARD.encode(bytes);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    lines.join("\n")
}

/// How a test signs. [`signer`] gives otv's profile; each field is one way to leave it.
struct Signer {
    reference_uri: String,
    canonicalization: &'static str,
    signature_method: &'static str,
    digest_method: &'static str,
    transforms: Vec<&'static str>,
    /// An `InclusiveNamespaces PrefixList` on the Reference's exclusive C14N transform.
    prefix_list: Option<&'static str>,
    references: usize,
    corrupt_signature: bool,
    certificates: Vec<Vec<u8>>,
    /// Where the `ds:Signature` goes: right after this text.
    after: &'static str,
}

fn signer() -> Signer {
    Signer {
        reference_uri: format!("#{ASSERTION_ID}"),
        canonicalization: EXC_C14N,
        signature_method: RSA_SHA256,
        digest_method: SHA256,
        transforms: vec![ENVELOPED, EXC_C14N],
        prefix_list: None,
        references: 1,
        corrupt_signature: false,
        certificates: vec![test_key().certificate.clone()],
        after: "</saml2:Issuer>",
    }
}

impl Signer {
    /// `SignedInfo` as a sender writes it (`ds` declared on `Signature`, empty-element tags)
    /// and, by hand, its exclusive canonical form.
    fn signed_info(&self, digest_value: &str) -> (String, String) {
        let (mut transforms, mut canonical_transforms) = (String::new(), String::new());
        for &algorithm in &self.transforms {
            match self.prefix_list {
                Some(list) if algorithm == EXC_C14N => {
                    transforms.push_str(&format!(
                        r#"<ds:Transform Algorithm="{algorithm}"><ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="{list}"/></ds:Transform>"#
                    ));
                    canonical_transforms.push_str(&format!(
                        r#"<ds:Transform Algorithm="{algorithm}"><ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="{list}"></ec:InclusiveNamespaces></ds:Transform>"#
                    ));
                }
                _ => {
                    transforms.push_str(&format!(r#"<ds:Transform Algorithm="{algorithm}"/>"#));
                    canonical_transforms.push_str(&format!(
                        r#"<ds:Transform Algorithm="{algorithm}"></ds:Transform>"#
                    ));
                }
            }
        }
        let uri = &self.reference_uri;
        let method = self.digest_method;
        let reference = format!(
            "\n  <ds:Reference URI=\"{uri}\"><ds:Transforms>{transforms}</ds:Transforms><ds:DigestMethod Algorithm=\"{method}\"/><ds:DigestValue>{digest_value}</ds:DigestValue></ds:Reference>"
        )
        .repeat(self.references);
        let canonical_reference = format!(
            "\n  <ds:Reference URI=\"{uri}\"><ds:Transforms>{canonical_transforms}</ds:Transforms><ds:DigestMethod Algorithm=\"{method}\"></ds:DigestMethod><ds:DigestValue>{digest_value}</ds:DigestValue></ds:Reference>"
        )
        .repeat(self.references);
        let (c14n, signature) = (self.canonicalization, self.signature_method);
        (
            format!(
                "<ds:SignedInfo>\n  <ds:CanonicalizationMethod Algorithm=\"{c14n}\"/>\n  <ds:SignatureMethod Algorithm=\"{signature}\"/>{reference}\n</ds:SignedInfo>"
            ),
            format!(
                "<ds:SignedInfo xmlns:ds=\"{DSIG}\">\n  <ds:CanonicalizationMethod Algorithm=\"{c14n}\"></ds:CanonicalizationMethod>\n  <ds:SignatureMethod Algorithm=\"{signature}\"></ds:SignatureMethod>{canonical_reference}\n</ds:SignedInfo>"
            ),
        )
    }

    /// The `ds:Signature` for an assertion whose canonical form (without the signature) is
    /// `canonical`.
    fn signature(&self, canonical: &str) -> String {
        let digest_value = STANDARD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()));
        let (signed_info, canonical_signed_info) = self.signed_info(&digest_value);
        let key = &test_key().key;
        let mut value = vec![0; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            canonical_signed_info.as_bytes(),
            &mut value,
        )
        .unwrap();
        if self.corrupt_signature {
            value[100] ^= 0x01;
        }
        let certificates: String = self
            .certificates
            .iter()
            .map(|c| format!("<ds:X509Certificate>{}</ds:X509Certificate>", wrapped(c)))
            .collect();
        format!(
            "<ds:Signature xmlns:ds=\"{DSIG}\">{signed_info}<ds:SignatureValue>\n{}\n</ds:SignatureValue><ds:KeyInfo><ds:X509Data>{certificates}</ds:X509Data></ds:KeyInfo></ds:Signature>",
            wrapped(&value)
        )
    }

    /// `doc` with its assertion signed over `canonical`, which must be the assertion's exclusive
    /// canonical form.
    fn sign_as(&self, doc: &str, canonical: &str) -> String {
        let at = doc.find(self.after).expect("place for the signature") + self.after.len();
        let mut signed = doc.to_owned();
        signed.insert_str(at, &self.signature(canonical));
        signed
    }

    /// `doc` signed, its assertion being written in canonical form already.
    fn sign(&self, doc: &str) -> String {
        self.sign_as(doc, assertion_of(doc))
    }
}

// ---------------------------------------------------------------------------------------------
// Reading.

#[test]
fn the_request_parses_as_is() {
    let request = parse_ok(REQUEST);
    assert_eq!(request, expected());
    assert_eq!(request.bsn.expose(), FIXTURE_BSN);
    let shown = format!("{request:?}");
    assert!(!shown.contains(FIXTURE_BSN), "{shown}");
}

#[test]
fn a_signed_assertion_verifies_and_yields_its_certificate() {
    let signed = signer().sign(REQUEST);
    assert_eq!(parse_ok(&signed), expected_signed());
}

/// Some WS-Security stacks give the assertion a `wsu:Id` and point the Reference at that.
#[test]
fn a_reference_to_the_wsu_id_is_accepted() {
    let doc = replace(
        REQUEST,
        "ID=\"_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21\"",
        "ID=\"_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21\" wsu:Id=\"_0\"",
    );
    // wsu is declared on Security: the canonical assertion declares it where it is used, and
    // sorts wsu:Id (in a namespace) after the attributes in none.
    let canonical = replace(
        &replace(
            assertion_of(REQUEST),
            "xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
            "xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\" xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\"",
        ),
        "Version=\"2.0\">",
        "Version=\"2.0\" wsu:Id=\"_0\">",
    );
    let signed = Signer {
        reference_uri: "#_0".to_owned(),
        ..signer()
    }
    .sign_as(&doc, &canonical);
    assert_eq!(parse_ok(&signed), expected_signed());
}

/// Edits that change how the assertion is written but not its canonical form: a signature
/// made before the edit still verifies. Each is a rule of Exclusive C14N.
#[test]
fn a_signature_survives_every_rewriting_that_keeps_the_canonical_form() {
    let xsi = " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";
    let saml2 = " xmlns:saml2=\"urn:oasis:names:tc:SAML:2.0:assertion\"";
    type Edit = Box<dyn Fn(&str) -> String>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "namespace declarations pushed down: xsi declared once on the assertion",
            Box::new(move |d| {
                let d = d.replace(
                    &format!("xmlns=\"urn:hl7-org:v3\"{xsi}"),
                    "xmlns=\"urn:hl7-org:v3\"",
                );
                replace(&d, "<saml2:Assertion", &format!("<saml2:Assertion{xsi}"))
            }),
        ),
        (
            "saml2 declared on the envelope, not on the assertion",
            Box::new(move |d| {
                let d = replace(d, saml2, "");
                replace(&d, "<soap:Envelope", &format!("<soap:Envelope{saml2}"))
            }),
        ),
        (
            "a redundant redeclaration and an unused declaration",
            Box::new(move |d| {
                replace(
                    d,
                    "<saml2:Subject>",
                    &format!("<saml2:Subject{saml2} xmlns:unused=\"urn:unused\">"),
                )
            }),
        ),
        (
            "the HL7 default namespace declared on the AttributeStatement",
            Box::new(|d| {
                let d = d.replace("<id xmlns=\"urn:hl7-org:v3\"", "<id");
                let d = replace(&d, "<Role xmlns=\"urn:hl7-org:v3\"", "<Role");
                let d = replace(
                    &d,
                    "<consulting-facility-type-code xmlns=\"urn:hl7-org:v3\"",
                    "<consulting-facility-type-code",
                );
                let d = replace(
                    &d,
                    "<PurposeOfUse xmlns=\"urn:hl7-org:v3\"",
                    "<PurposeOfUse",
                );
                replace(
                    &d,
                    "<saml2:AttributeStatement>",
                    "<saml2:AttributeStatement xmlns=\"urn:hl7-org:v3\">",
                )
            }),
        ),
        (
            "attributes in another order, in single quotes",
            Box::new(|d| {
                replace(
                    d,
                    "NotBefore=\"2025-06-02T09:59:30Z\" NotOnOrAfter=\"2025-06-02T10:09:30Z\"",
                    "NotOnOrAfter='2025-06-02T10:09:30Z'  NotBefore='2025-06-02T09:59:30Z'",
                )
            }),
        ),
        (
            "empty-element tags",
            Box::new(|d| {
                let d = replace(
                    d,
                    "cm:bearer\"></saml2:SubjectConfirmation>",
                    "cm:bearer\"/>",
                );
                replace(&d, "xsi:type=\"II\"></id>", "xsi:type=\"II\"/>")
            }),
        ),
        (
            "comments, character references and CDATA",
            Box::new(|d| {
                let d = replace(
                    d,
                    "<saml2:Subject>",
                    "<!-- who asks --><saml2:Subject><!-- the professional -->",
                );
                let d = replace(
                    &d,
                    ">urn:oid:2.16.840.1.113883.2.4.6.6.90000017<",
                    ">urn:oid:&#50;.16.840.1.113883.2.4.6.6.&#x39;0000017<",
                );
                replace(
                    &d,
                    ">urn:oasis:names:tc:SAML:2.0:ac:classes:X509<",
                    "><![CDATA[urn:oasis:names:tc:SAML:2.0:ac:classes:X509]]><",
                )
            }),
        ),
        ("CR LF line ends", Box::new(|d| d.replace('\n', "\r\n"))),
        (
            "other prefixes outside the assertion",
            Box::new(|d| {
                let d = d
                    .replace("soap:", "env:")
                    .replace("xmlns:soap=", "xmlns:env=");
                d.replace("wsse:", "o:").replace("xmlns:wsse=", "xmlns:o=")
            }),
        ),
    ];
    let signed = signer().sign(REQUEST);
    for (what, edit) in &edits {
        let doc = edit(&signed);
        assert_ne!(doc, signed, "{what}: the edit did nothing");
        match parse_at(&doc, now()) {
            Ok(request) => assert_eq!(request, expected_signed(), "{what}"),
            Err(e) => panic!("{what}: {e}"),
        }
        // Unsigned, the same edits read the same.
        assert_eq!(parse_ok(&edit(REQUEST)), expected(), "{what}, unsigned");
    }
}

/// Prefixes are the sender's choice; they are part of the canonical form, so these are signed
/// after the edit.
#[test]
fn any_prefix_reads_the_same_signed_or_not() {
    let variants = [
        (
            "saml instead of saml2",
            "saml",
            REQUEST
                .replace("saml2:", "saml:")
                .replace("xmlns:saml2=", "xmlns:saml="),
        ),
        (
            "prefixed HL7 values",
            "saml2",
            REQUEST
                .replace("xmlns=\"urn:hl7-org:v3\"", "xmlns:hl7=\"urn:hl7-org:v3\"")
                .replace("<id xmlns:hl7", "<hl7:id xmlns:hl7")
                .replace("></id>", "></hl7:id>")
                .replace("<Role ", "<hl7:Role ")
                .replace("</Role>", "</hl7:Role>")
                .replace(
                    "<consulting-facility-type-code ",
                    "<hl7:consulting-facility-type-code ",
                )
                .replace(
                    "</consulting-facility-type-code>",
                    "</hl7:consulting-facility-type-code>",
                )
                .replace("<PurposeOfUse ", "<hl7:PurposeOfUse ")
                .replace("</PurposeOfUse>", "</hl7:PurposeOfUse>"),
        ),
        (
            "a prefixed XCPD body",
            "saml2",
            replace(
                &replace(
                    &replace(
                        REQUEST,
                        "<PatientLocationQueryRequest xmlns=\"urn:ihe:iti:xcpd:2009\">",
                        "<xcpd:PatientLocationQueryRequest xmlns:xcpd=\"urn:ihe:iti:xcpd:2009\">",
                    ),
                    "</PatientLocationQueryRequest>",
                    "</xcpd:PatientLocationQueryRequest>",
                ),
                "<RequestedPatientId ",
                "<xcpd:RequestedPatientId ",
            ),
        ),
        (
            "no XML declaration",
            "saml2",
            replace(REQUEST, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", ""),
        ),
    ];
    for (what, saml, doc) in variants {
        assert_eq!(parse_ok(&doc), expected(), "{what}");
        // The edited assertion is still written in canonical form: sign it as it stands.
        let (open, close) = (
            format!("<{saml}:Assertion "),
            format!("</{saml}:Assertion>"),
        );
        let start = doc.find(&open).unwrap();
        let end = doc.find(&close).unwrap() + close.len();
        let after: &'static str = if saml == "saml" {
            "</saml:Issuer>"
        } else {
            "</saml2:Issuer>"
        };
        let signed = Signer { after, ..signer() }.sign_as(&doc, &doc[start..end]);
        assert_eq!(parse_ok(&signed), expected_signed(), "{what}, signed");
    }
}

/// One assertion written the way a careless signer might, and its exclusive canonical form
/// derived by hand from the rules of Exclusive XML Canonicalization 1.0 and Canonical XML 1.0:
/// - `saml` is declared on the envelope and redeclared on `Subject`: rendered once, on the
///   apex; `xmlns:unused` is dropped; `xmlns:xsi` moves to each element whose attribute uses it;
/// - `xs` is in the Reference's `InclusiveNamespaces PrefixList`, so it is rendered on the apex
///   although nothing in the assertion uses it;
/// - the HL7 default namespace declared on the prefixed `AttributeStatement` moves to each HL7
///   element; `originalText xmlns=""` keeps `xmlns=""` because its parent rendered a default;
/// - attributes sorted (no namespace first, then by namespace URI and not by prefix: `xsi:`
///   before `z:` (`urn:a`) before `a:` (`urn:z`)), double quotes, empty elements as pairs;
/// - `&#13;&#10;` in text becomes `&#xD;` and a newline, `&gt;` stays, `&quot;` in text becomes
///   `"`; in attributes `"` is `&quot;`, a tab `&#x9;` and a literal newline a space;
/// - the comment goes, the text on both sides of it stays; CDATA becomes text; the processing
///   instruction stays.
#[test]
fn the_canonical_form_is_the_one_derived_by_hand() {
    let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <soap:Header>
    <wsa:Action>urn:ihe:iti:2009:PatientLocationQuery</wsa:Action>
    <wsa:MessageID>urn:uuid:6a2f41a3-c54c-4c3b-8e5e-0b1f7d9c2e11</wsa:MessageID>
    <wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">
<saml:Assertion Version='2.0' IssueInstant="2025-06-02T09:59:30Z" ID="_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:unused="urn:unused"><saml:Issuer>urn:oid:2.16.840.1.113883.2.4.6.6.90000017</saml:Issuer>
  <!-- written by hand -->
  <saml:Subject xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:NameID>care &amp; cure &lt;team&gt; &quot;A"&#13;&#10;line 2</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"/></saml:Subject>
  <saml:Conditions NotOnOrAfter="2025-06-02T10:09:30Z" NotBefore="2025-06-02T09:59:30Z"><saml:AudienceRestriction><saml:Audience><![CDATA[urn:oid:2.16.840.1.113883.2.4.3.111.2.1]]></saml:Audience></saml:AudienceRestriction></saml:Conditions>
  <saml:AttributeStatement xmlns="urn:hl7-org:v3">
    <saml:Attribute NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" Name="urn:ihe:iti:xua:2017:subject:provider-identifier"><saml:AttributeValue><id root="2.16.528.1.1007.3.1" extension="000095254" xsi:type="II" assigningAuthorityName="CIBG"/></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml:AttributeValue><Role codeSystem="2.16.840.1.113883.2.4.15.111" code="01.015" displayName='Huisarts &quot;&amp;&quot; &#9;of
arts' xsi:type="CE"><originalText xmlns="">Huisarts</originalText></Role></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:nl:otv:names:tc:1.0:subject:provider-institution"><saml:AttributeValue><id extension="00000666" root="2.16.528.1.1007.3.3"/></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code"><saml:AttributeValue><consulting-facility-type-code xmlns:z="urn:a" xmlns:a="urn:z" a:k="2" z:k="1" xsi:type="CV" codeSystem="2.16.840.1.113883.2.4.15.1060" code="Z3"/></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml:AttributeValue><PurposeOfUse code="TREAT" codeSystem="2.16.840.1.113883.1.11.20448"/></saml:AttributeValue></saml:Attribute>
    <?otv-trace 42?>
  </saml:AttributeStatement>
</saml:Assertion>
    </wsse:Security>
  </soap:Header>
  <soap:Body>
    <PatientLocationQueryRequest xmlns="urn:ihe:iti:xcpd:2009">
      <RequestedPatientId extension="900186021" root="2.16.840.1.113883.2.4.6.3"/>
    </PatientLocationQueryRequest>
  </soap:Body>
</soap:Envelope>
"#;
    let canonical = r#"<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" xmlns:xs="http://www.w3.org/2001/XMLSchema" ID="_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21" IssueInstant="2025-06-02T09:59:30Z" Version="2.0"><saml:Issuer>urn:oid:2.16.840.1.113883.2.4.6.6.90000017</saml:Issuer>
  
  <saml:Subject><saml:NameID>care &amp; cure &lt;team&gt; "A"&#xD;
line 2</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"></saml:SubjectConfirmation></saml:Subject>
  <saml:Conditions NotBefore="2025-06-02T09:59:30Z" NotOnOrAfter="2025-06-02T10:09:30Z"><saml:AudienceRestriction><saml:Audience>urn:oid:2.16.840.1.113883.2.4.3.111.2.1</saml:Audience></saml:AudienceRestriction></saml:Conditions>
  <saml:AttributeStatement>
    <saml:Attribute Name="urn:ihe:iti:xua:2017:subject:provider-identifier" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue><id xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" assigningAuthorityName="CIBG" extension="000095254" root="2.16.528.1.1007.3.1" xsi:type="II"></id></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:oasis:names:tc:xacml:2.0:subject:role"><saml:AttributeValue><Role xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" code="01.015" codeSystem="2.16.840.1.113883.2.4.15.111" displayName="Huisarts &quot;&amp;&quot; &#x9;of arts" xsi:type="CE"><originalText xmlns="">Huisarts</originalText></Role></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:nl:otv:names:tc:1.0:subject:provider-institution"><saml:AttributeValue><id xmlns="urn:hl7-org:v3" extension="00000666" root="2.16.528.1.1007.3.3"></id></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code"><saml:AttributeValue><consulting-facility-type-code xmlns="urn:hl7-org:v3" xmlns:a="urn:z" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="urn:a" code="Z3" codeSystem="2.16.840.1.113883.2.4.15.1060" xsi:type="CV" z:k="1" a:k="2"></consulting-facility-type-code></saml:AttributeValue></saml:Attribute>
    <saml:Attribute Name="urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"><saml:AttributeValue><PurposeOfUse xmlns="urn:hl7-org:v3" code="TREAT" codeSystem="2.16.840.1.113883.1.11.20448"></PurposeOfUse></saml:AttributeValue></saml:Attribute>
    <?otv-trace 42?>
  </saml:AttributeStatement>
</saml:Assertion>"#;
    let signed = Signer {
        prefix_list: Some("xs"),
        after: "</saml:Issuer>",
        ..signer()
    }
    .sign_as(doc, canonical);
    assert_eq!(parse_ok(&signed), expected_signed());

    // Without the PrefixList the canonical form has no xmlns:xs, so this digest is wrong:
    // the prefix list is honoured, not ignored.
    let without_list = Signer {
        after: "</saml:Issuer>",
        ..signer()
    }
    .sign_as(doc, canonical);
    assert_eq!(
        parse_err(&without_list),
        WireError::Signature(SignatureProblem::DigestMismatch)
    );
}

/// Anyone can sign with a key of their own, so canonicalization runs on whatever a sender
/// builds: near the element limit, with a namespace declaration on every element, it still
/// takes well under the half second the hardening tests allow, even in a debug build.
#[test]
fn a_large_signed_assertion_is_checked_quickly() {
    let filler = "<saml2:Attribute xmlns:p=\"urn:p\" Name=\"urn:example:filler\" p:k=\"1\"></saml2:Attribute>"
        .repeat(9_000);
    let doc = replace(
        REQUEST,
        "<saml2:AttributeStatement>",
        &format!("<saml2:AttributeStatement>{filler}"),
    );
    let signed = signer().sign(&doc);
    let started = std::time::Instant::now();
    assert_eq!(parse_ok(&signed), expected_signed());
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(500),
        "took {took:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Refused signatures.

#[test]
fn a_changed_attribute_after_signing_is_refused() {
    let signed = signer().sign(REQUEST);
    for (what, from, to) in [
        (
            "consulter URA",
            "extension=\"00000666\"",
            "extension=\"00000667\"",
        ),
        ("purpose", "code=\"TREAT\"", "code=\"COC\""),
        (
            "audience",
            "<saml2:Audience>urn:oid:",
            "<saml2:Audience> urn:oid:",
        ),
        ("expiry", NOT_ON_OR_AFTER, "2025-06-02T11:09:30Z"),
    ] {
        let e = parse_err(&replace(&signed, from, to));
        assert_eq!(
            e,
            WireError::Signature(SignatureProblem::DigestMismatch),
            "{what}"
        );
        assert_eq!(
            e.to_string(),
            "signature digest does not match the assertion"
        );
    }
    // A signature value that is not the one over SignedInfo.
    let e = parse_err(
        &Signer {
            corrupt_signature: true,
            ..signer()
        }
        .sign(REQUEST),
    );
    assert_eq!(
        e.to_string(),
        "signature value does not verify with the key of the certificate in KeyInfo"
    );
    // SignedInfo changed after signing (here: the digest value it vouches for).
    let signed = signer().sign(REQUEST);
    let start = signed.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
    let mut tampered = signed.clone();
    tampered.replace_range(start..start + 4, "AAAA");
    assert_eq!(
        parse_err(&tampered),
        WireError::Signature(SignatureProblem::BadSignature)
    );
}

/// A second element with the assertion's ID elsewhere changes nothing: the Reference is checked
/// against the assertion that is read, never looked up.
#[test]
fn signature_wrapping_is_refused() {
    let signed = signer().sign(REQUEST);
    // The verified assertion moved out of the Security header, a forged one in its place.
    let original = assertion_of(&signed).to_owned();
    let forged = replace(
        &original,
        "extension=\"00000666\"",
        "extension=\"00000667\"",
    );
    let doc = replace(&signed, &original, &forged);
    let doc = replace(
        &doc,
        "<wsa:ReplyTo>",
        &format!("<wsa:Wrapper>{original}</wsa:Wrapper><wsa:ReplyTo>"),
    );
    assert_eq!(
        parse_err(&doc),
        WireError::Signature(SignatureProblem::DigestMismatch)
    );
    // Two assertions in the Security header are refused outright.
    let doc = replace(&signed, &original, &format!("{original}{original}"));
    assert_eq!(
        parse_err(&doc),
        WireError::Assertion(AssertionProblem::SeveralAssertions)
    );
}

#[test]
fn each_deviation_from_the_signature_profile_is_named() {
    let id = format!("#{ASSERTION_ID}");
    let cases: Vec<(Signer, String)> = vec![
        (
            Signer {
                reference_uri: "#_other".to_owned(),
                ..signer()
            },
            format!("signature Reference URI `#_other` does not point at the assertion (`{id}`)"),
        ),
        (
            Signer {
                reference_uri: String::new(),
                ..signer()
            },
            format!("signature Reference URI `` does not point at the assertion (`{id}`)"),
        ),
        (
            Signer {
                references: 2,
                ..signer()
            },
            "signature SignedInfo holds 2 References; otv accepts exactly one, to the assertion"
                .to_owned(),
        ),
        (
            Signer {
                references: 0,
                ..signer()
            },
            "signature SignedInfo holds 0 References; otv accepts exactly one, to the assertion"
                .to_owned(),
        ),
        (
            Signer {
                signature_method: "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                ..signer()
            },
            "signature SignatureMethod Algorithm `http://www.w3.org/2000/09/xmldsig#rsa-sha1` is \
             not supported; otv accepts only http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
                .to_owned(),
        ),
        (
            Signer {
                canonicalization: "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
                ..signer()
            },
            "signature CanonicalizationMethod Algorithm \
             `http://www.w3.org/TR/2001/REC-xml-c14n-20010315` is not supported; otv accepts \
             only http://www.w3.org/2001/10/xml-exc-c14n#"
                .to_owned(),
        ),
        (
            Signer {
                digest_method: "http://www.w3.org/2000/09/xmldsig#sha1",
                ..signer()
            },
            "signature DigestMethod Algorithm `http://www.w3.org/2000/09/xmldsig#sha1` is not \
             supported; otv accepts only http://www.w3.org/2001/04/xmlenc#sha256"
                .to_owned(),
        ),
        (
            Signer {
                transforms: vec![ENVELOPED],
                ..signer()
            },
            format!(
                "signature Reference Transforms `{ENVELOPED}` are not supported; otv accepts \
                 only {ENVELOPED} followed by {EXC_C14N}"
            ),
        ),
        (
            Signer {
                transforms: vec![EXC_C14N, ENVELOPED],
                ..signer()
            },
            format!(
                "signature Reference Transforms `{EXC_C14N} {ENVELOPED}` are not supported; otv \
                 accepts only {ENVELOPED} followed by {EXC_C14N}"
            ),
        ),
        (
            Signer {
                certificates: vec![],
                ..signer()
            },
            "signature KeyInfo holds no X509Data/X509Certificate; otv needs the signer's \
             certificate"
                .to_owned(),
        ),
        (
            Signer {
                certificates: vec![test_key().certificate.clone(); 2],
                ..signer()
            },
            "signature KeyInfo holds more than one X509Certificate; send only the signer's"
                .to_owned(),
        ),
        (
            Signer {
                certificates: vec![b"not a certificate".to_vec()],
                ..signer()
            },
            "signature X509Certificate is not a DER X.509 certificate".to_owned(),
        ),
        (
            Signer {
                certificates: vec![ecdsa_certificate()],
                ..signer()
            },
            "the signing certificate's key is not an RSA key (rsa-sha256)".to_owned(),
        ),
    ];
    for (signer, expected) in cases {
        let e = parse_err(&signer.sign(REQUEST));
        assert!(matches!(e, WireError::Signature(_)), "{e:?}");
        assert!(
            e.to_string().starts_with(&expected),
            "{e}\n  does not start with\n{expected}"
        );
    }
}

fn ecdsa_certificate() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    rcgen::CertificateParams::new(vec!["connector.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .der()
        .to_vec()
}

#[test]
fn broken_signature_elements_are_named() {
    let signed = signer().sign(REQUEST);
    let cases = [
        (
            replace(&signed, "<ds:SignatureValue>\n", "<ds:SignatureValue>\n*"),
            "signature SignatureValue is not base64",
        ),
        (
            replace(&signed, "<ds:DigestValue>", "<ds:DigestValue>*"),
            "signature DigestValue is not base64",
        ),
        (
            {
                let start = signed.find("<ds:KeyInfo>").unwrap();
                let end = signed.find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
                let mut d = signed.clone();
                d.replace_range(start..end, "");
                d
            },
            "the signature of the SAML assertion has no KeyInfo",
        ),
        (
            replace(
                &signed,
                "</ds:SignedInfo>",
                "</ds:SignedInfo><ds:SignedInfo/>",
            ),
            "the signature of the SAML assertion has more than one SignedInfo",
        ),
        (
            {
                let signature_start = signed.find("<ds:Signature ").unwrap();
                let signature_end =
                    signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
                let signature = signed[signature_start..signature_end].to_owned();
                replace(
                    &signed,
                    "</saml2:Subject>",
                    &format!("</saml2:Subject>{signature}"),
                )
            },
            "the SAML assertion holds more than one ds:Signature",
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(parse_err(&doc).to_string(), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// The assertion's time window and audience.

#[test]
fn the_time_window_allows_the_documented_clock_skew() {
    assert_eq!(CLOCK_SKEW_SECONDS, 60);
    let skew = TimeDelta::seconds(CLOCK_SKEW_SECONDS);
    let second = TimeDelta::seconds(1);
    let (not_before, not_on_or_after) = (at(NOT_BEFORE), at(NOT_ON_OR_AFTER));
    let signed = signer().sign(REQUEST);
    for doc in [REQUEST, signed.as_str()] {
        for ok in [
            not_before - skew,
            not_before,
            not_on_or_after - second,
            not_on_or_after + skew - second,
        ] {
            assert!(parse_at(doc, ok).is_ok(), "refused at {ok}");
        }
        let e = parse_err_at(doc, not_on_or_after + skew);
        assert_eq!(
            e.to_string(),
            "SAML assertion expired at 2025-06-02T10:09:30Z (NotOnOrAfter; 60 s clock skew \
             allowed)"
        );
        assert_eq!(
            e,
            WireError::Assertion(AssertionProblem::Expired {
                not_on_or_after,
                skew_seconds: 60
            })
        );
        let e = parse_err_at(doc, not_before - skew - second);
        assert_eq!(
            e.to_string(),
            "SAML assertion not valid before 2025-06-02T09:59:30Z (NotBefore; 60 s clock skew \
             allowed)"
        );
    }
}

#[test]
fn times_are_read_as_utc_in_any_xs_datetime_form() {
    for (written, now, accepted) in [
        // An offset is converted: 12:09:30+02:00 is 10:09:30Z.
        ("2025-06-02T12:09:30+02:00", "2025-06-02T10:10:29Z", true),
        ("2025-06-02T12:09:30+02:00", "2025-06-02T10:10:30Z", false),
        // No zone: UTC, as SAML requires.
        ("2025-06-02T10:09:30", "2025-06-02T10:10:29Z", true),
        ("2025-06-02T10:09:30.500Z", "2025-06-02T10:10:30Z", true),
    ] {
        let doc = replace(REQUEST, NOT_ON_OR_AFTER, written);
        assert_eq!(
            parse_at(&doc, at(now)).is_ok(),
            accepted,
            "{written} at {now}"
        );
    }
}

#[test]
fn conditions_errors_are_named() {
    let conditions_start = REQUEST.find("<saml2:Conditions").unwrap();
    let conditions_end = REQUEST.find("</saml2:Conditions>").unwrap() + "</saml2:Conditions>".len();
    let restriction_start = REQUEST.find("<saml2:AudienceRestriction>").unwrap();
    let restriction_end = REQUEST.find("</saml2:AudienceRestriction>").unwrap()
        + "</saml2:AudienceRestriction>".len();
    let without = |range: std::ops::Range<usize>| {
        let mut d = REQUEST.to_owned();
        d.replace_range(range, "");
        d
    };
    let cases = [
        (
            without(conditions_start..conditions_end),
            "the SAML assertion has no Conditions; otv needs NotOnOrAfter and an \
             AudienceRestriction",
        ),
        (
            replace(REQUEST, &format!(" NotOnOrAfter=\"{NOT_ON_OR_AFTER}\""), ""),
            "the SAML assertion's Conditions have no NotOnOrAfter",
        ),
        (
            replace(REQUEST, NOT_ON_OR_AFTER, "tomorrow"),
            "SAML Conditions NotOnOrAfter `tomorrow` is not an xs:dateTime",
        ),
        (
            without(restriction_start..restriction_end),
            "the SAML assertion has no AudienceRestriction",
        ),
        (
            replace(
                REQUEST,
                "<saml2:Audience>urn:oid:2.16.840.1.113883.2.4.3.111.2.1</saml2:Audience>",
                "<saml2:Audience>https://elsewhere.example/</saml2:Audience>",
            ),
            "SAML Audience `https://elsewhere.example/` is not this service \
             (`urn:oid:2.16.840.1.113883.2.4.3.111.2.1`)",
        ),
        (
            // Every AudienceRestriction must be met (SAML 2.0 core §2.5.1.4).
            replace(
                REQUEST,
                "</saml2:AudienceRestriction>",
                "</saml2:AudienceRestriction><saml2:AudienceRestriction><saml2:Audience>a</saml2:Audience><saml2:Audience>b</saml2:Audience></saml2:AudienceRestriction>",
            ),
            "SAML Audience `a`, `b` is not this service (`urn:oid:2.16.840.1.113883.2.4.3.111.2.1`)",
        ),
    ];
    for (doc, expected) in cases {
        let e = parse_err(&doc);
        assert!(matches!(e, WireError::Assertion(_)), "{e:?}");
        assert_eq!(e.to_string(), expected);
    }

    // Within one restriction, any one audience may be this service.
    let doc = replace(
        REQUEST,
        "<saml2:Audience>urn:oid:",
        "<saml2:Audience>https://elsewhere.example/</saml2:Audience><saml2:Audience>urn:oid:",
    );
    assert_eq!(parse_ok(&doc), expected());
    // The audience is compared as it is configured: another service refuses this assertion.
    let e = parse_open_question(REQUEST.as_bytes(), now(), "https://otv.example/").unwrap_err();
    assert_eq!(
        e.to_string(),
        "SAML Audience `urn:oid:2.16.840.1.113883.2.4.3.111.2.1` is not this service \
         (`https://otv.example/`)"
    );
}

// ---------------------------------------------------------------------------------------------
// The consulter's attributes.

#[test]
fn each_required_attribute_missing_is_named() {
    for name in [
        "urn:oasis:names:tc:xacml:2.0:subject:role",
        "urn:ihe:iti:xua:2017:subject:provider-identifier",
        "urn:nl:otv:names:tc:1.0:subject:provider-institution",
        "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code",
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    ] {
        let doc = replace(REQUEST, attribute_of(REQUEST, name), "");
        let e = parse_err(&doc);
        assert_eq!(e.to_string(), format!("attribute {name}: missing"));
        assert_eq!(
            e,
            WireError::Attribute {
                attribute: name,
                problem: AttributeProblem::Missing
            }
        );
        // The same holds for a signed assertion without it.
        assert_eq!(parse_err(&signer().sign(&doc)), e);
    }
}

#[test]
fn the_mandated_assistant_is_read_when_present() {
    let mandated = r#"<saml2:Attribute Name="urn:nl:otv:names:tc:1.0:subject:mandated" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">
            <saml2:AttributeValue>
              <id xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" assigningAuthorityName="CIBG" extension="000012345" root="2.16.528.1.1007.3.1" xsi:type="II"></id>
            </saml2:AttributeValue>
          </saml2:Attribute>
          "#;
    let doc = replace(
        REQUEST,
        "<saml2:Attribute Name=\"urn:oasis:names:tc:xacml:2.0:subject:role\"",
        &format!("{mandated}<saml2:Attribute Name=\"urn:oasis:names:tc:xacml:2.0:subject:role\""),
    );
    let want = OpenQuestionRequest {
        mandated: Some(UziNumber::parse("000012345").unwrap()),
        ..expected()
    };
    assert_eq!(parse_ok(&doc), want);
    assert_eq!(
        parse_ok(&signer().sign(&doc)),
        OpenQuestionRequest {
            signed: true,
            signer_certificate: Some(test_key().certificate.clone()),
            ..want
        }
    );
    let wrong = replace(&doc, "extension=\"000012345\"", "extension=\"UZI-12345\"");
    assert_eq!(
        parse_err(&wrong).to_string(),
        "attribute urn:nl:otv:names:tc:1.0:subject:mandated: a UZI number is 1 to 12 digits"
    );
}

#[test]
fn attribute_values_are_checked_like_the_closed_questions() {
    let role = "urn:oasis:names:tc:xacml:2.0:subject:role";
    let institution = "urn:nl:otv:names:tc:1.0:subject:provider-institution";
    let kind = "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code";
    let purpose = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse";
    let edit = |name: &str, from: &str, to: &str| {
        let attribute = attribute_of(REQUEST, name);
        replace(REQUEST, attribute, &replace(attribute, from, to))
    };
    let cases = [
        (
            edit(
                institution,
                "root=\"2.16.528.1.1007.3.3\"",
                "root=\"1.2.3\"",
            ),
            format!("attribute {institution}: root `1.2.3` is not 2.16.528.1.1007.3.3 (URA)"),
        ),
        (
            edit(institution, "extension=\"00000666\"", "extension=\"666\""),
            format!("attribute {institution}: a URA is 8 digits"),
        ),
        (
            edit(kind, "code=\"Z3\"", "code=\"z3\""),
            format!(
                "attribute {kind}: an organisation type is a capital letter and a digit, e.g. Z3"
            ),
        ),
        (
            edit(
                role,
                "codeSystem=\"2.16.840.1.113883.2.4.15.111\"",
                "codeSystem=\"1.2.3\"",
            ),
            format!(
                "attribute {role}: codeSystem `1.2.3` is not 2.16.840.1.113883.2.4.15.111 (RoleCodeNL)"
            ),
        ),
        (
            edit(purpose, "code=\"TREAT\"", "code=\"ETREAT\""),
            "purpose of use `ETREAT` is not TREAT or COC".to_owned(),
        ),
        (
            edit(
                role,
                "<Role xmlns=\"urn:hl7-org:v3\"",
                "<Role xmlns=\"urn:example:not-hl7\"",
            ),
            format!(
                "attribute {role}: the AttributeValue holds no HL7v3 element (namespace \
                 urn:hl7-org:v3)"
            ),
        ),
        (
            edit(
                role,
                "</saml2:AttributeValue>",
                "</saml2:AttributeValue><saml2:AttributeValue/>",
            ),
            format!("attribute {role}: has more than one AttributeValue"),
        ),
        (
            replace(
                REQUEST,
                "</saml2:AttributeStatement>",
                &format!(
                    "</saml2:AttributeStatement><saml2:AttributeStatement>{}</saml2:AttributeStatement>",
                    attribute_of(REQUEST, role)
                ),
            ),
            format!("attribute {role}: appears more than once"),
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(parse_err(&doc).to_string(), expected);
    }

    let coc = edit(purpose, "code=\"TREAT\"", "code=\"COC\"");
    assert_eq!(parse_ok(&coc).purpose, Purpose::Coc);
}

// ---------------------------------------------------------------------------------------------
// The frame and the body.

#[test]
fn frame_and_body_errors_are_named() {
    let security_start = REQUEST.find("<wsse:Security").unwrap();
    let security_end = REQUEST.find("</wsse:Security>").unwrap() + "</wsse:Security>".len();
    let security = &REQUEST[security_start..security_end];
    let cases = [
        (
            replace(REQUEST, security, ""),
            "the SOAP Header has no wsse:Security (namespace \
             http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd) \
             holding the SAML assertion",
        ),
        (
            replace(REQUEST, security, &format!("{security}{security}")),
            "the SOAP Header has more than one wsse:Security",
        ),
        (
            replace(REQUEST, assertion_of(REQUEST), ""),
            "wsse:Security holds no SAML 2.0 Assertion (namespace \
             urn:oasis:names:tc:SAML:2.0:assertion)",
        ),
        (
            replace(REQUEST, " ID=\"_8e1c0b52d3f34f0f9a6b2d7c5e4a3b21\"", ""),
            "the SAML assertion has no ID",
        ),
        (
            replace(
                REQUEST,
                ">urn:ihe:iti:2009:PatientLocationQuery<",
                ">XACMLAuthorizationDecisionQueryRequest<",
            ),
            "WS-Addressing Action `XACMLAuthorizationDecisionQueryRequest` is not \
             urn:ihe:iti:2009:PatientLocationQuery",
        ),
        (
            replace(
                REQUEST,
                "<PatientLocationQueryRequest xmlns=\"urn:ihe:iti:xcpd:2009\">",
                "<PatientLocationQueryRequest xmlns=\"urn:ihe:iti:xcpd:2008\">",
            ),
            "the SOAP Body holds `{urn:ihe:iti:xcpd:2008}PatientLocationQueryRequest`, not a \
             PatientLocationQueryRequest (namespace urn:ihe:iti:xcpd:2009)",
        ),
        (
            replace(
                REQUEST,
                "</PatientLocationQueryRequest>",
                "<RequestedPatientId extension=\"1\" root=\"1\"/></PatientLocationQueryRequest>",
            ),
            "the PatientLocationQueryRequest must hold exactly one RequestedPatientId \
             (namespace urn:ihe:iti:xcpd:2009)",
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(parse_err(&doc).to_string(), expected);
    }
}

/// PRODUCT.md §13: a BSN never appears in an error, whatever is wrong with it.
#[test]
fn patient_id_errors_never_show_digits() {
    let cases = [
        (
            "extension=\"900186021\"",
            "extension=\"900186022\"",
            "RequestedPatientId: a BSN must pass the 11-test",
        ),
        (
            "extension=\"900186021\"",
            "extension=\"90018602\"",
            "RequestedPatientId: a BSN is 9 digits",
        ),
        (
            "extension=\"900186021\"",
            "extension=\"9001860210\"",
            "RequestedPatientId: a BSN is 9 digits",
        ),
        (
            " extension=\"900186021\"",
            "",
            "RequestedPatientId: the HL7v3 value has no `extension`",
        ),
        (
            "root=\"2.16.840.1.113883.2.4.6.3\"",
            "root=\"900186021\"",
            "RequestedPatientId: root `#…#` is not 2.16.840.1.113883.2.4.6.3 (BSN)",
        ),
        (
            "assigningAuthorityName=\"NLMINBIZA\"",
            "assigningAuthorityName=\"900186021\"",
            "RequestedPatientId assigningAuthorityName `#…#` is not NLMINBIZA",
        ),
    ];
    for (from, to, expected) in cases {
        let e = parse_err(&replace(REQUEST, from, to));
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("900186"), "{shown}");
        assert_eq!(e.to_string(), expected);
    }
    // Without assigningAuthorityName the root alone says it is a BSN.
    let doc = replace(REQUEST, "assigningAuthorityName=\"NLMINBIZA\" ", "");
    assert_eq!(parse_ok(&doc), expected());
}

#[test]
fn hostile_documents_are_refused_by_the_hardened_reader() {
    let doctype = "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n";
    let doc = replace(
        REQUEST,
        "<soap:Envelope ",
        &format!("{doctype}<soap:Envelope "),
    );
    assert_eq!(parse_err(&doc), WireError::DocumentTypeDeclaration);
    let doc = replace(
        &signer().sign(REQUEST),
        "<saml2:Issuer>urn",
        "<saml2:Issuer>&e;urn",
    );
    assert!(matches!(parse_err(&doc), WireError::EntityReference(_)));
    assert!(matches!(
        parse_err("<soap:Envelope"),
        WireError::Malformed { .. }
    ));
}

// ---------------------------------------------------------------------------------------------
// The response.

const REQUEST_ID: &str = "urn:uuid:6a2f41a3-c54c-4c3b-8e5e-0b1f7d9c2e11";
const RESPONSE_ID: Uuid = Uuid::from_u128(0x0192f0c1_7a3e_7c4d_9e5f_a1b2c3d4e5f7);

fn two_locations() -> Vec<Location> {
    vec![
        Location {
            home_community_id: "urn:oid:2.16.840.1.113883.2.4.6.6.1".to_owned(),
            source_id: "urn:oid:2.16.840.1.113883.2.4.6.6.90000017".to_owned(),
            holder_ura: Ura::parse("00000659").unwrap(),
            data_category: DataCategory::parse("GGC002").unwrap(),
        },
        Location {
            home_community_id: "urn:oid:2.16.840.1.113883.2.4.3.164.4".to_owned(),
            source_id: "urn:oid:2.16.840.1.113883.2.4.3.164.4.1234".to_owned(),
            holder_ura: Ura::parse("00005098").unwrap(),
            data_category: DataCategory::parse("GGC013").unwrap(),
        },
    ]
}

fn response(request_id: &str, locations: &[Location]) -> String {
    open_question_response(
        request_id,
        RESPONSE_ID,
        &Bsn::parse(FIXTURE_BSN).unwrap(),
        locations,
    )
}

#[test]
fn the_response_matches_its_golden_files() {
    assert_golden(
        "open-question-response.xml",
        &response(REQUEST_ID, &two_locations()),
    );
    assert_golden(
        "open-question-response-empty.xml",
        &response(REQUEST_ID, &[]),
    );
}

const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://www.w3.org/2005/08/addressing";
const XCPD: &str = "urn:ihe:iti:xcpd:2009";

/// One element of a `PatientLocationResponse` as a client reads it: local name, XML
/// attributes, text.
type Part = (String, BTreeMap<String, String>, String);

/// What a client sees in a response, read with quick-xml directly.
#[derive(Debug, Default)]
struct Seen {
    action: String,
    message_id: String,
    relates_to: String,
    /// The path of the `PatientLocationQueryResponse` element.
    response_path: Vec<(String, String)>,
    locations: Vec<Vec<Part>>,
}

fn read_response(xml: &str) -> Seen {
    let mut reader = NsReader::from_str(xml);
    let mut seen = Seen::default();
    let mut path: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.into_inner().to_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().into_inner().to_owned();
                let attributes: BTreeMap<String, String> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        (
                            a.key.into_inner().to_owned(),
                            a.normalized_value(XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned(),
                        )
                    })
                    .collect();
                if (ns.as_str(), local.as_str()) == (XCPD, "PatientLocationQueryResponse") {
                    seen.response_path = path.clone();
                }
                if (ns.as_str(), local.as_str()) == (XCPD, "PatientLocationResponse") {
                    seen.locations.push(Vec::new());
                } else if ns == XCPD
                    && path
                        .last()
                        .is_some_and(|(_, l)| l == "PatientLocationResponse")
                {
                    seen.locations.last_mut().unwrap().push((
                        local.clone(),
                        attributes,
                        String::new(),
                    ));
                }
                text.clear();
                if matches!(event, Event::Start(_)) {
                    path.push((ns, local));
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => text.push(match r.into_inner().as_ref() {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                other => panic!("entity {other}"),
            }),
            Event::End(_) => {
                let (ns, local) = path.pop().unwrap();
                let value = std::mem::take(&mut text);
                match (ns.as_str(), local.as_str()) {
                    (WSA, "Action") => seen.action = value,
                    (WSA, "MessageID") => seen.message_id = value,
                    (WSA, "RelatesTo") => seen.relates_to = value,
                    (XCPD, "HomeCommunityId" | "SourceId") => {
                        seen.locations.last_mut().unwrap().last_mut().unwrap().2 = value;
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    seen
}

fn part(local: &str, attributes: &[(&str, &str)], text: &str) -> Part {
    (
        local.to_owned(),
        attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        text.to_owned(),
    )
}

#[test]
fn a_client_reads_one_location_per_holder() {
    let seen = read_response(&response(REQUEST_ID, &two_locations()));
    assert_eq!(seen.action, "urn:ihe:iti:2009:PatientLocationQueryResponse");
    assert_eq!(seen.message_id, format!("urn:uuid:{RESPONSE_ID}"));
    assert_eq!(seen.relates_to, REQUEST_ID);
    assert_eq!(
        seen.response_path,
        [
            (SOAP.to_owned(), "Envelope".to_owned()),
            (SOAP.to_owned(), "Body".to_owned())
        ]
    );
    let patient = [
        ("root", "2.16.840.1.113883.2.4.6.3"),
        ("extension", FIXTURE_BSN),
        ("assigningAuthorityName", "NLMINBIZA"),
    ];
    let location = |home: &str, source: &str, ura: &str, category: &str| {
        vec![
            part("HomeCommunityId", &[], home),
            part("CorrespondingPatientId", &patient, ""),
            part("RequestedPatientId", &patient, ""),
            part("SourceId", &[], source),
            part(
                "author-institution",
                &[("root", "2.16.528.1.1007.3.3"), ("extension", ura)],
                "",
            ),
            part(
                "event-code",
                &[
                    ("code", category),
                    ("codeSystem", "2.16.840.1.113883.2.4.3.111.5.10.1"),
                ],
                "",
            ),
        ]
    };
    assert_eq!(
        seen.locations,
        vec![
            location(
                "urn:oid:2.16.840.1.113883.2.4.6.6.1",
                "urn:oid:2.16.840.1.113883.2.4.6.6.90000017",
                "00000659",
                "GGC002"
            ),
            location(
                "urn:oid:2.16.840.1.113883.2.4.3.164.4",
                "urn:oid:2.16.840.1.113883.2.4.3.164.4.1234",
                "00005098",
                "GGC013"
            ),
        ]
    );
}

#[test]
fn an_empty_response_has_no_locations() {
    let seen = read_response(&response(REQUEST_ID, &[]));
    assert_eq!(seen.relates_to, REQUEST_ID);
    assert_eq!(
        seen.response_path.len(),
        2,
        "PatientLocationQueryResponse present"
    );
    assert!(seen.locations.is_empty());
}

#[test]
fn sender_text_in_the_response_is_escaped() {
    let nasty = "urn:x:<a href=\"'\">&amp;</a>";
    let mut locations = two_locations();
    locations[0].home_community_id = "urn:oid:1&2<3".to_owned();
    let seen = read_response(&response(nasty, &locations));
    assert_eq!(seen.relates_to, nasty);
    assert_eq!(seen.locations[0][0].2, "urn:oid:1&2<3");
}

#[test]
fn a_parsed_request_round_trips_into_a_response() {
    let request = parse_ok(&signer().sign(REQUEST));
    let xml = open_question_response(
        &request.message_id,
        RESPONSE_ID,
        &request.bsn,
        &two_locations(),
    );
    let seen = read_response(&xml);
    assert_eq!(seen.relates_to, request.message_id);
    assert_eq!(seen.locations.len(), 2);
}
