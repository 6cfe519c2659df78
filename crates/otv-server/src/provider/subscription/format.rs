//! FHIR JSON or FHIR XML: which one a request is in and a response should be in, and the
//! responses themselves (a Subscription, a `batch-response`, an `OperationOutcome`).

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use otv_wire::fhir::{
    self, BatchEntry, BatchResponseEntry, FhirError, Issue, SubscriptionRequest, SubscriptionStatus,
};

/// One of the two FHIR formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// FHIR JSON.
    Json,
    /// FHIR XML.
    Xml,
}

/// The media type of a header value without its parameters, in lower case.
fn essence(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl Format {
    /// The format a media type names: the FHIR ones and, as FHIR servers accept them, the plain
    /// JSON and XML ones.
    fn of_media_type(media_type: &str) -> Option<Format> {
        match essence(media_type).as_str() {
            "application/fhir+json" | "application/json" | "application/json+fhir" => {
                Some(Format::Json)
            }
            "application/fhir+xml" | "application/xml" | "text/xml" | "application/xml+fhir" => {
                Some(Format::Xml)
            }
            _ => None,
        }
    }

    /// The format of the request body by `Content-Type`; `None` when absent or another type.
    pub fn of_body(headers: &HeaderMap) -> Option<Format> {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(Format::of_media_type)
    }

    /// The format the caller asks for with `Accept`: the first FHIR (or JSON or XML) type it
    /// lists; JSON when it lists none.
    pub fn accepted(headers: &HeaderMap) -> Format {
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find_map(Format::of_media_type)
            .unwrap_or(Format::Json)
    }

    /// The format of a response: that of the request body when it has a known one, otherwise
    /// the one asked for.
    pub fn of_response(headers: &HeaderMap) -> Format {
        Format::of_body(headers).unwrap_or_else(|| Format::accepted(headers))
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => fhir::FHIR_JSON_CONTENT_TYPE,
            Format::Xml => fhir::FHIR_XML_CONTENT_TYPE,
        }
    }

    /// Reads one Subscription in this format.
    pub fn subscription(self, body: &[u8]) -> Result<SubscriptionRequest, FhirError> {
        match self {
            Format::Json => fhir::parse_subscription_json(body),
            Format::Xml => fhir::parse_subscription_xml(body),
        }
    }

    /// Reads a batch Bundle in this format.
    pub fn batch(self, body: &[u8]) -> Result<Vec<BatchEntry>, FhirError> {
        match self {
            Format::Json => fhir::parse_batch_bundle_json(body),
            Format::Xml => fhir::parse_batch_bundle_xml(body),
        }
    }

    /// A response with a FHIR body in this format.
    fn response(self, status: StatusCode, location: Option<&str>, body: String) -> Response {
        let mut response =
            (status, [(header::CONTENT_TYPE, self.content_type())], body).into_response();
        if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    }

    /// A Subscription as stored, with `status` and `Location: Subscription/<id>`.
    pub fn subscription_response(
        self,
        status: StatusCode,
        subscription: &SubscriptionRequest,
        id: &str,
        fhir_status: SubscriptionStatus,
    ) -> Response {
        let body = match self {
            Format::Json => fhir::subscription_json(subscription, id, fhir_status),
            Format::Xml => fhir::subscription_xml(subscription, id, fhir_status),
        };
        self.response(status, Some(&format!("Subscription/{id}")), body)
    }

    /// A `batch-response` Bundle (`200 OK`).
    pub fn batch_response(self, id: &str, entries: &[BatchResponseEntry]) -> Response {
        let body = match self {
            Format::Json => fhir::batch_response_json(id, entries),
            Format::Xml => fhir::batch_response_xml(id, entries),
        };
        self.response(StatusCode::OK, None, body)
    }

    /// An `OperationOutcome` with `issues`.
    pub fn outcome(self, status: StatusCode, issues: &[Issue]) -> Response {
        let body = match self {
            Format::Json => fhir::operation_outcome_json(issues),
            Format::Xml => fhir::operation_outcome_xml(issues),
        };
        self.response(status, None, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn the_body_decides_the_format_and_accept_otherwise_with_json_by_default() {
        let xml_body = headers(&[
            (header::CONTENT_TYPE, "application/fhir+xml; charset=utf-8"),
            (header::ACCEPT, "application/fhir+json"),
        ]);
        assert_eq!(Format::of_response(&xml_body), Format::Xml);
        let get_xml = headers(&[(header::ACCEPT, "text/html, application/fhir+xml;q=0.9")]);
        assert_eq!(Format::of_response(&get_xml), Format::Xml);
        assert_eq!(Format::of_response(&headers(&[])), Format::Json);
        assert_eq!(
            Format::of_response(&headers(&[(header::ACCEPT, "*/*")])),
            Format::Json
        );
        let other_body = headers(&[(header::CONTENT_TYPE, "text/plain")]);
        assert_eq!(Format::of_body(&other_body), None);
    }
}
