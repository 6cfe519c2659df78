//! Migration (PRODUCT.md §9): the FHIR R4 `Consent` resources with which a provider hands over
//! the consents it kept locally, shaped like the notification Consents of §12 (example:
//! `../shared/fixtures/mitz/notification-bundle.xml`), in a `batch` Bundle (FHIR JSON or XML)
//! or one per NDJSON line.
//!
//! What a Consent says, element by element:
//! - `status`: `active` = yes (permit), `inactive` = no (deny). `draft`, `proposed`, `rejected`
//!   and `entered-in-error` say no answer and are refused (422); another code is not FHIR (400).
//! - `scope`: must hold the coding `consentscope#patient-privacy` (422 otherwise).
//! - `category`: exactly one coding in the data-category system
//!   (`http://fhir.nl/otv/CodeSystem/gegevenscategorie`), e.g. `GGC002`.
//! - `extension` `http://fhir.nl/StructureDefinition/OTV-ProviderCategory` (at least one): one
//!   consulting category each (`valueCodeableConcept`, system
//!   `…/raadplegende-zorgaanbiedercategorie`). A Consent answers for every category it names.
//! - `patient`: a reference to a `Patient` with a BSN identifier, resolved against the Bundle's
//!   entries (`fullUrl`, or `Patient/<id>`) or `Consent.contained` (`#id`); or a logical
//!   reference (`patient.identifier` with the BSN system).
//! - `provision.actor` with role `v3-ParticipationType#CST` (exactly one): the dossier holder, a
//!   reference to an `Organization` with a URA identifier and, optionally, its organisation type
//!   (`type` coding in the organisation-type system), resolved the same way; or a logical
//!   reference with the URA system (then the type comes from the provider directory).
//! - `provision.type`: `permit` or absent (the answer is in `status`; `deny` is refused as
//!   ambiguous). `provision.period.start`, else `dateTime`: from when the answer holds (a full
//!   date or an instant; partial dates are refused). `provision.period.end` is refused: a
//!   migrated answer is open-ended. `modifierExtension` is refused (otv understands none).
//!   Everything else (`text`, `meta`, `provision.purpose`, `policy`, …) is accepted and not used.
//!
//! Like the Subscription codec, problems of FHIR itself are [`ErrorClass::Invalid`] (400) and
//! otv's rules [`ErrorClass::BusinessRule`] (422); every problem found is reported with its FHIR
//! path (referenced resources through FHIRPath `resolve()`, e.g.
//! `Consent.patient.resolve().identifier`), and no text repeats a BSN. Which answer keys a
//! Consent becomes (the catalogue), and whether the connector may act for the holder, is the
//! server's business (`otv_server::migration`).

use chrono::{DateTime, NaiveTime, Utc};
use otv_core::{Bsn, CategoryCode, DataCategory, Effect, OrgType, Ura};

use crate::error::Excerpt;
use crate::xml;

use super::bundle::batch_entries;
use super::ndjson::NdjsonLineError;
use super::outcome::{ErrorClass, FhirError, Issue, IssueCode};
use super::read::{self, FHIR_NS, Node};
use super::values::{
    BSN_SYSTEM, CONSENT_SCOPE_PRIVACY, CONSENT_SCOPE_SYSTEM, CONSULTING_CATEGORY_SYSTEM,
    CUSTODIAN_ROLE, DATA_CATEGORY_SYSTEM, ORGANISATION_TYPE_SYSTEM, PARTICIPATION_TYPE_SYSTEM,
    PROVIDER_CATEGORY_URL, URA_SYSTEM, fhir_date, instant,
};
use super::{MAX_BATCH_ENTRIES, MAX_RESOURCE_BYTES};

/// The largest batch Bundle of Consents accepted, in bytes (a Consent with its Patient and
/// Organization in FHIR XML is 3 to 8 KiB).
pub const MAX_CONSENT_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// The most XML elements in one batch Bundle of Consents.
pub const MAX_CONSENT_BATCH_XML_ELEMENTS: usize = 200 * MAX_BATCH_ENTRIES;

/// One Consent to migrate, as otv acts on it. `Debug` never shows the BSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationConsent {
    /// `Consent.id`, as sent.
    pub id: Option<String>,
    /// `status`: `active` is permit, `inactive` deny.
    pub effect: Effect,
    /// The data category (`category`).
    pub data_category: DataCategory,
    /// The consulting categories (the `OTV-ProviderCategory` extensions), each once, in
    /// document order.
    pub consulters: Vec<CategoryCode>,
    /// The patient.
    pub bsn: Bsn,
    /// The dossier holder (the `CST` actor's Organization).
    pub holder_ura: Ura,
    /// The holder's organisation type, when the Organization gives it.
    pub holder_type: Option<OrgType>,
    /// `provision.period.start`, else `dateTime`; `None` when neither is given.
    pub valid_from: Option<DateTime<Utc>>,
}

/// One entry of a batch Bundle of Consents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsentBatchEntry {
    /// `POST Consent`: the Consent, or why it cannot be migrated.
    Consent(Result<MigrationConsent, FhirError>),
    /// `POST Patient` or `POST Organization`: a resource the Consents refer to; read with them,
    /// never stored on its own.
    Referenced,
    /// Any other entry, refused.
    Refused(FhirError),
}

/// Reads one Consent in FHIR JSON (references resolve only to `Consent.contained`, or are
/// logical).
pub fn parse_consent_json(input: &[u8]) -> Result<MigrationConsent, FhirError> {
    let value = read::load_json(input, MAX_RESOURCE_BYTES).map_err(FhirError::invalid)?;
    let node = read::json_root(&value, "Consent").map_err(FhirError::invalid)?;
    read_consent(node, &[])
}

/// Reads line `line_number` of a migration NDJSON file: one Consent in FHIR JSON. `None` for a
/// line of only whitespace; a trailing `\n` or `\r\n` is ignored.
pub fn parse_consent_ndjson_line(
    line_number: u64,
    line: &[u8],
) -> Option<Result<MigrationConsent, NdjsonLineError>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(parse_consent_json(line).map_err(|error| NdjsonLineError {
        line: line_number,
        error,
    }))
}

/// Reads a batch Bundle of Consents in FHIR JSON into its entries, in order.
pub fn parse_consent_batch_json(input: &[u8]) -> Result<Vec<ConsentBatchEntry>, FhirError> {
    let value = read::load_json(input, MAX_CONSENT_BATCH_BYTES).map_err(FhirError::invalid)?;
    read_batch(read::json_root(&value, "Bundle").map_err(FhirError::invalid)?)
}

/// Reads a batch Bundle of Consents in FHIR XML into its entries, in order.
pub fn parse_consent_batch_xml(input: &[u8]) -> Result<Vec<ConsentBatchEntry>, FhirError> {
    let limits = xml::Limits {
        max_bytes: MAX_CONSENT_BATCH_BYTES,
        max_elements: MAX_CONSENT_BATCH_XML_ELEMENTS,
    };
    let root = read::load_xml(input, limits).map_err(FhirError::invalid)?;
    read_batch(read::xml_root(&root, "Bundle").map_err(FhirError::invalid)?)
}

/// A resource of the Bundle that a reference may name: its `fullUrl` and `Type/id`.
struct Target<'a> {
    full_url: Option<&'a str>,
    local: Option<String>,
    resource: Node<'a>,
}

fn read_batch(bundle: Node<'_>) -> Result<Vec<ConsentBatchEntry>, FhirError> {
    let entries = batch_entries(bundle)?;
    let mut targets = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Ok(entry) = entry else { continue };
        let path = format!("Bundle.entry[{i}]");
        let (Ok(full_url), Ok(Some(resource))) = (
            entry.primitive(&path, "fullUrl"),
            entry.resource(&path, "resource"),
        ) else {
            continue;
        };
        let local = match (resource.resource_type(), resource.primitive("", "id")) {
            (Some(t), Ok(Some(id))) => Some(format!("{t}/{id}")),
            _ => None,
        };
        targets.push(Target {
            full_url,
            local,
            resource,
        });
    }
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, entry)| match entry {
            Err(issue) => ConsentBatchEntry::Refused(FhirError::invalid(issue)),
            Ok(entry) => read_entry(entry, i, &targets),
        })
        .collect())
}

fn read_entry(entry: Node<'_>, index: usize, targets: &[Target<'_>]) -> ConsentBatchEntry {
    let path = format!("Bundle.entry[{index}]");
    let request_path = format!("{path}.request");
    let refused = |class: ErrorClass, code, at: String, text: String| {
        ConsentBatchEntry::Refused(FhirError::new(class, vec![Issue::at(code, at, text)]))
    };
    let request = match entry.child(&path, "request") {
        Err(issue) => return ConsentBatchEntry::Refused(FhirError::invalid(issue)),
        Ok(None) => {
            return refused(
                ErrorClass::Invalid,
                IssueCode::Required,
                request_path,
                "is required in a batch entry".into(),
            );
        }
        Ok(Some(request)) => request,
    };
    let (method, url) = match (
        request.required(&request_path, "method"),
        request.required(&request_path, "url"),
    ) {
        (Ok(method), Ok(url)) => (method, url),
        (Err(issue), _) | (_, Err(issue)) => {
            return ConsentBatchEntry::Refused(FhirError::invalid(issue));
        }
    };
    if method != "POST" {
        return refused(
            ErrorClass::BusinessRule,
            IssueCode::NotSupported,
            format!("{request_path}.method"),
            format!(
                "a migration batch takes POST, not `{}`",
                Excerpt::new(method)
            ),
        );
    }
    let resource = match entry.resource(&path, "resource") {
        Err(issue) => return ConsentBatchEntry::Refused(FhirError::invalid(issue)),
        Ok(None) => {
            return refused(
                ErrorClass::Invalid,
                IssueCode::Required,
                format!("{path}.resource"),
                "is required for POST".into(),
            );
        }
        Ok(Some(resource)) => resource,
    };
    let resource_type = resource.resource_type().unwrap_or_default();
    if resource_type != url {
        return refused(
            ErrorClass::Invalid,
            IssueCode::Invalid,
            format!("{request_path}.url"),
            format!(
                "`{}` does not name the entry's resource type",
                Excerpt::new(url)
            ),
        );
    }
    match resource_type {
        "Consent" => ConsentBatchEntry::Consent(read_consent(resource, targets)),
        "Patient" | "Organization" => ConsentBatchEntry::Referenced,
        other => refused(
            ErrorClass::BusinessRule,
            IssueCode::NotSupported,
            format!("{request_path}.url"),
            format!(
                "a migration batch holds Consents and the Patients and Organizations they \
                 refer to, not `{}`",
                Excerpt::new(other)
            ),
        ),
    }
}

/// Issues found so far, each with its class.
#[derive(Default)]
struct Problems(Vec<(ErrorClass, Issue)>);

impl Problems {
    fn invalid(&mut self, issue: Issue) {
        self.0.push((ErrorClass::Invalid, issue));
    }

    fn rule(&mut self, code: IssueCode, path: impl Into<String>, text: impl Into<String>) {
        self.0
            .push((ErrorClass::BusinessRule, Issue::at(code, path, text)));
    }

    /// The value, or `None` with the issue recorded as not valid FHIR.
    fn keep<T>(&mut self, result: Result<T, Issue>) -> Option<T> {
        result.map_err(|issue| self.invalid(issue)).ok()
    }

    fn into_error(self) -> FhirError {
        let class = if self.0.iter().any(|(c, _)| *c == ErrorClass::Invalid) {
            ErrorClass::Invalid
        } else {
            ErrorClass::BusinessRule
        };
        FhirError::new(class, self.0.into_iter().map(|(_, i)| i).collect())
    }
}

const C: &str = "Consent";

/// A Consent resource node to a [`MigrationConsent`], reporting every problem.
fn read_consent(node: Node<'_>, targets: &[Target<'_>]) -> Result<MigrationConsent, FhirError> {
    let mut p = Problems::default();

    let id = p.keep(node.primitive(C, "id")).flatten();
    if let Some(modifiers) = p.keep(node.items(C, "modifierExtension"))
        && !modifiers.is_empty()
    {
        p.rule(
            IssueCode::NotSupported,
            "Consent.modifierExtension",
            "otv understands no modifier extension, so it cannot migrate this Consent",
        );
    }
    let effect = match p.keep(node.required(C, "status")) {
        Some("active") => Some(Effect::Permit),
        Some("inactive") => Some(Effect::Deny),
        Some(status @ ("draft" | "proposed" | "rejected" | "entered-in-error")) => {
            p.rule(
                IssueCode::BusinessRule,
                "Consent.status",
                format!(
                    "a `{status}` Consent is no answer: migrate `active` (yes) or `inactive` (no)"
                ),
            );
            None
        }
        Some(other) => {
            p.invalid(Issue::at(
                IssueCode::Value,
                "Consent.status",
                format!(
                    "`{}` is not a Consent status (draft, proposed, active, rejected, inactive, \
                     entered-in-error)",
                    Excerpt::new(other)
                ),
            ));
            None
        }
        None => None,
    };
    read_scope(node, &mut p);
    let data_category = read_data_category(node, &mut p);
    let consulters = read_consulters(node, &mut p);
    let contained = contained_resources(node, &mut p);
    let bsn = read_patient(node, targets, &contained, &mut p);
    let date_time = read_moment(node, C, "dateTime", &mut p);
    let (holder, period_start) = match p.keep(node.child(C, "provision")) {
        Some(Some(provision)) => read_provision(provision, targets, &contained, &mut p),
        Some(None) => {
            p.invalid(Issue::at(
                IssueCode::Required,
                "Consent.provision",
                "is required: its actor with role CST names the dossier holder",
            ));
            (None, None)
        }
        None => (None, None),
    };

    match (effect, data_category, bsn, holder) {
        (Some(effect), Some(data_category), Some(bsn), Some((holder_ura, holder_type)))
            if p.0.is_empty() =>
        {
            Ok(MigrationConsent {
                id: id.map(str::to_owned),
                effect,
                data_category,
                consulters,
                bsn,
                holder_ura,
                holder_type,
                valid_from: period_start.or(date_time),
            })
        }
        _ => Err(p.into_error()),
    }
}

/// The codings of a CodeableConcept: (system, code) pairs, as sent.
fn codings<'a>(
    concept: Node<'a>,
    path: &str,
    p: &mut Problems,
) -> Vec<(Option<&'a str>, Option<&'a str>, String)> {
    let Some(items) = p.keep(concept.children(path, "coding")) else {
        return Vec::new();
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, coding)| {
            let at = format!("{path}.coding[{i}]");
            let system = p.keep(coding.primitive(&at, "system"))?;
            let code = p.keep(coding.primitive(&at, "code"))?;
            Some((system, code, at))
        })
        .collect()
}

fn read_scope(node: Node<'_>, p: &mut Problems) {
    const PATH: &str = "Consent.scope";
    let Some(scope) = p.keep(node.child(C, "scope")) else {
        return;
    };
    let Some(scope) = scope else {
        p.invalid(Issue::at(
            IssueCode::Required,
            PATH,
            "is required (consentscope#patient-privacy)",
        ));
        return;
    };
    let privacy = codings(scope, PATH, p)
        .into_iter()
        .any(|(system, code, _)| {
            system == Some(CONSENT_SCOPE_SYSTEM) && code == Some(CONSENT_SCOPE_PRIVACY)
        });
    if !privacy {
        p.rule(
            IssueCode::BusinessRule,
            PATH,
            format!("must hold the coding {CONSENT_SCOPE_SYSTEM}#{CONSENT_SCOPE_PRIVACY}"),
        );
    }
}

fn read_data_category(node: Node<'_>, p: &mut Problems) -> Option<DataCategory> {
    let categories = p.keep(node.children(C, "category"))?;
    let mut found = Vec::new();
    for (i, category) in categories.into_iter().enumerate() {
        let path = format!("Consent.category[{i}]");
        for (system, code, at) in codings(category, &path, p) {
            if system == Some(DATA_CATEGORY_SYSTEM) {
                found.push((code, at));
            }
        }
    }
    match found.as_slice() {
        [] => {
            p.rule(
                IssueCode::Required,
                "Consent.category",
                format!(
                    "must hold one coding of the data categories ({DATA_CATEGORY_SYSTEM}), e.g. GGC002"
                ),
            );
            None
        }
        [(code, at)] => match code.map(DataCategory::parse) {
            Some(Ok(category)) => Some(category),
            Some(Err(e)) => {
                p.rule(IssueCode::CodeInvalid, format!("{at}.code"), e.rule);
                None
            }
            None => {
                p.rule(IssueCode::Required, format!("{at}.code"), "is required");
                None
            }
        },
        _ => {
            p.rule(
                IssueCode::BusinessRule,
                "Consent.category",
                "names more than one data category: send one Consent per data category",
            );
            None
        }
    }
}

fn read_consulters(node: Node<'_>, p: &mut Problems) -> Vec<CategoryCode> {
    let Some(extensions) = p.keep(node.items(C, "extension")) else {
        return Vec::new();
    };
    let mut consulters: Vec<CategoryCode> = Vec::new();
    for (i, extension) in extensions.into_iter().enumerate() {
        let Some(extension) = p.keep(extension) else {
            continue;
        };
        let at = format!("Consent.extension[{i}]");
        let Some(url) = p.keep(extension.url(&at)).flatten() else {
            p.invalid(Issue::at(
                IssueCode::Required,
                format!("{at}.url"),
                "is required",
            ));
            continue;
        };
        if url != PROVIDER_CATEGORY_URL {
            continue;
        }
        let at = format!(
            "Consent.extension[OTV-ProviderCategory][{}]",
            consulters.len()
        );
        let concept = match p.keep(extension.child(&at, "valueCodeableConcept")) {
            Some(Some(concept)) => concept,
            Some(None) => {
                p.rule(
                    IssueCode::Required,
                    format!("{at}.valueCodeableConcept"),
                    "is required: the consulting category",
                );
                continue;
            }
            None => continue,
        };
        let path = format!("{at}.valueCodeableConcept");
        let codes: Vec<_> = codings(concept, &path, p)
            .into_iter()
            .filter(|(system, _, _)| *system == Some(CONSULTING_CATEGORY_SYSTEM))
            .collect();
        match codes.as_slice() {
            [(_, Some(code), at)] => match CategoryCode::parse(code) {
                Ok(code) if !consulters.contains(&code) => consulters.push(code),
                Ok(_) => {}
                Err(e) => p.rule(IssueCode::CodeInvalid, format!("{at}.code"), e.rule),
            },
            [(_, None, at)] => p.rule(IssueCode::Required, format!("{at}.code"), "is required"),
            _ => p.rule(
                IssueCode::BusinessRule,
                path,
                format!("must hold exactly one coding of {CONSULTING_CATEGORY_SYSTEM}"),
            ),
        }
    }
    if consulters.is_empty()
        && !p.0.iter().any(|(_, i)| {
            i.expression
                .as_deref()
                .is_some_and(|e| e.starts_with("Consent.extension"))
        })
    {
        p.rule(
            IssueCode::Required,
            "Consent.extension[OTV-ProviderCategory]",
            format!(
                "at least one is required ({PROVIDER_CATEGORY_URL}): the consulting categories \
                 the answer is about"
            ),
        );
    }
    consulters
}

/// `Consent.contained`, by `#id`.
fn contained_resources<'a>(node: Node<'a>, p: &mut Problems) -> Vec<(String, Node<'a>)> {
    let Some(items) = p.keep(node.children(C, "contained")) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|wrapper| {
            let resource = match wrapper {
                Node::Json(_) => wrapper,
                Node::Xml(element) => Node::Xml(element.children_in(FHIR_NS).next()?),
            };
            let id = resource.primitive("", "id").ok().flatten()?;
            Some((format!("#{id}"), resource))
        })
        .collect()
}

/// What a Reference points at: a resource, or a logical identifier.
enum Referenced<'a> {
    Resource(Node<'a>),
    Identifier(Node<'a>),
}

/// Resolves the Reference `reference` at `path` to a `resource_type`.
fn resolve<'a>(
    reference: Node<'a>,
    path: &str,
    resource_type: &str,
    targets: &[Target<'a>],
    contained: &[(String, Node<'a>)],
    p: &mut Problems,
) -> Option<Referenced<'a>> {
    if let Some(literal) = p.keep(reference.primitive(path, "reference"))? {
        let found = if literal.starts_with('#') {
            contained
                .iter()
                .find(|(id, _)| id == literal)
                .map(|(_, node)| *node)
        } else {
            targets
                .iter()
                .find(|t| t.full_url == Some(literal) || t.local.as_deref() == Some(literal))
                .map(|t| t.resource)
        };
        return match found {
            Some(node) if node.resource_type() == Some(resource_type) => {
                Some(Referenced::Resource(node))
            }
            Some(_) => {
                p.rule(
                    IssueCode::Invalid,
                    format!("{path}.reference"),
                    format!("must refer to a {resource_type}"),
                );
                None
            }
            None => {
                p.rule(
                    IssueCode::NotFound,
                    format!("{path}.reference"),
                    format!(
                        "`{}` is not an entry of this Bundle (fullUrl or {resource_type}/id) nor \
                         a contained resource (#id)",
                        Excerpt::new(literal)
                    ),
                );
                None
            }
        };
    }
    match p.keep(reference.child(path, "identifier"))? {
        Some(identifier) => Some(Referenced::Identifier(identifier)),
        None => {
            p.invalid(Issue::at(
                IssueCode::Required,
                path,
                format!("must have a `reference` to a {resource_type} or an `identifier`"),
            ));
            None
        }
    }
}

/// The value of the identifier with `system` among the identifiers of `resource` (or of a
/// logical reference), and the path to report it at.
fn identifier_value<'a>(
    target: &Referenced<'a>,
    path: &str,
    system: &str,
    what: &str,
    p: &mut Problems,
) -> Option<(&'a str, String)> {
    let (identifiers, base) = match target {
        Referenced::Identifier(identifier) => (vec![*identifier], format!("{path}.identifier")),
        Referenced::Resource(resource) => {
            let base = format!("{path}.resolve().identifier");
            (p.keep(resource.children(&base, "identifier"))?, base)
        }
    };
    for identifier in identifiers {
        let Some(found) = p.keep(identifier.primitive(&base, "system")).flatten() else {
            continue;
        };
        if found == system {
            return match p.keep(identifier.required(&base, "value")) {
                Some(value) => Some((value, format!("{base}.value"))),
                None => None,
            };
        }
    }
    p.rule(
        IssueCode::Required,
        base,
        format!("must hold the {what} ({system})"),
    );
    None
}

fn read_patient(
    node: Node<'_>,
    targets: &[Target<'_>],
    contained: &[(String, Node<'_>)],
    p: &mut Problems,
) -> Option<Bsn> {
    const PATH: &str = "Consent.patient";
    let Some(reference) = p.keep(node.child(C, "patient")).flatten() else {
        p.invalid(Issue::at(
            IssueCode::Required,
            PATH,
            "is required: the Patient with the BSN",
        ));
        return None;
    };
    let target = resolve(reference, PATH, "Patient", targets, contained, p)?;
    let (value, at) = identifier_value(&target, PATH, BSN_SYSTEM, "BSN", p)?;
    // Only the rule is reported, never the value: it may be a BSN.
    Bsn::parse(value)
        .map_err(|e| p.rule(IssueCode::Value, at, e.rule))
        .ok()
}

type Holder = (Ura, Option<OrgType>);

fn read_provision(
    provision: Node<'_>,
    targets: &[Target<'_>],
    contained: &[(String, Node<'_>)],
    p: &mut Problems,
) -> (Option<Holder>, Option<DateTime<Utc>>) {
    const P: &str = "Consent.provision";
    match p.keep(provision.primitive(P, "type")).flatten() {
        None | Some("permit") => {}
        Some("deny") => p.rule(
            IssueCode::BusinessRule,
            "Consent.provision.type",
            "must be `permit` or absent: the answer is `status` (active = yes, inactive = no)",
        ),
        Some(other) => p.invalid(Issue::at(
            IssueCode::Value,
            "Consent.provision.type",
            format!("`{}` is not deny or permit", Excerpt::new(other)),
        )),
    }
    let mut start = None;
    if let Some(Some(period)) = p.keep(provision.child(P, "period")) {
        let at = "Consent.provision.period";
        start = read_moment(period, at, "start", p);
        if p.keep(period.primitive(at, "end")).flatten().is_some() {
            p.rule(
                IssueCode::NotSupported,
                "Consent.provision.period.end",
                "a migrated answer holds until the citizen changes it: leave out the end",
            );
        }
    }
    let Some(actors) = p.keep(provision.children(P, "actor")) else {
        return (None, start);
    };
    let mut holders = Vec::new();
    for (i, actor) in actors.into_iter().enumerate() {
        let at = format!("Consent.provision.actor[{i}]");
        let custodian = match p.keep(actor.child(&at, "role")).flatten() {
            Some(role) => {
                codings(role, &format!("{at}.role"), p)
                    .into_iter()
                    .any(|(system, code, _)| {
                        system == Some(PARTICIPATION_TYPE_SYSTEM) && code == Some(CUSTODIAN_ROLE)
                    })
            }
            None => false,
        };
        if custodian {
            holders.push((actor, at));
        }
    }
    let (actor, at) = match holders.as_slice() {
        [one] => one.clone(),
        [] => {
            p.rule(
                IssueCode::Required,
                "Consent.provision.actor",
                format!(
                    "one actor with role {PARTICIPATION_TYPE_SYSTEM}#{CUSTODIAN_ROLE} (the dossier \
                     holder) is required"
                ),
            );
            return (None, start);
        }
        _ => {
            p.rule(
                IssueCode::BusinessRule,
                "Consent.provision.actor",
                "names more than one dossier holder (role CST): send one Consent per holder",
            );
            return (None, start);
        }
    };
    let path = format!("{at}.reference");
    let Some(reference) = p.keep(actor.child(&at, "reference")).flatten() else {
        p.invalid(Issue::at(
            IssueCode::Required,
            path,
            "is required: the Organization of the dossier holder",
        ));
        return (None, start);
    };
    let Some(target) = resolve(reference, &path, "Organization", targets, contained, p) else {
        return (None, start);
    };
    // Only the rule is reported: a wrong value in this place could be a BSN.
    let ura = identifier_value(&target, &path, URA_SYSTEM, "URA", p).and_then(|(value, at)| {
        Ura::parse(value)
            .map_err(|e| p.rule(IssueCode::Value, at, e.rule))
            .ok()
    });
    let mut holder_type = None;
    if let Referenced::Resource(organization) = target {
        let base = format!("{path}.resolve().type");
        for (i, concept) in p
            .keep(organization.children(&base, "type"))
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let at = format!("{base}[{i}]");
            for (system, code, coding_at) in codings(concept, &at, p) {
                if system != Some(ORGANISATION_TYPE_SYSTEM) {
                    continue;
                }
                match code.map(OrgType::parse) {
                    Some(Ok(t)) => holder_type = Some(t),
                    Some(Err(e)) => {
                        p.rule(IssueCode::CodeInvalid, format!("{coding_at}.code"), e.rule)
                    }
                    None => p.rule(
                        IssueCode::Required,
                        format!("{coding_at}.code"),
                        "is required",
                    ),
                }
            }
        }
    }
    (ura.map(|ura| (ura, holder_type)), start)
}

/// A FHIR dateTime at `path.name`: an instant with a time zone, or a full date (its start, UTC).
fn read_moment(node: Node<'_>, path: &str, name: &str, p: &mut Problems) -> Option<DateTime<Utc>> {
    let value = p.keep(node.primitive(path, name)).flatten()?;
    if let Some(t) = instant(value) {
        return Some(t.with_timezone(&Utc));
    }
    match fhir_date(value) {
        Some(Some(date)) => Some(date.and_time(NaiveTime::MIN).and_utc()),
        Some(None) => {
            p.rule(
                IssueCode::Value,
                format!("{path}.{name}"),
                "must be at least a full date (YYYY-MM-DD): otv needs the day the answer holds from",
            );
            None
        }
        None => {
            p.invalid(Issue::at(
                IssueCode::Value,
                format!("{path}.{name}"),
                "is not a FHIR dateTime (YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss with a time zone)",
            ));
            None
        }
    }
}
