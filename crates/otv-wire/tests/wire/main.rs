//! otv-wire's integration tests, compiled into one binary.
//!
//! - `closed_question`: the Mitz fixture and variants of it built by text substitution.
//! - `consent`: migration Consents (the Mitz notification Consents as a batch; NDJSON lines).
//! - `hardening`: hostile documents (DTDs, entities, depth, size, not XML) and BSN secrecy.
//! - `open_question`: XCPD ITI-56 with a XUA SAML assertion, signed and unsigned (signatures
//!   made over hand-written canonical forms), and its response against golden files.
//! - `response`: the response and fault writers against golden files, and read back.
//!
//! Golden files live in `tests/golden/`. After an intended change to a writer, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test -p otv-wire` and review the diff before committing.

mod closed_question;
mod consent;
mod fhir;
mod hardening;
mod open_question;
mod response;
mod support;
