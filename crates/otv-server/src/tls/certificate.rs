//! From a verified client certificate to a [`ClientIdentity`]: fingerprint, subject and the URA
//! a UZI server certificate carries.
//!
//! # Where the URA is
//! * **The UZI otherName** (all UZI server certificates): subjectAltName `otherName` with type
//!   id `2.5.5.5`, its value `[0] EXPLICIT` wrapping an IA5String (as the UZI-register issues
//!   it) or a UTF8String (as some test CAs and rcgen write it). The string is
//!   `<CA OID>-<version>-<UZI nr>-<card type>-<URA>-<role>-<AGB>`: exactly 7 fields separated by
//!   `-`, the fifth is the URA (subscriber number, abonneenummer).
//! * **`permanentIdentifier`** (RFC 4043; UZI server certificates issued since November 2023):
//!   `otherName` with type id `1.3.6.1.5.5.7.8.3`, value `[0] EXPLICIT SEQUENCE {
//!   identifierValue UTF8String OPTIONAL, assigner OBJECT IDENTIFIER OPTIONAL }`. It is read as
//!   a URA only when the assigner is the URA register's OID `2.16.528.1.1007.3.3` (the OID
//!   PRODUCT.md §2 uses for URAs); then `identifierValue` must be a URA. That reading follows
//!   the published description of UZI server certificates used by the Nuts foundation
//!   (identifierValue = URA, assigner = 2.16.528.1.1007.3.3); the UZI-register CPS itself could
//!   not be consulted, so a permanentIdentifier with any other assigner, or none, is ignored
//!   rather than guessed at.
//!
//! # Fail closed
//! A certificate without either name has no URA (`ura: None`; the connector allow-list then
//! decides). A certificate that *has* a UZI otherName or a URA-assigned permanentIdentifier
//! that cannot be read, or whose names disagree on the URA, is an error: a mis-issued
//! certificate is not quietly treated as one without a URA.

use otv_core::Ura;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::der;
use crate::identity::ClientIdentity;

/// Type id of the UZI-register's otherName.
pub const UZI_OTHER_NAME_OID: &str = "2.5.5.5";
/// id-on-permanentIdentifier (RFC 4043).
pub const PERMANENT_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.8.3";
/// The URA register's OID: the assigner of a permanentIdentifier that is a URA.
pub const URA_ASSIGNER_OID: &str = "2.16.528.1.1007.3.3";
/// Arcs of [`URA_ASSIGNER_OID`].
pub(crate) const URA_ASSIGNER_ARCS: &[u64] = &[2, 16, 528, 1, 1007, 3, 3];

/// Why a client certificate yields no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a DER X.509 certificate, or its subjectAltName extension cannot be read.
    #[error("the client certificate cannot be read: {0}")]
    Unreadable(String),
    /// A UZI otherName (`2.5.5.5`) is present but is not a 7-field UZI string with a URA.
    #[error("the client certificate's UZI otherName (2.5.5.5) is malformed: {0}")]
    MalformedUziName(String),
    /// A permanentIdentifier assigned by the URA register is present but unreadable.
    #[error("the client certificate's permanentIdentifier is malformed: {0}")]
    MalformedPermanentIdentifier(String),
    /// The certificate's names carry different URAs.
    #[error("the client certificate names two different URAs: {0} and {1}")]
    ConflictingUra(String, String),
}

/// Reads the identity of a client certificate (DER). See the module documentation for where
/// the URA comes from and when this fails.
pub fn identity_from_certificate(der: &[u8]) -> Result<ClientIdentity, IdentityError> {
    let (rest, certificate) =
        X509Certificate::from_der(der).map_err(|e| IdentityError::Unreadable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(IdentityError::Unreadable(
            "trailing bytes after the certificate".into(),
        ));
    }
    let subject = certificate.subject().to_string();
    let san = certificate
        .subject_alternative_name()
        .map_err(|e| IdentityError::Unreadable(format!("subjectAltName: {e}")))?;

    let mut ura: Option<Ura> = None;
    for name in san.iter().flat_map(|ext| ext.value.general_names.iter()) {
        let GeneralName::OtherName(type_id, value) = name else {
            continue;
        };
        let found = match type_id.to_id_string().as_str() {
            UZI_OTHER_NAME_OID => Some(ura_from_uzi_name(value)?),
            PERMANENT_IDENTIFIER_OID => ura_from_permanent_identifier(value)?,
            _ => None,
        };
        match (&ura, found) {
            (_, None) => {}
            (None, Some(found)) => ura = Some(found),
            (Some(known), Some(found)) if *known == found => {}
            (Some(known), Some(found)) => {
                return Err(IdentityError::ConflictingUra(
                    known.to_string(),
                    found.to_string(),
                ));
            }
        }
    }

    Ok(ClientIdentity {
        certificate_sha256: sha256_hex(der),
        ura,
        subject,
    })
}

/// SHA-256 of `der`, lower-case hex: the key of the connector allow-list.
pub fn sha256_hex(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der))
}

/// The URA in a UZI string `<CA OID>-<version>-<UZI nr>-<card type>-<URA>-<role>-<AGB>`.
pub fn ura_from_uzi_string(text: &str) -> Result<Ura, IdentityError> {
    let bad = |why: String| IdentityError::MalformedUziName(why);
    let fields: Vec<&str> = text.split('-').collect();
    if fields.len() != 7 {
        return Err(bad(format!(
            "expected 7 fields separated by '-' (<CA OID>-<version>-<UZI nr>-<card type>-<URA>-<role>-<AGB>), found {}",
            fields.len()
        )));
    }
    let ca_oid = fields[0];
    if ca_oid.is_empty() || !ca_oid.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(bad(format!("the first field `{ca_oid}` is not an OID")));
    }
    Ura::parse(fields[4])
        .map_err(|e| bad(format!("the fifth field (URA) `{}`: {}", fields[4], e.rule)))
}

/// `value` is the otherName's `[0] EXPLICIT` wrapper around an IA5String or UTF8String.
fn ura_from_uzi_name(value: &[u8]) -> Result<Ura, IdentityError> {
    let bad = |why: &str| IdentityError::MalformedUziName(why.into());
    let inner = explicit_0(value).ok_or_else(|| bad("the value is not [0] EXPLICIT"))?;
    let text = match der::read(inner) {
        Some((der::IA5_STRING, bytes, [])) if bytes.is_ascii() => std::str::from_utf8(bytes).ok(),
        Some((der::UTF8_STRING, bytes, [])) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
    .ok_or_else(|| bad("the value is not an IA5String or UTF8String"))?;
    ura_from_uzi_string(text)
}

/// `Some(ura)` for a permanentIdentifier assigned by the URA register, `None` for any other.
fn ura_from_permanent_identifier(value: &[u8]) -> Result<Option<Ura>, IdentityError> {
    let bad = |why: String| IdentityError::MalformedPermanentIdentifier(why);
    let sequence = explicit_0(value)
        .and_then(|inner| match der::read(inner) {
            Some((der::SEQUENCE, content, [])) => Some(content),
            _ => None,
        })
        .ok_or_else(|| bad("the value is not [0] EXPLICIT SEQUENCE".into()))?;

    let (mut identifier_value, mut assigner) = (None, None);
    let mut rest = sequence;
    while !rest.is_empty() {
        let (tag, content, next) =
            der::read(rest).ok_or_else(|| bad("an element cannot be read".into()))?;
        match tag {
            der::UTF8_STRING if identifier_value.is_none() && assigner.is_none() => {
                identifier_value = Some(
                    std::str::from_utf8(content)
                        .map_err(|_| bad("identifierValue is not UTF-8".into()))?,
                );
            }
            der::OID if assigner.is_none() => assigner = Some(content),
            _ => return Err(bad(format!("unexpected element with tag 0x{tag:02x}"))),
        }
        rest = next;
    }
    if assigner != Some(der::oid_content(URA_ASSIGNER_ARCS).as_slice()) {
        return Ok(None);
    }
    let value = identifier_value
        .ok_or_else(|| bad("assigned by the URA register but without identifierValue".into()))?;
    Ura::parse(value)
        .map(Some)
        .map_err(|e| bad(format!("identifierValue `{value}`: {}", e.rule)))
}

/// The content of a `[0] EXPLICIT` wrapper that is the whole of `value`.
fn explicit_0(value: &[u8]) -> Option<&[u8]> {
    match der::read(value)? {
        (der::CONTEXT_0, inner, []) => Some(inner),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_field_of_a_uzi_string_is_the_ura() {
        let ura =
            ura_from_uzi_string("2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000-01000001")
                .unwrap();
        assert_eq!(ura.as_str(), "00000001");
    }

    #[test]
    fn malformed_uzi_strings_are_named() {
        for (text, expect) in [
            (
                "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-00000001-00.000",
                "found 6",
            ),
            (
                "2.16.528.1.1003.1.3.5.5.2-1-900010001-S-1234-00.000-01000001",
                "fifth field (URA) `1234`: a URA is 8 digits",
            ),
            ("x-1-900010001-S-00000001-00.000-01000001", "not an OID"),
            ("", "found 1"),
        ] {
            let err = ura_from_uzi_string(text).unwrap_err().to_string();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
