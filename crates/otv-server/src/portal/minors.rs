//! Minors and their parents or guardians (`/ouder-en-kind`; PRODUCT.md §4 and §10, terms of use
//! §5d).
//!
//! Answers a child under 16 records in their own login are stored `pending-guardian`
//! ([`Session::answer_state`](super::session::Session::answer_state)) and count as no answer.
//! They start to count when a parent or guardian confirms them:
//! 1. The child (logged in as themself) makes a **pairing code** (koppelcode) here: 8 characters
//!    from an alphabet without look-alikes (no 0/O, 1/I/L), shown once as `XXXX-XXXX`, valid
//!    for [`CODE_VALID_DAYS`] days and once, stored only as a keyed tag. A new code replaces the
//!    old one.
//! 2. The parent logs in with their own identity, opens this page ("Keuzes van mijn kind
//!    bevestigen") and types the code. A right code links parent and child (the link's id, not
//!    a BSN, is in the URLs); wrong, expired and used codes name the field; after
//!    [`PairingLimit::default`] wrong codes the person is paused (store-side, so a new login
//!    does not reset it). Every attempt is audited with its outcome.
//! 3. The parent reviews the child's answers that are pending **at that moment** (not a
//!    snapshot from when the code was made: what counts is what the parent sees), in words,
//!    with the child's name, and confirms or declines. The form carries a fingerprint of what
//!    was shown; if the child changed something in between, the parent is shown the new state
//!    instead of confirming something unseen.
//!    - Confirm: each pending answer is recorded `active`, channel `guardian-confirmation`, the
//!      parent as actor (a representative by pseudonym), through `Backend::record_answers`
//!      (answers, audit record and outbox row in one transaction).
//!    - Decline: each pending answer is recorded `withdrawn` the same way, through
//!      `Backend::decline_pending`: only the proposal is replaced (the withdrawn answer is
//!      history only), so the answer in force for that key, if any, stays in force, the
//!      parent's list is clear again and the child's history shows that the parent said no.
//!
//!    A proposal waits beside the answer in force with the same key (the store keeps one of
//!    each): a child's unconfirmed yes never removes a confirmed no, nor the reverse.
//!
//! A linked parent sees the child in their list from then on: when the child (12 to 15) changes
//! choices later, those are pending again and the parent confirms them there, without a new
//! code. A child who has turned 16 is not offered any more.
//!
//! **Under 12**, a parent or guardian may fill in the choices. Two ways, both without new
//! machinery: (a) the parent logs in as themself with the identity provider stating that they
//! act for the child (`acting_for`, DigiD-Machtigen style): their answers count at once (the
//! rule is in `Session::answer_state`); (b) as the terms of use describe, the parent uses the
//! child's own login to fill in the choices (pending) and confirms them with the code flow.
//! A representative of a child of 12 to 15 records pending answers: the child must agree too,
//! so the child makes the code in their own login.
//!
//! Must not: show or log a BSN (the child is named by name, or "BSN eindigend op .."), keep a
//! code in the clear, or decide anything about consent.

use std::collections::BTreeMap;

use askama::Template;
use aws_lc_rs::{digest, rand};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use otv_core::age::AgeGroup;
use otv_core::{Actor, Answer, AnswerState, Bsn, Channel, Provenance};
use otv_store::{AuditEvent, LinkedChild, PairingLimit, Redemption};
use serde::Deserialize;

use super::choices::answers_option;
use super::error::PortalError;
use super::history::{HistoryText, Words, provider_names, uras_of, when};
use super::layout::Layout;
use super::session::{Citizen, CsrfForm};
use super::text::{Common, Lang, texts};
use crate::AppState;

/// How long a pairing code works.
pub const CODE_VALID_DAYS: i64 = 7;

/// The characters of a pairing code: digits and capitals without look-alikes (0/O, 1/I/L).
const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters in a code (31^8 ≈ 8.5 × 10^11 codes).
const CODE_LEN: usize = 8;

texts! {
    /// Words of the parent-and-child pages.
    pub(crate) struct MinorsText {
        child_title: "Toestemming van uw ouder" / "Your parent's consent",
        child_intro: "U bent jonger dan 16 jaar. Dan tellen uw keuzes pas als uw ouder of voogd ze bevestigt. Tot die tijd blijven uw keuzes gelden die al eerder bevestigd zijn. Zijn die er niet, dan geldt: geen toestemming." / "You are younger than 16. Your choices only count once your parent or guardian confirms them. Until then your choices that were confirmed before still apply. If there are none: no consent.",
        child_waiting: "Deze keuzes wachten op uw ouder of voogd:" / "These choices are waiting for your parent or guardian:",
        child_nothing_waiting: "Er wachten nu geen keuzes op uw ouder of voogd." / "No choices are waiting for your parent or guardian now.",
        child_change_link: "Keuzes maken of veranderen" / "Make or change choices",
        how_title: "Zo werkt het" / "How it works",
        how_1: "Maak hieronder een koppelcode." / "Make a pairing code below.",
        how_2: "Geef de code aan uw ouder of voogd." / "Give the code to your parent or guardian.",
        how_3: "Uw ouder logt in met zijn of haar eigen DigiD, kiest ‘Ouder en kind’ en vult de code in." / "Your parent logs in with their own DigiD, chooses ‘Parent and child’ and enters the code.",
        how_4: "Uw ouder ziet uw keuzes en bevestigt ze. Daarna tellen ze." / "Your parent sees your choices and confirms them. Then they count.",
        how_later: "Verandert u later nog iets? Dan wacht die verandering ook weer op uw ouder. Uw ouder ziet altijd uw keuzes zoals ze op dat moment zijn." / "Do you change something later? Then that change waits for your parent again. Your parent always sees your choices as they are at that moment.",
        code_title: "Koppelcode" / "Pairing code",
        code_made: "Uw koppelcode is:" / "Your pairing code is:",
        code_write_down: "Schrijf de code op of geef hem meteen aan uw ouder. Wij laten de code maar één keer zien." / "Write the code down or give it to your parent now. We show the code only once.",
        code_valid_until: "De code werkt één keer, tot" / "The code works once, until",
        code_existing: "U hebt al een koppelcode gemaakt. Die werkt tot" / "You already made a pairing code. It works until",
        code_lost: "Bent u de code kwijt? Maak dan een nieuwe. De oude code werkt dan niet meer." / "Lost the code? Then make a new one. The old code will stop working.",
        code_make: "Maak een koppelcode" / "Make a pairing code",
        code_make_new: "Maak een nieuwe koppelcode" / "Make a new pairing code",
        young_title: "Keuzes voor uw kind" / "Choices for your child",
        young_intro: "is jonger dan 12 jaar. Als ouder of voogd mag u de keuzes voor uw kind invullen." / "is younger than 12. As a parent or guardian you may fill in the choices for your child.",
        teen_intro: "is 12 tot 16 jaar. Dan geven u en uw kind allebei toestemming. Keuzes die u hier invult, wachten tot ze bevestigd zijn. Laat uw kind zelf inloggen en een koppelcode maken. Log daarna in met uw eigen DigiD, niet voor iemand anders, en vul de code in bij ‘Ouder en kind’." / "is 12 to 16 years old. Then you and your child both give consent. Choices you fill in here wait until they are confirmed. Let your child log in and make a pairing code. Then log in with your own DigiD, not for someone else, and enter the code under ‘Parent and child’.",
        adult_represented: "Deze pagina is voor ouders en kinderen jonger dan 16 jaar. U regelt nu de keuzes van iemand die 16 jaar of ouder is. Die keuzes tellen meteen." / "This page is for parents and children under 16. You are now managing the choices of someone who is 16 or older. Those choices count at once.",
        parent_title: "Keuzes van mijn kind bevestigen" / "Confirm my child's choices",
        parent_intro: "Is uw kind jonger dan 16 jaar? Dan tellen de keuzes van uw kind pas als u ze bevestigt. Uw kind maakt daarvoor een koppelcode als het zelf is ingelogd. Vul die code hier in." / "Is your child younger than 16? Then your child's choices only count once you confirm them. Your child makes a pairing code for this when logged in. Enter that code here.",
        parent_representing: "U regelt nu de keuzes van iemand anders. Wilt u de keuzes van uw kind bevestigen? Log dan in met uw eigen DigiD, niet voor iemand anders." / "You are managing someone else's choices now. Do you want to confirm your child's choices? Then log in with your own DigiD, not for someone else.",
        code_label: "Koppelcode" / "Pairing code",
        code_hint: "8 tekens, bijvoorbeeld K7MP-4XRT. Hoofdletters of kleine letters maakt niet uit." / "8 characters, for example K7MP-4XRT. Capitals or small letters do not matter.",
        code_check: "Code controleren" / "Check code",
        err_format: "Koppelcode: vul de 8 tekens in die uw kind u gaf, bijvoorbeeld K7MP-4XRT." / "Pairing code: enter the 8 characters your child gave you, for example K7MP-4XRT.",
        err_unknown: "Koppelcode: deze code kennen wij niet. Controleer de code en probeer het opnieuw." / "Pairing code: we do not know this code. Check the code and try again.",
        err_expired: "Koppelcode: deze code is verlopen. Vraag uw kind om een nieuwe code." / "Pairing code: this code has expired. Ask your child for a new code.",
        err_used: "Koppelcode: deze code is al gebruikt. Een code werkt maar één keer. Vraag uw kind om een nieuwe code." / "Pairing code: this code has already been used. A code works only once. Ask your child for a new code.",
        err_own: "Koppelcode: dit is uw eigen code. Uw ouder of voogd moet de code invullen, met zijn of haar eigen DigiD." / "Pairing code: this is your own code. Your parent or guardian must enter it, with their own DigiD.",
        err_blocked: "Koppelcode: u hebt te vaak een verkeerde code ingevuld. Probeer het over een paar minuten opnieuw. Aantal minuten:" / "Pairing code: you entered a wrong code too often. Try again in a few minutes. Minutes:",
        children_title: "Uw kinderen" / "Your children",
        children_waiting: "Aantal keuzes dat op u wacht:" / "Number of choices waiting for you:",
        children_none_waiting: "Er wachten geen keuzes op u." / "No choices are waiting for you.",
        children_view: "Bekijk de keuzes van" / "View the choices of",
        review_title: "Keuzes van" / "Choices of",
        review_intro: "Dit zijn de keuzes van uw kind die op u wachten. Lees ze goed." / "These are your child's choices that are waiting for you. Read them carefully.",
        review_waiting: "Keuzes die op u wachten" / "Choices waiting for you",
        review_none: "Er wachten nu geen keuzes van uw kind op u." / "No choices of your child are waiting for you now.",
        review_sixteen: "Uw kind is 16 jaar of ouder. Dan beslist uw kind zelf en hoeft u niets te bevestigen." / "Your child is 16 or older. Then your child decides alone and you do not need to confirm anything.",
        review_changed: "De keuzes van uw kind zijn net veranderd. Bekijk ze hieronder opnieuw." / "Your child's choices have just changed. Please look at them again below.",
        confirm_explained: "Bevestigen: deze keuzes tellen meteen. U en uw kind kunnen ze later altijd veranderen." / "Confirm: these choices count at once. You and your child can always change them later.",
        decline_explained: "Niet bevestigen: deze keuzes vervallen. De keuzes die u eerder bevestigde, blijven gelden. Zijn die er niet, dan geldt: geen toestemming." / "Do not confirm: these choices lapse. The choices you confirmed before still apply. If there are none: no consent.",
        confirm: "Bevestigen" / "Confirm",
        decline: "Niet bevestigen" / "Do not confirm",
        confirmed: "U hebt de keuzes van uw kind bevestigd. Ze tellen nu." / "You have confirmed your child's choices. They count now.",
        declined: "U hebt de keuzes van uw kind niet bevestigd. Ze tellen niet." / "You did not confirm your child's choices. They do not count.",
        back: "Terug naar ‘Ouder en kind’" / "Back to ‘Parent and child’",
        all_yes: "Alle zorgaanbieders mogen de medische gegevens beschikbaar stellen (behalve aan zorgaanbieders buiten Nederland; dat is een aparte vraag)." / "All care providers may make the medical data available (except to care providers outside the Netherlands; that is a separate question).",
        all_no: "Geen enkele zorgaanbieder mag de medische gegevens beschikbaar stellen." / "No care provider may make the medical data available.",
        details: "Bekijk de keuzes per soort zorgaanbieder" / "See the choices for each kind of care provider",
        holder_may: "Mag beschikbaar stellen aan:" / "May make available to:",
        holder_may_not: "Mag niet beschikbaar stellen aan:" / "May not make available to:",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ouder-en-kind", get(show))
        .route("/ouder-en-kind/koppelcode", post(make_code))
        .route("/ouder-en-kind/code", post(enter_code))
        .route("/ouder-en-kind/kind/{link}", get(review).post(decide))
}

// --- Pairing codes ----------------------------------------------------------------------------

/// A new random code (8 characters of [`ALPHABET`], uniformly: bytes of 248 and more are
/// skipped, so that every character is equally likely).
fn new_code() -> String {
    let mut code = String::with_capacity(CODE_LEN);
    let mut bytes = [0u8; 32];
    while code.len() < CODE_LEN {
        rand::fill(&mut bytes).expect("the system random generator failed");
        for b in bytes {
            if code.len() < CODE_LEN && usize::from(b) < ALPHABET.len() * 8 {
                code.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    code
}

/// `K7MP4XRT` as `K7MP-4XRT`.
fn grouped(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

/// What a person typed, as a stored code: without spaces and dashes, in capitals; `None` when
/// it cannot be a code.
fn normalise(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

// --- Answers in words -------------------------------------------------------------------------

/// One holder (and data category) with the consulters it may and may not make data available
/// to.
#[derive(Debug)]
struct HolderGroup {
    holder: String,
    may: Vec<String>,
    may_not: Vec<String>,
}

/// Pending answers in plain words: a one-line summary when they are one of the shortcuts
/// ("all" or "none"), and one group per holder and data category.
#[derive(Debug)]
struct Summary {
    headline: Option<&'static str>,
    groups: Vec<HolderGroup>,
}

async fn summarise(
    state: &AppState,
    lang: Lang,
    answers: &[Answer],
) -> Result<Summary, PortalError> {
    let t = MinorsText::get(lang);
    let uras = answers.iter().flat_map(uras_of).collect();
    let names = provider_names(&state.store, uras).await?;
    let words = Words {
        t: HistoryText::get(lang),
        lang,
        catalogue: &state.catalogue,
        names: &names,
    };
    let party = |p: &otv_core::Party| words.party(p);
    let data = |code: &str| words.data(code);
    let mut groups: BTreeMap<String, HolderGroup> = BTreeMap::new();
    for a in answers {
        let holder = format!(
            "{} ({})",
            party(&a.key.holder),
            data(a.key.data_category.as_str())
        );
        let group = groups.entry(holder.clone()).or_insert_with(|| HolderGroup {
            holder,
            may: Vec::new(),
            may_not: Vec::new(),
        });
        let consulter = party(&a.key.consulter);
        match a.effect {
            otv_core::Effect::Permit => group.may.push(consulter),
            otv_core::Effect::Deny => group.may_not.push(consulter),
        }
    }
    Ok(Summary {
        headline: shortcut(state, answers).map(|yes| if yes { t.all_yes } else { t.all_no }),
        groups: groups.into_values().collect(),
    })
}

/// `Some(true)` when the answers say yes to every option asked together ("all my providers"),
/// `Some(false)` when they say no to every option, `None` otherwise.
fn shortcut(state: &AppState, answers: &[Answer]) -> Option<bool> {
    let effects: Vec<_> = state
        .catalogue
        .options()
        .iter()
        .filter(|o| {
            state
                .catalogue
                .consulting_categories()
                .iter()
                .any(|k| k.code == o.consulter && !k.separate)
        })
        .map(|o| {
            answers
                .iter()
                .find(|a| answers_option(a, o))
                .map(|a| a.effect)
        })
        .collect();
    if effects.is_empty() {
        return None;
    }
    if effects.iter().all(|e| *e == Some(otv_core::Effect::Permit)) {
        Some(true)
    } else if effects.iter().all(|e| *e == Some(otv_core::Effect::Deny)) {
        Some(false)
    } else {
        None
    }
}

/// The answers of `bsn` that wait for a parent or guardian.
async fn pending_of(state: &AppState, bsn: &Bsn) -> Result<Vec<Answer>, PortalError> {
    let mut pending: Vec<Answer> = state
        .store
        .profile(bsn)
        .await?
        .into_iter()
        .filter(|a| a.state == AnswerState::PendingGuardian)
        .collect();
    pending.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(pending)
}

/// A fingerprint of what the parent was shown: the pending answers' keys, effects and when
/// they were recorded.
fn fingerprint(pending: &[Answer]) -> String {
    let shown: Vec<_> = pending
        .iter()
        .map(|a| (&a.key, a.effect, a.provenance.recorded_at))
        .collect();
    let json = serde_json::to_vec(&shown).expect("answers serialise");
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &json))
}

/// How a child is named: their name, or the last two digits of the BSN.
fn child_label(name: Option<&str>, bsn: &Bsn, lang: Lang) -> String {
    match name.map(str::trim) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => format!(
            "{} ..{}",
            Common::get(lang).bsn_ending_in,
            &bsn.expose()[7..]
        ),
    }
}

fn age_of(birth_date: Option<chrono::NaiveDate>) -> AgeGroup {
    birth_date.map_or(AgeGroup::From16, |b| {
        AgeGroup::of(b, Utc::now().date_naive())
    })
}

// --- The page ---------------------------------------------------------------------------------

/// Which view of `/ouder-en-kind` a session gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    /// A child under 16 in their own login: pending answers and the pairing code.
    Child,
    /// A representative of a child under 12: their answers count at once.
    YoungChildRepresented,
    /// A representative of a child of 12 to 15: the child must make the code.
    TeenRepresented,
    /// A representative of someone 16 or older: nothing to do here.
    AdultRepresented,
    /// Someone 16 or older in their own login: the parent's page.
    Parent,
}

fn view_of(citizen: &Citizen) -> View {
    match (citizen.is_representative(), citizen.age_group()) {
        (false, AgeGroup::From16) => View::Parent,
        (false, _) => View::Child,
        (true, AgeGroup::Under12) => View::YoungChildRepresented,
        (true, AgeGroup::From12To15) => View::TeenRepresented,
        (true, AgeGroup::From16) => View::AdultRepresented,
    }
}

/// One linked child in the parent's list.
#[derive(Debug)]
struct ChildItem {
    href: String,
    name: String,
    waiting: usize,
}

#[derive(Template)]
#[template(path = "portal/minor.html")]
struct MinorPage {
    l: Layout,
    t: &'static MinorsText,
    view: View,
    /// The managed citizen, by name.
    who: String,
    summary: Option<Summary>,
    /// A code just made (shown once), grouped.
    new_code: Option<String>,
    /// Until when the code just made, or the one made before, works.
    code_until: Option<String>,
    errors: Vec<FieldError>,
    typed: String,
    children: Vec<ChildItem>,
}

impl MinorPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }

    fn is(&self, view: &str) -> bool {
        let v = match self.view {
            View::Child => "child",
            View::YoungChildRepresented => "young",
            View::TeenRepresented => "teen",
            View::AdultRepresented => "adult",
            View::Parent => "parent",
        };
        v == view
    }
}

/// The page for this session, with `new_code` just made or `errors` in the code field.
async fn render(
    state: &AppState,
    citizen: &Citizen,
    new_code: Option<(String, chrono::DateTime<Utc>)>,
    errors: Vec<FieldError>,
    typed: String,
) -> Result<MinorPage, PortalError> {
    let t = MinorsText::get(citizen.lang());
    let view = view_of(citizen);
    let title = match view {
        View::Child => t.child_title,
        View::Parent => t.parent_title,
        _ => t.young_title,
    };
    let mut page = MinorPage {
        l: citizen.layout(title),
        t,
        view,
        who: citizen.subject_label(),
        summary: None,
        new_code: None,
        code_until: None,
        errors,
        typed,
        children: Vec::new(),
    };
    match view {
        View::Child => {
            let pending = pending_of(state, citizen.subject()).await?;
            if !pending.is_empty() {
                page.summary = Some(summarise(state, citizen.lang(), &pending).await?);
            }
            if let Some((code, until)) = new_code {
                page.new_code = Some(grouped(&code));
                page.code_until = Some(when(until));
            } else if let Some(s) = state
                .store
                .pairing_code_status(citizen.subject(), state.clock.now())
                .await?
            {
                page.code_until = Some(when(s.expires_at));
            }
        }
        View::Parent => {
            for child in state.store.linked_children(citizen.actor_bsn()).await? {
                if age_of(child.birth_date) == AgeGroup::From16 && child.birth_date.is_some() {
                    continue;
                }
                page.children.push(ChildItem {
                    href: format!("/ouder-en-kind/kind/{}", child.link),
                    name: child_label(child.name.as_deref(), &child.bsn, citizen.lang()),
                    waiting: pending_of(state, &child.bsn).await?.len(),
                });
            }
        }
        _ => {}
    }
    Ok(page)
}

async fn show(State(state): State<AppState>, citizen: Citizen) -> Result<Response, PortalError> {
    let page = render(&state, &citizen, None, Vec::new(), String::new()).await?;
    Ok(Html(page.render()?).into_response())
}

/// A form with nothing but its `csrf` field.
#[derive(Debug, Deserialize)]
struct NoFields {}

/// A problem with a field, for the error summary and the field.
#[derive(Debug, Clone)]
struct FieldError {
    field: &'static str,
    message: String,
}

#[derive(Debug, Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

/// The child makes a pairing code (only in their own login, under 16).
async fn make_code(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(_): CsrfForm<NoFields>,
) -> Result<Response, PortalError> {
    if view_of(&citizen) != View::Child {
        return Err(PortalError::BadRequest(
            "pairing codes are made by a child in their own login",
        ));
    }
    let until = state.clock.now() + Duration::days(CODE_VALID_DAYS);
    let mut made = None;
    // A clash with a code that exists is as likely as guessing one; try again a few times.
    for _ in 0..5 {
        let code = new_code();
        let audit = citizen.audit_event(&state, "guardian-code-issued");
        if state
            .store
            .issue_pairing_code(citizen.subject(), &code, until, &audit)
            .await?
        {
            made = Some(code);
            break;
        }
    }
    let code = made.ok_or_else(|| PortalError::Internal("no free pairing code".into()))?;
    let page = render(
        &state,
        &citizen,
        Some((code, until)),
        Vec::new(),
        String::new(),
    )
    .await?;
    Ok(Html(page.render()?).into_response())
}

/// An audit event of the parent (the person logged in) about `child`.
fn parent_event(
    state: &AppState,
    citizen: &Citizen,
    event: &str,
    child: Option<&Bsn>,
) -> AuditEvent {
    let mut e = citizen.audit_event(state, event);
    e.actor = format!(
        "representative:{}",
        state.store.patient_reference(citizen.actor_bsn())
    );
    e.patient = child.map(|c| state.store.patient_reference(c));
    e.channel = Some(Channel::GuardianConfirmation.as_str().to_owned());
    e
}

/// The parent types a code.
async fn enter_code(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Result<Response, PortalError> {
    if view_of(&citizen) != View::Parent {
        return Err(PortalError::BadRequest(
            "only a parent in their own login enters a code",
        ));
    }
    let t = MinorsText::get(citizen.lang());
    let field_error = |message: String| {
        vec![FieldError {
            field: "code",
            message,
        }]
    };
    let typed: String = form.code.chars().take(40).collect();
    let errors = match normalise(&form.code) {
        None => field_error(t.err_format.into()),
        Some(code) => {
            let now = state.clock.now();
            let audit = parent_event(&state, &citizen, "guardian-pairing", None);
            let outcome = state
                .store
                .redeem_pairing_code(
                    citizen.actor_bsn(),
                    &code,
                    now,
                    &PairingLimit::default(),
                    &audit,
                )
                .await?;
            match outcome {
                Redemption::Paired { link } => {
                    return Ok(Redirect::to(&format!("/ouder-en-kind/kind/{link}")).into_response());
                }
                Redemption::Unknown => field_error(t.err_unknown.into()),
                Redemption::Expired => field_error(t.err_expired.into()),
                Redemption::Used => field_error(t.err_used.into()),
                Redemption::OwnCode => field_error(t.err_own.into()),
                Redemption::Blocked { until } => {
                    let minutes = ((until - now).num_seconds().max(0) + 59) / 60;
                    let minutes = minutes.max(1);
                    let errors = field_error(format!("{} {minutes}.", t.err_blocked));
                    let page = render(&state, &citizen, None, errors, String::new()).await?;
                    return Ok(
                        (StatusCode::TOO_MANY_REQUESTS, Html(page.render()?)).into_response()
                    );
                }
            }
        }
    };
    let page = render(&state, &citizen, None, errors, typed).await?;
    Ok((StatusCode::BAD_REQUEST, Html(page.render()?)).into_response())
}

// --- Review and confirm -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal/guardian_review.html")]
struct ReviewPage {
    l: Layout,
    t: &'static MinorsText,
    action: String,
    sixteen: bool,
    summary: Option<Summary>,
    fingerprint: String,
    notice: Option<&'static str>,
    changed: bool,
}

#[derive(Debug, Deserialize)]
struct ReviewQuery {
    klaar: Option<String>,
}

/// The child of `link`, if it is this parent's (anyone else gets a 404).
async fn child_of(
    state: &AppState,
    citizen: &Citizen,
    link: &str,
) -> Result<LinkedChild, PortalError> {
    if view_of(citizen) != View::Parent {
        return Err(PortalError::NotFound);
    }
    let link = uuid::Uuid::parse_str(link).map_err(|_| PortalError::NotFound)?;
    state
        .store
        .linked_child(citizen.actor_bsn(), link)
        .await?
        .ok_or(PortalError::NotFound)
}

async fn review_page(
    state: &AppState,
    citizen: &Citizen,
    child: &LinkedChild,
    notice: Option<&'static str>,
    changed: bool,
) -> Result<ReviewPage, PortalError> {
    let t = MinorsText::get(citizen.lang());
    let name = child_label(child.name.as_deref(), &child.bsn, citizen.lang());
    let sixteen = child.birth_date.is_some() && age_of(child.birth_date) == AgeGroup::From16;
    let pending = if sixteen {
        Vec::new()
    } else {
        pending_of(state, &child.bsn).await?
    };
    let summary = if pending.is_empty() {
        None
    } else {
        Some(summarise(state, citizen.lang(), &pending).await?)
    };
    Ok(ReviewPage {
        l: citizen.layout(&format!("{} {name}", t.review_title)),
        t,
        action: format!("/ouder-en-kind/kind/{}", child.link),
        sixteen,
        summary,
        fingerprint: fingerprint(&pending),
        notice,
        changed,
    })
}

async fn review(
    State(state): State<AppState>,
    citizen: Citizen,
    Path(link): Path<String>,
    Query(q): Query<ReviewQuery>,
) -> Result<Response, PortalError> {
    let child = child_of(&state, &citizen, &link).await?;
    let t = MinorsText::get(citizen.lang());
    let notice = match q.klaar.as_deref() {
        Some("bevestigd") => Some(t.confirmed),
        Some("afgewezen") => Some(t.declined),
        _ => None,
    };
    let page = review_page(&state, &citizen, &child, notice, false).await?;
    Ok(Html(page.render()?).into_response())
}

#[derive(Debug, Deserialize)]
struct DecideForm {
    /// `bevestigen` or `afwijzen`.
    keuze: String,
    /// The fingerprint of what was shown.
    versie: String,
}

/// The parent confirms or declines the pending answers they were shown.
async fn decide(
    State(state): State<AppState>,
    citizen: Citizen,
    Path(link): Path<String>,
    CsrfForm(form): CsrfForm<DecideForm>,
) -> Result<Response, PortalError> {
    let child = child_of(&state, &citizen, &link).await?;
    let confirm = match form.keuze.as_str() {
        "bevestigen" => true,
        "afwijzen" => false,
        _ => return Err(PortalError::BadRequest("keuze")),
    };
    if child.birth_date.is_some() && age_of(child.birth_date) == AgeGroup::From16 {
        return Err(PortalError::BadRequest("the child is 16 or older"));
    }
    let pending = pending_of(&state, &child.bsn).await?;
    if pending.is_empty() || !super::session::same_secret(&form.versie, &fingerprint(&pending)) {
        let page = review_page(&state, &citizen, &child, None, true).await?;
        return Ok((StatusCode::CONFLICT, Html(page.render()?)).into_response());
    }
    let now = state.clock.now();
    let actor = Actor::Representative {
        reference: state.store.patient_reference(citizen.actor_bsn()),
    };
    let answers: Vec<Answer> = pending
        .iter()
        .map(|a| Answer {
            state: if confirm {
                AnswerState::Active
            } else {
                AnswerState::Withdrawn
            },
            valid_from: if confirm { now } else { a.valid_from },
            provenance: Provenance {
                recorded_at: now,
                channel: Channel::GuardianConfirmation,
                actor: actor.clone(),
                catalogue_version: a.provenance.catalogue_version.clone(),
            },
            ..a.clone()
        })
        .collect();
    let (event, outcome) = if confirm {
        ("guardian-confirmation", "confirmed")
    } else {
        ("guardian-declined", "declined")
    };
    let mut audit = parent_event(&state, &citizen, event, Some(&child.bsn));
    audit.decision = Some(outcome.into());
    audit.details = serde_json::json!({ "link": child.link, "answers": answers.len() });
    // Confirming replaces the proposal and the answer in force with the same key; declining
    // replaces only the proposal, so whatever was in force before stays in force.
    if confirm {
        state
            .store
            .record_answers(&child.bsn, &answers, &audit)
            .await?;
    } else {
        state
            .store
            .decline_pending(&child.bsn, &answers, &audit)
            .await?;
    }
    let done = if confirm { "bevestigd" } else { "afgewezen" };
    Ok(Redirect::to(&format!("/ouder-en-kind/kind/{}?klaar={done}", child.link)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet_and_read_back_however_they_are_typed() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert_eq!(normalise(&grouped(&code)).as_deref(), Some(code.as_str()));
            assert_eq!(
                normalise(&format!(" {} ", grouped(&code).to_lowercase())).as_deref(),
                Some(code.as_str())
            );
            seen.insert(code);
        }
        assert!(seen.len() > 190, "codes repeat: {}", seen.len());
        for c in [b'0', b'O', b'1', b'I', b'L'] {
            assert!(!ALPHABET.contains(&c));
        }
        assert_eq!(normalise("K7MP-4XR"), None);
        assert_eq!(normalise("K7MP-4XRT0"), None);
        assert_eq!(normalise("K7MP-4XR0"), None, "0 is not in the alphabet");
        assert_eq!(normalise("k7mp 4xrt").as_deref(), Some("K7MP4XRT"));
    }
}
