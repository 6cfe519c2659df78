//! The provider directory search (`/zorgaanbieders?q=`): which care providers use otv, by a
//! part of the name, a URA, or a kind of provider ("apotheek" finds every pharmacy type).
//! Results are bounded. Open to everyone; nothing about the visitor is read or written.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use otv_core::OrgType;
use otv_store::ProviderQuery;
use serde::Deserialize;

use super::Page;
use super::choices::category_name;
use super::error::PortalError;
use super::layout::Layout;
use super::session::Citizen;
use super::text::{Lang, texts};
use crate::AppState;

texts! {
    /// Words of the directory search.
    pub(crate) struct DirectoryText {
        title: "Zorgaanbieders zoeken" / "Find care providers",
        intro: "Zoek of uw zorgaanbieder otv gebruikt. Zoek op naam, op URA-nummer of op soort, bijvoorbeeld ‘apotheek’ of ‘ziekenhuis’." / "Check whether your care provider uses otv. Search by name, by URA number or by kind, for example ‘pharmacy’ or ‘hospital’.",
        label: "Naam, URA-nummer of soort zorgaanbieder" / "Name, URA number or kind of care provider",
        button: "Zoeken" / "Search",
        results: "Gevonden zorgaanbieders" / "Care providers found",
        none: "Wij vonden geen zorgaanbieder die hierbij past. Misschien gebruikt uw zorgaanbieder otv nog niet. Vraag het aan uw zorgaanbieder." / "We found no care provider that matches. Perhaps your care provider does not use otv yet. Ask your care provider.",
        more: "Er zijn meer zorgaanbieders gevonden dan wij tonen. Maak uw zoekvraag preciezer." / "More care providers were found than we show. Make your search more precise.",
        col_name: "Naam" / "Name",
        col_ura: "URA-nummer" / "URA number",
        col_kind: "Soort" / "Kind",
        col_category: "Valt onder" / "Belongs to",
    }
}

/// Results shown at most.
const LIMIT: u32 = 50;
/// Longest search text read.
const MAX_QUERY: usize = 100;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/zorgaanbieders", get(search))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

struct Hit {
    name: String,
    ura: String,
    kind: String,
    category: String,
}

#[derive(Template)]
#[template(path = "portal/directory.html")]
struct DirectoryPage {
    l: Layout,
    t: &'static DirectoryText,
    q: String,
    searched: bool,
    hits: Vec<Hit>,
    more: bool,
}

/// English words for kinds of providers, so that English searches find Dutch types.
fn english_kind(code: &str) -> &'static str {
    match code {
        "Z3" => "general practice gp",
        "K3" => "dispensing general practice gp pharmacy",
        "N6" => "gp out-of-hours service",
        "J8" => "community pharmacy",
        "K9" => "hospital pharmacy",
        "V4" => "hospital",
        "V5" => "university medical centre hospital",
        "V6" => "general hospital",
        "Z4" => "independent treatment centre clinic",
        "Z5" => "diagnostic centre",
        "L1" => "laboratory lab",
        "G5" => "mental health care",
        "X3" | "R5" | "M1" => "nursing care home",
        "T2" => "home care",
        "G3" => "midwife midwifery practice",
        _ => "",
    }
}

/// The organisation types whose name (or category's name) contains the search text.
fn matching_types(state: &AppState, text: &str) -> Vec<OrgType> {
    let text = text.to_lowercase();
    if text.chars().count() < 3 {
        return Vec::new();
    }
    let catalogue = &state.catalogue;
    catalogue
        .organisation_types()
        .iter()
        .filter(|(code, name)| {
            let holder = catalogue
                .holder_category_of(code)
                .map(|h| {
                    format!(
                        "{} {}",
                        h.name,
                        category_name(&h.name, h.name_en.as_deref(), Lang::En)
                    )
                })
                .unwrap_or_default();
            format!("{name} {} {holder}", english_kind(code.as_str()))
                .to_lowercase()
                .contains(&text)
        })
        .map(|(code, _)| code.clone())
        .collect()
}

async fn search(
    State(state): State<AppState>,
    page: Page,
    citizen: Result<Citizen, Response>,
    Query(q): Query<SearchQuery>,
) -> Result<Response, PortalError> {
    let t = DirectoryText::get(page.lang);
    let l = match &citizen {
        Ok(c) => c.layout(t.title),
        Err(_) => Layout::public(&page, t.title),
    };
    let text: String = q.q.trim().chars().take(MAX_QUERY).collect();
    let mut hits = Vec::new();
    let mut more = false;
    if !text.is_empty() {
        let types = matching_types(&state, &text);
        let found = state
            .store
            .search_providers(&ProviderQuery {
                text: &text,
                organisation_types: &types,
                limit: LIMIT + 1,
            })
            .await?;
        more = found.len() > LIMIT as usize;
        let catalogue = &state.catalogue;
        hits = found
            .into_iter()
            .take(LIMIT as usize)
            .map(|p| Hit {
                kind: catalogue
                    .organisation_types()
                    .iter()
                    .find(|(c, _)| *c == p.organisation_type)
                    .map_or_else(|| p.organisation_type.to_string(), |(_, n)| n.clone()),
                category: catalogue
                    .holder_category_of(&p.organisation_type)
                    .map(|h| category_name(&h.name, h.name_en.as_deref(), page.lang))
                    .unwrap_or_default(),
                name: p.name,
                ura: p.ura.to_string(),
            })
            .collect();
    }
    let html = DirectoryPage {
        l,
        t,
        searched: !text.is_empty(),
        q: text,
        hits,
        more,
    }
    .render()?;
    Ok(Html(html).into_response())
}
