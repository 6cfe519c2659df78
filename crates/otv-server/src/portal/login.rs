//! Logging in (inloggen): the login page, the development login and what both share with the
//! OpenID Connect login ([`establish`]): the session, the citizen's details, the audit record
//! and the way on (terms of use first when the current version is not accepted yet).
//!
//! The development login exists only when `portal.dev_login` is on (otherwise its URL is a
//! 404) and every page then says so in a banner.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::NaiveDate;
use otv_core::Bsn;
use otv_store::{AuditEvent, CitizenDetails, PortalSession};
use serde::Deserialize;

use super::error::PortalError;
use super::layout::Layout;
use super::session::{
    SESSION_COOKIE, Session, check_same_origin, cookie, random_token, same_secret, set_cookie,
    token_hash,
};
use super::text::texts;
use super::{Page, oidc};
use crate::{AppState, REQUEST_ID};

texts! {
    /// Words of the login page.
    pub(crate) struct LoginText {
        title: "Inloggen" / "Log in",
        intro: "Log in om uw toestemmingen te bekijken of te veranderen. In otv staan alleen uw keuzes, geen medische gegevens." / "Log in to see or change your consent choices. otv keeps only your choices, no medical data.",
        expired: "U was een tijd niet actief. Daarom bent u uitgelogd. Log opnieuw in om verder te gaan." / "You were inactive for a while, so you were logged out. Log in again to continue.",
        logged_out: "U bent uitgelogd." / "You are logged out.",
        oidc_button: "Inloggen met DigiD" / "Log in with DigiD",
        oidc_missing: "Inloggen is op dit moment niet ingesteld. Probeer het later nog eens." / "Logging in is not set up at the moment. Please try again later.",
        dev_heading: "Inloggen voor ontwikkelaars" / "Developer login",
        dev_intro: "Alleen voor testen. Vul een test-BSN in. Er wordt niets gecontroleerd." / "For testing only. Enter a test BSN. Nothing is checked.",
        bsn_label: "BSN" / "BSN",
        bsn_hint: "9 cijfers, bijvoorbeeld 900203638" / "9 digits, for example 900203638",
        name_label: "Naam (niet verplicht)" / "Name (optional)",
        birth_date_label: "Geboortedatum (niet verplicht)" / "Date of birth (optional)",
        birth_date_hint: "Als jaar-maand-dag, bijvoorbeeld 2011-04-30" / "As year-month-day, for example 2011-04-30",
        acting_for_label: "Ik regel dit voor iemand anders: BSN van die persoon (niet verplicht)" / "I am acting for someone else: that person's BSN (optional)",
        dev_button: "Inloggen (test)" / "Log in (test)",
        err_bsn: "Vul een geldig BSN in: 9 cijfers die de elfproef halen." / "Enter a valid BSN: 9 digits that pass the 11-test.",
        err_acting_for: "Vul bij ‘iemand anders’ een geldig BSN in, of laat het veld leeg." / "Enter a valid BSN for ‘someone else’, or leave the field empty.",
        err_birth_date: "Vul de geboortedatum in als jaar-maand-dag, bijvoorbeeld 2011-04-30, of laat het veld leeg." / "Enter the date of birth as year-month-day, for example 2011-04-30, or leave it empty.",
        err_form: "Het formulier was verlopen. Probeer het nog eens." / "The form had expired. Please try again.",
    }
}

/// The cookie that carries the login form's anti-forgery token before there is a session.
const PRELOGIN_COOKIE: &str = "otv_prelogin";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/inloggen", get(login_page))
        .route("/inloggen/ontwikkel", axum::routing::post(dev_login))
        .merge(oidc::routes())
}

/// One problem with a field of the development login form.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    /// The field's id (the error summary links to it).
    pub field: &'static str,
    /// What is wrong, in the page's language.
    pub message: &'static str,
}

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage {
    l: Layout,
    t: &'static LoginText,
    notice: Option<&'static str>,
    oidc: bool,
    dev: bool,
    prelogin: String,
    errors: Vec<FieldError>,
    form: DevLoginForm,
}

impl LoginPage {
    fn error_for(&self, field: &str) -> Option<&'static str> {
        self.errors
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message)
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    verlopen: Option<String>,
    uitgelogd: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    page: Page,
    session: Result<Session, Response>,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PortalError> {
    if session.is_ok() {
        return Ok(Redirect::to("/keuzes").into_response());
    }
    let t = LoginText::get(page.lang);
    let notice = if q.verlopen.is_some() {
        Some(t.expired)
    } else if q.uitgelogd.is_some() {
        Some(t.logged_out)
    } else {
        None
    };
    render_login(
        &state,
        &page,
        notice,
        Vec::new(),
        DevLoginForm::default(),
        StatusCode::OK,
    )
}

fn render_login(
    state: &AppState,
    page: &Page,
    notice: Option<&'static str>,
    errors: Vec<FieldError>,
    form: DevLoginForm,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let t = LoginText::get(page.lang);
    let prelogin = random_token();
    let html = LoginPage {
        l: Layout::public(page, t.title),
        t,
        notice,
        oidc: state.portal.config.oidc.is_some(),
        dev: state.portal.config.dev_login,
        prelogin: prelogin.clone(),
        errors,
        form,
    }
    .render()?;
    let mut response = (status, Html(html)).into_response();
    if state.portal.config.dev_login {
        response.headers_mut().append(
            SET_COOKIE,
            set_cookie(PRELOGIN_COOKIE, &prelogin, "/inloggen", Some(3600)),
        );
    }
    Ok(response)
}

/// The development login form. Also echoed back into the form when it has errors (never the
/// BSN fields: they are typed again).
#[derive(Debug, Default, Deserialize)]
struct DevLoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    bsn: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    acting_for: String,
}

async fn dev_login(
    State(state): State<AppState>,
    page: Page,
    headers: HeaderMap,
    axum::Form(form): axum::Form<DevLoginForm>,
) -> Result<Response, PortalError> {
    if !state.portal.config.dev_login {
        return Err(PortalError::NotFound);
    }
    check_same_origin(&headers)?;
    let t = LoginText::get(page.lang);
    let expected = cookie(&headers, PRELOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, &expected) {
        let errors = vec![FieldError {
            field: "bsn",
            message: t.err_form,
        }];
        return render_login(&state, &page, None, errors, form, StatusCode::FORBIDDEN);
    }
    let mut errors = Vec::new();
    let bsn = Bsn::parse_field(form.bsn.trim(), "bsn");
    if bsn.is_err() {
        errors.push(FieldError {
            field: "bsn",
            message: t.err_bsn,
        });
    }
    let birth_date = match form.birth_date.trim() {
        "" => Ok(None),
        d => d
            .parse::<NaiveDate>()
            .ok()
            .filter(|d| *d <= state.clock.now().date_naive())
            .map(Some)
            .ok_or(()),
    };
    if birth_date.is_err() {
        errors.push(FieldError {
            field: "birth_date",
            message: t.err_birth_date,
        });
    }
    let acting_for = match form.acting_for.trim() {
        "" => Ok(None),
        b => Bsn::parse_field(b, "acting_for").map(Some),
    };
    if acting_for.is_err() {
        errors.push(FieldError {
            field: "acting_for",
            message: t.err_acting_for,
        });
    }
    let (Ok(bsn), Ok(birth_date), Ok(acting_for)) = (bsn, birth_date, acting_for) else {
        return render_login(&state, &page, None, errors, form, StatusCode::BAD_REQUEST);
    };
    let name = Some(form.name.trim().to_owned()).filter(|n| !n.is_empty());
    let identity = Identity {
        bsn,
        name,
        birth_date,
        acting_for,
    };
    let mut response = establish(&state, &headers, identity, "development").await?;
    response.headers_mut().append(
        SET_COOKIE,
        set_cookie(PRELOGIN_COOKIE, "", "/inloggen", Some(0)),
    );
    Ok(response)
}

/// Who logged in, as the identity provider (or the development form) said.
#[derive(Debug)]
pub(crate) struct Identity {
    /// The person who logged in.
    pub bsn: Bsn,
    /// Their name.
    pub name: Option<String>,
    /// Their birth date.
    pub birth_date: Option<NaiveDate>,
    /// The citizen they act for, when they are a representative.
    pub acting_for: Option<Bsn>,
}

/// Starts a session for `identity` (method `oidc` or `development`): stores it, records the
/// citizen's details, audits the login and sends the browser on, to the terms of use first
/// when the current version is not accepted yet.
pub(crate) async fn establish(
    state: &AppState,
    headers: &HeaderMap,
    identity: Identity,
    method: &str,
) -> Result<Response, PortalError> {
    let store = &state.store;
    let config = &state.portal.config;
    let now = state.clock.now();
    let representative = identity
        .acting_for
        .as_ref()
        .is_some_and(|s| *s != identity.bsn);
    let (subject, subject_name, subject_birth_date) = match identity.acting_for.clone() {
        Some(subject) if representative => {
            // The identity provider speaks about the representative; what we know of the
            // represented citizen comes from their own record.
            let known = store.citizen_details(&subject).await?.unwrap_or_default();
            (subject, known.name, known.birth_date)
        }
        _ => {
            store
                .upsert_citizen(
                    &identity.bsn,
                    &CitizenDetails {
                        name: identity.name.clone(),
                        email: None,
                        birth_date: identity.birth_date,
                    },
                )
                .await?;
            let known = store
                .citizen_details(&identity.bsn)
                .await?
                .unwrap_or_default();
            (
                identity.bsn.clone(),
                identity.name.clone(),
                identity.birth_date.or(known.birth_date),
            )
        }
    };
    let accepted = store
        .terms_accepted(&identity.bsn, &config.terms_version)
        .await?;
    let token = random_token();
    let hash = token_hash(&token);
    let session = PortalSession {
        actor: identity.bsn.clone(),
        subject: subject.clone(),
        actor_name: identity.name.clone(),
        subject_name,
        subject_birth_date,
        csrf_token: random_token(),
        terms_version: accepted.then(|| config.terms_version.clone()),
        login_at: now,
        last_seen_at: now,
    };
    let idle =
        chrono::Duration::from_std(config.idle_timeout).unwrap_or(chrono::Duration::minutes(15));
    store
        .create_portal_session(&hash, &session, now - idle)
        .await?;
    store
        .audit(&AuditEvent {
            at: now,
            event: "portal-login".into(),
            patient: Some(store.patient_reference(&subject)),
            actor: if representative {
                format!("representative:{}", store.patient_reference(&identity.bsn))
            } else {
                "citizen".into()
            },
            request_id: headers
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            channel: Some(
                if representative {
                    "representative"
                } else {
                    "portal"
                }
                .into(),
            ),
            details: serde_json::json!({ "method": method, "representative": representative }),
            ..AuditEvent::default()
        })
        .await?;
    let target = if accepted { "/keuzes" } else { "/voorwaarden" };
    let mut response = Redirect::to(target).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, &token, "/", None));
    Ok(response)
}
