//! The assisted portal (PRODUCT.md §8): the pages a provider's hand-off link opens, for one
//! patient, with the professional beside them.
//!
//! - `GET /overdracht?code=<token>`: takes the hand-off (once, before it expires), starts an
//!   assisted session (the session cookie, as a login does) and sends the browser to the
//!   mode's first page. A link that does not work (unknown, used, expired) gets a page that
//!   says so and what to do; nothing else is told.
//! - Samen-naar-MijnMitz: the overview and the normal wizard (`wizard.rs`), recorded with the
//!   professional as actor and channel `samen-naar-mijnmitz`.
//! - Dossierhoudersknop (`/dossierhoudersknop`): yes or no per consulting category for this
//!   provider as the one holder (holder = its URA, the data category of its holder category
//!   in the catalogue).
//! - Raadplegersknop (`/noodtoestemming-vastleggen`): a confirm page that records an emergency
//!   consent for this provider as consulter (`crate::assisted::emergency::record`).
//!
//! In an assisted session only the mode's pages are reachable ([`reachable`]); history,
//! download, deletion, e-mail, lock and minors' pages answer 404 and are not linked. The
//! overview is shown only in Samen-naar-MijnMitz, where the enrolment token proved the patient
//! is there: in the other modes the professional sees no more than the mode needs.
//!
//! Terms of use: an assisted session does not ask the patient to accept them (the patient
//! did not log in, and the professional cannot accept for them). The session counts as
//! accepted for its own pages only; nothing is recorded as the citizen's acceptance, and the
//! citizen accepts when they log in themselves. The terms (§8) say that a provider may
//! record choices at the patient's request; the footer links to them on every page.
//!
//! Every save checks the citizen's lock again ([`crate::assisted::allowed`]): the citizen may
//! have locked the profile after the link was made. A refusal shows the message for the
//! professional and is audited (`assisted-change-refused`).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use otv_core::{Answer, AnswerKey, Effect, Party, Provenance};
use otv_store::{AuditEvent, PortalSession};
use serde::Deserialize;

use super::Page;
use super::choices::{category_name, data_words, standing_effect};
use super::error::PortalError;
use super::layout::{AssistedBanner, Layout};
use super::session::{
    AssistedContext, Citizen, CsrfForm, Fields, SESSION_COOKIE, random_token, set_cookie,
    token_hash,
};
use super::text::{Lang, texts};
use crate::AppState;
use crate::assisted::{Mode, allowed, handoff};

texts! {
    /// Words of the assisted portal.
    pub(crate) struct AssistedText {
        with_before: "U legt dit vast samen met" / "You are recording this together with",
        of: "van" / "at",
        a_professional: "een zorgverlener" / "a care professional",
        an_assistant: "een medewerker" / "an assistant",
        on_behalf_of: "namens" / "on behalf of",
        patient: "Dit gaat over de keuzes van:" / "These are the choices of:",
        explained: "Wat u hier kiest, zetten wij in uw profiel. Wij schrijven erbij wie het samen met u heeft vastgelegd. Hebt u in otv een e-mailadres opgegeven? Dan krijgt u daarover een bericht. U kunt uw keuzes later altijd zelf bekijken en veranderen in otv, als u inlogt met DigiD." / "What you choose here is put in your profile, with a note of who recorded it with you. If you gave otv your e-mail address, you will get a message about it. You can always look at your choices and change them yourself later in otv, when you log in with DigiD.",
        done: "Klaar: sluit deze sessie" / "Done: close this session",
        nav_overview: "Uw keuzes" / "Your choices",
        nav_wizard: "Keuzes wijzigen" / "Change choices",
        nav_holder: "Keuzes voor deze zorgaanbieder" / "Choices for this care provider",
        nav_emergency: "Noodtoestemming" / "Emergency consent",
        link_title: "Deze link werkt niet" / "This link does not work",
        link_text: "Deze link werkt niet (meer). Een link werkt maar één keer, en maar 5 minuten." / "This link does not work (any more). A link works only once, and only for 5 minutes.",
        link_what: "Vraag de zorgverlener om een nieuwe link. Wilt u uw keuzes zelf regelen? Log dan in met DigiD." / "Ask the care professional for a new link. Do you want to arrange your choices yourself? Then log in with DigiD.",
        login_link: "Naar inloggen" / "Go to login",
        refused_title: "Dit kan niet worden vastgelegd" / "This cannot be recorded",
        refused_for_patient: "Dit is de keuze van de patiënt. Er is niets veranderd." / "This is the patient's choice. Nothing has changed.",
        holder_title: "Keuzes voor deze zorgaanbieder" / "Choices for this care provider",
        holder_intro_before: "Hier kiest u wat" / "Here you choose what",
        holder_intro_after: "met uw medische gegevens mag doen. Dit geldt alleen voor deze zorgaanbieder. Uw keuzes voor andere zorgaanbieders blijven zoals ze zijn." / "may do with your medical data. This applies only to this care provider. Your choices for other care providers stay as they are.",
        holder_question_before: "Mag" / "May",
        holder_question_middle: "uw" / "make your",
        holder_question_after: "beschikbaar stellen aan:" / "available to:",
        holder_open: "Een vraag zonder antwoord blijft zoals hij was." / "A question you leave open stays as it was.",
        holder_unknown: "Voor deze zorgaanbieder kunt u hier niets kiezen: de soort zorgaanbieder stelt geen gegevens beschikbaar. Kies in uw eigen keuzes per soort zorgaanbieder." / "You cannot choose anything here for this care provider: this kind of care provider does not make data available. Choose per kind of care provider in your own choices.",
        yes: "Ja" / "Yes",
        no: "Nee" / "No",
        save: "Keuzes opslaan" / "Save my choices",
        saved_title: "Uw keuzes zijn opgeslagen" / "Your choices have been saved",
        saved_none: "Er is niets veranderd: uw keuzes waren al zo." / "Nothing changed: your choices were already like this.",
        saved_notice: "Hebt u in otv een e-mailadres opgegeven? Dan sturen wij u een bericht over deze wijziging. U ziet hem ook als u zelf inlogt in otv." / "If you gave otv your e-mail address, we will send you a message about this change. You also see it when you log in to otv yourself.",
        saved_receipt: "Download het bewijs van deze wijziging" / "Download the receipt of this change",
        saved_receipt_hint: "Een ondertekend bestand dat laat zien wat er is gekozen, wanneer en met wie." / "A signed file that shows what was chosen, when and with whom.",
        back: "Terug naar de keuzes voor deze zorgaanbieder" / "Back to the choices for this care provider",
        emergency_title: "Noodtoestemming vastleggen" / "Record emergency consent",
        emergency_intro_before: "Met een noodtoestemming mag" / "With an emergency consent,",
        emergency_intro_after: "uw medische gegevens opvragen bij al uw zorgaanbieders. Dat mag alleen als dat nodig is voor uw behandeling." / "may request your medical data from all your care providers. That is only allowed when it is needed for your treatment.",
        emergency_72: "De noodtoestemming geldt hoogstens 72 uur. Daarna stopt zij vanzelf, behalve als u haar zelf bevestigt in otv." / "The emergency consent lasts at most 72 hours. Then it stops by itself, unless you confirm it yourself in otv.",
        emergency_notice: "U krijgt er meteen een bericht over. U kunt haar in otv ook eerder intrekken." / "You will get a message about it at once. You can also withdraw it earlier in otv.",
        emergency_button: "Noodtoestemming vastleggen" / "Record emergency consent",
        emergency_done_title: "De noodtoestemming is vastgelegd" / "The emergency consent has been recorded",
        emergency_until: "Zij geldt tot" / "It lasts until",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(handoff::OPEN_PATH, get(open))
        .route(HOLDER_PATH, get(holder_page).post(holder_save))
        .route(HOLDER_SAVED_PATH, get(holder_saved))
        .route(EMERGENCY_PATH, get(emergency_page).post(emergency_save))
}

const HOLDER_PATH: &str = "/dossierhoudersknop";
const HOLDER_SAVED_PATH: &str = "/dossierhoudersknop/opgeslagen";
const EMERGENCY_PATH: &str = "/noodtoestemming-vastleggen";

/// The pages of each mode, the first one its start page: (`href`, navigation label).
fn pages(mode: Mode, t: &'static AssistedText) -> Vec<(&'static str, &'static str)> {
    match mode {
        Mode::SamenNaarMijnmitz => vec![
            ("/keuzes", t.nav_overview),
            ("/keuzes/wijzigen", t.nav_wizard),
        ],
        Mode::Dossierhoudersknop => vec![(HOLDER_PATH, t.nav_holder)],
        Mode::Raadplegersknop => vec![(EMERGENCY_PATH, t.nav_emergency)],
    }
}

/// Whether an assisted session of `mode` may reach `path`: its mode's pages, the receipt of
/// a change, the terms (to read), logging out. Everything else (history, download, deletion,
/// e-mail, lock, minors, emergency confirm/withdraw, directory, followers) is the citizen's own.
pub(crate) fn reachable(mode: Mode, method: &axum::http::Method, path: &str) -> bool {
    let get = *method == axum::http::Method::GET || *method == axum::http::Method::HEAD;
    let common = path == "/uitloggen"
        || (get && path == "/voorwaarden")
        || (get && path.starts_with("/bewijs/"));
    common
        || match mode {
            Mode::SamenNaarMijnmitz => {
                path == "/keuzes"
                    || path.starts_with("/keuzes/wijzigen")
                    || path == "/keuzes/opgeslagen"
            }
            Mode::Dossierhoudersknop => path == HOLDER_PATH || path == HOLDER_SAVED_PATH,
            Mode::Raadplegersknop => path == EMERGENCY_PATH,
        }
}

/// A professional's role in words, for the roles we can name; others are "a care
/// professional". (RoleCodeNL: the register and the specialism.)
fn role_words(role: &str, lang: Lang) -> Option<&'static str> {
    let (nl, en) = match role {
        "01.015" => ("een huisarts", "a general practitioner"),
        "01.000" => ("een arts", "a doctor"),
        "17.000" => ("een apotheker", "a pharmacist"),
        "30.000" => ("een verpleegkundige", "a nurse"),
        _ => return None,
    };
    Some(if lang == Lang::En { en } else { nl })
}

/// The banner and the navigation of an assisted session's pages.
pub(crate) fn frame(
    lang: Lang,
    patient: &str,
    a: &AssistedContext,
) -> (AssistedBanner, Vec<(&'static str, &'static str)>) {
    let t = AssistedText::get(lang);
    let who = role_words(a.professional.role.as_str(), lang).unwrap_or(t.a_professional);
    // A mandated assistant: "samen met een medewerker van <provider>, namens een huisarts".
    let with = if a.professional.mandated.is_some() {
        format!(
            "{} {} {} {}, {} {who}.",
            t.with_before, t.an_assistant, t.of, a.provider_name, t.on_behalf_of
        )
    } else {
        format!("{} {who} {} {}.", t.with_before, t.of, a.provider_name)
    };
    let banner = AssistedBanner {
        with,
        patient: format!("{} {patient}", t.patient),
        explained: t.explained,
        done: t.done,
    };
    (banner, pages(a.mode, t))
}

/// The assisted context of a citizen's session, or 404: the page is only for `mode`.
fn context_for(citizen: &Citizen, mode: Mode) -> Result<&AssistedContext, PortalError> {
    citizen
        .assisted()
        .filter(|a| a.mode == mode)
        .ok_or(PortalError::NotFound)
}

// --- Opening a link ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct OpenQuery {
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/assisted_message.html")]
struct MessagePage {
    l: Layout,
    paragraphs: Vec<String>,
    /// A link under the message: (href, words).
    link: Option<(String, &'static str)>,
    /// The message is a refusal or failure (shown as a warning).
    warning: bool,
}

async fn open(
    State(state): State<AppState>,
    page: Page,
    headers: HeaderMap,
    Query(q): Query<OpenQuery>,
) -> Result<Response, PortalError> {
    let t = AssistedText::get(page.lang);
    let now = state.clock.now();
    let request_id = crate::request_id(&headers);
    let session_token = random_token();
    let session_hash = token_hash(&session_token);
    let taken = match q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 128)
    {
        Some(code) => {
            state
                .store
                .take_hand_off(&token_hash(code), &session_hash, now)
                .await?
        }
        None => None,
    };
    let Some(h) = taken else {
        state
            .store
            .audit(&AuditEvent {
                at: now,
                event: "hand-off-open-refused".into(),
                actor: "unknown".into(),
                request_id,
                decision: Some("rejected".into()),
                reason: Some("unknown-used-or-expired".into()),
                details: serde_json::json!({}),
                ..AuditEvent::default()
            })
            .await?;
        let html = MessagePage {
            l: Layout::public(&page, t.link_title),
            paragraphs: vec![t.link_text.into(), t.link_what.into()],
            link: Some(("/inloggen".into(), t.login_link)),
            warning: true,
        }
        .render()?;
        return Ok((StatusCode::GONE, Html(html)).into_response());
    };
    let mode = Mode::parse(&h.mode)
        .ok_or_else(|| PortalError::Internal("a stored hand-off has an unknown mode".into()))?;
    let details = state
        .store
        .citizen_details(&h.bsn)
        .await?
        .unwrap_or_default();
    let config = &state.portal.config;
    let session = PortalSession {
        actor: h.bsn.clone(),
        subject: h.bsn.clone(),
        actor_name: details.name.clone(),
        subject_name: details.name,
        subject_birth_date: details.birth_date,
        csrf_token: random_token(),
        // Not the citizen's acceptance (nothing is recorded): see the module documentation.
        terms_version: Some(config.terms_version.clone()),
        login_at: now,
        last_seen_at: now,
    };
    let idle =
        chrono::Duration::from_std(config.idle_timeout).unwrap_or(chrono::Duration::minutes(15));
    state
        .store
        .create_portal_session(&session_hash, &session, now - idle)
        .await?;
    state
        .store
        .audit(&AuditEvent {
            at: now,
            event: "hand-off-opened".into(),
            patient: Some(state.store.patient_reference(&h.bsn)),
            actor: format!("uzi:{} role:{}", h.uzi, h.role),
            organisation: Some(h.ura.to_string()),
            mandated: h.mandated.as_ref().map(ToString::to_string),
            request_id,
            decision: Some("opened".into()),
            channel: Some(mode.as_str().into()),
            emergency: mode == Mode::Raadplegersknop,
            details: serde_json::json!({ "hand_off": h.id, "mode": mode.as_str() }),
            ..AuditEvent::default()
        })
        .await?;
    let start = pages(mode, t)[0].0;
    let mut response = Redirect::to(start).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(SESSION_COOKIE, &session_token, "/", None),
    );
    Ok(response)
}

// --- The lock, checked at saving ---------------------------------------------------------------

/// In an assisted session: whether the citizen's settings still allow its mode. A refusal is
/// audited and answered with a page that shows the message for the professional (409).
/// `None` when the change may go ahead (and always in a citizen's own session).
pub(crate) async fn refusal(
    state: &AppState,
    citizen: &Citizen,
) -> Result<Option<Response>, PortalError> {
    let Some(a) = citizen.assisted() else {
        return Ok(None);
    };
    let settings = state.store.citizen_settings(citizen.subject()).await?;
    let Err(refusal) = allowed(&settings, a.mode) else {
        return Ok(None);
    };
    let mut audit = citizen.audit_event(state, "assisted-change-refused");
    audit.decision = Some("rejected".into());
    audit.reason = Some(refusal.code().into());
    audit.details = serde_json::json!({ "mode": a.mode.as_str(), "hand_off": a.hand_off });
    state.store.audit(&audit).await?;
    let t = AssistedText::get(citizen.lang());
    let html = MessagePage {
        l: citizen.layout(t.refused_title),
        paragraphs: vec![
            refusal_text(refusal, citizen.lang()),
            t.refused_for_patient.into(),
        ],
        link: None,
        warning: true,
    }
    .render()?;
    Ok(Some((StatusCode::CONFLICT, Html(html)).into_response()))
}

/// The refusal's message in the page's language (the `Refusal` text is Dutch / English).
fn refusal_text(refusal: crate::assisted::Refusal, lang: Lang) -> String {
    let both = refusal.to_string();
    match both.split_once(" / ") {
        Some((nl, en)) => if lang == Lang::En { en } else { nl }.to_owned(),
        None => both,
    }
}

// --- Dossierhoudersknop ------------------------------------------------------------------------

/// One question: may this provider make the data available to one consulting category.
struct HolderQuestion {
    field: String,
    consulter: String,
    /// `yes`, `no`, or empty.
    current: &'static str,
}

#[derive(Template)]
#[template(path = "portal/assisted_holder.html")]
struct HolderPage {
    l: Layout,
    t: &'static AssistedText,
    provider: String,
    data: String,
    questions: Vec<HolderQuestion>,
}

/// The options of the dossierhoudersknop: this provider as holder, the data category of its
/// holder category, each consulting category. Empty when its organisation type is no holder
/// category of the catalogue.
fn holder_keys(state: &AppState, a: &AssistedContext) -> Vec<(String, AnswerKey)> {
    let catalogue = &state.catalogue;
    let Some(holder) = a
        .provider_type
        .as_ref()
        .and_then(|t| catalogue.holder_category_of(t))
    else {
        return Vec::new();
    };
    catalogue
        .consulting_categories()
        .iter()
        .map(|c| {
            (
                format!("c.{}", c.code),
                AnswerKey {
                    holder: Party::Provider(a.professional.ura.clone()),
                    data_category: holder.data_category.clone(),
                    consulter: Party::Category(c.code.clone()),
                },
            )
        })
        .collect()
}

fn current_effect(profile: &[Answer], key: &AnswerKey) -> Option<Effect> {
    // The answer in force (a child's proposal, if any, is what the wizard shows; here too).
    let proposal = profile
        .iter()
        .find(|a| a.key == *key && a.state == otv_core::AnswerState::PendingGuardian);
    standing_effect(proposal.or_else(|| {
        profile
            .iter()
            .find(|a| a.key == *key && a.state != otv_core::AnswerState::PendingGuardian)
    }))
}

async fn holder_page(
    State(state): State<AppState>,
    citizen: Citizen,
) -> Result<Response, PortalError> {
    let a = context_for(&citizen, Mode::Dossierhoudersknop)?;
    let lang = citizen.lang();
    let t = AssistedText::get(lang);
    let profile = state.store.profile(citizen.subject()).await?;
    let keys = holder_keys(&state, a);
    let questions = keys
        .iter()
        .map(|(field, key)| HolderQuestion {
            field: field.clone(),
            consulter: state
                .catalogue
                .consulting_categories()
                .iter()
                .find(|c| Party::Category(c.code.clone()) == key.consulter)
                .map_or_else(String::new, |c| {
                    category_name(&c.name, c.name_en.as_deref(), lang)
                }),
            current: match current_effect(&profile, key) {
                Some(Effect::Permit) => "yes",
                Some(Effect::Deny) => "no",
                None => "",
            },
        })
        .collect();
    let data = keys.first().map_or_else(String::new, |(_, k)| {
        data_words(&state.catalogue, k.data_category.as_str(), lang)
    });
    let html = HolderPage {
        l: citizen.layout(t.holder_title),
        t,
        provider: a.provider_name.clone(),
        data,
        questions,
    }
    .render()?;
    Ok(Html(html).into_response())
}

async fn holder_save(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(fields): CsrfForm<Fields>,
) -> Result<Response, PortalError> {
    let a = context_for(&citizen, Mode::Dossierhoudersknop)?;
    if let Some(refused) = refusal(&state, &citizen).await? {
        return Ok(refused);
    }
    let now = state.clock.now();
    let profile = state.store.profile(citizen.subject()).await?;
    let answer_state = citizen.answer_state();
    let provenance = Provenance {
        recorded_at: now,
        channel: citizen.channel(),
        actor: citizen.actor(&state),
        catalogue_version: state.catalogue.version().to_owned(),
    };
    let answers: Vec<Answer> = holder_keys(&state, a)
        .into_iter()
        .filter_map(|(field, key)| {
            let effect = match fields.iter().find(|(k, _)| *k == field)?.1.as_str() {
                "yes" => Effect::Permit,
                "no" => Effect::Deny,
                _ => return None,
            };
            let unchanged = current_effect(&profile, &key) == Some(effect)
                && profile
                    .iter()
                    .any(|x| x.key == key && x.state == answer_state);
            (!unchanged).then(|| Answer {
                key,
                effect,
                valid_from: now,
                valid_until: None,
                state: answer_state,
                provenance: provenance.clone(),
            })
        })
        .collect();
    if answers.is_empty() {
        return Ok(Redirect::to(HOLDER_SAVED_PATH).into_response());
    }
    let mut audit = citizen.audit_event(&state, "profile-change");
    audit.details = serde_json::json!({
        "mode": a.mode.as_str(),
        "hand_off": a.hand_off,
        "answers": answers.len(),
        "state": answer_state.as_str(),
    });
    let seq = state
        .store
        .record_answers(citizen.subject(), &answers, &audit)
        .await?;
    Ok(Redirect::to(&format!("{HOLDER_SAVED_PATH}?wijziging={seq}")).into_response())
}

#[derive(Debug, Deserialize)]
struct SavedQuery {
    wijziging: Option<i64>,
}

async fn holder_saved(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(q): Query<SavedQuery>,
) -> Result<Response, PortalError> {
    context_for(&citizen, Mode::Dossierhoudersknop)?;
    let t = AssistedText::get(citizen.lang());
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
            t.holder_title
        }),
        t,
        receipt: change.map(super::receipt::href),
        back: HOLDER_PATH,
    }
    .render()?;
    Ok(Html(html).into_response())
}

#[derive(Template)]
#[template(path = "portal/assisted_saved.html")]
struct SavedPage {
    l: Layout,
    t: &'static AssistedText,
    receipt: Option<String>,
    back: &'static str,
}

// --- Raadplegersknop ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/assisted_emergency.html")]
struct EmergencyPage {
    l: Layout,
    t: &'static AssistedText,
    provider: String,
}

async fn emergency_page(citizen: Citizen) -> Result<Response, PortalError> {
    let a = context_for(&citizen, Mode::Raadplegersknop)?;
    let t = AssistedText::get(citizen.lang());
    let html = EmergencyPage {
        l: citizen.layout(t.emergency_title),
        t,
        provider: a.provider_name.clone(),
    }
    .render()?;
    Ok(Html(html).into_response())
}

async fn emergency_save(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(_fields): CsrfForm<Fields>,
) -> Result<Response, PortalError> {
    let a = context_for(&citizen, Mode::Raadplegersknop)?;
    let t = AssistedText::get(citizen.lang());
    let lang = citizen.lang();
    match crate::assisted::emergency::record(
        &state,
        citizen.subject(),
        &a.professional,
        citizen.request_id(),
    )
    .await
    {
        Ok(recorded) => {
            let until = super::history::when(recorded.valid_until);
            let html = MessagePage {
                l: citizen.layout(t.emergency_done_title),
                paragraphs: vec![
                    format!("{} {until}.", t.emergency_until),
                    t.emergency_72.into(),
                    t.emergency_notice.into(),
                ],
                link: Some((super::receipt::href(recorded.receipt_seq), t.saved_receipt)),
                warning: false,
            }
            .render()?;
            Ok(Html(html).into_response())
        }
        Err(e) => {
            // A refusal is audited by `record` itself.
            let message = match e {
                crate::assisted::emergency::EmergencyError::Refused(r) => refusal_text(r, lang),
                other => {
                    return Err(PortalError::Internal(format!("emergency consent: {other}")));
                }
            };
            let html = MessagePage {
                l: citizen.layout(t.refused_title),
                paragraphs: vec![message, t.refused_for_patient.into()],
                link: None,
                warning: true,
            }
            .render()?;
            Ok((StatusCode::CONFLICT, Html(html)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::*;

    #[test]
    fn an_assisted_session_reaches_only_its_modes_pages() {
        let get = Method::GET;
        for path in [
            "/geschiedenis",
            "/mijn-gegevens",
            "/profiel-verwijderen",
            "/meldingen",
            "/vergrendelen",
            "/ouder-en-kind",
            "/noodtoestemmingen",
            "/zorgaanbieders",
            "/wie-volgt-mij",
        ] {
            for mode in Mode::ALL {
                assert!(!reachable(mode, &get, path), "{mode:?} {path}");
            }
        }
        assert!(reachable(Mode::SamenNaarMijnmitz, &get, "/keuzes"));
        assert!(reachable(
            Mode::SamenNaarMijnmitz,
            &Method::POST,
            "/keuzes/wijzigen/europa"
        ));
        assert!(!reachable(Mode::Dossierhoudersknop, &get, "/keuzes"));
        assert!(reachable(
            Mode::Dossierhoudersknop,
            &Method::POST,
            HOLDER_PATH
        ));
        assert!(!reachable(Mode::Raadplegersknop, &get, HOLDER_PATH));
        assert!(reachable(
            Mode::Raadplegersknop,
            &Method::POST,
            EMERGENCY_PATH
        ));
        for mode in Mode::ALL {
            assert!(reachable(mode, &get, "/voorwaarden"));
            assert!(
                !reachable(mode, &Method::POST, "/voorwaarden"),
                "terms are not accepted for the citizen"
            );
            assert!(reachable(mode, &Method::POST, "/uitloggen"));
            assert!(reachable(mode, &get, "/bewijs/12"));
        }
    }

    #[test]
    fn the_refusal_is_shown_in_the_pages_language() {
        let r = crate::assisted::Refusal::ProfileLocked;
        assert!(refusal_text(r, Lang::Nl).starts_with("De patiënt heeft"));
        assert!(refusal_text(r, Lang::En).starts_with("The patient has locked"));
    }
}
