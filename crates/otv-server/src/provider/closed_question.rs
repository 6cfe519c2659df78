//! `POST geslotenautorisatievraag/xacml3`: the closed question over SOAP 1.2 / XACML 3.0
//! (PRODUCT.md §5, §12).
//!
//! Order of work: check the media type and size, decode (a malformed request is a Sender fault
//! with status 400 that names what is wrong), check that the calling connector may act for the
//! holder (403 fault), read the patient's current answers, decide, write the audit record, and
//! only then answer. When reading the answers or writing the audit record fails, every data
//! category is answered `Indeterminate`: an otv error is never a Permit. Deciding and auditing
//! is the path every closed-question interface shares (`crate::closed_question`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use otv_wire::{closed_question_response, parse_closed_question};

use super::{Caller, Received, receive};
use crate::AppState;
use crate::closed_question::{Asked, Via, answer};

/// The handler.
pub async fn handle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = receive(
        &state,
        "closed-question",
        caller,
        &headers,
        body,
        parse_closed_question,
        |q| &q.holder.ura,
    )
    .await;
    let Received {
        request,
        connector,
        request_id,
    } = match received {
        Ok(r) => r,
        Err(refusal) => return refusal,
    };
    let via = Via {
        channel: "soap",
        connector: connector.id(),
        request_id,
        message_id: Some(&request.message_id),
    };
    let answered = answer(&state, &Asked::from(&request), via).await;
    let outcomes: Vec<_> = answered
        .results
        .into_iter()
        .map(|d| (d.data_category, d.decision))
        .collect();
    let body = closed_question_response(
        &request.message_id,
        uuid::Uuid::now_v7(),
        &request.bsn,
        &request.holder.ura,
        &outcomes,
    );
    ([(header::CONTENT_TYPE, otv_wire::SOAP_CONTENT_TYPE)], body).into_response()
}
