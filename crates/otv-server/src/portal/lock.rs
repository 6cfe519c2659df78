//! Lock settings (`/vergrendelen`, PRODUCT.md §8): the citizen may refuse changes made
//! together with a care provider (hand-off: Samen-naar-MijnMitz, dossierhoudersknop), and may
//! separately refuse emergency consents (raadplegersknop). Each switch is explained with its
//! consequences in plain words. The hand-off and emergency interfaces read these settings
//! (`Backend::citizen_settings`) and refuse what the citizen locked.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use otv_store::SettingsChange;
use serde::Deserialize;

use super::error::PortalError;
use super::layout::Layout;
use super::session::{Citizen, CsrfForm};
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of the lock settings.
    pub(crate) struct LockText {
        title: "Vergrendelen" / "Locks",
        intro: "U kunt zelf bepalen of anderen uw keuzes mogen vastleggen of veranderen. Dit staat standaard uit." / "You decide whether others may record or change your choices. Both are off unless you switch them on.",
        provider_legend: "Mag een zorgverlener samen met u uw keuzes vastleggen?" / "May a care provider record your choices together with you?",
        provider_explained: "Soms legt u uw keuzes vast bij uw zorgverlener, bijvoorbeeld bij de apotheek of de huisarts. Die zorgverlener legt dan een keuze voor u vast. U krijgt daar altijd bericht van." / "Sometimes you record your choices at your care provider, for example at the pharmacy or the GP. That care provider then records a choice for you. You are always told about it.",
        provider_open: "Ja, dat mag (standaard)" / "Yes, that is allowed (default)",
        provider_locked: "Nee, alleen ik verander mijn keuzes, hier op deze website" / "No, only I change my choices, here on this website",
        provider_consequence: "Let op: als u dit vergrendelt, kan uw zorgverlener uw keuzes niet meer voor u vastleggen. Ook niet als u daar zelf om vraagt. U moet dan zelf inloggen op deze website." / "Please note: if you lock this, your care provider can no longer record your choices for you. Not even when you ask for it. You then have to log in on this website yourself.",
        emergency_legend: "Mag een zorgverlener in een noodgeval tijdelijk uw gegevens bekijken?" / "May a care provider look at your data for a short time in an emergency?",
        emergency_explained: "Als u met spoed zorg nodig hebt, kan de zorgverlener die u helpt een noodtoestemming vastleggen. Die geldt hooguit 72 uur, alleen voor die zorgverlener. U krijgt daar direct bericht van." / "If you need urgent care, the care provider helping you can record an emergency consent. It lasts at most 72 hours and only for that care provider. You are told about it at once.",
        emergency_open: "Ja, dat mag (standaard)" / "Yes, that is allowed (default)",
        emergency_locked: "Nee, ik wil nooit een noodtoestemming" / "No, I never want an emergency consent",
        emergency_consequence: "Let op: als u dit weigert, kan een zorgverlener in een noodgeval uw medische gegevens niet bekijken, tenzij u daar eerder zelf toestemming voor gaf. Dat kan gevolgen hebben voor uw behandeling." / "Please note: if you refuse this, a care provider cannot look at your medical data in an emergency, unless you gave consent for that yourself before. That can affect your treatment.",
        save: "Opslaan" / "Save",
        saved: "Uw keuze is opgeslagen." / "Your choice has been saved.",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/vergrendelen", get(show).post(save))
}

#[derive(Debug, Default, Deserialize)]
struct Shown {
    #[serde(default)]
    opgeslagen: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/lock.html")]
struct LockPage {
    l: Layout,
    t: &'static LockText,
    lock_provider_changes: bool,
    refuse_emergency: bool,
    saved: bool,
}

async fn show(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(q): Query<Shown>,
) -> Result<Response, PortalError> {
    let t = LockText::get(citizen.lang());
    let s = state.store.citizen_settings(citizen.subject()).await?;
    let page = LockPage {
        l: citizen.layout(t.title),
        t,
        lock_provider_changes: s.lock_provider_changes,
        refuse_emergency: s.refuse_emergency,
        saved: q.opgeslagen.is_some(),
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Debug, Deserialize)]
struct LockForm {
    provider: String,
    emergency: String,
}

/// `open` or `locked`; anything else is not from this form.
fn locked(value: &str) -> Result<bool, PortalError> {
    match value {
        "open" => Ok(false),
        "locked" => Ok(true),
        _ => Err(PortalError::BadRequest("lock value")),
    }
}

async fn save(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<LockForm>,
) -> Result<Response, PortalError> {
    let change = SettingsChange {
        lock_provider_changes: Some(locked(&form.provider)?),
        refuse_emergency: Some(locked(&form.emergency)?),
        ..SettingsChange::default()
    };
    state
        .store
        .update_citizen_settings(
            citizen.subject(),
            &change,
            &citizen.audit_event(&state, "settings-lock"),
        )
        .await?;
    Ok(Redirect::to("/vergrendelen?opgeslagen=1").into_response())
}
