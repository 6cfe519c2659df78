//! The IHE XUA SAML 2.0 assertion that carries the consulter's attributes in an open question:
//! finding it in the WS-Security header, verifying its enveloped signature when it has one,
//! checking its time window and audience, and reading attribute values by `Name`.
//!
//! Only the parts otv acts on are checked (SAML 2.0 core §2.5.1): `Conditions` with
//! `NotBefore`/`NotOnOrAfter` and every `AudienceRestriction`. The other conditions
//! (`OneTimeUse`, `ProxyRestriction`), `Subject` confirmation and `AuthnStatement` are left alone:
//! the consulter is authenticated by its TLS certificate, and the assertion states for whom and
//! why it asks. Whether a signer certificate is trusted is the caller's decision.
//!
//! Everything the codec reads comes from the same element that was canonicalized and
//! verified (see `xmldsig`). This module must not map values to otv-core types; the codec does.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

use crate::c14n::{Scope, SourceElement};
use crate::error::{AssertionProblem, AttributeProblem, Excerpt, WireError};
use crate::hl7::{self, problem};
use crate::soap::SOAP_NS;
use crate::xml::Element;
use crate::xmldsig;

/// SAML 2.0 assertion namespace.
const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// WS-Security 1.0 (OASIS 2004) header namespace.
const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security utility namespace (`wsu:Id`).
const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

/// How far the sender's clock may be off from otv's when the assertion's time window is
/// checked, in seconds: an assertion is accepted from `NotBefore` minus this until
/// `NotOnOrAfter` plus this.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// A SAML assertion that passed every check.
pub(crate) struct Assertion {
    /// Its `ID`.
    pub id: String,
    /// Its content, to read attributes from.
    pub content: Element,
    /// The DER of the certificate whose key verified the signature; `None` when unsigned.
    pub signer_certificate: Option<Vec<u8>>,
}

/// Finds the one assertion in the one `wsse:Security` header of `envelope`, verifies its
/// signature if it is signed, and checks that it is valid at `now` for `audience`.
///
/// `envelope` is the detailed tree of a document whose SOAP frame has already been checked.
pub(crate) fn read(
    envelope: &SourceElement,
    now: DateTime<Utc>,
    audience: &str,
) -> Result<Assertion, WireError> {
    let invalid = WireError::Assertion;
    let Some(header) = envelope.children_named(SOAP_NS, "Header").next() else {
        return Err(invalid(AssertionProblem::NoSecurityHeader));
    };
    let mut securities = header.children_named(WSSE_NS, "Security");
    let security = match (securities.next(), securities.next()) {
        (Some(security), None) => security,
        (None, _) => return Err(invalid(AssertionProblem::NoSecurityHeader)),
        (Some(_), Some(_)) => return Err(invalid(AssertionProblem::SeveralSecurityHeaders)),
    };
    let mut assertions = security.children_named(SAML_NS, "Assertion");
    let assertion = match (assertions.next(), assertions.next()) {
        (Some(assertion), None) => assertion,
        (None, _) => return Err(invalid(AssertionProblem::NoAssertion)),
        (Some(_), Some(_)) => return Err(invalid(AssertionProblem::SeveralAssertions)),
    };

    let id = assertion
        .attribute_in(None, "ID")
        .filter(|id| !id.trim_ascii().is_empty())
        .ok_or(invalid(AssertionProblem::NoId))?;
    let wsu_id = assertion
        .attribute_in(Some(WSU_NS), "Id")
        .unwrap_or_default();
    let around = Scope::default()
        .enter(envelope)
        .enter(header)
        .enter(security);
    let signer_certificate = xmldsig::verify_enveloped(assertion, &around, &[id, wsu_id])?;

    let content = assertion.to_element();
    check_conditions(&content, now, audience)?;
    Ok(Assertion {
        id: id.to_owned(),
        content,
        signer_certificate,
    })
}

/// SAML 2.0 core §2.5.1: the time window (with [`CLOCK_SKEW_SECONDS`]) and every
/// `AudienceRestriction` (each must name `audience`).
fn check_conditions(
    assertion: &Element,
    now: DateTime<Utc>,
    audience: &str,
) -> Result<(), WireError> {
    let invalid = WireError::Assertion;
    let mut all = assertion.children_named(SAML_NS, "Conditions");
    let conditions = match (all.next(), all.next()) {
        (Some(conditions), None) => conditions,
        (None, _) => return Err(invalid(AssertionProblem::NoConditions)),
        (Some(_), Some(_)) => return Err(invalid(AssertionProblem::SeveralConditions)),
    };

    let skew = TimeDelta::seconds(CLOCK_SKEW_SECONDS);
    let not_on_or_after =
        time(conditions, "NotOnOrAfter")?.ok_or(invalid(AssertionProblem::NoExpiry))?;
    if let Some(not_before) = time(conditions, "NotBefore")?
        && now + skew < not_before
    {
        return Err(invalid(AssertionProblem::NotYetValid {
            not_before,
            skew_seconds: CLOCK_SKEW_SECONDS,
        }));
    }
    if now - skew >= not_on_or_after {
        return Err(invalid(AssertionProblem::Expired {
            not_on_or_after,
            skew_seconds: CLOCK_SKEW_SECONDS,
        }));
    }

    let mut restrictions = conditions
        .children_named(SAML_NS, "AudienceRestriction")
        .peekable();
    if restrictions.peek().is_none() {
        return Err(invalid(AssertionProblem::NoAudienceRestriction));
    }
    for restriction in restrictions {
        let audiences: Vec<&str> = restriction
            .children_named(SAML_NS, "Audience")
            .map(|a| a.text.trim_ascii())
            .collect();
        if !audiences.contains(&audience) {
            return Err(invalid(AssertionProblem::WrongAudience {
                found: Excerpt::new(&audiences.join("`, `")),
                expected: Excerpt::new(audience),
            }));
        }
    }
    Ok(())
}

/// A time of the `Conditions`. SAML requires UTC; a value without a zone is read as UTC, one
/// with an offset is converted.
fn time(conditions: &Element, attribute: &'static str) -> Result<Option<DateTime<Utc>>, WireError> {
    let Some(value) = conditions.attribute(attribute).map(str::trim_ascii) else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
        .map(Some)
        .map_err(|_| {
            WireError::Assertion(AssertionProblem::BadTime {
                attribute,
                found: Excerpt::new(value),
            })
        })
}

/// The HL7 value of the assertion's attribute `name` (in any `AttributeStatement`), or `None`
/// when the assertion does not carry it.
pub(crate) fn attribute_value<'a>(
    assertion: &'a Element,
    name: &'static str,
) -> Result<Option<&'a Element>, WireError> {
    let mut found = assertion
        .children_named(SAML_NS, "AttributeStatement")
        .flat_map(|statement| statement.children_named(SAML_NS, "Attribute"))
        .filter(|a| a.attribute("Name").map(str::trim_ascii) == Some(name));
    let attribute = match (found.next(), found.next()) {
        (None, _) => return Ok(None),
        (Some(attribute), None) => attribute,
        (Some(_), Some(_)) => return Err(problem(name, AttributeProblem::Repeated)),
    };
    let mut values = attribute.children_named(SAML_NS, "AttributeValue");
    match (values.next(), values.next()) {
        (Some(value), None) => hl7::value_in(value, name).map(Some),
        (None, _) => Err(problem(name, AttributeProblem::NoValue)),
        (Some(_), Some(_)) => Err(problem(name, AttributeProblem::SeveralValues)),
    }
}
