//! Notifications (PRODUCT.md §11): delivery of the outbox to providers and to citizens.
//!
//! - `mail`: citizen e-mail over SMTP (what is sent, to whom, when).
//! - `worker`: the delivery engine: N tasks per node claim outbox rows through the database
//!   (`otv_store::Backend::claim_outbox`, a lease so a crashed node's rows come back), deliver
//!   them at least once and in order per subscription, back off, park dead rows; they poll
//!   and wake at once after a change on this node ([`wake_after_change`]).
//! - `view`: what a notification tells one holder (its full current view, grouped yes/no).
//! - `resthook`: the FHIR rest-hook delivery: the Bundle, the endpoint allow-list per
//!   connector, the mTLS client with otv's own certificate.
//! - `admin`: the operators' JSON API over the outbox (status, dead rows, retry).
//!
//! Must not: put a BSN in an outbox payload, a log line, an error text or an audit record.

pub mod admin;
pub mod mail;
pub mod resthook;
pub mod view;
pub mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The PEM files of otv's rest-hook client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// otv's client certificate chain (PEM), presented to every receiver.
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
    /// The CA certificates a receiver's server certificate must chain to.
    pub server_ca: PathBuf,
}

/// The settings of the delivery engine (`[notify]`).
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// Worker tasks on this node (0: this node delivers nothing).
    pub workers: usize,
    /// How often an idle worker looks for work (it also wakes at once on a local change).
    pub poll_interval: Duration,
    /// How long a claim holds a row: after it, another node may take the row (a crashed node's
    /// rows come back). Longer than the slowest delivery ([`resthook::TIMEOUT`]).
    pub lease: Duration,
    /// Rows per claim.
    pub batch: usize,
    /// otv's rest-hook client certificate; without it rest-hook rows wait (nothing is lost).
    pub tls: Option<ClientTls>,
    /// Per connector id: the endpoint prefixes its subscriptions may name
    /// (`[[connector]] notify_endpoints`). A subscription whose endpoint is not allowed is
    /// never called.
    pub endpoints: HashMap<String, Vec<String>>,
    /// The bearer token of the admin API (`None`: the admin API is off).
    pub admin_token: Option<String>,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            workers: 2,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(120),
            batch: 32,
            tls: None,
            endpoints: HashMap::new(),
            admin_token: None,
        }
    }
}

/// The delivery engine's shared part of [`AppState`]: its settings, the rest-hook client and
/// the signal that wakes the workers.
pub struct Outbox {
    /// The settings.
    pub settings: OutboxSettings,
    /// Wakes one idle worker (a change was committed on this node).
    pub wake: tokio::sync::Notify,
    /// The mTLS client, when `tls` is configured.
    pub(crate) client: Option<reqwest::Client>,
}

impl Outbox {
    /// Builds the engine's state; the rest-hook client from the PEM files. Errors name the file.
    pub fn new(settings: OutboxSettings) -> anyhow::Result<Outbox> {
        let client = match &settings.tls {
            Some(tls) => Some(resthook::client(tls)?),
            None => None,
        };
        Ok(Outbox {
            settings,
            wake: tokio::sync::Notify::new(),
            client,
        })
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            settings: OutboxSettings::default(),
            wake: tokio::sync::Notify::new(),
            client: None,
        }
    }
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("workers", &self.settings.workers)
            .field("rest_hook_client", &self.client.is_some())
            .finish_non_exhaustive()
    }
}

/// Middleware: after a request that queued a notification has been answered (and so its
/// change committed), wakes a worker, so that the notification goes out at once instead of at
/// the next poll. A request that queued nothing (a closed question, a read) wakes nobody: the
/// workers' polling stays off the decision's hot path.
pub async fn wake_after_change(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let before = otv_store::outbox_writes();
    let response = next.run(request).await;
    if otv_store::outbox_writes() != before {
        state.outbox.wake.notify_one();
    }
    response
}
