//! FHIR registrations (PRODUCT.md §7, §12): the Mitz Subscription as it is and in JSON, every
//! way a registration can be wrong (with the element it names and whether it is a 400 or a 422),
//! round trips, batches, NDJSON bulk import, and the OperationOutcome, Subscription and
//! batch-response writers against golden files.

use chrono::{DateTime, NaiveDate};
use otv_core::{Bsn, OrgType, Ura};
use otv_wire::fhir::{
    BIRTH_DATE_URL, BatchResponseEntry, Channel, ChannelType, ErrorClass, Extension,
    ExtensionValue, FhirError, GATEWAY_SYSTEM_URL, Interaction, Issue, IssueCode, IssueSeverity,
    MAX_BATCH_ENTRIES, MAX_RESOURCE_BYTES, PayloadType, SOURCE_SYSTEM_URL, Subscription,
    SubscriptionOperation, SubscriptionRequest, SubscriptionStatus, batch_response_json,
    batch_response_xml, operation_outcome_json, operation_outcome_xml, parse_batch_bundle_json,
    parse_batch_bundle_xml, parse_subscription_json, parse_subscription_ndjson_line,
    parse_subscription_resource_json, parse_subscription_resource_xml, parse_subscription_xml,
    subscription_json, subscription_xml,
};

use crate::support::{assert_golden, replace};

/// The real Mitz Subscription (see `tests/fixtures/fhir/README.md`).
const XML_FIXTURE: &str = include_str!("../fixtures/fhir/subscription.xml");
/// The same Subscription in FHIR JSON, written by hand.
const JSON_FIXTURE: &str = include_str!("../fixtures/fhir/subscription.json");
const BATCH_JSON: &str = include_str!("../fixtures/fhir/batch-bundle.json");
const BATCH_XML: &str = include_str!("../fixtures/fhir/batch-bundle.xml");

/// The placeholder patient id in the Mitz fixture; it fails the 11-test.
const FIXTURE_BSN: &str = "123456789";
/// A test BSN that passes the 11-test, put in its place.
const VALID_BSN: &str = "900186021";
/// The other test BSN in the batch fixtures.
const OTHER_BSN: &str = "900203638";

const ENDPOINT: &str = "https://zim.prf001.lsp.aorta-zorg.nl/otv/Subscription/312";
const GATEWAY: &str = "2.16.840.1.113883.2.4.6.6.1";
const SOURCE: &str = "2.16.840.1.113883.2.4.6.6.90000017";
const SERVER_ID: &str = "0192f0c1-7a3e-7c4d-9e5f-a1b2c3d4e5f6";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Xml,
}

fn valid(format: Format) -> String {
    match format {
        Format::Json => replace(JSON_FIXTURE, FIXTURE_BSN, VALID_BSN),
        Format::Xml => replace(XML_FIXTURE, FIXTURE_BSN, VALID_BSN),
    }
}

fn parse(format: Format, doc: &str) -> Result<SubscriptionRequest, FhirError> {
    match format {
        Format::Json => parse_subscription_json(doc.as_bytes()),
        Format::Xml => parse_subscription_xml(doc.as_bytes()),
    }
}

/// Asserts that neither the text nor the `Debug` form of `e` shows a BSN of the fixtures.
fn assert_no_bsn(e: &FhirError) {
    for shown in [e.to_string(), format!("{e:?}")] {
        for bsn in [FIXTURE_BSN, VALID_BSN, OTHER_BSN] {
            assert!(!shown.contains(bsn), "BSN shown in {shown:?}");
        }
    }
}

fn parse_err(format: Format, doc: &str) -> FhirError {
    let e = match parse(format, doc) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    };
    assert_no_bsn(&e);
    e
}

fn expressions(e: &FhirError) -> Vec<&str> {
    e.issues()
        .iter()
        .map(|i| i.expression.as_deref().unwrap_or("-"))
        .collect()
}

fn ext(url: &str, value: ExtensionValue) -> Extension {
    Extension {
        url: url.to_owned(),
        value,
    }
}

/// The fixture as FHIR, exactly as sent.
fn fixture_resource() -> Subscription {
    Subscription {
        id: None,
        extensions: vec![
            ext(
                BIRTH_DATE_URL,
                ExtensionValue::Date("2012-03-07".to_owned()),
            ),
            ext(
                GATEWAY_SYSTEM_URL,
                ExtensionValue::Oid(format!("urn:oid:{GATEWAY}")),
            ),
            ext(
                SOURCE_SYSTEM_URL,
                ExtensionValue::Oid(format!("urn:oid:{SOURCE}")),
            ),
        ],
        modifier_extensions: vec![],
        status: SubscriptionStatus::Requested,
        end: None,
        reason: "OTV".to_owned(),
        criteria: format!(
            "Consent?_query=otv&patientid={FIXTURE_BSN}&providerid=01234567&providertype=Z3"
        ),
        channel: Channel {
            channel_type: ChannelType::RestHook,
            endpoint: Some(ENDPOINT.to_owned()),
            payload: Some("application/fhir+xml".to_owned()),
        },
    }
}

/// The registration in the fixture, with a valid BSN.
fn expected_request() -> SubscriptionRequest {
    SubscriptionRequest {
        id: None,
        status: SubscriptionStatus::Requested,
        bsn: Bsn::parse(VALID_BSN).unwrap(),
        holder_ura: Ura::parse("01234567").unwrap(),
        holder_type: OrgType::parse("Z3").unwrap(),
        endpoint: ENDPOINT.to_owned(),
        payload: PayloadType::Xml,
        birth_date: NaiveDate::from_ymd_opt(2012, 3, 7),
        gateway_system: GATEWAY.to_owned(),
        source_system: SOURCE.to_owned(),
        end: None,
    }
}

// --- The Mitz fixture -------------------------------------------------------------------------

#[test]
fn the_mitz_subscription_is_valid_fhir_as_is() {
    assert_eq!(
        parse_subscription_resource_xml(XML_FIXTURE.as_bytes()).unwrap(),
        fixture_resource()
    );
}

#[test]
fn its_json_equivalent_reads_to_the_same_resource() {
    assert_eq!(
        parse_subscription_resource_json(JSON_FIXTURE.as_bytes()).unwrap(),
        fixture_resource()
    );
}

/// The fixture's patient id is a placeholder that fails the 11-test (PRODUCT.md §2: invalid
/// identifiers are rejected). That must be its only fault, reported the same in both formats.
#[test]
fn the_fixtures_only_fault_is_its_placeholder_bsn() {
    for (format, doc) in [(Format::Xml, XML_FIXTURE), (Format::Json, JSON_FIXTURE)] {
        let e = parse_err(format, doc);
        assert_eq!(e.class(), ErrorClass::BusinessRule, "{format:?}");
        assert_eq!(e.http_status(), 422);
        assert_eq!(
            e.to_string(),
            "Subscription.criteria: parameter `patientid`: a BSN must pass the 11-test"
        );
        assert_eq!(e.issues()[0].code, IssueCode::BusinessRule);
    }
}

#[test]
fn with_a_valid_bsn_both_formats_decode_to_the_same_registration() {
    for format in [Format::Xml, Format::Json] {
        let request = parse(format, &valid(format)).unwrap();
        assert_eq!(request, expected_request(), "{format:?}");
        assert_eq!(request.bsn.expose(), VALID_BSN);
        assert_eq!(request.check_interaction(Interaction::Create), Ok(()));
    }
}

#[test]
fn fixture_copy_matches_the_shared_original() {
    // The shared fixtures sit next to the repository on development machines; elsewhere this
    // check has nothing to compare with.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/mitz/subscription.xml");
    if let Ok(original) = std::fs::read(&shared) {
        assert_eq!(
            original,
            XML_FIXTURE.as_bytes(),
            "tests/fixtures/fhir copy has drifted"
        );
    }
}

#[test]
fn debug_output_hides_the_bsn() {
    let resource = parse_subscription_resource_xml(valid(Format::Xml).as_bytes()).unwrap();
    let request = parse(Format::Xml, &valid(Format::Xml)).unwrap();
    for shown in [format!("{resource:?}"), format!("{request:?}")] {
        assert!(!shown.contains(VALID_BSN), "{shown}");
    }
}

// --- Refusals ---------------------------------------------------------------------------------

use ErrorClass::{BusinessRule as Rule, Invalid};

/// `doc` without the line that contains `marker`.
fn without_line(doc: &str, marker: &str) -> String {
    let lines: Vec<&str> = doc.lines().collect();
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.contains(marker))
        .collect();
    assert_eq!(
        kept.len() + 1,
        lines.len(),
        "{marker:?} must be on one line"
    );
    kept.join("\n")
}

/// `doc` without the XML element that starts with `open` and ends at the next `close`.
fn without_element(doc: &str, open: &str, close: &str) -> String {
    let start = doc.find(open).expect("element present");
    let end = start + doc[start..].find(close).expect("element closed") + close.len();
    let mut doc = doc.to_owned();
    doc.replace_range(start..end, "");
    doc
}

struct Case {
    name: &'static str,
    format: Format,
    doc: String,
    /// The element path one of the issues must name; `-` for the message as a whole.
    path: &'static str,
    class: ErrorClass,
}

fn case(
    name: &'static str,
    format: Format,
    doc: String,
    path: &'static str,
    class: ErrorClass,
) -> Case {
    Case {
        name,
        format,
        doc,
        path,
        class,
    }
}

fn json_edit(from: &str, to: &str) -> String {
    replace(&valid(Format::Json), from, to)
}

fn xml_edit(from: &str, to: &str) -> String {
    replace(&valid(Format::Xml), from, to)
}

const CRITERIA: &str = "Subscription.criteria";
const ENDPOINT_PATH: &str = "Subscription.channel.endpoint";
const GATEWAY_OID: &str = "Subscription.extension[GatewaySystem].valueOid";
const BIRTH_DATE: &str = "Subscription.extension[Patient.birthDate].valueDate";

fn invalid_cases() -> Vec<Case> {
    use Format::{Json, Xml};
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let doctype = format!(
        "<!DOCTYPE Subscription [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n{}",
        valid(Xml)
    );
    let too_large = format!("{}{}", valid(Json), " ".repeat(MAX_RESOURCE_BYTES));
    vec![
        // Not valid FHIR: 400.
        case(
            "wrong resourceType",
            Json,
            json_edit("\"Subscription\"", "\"Patient\""),
            "Subscription",
            Invalid,
        ),
        case(
            "missing criteria",
            Json,
            without_line(&valid(Json), "\"criteria\""),
            CRITERIA,
            Invalid,
        ),
        case(
            "missing criteria (XML)",
            Xml,
            without_line(&valid(Xml), "<criteria "),
            CRITERIA,
            Invalid,
        ),
        case(
            "criteria is a number",
            Json,
            json_edit(
                &format!(
                    "\"Consent?_query=otv&patientid={VALID_BSN}&providerid=01234567&providertype=Z3\""
                ),
                "12345",
            ),
            CRITERIA,
            Invalid,
        ),
        case(
            "malformed OID",
            Json,
            json_edit(
                &format!("\"urn:oid:{GATEWAY}\""),
                "\"urn:oid:2.16.840.01.113883\"",
            ),
            GATEWAY_OID,
            Invalid,
        ),
        case(
            "malformed OID (XML)",
            Xml,
            xml_edit(&format!("\"urn:oid:{GATEWAY}\""), "\"urn:oid:3.1\""),
            GATEWAY_OID,
            Invalid,
        ),
        case(
            "birthDate not a date",
            Json,
            json_edit("2012-03-07", "07-03-2012"),
            BIRTH_DATE,
            Invalid,
        ),
        case(
            "birthDate a day that does not exist",
            Xml,
            xml_edit("2012-03-07", "2011-02-29"),
            BIRTH_DATE,
            Invalid,
        ),
        case(
            "status not a status",
            Json,
            json_edit("\"requested\"", "\"pending\""),
            "Subscription.status",
            Invalid,
        ),
        case(
            "channel type not a channel type",
            Json,
            json_edit("\"rest-hook\"", "\"webhook\""),
            "Subscription.channel.type",
            Invalid,
        ),
        case(
            "status repeated in XML",
            Xml,
            xml_edit(
                "<status value=\"requested\"/>",
                "<status value=\"requested\"/><status value=\"off\"/>",
            ),
            "Subscription.status",
            Invalid,
        ),
        case(
            "XML value as element text",
            Xml,
            xml_edit("<reason value=\"OTV\"/>", "<reason>OTV</reason>"),
            "Subscription.reason",
            Invalid,
        ),
        case(
            "XML outside the FHIR namespace",
            Xml,
            xml_edit("xmlns=\"http://hl7.org/fhir\"", "xmlns=\"urn:not-fhir\""),
            "Subscription",
            Invalid,
        ),
        case(
            "extension without url",
            Json,
            json_edit(
                "\"url\": \"http://fhir.nl/StructureDefinition/Patient.birthDate\",",
                "",
            ),
            "Subscription.extension[0].url",
            Invalid,
        ),
        case(
            "a property twice",
            Json,
            json_edit(
                "\"reason\": \"OTV\",",
                "\"reason\": \"OTV\", \"reason\": \"X\",",
            ),
            "-",
            Invalid,
        ),
        case(
            "not JSON at all",
            Json,
            "this is not JSON".to_owned(),
            "-",
            Invalid,
        ),
        case("JSON nested 200 deep", Json, deep, "-", Invalid),
        case("XML with a DOCTYPE", Xml, doctype, "-", Invalid),
        case("larger than the limit", Json, too_large, "-", Invalid),
        case(
            "JSON sent to the XML reader",
            Xml,
            valid(Json),
            "-",
            Invalid,
        ),
        // Valid FHIR that breaks otv's rules: 422.
        case(
            "criteria without patientid",
            Json,
            json_edit(&format!("patientid={VALID_BSN}&"), ""),
            CRITERIA,
            Rule,
        ),
        case(
            "invalid BSN",
            Json,
            json_edit(VALID_BSN, "900186022"),
            CRITERIA,
            Rule,
        ),
        case(
            "URA of 7 digits",
            Json,
            json_edit("providerid=01234567", "providerid=0123456"),
            CRITERIA,
            Rule,
        ),
        case(
            "organisation type of the wrong format",
            Json,
            json_edit("providertype=Z3", "providertype=huisarts"),
            CRITERIA,
            Rule,
        ),
        case(
            "duplicate criteria parameter",
            Json,
            json_edit("providertype=Z3", "providertype=Z3&providerid=01234567"),
            CRITERIA,
            Rule,
        ),
        case(
            "unknown criteria parameter",
            Json,
            json_edit("providertype=Z3", "providertype=Z3&category=GGC002"),
            CRITERIA,
            Rule,
        ),
        case(
            "criteria on another resource",
            Xml,
            xml_edit("Consent?", "Patient?"),
            CRITERIA,
            Rule,
        ),
        case(
            "_query not otv",
            Xml,
            xml_edit("_query=otv", "_query=lsp"),
            CRITERIA,
            Rule,
        ),
        case(
            "reason not OTV",
            Json,
            json_edit("\"reason\": \"OTV\"", "\"reason\": \"LSP\""),
            "Subscription.reason",
            Rule,
        ),
        case(
            "channel type websocket",
            Json,
            json_edit("\"rest-hook\"", "\"websocket\""),
            "Subscription.channel.type",
            Rule,
        ),
        case(
            "http endpoint",
            Json,
            json_edit("https://zim", "http://zim"),
            ENDPOINT_PATH,
            Rule,
        ),
        case(
            "http endpoint (XML)",
            Xml,
            xml_edit("https://zim", "http://zim"),
            ENDPOINT_PATH,
            Rule,
        ),
        case(
            "endpoint with credentials",
            Json,
            json_edit("https://zim", "https://user:secret@zim"),
            ENDPOINT_PATH,
            Rule,
        ),
        case(
            "missing endpoint",
            Xml,
            without_line(&valid(Xml), "<endpoint "),
            ENDPOINT_PATH,
            Rule,
        ),
        case(
            "unknown payload",
            Json,
            json_edit("application/fhir+xml", "text/plain"),
            "Subscription.channel.payload",
            Rule,
        ),
        case(
            "status error",
            Json,
            json_edit("\"requested\"", "\"error\""),
            "Subscription.status",
            Rule,
        ),
        case(
            "missing GatewaySystem",
            Xml,
            without_element(
                &valid(Xml),
                "<extension url=\"http://fhir.nl/StructureDefinition/GatewaySystem\">",
                "</extension>",
            ),
            "Subscription.extension[GatewaySystem]",
            Rule,
        ),
        case(
            "SourceSystem as valueString",
            Xml,
            xml_edit(
                &format!("<valueOid value=\"urn:oid:{SOURCE}\"/>"),
                &format!("<valueString value=\"{SOURCE}\"/>"),
            ),
            "Subscription.extension[SourceSystem]",
            Rule,
        ),
        case(
            "partial birth date",
            Json,
            json_edit("2012-03-07", "2012-03"),
            BIRTH_DATE,
            Rule,
        ),
        case(
            "modifier extension",
            Json,
            json_edit(
                "\"status\":",
                "\"modifierExtension\": [{\"url\": \"http://example.org/x\", \"valueBoolean\": true}],\n  \"status\":",
            ),
            "Subscription.modifierExtension",
            Rule,
        ),
    ]
}

#[test]
fn invalid_registrations_name_the_element_and_the_class() {
    for Case {
        name,
        format,
        doc,
        path,
        class,
    } in invalid_cases()
    {
        let e = parse_err(format, &doc);
        assert!(
            expressions(&e).contains(&path),
            "{name}: expected an issue at {path}, got {e}"
        );
        assert_eq!(e.class(), class, "{name}: {e}");
        assert_eq!(e.http_status(), class.http_status(), "{name}");
        assert!(
            e.issues()
                .iter()
                .all(|i| i.severity == IssueSeverity::Error && !i.diagnostics.is_empty()),
            "{name}"
        );
    }
}

#[test]
fn an_invalid_bsn_is_reported_without_its_digits() {
    let e = parse_err(Format::Json, &json_edit(VALID_BSN, "900186022"));
    let text = e.to_string();
    assert_eq!(
        text,
        "Subscription.criteria: parameter `patientid`: a BSN must pass the 11-test"
    );
    // Not the number, nor any part of it longer than the "11" of "11-test".
    let longest_run = text
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max();
    assert_eq!(longest_run, Some(2), "{text}");
    let e = parse_err(Format::Json, &json_edit(VALID_BSN, "90018602x"));
    assert_eq!(
        e.to_string(),
        "Subscription.criteria: parameter `patientid`: a BSN is 9 digits"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = json_edit("\"reason\": \"OTV\"", "\"reason\": \"LSP\"");
    let doc = replace(&doc, "https://zim", "http://zim");
    let doc = replace(&doc, "providerid=01234567&", "");
    let e = parse_err(Format::Json, &doc);
    assert_eq!(
        expressions(&e),
        [
            "Subscription.reason",
            "Subscription.criteria",
            "Subscription.channel.endpoint"
        ]
    );

    let doc = without_line(&valid(Format::Json), "\"status\"");
    let doc = without_line(&doc, "\"reason\"");
    let e = parse_err(Format::Json, &doc);
    assert_eq!(
        expressions(&e),
        ["Subscription.status", "Subscription.reason"]
    );
    assert_eq!(e.issues()[0].code, IssueCode::Required);
}

#[test]
fn criteria_parameters_in_any_order_percent_encoded() {
    let doc = json_edit(
        &format!("_query=otv&patientid={VALID_BSN}&providerid=01234567&providertype=Z3"),
        &format!("providertype=Z3&providerid=01234567&patient%69d={VALID_BSN}&_query=%6Ftv"),
    );
    assert_eq!(parse(Format::Json, &doc).unwrap(), expected_request());
}

#[test]
fn unknown_elements_are_tolerated_and_oids_may_be_bare() {
    let doc = json_edit(
        "\"status\":",
        "\"meta\": {\"profile\": [\"http://example.org/p\"]},\n  \"contact\": [{\"system\": \"email\", \"value\": \"x@example.nl\"}],\n  \"_reason\": {\"id\": \"r\"},\n  \"status\":",
    );
    let doc = replace(&doc, &format!("urn:oid:{GATEWAY}"), GATEWAY);
    let doc = replace(
        &doc,
        "\"http://fhir.nl/StructureDefinition/GatewaySystem\"",
        "\"http://fhir.nl/StructureDefinition/GatewaySystem\", \"id\": \"gw\"",
    );
    let doc = replace(
        &doc,
        "\"extension\": [",
        "\"extension\": [{\"url\": \"http://example.org/other\", \"valueString\": \"ignored\"},",
    );
    assert_eq!(parse(Format::Json, &doc).unwrap(), expected_request());

    let xml = xml_edit(
        "<status ",
        "<meta><profile value=\"http://example.org/p\"/></meta><text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\">Aanmelding</div></text><status ",
    );
    assert_eq!(parse(Format::Xml, &xml).unwrap(), expected_request());
}

#[test]
fn status_and_id_depend_on_the_interaction() {
    let active = parse(Format::Json, &json_edit("\"requested\"", "\"active\"")).unwrap();
    let off = parse(Format::Json, &json_edit("\"requested\"", "\"off\"")).unwrap();
    let e = active.check_interaction(Interaction::Create).unwrap_err();
    assert_eq!(e.class(), Rule);
    assert_eq!(expressions(&e), ["Subscription.status"]);
    assert!(off.check_interaction(Interaction::Create).is_err());
    for request in [&active, &off] {
        assert_eq!(
            request.check_interaction(Interaction::Update { id: "312" }),
            Ok(())
        );
    }

    let with_id = parse(
        Format::Json,
        &json_edit("\"status\":", "\"id\": \"312\",\n  \"status\":"),
    )
    .unwrap();
    assert_eq!(with_id.id.as_deref(), Some("312"));
    assert_eq!(
        with_id.check_interaction(Interaction::Update { id: "312" }),
        Ok(())
    );
    let e = with_id
        .check_interaction(Interaction::Update { id: "313" })
        .unwrap_err();
    assert_eq!(
        (e.class(), expressions(&e)),
        (Invalid, vec!["Subscription.id"])
    );

    let e = parse_err(
        Format::Json,
        &json_edit("\"status\":", "\"id\": \"not/an/id\",\n  \"status\":"),
    );
    assert_eq!(
        (e.class(), expressions(&e)),
        (Invalid, vec!["Subscription.id"])
    );
}

// --- Round trips and golden files -------------------------------------------------------------

fn full_request() -> SubscriptionRequest {
    SubscriptionRequest {
        id: None,
        status: SubscriptionStatus::Requested,
        bsn: Bsn::parse(VALID_BSN).unwrap(),
        holder_ura: Ura::parse("00000659").unwrap(),
        holder_type: OrgType::parse("J8").unwrap(),
        // Characters XML and JSON must escape survive.
        endpoint: "https://apotheek.example.nl/otv/notify?a=1&b=\"2\"<3>".to_owned(),
        payload: PayloadType::Json,
        birth_date: NaiveDate::from_ymd_opt(1984, 11, 2),
        gateway_system: GATEWAY.to_owned(),
        source_system: SOURCE.to_owned(),
        end: Some(DateTime::parse_from_rfc3339("2027-01-31T23:00:00+01:00").unwrap()),
    }
}

#[test]
fn encode_then_decode_gives_the_same_registration() {
    for request in [full_request(), expected_request()] {
        for status in [SubscriptionStatus::Active, SubscriptionStatus::Off] {
            let expected = SubscriptionRequest {
                id: Some(SERVER_ID.to_owned()),
                status,
                ..request.clone()
            };
            let json = subscription_json(&request, SERVER_ID, status);
            assert_eq!(parse(Format::Json, &json).unwrap(), expected, "{json}");
            let xml = subscription_xml(&request, SERVER_ID, status);
            assert_eq!(parse(Format::Xml, &xml).unwrap(), expected, "{xml}");
            assert_eq!(
                parse_subscription_resource_json(json.as_bytes()).unwrap(),
                parse_subscription_resource_xml(xml.as_bytes()).unwrap()
            );
        }
    }
}

#[test]
fn the_read_response_matches_its_golden_files() {
    let request = parse(Format::Xml, &valid(Format::Xml)).unwrap();
    assert_golden(
        "fhir-subscription.json",
        &subscription_json(&request, SERVER_ID, SubscriptionStatus::Active),
    );
    assert_golden(
        "fhir-subscription.xml",
        &subscription_xml(&request, SERVER_ID, SubscriptionStatus::Active),
    );
}

fn two_faults() -> FhirError {
    let doc = json_edit("\"reason\": \"OTV\"", "\"reason\": \"LSP\"");
    parse_err(Format::Json, &replace(&doc, "https://zim", "http://zim"))
}

#[test]
fn operation_outcome_matches_its_golden_files() {
    let e = two_faults();
    assert_golden(
        "fhir-operation-outcome.json",
        &operation_outcome_json(e.issues()),
    );
    assert_golden(
        "fhir-operation-outcome.xml",
        &operation_outcome_xml(e.issues()),
    );
}

#[test]
fn operation_outcome_carries_each_issue() {
    let issues = [
        Issue::error(
            IssueCode::Throttled,
            None,
            "too many requests; retry after 30 seconds",
        ),
        Issue::error(
            IssueCode::NotFound,
            Some("Subscription.id".to_owned()),
            "no registration with this id",
        ),
    ];
    let json: serde_json::Value = serde_json::from_str(&operation_outcome_json(&issues)).unwrap();
    assert_eq!(json["resourceType"], "OperationOutcome");
    assert_eq!(json["issue"][0]["code"], "throttled");
    assert!(json["issue"][0].get("expression").is_none());
    assert_eq!(json["issue"][1]["code"], "not-found");
    assert_eq!(json["issue"][1]["expression"][0], "Subscription.id");

    let xml = operation_outcome_xml(&issues);
    assert!(xml.contains("<code value=\"throttled\"/>"), "{xml}");
    assert!(
        xml.contains("<expression value=\"Subscription.id\"/>"),
        "{xml}"
    );

    // An OperationOutcome has at least one issue.
    let empty: serde_json::Value = serde_json::from_str(&operation_outcome_json(&[])).unwrap();
    assert_eq!(empty["issue"][0]["severity"], "information");
}

// --- Batches ----------------------------------------------------------------------------------

fn batch_entries(format: Format) -> Vec<Result<SubscriptionOperation, FhirError>> {
    match format {
        Format::Json => parse_batch_bundle_json(BATCH_JSON.as_bytes()),
        Format::Xml => parse_batch_bundle_xml(BATCH_XML.as_bytes()),
    }
    .unwrap()
}

#[test]
fn a_batch_decodes_each_entry_on_its_own() {
    for format in [Format::Json, Format::Xml] {
        let entries = batch_entries(format);
        assert_eq!(entries.len(), 3, "{format:?}");

        let Ok(SubscriptionOperation::Create(created)) = &entries[0] else {
            panic!("{format:?}: first entry {:?}", entries[0]);
        };
        assert_eq!(created.bsn.expose(), VALID_BSN);
        assert_eq!(created.holder_type.as_str(), "J8");
        assert_eq!(created.payload, PayloadType::Json);
        assert_eq!(created.birth_date, NaiveDate::from_ymd_opt(1984, 11, 2));

        let Err(e) = &entries[1] else {
            panic!("{format:?}: second entry accepted");
        };
        assert_no_bsn(e);
        assert_eq!(e.class(), Rule);
        assert_eq!(expressions(e), [ENDPOINT_PATH]);

        assert_eq!(
            entries[2],
            Ok(SubscriptionOperation::Delete {
                id: SERVER_ID.to_owned()
            })
        );
    }
    assert_eq!(batch_entries(Format::Json), batch_entries(Format::Xml));
}

fn batch_response_entries() -> Vec<BatchResponseEntry> {
    let entries = batch_entries(Format::Json);
    vec![
        BatchResponseEntry::created(format!("Subscription/{SERVER_ID}")),
        BatchResponseEntry::failed(entries[1].as_ref().unwrap_err()),
        BatchResponseEntry::deleted(),
    ]
}

#[test]
fn the_batch_response_matches_its_golden_files() {
    const BUNDLE_ID: &str = "0192f0c1-7a3e-7c4d-9e5f-000000000001";
    let entries = batch_response_entries();
    let json = batch_response_json(BUNDLE_ID, &entries);
    assert_golden("fhir-batch-response.json", &json);
    assert_golden(
        "fhir-batch-response.xml",
        &batch_response_xml(BUNDLE_ID, &entries),
    );

    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["type"], "batch-response");
    assert_eq!(value["entry"][0]["response"]["status"], "201 Created");
    assert_eq!(
        value["entry"][0]["response"]["location"],
        format!("Subscription/{SERVER_ID}")
    );
    let failed = &value["entry"][1]["response"];
    assert_eq!(failed["status"], "422 Unprocessable Entity");
    assert_eq!(failed["outcome"]["resourceType"], "OperationOutcome");
    assert_eq!(
        failed["outcome"]["issue"][0]["expression"][0],
        ENDPOINT_PATH
    );
    assert_eq!(value["entry"][2]["response"]["status"], "204 No Content");
}

fn batch(entries: &str) -> String {
    format!(r#"{{"resourceType": "Bundle", "type": "batch", "entry": [{entries}]}}"#)
}

/// The good create of the batch fixture as one entry's `resource`.
fn good_resource() -> String {
    let value: serde_json::Value = serde_json::from_str(BATCH_JSON).unwrap();
    value["entry"][0]["resource"].to_string()
}

fn one_entry(entry: &str) -> Result<SubscriptionOperation, FhirError> {
    let mut entries = parse_batch_bundle_json(batch(entry).as_bytes()).unwrap();
    assert_eq!(entries.len(), 1);
    entries.pop().unwrap()
}

#[test]
fn batch_entries_that_cannot_be_carried_out() {
    let r = good_resource();
    let cases: Vec<(&str, String, &str, ErrorClass)> = vec![
        ("not an object", "42".to_owned(), "Bundle.entry[0]", Invalid),
        (
            "no request",
            format!(r#"{{"resource": {r}}}"#),
            "Bundle.entry[0].request",
            Invalid,
        ),
        (
            "no resource",
            r#"{"request": {"method": "POST", "url": "Subscription"}}"#.to_owned(),
            "Bundle.entry[0].resource",
            Invalid,
        ),
        (
            "another resource",
            r#"{"resource": {"resourceType": "Consent"}, "request": {"method": "POST", "url": "Subscription"}}"#
                .to_owned(),
            "Bundle.entry[0].resource",
            Invalid,
        ),
        (
            "POST to another type",
            format!(r#"{{"resource": {r}, "request": {{"method": "POST", "url": "Consent"}}}}"#),
            "Bundle.entry[0].request.url",
            Rule,
        ),
        (
            "conditional create",
            format!(
                r#"{{"resource": {r}, "request": {{"method": "POST", "url": "Subscription", "ifNoneExist": "x=y"}}}}"#
            ),
            "Bundle.entry[0].request.ifNoneExist",
            Rule,
        ),
        (
            "GET",
            r#"{"request": {"method": "GET", "url": "Subscription/1"}}"#.to_owned(),
            "Bundle.entry[0].request.method",
            Rule,
        ),
        (
            "not a verb",
            r#"{"request": {"method": "FETCH", "url": "Subscription/1"}}"#.to_owned(),
            "Bundle.entry[0].request.method",
            Invalid,
        ),
        (
            "DELETE without an id",
            r#"{"request": {"method": "DELETE", "url": "Subscription/"}}"#.to_owned(),
            "Bundle.entry[0].request.url",
            Invalid,
        ),
        (
            "PUT with another id in the resource",
            format!(
                r#"{{"resource": {}, "request": {{"method": "PUT", "url": "Subscription/a"}}}}"#,
                r.replacen("{", r#"{"id": "b","#, 1)
            ),
            "Subscription.id",
            Invalid,
        ),
        (
            "create that is active",
            format!(
                r#"{{"resource": {}, "request": {{"method": "POST", "url": "Subscription"}}}}"#,
                r.replace("requested", "active")
            ),
            "Subscription.status",
            Rule,
        ),
    ];
    for (name, entry, path, class) in cases {
        let e = one_entry(&entry).expect_err(name);
        assert_no_bsn(&e);
        assert_eq!(expressions(&e), [path], "{name}: {e}");
        assert_eq!(e.class(), class, "{name}: {e}");
    }

    let update = one_entry(&format!(
        r#"{{"resource": {}, "request": {{"method": "PUT", "url": "Subscription/a"}}}}"#,
        r.replace("requested", "off")
    ))
    .unwrap();
    let SubscriptionOperation::Update { id, request } = update else {
        panic!("{update:?}")
    };
    assert_eq!(
        (id.as_str(), request.status),
        ("a", SubscriptionStatus::Off)
    );
}

#[test]
fn a_batch_fails_as_a_whole_only_when_it_cannot_be_read() {
    let cases: Vec<(&str, String, &str, ErrorClass)> = vec![
        (
            "a transaction",
            batch("").replace("\"batch\"", "\"transaction\""),
            "Bundle.type",
            Rule,
        ),
        (
            "not a Bundle type",
            batch("").replace("\"batch\"", "\"pile\""),
            "Bundle.type",
            Invalid,
        ),
        (
            "no type",
            r#"{"resourceType": "Bundle"}"#.to_owned(),
            "Bundle.type",
            Invalid,
        ),
        (
            "entry not an array",
            r#"{"resourceType": "Bundle", "type": "batch", "entry": {}}"#.to_owned(),
            "Bundle.entry",
            Invalid,
        ),
        (
            "too many entries",
            batch(&vec!["{}"; MAX_BATCH_ENTRIES + 1].join(",")),
            "Bundle.entry",
            Rule,
        ),
        ("a Subscription", valid(Format::Json), "Bundle", Invalid),
    ];
    for (name, doc, path, class) in cases {
        let e = parse_batch_bundle_json(doc.as_bytes()).expect_err(name);
        assert_eq!(expressions(&e), [path], "{name}: {e}");
        assert_eq!(e.class(), class, "{name}: {e}");
    }
    assert_eq!(parse_batch_bundle_json(batch("").as_bytes()), Ok(vec![]));
    let e =
        parse_batch_bundle_xml(b"<!DOCTYPE x><Bundle xmlns=\"http://hl7.org/fhir\"/>").unwrap_err();
    assert_eq!(e.class(), Invalid);
}

// --- NDJSON bulk import -----------------------------------------------------------------------

/// One Subscription per line, as a bulk-import body is.
fn ndjson_line(doc: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(doc).unwrap();
    value.to_string()
}

#[test]
fn ndjson_reports_the_bad_line_by_number() {
    let good = ndjson_line(&valid(Format::Json));
    let bad = ndjson_line(&json_edit("https://zim", "http://zim"));
    let body = format!("{good}\r\n{bad}\n{good}\n");
    let results: Vec<_> = body
        .split_inclusive('\n')
        .zip(1..)
        .filter_map(|(line, n)| parse_subscription_ndjson_line(n, line.as_bytes()))
        .collect();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], Ok(expected_request()));
    assert_eq!(results[2], Ok(expected_request()));
    let e = results[1].as_ref().unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(expressions(&e.error), [ENDPOINT_PATH]);
    assert!(
        e.to_string()
            .starts_with("line 2: Subscription.channel.endpoint: "),
        "{e}"
    );
    assert_no_bsn(&e.error);
}

#[test]
fn ndjson_skips_blank_lines_and_checks_each_line_as_a_create() {
    assert_eq!(parse_subscription_ndjson_line(7, b""), None);
    assert_eq!(parse_subscription_ndjson_line(7, b"  \r\n"), None);
    let active = ndjson_line(&json_edit("\"requested\"", "\"active\""));
    let e = parse_subscription_ndjson_line(4, active.as_bytes())
        .unwrap()
        .unwrap_err();
    assert_eq!((e.line, e.error.class()), (4, Rule));
    let e = parse_subscription_ndjson_line(5, b"{\"resourceType\": ")
        .unwrap()
        .unwrap_err();
    assert_eq!((e.line, e.error.class()), (5, Invalid));
}
