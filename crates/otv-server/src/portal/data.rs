//! Download my data (`/mijn-gegevens`): everything otv holds about the citizen
//! (`Backend::export_citizen`: details, settings, every answer with its history, the providers
//! registered for them, the consent checks) as a readable page and as JSON
//! (`/mijn-gegevens.json`, a download). Each export is audited (`export`) before it is shown;
//! when the audit record cannot be written, nothing is shown.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use otv_core::{AnswerState, Channel};
use otv_store::{CheckNotice, CitizenExport};

use super::error::PortalError;
use super::history::{HistoryText, Words, provider_names, uras_of, when};
use super::layout::Layout;
use super::session::Citizen;
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of "my data".
    pub(crate) struct DataText {
        title: "Mijn gegevens" / "My data",
        intro: "Dit is alles wat otv over u bewaart. Uw medische gegevens staan hier niet: die bewaart otv nooit." / "This is everything otv keeps about you. Your medical data are not here: otv never keeps them.",
        download: "Download alles als bestand (JSON)" / "Download everything as a file (JSON)",
        download_hint: "Dit bestand kunt u bewaren of aan iemand anders geven. Het is bedoeld voor computers, maar u kunt het ook met een teksteditor openen." / "You can keep this file or give it to someone else. It is meant for computers, but you can also open it with a text editor.",
        nothing: "otv bewaart nog geen gegevens over u." / "otv does not keep any data about you yet.",
        details_title: "Uw persoonsgegevens" / "Your personal details",
        name: "Naam" / "Name",
        birth_date: "Geboortedatum" / "Date of birth",
        email: "E-mailadres" / "E-mail address",
        known_since: "Bekend bij otv sinds" / "Known to otv since",
        pseudonym: "Uw code in het logboek" / "Your code in the log",
        pseudonym_hint: "Wij schrijven uw BSN nooit in het logboek, alleen deze code." / "We never write your BSN in the log, only this code.",
        not_given: "Niet bekend" / "Not known",
        settings_title: "Uw instellingen" / "Your settings",
        notify_changes: "E-mail als iemand anders uw keuzes verandert" / "E-mail when someone else changes your choices",
        notify_checks: "E-mail over controles van uw toestemming" / "E-mail about checks of your consent",
        checks_off: "Nee" / "No",
        checks_immediately: "Meteen" / "At once",
        checks_daily: "Eén keer per dag" / "Once a day",
        lock_provider: "Zorgverleners mogen uw keuzes niet vastleggen" / "Care providers may not record your choices",
        refuse_emergency: "Geen noodtoestemming" / "No emergency consent",
        answers_title: "Uw keuzes, ook de oude" / "Your choices, including old ones",
        answers_none: "Er zijn geen keuzes vastgelegd." / "No choices have been recorded.",
        current: "Geldt nu" / "In force now",
        waiting: "Wacht op uw ouder of voogd, telt nog niet" / "Waiting for your parent or guardian, does not count yet",
        declined: "Niet bevestigd door uw ouder of voogd, heeft nooit geteld" / "Not confirmed by your parent or guardian, never counted",
        replaced: "Vervangen op" / "Replaced on",
        col_answer: "Keuze" / "Choice",
        col_recorded: "Vastgelegd" / "Recorded",
        col_status: "Status" / "Status",
        subscriptions_title: "Zorgaanbieders die uw gegevens hebben" / "Care providers that hold your data",
        subscriptions_none: "Er zijn geen zorgaanbieders aangemeld." / "No care providers are registered.",
        registered: "aangemeld op" / "registered on",
        checks_title: "Controles van uw toestemming" / "Checks of your consent",
        checks_count: "Aantal controles in het logboek:" / "Number of checks in the log:",
        checks_more: "De controles ziet u per periode bij Geschiedenis, en allemaal in het bestand." / "You can see the checks per period under History, and all of them in the file.",
        yes: "Ja" / "Yes",
        no: "Nee" / "No",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/mijn-gegevens", get(page))
        .route("/mijn-gegevens.json", get(json))
}

/// Audits the export, then reads it.
async fn export(
    state: &AppState,
    citizen: &Citizen,
    format: &str,
) -> Result<Option<CitizenExport>, PortalError> {
    let mut event = citizen.audit_event(state, "export");
    event.details = serde_json::json!({ "format": format });
    state.store.audit(&event).await?;
    Ok(state.store.export_citizen(citizen.subject()).await?)
}

async fn json(State(state): State<AppState>, citizen: Citizen) -> Result<Response, PortalError> {
    let export = export(&state, &citizen, "json").await?;
    let body = serde_json::to_string_pretty(&export)
        .map_err(|e| PortalError::Internal(format!("export: {e}")))?;
    Ok((
        [
            (CONTENT_TYPE, "application/json; charset=utf-8"),
            (
                CONTENT_DISPOSITION,
                "attachment; filename=\"otv-mijn-gegevens.json\"",
            ),
        ],
        body,
    )
        .into_response())
}

struct AnswerRow {
    answer: String,
    recorded: String,
    status: String,
}

#[derive(Template)]
#[template(path = "portal/data.html")]
struct DataPage {
    l: Layout,
    t: &'static DataText,
    known: bool,
    name: String,
    birth_date: String,
    email: String,
    known_since: String,
    pseudonym: String,
    notify_changes: &'static str,
    notify_checks: &'static str,
    lock_provider: &'static str,
    refuse_emergency: &'static str,
    answers: Vec<AnswerRow>,
    subscriptions: Vec<String>,
    checks: usize,
}

async fn page(State(state): State<AppState>, citizen: Citizen) -> Result<Response, PortalError> {
    let t = DataText::get(citizen.lang());
    let ht = HistoryText::get(citizen.lang());
    let export = export(&state, &citizen, "page").await?;
    let yes_no = |b: bool| if b { t.yes } else { t.no };
    let mut page = DataPage {
        l: citizen.layout(t.title),
        t,
        known: export.is_some(),
        name: String::new(),
        birth_date: String::new(),
        email: String::new(),
        known_since: String::new(),
        pseudonym: String::new(),
        notify_changes: "",
        notify_checks: "",
        lock_provider: "",
        refuse_emergency: "",
        answers: Vec::new(),
        subscriptions: Vec::new(),
        checks: 0,
    };
    if let Some(e) = export {
        let uras = e.answers.iter().flat_map(|a| uras_of(&a.answer)).collect();
        let names = provider_names(&state.store, uras).await?;
        let w = Words {
            t: ht,
            lang: citizen.lang(),
            catalogue: &state.catalogue,
            names: &names,
        };
        page.name = e.details.name.unwrap_or_else(|| t.not_given.into());
        page.birth_date = e
            .details
            .birth_date
            .map_or_else(|| t.not_given.into(), |d| d.format("%d-%m-%Y").to_string());
        page.email = e.details.email.unwrap_or_else(|| t.not_given.into());
        page.known_since = when(e.details.known_since);
        page.pseudonym = e.pseudonym;
        page.notify_changes = yes_no(e.settings.notify_changes);
        page.notify_checks = match e.settings.notify_checks {
            CheckNotice::Off => t.checks_off,
            CheckNotice::Immediately => t.checks_immediately,
            CheckNotice::Daily => t.checks_daily,
        };
        page.lock_provider = yes_no(e.settings.lock_provider_changes);
        page.refuse_emergency = yes_no(e.settings.refuse_emergency);
        page.answers = e
            .answers
            .iter()
            .map(|a| AnswerRow {
                answer: w.answer(&a.answer),
                recorded: format!(
                    "{} ({}, {})",
                    when(a.answer.provenance.recorded_at),
                    w.channel(a.answer.provenance.channel),
                    w.actor(&a.answer.provenance.actor)
                ),
                status: match (a.replaced_at, a.answer.state, a.answer.provenance.channel) {
                    // A declined proposal is stored as history only (`decline_pending`).
                    (Some(_), AnswerState::Withdrawn, Channel::GuardianConfirmation) => {
                        t.declined.to_owned()
                    }
                    (Some(r), _, _) => format!("{} {}", t.replaced, when(r)),
                    (None, AnswerState::PendingGuardian, _) => t.waiting.to_owned(),
                    (None, _, _) => t.current.to_owned(),
                },
            })
            .collect();
        page.subscriptions = e
            .subscriptions
            .iter()
            .map(|s| {
                format!(
                    "{} ({}), {} {}",
                    s.holder_name.as_deref().unwrap_or(ht.provider),
                    s.holder_ura,
                    t.registered,
                    when(s.registered_at)
                )
            })
            .collect();
        page.checks = e.consent_checks.len();
    }
    Ok(Html(page.render()?).into_response())
}
