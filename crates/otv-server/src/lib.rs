//! otv's HTTP server: the router, its shared state, and the operational endpoints
//! (`/healthz`, `/readyz`, Prometheus `/metrics`), with request ids and request metrics on every
//! route. The provider interfaces and the portal attach here.
//!
//! Architecture invariant: handlers hold no business rules; they decode, call the core and the
//! store, and encode. Every request carries an `X-Request-Id` (taken from the caller or made
//! here) that is echoed in the response and recorded on the request's log span.
#![deny(missing_docs)]

pub mod access;
pub mod assisted;
pub mod clock;
pub mod closed_question;
pub mod identity;
pub mod import;
pub mod migration;
pub mod notify;
pub mod portal;
pub mod provider;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use otv_core::{Catalogue, DefaultPolicy};
use otv_store::Store;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// The header that carries the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of a request (set by the request-id layer when the caller sent none).
pub(crate) fn request_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Everything a handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub store: Store,
    /// The consent catalogue in force.
    pub catalogue: Arc<Catalogue>,
    /// What "no answer" means.
    pub policy: DefaultPolicy,
    /// Renders the Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// The connector allow-list.
    pub connectors: Arc<provider::Connectors>,
    /// Development only: serve the provider interfaces on the plain-HTTP listener too, with
    /// the connector named by a header instead of a client certificate.
    pub dev_plain_provider_http: bool,
    /// Base path of the provider interfaces, e.g. `/mitz` (empty for the root).
    pub provider_base_path: String,
    /// The `Audience` that open-question SAML assertions must name.
    pub saml_audience: String,
    /// The per-connector rate limit of the subscription endpoints.
    pub subscription_throttle: Arc<provider::subscription::Throttle>,
    /// Who may sign an open question's SAML assertion: certificates chaining to the provider
    /// trust store. `None` (no trust store configured) refuses every signed assertion.
    pub saml_signers: Option<Arc<tls::SignerTrust>>,
    /// The citizen portal: its configuration and OpenID Connect client.
    pub portal: Arc<portal::Portal>,
    /// The time every rule is decided at ([`clock::Clock::system`] outside tests).
    pub clock: clock::Clock,
    /// Provider-assisted recording: enrolment-token trust anchors, hand-off settings.
    pub assisted: Arc<assisted::Assisted>,
    /// Citizen e-mail over SMTP; `None` when `[mail]` is not configured (mail rows then wait).
    pub mail: Option<Arc<notify::mail::Mailer>>,
    /// The outbox delivery engine: its settings, the rest-hook client, the workers' wake-up.
    pub outbox: Arc<notify::Outbox>,
}

/// Installs the process-wide Prometheus recorder. Call once per process.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    Ok(PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ])?
        .install_recorder()?)
}

fn operational_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .merge(access::openapi_routes())
}

fn with_provider_routes(router: Router<AppState>, base: &str) -> Router<AppState> {
    // otv's own JSON interfaces are at absolute paths, not under the Mitz base path.
    let router = router.merge(access::routes());
    // The direct raadplegersknop and the enrolment-token check (`assisted/api.rs`).
    let router = router.merge(assisted::api::routes());
    // Provider-assisted recording: the hand-off links (`assisted/handoff.rs`).
    let router = router.route(
        assisted::handoff::PATH,
        axum::routing::post(assisted::handoff::create).layer(axum::extract::DefaultBodyLimit::max(
            otv_wire::MAX_INPUT_BYTES,
        )),
    );
    // Migration of locally kept consents (`provider/migration.rs`); the body is streamed.
    let router = router.route(
        provider::migration::PATH,
        axum::routing::post(provider::migration::handle),
    );
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        router.merge(provider::routes())
    } else {
        router.nest(base, provider::routes())
    }
}

/// The router of the plain-HTTP listener: health, readiness, metrics, the citizen portal, and
/// (development flag only) the provider interfaces.
pub fn router(state: AppState) -> Router {
    let mut routes = operational_routes().merge(portal::with_layers(portal::routes(), &state));
    // The operators' outbox API (only with `[notify] admin_token`).
    routes = routes.merge(notify::admin::routes(&state));
    if state.dev_plain_provider_http {
        routes = with_provider_routes(routes, &state.provider_base_path);
    }
    with_middleware(routes, state)
}

/// The router of the mutual-TLS provider listener: the provider interfaces, otv's own JSON
/// interfaces, health and the OpenAPI document.
pub fn provider_router(state: AppState) -> Router {
    let routes = with_provider_routes(
        Router::new()
            .route("/healthz", get(healthz))
            .merge(access::openapi_routes()),
        &state.provider_base_path,
    );
    with_middleware(routes, state)
}

fn with_middleware(routes: Router<AppState>, state: AppState) -> Router {
    routes
        // Wakes a delivery worker after a change, so its notifications go out at once.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            notify::wake_after_change,
        ))
        .layer(middleware::from_fn(record_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            // The path only: query strings may one day carry identifiers.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }).on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

async fn healthz() -> impl IntoResponse {
    ([("content-type", "application/json")], r#"{"status":"ok"}"#)
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (
            [("content-type", "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                r#"{"status":"unavailable","reason":"database does not answer"}"#,
            )
                .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    // The route pattern, not the path, so that ids in paths do not explode the label set.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("otv_http_requests_total", &labels).increment(1);
    metrics::histogram!("otv_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    response
}
