//! Terms of use (gebruiksvoorwaarden), versioned: after login, a person who has not accepted
//! the configured version (`portal.terms_version`) sees them and must accept them (POST)
//! before any other page. The acceptance is stored per person and version, marked on the
//! session and audited in one transaction. Raising the version makes everyone accept again.
//!
//! The text follows the Mitz terms (seeds/003) rewritten at language level B1 for otv.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use super::error::PortalError;
use super::layout::Layout;
use super::session::{CsrfForm, Session};
use super::text::texts;
use super::{Page, Portal};
use crate::AppState;

/// The version of the terms below. Change it whenever their meaning changes.
pub(crate) const BUNDLED_VERSION: &str = "2026-11";

texts! {
    /// The terms of use and the words around them.
    pub(crate) struct TermsText {
        title: "Voorwaarden" / "Terms of use",
        version: "Versie" / "Version",
        must_accept: "Lees eerst de voorwaarden. U kunt otv pas gebruiken als u ermee akkoord gaat." / "Please read the terms first. You can use otv only after you agree to them.",
        changed: "Als de voorwaarden veranderen, vragen wij u opnieuw akkoord te gaan." / "When the terms change, we ask you to agree again.",
        accept_button: "Ik ga akkoord met de voorwaarden" / "I agree to the terms",
        accepted: "U bent akkoord gegaan met deze versie van de voorwaarden." / "You have agreed to this version of the terms.",
        representative_note: "U gaat akkoord voor uzelf, als vertegenwoordiger." / "You agree for yourself, as a representative.",
        s1_h: "1. Wat is otv?" / "1. What is otv?",
        s1_p1: "In otv legt u vast of uw zorgaanbieders uw medische gegevens beschikbaar mogen stellen aan andere zorgaanbieders. Dat heet toestemming geven. Alleen uw keuzes staan in otv. Uw medische gegevens staan er niet in. otv is gratis." / "In otv you record whether your care providers may make your medical data available to other care providers. This is called giving consent. Only your choices are kept in otv. Your medical data are not. otv is free of charge.",
        s2_h: "2. Wanneer gelden deze voorwaarden?" / "2. When do these terms apply?",
        s2_p1: "Deze voorwaarden gelden als u otv gebruikt. U kunt otv alleen gebruiken als u akkoord gaat met deze voorwaarden. U logt in met DigiD." / "These terms apply when you use otv. You can use otv only if you agree to these terms. You log in with DigiD.",
        s3_h: "3. Wat kunt u in otv doen?" / "3. What can you do in otv?",
        s3_p1: "U kunt per soort zorgaanbieder kiezen of die uw gegevens beschikbaar mag stellen, en aan welke soort zorgaanbieders. Samen heten uw keuzes uw toestemmingsprofiel. U kunt uw keuzes altijd veranderen." / "For each kind of care provider you can choose whether it may make your data available, and to which kinds of care providers. Together your choices are your consent profile. You can always change your choices.",
        s3_p2: "Een zorgaanbieder ziet welke toestemming u hem geeft. Een zorgaanbieder die gegevens wil opvragen, kan in otv nagaan of u toestemming hebt gegeven. Dat mag alleen als dat nodig is voor uw behandeling. U ziet in otv wie dat heeft nagevraagd." / "A care provider sees which consent you give it. A care provider that wants to request data can check in otv whether you gave consent. That is only allowed when it is needed for your treatment. You see in otv who checked.",
        s4_h: "4. In een noodgeval" / "4. In an emergency",
        s4_p1: "Hebt u dringend zorg nodig? Dan kan een zorgaanbieder voor u een tijdelijke toestemming vastleggen. Dat mag alleen als u dat goed vindt, of als u dat niet kunt zeggen en de wet het toestaat. Zo’n toestemming geldt hoogstens 72 uur, behalve als u haar daarna zelf in otv bevestigt." / "If you urgently need care, a care provider can record a temporary consent for you. That is only allowed if you agree, or if you cannot say so and the law allows it. Such a consent lasts at most 72 hours, unless you confirm it yourself in otv afterwards.",
        s5_h: "5. Wat gebeurt er als u toestemming geeft?" / "5. What happens when you give consent?",
        s5_p1: "Uw toestemming betekent niet dat uw gegevens altijd worden gedeeld. Zorgaanbieders moeten zich ook aan andere wetten houden. Zij delen alleen gegevens die nodig zijn voor goede zorg aan u. Hebt u daar vragen over? Stel ze aan uw zorgaanbieder." / "Your consent does not mean that your data are always shared. Care providers must also follow other laws. They share only data that are needed for good care for you. Do you have questions about this? Ask your care provider.",
        s5_p2: "Misschien gebruikt een zorgaanbieder otv nog niet. Dan werkt uw keuze voor die zorgaanbieder nog niet. Vraag het aan uw zorgaanbieder." / "A care provider may not use otv yet. Then your choice does not work for that care provider yet. Ask your care provider.",
        s6_h: "6. Welke gegevens bewaren wij?" / "6. Which data do we keep?",
        s6_p1: "Wij bewaren uw BSN, uw naam, uw geboortedatum of leeftijdsgroep en, als u dat wilt, uw e-mailadres. Uw BSN bewaren wij versleuteld. Wij gebruiken deze gegevens alleen voor otv. Door akkoord te gaan, geeft u daar uitdrukkelijk toestemming voor." / "We keep your BSN, your name, your date of birth or age group and, if you want, your e-mail address. We keep your BSN encrypted. We use these data only for otv. By agreeing, you explicitly consent to this.",
        s6_p2: "Uw keuzes worden gedeeld met de zorgaanbieders aan wie u toestemming geeft. Wij bewaren uw gegevens zolang uw profiel bestaat. Verwijdert u uw profiel? Dan verwijderen wij uw gegevens en keuzes. Wat er in otv is gebeurd (het logboek), bewaren wij volgens de wet 5 jaar." / "Your choices are shared with the care providers you give consent to. We keep your data as long as your profile exists. If you delete your profile, we delete your data and choices. The record of what happened in otv (the log) is kept for 5 years, as the law requires.",
        s7_h: "7. Regels voor u" / "7. Rules for you",
        s7_p1: "U legt uw eigen keuzes zelf vast. Geef niemand anders toegang tot uw otv, behalve iemand die u hebt gemachtigd of die volgens de wet voor u mag optreden. Doet u dat toch? Dan bent u daar zelf verantwoordelijk voor." / "You record your own choices yourself. Do not give anyone else access to your otv, except someone you have authorised or who may act for you by law. If you do, you are responsible for it yourself.",
        s7_p2: "Bent u jonger dan 12 jaar? Dan kan een ouder of voogd voor u kiezen. Bent u 12 tot 16 jaar? Dan kiest u zelf, en bevestigt uw ouder of voogd uw keuze. Tot dan telt uw keuze nog niet. Bent u 16 jaar of ouder? Dan kiest u alleen." / "Are you younger than 12? Then a parent or guardian can choose for you. Are you 12 to 16? Then you choose, and your parent or guardian confirms your choice. Until then your choice does not count yet. Are you 16 or older? Then you choose alone.",
        s7_p3: "Merkt u dat er iets niet goed werkt? Meld het ons zo snel mogelijk." / "If you notice that something does not work well, tell us as soon as possible.",
        s8_h: "8. Keuzes vastleggen via uw zorgaanbieder" / "8. Recording choices through your care provider",
        s8_p1: "Uw zorgaanbieder kan uw keuzes ook voor u vastleggen, maar alleen als u daarom vraagt en alleen als die zorgaanbieder u behandelt. In een noodgeval geldt deel 4. U ziet in otv altijd wie een keuze voor u heeft vastgelegd. Wilt u dat niet? Dan kunt u dat in otv blokkeren." / "Your care provider can also record your choices for you, but only if you ask for it and only if that care provider treats you. In an emergency, part 4 applies. You always see in otv who recorded a choice for you. Don’t want this? You can block it in otv.",
        s8_p2: "Hebt u eerder bij een zorgaanbieder toestemming gegeven? Dan kan die zorgaanbieder die keuze in otv zetten. Een keuze die u zelf hebt gemaakt, verandert daardoor niet. Wilt u dit niet? Pas uw keuze aan in otv." / "Did you give consent at a care provider before? Then that care provider can put that choice in otv. A choice you made yourself does not change because of this. Don’t want this? Change your choice in otv.",
        s9_h: "9. Vragen of klachten" / "9. Questions or complaints",
        s9_p1: "Hebt u een vraag of een klacht over otv of over wat wij met uw gegevens doen? Neem contact op met de organisatie die deze otv beheert. Vragen over toestemming kunt u ook aan uw zorgaanbieder stellen." / "Do you have a question or complaint about otv or about what we do with your data? Contact the organisation that runs this otv. You can also ask your care provider about consent.",
        s10_h: "10. Als de voorwaarden veranderen" / "10. If the terms change",
        s10_p1: "Deze voorwaarden kunnen veranderen. Het versienummer staat bovenaan. Als u inlogt na een verandering, ziet u de nieuwe voorwaarden. U moet dan opnieuw akkoord gaan voordat u verder kunt." / "These terms can change. The version number is at the top. If you log in after a change, you see the new terms. You must then agree again before you can continue.",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/voorwaarden", get(show).post(accept))
}

#[derive(Template)]
#[template(path = "portal/terms.html")]
struct TermsPage {
    l: Layout,
    t: &'static TermsText,
    version: String,
    /// Logged in and not yet accepted: the accept form is shown.
    must_accept: bool,
    /// Logged in and accepted.
    accepted: bool,
    representative: bool,
}

fn has_accepted(session: &Session, portal: &Portal) -> bool {
    session.data().terms_version.as_deref() == Some(portal.config.terms_version.as_str())
}

/// The terms: for anyone; with the accept form for a logged-in person who has not accepted
/// the current version.
async fn show(
    State(state): State<AppState>,
    page: Page,
    session: Result<Session, Response>,
) -> Result<Response, PortalError> {
    let t = TermsText::get(page.lang);
    let (l, must_accept, accepted, representative) = match &session {
        Ok(s) => {
            let accepted = has_accepted(s, &state.portal);
            (
                s.layout(t.title),
                !accepted,
                accepted,
                s.is_representative(),
            )
        }
        Err(_) => (Layout::public(&page, t.title), false, false, false),
    };
    let html = TermsPage {
        l,
        t,
        version: state.portal.config.terms_version.clone(),
        must_accept,
        accepted,
        representative,
    }
    .render()?;
    Ok(Html(html).into_response())
}

#[derive(serde::Deserialize)]
struct AcceptForm {
    version: String,
}

async fn accept(
    State(state): State<AppState>,
    session: Session,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> Result<Response, PortalError> {
    let version = &state.portal.config.terms_version;
    // Accepting a version that was replaced while the page was open accepts nothing.
    if &form.version != version {
        return Ok(Redirect::to("/voorwaarden").into_response());
    }
    let mut audit = session.audit_event(&state, "terms-accepted");
    // The person who logged in accepts for themself.
    audit.details = serde_json::json!({ "version": version });
    state
        .store
        .accept_terms(session.actor_bsn(), version, session.token_sha256(), &audit)
        .await?;
    Ok(Redirect::to("/keuzes").into_response())
}
