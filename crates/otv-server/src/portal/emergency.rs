//! Pending emergency consents (`/noodtoestemmingen`, PRODUCT.md §8): answers recorded through
//! the consulter's button (raadplegersknop) that are in force and end (at most 72 hours after
//! they were given). One emergency consent is the set of such answers for one consulting
//! provider; the citizen confirms it or withdraws it as a whole.
//!
//! - Confirm: each answer is replaced by a normal answer with the same key and effect, without
//!   an end, recorded by the citizen in the portal.
//! - Withdraw: each answer is replaced by the same key in state `withdrawn`, ending now. Not a
//!   "no": a no for this one consulter would outrank the citizen's own category answers
//!   (individual answers are more specific), so withdrawing returns the key to what the
//!   citizen's other answers say.
//!
//! Both go through `Backend::record_answers` (answers, audit record with the emergency flag,
//! outbox row in one transaction). A citizen can only reach the answers of the profile they
//! manage: the consulter in the form only selects among those.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use otv_core::{Answer, AnswerState, Channel, Party, Provenance, Ura};
use serde::Deserialize;

use super::error::PortalError;
use super::history::{HistoryText, Words, provider_names, when};
use super::layout::Layout;
use super::session::{Citizen, CsrfForm};
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of the emergency consents page.
    pub(crate) struct EmergencyText {
        title: "Noodtoestemmingen" / "Emergency consents",
        intro: "Als u met spoed zorg nodig had, kan een zorgverlener een noodtoestemming hebben vastgelegd. Die zorgverlener mag dan tijdelijk uw medische gegevens bekijken. Een noodtoestemming stopt vanzelf na hooguit 72 uur." / "If you needed urgent care, a care provider may have recorded an emergency consent. That care provider may then look at your medical data for a short time. An emergency consent stops by itself after at most 72 hours.",
        none: "Er zijn nu geen noodtoestemmingen." / "There are no emergency consents at the moment.",
        given: "Vastgelegd op" / "Recorded on",
        ends: "Stopt op" / "Stops on",
        what: "Geldt voor" / "Applies to",
        confirm_explained: "Bevestigen: deze zorgverlener mag uw gegevens blijven bekijken, ook na deze datum. Dat kunt u later altijd veranderen." / "Confirm: this care provider may keep looking at your data, also after this date. You can always change that later.",
        withdraw_explained: "Intrekken: de noodtoestemming stopt nu meteen. Daarna gelden weer uw eigen keuzes." / "Withdraw: the emergency consent stops right now. After that your own choices apply again.",
        confirm: "Bevestigen" / "Confirm",
        withdraw: "Intrekken" / "Withdraw",
        confirmed: "De noodtoestemming is bevestigd. Hij geldt nu zonder einddatum." / "The emergency consent has been confirmed. It now applies without an end date.",
        withdrawn: "De noodtoestemming is ingetrokken." / "The emergency consent has been withdrawn.",
        receipt: "Download het bewijs van deze verandering" / "Download the receipt of this change",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/noodtoestemmingen", get(show))
        .route("/noodtoestemmingen/bevestigen", post(confirm))
        .route("/noodtoestemmingen/intrekken", post(withdraw))
}

/// Whether `a` is an emergency consent in force at `now` that will end.
fn pending(a: &Answer, now: DateTime<Utc>) -> bool {
    a.provenance.channel == Channel::Raadplegersknop
        && a.valid_until.is_some()
        && a.in_force_at(now)
}

/// The pending emergency consents of a profile, per consulting provider.
fn by_consulter(answers: Vec<Answer>, now: DateTime<Utc>) -> BTreeMap<Party, Vec<Answer>> {
    let mut out: BTreeMap<Party, Vec<Answer>> = BTreeMap::new();
    for a in answers.into_iter().filter(|a| pending(a, now)) {
        out.entry(a.key.consulter.clone()).or_default().push(a);
    }
    out
}

#[derive(Debug, Default, Deserialize)]
struct Shown {
    #[serde(default)]
    melding: Option<String>,
    #[serde(default)]
    bewijs: Option<i64>,
}

struct Pending {
    consulter: String,
    who: String,
    given: String,
    ends: String,
    what: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/emergency.html")]
struct EmergencyPage {
    l: Layout,
    t: &'static EmergencyText,
    notice: Option<&'static str>,
    receipt: Option<String>,
    pending: Vec<Pending>,
}

async fn show(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(q): Query<Shown>,
) -> Result<Response, PortalError> {
    let t = EmergencyText::get(citizen.lang());
    let now = state.clock.now();
    let groups = by_consulter(state.store.profile(citizen.subject()).await?, now);
    let uras = groups.values().flatten().flat_map(super::history::uras_of);
    let names = provider_names(&state.store, uras.collect()).await?;
    let w = Words {
        t: HistoryText::get(citizen.lang()),
        lang: citizen.lang(),
        catalogue: &state.catalogue,
        names: &names,
    };
    let pending = groups
        .iter()
        .filter_map(|(consulter, answers)| {
            let Party::Provider(ura) = consulter else {
                return None;
            };
            let first = answers.first()?;
            Some(Pending {
                consulter: ura.to_string(),
                who: w.provider(ura),
                given: when(first.provenance.recorded_at),
                ends: answers
                    .iter()
                    .filter_map(|a| a.valid_until)
                    .max()
                    .map(when)
                    .unwrap_or_default(),
                what: answers
                    .iter()
                    .map(|a| {
                        format!(
                            "{} ({})",
                            w.party(&a.key.holder),
                            w.data(a.key.data_category.as_str())
                        )
                    })
                    .collect(),
            })
        })
        .collect();
    let page = EmergencyPage {
        l: citizen.layout(t.title),
        t,
        notice: match q.melding.as_deref() {
            Some("bevestigd") => Some(t.confirmed),
            Some("ingetrokken") => Some(t.withdrawn),
            _ => None,
        },
        receipt: q.bewijs.map(super::receipt::href),
        pending,
    };
    Ok(Html(page.render()?).into_response())
}

#[derive(Debug, Deserialize)]
struct ConsulterForm {
    consulter: String,
}

/// Replaces the pending emergency consent of `consulter` by `replace(answer)` for each of its
/// answers; 404 when this profile has none for that consulter.
async fn settle(
    state: &AppState,
    citizen: &Citizen,
    consulter: &str,
    event: &str,
    replace: impl Fn(&Answer, Provenance, DateTime<Utc>) -> Answer,
) -> Result<i64, PortalError> {
    let ura = Ura::parse(consulter).map_err(|_| PortalError::NotFound)?;
    let now = state.clock.now();
    let mut groups = by_consulter(state.store.profile(citizen.subject()).await?, now);
    let answers = groups
        .remove(&Party::Provider(ura.clone()))
        .ok_or(PortalError::NotFound)?;
    let provenance = Provenance {
        recorded_at: now,
        channel: citizen.channel(),
        actor: citizen.actor(state),
        catalogue_version: state.catalogue.version().to_owned(),
    };
    let replaced: Vec<Answer> = answers
        .iter()
        .map(|a| replace(a, provenance.clone(), now))
        .collect();
    let mut audit = citizen.audit_event(state, event);
    audit.emergency = true;
    audit.details = serde_json::json!({ "consulter": ura, "answers": replaced.len() });
    Ok(state
        .store
        .record_answers(citizen.subject(), &replaced, &audit)
        .await?)
}

async fn confirm(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<ConsulterForm>,
) -> Result<Response, PortalError> {
    let seq = settle(
        &state,
        &citizen,
        &form.consulter,
        "emergency-confirm",
        |a, provenance, now| Answer {
            key: a.key.clone(),
            effect: a.effect,
            valid_from: now,
            valid_until: None,
            state: AnswerState::Active,
            provenance,
        },
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/noodtoestemmingen?melding=bevestigd&bewijs={seq}"
    ))
    .into_response())
}

async fn withdraw(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<ConsulterForm>,
) -> Result<Response, PortalError> {
    let seq = settle(
        &state,
        &citizen,
        &form.consulter,
        "emergency-withdraw",
        |a, provenance, now| Answer {
            key: a.key.clone(),
            effect: a.effect,
            valid_from: a.valid_from,
            valid_until: Some(now),
            state: AnswerState::Withdrawn,
            provenance,
        },
    )
    .await?;
    Ok(Redirect::to(&format!(
        "/noodtoestemmingen?melding=ingetrokken&bewijs={seq}"
    ))
    .into_response())
}
