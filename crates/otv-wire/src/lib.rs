//! otv's wire codecs for the Mitz-compatible interfaces (PRODUCT.md §12): bytes in, valid
//! otv-core types or a precise error out; otv-core types in, bytes out.
//!
//! Today this is the closed question (gesloten autorisatievraag): SOAP 1.2 + WS-Addressing +
//! XACML 3.0 with HL7v3 values.
//!
//! Code map:
//! - [`closed_question`]: [`parse_closed_question`], [`closed_question_response`].
//! - [`open_question`]: [`parse_open_question`], [`open_question_response`] (XCPD ITI-56 with a
//!   XUA SAML assertion); `saml` checks the assertion, `xmldsig` its enveloped signature,
//!   `c14n` the exclusive canonical form that signature is computed on.
//! - [`soap`]: the SOAP 1.2 frame, WS-Addressing headers, [`soap_fault`].
//! - `hl7`: reading `II` and `CV` values by root and code system; the OIDs of PRODUCT.md §2.
//! - `xml`: the hardened reader every codec parses through (no DTDs, no custom entities, depth,
//!   size and count limits, names resolved by namespace URI) and the one escaping function.
//! - `error`: [`WireError`], the crate's one error type; its texts never contain a BSN.
//! - [`fhir`]: FHIR R4 registrations (Subscription JSON/XML, batch Bundles, NDJSON bulk
//!   import) and `OperationOutcome`; its own error type [`fhir::FhirError`] classifies 400/422.
//!
//! Architecture invariant: pure. No IO, no async, no HTTP, no clock, no randomness (the
//! response's message id is a parameter). The codecs decide nothing; they only translate. What
//! an HTTP status or a log line should be is the server's business.
//!
//! ```
//! use otv_wire::{FaultCode, parse_closed_question, soap_fault};
//!
//! let err = parse_closed_question(b"<not-soap/>").unwrap_err();
//! let fault = soap_fault(FaultCode::Sender, &err.to_string());
//! assert!(fault.contains("<soap:Value>soap:Sender</soap:Value>"));
//! assert!(fault.contains("not a SOAP 1.2 Envelope"));
//! ```
#![deny(missing_docs)]

mod c14n;
pub mod closed_question;
mod error;
pub mod fhir;
mod hl7;
pub mod open_question;
mod saml;
pub mod soap;
mod xml;
mod xmldsig;

pub use closed_question::{
    ClosedQuestionRequest, Decision, closed_question_response, parse_closed_question,
};
pub use error::{AssertionProblem, AttributeProblem, Excerpt, SignatureProblem, WireError};
pub use open_question::{
    Location, OpenQuestionRequest, open_question_response, parse_open_question,
};
pub use saml::CLOCK_SKEW_SECONDS;
pub use soap::{FaultCode, MAX_MESSAGE_ID_CHARS, soap_fault};
pub use xml::{MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS, MAX_INPUT_BYTES};

/// The media type of SOAP 1.2 messages, for responses and faults.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
