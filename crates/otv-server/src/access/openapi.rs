//! `GET /openapi.json`: the OpenAPI 3.1 document of otv's HTTP interfaces (PRODUCT.md §12),
//! served on both listeners.
//!
//! Three parts, put together per request because the provider base path is configuration:
//! - otv's own JSON interfaces, from the `#[utoipa::path]` annotations on their handlers
//!   ([`OwnApi`]; absolute paths);
//! - the operational endpoints (`/healthz`, `/readyz`, `/metrics`, this document), written out
//!   here because their handlers live in `lib.rs` and answer fixed bodies;
//! - the provider interfaces relative to the base path ([`provider_api`]): the Mitz SOAP and
//!   FHIR subscription endpoints and the NDJSON import are written out here (their bodies are
//!   XML or FHIR, described by the Mitz documents and HL7 FHIR R4, not by Rust types).
//!
//! To document a new endpoint: annotate its handler with `#[utoipa::path(...)]` (a path
//! relative to the base for a provider interface, e.g. `/abonnementen/fhir/Subscription`), then
//! list it in `OwnApi`'s `paths(...)` for an absolute path, or in a small
//! `#[derive(OpenApi)]` struct that [`provider_api`] merges for a provider one. The end-to-end
//! test `every_documented_route_is_served` then checks that the real server serves it.

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, Paths, Required, ResponseBuilder, Type, schema::Schema,
};

use super::{authzen, plain};
use crate::AppState;

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// otv's own JSON interfaces.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "otv",
        description = "otv, an online consent service (online toestemmingsvoorziening) wire-compatible with Mitz. \
The provider interfaces are served over mutual TLS: the client certificate must be an allow-listed connector, \
and a connector may ask only for the URAs it may act for. Paths of the Mitz interfaces are relative to the configured \
base path; otv's own interfaces (`/access/v1/…`, `/v1/…`) are absolute. Refusals of the JSON interfaces are RFC 9457 \
problem details (`application/problem+json`) naming the wrong field by JSON pointer; an error inside otv is never a \
Permit. Every response echoes `X-Request-Id`.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2")
    ),
    paths(authzen::evaluation, authzen::evaluations, plain::closed_question),
    tags(
        (name = "AuthZEN", description = "The closed question as an OpenID AuthZEN Authorization API 1.0 evaluation. \
subject = the professional (id: UZI number; properties: role, consulter_ura, consulter_organisation_type, mandated), \
resource = the patient's record at a holder (id: BSN; properties: holder_ura, holder_organisation_type, data_category), \
action = `consult`, context = `purpose` (TREAT or COC)."),
        (name = "Closed question", description = "The closed question as plain JSON, each decision explained in English and Dutch."),
        (name = "Mitz", description = "The Mitz-compatible SOAP interfaces (paths relative to the provider base path)."),
        (name = "Operations", description = "Health, readiness, metrics and this document."),
    )
)]
pub struct OwnApi;

/// The OpenAPI document with the provider interfaces under `base` (e.g. `/mitz`).
pub fn document(base: &str) -> utoipa::openapi::OpenApi {
    let mut doc = OwnApi::openapi();
    doc.paths.merge(operational_paths());
    doc.merge(crate::assisted::handoff::Api::openapi());
    doc.merge(crate::assisted::api::Api::openapi());
    doc.merge(crate::provider::migration::Api::openapi());
    // The operators' outbox API (notify/admin.rs).
    doc.merge(crate::notify::admin::Api::openapi());
    let base = base.trim_end_matches('/');
    let mut provider = provider_api();
    provider.paths.paths = std::mem::take(&mut provider.paths.paths)
        .into_iter()
        .map(|(path, item)| (format!("{base}{path}"), item))
        .collect();
    doc.merge(provider);
    doc
}

/// The provider interfaces, at paths relative to the base path.
pub fn provider_api() -> utoipa::openapi::OpenApi {
    // Merge the provider endpoints' own `#[derive(OpenApi)]` structs here as they come, e.g.
    // `api.merge(crate::provider::subscription::Api::openapi());`.
    let mut paths = soap_paths();
    paths.merge(fhir_paths());
    utoipa::openapi::OpenApiBuilder::new().paths(paths).build()
}

/// Serves the document.
pub async fn serve(State(state): State<AppState>) -> impl IntoResponse {
    Json(document(&state.provider_base_path))
}

fn string() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// `{"status": …}` as the health endpoints answer it.
fn status_schema(values: &[&str], with_reason: bool) -> Schema {
    let mut object = ObjectBuilder::new().schema_type(Type::Object).property(
        "status",
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied())),
    );
    object = object.required("status");
    if with_reason {
        object = object.property(
            "reason",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("Why not ready.")),
        );
    }
    object.into()
}

fn get(summary: &str, description: &str, responses: &[(&str, &str, &str, Schema)]) -> PathItem {
    let mut op = OperationBuilder::new()
        .tag("Operations")
        .summary(Some(summary))
        .description(Some(description));
    for (status, text, media, schema) in responses {
        op = op.response(
            *status,
            ResponseBuilder::new()
                .description(*text)
                .content(
                    *media,
                    ContentBuilder::new().schema(Some(schema.clone())).build(),
                )
                .build(),
        );
    }
    PathItem::new(HttpMethod::Get, op.build())
}

fn operational_paths() -> Paths {
    let json = "application/json";
    let mut paths = Paths::new();
    paths.paths.insert(
        "/healthz".into(),
        get(
            "Liveness",
            "Answers while the process runs. On both listeners.",
            &[("200", "Alive", json, status_schema(&["ok"], false))],
        ),
    );
    paths.paths.insert(
        "/readyz".into(),
        get(
            "Readiness",
            "Ready when the database answers. On the plain listener.",
            &[
                ("200", "Ready", json, status_schema(&["ready"], false)),
                (
                    "503",
                    "The database does not answer",
                    json,
                    status_schema(&["unavailable"], true),
                ),
            ],
        ),
    );
    paths.paths.insert(
        "/metrics".into(),
        get(
            "Prometheus metrics",
            "The Prometheus text exposition format. On the plain listener.",
            &[("200", "The metrics", "text/plain; version=0.0.4", string())],
        ),
    );
    // The citizen portal's consent receipts (portal/receipt.rs).
    paths.paths.insert(
        crate::portal::receipt::JWKS_PATH.into(),
        get(
            "Consent receipt keys",
            "The public key(s) that verify otv's signed consent receipts (compact JWS, alg \
             EdDSA, Ed25519), as a JSON Web Key Set; a receipt's `kid` header is the key's \
             RFC 7638 thumbprint. On the plain listener.",
            &[(
                "200",
                "The key set",
                "application/jwk-set+json",
                ObjectBuilder::new().schema_type(Type::Object).into(),
            )],
        ),
    );
    paths.paths.insert(
        PATH.into(),
        get(
            "This document",
            "The OpenAPI 3.1 document of otv's HTTP interfaces. On both listeners.",
            &[(
                "200",
                "The document",
                json,
                ObjectBuilder::new().schema_type(Type::Object).into(),
            )],
        ),
    );
    paths
}

/// A Mitz SOAP 1.2 endpoint: XML in, XML out, faults with a 4xx status.
fn soap(summary: &str, description: &str) -> PathItem {
    let soap = "application/soap+xml";
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(soap, ContentBuilder::new().schema(Some(string())).build())
        .content(
            "text/xml",
            ContentBuilder::new().schema(Some(string())).build(),
        )
        .build();
    let response = |text: &str| {
        ResponseBuilder::new()
            .description(text)
            .content(soap, ContentBuilder::new().schema(Some(string())).build())
            .build()
    };
    let op = OperationBuilder::new()
        .tag("Mitz")
        .summary(Some(summary))
        .description(Some(description))
        .request_body(Some(body))
        .response("200", response("The answer"))
        .response(
            "400",
            response("SOAP Sender fault: the request is malformed (the fault names what)"),
        )
        .response(
            "403",
            response("SOAP Sender fault: not an allowed connector, or not allowed for the URA"),
        )
        .response("413", response("SOAP Sender fault: the body is too large"))
        .response(
            "415",
            response("SOAP Sender fault: not application/soap+xml or text/xml"),
        )
        .build();
    PathItem::new(HttpMethod::Post, op)
}

fn soap_paths() -> Paths {
    let mut paths = Paths::new();
    paths.paths.insert(
        "/geslotenautorisatievraag/xacml3".into(),
        soap(
            "Closed question (SOAP 1.2 / XACML 3.0)",
            "The Mitz closed question: an XACMLAuthzDecisionQuery with one XACML 3.0 Request; one Result per data category, in request order. Indeterminate when otv failed.",
        ),
    );
    paths.paths.insert(
        "/openautorisatievraag".into(),
        soap(
            "Open question (IHE XCPD ITI-56)",
            "The Mitz open question: a PatientLocationQuery with an XUA SAML assertion; the locations of records the consulter may receive.",
        ),
    );
    paths
}

/// FHIR R4 in JSON or XML (the body's format decides; `Accept` otherwise).
const FHIR: [&str; 2] = ["application/fhir+json", "application/fhir+xml"];

/// An operation of the FHIR subscription interfaces: FHIR bodies, `OperationOutcome` refusals.
fn fhir_operation(
    summary: &str,
    description: &str,
    body: Option<&str>,
    answers: &[(&str, &str)],
) -> utoipa::openapi::path::Operation {
    let resource = |what: &str| {
        let mut content = ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
            .build();
        content.description = Some(what.to_owned());
        content
    };
    let mut op = OperationBuilder::new()
        .tag("Mitz")
        .summary(Some(summary))
        .description(Some(description));
    if let Some(what) = body {
        let mut b = RequestBodyBuilder::new().required(Some(Required::True));
        for media in FHIR {
            b = b.content(media, resource(what));
        }
        op = op.request_body(Some(b.build()));
    }
    let refusals = [
        ("400", "Not valid FHIR (OperationOutcome)"),
        (
            "403",
            "Not an allowed connector, or not allowed for the URA (OperationOutcome)",
        ),
        ("415", "Neither FHIR JSON nor FHIR XML (OperationOutcome)"),
        ("429", "Throttled; see Retry-After (OperationOutcome)"),
    ];
    for (status, text) in answers.iter().chain(refusals.iter()) {
        let mut r = ResponseBuilder::new().description(*text);
        for media in FHIR {
            r = r.content(media, resource(text));
        }
        op = op.response(*status, r.build());
    }
    op.build()
}

/// The id of a subscription in the path.
fn id_parameter() -> utoipa::openapi::path::Parameter {
    utoipa::openapi::path::ParameterBuilder::new()
        .name("id")
        .parameter_in(utoipa::openapi::path::ParameterIn::Path)
        .required(Required::True)
        .description(Some("The subscription's id (a UUID)."))
        .schema(Some(string()))
        .build()
}

/// The Mitz subscription interfaces (PRODUCT.md §12) and otv's NDJSON bulk import.
fn fhir_paths() -> Paths {
    let mut paths = Paths::new();
    let created = [
        ("201", "Registered; `Location: Subscription/<id>`"),
        (
            "202",
            "Already registered by this connector for this patient and source system; the existing id",
        ),
        (
            "422",
            "A business rule is broken, e.g. an invalid BSN in `criteria` (OperationOutcome)",
        ),
    ];
    paths.paths.insert(
        "/abonnementen/fhir/Subscription".into(),
        PathItem::new(
            HttpMethod::Post,
            fhir_operation(
                "Register a subscription (localization)",
                "A FHIR R4 Subscription: status `requested`, reason `OTV`, criteria `Consent?_query=otv&patientid=<BSN>&providerid=<URA>&providertype=<type>`, a rest-hook channel.",
                Some("A FHIR R4 Subscription"),
                &created,
            ),
        ),
    );
    let mut by_id = PathItem::new(
        HttpMethod::Get,
        fhir_operation(
            "Read a subscription",
            "The subscription as registered.",
            None,
            &[
                ("200", "The Subscription"),
                (
                    "404",
                    "No such subscription for this connector (OperationOutcome)",
                ),
            ],
        ),
    );
    by_id.put = Some(fhir_operation(
        "Replace a subscription",
        "A new version of the subscription (e.g. another endpoint).",
        Some("A FHIR R4 Subscription"),
        &[
            ("200", "Replaced"),
            (
                "404",
                "No such subscription for this connector (OperationOutcome)",
            ),
            ("422", "A business rule is broken (OperationOutcome)"),
        ],
    ));
    by_id.delete = Some(fhir_operation(
        "End a subscription",
        "The holder no longer holds records of this patient.",
        None,
        &[
            ("200", "Ended"),
            ("204", "Ended"),
            (
                "404",
                "No such subscription for this connector (OperationOutcome)",
            ),
        ],
    ));
    by_id.parameters = Some(vec![id_parameter().into()]);
    paths
        .paths
        .insert("/abonnementen/fhir/Subscription/{id}".into(), by_id);
    paths.paths.insert(
        "/abonnementen/fhir".into(),
        PathItem::new(
            HttpMethod::Post,
            fhir_operation(
                "Register subscriptions in a batch",
                "A FHIR `batch` Bundle of Subscription entries; the response Bundle has one entry per request entry.",
                Some("A FHIR R4 batch Bundle"),
                &[("200", "A batch-response Bundle")],
            ),
        ),
    );
    let import_id = utoipa::openapi::path::ParameterBuilder::new()
        .name("import_id")
        .parameter_in(utoipa::openapi::path::ParameterIn::Query)
        .required(Required::True)
        .description(Some("The client's id for the import; re-send the same body with the same id to continue after an interruption."))
        .schema(Some(string()))
        .build();
    let progress = |text: &str| {
        ResponseBuilder::new()
            .description(text)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            )
            .build()
    };
    let problem = |text: &str| {
        ResponseBuilder::new()
            .description(text)
            .content(
                super::problem::PROBLEM_CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Object)))
                    .build(),
            )
            .build()
    };
    let ndjson = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content(
            "application/fhir+ndjson",
            ContentBuilder::new().schema(Some(string())).build(),
        )
        .content(
            "application/x-ndjson",
            ContentBuilder::new().schema(Some(string())).build(),
        )
        .build();
    let import = OperationBuilder::new()
        .tag("Mitz")
        .summary(Some("Bulk registration (NDJSON)"))
        .description(Some("One FHIR R4 Subscription in JSON per line, streamed and committed in chunks; the answer counts lines read, skipped, created, already registered and refused (with line numbers and FHIR paths)."))
        .request_body(Some(ndjson))
        .response("200", progress("The import's outcome"))
        .response("400", problem("A bad import id (problem details)"))
        .response("403", problem("Not an allowed connector (problem details)"))
        .response("409", problem("Another input or a run in progress under this id (problem details)"))
        .response("415", problem("Not NDJSON (problem details)"))
        .build();
    let status = OperationBuilder::new()
        .tag("Mitz")
        .summary(Some("Progress of a bulk registration"))
        .response("200", progress("The import's progress"))
        .response("403", problem("Not an allowed connector (problem details)"))
        .response("404", problem("No such import (problem details)"))
        .build();
    let mut item = PathItem::new(HttpMethod::Post, import);
    item.get = Some(status);
    item.parameters = Some(vec![import_id.into()]);
    paths
        .paths
        .insert("/abonnementen/fhir/Subscription/$import".into(), item);
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (method, path) the document lists.
    fn operations(doc: &serde_json::Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["get", "post", "put", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_interface() {
        let text = serde_json::to_string(&document("/mitz")).unwrap();
        // An independent reader of OpenAPI 3.1.
        let spec = oas3::from_json(&text).expect("a valid OpenAPI 3.1 document");
        assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ops = operations(&doc);
        for (method, path) in [
            ("POST", "/access/v1/evaluation"),
            ("POST", "/access/v1/evaluations"),
            ("POST", "/v1/closed-question"),
            ("GET", "/healthz"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
            ("GET", "/openapi.json"),
            ("GET", "/.well-known/otv-receipt-keys.json"),
            ("POST", "/mitz/geslotenautorisatievraag/xacml3"),
            ("POST", "/mitz/openautorisatievraag"),
            ("POST", "/mitz/abonnementen/fhir"),
            ("POST", "/mitz/abonnementen/fhir/Subscription"),
            ("GET", "/mitz/abonnementen/fhir/Subscription/{id}"),
            ("PUT", "/mitz/abonnementen/fhir/Subscription/{id}"),
            ("DELETE", "/mitz/abonnementen/fhir/Subscription/{id}"),
            ("POST", "/mitz/abonnementen/fhir/Subscription/$import"),
            ("GET", "/mitz/abonnementen/fhir/Subscription/$import"),
        ] {
            assert!(
                ops.contains(&(method.to_owned(), path.to_owned())),
                "{method} {path} missing from {ops:?}"
            );
        }
        let problem = &doc["paths"]["/access/v1/evaluation"]["post"]["responses"]["422"]["content"];
        assert!(
            problem.get("application/problem+json").is_some(),
            "{problem}"
        );
        for schema in [
            "EvaluationRequest",
            "EvaluationsRequest",
            "EvaluationResponse",
            "ClosedQuestionRequest",
            "ClosedQuestionResponse",
            "Problem",
            "DecidingAnswer",
        ] {
            assert!(
                doc["components"]["schemas"].get(schema).is_some(),
                "schema {schema} missing"
            );
        }
    }

    #[test]
    fn without_a_base_path_the_provider_interfaces_are_at_the_root() {
        let doc = serde_json::to_value(document("")).unwrap();
        assert!(
            doc["paths"]
                .get("/geslotenautorisatievraag/xacml3")
                .is_some()
        );
    }
}
