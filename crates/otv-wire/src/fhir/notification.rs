//! The consent notification otv sends to a subscribed dossier holder (PRODUCT.md §11, §12
//! "Notifications"): a FHIR R4 transaction `Bundle` with one `Consent` per answer group, the
//! `Patient` (BSN) and the holder's `Organization` (URA, type), in FHIR JSON or XML as the
//! subscription's `channel.payload` asks. Shape: `fixtures/mitz/notification-bundle.xml`.
//!
//! A group is one data category and one decision (yes or no) with the consulting categories it
//! applies to: `status` active for yes (with `provision.type` permit), inactive for no, one
//! `OTV-ProviderCategory` extension per consulting category, and a Dutch narrative.
//!
//! Every id in the Bundle is derived from the Bundle id ([`notification_id`] derives that from
//! the change and the subscription), so a redelivered notification is the same Bundle with the
//! same ids and the receiver can ignore what it already processed.
//!
//! Pure: no IO, no clock, no randomness. What goes into the groups (which answers, the holder's
//! view) is the server's business.

use aws_lc_rs::digest;
use chrono::{DateTime, SecondsFormat, Utc};
use otv_core::{Bsn, OrgType, Ura};
use uuid::Uuid;

use super::values::{
    BSN_SYSTEM, CONSENT_SCOPE_PRIVACY, CONSENT_SCOPE_SYSTEM, CONSULTING_CATEGORY_SYSTEM,
    CUSTODIAN_ROLE, DATA_CATEGORY_SYSTEM, ORGANISATION_TYPE_SYSTEM, PARTICIPATION_TYPE_SYSTEM,
    PROVIDER_CATEGORY_URL, URA_SYSTEM,
};
use super::write::{self, Object};

/// The profile every notification Consent claims.
pub const NOTIFY_CONSENT_PROFILE: &str =
    "http://vzvz.nl/fhir/StructureDefinition/Consent-Mitz-Notify|3.8.0";
/// Code system of `Consent.provision.purpose` (as Mitz writes it).
pub const ACT_REASON_SYSTEM: &str = "http://hl7.org/fhir/v3/ActReason";
/// The purpose of every notification Consent: treatment.
pub const PURPOSE_TREAT: &str = "TREAT";

/// A code with its Dutch display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    /// The code, e.g. `RPZAC005` or `GGC002`.
    pub code: String,
    /// The display name, e.g. `Apotheken`.
    pub display: String,
}

/// One answer group: a data category, yes or no, and the consulting categories it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentGroup {
    /// The data category.
    pub data_category: Coded,
    /// Yes (`active`) or no (`inactive`).
    pub permit: bool,
    /// The consulting categories, in the order to write them.
    pub consulting: Vec<Coded>,
}

/// Everything one notification says.
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    /// The Bundle id ([`notification_id`]); every other id is derived from it.
    pub id: Uuid,
    /// The patient.
    pub bsn: &'a Bsn,
    /// The subscribed dossier holder.
    pub holder_ura: &'a Ura,
    /// The holder's organisation type.
    pub holder_type: &'a OrgType,
    /// The catalogue version, stamped on every coding (`coding.version`).
    pub catalogue_version: &'a str,
    /// When the change was made (`Consent.dateTime`).
    pub changed_at: DateTime<Utc>,
    /// The Consents, one per group.
    pub groups: &'a [ConsentGroup],
}

/// A name-based id: the first 16 bytes of SHA-256 of `name`, as a version 8 UUID.
fn derived_id(name: &str) -> Uuid {
    let hash = digest::digest(&digest::SHA256, name.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The Bundle id of the notification of change `change` (the audit sequence number of the
/// change) to subscription `subscription`: the same for every delivery of that notification.
pub fn notification_id(change: i64, subscription: Uuid) -> Uuid {
    derived_id(&format!("otv-notification:{change}:{subscription}"))
}

fn part_id(bundle: Uuid, part: &str) -> Uuid {
    derived_id(&format!("otv-notification-part:{bundle}:{part}"))
}

fn urn(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

/// The narrative of a group, in Dutch; the consulting categories by code.
pub fn narrative(group: &ConsentGroup) -> String {
    // By code, as Mitz writes it (the extensions keep the order given).
    let mut consulting: Vec<&Coded> = group.consulting.iter().collect();
    consulting.sort_by(|a, b| a.code.cmp(&b.code));
    let consulters = consulting
        .iter()
        .map(|c| c.display.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "De patiënt verleent {}toestemming om {} beschikbaar te stellen aan behandelaren in {}.",
        if group.permit { "" } else { "geen " },
        group.data_category.display,
        consulters
    )
}

fn coding(system: &str, version: &str, code: &Coded) -> Object {
    Object::new()
        .primitive("system", system)
        .primitive("version", version)
        .primitive("code", code.code.clone())
        .primitive("display", code.display.clone())
}

fn consent(
    n: &Notification<'_>,
    id: Uuid,
    group: &ConsentGroup,
    patient: Uuid,
    org: Uuid,
) -> Object {
    let version = n.catalogue_version;
    let extensions = group
        .consulting
        .iter()
        .map(|c| {
            Object::new()
                .attribute("url", PROVIDER_CATEGORY_URL)
                .object(
                    "valueCodeableConcept",
                    Object::new().objects(
                        "coding",
                        vec![coding(CONSULTING_CATEGORY_SYSTEM, version, c)],
                    ),
                )
        })
        .collect();
    let mut provision = Object::new();
    if group.permit {
        provision = provision.primitive("type", "permit");
    }
    let provision = provision
        .objects(
            "actor",
            vec![
                Object::new()
                    .object(
                        "role",
                        Object::new().objects(
                            "coding",
                            vec![
                                Object::new()
                                    .primitive("system", PARTICIPATION_TYPE_SYSTEM)
                                    .primitive("code", CUSTODIAN_ROLE),
                            ],
                        ),
                    )
                    .object("reference", Object::new().primitive("reference", urn(org))),
            ],
        )
        .objects(
            "purpose",
            vec![
                Object::new()
                    .primitive("system", ACT_REASON_SYSTEM)
                    .primitive("code", PURPOSE_TREAT),
            ],
        );
    Object::new()
        .primitive("id", id.to_string())
        .object(
            "meta",
            Object::new().primitives("profile", vec![NOTIFY_CONSENT_PROFILE.to_owned()]),
        )
        .object(
            "text",
            Object::new()
                .primitive("status", "generated")
                .xhtml("div", narrative(group)),
        )
        .objects("extension", extensions)
        .primitive("status", if group.permit { "active" } else { "inactive" })
        .object(
            "scope",
            Object::new().objects(
                "coding",
                vec![
                    Object::new()
                        .primitive("system", CONSENT_SCOPE_SYSTEM)
                        .primitive("version", version)
                        .primitive("code", CONSENT_SCOPE_PRIVACY),
                ],
            ),
        )
        .objects(
            "category",
            vec![Object::new().objects(
                "coding",
                vec![coding(DATA_CATEGORY_SYSTEM, version, &group.data_category)],
            )],
        )
        .object(
            "patient",
            Object::new().primitive("reference", urn(patient)),
        )
        .primitive(
            "dateTime",
            n.changed_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        )
        .object("provision", provision)
}

fn entry(id: Uuid, resource_type: &'static str, resource: Object) -> Object {
    Object::new()
        .primitive("fullUrl", urn(id))
        .resource("resource", resource_type, resource)
        .object(
            "request",
            Object::new()
                .primitive("method", "POST")
                .primitive("url", resource_type),
        )
}

fn bundle(n: &Notification<'_>) -> Object {
    let patient = part_id(n.id, "patient");
    let org = part_id(n.id, "organization");
    let mut entries: Vec<Object> = n
        .groups
        .iter()
        .enumerate()
        .map(|(i, group)| {
            let id = part_id(n.id, &format!("consent-{i}"));
            entry(id, "Consent", consent(n, id, group, patient, org))
        })
        .collect();
    entries.push(entry(
        patient,
        "Patient",
        Object::new().primitive("id", patient.to_string()).objects(
            "identifier",
            vec![
                Object::new()
                    .primitive("system", BSN_SYSTEM)
                    .primitive("value", n.bsn.expose()),
            ],
        ),
    ));
    entries.push(entry(
        org,
        "Organization",
        Object::new()
            .primitive("id", org.to_string())
            .objects(
                "identifier",
                vec![
                    Object::new()
                        .primitive("system", URA_SYSTEM)
                        .primitive("value", n.holder_ura.as_str()),
                ],
            )
            .objects(
                "type",
                vec![Object::new().objects(
                    "coding",
                    vec![
                        Object::new()
                            .primitive("system", ORGANISATION_TYPE_SYSTEM)
                            .primitive("version", n.catalogue_version)
                            .primitive("code", n.holder_type.as_str()),
                    ],
                )],
            ),
    ));
    Object::new()
        .primitive("id", n.id.to_string())
        .primitive("type", "transaction")
        .objects("entry", entries)
}

/// The notification as FHIR JSON (`application/fhir+json`).
pub fn notification_bundle_json(n: &Notification<'_>) -> String {
    write::json("Bundle", &bundle(n))
}

/// The notification as FHIR XML (`application/fhir+xml`).
pub fn notification_bundle_xml(n: &Notification<'_>) -> String {
    write::xml("Bundle", &bundle(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_change_to_the_same_subscription_has_the_same_bundle_id() {
        let s = Uuid::from_u128(7);
        assert_eq!(notification_id(12, s), notification_id(12, s));
        assert_ne!(notification_id(12, s), notification_id(13, s));
        assert_ne!(
            notification_id(12, s),
            notification_id(12, Uuid::from_u128(8))
        );
    }

    #[test]
    fn the_narrative_says_yes_or_no_in_dutch() {
        let mut group = ConsentGroup {
            data_category: Coded {
                code: "GGC002".into(),
                display: "Behandelgegevens".into(),
            },
            permit: true,
            consulting: vec![Coded {
                code: "RPZAC005".into(),
                display: "Apotheken".into(),
            }],
        };
        assert_eq!(
            narrative(&group),
            "De patiënt verleent toestemming om Behandelgegevens beschikbaar te stellen aan behandelaren in Apotheken."
        );
        group.permit = false;
        assert!(narrative(&group).starts_with("De patiënt verleent geen toestemming"));
    }
}
