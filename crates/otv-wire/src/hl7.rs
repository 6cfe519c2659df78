//! HL7v3 data type values (`II` instance identifiers, `CV` coded values) as the Mitz
//! interfaces carry them inside XACML and SAML attributes, and the OIDs of PRODUCT.md §2.
//!
//! A value is read from the one element in the HL7v3 namespace by its XML attributes (`root` and
//! `extension`, or `code` and `codeSystem`). The element's local name is not looked at: senders
//! write `InstanceIdentifier`, `II`, `id` or anything else, and the root or code system says what
//! the value is. This module checks roots and code systems; the meaning of the value (is it a
//! valid BSN?) is otv-core's business.

use crate::error::{AttributeProblem, Excerpt, WireError};
use crate::xml::Element;

/// The HL7v3 namespace.
pub(crate) const HL7_NS: &str = "urn:hl7-org:v3";

/// An OID and what it identifies, for error texts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Oid {
    pub oid: &'static str,
    pub meaning: &'static str,
}

/// II root of the BSN.
pub(crate) const BSN_ROOT: Oid = Oid {
    oid: "2.16.840.1.113883.2.4.6.3",
    meaning: "BSN",
};
/// II root of the URA (provider organisation).
pub(crate) const URA_ROOT: Oid = Oid {
    oid: "2.16.528.1.1007.3.3",
    meaning: "URA",
};
/// II root of the UZI number (professional).
pub(crate) const UZI_ROOT: Oid = Oid {
    oid: "2.16.528.1.1007.3.1",
    meaning: "UZI number",
};
/// Code system of organisation types (zorgaanbiedertype).
pub(crate) const ORG_TYPE_SYSTEM: Oid = Oid {
    oid: "2.16.840.1.113883.2.4.15.1060",
    meaning: "organisation type",
};
/// Code system of professional roles (RoleCodeNL).
pub(crate) const ROLE_SYSTEM: Oid = Oid {
    oid: "2.16.840.1.113883.2.4.15.111",
    meaning: "RoleCodeNL",
};
/// Code system of data categories (gegevenscategorie).
pub(crate) const DATA_CATEGORY_SYSTEM: Oid = Oid {
    oid: "2.16.840.1.113883.2.4.3.111.5.10.1",
    meaning: "data category",
};
/// Code system of purposes of use.
pub(crate) const PURPOSE_SYSTEM: Oid = Oid {
    oid: "2.16.840.1.113883.1.11.20448",
    meaning: "purpose of use",
};

/// The one HL7v3 element inside `container` (an `AttributeValue`).
pub(crate) fn value_in<'a>(
    container: &'a Element,
    attribute: &'static str,
) -> Result<&'a Element, WireError> {
    let mut values = container.children_in(HL7_NS);
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value),
        (None, _) => Err(problem(attribute, AttributeProblem::NoHl7Value)),
        (Some(_), Some(_)) => Err(problem(attribute, AttributeProblem::SeveralHl7Values)),
    }
}

/// The `extension` of an II whose `root` must be `root`.
pub(crate) fn ii<'a>(
    value: &'a Element,
    attribute: &'static str,
    root: Oid,
) -> Result<&'a str, WireError> {
    let found = xml_attribute(value, attribute, "root")?;
    if found != root.oid {
        return Err(problem(
            attribute,
            AttributeProblem::WrongRoot {
                found: Excerpt::new(found),
                expected: root.oid,
                meaning: root.meaning,
            },
        ));
    }
    xml_attribute(value, attribute, "extension")
}

/// The `code` of a CV whose `codeSystem` must be `system`.
pub(crate) fn cv<'a>(
    value: &'a Element,
    attribute: &'static str,
    system: Oid,
) -> Result<&'a str, WireError> {
    let found = xml_attribute(value, attribute, "codeSystem")?;
    if found != system.oid {
        return Err(problem(
            attribute,
            AttributeProblem::WrongCodeSystem {
                found: Excerpt::new(found),
                expected: system.oid,
                meaning: system.meaning,
            },
        ));
    }
    xml_attribute(value, attribute, "code")
}

/// A non-empty XML attribute of an HL7 value. OIDs, extensions and codes are XML Schema tokens,
/// so surrounding whitespace is not part of the value.
fn xml_attribute<'a>(
    value: &'a Element,
    attribute: &'static str,
    name: &'static str,
) -> Result<&'a str, WireError> {
    value
        .attribute(name)
        .map(str::trim_ascii)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| problem(attribute, AttributeProblem::MissingXmlAttribute(name)))
}

/// An error about the XACML attribute `attribute`.
pub(crate) fn problem(attribute: &'static str, problem: AttributeProblem) -> WireError {
    WireError::Attribute { attribute, problem }
}
