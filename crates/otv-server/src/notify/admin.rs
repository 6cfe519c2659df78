//! The operators' admin API over the outbox (PRODUCT.md §1 operator, §11): the counts, the
//! dead rows, and retrying them. JSON; errors as problem details (RFC 9457).
//!
//! Served on the plain listener under `/admin/v1/outbox…`, only to a request with
//! `Authorization: Bearer <admin_token>` (`[notify] admin_token`, compared in constant time);
//! without the setting every request is refused (401), so the API is off. Every retry is
//! audited (`outbox-retry`, actor `admin`).
//!
//! Rows are shown without their payloads (they name no BSN, but an operator has no need for
//! the consent views in them either).

use aws_lc_rs::constant_time;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use otv_store::{AuditEvent, OutboxRow, OutboxStatus};

/// Counts of the outbox by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusView {
    /// Rows to do, due now or later.
    pub pending: i64,
    /// Of those, the ones due now.
    pub due: i64,
    /// Rows being delivered (held by a live lease).
    pub claimed: i64,
    /// Rows parked as dead.
    pub dead: i64,
    /// Rows delivered.
    pub delivered: i64,
    /// When the oldest pending row was written.
    pub oldest_pending: Option<DateTime<Utc>>,
}

impl From<OutboxStatus> for StatusView {
    fn from(s: OutboxStatus) -> Self {
        StatusView {
            pending: s.pending,
            due: s.due,
            claimed: s.claimed,
            dead: s.dead,
            delivered: s.delivered,
            oldest_pending: s.oldest_pending,
        }
    }
}

/// The OpenAPI document of the admin API, merged into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(status, dead, retry_one, retry_all),
    tags((name = "Admin", description = "Operators: the outbox of notifications (PRODUCT.md §11). \
`Authorization: Bearer <[notify] admin_token>`; without that setting every request is refused."))
)]
pub struct Api;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::access::problem::Problem;

/// The path of the outbox status.
pub const STATUS_PATH: &str = "/admin/v1/outbox";
/// The path of the dead rows.
pub const DEAD_PATH: &str = "/admin/v1/outbox/dead";
/// Retry one dead row.
pub const RETRY_PATH: &str = "/admin/v1/outbox/dead/{id}/retry";
/// Retry every dead row.
pub const RETRY_ALL_PATH: &str = "/admin/v1/outbox/dead/retry";

/// The most dead rows listed at once.
pub const MAX_LISTED: usize = 1000;

/// The admin routes (every request refused without `[notify] admin_token`).
pub fn routes(_state: &AppState) -> Router<AppState> {
    Router::new()
        .route(STATUS_PATH, get(status))
        .route(DEAD_PATH, get(dead))
        .route(RETRY_PATH, post(retry_one))
        .route(RETRY_ALL_PATH, post(retry_all))
}

/// One outbox row as an operator sees it (no payload).
#[derive(Debug, Serialize, ToSchema)]
pub struct RowView {
    /// The row id (to retry it).
    pub id: Uuid,
    /// Its kind.
    pub kind: String,
    /// The subscription (or citizen) whose rows go out in order.
    pub ordering_key: Option<String>,
    /// Attempts made.
    pub attempts: i32,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When it was parked.
    pub dead_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

impl From<OutboxRow> for RowView {
    fn from(r: OutboxRow) -> Self {
        RowView {
            id: r.id,
            kind: r.kind,
            ordering_key: r.ordering_key,
            attempts: r.attempts,
            created_at: r.created_at,
            dead_at: r.dead_at,
            last_error: r.last_error,
        }
    }
}

/// The answer of a retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Retried {
    /// How many dead rows are pending again.
    pub retried: u64,
}

/// The refusal of a request without the right admin token; `None` when it may go on.
fn refused(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let expected = state.outbox.settings.admin_token.as_deref().unwrap_or("");
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !expected.is_empty()
        && constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok()
    {
        return None;
    }
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "The admin API needs the admin token",
        "send `Authorization: Bearer <admin_token>` with the token of the `[notify] admin_token` setting",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    Some(response)
}

fn store_problem(e: otv_store::StoreError) -> Response {
    tracing::error!(error = %e, "admin API: database");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "database",
        "The database did not answer",
        "try again later",
    )
    .into_response()
}

/// The counts of the outbox.
#[utoipa::path(get, path = "/admin/v1/outbox", tag = "Admin",
    responses(
        (status = 200, description = "Counts by state", body = StatusView),
        (status = 401, description = "No or a wrong admin token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    match state.store.outbox_status(state.clock.now()).await {
        Ok(s) => Json(StatusView::from(s)).into_response(),
        Err(e) => store_problem(e),
    }
}

/// The dead rows, longest dead first (at most 1000), without payloads.
#[utoipa::path(get, path = "/admin/v1/outbox/dead", tag = "Admin",
    responses(
        (status = 200, description = "The dead rows", body = Vec<RowView>),
        (status = 401, description = "No or a wrong admin token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn dead(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    match state.store.dead_outbox(MAX_LISTED).await {
        Ok(rows) => Json(rows.into_iter().map(RowView::from).collect::<Vec<_>>()).into_response(),
        Err(e) => store_problem(e),
    }
}

/// Makes one dead row pending again, with a fresh back-off.
#[utoipa::path(post, path = "/admin/v1/outbox/dead/{id}/retry", tag = "Admin",
    params(("id" = String, Path, description = "The row id (a UUID)")),
    responses(
        (status = 200, description = "Pending again", body = Retried),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or a wrong admin token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No dead row with this id", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_one(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-id",
            "The row id is not a UUID",
            "path segment `id`: not a UUID",
        )
        .into_response();
    };
    retry(&state, Some(id)).await
}

/// Makes every dead row pending again.
#[utoipa::path(post, path = "/admin/v1/outbox/dead/retry", tag = "Admin",
    responses(
        (status = 200, description = "How many are pending again", body = Retried),
        (status = 401, description = "No or a wrong admin token", body = Problem, content_type = "application/problem+json"),
    ))]
async fn retry_all(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = refused(&state, &headers) {
        return r;
    }
    retry(&state, None).await
}

async fn retry(state: &AppState, id: Option<Uuid>) -> Response {
    let retried = match state.store.retry_dead_outbox(id, state.clock.now()).await {
        Ok(n) => n,
        Err(e) => return store_problem(e),
    };
    if let Some(id) = id
        && retried == 0
    {
        return Problem::new(
            StatusCode::NOT_FOUND,
            "not-dead",
            "No dead row with this id",
            format!("outbox row {id} is unknown or not dead"),
        )
        .into_response();
    }
    let event = AuditEvent {
        at: state.clock.now(),
        event: "outbox-retry".into(),
        actor: "admin".into(),
        decision: Some("retried".into()),
        details: serde_json::json!({ "id": id, "retried": retried }),
        ..AuditEvent::default()
    };
    if let Err(e) = state.store.audit(&event).await {
        return store_problem(e);
    }
    state.outbox.wake.notify_one();
    Json(Retried { retried }).into_response()
}
