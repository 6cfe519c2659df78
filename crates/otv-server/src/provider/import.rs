//! `POST {base}/abonnementen/fhir/Subscription/$import?import_id=ID`: bulk registration by
//! NDJSON (one FHIR R4 Subscription in JSON per line, `Content-Type: application/fhir+ndjson` or
//! `application/x-ndjson`), streamed through [`crate::import`]; and `GET` of the same URL: the
//! import's progress.
//!
//! The answer is JSON: lines read, skipped (committed by an earlier request with the same id),
//! created, already registered, refused (with line numbers and FHIR paths, capped), and the
//! line committed through. A request cut off leaves every chunk committed before the cut; the
//! client re-sends the same body with the same id and the import continues after them.
//!
//! Whole-request errors are JSON problem details (RFC 9457) with a `code` naming the problem:
//! 415 media type, 400 import id, 403 connector, 404 unknown import (GET), 409 other input or a
//! run in progress under the same id. Every request is audited (counts, connector, import id;
//! never a patient).

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Caller, count_rejection};
use crate::AppState;
use crate::access::problem::Problem;
use crate::import::{
    DEFAULT_CHUNK_LINES, ImportActor, ImportError, ImportId, ImportOptions, ImportOutcome, audit,
    run,
};
use crate::request_id;

/// The query of both methods.
#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    /// The client's id for the import.
    import_id: Option<String>,
}

/// Media types an import body may have.
const NDJSON_MEDIA_TYPES: &[&str] = &[
    "application/fhir+ndjson",
    "application/x-ndjson",
    "application/ndjson",
];

/// A problem details response (RFC 9457) like every JSON interface's: `type`
/// `urn:otv:problem:<code>` names the problem for programs.
fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    Problem::new(status, code, title, detail).into_response()
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let body = serde_json::to_string(value).expect("reports serialise");
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ndjson_media_type(headers: &HeaderMap) -> bool {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    essence.is_some_and(|e| NDJSON_MEDIA_TYPES.contains(&e.as_str()))
}

/// The import id from the query, or the problem with it.
fn import_id(query: Result<Query<ImportQuery>, QueryRejection>) -> Result<ImportId, ImportError> {
    let id = query
        .ok()
        .and_then(|Query(q)| q.import_id)
        .unwrap_or_default();
    ImportId::parse(&id)
}

/// `POST`: runs (or continues) the import.
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ImportQuery>, QueryRejection>,
    body: Body,
) -> Response {
    let request_id = request_id(&headers);
    let connector_id = caller.0.as_ref().map(|c| c.id().to_owned());
    let refuse = async |status, code: &str, detail: String, id: Option<&ImportId>| {
        let who = ImportActor {
            actor: connector_id.as_deref().map_or_else(
                || "unknown-connector".to_owned(),
                |c| format!("connector:{c}"),
            ),
            channel: "fhir-ndjson",
            request_id: request_id.clone(),
        };
        let id = id.map(ImportId::as_str);
        audit_refusal(&state, who, connector_id.as_deref(), id, code, &detail).await;
        problem(status, code, &detail)
    };
    if !ndjson_media_type(&headers) {
        let detail = "Content-Type must be application/fhir+ndjson (or application/x-ndjson)";
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type",
            detail.into(),
            None,
        )
        .await;
    }
    let id = match import_id(query) {
        Ok(id) => id,
        Err(e) => {
            let detail = format!("query parameter `import_id`: {e}");
            return refuse(StatusCode::BAD_REQUEST, e.kind(), detail, None).await;
        }
    };
    let Some(connector) = caller.0 else {
        let detail = "the client certificate is not an allowed connector".to_owned();
        return refuse(
            StatusCode::FORBIDDEN,
            "unknown-connector",
            detail,
            Some(&id),
        )
        .await;
    };
    let may_act_for = |ura: &otv_core::Ura| connector.may_act_for(ura);
    let options = ImportOptions {
        connector_id: connector.id(),
        may_act_for: &may_act_for,
        import_id: &id,
        chunk_lines: DEFAULT_CHUNK_LINES,
    };
    let outcome = run(&state.store, &options, body.into_data_stream(), &mut |_| {}).await;
    let who = ImportActor {
        actor: format!("connector:{}", connector.id()),
        channel: "fhir-ndjson",
        request_id,
    };
    let audited = match &outcome {
        Ok(report) => ImportOutcome::Done(report),
        Err(e) => ImportOutcome::Stopped(e),
    };
    audit(
        &state.store,
        who,
        Some(connector.id()),
        Some(id.as_str()),
        audited,
    )
    .await;
    match outcome {
        Ok(report) => json(StatusCode::OK, &report),
        Err(e) => {
            let status = match &e {
                ImportError::InvalidId | ImportError::Input { .. } => StatusCode::BAD_REQUEST,
                ImportError::DifferentInput { .. }
                | ImportError::ShorterInput { .. }
                | ImportError::Concurrent { .. } => StatusCode::CONFLICT,
                ImportError::Store(err) => {
                    tracing::error!(error = %err, "import failed in storage");
                    return problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        e.kind(),
                        "otv could not store the import; re-send it with the same import id to continue",
                    );
                }
            };
            problem(status, e.kind(), &e.to_string())
        }
    }
}

/// `GET`: the import's progress.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ImportQuery>, QueryRejection>,
) -> Response {
    let Some(connector) = caller.0 else {
        return problem(
            StatusCode::FORBIDDEN,
            "unknown-connector",
            "the client certificate is not an allowed connector",
        );
    };
    let id = match import_id(query) {
        Ok(id) => id,
        Err(e) => {
            let detail = format!("query parameter `import_id`: {e}");
            return problem(StatusCode::BAD_REQUEST, e.kind(), &detail);
        }
    };
    match state
        .store
        .import_progress(connector.id(), id.as_str())
        .await
    {
        Ok(Some(progress)) => json(StatusCode::OK, &progress),
        Ok(None) => problem(
            StatusCode::NOT_FOUND,
            "unknown-import",
            &format!(
                "connector `{}` has no import `{id}` with committed lines",
                connector.id()
            ),
        ),
        Err(e) => {
            tracing::error!(error = %e, "import status failed");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "otv could not read the import; try again",
            )
        }
    }
}

/// Audits a request refused as a whole.
async fn audit_refusal(
    state: &AppState,
    who: ImportActor<'_>,
    connector: Option<&str>,
    import_id: Option<&str>,
    code: &str,
    detail: &str,
) {
    count_rejection("subscription-import", who.channel, code);
    audit(
        &state.store,
        who,
        connector,
        import_id,
        ImportOutcome::Refused { code, detail },
    )
    .await;
}
