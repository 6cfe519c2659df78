//! Values with rules, apart from any resource: the FHIR datatypes otv checks (id, date, instant,
//! OID) and otv's own (the registration criteria query, an https notification endpoint).
//!
//! Each check says only which rule a value broke; the caller names the element. Nothing here
//! repeats a value that may be a BSN.

use chrono::{DateTime, FixedOffset, NaiveDate};
use otv_core::{Bsn, IdError, OrgType, Ura};

use crate::error::Excerpt;

/// The shape of `criteria`, for error texts.
pub(crate) const CRITERIA_SHAPE: &str =
    "Consent?_query=otv&patientid=<BSN>&providerid=<URA>&providertype=<organisation type>";

// --- Consent code systems and URLs (PRODUCT.md §12 "Notifications"; shared by the notification
// Consent encoder and the migration decoder) ---

/// Extension naming one consulting category of a Consent (valueCodeableConcept).
pub const PROVIDER_CATEGORY_URL: &str = "http://fhir.nl/StructureDefinition/OTV-ProviderCategory";
/// Code system of the consulting-provider categories (`RPZAC…`).
pub const CONSULTING_CATEGORY_SYSTEM: &str =
    "http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie";
/// Code system of the data categories (`GGC…`).
pub const DATA_CATEGORY_SYSTEM: &str = "http://fhir.nl/otv/CodeSystem/gegevenscategorie";
/// Code system of `Consent.scope`.
pub const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// The scope of every otv Consent.
pub const CONSENT_SCOPE_PRIVACY: &str = "patient-privacy";
/// Code system of `Consent.provision.actor.role`.
pub const PARTICIPATION_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// The actor role of the dossier holder in a Consent (custodian).
pub const CUSTODIAN_ROLE: &str = "CST";
/// Naming system of the BSN.
pub const BSN_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/bsn";
/// Naming system of the URA.
pub const URA_SYSTEM: &str = "http://fhir.nl/fhir/NamingSystem/ura";
/// Naming system of the organisation types (zorgaanbiedertype).
pub const ORGANISATION_TYPE_SYSTEM: &str = "http://nictiz.nl/fhir/NamingSystem/organization-type";

/// The longest endpoint URL accepted.
pub const MAX_ENDPOINT_CHARS: usize = 2048;

/// The longest OID accepted (without `urn:oid:`).
pub const MAX_OID_CHARS: usize = 128;

/// Whether `id` is a FHIR id: 1 to 64 letters, digits, `-` and `.`.
pub(crate) fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A FHIR date: `Some(Some(date))` for `YYYY-MM-DD`, `Some(None)` for the partial forms `YYYY`
/// and `YYYY-MM`, `None` for anything else (including days that do not exist).
pub(crate) fn fhir_date(s: &str) -> Option<Option<NaiveDate>> {
    let b = s.as_bytes();
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let year = number(0..4).filter(|&y| y >= 1)?;
    match b.len() {
        4 => Some(None),
        7 if b[4] == b'-' => number(5..7).filter(|m| (1..=12).contains(m)).map(|_| None),
        10 if b[4] == b'-' && b[7] == b'-' => {
            let date =
                NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, number(5..7)?, number(8..10)?)?;
            Some(Some(date))
        }
        _ => None,
    }
}

/// A FHIR instant: date, time to the second (fractions allowed) and a time zone.
pub(crate) fn instant(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.len() < 20 || s.as_bytes()[10] != b'T' {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// The OID in a `valueOid`, without `urn:oid:`, or the rule it breaks. The FHIR `oid` type has
/// the prefix; Mitz connectors send it (see the fixture), and the bare form is accepted as well
/// because HL7v3 habits die hard.
pub(crate) fn bare_oid(value: &str) -> Result<&str, &'static str> {
    let bare = match value.get(..8) {
        Some(prefix) if prefix.eq_ignore_ascii_case("urn:oid:") => &value[8..],
        _ => value,
    };
    if bare.len() > MAX_OID_CHARS {
        return Err("is longer than 128 characters");
    }
    let arcs: Vec<&str> = bare.split('.').collect();
    let well_formed = arcs.len() >= 2
        && arcs.iter().all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc.len() == 1 || !arc.starts_with('0'))
        });
    if !well_formed {
        return Err(
            "is not an OID (numbers without leading zeros separated by dots, e.g. \
             urn:oid:2.16.840.1.113883.2.4.6.6.1)",
        );
    }
    // ITU-T X.660: the first arc is 0, 1 or 2; under 0 and 1 the second is at most 39.
    let second_ok = arcs[1].len() <= 2 && arcs[1].parse::<u8>().is_ok_and(|n| n <= 39);
    match arcs[0] {
        "0" | "1" if !second_ok => {
            Err("is not an OID (under arc 0 or 1 the second arc is at most 39)")
        }
        "0" | "1" | "2" => Ok(bare),
        _ => Err("is not an OID (the first arc is 0, 1 or 2)"),
    }
}

/// The parameters of `criteria`, in the order of [`CRITERIA_SHAPE`].
const PARAMETERS: [(&str, &str); 4] = [
    ("_query", "`otv`"),
    ("patientid", "the patient's BSN"),
    ("providerid", "the holder's URA"),
    ("providertype", "the holder's organisation type"),
];

/// The registration `criteria` name: patient, holder and holder type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Criteria {
    pub bsn: Bsn,
    pub holder_ura: Ura,
    pub holder_type: OrgType,
}

/// Reads `criteria` as the otv query: `Consent?` and the four parameters in any order,
/// percent-decoded, each exactly once, nothing else. Empty parameters (`&&`, a trailing `&`)
/// are ignored; `+` is not a space (RFC 3986). Returns every problem found, as a text; the BSN
/// itself never appears in one.
pub(crate) fn parse_criteria(criteria: &str) -> Result<Criteria, Vec<String>> {
    let query = match criteria.split_once('?') {
        Some(("Consent", query)) => query,
        _ => return Err(vec![format!("must be `{CRITERIA_SHAPE}`")]),
    };

    let mut problems = Vec::new();
    let mut seen = [false; 4];
    let mut values: [Option<String>; 4] = Default::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = match pair.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (pair, None),
        };
        let Some(name) = percent_decode(raw_name) else {
            problems.push("a parameter name is not validly percent-encoded".to_owned());
            continue;
        };
        let Some(slot) = PARAMETERS.iter().position(|(p, _)| *p == name) else {
            problems.push(format!(
                "unknown parameter `{}`: the criteria are `{CRITERIA_SHAPE}`",
                Excerpt::new(&name)
            ));
            continue;
        };
        let name = PARAMETERS[slot].0;
        if std::mem::replace(&mut seen[slot], true) {
            problems.push(format!("parameter `{name}` appears more than once"));
            continue;
        }
        match raw_value.map(percent_decode) {
            None => problems.push(format!("parameter `{name}` has no value")),
            Some(None) => {
                problems.push(format!("parameter `{name}` is not validly percent-encoded"))
            }
            Some(Some(value)) => values[slot] = Some(value),
        }
    }
    for (slot, (name, meaning)) in PARAMETERS.iter().enumerate() {
        if !seen[slot] {
            problems.push(format!("parameter `{name}` ({meaning}) is missing"));
        }
    }

    let [query, patient, provider, provider_type] = values;
    if let Some(query) = query
        && query != "otv"
    {
        problems.push(format!(
            "parameter `_query` must be `otv`, not `{}`",
            Excerpt::new(&query)
        ));
    }
    let bsn = patient.map(|v| Bsn::parse(&v));
    let holder_ura = provider.map(|v| Ura::parse(&v));
    let holder_type = provider_type.map(|v| OrgType::parse(&v));
    // Only the rule an identifier broke is reported, never its value: it may be a BSN.
    let broken: [(&str, Option<&IdError>); 3] = [
        ("patientid", bsn.as_ref().and_then(|r| r.as_ref().err())),
        (
            "providerid",
            holder_ura.as_ref().and_then(|r| r.as_ref().err()),
        ),
        (
            "providertype",
            holder_type.as_ref().and_then(|r| r.as_ref().err()),
        ),
    ];
    for (name, error) in broken {
        if let Some(error) = error {
            problems.push(format!("parameter `{name}`: {}", error.rule));
        }
    }

    match (bsn, holder_ura, holder_type) {
        (Some(Ok(bsn)), Some(Ok(holder_ura)), Some(Ok(holder_type))) if problems.is_empty() => {
            Ok(Criteria {
                bsn,
                holder_ura,
                holder_type,
            })
        }
        _ => Err(problems),
    }
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks that `url` is an absolute https URL a notification can be sent to.
pub(crate) fn check_endpoint(url: &str) -> Result<(), &'static str> {
    if url.len() > MAX_ENDPOINT_CHARS {
        return Err("is longer than 2048 characters");
    }
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "must be a URL of printable ASCII characters without spaces (percent-encode others)",
        );
    }
    let rest = match (url.get(..8), url.get(..7)) {
        (Some(scheme), _) if scheme.eq_ignore_ascii_case("https://") => &url[8..],
        (_, Some(scheme)) if scheme.eq_ignore_ascii_case("http://") => {
            return Err("must be an https URL: otv sends notifications over TLS only");
        }
        _ => return Err("must be an absolute https URL"),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not contain user credentials");
    }
    const BAD_HOST: &str = "must name a host (https://host[:port]/path)";
    let (host, port, host_ok): (&str, Option<&str>, fn(u8) -> bool) =
        if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or(BAD_HOST)?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(BAD_HOST)?),
            };
            (host, port, |b| {
                b.is_ascii_hexdigit() || b == b':' || b == b'.'
            })
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            (host, port, |b| {
                b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
            })
        };
    if host.is_empty() || !host.bytes().all(host_ok) {
        return Err(BAD_HOST);
    }
    if let Some(port) = port
        && !(port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err("has an invalid port");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_with_and_without_prefix() {
        assert_eq!(
            bare_oid("urn:oid:2.16.840.1.113883.2.4.6.6.1"),
            Ok("2.16.840.1.113883.2.4.6.6.1")
        );
        assert_eq!(bare_oid("URN:OID:1.2"), Ok("1.2"));
        assert_eq!(bare_oid("2.16.840"), Ok("2.16.840"));
        for bad in [
            "",
            "2",
            "3.1",
            "2..1",
            "2.01",
            "2.a",
            "1.40",
            "urn:oid:",
            "urn:uuid:1.2",
            " 2.1",
        ] {
            assert!(bare_oid(bad).is_err(), "{bad:?} accepted");
        }
        assert!(bare_oid(&format!("2.{}", "1".repeat(MAX_OID_CHARS))).is_err());
    }

    #[test]
    fn dates_and_instants() {
        assert_eq!(
            fhir_date("2012-03-07"),
            Some(NaiveDate::from_ymd_opt(2012, 3, 7))
        );
        assert_eq!(fhir_date("2012-03"), Some(None));
        assert_eq!(fhir_date("2012"), Some(None));
        for bad in [
            "2012-02-30",
            "2012-13",
            "0000",
            "12-03-2012",
            "2012-3-7",
            "2012/03/07",
            "+012",
        ] {
            assert_eq!(fhir_date(bad), None, "{bad}");
        }
        assert!(instant("2026-01-01T00:00:00Z").is_some());
        assert!(instant("2026-01-01T00:00:00.123+01:00").is_some());
        assert!(instant("2026-01-01").is_none());
        assert!(instant("2026-01-01 00:00:00Z").is_none());
        assert!(instant("2026-01-01T00:00Z").is_none());
    }

    #[test]
    fn endpoints() {
        for ok in [
            "https://zim.prf001.lsp.aorta-zorg.nl/otv/Subscription/312",
            "HTTPS://example.nl",
            "https://example.nl:8443/a?b=c&d=e#f",
            "https://[::1]:443/x",
        ] {
            assert_eq!(check_endpoint(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://example.nl",
            "ftp://example.nl",
            "https://",
            "https:///x",
            "https://user:pw@example.nl",
            "https://example.nl:0",
            "https://example.nl:99999",
            "https://exa mple.nl",
            "https://exa_mple.nl",
            "//example.nl",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn criteria_in_any_order_and_percent_encoded() {
        let criteria = parse_criteria(
            "Consent?providertype=Z3&patientid=%39%30%30186021&_query=otv&providerid=00000659&",
        )
        .unwrap();
        assert_eq!(criteria.bsn.expose(), "900186021");
        assert_eq!(criteria.holder_ura.as_str(), "00000659");
        assert_eq!(criteria.holder_type.as_str(), "Z3");
        assert!(parse_criteria("Consent?_query=otv&patientid=%zz").is_err());
        assert!(parse_criteria("Patient?_query=otv").is_err());
        assert!(parse_criteria("Consent").is_err());
        assert_eq!(percent_decode("%2B+"), Some("++".to_owned()));
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%C3"), None);
    }
}
