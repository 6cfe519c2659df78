//! Logging out (uitloggen): a POST with the session's CSRF token ends the session in the store,
//! removes the cookie and is audited.

use axum::Router;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::de::IgnoredAny;

use super::error::PortalError;
use super::session::{CsrfForm, SESSION_COOKIE, Session, set_cookie};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/uitloggen", post(logout))
}

async fn logout(
    State(state): State<AppState>,
    session: Session,
    CsrfForm(_): CsrfForm<IgnoredAny>,
) -> Result<Response, PortalError> {
    state
        .store
        .delete_portal_session(session.token_sha256())
        .await?;
    state
        .store
        .audit(&session.audit_event(&state, "portal-logout"))
        .await?;
    let mut response = Redirect::to("/inloggen?uitgelogd=1").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(SESSION_COOKIE, "", "/", Some(0)));
    Ok(response)
}
