//! Hostile and broken input: refused quickly, with a clear error, and without showing a BSN.

use std::time::{Duration, Instant};

use otv_wire::{MAX_DEPTH, MAX_INPUT_BYTES, WireError, parse_closed_question};

use crate::support::*;

/// Hostile documents must be refused well within this, even in a debug build.
const QUICK: Duration = Duration::from_millis(500);

fn refused_quickly(doc: &[u8]) -> WireError {
    let started = Instant::now();
    let e = parse_closed_question(doc).expect_err("accepted");
    assert!(started.elapsed() < QUICK, "took {:?}", started.elapsed());
    assert_no_bsn(&e);
    e
}

#[test]
fn billion_laughs_is_refused_at_the_doctype() {
    let mut dtd = String::from("<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..=9 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        dtd.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    dtd.push_str("]>\n");
    let doc = replace(
        FIXTURE,
        "<SOAP-ENV:Envelope ",
        &format!("{dtd}<SOAP-ENV:Envelope "),
    );
    let doc = replace(&doc, "http://localhost:8000/4", "&lol9;");
    let e = refused_quickly(doc.as_bytes());
    assert_eq!(e, WireError::DocumentTypeDeclaration);
    assert_eq!(e.to_string(), "document type declarations are not allowed");
}

#[test]
fn external_entities_are_refused() {
    let xxe = "<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n";
    let doc = replace(
        FIXTURE,
        "<SOAP-ENV:Envelope ",
        &format!("{xxe}<SOAP-ENV:Envelope "),
    );
    let doc = replace(
        &doc,
        "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697",
        "&xxe;",
    );
    assert_eq!(
        refused_quickly(doc.as_bytes()),
        WireError::DocumentTypeDeclaration
    );

    // A parameter entity pulling in an external DTD, and a bare external DTD.
    for dtd in [
        "<!DOCTYPE foo [<!ENTITY % p SYSTEM \"http://attacker.example/x.dtd\"> %p;]>",
        "<!DOCTYPE SOAP-ENV:Envelope SYSTEM \"http://attacker.example/x.dtd\">",
    ] {
        let doc = replace(
            FIXTURE,
            "<SOAP-ENV:Envelope ",
            &format!("{dtd}<SOAP-ENV:Envelope "),
        );
        assert_eq!(
            refused_quickly(doc.as_bytes()),
            WireError::DocumentTypeDeclaration
        );
    }

    // Without a DTD an undeclared entity is refused by name, in text and in attributes.
    let doc = replace(
        FIXTURE,
        "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697",
        "&xxe;",
    );
    let e = refused_quickly(doc.as_bytes());
    assert_eq!(
        e.to_string(),
        "entity reference `&xxe;` is not allowed: only the predefined XML entities and character references are"
    );
    let doc = replace(
        FIXTURE,
        "root=\"2.16.840.1.113883.2.4.6.3\"",
        "root=\"&xxe;\"",
    );
    assert!(matches!(
        refused_quickly(doc.as_bytes()),
        WireError::EntityReference(_)
    ));
}

#[test]
fn predefined_entities_and_character_references_are_fine() {
    let doc = replace(
        FIXTURE,
        "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697",
        "urn:uuid:B8CB2497&#45;A47E-48D9-907C-2B4DFBFB5697&amp;x",
    );
    let doc = replace(
        &doc,
        "extension=\"900186021\"",
        "extension=\"&#57;00186021\"",
    );
    let request = parse_ok(&doc);
    assert_eq!(
        request.message_id,
        "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697&x"
    );
    assert_eq!(request.bsn.expose(), FIXTURE_BSN);
}

#[test]
fn ten_thousand_deep_is_refused_quickly() {
    let deep = format!("{}{}", "<x>".repeat(10_000), "</x>".repeat(10_000));
    let doc = replace(
        FIXTURE,
        "<SOAP-ENV:Body>",
        &format!("<SOAP-ENV:Body>{deep}"),
    );
    let e = refused_quickly(doc.as_bytes());
    assert_eq!(e, WireError::TooDeep { limit: MAX_DEPTH });
    assert_eq!(e.to_string(), "XML nested deeper than 64 elements");

    // Unclosed, as an attacker would send it to save bytes.
    let unclosed = "<x>".repeat(10_000);
    assert_eq!(
        refused_quickly(unclosed.as_bytes()),
        WireError::TooDeep { limit: MAX_DEPTH }
    );
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let doc = replace(
        FIXTURE,
        "<SOAP-ENV:Body>",
        &format!("<!--{}--><SOAP-ENV:Body>", "x".repeat(MAX_INPUT_BYTES)),
    );
    assert_eq!(
        refused_quickly(doc.as_bytes()).to_string(),
        "the document is larger than 1048576 bytes"
    );
}

#[test]
fn a_body_that_is_not_xml_is_refused() {
    for body in [
        &b"hello"[..],
        b"{\"bsn\": \"900186021\"}",
        b"",
        b"   ",
        b"<",
        b"<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\">",
        b"<900186021/>",
    ] {
        let e = refused_quickly(body);
        assert!(
            matches!(e, WireError::Malformed { .. } | WireError::Structure(_)),
            "{:?}: {e:?}",
            String::from_utf8_lossy(body)
        );
    }
    assert_eq!(
        refused_quickly(b"\xFF\xFE<\x00x\x00/\x00>\x00"),
        WireError::NotUtf8
    );
}

/// BSNs never appear in error texts, wherever a sender puts them.
#[test]
fn no_error_text_shows_a_bsn() {
    let bsn = FIXTURE_BSN;
    let docs = [
        replace(
            FIXTURE,
            ">XACMLAuthorizationDecisionQueryRequest<",
            &format!(">{bsn}<"),
        ),
        replace(FIXTURE, "code=\"TREAT\"", &format!("code=\"{bsn}\"")),
        replace(
            FIXTURE,
            "root=\"2.16.840.1.113883.2.4.6.3\"",
            &format!("root=\"{bsn}\""),
        ),
        replace(FIXTURE, "code=\"GGC002\"", &format!("code=\"GGC{bsn}\"")),
        replace(
            FIXTURE,
            "extension=\"00000659\"",
            &format!("extension=\"{bsn}\""),
        ),
        replace(
            FIXTURE,
            "extension=\"000095254\"",
            &format!("extension=\"x{bsn}\""),
        ),
        replace(
            FIXTURE,
            "urn:uuid:B8CB2497-A47E-48D9-907C-2B4DFBFB5697",
            &format!("&e{bsn};"),
        ),
        replace(
            FIXTURE,
            "<SOAP-ENV:Header>",
            &format!("<SOAP-ENV:Header><p{bsn}:x/>"),
        ),
        replace(
            FIXTURE,
            "</SOAP-ENV:Header>",
            &format!("</SOAP-ENV:Header{bsn}>"),
        ),
        replace(
            FIXTURE,
            "encoding=\"UTF-8\"",
            &format!("encoding=\"{bsn}\""),
        ) + "é",
        replace(
            FIXTURE,
            "<SOAP-ENV:Envelope ",
            &format!("<SOAP-ENV:Envelope a{bsn}=\"1\" a{bsn}=\"2\" "),
        ),
        format!("<x{bsn} xmlns=\"urn:{bsn}\"/>"),
    ];
    for doc in docs {
        // `parse_err` checks the text and the Debug form.
        let e = parse_err(&doc);
        assert!(!e.to_string().is_empty());
    }
}
