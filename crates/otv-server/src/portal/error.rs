//! [`PortalError`]: every failure of a portal handler becomes a readable page in the citizen's
//! language. The handler returns the error; the portal's middleware (which knows the language)
//! renders it, so `?` works everywhere. An internal error is logged without details that could
//! identify anyone and shows only a calm message: never a BSN, never a database text.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::Page;
use super::layout::Layout;

/// Why a portal request failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// A form without a valid CSRF token, or sent from another site (403). Nothing changed.
    #[error("form refused: {0}")]
    Forbidden(&'static str),
    /// The page or the thing asked for does not exist (or is not the citizen's): 404.
    #[error("not found")]
    NotFound,
    /// A request that cannot be read (400). Nothing changed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Logging in failed (the identity provider, the state cookie, a claim).
    #[error("login failed: {0}")]
    Login(String),
    /// Something inside otv failed (500). Logged; the citizen sees no details.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<otv_store::StoreError> for PortalError {
    fn from(e: otv_store::StoreError) -> Self {
        // StoreError never carries a BSN.
        PortalError::Internal(format!("store: {e}"))
    }
}

impl From<askama::Error> for PortalError {
    fn from(e: askama::Error) -> Self {
        PortalError::Internal(format!("template: {e}"))
    }
}

/// Which error page to show; put into the response's extensions by
/// [`PortalError::into_response`] and rendered by the portal middleware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorPage {
    Forbidden,
    NotFound,
    BadRequest,
    Login,
    Internal,
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, page) = match &self {
            PortalError::Forbidden(why) => {
                tracing::warn!(reason = why, "portal form refused");
                (StatusCode::FORBIDDEN, ErrorPage::Forbidden)
            }
            PortalError::NotFound => (StatusCode::NOT_FOUND, ErrorPage::NotFound),
            PortalError::BadRequest(why) => {
                tracing::info!(reason = why, "portal request refused");
                (StatusCode::BAD_REQUEST, ErrorPage::BadRequest)
            }
            PortalError::Login(why) => {
                tracing::warn!(reason = %why, "portal login failed");
                (StatusCode::BAD_REQUEST, ErrorPage::Login)
            }
            PortalError::Internal(why) => {
                tracing::error!(error = %why, "portal request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, ErrorPage::Internal)
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(page);
        response
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorTemplate {
    l: Layout,
    message: &'static str,
}

/// The error page for `page` in the request's language; with the header of `session` when
/// someone is logged in.
pub(crate) fn render(
    ctx: &Page,
    session: Option<&super::Session>,
    page: ErrorPage,
) -> Html<String> {
    let t = super::text::Common::get(ctx.lang);
    let (title, message) = match page {
        ErrorPage::Forbidden => (t.error_forbidden_title, t.error_forbidden),
        ErrorPage::NotFound => (t.error_not_found_title, t.error_not_found),
        ErrorPage::BadRequest => (t.error_bad_request_title, t.error_bad_request),
        ErrorPage::Login => (t.error_login_title, t.error_login),
        ErrorPage::Internal => (t.error_title, t.error_internal),
    };
    let tpl = ErrorTemplate {
        l: session.map_or_else(|| Layout::public(ctx, title), |s| s.layout(title)),
        message,
    };
    // The error page has no fields that can fail to render; fall back to plain text anyway.
    Html(tpl.render().unwrap_or_else(|_| message.to_owned()))
}
