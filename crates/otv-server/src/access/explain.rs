//! A decision explained: the deciding answer as JSON, and the decision in words, in English
//! and in Dutch at language level B1 (PRODUCT.md §15, "explained decisions in plain words").
//!
//! Pure: everything comes from the decision, its deciding answer and the catalogue's names.

use chrono::{DateTime, Datelike, Utc};
use otv_core::{Actor, Answer, Catalogue, Channel, Effect, Party, Reason};
use otv_wire::Decision;
use serde::Serialize;
use utoipa::ToSchema;

use crate::closed_question::Decided;

/// otv's decision for one data category, as XACML names it. `NotApplicable` is never
/// answered: when no answer applies, the default policy decides (Deny in opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum OtvDecision {
    /// The holder may make the data available.
    Permit,
    /// The holder may not.
    Deny,
    /// otv could not decide because of an error inside otv; treat as Deny.
    Indeterminate,
}

impl From<Decision> for OtvDecision {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Permit => OtvDecision::Permit,
            Decision::Deny => OtvDecision::Deny,
            Decision::Indeterminate => OtvDecision::Indeterminate,
        }
    }
}

/// The reason code of an Indeterminate decision.
pub const INTERNAL_ERROR: &str = "internal-error";

/// One side of an answer's key: a category of the catalogue, or one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PartyView {
    /// The category code (e.g. `DH-HA`, `RPZAC001`), when the answer is about a category.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The provider's URA, when the answer is about one provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ura: Option<String>,
    /// The category's name in the catalogue (Dutch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Who recorded the deciding answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordedBy {
    /// The patient.
    Citizen,
    /// A representative, parent or guardian of the patient.
    Representative,
    /// A professional at a provider organisation.
    Provider {
        /// The responsible organisation.
        ura: String,
        /// The professional's UZI number.
        #[serde(skip_serializing_if = "Option::is_none")]
        uzi: Option<String>,
        /// The professional's role.
        #[serde(skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// The mandated assistant who recorded it for the professional.
        #[serde(skip_serializing_if = "Option::is_none")]
        mandated: Option<String>,
    },
}

/// The answer that decided: what it is about, what it says, when, through which channel and by
/// whom it was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DecidingAnswer {
    /// The holder side of the answer.
    pub holder: PartyView,
    /// The data category the answer is about (it covers its subcategories).
    pub data_category: String,
    /// The consulter side of the answer.
    pub consulter: PartyView,
    /// `permit` (yes) or `deny` (no).
    pub effect: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// How it was recorded: `portal`, `samen-naar-mijnmitz`, `dossierhoudersknop`,
    /// `raadplegersknop` (emergency consent), `migration`, `representative`,
    /// `guardian-confirmation`.
    pub channel: String,
    /// Who recorded it.
    pub recorded_by: RecordedBy,
    /// In force from.
    pub valid_from: DateTime<Utc>,
    /// In force until (emergency consent), if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// The catalogue version in force when it was recorded.
    pub catalogue_version: String,
}

/// A decision in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Explanation {
    /// In English.
    pub en: String,
    /// In Dutch (language level B1).
    pub nl: String,
}

/// The JSON view of the deciding answer.
pub fn deciding_answer(catalogue: &Catalogue, a: &Answer) -> DecidingAnswer {
    DecidingAnswer {
        holder: party(catalogue, &a.key.holder, Side::Holder),
        data_category: a.key.data_category.to_string(),
        consulter: party(catalogue, &a.key.consulter, Side::Consulter),
        effect: a.effect.as_str().into(),
        recorded_at: a.provenance.recorded_at,
        channel: a.provenance.channel.as_str().into(),
        recorded_by: match &a.provenance.actor {
            Actor::Citizen => RecordedBy::Citizen,
            Actor::Representative { .. } => RecordedBy::Representative,
            Actor::Provider {
                ura,
                uzi,
                role,
                mandated,
            } => RecordedBy::Provider {
                ura: ura.to_string(),
                uzi: uzi.as_ref().map(ToString::to_string),
                role: role.as_ref().map(ToString::to_string),
                mandated: mandated.as_ref().map(ToString::to_string),
            },
        },
        valid_from: a.valid_from,
        valid_until: a.valid_until,
        catalogue_version: a.provenance.catalogue_version.clone(),
    }
}

#[derive(Clone, Copy)]
enum Side {
    Holder,
    Consulter,
}

fn party(catalogue: &Catalogue, p: &Party, side: Side) -> PartyView {
    match p {
        Party::Provider(ura) => PartyView {
            category: None,
            ura: Some(ura.to_string()),
            name: None,
        },
        Party::Category(code) => {
            let name = match side {
                Side::Holder => catalogue
                    .holder_categories()
                    .iter()
                    .find(|c| &c.code == code)
                    .map(|c| c.name.clone()),
                Side::Consulter => catalogue
                    .consulting_categories()
                    .iter()
                    .find(|c| &c.code == code)
                    .map(|c| c.name.clone()),
            };
            PartyView {
                category: Some(code.to_string()),
                ura: None,
                name,
            }
        }
    }
}

/// The decision for one data category in words: why, and which answer decided.
pub fn explain(catalogue: &Catalogue, d: &Decided) -> Explanation {
    let Some(reason) = d.reason else {
        return Explanation {
            en: "otv could not decide because of an error inside otv. Treat this as no.".into(),
            nl: "otv kon geen besluit nemen door een fout in otv. Behandel dit als nee.".into(),
        };
    };
    let (mut en, mut nl) = (reason.explain().to_owned(), reason_nl(reason).to_owned());
    if let Some(a) = &d.deciding {
        let (answer_en, answer_nl) = answer_in_words(catalogue, a);
        en.push(' ');
        en.push_str(&answer_en);
        nl.push(' ');
        nl.push_str(&answer_nl);
    }
    Explanation { en, nl }
}

/// The reasons of otv-core in Dutch, language level B1: short sentences, everyday words.
fn reason_nl(reason: Reason) -> &'static str {
    match reason {
        Reason::PermittedByAnswer => {
            "De patiënt heeft hier ja op gezegd. Er is geen preciezer antwoord dat iets anders zegt."
        }
        Reason::DeniedByAnswer => "De patiënt heeft hier nee op gezegd.",
        Reason::DenyWinsOverPermit => {
            "De patiënt heeft ja en nee gezegd op vragen die hier even goed bij passen. Dan telt nee."
        }
        Reason::NoAnswerDefaultDeny => {
            "De patiënt heeft deze vraag niet beantwoord. Geen antwoord betekent nee."
        }
        Reason::NoAnswerDefaultPermit => {
            "De patiënt heeft deze vraag niet beantwoord. Volgens de opt-out-regel betekent geen antwoord ja."
        }
        Reason::UnknownHolderOrganisationType => {
            "Het soort zorgaanbieder dat de gegevens heeft, staat niet in de lijst met toestemmingsvragen. Daarom is het antwoord nee."
        }
        Reason::UnknownConsulterOrganisationType => {
            "Het soort zorgaanbieder dat de gegevens wil inzien, staat niet in de lijst met toestemmingsvragen. Daarom is het antwoord nee."
        }
        Reason::UnknownDataCategory => {
            "Dit soort gegevens staat niet in de lijst met toestemmingsvragen. Daarom is het antwoord nee."
        }
    }
}

/// "The deciding answer: …" in both languages.
fn answer_in_words(catalogue: &Catalogue, a: &Answer) -> (String, String) {
    let holder = party(catalogue, &a.key.holder, Side::Holder);
    let consulter = party(catalogue, &a.key.consulter, Side::Consulter);
    let data = catalogue
        .data_categories()
        .iter()
        .find(|c| c.code == a.key.data_category)
        .map_or_else(|| a.key.data_category.to_string(), |c| c.name.clone());
    let name_en = |p: &PartyView| match (&p.name, &p.category, &p.ura) {
        (Some(name), _, _) => name.clone(),
        (None, Some(code), _) => format!("category {code}"),
        (_, _, Some(ura)) => format!("the provider with URA {ura}"),
        _ => "?".into(),
    };
    let name_nl = |p: &PartyView| match (&p.name, &p.category, &p.ura) {
        (Some(name), _, _) => name.clone(),
        (None, Some(code), _) => format!("categorie {code}"),
        (_, _, Some(ura)) => format!("de zorgaanbieder met URA {ura}"),
        _ => "?".into(),
    };
    let (yes_en, may_en, yes_nl) = match a.effect {
        Effect::Permit => ("yes", "may", "ja"),
        Effect::Deny => ("no", "may not", "nee"),
    };
    let recorded = a.provenance.recorded_at;
    let (channel_en, channel_nl) = channel_in_words(a.provenance.channel);
    let mut en = format!(
        "The deciding answer is {yes_en}: {holder} {may_en} make {data} available to {consulter}. It was recorded on {date_en} {channel_en}.",
        holder = name_en(&holder),
        consulter = name_en(&consulter),
        date_en = recorded.format("%-d %B %Y"),
    );
    let mut nl = format!(
        "Het antwoord dat telt, is {yes_nl}. Het gaat over het delen van {data_nl} door {holder} met {consulter}. Dit antwoord is gegeven op {date_nl} {channel_nl}.",
        data_nl = data.to_lowercase(),
        holder = name_nl(&holder),
        consulter = name_nl(&consulter),
        date_nl = date_nl(recorded),
    );
    if let Some(until) = a.valid_until {
        en.push_str(&format!(
            " It applies until {}.",
            until.format("%-d %B %Y %H:%M UTC")
        ));
        nl.push_str(&format!(
            " Het geldt tot {} {} (UTC).",
            date_nl(until),
            until.format("%H:%M")
        ));
    }
    (en, nl)
}

fn channel_in_words(c: Channel) -> (&'static str, &'static str) {
    match c {
        Channel::Portal => (
            "by the patient in the portal",
            "door de patiënt in het portaal",
        ),
        Channel::SamenNaarMijnmitz => (
            "by the patient together with a care professional",
            "door de patiënt samen met een zorgverlener",
        ),
        Channel::Dossierhoudersknop => (
            "at the provider that holds the records (dossierhoudersknop)",
            "bij de zorgaanbieder die de gegevens heeft (dossierhoudersknop)",
        ),
        Channel::Raadplegersknop => (
            "as emergency consent (raadplegersknop)",
            "als toestemming in een noodgeval (raadplegersknop)",
        ),
        Channel::Migration => (
            "in the provider's earlier records, taken over into otv",
            "in de eerdere administratie van de zorgaanbieder, overgenomen in otv",
        ),
        Channel::Representative => ("by a representative", "door een vertegenwoordiger"),
        Channel::GuardianConfirmation => (
            "and confirmed by a parent or guardian",
            "en bevestigd door een ouder of voogd",
        ),
    }
}

fn date_nl(t: DateTime<Utc>) -> String {
    const MONTHS: [&str; 12] = [
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ];
    format!("{} {} {}", t.day(), MONTHS[t.month0() as usize], t.year())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use otv_core::{AnswerKey, AnswerState, CategoryCode, DataCategory, Provenance};

    use super::*;

    fn answer(effect: Effect, channel: Channel, until: Option<DateTime<Utc>>) -> Answer {
        let at = Utc.with_ymd_and_hms(2026, 5, 3, 10, 0, 0).unwrap();
        Answer {
            key: AnswerKey {
                holder: Party::Category(CategoryCode::parse("DH-HA").unwrap()),
                data_category: DataCategory::parse("GGC002").unwrap(),
                consulter: Party::Category(CategoryCode::parse("RPZAC005").unwrap()),
            },
            effect,
            valid_from: at,
            valid_until: until,
            state: AnswerState::Active,
            provenance: Provenance {
                recorded_at: at,
                channel,
                actor: Actor::Citizen,
                catalogue_version: "otv-2026.1".into(),
            },
        }
    }

    fn decided(reason: Option<Reason>, deciding: Option<Answer>) -> Decided {
        Decided {
            data_category: DataCategory::parse("GGC013").unwrap(),
            decision: Decision::Permit,
            reason,
            deciding,
        }
    }

    #[test]
    fn a_decision_by_an_answer_names_the_answer_in_both_languages() {
        let c = Catalogue::default_catalogue();
        let e = explain(
            &c,
            &decided(
                Some(Reason::PermittedByAnswer),
                Some(answer(Effect::Permit, Channel::Portal, None)),
            ),
        );
        assert!(e.en.starts_with("The patient said yes"), "{}", e.en);
        assert!(
            e.en.contains("recorded on 3 May 2026 by the patient in the portal"),
            "{}",
            e.en
        );
        assert!(
            e.en.contains(
                "Huisartsen en huisartsenposten may make Behandelgegevens available to Apotheken"
            ),
            "{}",
            e.en
        );
        assert!(e.en.contains("Huisartsen en huisartsenposten"), "{}", e.en);
        assert!(
            e.nl.starts_with("De patiënt heeft hier ja op gezegd."),
            "{}",
            e.nl
        );
        assert!(e.nl.contains("gegeven op 3 mei 2026"), "{}", e.nl);
        assert!(
            e.nl.contains(
                "het delen van behandelgegevens door Huisartsen en huisartsenposten met Apotheken"
            ),
            "{}",
            e.nl
        );
    }

    #[test]
    fn emergency_consent_says_until_when() {
        let c = Catalogue::default_catalogue();
        let until = Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap();
        let e = explain(
            &c,
            &decided(
                Some(Reason::PermittedByAnswer),
                Some(answer(
                    Effect::Permit,
                    Channel::Raadplegersknop,
                    Some(until),
                )),
            ),
        );
        assert!(
            e.en.contains("emergency consent") && e.en.contains("until 4 May 2026"),
            "{}",
            e.en
        );
        assert!(
            e.nl.contains("noodgeval") && e.nl.contains("tot 4 mei 2026"),
            "{}",
            e.nl
        );
    }

    #[test]
    fn every_reason_and_an_error_have_words() {
        let c = Catalogue::default_catalogue();
        for reason in [
            Reason::PermittedByAnswer,
            Reason::DeniedByAnswer,
            Reason::DenyWinsOverPermit,
            Reason::NoAnswerDefaultDeny,
            Reason::NoAnswerDefaultPermit,
            Reason::UnknownHolderOrganisationType,
            Reason::UnknownConsulterOrganisationType,
            Reason::UnknownDataCategory,
        ] {
            let e = explain(&c, &decided(Some(reason), None));
            assert!(!e.en.is_empty() && !e.nl.is_empty());
        }
        let e = explain(&c, &decided(None, None));
        assert!(e.en.contains("Treat this as no") && e.nl.contains("als nee"));
    }
}
