//! The FHIR R4 `Subscription` with which a dossier holder registers a patient: localization and
//! the subscription to consent notifications in one act (PRODUCT.md §7, §12). Example:
//! `../shared/fixtures/mitz/subscription.xml`.
//!
//! Reading happens in two steps, which are also the two error classes:
//! 1. FHIR: the bytes are read into a [`Subscription`], the resource as FHIR defines it. Whatever
//!    fails here is not valid FHIR ([`ErrorClass::Invalid`], 400): not JSON or XML, not a
//!    Subscription, an element of the wrong shape, `status`, `reason`, `criteria`, `channel` or
//!    `channel.type` missing, a code outside its required value set, an id, date, instant or OID
//!    that is not one.
//! 2. otv: [`SubscriptionRequest::from_resource`] applies what Mitz asks of a registration
//!    ([`ErrorClass::BusinessRule`], 422): `reason` `OTV`; `criteria`
//!    `Consent?_query=otv&patientid=<BSN>&providerid=<URA>&providertype=<org type>` with a valid
//!    BSN, URA and organisation type; `channel.type` `rest-hook`; an https `channel.endpoint`;
//!    `channel.payload` `application/fhir+json` or `application/fhir+xml`; the extensions
//!    `GatewaySystem` and `SourceSystem` (valueOid, required) and `Patient.birthDate`
//!    (valueDate, optional, a full date); no modifier extensions.
//!
//! Both steps report every problem they find, not only the first. Which statuses an interaction
//! allows is a third check, [`SubscriptionRequest::check_interaction`]: `requested` on create,
//! `requested`, `active` or `off` on update; `error` never (only the server sets it).
//!
//! Elements otv does not use (`meta`, `text`, `contact`, `error`, `channel.header`, unknown
//! extensions) are accepted and not kept: a read answer is rebuilt from what otv stores.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use otv_core::{Bsn, OrgType, Ura};

use crate::error::Excerpt;
use crate::xml;

use super::outcome::{ErrorClass, FhirError, Issue, IssueCode};
use super::read::{self, Node};
use super::values::{
    Criteria, bare_oid, check_endpoint, fhir_date, instant, is_fhir_id, parse_criteria,
};
use super::write::{self, Object};
use super::{FHIR_JSON, FHIR_XML, MAX_RESOURCE_BYTES};

/// Extension with the patient's birth date (valueDate).
pub const BIRTH_DATE_URL: &str = "http://fhir.nl/StructureDefinition/Patient.birthDate";
/// Extension with the OID of the holder's exchange system (valueOid); the open question's
/// `HomeCommunityId`.
pub const GATEWAY_SYSTEM_URL: &str = "http://fhir.nl/StructureDefinition/GatewaySystem";
/// Extension with the OID of the holder's source system (valueOid); the open question's
/// `SourceId`.
pub const SOURCE_SYSTEM_URL: &str = "http://fhir.nl/StructureDefinition/SourceSystem";
/// The `reason` of every otv subscription.
pub const REASON: &str = "OTV";

/// `Subscription.status` (FHIR `SubscriptionStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// `requested`: sent by the connector on create.
    Requested,
    /// `active`: notifications are sent.
    Active,
    /// `error`: delivery fails. Set by the server only.
    Error,
    /// `off`: deactivated; no notifications, not a location for the open question.
    Off,
}

impl SubscriptionStatus {
    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Requested => "requested",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Error => "error",
            SubscriptionStatus::Off => "off",
        }
    }

    /// The status for a FHIR code.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            SubscriptionStatus::Requested,
            SubscriptionStatus::Active,
            SubscriptionStatus::Error,
            SubscriptionStatus::Off,
        ]
        .into_iter()
        .find(|s| s.as_str() == code)
    }
}

/// `Subscription.channel.type` (FHIR `SubscriptionChannelType`). otv accepts only `rest-hook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the FHIR code, see `as_str`.
pub enum ChannelType {
    RestHook,
    Websocket,
    Email,
    Sms,
    Message,
}

impl ChannelType {
    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelType::RestHook => "rest-hook",
            ChannelType::Websocket => "websocket",
            ChannelType::Email => "email",
            ChannelType::Sms => "sms",
            ChannelType::Message => "message",
        }
    }

    /// The channel type for a FHIR code.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            ChannelType::RestHook,
            ChannelType::Websocket,
            ChannelType::Email,
            ChannelType::Sms,
            ChannelType::Message,
        ]
        .into_iter()
        .find(|t| t.as_str() == code)
    }
}

/// The format in which the subscriber wants its notifications (`channel.payload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// `application/fhir+json`.
    Json,
    /// `application/fhir+xml`.
    Xml,
}

impl PayloadType {
    /// The media type.
    pub fn media_type(self) -> &'static str {
        match self {
            PayloadType::Json => FHIR_JSON,
            PayloadType::Xml => FHIR_XML,
        }
    }

    /// The payload type for a media type, compared without regard to case. Parameters
    /// (`; fhirVersion=4.0`) are not accepted: Mitz names the bare media types.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        [PayloadType::Json, PayloadType::Xml]
            .into_iter()
            .find(|p| p.media_type().eq_ignore_ascii_case(media_type))
    }
}

/// A `Subscription` as FHIR defines it, read but not yet checked against otv's rules (step 1 of
/// the module documentation). Only the elements otv uses are kept.
///
/// `Debug` masks digit runs in `criteria`, which holds a BSN.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `id`: a valid FHIR id when present.
    pub id: Option<String>,
    /// `extension`, in document order.
    pub extensions: Vec<Extension>,
    /// `modifierExtension`, in document order. otv understands none.
    pub modifier_extensions: Vec<Extension>,
    /// `status`.
    pub status: SubscriptionStatus,
    /// `end`: when the subscription ends, if set.
    pub end: Option<DateTime<FixedOffset>>,
    /// `reason`.
    pub reason: String,
    /// `criteria`, as sent.
    pub criteria: String,
    /// `channel`.
    pub channel: Channel,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("extensions", &self.extensions)
            .field("modifier_extensions", &self.modifier_extensions)
            .field("status", &self.status)
            .field("end", &self.end)
            .field("reason", &self.reason)
            .field("criteria", &Excerpt::new(&self.criteria))
            .field("channel", &self.channel)
            .finish()
    }
}

/// `Subscription.channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    /// `channel.type`.
    pub channel_type: ChannelType,
    /// `channel.endpoint`, as sent.
    pub endpoint: Option<String>,
    /// `channel.payload`, as sent.
    pub payload: Option<String>,
}

/// One extension: its `url` and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// `url`.
    pub url: String,
    /// `value[x]`.
    pub value: ExtensionValue,
}

/// The value of an extension, as far as otv reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue {
    /// No `value[x]` (the extension has nested extensions instead, or nothing).
    Absent,
    /// `valueDate`: a valid FHIR date (`YYYY`, `YYYY-MM` or `YYYY-MM-DD`), as sent.
    Date(String),
    /// `valueOid`: a valid OID, as sent (`urn:oid:` prefix or, leniently, without).
    Oid(String),
    /// Another `value[x]`, by element name (`valueString`); its value is not read.
    Other(String),
}

/// A registration (abonnement) as otv acts on it: a valid `Subscription` that follows otv's
/// rules, reduced to what otv stores. `reason` is not a field: it is always `OTV`.
///
/// `Debug` never shows the BSN ([`Bsn`] redacts itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRequest {
    /// `id` as sent; on update it must equal the id in the URL, on create it is ignored.
    pub id: Option<String>,
    /// `status`: `requested`, `active` or `off`, never `error`.
    pub status: SubscriptionStatus,
    /// The patient: `patientid` in the criteria.
    pub bsn: Bsn,
    /// The dossier holder (dossierhouder): `providerid` in the criteria.
    pub holder_ura: Ura,
    /// The holder's organisation type (zorgaanbiedertype): `providertype` in the criteria.
    pub holder_type: OrgType,
    /// `channel.endpoint`: an https URL. Whether it is allowed for the connector is the
    /// server's question.
    pub endpoint: String,
    /// `channel.payload`.
    pub payload: PayloadType,
    /// The `Patient.birthDate` extension, if sent.
    pub birth_date: Option<NaiveDate>,
    /// The `GatewaySystem` extension: an OID without `urn:oid:`.
    pub gateway_system: String,
    /// The `SourceSystem` extension: an OID without `urn:oid:`.
    pub source_system: String,
    /// `end`, if sent. The server decides what it means for the registration.
    pub end: Option<DateTime<FixedOffset>>,
}

/// The interaction a Subscription arrives with, for [`SubscriptionRequest::check_interaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction<'a> {
    /// `POST Subscription` (also a bulk-import line).
    Create,
    /// `PUT Subscription/{id}`.
    Update {
        /// The id in the URL.
        id: &'a str,
    },
}

/// Reads a Subscription in FHIR JSON and checks it against otv's rules.
pub fn parse_subscription_json(input: &[u8]) -> Result<SubscriptionRequest, FhirError> {
    SubscriptionRequest::from_resource(&parse_subscription_resource_json(input)?)
}

/// Reads a Subscription in FHIR XML and checks it against otv's rules.
pub fn parse_subscription_xml(input: &[u8]) -> Result<SubscriptionRequest, FhirError> {
    SubscriptionRequest::from_resource(&parse_subscription_resource_xml(input)?)
}

/// Reads a Subscription in FHIR JSON as FHIR (step 1 only).
pub fn parse_subscription_resource_json(input: &[u8]) -> Result<Subscription, FhirError> {
    let value = read::load_json(input, MAX_RESOURCE_BYTES).map_err(FhirError::invalid)?;
    let node = read::json_root(&value, "Subscription").map_err(FhirError::invalid)?;
    read_subscription(node)
}

/// Reads a Subscription in FHIR XML as FHIR (step 1 only).
pub fn parse_subscription_resource_xml(input: &[u8]) -> Result<Subscription, FhirError> {
    let limits = xml::Limits {
        max_bytes: MAX_RESOURCE_BYTES,
        ..xml::Limits::DEFAULT
    };
    let root = read::load_xml(input, limits).map_err(FhirError::invalid)?;
    let node = read::xml_root(&root, "Subscription").map_err(FhirError::invalid)?;
    read_subscription(node)
}

/// The Subscription otv returns on read, as FHIR JSON: `request` with the server's `id` and
/// current `status`.
pub fn subscription_json(
    request: &SubscriptionRequest,
    id: &str,
    status: SubscriptionStatus,
) -> String {
    write::json(
        "Subscription",
        &subscription_object(&request.to_resource(Some(id), status)),
    )
}

/// The Subscription otv returns on read, as FHIR XML; see [`subscription_json`].
pub fn subscription_xml(
    request: &SubscriptionRequest,
    id: &str,
    status: SubscriptionStatus,
) -> String {
    write::xml(
        "Subscription",
        &subscription_object(&request.to_resource(Some(id), status)),
    )
}

/// Records an issue and goes on.
fn keep<T>(issues: &mut Vec<Issue>, result: Result<T, Issue>) -> Option<T> {
    result.map_err(|issue| issues.push(issue)).ok()
}

/// Step 1: a Subscription resource node to a [`Subscription`], reporting every FHIR problem.
pub(crate) fn read_subscription(node: Node<'_>) -> Result<Subscription, FhirError> {
    const S: &str = "Subscription";
    let mut issues = Vec::new();

    let id = keep(
        &mut issues,
        node.primitive(S, "id")
            .and_then(|id| id.map(|id| fhir_id(id, "Subscription.id")).transpose()),
    );
    let extensions = read_extensions(node, "extension", &mut issues);
    let modifier_extensions = read_extensions(node, "modifierExtension", &mut issues);
    let status = keep(
        &mut issues,
        node.required(S, "status").and_then(|code| {
            SubscriptionStatus::from_code(code).ok_or_else(|| {
                Issue::at(
                    IssueCode::Value,
                    "Subscription.status",
                    format!(
                        "`{}` is not a Subscription status (requested, active, error, off)",
                        Excerpt::new(code)
                    ),
                )
            })
        }),
    );
    let end = keep(
        &mut issues,
        node.primitive(S, "end").and_then(|end| {
            end.map(|end| {
                instant(end).ok_or_else(|| {
                    Issue::at(
                        IssueCode::Value,
                        "Subscription.end",
                        "is not a FHIR instant (YYYY-MM-DDThh:mm:ss with a time zone)",
                    )
                })
            })
            .transpose()
        }),
    );
    let reason = keep(&mut issues, node.required(S, "reason"));
    let criteria = keep(&mut issues, node.required(S, "criteria"));
    let channel = match keep(&mut issues, node.child(S, "channel")) {
        Some(Some(channel)) => read_channel(channel, &mut issues),
        Some(None) => {
            issues.push(Issue::at(
                IssueCode::Required,
                "Subscription.channel",
                "is required",
            ));
            None
        }
        None => None,
    };

    match (id, status, end, reason, criteria, channel) {
        (Some(id), Some(status), Some(end), Some(reason), Some(criteria), Some(channel))
            if issues.is_empty() =>
        {
            Ok(Subscription {
                id: id.map(str::to_owned),
                extensions,
                modifier_extensions,
                status,
                end,
                reason: reason.to_owned(),
                criteria: criteria.to_owned(),
                channel,
            })
        }
        _ => Err(FhirError::new(ErrorClass::Invalid, issues)),
    }
}

fn read_channel(node: Node<'_>, issues: &mut Vec<Issue>) -> Option<Channel> {
    const C: &str = "Subscription.channel";
    let channel_type = keep(
        issues,
        node.required(C, "type").and_then(|code| {
            ChannelType::from_code(code).ok_or_else(|| {
                Issue::at(
                    IssueCode::Value,
                    "Subscription.channel.type",
                    format!(
                        "`{}` is not a channel type (rest-hook, websocket, email, sms, message)",
                        Excerpt::new(code)
                    ),
                )
            })
        }),
    );
    let endpoint = keep(issues, node.primitive(C, "endpoint"));
    let payload = keep(issues, node.primitive(C, "payload"));
    Some(Channel {
        channel_type: channel_type?,
        endpoint: endpoint?.map(str::to_owned),
        payload: payload?.map(str::to_owned),
    })
}

/// The `extension` or `modifierExtension` elements of `node`.
fn read_extensions(node: Node<'_>, name: &str, issues: &mut Vec<Issue>) -> Vec<Extension> {
    let base = format!("Subscription.{name}");
    let Some(items) = keep(issues, node.children("Subscription", name)) else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| keep(issues, read_extension(item, &base, i)))
        .collect()
}

fn read_extension(node: Node<'_>, base: &str, index: usize) -> Result<Extension, Issue> {
    let Some(url) = node.url(&format!("{base}[{index}]"))? else {
        return Err(Issue::at(
            IssueCode::Required,
            format!("{base}[{index}].url"),
            "is required",
        ));
    };
    let path = format!("{base}[{}]", extension_label(url));
    let value = match node.value_element(&path)? {
        None => ExtensionValue::Absent,
        Some("valueDate") => {
            let value = node.required(&path, "valueDate")?;
            if fhir_date(value).is_none() {
                return Err(Issue::at(
                    IssueCode::Value,
                    format!("{path}.valueDate"),
                    "is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
                ));
            }
            ExtensionValue::Date(value.to_owned())
        }
        Some("valueOid") => {
            let value = node.required(&path, "valueOid")?;
            bare_oid(value).map_err(|rule| {
                Issue::at(
                    IssueCode::Value,
                    format!("{path}.valueOid"),
                    format!("`{}` {rule}", Excerpt::new(value)),
                )
            })?;
            ExtensionValue::Oid(value.to_owned())
        }
        Some(other) => ExtensionValue::Other(other.to_owned()),
    };
    Ok(Extension {
        url: url.to_owned(),
        value,
    })
}

/// How an extension is named in a path: the last segment of its URL
/// (`Subscription.extension[GatewaySystem]`).
fn extension_label(url: &str) -> String {
    Excerpt::new(url.rsplit('/').next().unwrap_or(url)).to_string()
}

/// A FHIR id: 1 to 64 letters, digits, `-` and `.`.
fn fhir_id<'a>(id: &'a str, path: &str) -> Result<&'a str, Issue> {
    if is_fhir_id(id) {
        Ok(id)
    } else {
        Err(Issue::at(
            IssueCode::Value,
            path,
            "is not a FHIR id (1 to 64 letters, digits, '-' and '.')",
        ))
    }
}

impl SubscriptionRequest {
    /// Step 2: checks a FHIR-valid Subscription against otv's rules, reporting every problem
    /// as a [`ErrorClass::BusinessRule`] error.
    pub fn from_resource(resource: &Subscription) -> Result<Self, FhirError> {
        let mut issues = Vec::new();
        let rule = |path: &str, text: String| Issue::at(IssueCode::BusinessRule, path, text);
        let required = |path: &str, text: &str| Issue::at(IssueCode::Required, path, text);

        if resource.status == SubscriptionStatus::Error {
            issues.push(rule(
                "Subscription.status",
                "`error` is set by otv, never by a connector: send `requested` (or `active` or \
                 `off` on update)"
                    .to_owned(),
            ));
        }
        if !resource.modifier_extensions.is_empty() {
            issues.push(Issue::at(
                IssueCode::NotSupported,
                "Subscription.modifierExtension",
                "otv understands no modifier extension, so it cannot process this Subscription",
            ));
        }
        if resource.reason != REASON {
            issues.push(rule(
                "Subscription.reason",
                format!(
                    "must be `{REASON}`, not `{}`",
                    Excerpt::new(&resource.reason)
                ),
            ));
        }
        let criteria = parse_criteria(&resource.criteria)
            .map_err(|problems| {
                issues.extend(
                    problems
                        .into_iter()
                        .map(|problem| rule("Subscription.criteria", problem)),
                );
            })
            .ok();

        let channel = &resource.channel;
        if channel.channel_type != ChannelType::RestHook {
            issues.push(rule(
                "Subscription.channel.type",
                format!(
                    "must be `rest-hook`, not `{}`: otv delivers notifications by HTTPS POST",
                    channel.channel_type.as_str()
                ),
            ));
        }
        let endpoint = match &channel.endpoint {
            None => {
                issues.push(required(
                    "Subscription.channel.endpoint",
                    "is required: the https URL to which otv sends notifications",
                ));
                None
            }
            Some(endpoint) => check_endpoint(endpoint)
                .map_err(|problem| {
                    issues.push(rule("Subscription.channel.endpoint", problem.to_owned()));
                })
                .ok()
                .map(|()| endpoint.clone()),
        };
        let payload = match &channel.payload {
            None => {
                issues.push(required(
                    "Subscription.channel.payload",
                    "is required: application/fhir+json or application/fhir+xml",
                ));
                None
            }
            Some(payload) => PayloadType::from_media_type(payload).or_else(|| {
                issues.push(rule(
                    "Subscription.channel.payload",
                    format!(
                        "must be application/fhir+json or application/fhir+xml, not `{}`",
                        Excerpt::new(payload)
                    ),
                ));
                None
            }),
        };

        let birth_date = match one_extension(resource, BIRTH_DATE_URL, "Patient.birthDate") {
            Err(issue) => {
                issues.push(issue);
                None
            }
            Ok(None) => Some(None),
            Ok(Some(ext)) => {
                let path = "Subscription.extension[Patient.birthDate]";
                match &ext.value {
                    ExtensionValue::Date(date) => match fhir_date(date) {
                        Some(Some(date)) => Some(Some(date)),
                        Some(None) => {
                            issues.push(rule(
                                &format!("{path}.valueDate"),
                                "must be a full date (YYYY-MM-DD)".to_owned(),
                            ));
                            None
                        }
                        None => {
                            issues.push(rule(
                                &format!("{path}.valueDate"),
                                "is not a date".to_owned(),
                            ));
                            None
                        }
                    },
                    other => {
                        issues.push(rule(path, wrong_value("valueDate", other)));
                        None
                    }
                }
            }
        };
        let gateway_system = oid_extension(
            resource,
            GATEWAY_SYSTEM_URL,
            "GatewaySystem",
            "the OID of the exchange system through which the holder is reached",
            &mut issues,
        );
        let source_system = oid_extension(
            resource,
            SOURCE_SYSTEM_URL,
            "SourceSystem",
            "the OID of the system that holds the record",
            &mut issues,
        );

        match (
            criteria,
            endpoint,
            payload,
            birth_date,
            gateway_system,
            source_system,
        ) {
            (
                Some(Criteria {
                    bsn,
                    holder_ura,
                    holder_type,
                }),
                Some(endpoint),
                Some(payload),
                Some(birth_date),
                Some(gateway_system),
                Some(source_system),
            ) if issues.is_empty() => Ok(SubscriptionRequest {
                id: resource.id.clone(),
                status: resource.status,
                bsn,
                holder_ura,
                holder_type,
                endpoint,
                payload,
                birth_date,
                gateway_system,
                source_system,
                end: resource.end,
            }),
            _ => Err(FhirError::new(ErrorClass::BusinessRule, issues)),
        }
    }

    /// Checks the status and id against the interaction: on create the status is `requested`
    /// (PRODUCT.md §12; a 422 otherwise); on update it may also be `active` or `off`, and an
    /// `id` in the resource must equal the one in the URL (a 400 otherwise; FHIR asks for the id
    /// on update, otv tolerates its absence). `error` was refused when the request was read.
    pub fn check_interaction(&self, interaction: Interaction<'_>) -> Result<(), FhirError> {
        match interaction {
            Interaction::Create if self.status != SubscriptionStatus::Requested => {
                Err(FhirError::business(Issue::at(
                    IssueCode::BusinessRule,
                    "Subscription.status",
                    format!(
                        "a new registration has status `requested`, not `{}`",
                        self.status.as_str()
                    ),
                )))
            }
            Interaction::Update { id } if self.id.as_deref().is_some_and(|own| own != id) => {
                Err(FhirError::invalid(Issue::at(
                    IssueCode::Invalid,
                    "Subscription.id",
                    "does not match the id in the URL",
                )))
            }
            _ => Ok(()),
        }
    }

    /// The `criteria` for this registration.
    pub fn criteria(&self) -> String {
        // BSN, URA and organisation type are digits and letters only: nothing to encode.
        format!(
            "Consent?_query=otv&patientid={}&providerid={}&providertype={}",
            self.bsn.expose(),
            self.holder_ura,
            self.holder_type
        )
    }

    /// The FHIR resource for this registration with `id` and `status`, OIDs with `urn:oid:`.
    pub fn to_resource(&self, id: Option<&str>, status: SubscriptionStatus) -> Subscription {
        let oid = |url: &str, oid: &str| Extension {
            url: url.to_owned(),
            value: ExtensionValue::Oid(format!("urn:oid:{oid}")),
        };
        let mut extensions = Vec::new();
        if let Some(date) = self.birth_date {
            extensions.push(Extension {
                url: BIRTH_DATE_URL.to_owned(),
                value: ExtensionValue::Date(date.format("%Y-%m-%d").to_string()),
            });
        }
        extensions.push(oid(GATEWAY_SYSTEM_URL, &self.gateway_system));
        extensions.push(oid(SOURCE_SYSTEM_URL, &self.source_system));
        Subscription {
            id: id.map(str::to_owned),
            extensions,
            modifier_extensions: Vec::new(),
            status,
            end: self.end,
            reason: REASON.to_owned(),
            criteria: self.criteria(),
            channel: Channel {
                channel_type: ChannelType::RestHook,
                endpoint: Some(self.endpoint.clone()),
                payload: Some(self.payload.media_type().to_owned()),
            },
        }
    }
}

/// The one extension with `url`: `Ok(None)` when absent, an error when repeated.
fn one_extension<'a>(
    resource: &'a Subscription,
    url: &str,
    label: &str,
) -> Result<Option<&'a Extension>, Issue> {
    let mut found = resource.extensions.iter().filter(|e| e.url == url);
    match (found.next(), found.next()) {
        (first, None) => Ok(first),
        (Some(_), Some(_)) => Err(Issue::at(
            IssueCode::BusinessRule,
            format!("Subscription.extension[{label}]"),
            "appears more than once",
        )),
        (None, Some(_)) => unreachable!("an iterator yields nothing after None"),
    }
}

/// The bare OID of the required valueOid extension `url`.
fn oid_extension(
    resource: &Subscription,
    url: &str,
    label: &str,
    meaning: &str,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    let path = format!("Subscription.extension[{label}]");
    match one_extension(resource, url, label) {
        Err(issue) => issues.push(issue),
        Ok(None) => issues.push(Issue::at(
            IssueCode::Required,
            path,
            format!("is required ({url}, valueOid): {meaning}"),
        )),
        Ok(Some(ext)) => match &ext.value {
            ExtensionValue::Oid(value) => match bare_oid(value) {
                Ok(bare) => return Some(bare.to_owned()),
                Err(problem) => issues.push(Issue::at(
                    IssueCode::BusinessRule,
                    format!("{path}.valueOid"),
                    format!("`{}` {problem}", Excerpt::new(value)),
                )),
            },
            other => issues.push(Issue::at(
                IssueCode::BusinessRule,
                path,
                wrong_value("valueOid", other),
            )),
        },
    }
    None
}

fn wrong_value(expected: &str, found: &ExtensionValue) -> String {
    let found = match found {
        ExtensionValue::Absent => "no value[x]".to_owned(),
        ExtensionValue::Date(_) => "`valueDate`".to_owned(),
        ExtensionValue::Oid(_) => "`valueOid`".to_owned(),
        ExtensionValue::Other(name) => format!("`{}`", Excerpt::new(name)),
    };
    format!("must have a `{expected}`, not {found}")
}

/// The FHIR form of a [`Subscription`], in R4 element order.
fn subscription_object(s: &Subscription) -> Object {
    Object::new()
        .optional("id", s.id.as_deref())
        .objects(
            "extension",
            s.extensions.iter().map(extension_object).collect(),
        )
        .objects(
            "modifierExtension",
            s.modifier_extensions.iter().map(extension_object).collect(),
        )
        .primitive("status", s.status.as_str())
        .optional(
            "end",
            s.end
                .map(|end| end.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        )
        .primitive("reason", &s.reason)
        .primitive("criteria", &s.criteria)
        .object(
            "channel",
            Object::new()
                .primitive("type", s.channel.channel_type.as_str())
                .optional("endpoint", s.channel.endpoint.as_deref())
                .optional("payload", s.channel.payload.as_deref()),
        )
}

/// An extension; a value otv did not read (`Other`) cannot be written and is left out.
fn extension_object(e: &Extension) -> Object {
    let object = Object::new().attribute("url", &e.url);
    match &e.value {
        ExtensionValue::Date(date) => object.primitive("valueDate", date),
        ExtensionValue::Oid(oid) => object.primitive("valueOid", oid),
        ExtensionValue::Absent | ExtensionValue::Other(_) => object,
    }
}
