//! Verifying the enveloped XML Signature (XML-Signature Syntax and Processing, `xmldsig#`) on a
//! SAML assertion, in the one profile otv accepts:
//! - exactly one `ds:Signature` child of the assertion, with one `SignedInfo`, one
//!   `SignatureValue` and a `KeyInfo` holding one `X509Data/X509Certificate` (the signer's);
//! - `CanonicalizationMethod` exclusive C14N 1.0 without comments, `SignatureMethod`
//!   RSASSA-PKCS1-v1_5 with SHA-256 (key of at least 2048 bits);
//! - exactly one `Reference`, whose `URI` is `#` and the assertion's `ID` (or its `wsu:Id`,
//!   which some WS-Security stacks put there), with the transforms enveloped-signature then
//!   exclusive C14N (each C14N may carry an `InclusiveNamespaces PrefixList`) and a SHA-256
//!   digest.
//!
//! Anything else is refused with its own [`SignatureProblem`]: more algorithms mean more ways to
//! get verification wrong, and no Mitz connector needs them.
//!
//! The digest is computed over the very [`SourceElement`] the codec then reads its attributes
//! from, and the Reference must name that element. Nothing is looked up by ID in the document,
//! so a second element carrying the same ID (signature wrapping) changes nothing.
//!
//! This module checks that the assertion was signed by the holder of the certificate's key; it
//! does not decide whether that certificate is trusted. The caller gets its DER to check against
//! a trust store.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION;
use x509_parser::public_key::PublicKey;

use crate::c14n::{self, Scope, SourceElement};
use crate::error::{Excerpt, SignatureProblem, WireError};

/// XML Signature namespace.
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Namespace of the `InclusiveNamespaces` parameter of exclusive C14N.
const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Exclusive XML Canonicalization 1.0, without comments.
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The enveloped-signature transform.
const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
/// RSASSA-PKCS1-v1_5 with SHA-256.
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// SHA-256 as a digest method.
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Verifies the enveloped signature of `signed`, if it has one.
///
/// `around` holds the namespace bindings in scope where `signed` stands; `ids` are the values a
/// same-document Reference may name it by. Returns `None` for an element without
/// `ds:Signature`, the signer certificate's DER for one whose signature verifies, and an error
/// for any other.
pub(crate) fn verify_enveloped(
    signed: &SourceElement,
    around: &Scope,
    ids: &[&str],
) -> Result<Option<Vec<u8>>, WireError> {
    let mut signatures = signed.children_named(DSIG_NS, "Signature");
    let signature = match (signatures.next(), signatures.next()) {
        (None, _) => return Ok(None),
        (Some(signature), None) => signature,
        (Some(_), Some(_)) => return Err(refused(SignatureProblem::SeveralSignatures)),
    };

    let signed_info = one(signature, "SignedInfo")?;
    let method = one(signed_info, "CanonicalizationMethod")?;
    algorithm(method, "CanonicalizationMethod", EXC_C14N)?;
    let signed_info_prefixes = inclusive_prefixes(method);
    algorithm(
        one(signed_info, "SignatureMethod")?,
        "SignatureMethod",
        RSA_SHA256,
    )?;

    let references: Vec<_> = signed_info.children_named(DSIG_NS, "Reference").collect();
    let [reference] = references[..] else {
        return Err(refused(SignatureProblem::ReferenceCount(references.len())));
    };
    let uri = reference.attribute_in(None, "URI").unwrap_or_default();
    if !uri
        .strip_prefix('#')
        .is_some_and(|id| ids.iter().any(|&known| !known.is_empty() && known == id))
    {
        return Err(refused(SignatureProblem::WrongReference {
            found: Excerpt::new(uri),
            expected: Excerpt::new(&format!("#{}", ids.first().copied().unwrap_or_default())),
        }));
    }
    let reference_prefixes = transforms(reference)?;
    algorithm(one(reference, "DigestMethod")?, "DigestMethod", SHA256)?;
    let digest_value = base64(one(reference, "DigestValue")?, "DigestValue")?;
    let signature_value = base64(one(signature, "SignatureValue")?, "SignatureValue")?;
    let certificate = certificate(signature)?;
    let public_key = rsa_public_key(&certificate)?;

    // SignedInfo first: nothing it says is worth acting on before it is authenticated.
    let around_signed_info = around.enter(signed).enter(signature);
    let canonical_signed_info = c14n::exclusive(
        signed_info,
        &around_signed_info,
        None,
        &signed_info_prefixes,
    );
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public_key)
        .verify(canonical_signed_info.as_bytes(), &signature_value)
        .map_err(|_| refused(SignatureProblem::BadSignature))?;

    let canonical = c14n::exclusive(signed, around, Some(signature), &reference_prefixes);
    let computed = digest::digest(&digest::SHA256, canonical.as_bytes());
    if computed.as_ref() != digest_value.as_slice() {
        return Err(refused(SignatureProblem::DigestMismatch));
    }
    Ok(Some(certificate))
}

fn refused(problem: SignatureProblem) -> WireError {
    WireError::Signature(problem)
}

/// The one `ds:{local}` child of `parent`.
fn one<'a>(parent: &'a SourceElement, local: &'static str) -> Result<&'a SourceElement, WireError> {
    let mut found = parent.children_named(DSIG_NS, local);
    match (found.next(), found.next()) {
        (Some(element), None) => Ok(element),
        (None, _) => Err(refused(SignatureProblem::Missing(local))),
        (Some(_), Some(_)) => Err(refused(SignatureProblem::Repeated(local))),
    }
}

/// Checks that `element`'s `Algorithm` is `expected`.
fn algorithm(
    element: &SourceElement,
    name: &'static str,
    expected: &'static str,
) -> Result<(), WireError> {
    let found = element
        .attribute_in(None, "Algorithm")
        .unwrap_or_default()
        .trim_ascii();
    if found == expected {
        Ok(())
    } else {
        Err(refused(SignatureProblem::UnsupportedAlgorithm {
            element: name,
            found: Excerpt::new(found),
            expected,
        }))
    }
}

/// The `InclusiveNamespaces PrefixList` inside an exclusive C14N method or transform.
fn inclusive_prefixes(method: &SourceElement) -> Vec<String> {
    method
        .children_named(EXC_C14N_NS, "InclusiveNamespaces")
        .filter_map(|e| e.attribute_in(None, "PrefixList"))
        .flat_map(c14n::prefix_list)
        .collect()
}

/// Checks the Reference's transforms (enveloped-signature, then exclusive C14N) and returns the
/// C14N's inclusive prefixes.
fn transforms(reference: &SourceElement) -> Result<Vec<String>, WireError> {
    let transforms: Vec<&SourceElement> = one(reference, "Transforms")?
        .children_named(DSIG_NS, "Transform")
        .collect();
    let algorithms: Vec<&str> = transforms
        .iter()
        .map(|t| {
            t.attribute_in(None, "Algorithm")
                .unwrap_or_default()
                .trim_ascii()
        })
        .collect();
    match (&transforms[..], &algorithms[..]) {
        ([_, c14n], [ENVELOPED_SIGNATURE, EXC_C14N]) => Ok(inclusive_prefixes(c14n)),
        _ => Err(refused(SignatureProblem::UnsupportedTransforms(
            Excerpt::new(&algorithms.join(" ")),
        ))),
    }
}

/// The bytes of a base64 element. `base64Binary` may be broken over lines.
fn base64(element: &SourceElement, name: &'static str) -> Result<Vec<u8>, WireError> {
    let text: String = element
        .to_element()
        .text
        .chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
        .collect();
    STANDARD
        .decode(text)
        .map_err(|_| refused(SignatureProblem::NotBase64(name)))
}

/// The DER of the one certificate in `KeyInfo/X509Data/X509Certificate`.
fn certificate(signature: &SourceElement) -> Result<Vec<u8>, WireError> {
    let key_info = one(signature, "KeyInfo")?;
    let certificates: Vec<&SourceElement> = key_info
        .children_named(DSIG_NS, "X509Data")
        .flat_map(|data| data.children_named(DSIG_NS, "X509Certificate"))
        .collect();
    match certificates[..] {
        [certificate] => base64(certificate, "X509Certificate"),
        [] => Err(refused(SignatureProblem::NoCertificate)),
        _ => Err(refused(SignatureProblem::SeveralCertificates)),
    }
}

/// The certificate's RSA public key as a DER `RSAPublicKey`, as aws-lc-rs verifies with it.
fn rsa_public_key(der: &[u8]) -> Result<Vec<u8>, WireError> {
    let (rest, certificate) = x509_parser::parse_x509_certificate(der).map_err(|e| {
        refused(SignatureProblem::BadCertificate(Excerpt::new(
            &e.to_string(),
        )))
    })?;
    if !rest.is_empty() {
        return Err(refused(SignatureProblem::BadCertificate(Excerpt::new(
            "bytes after the certificate",
        ))));
    }
    let key = certificate.public_key();
    if key.algorithm.algorithm != OID_PKCS1_RSAENCRYPTION {
        return Err(refused(SignatureProblem::NotRsa));
    }
    match key.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() >= 2048 => {
            Ok(key.subject_public_key.data.to_vec())
        }
        Ok(PublicKey::RSA(rsa)) => Err(refused(SignatureProblem::WeakKey(rsa.key_size()))),
        _ => Err(refused(SignatureProblem::BadCertificate(Excerpt::new(
            "the RSA public key cannot be read",
        )))),
    }
}
