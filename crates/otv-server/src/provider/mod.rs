//! The provider interfaces (PRODUCT.md §12): what exchange systems and provider systems call,
//! over mutual TLS. This module resolves the caller to an allow-listed connector; each
//! submodule is one endpoint.

pub mod closed_question;
pub mod import;
pub mod migration;
pub mod open_question;
pub mod subscription;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use otv_core::Ura;
use otv_store::AuditEvent;
use otv_store::Connector;
use otv_wire::{FaultCode, soap_fault};

use crate::AppState;
use crate::identity::ClientIdentity;

/// Header naming the connector on the plain-HTTP development listener, where there is no
/// client certificate. Honoured only when the development flag is set.
pub const DEV_CONNECTOR_HEADER: &str = "x-otv-dev-connector";

/// One allow-listed connector, with the URAs it may act for as a set: an exchange system may
/// act for tens of thousands, and every request asks.
#[derive(Debug)]
struct Entry {
    id: String,
    acts_for: HashSet<Ura>,
}

/// The connector allow-list, by certificate fingerprint and by id.
#[derive(Debug, Default)]
pub struct Connectors {
    by_fingerprint: HashMap<String, Arc<Entry>>,
    by_id: HashMap<String, Arc<Entry>>,
}

impl Connectors {
    /// Builds the allow-list.
    pub fn new(connectors: impl IntoIterator<Item = Connector>) -> Connectors {
        let mut list = Connectors::default();
        for c in connectors {
            let entry = Arc::new(Entry {
                id: c.id.clone(),
                acts_for: c.acts_for.into_iter().collect(),
            });
            if let Some(fp) = &c.certificate_sha256 {
                list.by_fingerprint
                    .insert(fp.to_ascii_lowercase(), entry.clone());
            }
            list.by_id.insert(c.id, entry);
        }
        list
    }
}

/// The caller of a provider endpoint: an allow-listed connector, or nobody.
pub struct Caller(pub(crate) Option<AllowedConnector>);

/// A connector as allowed for this request: its allow-list entry, plus the URA in its UZI
/// server certificate.
#[derive(Debug, Clone)]
pub struct AllowedConnector {
    entry: Arc<Entry>,
    certificate_ura: Option<Ura>,
}

impl AllowedConnector {
    /// The connector's id.
    pub fn id(&self) -> &str {
        &self.entry.id
    }

    /// Whether it may act for `ura`.
    pub fn may_act_for(&self, ura: &Ura) -> bool {
        self.certificate_ura.as_ref() == Some(ura) || self.entry.acts_for.contains(ura)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let connectors = &state.connectors;
        if let Some(identity) = parts.extensions.get::<ClientIdentity>() {
            let allowed = connectors
                .by_fingerprint
                .get(&identity.certificate_sha256)
                .map(|entry| AllowedConnector {
                    entry: entry.clone(),
                    certificate_ura: identity.ura.clone(),
                });
            return Ok(Caller(allowed));
        }
        if state.dev_plain_provider_http
            && let Some(id) = parts
                .headers
                .get(DEV_CONNECTOR_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            let allowed = connectors.by_id.get(id).map(|entry| AllowedConnector {
                entry: entry.clone(),
                certificate_ura: None,
            });
            return Ok(Caller(allowed));
        }
        Ok(Caller(None))
    }
}

/// Reads at most `limit` bytes of a body; a longer body is refused without reading the rest.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, String> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| format!("the request body is larger than {limit} bytes"))
}

/// The provider endpoints, relative to the configured base path.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/geslotenautorisatievraag/xacml3",
            post(closed_question::handle),
        )
        .route("/openautorisatievraag", post(open_question::handle))
        .route("/abonnementen/fhir", post(subscription::batch))
        .route(
            "/abonnementen/fhir/Subscription",
            post(subscription::create),
        )
        .route(
            "/abonnementen/fhir/Subscription/{id}",
            axum::routing::get(subscription::read)
                .put(subscription::update)
                .delete(subscription::delete),
        )
        .route(
            "/abonnementen/fhir/Subscription/$import",
            post(import::handle).get(import::status),
        )
}

/// Whether a SOAP request came with an acceptable media type: SOAP 1.2's own, or `text/xml`,
/// which some connectors send.
fn soap_media_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(essence.as_str(), "application/soap+xml" | "text/xml")
}

/// A SOAP 1.2 fault response.
pub fn fault(status: StatusCode, code: FaultCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, otv_wire::SOAP_CONTENT_TYPE)],
        soap_fault(code, reason),
    )
        .into_response()
}

/// A refused provider request as it is audited and counted: which interface, over which
/// channel, who tried, and why.
pub(crate) struct Rejection<'a> {
    /// The interface, e.g. `closed-question`, `open-question`, `subscription`.
    pub interface: &'a str,
    /// How it was reached: `soap`, `authzen`, `json`, `fhir`.
    pub channel: &'a str,
    /// The request id.
    pub request_id: Option<String>,
    /// The allow-listed connector, when the caller was one.
    pub connector: Option<&'a str>,
    /// The kind of refusal, e.g. `malformed`, `not-allowed-for-ura`.
    pub kind: &'a str,
    /// What was wrong, as JSON (never a BSN).
    pub details: serde_json::Value,
}

/// Counts a refusal in `otv_provider_rejected_total`.
pub(crate) fn count_rejection(interface: &str, channel: &str, kind: &str) {
    metrics::counter!(
        "otv_provider_rejected_total",
        "interface" => interface.to_owned(),
        "channel" => channel.to_owned(),
        "kind" => kind.to_owned()
    )
    .increment(1);
}

/// Counts and audits a refused request (every interface's one way), without a patient: the BSN
/// of a request that failed validation or authorisation is not trusted enough to pseudonymise
/// into the log.
pub(crate) async fn audit_rejection(state: &AppState, r: Rejection<'_>) {
    count_rejection(r.interface, r.channel, r.kind);
    let event = AuditEvent {
        at: state.clock.now(),
        event: format!("{}-rejected", r.interface),
        actor: r.connector.map_or_else(
            || "unknown-connector".to_owned(),
            |c| format!("connector:{c}"),
        ),
        request_id: r.request_id,
        decision: Some("rejected".into()),
        reason: Some(r.kind.into()),
        channel: Some(r.channel.into()),
        details: r.details,
        ..AuditEvent::default()
    };
    if let Err(e) = state.store.audit(&event).await {
        tracing::error!(error = %e, interface = r.interface, "the audit record of a refused request could not be written");
    }
}

/// A SOAP request that passed the checks every provider interface makes, in this order:
/// media type (415), size (413), decoding (400, naming what is wrong), a known connector (403)
/// that may act for the URA the request speaks for (403). Each refusal is a SOAP Sender fault
/// and is audited.
pub struct Received<T> {
    /// The decoded request.
    pub request: T,
    /// The connector that sent it.
    pub connector: AllowedConnector,
    /// The request id.
    pub request_id: Option<String>,
}

/// Runs the intake checks for `interface` (e.g. `closed-question`). `decode` turns the body into
/// the request; `acting_for` names the URA the connector must be allowed to act for.
pub async fn receive<T>(
    state: &AppState,
    interface: &str,
    caller: Caller,
    headers: &HeaderMap,
    body: Body,
    decode: impl FnOnce(&[u8]) -> Result<T, otv_wire::WireError>,
    acting_for: impl FnOnce(&T) -> &Ura,
) -> Result<Received<T>, Response> {
    let request_id = crate::request_id(headers);
    let connector_id = caller.0.as_ref().map(|c| c.id().to_owned());
    let refuse = async |status, kind: &str, reason: String| {
        let rejection = Rejection {
            interface,
            channel: "soap",
            request_id: request_id.clone(),
            connector: connector_id.as_deref(),
            kind,
            details: serde_json::json!({ "problem": reason }),
        };
        audit_rejection(state, rejection).await;
        fault(status, FaultCode::Sender, &reason)
    };
    if !soap_media_type(headers) {
        let reason = "Content-Type must be application/soap+xml (or text/xml)".to_owned();
        return Err(refuse(StatusCode::UNSUPPORTED_MEDIA_TYPE, "media-type", reason).await);
    }
    let bytes = match read_body(body, otv_wire::MAX_INPUT_BYTES).await {
        Ok(b) => b,
        Err(reason) => return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, "too-large", reason).await),
    };
    let request = match decode(&bytes) {
        Ok(r) => r,
        Err(e) => return Err(refuse(StatusCode::BAD_REQUEST, "malformed", e.to_string()).await),
    };
    let Some(connector) = caller.0 else {
        let reason = "the client certificate is not an allowed connector".to_owned();
        return Err(refuse(StatusCode::FORBIDDEN, "unknown-connector", reason).await);
    };
    let ura = acting_for(&request);
    if !connector.may_act_for(ura) {
        let reason = format!("connector `{}` may not act for URA {ura}", connector.id());
        return Err(refuse(StatusCode::FORBIDDEN, "not-allowed-for-ura", reason).await);
    }
    Ok(Received {
        request,
        connector,
        request_id,
    })
}
