//! The overview of the current choices (`/keuzes`), in plain words: what the profile comes
//! down to (all / certain / none / nothing recorded), then per holder category (who has the
//! data) the answer for each consulting category (who may receive them), the EU category on
//! its own, and answers about one provider (e.g. emergency consents) apart. It says what "no
//! answer" means under the configured policy, and marks emergency consents and answers taken
//! over from a provider. Each row shows the answer in force (what the decision reads); a
//! child's proposal that waits for a parent or guardian is shown beside it, never instead of
//! it (the store keeps both for one key).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use otv_core::{Actor, Answer, AnswerState, Channel, DefaultPolicy, Effect};

use super::choices::{
    category_name, data_words, in_force, options_of, proposal, regular_consulters,
    separate_consulters, standing_effect,
};
use super::error::PortalError;
use super::history::{HistoryText, Words, provider_names, uras_of, when};
use super::layout::Layout;
use super::session::Citizen;
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of the overview.
    pub(crate) struct OverviewText {
        title: "Mijn keuzes" / "My choices",
        summary_nothing: "U hebt nog geen keuzes vastgelegd." / "You have not recorded any choices yet.",
        summary_all: "Al uw zorgaanbieders mogen uw medische gegevens beschikbaar stellen, als dat nodig is voor uw behandeling." / "All your care providers may make your medical data available, when it is needed for your treatment.",
        summary_none: "Geen enkele zorgaanbieder mag uw medische gegevens beschikbaar stellen." / "No care provider may make your medical data available.",
        summary_certain: "Bepaalde zorgaanbieders mogen uw medische gegevens beschikbaar stellen. Hieronder ziet u welke." / "Certain care providers may make your medical data available. Below you see which.",
        no_answer_opt_in: "Hebt u een vraag niet beantwoord? Dan geldt: nee, die zorgaanbieders mogen uw gegevens niet beschikbaar stellen." / "Did you leave a question unanswered? Then the answer is: no, those care providers may not make your data available.",
        no_answer_opt_out: "Hebt u een vraag niet beantwoord? Dan geldt: ja, die zorgaanbieders mogen uw gegevens beschikbaar stellen. Een nee van u blijft altijd nee." / "Did you leave a question unanswered? Then the answer is: yes, those care providers may make your data available. A no from you always stays no.",
        change: "Keuzes wijzigen" / "Change my choices",
        change_eu: "Alleen dit wijzigen" / "Change only this",
        holders_title: "Per soort zorgaanbieder" / "For each kind of care provider",
        holder_before: "Mogen zij uw" / "May they make your",
        holder_after: "beschikbaar stellen aan:" / "available to:",
        yes: "Ja" / "Yes",
        no: "Nee" / "No",
        open_opt_in: "Geen antwoord (dus nee)" / "No answer (so no)",
        open_opt_out: "Geen antwoord (dus ja)" / "No answer (so yes)",
        pending: "Wacht op bevestiging door uw ouder of voogd. Telt nog niet. Uw nieuwe keuze:" / "Waiting for confirmation by your parent or guardian. Does not count yet. Your new choice:",
        pending_notice: "Een deel van uw keuzes wacht op bevestiging door uw ouder of voogd. Tot dan tellen ze niet." / "Some of your choices wait for confirmation by your parent or guardian. Until then they do not count.",
        pending_link: "Zo bevestigt uw ouder of voogd uw keuzes" / "How your parent or guardian confirms your choices",
        migrated: "Overgenomen van" / "Taken over from",
        by_provider: "Vastgelegd door" / "Recorded by",
        by_representative: "Vastgelegd door uw vertegenwoordiger" / "Recorded by your representative",
        expired: "Verlopen" / "Expired",
        withdrawn: "Ingetrokken" / "Withdrawn",
        eu_title: "Zorgaanbieders in andere EU-landen" / "Care providers in other EU countries",
        eu_intro: "Mogen uw zorgaanbieders uw medische gegevens beschikbaar stellen aan zorgaanbieders in andere landen van de Europese Unie? Dit vragen wij altijd apart." / "May your care providers make your medical data available to care providers in other countries of the European Union? We always ask this separately.",
        individual_title: "Keuzes over één zorgaanbieder" / "Choices about one care provider",
        individual_intro: "Deze keuzes gaan over één bepaalde zorgaanbieder. Ze gaan voor op de keuzes per soort." / "These choices are about one particular care provider. They come before the choices per kind.",
        emergency: "Noodtoestemming" / "Emergency consent",
        emergency_until: "geldt tot" / "valid until",
        emergency_link: "Bevestig of trek noodtoestemmingen in" / "Confirm or withdraw emergency consents",
        migrated_notice: "Nieuw: een zorgaanbieder heeft keuzes die u eerder bij hen maakte overgenomen in uw profiel. Dat gebeurde alleen voor vragen die u hier nog niet had beantwoord. Overgenomen van:" / "New: a care provider has taken choices you made with them earlier over into your profile. This happened only for questions you had not answered here yet. Taken over from:",
        migrated_check: "Kijk hieronder of dit klopt. Klopt iets niet? Wijzig dan uw keuzes." / "Check below whether this is right. Is something wrong? Then change your choices.",
        migrated_history: "Bekijk wat er is overgenomen" / "See what was taken over",
        migrated_seen: "Ik heb dit gezien" / "I have seen this",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/keuzes", get(overview))
        .route(MIGRATION_SEEN_PATH, axum::routing::post(migration_seen))
}

/// Where the citizen says they have seen the migrated answers.
const MIGRATION_SEEN_PATH: &str = "/keuzes/overgenomen-gezien";

/// The notice about migrated answers (PRODUCT.md §9, "notified on first login"): shown while the
/// profile holds answers in force that a provider migrated after the moment the citizen last
/// said "I have seen this" (or ever, when they never did). Answers the citizen has answered
/// since are their own and no longer count; the button records the moment (audited) and the
/// notice goes until a later migration brings new answers.
fn migrated_providers(
    profile: &[Answer],
    seen: Option<chrono::DateTime<chrono::Utc>>,
    words: &Words<'_>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in profile {
        if a.state != AnswerState::Active
            || a.provenance.channel != Channel::Migration
            || seen.is_some_and(|seen| a.provenance.recorded_at <= seen)
        {
            continue;
        }
        if let Actor::Provider { ura, .. } = &a.provenance.actor {
            let name = words.provider(ura);
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

#[derive(Debug, serde::Deserialize)]
struct SeenForm {}

async fn migration_seen(
    State(state): State<AppState>,
    citizen: Citizen,
    super::session::CsrfForm(SeenForm {}): super::session::CsrfForm<SeenForm>,
) -> Result<Response, PortalError> {
    state
        .store
        .mark_migration_seen(
            citizen.subject(),
            state.clock.now(),
            &citizen.audit_event(&state, "migration-seen"),
        )
        .await?;
    Ok(axum::response::Redirect::to("/keuzes").into_response())
}

/// One answer in a list: what it is about, yes / no / open, and remarks.
struct Row {
    label: String,
    /// `yes`, `no` or `open` (CSS class and the word).
    class: &'static str,
    word: &'static str,
    notes: Vec<String>,
}

/// The answers of one holder category.
struct HolderView {
    id: String,
    name: String,
    data: String,
    rows: Vec<Row>,
}

#[derive(Template)]
#[template(path = "portal/overview.html")]
struct OverviewPage {
    l: Layout,
    t: &'static OverviewText,
    summary: &'static str,
    no_answer: &'static str,
    holders: Vec<HolderView>,
    eu: Vec<Row>,
    individual: Vec<Row>,
    any_pending: bool,
    any_emergency: bool,
    /// The providers whose migrated answers the citizen has not seen yet.
    migrated_news: Vec<String>,
}

/// What the regular (non-EU) category answers come down to.
fn summary(t: &'static OverviewText, effects: &[Option<Effect>]) -> &'static str {
    if effects.iter().all(Option::is_none) {
        t.summary_nothing
    } else if effects.iter().all(|e| *e == Some(Effect::Permit)) {
        t.summary_all
    } else if effects.iter().all(|e| *e == Some(Effect::Deny)) {
        t.summary_none
    } else {
        t.summary_certain
    }
}

async fn overview(
    State(state): State<AppState>,
    citizen: Citizen,
) -> Result<Response, PortalError> {
    let lang = citizen.lang();
    let t = OverviewText::get(lang);
    let profile = state.store.profile(citizen.subject()).await?;
    let catalogue = &state.catalogue;
    let names = provider_names(&state.store, profile.iter().flat_map(uras_of).collect()).await?;
    let words = Words {
        t: HistoryText::get(lang),
        lang,
        catalogue,
        names: &names,
    };
    let seen = state.store.migration_seen_at(citizen.subject()).await?;
    let migrated_news = migrated_providers(&profile, seen, &words);
    let open = match state.policy {
        DefaultPolicy::OptIn => t.open_opt_in,
        DefaultPolicy::OptOut => t.open_opt_out,
    };
    // `answer` is the one in force (never a proposal), `waiting` the proposal beside it.
    let row = |label: String, answer: Option<&Answer>, waiting: Option<&Answer>| -> Row {
        let (class, word) = match standing_effect(answer) {
            Some(Effect::Permit) => ("yes", t.yes),
            Some(Effect::Deny) => ("no", t.no),
            None => ("open", open),
        };
        let mut notes = Vec::new();
        if let Some(a) = answer {
            match a.state {
                AnswerState::PendingGuardian => {}
                AnswerState::Expired => notes.push(t.expired.to_owned()),
                AnswerState::Withdrawn => notes.push(t.withdrawn.to_owned()),
                AnswerState::Active => {}
            }
            match (&a.provenance.actor, a.provenance.channel) {
                (Actor::Provider { ura, .. }, Channel::Migration) => {
                    notes.push(format!("{} {}", t.migrated, words.provider(ura)));
                }
                (Actor::Provider { ura, .. }, _) => {
                    notes.push(format!("{} {}", t.by_provider, words.provider(ura)));
                }
                (Actor::Representative { .. }, Channel::Representative) => {
                    notes.push(t.by_representative.to_owned());
                }
                _ => {}
            }
            if let Some(until) = a.valid_until {
                notes.push(format!("{} {}", t.emergency_until, when(until)));
            }
        }
        if let Some(p) = waiting {
            let said = match p.effect {
                Effect::Permit => t.yes,
                Effect::Deny => t.no,
            };
            notes.insert(0, format!("{} {said}", t.pending));
        }
        Row {
            label,
            class,
            word,
            notes,
        }
    };

    let regular: Vec<_> = regular_consulters(catalogue)
        .into_iter()
        .map(|c| c.code.clone())
        .collect();
    let consulter_name = |code: &otv_core::CategoryCode| {
        catalogue
            .consulting_categories()
            .iter()
            .find(|c| &c.code == code)
            .map_or_else(
                || code.to_string(),
                |c| category_name(&c.name, c.name_en.as_deref(), lang),
            )
    };
    let mut regular_effects = Vec::new();
    let holders = catalogue
        .holder_categories()
        .iter()
        .map(|h| HolderView {
            id: format!("h-{}", h.code),
            name: category_name(&h.name, h.name_en.as_deref(), lang),
            data: data_words(catalogue, h.data_category.as_str(), lang),
            rows: options_of(catalogue, h)
                .filter(|o| regular.contains(&o.consulter))
                .map(|o| {
                    let a = in_force(&profile, o);
                    regular_effects.push(standing_effect(a));
                    row(consulter_name(&o.consulter), a, proposal(&profile, o))
                })
                .collect(),
        })
        .collect();
    let separate: Vec<_> = separate_consulters(catalogue)
        .into_iter()
        .map(|c| c.code.clone())
        .collect();
    let eu = catalogue
        .options()
        .iter()
        .filter(|o| separate.contains(&o.consulter))
        .map(|o| {
            let holder = catalogue
                .holder_categories()
                .iter()
                .find(|h| h.code == o.holder)
                .map_or_else(
                    || o.holder.to_string(),
                    |h| category_name(&h.name, h.name_en.as_deref(), lang),
                );
            row(holder, in_force(&profile, o), proposal(&profile, o))
        })
        .collect();
    let mut any_emergency = false;
    // One row per key: the answer in force with the proposal beside it, or a proposal alone.
    let proposal_for = |key: &otv_core::AnswerKey| {
        profile
            .iter()
            .find(|p| p.state == AnswerState::PendingGuardian && &p.key == key)
    };
    let individual = profile
        .iter()
        .filter(|a| a.key.holder.is_individual() || a.key.consulter.is_individual())
        .filter(|a| {
            a.state != AnswerState::PendingGuardian
                || !profile
                    .iter()
                    .any(|b| b.key == a.key && b.state != AnswerState::PendingGuardian)
        })
        .map(|a| {
            let emergency = a.provenance.channel == Channel::Raadplegersknop;
            any_emergency |= emergency && a.state == AnswerState::Active;
            let label = format!(
                "{} {} {} ({})",
                words.party(&a.key.holder),
                words.t.answer_line_to,
                words.party(&a.key.consulter),
                words.data(a.key.data_category.as_str()),
            );
            let mut r = if a.state == AnswerState::PendingGuardian {
                row(label, None, Some(a))
            } else {
                row(label, Some(a), proposal_for(&a.key))
            };
            if emergency {
                r.notes.insert(0, t.emergency.to_owned());
            }
            r
        })
        .collect();
    let html = OverviewPage {
        l: citizen.layout(t.title),
        t,
        summary: summary(t, &regular_effects),
        no_answer: match state.policy {
            DefaultPolicy::OptIn => t.no_answer_opt_in,
            DefaultPolicy::OptOut => t.no_answer_opt_out,
        },
        holders,
        eu,
        individual,
        any_pending: profile
            .iter()
            .any(|a| a.state == AnswerState::PendingGuardian),
        any_emergency,
        migrated_news,
    }
    .render()?;
    Ok(Html(html).into_response())
}
