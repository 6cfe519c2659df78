//! Issues, the error of the FHIR codecs, and the `OperationOutcome` that carries issues back.
//!
//! A decoder reports every problem it finds as an [`Issue`] that names the element by its path
//! (`Subscription.channel.endpoint`) and says what is wrong. A [`FhirError`] is one or more
//! issues with an [`ErrorClass`]: [`ErrorClass::Invalid`] when the content is not valid FHIR
//! (the server answers 400) and [`ErrorClass::BusinessRule`] when it is valid FHIR that breaks a
//! rule of otv or Mitz (422). The server builds its own issues (not found, forbidden, throttled)
//! with [`Issue::error`] and writes any list with [`operation_outcome_json`] or
//! [`operation_outcome_xml`].
//!
//! Invariant: no issue made by a decoder contains a BSN. Identifier values are never repeated,
//! only the rule they broke; other sender text is shown through [`Excerpt`](crate::Excerpt).

use std::fmt;

use super::write::{self, Object};

/// How bad an issue is (FHIR `IssueSeverity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueSeverity {
    /// `fatal`: processing could not start or continue at all.
    Fatal,
    /// `error`: the request was not carried out.
    Error,
    /// `warning`: carried out, but something deserves attention.
    Warning,
    /// `information`: for the record.
    Information,
}

impl IssueSeverity {
    /// The FHIR code.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Fatal => "fatal",
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
            IssueSeverity::Information => "information",
        }
    }
}

/// What kind of issue it is: the FHIR R4 `IssueType` code system, complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the FHIR code of the same name, see `as_str`.
pub enum IssueCode {
    Invalid,
    Structure,
    Required,
    Value,
    Invariant,
    Security,
    Login,
    Unknown,
    Expired,
    Forbidden,
    Suppressed,
    Processing,
    NotSupported,
    Duplicate,
    MultipleMatches,
    NotFound,
    Deleted,
    TooLong,
    CodeInvalid,
    Extension,
    TooCostly,
    BusinessRule,
    Conflict,
    Transient,
    LockError,
    NoStore,
    Exception,
    Timeout,
    Incomplete,
    Throttled,
    Informational,
}

impl IssueCode {
    /// The FHIR code, e.g. `business-rule`.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::Invariant => "invariant",
            IssueCode::Security => "security",
            IssueCode::Login => "login",
            IssueCode::Unknown => "unknown",
            IssueCode::Expired => "expired",
            IssueCode::Forbidden => "forbidden",
            IssueCode::Suppressed => "suppressed",
            IssueCode::Processing => "processing",
            IssueCode::NotSupported => "not-supported",
            IssueCode::Duplicate => "duplicate",
            IssueCode::MultipleMatches => "multiple-matches",
            IssueCode::NotFound => "not-found",
            IssueCode::Deleted => "deleted",
            IssueCode::TooLong => "too-long",
            IssueCode::CodeInvalid => "code-invalid",
            IssueCode::Extension => "extension",
            IssueCode::TooCostly => "too-costly",
            IssueCode::BusinessRule => "business-rule",
            IssueCode::Conflict => "conflict",
            IssueCode::Transient => "transient",
            IssueCode::LockError => "lock-error",
            IssueCode::NoStore => "no-store",
            IssueCode::Exception => "exception",
            IssueCode::Timeout => "timeout",
            IssueCode::Incomplete => "incomplete",
            IssueCode::Throttled => "throttled",
            IssueCode::Informational => "informational",
        }
    }
}

/// One issue of an `OperationOutcome`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// How bad it is.
    pub severity: IssueSeverity,
    /// What kind of issue.
    pub code: IssueCode,
    /// What is wrong, for a person at the connector vendor. Never a BSN.
    pub diagnostics: String,
    /// The element concerned as a FHIR path, e.g. `Subscription.extension[GatewaySystem].valueOid`;
    /// `None` when the issue is about the message as a whole.
    pub expression: Option<String>,
}

impl Issue {
    /// An issue of severity `error`.
    pub fn error(
        code: IssueCode,
        expression: Option<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Issue {
            severity: IssueSeverity::Error,
            code,
            diagnostics: diagnostics.into(),
            expression,
        }
    }

    /// An error about the element at `path`.
    pub(crate) fn at(
        code: IssueCode,
        path: impl Into<String>,
        diagnostics: impl Into<String>,
    ) -> Self {
        Issue::error(code, Some(path.into()), diagnostics)
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expression {
            Some(path) => write!(f, "{path}: {}", self.diagnostics),
            None => f.write_str(&self.diagnostics),
        }
    }
}

/// Which kind of failure a [`FhirError`] is, and so which HTTP status answers it (FHIR RESTful
/// API: 400 when the resource cannot be parsed or fails basic FHIR validation, 422 when it
/// breaks a profile or a business rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Not valid FHIR: not JSON or XML, the wrong resource, an element of the wrong shape, a
    /// required element missing, a value that is not of its FHIR type (a date that is no date,
    /// an OID that is no OID, a code outside a required binding). HTTP 400.
    Invalid,
    /// Valid FHIR that otv (Mitz) does not accept: reason not `OTV`, criteria not the otv query,
    /// an invalid BSN or URA, channel not `rest-hook`, endpoint not https, a payload type other
    /// than FHIR JSON or XML, a required extension missing, an unsupported batch operation.
    /// HTTP 422.
    BusinessRule,
}

impl ErrorClass {
    /// The HTTP status the server answers with: 400 or 422.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorClass::Invalid => 400,
            ErrorClass::BusinessRule => 422,
        }
    }
}

/// Why a FHIR message was refused: one or more issues and their class. The `Display` text joins
/// the issues; the server sends them as an `OperationOutcome`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(&self.issues))]
pub struct FhirError {
    class: ErrorClass,
    issues: Vec<Issue>,
}

fn join(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(Issue::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl FhirError {
    /// An error of `class` with `issues`. An empty list gets one generic issue, so an error
    /// always says something.
    pub fn new(class: ErrorClass, mut issues: Vec<Issue>) -> Self {
        if issues.is_empty() {
            issues.push(Issue::error(
                match class {
                    ErrorClass::Invalid => IssueCode::Invalid,
                    ErrorClass::BusinessRule => IssueCode::BusinessRule,
                },
                None,
                "the message was refused",
            ));
        }
        FhirError { class, issues }
    }

    /// A not-valid-FHIR error (400) with one issue.
    pub(crate) fn invalid(issue: Issue) -> Self {
        FhirError::new(ErrorClass::Invalid, vec![issue])
    }

    /// A business-rule error (422) with one issue.
    pub(crate) fn business(issue: Issue) -> Self {
        FhirError::new(ErrorClass::BusinessRule, vec![issue])
    }

    /// Not valid FHIR (400) or a business rule (422).
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The HTTP status for this error: 400 or 422.
    pub fn http_status(&self) -> u16 {
        self.class.http_status()
    }

    /// The issues, never empty.
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// The issues, for an `OperationOutcome`.
    pub fn into_issues(self) -> Vec<Issue> {
        self.issues
    }
}

/// The `OperationOutcome` for `issues` as FHIR JSON. An empty list is written as one
/// `information` issue ("All OK"), because an `OperationOutcome` has at least one issue.
pub fn operation_outcome_json(issues: &[Issue]) -> String {
    write::json("OperationOutcome", &outcome_object(issues))
}

/// The `OperationOutcome` for `issues` as FHIR XML; see [`operation_outcome_json`].
pub fn operation_outcome_xml(issues: &[Issue]) -> String {
    write::xml("OperationOutcome", &outcome_object(issues))
}

/// The body of an `OperationOutcome`, also used inside a batch-response entry.
pub(crate) fn outcome_object(issues: &[Issue]) -> Object {
    let ok = [Issue {
        severity: IssueSeverity::Information,
        code: IssueCode::Informational,
        diagnostics: "All OK".to_owned(),
        expression: None,
    }];
    let issues = if issues.is_empty() { &ok[..] } else { issues };
    Object::new().objects(
        "issue",
        issues
            .iter()
            .map(|issue| {
                Object::new()
                    .primitive("severity", issue.severity.as_str())
                    .primitive("code", issue.code.as_str())
                    .primitive("diagnostics", &issue.diagnostics)
                    .primitives("expression", issue.expression.iter().cloned().collect())
            })
            .collect(),
    )
}
