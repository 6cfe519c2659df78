//! RFC 9457 problem details (`application/problem+json`): how every JSON interface of otv says
//! that a request was refused, naming the wrong field by JSON pointer.
//!
//! Axum's own JSON rejections (media type, body size, syntax, missing or mistyped fields) are
//! turned into problems here, so that every bad request answers in one format. Texts that may
//! carry what the sender sent pass through [`Excerpt`], which masks digit runs that may be a BSN.

use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use otv_core::IdError;
use otv_wire::Excerpt;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a problem document.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// A problem details document (RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// What kind of problem, as a URN: `urn:otv:problem:<kind>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What is wrong with this request, in words. Never contains a BSN.
    pub detail: String,
    /// The wrong fields, each by JSON pointer into the request body (RFC 6901).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    /// The request id (`X-Request-Id`), to quote when asking about this request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One wrong field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldProblem {
    /// JSON pointer to the field, e.g. `/resource/properties/holder_ura` (empty for the whole
    /// body).
    pub pointer: String,
    /// What is wrong with it.
    pub detail: String,
}

/// A field that broke a rule, found while reading a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer to the field.
    pub pointer: String,
    /// The rule it broke (never its value).
    pub rule: String,
}

impl FieldError {
    /// A field error at `pointer`.
    pub fn new(pointer: impl Into<String>, rule: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            rule: rule.into(),
        }
    }

    /// An identifier that did not parse, reported at `pointer`.
    pub fn id(pointer: impl Into<String>, e: IdError) -> Self {
        FieldError::new(pointer, e.rule)
    }
}

impl Problem {
    /// A problem of `kind` with `status`, `title` and `detail`.
    pub fn new(status: StatusCode, kind: &str, title: &str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!("urn:otv:problem:{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
        }
    }

    /// The short kind (`invalid-field`, `not-allowed-for-ura`, …), as audited.
    pub fn short_kind(&self) -> &str {
        self.kind.trim_start_matches("urn:otv:problem:")
    }

    /// A request whose fields broke rules (422).
    pub fn invalid_field(e: FieldError) -> Self {
        let detail = format!("field `{}`: {}", display_pointer(&e.pointer), e.rule);
        Problem {
            errors: vec![FieldProblem {
                pointer: e.pointer,
                detail: e.rule,
            }],
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A field of the request is missing or invalid",
                detail,
            )
        }
    }

    /// The client certificate is not an allow-listed connector (403).
    pub fn unknown_connector() -> Self {
        Problem::new(
            StatusCode::FORBIDDEN,
            "unknown-connector",
            "Not an allowed connector",
            "the client certificate is not an allowed connector",
        )
    }

    /// The connector may not act for the holder (403), naming the field that holds its URA.
    pub fn not_allowed_for_ura(connector: &str, ura: &otv_core::Ura, pointer: String) -> Self {
        let detail = format!("connector `{connector}` may not act for URA {ura}");
        Problem {
            errors: vec![FieldProblem {
                pointer,
                detail: detail.clone(),
            }],
            ..Problem::new(
                StatusCode::FORBIDDEN,
                "not-allowed-for-ura",
                "The connector may not act for this holder",
                detail,
            )
        }
    }

    /// Axum's JSON extractor refused the body: wrong media type (415), too large (413), not
    /// JSON (400), or JSON of the wrong shape (422).
    pub fn from_rejection(rejection: &JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
                "Unsupported media type",
                "Content-Type must be application/json",
            ),
            JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "Request body too large",
                    format!(
                        "the request body is larger than {} bytes",
                        otv_wire::MAX_INPUT_BYTES
                    ),
                )
            }
            JsonRejection::JsonSyntaxError(_) => {
                let (pointer, message) = serde_error(rejection);
                let mut p = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-json",
                    "The request body is not valid JSON",
                    format!("the request body is not valid JSON: {message}"),
                );
                p.errors.push(FieldProblem {
                    pointer,
                    detail: message,
                });
                p
            }
            JsonRejection::JsonDataError(_) => {
                let (pointer, message) = serde_error(rejection);
                Problem::invalid_field(FieldError::new(pointer, message))
            }
            other => Problem::new(
                other.status(),
                "unreadable-body",
                "The request body could not be read",
                "the request body could not be read",
            ),
        }
    }

    /// The same problem, with the request id.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// How a pointer reads in a sentence: the root is "(body)".
fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(body)"
    } else {
        pointer
    }
}

/// The JSON pointer and a safe message of the serde error inside a JSON rejection.
fn serde_error(rejection: &JsonRejection) -> (String, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> =
        std::error::Error::source(rejection);
    while let Some(e) = source {
        if let Some(e) = e.downcast_ref::<serde_path_to_error::Error<serde_json::Error>>() {
            let mut pointer = String::new();
            for segment in e.path().iter() {
                use serde_path_to_error::Segment;
                match segment {
                    Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                    Segment::Map { key } => {
                        pointer.push('/');
                        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    }
                    Segment::Enum { variant } => {
                        pointer.push('/');
                        pointer.push_str(variant);
                    }
                    Segment::Unknown => {}
                }
            }
            let inner = e.inner();
            // serde names a missing or unknown field in the message, not in the path.
            let message = inner.to_string();
            for prefix in ["missing field `", "unknown field `"] {
                if let Some(rest) = message.strip_prefix(prefix)
                    && let Some(name) = rest.split('`').next()
                    && !pointer.ends_with(&format!("/{name}"))
                {
                    pointer.push('/');
                    pointer.push_str(name);
                }
            }
            // Without serde's "at line 1 column 5" (the pointer says where) and with digit runs
            // masked: serde quotes the value it did not expect, and it may be a BSN.
            let text = match (inner.line(), inner.column()) {
                (0, _) => message,
                (line, column) => message
                    .strip_suffix(&format!(" at line {line} column {column}"))
                    .map_or(message.clone(), str::to_owned),
            };
            return (pointer, Excerpt::new(&text).to_string());
        }
        source = e.source();
    }
    (String::new(), "the request body could not be read".into())
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE)],
            serde_json::to_string(&self).expect("a problem serialises"),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::Json;
    use axum::extract::FromRequest;
    use axum::http::Request;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "the fields are only deserialised")]
    struct Body {
        subject: Subject,
        items: Vec<Subject>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code, reason = "the fields are only deserialised")]
    struct Subject {
        id: String,
        role: String,
    }

    async fn problem(content_type: &str, body: &str) -> Problem {
        let req = Request::post("/")
            .header("content-type", content_type)
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        let rejection = Json::<Body>::from_request(req, &()).await.unwrap_err();
        Problem::from_rejection(&rejection)
    }

    fn pointers(p: &Problem) -> Vec<&str> {
        p.errors.iter().map(|e| e.pointer.as_str()).collect()
    }

    #[tokio::test]
    async fn axum_rejections_become_problems_naming_the_field() {
        let p = problem("text/plain", "{}").await;
        assert_eq!((p.status, p.short_kind()), (415, "media-type"));

        let p = problem("application/json", "{\"subject\": ").await;
        assert_eq!((p.status, p.short_kind()), (400, "malformed-json"), "{p:?}");

        let p = problem(
            "application/json",
            r#"{"subject": {"id": "1"}, "items": []}"#,
        )
        .await;
        assert_eq!((p.status, p.short_kind()), (422, "invalid-field"));
        assert_eq!(pointers(&p), ["/subject/role"], "{p:?}");
        assert!(p.detail.contains("missing field `role`"), "{}", p.detail);

        let p = problem(
            "application/json",
            r#"{"subject": {"id": "1", "role": "x"}, "items": [{"id": "1", "role": "x"}, {"id": 900203638, "role": "x"}]}"#,
        )
        .await;
        assert_eq!(pointers(&p), ["/items/1/id"], "{p:?}");
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("900203638"), "a BSN in a problem: {text}");

        let p = problem(
            "application/json",
            r#"{"subject": {"id": "1", "role": "x", "mandatd": "2"}, "items": []}"#,
        )
        .await;
        assert_eq!(pointers(&p), ["/subject/mandatd"], "{p:?}");
    }
}
