//! The decision (closed question, PRODUCT.md §5): may this holder make these data about this
//! patient available to this consulter, at this moment?
//!
//! Pure: the caller hands in the catalogue, the default policy, the patient's answers and the
//! question, and gets one [`Outcome`] per data category asked, in order. The rules, in short:
//! only answers in force at *t* apply; a holder or consulter side matches the individual URA or
//! the category of the organisation type; an answer for a data category covers its descendants;
//! the most specific applicable answers win (individual holder, then individual consulter, then
//! exact data category); among them deny beats permit; no applicable answer means the default
//! policy. An unknown organisation type is a deny with its own reason.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::Catalogue;
use crate::ids::{DataCategory, OrgType, Ura};
use crate::profile::{Answer, Effect, Party};

/// What "no applicable answer" means.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    /// No answer is no (Mitz today).
    #[default]
    OptIn,
    /// No answer is yes; an explicit no stays no (EHDS opt-out regime).
    OptOut,
}

/// A provider organisation as it appears in a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// Its URA.
    pub ura: Ura,
    /// Its organisation type.
    pub organisation_type: OrgType,
}

/// The closed question, reduced to what the decision needs. Purpose and professional are
/// checked and audited by the interface that received the question.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    /// The dossier holder asking whether it may make data available.
    pub holder: &'a Organisation,
    /// The consulting provider that would receive the data.
    pub consulter: &'a Organisation,
    /// The moment the question is about.
    pub at: DateTime<Utc>,
}

/// Why the decision is what it is. The codes are stable: they appear in audit records and on the
/// wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The most specific applicable answer says yes.
    PermittedByAnswer,
    /// The most specific applicable answer says no.
    DeniedByAnswer,
    /// Equally specific answers disagree; no wins.
    DenyWinsOverPermit,
    /// No answer applies and the default policy is opt-in.
    NoAnswerDefaultDeny,
    /// No answer applies and the default policy is opt-out.
    NoAnswerDefaultPermit,
    /// The holder's organisation type is not in the catalogue.
    UnknownHolderOrganisationType,
    /// The consulter's organisation type is not in the catalogue.
    UnknownConsulterOrganisationType,
    /// The data category asked is not in the catalogue.
    UnknownDataCategory,
}

impl Reason {
    /// The reason code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::PermittedByAnswer => "permitted-by-answer",
            Reason::DeniedByAnswer => "denied-by-answer",
            Reason::DenyWinsOverPermit => "deny-wins-over-permit",
            Reason::NoAnswerDefaultDeny => "no-answer-default-deny",
            Reason::NoAnswerDefaultPermit => "no-answer-default-permit",
            // PRODUCT.md §5 names this reason `unknown-organisation-type`; which side was unknown
            // is in the explanation.
            Reason::UnknownHolderOrganisationType | Reason::UnknownConsulterOrganisationType => {
                "unknown-organisation-type"
            }
            Reason::UnknownDataCategory => "unknown-data-category",
        }
    }

    /// One sentence in plain English for people reading a decision.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::PermittedByAnswer => {
                "The patient said yes to this, and no more specific answer says otherwise."
            }
            Reason::DeniedByAnswer => "The patient said no to this.",
            Reason::DenyWinsOverPermit => {
                "The patient gave a yes and a no that apply equally; no wins."
            }
            Reason::NoAnswerDefaultDeny => {
                "The patient has not answered this question; no answer means no."
            }
            Reason::NoAnswerDefaultPermit => {
                "The patient has not answered this question; under the opt-out policy no answer means yes."
            }
            Reason::UnknownHolderOrganisationType => {
                "The holder's organisation type is not in the consent catalogue, so the answer is no."
            }
            Reason::UnknownConsulterOrganisationType => {
                "The consulting provider's organisation type is not in the consent catalogue, so the answer is no."
            }
            Reason::UnknownDataCategory => {
                "The data category is not in the consent catalogue, so the answer is no."
            }
        }
    }
}

/// The decision for one data category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<'a> {
    /// The data category asked.
    pub data_category: DataCategory,
    /// Permit or deny.
    pub effect: Effect,
    /// Why.
    pub reason: Reason,
    /// The answer that decided, if an answer decided.
    pub deciding: Option<&'a Answer>,
}

/// Specificity as a number whose order is the lexicographic order of PRODUCT.md §5 step 4:
/// individual holder (4), then individual consulter (2), then exact data category (1).
fn specificity(answer: &Answer, asked: &DataCategory) -> u8 {
    (u8::from(answer.key.holder.is_individual()) << 2)
        | (u8::from(answer.key.consulter.is_individual()) << 1)
        | u8::from(&answer.key.data_category == asked)
}

/// The parties an answer must name to apply to a question: the holder's URA or its holder
/// category, and the consulter's URA or its consulting category. Answers naming anyone else never
/// apply, so a store may hand [`decide`] only the answers that name these sides (the closed
/// question reads no more than that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    /// The holder as an individual provider, then as its holder category.
    pub holder: [Party; 2],
    /// The consulter as an individual provider, then as its consulting category.
    pub consulter: [Party; 2],
}

impl Sides {
    /// The sides of `question`; `None` when an organisation type is not in the catalogue (the
    /// decision is then a deny that no answer changes).
    pub fn of(catalogue: &Catalogue, question: &Question<'_>) -> Option<Sides> {
        let holder = catalogue.holder_category_of(&question.holder.organisation_type)?;
        let consulter = catalogue.consulting_category_of(&question.consulter.organisation_type)?;
        Some(Sides {
            holder: [
                Party::Provider(question.holder.ura.clone()),
                Party::Category(holder.code.clone()),
            ],
            consulter: [
                Party::Provider(question.consulter.ura.clone()),
                Party::Category(consulter.code.clone()),
            ],
        })
    }

    /// Whether `answer` names these sides (it may still not apply: time and data category).
    pub fn named_by(&self, answer: &Answer) -> bool {
        self.holder.contains(&answer.key.holder) && self.consulter.contains(&answer.key.consulter)
    }
}

/// Decides every data category of the question, in the order given.
pub fn decide<'a>(
    catalogue: &Catalogue,
    policy: DefaultPolicy,
    answers: &'a [Answer],
    question: &Question<'_>,
    data_categories: &[DataCategory],
) -> Vec<Outcome<'a>> {
    let sides = Sides::of(catalogue, question);
    data_categories
        .iter()
        .map(|c| decide_between(catalogue, policy, answers, question, sides.as_ref(), c))
        .collect()
}

/// Decides one data category.
pub fn decide_one<'a>(
    catalogue: &Catalogue,
    policy: DefaultPolicy,
    answers: &'a [Answer],
    question: &Question<'_>,
    asked: &DataCategory,
) -> Outcome<'a> {
    let sides = Sides::of(catalogue, question);
    decide_between(catalogue, policy, answers, question, sides.as_ref(), asked)
}

/// Decides one data category; `sides` are the question's (worked out once per question).
fn decide_between<'a>(
    catalogue: &Catalogue,
    policy: DefaultPolicy,
    answers: &'a [Answer],
    question: &Question<'_>,
    sides: Option<&Sides>,
    asked: &DataCategory,
) -> Outcome<'a> {
    let verdict = |effect, reason, deciding| Outcome {
        data_category: asked.clone(),
        effect,
        reason,
        deciding,
    };
    let Some(sides) = sides else {
        let reason = if catalogue
            .holder_category_of(&question.holder.organisation_type)
            .is_none()
        {
            Reason::UnknownHolderOrganisationType
        } else {
            Reason::UnknownConsulterOrganisationType
        };
        return verdict(Effect::Deny, reason, None);
    };
    if !catalogue.knows_data_category(asked) {
        return verdict(Effect::Deny, Reason::UnknownDataCategory, None);
    }

    // One pass: keep the best specificity seen and, at that specificity, the latest-recorded
    // permit and deny.
    let mut best: Option<u8> = None;
    let mut permit: Option<&Answer> = None;
    let mut deny: Option<&Answer> = None;
    for answer in answers {
        if !answer.in_force_at(question.at)
            || !sides.named_by(answer)
            || !catalogue.covers(&answer.key.data_category, asked)
        {
            continue;
        }
        let s = specificity(answer, asked);
        if best.is_some_and(|b| s < b) {
            continue;
        }
        if best.is_none_or(|b| s > b) {
            best = Some(s);
            permit = None;
            deny = None;
        }
        let slot = match answer.effect {
            Effect::Permit => &mut permit,
            Effect::Deny => &mut deny,
        };
        if slot.is_none_or(|held| answer.provenance.recorded_at > held.provenance.recorded_at) {
            *slot = Some(answer);
        }
    }

    match (deny, permit) {
        (Some(d), Some(_)) => verdict(Effect::Deny, Reason::DenyWinsOverPermit, Some(d)),
        (Some(d), None) => verdict(Effect::Deny, Reason::DeniedByAnswer, Some(d)),
        (None, Some(p)) => verdict(Effect::Permit, Reason::PermittedByAnswer, Some(p)),
        (None, None) => match policy {
            DefaultPolicy::OptIn => verdict(Effect::Deny, Reason::NoAnswerDefaultDeny, None),
            DefaultPolicy::OptOut => verdict(Effect::Permit, Reason::NoAnswerDefaultPermit, None),
        },
    }
}
