//! The closed question (gesloten autorisatievraag) on the wire, as Mitz connectors send it
//! (PRODUCT.md §12): a SOAP 1.2 envelope with WS-Addressing headers whose body is an
//! `XACMLAuthzDecisionQuery` holding one XACML 3.0 `Request`, and the XACML `Response` otv sends
//! back.
//!
//! [`parse_closed_question`] turns the request into a [`ClosedQuestionRequest`] of valid
//! otv-core types or a [`WireError`] that names what is wrong; [`closed_question_response`]
//! writes the answer. Attributes are found by `Category` and `AttributeId`, values by the HL7v3
//! element's `root`/`extension` or `code`/`codeSystem`; prefixes and HL7 element names are the
//! sender's choice and are never looked at.
//!
//! This module decides nothing and does no IO: the decision is otv-core's, the transport the
//! server's. Elements it does not need (a `ds:Signature` or `saml:Issuer` in the query, extra
//! SOAP headers, attributes with other ids) are ignored, so connectors that send more still work.

use otv_core::{
    Bsn, DataCategory, Effect, OrgType, Organisation, Purpose, RoleCode, Ura, UziNumber,
};
use uuid::Uuid;

use crate::error::{AttributeProblem, Excerpt, WireError};
use crate::hl7::{self, Oid, problem};
use crate::soap::{self, SOAP_NS, WSA_NS};
use crate::xml::{Element, escape};

/// WS-Addressing `Action` of a closed question request.
pub const REQUEST_ACTION: &str = "XACMLAuthorizationDecisionQueryRequest";
/// WS-Addressing `Action` of the response.
pub const RESPONSE_ACTION: &str = "http://schemas.otv.nl/toestemmingsregister/XACMLAuthzDecisionQuery/IGeslotenAutorisatievraagService/XACMLAuthzDecisionQueryResponse";

/// SAML 2.0 profile of XACML 3.0, protocol namespace (the query element).
const QUERY_NS: &str = "urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14";
/// XACML 3.0 core namespace (request and response).
const XACML_NS: &str = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17";
/// XACML status code for a processed request.
const STATUS_OK: &str = "urn:oasis:names:tc:xacml:1.0:status:ok";

/// XACML attribute categories.
mod category {
    pub const RESOURCE: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource";
    pub const ACTION: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:action";
    pub const ACCESS_SUBJECT: &str = "urn:oasis:names:tc:xacml:1.0:subject-category:access-subject";
    pub const ENVIRONMENT: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:environment";
}

/// XACML attribute ids of the closed question (PRODUCT.md §12).
mod id {
    pub const RESOURCE_ID: &str = "urn:oasis:names:tc:xacml:2.0:resource:resource-id";
    pub const HOLDER_TYPE: &str =
        "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code";
    pub const HOLDER_URA: &str = "urn:ihe:iti:appc:2016:author-institution:id";
    pub const EVENT_CODE: &str = "urn:ihe:iti:appc:2016:document-entry:event-code";
    pub const ROLE: &str = "urn:oasis:names:tc:xacml:2.0:subject:role";
    pub const PROFESSIONAL: &str = "urn:ihe:iti:xua:2017:subject:provider-identifier";
    pub const MANDATED: &str = "urn:nl:otv:names:tc:1.0:subject:mandated";
    pub const CONSULTER_URA: &str = "urn:nl:otv:names:tc:1.0:subject:provider-institution";
    pub const CONSULTER_TYPE: &str =
        "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code";
    pub const PURPOSE: &str = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse";
}

/// A closed question as received: every identifier and code already valid.
///
/// `Debug` never shows the BSN ([`Bsn`] redacts itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedQuestionRequest {
    /// WS-Addressing `MessageID` of the request; the response's `RelatesTo`.
    pub message_id: String,
    /// WS-Addressing `To`, if sent.
    pub to: Option<String>,
    /// WS-Addressing `Action` (always [`REQUEST_ACTION`]; kept for the audit record).
    pub action: String,
    /// The patient (resource `resource-id`).
    pub bsn: Bsn,
    /// The dossier holder (dossierhouder) asking: `author-institution:id` and
    /// `healthcare-facility-type-code`.
    pub holder: Organisation,
    /// The consulting provider (raadpleger) that would receive the data: subject
    /// `provider-institution` and `consulting-healthcare-facility-type-code`.
    pub consulter: Organisation,
    /// The responsible professional at the consulter (subject `provider-identifier`).
    pub professional: UziNumber,
    /// The professional's role (subject `role`).
    pub role: RoleCode,
    /// The mandated assistant (gemandateerde) acting for the professional, if any
    /// (subject `urn:nl:otv:names:tc:1.0:subject:mandated`).
    pub mandated: Option<UziNumber>,
    /// The data categories asked, one per action block, in request order. Never empty.
    pub data_categories: Vec<DataCategory>,
    /// The purpose of use (environment `purposeofuse`).
    pub purpose: Purpose,
}

/// The decision for one data category as XACML states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The holder may make the data available.
    Permit,
    /// The holder may not.
    Deny,
    /// otv could not decide (an error inside otv). Clients treat it as no.
    Indeterminate,
}

impl Decision {
    /// The XACML `Decision` text: `Permit`, `Deny` or `Indeterminate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Permit => "Permit",
            Decision::Deny => "Deny",
            Decision::Indeterminate => "Indeterminate",
        }
    }
}

impl From<Effect> for Decision {
    fn from(effect: Effect) -> Self {
        match effect {
            Effect::Permit => Decision::Permit,
            Effect::Deny => Decision::Deny,
        }
    }
}

/// Reads a closed question. Any [`WireError`] is the sender's fault (a SOAP `Sender` fault).
pub fn parse_closed_question(xml: &[u8]) -> Result<ClosedQuestionRequest, WireError> {
    let envelope = soap::read_envelope(xml)?;
    let addressing = soap::read_addressing(envelope.header.as_ref(), REQUEST_ACTION)?;

    let query = &envelope.body;
    if !query.is(QUERY_NS, "XACMLAuthzDecisionQuery") {
        return Err(WireError::Structure(format!(
            "the SOAP Body holds `{}`, not an XACMLAuthzDecisionQuery (namespace {QUERY_NS})",
            query.expanded_name()
        )));
    }
    let mut requests = query.children_named(XACML_NS, "Request");
    let (Some(request), None) = (requests.next(), requests.next()) else {
        return Err(WireError::Structure(format!(
            "the XACMLAuthzDecisionQuery must hold exactly one XACML 3.0 Request \
             (namespace {XACML_NS})"
        )));
    };
    let blocks = Blocks::of(request)?;

    let bsn = Bsn::parse(ii(blocks.resource, id::RESOURCE_ID, hl7::BSN_ROOT)?)
        .map_err(|e| problem(id::RESOURCE_ID, AttributeProblem::from_id_error(e)))?;
    let holder = Organisation {
        ura: ura(blocks.resource, id::HOLDER_URA)?,
        organisation_type: org_type(blocks.resource, id::HOLDER_TYPE)?,
    };
    let data_categories = data_categories(&blocks.actions)?;
    let role = RoleCode::parse(cv(blocks.subject, id::ROLE, hl7::ROLE_SYSTEM)?)
        .map_err(|e| problem(id::ROLE, AttributeProblem::from_id_error(e)))?;
    let professional = uzi(blocks.subject, id::PROFESSIONAL)?;
    let mandated = find(blocks.subject, id::MANDATED)?
        .map(|_| uzi(blocks.subject, id::MANDATED))
        .transpose()?;
    let consulter = Organisation {
        ura: ura(blocks.subject, id::CONSULTER_URA)?,
        organisation_type: org_type(blocks.subject, id::CONSULTER_TYPE)?,
    };
    let purpose_code = cv(blocks.environment, id::PURPOSE, hl7::PURPOSE_SYSTEM)?;
    let purpose = Purpose::parse(purpose_code)
        .map_err(|_| WireError::UnsupportedPurpose(Excerpt::new(purpose_code)))?;

    Ok(ClosedQuestionRequest {
        message_id: addressing.message_id,
        to: addressing.to,
        action: REQUEST_ACTION.to_owned(),
        bsn,
        holder,
        consulter,
        professional,
        role,
        mandated,
        data_categories,
        purpose,
    })
}

/// The `Attributes` blocks of a request by category. Blocks of other categories are ignored.
struct Blocks<'a> {
    resource: Option<&'a Element>,
    actions: Vec<&'a Element>,
    subject: Option<&'a Element>,
    environment: Option<&'a Element>,
}

impl<'a> Blocks<'a> {
    fn of(request: &'a Element) -> Result<Self, WireError> {
        // Both would ask for a different answer shape than one Result per data category, so
        // answering them the usual way would mislead the sender.
        if matches!(
            request.attribute("CombinedDecision").map(str::trim_ascii),
            Some("true" | "1")
        ) {
            return Err(WireError::Structure(
                "CombinedDecision=\"true\" is not supported: otv answers one Result per data \
                 category"
                    .to_owned(),
            ));
        }
        if request
            .children_named(XACML_NS, "MultiRequests")
            .next()
            .is_some()
        {
            return Err(WireError::Structure(
                "MultiRequests is not supported: send one action Attributes block per data \
                 category"
                    .to_owned(),
            ));
        }

        let mut blocks = Blocks {
            resource: None,
            actions: Vec::new(),
            subject: None,
            environment: None,
        };
        for block in request.children_named(XACML_NS, "Attributes") {
            let category = block
                .attribute("Category")
                .map(str::trim_ascii)
                .ok_or_else(|| {
                    WireError::Structure("an XACML Attributes element has no Category".to_owned())
                })?;
            if block
                .children_named(XACML_NS, "Attribute")
                .any(|a| a.attribute("AttributeId").is_none())
            {
                return Err(WireError::Structure(format!(
                    "an XACML Attribute in category {} has no AttributeId",
                    Excerpt::new(category)
                )));
            }
            let (slot, name) = match category {
                category::ACTION => {
                    blocks.actions.push(block);
                    continue;
                }
                category::RESOURCE => (&mut blocks.resource, "resource"),
                category::ACCESS_SUBJECT => (&mut blocks.subject, "access-subject"),
                category::ENVIRONMENT => (&mut blocks.environment, "environment"),
                _ => continue,
            };
            if slot.is_some() {
                return Err(WireError::Structure(format!(
                    "more than one XACML Attributes block of category {name}"
                )));
            }
            *slot = Some(block);
        }
        Ok(blocks)
    }
}

/// The attribute `id` in `block`, if present; an error if it appears more than once.
fn find<'a>(
    block: Option<&'a Element>,
    id: &'static str,
) -> Result<Option<&'a Element>, WireError> {
    let mut found = block.into_iter().flat_map(|b| {
        b.children_named(XACML_NS, "Attribute")
            .filter(move |a| a.attribute("AttributeId").map(str::trim_ascii) == Some(id))
    });
    match (found.next(), found.next()) {
        (first, None) => Ok(first),
        (_, Some(_)) => Err(problem(id, AttributeProblem::Repeated)),
    }
}

/// The HL7 value of the required attribute `id` in `block`.
fn value<'a>(block: Option<&'a Element>, id: &'static str) -> Result<&'a Element, WireError> {
    let attribute = find(block, id)?.ok_or(problem(id, AttributeProblem::Missing))?;
    let mut values = attribute.children_named(XACML_NS, "AttributeValue");
    match (values.next(), values.next()) {
        (Some(v), None) => hl7::value_in(v, id),
        (None, _) => Err(problem(id, AttributeProblem::NoValue)),
        (Some(_), Some(_)) => Err(problem(id, AttributeProblem::SeveralValues)),
    }
}

fn ii<'a>(block: Option<&'a Element>, id: &'static str, root: Oid) -> Result<&'a str, WireError> {
    hl7::ii(value(block, id)?, id, root)
}

fn cv<'a>(block: Option<&'a Element>, id: &'static str, system: Oid) -> Result<&'a str, WireError> {
    hl7::cv(value(block, id)?, id, system)
}

fn ura(block: Option<&Element>, id: &'static str) -> Result<Ura, WireError> {
    Ura::parse(ii(block, id, hl7::URA_ROOT)?)
        .map_err(|e| problem(id, AttributeProblem::from_id_error(e)))
}

fn uzi(block: Option<&Element>, id: &'static str) -> Result<UziNumber, WireError> {
    UziNumber::parse(ii(block, id, hl7::UZI_ROOT)?)
        .map_err(|e| problem(id, AttributeProblem::from_id_error(e)))
}

fn org_type(block: Option<&Element>, id: &'static str) -> Result<OrgType, WireError> {
    OrgType::parse(cv(block, id, hl7::ORG_TYPE_SYSTEM)?)
        .map_err(|e| problem(id, AttributeProblem::from_id_error(e)))
}

/// One data category per action block, in document order; at least one.
fn data_categories(actions: &[&Element]) -> Result<Vec<DataCategory>, WireError> {
    if actions.is_empty() {
        return Err(problem(id::EVENT_CODE, AttributeProblem::Missing));
    }
    actions
        .iter()
        .map(|&block| {
            let code = cv(Some(block), id::EVENT_CODE, hl7::DATA_CATEGORY_SYSTEM)?;
            DataCategory::parse(code)
                .map_err(|e| problem(id::EVENT_CODE, AttributeProblem::from_id_error(e)))
        })
        .collect()
}

/// The SOAP 1.2 response to a closed question: WS-Addressing `Action` [`RESPONSE_ACTION`],
/// `MessageID` `urn:uuid:<message_id>`, `RelatesTo` the request's `MessageID`, and an XACML
/// `Response` with one `Result` per entry of `outcomes`, in order. Each `Result` echoes the BSN,
/// the holder's URA and the data category as attributes in the request's HL7 shapes.
///
/// `message_id` is the response's own id; the server passes a fresh UUID (v4 or v7), tests a
/// fixed one. `outcomes` is never empty for a request that parsed, since a request asks at least
/// one data category.
pub fn closed_question_response(
    request_message_id: &str,
    message_id: Uuid,
    bsn: &Bsn,
    holder_ura: &Ura,
    outcomes: &[(DataCategory, Decision)],
) -> String {
    let mut results = String::new();
    for (data_category, decision) in outcomes {
        results.push_str(&format!(
            r#"      <Result>
        <Decision>{decision}</Decision>
        <Status>
          <StatusCode Value="{STATUS_OK}"/>
        </Status>
        <Attributes Category="{resource}">
          <Attribute AttributeId="{resource_id}" IncludeInResult="true">
            <AttributeValue DataType="urn:hl7-org:v3#II">
              <InstanceIdentifier extension="{bsn}" root="{bsn_root}" xmlns="{hl7}"/>
            </AttributeValue>
          </Attribute>
          <Attribute AttributeId="{holder_ura_id}" IncludeInResult="true">
            <AttributeValue DataType="urn:hl7-org:v3#II">
              <InstanceIdentifier extension="{ura}" root="{ura_root}" xmlns="{hl7}"/>
            </AttributeValue>
          </Attribute>
        </Attributes>
        <Attributes Category="{action}">
          <Attribute AttributeId="{event_code}" IncludeInResult="true">
            <AttributeValue DataType="urn:hl7-org:v3#CV">
              <CodedValue code="{code}" codeSystem="{code_system}" xmlns="{hl7}"/>
            </AttributeValue>
          </Attribute>
        </Attributes>
      </Result>
"#,
            decision = decision.as_str(),
            resource = category::RESOURCE,
            resource_id = id::RESOURCE_ID,
            bsn = escape(bsn.expose()),
            bsn_root = hl7::BSN_ROOT.oid,
            hl7 = hl7::HL7_NS,
            holder_ura_id = id::HOLDER_URA,
            ura = escape(holder_ura.as_str()),
            ura_root = hl7::URA_ROOT.oid,
            action = category::ACTION,
            event_code = id::EVENT_CODE,
            code = escape(data_category.as_str()),
            code_system = hl7::DATA_CATEGORY_SYSTEM.oid,
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:wsa="{WSA_NS}">
  <soap:Header>
    <wsa:Action>{RESPONSE_ACTION}</wsa:Action>
    <wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>
    <wsa:RelatesTo>{relates_to}</wsa:RelatesTo>
  </soap:Header>
  <soap:Body>
    <Response xmlns="{XACML_NS}">
{results}    </Response>
  </soap:Body>
</soap:Envelope>
"#,
        message_id = message_id.hyphenated(),
        relates_to = escape(request_message_id),
    )
}
