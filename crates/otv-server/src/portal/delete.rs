//! Delete my profile (`/profiel-verwijderen`, PRODUCT.md §10): explains what goes and what
//! stays, asks again (a confirmation box), and requires a fresh login (at most
//! [`FRESH_LOGIN_MINUTES`] old); an older session is sent through login again first.
//!
//! `Backend::delete_citizen` removes, in one transaction with its audit record, the personal
//! data, settings, answers (with their history), waiting outbox rows and every session of the
//! citizen; audit records stay (they hold only the pseudonym); registrations by providers stay
//! (see the store's documentation). Afterwards this browser's session has ended too.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::Page;
use super::error::PortalError;
use super::layout::Layout;
use super::session::{Citizen, CsrfForm, SESSION_COOKIE, set_cookie};
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of "delete my profile".
    pub(crate) struct DeleteText {
        title: "Profiel verwijderen" / "Delete my profile",
        intro: "U kunt uw profiel bij otv laten verwijderen. Lees eerst wat dat betekent." / "You can have your profile at otv deleted. Please read first what that means.",
        goes_title: "Wat wij verwijderen" / "What we delete",
        goes_1: "Al uw keuzes, ook de oude keuzes." / "All your choices, including old ones.",
        goes_2: "Uw naam, geboortedatum en e-mailadres." / "Your name, date of birth and e-mail address.",
        goes_3: "Uw instellingen voor meldingen en vergrendelen." / "Your settings for notifications and locks.",
        stays_title: "Wat blijft bestaan" / "What stays",
        stays_1: "Het logboek van wie wat heeft gedaan. Daarin staat uw BSN niet, alleen een code. De wet verplicht ons dit logboek 5 jaar te bewaren." / "The log of who did what. It does not contain your BSN, only a code. The law requires us to keep this log for 5 years.",
        stays_2: "De aanmeldingen van zorgaanbieders die gegevens over u hebben. Die zijn van de zorgaanbieder, niet van u. Wij laten hen weten dat uw keuzes zijn verwijderd." / "The registrations of care providers that hold data about you. They belong to the care provider, not to you. We tell them that your choices have been deleted.",
        consequence_title: "Wat dit voor u betekent" / "What this means for you",
        consequence: "Zonder keuzes geeft u geen toestemming. Zorgaanbieders mogen uw medische gegevens dan niet via het landelijke netwerk met elkaar delen. Ook niet in een noodgeval, tenzij een zorgverlener dan een noodtoestemming vastlegt. U kunt later altijd opnieuw keuzes vastleggen." / "Without choices you give no consent. Care providers may then not share your medical data with each other through the national network. Not even in an emergency, unless a care provider records an emergency consent. You can always record choices again later.",
        export_first: "Wilt u eerst een kopie van uw gegevens? Download dan eerst mijn gegevens." / "Would you like a copy of your data first? Then download my data first.",
        export_link: "Naar mijn gegevens" / "To my data",
        relogin_title: "Log eerst opnieuw in" / "Please log in again first",
        relogin: "Om zeker te weten dat u het zelf bent, vragen wij u opnieuw in te loggen. Daarna kunt u uw profiel verwijderen. Kom na het inloggen terug naar deze pagina." / "To be sure it is you, we ask you to log in again. After that you can delete your profile. Come back to this page after logging in.",
        relogin_button: "Opnieuw inloggen" / "Log in again",
        confirm_legend: "Weet u het zeker?" / "Are you sure?",
        confirm_label: "Ja, verwijder mijn profiel en al mijn keuzes" / "Yes, delete my profile and all my choices",
        confirm_error: "Vink het vakje aan als u uw profiel wilt verwijderen." / "Tick the box if you want to delete your profile.",
        delete_button: "Profiel verwijderen" / "Delete profile",
        cancel: "Niet verwijderen, terug naar mijn keuzes" / "Do not delete, back to my choices",
        done_title: "Uw profiel is verwijderd" / "Your profile has been deleted",
        done: "Wij hebben uw keuzes en persoonsgegevens verwijderd. U bent uitgelogd." / "We have deleted your choices and personal details. You have been logged out.",
        done_again: "U kunt altijd opnieuw inloggen en nieuwe keuzes vastleggen." / "You can always log in again and record new choices.",
        login_link: "Naar inloggen" / "To log in",
    }
}

/// A login older than this many minutes is not fresh enough to delete the profile.
pub const FRESH_LOGIN_MINUTES: i64 = 5;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/profiel-verwijderen", get(show).post(delete))
        .route("/profiel-verwijderen/opnieuw-inloggen", post(relogin))
}

fn fresh(citizen: &Citizen) -> bool {
    Utc::now() - citizen.login_at() <= Duration::minutes(FRESH_LOGIN_MINUTES)
}

#[derive(Template)]
#[template(path = "portal/delete.html")]
struct DeletePage {
    l: Layout,
    t: &'static DeleteText,
    fresh: bool,
    error: bool,
}

fn render(citizen: &Citizen, error: bool) -> Result<Response, PortalError> {
    let t = DeleteText::get(citizen.lang());
    let page = DeletePage {
        l: citizen.layout(t.title),
        t,
        fresh: fresh(citizen),
        error,
    };
    let status = if error {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

async fn show(citizen: Citizen) -> Result<Response, PortalError> {
    render(&citizen, false)
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/delete_done.html")]
struct DonePage {
    l: Layout,
    t: &'static DeleteText,
}

fn end_session(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", Some(0)));
    response
}

async fn delete(
    State(state): State<AppState>,
    citizen: Citizen,
    page: Page,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, PortalError> {
    if !fresh(&citizen) {
        // Too old: the page now asks to log in again; nothing is deleted.
        return Ok(Redirect::to("/profiel-verwijderen").into_response());
    }
    if form.confirm.as_deref() != Some("yes") {
        return render(&citizen, true);
    }
    state
        .store
        .delete_citizen(
            citizen.subject(),
            &citizen.audit_event(&state, "profile-delete"),
        )
        .await?;
    let t = DeleteText::get(citizen.lang());
    let done = DonePage {
        l: Layout::public(&page, t.done_title),
        t,
    };
    Ok(end_session(Html(done.render()?).into_response()))
}

#[derive(Debug, Deserialize)]
struct Empty {}

/// Ends this session so that the citizen logs in again (a fresh login).
async fn relogin(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PortalError> {
    state
        .store
        .delete_portal_session(citizen.token_sha256())
        .await?;
    state
        .store
        .audit(&citizen.audit_event(&state, "portal-logout"))
        .await?;
    Ok(end_session(Redirect::to("/inloggen").into_response()))
}
