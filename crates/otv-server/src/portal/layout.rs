//! What the page frame (`templates/portal/base.html`) shows around every page: the language,
//! the title, who is logged in and whose profile they manage, the logout form, the navigation
//! and the development banner.
//!
//! Every page template has a field `l: Layout` and starts with
//! `{% extends "portal/base.html" %}`; handlers get a [`Layout`] from
//! [`Citizen::layout`](super::session::Citizen::layout) (logged in) or [`Layout::public`].

use super::Page;
use super::text::{Common, Lang};

/// One entry of the navigation.
#[derive(Debug, Clone)]
pub struct NavItem {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// Whether it is the page shown (`aria-current="page"`).
    pub current: bool,
}

/// The logged-in part of the header.
#[derive(Debug, Clone)]
pub struct UserBar {
    /// Who is logged in (name, or "BSN eindigend op ..").
    pub actor: String,
    /// Whose profile is managed, when that is someone else (a representative's session).
    pub representing: Option<String>,
    /// The session's CSRF token, for the logout form.
    pub csrf: String,
}

/// The page frame's data.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The page's language.
    pub lang: Lang,
    /// The shared words in that language.
    pub t: &'static Common,
    /// The page title (already in `lang`).
    pub title: String,
    /// The link that switches the language (this page in the other language).
    pub lang_href: String,
    /// Logged in: who, for whom, and the logout form's token.
    pub user: Option<UserBar>,
    /// The navigation (only shown when logged in).
    pub nav: Vec<NavItem>,
    /// The development login is on: every page says so.
    pub dev_login: bool,
    /// Where the service name in the header goes: the overview, or an assisted session's
    /// first page.
    pub home: &'static str,
    /// An assisted session (a provider's hand-off): the banner that names the provider and
    /// the professional.
    pub assisted: Option<AssistedBanner>,
}

/// The banner of an assisted session (`portal/assisted.rs` words it).
#[derive(Debug, Clone)]
pub struct AssistedBanner {
    /// "U legt dit vast samen met een huisarts van Huisartsenpraktijk De Linde."
    pub with: String,
    /// Whose choices: "Dit gaat over de keuzes van: …".
    pub patient: String,
    /// What this means for the patient.
    pub explained: &'static str,
    /// The label of the button that ends the session.
    pub done: &'static str,
}

/// Picks a label out of the shared words.
type Label = fn(&Common) -> &'static str;

/// The navigation: every portal page a logged-in citizen can reach, in this order:
/// (`href`, which label).
const NAV: &[(&str, Label)] = &[
    ("/keuzes", |t| t.nav_overview),
    ("/keuzes/wijzigen", |t| t.nav_wizard),
    ("/wie-volgt-mij", |t| t.nav_followers),
    ("/zorgaanbieders", |t| t.nav_directory),
    ("/geschiedenis", |t| t.nav_history),
    ("/ouder-en-kind", |t| t.nav_minors),
    ("/noodtoestemmingen", |t| t.nav_emergency),
    ("/meldingen", |t| t.nav_notifications),
    ("/vergrendelen", |t| t.nav_lock),
    ("/mijn-gegevens", |t| t.nav_data),
    ("/profiel-verwijderen", |t| t.nav_delete),
    ("/voorwaarden", |t| t.nav_terms),
];

impl Layout {
    /// The frame of a page for someone who is not logged in (login, errors, public terms).
    pub fn public(page: &Page, title: &str) -> Layout {
        let t = Common::get(page.lang);
        Layout {
            lang: page.lang,
            t,
            title: title.to_owned(),
            lang_href: page.lang_href(),
            user: None,
            nav: Vec::new(),
            dev_login: page.dev_login,
            home: "/keuzes",
            assisted: None,
        }
    }

    /// The frame of a page of an assisted session: the banner, and only the mode's pages in
    /// the navigation.
    pub(crate) fn assisted(
        page: &Page,
        title: &str,
        user: UserBar,
        context: &super::session::AssistedContext,
    ) -> Layout {
        let mut l = Layout::public(page, title);
        let (banner, nav) = super::assisted::frame(page.lang, &user.actor, context);
        l.home = nav.first().map_or("/keuzes", |(href, _)| href);
        l.nav = nav
            .into_iter()
            .map(|(href, label)| NavItem {
                href,
                label,
                current: page.path == href,
            })
            .collect();
        l.assisted = Some(banner);
        l.user = Some(user);
        l
    }

    /// The frame of a logged-in page; `current` is the navigation entry it belongs to.
    pub(crate) fn logged_in(page: &Page, title: &str, user: UserBar) -> Layout {
        let mut l = Layout::public(page, title);
        l.nav = NAV
            .iter()
            .map(|(href, label)| NavItem {
                href,
                label: label(l.t),
                current: page.path == *href,
            })
            .collect();
        l.user = Some(user);
        l
    }

    /// The session's CSRF token for the hidden `csrf` field of a form (empty when not logged
    /// in).
    pub fn csrf(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.csrf.as_str())
    }

    /// The code of the other language (for `lang`/`hreflang` on the switch link).
    pub fn other_lang(&self) -> &'static str {
        self.lang.other().code()
    }
}
