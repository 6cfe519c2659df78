//! Signed consent receipts (PRODUCT.md §10): for every change of a citizen's answers, a
//! consent record in the style of ISO/IEC TS 27560 (consent record information structure),
//! signed by otv as a compact JWS (RFC 7515, `alg` EdDSA with Ed25519, RFC 8037), so that a
//! citizen who set choices at the pharmacy has proof.
//!
//! - `GET /bewijs/{seq}`: the receipt of change `seq` (the sequence number of the change's
//!   audit record, as `Backend::record_answers` returns it), only for a change of the
//!   logged-in citizen's own profile; any other number is a 404.
//! - `GET /.well-known/otv-receipt-keys.json`: the public key(s) as a JSON Web Key Set
//!   (RFC 7517, `kty` OKP, `crv` Ed25519); the receipt's `kid` header is the key's RFC 7638
//!   thumbprint.
//!
//! The record is built from what the store holds ([`ChangeRecord`]) by a pure function
//! ([`consent_record`]); signing uses the configured receipt key (never the audit key).
//! Must not: put a BSN in a receipt (the citizen is named by otv's pseudonym).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use otv_core::{Answer, Party};
use otv_store::ChangeRecord;
use serde_json::{Value, json};

use super::error::PortalError;
use super::session::Citizen;
use crate::AppState;

/// The version of otv's receipt format (`schema_version`).
pub const SCHEMA_VERSION: &str = "otv-consent-receipt/1";

/// Where the public keys are served.
pub const JWKS_PATH: &str = "/.well-known/otv-receipt-keys.json";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/bewijs/{seq}", get(download))
        .route(JWKS_PATH, get(jwks))
}

/// The link to the receipt of change `seq`.
pub(crate) fn href(seq: i64) -> String {
    format!("/bewijs/{seq}")
}

async fn download(
    State(state): State<AppState>,
    citizen: Citizen,
    Path(seq): Path<String>,
) -> Result<Response, PortalError> {
    let seq: i64 = seq.parse().map_err(|_| PortalError::NotFound)?;
    let record = state
        .store
        .change_record(citizen.subject(), seq)
        .await?
        .ok_or(PortalError::NotFound)?;
    let receipt = consent_record(&record, state.clock.now());
    let jws = sign(&state, &receipt);
    Ok((
        [
            (CONTENT_TYPE, "application/jose".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"otv-bewijs-{seq}.jws\""),
            ),
            (CACHE_CONTROL, "no-store".to_owned()),
        ],
        jws,
    )
        .into_response())
}

async fn jwks(State(state): State<AppState>) -> Response {
    (
        [
            (CONTENT_TYPE, "application/jwk-set+json"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        key_set(&state.store.receipt_public_key()).to_string(),
    )
        .into_response()
}

/// The public JWK of a raw Ed25519 key, with its `kid`.
pub fn public_jwk(public_key: &[u8]) -> Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": B64.encode(public_key),
        "kid": key_id(public_key),
        "use": "sig",
        "alg": "EdDSA",
    })
}

/// The JSON Web Key Set served at [`JWKS_PATH`].
pub fn key_set(public_key: &[u8]) -> Value {
    json!({ "keys": [public_jwk(public_key)] })
}

/// The RFC 7638 thumbprint of the key's JWK (SHA-256 over the required members in
/// lexicographic order, without white space), base64url.
pub fn key_id(public_key: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        B64.encode(public_key)
    );
    B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// The receipt as a compact JWS signed with the configured receipt key.
pub fn sign(state: &AppState, receipt: &Value) -> String {
    let header = json!({
        "alg": "EdDSA",
        "typ": "JWT",
        "cty": "otv-consent-receipt+json",
        "kid": key_id(&state.store.receipt_public_key()),
    });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(receipt.to_string())
    );
    let signature = state.store.sign_receipt(input.as_bytes());
    format!("{input}.{}", B64.encode(signature))
}

fn party(p: &Party) -> Value {
    match p {
        Party::Category(c) => json!({ "type": "category", "code": c }),
        Party::Provider(u) => json!({ "type": "provider", "ura": u }),
    }
}

fn consent(a: &Answer) -> Value {
    json!({
        "holder": party(&a.key.holder),
        "data_category": a.key.data_category,
        "consulter": party(&a.key.consulter),
        "decision": a.effect.as_str(),
        "state": a.state.as_str(),
        "valid_from": a.valid_from,
        "valid_until": a.valid_until,
        "recorded_at": a.provenance.recorded_at,
        "channel": a.provenance.channel.as_str(),
        "actor": a.provenance.actor,
        "catalogue_version": a.provenance.catalogue_version,
    })
}

/// The consent record of one change, in the style of ISO/IEC TS 27560: who the record is about
/// (the PII principal, by pseudonym), who keeps it (the controller, otv), what the consent is
/// for (purpose and processing), the event that changed it (time, type, by whom, channel) and
/// the consent given or refused per option. `issued_at` is when the receipt was made.
pub fn consent_record(r: &ChangeRecord, issued_at: DateTime<Utc>) -> Value {
    let catalogue_version = r
        .answers
        .first()
        .map(|a| a.provenance.catalogue_version.clone());
    json!({
        "iss": "otv",
        "iat": issued_at.timestamp(),
        "schema_version": SCHEMA_VERSION,
        "conforms_to": "ISO/IEC TS 27560:2023 (consent record information structure), in style",
        "record_id": format!("urn:otv:change:{}", r.seq),
        "audit_seq": r.seq,
        "issued_at": issued_at,
        "language": "nl",
        "pii_principal_id": r.patient,
        "pii_principal_id_type": "otv pseudonym (HMAC-SHA256 of the BSN under otv's key)",
        "pii_controller": {
            "name": "otv, online toestemmingsvoorziening",
            "role": "consent service",
        },
        "jurisdiction": "NL",
        "purposes": [{
            "purpose": "Making medical data available between care providers for treatment \
                        (Dutch: medische gegevens beschikbaar stellen via een landelijk \
                        netwerk)",
            "purpose_of_use": "TREAT",
            "lawful_basis": "explicit consent (GDPR art. 9(2)(a); Wabvpz art. 15a)",
            "processing": ["make-available", "consult"],
        }],
        "event": {
            "event_time": r.at,
            "event_type": r.event,
            "event_by": r.actor,
            "responsible_organisation": r.organisation,
            "channel": r.channel,
        },
        "catalogue_version": catalogue_version,
        "consents": r.answers.iter().map(consent).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_id_is_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = B64
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(key_id(&x), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
