//! Batch registration (PRODUCT.md §12, `POST abonnementen/fhir`): a FHIR `batch` Bundle of
//! Subscription creates, updates and deletes, and the `batch-response` Bundle otv answers with.
//!
//! A batch is not a transaction: each entry stands alone. The Bundle as a whole fails only when
//! it cannot be read (not JSON or XML, not a Bundle, `type` not `batch`, too many entries); every
//! entry is then decoded on its own into a [`BatchEntry`], so one bad entry becomes one error
//! entry in the response and the others are still carried out. Issues about an entry's
//! `request` are reported as `Bundle.entry[i].request…`; issues about its Subscription as
//! `Subscription…`, exactly as for a single `POST`, because each sits in its own entry's
//! `response.outcome`.
//!
//! Supported entries: `POST Subscription` (create), `PUT Subscription/[id]` (update), `DELETE
//! Subscription/[id]`. Conditional requests (`ifMatch`, `ifNoneExist`, …), other methods and
//! other resources are refused per entry as not supported, rather than carried out without the
//! condition.

use crate::error::Excerpt;
use crate::xml;

use super::outcome::{FhirError, Issue, IssueCode, outcome_object};
use super::read::{self, Node};
use super::subscription::{Interaction, SubscriptionRequest, read_subscription};
use super::values::is_fhir_id;
use super::write::{self, Object};
use super::{MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, MAX_BATCH_XML_ELEMENTS};

/// What one batch entry asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionOperation {
    /// `POST Subscription`: register; the status was checked to be `requested`.
    Create(SubscriptionRequest),
    /// `PUT Subscription/[id]`: change the registration `id`.
    Update {
        /// The id in the entry's URL.
        id: String,
        /// The new content; its status is `requested`, `active` or `off`.
        request: SubscriptionRequest,
    },
    /// `DELETE Subscription/[id]`.
    Delete {
        /// The id in the entry's URL.
        id: String,
    },
}

/// One decoded batch entry: what it asks, or why it cannot be carried out.
pub type BatchEntry = Result<SubscriptionOperation, FhirError>;

/// Reads a batch Bundle in FHIR JSON into its entries, in order.
pub fn parse_batch_bundle_json(input: &[u8]) -> Result<Vec<BatchEntry>, FhirError> {
    let value = read::load_json(input, MAX_BATCH_BYTES).map_err(FhirError::invalid)?;
    read_batch(read::json_root(&value, "Bundle").map_err(FhirError::invalid)?)
}

/// Reads a batch Bundle in FHIR XML into its entries, in order.
pub fn parse_batch_bundle_xml(input: &[u8]) -> Result<Vec<BatchEntry>, FhirError> {
    let limits = xml::Limits {
        max_bytes: MAX_BATCH_BYTES,
        max_elements: MAX_BATCH_XML_ELEMENTS,
    };
    let root = read::load_xml(input, limits).map_err(FhirError::invalid)?;
    read_batch(read::xml_root(&root, "Bundle").map_err(FhirError::invalid)?)
}

/// The Bundle types of FHIR R4 other than `batch`.
const OTHER_BUNDLE_TYPES: [&str; 8] = [
    "document",
    "message",
    "transaction",
    "transaction-response",
    "batch-response",
    "history",
    "searchset",
    "collection",
];

fn read_batch(bundle: Node<'_>) -> Result<Vec<BatchEntry>, FhirError> {
    Ok(batch_entries(bundle)?
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            entry
                .map_err(FhirError::invalid)
                .and_then(|entry| read_entry(entry, i))
        })
        .collect())
}

/// The entries of a `batch` Bundle, each on its own (an entry that is not an object is an error
/// for that entry only). The Bundle fails as a whole when its `type` is not `batch` or it holds
/// more than [`MAX_BATCH_ENTRIES`] entries. Shared by every batch otv accepts.
pub(crate) fn batch_entries(bundle: Node<'_>) -> Result<Vec<Result<Node<'_>, Issue>>, FhirError> {
    let bundle_type = bundle
        .required("Bundle", "type")
        .map_err(FhirError::invalid)?;
    if bundle_type != "batch" {
        return Err(if OTHER_BUNDLE_TYPES.contains(&bundle_type) {
            FhirError::business(Issue::at(
                IssueCode::NotSupported,
                "Bundle.type",
                format!(
                    "otv processes Bundles of type `batch`, not `{bundle_type}`: each \
                     entry stands on its own"
                ),
            ))
        } else {
            FhirError::invalid(Issue::at(
                IssueCode::Value,
                "Bundle.type",
                format!("`{}` is not a Bundle type", Excerpt::new(bundle_type)),
            ))
        });
    }
    let entries = bundle
        .items("Bundle", "entry")
        .map_err(FhirError::invalid)?;
    if entries.len() > MAX_BATCH_ENTRIES {
        return Err(FhirError::business(Issue::at(
            IssueCode::TooCostly,
            "Bundle.entry",
            format!(
                "a batch holds at most {MAX_BATCH_ENTRIES} entries; split it, or use the NDJSON \
                 bulk import"
            ),
        )));
    }
    Ok(entries)
}

fn read_entry(entry: Node<'_>, index: usize) -> BatchEntry {
    let path = format!("Bundle.entry[{index}]");
    let request_path = format!("{path}.request");
    let request = entry
        .child(&path, "request")
        .map_err(FhirError::invalid)?
        .ok_or_else(|| {
            FhirError::invalid(Issue::at(
                IssueCode::Required,
                &request_path,
                "is required in a batch entry",
            ))
        })?;
    let method = request
        .required(&request_path, "method")
        .map_err(FhirError::invalid)?;
    let url = request
        .required(&request_path, "url")
        .map_err(FhirError::invalid)?;
    for condition in ["ifNoneMatch", "ifModifiedSince", "ifMatch", "ifNoneExist"] {
        if request
            .primitive(&request_path, condition)
            .map_err(FhirError::invalid)?
            .is_some()
        {
            return Err(FhirError::business(Issue::at(
                IssueCode::NotSupported,
                format!("{request_path}.{condition}"),
                "conditional requests are not supported",
            )));
        }
    }

    let url_path = format!("{request_path}.url");
    match method {
        "POST" => {
            if url != "Subscription" {
                return Err(unsupported_url(&url_path, "`Subscription` for POST"));
            }
            let request = subscription_in(entry, &path)?;
            request.check_interaction(Interaction::Create)?;
            Ok(SubscriptionOperation::Create(request))
        }
        "PUT" => {
            let id = subscription_id(url, &url_path)?;
            let request = subscription_in(entry, &path)?;
            request.check_interaction(Interaction::Update { id })?;
            Ok(SubscriptionOperation::Update {
                id: id.to_owned(),
                request,
            })
        }
        "DELETE" => Ok(SubscriptionOperation::Delete {
            id: subscription_id(url, &url_path)?.to_owned(),
        }),
        "GET" | "HEAD" | "PATCH" => Err(FhirError::business(Issue::at(
            IssueCode::NotSupported,
            format!("{request_path}.method"),
            format!("a batch to otv takes POST, PUT and DELETE, not {method}"),
        ))),
        other => Err(FhirError::invalid(Issue::at(
            IssueCode::Value,
            format!("{request_path}.method"),
            format!(
                "`{}` is not an HTTP verb of FHIR (GET, HEAD, POST, PUT, DELETE, PATCH)",
                Excerpt::new(other)
            ),
        ))),
    }
}

fn unsupported_url(path: &str, expected: &str) -> FhirError {
    FhirError::business(Issue::at(
        IssueCode::NotSupported,
        path,
        format!("must be {expected}: a batch to otv holds Subscriptions only"),
    ))
}

/// The id in `Subscription/[id]`.
fn subscription_id<'a>(url: &'a str, path: &str) -> Result<&'a str, FhirError> {
    match url.split_once('/') {
        Some(("Subscription", id)) if is_fhir_id(id) => Ok(id),
        Some(("Subscription", _)) => Err(FhirError::invalid(Issue::at(
            IssueCode::Value,
            path,
            "must be `Subscription/[id]` with a FHIR id (1 to 64 letters, digits, '-' and '.')",
        ))),
        _ => Err(unsupported_url(
            path,
            "`Subscription/[id]` for PUT and DELETE",
        )),
    }
}

/// The entry's resource, which must be a Subscription that follows otv's rules.
fn subscription_in(entry: Node<'_>, path: &str) -> Result<SubscriptionRequest, FhirError> {
    let resource_path = format!("{path}.resource");
    let resource = entry
        .resource(path, "resource")
        .map_err(FhirError::invalid)?
        .ok_or_else(|| {
            FhirError::invalid(Issue::at(
                IssueCode::Required,
                &resource_path,
                "is required for POST and PUT",
            ))
        })?;
    read::check_type(resource, "Subscription", &resource_path).map_err(FhirError::invalid)?;
    SubscriptionRequest::from_resource(&read_subscription(resource)?)
}

/// One entry of a `batch-response`, in the order of the request's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResponseEntry {
    /// The HTTP status of this entry; written with its reason phrase (`201 Created`).
    pub status: u16,
    /// `Subscription/[id]` of the registration concerned, if any.
    pub location: Option<String>,
    /// The issues, written as `response.outcome` when there are any.
    pub outcome: Vec<Issue>,
}

impl BatchResponseEntry {
    /// `201 Created` at `location`.
    pub fn created(location: impl Into<String>) -> Self {
        Self::with_location(201, location)
    }

    /// `202 Accepted` at `location`: the same connector, patient and source system were already
    /// registered there (PRODUCT.md §12).
    pub fn accepted(location: impl Into<String>) -> Self {
        Self::with_location(202, location)
    }

    /// `200 OK` at `location`: updated.
    pub fn updated(location: impl Into<String>) -> Self {
        Self::with_location(200, location)
    }

    /// `204 No Content`: deleted.
    pub fn deleted() -> Self {
        Self::error(204, Vec::new())
    }

    /// The entry for an entry that could not be read: 400 or 422 with its issues.
    pub fn failed(error: &FhirError) -> Self {
        Self::error(error.http_status(), error.issues().to_vec())
    }

    /// Any other status with its issues (404, 403, 429, 500…).
    pub fn error(status: u16, outcome: Vec<Issue>) -> Self {
        BatchResponseEntry {
            status,
            location: None,
            outcome,
        }
    }

    fn with_location(status: u16, location: impl Into<String>) -> Self {
        BatchResponseEntry {
            status,
            location: Some(location.into()),
            outcome: Vec::new(),
        }
    }
}

/// The standard reason phrase of the statuses a FHIR server answers with.
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => return None,
    })
}

/// The `batch-response` Bundle as FHIR JSON. `id` is the Bundle's own id (the server passes a
/// fresh UUID); `entries` are in the order of the request's.
pub fn batch_response_json(id: &str, entries: &[BatchResponseEntry]) -> String {
    write::json("Bundle", &batch_response(id, entries))
}

/// The `batch-response` Bundle as FHIR XML; see [`batch_response_json`].
pub fn batch_response_xml(id: &str, entries: &[BatchResponseEntry]) -> String {
    write::xml("Bundle", &batch_response(id, entries))
}

fn batch_response(id: &str, entries: &[BatchResponseEntry]) -> Object {
    let entries = entries
        .iter()
        .map(|entry| {
            let status = match reason_phrase(entry.status) {
                Some(phrase) => format!("{} {phrase}", entry.status),
                None => entry.status.to_string(),
            };
            let mut response = Object::new()
                .primitive("status", status)
                .optional("location", entry.location.as_deref());
            if !entry.outcome.is_empty() {
                response = response.resource(
                    "outcome",
                    "OperationOutcome",
                    outcome_object(&entry.outcome),
                );
            }
            Object::new().object("response", response)
        })
        .collect();
    Object::new()
        .primitive("id", id)
        .primitive("type", "batch-response")
        .objects("entry", entries)
}
