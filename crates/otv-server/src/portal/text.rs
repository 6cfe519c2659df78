//! The portal's words, in Dutch (the default, language level B1) and English.
//!
//! Every user-visible string lives in a struct made by [`texts!`]: one `&'static str` field
//! per string, with a Dutch and an English value side by side, so a missing translation does
//! not compile. Each page module declares its own text struct next to its handlers; the words
//! every page shares (header, navigation, errors) are [`Common`].
//!
//! Dutch follows the citizens' leaflet (seeds/002): short sentences, "u", "zorgaanbieder",
//! "toestemming", "medische gegevens beschikbaar stellen".

/// The language of a page: Dutch unless the citizen chose English (`?lang=en`, kept in the
/// `otv_lang` cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// Nederlands (default).
    #[default]
    Nl,
    /// English.
    En,
}

impl Lang {
    /// The code for `<html lang>`, the query parameter and the cookie: `nl` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    /// Reads `nl` or `en`.
    pub fn parse(code: &str) -> Option<Lang> {
        match code {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language (the one the header's switch offers).
    pub fn other(self) -> Lang {
        match self {
            Lang::Nl => Lang::En,
            Lang::En => Lang::Nl,
        }
    }
}

/// Declares a text struct with a Dutch and an English instance:
///
/// ```ignore
/// texts! {
///     /// Words of the history page.
///     pub struct HistoryText {
///         title: "Geschiedenis" / "History",
///     }
/// }
/// // HistoryText::get(lang).title
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! portal_texts {
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $($(#[$fmeta:meta])* $field:ident : $nl:literal / $en:literal),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis struct $name {
            $($(#[$fmeta])* #[allow(missing_docs)] pub $field: &'static str,)*
        }

        impl $name {
            /// Nederlands.
            #[allow(dead_code)]
            pub const NL: $name = $name { $($field: $nl,)* };
            /// English.
            #[allow(dead_code)]
            pub const EN: $name = $name { $($field: $en,)* };

            /// The words in `lang`.
            #[allow(dead_code)]
            pub fn get(lang: $crate::portal::text::Lang) -> &'static $name {
                match lang {
                    $crate::portal::text::Lang::Nl => &Self::NL,
                    $crate::portal::text::Lang::En => &Self::EN,
                }
            }
        }
    };
}
pub use crate::portal_texts as texts;

texts! {
    /// What every page shares: header, navigation, footer, error pages.
    pub struct Common {
        service_name: "otv – uw toestemmingen" / "otv – your consent choices",
        skip_link: "Naar de inhoud" / "Skip to content",
        other_language: "English" / "Nederlands",
        nav_label: "Hoofdmenu" / "Main menu",
        nav_toggle: "Menu" / "Menu",
        logged_in_as: "Ingelogd als" / "Logged in as",
        acting_for: "U regelt dit voor" / "You are acting for",
        acting_for_explained: "U bent ingelogd als vertegenwoordiger. Alles wat u hier doet, geldt voor deze persoon. Wij laten deze persoon weten wat u verandert." / "You are logged in as a representative. Everything you do here applies to this person. We tell this person what you change.",
        bsn_ending_in: "de persoon met BSN eindigend op" / "the person whose BSN ends in",
        logout: "Uitloggen" / "Log out",
        dev_banner_title: "Ontwikkelomgeving." / "Development environment.",
        dev_banner: "Het inloggen is hier nep: iedereen kan een BSN intypen. Gebruik dit nooit voor echte gegevens." / "Logging in is fake here: anyone can type a BSN. Never use this for real data.",
        nav_overview: "Mijn keuzes" / "My choices",
        nav_wizard: "Keuzes wijzigen" / "Change my choices",
        nav_followers: "Wie volgt mijn keuzes" / "Who follows my choices",
        nav_directory: "Zorgaanbieders zoeken" / "Find care providers",
        nav_history: "Geschiedenis" / "History",
        nav_minors: "Ouder en kind" / "Parent and child",
        nav_notifications: "Meldingen" / "Notifications",
        nav_emergency: "Noodtoestemmingen" / "Emergency consents",
        nav_lock: "Vergrendelen" / "Locks",
        nav_data: "Mijn gegevens" / "My data",
        nav_delete: "Profiel verwijderen" / "Delete my profile",
        nav_terms: "Voorwaarden" / "Terms of use",
        footer_text: "otv is een online toestemmingsvoorziening. Alleen uw keuzes staan hier, uw medische gegevens niet." / "otv is an online consent service. Only your choices are kept here, not your medical data.",
        error_title: "Er ging iets mis" / "Something went wrong",
        error_internal: "Er ging bij ons iets mis. Uw keuzes zijn niet veranderd. Probeer het later nog eens." / "Something went wrong on our side. Your choices have not changed. Please try again later.",
        error_forbidden_title: "Dit formulier is niet geaccepteerd" / "This form was not accepted",
        error_forbidden: "Wij konden niet controleren dat dit formulier van deze website kwam. Er is niets veranderd. Ga terug, laad de pagina opnieuw en probeer het nog eens." / "We could not check that this form came from this website. Nothing has changed. Go back, reload the page and try again.",
        error_not_found_title: "Deze pagina bestaat niet" / "This page does not exist",
        error_not_found: "Controleer het adres, of ga naar uw keuzes." / "Check the address, or go to your choices.",
        error_bad_request_title: "Dit verzoek klopt niet" / "This request is not valid",
        error_bad_request: "Er ontbrak iets of er stond iets verkeerds in. Er is niets veranderd. Ga terug en probeer het nog eens." / "Something was missing or wrong. Nothing has changed. Go back and try again.",
        error_login_title: "Inloggen is niet gelukt" / "Logging in did not work",
        error_login: "Er is niets veranderd. Probeer opnieuw in te loggen." / "Nothing has changed. Please try to log in again.",
        back_to_start: "Naar de startpagina" / "To the start page",
        error_summary_title: "Er is een probleem" / "There is a problem",
    }
}
