//! Demo data: a small provider directory, connectors, and two test citizens whose answers make
//! the outcome obvious: BSN 900203638 says yes to every option, 900203651 no to every option.
//! Loading twice changes nothing.

use chrono::Utc;
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Bsn, Catalogue, Channel, ConsentOption, Effect, OrgType,
    Party, Provenance, Ura,
};
use otv_store::{AuditEvent, CitizenDetails, Connector, NewSubscription, Provider, Store};

/// Demo providers: (URA, name, organisation type).
pub const PROVIDERS: &[(&str, &str, &str)] = &[
    ("00000001", "Huisartsenpraktijk De Linde", "Z3"),
    ("00000002", "Huisartsenpost Midden", "N6"),
    ("00000010", "Apotheek Het Plein", "J8"),
    ("00000020", "Ziekenhuis Rivierenland", "V6"),
    ("00000021", "Universitair Medisch Centrum Demo", "V5"),
    ("00000030", "Laboratorium Noord", "L1"),
    ("00000040", "GGZ Centraal", "G5"),
    ("00000050", "Thuiszorg West", "T2"),
];

/// Demo connectors: (id, name, URAs it may act for).
pub const CONNECTORS: &[(&str, &str, &[&str])] = &[
    (
        "demo-huisarts",
        "Huisartsinformatiesysteem De Linde",
        &["00000001"],
    ),
    ("demo-apotheek", "Apotheeksysteem Het Plein", &["00000010"]),
    (
        "demo-lsp",
        "Uitwisselsysteem (LSP-achtig) voor alle demo-aanbieders",
        &[
            "00000001", "00000002", "00000010", "00000020", "00000021", "00000030", "00000040",
            "00000050",
        ],
    ),
];

/// The demo connectors, without certificates (the sandbox adds those).
pub fn connectors() -> anyhow::Result<Vec<Connector>> {
    CONNECTORS
        .iter()
        .map(|(id, name, uras)| {
            Ok(Connector {
                id: (*id).into(),
                name: (*name).into(),
                certificate_sha256: None,
                acts_for: uras
                    .iter()
                    .map(|u| Ura::parse(u))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// The test citizen who says yes to every option.
pub const BSN_PERMIT_ALL: &str = "900203638";
/// The test citizen who lets GPs and pharmacies make data available, and nobody else.
pub const BSN_GP_AND_PHARMACY: &str = "900203663";
/// The test citizen who says no to every option.
pub const BSN_DENY_ALL: &str = "900203651";

/// Loads the demo data into `store`.
pub async fn load(store: &Store, catalogue: &Catalogue) -> anyhow::Result<()> {
    let providers: Vec<Provider> = PROVIDERS
        .iter()
        .map(|(ura, name, t)| {
            Ok(Provider {
                ura: Ura::parse(ura)?,
                name: (*name).into(),
                organisation_type: OrgType::parse(t)?,
            })
        })
        .collect::<Result<_, otv_core::IdError>>()?;
    store.upsert_providers(&providers).await?;
    for connector in connectors()? {
        store.upsert_connector(&connector).await?;
    }

    /// How a demo citizen answers one option.
    type Choice = fn(&ConsentOption) -> Effect;
    let citizens: [(&str, Choice); 3] = [
        (BSN_PERMIT_ALL, |_| Effect::Permit),
        (BSN_DENY_ALL, |_| Effect::Deny),
        (BSN_GP_AND_PHARMACY, |o| {
            if matches!(o.holder.as_str(), "DH-HA" | "DH-APO") {
                Effect::Permit
            } else {
                Effect::Deny
            }
        }),
    ];
    for (bsn, effect_of) in citizens {
        let bsn = Bsn::parse(bsn)?;
        store
            .upsert_citizen(&bsn, &CitizenDetails::default())
            .await?;
        if store.profile(&bsn).await?.is_empty() {
            let now = Utc::now();
            let answers: Vec<Answer> = catalogue
                .options()
                .iter()
                .map(|o| Answer {
                    key: AnswerKey {
                        holder: Party::Category(o.holder.clone()),
                        data_category: o.data_category.clone(),
                        consulter: Party::Category(o.consulter.clone()),
                    },
                    effect: effect_of(o),
                    valid_from: now,
                    valid_until: None,
                    state: AnswerState::Active,
                    provenance: Provenance {
                        recorded_at: now,
                        channel: Channel::Portal,
                        actor: Actor::Citizen,
                        catalogue_version: catalogue.version().into(),
                    },
                })
                .collect();
            let audit = AuditEvent {
                at: now,
                event: "profile-change".into(),
                actor: "operator:demo".into(),
                channel: Some(Channel::Portal.as_str().into()),
                details: serde_json::json!({ "answers": answers.len(), "source": "otv demo" }),
                ..AuditEvent::default()
            };
            store.record_answers(&bsn, &answers, &audit).await?;
        }
        let subscriptions: Vec<NewSubscription> = PROVIDERS
            .iter()
            .filter(|(_, _, t)| matches!(*t, "Z3" | "J8" | "V6" | "L1"))
            .map(|(ura, _, t)| {
                Ok(NewSubscription {
                    bsn: bsn.clone(),
                    birth_date: None,
                    holder_ura: Ura::parse(ura)?,
                    holder_type: OrgType::parse(t)?,
                    connector_id: "demo-lsp".into(),
                    source_system: format!("2.16.840.1.113883.2.4.6.6.{ura}.1"),
                    gateway_system: "2.16.840.1.113883.2.4.6.6.90000001".into(),
                    endpoint: "https://localhost:8443/notify".into(),
                    payload: "application/fhir+json".into(),
                })
            })
            .collect::<Result<_, otv_core::IdError>>()?;
        store.insert_subscriptions(&subscriptions).await?;
    }
    Ok(())
}
