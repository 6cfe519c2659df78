//! `abonnementen/fhir`: registrations (abonnementen, PRODUCT.md §7, §12) over FHIR R4, in JSON
//! and XML. A dossier holder's system registers each patient it holds a record for with a
//! `Subscription`, which makes it a location for the open question and a subscriber to
//! notifications; it reads, changes, deactivates and deletes its registrations by id, one at a
//! time or in a `batch` Bundle.
//!
//! Every request passes the same checks, in this order, each refusal an `OperationOutcome`
//! that is audited: a known connector (403), within its rate (429 with `Retry-After`; a run of
//! refusals is audited once, so a throttled connector cannot flood the audit chain), then for a
//! body its media type (415) and size (413), the codec (400 not FHIR, 422 a rule of otv), the
//! URA in `criteria` the connector may act for (403). A registration belongs to the connector
//! that made it: any other gets 404, so localization data are never shown to other providers.
//! Creates, reads, updates, deactivations and deletions are audited with the patient's
//! pseudonym, never the BSN.
//!
//! A batch is not a transaction: every entry is carried out (or refused) on its own and gets
//! its own status in the `batch-response`.
//!
//! What this module must not do: decide anything about consent, or put a BSN in a response
//! other than the registration's own `criteria`, a log line or an audit record.

mod format;
mod throttle;

pub use format::Format;
pub use throttle::{Admission, Throttle, ThrottleSettings};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use otv_store::{
    AuditEvent, NewSubscription, Registration, SubscriptionChange, SubscriptionRecord,
    SubscriptionState,
};
use otv_wire::fhir::{
    BatchResponseEntry, FhirError, Interaction, Issue, IssueCode, MAX_BATCH_BYTES,
    MAX_RESOURCE_BYTES, PayloadType, SubscriptionOperation, SubscriptionRequest,
    SubscriptionStatus,
};
use serde_json::json;
use uuid::Uuid;

use super::{AllowedConnector, Caller, Rejection, audit_rejection, count_rejection, read_body};
use crate::{AppState, request_id};

/// The interface's name in metrics and audit records.
const INTERFACE: &str = "subscription";
/// The channel in audit records and metrics.
const CHANNEL: &str = "fhir";

/// `POST abonnementen/fhir/Subscription`: register (201, or 202 with the existing id).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let exchange = match admit(&state, caller, &headers).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    let result = match exchange.resource(&headers, body).await {
        Ok(request) => exchange.create(request).await,
        Err(refusal) => Err(refusal),
    };
    exchange.respond(result).await
}

/// `GET abonnementen/fhir/Subscription/{id}`.
pub async fn read(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let exchange = match admit(&state, caller, &headers).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    let result = exchange.read_one(&id).await;
    exchange.respond(result).await
}

/// `PUT abonnementen/fhir/Subscription/{id}`: change or deactivate (status `off`).
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let exchange = match admit(&state, caller, &headers).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    let result = match exchange.resource(&headers, body).await {
        Ok(request) => exchange.update(&id, request).await,
        Err(refusal) => Err(refusal),
    };
    exchange.respond(result).await
}

/// `DELETE abonnementen/fhir/Subscription/{id}` (204).
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let exchange = match admit(&state, caller, &headers).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    let result = exchange.delete(&id).await;
    exchange.respond(result).await
}

/// `POST abonnementen/fhir`: a `batch` Bundle, answered with a `batch-response` (200) holding
/// one entry per request entry, in order.
pub async fn batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let exchange = match admit(&state, caller, &headers).await {
        Ok(e) => e,
        Err(refused) => return refused,
    };
    let entries = match exchange.read(&headers, body, MAX_BATCH_BYTES).await {
        Ok(bytes) => match exchange.format.batch(&bytes) {
            Ok(entries) => entries,
            Err(e) => return exchange.refuse(Refusal::fhir(e)).await,
        },
        Err(refusal) => return exchange.refuse(refusal).await,
    };
    let mut responses = Vec::with_capacity(entries.len());
    for entry in entries {
        let result = match entry {
            Ok(SubscriptionOperation::Create(request)) => exchange.create(request).await,
            Ok(SubscriptionOperation::Update { id, request }) => {
                exchange.update(&id, request).await
            }
            Ok(SubscriptionOperation::Delete { id }) => exchange.delete(&id).await,
            Err(e) => Err(Refusal::fhir(e)),
        };
        responses.push(match result {
            Ok(done) => done.batch_entry(),
            Err(refusal) => {
                exchange.audit_refusal(&refusal).await;
                BatchResponseEntry::error(refusal.status.as_u16(), refusal.issues)
            }
        });
    }
    exchange
        .format
        .batch_response(&Uuid::now_v7().to_string(), &responses)
}

/// What an operation did.
enum Done {
    /// Registered: new, or the existing registration of the same connector, patient and
    /// source system.
    Registered(Registration, SubscriptionRecord),
    /// Read.
    Read(SubscriptionRecord),
    /// Changed (or deactivated).
    Updated(SubscriptionRecord),
    /// Deleted.
    Deleted,
}

impl Done {
    fn batch_entry(&self) -> BatchResponseEntry {
        match self {
            Done::Registered(Registration::Created(id), _) => {
                BatchResponseEntry::created(location(*id))
            }
            Done::Registered(Registration::Existing(id), _) => {
                BatchResponseEntry::accepted(location(*id))
            }
            Done::Read(r) | Done::Updated(r) => BatchResponseEntry::updated(location(r.id)),
            Done::Deleted => BatchResponseEntry::deleted(),
        }
    }
}

fn location(id: Uuid) -> String {
    format!("Subscription/{id}")
}

/// Why a request, or one batch entry, is not carried out: its status, a short kind for the
/// audit log and metrics, and the issues of the `OperationOutcome`.
struct Refusal {
    status: StatusCode,
    kind: &'static str,
    issues: Vec<Issue>,
}

impl Refusal {
    fn new(status: StatusCode, kind: &'static str, issue: Issue) -> Refusal {
        Refusal {
            status,
            kind,
            issues: vec![issue],
        }
    }

    /// A codec error: 400 (not FHIR) or 422 (a rule of otv).
    fn fhir(e: FhirError) -> Refusal {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let kind = if status == StatusCode::BAD_REQUEST {
            "invalid"
        } else {
            "business-rule"
        };
        Refusal {
            status,
            kind,
            issues: e.into_issues(),
        }
    }

    /// No registration with this id for this connector. The id is not repeated: it is the
    /// caller's text.
    fn not_found() -> Refusal {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "not-found",
            Issue::error(
                IssueCode::NotFound,
                None,
                "this connector has no Subscription with this id",
            ),
        )
    }

    fn not_allowed_for(connector: &AllowedConnector, ura: &otv_core::Ura) -> Refusal {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "not-allowed-for-ura",
            Issue::error(
                IssueCode::Forbidden,
                Some("Subscription.criteria".into()),
                format!(
                    "connector `{}` may not act for URA {ura} (providerid)",
                    connector.id()
                ),
            ),
        )
    }

    fn business_rule(path: &str, text: &str) -> Refusal {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "business-rule",
            Issue::error(IssueCode::BusinessRule, Some(path.into()), text),
        )
    }

    /// A failure inside otv (logged where it happened).
    fn internal() -> Refusal {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            Issue::error(
                IssueCode::Exception,
                None,
                "otv could not carry this out; try again",
            ),
        )
    }
}

impl From<otv_store::StoreError> for Refusal {
    fn from(e: otv_store::StoreError) -> Refusal {
        tracing::error!(error = %e, "subscription operation failed in the store");
        Refusal::internal()
    }
}

/// A request from a known connector within its rate, on its way to one or more operations.
struct Exchange<'a> {
    state: &'a AppState,
    connector: AllowedConnector,
    request_id: Option<String>,
    /// The format of the response (and of the body, when it has one).
    format: Format,
}

/// The checks before any operation: a known connector (403), within its rate (429).
async fn admit<'a>(
    state: &'a AppState,
    caller: Caller,
    headers: &HeaderMap,
) -> Result<Exchange<'a>, Response> {
    let request_id = request_id(headers);
    let format = Format::of_response(headers);
    let Some(connector) = caller.0 else {
        let refusal = Refusal::new(
            StatusCode::FORBIDDEN,
            "unknown-connector",
            Issue::error(
                IssueCode::Forbidden,
                None,
                "the client certificate is not an allowed connector",
            ),
        );
        audit_refusal(state, request_id, None, &refusal).await;
        return Err(format.outcome(refusal.status, &refusal.issues));
    };
    match state.subscription_throttle.admit(connector.id()) {
        Admission::Admitted => Ok(Exchange {
            state,
            connector,
            request_id,
            format,
        }),
        Admission::Refused {
            retry_after_seconds,
            first,
        } => {
            let refusal = Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                Issue::error(
                    IssueCode::Throttled,
                    None,
                    format!(
                        "too many requests from connector `{}`; try again in {retry_after_seconds} s",
                        connector.id()
                    ),
                ),
            );
            if first {
                audit_refusal(state, request_id, Some(connector.id()), &refusal).await;
            } else {
                count_rejection(INTERFACE, CHANNEL, refusal.kind);
            }
            let mut response = format.outcome(refusal.status, &refusal.issues);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
            Err(response)
        }
    }
}

/// Counts and audits a refusal (as every provider interface does).
async fn audit_refusal(
    state: &AppState,
    request_id: Option<String>,
    connector: Option<&str>,
    refusal: &Refusal,
) {
    let rejection = Rejection {
        interface: INTERFACE,
        channel: CHANNEL,
        request_id,
        connector,
        kind: refusal.kind,
        details: json!({
            "status": refusal.status.as_u16(),
            "issues": refusal.issues.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
    };
    audit_rejection(state, rejection).await;
}

impl Exchange<'_> {
    /// Reads a body of at most `limit` bytes in a FHIR format: 415, 413 otherwise.
    async fn read(&self, headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Refusal> {
        if Format::of_body(headers).is_none() {
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media-type",
                Issue::error(
                    IssueCode::NotSupported,
                    None,
                    "Content-Type must be application/fhir+json or application/fhir+xml",
                ),
            ));
        }
        read_body(body, limit).await.map_err(|reason| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                Issue::error(IssueCode::TooLong, None, reason),
            )
        })
    }

    /// The answer to a single request.
    async fn respond(&self, result: Result<Done, Refusal>) -> Response {
        let done = match result {
            Ok(done) => done,
            Err(refusal) => return self.refuse(refusal).await,
        };
        let (status, record) = match &done {
            Done::Registered(Registration::Created(_), r) => (StatusCode::CREATED, r),
            Done::Registered(Registration::Existing(_), r) => (StatusCode::ACCEPTED, r),
            Done::Read(r) | Done::Updated(r) => (StatusCode::OK, r),
            Done::Deleted => return StatusCode::NO_CONTENT.into_response(),
        };
        let (resource, fhir_status) = as_fhir(record);
        self.format
            .subscription_response(status, &resource, &record.id.to_string(), fhir_status)
    }

    /// Reads and decodes one `Subscription` in the body's format.
    async fn resource(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<SubscriptionRequest, Refusal> {
        let bytes = self.read(headers, body, MAX_RESOURCE_BYTES).await?;
        self.format.subscription(&bytes).map_err(Refusal::fhir)
    }

    async fn refuse(&self, refusal: Refusal) -> Response {
        self.audit_refusal(&refusal).await;
        self.format.outcome(refusal.status, &refusal.issues)
    }

    async fn audit_refusal(&self, refusal: &Refusal) {
        audit_refusal(
            self.state,
            self.request_id.clone(),
            Some(self.connector.id()),
            refusal,
        )
        .await;
    }

    /// The audit record of a create, read, update, deactivation or deletion of a registration
    /// of `registration`'s patient and holder. The store adds the subscription's id (and, for a
    /// create, `created` or `existing` as the decision) and appends it in the change's own
    /// transaction.
    fn audit_event(
        &self,
        event: &str,
        decision: Option<&str>,
        registration: &NewSubscription,
        state: Option<SubscriptionState>,
    ) -> AuditEvent {
        let r = registration;
        AuditEvent {
            at: Utc::now(),
            event: event.into(),
            patient: Some(self.state.store.patient_reference(&r.bsn)),
            actor: format!("connector:{}", self.connector.id()),
            organisation: Some(r.holder_ura.to_string()),
            request_id: self.request_id.clone(),
            decision: decision.map(str::to_owned),
            channel: Some("fhir".into()),
            details: json!({
                "state": state.map(SubscriptionState::as_str),
                "source_system": r.source_system,
                "gateway_system": r.gateway_system,
            }),
            ..AuditEvent::default()
        }
    }

    /// Audits a read of `record` (a change is audited by the store, in its transaction).
    async fn audit_read(&self, record: &SubscriptionRecord) -> Result<(), Refusal> {
        let event = self.audit_event(
            "subscription-read",
            Some("read"),
            &record.registration,
            Some(record.state),
        );
        let mut details = event.details;
        details["subscription"] = json!(record.id);
        self.state
            .store
            .audit(&AuditEvent { details, ..event })
            .await?;
        Ok(())
    }

    /// Checks what create and update both ask of a registration: no `end` (otv does not end
    /// registrations by date) and a URA the connector may act for.
    fn check(&self, request: &SubscriptionRequest) -> Result<(), Refusal> {
        if request.end.is_some() {
            return Err(Refusal::business_rule(
                "Subscription.end",
                "otv does not end registrations at a set time: leave `end` out, and deactivate \
                 (status `off`) or delete the Subscription when the record is gone",
            ));
        }
        if !self.connector.may_act_for(&request.holder_ura) {
            return Err(Refusal::not_allowed_for(
                &self.connector,
                &request.holder_ura,
            ));
        }
        Ok(())
    }

    async fn create(&self, request: SubscriptionRequest) -> Result<Done, Refusal> {
        request
            .check_interaction(Interaction::Create)
            .map_err(Refusal::fhir)?;
        self.check(&request)?;
        let registration = NewSubscription {
            bsn: request.bsn,
            birth_date: request.birth_date,
            holder_ura: request.holder_ura,
            holder_type: request.holder_type,
            connector_id: self.connector.id().to_owned(),
            source_system: request.source_system,
            gateway_system: request.gateway_system,
            endpoint: request.endpoint,
            payload: request.payload.media_type().to_owned(),
        };
        let audit = self.audit_event("subscription-create", None, &registration, None);
        let done = self
            .state
            .store
            .create_subscription(&registration, &audit)
            .await?;
        metrics::counter!("otv_subscription_changes_total", "event" => "subscription-create")
            .increment(1);
        let record = match done {
            Registration::Created(id) => SubscriptionRecord {
                id,
                state: SubscriptionState::Active,
                registration,
            },
            // The registration as stored, which the answer shows (it may be deactivated).
            Registration::Existing(id) => self
                .state
                .store
                .subscription(self.connector.id(), id)
                .await?
                .ok_or_else(|| {
                    tracing::error!(
                        "an existing subscription vanished while it was registered again"
                    );
                    Refusal::internal()
                })?,
        };
        Ok(Done::Registered(done, record))
    }

    /// The connector's own registration `id`, which it must still be allowed to act for.
    async fn own(&self, id: &str) -> Result<SubscriptionRecord, Refusal> {
        let id = Uuid::parse_str(id).map_err(|_| Refusal::not_found())?;
        let record = self
            .state
            .store
            .subscription(self.connector.id(), id)
            .await?
            .ok_or_else(Refusal::not_found)?;
        let holder = &record.registration.holder_ura;
        if !self.connector.may_act_for(holder) {
            return Err(Refusal::not_allowed_for(&self.connector, holder));
        }
        Ok(record)
    }

    async fn read_one(&self, id: &str) -> Result<Done, Refusal> {
        let record = self.own(id).await?;
        self.audit_read(&record).await?;
        Ok(Done::Read(record))
    }

    async fn update(&self, id: &str, request: SubscriptionRequest) -> Result<Done, Refusal> {
        request
            .check_interaction(Interaction::Update { id })
            .map_err(Refusal::fhir)?;
        self.check(&request)?;
        let stored = self.own(id).await?;
        let was = &stored.registration;
        if request.bsn != was.bsn
            || request.holder_ura != was.holder_ura
            || request.holder_type != was.holder_type
        {
            return Err(Refusal::business_rule(
                "Subscription.criteria",
                "patientid, providerid and providertype identify the registration and cannot \
                 change: delete it and register anew",
            ));
        }
        if request.source_system != was.source_system {
            return Err(Refusal::business_rule(
                "Subscription.extension[SourceSystem]",
                "the source system identifies the registration and cannot change: delete it \
                 and register anew",
            ));
        }
        let state = match request.status {
            SubscriptionStatus::Off => SubscriptionState::Off,
            // `requested` and `active` both ask for a registration in use; `error` was refused
            // by the codec.
            _ => SubscriptionState::Active,
        };
        let change = SubscriptionChange {
            endpoint: request.endpoint,
            payload: request.payload.media_type().to_owned(),
            birth_date: request.birth_date,
            gateway_system: request.gateway_system,
            state,
        };
        let event = if state == SubscriptionState::Off && stored.state != SubscriptionState::Off {
            "subscription-deactivate"
        } else {
            "subscription-update"
        };
        let audit = self.audit_event(event, Some(state.as_str()), was, Some(state));
        let record = self
            .state
            .store
            .update_subscription(self.connector.id(), stored.id, &change, &audit)
            .await?
            .ok_or_else(Refusal::not_found)?;
        metrics::counter!("otv_subscription_changes_total", "event" => event).increment(1);
        Ok(Done::Updated(record))
    }

    async fn delete(&self, id: &str) -> Result<Done, Refusal> {
        let stored = self.own(id).await?;
        let audit = self.audit_event(
            "subscription-delete",
            Some("deleted"),
            &stored.registration,
            Some(stored.state),
        );
        self.state
            .store
            .delete_subscription(self.connector.id(), stored.id, &audit)
            .await?
            .ok_or_else(Refusal::not_found)?;
        metrics::counter!("otv_subscription_changes_total", "event" => "subscription-delete")
            .increment(1);
        Ok(Done::Deleted)
    }
}

/// A stored registration as the FHIR codec writes it, with its FHIR status.
fn as_fhir(record: &SubscriptionRecord) -> (SubscriptionRequest, SubscriptionStatus) {
    let r = &record.registration;
    let status = match record.state {
        SubscriptionState::Active => SubscriptionStatus::Active,
        SubscriptionState::Off => SubscriptionStatus::Off,
    };
    let resource = SubscriptionRequest {
        id: None,
        status,
        bsn: r.bsn.clone(),
        holder_ura: r.holder_ura.clone(),
        holder_type: r.holder_type.clone(),
        endpoint: r.endpoint.clone(),
        // Every way in stores one of the two media types; JSON is FHIR's default otherwise.
        payload: PayloadType::from_media_type(&r.payload).unwrap_or(PayloadType::Json),
        birth_date: r.birth_date,
        gateway_system: r.gateway_system.clone(),
        source_system: r.source_system.clone(),
        end: None,
    };
    (resource, status)
}
