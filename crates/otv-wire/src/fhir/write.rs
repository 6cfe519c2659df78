//! Writing FHIR: each encoder builds its resource once as an [`Object`], in FHIR element order,
//! and [`json`] and [`xml`] render it by the FHIR representation rules, so the two formats
//! cannot drift apart.
//!
//! - JSON: the resource is an object whose first property is `resourceType`; repeating
//!   elements are arrays (also with one item); primitives are strings.
//! - XML: elements in the namespace `http://hl7.org/fhir`; a primitive is an empty element with
//!   a `value` attribute; repeating elements repeat; an extension's `url` is an attribute; a
//!   resource inside another (`Bundle.entry.resource`) is wrapped in an element named after its
//!   type.
//!
//! This module knows no resource. Everything it writes goes through `serde_json`'s string
//! escaping or [`escape`]; empty values are left out, as FHIR has no empty strings.

use crate::xml::escape;

use super::read::FHIR_NS;

/// A FHIR element with children, in the order they are written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Object {
    fields: Vec<(&'static str, Field)>,
}

#[derive(Debug, Clone)]
enum Field {
    /// A primitive: a JSON string, an XML `value` attribute.
    Primitive(String),
    /// A repeating primitive.
    Primitives(Vec<String>),
    /// A JSON property that is an XML attribute (`Extension.url`).
    Attribute(String),
    /// A complex element.
    Object(Object),
    /// A repeating complex element.
    Objects(Vec<Object>),
    /// A resource inside another one, with its type.
    Resource(&'static str, Object),
    /// Narrative (`Narrative.div`): plain text in one XHTML `div` (escaped when written).
    Xhtml(String),
}

impl Object {
    pub fn new() -> Self {
        Object::default()
    }

    fn with(mut self, name: &'static str, field: Field) -> Self {
        self.fields.push((name, field));
        self
    }

    /// A primitive element; left out when empty.
    pub fn primitive(self, name: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if value.is_empty() {
            self
        } else {
            self.with(name, Field::Primitive(value))
        }
    }

    /// A primitive element if there is a value.
    pub fn optional(self, name: &'static str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.primitive(name, value),
            None => self,
        }
    }

    /// A repeating primitive element; left out when there are no values.
    pub fn primitives(self, name: &'static str, values: Vec<String>) -> Self {
        let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            self
        } else {
            self.with(name, Field::Primitives(values))
        }
    }

    /// A property written as an XML attribute (only `Extension.url` in FHIR R4).
    pub fn attribute(self, name: &'static str, value: impl Into<String>) -> Self {
        self.with(name, Field::Attribute(value.into()))
    }

    /// A complex element.
    pub fn object(self, name: &'static str, value: Object) -> Self {
        self.with(name, Field::Object(value))
    }

    /// A repeating complex element; left out when there are none.
    pub fn objects(self, name: &'static str, values: Vec<Object>) -> Self {
        if values.is_empty() {
            self
        } else {
            self.with(name, Field::Objects(values))
        }
    }

    /// The narrative `div` holding plain `text` (`Narrative.div`: a string of XHTML in JSON,
    /// an XHTML element in XML).
    pub fn xhtml(self, name: &'static str, text: impl Into<String>) -> Self {
        self.with(name, Field::Xhtml(text.into()))
    }

    /// A resource of `resource_type` inside this element (`Bundle.entry.resource`).
    pub fn resource(self, name: &'static str, resource_type: &'static str, value: Object) -> Self {
        self.with(name, Field::Resource(resource_type, value))
    }
}

/// The resource as pretty-printed FHIR JSON, ending in a newline.
pub(crate) fn json(resource_type: &str, body: &Object) -> String {
    let mut out = String::new();
    json_object(&mut out, Some(resource_type), body, 0);
    out.push('\n');
    out
}

fn json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string always serializes"));
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn json_object(out: &mut String, resource_type: Option<&str>, body: &Object, level: usize) {
    out.push('{');
    let mut first = true;
    let mut property = |out: &mut String, name: &str| {
        out.push_str(if first { "\n" } else { ",\n" });
        first = false;
        indent(out, level + 1);
        json_string(out, name);
        out.push_str(": ");
    };
    if let Some(resource_type) = resource_type {
        property(out, "resourceType");
        json_string(out, resource_type);
    }
    for (name, field) in &body.fields {
        property(out, name);
        match field {
            Field::Primitive(value) | Field::Attribute(value) => json_string(out, value),
            Field::Primitives(values) => {
                json_array(out, values, level + 1, |out, v, _| json_string(out, v));
            }
            Field::Object(object) => json_object(out, None, object, level + 1),
            Field::Objects(objects) => json_array(out, objects, level + 1, |out, o, level| {
                json_object(out, None, o, level);
            }),
            Field::Resource(resource_type, object) => {
                json_object(out, Some(resource_type), object, level + 1);
            }
            Field::Xhtml(text) => json_string(out, &xhtml_div(text)),
        }
    }
    out.push('\n');
    indent(out, level);
    out.push('}');
}

fn json_array<T>(
    out: &mut String,
    items: &[T],
    level: usize,
    write_item: impl Fn(&mut String, &T, usize),
) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        indent(out, level + 1);
        write_item(out, item, level + 1);
    }
    out.push('\n');
    indent(out, level);
    out.push(']');
}

/// The resource as pretty-printed FHIR XML with an XML declaration, ending in a newline.
pub(crate) fn xml(resource_type: &str, body: &Object) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml_element(&mut out, resource_type, Some(FHIR_NS), body, 0);
    out
}

fn xml_element(out: &mut String, name: &str, xmlns: Option<&str>, body: &Object, level: usize) {
    indent(out, level);
    out.push('<');
    out.push_str(name);
    if let Some(ns) = xmlns {
        out.push_str(&format!(" xmlns=\"{}\"", escape(ns)));
    }
    for (attribute, field) in &body.fields {
        if let Field::Attribute(value) = field {
            out.push_str(&format!(" {attribute}=\"{}\"", escape(value)));
        }
    }
    let children = body
        .fields
        .iter()
        .filter(|(_, f)| !matches!(f, Field::Attribute(_)));
    let mut any = false;
    for (child, field) in children {
        if !any {
            out.push_str(">\n");
            any = true;
        }
        match field {
            Field::Primitive(value) => xml_primitive(out, child, value, level + 1),
            Field::Primitives(values) => {
                for value in values {
                    xml_primitive(out, child, value, level + 1);
                }
            }
            Field::Attribute(_) => {}
            Field::Object(object) => xml_element(out, child, None, object, level + 1),
            Field::Objects(objects) => {
                for object in objects {
                    xml_element(out, child, None, object, level + 1);
                }
            }
            Field::Xhtml(text) => {
                indent(out, level + 1);
                out.push_str(&xhtml_div(text));
                out.push('\n');
            }
            Field::Resource(resource_type, object) => {
                indent(out, level + 1);
                out.push_str(&format!("<{child}>\n"));
                xml_element(out, resource_type, None, object, level + 2);
                indent(out, level + 1);
                out.push_str(&format!("</{child}>\n"));
            }
        }
    }
    if any {
        indent(out, level);
        out.push_str(&format!("</{name}>\n"));
    } else {
        out.push_str("/>\n");
    }
}

/// XHTML namespace of `Narrative.div`.
const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

fn xhtml_div(text: &str) -> String {
    format!("<div xmlns=\"{XHTML_NS}\">{}</div>", escape(text))
}

fn xml_primitive(out: &mut String, name: &str, value: &str, level: usize) {
    indent(out, level);
    out.push_str(&format!("<{name} value=\"{}\"/>\n", escape(value)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Object {
        Object::new()
            .primitive("id", "x")
            .objects(
                "extension",
                vec![
                    Object::new()
                        .attribute("url", "http://e/a")
                        .primitive("valueOid", "urn:oid:1.2"),
                ],
            )
            .primitive("empty", "")
            .primitives("expression", vec!["a<b".to_owned(), "c\"d".to_owned()])
            .object("channel", Object::new().primitive("type", "rest-hook"))
            .resource(
                "resource",
                "OperationOutcome",
                Object::new().optional("id", Some("o")),
            )
    }

    #[test]
    fn json_follows_the_fhir_json_rules() {
        let out = json("Subscription", &sample());
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["resourceType"], "Subscription");
        assert_eq!(value["extension"][0]["url"], "http://e/a");
        assert_eq!(value["expression"][1], "c\"d");
        assert_eq!(value["resource"]["resourceType"], "OperationOutcome");
        assert!(value.get("empty").is_none());
        assert!(out.starts_with("{\n  \"resourceType\": \"Subscription\",\n  \"id\": \"x\","));
    }

    #[test]
    fn xml_follows_the_fhir_xml_rules() {
        let out = xml("Subscription", &sample());
        let root = crate::xml::parse(out.as_bytes()).unwrap();
        assert!(root.is(FHIR_NS, "Subscription"));
        let ext = &root.children[1];
        assert_eq!(ext.attribute("url"), Some("http://e/a"));
        assert_eq!(ext.children[0].attribute("value"), Some("urn:oid:1.2"));
        let expressions: Vec<_> = root
            .children_named(FHIR_NS, "expression")
            .map(|e| e.attribute("value").unwrap())
            .collect();
        assert_eq!(expressions, ["a<b", "c\"d"]);
        let inner = root.children_named(FHIR_NS, "resource").next().unwrap();
        assert!(inner.children[0].is(FHIR_NS, "OperationOutcome"));
        assert!(!out.contains("empty"));
    }
}
