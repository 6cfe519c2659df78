//! The history (`/geschiedenis`): every change of the citizen's answers (who, through which
//! channel, when, what, with a link to its signed receipt) and every check of the consent
//! (which holder was asked about which consulter, when, the answer, the emergency flag),
//! filtered by period with a plain GET form (`?van=YYYY-MM-DD&tot=YYYY-MM-DD`, dates in Dutch
//! time, both days included).
//!
//! Also the helpers the other pages of the citizen's data share: Dutch local time, and answers
//! and parties in words.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use otv_core::{Actor, Answer, AnswerState, Catalogue, Channel, Effect, Party, Ura};
use otv_store::{ChangeEntry, ConsentCheck, Period, Store};
use serde::Deserialize;

use super::choices::{category_name, data_category_name};
use super::error::PortalError;
use super::layout::Layout;
use super::session::Citizen;
use super::text::{Lang, texts};
use crate::AppState;

texts! {
    /// Words of the history page and of answers in words (shared with the other pages of the
    /// citizen's data).
    pub(crate) struct HistoryText {
        title: "Geschiedenis" / "History",
        intro: "Hier ziet u wie uw keuzes heeft veranderd, en wanneer een zorgaanbieder heeft gevraagd of hij uw gegevens mag delen." / "Here you see who changed your choices, and when a care provider asked whether it may share your data.",
        period_legend: "Kies een periode" / "Choose a period",
        from_label: "Vanaf (dag-maand-jaar)" / "From (day-month-year)",
        until_label: "Tot en met (dag-maand-jaar)" / "Up to and including (day-month-year)",
        date_hint: "Bijvoorbeeld 31-01-2026. Laat leeg voor geen grens." / "For example 31-01-2026. Leave empty for no limit.",
        date_error: "Vul een datum in als dag-maand-jaar, bijvoorbeeld 31-01-2026." / "Enter a date as day-month-year, for example 31-01-2026.",
        order_error: "De eerste datum moet vóór de tweede liggen." / "The first date must be before the second.",
        show: "Toon" / "Show",
        changes_title: "Veranderingen van uw keuzes" / "Changes of your choices",
        changes_none: "In deze periode zijn uw keuzes niet veranderd." / "Your choices did not change in this period.",
        checks_title: "Wie heeft uw toestemming gecontroleerd" / "Who checked your consent",
        checks_none: "In deze periode heeft geen zorgaanbieder uw toestemming gecontroleerd." / "No care provider checked your consent in this period.",
        more: "Er zijn meer regels dan wij hier tonen. Kies een kortere periode." / "There are more lines than we show here. Choose a shorter period.",
        col_when: "Wanneer" / "When",
        col_who: "Door wie" / "By whom",
        col_how: "Hoe" / "How",
        col_what: "Wat is vastgelegd" / "What was recorded",
        choices: "keuzes (klik om ze te zien)" / "choices (click to see them)",
        col_receipt: "Bewijs" / "Receipt",
        receipt_link: "Download bewijs" / "Download receipt",
        receipt_none: "Geen" / "None",
        receipt_explained: "Bij elke verandering kunt u een bewijs downloaden. Dat is een bestand dat otv digitaal heeft ondertekend. Zo kunt u later laten zien welke keuzes zijn vastgelegd, en wanneer." / "For every change you can download a receipt. It is a file that otv has signed digitally. With it you can show later which choices were recorded, and when.",
        col_holder: "Zorgaanbieder met uw gegevens" / "Care provider holding your data",
        col_consulter: "Wie wilde de gegevens zien" / "Who wanted to see the data",
        col_data: "Gegevens" / "Data",
        col_answer: "Antwoord" / "Answer",
        col_emergency: "Nood" / "Emergency",
        emergency_yes: "Ja, noodtoestemming" / "Yes, emergency consent",
        emergency_no: "Nee" / "No",
        yes: "Ja" / "Yes",
        no: "Nee" / "No",
        unknown: "Niet bekend" / "Unknown",
        error_answer: "Geen antwoord door een storing (dus geen toestemming)" / "No answer because of a fault (so no consent)",
        you: "U zelf" / "You",
        representative: "Uw vertegenwoordiger of ouder" / "Your representative or parent",
        provider: "Zorgaanbieder" / "Care provider",
        ch_portal: "Via deze website" / "On this website",
        ch_samen: "Samen met uw zorgverlener" / "Together with your care provider",
        ch_holder: "Door uw zorgaanbieder" / "By your care provider",
        ch_emergency: "Noodtoestemming door een zorgverlener" / "Emergency consent by a care provider",
        ch_migration: "Overgenomen van uw zorgaanbieder" / "Taken over from your care provider",
        migrated_who: "overgenomen" / "migrated",
        ch_representative: "Door uw vertegenwoordiger" / "By your representative",
        ch_guardian: "Bevestigd door ouder of voogd" / "Confirmed by parent or guardian",
        state_pending: "wacht op ouder of voogd" / "waiting for parent or guardian",
        state_withdrawn: "ingetrokken" / "withdrawn",
        state_expired: "verlopen" / "expired",
        until: "geldig tot" / "valid until",
        answer_line_to: "mag beschikbaar stellen aan" / "may make available to",
        time_zone: "Tijden in Nederlandse tijd." / "Times in Dutch time.",
        question_open: "zoekvraag" / "search",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/geschiedenis", get(history))
}

/// At most this many changes and checks on one page.
const PAGE_LIMIT: usize = 50;

// ---------------------------------------------------------------------------------------------
// Dutch time and answers in words, shared by the pages of the citizen's data.

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("a valid month");
    let mut d = next - Duration::days(1);
    while d.weekday() != Weekday::Sun {
        d -= Duration::days(1);
    }
    d
}

/// Hours the Netherlands is ahead of UTC at `t`: 2 in summer time (from the last Sunday of
/// March, 01:00 UTC, to the last Sunday of October, 01:00 UTC, as in the whole EU), else 1.
fn nl_offset(t: DateTime<Utc>) -> Duration {
    let y = t.year();
    let at_one = |d: NaiveDate| d.and_hms_opt(1, 0, 0).expect("valid").and_utc();
    if t >= at_one(last_sunday(y, 3)) && t < at_one(last_sunday(y, 10)) {
        Duration::hours(2)
    } else {
        Duration::hours(1)
    }
}

/// `t` in Dutch local time.
pub(crate) fn nl_local(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc() + nl_offset(t)
}

/// `t` as `31-01-2026 14:05`, Dutch time.
pub(crate) fn when(t: DateTime<Utc>) -> String {
    nl_local(t).format("%d-%m-%Y %H:%M").to_string()
}

/// The moment a Dutch calendar day starts, in UTC.
fn day_start(d: NaiveDate) -> DateTime<Utc> {
    let local = d.and_time(NaiveTime::MIN);
    let guess = local.and_utc();
    (local - nl_offset(guess)).and_utc()
}

/// Reads `31-01-2026` (also `2026-01-31`, what a date field sends).
pub(crate) fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%d-%m-%Y")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y-%m-%d"))
        .ok()
}

/// Provider names for `uras` (directory look-ups, bounded by the answers shown).
pub(crate) async fn provider_names(
    store: &Store,
    uras: Vec<Ura>,
) -> Result<BTreeMap<Ura, String>, PortalError> {
    let mut names = BTreeMap::new();
    for ura in uras {
        if names.contains_key(&ura) {
            continue;
        }
        if let Some(p) = store.provider(&ura).await? {
            names.insert(ura, p.name);
        }
    }
    Ok(names)
}

/// The URAs an answer names (parties and the acting provider).
pub(crate) fn uras_of(a: &Answer) -> Vec<Ura> {
    let party = |p: &Party| match p {
        Party::Provider(u) => Some(u.clone()),
        Party::Category(_) => None,
    };
    let actor = match &a.provenance.actor {
        Actor::Provider { ura, .. } => Some(ura.clone()),
        _ => None,
    };
    [party(&a.key.holder), party(&a.key.consulter), actor]
        .into_iter()
        .flatten()
        .collect()
}

/// Words for answers, with the catalogue's names and the directory's provider names.
pub(crate) struct Words<'a> {
    pub t: &'static HistoryText,
    /// The page's language: category names follow it.
    pub lang: Lang,
    pub catalogue: &'a Catalogue,
    pub names: &'a BTreeMap<Ura, String>,
}

impl Words<'_> {
    /// A provider by name (and URA), or by URA alone when the directory does not know it.
    pub fn provider(&self, ura: &Ura) -> String {
        match self.names.get(ura) {
            Some(n) => format!("{n} ({ura})"),
            None => format!("{} {ura}", self.t.provider),
        }
    }

    /// A holder or consulter: a category's name, or one provider.
    pub fn party(&self, p: &Party) -> String {
        match p {
            Party::Provider(u) => self.provider(u),
            Party::Category(c) => {
                let holder = self
                    .catalogue
                    .holder_categories()
                    .iter()
                    .find(|h| &h.code == c);
                let consulter = self
                    .catalogue
                    .consulting_categories()
                    .iter()
                    .find(|k| &k.code == c);
                holder
                    .map(|h| category_name(&h.name, h.name_en.as_deref(), self.lang))
                    .or_else(|| {
                        consulter.map(|k| category_name(&k.name, k.name_en.as_deref(), self.lang))
                    })
                    .unwrap_or_else(|| c.to_string())
            }
        }
    }

    /// A data category's name.
    pub fn data(&self, code: &str) -> String {
        data_category_name(self.catalogue, code, self.lang)
    }

    /// The channel in words.
    pub fn channel(&self, c: Channel) -> &'static str {
        let t = self.t;
        match c {
            Channel::Portal => t.ch_portal,
            Channel::SamenNaarMijnmitz => t.ch_samen,
            Channel::Dossierhoudersknop => t.ch_holder,
            Channel::Raadplegersknop => t.ch_emergency,
            Channel::Migration => t.ch_migration,
            Channel::Representative => t.ch_representative,
            Channel::GuardianConfirmation => t.ch_guardian,
        }
    }

    /// Who acted, in words.
    pub fn actor(&self, a: &Actor) -> String {
        match a {
            Actor::Citizen => self.t.you.to_owned(),
            Actor::Representative { .. } => self.t.representative.to_owned(),
            Actor::Provider { ura, .. } => self.provider(ura),
        }
    }

    /// Yes or no.
    pub fn effect(&self, e: Effect) -> &'static str {
        match e {
            Effect::Permit => self.t.yes,
            Effect::Deny => self.t.no,
        }
    }

    /// One answer in one line: "Huisartsen mag beschikbaar stellen aan Apotheken
    /// (Behandelgegevens): Ja", with its state and end when they matter.
    pub fn answer(&self, a: &Answer) -> String {
        let mut line = format!(
            "{} {} {} ({}): {}",
            self.party(&a.key.holder),
            self.t.answer_line_to,
            self.party(&a.key.consulter),
            self.data(a.key.data_category.as_str()),
            self.effect(a.effect),
        );
        let state = match a.state {
            AnswerState::Active => None,
            AnswerState::PendingGuardian => Some(self.t.state_pending),
            AnswerState::Withdrawn => Some(self.t.state_withdrawn),
            AnswerState::Expired => Some(self.t.state_expired),
        };
        if let Some(s) = state {
            line.push_str(&format!(" ({s})"));
        }
        if let Some(until) = a.valid_until {
            line.push_str(&format!(", {} {}", self.t.until, when(until)));
        }
        line
    }
}

// ---------------------------------------------------------------------------------------------
// The page.

#[derive(Debug, Default, Deserialize)]
struct PeriodForm {
    #[serde(default)]
    van: String,
    #[serde(default)]
    tot: String,
}

struct FieldError {
    field: &'static str,
    message: &'static str,
}

struct ChangeRow {
    when: String,
    who: String,
    how: &'static str,
    what: Vec<String>,
    receipt: Option<String>,
}

struct CheckRow {
    when: String,
    holder: String,
    consulter: String,
    data: String,
    answer: String,
    emergency: bool,
}

#[derive(Template)]
#[template(path = "portal/history.html")]
struct HistoryPage {
    l: Layout,
    t: &'static HistoryText,
    form: PeriodForm,
    errors: Vec<FieldError>,
    changes: Vec<ChangeRow>,
    more_changes: bool,
    checks: Vec<CheckRow>,
    more_checks: bool,
}

impl HistoryPage {
    fn error_for(&self, field: &str) -> Option<&'static str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message)
    }
}

/// The period the form asks for, or what is wrong with it.
fn period_of(form: &PeriodForm, t: &HistoryText) -> Result<Period, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut read = |text: &str, field| {
        if text.trim().is_empty() {
            return None;
        }
        let d = parse_date(text);
        if d.is_none() {
            errors.push(FieldError {
                field,
                message: t.date_error,
            });
        }
        d
    };
    let from = read(&form.van, "van");
    let until = read(&form.tot, "tot");
    if let (Some(f), Some(u)) = (from, until)
        && u < f
    {
        errors.push(FieldError {
            field: "tot",
            message: t.order_error,
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Period {
        from: from.map(day_start),
        until: until.and_then(|u| u.succ_opt()).map(day_start),
    })
}

fn change_row(c: &ChangeEntry, w: &Words<'_>) -> ChangeRow {
    ChangeRow {
        when: when(c.at),
        // A migrated change names the provider it was taken over from (PRODUCT.md §9).
        who: match c.channel {
            Channel::Migration => format!("{} ({})", w.actor(&c.actor), w.t.migrated_who),
            _ => w.actor(&c.actor),
        },
        how: w.channel(c.channel),
        what: c.answers.iter().map(|a| w.answer(a)).collect(),
        receipt: c.seq.map(super::receipt::href),
    }
}

fn check_row(c: &ConsentCheck, w: &Words<'_>) -> CheckRow {
    let named = |ura: &Option<String>, name: &Option<String>| match (ura, name) {
        (Some(u), Some(n)) => format!("{n} ({u})"),
        (Some(u), None) => format!("{} {u}", w.t.provider),
        _ => w.t.unknown.to_owned(),
    };
    let mut data = c
        .data_category
        .as_deref()
        .map_or_else(|| w.t.unknown.to_owned(), |d| w.data(d));
    if c.question == "open-question" {
        data.push_str(&format!(" ({})", w.t.question_open));
    }
    CheckRow {
        when: when(c.at),
        holder: named(&c.holder_ura, &c.holder_name),
        consulter: named(&c.consulter_ura, &c.consulter_name),
        data,
        answer: match c.decision.as_str() {
            "permit" => w.t.yes.to_owned(),
            "deny" => w.t.no.to_owned(),
            _ => w.t.error_answer.to_owned(),
        },
        emergency: c.emergency,
    }
}

async fn history(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(form): Query<PeriodForm>,
) -> Result<Response, PortalError> {
    let lang: Lang = citizen.lang();
    let t = HistoryText::get(lang);
    let mut page = HistoryPage {
        l: citizen.layout(t.title),
        t,
        form,
        errors: Vec::new(),
        changes: Vec::new(),
        more_changes: false,
        checks: Vec::new(),
        more_checks: false,
    };
    match period_of(&page.form, t) {
        Err(errors) => page.errors = errors,
        Ok(period) => {
            let h = state
                .store
                .history(citizen.subject(), &period, PAGE_LIMIT)
                .await?;
            let uras = h
                .changes
                .iter()
                .flat_map(|c| c.answers.iter().flat_map(uras_of));
            let names = provider_names(&state.store, uras.collect()).await?;
            let w = Words {
                t,
                lang,
                catalogue: &state.catalogue,
                names: &names,
            };
            page.changes = h.changes.iter().map(|c| change_row(c, &w)).collect();
            page.checks = h.checks.iter().map(|c| check_row(c, &w)).collect();
            page.more_changes = h.more_changes;
            page.more_checks = h.more_checks;
        }
    }
    Ok(Html(page.render()?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_time_follows_summer_time() {
        let winter: DateTime<Utc> = "2026-01-15T12:00:00Z".parse().unwrap();
        let summer: DateTime<Utc> = "2026-07-15T12:00:00Z".parse().unwrap();
        assert_eq!(when(winter), "15-01-2026 13:00");
        assert_eq!(when(summer), "15-07-2026 14:00");
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        let before: DateTime<Utc> = "2026-03-29T00:59:00Z".parse().unwrap();
        assert_eq!(when(before), "29-03-2026 01:59");
        let after: DateTime<Utc> = "2026-03-29T01:00:00Z".parse().unwrap();
        assert_eq!(when(after), "29-03-2026 03:00");
        assert_eq!(
            day_start(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()),
            "2026-06-30T22:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
    }

    #[test]
    fn a_period_is_read_from_dutch_dates_and_checked() {
        let t = HistoryText::get(Lang::Nl);
        let form = |van: &str, tot: &str| PeriodForm {
            van: van.into(),
            tot: tot.into(),
        };
        let p = period_of(&form("01-01-2026", "2026-01-31"), t)
            .ok()
            .unwrap();
        assert_eq!(p.from, Some("2025-12-31T23:00:00Z".parse().unwrap()));
        assert_eq!(p.until, Some("2026-01-31T23:00:00Z".parse().unwrap()));
        assert_eq!(period_of(&form("", ""), t).ok().unwrap(), Period::default());
        let errors = period_of(&form("31-02-2026", "x"), t).err().unwrap();
        assert_eq!(errors.len(), 2);
        let errors = period_of(&form("02-01-2026", "01-01-2026"), t)
            .err()
            .unwrap();
        assert_eq!(errors[0].field, "tot");
    }
}
