//! FHIR R4 codecs for registrations (abonnementen, PRODUCT.md §7 and §12): the `Subscription` in
//! FHIR JSON and FHIR XML, batch Bundles of them and their `batch-response`, the NDJSON bulk
//! import, and the `OperationOutcome` every FHIR error is answered with.
//!
//! Code map:
//! - `subscription`: [`Subscription`] (the resource as FHIR defines it) and
//!   [`SubscriptionRequest`] (a registration as otv acts on it); [`parse_subscription_json`],
//!   [`parse_subscription_xml`], [`subscription_json`], [`subscription_xml`].
//! - `bundle`: [`parse_batch_bundle_json`], [`parse_batch_bundle_xml`] (each entry decoded on
//!   its own), [`batch_response_json`], [`batch_response_xml`].
//! - `ndjson`: [`parse_subscription_ndjson_line`], one line at a time for streaming.
//! - `consent`: migration (PRODUCT.md §9): [`MigrationConsent`] from a Consent shaped like the
//!   notification Consents, in a batch Bundle ([`parse_consent_batch_json`],
//!   [`parse_consent_batch_xml`]) or per NDJSON line ([`parse_consent_ndjson_line`]).
//! - `notification`: the consent notification to a subscribed holder (PRODUCT.md §12
//!   "Notifications"): [`notification_bundle_json`], [`notification_bundle_xml`], with
//!   idempotent ids ([`notification_id`]).
//! - `values`: the checks of single values: FHIR id, date, instant and OID; the criteria query;
//!   the https endpoint.
//! - `outcome`: [`Issue`], [`FhirError`] with its [`ErrorClass`] (400 not valid FHIR, 422
//!   business rule), [`operation_outcome_json`], [`operation_outcome_xml`].
//! - `read`: bytes to a bounded JSON value or XML tree (through the crate's hardened reader),
//!   and one view over both, so each resource has one decoder and every error a FHIR path.
//! - `write`: one tree rendered as FHIR JSON or FHIR XML, so the formats cannot drift apart.
//!
//! Like the rest of the crate: pure, no IO, no clock (ids are parameters), decides nothing
//! (whether a connector may register for a URA, or a registration exists, is the server's
//! business), and no error text contains a BSN.
//!
//! ```
//! use otv_wire::fhir::{ErrorClass, operation_outcome_json, parse_subscription_json};
//!
//! let err = parse_subscription_json(br#"{"resourceType": "Patient"}"#).unwrap_err();
//! assert_eq!(err.class(), ErrorClass::Invalid);
//! assert_eq!(err.http_status(), 400);
//! assert!(operation_outcome_json(err.issues()).contains("not a Subscription"));
//! ```

mod bundle;
mod consent;
mod ndjson;
mod notification;
mod outcome;
mod read;
mod subscription;
mod values;
mod write;

pub use bundle::{
    BatchEntry, BatchResponseEntry, SubscriptionOperation, batch_response_json, batch_response_xml,
    parse_batch_bundle_json, parse_batch_bundle_xml, reason_phrase,
};
pub use consent::{
    ConsentBatchEntry, MAX_CONSENT_BATCH_BYTES, MAX_CONSENT_BATCH_XML_ELEMENTS, MigrationConsent,
    parse_consent_batch_json, parse_consent_batch_xml, parse_consent_json,
    parse_consent_ndjson_line,
};
pub use ndjson::{NdjsonLineError, parse_subscription_ndjson_line};
pub use notification::{
    ACT_REASON_SYSTEM, Coded, ConsentGroup, NOTIFY_CONSENT_PROFILE, Notification, PURPOSE_TREAT,
    narrative, notification_bundle_json, notification_bundle_xml, notification_id,
};
pub use outcome::{
    ErrorClass, FhirError, Issue, IssueCode, IssueSeverity, operation_outcome_json,
    operation_outcome_xml,
};
pub use read::MAX_JSON_DEPTH;
pub use subscription::{
    BIRTH_DATE_URL, Channel, ChannelType, Extension, ExtensionValue, GATEWAY_SYSTEM_URL,
    Interaction, PayloadType, REASON, SOURCE_SYSTEM_URL, Subscription, SubscriptionRequest,
    SubscriptionStatus, parse_subscription_json, parse_subscription_resource_json,
    parse_subscription_resource_xml, parse_subscription_xml, subscription_json, subscription_xml,
};
pub use values::{
    BSN_SYSTEM, CONSENT_SCOPE_PRIVACY, CONSENT_SCOPE_SYSTEM, CONSULTING_CATEGORY_SYSTEM,
    CUSTODIAN_ROLE, DATA_CATEGORY_SYSTEM, MAX_ENDPOINT_CHARS, MAX_OID_CHARS,
    ORGANISATION_TYPE_SYSTEM, PARTICIPATION_TYPE_SYSTEM, PROVIDER_CATEGORY_URL, URA_SYSTEM,
};

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";
/// The FHIR XML media type.
pub const FHIR_XML: &str = "application/fhir+xml";
/// `Content-Type` of FHIR JSON responses.
pub const FHIR_JSON_CONTENT_TYPE: &str = "application/fhir+json; charset=utf-8";
/// `Content-Type` of FHIR XML responses.
pub const FHIR_XML_CONTENT_TYPE: &str = "application/fhir+xml; charset=utf-8";

/// The largest single Subscription accepted (JSON, XML, or one NDJSON line), in bytes. A real
/// one is about 1 KiB.
pub const MAX_RESOURCE_BYTES: usize = 64 * 1024;
/// The largest batch Bundle accepted, in bytes.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// The most entries in one batch Bundle; more is refused as a whole (422, `too-costly`).
pub const MAX_BATCH_ENTRIES: usize = 1000;
/// The most XML elements in one batch Bundle: about 25 per entry, with room for extras.
pub const MAX_BATCH_XML_ELEMENTS: usize = 50 * MAX_BATCH_ENTRIES;
