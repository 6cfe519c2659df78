//! Who follows my choices (`/wie-volgt-mij`, PRODUCT.md §7 and §10): the care providers that
//! registered that they hold a record about the citizen (active subscriptions), each once,
//! with what the citizen's current choices let it do, and whether it gets a notice when the
//! choices change (every active registration does).
//!
//! Only the logged-in profile's own registrations are read; localization data are never
//! shown to anyone else.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use otv_core::{Effect, Ura};

use super::choices::{category_name, in_force, options_of, standing_effect};
use super::error::PortalError;
use super::layout::Layout;
use super::session::Citizen;
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of "who follows my choices".
    pub(crate) struct FollowersText {
        title: "Wie volgt mijn keuzes" / "Who follows my choices",
        intro: "Deze zorgaanbieders hebben laten weten dat zij een medisch dossier van u hebben. Zij volgen uw keuzes: als u iets verandert, krijgen zij daar bericht van." / "These care providers have told us that they hold a medical record about you. They follow your choices: when you change something, they are told.",
        none: "Er heeft zich nog geen zorgaanbieder voor u aangemeld." / "No care provider has registered for you yet.",
        col_kind: "Soort" / "Kind",
        col_may: "Mag uw gegevens beschikbaar stellen aan" / "May make your data available to",
        col_notice: "Krijgt bericht als u iets verandert" / "Is told when you change something",
        nobody: "Niemand" / "Nobody",
        notice_yes: "Ja" / "Yes",
        unknown_provider: "Zorgaanbieder" / "Care provider",
        change: "Keuzes wijzigen" / "Change my choices",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/wie-volgt-mij", get(followers))
}

struct Follower {
    name: String,
    ura: String,
    kind: String,
    may: Vec<String>,
}

#[derive(Template)]
#[template(path = "portal/followers.html")]
struct FollowersPage {
    l: Layout,
    t: &'static FollowersText,
    followers: Vec<Follower>,
}

async fn followers(
    State(state): State<AppState>,
    citizen: Citizen,
) -> Result<Response, PortalError> {
    let lang = citizen.lang();
    let t = FollowersText::get(lang);
    let catalogue = &state.catalogue;
    let subscriptions = state.store.subscriptions_of(citizen.subject()).await?;
    let profile = state.store.profile(citizen.subject()).await?;
    // One line per holder, however many source systems registered it.
    let mut holders: BTreeMap<Ura, otv_core::OrgType> = BTreeMap::new();
    for s in subscriptions {
        holders.entry(s.holder_ura).or_insert(s.holder_type);
    }
    let mut followers = Vec::new();
    for (ura, org_type) in holders {
        let name = state
            .store
            .provider(&ura)
            .await?
            .map_or_else(|| t.unknown_provider.to_owned(), |p| p.name);
        let kind = catalogue
            .organisation_types()
            .iter()
            .find(|(c, _)| *c == org_type)
            .map_or_else(|| org_type.to_string(), |(_, n)| n.clone());
        // What the category answers let this holder do (individual answers aside).
        let may = catalogue
            .holder_category_of(&org_type)
            .map(|h| {
                options_of(catalogue, h)
                    .filter(|o| standing_effect(in_force(&profile, o)) == Some(Effect::Permit))
                    .filter_map(|o| {
                        catalogue
                            .consulting_categories()
                            .iter()
                            .find(|c| c.code == o.consulter)
                            .map(|c| category_name(&c.name, c.name_en.as_deref(), lang))
                    })
                    .collect()
            })
            .unwrap_or_default();
        followers.push(Follower {
            name,
            ura: ura.to_string(),
            kind,
            may,
        });
    }
    let html = FollowersPage {
        l: citizen.layout(t.title),
        t,
        followers,
    }
    .render()?;
    Ok(Html(html).into_response())
}
