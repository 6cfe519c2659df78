//! FHIR rest-hook delivery (PRODUCT.md §11, §12 "Notifications"): one `fhir-notification`
//! outbox row is one POST of a transaction Bundle to one subscription's `channel.endpoint`, in
//! the subscription's `channel.payload` format, over mutual TLS with otv's own client
//! certificate, and only to an endpoint allowed for the connector that registered the
//! subscription.
//!
//! The row's payload holds the holder's view as it was when the change was fanned out (never a
//! BSN); the Bundle is made at sending time with the patient's BSN, and its id comes from the
//! change and the subscription, so every attempt sends the same Bundle.

use std::time::Duration;

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use otv_wire::fhir::{
    Coded, ConsentGroup, FHIR_XML, Notification, notification_bundle_json, notification_bundle_xml,
    notification_id,
};

use super::{ClientTls, OutboxSettings};
use crate::AppState;

/// The outbox kind of one notification to one subscription.
pub const FHIR_NOTIFICATION: &str = "fhir-notification";
/// How long one delivery may take (connect, send, answer).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One code with its display, as stored in a row's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCode {
    /// The code.
    pub code: String,
    /// Its Dutch display name.
    pub display: String,
}

/// One Consent group, as stored in a row's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    /// The data category.
    pub data_category: StoredCode,
    /// Yes or no.
    pub permit: bool,
    /// The consulting categories.
    pub consulting: Vec<StoredCode>,
}

/// The payload of a `fhir-notification` row. No BSN: the patient is the row's citizen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationPayload {
    /// The subscription to notify.
    pub subscription: Uuid,
    /// The change (its audit record's sequence number).
    pub change: i64,
    /// When the change was committed.
    pub changed_at: DateTime<Utc>,
    /// The catalogue version of the view.
    pub catalogue_version: String,
    /// The holder's view.
    pub groups: Vec<StoredGroup>,
}

impl NotificationPayload {
    /// The payload of the view `groups` of change `change` for `subscription`.
    pub fn new(
        subscription: Uuid,
        change: i64,
        changed_at: DateTime<Utc>,
        catalogue_version: &str,
        groups: &[ConsentGroup],
    ) -> Self {
        let code = |c: &Coded| StoredCode {
            code: c.code.clone(),
            display: c.display.clone(),
        };
        NotificationPayload {
            subscription,
            change,
            changed_at,
            catalogue_version: catalogue_version.to_owned(),
            groups: groups
                .iter()
                .map(|g| StoredGroup {
                    data_category: code(&g.data_category),
                    permit: g.permit,
                    consulting: g.consulting.iter().map(code).collect(),
                })
                .collect(),
        }
    }

    /// The Bundle id: the same for every attempt.
    pub fn bundle_id(&self) -> Uuid {
        notification_id(self.change, self.subscription)
    }

    fn groups(&self) -> Vec<ConsentGroup> {
        let code = |c: &StoredCode| Coded {
            code: c.code.clone(),
            display: c.display.clone(),
        };
        self.groups
            .iter()
            .map(|g| ConsentGroup {
                data_category: code(&g.data_category),
                permit: g.permit,
                consulting: g.consulting.iter().map(code).collect(),
            })
            .collect()
    }
}

/// otv's rest-hook client: rustls on aws-lc-rs, otv's client certificate, receivers verified
/// against `server_ca`. Errors name the file.
pub fn client(tls: &ClientTls) -> anyhow::Result<reqwest::Client> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read(path)
            .with_context(|| format!("setting `notify.{what}` {}: cannot read", path.display()))
    };
    let chain = CertificateDer::pem_slice_iter(&read(&tls.client_cert, "client_cert")?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("setting `notify.client_cert`: not valid PEM ({e})"))?;
    if chain.is_empty() {
        anyhow::bail!("setting `notify.client_cert`: no CERTIFICATE in the file");
    }
    let key = PrivateKeyDer::from_pem_slice(&read(&tls.client_key, "client_key")?)
        .map_err(|e| anyhow!("setting `notify.client_key`: no private key in the file ({e})"))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(&tls.server_ca, "server_ca")?) {
        let ca = ca.map_err(|e| anyhow!("setting `notify.server_ca`: not valid PEM ({e})"))?;
        roots
            .add(ca)
            .map_err(|e| anyhow!("setting `notify.server_ca`: {e}"))?;
    }
    if roots.is_empty() {
        anyhow::bail!("setting `notify.server_ca`: no CA certificate in the file");
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| anyhow!("settings `notify.client_cert`/`client_key`: {e}"))?;
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("the rest-hook client")
}

/// Whether `endpoint` is allowed for `connector`: it has the scheme, host and port of one of
/// the connector's `notify_endpoints` and its path starts with that one's path at a segment
/// boundary. Only https.
pub fn endpoint_allowed(settings: &OutboxSettings, connector: &str, endpoint: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(endpoint) else {
        return false;
    };
    if url.scheme() != "https" || url.username() != "" || url.password().is_some() {
        return false;
    }
    let Some(prefixes) = settings.endpoints.get(connector) else {
        return false;
    };
    prefixes.iter().any(|p| {
        let Ok(prefix) = reqwest::Url::parse(p) else {
            return false;
        };
        let (path, base) = (url.path(), prefix.path().trim_end_matches('/'));
        prefix.scheme() == url.scheme()
            && prefix.host_str() == url.host_str()
            && prefix.port_or_known_default() == url.port_or_known_default()
            && path.starts_with(base)
            && matches!(path[base.len()..].chars().next(), None | Some('/'))
    })
}

/// What became of one notification.
#[derive(Debug)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Nothing to send (the subscription was deleted or deactivated, the citizen is gone).
    Skipped(&'static str),
}

/// Why a notification was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later (network, timeout, a non-2xx answer, the database).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed (the endpoint is not allowed, the row cannot be read): dead at once.
    #[error("{0}")]
    Permanent(String),
    /// otv has no client certificate configured: the row waits.
    #[error("rest-hook delivery is not configured ([notify] client_cert, client_key, server_ca)")]
    NotConfigured,
}

/// The subscription and holder a delivery is for (for the audit record).
#[derive(Debug, Default, Clone)]
pub struct Target {
    /// The holder's URA.
    pub holder_ura: Option<String>,
    /// The patient's pseudonym.
    pub patient: Option<String>,
    /// The Bundle id.
    pub bundle_id: Option<Uuid>,
    /// The subscription.
    pub subscription: Option<Uuid>,
}

/// Delivers one `fhir-notification` row of citizen `citizen` with `payload`; fills `target`
/// with what the audit record names.
pub async fn deliver(
    state: &AppState,
    citizen: Uuid,
    payload: &str,
    target: &mut Target,
) -> Result<Outcome, DeliveryError> {
    let payload: NotificationPayload = serde_json::from_str(payload).map_err(|e| {
        DeliveryError::Permanent(format!(
            "the payload of a {FHIR_NOTIFICATION} row cannot be read: {e}"
        ))
    })?;
    let bundle_id = payload.bundle_id();
    target.bundle_id = Some(bundle_id);
    target.subscription = Some(payload.subscription);
    let store_failed =
        |e: otv_store::StoreError| DeliveryError::Transient(format!("database: {e}"));
    let Some(subscription) = state
        .store
        .notify_target(citizen, payload.subscription)
        .await
        .map_err(store_failed)?
    else {
        return Ok(Outcome::Skipped("the subscription was deleted"));
    };
    let s = &subscription.subscription;
    target.holder_ura = Some(s.holder_ura.to_string());
    if !subscription.active {
        return Ok(Outcome::Skipped("the subscription is deactivated"));
    }
    let Some(bsn) = state
        .store
        .citizen_bsn(citizen)
        .await
        .map_err(store_failed)?
    else {
        return Ok(Outcome::Skipped("the citizen is not known any more"));
    };
    target.patient = Some(state.store.patient_reference(&bsn));
    if !endpoint_allowed(&state.outbox.settings, &s.connector_id, &s.endpoint) {
        return Err(DeliveryError::Permanent(format!(
            "endpoint {} is not allowed for connector `{}` (its notify_endpoints)",
            s.endpoint, s.connector_id
        )));
    }
    let Some(client) = state.outbox.client.as_ref() else {
        return Err(DeliveryError::NotConfigured);
    };
    let groups = payload.groups();
    let notification = Notification {
        id: bundle_id,
        bsn: &bsn,
        holder_ura: &s.holder_ura,
        holder_type: &s.holder_type,
        catalogue_version: &payload.catalogue_version,
        changed_at: payload.changed_at,
        groups: &groups,
    };
    let (body, content_type) = if s.payload.starts_with(FHIR_XML) {
        (
            notification_bundle_xml(&notification),
            "application/fhir+xml; charset=utf-8",
        )
    } else {
        (
            notification_bundle_json(&notification),
            "application/fhir+json; charset=utf-8",
        )
    };
    let response = client
        .post(&s.endpoint)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header(crate::REQUEST_ID, bundle_id.to_string())
        .body(body)
        .send()
        .await
        // Without the URL (it is in the audit details already); never a BSN.
        .map_err(|e| DeliveryError::Transient(format!("sending failed: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        Ok(Outcome::Delivered {
            status: status.as_u16(),
        })
    } else {
        Err(DeliveryError::Transient(format!(
            "the receiver answered {status}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OutboxSettings {
        let mut s = OutboxSettings::default();
        s.endpoints.insert(
            "lsp".into(),
            vec!["https://zim.lsp.example.nl:8443/otv/Subscription".into()],
        );
        s
    }

    #[test]
    fn only_endpoints_under_a_prefix_of_the_connector_are_allowed() {
        let s = settings();
        let ok = "https://zim.lsp.example.nl:8443/otv/Subscription/312";
        assert!(endpoint_allowed(&s, "lsp", ok));
        assert!(endpoint_allowed(
            &s,
            "lsp",
            "https://zim.lsp.example.nl:8443/otv/Subscription"
        ));
        assert!(
            !endpoint_allowed(&s, "other", ok),
            "another connector's prefix"
        );
        for bad in [
            "https://zim.lsp.example.nl:8443/otv/SubscriptionX/1",
            "https://zim.lsp.example.nl/otv/Subscription/1",
            "http://zim.lsp.example.nl:8443/otv/Subscription/1",
            "https://evil.example.nl:8443/otv/Subscription/1",
            "https://zim.lsp.example.nl.evil.nl:8443/otv/Subscription/1",
            "https://user@zim.lsp.example.nl:8443/otv/Subscription/1",
            "not a url",
        ] {
            assert!(!endpoint_allowed(&s, "lsp", bad), "{bad}");
        }
    }

    #[test]
    fn the_stored_view_comes_back_as_it_went_in_and_keeps_its_bundle_id() {
        let groups = vec![ConsentGroup {
            data_category: Coded {
                code: "GGC002".into(),
                display: "Behandelgegevens".into(),
            },
            permit: true,
            consulting: vec![Coded {
                code: "RPZAC005".into(),
                display: "Apotheken".into(),
            }],
        }];
        let p = NotificationPayload::new(Uuid::from_u128(3), 9, Utc::now(), "v1", &groups);
        let back: NotificationPayload =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back.groups(), groups);
        assert_eq!(back.bundle_id(), notification_id(9, Uuid::from_u128(3)));
    }
}
