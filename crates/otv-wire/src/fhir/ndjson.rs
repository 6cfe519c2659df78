//! Bulk registration by NDJSON (otv's own interface, PRODUCT.md §7 and §12): one Subscription in
//! FHIR JSON per line. A large provider registers millions of patients this way, so the server
//! streams the body and calls [`parse_subscription_ndjson_line`] once per line; nothing here
//! holds more than one line.

use super::outcome::FhirError;
use super::subscription::{Interaction, SubscriptionRequest, parse_subscription_json};

/// A line of a bulk import that could not be read, with its line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct NdjsonLineError {
    /// The line number as the caller counted it (the first line is 1).
    pub line: u64,
    /// What is wrong with the line; its class says 400 or 422 for that line.
    pub error: FhirError,
}

/// Reads line `line_number` of a bulk import: a Subscription in FHIR JSON that registers a
/// patient (checked as a create, so its status is `requested`). A trailing `\n` or `\r\n` is
/// ignored. Returns `None` for a line of only whitespace, which NDJSON writers leave at the end.
/// A line longer than [`MAX_RESOURCE_BYTES`](super::MAX_RESOURCE_BYTES) is refused.
pub fn parse_subscription_ndjson_line(
    line_number: u64,
    line: &[u8],
) -> Option<Result<SubscriptionRequest, NdjsonLineError>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let result = parse_subscription_json(line).and_then(|request| {
        request.check_interaction(Interaction::Create)?;
        Ok(request)
    });
    Some(result.map_err(|error| NdjsonLineError {
        line: line_number,
        error,
    }))
}
