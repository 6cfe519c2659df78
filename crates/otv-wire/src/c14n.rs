//! Exclusive XML Canonicalization 1.0 without comments (W3C `xml-exc-c14n`, RFC 3741): the
//! octets an XML Signature over a SAML assertion is computed on, and the detailed element tree
//! it is computed from.
//!
//! [`Element`] deliberately forgets what the sender could choose freely (prefixes, where
//! namespaces are declared, how text and elements interleave). Canonicalization needs exactly
//! that, so [`read`] reads a document a second time into a [`SourceElement`] tree that keeps
//! it. The hardened reader ([`crate::xml::parse`]) stays the gate: callers pass [`read`] only
//! bytes it has accepted. [`read`] still refuses DTDs and entities and holds the same limits,
//! so that it is safe on its own, but its error texts are not a contract. Codecs read content
//! only through [`SourceElement::to_element`], so what they read is what was canonicalized.
//!
//! The canonical form ([`exclusive`]) follows the Recommendation for the document subsets an
//! enveloped signature over an element needs: an element with its descendants, optionally
//! without one descendant element (the `ds:Signature`). In short:
//! - no XML declaration, no DTD, no comments; UTF-8;
//! - every element as a start and an end tag (`<a/>` becomes `<a></a>`);
//! - on each element, only the namespace declarations it *visibly utilizes* (its own prefix or
//!   the default namespace for an unprefixed name, and the prefixes of its attributes) that the
//!   nearest output ancestor has not already rendered with the same value; plus, as in
//!   inclusive C14N, the prefixes of an `InclusiveNamespaces PrefixList` (`#default` for the
//!   default namespace); `xmlns=""` only where a rendered default namespace must be undone;
//! - namespace declarations first, sorted by prefix (the default first), then attributes sorted
//!   by namespace URI (none first) and local name; values in double quotes;
//! - text escaped as `&amp;` `&lt;` `&gt;` `&#xD;`; attribute values as `&amp;` `&lt;`
//!   `&quot;` `&#x9;` `&#xA;` `&#xD;`; attribute values normalized as an XML processor does
//!   (CDATA type: no DTD is ever read); line ends normalized to `#xA`; CDATA sections replaced by
//!   their escaped text; character and predefined entity references replaced by characters;
//! - processing instructions inside the subset kept as `<?target data?>`;
//! - `xml:*` attributes of ancestors are not imported (the exclusive variant's rule).
//!
//! This module must not decide anything about signatures (that is `xmldsig`) and must not be
//! used to read content a codec acts on other than through [`SourceElement::to_element`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{PrefixDeclaration, ResolveResult};
use quick_xml::reader::NsReader;

use crate::error::{Excerpt, WireError};
use crate::xml::{Element, MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS, MAX_INPUT_BYTES, XmlAttribute};

/// An element as written: what [`Element`] keeps, plus the prefixes, the namespace declarations
/// and the content in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceElement {
    /// The prefix of the element's name, if it has one.
    pub prefix: Option<String>,
    /// The namespace URI the name resolves to, `None` when in no namespace.
    pub namespace: Option<String>,
    /// The local name.
    pub local: String,
    /// The namespace declarations on this element, in document order: the prefix (empty for
    /// the default namespace) and the normalized URI (empty when the default is undeclared).
    pub declarations: Vec<(String, String)>,
    /// The attributes other than namespace declarations, in document order.
    pub attributes: Vec<SourceAttribute>,
    /// Text, child elements and processing instructions, in document order.
    pub content: Vec<Content>,
}

/// One attribute as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceAttribute {
    /// The prefix of the attribute's name, if it has one.
    pub prefix: Option<String>,
    /// The namespace URI; unprefixed attributes are in no namespace.
    pub namespace: Option<String>,
    /// The local name.
    pub local: String,
    /// The normalized value, as in [`XmlAttribute::value`].
    pub value: String,
}

/// A piece of an element's content. Comments are not kept: otv canonicalizes without them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Content {
    /// A child element.
    Element(SourceElement),
    /// Character data, line ends normalized and references resolved.
    Text(String),
    /// A processing instruction: its target and its data (without the space after the target).
    Instruction {
        /// The target.
        target: String,
        /// The data; may be empty.
        data: String,
    },
}

impl SourceElement {
    /// Whether this element is `{namespace}local`.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.namespace.as_deref() == Some(namespace) && self.local == local
    }

    /// The child elements, in document order.
    pub fn elements(&self) -> impl Iterator<Item = &SourceElement> {
        self.content.iter().filter_map(|c| match c {
            Content::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The child elements named `{namespace}local`.
    pub fn children_named<'a>(
        &'a self,
        namespace: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a SourceElement> + 'a {
        self.elements().filter(move |e| e.is(namespace, local))
    }

    /// The value of the attribute `{namespace}local` (`None` namespace: unprefixed).
    pub fn attribute_in(&self, namespace: Option<&str>, local: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.namespace.as_deref() == namespace && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// The view the codecs read: the same element as [`crate::xml::parse`] would have built.
    pub fn to_element(&self) -> Element {
        Element {
            namespace: self.namespace.clone(),
            local: self.local.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|a| XmlAttribute {
                    namespace: a.namespace.clone(),
                    local: a.local.clone(),
                    value: a.value.clone(),
                })
                .collect(),
            children: self.elements().map(SourceElement::to_element).collect(),
            text: self
                .content
                .iter()
                .filter_map(|c| match c {
                    Content::Text(t) => Some(t.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// Namespace bindings in scope: prefix (empty for the default namespace) to URI.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scope(BTreeMap<String, String>);

impl Scope {
    /// The bindings in scope inside `element`, given these bindings around it.
    pub fn enter(&self, element: &SourceElement) -> Scope {
        let mut inner = self.clone();
        for (prefix, uri) in &element.declarations {
            inner.0.insert(prefix.clone(), uri.clone());
        }
        inner
    }

    /// The URI bound to `prefix`; empty for an unbound prefix or no default namespace.
    fn uri(&self, prefix: &str) -> &str {
        self.0.get(prefix).map_or("", String::as_str)
    }
}

/// The prefixes of an `InclusiveNamespaces PrefixList`: whitespace-separated, `#default` for the
/// default namespace (returned as the empty prefix).
pub(crate) fn prefix_list(list: &str) -> Vec<String> {
    list.split_ascii_whitespace()
        .map(|p| if p == "#default" { "" } else { p }.to_owned())
        .collect()
}

/// The exclusive canonical form of `apex` and its descendants, without `omit` (compared by
/// identity: the enveloped `ds:Signature`) and without comments.
///
/// `around` holds the namespace bindings in scope where `apex` stands (from its ancestors);
/// they matter only for `inclusive` prefixes, which are rendered as in inclusive C14N.
pub(crate) fn exclusive(
    apex: &SourceElement,
    around: &Scope,
    omit: Option<&SourceElement>,
    inclusive: &[String],
) -> String {
    let mut out = String::new();
    let context = Context { omit, inclusive };
    context.element(&mut out, apex, around, &Scope::default());
    out
}

struct Context<'a> {
    omit: Option<&'a SourceElement>,
    inclusive: &'a [String],
}

impl Context<'_> {
    /// Writes `element`. `around` is the namespace scope of its parent in the document;
    /// `rendered` what the output ancestors have declared (the nearest declaration wins).
    fn element(&self, out: &mut String, element: &SourceElement, around: &Scope, rendered: &Scope) {
        // Most elements declare nothing and render nothing: they share their parent's maps, so
        // the work stays proportional to the document, not to its depth times its breadth.
        let scope = if element.declarations.is_empty() {
            Cow::Borrowed(around)
        } else {
            Cow::Owned(around.enter(element))
        };
        let mut rendered = Cow::Borrowed(rendered);

        // Namespace declarations to write, keyed and therefore sorted by prefix ("" first).
        let mut declare: BTreeMap<String, String> = BTreeMap::new();
        let mut consider = |prefix: &str| {
            let uri = scope.uri(prefix);
            // `xml` is bound implicitly and never declared; a prefix bound to nothing cannot
            // occur in a namespace-well-formed document.
            if prefix == "xml" || (!prefix.is_empty() && uri.is_empty()) {
                return;
            }
            // An empty default namespace needs `xmlns=""` only to undo a rendered non-empty one.
            if rendered.uri(prefix) != uri {
                declare.insert(prefix.to_owned(), uri.to_owned());
            }
        };
        // The element's own name visibly utilizes its prefix, or the default namespace.
        consider(element.prefix.as_deref().unwrap_or(""));
        // Unprefixed attributes are in no namespace and utilize nothing.
        for attribute in &element.attributes {
            if let Some(prefix) = &attribute.prefix {
                consider(prefix);
            }
        }
        for prefix in self.inclusive {
            consider(prefix);
        }

        let name = qualified(element.prefix.as_deref(), &element.local);
        out.push('<');
        out.push_str(&name);
        for (prefix, uri) in &declare {
            if prefix.is_empty() {
                out.push_str(" xmlns=\"");
            } else {
                out.push_str(" xmlns:");
                out.push_str(prefix);
                out.push_str("=\"");
            }
            escape_attribute(out, uri);
            out.push('"');
        }
        if !declare.is_empty() {
            rendered.to_mut().0.extend(declare);
        }

        let mut attributes: Vec<&SourceAttribute> = element.attributes.iter().collect();
        attributes.sort_by(|a, b| {
            (a.namespace.as_deref().unwrap_or(""), a.local.as_str())
                .cmp(&(b.namespace.as_deref().unwrap_or(""), b.local.as_str()))
        });
        for attribute in attributes {
            out.push(' ');
            out.push_str(&qualified(attribute.prefix.as_deref(), &attribute.local));
            out.push_str("=\"");
            escape_attribute(out, &attribute.value);
            out.push('"');
        }
        out.push('>');

        for content in &element.content {
            match content {
                Content::Element(child) => {
                    if !self.omit.is_some_and(|omit| std::ptr::eq(omit, child)) {
                        self.element(out, child, &scope, &rendered);
                    }
                }
                Content::Text(text) => escape_text(out, text),
                Content::Instruction { target, data } => {
                    out.push_str("<?");
                    out.push_str(target);
                    if !data.is_empty() {
                        out.push(' ');
                        out.push_str(data);
                    }
                    out.push_str("?>");
                }
            }
        }

        out.push_str("</");
        out.push_str(&name);
        out.push('>');
    }
}

fn qualified(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(prefix) => format!("{prefix}:{local}"),
        None => local.to_owned(),
    }
}

/// C14N's escaping of text nodes.
fn escape_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// C14N's escaping of attribute values (and namespace URIs).
fn escape_attribute(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// Reads `input` (a document [`crate::xml::parse`] has accepted) into a [`SourceElement`] tree.
pub(crate) fn read(input: &[u8]) -> Result<SourceElement, WireError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(WireError::TooLarge {
            limit: MAX_INPUT_BYTES,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| WireError::NotUtf8)?;
    let mut reader = NsReader::from_str(text);
    {
        // The same strict settings as the hardened reader.
        let config = reader.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
    }

    let mut open: Vec<SourceElement> = Vec::new();
    let mut root: Option<SourceElement> = None;
    let mut elements = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.buffer_position(), &e.to_string()))?;
        match event {
            Event::Start(ref start) | Event::Empty(ref start) => {
                if root.is_some() {
                    return Err(malformed(
                        reader.buffer_position(),
                        "content after the document element",
                    ));
                }
                if open.len() >= MAX_DEPTH {
                    return Err(WireError::TooDeep { limit: MAX_DEPTH });
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(WireError::TooManyElements {
                        limit: MAX_ELEMENTS,
                    });
                }
                let element = source_element_of(&reader, start)?;
                if matches!(event, Event::Start(_)) {
                    open.push(element);
                } else {
                    close(element, &mut open, &mut root);
                }
            }
            Event::End(_) => {
                let element = open.pop().ok_or_else(|| {
                    malformed(reader.buffer_position(), "end tag without a start tag")
                })?;
                close(element, &mut open, &mut root);
            }
            Event::Text(t) => push_text(&mut open, &t.xml10_content()),
            Event::CData(c) => push_text(&mut open, &c.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => return Err(WireError::EntityReference(Excerpt::new(&r))),
                    },
                    Err(e) => return Err(malformed(reader.buffer_position(), &e.to_string())),
                };
                let mut buf = [0u8; 4];
                push_text(&mut open, resolved.encode_utf8(&mut buf));
            }
            Event::DocType(_) => return Err(WireError::DocumentTypeDeclaration),
            Event::PI(pi) => {
                if let Some(element) = open.last_mut() {
                    // The data is what follows the target and the white space after it; line
                    // ends are normalized as everywhere else in the document.
                    let data = pi
                        .content()
                        .trim_start_matches([' ', '\t', '\r', '\n'])
                        .replace("\r\n", "\n")
                        .replace('\r', "\n");
                    element.content.push(Content::Instruction {
                        target: pi.target().to_owned(),
                        data,
                    });
                }
            }
            // The declaration was checked by the hardened reader; comments are not canonical.
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(malformed(
            reader.buffer_position(),
            "the document ends inside an element",
        ));
    }
    root.ok_or_else(|| WireError::Structure("the document has no element".to_owned()))
}

fn close(element: SourceElement, open: &mut [SourceElement], root: &mut Option<SourceElement>) {
    match open.last_mut() {
        Some(parent) => parent.content.push(Content::Element(element)),
        None => *root = Some(element),
    }
}

/// Appends character data to the open element, joining it to text just before it. Text
/// outside the document element is white space (the hardened reader refused anything else)
/// and belongs to no element.
fn push_text(open: &mut [SourceElement], text: &str) {
    let Some(element) = open.last_mut() else {
        return;
    };
    match element.content.last_mut() {
        Some(Content::Text(before)) => before.push_str(text),
        _ => element.content.push(Content::Text(text.to_owned())),
    }
}

fn source_element_of<R>(
    reader: &NsReader<R>,
    start: &BytesStart<'_>,
) -> Result<SourceElement, WireError> {
    let position = reader.buffer_position();
    let (ns, local) = reader.resolver().resolve_element(start.name());
    let namespace = namespace_of(ns, position)?;
    let mut declarations = Vec::new();
    let mut attributes = Vec::new();
    for (count, attribute) in start.attributes().enumerate() {
        if count >= MAX_ATTRIBUTES {
            return Err(WireError::TooManyAttributes {
                limit: MAX_ATTRIBUTES,
            });
        }
        let attribute = attribute.map_err(|e| malformed(position, &e.to_string()))?;
        let value = match attribute.normalized_value(XmlVersion::Implicit1_0) {
            Ok(value) => value.into_owned(),
            Err(quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                _,
                name,
            ))) => return Err(WireError::EntityReference(Excerpt::new(&name))),
            Err(e) => return Err(malformed(position, &e.to_string())),
        };
        match attribute.key.as_namespace_binding() {
            Some(PrefixDeclaration::Default) => declarations.push((String::new(), value)),
            Some(PrefixDeclaration::Named(prefix)) => {
                declarations.push((prefix.to_owned(), value));
            }
            None => {
                let (ns, attribute_local) = reader.resolver().resolve_attribute(attribute.key);
                attributes.push(SourceAttribute {
                    prefix: attribute.key.prefix().map(|p| p.into_inner().to_owned()),
                    namespace: namespace_of(ns, position)?,
                    local: attribute_local.into_inner().to_owned(),
                    value,
                });
            }
        }
    }
    Ok(SourceElement {
        prefix: start.name().prefix().map(|p| p.into_inner().to_owned()),
        namespace,
        local: local.into_inner().to_owned(),
        declarations,
        attributes,
        content: Vec::new(),
    })
}

fn namespace_of(resolved: ResolveResult<'_>, position: u64) -> Result<Option<String>, WireError> {
    match resolved {
        ResolveResult::Bound(ns) => Ok(Some(ns.into_inner().to_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(malformed(
            position,
            &format!("namespace prefix `{prefix}` is not declared"),
        )),
    }
}

fn malformed(position: u64, detail: &str) -> WireError {
    WireError::Malformed {
        position,
        detail: Excerpt::new(detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml;

    /// The canonical form of the whole document `doc`.
    fn c14n(doc: &str) -> String {
        exclusive(&read(doc.as_bytes()).unwrap(), &Scope::default(), None, &[])
    }

    /// The canonical form of the first element named `local` in `doc`, in its context.
    fn c14n_of(doc: &str, local: &str, prefix_list_value: &str) -> String {
        fn find<'a>(
            e: &'a SourceElement,
            around: &Scope,
            local: &str,
        ) -> Option<(&'a SourceElement, Scope)> {
            if e.local == local {
                return Some((e, around.clone()));
            }
            let inner = around.enter(e);
            e.elements().find_map(|c| find(c, &inner, local))
        }
        let root = read(doc.as_bytes()).unwrap();
        let (apex, around) = find(&root, &Scope::default(), local).expect("element present");
        exclusive(apex, &around, None, &prefix_list(prefix_list_value))
    }

    /// Exclusive XML Canonicalization §2.2: the same subtree in two different contexts has one
    /// canonical form; `xml:lang` stays where it is, an ancestor's `xml:foo` is not imported.
    #[test]
    fn the_recommendations_example_is_context_free() {
        let first = r#"<n0:local xmlns:n0="foo:bar" xmlns:n3="ftp://example.org"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n0:local>"#;
        let second = r#"<n2:pdu xmlns:n1="http://example.com" xmlns:n2="http://foo.example" xml:lang="fr" xml:foo="bar"><n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"/></n1:elem2></n2:pdu>"#;
        let expected = r#"<n1:elem2 xmlns:n1="http://example.net" xml:lang="en"><n3:stuff xmlns:n3="ftp://example.org"></n3:stuff></n1:elem2>"#;
        assert_eq!(c14n_of(first, "elem2", ""), expected);
        assert_eq!(c14n_of(second, "elem2", ""), expected);
    }

    /// Canonical XML 1.0 §3.3 (start and end tags), in its exclusive form: declarations only
    /// where visibly utilized, attributes sorted by namespace URI and not by prefix.
    #[test]
    fn start_and_end_tags() {
        let doc = r#"<doc>
   <e1   />
   <e2   ></e2>
   <e3   name = "elem3"   id="elem3"   />
   <e4   name="elem4"   id="elem4"   ></e4>
   <e5 a:attr="out" b:attr="sorted" attr2="all" attr="I'm"
      xmlns:b="http://www.ietf.org"
      xmlns:a="http://www.w3.org"
      xmlns="http://example.org"/>
   <e6 xmlns="" xmlns:a="http://www.w3.org">
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="" xmlns:a="http://www.w3.org">
            <e9 xmlns="" xmlns:a="http://www.ietf.org"/>
         </e8>
      </e7>
   </e6>
</doc>"#;
        let expected = r#"<doc>
   <e1></e1>
   <e2></e2>
   <e3 id="elem3" name="elem3"></e3>
   <e4 id="elem4" name="elem4"></e4>
   <e5 xmlns="http://example.org" xmlns:a="http://www.w3.org" xmlns:b="http://www.ietf.org" attr="I'm" attr2="all" b:attr="sorted" a:attr="out"></e5>
   <e6>
      <e7 xmlns="http://www.ietf.org">
         <e8 xmlns="">
            <e9></e9>
         </e8>
      </e7>
   </e6>
</doc>"#;
        assert_eq!(c14n(doc), expected);
    }

    /// Canonical XML 1.0 §3.4 (character modifications and character references), without its
    /// DTD: every attribute is CDATA, so only white-space characters become spaces.
    #[test]
    fn character_modifications() {
        let doc = "<doc>\r\n   <text>First line&#x0d;&#10;Second line</text>\r\n   <value>&#x32;</value>\n   <compute><![CDATA[value>\"0\" && value<\"10\" ?\"valid\":\"error\"]]></compute>\n   <compute expr='value>\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"'>valid</compute>\n   <norm attr=' &apos;   &#x20;&#13;&#xa;&#9;   &apos; '/>\n   <crlf a='x\r\ny'>1\r2</crlf>\n</doc>";
        let expected = "<doc>\n   <text>First line&#xD;\nSecond line</text>\n   <value>2</value>\n   <compute>value&gt;\"0\" &amp;&amp; value&lt;\"10\" ?\"valid\":\"error\"</compute>\n   <compute expr=\"value>&quot;0&quot; &amp;&amp; value&lt;&quot;10&quot; ?&quot;valid&quot;:&quot;error&quot;\">valid</compute>\n   <norm attr=\" '    &#xD;&#xA;&#x9;   ' \"></norm>\n   <crlf a=\"x y\">1\n2</crlf>\n</doc>";
        assert_eq!(c14n(doc), expected);
    }

    #[test]
    fn comments_go_processing_instructions_stay() {
        assert_eq!(
            c14n("<a>x<!-- gone -->y<?pi  some data ?><?empty?></a>"),
            "<a>xy<?pi some data ?><?empty?></a>"
        );
    }

    #[test]
    fn the_default_namespace_is_undone_only_when_it_was_rendered() {
        // At the apex nothing was rendered, so an element in no namespace needs no xmlns="".
        assert_eq!(
            c14n_of(r#"<a xmlns="urn:a"><b xmlns=""><c/></b></a>"#, "b", ""),
            "<b><c></c></b>"
        );
        assert_eq!(
            c14n(r#"<a xmlns="urn:a"><b xmlns=""><c/></b></a>"#),
            r#"<a xmlns="urn:a"><b xmlns=""><c></c></b></a>"#
        );
        // A prefixed element does not utilize the default namespace.
        assert_eq!(
            c14n(r#"<p:a xmlns:p="urn:p" xmlns="urn:d"><b/></p:a>"#),
            r#"<p:a xmlns:p="urn:p"><b xmlns="urn:d"></b></p:a>"#
        );
    }

    #[test]
    fn redeclarations_are_rendered_only_when_the_value_changes() {
        assert_eq!(
            c14n(r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:1"><p:c xmlns:p="urn:2"/></p:b></p:a>"#),
            r#"<p:a xmlns:p="urn:1"><p:b><p:c xmlns:p="urn:2"></p:c></p:b></p:a>"#
        );
        // Siblings each declare what they use: the nearest *output ancestor* counts.
        assert_eq!(
            c14n(r#"<a xmlns:x="urn:x"><b x:k="1"/><c x:k="2"/></a>"#),
            r#"<a><b xmlns:x="urn:x" x:k="1"></b><c xmlns:x="urn:x" x:k="2"></c></a>"#
        );
    }

    #[test]
    fn inclusive_prefixes_are_rendered_where_in_scope() {
        let doc = r#"<r xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="urn:d"><s:a xmlns:s="urn:s"><s:b xsi:type="xs:string" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">v</s:b></s:a></r>"#;
        assert_eq!(
            c14n_of(doc, "a", ""),
            r#"<s:a xmlns:s="urn:s"><s:b xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">v</s:b></s:a>"#
        );
        assert_eq!(
            c14n_of(doc, "a", "xs #default unbound"),
            r#"<s:a xmlns="urn:d" xmlns:s="urn:s" xmlns:xs="http://www.w3.org/2001/XMLSchema"><s:b xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xs:string">v</s:b></s:a>"#
        );
        assert_eq!(prefix_list(" xs\t#default  ds "), ["xs", "", "ds"]);
    }

    #[test]
    fn an_omitted_element_leaves_the_text_around_it() {
        let root = read(b"<a>\n  <s><x/></s>\n  <b/>\n</a>").unwrap();
        let omit = root.elements().next().unwrap();
        assert_eq!(
            exclusive(&root, &Scope::default(), Some(omit), &[]),
            "<a>\n  \n  <b></b>\n</a>"
        );
    }

    #[test]
    fn to_element_is_what_the_hardened_reader_builds() {
        let docs = [
            include_str!("../tests/fixtures/mitz/closed-question-request.xml"),
            r#"<a:x xmlns:a="urn:n" xml:lang="nl"><y xmlns="urn:m" k="v&#9;&amp;">t<![CDATA[<c>]]>&lt;<!--c--><?p d?>u<z/>w</y></a:x>"#,
        ];
        for doc in docs {
            assert_eq!(
                read(doc.as_bytes()).unwrap().to_element(),
                xml::parse(doc.as_bytes()).unwrap()
            );
        }
    }

    #[test]
    fn the_reader_refuses_what_the_hardened_reader_refuses() {
        assert_eq!(
            read(b"<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>").unwrap_err(),
            WireError::DocumentTypeDeclaration
        );
        assert!(matches!(
            read(b"<a>&e;</a>").unwrap_err(),
            WireError::EntityReference(_)
        ));
        assert!(matches!(
            read(b"<a b='&e;'/>").unwrap_err(),
            WireError::EntityReference(_)
        ));
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            read(deep.as_bytes()).unwrap_err(),
            WireError::TooDeep { limit: MAX_DEPTH }
        );
        for bad in [&b"<p:x/>"[..], b"<x>", b"<x/><y/>", b"", b"<x>\xFF</x>"] {
            assert!(read(bad).is_err());
        }
    }
}
