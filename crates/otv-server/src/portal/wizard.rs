//! Changing the choices (keuzes wijzigen), PRODUCT.md §4: the three choices of the leaflet as
//! shortcuts, per-option answers, and the EU category on its own step.
//!
//! 1. `/keuzes/wijzigen`: all / certain / none.
//!    "All" is yes to every option except the separate (EU) category; "none" is no to every
//!    option, the EU category included (saved at once).
//! 2. `/keuzes/wijzigen/per-soort` ("certain"): yes or no per option, grouped by the holder
//!    category (who makes data available) with one question per consulting category.
//! 3. `/keuzes/wijzigen/europa`: the EU category, asked on its own (also reachable alone).
//!
//! Earlier steps travel as hidden fields (no JavaScript, nothing kept on the server between
//! steps); the last step saves everything as one change through `Backend::record_answers`
//! (one audit record, one outbox row, one receipt), with the session's channel (`portal`, or
//! `representative`) and actor. Only options whose answer changes are recorded. Answers of a
//! citizen under 16 are recorded `pending-guardian` (they count once a parent or guardian
//! confirms them).

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use otv_core::{
    Answer, AnswerKey, AnswerState, Catalogue, ConsentOption, Effect, Party, Provenance,
};
use serde::Deserialize;

use super::choices::{
    category_name, current, data_words, field_name, options_of, regular_consulters,
    separate_consulters, standing_effect,
};
use super::error::PortalError;
use super::layout::Layout;
use super::session::{Citizen, CsrfForm, Fields};
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of the wizard.
    pub(crate) struct WizardText {
        title: "Keuzes wijzigen" / "Change my choices",
        step1_legend: "Welke keuze past bij u?" / "Which choice suits you?",
        step1_intro: "U kunt uw keuze altijd weer veranderen." / "You can always change your choice again.",
        all_label: "Al mijn zorgaanbieders mogen mijn medische gegevens beschikbaar stellen" / "All my care providers may make my medical data available",
        all_hint: "Andere zorgaanbieders mogen uw gegevens elektronisch opvragen, maar alleen als dat nodig is voor uw behandeling. Zorgaanbieders in andere EU-landen vragen wij u apart." / "Other care providers may request your data electronically, but only when it is needed for your treatment. We ask you separately about care providers in other EU countries.",
        certain_label: "Bepaalde zorgaanbieders mogen mijn medische gegevens beschikbaar stellen" / "Certain care providers may make my medical data available",
        certain_hint: "U kiest per soort zorgaanbieder wie uw gegevens beschikbaar mag stellen, en aan wie." / "For each kind of care provider you choose who may make your data available, and to whom.",
        none_label: "Geen enkele zorgaanbieder mag mijn medische gegevens beschikbaar stellen" / "No care provider may make my medical data available",
        none_hint: "Andere zorgaanbieders kunnen uw gegevens dan niet elektronisch opvragen. U wordt wel net zo goed behandeld." / "Other care providers then cannot request your data electronically. You will still be treated just as well.",
        next: "Volgende" / "Next",
        save: "Keuzes opslaan" / "Save my choices",
        err_choice: "Kies een van de drie keuzes." / "Choose one of the three options.",
        err_eu: "Kies ja of nee." / "Choose yes or no.",
        step2_title: "Kies per soort zorgaanbieder" / "Choose for each kind of care provider",
        step2_intro: "Bij elke vraag kiest u ja of nee. Een vraag zonder antwoord blijft zoals hij was. Geen antwoord betekent: nee." / "Answer yes or no for each question. A question you leave open stays as it was. No answer means: no.",
        step2_holder_before: "Mogen zij uw" / "May they make your",
        step2_holder_after: "beschikbaar stellen aan de zorgaanbieders hieronder?" / "available to the care providers below?",
        yes: "Ja" / "Yes",
        no: "Nee" / "No",
        eu_title: "Zorgaanbieders in andere EU-landen" / "Care providers in other EU countries",
        eu_legend: "Mogen uw zorgaanbieders uw medische gegevens beschikbaar stellen aan zorgaanbieders in andere landen van de Europese Unie?" / "May your care providers make your medical data available to care providers in other countries of the European Union?",
        eu_hint: "Bijvoorbeeld als u op vakantie ziek wordt. Dit vragen wij altijd apart. Het geldt voor al uw zorgaanbieders." / "For example if you fall ill on holiday. We always ask this separately. It applies to all your care providers.",
        eu_mixed: "Nu verschilt dit per soort zorgaanbieder. Uw antwoord hier geldt voor alle soorten." / "At the moment this differs per kind of care provider. Your answer here applies to all kinds.",
        saved_title: "Uw keuzes zijn opgeslagen" / "Your choices have been saved",
        saved_none: "Er is niets veranderd: uw keuzes waren al zo." / "Nothing changed: your choices were already like this.",
        saved_pending: "Omdat u jonger bent dan 16 jaar, tellen uw keuzes pas als uw ouder of voogd ze bevestigt. Tot dan mag geen zorgaanbieder uw gegevens beschikbaar stellen op basis van deze keuzes." / "Because you are younger than 16, your choices count only once your parent or guardian confirms them. Until then no care provider may make your data available based on these choices.",
        saved_pending_link: "Laat uw ouder of voogd uw keuzes bevestigen" / "Have your parent or guardian confirm your choices",
        saved_assisted: "Hebt u in otv een e-mailadres opgegeven? Dan sturen wij u een bericht over deze wijziging. U ziet hem ook als u zelf inlogt in otv." / "If you gave otv your e-mail address, we will send you a message about this change. You also see it when you log in to otv yourself.",
        saved_representative: "Wij laten de persoon voor wie u dit regelt weten wat er is veranderd." / "We let the person you act for know what has changed.",
        saved_receipt: "Download het bewijs van deze wijziging" / "Download the receipt of this change",
        saved_receipt_hint: "Een ondertekend bestand dat laat zien wat u hebt gekozen en wanneer." / "A signed file that shows what you chose and when.",
        saved_overview: "Bekijk al uw keuzes" / "See all your choices",
        minors_note: "U bent jonger dan 16 jaar. Uw keuzes tellen pas als uw ouder of voogd ze bevestigt." / "You are younger than 16. Your choices count only once your parent or guardian confirms them.",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/keuzes/wijzigen", get(step1).post(after_step1))
        .route(
            "/keuzes/wijzigen/per-soort",
            axum::routing::post(after_step2),
        )
        .route("/keuzes/wijzigen/europa", get(eu_only).post(save))
        .route("/keuzes/opgeslagen", get(saved))
}

/// The three choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    All,
    Certain,
    None,
    /// Only the EU question (reached directly).
    EuOnly,
}

impl Choice {
    fn parse(s: &str) -> Option<Choice> {
        match s {
            "all" => Some(Choice::All),
            "certain" => Some(Choice::Certain),
            "none" => Some(Choice::None),
            "eu-only" => Some(Choice::EuOnly),
            _ => None,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Choice::All => "all",
            Choice::Certain => "certain",
            Choice::None => "none",
            Choice::EuOnly => "eu-only",
        }
    }
}

/// What the citizen wants for each option they answered: the choice made into per-option
/// effects. Pure, so it can be tested against PRODUCT.md §4 directly.
pub(crate) fn wanted(
    catalogue: &Catalogue,
    choice: Choice,
    per_option: &BTreeMap<String, Effect>,
    eu: Option<Effect>,
) -> Vec<(ConsentOption, Effect)> {
    let separate: Vec<_> = separate_consulters(catalogue)
        .into_iter()
        .map(|c| c.code.clone())
        .collect();
    catalogue
        .options()
        .iter()
        .filter_map(|o| {
            let is_separate = separate.contains(&o.consulter);
            let effect = match (choice, is_separate) {
                (Choice::None, _) => Some(Effect::Deny),
                (_, true) => eu,
                (Choice::All, false) => Some(Effect::Permit),
                (Choice::Certain, false) => per_option.get(&field_name(o)).copied(),
                (Choice::EuOnly, false) => None,
            };
            effect.map(|e| (o.clone(), e))
        })
        .collect()
}

/// The answers to record: those of `wanted` that change the profile (no standing answer, a
/// different effect, or another state than the one they will get). They are compared with
/// what the citizen said last ([`current`]): a child's proposal waiting for a parent if there
/// is one, else the answer in force. A child who wants what is in force already (and has no
/// other proposal for it) proposes nothing.
pub(crate) fn changes(
    profile: &[Answer],
    wanted: &[(ConsentOption, Effect)],
    state: AnswerState,
    provenance: &Provenance,
    now: DateTime<Utc>,
) -> Vec<Answer> {
    wanted
        .iter()
        .filter(|(o, effect)| {
            let existing = current(profile, o);
            let confirms_what_is_in_force = |a: &Answer| {
                state == AnswerState::PendingGuardian && a.state == AnswerState::Active
            };
            standing_effect(existing) != Some(*effect)
                || existing.is_some_and(|a| a.state != state && !confirms_what_is_in_force(a))
        })
        .map(|(o, effect)| Answer {
            key: AnswerKey {
                holder: Party::Category(o.holder.clone()),
                data_category: o.data_category.clone(),
                consulter: Party::Category(o.consulter.clone()),
            },
            effect: *effect,
            valid_from: now,
            valid_until: None,
            state,
            provenance: provenance.clone(),
        })
        .collect()
}

fn effect_of(value: &str) -> Option<Effect> {
    match value {
        "yes" => Some(Effect::Permit),
        "no" => Some(Effect::Deny),
        _ => None,
    }
}

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The per-option answers in a form (`o.…` fields with `yes` or `no`), only for options of
/// the catalogue.
fn per_option(catalogue: &Catalogue, fields: &Fields) -> BTreeMap<String, Effect> {
    catalogue
        .options()
        .iter()
        .filter_map(|o| {
            let name = field_name(o);
            let effect = field(fields, &name).and_then(effect_of)?;
            Some((name, effect))
        })
        .collect()
}

// --- Step 1 ----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/wizard_choice.html")]
struct ChoicePage {
    l: Layout,
    t: &'static WizardText,
    error: bool,
    minor: bool,
}

async fn step1(citizen: Citizen) -> Result<Response, PortalError> {
    render_step1(&citizen, false)
}

fn render_step1(citizen: &Citizen, error: bool) -> Result<Response, PortalError> {
    let t = WizardText::get(citizen.lang());
    let html = ChoicePage {
        l: citizen.layout(t.title),
        t,
        error,
        minor: citizen.answer_state() == AnswerState::PendingGuardian,
    }
    .render()?;
    let status = if error {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(html)).into_response())
}

async fn after_step1(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, PortalError> {
    match field(&fields, "choice").and_then(Choice::parse) {
        Some(Choice::None) => record(&state, &citizen, Choice::None, &BTreeMap::new(), None).await,
        Some(Choice::All) => {
            render_eu(&state, &citizen, Choice::All, &BTreeMap::new(), false).await
        }
        Some(Choice::Certain) => render_step2(&state, &citizen).await,
        Some(Choice::EuOnly) | None => render_step1(&citizen, true),
    }
}

// --- Step 2: per option ----------------------------------------------------------------------

/// One question of step 2: may holders of one category make data available to one
/// consulting category.
struct OptionQuestion {
    field: String,
    consulter: String,
    /// `yes`, `no`, or empty when unanswered.
    current: &'static str,
}

/// The questions of one holder category.
struct HolderGroup {
    id: String,
    holder: String,
    data: String,
    questions: Vec<OptionQuestion>,
}

#[derive(Template)]
#[template(path = "portal/wizard_options.html")]
struct OptionsPage {
    l: Layout,
    t: &'static WizardText,
    groups: Vec<HolderGroup>,
}

async fn render_step2(state: &AppState, citizen: &Citizen) -> Result<Response, PortalError> {
    let t = WizardText::get(citizen.lang());
    let lang = citizen.lang();
    let profile = state.store.profile(citizen.subject()).await?;
    let catalogue = &state.catalogue;
    let regular: Vec<_> = regular_consulters(catalogue)
        .into_iter()
        .map(|c| c.code.clone())
        .collect();
    let groups = catalogue
        .holder_categories()
        .iter()
        .map(|h| HolderGroup {
            id: format!("h-{}", h.code),
            holder: category_name(&h.name, h.name_en.as_deref(), lang),
            data: data_words(catalogue, h.data_category.as_str(), lang),
            questions: options_of(catalogue, h)
                .filter(|o| regular.contains(&o.consulter))
                .map(|o| {
                    let consulter = catalogue
                        .consulting_categories()
                        .iter()
                        .find(|c| c.code == o.consulter)
                        .map_or_else(
                            || o.consulter.to_string(),
                            |c| category_name(&c.name, c.name_en.as_deref(), lang),
                        );
                    OptionQuestion {
                        field: field_name(o),
                        consulter,
                        current: match standing_effect(current(&profile, o)) {
                            Some(Effect::Permit) => "yes",
                            Some(Effect::Deny) => "no",
                            None => "",
                        },
                    }
                })
                .collect(),
        })
        .collect();
    let html = OptionsPage {
        l: citizen.layout(t.step2_title),
        t,
        groups,
    }
    .render()?;
    Ok(Html(html).into_response())
}

async fn after_step2(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, PortalError> {
    let answers = per_option(&state.catalogue, &fields);
    render_eu(&state, &citizen, Choice::Certain, &answers, false).await
}

// --- Step 3: the EU category -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/wizard_eu.html")]
struct EuPage {
    l: Layout,
    t: &'static WizardText,
    choice: &'static str,
    /// Earlier answers, carried as hidden fields.
    carried: Vec<(String, &'static str)>,
    /// `yes`, `no`, or empty.
    current: &'static str,
    mixed: bool,
    error: bool,
}

async fn eu_only(State(state): State<AppState>, citizen: Citizen) -> Result<Response, PortalError> {
    render_eu(&state, &citizen, Choice::EuOnly, &BTreeMap::new(), false).await
}

async fn render_eu(
    state: &AppState,
    citizen: &Citizen,
    choice: Choice,
    carried: &BTreeMap<String, Effect>,
    error: bool,
) -> Result<Response, PortalError> {
    let t = WizardText::get(citizen.lang());
    let profile = state.store.profile(citizen.subject()).await?;
    let separate: Vec<_> = separate_consulters(&state.catalogue)
        .into_iter()
        .map(|c| c.code.clone())
        .collect();
    let effects: Vec<Option<Effect>> = state
        .catalogue
        .options()
        .iter()
        .filter(|o| separate.contains(&o.consulter))
        .map(|o| standing_effect(current(&profile, o)))
        .collect();
    let all = |e: Effect| !effects.is_empty() && effects.iter().all(|x| *x == Some(e));
    let (current, mixed) = if all(Effect::Permit) {
        ("yes", false)
    } else if all(Effect::Deny) {
        ("no", false)
    } else {
        ("", effects.iter().any(Option::is_some))
    };
    let html = EuPage {
        l: citizen.layout(t.eu_title),
        t,
        choice: choice.code(),
        carried: carried
            .iter()
            .map(|(k, e)| {
                let v = if *e == Effect::Permit { "yes" } else { "no" };
                (k.clone(), v)
            })
            .collect(),
        current,
        mixed,
        error,
    }
    .render()?;
    let status = if error {
        axum::http::StatusCode::BAD_REQUEST
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(html)).into_response())
}

async fn save(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, PortalError> {
    let Some(choice) = field(&fields, "choice")
        .and_then(Choice::parse)
        .filter(|c| *c != Choice::None)
    else {
        return render_step1(&citizen, true);
    };
    let carried = per_option(&state.catalogue, &fields);
    let Some(eu) = field(&fields, "eu").and_then(effect_of) else {
        return render_eu(&state, &citizen, choice, &carried, true).await;
    };
    record(&state, &citizen, choice, &carried, Some(eu)).await
}

/// Records the choice as one change and sends the browser to the confirmation.
async fn record(
    state: &AppState,
    citizen: &Citizen,
    choice: Choice,
    per_option: &BTreeMap<String, Effect>,
    eu: Option<Effect>,
) -> Result<Response, PortalError> {
    // An assisted session (Samen-naar-MijnMitz) checks the citizen's lock again at saving.
    if let Some(refused) = super::assisted::refusal(state, citizen).await? {
        return Ok(refused);
    }
    let now = state.clock.now();
    let profile = state.store.profile(citizen.subject()).await?;
    let answer_state = citizen.answer_state();
    let provenance = Provenance {
        recorded_at: now,
        channel: citizen.channel(),
        actor: citizen.actor(state),
        catalogue_version: state.catalogue.version().to_owned(),
    };
    let wanted = wanted(&state.catalogue, choice, per_option, eu);
    let answers = changes(&profile, &wanted, answer_state, &provenance, now);
    if answers.is_empty() {
        return Ok(Redirect::to("/keuzes/opgeslagen").into_response());
    }
    let mut audit = citizen.audit_event(state, "profile-change");
    audit.details = serde_json::json!({
        "choice": choice.code(),
        "answers": answers.len(),
        "state": answer_state.as_str(),
    });
    let seq = state
        .store
        .record_answers(citizen.subject(), &answers, &audit)
        .await?;
    Ok(Redirect::to(&format!("/keuzes/opgeslagen?wijziging={seq}")).into_response())
}

// --- Confirmation ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct SavedQuery {
    wijziging: Option<i64>,
}

#[derive(Template)]
#[template(path = "portal/wizard_saved.html")]
struct SavedPage {
    l: Layout,
    t: &'static WizardText,
    changed: bool,
    pending: bool,
    representative: bool,
    /// Recorded with a professional (an assisted session): the citizen is told.
    assisted: bool,
    /// The receipt of the change (`/bewijs/<seq>`), when it is the citizen's own.
    receipt: Option<String>,
}

async fn saved(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(q): Query<SavedQuery>,
) -> Result<Response, PortalError> {
    let t = WizardText::get(citizen.lang());
    // A change number from the URL is shown only if it is a change of this profile.
    let change = match q.wijziging {
        Some(seq) => state
            .store
            .change_record(citizen.subject(), seq)
            .await?
            .map(|_| seq),
        None => None,
    };
    let html = SavedPage {
        l: citizen.layout(if change.is_some() {
            t.saved_title
        } else {
            t.title
        }),
        t,
        changed: change.is_some(),
        pending: citizen.answer_state() == AnswerState::PendingGuardian,
        representative: citizen.is_representative(),
        assisted: citizen.assisted().is_some(),
        receipt: change.map(super::receipt::href),
    }
    .render()?;
    Ok(Html(html).into_response())
}

#[cfg(test)]
mod tests {
    use otv_core::{Actor, Channel};

    use super::*;

    fn provenance() -> Provenance {
        Provenance {
            recorded_at: Utc::now(),
            channel: Channel::Portal,
            actor: Actor::Citizen,
            catalogue_version: "test".into(),
        }
    }

    #[test]
    fn all_is_yes_to_every_option_except_the_eu_category_which_is_asked() {
        let c = Catalogue::default_catalogue();
        let w = wanted(&c, Choice::All, &BTreeMap::new(), None);
        assert_eq!(w.len(), 42);
        assert!(
            w.iter()
                .all(|(o, e)| *e == Effect::Permit && o.consulter.as_str() != "RPZAC200")
        );
        let w = wanted(&c, Choice::All, &BTreeMap::new(), Some(Effect::Deny));
        assert_eq!(w.len(), 49);
        assert!(
            w.iter()
                .filter(|(o, _)| o.consulter.as_str() == "RPZAC200")
                .all(|(_, e)| *e == Effect::Deny)
        );
    }

    #[test]
    fn none_is_no_to_every_option() {
        let c = Catalogue::default_catalogue();
        let w = wanted(&c, Choice::None, &BTreeMap::new(), Some(Effect::Permit));
        assert_eq!(w.len(), 49);
        assert!(w.iter().all(|(_, e)| *e == Effect::Deny));
    }

    #[test]
    fn certain_takes_the_answered_options_only() {
        let c = Catalogue::default_catalogue();
        let mut per = BTreeMap::new();
        per.insert("o.DH-APO.GGC013.RPZAC001".to_owned(), Effect::Permit);
        per.insert("o.DH-HA.GGC002.RPZAC104".to_owned(), Effect::Deny);
        per.insert("o.DH-HA.GGC002.RPZAC200".to_owned(), Effect::Permit);
        let w = wanted(&c, Choice::Certain, &per, None);
        let names: Vec<_> = w.iter().map(|(o, e)| (field_name(o), *e)).collect();
        assert_eq!(
            names,
            vec![
                ("o.DH-HA.GGC002.RPZAC104".to_owned(), Effect::Deny),
                ("o.DH-APO.GGC013.RPZAC001".to_owned(), Effect::Permit),
            ],
            "the EU option is never taken from the per-option step"
        );
    }

    #[test]
    fn only_changed_answers_are_recorded_and_a_pending_one_is_replaced_by_an_active_one() {
        let c = Catalogue::default_catalogue();
        let now = Utc::now();
        let all = wanted(&c, Choice::All, &BTreeMap::new(), Some(Effect::Deny));
        let first = changes(&[], &all, AnswerState::Active, &provenance(), now);
        assert_eq!(first.len(), 49);
        assert!(changes(&first, &all, AnswerState::Active, &provenance(), now).is_empty());
        let none = wanted(&c, Choice::None, &BTreeMap::new(), None);
        assert_eq!(
            changes(&first, &none, AnswerState::Active, &provenance(), now).len(),
            42,
            "the EU answers were already no"
        );
        let pending = changes(&[], &all, AnswerState::PendingGuardian, &provenance(), now);
        assert_eq!(
            changes(&pending, &all, AnswerState::Active, &provenance(), now).len(),
            49
        );
        // A child compares with their proposal if there is one, else with what is in force.
        assert!(
            changes(
                &first,
                &all,
                AnswerState::PendingGuardian,
                &provenance(),
                now
            )
            .is_empty(),
            "a child who wants what is in force proposes nothing"
        );
        let mut both = first.clone();
        both.extend(changes(
            &first,
            &none,
            AnswerState::PendingGuardian,
            &provenance(),
            now,
        ));
        assert_eq!(both.len(), 49 + 42);
        assert!(
            changes(
                &both,
                &none,
                AnswerState::PendingGuardian,
                &provenance(),
                now
            )
            .is_empty(),
            "the same proposal again changes nothing"
        );
        assert_eq!(
            changes(
                &both,
                &all,
                AnswerState::PendingGuardian,
                &provenance(),
                now
            )
            .len(),
            42,
            "a new proposal replaces the waiting one"
        );
    }
}
