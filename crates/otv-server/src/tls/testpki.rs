//! A test PKI, for `otv sandbox` and for tests: a CA, a server certificate, and UZI-style client
//! certificates issued by it. Never for production: keys are generated in memory and handed out
//! as PEM.
//!
//! Client certificates look like UZI server certificates where it matters to otv: the UZI
//! otherName `2.5.5.5` (IA5String, as the UZI-register writes it, or UTF8String), optionally
//! the `permanentIdentifier` with the URA, subject `serialNumber` = UZI number, extended key
//! usage clientAuth. The subjectAltName is written by hand (rcgen can only write otherName
//! values as UTF8String); everything else is rcgen's.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use super::certificate::sha256_hex;
use super::der;

/// The UZI-register's CA OID that sandbox UZI strings start with (UZI server certificates).
pub const UZI_SERVER_CA_OID: &str = "2.16.528.1.1003.1.3.5.5.2";

/// The UZI string of a server certificate: `<CA OID>-1-<UZI nr>-S-<URA>-00.000-<AGB>`.
pub fn uzi_server_string(uzi_number: &str, ura: &str, agb: &str) -> String {
    format!("{UZI_SERVER_CA_OID}-1-{uzi_number}-S-{ura}-00.000-{agb}")
}

/// How an otherName string is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringEncoding {
    /// IA5String, as the UZI-register writes it.
    Ia5,
    /// UTF8String, as some test CAs (and rcgen) write it.
    Utf8,
}

/// One subjectAltName otherName of a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtherName {
    /// `2.5.5.5` with the given string (normally [`uzi_server_string`]; anything for tests).
    Uzi {
        /// The string.
        value: String,
        /// Its ASN.1 string type.
        encoding: StringEncoding,
    },
    /// `permanentIdentifier` (RFC 4043). Issuing panics if `assigner` is not a dotted OID.
    PermanentIdentifier {
        /// identifierValue.
        value: Option<String>,
        /// assigner, e.g. [`super::URA_ASSIGNER_OID`].
        assigner: Option<String>,
    },
}

impl OtherName {
    /// The permanentIdentifier a UZI server certificate carries for `ura`.
    pub fn ura_permanent_identifier(ura: &str) -> OtherName {
        OtherName::PermanentIdentifier {
            value: Some(ura.into()),
            assigner: Some(super::URA_ASSIGNER_OID.into()),
        }
    }
}

/// What goes into a client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSpec {
    /// Subject commonName.
    pub common_name: String,
    /// Subject organizationName.
    pub organisation: Option<String>,
    /// Subject serialNumber (the UZI number on UZI certificates).
    pub serial_number: Option<String>,
    /// subjectAltName otherNames; none: no subjectAltName at all.
    pub other_names: Vec<OtherName>,
}

impl ClientSpec {
    /// A UZI-style server certificate for `ura`: the UZI otherName as IA5String and the URA as
    /// permanentIdentifier, as certificates issued since November 2023 have them.
    pub fn uzi(
        common_name: &str,
        organisation: &str,
        uzi_number: &str,
        ura: &str,
        agb: &str,
    ) -> Self {
        ClientSpec {
            common_name: common_name.into(),
            organisation: Some(organisation.into()),
            serial_number: Some(uzi_number.into()),
            other_names: vec![
                OtherName::Uzi {
                    value: uzi_server_string(uzi_number, ura, agb),
                    encoding: StringEncoding::Ia5,
                },
                OtherName::ura_permanent_identifier(ura),
            ],
        }
    }

    /// A client certificate without subjectAltName (and so without URA).
    pub fn plain(common_name: &str, organisation: &str) -> Self {
        ClientSpec {
            common_name: common_name.into(),
            organisation: Some(organisation.into()),
            serial_number: None,
            other_names: Vec::new(),
        }
    }
}

/// A certificate and its private key, as PEM, with the certificate's DER.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
}

impl Issued {
    /// SHA-256 of the certificate, lower-case hex (the connector allow-list key).
    pub fn sha256(&self) -> String {
        sha256_hex(&self.der)
    }

    /// Certificate and key in one PEM text, as some clients want them.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// A certificate authority that issues test certificates.
pub struct TestCa {
    certificate: Issued,
    issuer: Issuer<'static, KeyPair>,
}

/// rcgen's error.
pub type Error = rcgen::Error;

impl TestCa {
    /// A new self-signed CA with the given commonName, valid from yesterday for 10 years.
    pub fn new(common_name: &str) -> Result<TestCa, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name, Some("otv test PKI"), None)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 10);
        let certificate = params.self_signed(&key)?;
        let issued = Issued {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        };
        Ok(TestCa {
            certificate: issued,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA's own certificate and key.
    pub fn certificate(&self) -> &Issued {
        &self.certificate
    }

    /// A TLS server certificate (serverAuth) for DNS names and IP addresses, e.g.
    /// `["localhost", "127.0.0.1"]`; the first is the commonName.
    pub fn server_certificate(&self, names: &[&str]) -> Result<Issued, Error> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
        params.distinguished_name =
            name(names.first().copied().unwrap_or("otv"), Some("otv"), None)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, 5);
        self.issue(params)
    }

    /// A TLS client certificate (clientAuth) as `spec` describes.
    pub fn client_certificate(&self, spec: &ClientSpec) -> Result<Issued, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(
            &spec.common_name,
            spec.organisation.as_deref(),
            spec.serial_number.as_deref(),
        )?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if !spec.other_names.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 17],
                    subject_alt_name(&spec.other_names),
                ));
        }
        validity(&mut params, 5);
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, Error> {
        self.issue_with(params, KeyPair::generate()?)
    }

    fn issue_with(&self, params: CertificateParams, key: KeyPair) -> Result<Issued, Error> {
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().to_vec(),
        })
    }
}

fn name(
    common_name: &str,
    organisation: Option<&str>,
    serial: Option<&str>,
) -> Result<DistinguishedName, Error> {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "NL");
    if let Some(o) = organisation {
        dn.push(DnType::OrganizationName, o);
    }
    if let Some(serial) = serial {
        // X.520 serialNumber (2.5.4.5): the UZI number on UZI certificates.
        dn.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            rcgen::DnValue::PrintableString(serial.try_into()?),
        );
    }
    dn.push(DnType::CommonName, common_name);
    Ok(dn)
}

/// From yesterday (clock skew) for `years` years.
fn validity(params: &mut CertificateParams, years: i32) {
    use chrono::Datelike;
    let from = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    params.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    // The 1st of the month: every year has one.
    params.not_after = rcgen::date_time_ymd(from.year() + years, from.month() as u8, 1);
}

/// The DER of a subjectAltName extension value holding `names`.
fn subject_alt_name(names: &[OtherName]) -> Vec<u8> {
    let mut general_names = Vec::new();
    for other in names {
        let (type_id, value) = match other {
            OtherName::Uzi { value, encoding } => {
                let tag = match encoding {
                    StringEncoding::Ia5 => der::IA5_STRING,
                    StringEncoding::Utf8 => der::UTF8_STRING,
                };
                (&[2u64, 5, 5, 5][..], der::write(tag, value.as_bytes()))
            }
            OtherName::PermanentIdentifier { value, assigner } => {
                let mut content = Vec::new();
                if let Some(value) = value {
                    content.extend(der::write(der::UTF8_STRING, value.as_bytes()));
                }
                if let Some(assigner) = assigner {
                    let arcs: Vec<u64> = assigner
                        .split('.')
                        .map(|arc| arc.parse().expect("assigner is a dotted OID"))
                        .collect();
                    content.extend(der::write(der::OID, &der::oid_content(&arcs)));
                }
                (
                    &[1u64, 3, 6, 1, 5, 5, 7, 8, 3][..],
                    der::write(der::SEQUENCE, &content),
                )
            }
        };
        // otherName: [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }
        let mut other_name = der::write(der::OID, &der::oid_content(type_id));
        other_name.extend(der::write(der::CONTEXT_0, &value));
        general_names.extend(der::write(der::CONTEXT_0, &other_name));
    }
    der::write(der::SEQUENCE, &general_names)
}

// --- Enrolment tokens (helper A) -------------------------------------------------------------

/// The CA OID that sandbox UZI-card strings start with (a test value in the UZI-register's
/// arc; production cards name their own CA).
pub const UZI_CARD_CA_OID: &str = "2.16.528.1.1003.1.3.5.5.1";

/// The UZI string of a professional's UZI card (zorgverlenerpas, card type `Z`):
/// `<CA OID>-1-<UZI nr>-Z-<URA>-<role>-<AGB>`; the fifth field is the URA, as on server
/// certificates.
pub fn uzi_card_string(uzi_number: &str, ura: &str, role: &str, agb: &str) -> String {
    format!("{UZI_CARD_CA_OID}-1-{uzi_number}-Z-{ura}-{role}-{agb}")
}

pub use crate::assisted::token::{Algorithm, Factor};

/// A key that signs enrolment tokens, with its certificate chain (`x5c`: the signing
/// certificate, then the CA's).
#[derive(Debug, Clone)]
pub struct TokenSigner {
    /// The signing certificate and its key.
    pub leaf: Issued,
    /// `x5c`: DER certificates, the signing certificate first.
    pub chain: Vec<Vec<u8>>,
    /// The algorithm it signs with.
    pub algorithm: Algorithm,
}

/// The claims of a test token.
#[derive(Debug, Clone)]
pub struct TokenClaims {
    /// `ura`.
    pub ura: String,
    /// `bsn` (digits).
    pub bsn: String,
    /// `factor`.
    pub factor: Factor,
    /// `iat`.
    pub iat: chrono::DateTime<chrono::Utc>,
    /// `exp`.
    pub exp: chrono::DateTime<chrono::Utc>,
    /// `jti`.
    pub jti: String,
}

impl TokenClaims {
    /// The claims as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "ura": self.ura,
            "bsn": self.bsn,
            "iat": self.iat.timestamp(),
            "exp": self.exp.timestamp(),
            "jti": self.jti,
            "factor": self.factor.as_str(),
        })
    }
}

/// Signing failed: the key does not fit the algorithm.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct SignError(String);

impl TokenSigner {
    /// A signer from PEM: the certificate chain (signing certificate first) and its PKCS#8
    /// key. ES256 for an EC key; RS256 for an RSA key unless `algorithm` says PS256.
    pub fn from_pem(
        chain_pem: &str,
        key_pem: &str,
        algorithm: Option<Algorithm>,
    ) -> Result<TokenSigner, SignError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| SignError(format!("certificate PEM: {e}")))?;
        let first = chain
            .first()
            .ok_or_else(|| SignError("no certificate in the chain PEM".into()))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| SignError(format!("key PEM: {e}")))?;
        let rsa = key.algorithm() == &rcgen::PKCS_RSA_SHA256
            || key.algorithm() == &rcgen::PKCS_RSA_SHA384
            || key.algorithm() == &rcgen::PKCS_RSA_SHA512;
        let algorithm = match (algorithm, rsa) {
            (None, false) => Algorithm::Es256,
            (None, true) => Algorithm::Rs256,
            (Some(a), _) => a,
        };
        Ok(TokenSigner {
            leaf: Issued {
                cert_pem: chain_pem.to_owned(),
                key_pem: key_pem.to_owned(),
                der: first.clone(),
            },
            chain,
            algorithm,
        })
    }

    /// The JWS header: `alg`, `typ` and `x5c`.
    pub fn header(&self) -> serde_json::Value {
        use base64::Engine;
        let x5c: Vec<String> = self
            .chain
            .iter()
            .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
            .collect();
        serde_json::json!({ "alg": self.algorithm.as_str(), "typ": "JWT", "x5c": x5c })
    }

    /// A compact JWS of `claims` with this signer's header.
    pub fn token(&self, claims: &TokenClaims) -> String {
        self.sign(&self.header(), &claims.json())
            .expect("the signer's own key signs")
    }

    /// A compact JWS of any header and claims, signed with this key by this signer's
    /// algorithm (whatever `alg` the header names: for tests of refusals).
    pub fn sign(
        &self,
        header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, SignError> {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{self, EcdsaKeyPair, RsaKeyPair};
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let key = KeyPair::from_pem(&self.leaf.key_pem).map_err(|e| SignError(e.to_string()))?;
        let pkcs8 = key.serialize_der();
        let rng = SystemRandom::new();
        let bad = |e: &dyn std::fmt::Display| SignError(e.to_string());
        let signature = match self.algorithm {
            Algorithm::Es256 => {
                let pair =
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                        .map_err(|e| bad(&e))?;
                pair.sign(&rng, input.as_bytes())
                    .map_err(|e| bad(&e))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::Ps256 | Algorithm::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(|e| bad(&e))?;
                let padding: &dyn signature::RsaEncoding = if self.algorithm == Algorithm::Ps256 {
                    &signature::RSA_PSS_SHA256
                } else {
                    &signature::RSA_PKCS1_SHA256
                };
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, input.as_bytes(), &mut out)
                    .map_err(|e| bad(&e))?;
                out
            }
        };
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// A test issuer of enrolment tokens: a UZI-card CA (the professionals' cards) and a
/// WID-issuer CA (keys certified after checking an identity document).
pub struct EnrolmentIssuer {
    uzi_card_ca: TestCa,
    wid_ca: TestCa,
}

impl EnrolmentIssuer {
    /// Two new CAs.
    pub fn new() -> Result<EnrolmentIssuer, Error> {
        Ok(EnrolmentIssuer {
            uzi_card_ca: TestCa::new("otv test UZI-card CA")?,
            wid_ca: TestCa::new("otv test WID-issuer CA")?,
        })
    }

    /// The UZI-card CA's certificate (a trust anchor for factor `uzi-pas`).
    pub fn uzi_card_ca(&self) -> &Issued {
        self.uzi_card_ca.certificate()
    }

    /// The WID-issuer CA's certificate (a trust anchor for factor `wid`).
    pub fn wid_ca(&self) -> &Issued {
        self.wid_ca.certificate()
    }

    /// A professional's UZI card for `ura`: the UZI otherName (IA5String) with card type `Z`,
    /// subject serialNumber = the UZI number, extended key usage clientAuth, a key for
    /// `algorithm`.
    pub fn uzi_card(
        &self,
        ura: &str,
        uzi_number: &str,
        algorithm: Algorithm,
    ) -> Result<TokenSigner, Error> {
        let spec = ClientSpec {
            common_name: format!("Zorgverlener {uzi_number}"),
            organisation: Some(format!("Zorgaanbieder {ura}")),
            serial_number: Some(uzi_number.to_owned()),
            other_names: vec![OtherName::Uzi {
                value: uzi_card_string(uzi_number, ura, "01.015", "01000001"),
                encoding: StringEncoding::Ia5,
            }],
        };
        self.uzi_card_with(&spec, algorithm)
    }

    /// A card certificate as `spec` says (e.g. without URA, for tests of refusals).
    pub fn uzi_card_with(
        &self,
        spec: &ClientSpec,
        algorithm: Algorithm,
    ) -> Result<TokenSigner, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name = name(
            &spec.common_name,
            spec.organisation.as_deref(),
            spec.serial_number.as_deref(),
        )?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if !spec.other_names.is_empty() {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 17],
                    subject_alt_name(&spec.other_names),
                ));
        }
        validity(&mut params, 5);
        signer(&self.uzi_card_ca, params, algorithm)
    }

    /// A key certified by the WID issuer (no URA, no extended key usage).
    pub fn wid_key(&self, algorithm: Algorithm) -> Result<TokenSigner, Error> {
        let mut params = CertificateParams::default();
        params.distinguished_name =
            name("WID-verified identity", Some("otv test WID issuer"), None)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        validity(&mut params, 5);
        signer(&self.wid_ca, params, algorithm)
    }

    /// A token for patient `bsn` at provider `ura`, signed (ES256) with a new UZI card of that
    /// URA (`uzi-pas`) or a new WID key (`wid`). Panics if a certificate cannot be made.
    pub fn token(
        &self,
        ura: &otv_core::Ura,
        bsn: &otv_core::Bsn,
        factor: Factor,
        iat: chrono::DateTime<chrono::Utc>,
        exp: chrono::DateTime<chrono::Utc>,
        jti: &str,
    ) -> String {
        let signer = match factor {
            Factor::UziPas => self.uzi_card(ura.as_str(), "900010001", Algorithm::Es256),
            Factor::Wid => self.wid_key(Algorithm::Es256),
        }
        .expect("the test PKI issues a certificate");
        signer.token(&TokenClaims {
            ura: ura.to_string(),
            bsn: bsn.expose().to_owned(),
            factor,
            iat,
            exp,
            jti: jti.to_owned(),
        })
    }
}

fn signer(
    ca: &TestCa,
    params: CertificateParams,
    algorithm: Algorithm,
) -> Result<TokenSigner, Error> {
    let key = match algorithm {
        Algorithm::Es256 => KeyPair::generate()?,
        Algorithm::Ps256 | Algorithm::Rs256 => KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?,
    };
    let leaf = ca.issue_with(params, key)?;
    let chain = vec![leaf.der.clone(), ca.certificate().der.clone()];
    Ok(TokenSigner {
        leaf,
        chain,
        algorithm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uzi_string_has_the_documented_shape() {
        assert_eq!(
            uzi_server_string("900010001", "00000001", "01000001"),
            "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000-01000001"
        );
    }
}
