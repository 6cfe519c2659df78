//! Migration Consents (PRODUCT.md §9): the real Mitz notification Consents read as a migration
//! batch in XML and JSON, NDJSON lines with contained and logical references, and refusals that
//! name the element (and never the BSN).

use otv_core::{CategoryCode, Effect};
use otv_wire::fhir::{
    ConsentBatchEntry, ErrorClass, FhirError, MigrationConsent, parse_consent_batch_json,
    parse_consent_batch_xml, parse_consent_ndjson_line,
};

use super::support::replace;

const BATCH_XML: &str = include_str!("../fixtures/fhir/consent-batch.xml");
const BATCH_JSON: &str = include_str!("../fixtures/fhir/consent-batch.json");
const BSN: &str = "900186021";

fn consents(entries: Vec<ConsentBatchEntry>) -> Vec<Result<MigrationConsent, FhirError>> {
    entries
        .into_iter()
        .filter_map(|e| match e {
            ConsentBatchEntry::Consent(c) => Some(c),
            ConsentBatchEntry::Referenced => None,
            ConsentBatchEntry::Refused(e) => Some(Err(e)),
        })
        .collect()
}

fn codes(list: &[&str]) -> Vec<CategoryCode> {
    list.iter()
        .map(|c| CategoryCode::parse(c).unwrap())
        .collect()
}

fn check_fixture(entries: Vec<ConsentBatchEntry>) {
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[2], ConsentBatchEntry::Referenced);
    assert_eq!(entries[3], ConsentBatchEntry::Referenced);
    let found = consents(entries);
    let yes = found[0].as_ref().expect("the first Consent migrates");
    assert_eq!(yes.effect, Effect::Permit);
    assert_eq!(yes.data_category.as_str(), "GGC002");
    assert_eq!(yes.consulters, codes(&["RPZAC005"]));
    assert_eq!(yes.bsn.expose(), BSN);
    assert_eq!(yes.holder_ura.as_str(), "00000659");
    assert_eq!(yes.holder_type.as_ref().unwrap().as_str(), "Z3");
    assert_eq!(
        yes.valid_from.unwrap().to_rfc3339(),
        "2024-11-18T10:51:16.896792700+00:00"
    );
    let no = found[1].as_ref().expect("the second Consent migrates");
    assert_eq!(no.effect, Effect::Deny);
    assert_eq!(
        no.consulters,
        codes(&[
            "RPZAC001", "RPZAC104", "RPZAC004", "RPZAC003", "RPZAC103", "RPZAC200"
        ])
    );
}

#[test]
fn the_mitz_notification_consents_read_as_a_migration_batch_in_xml() {
    check_fixture(parse_consent_batch_xml(BATCH_XML.as_bytes()).unwrap());
}

#[test]
fn the_same_batch_in_json_reads_the_same() {
    check_fixture(parse_consent_batch_json(BATCH_JSON.as_bytes()).unwrap());
}

/// One NDJSON line with the Patient and Organization contained.
fn contained_line() -> String {
    concat!(
        r#"{"resourceType":"Consent","contained":["#,
        r#"{"resourceType":"Patient","id":"p","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"900186021"}]},"#,
        r#"{"resourceType":"Organization","id":"o","identifier":[{"system":"http://fhir.nl/fhir/NamingSystem/ura","value":"00000659"}],"#,
        r#""type":[{"coding":[{"system":"http://nictiz.nl/fhir/NamingSystem/organization-type","code":"J8"}]}]}],"#,
        r#""extension":[{"url":"http://fhir.nl/StructureDefinition/OTV-ProviderCategory","valueCodeableConcept":{"coding":[{"system":"http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie","code":"RPZAC001"}]}}],"#,
        r#""status":"inactive","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"#,
        r#""category":[{"coding":[{"system":"http://fhir.nl/otv/CodeSystem/gegevenscategorie","code":"GGC013"}]}],"#,
        r##""patient":{"reference":"#p"},"dateTime":"2019-03-01","##,
        r##""provision":{"actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"CST"}]},"reference":{"reference":"#o"}}]}}"##,
        "\n"
    )
    .to_owned()
}

#[test]
fn an_ndjson_line_with_contained_patient_and_organization() {
    let c = parse_consent_ndjson_line(7, contained_line().as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(c.effect, Effect::Deny);
    assert_eq!(c.data_category.as_str(), "GGC013");
    assert_eq!(c.holder_type.unwrap().as_str(), "J8");
    assert_eq!(
        c.valid_from.unwrap().to_rfc3339(),
        "2019-03-01T00:00:00+00:00"
    );
    assert!(parse_consent_ndjson_line(8, b"  \r\n").is_none());
}

#[test]
fn logical_references_name_patient_and_holder_without_a_type() {
    let line = replace(
        &contained_line(),
        r##""patient":{"reference":"#p"}"##,
        r#""patient":{"identifier":{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"900186021"}}"#,
    );
    let line = replace(
        &line,
        r##""reference":{"reference":"#o"}"##,
        r#""reference":{"identifier":{"system":"http://fhir.nl/fhir/NamingSystem/ura","value":"00000659"}}"#,
    );
    let c = parse_consent_ndjson_line(1, line.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(c.bsn.expose(), BSN);
    assert_eq!(c.holder_ura.as_str(), "00000659");
    assert_eq!(c.holder_type, None);
}

/// The refusal of `line`: its class and the paths of its issues; never the BSN.
fn refusal(line: &str) -> (ErrorClass, Vec<String>) {
    let e = parse_consent_ndjson_line(3, line.as_bytes())
        .unwrap()
        .unwrap_err();
    assert_eq!(e.line, 3);
    let text = e.to_string();
    assert!(!text.contains(BSN), "a BSN in an error: {text}");
    assert!(!text.contains("900186020"), "a BSN in an error: {text}");
    (
        e.error.class(),
        e.error
            .issues()
            .iter()
            .map(|i| i.expression.clone().unwrap_or_default())
            .collect(),
    )
}

#[test]
fn refusals_name_the_element() {
    let line = contained_line();
    let cases: [(&str, &str, ErrorClass, &str); 9] = [
        (
            r#""status":"inactive""#,
            r#""status":"draft""#,
            ErrorClass::BusinessRule,
            "Consent.status",
        ),
        (
            r#""status":"inactive""#,
            r#""status":"maybe""#,
            ErrorClass::Invalid,
            "Consent.status",
        ),
        (
            r#""code":"patient-privacy""#,
            r#""code":"research""#,
            ErrorClass::BusinessRule,
            "Consent.scope",
        ),
        (
            "gegevenscategorie",
            "other-categories",
            ErrorClass::BusinessRule,
            "Consent.category",
        ),
        (
            r#""value":"900186021""#,
            r#""value":"900186020""#,
            ErrorClass::BusinessRule,
            "Consent.patient.resolve().identifier.value",
        ),
        (
            r##""reference":"#o""##,
            r##""reference":"#x""##,
            ErrorClass::BusinessRule,
            "Consent.provision.actor[0].reference.reference",
        ),
        (
            r#""code":"CST""#,
            r#""code":"PRCP""#,
            ErrorClass::BusinessRule,
            "Consent.provision.actor",
        ),
        (
            "OTV-ProviderCategory",
            "Something-Else",
            ErrorClass::BusinessRule,
            "Consent.extension[OTV-ProviderCategory]",
        ),
        (
            r#""dateTime":"2019-03-01""#,
            r#""dateTime":"2019-03""#,
            ErrorClass::BusinessRule,
            "Consent.dateTime",
        ),
    ];
    for (from, to, class, path) in cases {
        let (found_class, paths) = refusal(&replace(&line, from, to));
        assert_eq!(found_class, class, "{to}: {paths:?}");
        assert!(paths.iter().any(|p| p == path), "{to}: {paths:?}");
    }
    let (_, paths) = refusal(&replace(
        &line,
        r#""provision":{"#,
        r#""provision":{"period":{"end":"2030-01-01"},"#,
    ));
    assert_eq!(paths, ["Consent.provision.period.end"]);
    let (class, paths) = refusal(&replace(
        &line,
        r#""resourceType":"Consent","#,
        r#""resourceType":"Consent","modifierExtension":[{"url":"urn:x"}],"#,
    ));
    assert_eq!(class, ErrorClass::BusinessRule);
    assert_eq!(paths, ["Consent.modifierExtension"]);
}

#[test]
fn a_transaction_bundle_is_refused_as_a_whole_and_bad_entries_alone() {
    let e = parse_consent_batch_xml(
        replace(
            BATCH_XML,
            r#"<type value="batch"/>"#,
            r#"<type value="transaction"/>"#,
        )
        .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.class(), ErrorClass::BusinessRule);
    assert_eq!(e.issues()[0].expression.as_deref(), Some("Bundle.type"));

    // The first Consent's patient points nowhere; the second still migrates.
    let doc = BATCH_JSON.replacen(
        r#""reference": "urn:uuid:2083dda0-4a90-4b37-87fe-3c974399dbe2""#,
        r#""reference": "urn:uuid:00000000-0000-0000-0000-000000000000""#,
        1,
    );
    assert_ne!(doc, BATCH_JSON);
    let found = consents(parse_consent_batch_json(doc.as_bytes()).unwrap());
    let e = found[0].as_ref().unwrap_err();
    assert_eq!(
        e.issues()[0].expression.as_deref(),
        Some("Consent.patient.reference")
    );
    assert!(found[1].is_ok());

    let doc = replace(BATCH_JSON, r#""url": "Patient""#, r#""url": "Observation""#);
    let entries = parse_consent_batch_json(doc.as_bytes()).unwrap();
    assert!(matches!(entries[2], ConsentBatchEntry::Refused(_)));
}
