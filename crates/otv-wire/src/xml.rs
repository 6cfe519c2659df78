//! A hardened XML reader and a small element tree, shared by the SOAP codecs.
//!
//! Everything that arrives over the Mitz interfaces is untrusted. This reader, built on
//! quick-xml's namespace-aware `NsReader`, turns at most [`MAX_INPUT_BYTES`] of UTF-8 into an
//! [`Element`] tree with every name resolved to (namespace URI, local name), and refuses what a
//! SOAP message never needs and an attacker might use:
//! - any `<!DOCTYPE …>`, so no entity can be declared (billion laughs) and no external entity or
//!   DTD can be fetched (XXE); the reader does no IO in any case;
//! - references to entities other than the five predefined ones and character references;
//! - nesting deeper than [`MAX_DEPTH`], more than [`MAX_ELEMENTS`] elements, more than
//!   [`MAX_ATTRIBUTES`] attributes on one element.
//!
//! Codecs recognise elements by namespace URI and local name, never by prefix: prefixes are the
//! sender's choice. This module must not know any SOAP or XACML names; it also writes nothing
//! except through [`escape`], the one escaping function the writers use.

use std::borrow::Cow;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use crate::error::{Excerpt, WireError};

/// The largest document accepted, in bytes. A closed question is about 5 KiB; the HTTP layer
/// limits the body as well, this limit holds for any other caller.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// The deepest element nesting accepted. A closed question nests 8 deep; a signed one a few
/// more. The limit keeps the tree, and every recursive walk over it, small.
pub const MAX_DEPTH: usize = 64;
/// The most elements accepted in one document. A closed question has about 40.
pub const MAX_ELEMENTS: usize = 10_000;
/// The most attributes accepted on one element, namespace declarations included.
pub const MAX_ATTRIBUTES: usize = 64;

/// One element, with its name resolved and its text gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    /// The namespace URI, `None` when the name is in no namespace.
    pub namespace: Option<String>,
    /// The local name.
    pub local: String,
    /// Attributes other than namespace declarations, in document order.
    pub attributes: Vec<XmlAttribute>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// All character data directly inside the element, entities resolved.
    pub text: String,
}

/// One attribute, with its name resolved and its value normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct XmlAttribute {
    /// The namespace URI; unprefixed attributes are in no namespace.
    pub namespace: Option<String>,
    /// The local name.
    pub local: String,
    /// The normalised value (entities resolved, whitespace characters turned into spaces).
    pub value: String,
}

impl Element {
    /// Whether this element is `{namespace}local`.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.local == local
    }

    /// The value of the unprefixed attribute `local`.
    pub fn attribute(&self, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// The child elements named `{namespace}local`.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(namespace, local))
    }

    /// The child elements in `namespace`, whatever their local name.
    pub fn children_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.namespace.as_deref() == Some(namespace))
    }

    /// `{namespace}local`, shortened and redacted for an error text.
    pub fn expanded_name(&self) -> Excerpt {
        match &self.namespace {
            Some(ns) => Excerpt::new(&format!("{{{ns}}}{}", self.local)),
            None => Excerpt::new(&self.local),
        }
    }
}

/// Size limits of one document, for readers whose messages are larger than a SOAP call (a FHIR
/// batch Bundle). Depth and attribute limits are the same for every document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The largest document accepted, in bytes.
    pub max_bytes: usize,
    /// The most elements accepted.
    pub max_elements: usize,
}

impl Limits {
    /// The limits of [`parse`]: [`MAX_INPUT_BYTES`] and [`MAX_ELEMENTS`].
    pub const DEFAULT: Limits = Limits {
        max_bytes: MAX_INPUT_BYTES,
        max_elements: MAX_ELEMENTS,
    };
}

/// Reads `input` into an element tree, refusing anything outside the limits described in the
/// module documentation.
pub(crate) fn parse(input: &[u8]) -> Result<Element, WireError> {
    parse_with_limits(input, Limits::DEFAULT)
}

/// [`parse`] with other size limits; everything else is refused exactly as there.
pub(crate) fn parse_with_limits(input: &[u8], limits: Limits) -> Result<Element, WireError> {
    if input.len() > limits.max_bytes {
        return Err(WireError::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| WireError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    {
        let config = reader.config_mut();
        // Stricter than the defaults where the defaults are lenient; each of these is a
        // well-formedness rule of XML 1.0.
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
    }

    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;

    loop {
        let event = reader.read_event().map_err(|e| malformed(&reader, &e))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(malformed_at(&reader, "content after the document element"));
                }
                if open.len() >= MAX_DEPTH {
                    return Err(WireError::TooDeep { limit: MAX_DEPTH });
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(WireError::TooManyElements {
                        limit: limits.max_elements,
                    });
                }
                let element = element_of(&reader, start)?;
                if matches!(event, Event::Start(_)) {
                    open.push(element);
                } else {
                    close(element, &mut open, &mut root);
                }
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the open one.
                let element = open
                    .pop()
                    .ok_or_else(|| malformed_at(&reader, "end tag without a start tag"))?;
                close(element, &mut open, &mut root);
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                push_text(&reader, &mut open, &content)?;
            }
            Event::CData(c) => {
                let content = c.xml10_content();
                push_text(&reader, &mut open, &content)?;
                // CDATA outside the document element is never whitespace only.
                if open.is_empty() {
                    return Err(malformed_at(&reader, "text outside the document element"));
                }
            }
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r).map_err(|e| match e {
                    RefError::NotAllowed => WireError::EntityReference(Excerpt::new(&r)),
                    RefError::Invalid(e) => malformed(&reader, &e),
                })?;
                let mut buf = [0u8; 4];
                push_text(&reader, &mut open, c.encode_utf8(&mut buf))?;
                if open.is_empty() {
                    return Err(malformed_at(&reader, "text outside the document element"));
                }
            }
            Event::DocType(_) => return Err(WireError::DocumentTypeDeclaration),
            Event::Decl(decl) => {
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| malformed(&reader, &e.into()))?;
                    // A non-UTF-8 label on pure ASCII is harmless: every encoding a SOAP stack
                    // would declare reads ASCII the same way.
                    if !encoding.eq_ignore_ascii_case("utf-8") && !text.is_ascii() {
                        return Err(WireError::UnsupportedEncoding(Excerpt::new(&encoding)));
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }

    if let Some(unclosed) = open.last() {
        return Err(WireError::Malformed {
            position: reader.buffer_position(),
            detail: Excerpt::new(&format!(
                "the document ends inside element `{}`",
                unclosed.local
            )),
        });
    }
    root.ok_or_else(|| WireError::Structure("the document has no element".to_owned()))
}

/// Attaches a finished element to its parent, or makes it the root.
fn close(element: Element, open: &mut [Element], root: &mut Option<Element>) {
    match open.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn push_text<R>(
    reader: &NsReader<R>,
    open: &mut [Element],
    content: &str,
) -> Result<(), WireError> {
    match open.last_mut() {
        Some(element) => {
            element.text.push_str(content);
            Ok(())
        }
        None if content.trim_ascii().is_empty() => Ok(()),
        None => Err(malformed_at(reader, "text outside the document element")),
    }
}

/// Builds the element for a start tag, resolving its name and its attributes' names against
/// the namespace bindings in scope (quick-xml has already pushed this tag's own bindings).
fn element_of<R>(reader: &NsReader<R>, start: &BytesStart<'_>) -> Result<Element, WireError> {
    let (ns, local) = reader.resolver().resolve_element(start.name());
    let namespace = namespace_of(reader, ns)?;
    let mut attributes = Vec::new();
    for (count, attribute) in start.attributes().enumerate() {
        if count >= MAX_ATTRIBUTES {
            return Err(WireError::TooManyAttributes {
                limit: MAX_ATTRIBUTES,
            });
        }
        let attribute = attribute.map_err(|e| malformed(reader, &e.into()))?;
        if attribute.key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, attr_local) = reader.resolver().resolve_attribute(attribute.key);
        let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
            Ok(value) => value,
            Err(quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            ))) => return Err(WireError::EntityReference(Excerpt::new(&name))),
            Err(e) => return Err(malformed(reader, &e)),
        };
        attributes.push(XmlAttribute {
            namespace: namespace_of(reader, ns)?,
            local: attr_local.as_ref().to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        namespace,
        local: local.as_ref().to_owned(),
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn namespace_of<R>(
    reader: &NsReader<R>,
    resolved: ResolveResult<'_>,
) -> Result<Option<String>, WireError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(Some(ns.as_ref().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(malformed_at(
            reader,
            &format!("namespace prefix `{prefix}` is not declared"),
        )),
    }
}

enum RefError {
    NotAllowed,
    Invalid(quick_xml::Error),
}

/// The character a reference in text stands for: a character reference or one of the five
/// predefined entities. Anything else would need a DTD, which [`parse`] refuses.
fn resolve_reference(r: &BytesRef<'_>) -> Result<char, RefError> {
    if let Some(c) = r.resolve_char_ref().map_err(RefError::Invalid)? {
        return Ok(c);
    }
    match r.as_ref() {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        _ => Err(RefError::NotAllowed),
    }
}

fn malformed<R>(reader: &NsReader<R>, e: &quick_xml::Error) -> WireError {
    WireError::Malformed {
        position: reader.error_position().max(reader.buffer_position()),
        detail: Excerpt::new(&e.to_string()),
    }
}

fn malformed_at<R>(reader: &NsReader<R>, detail: &str) -> WireError {
    WireError::Malformed {
        position: reader.buffer_position(),
        detail: Excerpt::new(detail),
    }
}

/// Escapes `raw` for use as element text or a double-quoted attribute value.
///
/// Besides the five markup characters it writes `\t`, `\n` and `\r` as character references,
/// so a reader gets them back exactly (an attribute value would otherwise have them normalised
/// to spaces, element text `\r` to a newline), and replaces characters XML
/// 1.0 cannot carry at all (other control characters, U+FFFE, U+FFFF) with U+FFFD.
pub(crate) fn escape(raw: &str) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '<' | '>' | '&' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}') || c.is_control()
    };
    if !raw.chars().any(needs) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            // C0 controls other than tab, newline and carriage return are not XML 1.0
            // characters; C1 controls are, but have no business in our output either.
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_resolved_by_namespace_not_prefix() {
        let a = parse(br#"<a:x xmlns:a="urn:n"><y xmlns="urn:m" k="v"/></a:x>"#).unwrap();
        let b = parse(br#"<x xmlns="urn:n"><b:y xmlns:b="urn:m" k="v"/></x>"#).unwrap();
        assert_eq!(a, b);
        assert!(a.is("urn:n", "x"));
        assert!(a.children[0].is("urn:m", "y"));
        assert_eq!(a.children[0].attribute("k"), Some("v"));
    }

    #[test]
    fn text_and_attribute_references_are_resolved() {
        let e = parse(br#"<x a="&lt;&#65;&amp;">1 &lt; 2 &#x41;<![CDATA[<&>]]></x>"#).unwrap();
        assert_eq!(e.attribute("a"), Some("<A&"));
        assert_eq!(e.text, "1 < 2 A<&>");
    }

    #[test]
    fn unknown_entities_are_refused_in_text_and_attributes() {
        assert_eq!(
            parse(b"<x>&foo;</x>").unwrap_err(),
            WireError::EntityReference(Excerpt::new("foo"))
        );
        assert_eq!(
            parse(br#"<x a="&foo;"/>"#).unwrap_err(),
            WireError::EntityReference(Excerpt::new("foo"))
        );
    }

    #[test]
    fn undeclared_prefixes_and_broken_documents_are_malformed() {
        for bad in [
            &b"<p:x/>"[..],
            b"<x><y></x>",
            b"<x>",
            b"<x/><y/>",
            b"<x/>text",
            b"</x>",
            b"<x a='1' a='2'/>",
            b"not xml at all",
            b"",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                matches!(e, WireError::Malformed { .. } | WireError::Structure(_)),
                "{:?} gave {e:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_utf8_byte_order_mark_is_accepted_other_bytes_are_not() {
        assert!(parse(b"\xEF\xBB\xBF<x/>").is_ok());
        assert_eq!(parse(b"<x>\xFF</x>").unwrap_err(), WireError::NotUtf8);
    }

    #[test]
    fn encoding_labels_only_matter_for_non_ascii_documents() {
        assert!(parse(br#"<?xml version="1.0" encoding="ISO-8859-1"?><x/>"#).is_ok());
        assert!(matches!(
            parse("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><x>é</x>".as_bytes()),
            Err(WireError::UnsupportedEncoding(_))
        ));
        assert!(parse("<?xml version=\"1.0\" encoding=\"utf-8\"?><x>é</x>".as_bytes()).is_ok());
    }

    #[test]
    fn limits_hold() {
        let deep = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        assert!(parse(deep(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            parse(deep(MAX_DEPTH + 1).as_bytes()).unwrap_err(),
            WireError::TooDeep { limit: MAX_DEPTH }
        );
        let wide = format!("<a>{}</a>", "<b/>".repeat(MAX_ELEMENTS));
        assert_eq!(
            parse(wide.as_bytes()).unwrap_err(),
            WireError::TooManyElements {
                limit: MAX_ELEMENTS
            }
        );
        let attrs: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        assert_eq!(
            parse(format!("<a{attrs}/>").as_bytes()).unwrap_err(),
            WireError::TooManyAttributes {
                limit: MAX_ATTRIBUTES
            }
        );
        let big = vec![b' '; MAX_INPUT_BYTES + 1];
        assert_eq!(
            parse(&big).unwrap_err(),
            WireError::TooLarge {
                limit: MAX_INPUT_BYTES
            }
        );
    }

    #[test]
    fn escape_round_trips_through_the_reader() {
        let nasty = "a<b>&c\"d'e\rf\tg\nh\u{1}i";
        let doc = format!("<x v=\"{}\">{}</x>", escape(nasty), escape(nasty));
        let e = parse(doc.as_bytes()).unwrap();
        let expected = "a<b>&c\"d'e\rf\tg\nh\u{FFFD}i";
        assert_eq!(e.attribute("v"), Some(expected));
        assert_eq!(e.text, expected);
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }
}
