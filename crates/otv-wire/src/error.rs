//! The one error type of this crate: why a message could not be read.
//!
//! Every [`WireError`] is the sender's fault: the server answers it with a SOAP 1.2 `Sender`
//! fault and a 4xx status, using the error's text as the fault reason. The texts therefore name
//! exactly what is wrong, in terms a connector vendor can act on.
//!
//! Invariant: no error text and no `Debug` output contains a BSN. Identifier values are never
//! put in a message (only the rule they broke); where a message has to show what the sender
//! sent (a purpose code, an Action, a root), it shows an [`Excerpt`], which is short and has any
//! run of nine or more digits blanked out.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use otv_core::IdError;

/// What is wrong with a message. The `Display` text is the fault reason sent back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The document exceeds the size limit.
    #[error("the document is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The bytes are not UTF-8.
    #[error("the document is not UTF-8 text")]
    NotUtf8,
    /// The XML declaration names an encoding other than UTF-8 for a document that is not ASCII.
    #[error("the document declares encoding `{0}`; only UTF-8 is accepted")]
    UnsupportedEncoding(Excerpt),
    /// The document has a `<!DOCTYPE …>`; DTDs are refused to rule out entity expansion
    /// (billion laughs) and external entities (XXE).
    #[error("document type declarations are not allowed")]
    DocumentTypeDeclaration,
    /// The document refers to an entity other than the five predefined ones or a character
    /// reference. Without a DTD such an entity cannot be defined, and we never expand it.
    #[error(
        "entity reference `&{0};` is not allowed: only the predefined XML entities and character references are"
    )]
    EntityReference(Excerpt),
    /// Elements are nested deeper than the limit.
    #[error("XML nested deeper than {limit} elements")]
    TooDeep {
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// The document has more elements than the limit.
    #[error("XML has more than {limit} elements")]
    TooManyElements {
        /// The most elements allowed.
        limit: usize,
    },
    /// One element has more attributes than the limit.
    #[error("an XML element has more than {limit} attributes")]
    TooManyAttributes {
        /// The most attributes allowed on one element.
        limit: usize,
    },
    /// The document is not well-formed XML (or not namespace-well-formed).
    #[error("the body is not well-formed XML (near byte {position}): {detail}")]
    Malformed {
        /// Byte offset near the problem.
        position: u64,
        /// What the XML reader reported.
        detail: Excerpt,
    },
    /// The SOAP or XACML structure is wrong: an element is missing, repeated or in the wrong
    /// place. The text says which.
    #[error("{0}")]
    Structure(String),
    /// A required WS-Addressing header is missing or empty.
    #[error("missing WS-Addressing {0}")]
    MissingAddressing(&'static str),
    /// A WS-Addressing header appears more than once.
    #[error("more than one WS-Addressing {0}")]
    RepeatedAddressing(&'static str),
    /// A WS-Addressing header value is too long to be an identifier.
    #[error("WS-Addressing {header} is longer than {limit} characters")]
    AddressingTooLong {
        /// The header.
        header: &'static str,
        /// The most characters allowed.
        limit: usize,
    },
    /// The WS-Addressing Action is not the one this operation expects.
    #[error("WS-Addressing Action `{found}` is not {expected}")]
    WrongAction {
        /// The Action sent.
        found: Excerpt,
        /// The Action expected.
        expected: &'static str,
    },
    /// An XACML attribute is missing or wrong.
    #[error("attribute {attribute}: {problem}")]
    Attribute {
        /// The XACML `AttributeId`.
        attribute: &'static str,
        /// What is wrong with it.
        problem: AttributeProblem,
    },
    /// The purpose of use is well-formed but not one otv answers for. Still the sender's fault
    /// (PRODUCT.md §5 step 1), reported apart so the sender sees it is the purpose, not the shape.
    #[error("purpose of use `{0}` is not TREAT or COC")]
    UnsupportedPurpose(Excerpt),
    /// An HL7 value carried as an element rather than an attribute (the open question's
    /// `RequestedPatientId`) is wrong. The value itself is never shown: it may be a BSN.
    #[error("{element}: {problem}")]
    Value {
        /// The element's local name.
        element: &'static str,
        /// What is wrong with it.
        problem: AttributeProblem,
    },
    /// The SAML assertion that carries the consulter's attributes is missing, malformed, not
    /// valid at this moment or not meant for this service.
    #[error("{0}")]
    Assertion(AssertionProblem),
    /// The XML Signature on the SAML assertion is not one otv accepts, or does not verify.
    #[error("{0}")]
    Signature(SignatureProblem),
}

/// What is wrong with the SAML 2.0 assertion of an open question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionProblem {
    /// The SOAP header has no WS-Security header.
    NoSecurityHeader,
    /// The SOAP header has more than one WS-Security header.
    SeveralSecurityHeaders,
    /// The WS-Security header holds no SAML 2.0 assertion.
    NoAssertion,
    /// The WS-Security header holds more than one SAML 2.0 assertion.
    SeveralAssertions,
    /// The assertion has no `ID`.
    NoId,
    /// The assertion has no `Conditions` (otv needs its time window and audience).
    NoConditions,
    /// The assertion has more than one `Conditions`.
    SeveralConditions,
    /// The `Conditions` have no `NotOnOrAfter`: an assertion must expire.
    NoExpiry,
    /// A time in the `Conditions` is not an `xs:dateTime`.
    BadTime {
        /// `NotBefore` or `NotOnOrAfter`.
        attribute: &'static str,
        /// The value sent.
        found: Excerpt,
    },
    /// The assertion is not valid yet, even allowing for the clock skew.
    NotYetValid {
        /// Its `NotBefore`.
        not_before: DateTime<Utc>,
        /// The clock skew allowed, in seconds.
        skew_seconds: i64,
    },
    /// The assertion has expired, even allowing for the clock skew.
    Expired {
        /// Its `NotOnOrAfter`.
        not_on_or_after: DateTime<Utc>,
        /// The clock skew allowed, in seconds.
        skew_seconds: i64,
    },
    /// The `Conditions` have no `AudienceRestriction`.
    NoAudienceRestriction,
    /// An `AudienceRestriction` does not name this service.
    WrongAudience {
        /// The audiences of the restriction, as sent.
        found: Excerpt,
        /// This service's audience.
        expected: Excerpt,
    },
}

impl fmt::Display for AssertionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        match self {
            AssertionProblem::NoSecurityHeader => f.write_str(
                "the SOAP Header has no wsse:Security (namespace \
                 http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd) \
                 holding the SAML assertion",
            ),
            AssertionProblem::SeveralSecurityHeaders => {
                f.write_str("the SOAP Header has more than one wsse:Security")
            }
            AssertionProblem::NoAssertion => f.write_str(
                "wsse:Security holds no SAML 2.0 Assertion (namespace \
                 urn:oasis:names:tc:SAML:2.0:assertion)",
            ),
            AssertionProblem::SeveralAssertions => {
                f.write_str("wsse:Security holds more than one SAML Assertion")
            }
            AssertionProblem::NoId => f.write_str("the SAML assertion has no ID"),
            AssertionProblem::NoConditions => f.write_str(
                "the SAML assertion has no Conditions; otv needs NotOnOrAfter and an \
                 AudienceRestriction",
            ),
            AssertionProblem::SeveralConditions => {
                f.write_str("the SAML assertion has more than one Conditions")
            }
            AssertionProblem::NoExpiry => {
                f.write_str("the SAML assertion's Conditions have no NotOnOrAfter")
            }
            AssertionProblem::BadTime { attribute, found } => write!(
                f,
                "SAML Conditions {attribute} `{found}` is not an xs:dateTime"
            ),
            AssertionProblem::NotYetValid {
                not_before,
                skew_seconds,
            } => write!(
                f,
                "SAML assertion not valid before {} (NotBefore; {skew_seconds} s clock skew \
                 allowed)",
                time(not_before)
            ),
            AssertionProblem::Expired {
                not_on_or_after,
                skew_seconds,
            } => write!(
                f,
                "SAML assertion expired at {} (NotOnOrAfter; {skew_seconds} s clock skew \
                 allowed)",
                time(not_on_or_after)
            ),
            AssertionProblem::NoAudienceRestriction => {
                f.write_str("the SAML assertion has no AudienceRestriction")
            }
            AssertionProblem::WrongAudience { found, expected } => write!(
                f,
                "SAML Audience `{found}` is not this service (`{expected}`)"
            ),
        }
    }
}

/// Why the XML Signature on a SAML assertion is refused. otv accepts one profile only: an
/// enveloped signature with exactly one Reference to the assertion, exclusive C14N,
/// RSA with SHA-256, a SHA-256 digest and the signer's certificate in `KeyInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// The assertion holds more than one `ds:Signature`.
    SeveralSignatures,
    /// A required part of the signature is missing.
    Missing(&'static str),
    /// A part of the signature that must appear once appears more than once.
    Repeated(&'static str),
    /// An algorithm other than the one otv accepts.
    UnsupportedAlgorithm {
        /// The element naming the algorithm.
        element: &'static str,
        /// The `Algorithm` sent.
        found: Excerpt,
        /// The one algorithm accepted.
        expected: &'static str,
    },
    /// The Reference's transforms are not enveloped-signature followed by exclusive C14N.
    UnsupportedTransforms(Excerpt),
    /// `SignedInfo` holds other than one `Reference`.
    ReferenceCount(usize),
    /// The Reference does not point at the assertion.
    WrongReference {
        /// The `URI` sent.
        found: Excerpt,
        /// `#` and the assertion's ID.
        expected: Excerpt,
    },
    /// A base64 value cannot be decoded.
    NotBase64(&'static str),
    /// `KeyInfo` carries no X.509 certificate.
    NoCertificate,
    /// `KeyInfo` carries more than one X.509 certificate.
    SeveralCertificates,
    /// The certificate is not a DER X.509 certificate.
    BadCertificate(Excerpt),
    /// The certificate's key is not an RSA key.
    NotRsa,
    /// The certificate's RSA key is shorter than 2048 bits.
    WeakKey(usize),
    /// The digest of the canonical assertion differs from the `DigestValue`.
    DigestMismatch,
    /// The `SignatureValue` does not verify over the canonical `SignedInfo`.
    BadSignature,
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::SeveralSignatures => {
                f.write_str("the SAML assertion holds more than one ds:Signature")
            }
            SignatureProblem::Missing(part) => {
                write!(f, "the signature of the SAML assertion has no {part}")
            }
            SignatureProblem::Repeated(part) => write!(
                f,
                "the signature of the SAML assertion has more than one {part}"
            ),
            SignatureProblem::UnsupportedAlgorithm {
                element,
                found,
                expected,
            } => write!(
                f,
                "signature {element} Algorithm `{found}` is not supported; otv accepts only \
                 {expected}"
            ),
            SignatureProblem::UnsupportedTransforms(found) => write!(
                f,
                "signature Reference Transforms `{found}` are not supported; otv accepts only \
                 http://www.w3.org/2000/09/xmldsig#enveloped-signature followed by \
                 http://www.w3.org/2001/10/xml-exc-c14n#"
            ),
            SignatureProblem::ReferenceCount(n) => write!(
                f,
                "signature SignedInfo holds {n} References; otv accepts exactly one, to the \
                 assertion"
            ),
            SignatureProblem::WrongReference { found, expected } => write!(
                f,
                "signature Reference URI `{found}` does not point at the assertion \
                 (`{expected}`)"
            ),
            SignatureProblem::NotBase64(part) => write!(f, "signature {part} is not base64"),
            SignatureProblem::NoCertificate => f.write_str(
                "signature KeyInfo holds no X509Data/X509Certificate; otv needs the signer's \
                 certificate",
            ),
            SignatureProblem::SeveralCertificates => f.write_str(
                "signature KeyInfo holds more than one X509Certificate; send only the signer's",
            ),
            SignatureProblem::BadCertificate(detail) => write!(
                f,
                "signature X509Certificate is not a DER X.509 certificate: {detail}"
            ),
            SignatureProblem::NotRsa => {
                f.write_str("the signing certificate's key is not an RSA key (rsa-sha256)")
            }
            SignatureProblem::WeakKey(bits) => write!(
                f,
                "the signing certificate's RSA key has {bits} bits; at least 2048 are required"
            ),
            SignatureProblem::DigestMismatch => {
                f.write_str("signature digest does not match the assertion")
            }
            SignatureProblem::BadSignature => f.write_str(
                "signature value does not verify with the key of the certificate in KeyInfo",
            ),
        }
    }
}

/// What is wrong with one XACML attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeProblem {
    /// The attribute is required and absent.
    Missing,
    /// The attribute appears more than once where one is expected.
    Repeated,
    /// The attribute has no `AttributeValue`.
    NoValue,
    /// The attribute has more than one `AttributeValue`.
    SeveralValues,
    /// The `AttributeValue` holds no element in the HL7v3 namespace.
    NoHl7Value,
    /// The `AttributeValue` holds more than one element in the HL7v3 namespace.
    SeveralHl7Values,
    /// The HL7 value lacks an XML attribute it needs (`root`, `extension`, `code`, `codeSystem`).
    MissingXmlAttribute(&'static str),
    /// The identifier's `root` is not the one for this attribute.
    WrongRoot {
        /// The root sent.
        found: Excerpt,
        /// The root expected.
        expected: &'static str,
        /// What the expected root identifies.
        meaning: &'static str,
    },
    /// The code's `codeSystem` is not the one for this attribute.
    WrongCodeSystem {
        /// The code system sent.
        found: Excerpt,
        /// The code system expected.
        expected: &'static str,
        /// What the expected code system is.
        meaning: &'static str,
    },
    /// The value broke a rule of its type (for example "a URA is 8 digits"). The value itself is
    /// not repeated: it may be a BSN.
    Invalid(&'static str),
}

impl fmt::Display for AttributeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeProblem::Missing => f.write_str("missing"),
            AttributeProblem::Repeated => f.write_str("appears more than once"),
            AttributeProblem::NoValue => f.write_str("has no AttributeValue"),
            AttributeProblem::SeveralValues => f.write_str("has more than one AttributeValue"),
            AttributeProblem::NoHl7Value => {
                f.write_str("the AttributeValue holds no HL7v3 element (namespace urn:hl7-org:v3)")
            }
            AttributeProblem::SeveralHl7Values => {
                f.write_str("the AttributeValue holds more than one HL7v3 element")
            }
            AttributeProblem::MissingXmlAttribute(name) => {
                write!(f, "the HL7v3 value has no `{name}`")
            }
            AttributeProblem::WrongRoot {
                found,
                expected,
                meaning,
            } => write!(f, "root `{found}` is not {expected} ({meaning})"),
            AttributeProblem::WrongCodeSystem {
                found,
                expected,
                meaning,
            } => write!(f, "codeSystem `{found}` is not {expected} ({meaning})"),
            AttributeProblem::Invalid(rule) => f.write_str(rule),
        }
    }
}

impl AttributeProblem {
    /// The rule an identifier or code broke, without its value.
    pub(crate) fn from_id_error(e: IdError) -> Self {
        AttributeProblem::Invalid(e.rule)
    }
}

/// A short excerpt of what the sender sent, safe to show in an error and a log: at most
/// [`Excerpt::MAX_CHARS`] characters, and every run of nine or more digits replaced by `#…#`,
/// because such a run may be a BSN that was put in the wrong place.
#[derive(Clone, PartialEq, Eq)]
pub struct Excerpt(String);

impl Excerpt {
    /// The longest excerpt shown, in characters.
    pub const MAX_CHARS: usize = 120;

    /// Shortens and redacts `raw`.
    pub fn new(raw: &str) -> Self {
        let mut out = String::new();
        let mut shown = 0;
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            if shown >= Self::MAX_CHARS {
                out.push('…');
                break;
            }
            // Digit runs are measured in the whole input, so a BSN that straddles the length
            // limit is blanked rather than half shown.
            let run = rest.bytes().take_while(u8::is_ascii_digit).count();
            if run >= 9 {
                out.push_str("#…#");
                shown += 3;
                rest = &rest[run..];
            } else if run > 0 {
                let take = run.min(Self::MAX_CHARS - shown);
                out.push_str(&rest[..take]);
                shown += take;
                rest = &rest[take..];
            } else {
                // Control characters would garble a log line or a fault text.
                out.push(if c.is_control() { '\u{FFFD}' } else { c });
                shown += 1;
                rest = &rest[c.len_utf8()..];
            }
        }
        Excerpt(out)
    }

    /// The excerpt as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Excerpt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Excerpt({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_blanks_long_digit_runs_and_keeps_oids() {
        assert_eq!(Excerpt::new("900186021").as_str(), "#…#");
        assert_eq!(Excerpt::new("x900186021y").as_str(), "x#…#y");
        assert_eq!(Excerpt::new("00000659").as_str(), "00000659");
        assert_eq!(
            Excerpt::new("2.16.840.1.113883.2.4.6.3").as_str(),
            "2.16.840.1.113883.2.4.6.3"
        );
        assert_eq!(Excerpt::new("a\u{0}b").as_str(), "a\u{FFFD}b");
    }

    #[test]
    fn excerpt_is_short() {
        let long = "a".repeat(1000);
        let e = Excerpt::new(&long);
        assert_eq!(e.as_str().chars().count(), Excerpt::MAX_CHARS + 1);
        assert!(e.as_str().ends_with('…'));
        // A BSN cut in half by the limit is still blanked: the run is counted before cutting.
        let tail = format!("{}{}", "a".repeat(Excerpt::MAX_CHARS - 4), "900186021");
        assert!(!Excerpt::new(&tail).as_str().contains("9001"));
    }
}
