//! Helpers that keep the tests about behaviour: the fixture, edits of it that fail loudly when
//! they do not apply, and golden-file comparison.

use std::path::PathBuf;

use otv_wire::{ClosedQuestionRequest, WireError, parse_closed_question};

/// The real Mitz closed question (see `tests/fixtures/mitz/README.md`).
pub const FIXTURE: &str = include_str!("../fixtures/mitz/closed-question-request.xml");

/// The BSN in the fixture.
pub const FIXTURE_BSN: &str = "900186021";

/// Replaces every occurrence of `from` in `doc`, insisting there is at least one, so that a
/// test never passes because its edit silently did nothing.
pub fn replace(doc: &str, from: &str, to: &str) -> String {
    assert!(
        doc.contains(from),
        "edit does not apply: {from:?} not found"
    );
    doc.replace(from, to)
}

/// The byte range of the `<Attribute AttributeId="{id}" …>…</Attribute>` element in `doc`.
fn attribute_range(doc: &str, id: &str) -> std::ops::Range<usize> {
    let open = format!("<Attribute AttributeId=\"{id}\"");
    let start = doc
        .find(&open)
        .unwrap_or_else(|| panic!("attribute {id} not in document"));
    let end = start + doc[start..].find("</Attribute>").expect("closed") + "</Attribute>".len();
    start..end
}

/// `doc` without the attribute `id`.
pub fn remove_attribute(doc: &str, id: &str) -> String {
    let mut doc = doc.to_owned();
    doc.replace_range(attribute_range(&doc, id), "");
    doc
}

/// `doc` with `from` replaced by `to` inside the attribute `id` only.
pub fn edit_attribute(doc: &str, id: &str, from: &str, to: &str) -> String {
    let range = attribute_range(doc, id);
    let edited = replace(&doc[range.clone()], from, to);
    let mut doc = doc.to_owned();
    doc.replace_range(range, &edited);
    doc
}

/// The `Attributes` block of `category` in `doc`, as text.
pub fn block(doc: &str, category: &str) -> String {
    let open = format!("<Attributes Category=\"{category}\"");
    let start = doc.find(&open).expect("block present");
    let end = start + doc[start..].find("</Attributes>").expect("closed") + "</Attributes>".len();
    doc[start..end].to_owned()
}

/// The action category.
pub const ACTION: &str = "urn:oasis:names:tc:xacml:3.0:attribute-category:action";

/// An action block asking for `code`.
pub fn action_block(code: &str) -> String {
    replace(
        &block(FIXTURE, ACTION),
        "code=\"GGC002\"",
        &format!("code=\"{code}\""),
    )
}

/// Parses `doc`, which must be accepted.
pub fn parse_ok(doc: &str) -> ClosedQuestionRequest {
    parse_closed_question(doc.as_bytes()).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Parses `doc`, which must be refused, and returns the error after checking that neither its
/// text nor its `Debug` form shows the fixture's BSN.
pub fn parse_err(doc: &str) -> WireError {
    let e = match parse_closed_question(doc.as_bytes()) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e,
    };
    assert_no_bsn(&e);
    e
}

/// Asserts that `e` shows no BSN in its text or its `Debug` form.
pub fn assert_no_bsn(e: &WireError) {
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(FIXTURE_BSN), "BSN shown in {shown:?}");
    }
}

/// Compares `actual` byte for byte with `tests/golden/{name}`, or rewrites the file when
/// `UPDATE_GOLDEN=1` is set.
pub fn assert_golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p otv-wire",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{name} differs from the golden file; if the change is intended, run \
         UPDATE_GOLDEN=1 cargo test -p otv-wire and review the diff\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}
