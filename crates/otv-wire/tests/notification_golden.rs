//! The consent notification has the structure of the Mitz example
//! (`fixtures/mitz/notification-bundle.xml`): the same element paths with the same values, in
//! the same order. Ids are compared by how they refer to each other (each distinct id becomes a
//! placeholder in order of appearance), the moment of the change and the narrative's line breaks
//! are the only other differences allowed. The JSON form says the same as the XML form.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use otv_core::{Bsn, OrgType, Ura};
use otv_wire::fhir::{
    Coded, ConsentGroup, Notification, notification_bundle_json, notification_bundle_xml,
    notification_id,
};
use quick_xml::events::Event;
use uuid::Uuid;

const FIXTURE: &str = include_str!("../../../../shared/fixtures/mitz/notification-bundle.xml");

fn coded(code: &str, display: &str) -> Coded {
    Coded {
        code: code.into(),
        display: display.into(),
    }
}

/// The groups of the example: pharmacies yes, every other consulting category no.
fn example_groups() -> Vec<ConsentGroup> {
    let data = coded("GGC002", "Behandelgegevens");
    vec![
        ConsentGroup {
            data_category: data.clone(),
            permit: true,
            consulting: vec![coded("RPZAC005", "Apotheken")],
        },
        ConsentGroup {
            data_category: data,
            permit: false,
            consulting: vec![
                coded("RPZAC001", "Huisartsen en huisartsenposten"),
                coded(
                    "RPZAC104",
                    "Ziekenhuizen, medische centra, klinieken, laboratoria en diagnostische centra",
                ),
                coded("RPZAC004", "Verpleging en verzorging"),
                coded("RPZAC003", "Geestelijke gezondheidszorg (GGZ)"),
                coded(
                    "RPZAC103",
                    "Overige zorg (tandartsen, paramedici, jeugdgezondheidszorg)",
                ),
                coded(
                    "RPZAC200",
                    "Zorgaanbieders in de Europese Unie buiten Nederland",
                ),
            ],
        },
    ]
}

struct Example {
    bsn: Bsn,
    ura: Ura,
    org_type: OrgType,
    groups: Vec<ConsentGroup>,
    at: DateTime<Utc>,
    id: Uuid,
}

fn example() -> Example {
    Example {
        bsn: Bsn::parse("900186021").unwrap(),
        ura: Ura::parse("00000659").unwrap(),
        org_type: OrgType::parse("Z3").unwrap(),
        groups: example_groups(),
        at: "2024-11-18T10:51:16.8967927Z".parse().unwrap(),
        id: notification_id(42, Uuid::from_u128(1)),
    }
}

fn notification(e: &Example) -> Notification<'_> {
    Notification {
        id: e.id,
        bsn: &e.bsn,
        holder_ura: &e.ura,
        holder_type: &e.org_type,
        catalogue_version: "3960100",
        changed_at: e.at,
        groups: &e.groups,
    }
}

#[allow(
    deprecated,
    reason = "unescape_value is what FHIR attribute values need"
)]
/// Every element as `path` and every attribute as `path/@name=value`, in document order, with
/// ids replaced by placeholders, `dateTime` by `<moment>`, and text with whitespace collapsed.
fn flatten(xml: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let placeholder = |value: &str, ids: &mut HashMap<String, usize>| -> String {
        let bare = value.strip_prefix("urn:uuid:").unwrap_or(value);
        if Uuid::parse_str(bare).is_ok() && bare.len() == 36 {
            let n = ids.len();
            let n = *ids.entry(bare.to_owned()).or_insert(n);
            format!(
                "{}<id {n}>",
                if value.starts_with("urn:uuid:") {
                    "urn:uuid:"
                } else {
                    ""
                }
            )
        } else {
            value.to_owned()
        }
    };
    loop {
        match reader.read_event().unwrap() {
            event @ (Event::Start(_) | Event::Empty(_)) => {
                let (e, empty) = match event {
                    Event::Start(e) => (e, false),
                    Event::Empty(e) => (e, true),
                    _ => unreachable!(),
                };
                let name = e.name().into_inner().to_owned();
                path.push(name);
                let here = path.join("/");
                out.push(here.clone());
                for a in e.attributes() {
                    let a = a.unwrap();
                    let key = a.key.into_inner().to_owned();
                    if key == "xmlns" {
                        out.push(format!("{here}/@xmlns={}", a.unescape_value().unwrap()));
                        continue;
                    }
                    let value = a.unescape_value().unwrap().into_owned();
                    let value = if here.ends_with("/dateTime") {
                        "<moment>".to_owned()
                    } else {
                        placeholder(&value, &mut ids)
                    };
                    out.push(format!("{here}/@{key}={value}"));
                }
                if empty {
                    path.pop();
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text: &str = &t;
                let words: Vec<&str> = text.split_whitespace().collect();
                if !words.is_empty() {
                    out.push(format!("{}/text()={}", path.join("/"), words.join(" ")));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

#[test]
fn the_notification_has_the_structure_of_the_mitz_example() {
    let e = example();
    let ours = flatten(&notification_bundle_xml(&notification(&e)));
    let theirs = flatten(FIXTURE);
    let mut first_difference = None;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a != b {
            first_difference = Some((i, a.clone(), b.clone()));
            break;
        }
    }
    assert_eq!(
        first_difference, None,
        "first difference (index, ours, the example)"
    );
    assert_eq!(ours.len(), theirs.len(), "ours:\n{}", ours.join("\n"));
}

#[test]
fn redelivery_is_the_same_bundle_with_the_same_ids() {
    let e = example();
    assert_eq!(
        notification_bundle_json(&notification(&e)),
        notification_bundle_json(&notification(&e))
    );
    let json: serde_json::Value =
        serde_json::from_str(&notification_bundle_json(&notification(&e))).unwrap();
    assert_eq!(json["id"], e.id.to_string());
}

#[test]
fn the_json_form_says_what_the_xml_form_says() {
    let e = example();
    let json: serde_json::Value =
        serde_json::from_str(&notification_bundle_json(&notification(&e))).unwrap();
    assert_eq!(json["resourceType"], "Bundle");
    assert_eq!(json["type"], "transaction");
    let entries = json["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let yes = &entries[0]["resource"];
    assert_eq!(yes["resourceType"], "Consent");
    assert_eq!(yes["status"], "active");
    assert_eq!(yes["provision"]["type"], "permit");
    assert_eq!(
        yes["meta"]["profile"][0],
        "http://vzvz.nl/fhir/StructureDefinition/Consent-Mitz-Notify|3.8.0"
    );
    assert_eq!(
        yes["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "RPZAC005"
    );
    assert_eq!(yes["category"][0]["coding"][0]["code"], "GGC002");
    assert_eq!(yes["provision"]["purpose"][0]["code"], "TREAT");
    assert_eq!(
        yes["provision"]["actor"][0]["reference"]["reference"],
        entries[3]["fullUrl"]
    );
    assert_eq!(yes["patient"]["reference"], entries[2]["fullUrl"]);
    assert!(yes["text"]["div"].as_str().unwrap().starts_with(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">De patiënt verleent toestemming"
    ));
    let no = &entries[1]["resource"];
    assert_eq!(no["status"], "inactive");
    assert!(no["provision"].get("type").is_none());
    assert_eq!(no["extension"].as_array().unwrap().len(), 6);
    assert_eq!(
        entries[2]["resource"]["identifier"][0]["value"],
        "900186021"
    );
    assert_eq!(entries[3]["resource"]["identifier"][0]["value"], "00000659");
    assert_eq!(entries[3]["resource"]["type"][0]["coding"][0]["code"], "Z3");
    assert_eq!(entries[3]["request"]["url"], "Organization");
}

/// The independent check (PRODUCT.md §12): generated Bundles, in JSON and XML, with yes and no
/// groups and without any group, pass the FHIR R4 models of Python's `fhir.resources`
/// (`tests/python/validate_bundle.py`). `scripts/test` sets `OTV_FHIR_VALIDATOR` to the Python
/// interpreter that has `tests/python/requirements.txt` installed; without it this test only
/// says that it did not run.
#[test]
fn generated_bundles_pass_an_independent_fhir_r4_validator() {
    let Ok(python) = std::env::var("OTV_FHIR_VALIDATOR") else {
        eprintln!("OTV_FHIR_VALIDATOR is not set: the FHIR R4 validator did not run");
        return;
    };
    let dir = tempfile_dir();
    let mut e = example();
    let mut files = Vec::new();
    for (name, groups) in [("example", example_groups()), ("nothing", Vec::new())] {
        e.groups = groups;
        for (ext, text) in [
            ("json", notification_bundle_json(&notification(&e))),
            ("xml", notification_bundle_xml(&notification(&e))),
        ] {
            let path = dir.join(format!("{name}.{ext}"));
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/validate_bundle.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert_eq!(
        said.matches("valid FHIR R4 transaction Bundle").count(),
        4,
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("otv-notification-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
