//! Reading the closed question: the real Mitz message, the freedom the standards give senders,
//! and every way the message can be wrong.

use otv_core::{Bsn, DataCategory, OrgType, Organisation, Purpose, RoleCode, Ura, UziNumber};
use otv_wire::{AttributeProblem, ClosedQuestionRequest, WireError, parse_closed_question};

use crate::support::*;

fn data_categories(codes: &[&str]) -> Vec<DataCategory> {
    codes
        .iter()
        .map(|c| DataCategory::parse(c).unwrap())
        .collect()
}

fn expected_fixture() -> ClosedQuestionRequest {
    ClosedQuestionRequest {
        message_id: "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697".to_owned(),
        to: Some("http://localhost:8000/4".to_owned()),
        action: "XACMLAuthorizationDecisionQueryRequest".to_owned(),
        bsn: Bsn::parse(FIXTURE_BSN).unwrap(),
        holder: Organisation {
            ura: Ura::parse("00000659").unwrap(),
            organisation_type: OrgType::parse("Z3").unwrap(),
        },
        consulter: Organisation {
            ura: Ura::parse("00000666").unwrap(),
            organisation_type: OrgType::parse("Z3").unwrap(),
        },
        professional: UziNumber::parse("000095254").unwrap(),
        role: RoleCode::parse("01.015").unwrap(),
        mandated: None,
        data_categories: data_categories(&["GGC002"]),
        purpose: Purpose::Treat,
    }
}

#[test]
fn the_mitz_fixture_parses_as_is() {
    let request = parse_closed_question(FIXTURE.as_bytes()).unwrap();
    assert_eq!(request, expected_fixture());
    assert_eq!(request.bsn.expose(), FIXTURE_BSN);
}

#[test]
fn fixture_copy_matches_the_shared_original() {
    // The shared fixtures sit next to the repository on development machines; elsewhere this
    // check has nothing to compare with.
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/mitz/closed-question-request.xml");
    if let Ok(original) = std::fs::read(&shared) {
        assert_eq!(
            original,
            FIXTURE.as_bytes(),
            "tests/fixtures copy has drifted"
        );
    }
}

#[test]
fn debug_output_of_a_request_hides_the_bsn() {
    let shown = format!("{:?}", parse_ok(FIXTURE));
    assert!(!shown.contains(FIXTURE_BSN), "{shown}");
    assert!(shown.contains("Bsn(<redacted>)"));
}

/// Prefixes are the sender's choice; only namespace URIs count.
#[test]
fn any_prefix_or_default_namespace_is_read_the_same() {
    const SOAP_NS: &str = "xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\"";
    let variants = [
        ("soap: prefix", FIXTURE.replace("SOAP-ENV", "soap")),
        ("env: prefix", FIXTURE.replace("SOAP-ENV", "env")),
        (
            "SOAP in the default namespace",
            replace(
                &FIXTURE.replace("SOAP-ENV:", ""),
                "xmlns:SOAP-ENV=",
                "xmlns=",
            ),
        ),
        (
            "a: for WS-Addressing",
            FIXTURE
                .replace("wsa:", "a:")
                .replace("xmlns:wsa", "xmlns:a"),
        ),
        (
            "WS-Addressing declared on the header",
            replace(
                &replace(
                    FIXTURE,
                    " xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"",
                    "",
                ),
                "<SOAP-ENV:Header>",
                "<SOAP-ENV:Header xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">",
            ),
        ),
        (
            "query in the default namespace",
            replace(
                &replace(
                    FIXTURE,
                    "<types:XACMLAuthzDecisionQuery>",
                    "<XACMLAuthzDecisionQuery xmlns=\"urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14\">",
                ),
                "</types:XACMLAuthzDecisionQuery>",
                "</XACMLAuthzDecisionQuery>",
            ),
        ),
        ("XACML with a prefix", {
            let d = replace(FIXTURE, "<Request ", "<x:Request ");
            let d = replace(&d, "</Request>", "</x:Request>");
            let d = replace(
                &d,
                "xmlns=\"urn:oasis:names:tc:xacml:3.0:core:schema:wd-17\"",
                "xmlns:x=\"urn:oasis:names:tc:xacml:3.0:core:schema:wd-17\"",
            );
            let d = replace(&d, "<Attributes ", "<x:Attributes ");
            let d = replace(&d, "</Attributes>", "</x:Attributes>");
            let d = replace(&d, "<Attribute ", "<x:Attribute ");
            let d = replace(&d, "</Attribute>", "</x:Attribute>");
            let d = replace(&d, "<AttributeValue ", "<x:AttributeValue ");
            replace(&d, "</AttributeValue>", "</x:AttributeValue>")
        }),
        ("HL7 with a prefix and other element names", {
            let d = replace(FIXTURE, "<InstanceIdentifier ", "<hl7:II ");
            let d = replace(&d, "<CodedValue ", "<v3:value ");
            let d = replace(
                &d,
                "<hl7:II assigningAuthorityName",
                "<hl7:II xmlns:hl7=\"urn:hl7-org:v3\" assigningAuthorityName",
            );
            let d = replace(
                &d,
                "<hl7:II extension",
                "<hl7:II xmlns:hl7=\"urn:hl7-org:v3\" extension",
            );
            let d = replace(&d, "<v3:value ", "<v3:value xmlns:v3=\"urn:hl7-org:v3\" ");
            // The now unused default declarations stay: they do not bind the prefixed names.
            d
        }),
        ("HL7 namespace declared on the envelope", {
            let d = replace(FIXTURE, " xmlns=\"urn:hl7-org:v3\"", "");
            let d = replace(&d, "<InstanceIdentifier ", "<h:InstanceIdentifier ");
            let d = replace(&d, "<CodedValue ", "<h:CodedValue ");
            replace(
                &d,
                SOAP_NS,
                &format!("{SOAP_NS} xmlns:h=\"urn:hl7-org:v3\""),
            )
        }),
        (
            "no XML declaration",
            replace(FIXTURE, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>", ""),
        ),
        ("a byte order mark", format!("\u{FEFF}{FIXTURE}")),
        (
            "comments",
            replace(FIXTURE, "<SOAP-ENV:Body>", "<SOAP-ENV:Body><!-- hi -->"),
        ),
        ("whitespace around values", {
            let d = replace(FIXTURE, "<wsa:MessageID>urn", "<wsa:MessageID>\n  urn");
            replace(&d, "extension=\"00000659\"", "extension=\" 00000659 \"")
        }),
        (
            "a signed query (ds:Signature before the Request)",
            replace(
                FIXTURE,
                "<types:XACMLAuthzDecisionQuery>",
                "<types:XACMLAuthzDecisionQuery><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignatureValue>AAAA</ds:SignatureValue></ds:Signature>",
            ),
        ),
        (
            "an extra, unknown SOAP header",
            replace(
                FIXTURE,
                "<SOAP-ENV:Header>",
                "<SOAP-ENV:Header><x:Trace xmlns:x=\"urn:example\">1</x:Trace>",
            ),
        ),
        ("no To", remove_line(FIXTURE, "<wsa:To>")),
    ];
    for (what, doc) in variants {
        let mut expected = expected_fixture();
        if what == "no To" {
            expected.to = None;
        }
        match parse_closed_question(doc.as_bytes()) {
            Ok(request) => assert_eq!(request, expected, "{what}"),
            Err(e) => panic!("{what}: refused: {e}"),
        }
    }
}

fn remove_line(doc: &str, containing: &str) -> String {
    let kept: Vec<&str> = doc.lines().filter(|l| !l.contains(containing)).collect();
    assert!(
        kept.len() < doc.lines().count(),
        "no line contains {containing:?}"
    );
    kept.join("\n")
}

#[test]
fn a_prefix_bound_to_another_namespace_is_not_trusted() {
    let doc = replace(
        FIXTURE,
        "xmlns:wsa=\"http://www.w3.org/2005/08/addressing\"",
        "xmlns:wsa=\"http://example.org/not-addressing\"",
    );
    assert_eq!(parse_err(&doc), WireError::MissingAddressing("Action"));

    // An HL7 value element that is not in the HL7 namespace is not a value.
    let doc = edit_attribute(
        FIXTURE,
        "urn:ihe:iti:appc:2016:author-institution:id",
        " xmlns=\"urn:hl7-org:v3\"",
        "",
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "attribute urn:ihe:iti:appc:2016:author-institution:id: the AttributeValue holds no \
         HL7v3 element (namespace urn:hl7-org:v3)"
    );
}

#[test]
fn include_in_result_false_is_accepted() {
    let doc = replace(
        FIXTURE,
        "IncludeInResult=\"true\"",
        "IncludeInResult=\"false\"",
    );
    assert_eq!(parse_ok(&doc), expected_fixture());
}

#[test]
fn several_action_blocks_give_data_categories_in_document_order() {
    let three = format!(
        "{}\n{}\n{}",
        action_block("GGC013"),
        action_block("GGC002"),
        action_block("GGC012")
    );
    let doc = replace(FIXTURE, &block(FIXTURE, ACTION), &three);
    assert_eq!(
        parse_ok(&doc).data_categories,
        data_categories(&["GGC013", "GGC002", "GGC012"])
    );

    // Action blocks need not be next to each other.
    let doc = replace(FIXTURE, &block(FIXTURE, ACTION), &action_block("GGC012"));
    let doc = replace(
        &doc,
        "<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:resource\"",
        &format!(
            "{}<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:resource\"",
            action_block("GGC007")
        ),
    );
    let doc = replace(
        &doc,
        "</Request>",
        &format!("{}</Request>", action_block("GGC008")),
    );
    assert_eq!(
        parse_ok(&doc).data_categories,
        data_categories(&["GGC007", "GGC012", "GGC008"])
    );
}

#[test]
fn the_mandated_assistant_is_read_when_present() {
    let mandated = r#"<Attribute AttributeId="urn:nl:otv:names:tc:1.0:subject:mandated" IncludeInResult="true">
                        <AttributeValue DataType="urn:hl7-org:v3#II">
                            <InstanceIdentifier assigningAuthorityName="CIBG" extension="000012345" root="2.16.528.1.1007.3.1" xmlns="urn:hl7-org:v3"/>
                        </AttributeValue>
                    </Attribute>
                    "#;
    let doc = replace(
        FIXTURE,
        "<Attribute AttributeId=\"urn:ihe:iti:xua:2017:subject:provider-identifier\"",
        &format!(
            "{mandated}<Attribute AttributeId=\"urn:ihe:iti:xua:2017:subject:provider-identifier\""
        ),
    );
    let request = parse_ok(&doc);
    assert_eq!(
        request.mandated,
        Some(UziNumber::parse("000012345").unwrap())
    );
    assert_eq!(request.professional, UziNumber::parse("000095254").unwrap());

    let wrong = edit_attribute(
        &doc,
        "urn:nl:otv:names:tc:1.0:subject:mandated",
        "2.16.528.1.1007.3.1",
        "2.16.528.1.1007.3.3",
    );
    assert_eq!(
        parse_err(&wrong).to_string(),
        "attribute urn:nl:otv:names:tc:1.0:subject:mandated: root `2.16.528.1.1007.3.3` is not \
         2.16.528.1.1007.3.1 (UZI number)"
    );
}

#[test]
fn purpose_coc_is_accepted() {
    let doc = edit_attribute(
        FIXTURE,
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
        "code=\"TREAT\"",
        "code=\"COC\"",
    );
    assert_eq!(parse_ok(&doc).purpose, Purpose::Coc);
}

#[test]
fn ws_addressing_errors_name_the_header() {
    let cases = [
        (
            remove_line(FIXTURE, "<wsa:MessageID>"),
            "missing WS-Addressing MessageID",
        ),
        (
            replace(
                FIXTURE,
                "<wsa:MessageID>urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697</wsa:MessageID>",
                "<wsa:MessageID> </wsa:MessageID>",
            ),
            "missing WS-Addressing MessageID",
        ),
        (
            remove_line(FIXTURE, "<wsa:Action>"),
            "missing WS-Addressing Action",
        ),
        (
            replace(
                FIXTURE,
                ">XACMLAuthorizationDecisionQueryRequest<",
                ">urn:ihe:iti:2009:PatientLocationQuery<",
            ),
            "WS-Addressing Action `urn:ihe:iti:2009:PatientLocationQuery` is not XACMLAuthorizationDecisionQueryRequest",
        ),
        (
            replace(
                FIXTURE,
                "<wsa:To>",
                "<wsa:MessageID>x</wsa:MessageID><wsa:To>",
            ),
            "more than one WS-Addressing MessageID",
        ),
        (
            replace(
                FIXTURE,
                "urn:uuid:B8CB2497",
                &format!("urn:uuid:{}", "x".repeat(300)),
            ),
            "WS-Addressing MessageID is longer than 256 characters",
        ),
        (
            {
                let start = FIXTURE.find("<SOAP-ENV:Header>").unwrap();
                let end = FIXTURE.find("</SOAP-ENV:Header>").unwrap() + "</SOAP-ENV:Header>".len();
                let mut d = FIXTURE.to_owned();
                d.replace_range(start..end, "");
                d
            },
            "missing WS-Addressing Action",
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(parse_err(&doc).to_string(), expected);
    }
}

/// PRODUCT.md §5 step 1: a missing required attribute is a fault naming the attribute.
#[test]
fn each_required_attribute_missing_is_named() {
    for id in [
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
        "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code",
        "urn:ihe:iti:appc:2016:author-institution:id",
        "urn:ihe:iti:appc:2016:document-entry:event-code",
        "urn:oasis:names:tc:xacml:2.0:subject:role",
        "urn:ihe:iti:xua:2017:subject:provider-identifier",
        "urn:nl:otv:names:tc:1.0:subject:provider-institution",
        "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code",
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
    ] {
        let e = parse_err(&remove_attribute(FIXTURE, id));
        assert_eq!(e.to_string(), format!("attribute {id}: missing"));
        assert_eq!(
            e,
            WireError::Attribute {
                attribute: id,
                problem: AttributeProblem::Missing
            }
        );
    }
    // No action block at all: the data category is what is missing.
    let doc = replace(FIXTURE, &block(FIXTURE, ACTION), "");
    assert_eq!(
        parse_err(&doc).to_string(),
        "attribute urn:ihe:iti:appc:2016:document-entry:event-code: missing"
    );
    // One of several action blocks without an event code.
    let empty_action = format!("<Attributes Category=\"{ACTION}\"/>");
    let doc = replace(FIXTURE, "</Request>", &format!("{empty_action}</Request>"));
    assert_eq!(
        parse_err(&doc).to_string(),
        "attribute urn:ihe:iti:appc:2016:document-entry:event-code: missing"
    );
}

#[test]
fn wrong_roots_and_code_systems_are_named() {
    let cases = [
        (
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
            "2.16.840.1.113883.2.4.6.3",
            "root `1.2.3` is not 2.16.840.1.113883.2.4.6.3 (BSN)",
        ),
        (
            "urn:ihe:iti:appc:2016:author-institution:id",
            "2.16.528.1.1007.3.3",
            "root `1.2.3` is not 2.16.528.1.1007.3.3 (URA)",
        ),
        (
            "urn:nl:otv:names:tc:1.0:subject:provider-institution",
            "2.16.528.1.1007.3.3",
            "root `1.2.3` is not 2.16.528.1.1007.3.3 (URA)",
        ),
        (
            "urn:ihe:iti:xua:2017:subject:provider-identifier",
            "2.16.528.1.1007.3.1",
            "root `1.2.3` is not 2.16.528.1.1007.3.1 (UZI number)",
        ),
        (
            "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code",
            "2.16.840.1.113883.2.4.15.1060",
            "codeSystem `1.2.3` is not 2.16.840.1.113883.2.4.15.1060 (organisation type)",
        ),
        (
            "urn:nl:otv:names:tc:1.0:subject:consulting-healthcare-facility-type-code",
            "2.16.840.1.113883.2.4.15.1060",
            "codeSystem `1.2.3` is not 2.16.840.1.113883.2.4.15.1060 (organisation type)",
        ),
        (
            "urn:oasis:names:tc:xacml:2.0:subject:role",
            "2.16.840.1.113883.2.4.15.111",
            "codeSystem `1.2.3` is not 2.16.840.1.113883.2.4.15.111 (RoleCodeNL)",
        ),
        (
            "urn:ihe:iti:appc:2016:document-entry:event-code",
            "2.16.840.1.113883.2.4.3.111.5.10.1",
            "codeSystem `1.2.3` is not 2.16.840.1.113883.2.4.3.111.5.10.1 (data category)",
        ),
        (
            "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
            "2.16.840.1.113883.1.11.20448",
            "codeSystem `1.2.3` is not 2.16.840.1.113883.1.11.20448 (purpose of use)",
        ),
    ];
    for (id, oid, problem) in cases {
        let doc = edit_attribute(FIXTURE, id, &format!("\"{oid}\""), "\"1.2.3\"");
        assert_eq!(
            parse_err(&doc).to_string(),
            format!("attribute {id}: {problem}")
        );
    }
}

#[test]
fn malformed_values_name_the_attribute_and_the_rule() {
    let cases = [
        (
            "urn:ihe:iti:appc:2016:author-institution:id",
            "extension=\"00000659\"",
            "extension=\"0000065\"",
            "a URA is 8 digits",
        ),
        (
            "urn:nl:otv:names:tc:1.0:subject:provider-institution",
            "extension=\"00000666\"",
            "extension=\"URA00666\"",
            "a URA is 8 digits",
        ),
        (
            "urn:ihe:iti:xua:2017:subject:provider-identifier",
            "extension=\"000095254\"",
            "extension=\"UZI-1\"",
            "a UZI number is 1 to 12 digits",
        ),
        (
            "urn:ihe:iti:appc:2016:document-entry:healthcare-facility-type-code",
            "code=\"Z3\"",
            "code=\"z3\"",
            "an organisation type is a capital letter and a digit, e.g. Z3",
        ),
        (
            "urn:oasis:names:tc:xacml:2.0:subject:role",
            "code=\"01.015\"",
            "code=\"01015\"",
            "a role code is two digits, a dot and three digits, e.g. 01.015",
        ),
        (
            "urn:ihe:iti:appc:2016:document-entry:event-code",
            "code=\"GGC002\"",
            "code=\"GGX002\"",
            "a data category is GGC followed by three digits, e.g. GGC002",
        ),
        (
            "urn:ihe:iti:appc:2016:author-institution:id",
            " extension=\"00000659\"",
            "",
            "the HL7v3 value has no `extension`",
        ),
        (
            "urn:ihe:iti:appc:2016:author-institution:id",
            " root=\"2.16.528.1.1007.3.3\"",
            "",
            "the HL7v3 value has no `root`",
        ),
        (
            "urn:oasis:names:tc:xacml:2.0:subject:role",
            " code=\"01.015\"",
            "",
            "the HL7v3 value has no `code`",
        ),
        (
            "urn:oasis:names:tc:xacml:2.0:subject:role",
            " codeSystem=\"2.16.840.1.113883.2.4.15.111\"",
            "",
            "the HL7v3 value has no `codeSystem`",
        ),
    ];
    for (id, from, to, problem) in cases {
        let doc = edit_attribute(FIXTURE, id, from, to);
        assert_eq!(
            parse_err(&doc).to_string(),
            format!("attribute {id}: {problem}"),
            "{to}"
        );
    }
}

#[test]
fn attribute_shape_errors_are_named() {
    let id = "urn:ihe:iti:appc:2016:author-institution:id";
    let value = r#"<AttributeValue DataType="urn:hl7-org:v3#II"><InstanceIdentifier extension="00000659" root="2.16.528.1.1007.3.3" xmlns="urn:hl7-org:v3"/></AttributeValue>"#;

    let repeated = {
        let range_doc = FIXTURE;
        let start = range_doc
            .find(&format!("<Attribute AttributeId=\"{id}\""))
            .unwrap();
        let end = start + range_doc[start..].find("</Attribute>").unwrap() + "</Attribute>".len();
        let attribute = &range_doc[start..end];
        replace(FIXTURE, attribute, &format!("{attribute}{attribute}"))
    };
    assert_eq!(
        parse_err(&repeated).to_string(),
        format!("attribute {id}: appears more than once")
    );

    let two_values = edit_attribute(
        FIXTURE,
        id,
        "</AttributeValue>",
        &format!("</AttributeValue>{value}"),
    );
    assert_eq!(
        parse_err(&two_values).to_string(),
        format!("attribute {id}: has more than one AttributeValue")
    );

    let no_value = {
        let d = edit_attribute(FIXTURE, id, "<AttributeValue", "<Other");
        edit_attribute(&d, id, "</AttributeValue>", "</Other>")
    };
    assert_eq!(
        parse_err(&no_value).to_string(),
        format!("attribute {id}: has no AttributeValue")
    );

    let two_hl7 = edit_attribute(
        FIXTURE,
        id,
        "</AttributeValue>",
        "<II root=\"2.16.528.1.1007.3.3\" extension=\"00000659\" xmlns=\"urn:hl7-org:v3\"/></AttributeValue>",
    );
    assert_eq!(
        parse_err(&two_hl7).to_string(),
        format!("attribute {id}: the AttributeValue holds more than one HL7v3 element")
    );
}

#[test]
fn invalid_bsn_is_refused_without_showing_it() {
    for bad in [
        "900186022",
        "90018602",
        "9001860211",
        "00000000A",
        "000000000",
    ] {
        let doc = edit_attribute(
            FIXTURE,
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
            "extension=\"900186021\"",
            &format!("extension=\"{bad}\""),
        );
        let e = parse_err(&doc);
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(bad), "{shown}");
            assert!(
                shown.contains("urn:oasis:names:tc:xacml:2.0:resource:resource-id"),
                "{shown}"
            );
        }
    }
    let doc = edit_attribute(
        FIXTURE,
        "urn:oasis:names:tc:xacml:2.0:resource:resource-id",
        "extension=\"900186021\"",
        "extension=\"900186022\"",
    );
    assert_eq!(
        parse_err(&doc).to_string(),
        "attribute urn:oasis:names:tc:xacml:2.0:resource:resource-id: a BSN must pass the 11-test"
    );
}

#[test]
fn an_unsupported_purpose_is_its_own_error() {
    let doc = edit_attribute(
        FIXTURE,
        "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse",
        "code=\"TREAT\"",
        "code=\"XYZ\"",
    );
    let e = parse_err(&doc);
    assert!(matches!(e, WireError::UnsupportedPurpose(_)));
    assert_eq!(e.to_string(), "purpose of use `XYZ` is not TREAT or COC");
}

#[test]
fn structure_errors_say_what_is_wrong() {
    let cases = [
        (
            FIXTURE.replace("http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/"),
            "the envelope is SOAP 1.1; this interface speaks SOAP 1.2 (namespace http://www.w3.org/2003/05/soap-envelope)".to_owned(),
        ),
        (
            "<Envelope/>".to_owned(),
            "the document element is `Envelope`, not a SOAP 1.2 Envelope (namespace http://www.w3.org/2003/05/soap-envelope)".to_owned(),
        ),
        (
            replace(FIXTURE, "urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14", "urn:example"),
            "the SOAP Body holds `{urn:example}XACMLAuthzDecisionQuery`, not an XACMLAuthzDecisionQuery (namespace urn:oasis:names:tc:xacml:3.0:profile:saml2.0:v2:schema:protocol:wd-14)".to_owned(),
        ),
        (
            replace(FIXTURE, "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17", "urn:oasis:names:tc:xacml:2.0:context:schema:os"),
            "the XACMLAuthzDecisionQuery must hold exactly one XACML 3.0 Request (namespace urn:oasis:names:tc:xacml:3.0:core:schema:wd-17)".to_owned(),
        ),
        (
            replace(FIXTURE, "</SOAP-ENV:Body>", "</SOAP-ENV:Body><SOAP-ENV:Body/>"),
            "more than one SOAP Body".to_owned(),
        ),
        (
            replace(FIXTURE, "</types:XACMLAuthzDecisionQuery>", "</types:XACMLAuthzDecisionQuery><types:XACMLAuthzDecisionQuery/>"),
            "the SOAP Body must hold exactly one element".to_owned(),
        ),
        (
            replace(FIXTURE, "CombinedDecision=\"false\"", "CombinedDecision=\"true\""),
            "CombinedDecision=\"true\" is not supported: otv answers one Result per data category".to_owned(),
        ),
        (
            replace(
                FIXTURE,
                "<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:environment\"",
                &format!("{}<Attributes Category=\"urn:oasis:names:tc:xacml:3.0:attribute-category:environment\"", block(FIXTURE, "urn:oasis:names:tc:xacml:3.0:attribute-category:environment")),
            ),
            "more than one XACML Attributes block of category environment".to_owned(),
        ),
        (
            replace(FIXTURE, "<Attribute AttributeId=\"urn:oasis:names:tc:xacml:2.0:subject:role\"", "<Attribute"),
            "an XACML Attribute in category urn:oasis:names:tc:xacml:1.0:subject-category:access-subject has no AttributeId".to_owned(),
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(parse_err(&doc).to_string(), expected);
    }
}

#[test]
fn unknown_categories_and_attributes_are_ignored() {
    let extra = r#"<Attribute AttributeId="urn:example:extra" IncludeInResult="false"><AttributeValue DataType="http://www.w3.org/2001/XMLSchema#string">x</AttributeValue></Attribute>"#;
    let doc = replace(
        FIXTURE,
        "</Request>",
        &format!("<Attributes Category=\"urn:example:category\">{extra}</Attributes></Request>"),
    );
    let doc = replace(
        &doc,
        "<Attribute AttributeId=\"urn:oasis:names:tc:xacml:2.0:subject:role\"",
        &format!("{extra}<Attribute AttributeId=\"urn:oasis:names:tc:xacml:2.0:subject:role\""),
    );
    assert_eq!(parse_ok(&doc), expected_fixture());
}
