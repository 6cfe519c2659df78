//! Notification settings (`/meldingen`): the e-mail address, verified by a link
//! (`/e-mail/bevestigen?token=…`), and what the citizen wants to hear about: changes made by
//! someone else (on/off) and checks of their consent (off, immediately, daily digest).
//!
//! The link's token is random (256 bits); only its SHA-256 is stored, with an expiry of 24
//! hours. The link itself goes into an outbox row (`email-verification`) for the mailer (a
//! later issue). Opening the link shows a confirmation button rather than verifying on GET, so
//! that mail scanners that follow links verify nothing; the address is verified only for the
//! logged-in citizen it was set for.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;
use otv_store::{CheckNotice, EmailConfirmation, EmailVerification, SettingsChange};
use serde::Deserialize;

use super::error::PortalError;
use super::history::when;
use super::layout::Layout;
use super::session::{Citizen, CsrfForm, random_token, token_hash};
use super::text::texts;
use crate::AppState;

texts! {
    /// Words of the notification settings.
    pub(crate) struct NotificationsText {
        title: "Meldingen" / "Notifications",
        intro: "Wij kunnen u een e-mail sturen als er iets met uw toestemming gebeurt. In een e-mail staat nooit uw BSN en nooit medische informatie." / "We can send you an e-mail when something happens with your consent. An e-mail never contains your BSN or any medical information.",
        email_title: "Uw e-mailadres" / "Your e-mail address",
        email_label: "E-mailadres" / "E-mail address",
        email_hint: "Wij sturen een link naar dit adres. Klik op de link om te bevestigen dat het adres van u is." / "We send a link to this address. Click the link to confirm that the address is yours.",
        email_none: "U hebt nog geen e-mailadres opgegeven. Wij sturen u dus geen e-mail." / "You have not given an e-mail address yet, so we do not send you e-mail.",
        email_verified: "Dit adres is bevestigd:" / "This address is confirmed:",
        email_waiting: "Wij wachten op uw bevestiging van dit adres:" / "We are waiting for you to confirm this address:",
        email_waiting_until: "De link in de e-mail werkt tot" / "The link in the e-mail works until",
        email_error: "Vul een geldig e-mailadres in, zoals naam@voorbeeld.nl." / "Enter a valid e-mail address, like name@example.com.",
        email_send: "Stuur bevestigingslink" / "Send confirmation link",
        email_remove: "E-mailadres verwijderen" / "Remove e-mail address",
        email_sent: "Wij hebben een link gestuurd. Open de e-mail en klik op de link." / "We have sent a link. Open the e-mail and click the link.",
        email_removed: "Uw e-mailadres is verwijderd. Wij sturen u geen e-mail meer." / "Your e-mail address has been removed. We no longer send you e-mail.",
        prefs_title: "Waarover wilt u een e-mail?" / "What would you like an e-mail about?",
        changes_legend: "Als iemand anders uw keuzes verandert" / "When someone else changes your choices",
        changes_hint: "Bijvoorbeeld uw zorgverlener, uw vertegenwoordiger, of een zorgverlener in een noodgeval." / "For example your care provider, your representative, or a care provider in an emergency.",
        changes_on: "Ja, stuur mij een e-mail" / "Yes, send me an e-mail",
        changes_off: "Nee" / "No",
        checks_legend: "Als een zorgaanbieder controleert of hij uw gegevens mag delen" / "When a care provider checks whether it may share your data",
        checks_off: "Nee" / "No",
        checks_immediately: "Ja, meteen bij elke controle" / "Yes, at once for every check",
        checks_daily: "Ja, één e-mail per dag met alle controles" / "Yes, one e-mail a day with all checks",
        save: "Opslaan" / "Save",
        saved: "Uw keuzes voor meldingen zijn opgeslagen." / "Your notification choices have been saved.",
        confirm_title: "E-mailadres bevestigen" / "Confirm e-mail address",
        confirm_intro: "Klik op de knop om te bevestigen dat dit e-mailadres van u is." / "Click the button to confirm that this e-mail address is yours.",
        confirm_button: "Ja, dit is mijn e-mailadres" / "Yes, this is my e-mail address",
        confirmed: "Uw e-mailadres is bevestigd." / "Your e-mail address has been confirmed.",
        link_expired: "Deze link is verlopen. Vraag hieronder een nieuwe link aan." / "This link has expired. Ask for a new link below.",
        link_unknown: "Deze link werkt niet (meer). Misschien hebt u al een nieuwere link gekregen, of is het adres al bevestigd." / "This link does not work (any more). Perhaps you received a newer link, or the address is already confirmed.",
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/meldingen", get(show).post(save_preferences))
        .route("/meldingen/e-mail", post(set_email))
        .route("/meldingen/e-mail/verwijderen", post(remove_email))
        .route("/e-mail/bevestigen", get(confirm_page).post(confirm))
}

/// How long a verification link works.
const LINK_VALID_HOURS: i64 = 24;

#[derive(Debug, Default, Deserialize)]
struct Shown {
    #[serde(default)]
    melding: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/notifications.html")]
struct NotificationsPage {
    l: Layout,
    t: &'static NotificationsText,
    notice: Option<&'static str>,
    warning: Option<&'static str>,
    email_error: bool,
    email_value: String,
    email: Option<String>,
    verified: bool,
    waiting_until: Option<String>,
    notify_changes: bool,
    notify_checks: &'static str,
}

async fn render(
    state: &AppState,
    citizen: &Citizen,
    notice: Option<&'static str>,
    warning: Option<&'static str>,
    email_error: Option<String>,
) -> Result<Response, PortalError> {
    let t = NotificationsText::get(citizen.lang());
    let s = state.store.citizen_settings(citizen.subject()).await?;
    let page = NotificationsPage {
        l: citizen.layout(t.title),
        t,
        notice,
        warning,
        email_error: email_error.is_some(),
        email_value: email_error.unwrap_or_default(),
        verified: s.email_verified_at.is_some(),
        waiting_until: s
            .email_verified_at
            .is_none()
            .then_some(s.email_link_expires_at)
            .flatten()
            .map(when),
        email: s.email,
        notify_changes: s.notify_changes,
        notify_checks: s.notify_checks.as_str(),
    };
    let status = if page.email_error {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

async fn show(
    State(state): State<AppState>,
    citizen: Citizen,
    Query(q): Query<Shown>,
) -> Result<Response, PortalError> {
    let t = NotificationsText::get(citizen.lang());
    let (notice, warning) = match q.melding.as_deref() {
        Some("verstuurd") => (Some(t.email_sent), None),
        Some("verwijderd") => (Some(t.email_removed), None),
        Some("opgeslagen") => (Some(t.saved), None),
        Some("bevestigd") => (Some(t.confirmed), None),
        Some("verlopen") => (None, Some(t.link_expired)),
        Some("onbekend") => (None, Some(t.link_unknown)),
        _ => (None, None),
    };
    render(&state, &citizen, notice, warning, None).await
}

#[derive(Debug, Deserialize)]
struct PreferencesForm {
    changes: String,
    checks: String,
}

async fn save_preferences(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<PreferencesForm>,
) -> Result<Response, PortalError> {
    let notify_changes = match form.changes.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err(PortalError::BadRequest("changes value")),
    };
    let notify_checks =
        CheckNotice::parse(&form.checks).ok_or(PortalError::BadRequest("checks value"))?;
    let change = SettingsChange {
        notify_changes: Some(notify_changes),
        notify_checks: Some(notify_checks),
        ..SettingsChange::default()
    };
    state
        .store
        .update_citizen_settings(
            citizen.subject(),
            &change,
            &citizen.audit_event(&state, "settings-notifications"),
        )
        .await?;
    Ok(Redirect::to("/meldingen?melding=opgeslagen").into_response())
}

/// A plausible e-mail address: one `@`, something before it, a dot in the domain, no spaces or
/// angle brackets, at most 254 characters. The link proves the rest.
fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
}

/// The origin the citizen reached the portal on: the configured OpenID Connect redirect URL's
/// (the public address in production), else this request's `Host` (development).
fn origin(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(o) = &state.portal.config.oidc
        && let Some((scheme, rest)) = o.redirect_url.split_once("://")
    {
        let host = rest.split('/').next().unwrap_or(rest);
        return format!("{scheme}://{host}");
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

#[derive(Debug, Deserialize)]
struct EmailForm {
    email: String,
}

async fn set_email(
    State(state): State<AppState>,
    citizen: Citizen,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Result<Response, PortalError> {
    let address = form.email.trim();
    if !plausible_email(address) {
        return render(&state, &citizen, None, None, Some(address.to_owned())).await;
    }
    let token = random_token();
    let link = format!(
        "{}/e-mail/bevestigen?token={token}",
        origin(&state, &headers)
    );
    let request = EmailVerification {
        address,
        token_sha256: token_hash(&token),
        expires_at: state.clock.now() + Duration::hours(LINK_VALID_HOURS),
        link: &link,
    };
    state
        .store
        .request_email_verification(
            citizen.subject(),
            &request,
            &citizen.audit_event(&state, "settings-email"),
        )
        .await?;
    Ok(Redirect::to("/meldingen?melding=verstuurd").into_response())
}

#[derive(Debug, Deserialize)]
struct Empty {}

async fn remove_email(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<Response, PortalError> {
    state
        .store
        .remove_email(
            citizen.subject(),
            &citizen.audit_event(&state, "settings-email-remove"),
        )
        .await?;
    Ok(Redirect::to("/meldingen?melding=verwijderd").into_response())
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "portal/notifications_confirm.html")]
struct ConfirmPage {
    l: Layout,
    t: &'static NotificationsText,
    token: String,
}

async fn confirm_page(
    citizen: Citizen,
    Query(q): Query<TokenForm>,
) -> Result<Response, PortalError> {
    let t = NotificationsText::get(citizen.lang());
    // The token is base64url from `random_token`; anything else cannot be one.
    if q.token.is_empty()
        || q.token.len() > 64
        || !q
            .token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(Redirect::to("/meldingen?melding=onbekend").into_response());
    }
    let page = ConfirmPage {
        l: citizen.layout(t.confirm_title),
        t,
        token: q.token,
    };
    Ok(Html(page.render()?).into_response())
}

async fn confirm(
    State(state): State<AppState>,
    citizen: Citizen,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> Result<Response, PortalError> {
    let outcome = state
        .store
        .confirm_email(
            citizen.subject(),
            &token_hash(&form.token),
            state.clock.now(),
            &citizen.audit_event(&state, "settings-email-verify"),
        )
        .await?;
    let to = match outcome {
        EmailConfirmation::Confirmed => "/meldingen?melding=bevestigd",
        EmailConfirmation::Expired => "/meldingen?melding=verlopen",
        EmailConfirmation::Unknown => "/meldingen?melding=onbekend",
    };
    Ok(Redirect::to(to).into_response())
}

#[cfg(test)]
mod tests {
    use super::plausible_email;

    #[test]
    fn only_plausible_addresses_are_sent_a_link() {
        for ok in ["jan@example.org", "a.b+c@sub.example.nl"] {
            assert!(plausible_email(ok), "{ok}");
        }
        for bad in [
            "",
            "jan",
            "@example.org",
            "jan@example",
            "jan@@example.org",
            "jan @example.org",
            "jan@example.org.",
            "<a@b.nl>",
        ] {
            assert!(!plausible_email(bad), "{bad}");
        }
    }
}
