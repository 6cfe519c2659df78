//! The open question (open autorisatievraag) on the wire, as Mitz connectors send it
//! (PRODUCT.md §6, §12): IHE XCPD ITI-56 Patient Location Query in a SOAP 1.2 envelope with
//! WS-Addressing headers, the consulter's attributes in an IHE XUA SAML 2.0 assertion in the
//! WS-Security header, and the `PatientLocationQueryResponse` otv sends back.
//!
//! The request:
//! - WS-Addressing `Action` [`REQUEST_ACTION`] and a `MessageID`;
//! - `wsse:Security` holding one SAML 2.0 `Assertion`, signed or not. A signed one must verify
//!   (see `xmldsig`); either way its `Conditions` must hold `now` (with
//!   [`CLOCK_SKEW_SECONDS`](crate::CLOCK_SKEW_SECONDS)) and name this service's audience. Its
//!   `AttributeStatement` carries the same attribute ids as the closed question's
//!   access-subject and environment, each `AttributeValue` one HL7v3 value read by
//!   `root`/`codeSystem` (its element name and `xsi:type` are the sender's choice: connectors
//!   send `II`, `CV` and `CE`);
//! - body `PatientLocationQueryRequest` (`urn:ihe:iti:xcpd:2009`) with one `RequestedPatientId`:
//!   the BSN (root `2.16.840.1.113883.2.4.6.3`; `assigningAuthorityName`, when sent, `NLMINBIZA`).
//!
//! Checks run in this order: the SOAP frame and WS-Addressing, the assertion (signature, then
//! time window and audience, then attributes), then the body. This module decides nothing and
//! does no IO; which locations the consulter may see is the server's and otv-core's business.

use chrono::{DateTime, Utc};
use otv_core::{Bsn, DataCategory, OrgType, Organisation, Purpose, RoleCode, Ura, UziNumber};
use uuid::Uuid;

use crate::c14n;
use crate::error::{AttributeProblem, Excerpt, WireError};
use crate::hl7::{self, Oid, problem};
use crate::saml;
use crate::soap::{self, SOAP_NS, WSA_NS};
use crate::xml::{Element, escape};

/// WS-Addressing `Action` of an open question request (ITI-56).
pub const REQUEST_ACTION: &str = "urn:ihe:iti:2009:PatientLocationQuery";
/// WS-Addressing `Action` of the response.
pub const RESPONSE_ACTION: &str = "urn:ihe:iti:2009:PatientLocationQueryResponse";
/// The `assigningAuthorityName` of a BSN in the patient identifiers.
pub const BSN_AUTHORITY: &str = "NLMINBIZA";

/// IHE XCPD namespace (request and response bodies).
const XCPD_NS: &str = "urn:ihe:iti:xcpd:2009";

/// SAML attribute names of the consulter (PRODUCT.md §12, the closed question's ids).
mod id {
    pub const ROLE: &str = "urn:oasis:names:tc:xacml:2.0:subject:role";
    pub const PROFESSIONAL: &str = "urn:ihe:iti:xua:2017:subject:provider-identifier";
    pub const MANDATED: &str = "urn:nl:otv:names:tc:1.0:subject:mandated";
    pub const CONSULTER_URA: &str = "urn:nl:otv:names:tc:1.0:subject:provider-institution";
    pub const CONSULTER_TYPE: &str =
        "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code";
    pub const PURPOSE: &str = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse";
}

/// The element that carries the patient in the request body.
const REQUESTED_PATIENT_ID: &str = "RequestedPatientId";

/// An open question as received: the assertion checked, every identifier and code valid.
///
/// `Debug` never shows the BSN ([`Bsn`] redacts itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenQuestionRequest {
    /// WS-Addressing `MessageID` of the request; the response's `RelatesTo`.
    pub message_id: String,
    /// The patient (`RequestedPatientId`).
    pub bsn: Bsn,
    /// The consulting provider (raadpleger) asking where records are: `provider-institution`
    /// and `consulting-healthcare-facility-type-code`.
    pub consulter: Organisation,
    /// The responsible professional at the consulter (`provider-identifier`).
    pub professional: UziNumber,
    /// The professional's role (`role`).
    pub role: RoleCode,
    /// The mandated assistant (gemandateerde) acting for the professional, if any.
    pub mandated: Option<UziNumber>,
    /// The purpose of use (`purposeofuse`).
    pub purpose: Purpose,
    /// The SAML assertion's `ID`, for the audit record.
    pub assertion_id: String,
    /// Whether the assertion was signed (and its signature verified).
    pub signed: bool,
    /// The DER of the certificate whose key verified the assertion's signature; `None` when
    /// unsigned. Whether it is trusted is for the caller to check against its trust store.
    pub signer_certificate: Option<Vec<u8>>,
}

/// Reads an open question received at `now` by the service known to senders as `audience`
/// (the value its SAML `AudienceRestriction` must name). Any [`WireError`] is the sender's
/// fault (a SOAP `Sender` fault).
pub fn parse_open_question(
    xml: &[u8],
    now: DateTime<Utc>,
    audience: &str,
) -> Result<OpenQuestionRequest, WireError> {
    // The hardened reader first: whatever it refuses never reaches the detailed reader.
    let envelope = soap::read_envelope(xml)?;
    let addressing = soap::read_addressing(envelope.header.as_ref(), REQUEST_ACTION)?;

    let source = c14n::read(xml)?;
    let assertion = saml::read(&source, now, audience)?;
    let attributes = &assertion.content;
    let role = RoleCode::parse(cv(attributes, id::ROLE, hl7::ROLE_SYSTEM)?)
        .map_err(|e| problem(id::ROLE, AttributeProblem::from_id_error(e)))?;
    let professional = uzi(attributes, id::PROFESSIONAL)?;
    let mandated = saml::attribute_value(attributes, id::MANDATED)?
        .map(|_| uzi(attributes, id::MANDATED))
        .transpose()?;
    let consulter = Organisation {
        ura: Ura::parse(ii(attributes, id::CONSULTER_URA, hl7::URA_ROOT)?)
            .map_err(|e| problem(id::CONSULTER_URA, AttributeProblem::from_id_error(e)))?,
        organisation_type: OrgType::parse(cv(
            attributes,
            id::CONSULTER_TYPE,
            hl7::ORG_TYPE_SYSTEM,
        )?)
        .map_err(|e| problem(id::CONSULTER_TYPE, AttributeProblem::from_id_error(e)))?,
    };
    let purpose_code = cv(attributes, id::PURPOSE, hl7::PURPOSE_SYSTEM)?;
    let purpose = Purpose::parse(purpose_code)
        .map_err(|_| WireError::UnsupportedPurpose(Excerpt::new(purpose_code)))?;

    let bsn = requested_patient(&envelope.body)?;

    Ok(OpenQuestionRequest {
        message_id: addressing.message_id,
        bsn,
        consulter,
        professional,
        role,
        mandated,
        purpose,
        assertion_id: assertion.id,
        signed: assertion.signer_certificate.is_some(),
        signer_certificate: assertion.signer_certificate,
    })
}

/// The HL7 value of the required assertion attribute `name`.
fn value<'a>(assertion: &'a Element, name: &'static str) -> Result<&'a Element, WireError> {
    saml::attribute_value(assertion, name)?.ok_or(problem(name, AttributeProblem::Missing))
}

fn ii<'a>(assertion: &'a Element, name: &'static str, root: Oid) -> Result<&'a str, WireError> {
    hl7::ii(value(assertion, name)?, name, root)
}

fn cv<'a>(assertion: &'a Element, name: &'static str, system: Oid) -> Result<&'a str, WireError> {
    hl7::cv(value(assertion, name)?, name, system)
}

fn uzi(assertion: &Element, name: &'static str) -> Result<UziNumber, WireError> {
    UziNumber::parse(ii(assertion, name, hl7::UZI_ROOT)?)
        .map_err(|e| problem(name, AttributeProblem::from_id_error(e)))
}

/// The BSN in the body's `PatientLocationQueryRequest/RequestedPatientId`.
fn requested_patient(body: &Element) -> Result<Bsn, WireError> {
    if !body.is(XCPD_NS, "PatientLocationQueryRequest") {
        return Err(WireError::Structure(format!(
            "the SOAP Body holds `{}`, not a PatientLocationQueryRequest (namespace {XCPD_NS})",
            body.expanded_name()
        )));
    }
    let mut ids = body.children_named(XCPD_NS, REQUESTED_PATIENT_ID);
    let (Some(patient), None) = (ids.next(), ids.next()) else {
        return Err(WireError::Structure(format!(
            "the PatientLocationQueryRequest must hold exactly one RequestedPatientId \
             (namespace {XCPD_NS})"
        )));
    };
    // The helpers of hl7.rs name an attribute; here the value is an element.
    let as_element = |e: WireError| match e {
        WireError::Attribute { attribute, problem } => WireError::Value {
            element: attribute,
            problem,
        },
        other => other,
    };
    let extension = hl7::ii(patient, REQUESTED_PATIENT_ID, hl7::BSN_ROOT).map_err(as_element)?;
    if let Some(authority) = patient.attribute("assigningAuthorityName")
        && authority.trim_ascii() != BSN_AUTHORITY
    {
        return Err(WireError::Structure(format!(
            "RequestedPatientId assigningAuthorityName `{}` is not {BSN_AUTHORITY}",
            Excerpt::new(authority)
        )));
    }
    Bsn::parse(extension).map_err(|e| WireError::Value {
        element: REQUESTED_PATIENT_ID,
        problem: AttributeProblem::from_id_error(e),
    })
}

/// One place where records of the patient are available to the consulter, with consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The holder's exchange system: the subscription's `GatewaySystem` (`urn:oid:…`),
    /// written as given.
    pub home_community_id: String,
    /// The holder's source system: the subscription's `SourceSystem` (`urn:oid:…`), written as
    /// given.
    pub source_id: String,
    /// The dossier holder (dossierhouder).
    pub holder_ura: Ura,
    /// The data category the holder may make available.
    pub data_category: DataCategory,
}

/// The SOAP 1.2 response to an open question: WS-Addressing `Action` [`RESPONSE_ACTION`],
/// `MessageID` `urn:uuid:<message_id>`, `RelatesTo` the request's `MessageID`, and a
/// `PatientLocationQueryResponse` with one `PatientLocationResponse` per entry of `locations`,
/// in order; an empty list gives an empty `PatientLocationQueryResponse` (nothing available with
/// consent).
///
/// Each `PatientLocationResponse` holds, in the XCPD namespace: `HomeCommunityId`,
/// `CorrespondingPatientId` and `RequestedPatientId` (the BSN, root
/// `2.16.840.1.113883.2.4.6.3`, `assigningAuthorityName` `NLMINBIZA`: holders identify patients
/// by BSN too), then Mitz's additions `SourceId`, `author-institution` (root
/// `2.16.528.1.1007.3.3`, the holder's URA) and `event-code`, the data category as an HL7 `CV`
/// (`code`, `codeSystem` `2.16.840.1.113883.2.4.3.111.5.10.1`). `event-code` is otv's choice of
/// name: PRODUCT.md does not name the element, and this is the name of the closed question's
/// data-category attribute (`urn:ihe:iti:appc:2016:document-entry:event-code`), as
/// `author-institution` is of its holder attribute.
pub fn open_question_response(
    request_message_id: &str,
    message_id: Uuid,
    bsn: &Bsn,
    locations: &[Location],
) -> String {
    let patient_id = format!(
        r#"root="{bsn_root}" extension="{bsn}" assigningAuthorityName="{BSN_AUTHORITY}""#,
        bsn_root = hl7::BSN_ROOT.oid,
        bsn = escape(bsn.expose()),
    );
    let body = if locations.is_empty() {
        format!("    <xcpd:PatientLocationQueryResponse xmlns:xcpd=\"{XCPD_NS}\"/>\n")
    } else {
        let mut responses = String::new();
        for location in locations {
            responses.push_str(&format!(
                r#"      <xcpd:PatientLocationResponse>
        <xcpd:HomeCommunityId>{home}</xcpd:HomeCommunityId>
        <xcpd:CorrespondingPatientId {patient_id}/>
        <xcpd:RequestedPatientId {patient_id}/>
        <xcpd:SourceId>{source}</xcpd:SourceId>
        <xcpd:author-institution root="{ura_root}" extension="{ura}"/>
        <xcpd:event-code code="{code}" codeSystem="{code_system}"/>
      </xcpd:PatientLocationResponse>
"#,
                home = escape(&location.home_community_id),
                source = escape(&location.source_id),
                ura_root = hl7::URA_ROOT.oid,
                ura = escape(location.holder_ura.as_str()),
                code = escape(location.data_category.as_str()),
                code_system = hl7::DATA_CATEGORY_SYSTEM.oid,
            ));
        }
        format!(
            "    <xcpd:PatientLocationQueryResponse xmlns:xcpd=\"{XCPD_NS}\">\n{responses}    \
             </xcpd:PatientLocationQueryResponse>\n"
        )
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:wsa="{WSA_NS}">
  <soap:Header>
    <wsa:Action>{RESPONSE_ACTION}</wsa:Action>
    <wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>
    <wsa:RelatesTo>{relates_to}</wsa:RelatesTo>
  </soap:Header>
  <soap:Body>
{body}  </soap:Body>
</soap:Envelope>
"#,
        message_id = message_id.hyphenated(),
        relates_to = escape(request_message_id),
    )
}
