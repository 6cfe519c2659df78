//! Writing the response and faults: byte-for-byte golden files, and the output read back with
//! quick-xml directly (not with otv-wire's own reader) to check what a client would see.

use std::collections::BTreeMap;

use otv_core::{Bsn, DataCategory, Effect, Ura};
use otv_wire::{Decision, FaultCode, closed_question_response, parse_closed_question, soap_fault};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use uuid::Uuid;

use crate::support::*;

const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const WSA: &str = "http://www.w3.org/2005/08/addressing";
const XACML: &str = "urn:oasis:names:tc:xacml:3.0:core:schema:wd-17";
const HL7: &str = "urn:hl7-org:v3";
const RESOURCE: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:resource";

const REQUEST_ID: &str = "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697";
const RESPONSE_ID: Uuid = Uuid::from_u128(0x0192f0c17a3e7c4d9e5fa1b2c3d4e5f6);

fn dc(code: &str) -> DataCategory {
    DataCategory::parse(code).unwrap()
}

fn three_outcomes() -> Vec<(DataCategory, Decision)> {
    vec![
        (dc("GGC002"), Decision::Permit),
        (dc("GGC012"), Decision::Deny),
        (dc("GGC013"), Decision::Indeterminate),
    ]
}

fn response(request_id: &str, outcomes: &[(DataCategory, Decision)]) -> String {
    closed_question_response(
        request_id,
        RESPONSE_ID,
        &Bsn::parse(FIXTURE_BSN).unwrap(),
        &Ura::parse("00000659").unwrap(),
        outcomes,
    )
}

#[test]
fn response_matches_its_golden_file() {
    assert_golden(
        "closed-question-response.xml",
        &response(REQUEST_ID, &three_outcomes()),
    );
}

#[test]
fn sender_fault_matches_its_golden_file() {
    assert_golden(
        "sender-fault.xml",
        &soap_fault(
            FaultCode::Sender,
            "attribute urn:ihe:iti:appc:2016:author-institution:id: a URA is 8 digits",
        ),
    );
}

#[test]
fn decisions_come_from_effects() {
    assert_eq!(Decision::from(Effect::Permit), Decision::Permit);
    assert_eq!(Decision::from(Effect::Deny), Decision::Deny);
    assert_eq!(Decision::Indeterminate.as_str(), "Indeterminate");
}

/// One HL7 value as a client reads it: category, attribute id, and the value's XML attributes.
type Echoed = (String, String, BTreeMap<String, String>);

/// What a client sees in a response.
#[derive(Debug, Default)]
struct Seen {
    action: String,
    message_id: String,
    relates_to: String,
    /// Per `Result`: the decision, the status code and the echoed attributes.
    results: Vec<(String, String, Vec<Echoed>)>,
}

fn attributes(e: &BytesStart<'_>) -> BTreeMap<String, String> {
    e.attributes()
        .map(|a| {
            let a = a.unwrap();
            (
                a.key.into_inner().to_owned(),
                a.normalized_value(XmlVersion::Implicit1_0)
                    .unwrap()
                    .into_owned(),
            )
        })
        .filter(|(k, _)| k != "xmlns" && !k.starts_with("xmlns:"))
        .collect()
}

/// Reads a response with quick-xml's namespace-aware reader, by namespace and local name.
fn read_response(xml: &str) -> Seen {
    let mut reader = NsReader::from_str(xml);
    let mut seen = Seen::default();
    let mut path: Vec<(String, String)> = Vec::new();
    let mut category = String::new();
    let mut attribute_id = String::new();
    let mut text = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.into_inner().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => panic!("unknown prefix {p}"),
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name().into_inner().to_owned();
                let attrs = attributes(e);
                match (ns.as_str(), local.as_str()) {
                    (XACML, "Result") => seen.results.push(Default::default()),
                    (XACML, "StatusCode") => {
                        seen.results.last_mut().unwrap().1 = attrs["Value"].clone()
                    }
                    (XACML, "Attributes") => category = attrs["Category"].clone(),
                    (XACML, "Attribute") => {
                        assert_eq!(attrs["IncludeInResult"], "true");
                        attribute_id = attrs["AttributeId"].clone();
                    }
                    (HL7, _) => seen.results.last_mut().unwrap().2.push((
                        category.clone(),
                        attribute_id.clone(),
                        attrs,
                    )),
                    _ => {}
                }
                text.clear();
                if matches!(event, Event::Start(_)) {
                    path.push((ns, local));
                }
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => text.push(r.resolve_char_ref().unwrap().unwrap_or_else(|| {
                match r.into_inner().as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("entity {other}"),
                }
            })),
            Event::End(_) => {
                let (ns, local) = path.pop().unwrap();
                let value = std::mem::take(&mut text);
                match (ns.as_str(), local.as_str()) {
                    (WSA, "Action") => seen.action = value,
                    (WSA, "MessageID") => seen.message_id = value,
                    (WSA, "RelatesTo") => seen.relates_to = value,
                    (XACML, "Decision") => seen.results.last_mut().unwrap().0 = value,
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    seen
}

fn echoed(code: &str) -> Vec<Echoed> {
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    vec![
        (
            RESOURCE.to_owned(),
            "urn:oasis:names:tc:xacml:2.0:resource:resource-id".to_owned(),
            map(&[
                ("root", "2.16.840.1.113883.2.4.6.3"),
                ("extension", FIXTURE_BSN),
            ]),
        ),
        (
            RESOURCE.to_owned(),
            "urn:ihe:iti:appc:2016:author-institution:id".to_owned(),
            map(&[("root", "2.16.528.1.1007.3.3"), ("extension", "00000659")]),
        ),
        (
            "urn:oasis:names:tc:xacml:3.0:attribute-category:action".to_owned(),
            "urn:ihe:iti:appc:2016:document-entry:event-code".to_owned(),
            map(&[
                ("code", code),
                ("codeSystem", "2.16.840.1.113883.2.4.3.111.5.10.1"),
            ]),
        ),
    ]
}

#[test]
fn a_client_reads_one_result_per_data_category_in_order() {
    let seen = read_response(&response(REQUEST_ID, &three_outcomes()));
    assert_eq!(
        seen.action,
        "http://schemas.otv.nl/toestemmingsregister/XACMLAuthzDecisionQuery/IGeslotenAutorisatievraagService/XACMLAuthzDecisionQueryResponse"
    );
    assert_eq!(seen.message_id, format!("urn:uuid:{RESPONSE_ID}"));
    assert_eq!(seen.relates_to, REQUEST_ID);
    let ok = "urn:oasis:names:tc:xacml:1.0:status:ok".to_owned();
    assert_eq!(
        seen.results,
        vec![
            ("Permit".to_owned(), ok.clone(), echoed("GGC002")),
            ("Deny".to_owned(), ok.clone(), echoed("GGC012")),
            ("Indeterminate".to_owned(), ok, echoed("GGC013")),
        ]
    );
}

#[test]
fn the_response_sits_directly_under_the_soap_body() {
    let xml = response(REQUEST_ID, &three_outcomes());
    let mut reader = NsReader::from_str(&xml);
    let mut path: Vec<(String, String)> = Vec::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.into_inner().to_owned(),
            _ => String::new(),
        };
        match event {
            Event::Start(e) => {
                let local = e.local_name().into_inner().to_owned();
                if (ns.as_str(), local.as_str()) == (XACML, "Response") {
                    let parents: Vec<_> =
                        path.iter().map(|(n, l)| (n.as_str(), l.as_str())).collect();
                    assert_eq!(parents, [(SOAP, "Envelope"), (SOAP, "Body")]);
                    return;
                }
                path.push((ns, local));
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Eof => panic!("no Response"),
            _ => {}
        }
    }
}

#[test]
fn the_request_message_id_is_escaped_and_echoed_exactly() {
    let nasty = "urn:x:<a href=\"'\">&amp;</a>\t";
    let seen = read_response(&response(nasty, &[(dc("GGC002"), Decision::Deny)]));
    assert_eq!(seen.relates_to, nasty);
}

#[test]
fn the_fixture_round_trips_into_a_response() {
    let request = parse_closed_question(FIXTURE.as_bytes()).unwrap();
    let outcomes: Vec<_> = request
        .data_categories
        .iter()
        .map(|c| (c.clone(), Decision::Permit))
        .collect();
    let xml = closed_question_response(
        &request.message_id,
        RESPONSE_ID,
        &request.bsn,
        &request.holder.ura,
        &outcomes,
    );
    let seen = read_response(&xml);
    assert_eq!(seen.relates_to, request.message_id);
    assert_eq!(seen.results.len(), 1);
    assert_eq!(seen.results[0].2, echoed("GGC002"));
}

#[test]
fn fault_reasons_are_escaped() {
    let reason = "purpose of use `<&\"'>` is not TREAT or COC";
    let xml = soap_fault(FaultCode::Receiver, reason);
    let mut reader = NsReader::from_str(&xml);
    let (mut code, mut text, mut lang) = (String::new(), String::new(), String::new());
    let mut current = String::new();
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        let in_soap = matches!(ns, ResolveResult::Bound(n) if n.into_inner() == SOAP);
        match event {
            Event::Start(e) if in_soap => {
                current = e.local_name().into_inner().to_owned();
                if current == "Text" {
                    lang = attributes(&e)["xml:lang"].clone();
                }
            }
            Event::Text(t) if current == "Value" => code.push_str(&t.xml10_content()),
            Event::Text(t) if current == "Text" => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if current == "Text" => text.push(match r.into_inner().as_ref() {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                other => panic!("entity {other}"),
            }),
            Event::End(_) => current.clear(),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(code, "soap:Receiver");
    assert_eq!(text, reason);
    assert_eq!(lang, "en");
}
