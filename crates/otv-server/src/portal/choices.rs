//! What the overview and the wizard share: the catalogue's categories in the citizen's
//! language, and the current answer to each option.
//!
//! Names come from the catalogue: `name`, and `name_en` on English pages where the catalogue
//! gives one (otherwise the Dutch name).

use otv_core::catalogue::{ConsultingCategory, HolderCategory};
use otv_core::{Answer, AnswerState, Catalogue, ConsentOption, Effect, Party};

use super::text::Lang;

/// A catalogue name in `lang`: the English name where the catalogue gives one, else the Dutch.
pub(crate) fn category_name(name: &str, name_en: Option<&str>, lang: Lang) -> String {
    match (lang, name_en) {
        (Lang::En, Some(en)) => en.to_owned(),
        _ => name.to_owned(),
    }
}

/// A data category's name in `lang` ("Behandelgegevens", "Treatment data"); an unknown code
/// stays a code.
pub(crate) fn data_category_name(catalogue: &Catalogue, code: &str, lang: Lang) -> String {
    catalogue
        .data_categories()
        .iter()
        .find(|d| d.code.as_str() == code)
        .map_or_else(
            || code.to_owned(),
            |d| category_name(&d.name, d.name_en.as_deref(), lang),
        )
}

/// The data category in words that fit in a sentence ("uw behandelgegevens").
pub(crate) fn data_words(catalogue: &Catalogue, code: &str, lang: Lang) -> String {
    data_category_name(catalogue, code, lang).to_lowercase()
}

/// The consulting categories "all my providers" covers (not the separate EU category).
pub(crate) fn regular_consulters(catalogue: &Catalogue) -> Vec<&ConsultingCategory> {
    catalogue
        .consulting_categories()
        .iter()
        .filter(|c| !c.separate)
        .collect()
}

/// The consulting categories asked on their own (the EU category).
pub(crate) fn separate_consulters(catalogue: &Catalogue) -> Vec<&ConsultingCategory> {
    catalogue
        .consulting_categories()
        .iter()
        .filter(|c| c.separate)
        .collect()
}

/// The options of one holder category.
pub(crate) fn options_of<'a>(
    catalogue: &'a Catalogue,
    holder: &'a HolderCategory,
) -> impl Iterator<Item = &'a ConsentOption> {
    catalogue
        .options()
        .iter()
        .filter(move |o| o.holder == holder.code)
}

/// Whether `answer` is the category answer to `option`.
pub(crate) fn answers_option(answer: &Answer, option: &ConsentOption) -> bool {
    answer.key.holder == Party::Category(option.holder.clone())
        && answer.key.consulter == Party::Category(option.consulter.clone())
        && answer.key.data_category == option.data_category
}

/// What the citizen said last about `option`: the proposal waiting for a parent or guardian
/// if there is one, else the answer in force (whatever its state). What the wizard shows and
/// compares against: a child changes their proposal, an adult the answer in force.
pub(crate) fn current<'a>(profile: &'a [Answer], option: &ConsentOption) -> Option<&'a Answer> {
    proposal(profile, option).or_else(|| in_force(profile, option))
}

/// The current answer to `option` that is not a proposal (whatever its state): the one the
/// decision reads. A profile holds at most one per key (`Backend::record_answers`).
pub(crate) fn in_force<'a>(profile: &'a [Answer], option: &ConsentOption) -> Option<&'a Answer> {
    profile
        .iter()
        .find(|a| answers_option(a, option) && a.state != AnswerState::PendingGuardian)
}

/// The proposal (`pending-guardian`) to `option` waiting for a parent or guardian, if any. A
/// profile holds at most one per key, beside the answer in force.
pub(crate) fn proposal<'a>(profile: &'a [Answer], option: &ConsentOption) -> Option<&'a Answer> {
    profile
        .iter()
        .find(|a| answers_option(a, option) && a.state == AnswerState::PendingGuardian)
}

/// The form field of an option: `o.<holder>.<data category>.<consulter>`.
pub(crate) fn field_name(option: &ConsentOption) -> String {
    format!(
        "o.{}.{}.{}",
        option.holder, option.data_category, option.consulter
    )
}

/// What the citizen said about an option, as far as it still counts: the effect of an answer
/// that is active or waiting for a guardian; `None` for no answer, or one expired or withdrawn.
pub(crate) fn standing_effect(answer: Option<&Answer>) -> Option<Effect> {
    answer
        .filter(|a| matches!(a.state, AnswerState::Active | AnswerState::PendingGuardian))
        .map(|a| a.effect)
}
