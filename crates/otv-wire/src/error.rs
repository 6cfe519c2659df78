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
