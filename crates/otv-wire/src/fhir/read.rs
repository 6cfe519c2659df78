//! Reading FHIR: bytes to a bounded JSON value or XML tree, and one view, [`Node`], over both,
//! so each resource is decoded by one function whatever the format and every problem is
//! reported against the element's FHIR path.
//!
//! JSON is read strictly: at most the caller's size limit, nesting at most [`MAX_JSON_DEPTH`]
//! (checked while parsing, below `serde_json`'s own recursion limit of 128), no property twice
//! in one object (which parsers resolve differently, so a validator in front of otv and otv
//! could see different values), nothing after the value. XML goes through the crate's hardened
//! reader (no DTD, no custom entities, depth and count limits, names by namespace URI).
//!
//! Everything reported here is [`ErrorClass::Invalid`](super::ErrorClass::Invalid): a message
//! that cannot be read as FHIR. Elements a decoder does not ask for are never looked at, so
//! unknown elements are tolerated, as FHIR readers of a profile usually do.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::Excerpt;
use crate::xml::{self, Element};

use super::outcome::{Issue, IssueCode};

/// The FHIR namespace of FHIR XML.
pub(crate) const FHIR_NS: &str = "http://hl7.org/fhir";

/// The deepest nesting of JSON arrays and objects accepted. A batch Bundle of Subscriptions
/// nests about 8 deep.
pub const MAX_JSON_DEPTH: usize = 32;

/// Reads a JSON document of at most `max_bytes` under the rules in the module documentation.
pub(crate) fn load_json(input: &[u8], max_bytes: usize) -> Result<Value, Issue> {
    if input.len() > max_bytes {
        return Err(Issue::error(
            IssueCode::TooLong,
            None,
            format!("the document is larger than {max_bytes} bytes"),
        ));
    }
    // RFC 8259 lets a reader ignore a byte order mark; some Windows stacks send one.
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let mut reader = serde_json::Deserializer::from_slice(input);
    let value = Strict { depth: 1 }
        .deserialize(&mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|e| {
            Issue::error(
                IssueCode::Structure,
                None,
                format!(
                    "the body is not valid JSON: {}",
                    Excerpt::new(&e.to_string())
                ),
            )
        })?;
    Ok(value)
}

/// Builds a `serde_json::Value` while refusing repeated properties and deep nesting.
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl Strict {
    fn enter<E: de::Error>(self) -> Result<Strict, E> {
        if self.depth > MAX_JSON_DEPTH {
            return Err(E::custom(format_args!(
                "nested deeper than {MAX_JSON_DEPTH} levels"
            )));
        }
        Ok(Strict {
            depth: self.depth + 1,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "property `{}` appears more than once in one object",
                    Excerpt::new(&key)
                )));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Reads an XML document through the hardened reader with `limits`.
pub(crate) fn load_xml(input: &[u8], limits: xml::Limits) -> Result<Element, Issue> {
    xml::parse_with_limits(input, limits)
        .map_err(|e| Issue::error(IssueCode::Structure, None, e.to_string()))
}

/// The root resource of a JSON document, which must be a `resource_type`.
pub(crate) fn json_root<'a>(value: &'a Value, resource_type: &str) -> Result<Node<'a>, Issue> {
    let Value::Object(map) = value else {
        return Err(Issue::error(
            IssueCode::Structure,
            None,
            format!("the body must be a JSON object holding a {resource_type} resource"),
        ));
    };
    let node = Node::Json(map);
    check_type(node, resource_type, resource_type)?;
    Ok(node)
}

/// The root resource of an XML document, which must be a `resource_type`.
pub(crate) fn xml_root<'a>(root: &'a Element, resource_type: &str) -> Result<Node<'a>, Issue> {
    if root.local == resource_type && root.namespace.as_deref() != Some(FHIR_NS) {
        return Err(Issue::at(
            IssueCode::Structure,
            resource_type,
            format!("the {resource_type} element must be in the FHIR namespace {FHIR_NS}"),
        ));
    }
    let node = Node::Xml(root);
    check_type(node, resource_type, resource_type)?;
    Ok(node)
}

/// Checks that `node` is a resource of `resource_type`; `path` names where it sits.
pub(crate) fn check_type(node: Node<'_>, resource_type: &str, path: &str) -> Result<(), Issue> {
    match node.resource_type() {
        Some(found) if found == resource_type => Ok(()),
        Some(found) => Err(Issue::at(
            IssueCode::Invalid,
            path,
            format!(
                "the resource is a `{}`, not a {resource_type}",
                Excerpt::new(found)
            ),
        )),
        None => Err(Issue::at(
            IssueCode::Structure,
            path,
            "the resource has no resource type (JSON `resourceType`, or an XML element in the \
             FHIR namespace)",
        )),
    }
}

/// A FHIR element with children (a resource or a complex datatype), in JSON or in XML.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node<'a> {
    /// A JSON object.
    Json(&'a Map<String, Value>),
    /// An XML element.
    Xml(&'a Element),
}

fn structure(path: &str, name: &str, problem: &str) -> Issue {
    Issue::at(IssueCode::Structure, format!("{path}.{name}"), problem)
}

impl<'a> Node<'a> {
    /// The resource type of a resource node: JSON `resourceType`, or the XML element's local
    /// name when it is in the FHIR namespace.
    pub fn resource_type(self) -> Option<&'a str> {
        match self {
            Node::Json(map) => map.get("resourceType").and_then(Value::as_str),
            Node::Xml(element) => {
                (element.namespace.as_deref() == Some(FHIR_NS)).then_some(element.local.as_str())
            }
        }
    }

    /// The value of the primitive child `name`, without surrounding whitespace; `None` when
    /// absent (or, in XML, present without a value, e.g. with only extensions).
    pub fn primitive(self, path: &str, name: &str) -> Result<Option<&'a str>, Issue> {
        let raw = match self {
            Node::Json(map) => match map.get(name) {
                None => return Ok(None),
                Some(Value::String(s)) => s.as_str(),
                Some(Value::Array(_)) => {
                    return Err(structure(
                        path,
                        name,
                        "must be a single value, not an array",
                    ));
                }
                Some(Value::Null) => {
                    return Err(structure(
                        path,
                        name,
                        "must not be null; leave it out instead",
                    ));
                }
                Some(_) => return Err(structure(path, name, "must be a JSON string")),
            },
            Node::Xml(element) => {
                let Some(child) = self.one_xml_child(element, path, name)? else {
                    return Ok(None);
                };
                match child.attribute("value") {
                    Some(value) => value,
                    None if !child.text.trim_ascii().is_empty() => {
                        return Err(structure(
                            path,
                            name,
                            "FHIR XML carries a value in the `value` attribute, not as element text",
                        ));
                    }
                    None => return Ok(None),
                }
            }
        };
        let value = raw.trim_ascii();
        if value.is_empty() {
            return Err(Issue::at(
                IssueCode::Value,
                format!("{path}.{name}"),
                "must not be empty",
            ));
        }
        Ok(Some(value))
    }

    /// The value of the primitive child `name`, which FHIR requires.
    pub fn required(self, path: &str, name: &str) -> Result<&'a str, Issue> {
        self.primitive(path, name)?
            .ok_or_else(|| Issue::at(IssueCode::Required, format!("{path}.{name}"), "is required"))
    }

    /// The complex child `name`, which may appear once.
    pub fn child(self, path: &str, name: &str) -> Result<Option<Node<'a>>, Issue> {
        match self {
            Node::Json(map) => match map.get(name) {
                None => Ok(None),
                Some(Value::Object(child)) => Ok(Some(Node::Json(child))),
                Some(Value::Array(_)) => Err(structure(
                    path,
                    name,
                    "must be a single object, not an array",
                )),
                Some(_) => Err(structure(path, name, "must be a JSON object")),
            },
            Node::Xml(element) => Ok(self.one_xml_child(element, path, name)?.map(Node::Xml)),
        }
    }

    /// The repeating complex child `name`, each item on its own: an item that is not an
    /// object is an error for that item only (batch entries are decoded independently).
    pub fn items(self, path: &str, name: &str) -> Result<Vec<Result<Node<'a>, Issue>>, Issue> {
        match self {
            Node::Json(map) => match map.get(name) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => Ok(items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Object(child) => Ok(Node::Json(child)),
                        _ => Err(Issue::at(
                            IssueCode::Structure,
                            format!("{path}.{name}[{i}]"),
                            "must be a JSON object",
                        )),
                    })
                    .collect()),
                Some(_) => Err(structure(
                    path,
                    name,
                    "must be a JSON array, even with one item",
                )),
            },
            Node::Xml(element) => Ok(element
                .children
                .iter()
                .filter(|child| child.is(FHIR_NS, name))
                .map(|child| Ok(Node::Xml(child)))
                .collect()),
        }
    }

    /// The repeating complex child `name`; any item that is not an object fails the whole.
    pub fn children(self, path: &str, name: &str) -> Result<Vec<Node<'a>>, Issue> {
        self.items(path, name)?.into_iter().collect()
    }

    /// The resource inside the child `name` (`Bundle.entry.resource`): a JSON object with a
    /// `resourceType`, or an XML element wrapping exactly one resource element.
    pub fn resource(self, path: &str, name: &str) -> Result<Option<Node<'a>>, Issue> {
        let Some(wrapper) = self.child(path, name)? else {
            return Ok(None);
        };
        match wrapper {
            Node::Json(_) => Ok(Some(wrapper)),
            Node::Xml(element) => {
                let mut inner = element.children_in(FHIR_NS);
                match (inner.next(), inner.next()) {
                    (Some(resource), None) => Ok(Some(Node::Xml(resource))),
                    (None, _) => Err(structure(path, name, "holds no FHIR resource element")),
                    (Some(_), Some(_)) => Err(structure(
                        path,
                        name,
                        "holds more than one resource element",
                    )),
                }
            }
        }
    }

    /// An extension's `url`: a JSON property, an XML attribute.
    pub fn url(self, path: &str) -> Result<Option<&'a str>, Issue> {
        let raw = match self {
            Node::Json(map) => match map.get("url") {
                None => None,
                Some(Value::String(s)) => Some(s.as_str()),
                Some(_) => return Err(structure(path, "url", "must be a JSON string")),
            },
            Node::Xml(element) => element.attribute("url"),
        };
        Ok(raw.map(str::trim_ascii).filter(|url| !url.is_empty()))
    }

    /// The name of an extension's one `value[x]` element (`valueOid`, `valueDate`, …), if any.
    pub fn value_element(self, path: &str) -> Result<Option<&'a str>, Issue> {
        fn is_value(name: &str) -> bool {
            name.strip_prefix("value")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        }
        let mut names: Vec<&'a str> = match self {
            Node::Json(map) => map
                .keys()
                .map(String::as_str)
                .filter(|k| is_value(k))
                .collect(),
            Node::Xml(element) => element
                .children_in(FHIR_NS)
                .map(|c| c.local.as_str())
                .filter(|k| is_value(k))
                .collect(),
        };
        match names.len() {
            0 => Ok(None),
            1 => Ok(names.pop()),
            _ => Err(Issue::at(
                IssueCode::Structure,
                format!("{path}.value[x]"),
                "an extension has at most one value[x] element",
            )),
        }
    }

    fn one_xml_child(
        self,
        element: &'a Element,
        path: &str,
        name: &str,
    ) -> Result<Option<&'a Element>, Issue> {
        let mut found = element.children.iter().filter(|c| c.is(FHIR_NS, name));
        match (found.next(), found.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) => Err(structure(path, name, "appears more than once")),
            (None, Some(_)) => unreachable!("an iterator yields nothing after None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_refuses_repeated_properties_deep_nesting_and_trailing_content() {
        let e = load_json(br#"{"a": 1, "a": 2}"#, 100).unwrap_err();
        assert!(e.diagnostics.contains("`a` appears more than once"), "{e}");
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH + 1),
            "]".repeat(MAX_JSON_DEPTH + 1)
        );
        let e = load_json(deep.as_bytes(), 10_000).unwrap_err();
        assert!(e.diagnostics.contains("nested deeper than 32"), "{e}");
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(load_json(ok.as_bytes(), 10_000).is_ok());
        assert!(load_json(b"{} {}", 100).is_err());
        assert!(load_json(b"\xEF\xBB\xBF{}", 100).is_ok());
        assert_eq!(load_json(b"{}", 1).unwrap_err().code, IssueCode::TooLong);
    }

    #[test]
    fn primitives_are_strings_in_json_and_value_attributes_in_xml() {
        let json = load_json(br#"{"a": " x ", "b": 1, "c": [], "d": ""}"#, 100).unwrap();
        let Value::Object(map) = &json else { panic!() };
        let node = Node::Json(map);
        assert_eq!(node.primitive("R", "a").unwrap(), Some("x"));
        assert_eq!(
            node.primitive("R", "b").unwrap_err().expression.unwrap(),
            "R.b"
        );
        assert!(node.primitive("R", "c").is_err());
        assert_eq!(node.primitive("R", "d").unwrap_err().code, IssueCode::Value);
        assert_eq!(node.primitive("R", "z").unwrap(), None);

        let doc = br#"<R xmlns="http://hl7.org/fhir"><a value="x"/><b>text</b><c value="1"/><c value="2"/></R>"#;
        let root = load_xml(doc, xml::Limits::DEFAULT).unwrap();
        let node = Node::Xml(&root);
        assert_eq!(node.primitive("R", "a").unwrap(), Some("x"));
        assert!(
            node.primitive("R", "b")
                .unwrap_err()
                .diagnostics
                .contains("`value` attribute")
        );
        assert!(
            node.primitive("R", "c")
                .unwrap_err()
                .diagnostics
                .contains("more than once")
        );
    }
}
