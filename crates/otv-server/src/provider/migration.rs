//! `POST /v1/migration/consents` (PRODUCT.md §9, on the mutual-TLS provider listener): a provider
//! hands over the consents it kept locally as FHIR `Consent` resources shaped like the
//! notification Consents. The body decides the form:
//! - `application/fhir+json` or `application/fhir+xml`: a `batch` Bundle of at most 1000
//!   Consents (with the Patients and Organizations they refer to). The answer is a
//!   `batch-response` Bundle in the same format, one entry per request entry: `201 Created`
//!   (answers migrated; an informational issue counts them), `200 OK` (every option already
//!   answered, or a referenced Patient or Organization), `422` (locked profile, or a rule
//!   broken), `400` (not valid FHIR) or `403` (the connector may not act for the holder), each
//!   refusal with an `OperationOutcome` naming the element. All Consents of one Bundle commit in
//!   one transaction.
//! - `application/x-ndjson` (or `application/fhir+ndjson`, `application/ndjson`): one Consent
//!   in FHIR JSON per line, streamed, committed per 5,000 Consents. The answer is a JSON summary
//!   (`MigrationReport`): lines read, answers migrated, keys skipped because answered, citizens
//!   skipped because locked, refused lines with line number and FHIR path. Never a BSN.
//!
//! The mapping from Consent to answers, and its reasons, is in [`crate::migration`].

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use otv_wire::fhir::{
    self, BatchResponseEntry, ConsentBatchEntry, Issue, IssueCode, IssueSeverity,
    MAX_CONSENT_BATCH_BYTES,
};
use uuid::Uuid;

use super::subscription::Format;
use super::{Caller, Rejection, audit_rejection};
use crate::AppState;
use crate::access::problem::Problem;
use crate::migration::{DEFAULT_CHUNK, MigrationReport, Migrator, Refused, audit_run, run_ndjson};
use crate::request_id;

/// Where the endpoint is.
pub const PATH: &str = "/v1/migration/consents";

/// Media types of the NDJSON form.
const NDJSON_MEDIA_TYPES: &[&str] = &[
    "application/x-ndjson",
    "application/fhir+ndjson",
    "application/ndjson",
];

/// The endpoint's documentation in the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(handle),
    tags((name = "Migration", description = "Migration of consents a provider kept locally (PRODUCT.md §9)."))
)]
pub struct Api;

fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    Problem::new(status, code, title, detail).into_response()
}

/// Migrates a batch Bundle or an NDJSON stream of Consents.
#[utoipa::path(
    post,
    path = "/v1/migration/consents",
    tag = "Migration",
    summary = "Migrate consents a provider kept locally",
    description = "FHIR R4 `Consent` resources shaped like otv's notification Consents (`status` active = yes, inactive = no; \
`scope` patient-privacy; `category` = data category; one `http://fhir.nl/StructureDefinition/OTV-ProviderCategory` extension per \
consulting category; `provision.actor` with role CST = the holder's Organization (URA, organisation type); `patient` = a Patient \
with the BSN). Each Consent becomes one answer per consulting category for the holder's category (catalogue), stored only where \
the citizen has no answer yet; nothing is ever replaced, so sending the same input again changes nothing. Citizens who locked \
their profile against provider changes are passed over. The connector must be allowed to act for every holder URA. \
As `application/fhir+json` or `application/fhir+xml`: a `batch` Bundle (at most 1000 entries), answered with a `batch-response` \
Bundle, one entry per request entry. As `application/x-ndjson`: one Consent in FHIR JSON per line (Patient and Organization \
contained, or logical references by identifier), answered with a JSON summary.",
    request_body(content = String, description = "A batch Bundle (FHIR JSON or XML) or NDJSON", content_type = "application/x-ndjson"),
    responses(
        (status = 200, description = "A `batch-response` Bundle (FHIR JSON or XML), or the NDJSON summary: `lines_read`, `consents`, `answers_migrated`, `keys_already_answered`, `citizens_locked`, `refused`, `refusals` (line, reason, issues with FHIR `path`)"),
        (status = 400, description = "Not a readable Bundle (OperationOutcome), or the NDJSON input broke off (problem details)"),
        (status = 403, description = "Not an allowed connector"),
        (status = 413, description = "The Bundle is larger than 16 MiB"),
        (status = 415, description = "Another Content-Type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The Bundle is not a `batch`, or has more than 1000 entries (OperationOutcome)"),
        (status = 500, description = "otv failed; what was committed stays (sending the same input again is harmless)"),
    )
)]
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = media_type(&headers);
    let ndjson = NDJSON_MEDIA_TYPES.contains(&media.as_str());
    let format = Format::of_body(&headers);
    let request_id = request_id(&headers);
    let connector_id = caller.0.as_ref().map(|c| c.id().to_owned());
    let refuse = async |status: StatusCode, kind: &str, detail: String| {
        audit_rejection(
            &state,
            Rejection {
                interface: "consent-migration",
                channel: if ndjson { "fhir-ndjson" } else { "fhir" },
                request_id: request_id.clone(),
                connector: connector_id.as_deref(),
                kind,
                details: serde_json::json!({ "problem": detail }),
            },
        )
        .await;
        match format {
            Some(f) if !ndjson => {
                let code = match status {
                    StatusCode::FORBIDDEN => IssueCode::Forbidden,
                    StatusCode::PAYLOAD_TOO_LARGE => IssueCode::TooLong,
                    _ => IssueCode::Invalid,
                };
                f.outcome(status, &[Issue::error(code, None, detail)])
            }
            _ => problem(status, kind, &detail),
        }
    };
    if !ndjson && format.is_none() {
        let detail = "Content-Type must be application/fhir+json or application/fhir+xml (a batch \
                      Bundle) or application/x-ndjson (one Consent per line)";
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media-type",
            detail.into(),
        )
        .await;
    }
    let Some(connector) = caller.0 else {
        let detail = "the client certificate is not an allowed connector".to_owned();
        return refuse(StatusCode::FORBIDDEN, "unknown-connector", detail).await;
    };
    let may_act_for = |ura: &otv_core::Ura| connector.may_act_for(ura);
    let m = Migrator {
        store: &state.store,
        catalogue: &state.catalogue,
        connector_id: connector.id(),
        may_act_for: &may_act_for,
        now: state.clock.now(),
        via: "api",
        request_id: request_id.clone(),
    };
    if ndjson {
        let outcome = run_ndjson(&m, body.into_data_stream(), DEFAULT_CHUNK, &mut |_| {}).await;
        return match outcome {
            Ok(report) => {
                audit_run(&state.store, &m, Ok(&report)).await;
                let body = serde_json::to_string(&report).expect("reports serialise");
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            Err(e) => {
                audit_run(&state.store, &m, Err(&e.to_string())).await;
                match e {
                    crate::migration::MigrationError::Input { .. } => {
                        problem(StatusCode::BAD_REQUEST, "input-interrupted", &e.to_string())
                    }
                    crate::migration::MigrationError::Store(err) => {
                        tracing::error!(error = %err, "migration failed in storage");
                        problem(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "storage",
                            "otv could not store the migration; what was committed stays, and \
                             sending the same input again is harmless",
                        )
                    }
                }
            }
        };
    }
    let format = format.expect("checked above");
    let bytes = match axum::body::to_bytes(body, MAX_CONSENT_BATCH_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            let detail = format!("the Bundle is larger than {MAX_CONSENT_BATCH_BYTES} bytes");
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail).await;
        }
    };
    let parsed = match format {
        Format::Json => fhir::parse_consent_batch_json(&bytes),
        Format::Xml => fhir::parse_consent_batch_xml(&bytes),
    };
    let entries = match parsed {
        Ok(entries) => entries,
        Err(e) => {
            audit_rejection(
                &state,
                Rejection {
                    interface: "consent-migration",
                    channel: "fhir",
                    request_id: request_id.clone(),
                    connector: Some(connector.id()),
                    kind: "malformed",
                    details: serde_json::json!({ "problem": e.to_string() }),
                },
            )
            .await;
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return format.outcome(status, e.issues());
        }
    };
    let mut responses: Vec<Option<BatchResponseEntry>> = vec![None; entries.len()];
    let mut items = Vec::new();
    let mut item_entry = Vec::new();
    let mut types = HashMap::new();
    let mut report = MigrationReport {
        connector: connector.id().to_owned(),
        lines_read: entries.len() as u64,
        ..MigrationReport::default()
    };
    for (i, entry) in entries.into_iter().enumerate() {
        let refused = match entry {
            ConsentBatchEntry::Referenced => {
                responses[i] = Some(BatchResponseEntry::error(
                    200,
                    vec![information(
                        "read with the Consents that refer to it; otv stores no Patient or Organization",
                    )],
                ));
                continue;
            }
            ConsentBatchEntry::Refused(e) | ConsentBatchEntry::Consent(Err(e)) => Refused::fhir(e),
            ConsentBatchEntry::Consent(Ok(consent)) => match m.item(consent, &mut types).await {
                Ok(item) => {
                    items.push(item);
                    item_entry.push(i);
                    report.consents += 1;
                    continue;
                }
                Err(refused) => refused,
            },
        };
        report.refused += 1;
        report.refusals.push(refused.refusal(i as u64));
        responses[i] = Some(BatchResponseEntry::error(refused.status, refused.issues));
    }
    let outcomes = if items.is_empty() {
        Vec::new()
    } else {
        match state.store.migrate_answers(&items, &m.change_audit()).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "migration failed in storage");
                audit_run(&state.store, &m, Err("storage")).await;
                return format.outcome(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &[Issue::error(
                        IssueCode::Exception,
                        None,
                        "otv could not store the migration; nothing of this Bundle was stored",
                    )],
                );
            }
        }
    };
    let mut locked = std::collections::HashSet::new();
    for ((item, outcome), &i) in items.iter().zip(&outcomes).zip(&item_entry) {
        report.answers_migrated += u64::from(outcome.migrated);
        report.keys_already_answered += u64::from(outcome.already_answered);
        responses[i] = Some(if outcome.locked {
            if locked.insert(&item.bsn) {
                report.citizens_locked += 1;
            }
            BatchResponseEntry::error(
                422,
                vec![Issue::error(
                    IssueCode::BusinessRule,
                    Some("Consent.patient".into()),
                    "the citizen has locked the profile against changes by providers; nothing \
                     was migrated",
                )],
            )
        } else if outcome.migrated > 0 {
            BatchResponseEntry::error(
                201,
                vec![information(&format!(
                    "migrated: {} answer(s); {} option(s) already answered and left as they were",
                    outcome.migrated, outcome.already_answered
                ))],
            )
        } else {
            BatchResponseEntry::error(
                200,
                vec![information(
                    "every option of this Consent was already answered; nothing changed",
                )],
            )
        });
    }
    audit_run(&state.store, &m, Ok(&report)).await;
    let responses: Vec<BatchResponseEntry> = responses
        .into_iter()
        .map(|r| r.expect("every entry answered"))
        .collect();
    format.batch_response(&Uuid::now_v7().to_string(), &responses)
}

fn information(text: &str) -> Issue {
    Issue {
        severity: IssueSeverity::Information,
        code: IssueCode::Informational,
        diagnostics: text.to_owned(),
        expression: None,
    }
}
