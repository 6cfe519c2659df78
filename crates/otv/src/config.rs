//! Typed, layered configuration: defaults, then a TOML file, then the environment.
//!
//! Every setting has an environment variable `OTV_<NAME>` (e.g. `OTV_LISTEN`), and
//! `DATABASE_URL` is read as well as `OTV_DATABASE_URL`. [`Config::validate`] turns the raw
//! settings into [`Settings`] or explains, per setting, what is wrong.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use otv_core::{Catalogue, DefaultPolicy};
use otv_store::Keys;
use serde::{Deserialize, Serialize};

/// The settings as read, before validation. Field names are the file keys; the environment
/// variable is `OTV_` plus the name in capitals.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Database: `sqlite://FILE`, `sqlite::memory:` or `postgres://…`.
    pub database_url: String,
    /// Address of the HTTP listener.
    pub listen: String,
    /// `opt-in` (no answer is no) or `opt-out` (no answer is yes).
    pub default_policy: DefaultPolicy,
    /// A replacement consent catalogue file; the shipped one when absent.
    pub catalogue: Option<PathBuf>,
    /// How long audit records are kept, in days (NEN 7513: 5 years by default).
    pub audit_retention_days: u32,
    /// `json` (structured, the default) or `text`.
    pub log_format: String,
    /// Log filter, e.g. `info` or `otv=debug,info`; `RUST_LOG` overrides.
    pub log_level: String,
    /// HMAC key for BSN pseudonyms, 64 hex characters.
    pub pseudonym_key: Option<String>,
    /// AES-256-GCM key for stored BSNs, 64 hex characters.
    pub encryption_key: Option<String>,
    /// Ed25519 seed for audit checkpoints, 64 hex characters.
    pub audit_signing_key: Option<String>,
    /// Ed25519 seed for consent receipts, 64 hex characters.
    pub receipt_signing_key: Option<String>,
    /// Demo mode: development keys when none are set (SQLite only).
    pub demo: bool,
    /// Address of the mutual-TLS provider listener; none when absent.
    pub provider_listen: Option<String>,
    /// Base path of the provider interfaces, e.g. `/mitz` (Mitz's layout); the root when empty.
    pub provider_base_path: String,
    /// PEM file with otv's server certificate chain for the provider listener.
    pub tls_server_cert: Option<PathBuf>,
    /// PEM file with the private key of that certificate.
    pub tls_server_key: Option<PathBuf>,
    /// PEM file with the CA certificates client certificates must chain to (the trust store).
    pub tls_client_ca: Option<PathBuf>,
    /// Development only: the provider interfaces also on the plain-HTTP listener, with the
    /// connector named by the `X-Otv-Dev-Connector` header instead of a client certificate.
    pub dev_plain_provider_http: bool,
    /// The `Audience` open-question SAML assertions must name (the value existing Mitz
    /// connectors send by default, as in the public connector's requests).
    pub saml_audience: String,
    /// Requests per second each connector may make to the subscription endpoints (a token
    /// bucket; fractions allowed, 0.5 is one request per two seconds).
    pub subscription_rate: f64,
    /// How many subscription requests a connector may make at once before the rate applies.
    pub subscription_burst: u32,
    /// The connector allow-list.
    pub connector: Vec<ConnectorConfig>,
    /// The citizen portal (`[portal]`).
    pub portal: PortalConfigFile,
    /// Citizen e-mail (`[mail]`).
    pub mail: MailConfigFile,
    /// The outbox delivery engine and rest-hook notifications (`[notify]`).
    #[serde(default)]
    pub notify: NotifyConfigFile,
    /// Provider-assisted recording (`[assisted]`): the enrolment tokens' trust anchors.
    #[serde(default)]
    pub assisted: AssistedConfigFile,
}

// --- Provider-assisted recording (`[assisted]`; environment `OTV_ASSISTED_<KEY>`) ------------

/// The `[assisted]` table as read. Without anchors every enrolment token is refused ("unknown
/// anchor"), and with it Samen-naar-MijnMitz and the raadplegersknop.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AssistedConfigFile {
    /// PEM file with the UZI-card CA certificates: enrolment tokens of factor `uzi-pas` must
    /// chain to one of them.
    pub enrolment_uzi_card_ca: Option<PathBuf>,
    /// PEM file with the WID-issuer CA certificates: enrolment tokens of factor `wid` must
    /// chain to one of them.
    pub enrolment_wid_ca: Option<PathBuf>,
}

/// The keys of `[assisted]`, which are also the environment variables after `OTV_ASSISTED_`.
const ASSISTED_SETTINGS: &[&str] = &["enrolment_uzi_card_ca", "enrolment_wid_ca"];

impl AssistedConfigFile {
    /// Reads the trust anchors. Errors name the setting and the file.
    fn validate(&self) -> anyhow::Result<otv_server::assisted::token::TrustAnchors> {
        otv_server::assisted::token::TrustAnchors::from_pem_files(
            self.enrolment_uzi_card_ca
                .as_deref()
                .map(|p| ("assisted.enrolment_uzi_card_ca", p)),
            self.enrolment_wid_ca
                .as_deref()
                .map(|p| ("assisted.enrolment_wid_ca", p)),
        )
        .map_err(|e| anyhow::anyhow!(e))
    }
}

// --- The outbox delivery engine (`[notify]`; environment `OTV_NOTIFY_<KEY>`; helper D) -------

/// The `[notify]` table as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfigFile {
    /// Delivery worker tasks on this node (0: this node delivers nothing).
    pub workers: usize,
    /// Milliseconds between looks for work of an idle worker (it also wakes on local changes).
    pub poll_interval_ms: u64,
    /// Seconds a claimed row stays with its worker before another node may take it.
    pub lease_secs: u64,
    /// Rows per claim.
    pub batch: usize,
    /// PEM file with otv's client certificate chain for rest-hook deliveries (mutual TLS).
    pub client_cert: Option<PathBuf>,
    /// PEM file with its private key.
    pub client_key: Option<PathBuf>,
    /// PEM file with the CA certificates receivers' server certificates must chain to.
    pub server_ca: Option<PathBuf>,
    /// Bearer token of the admin API (`/admin/v1/outbox…`); the admin API is off without it.
    pub admin_token: Option<String>,
}

impl Default for NotifyConfigFile {
    fn default() -> Self {
        let d = otv_server::notify::OutboxSettings::default();
        NotifyConfigFile {
            workers: d.workers,
            poll_interval_ms: d.poll_interval.as_millis() as u64,
            lease_secs: d.lease.as_secs(),
            batch: d.batch,
            client_cert: None,
            client_key: None,
            server_ca: None,
            admin_token: None,
        }
    }
}

/// The keys of `[notify]`, which are also the environment variables after `OTV_NOTIFY_`.
const NOTIFY_SETTINGS: &[&str] = &[
    "workers",
    "poll_interval_ms",
    "lease_secs",
    "batch",
    "client_cert",
    "client_key",
    "server_ca",
    "admin_token",
];

impl NotifyConfigFile {
    /// Checks the `[notify]` settings with the connectors' `notify_endpoints`. Errors name the
    /// setting.
    fn validate(
        self,
        connectors: &[ConnectorConfig],
    ) -> anyhow::Result<otv_server::notify::OutboxSettings> {
        if self.poll_interval_ms == 0 {
            bail!("setting `notify.poll_interval_ms`: must be at least 1");
        }
        if self.lease_secs == 0 {
            bail!("setting `notify.lease_secs`: must be at least 1");
        }
        if self.batch == 0 {
            bail!("setting `notify.batch`: must be at least 1");
        }
        let tls = match (self.client_cert, self.client_key, self.server_ca) {
            (None, None, None) => None,
            (Some(client_cert), Some(client_key), Some(server_ca)) => {
                Some(otv_server::notify::ClientTls {
                    client_cert,
                    client_key,
                    server_ca,
                })
            }
            _ => bail!(
                "settings `notify.client_cert`, `notify.client_key` and `notify.server_ca` go together: set all three or none"
            ),
        };
        if let Some(token) = &self.admin_token
            && token.len() < 32
        {
            bail!(
                "setting `notify.admin_token`: use at least 32 characters (e.g. `openssl rand -hex 32`)"
            );
        }
        let mut endpoints = std::collections::HashMap::new();
        for (i, c) in connectors.iter().enumerate() {
            for (j, e) in c.notify_endpoints.iter().enumerate() {
                let rest = e.strip_prefix("https://").unwrap_or("");
                let host = rest.split(['/', '?', '#']).next().unwrap_or("");
                if host.is_empty() || host.contains('@') {
                    bail!(
                        "setting `connector[{i}].notify_endpoints[{j}]` ({}): must be an https URL like https://host:port/path",
                        c.id
                    );
                }
            }
            endpoints.insert(c.id.clone(), c.notify_endpoints.clone());
        }
        Ok(otv_server::notify::OutboxSettings {
            workers: self.workers,
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms),
            lease: std::time::Duration::from_secs(self.lease_secs),
            batch: self.batch,
            tls,
            endpoints,
            admin_token: self.admin_token,
        })
    }
}

// --- Citizen e-mail (`[mail]`; environment `OTV_MAIL_<KEY>`) --------------------------------

/// The `[mail]` table as read. Without `smtp_url` no mail is sent (mail rows wait).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfigFile {
    /// `smtps://host:465`, `smtp://host:587?tls=required`, or `smtp://127.0.0.1:PORT` (no TLS,
    /// this machine only). User and password may stand in the URL.
    pub smtp_url: Option<String>,
    /// The sender, e.g. `otv <noreply@toestemming.example.nl>`.
    pub from: Option<String>,
    /// The portal's public address, for the links in mails.
    pub portal_url: Option<String>,
    /// From this hour (Dutch time, 0–23) the daily digest of consent checks goes out.
    pub digest_hour: u32,
    /// Seconds between scans of the audit log for consent checks.
    pub check_scan_secs: u64,
    /// Hours before an emergency consent ends that the reminder goes out.
    pub expiry_notice_hours: u32,
    /// A CA certificate (PEM file) the SMTP server's certificate may chain to, besides the
    /// Mozilla roots (a private mail relay).
    pub smtp_ca_file: Option<PathBuf>,
}

impl Default for MailConfigFile {
    fn default() -> Self {
        MailConfigFile {
            smtp_url: None,
            from: None,
            portal_url: None,
            digest_hour: 8,
            check_scan_secs: 60,
            expiry_notice_hours: 12,
            smtp_ca_file: None,
        }
    }
}

/// The keys of `[mail]`, which are also the environment variables after `OTV_MAIL_`.
const MAIL_SETTINGS: &[&str] = &[
    "smtp_url",
    "from",
    "portal_url",
    "digest_hour",
    "check_scan_secs",
    "expiry_notice_hours",
    "smtp_ca_file",
];

impl MailConfigFile {
    /// Checks the `[mail]` settings; `None` when mail is off. Errors name the setting.
    fn validate(self) -> anyhow::Result<Option<otv_server::notify::mail::MailSettings>> {
        let Some(url) = self.smtp_url.filter(|u| !u.trim().is_empty()) else {
            if self.from.is_some() || self.portal_url.is_some() {
                bail!("setting `mail.smtp_url`: set it too, or mail stays off");
            }
            return Ok(None);
        };
        let Some(from) = self.from else {
            bail!("setting `mail.from`: the sender is needed when `mail.smtp_url` is set");
        };
        let Some(portal_url) = self.portal_url else {
            bail!(
                "setting `mail.portal_url`: the portal's public address is needed for the links in mails"
            );
        };
        let ca = match &self.smtp_ca_file {
            Some(path) => Some(std::fs::read(path).with_context(|| {
                format!(
                    "setting `mail.smtp_ca_file`: cannot read {}",
                    path.display()
                )
            })?),
            None => None,
        };
        otv_server::notify::mail::MailSettings::new(
            &url,
            &from,
            &portal_url,
            self.digest_hour,
            self.check_scan_secs,
            self.expiry_notice_hours,
            ca,
        )
        .map(Some)
        .map_err(|e| anyhow::anyhow!(e))
    }
}

// --- The citizen portal (`[portal]`; environment `OTV_PORTAL_<KEY>`) ------------------------

/// The `[portal]` table as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfigFile {
    /// Development login (type a test BSN): never in production.
    pub dev_login: bool,
    /// The OpenID Connect issuer (URL); login through it when set.
    pub oidc_issuer: Option<String>,
    /// otv's client id at the issuer.
    pub oidc_client_id: Option<String>,
    /// The client secret; absent: a public client (PKCE only).
    pub oidc_client_secret: Option<String>,
    /// Where the issuer sends the browser back: `<portal URL>/inloggen/terug`.
    pub oidc_redirect_url: Option<String>,
    /// The claim with the BSN.
    pub claim_bsn: String,
    /// The claim with the birth date (`YYYY-MM-DD`).
    pub claim_birth_date: String,
    /// The claim with the BSN of the citizen a representative acts for.
    pub claim_acting_for: String,
    /// The claim with the name.
    pub claim_name: String,
    /// Seconds without a request after which a session ends.
    pub idle_timeout_secs: u64,
    /// The terms-of-use version citizens must have accepted.
    pub terms_version: String,
    /// The portal's public address (e.g. `https://otv.example.nl`): hand-off links are built
    /// on it. Absent: the origin of `oidc_redirect_url`, else `http://<listen>`.
    pub public_url: Option<String>,
    /// How long a hand-off link can be opened, in seconds (1 to 300).
    pub hand_off_lifetime_secs: u64,
}

impl Default for PortalConfigFile {
    fn default() -> Self {
        let claims = otv_server::portal::ClaimNames::default();
        PortalConfigFile {
            dev_login: false,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_redirect_url: None,
            claim_bsn: claims.bsn,
            claim_birth_date: claims.birth_date,
            claim_acting_for: claims.acting_for,
            claim_name: claims.name,
            idle_timeout_secs: 900,
            terms_version: otv_server::portal::BUNDLED_TERMS_VERSION.into(),
            public_url: None,
            hand_off_lifetime_secs: otv_server::assisted::handoff::MAX_LIFETIME.as_secs(),
        }
    }
}

/// The keys of `[portal]`, which are also the environment variables after `OTV_PORTAL_`.
const PORTAL_SETTINGS: &[&str] = &[
    "dev_login",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_redirect_url",
    "claim_bsn",
    "claim_birth_date",
    "claim_acting_for",
    "claim_name",
    "idle_timeout_secs",
    "terms_version",
    "public_url",
    "hand_off_lifetime_secs",
];

impl PortalConfigFile {
    /// The hand-off links' settings (provider-assisted recording): `public_url`, else the
    /// origin of `oidc_redirect_url`, else `http://<listen>`; and the lifetime.
    fn hand_off(
        &self,
        listen: SocketAddr,
    ) -> anyhow::Result<otv_server::assisted::handoff::Settings> {
        let public_url = match (&self.public_url, &self.oidc_redirect_url) {
            (Some(url), _) => url.clone(),
            (None, Some(redirect)) => {
                let scheme_end = redirect.find("://").map_or(0, |i| i + 3);
                let end = redirect[scheme_end..]
                    .find('/')
                    .map_or(redirect.len(), |i| scheme_end + i);
                redirect[..end].to_owned()
            }
            (None, None) => format!("http://{listen}"),
        };
        otv_server::assisted::handoff::Settings::new(
            &public_url,
            std::time::Duration::from_secs(self.hand_off_lifetime_secs),
        )
        .map_err(|e| anyhow::anyhow!(e))
    }
}

#[cfg(test)]
mod hand_off_tests {
    use super::*;

    #[test]
    fn hand_off_links_are_built_on_the_public_url_or_the_login_callbacks_origin() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut p = PortalConfigFile::default();
        assert_eq!(
            p.hand_off(listen).unwrap().public_url,
            "http://127.0.0.1:8080"
        );
        p.oidc_redirect_url = Some("https://otv.example.nl/inloggen/terug".into());
        assert_eq!(
            p.hand_off(listen).unwrap().public_url,
            "https://otv.example.nl"
        );
        p.public_url = Some("https://portaal.example.nl/".into());
        let s = p.hand_off(listen).unwrap();
        assert_eq!(s.public_url, "https://portaal.example.nl");
        assert_eq!(s.lifetime.as_secs(), 300);
        p.hand_off_lifetime_secs = 301;
        let err = p.hand_off(listen).unwrap_err().to_string();
        assert!(err.contains("portal.hand_off_lifetime_secs"), "{err}");
        p.hand_off_lifetime_secs = 60;
        p.public_url = Some("portaal.example.nl".into());
        let err = p.hand_off(listen).unwrap_err().to_string();
        assert!(err.contains("portal.public_url"), "{err}");
    }
}

impl PortalConfigFile {
    /// Checks the `[portal]` settings. Errors name the setting.
    fn validate(self) -> anyhow::Result<otv_server::portal::PortalConfig> {
        use otv_server::portal::{ClaimNames, OidcSettings, PortalConfig};
        let oidc = match (
            self.oidc_issuer,
            self.oidc_client_id,
            self.oidc_redirect_url,
        ) {
            (None, None, None) => {
                if self.oidc_client_secret.is_some() {
                    bail!(
                        "setting `portal.oidc_client_secret`: set `portal.oidc_issuer`, `portal.oidc_client_id` and `portal.oidc_redirect_url` too"
                    );
                }
                None
            }
            (Some(issuer), Some(client_id), Some(redirect_url)) => {
                for (name, url) in [
                    ("oidc_issuer", &issuer),
                    ("oidc_redirect_url", &redirect_url),
                ] {
                    if !(url.starts_with("https://") || url.starts_with("http://")) {
                        bail!("setting `portal.{name}`: must be an http(s) URL");
                    }
                }
                if client_id.trim().is_empty() {
                    bail!("setting `portal.oidc_client_id`: must not be empty");
                }
                Some(OidcSettings {
                    issuer,
                    client_id,
                    client_secret: self.oidc_client_secret.filter(|s| !s.is_empty()),
                    redirect_url,
                })
            }
            _ => bail!(
                "settings `portal.oidc_issuer`, `portal.oidc_client_id` and `portal.oidc_redirect_url` go together: set all three or none"
            ),
        };
        for (name, claim) in [
            ("claim_bsn", &self.claim_bsn),
            ("claim_birth_date", &self.claim_birth_date),
            ("claim_acting_for", &self.claim_acting_for),
            ("claim_name", &self.claim_name),
        ] {
            if claim.trim().is_empty() {
                bail!("setting `portal.{name}`: must name a claim");
            }
        }
        if self.idle_timeout_secs == 0 {
            bail!("setting `portal.idle_timeout_secs`: must be at least 1");
        }
        if self.terms_version.trim().is_empty() {
            bail!("setting `portal.terms_version`: must not be empty");
        }
        Ok(PortalConfig {
            dev_login: self.dev_login,
            oidc,
            claims: ClaimNames {
                bsn: self.claim_bsn,
                birth_date: self.claim_birth_date,
                acting_for: self.claim_acting_for,
                name: self.claim_name,
            },
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            terms_version: self.terms_version,
        })
    }
}

/// One allow-listed connector.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorConfig {
    /// Stable id, e.g. `lsp`.
    pub id: String,
    /// Human name.
    #[serde(default)]
    pub name: String,
    /// SHA-256 of the client certificate (DER), hex.
    pub certificate_sha256: Option<String>,
    /// URAs it may act for (besides the URA in its UZI server certificate).
    #[serde(default)]
    pub acts_for: Vec<String>,
    /// The rest-hook endpoints its subscriptions may name, as URL prefixes
    /// (`https://host:port/path`); a subscription naming another endpoint is never called.
    #[serde(default)]
    pub notify_endpoints: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://otv.sqlite".into(),
            listen: "127.0.0.1:8080".into(),
            default_policy: DefaultPolicy::OptIn,
            catalogue: None,
            audit_retention_days: 5 * 365 + 1,
            log_format: "json".into(),
            log_level: "info".into(),
            pseudonym_key: None,
            encryption_key: None,
            audit_signing_key: None,
            receipt_signing_key: None,
            demo: false,
            provider_listen: None,
            provider_base_path: String::new(),
            tls_server_cert: None,
            tls_server_key: None,
            tls_client_ca: None,
            dev_plain_provider_http: false,
            saml_audience: "urn:oid:2.16.840.1.113883.2.4.3.111.2.1".into(),
            subscription_rate: 1000.0,
            subscription_burst: 2000,
            connector: Vec::new(),
            portal: PortalConfigFile::default(),
            mail: MailConfigFile::default(),
            notify: NotifyConfigFile::default(),
            assisted: AssistedConfigFile::default(),
        }
    }
}

/// The names of the settings, which are also the environment variables after `OTV_`. Other
/// `OTV_` variables (test and benchmark switches) are not settings.
const SETTINGS: &[&str] = &[
    "database_url",
    "listen",
    "default_policy",
    "catalogue",
    "audit_retention_days",
    "log_format",
    "log_level",
    "pseudonym_key",
    "encryption_key",
    "audit_signing_key",
    "receipt_signing_key",
    "demo",
    "provider_listen",
    "provider_base_path",
    "tls_server_cert",
    "tls_server_key",
    "tls_client_ca",
    "dev_plain_provider_http",
    "saml_audience",
    "subscription_rate",
    "subscription_burst",
];

/// Validated settings, ready to use.
pub struct Settings {
    /// Database URL.
    pub database_url: String,
    /// Listener address.
    pub listen: SocketAddr,
    /// Default policy.
    pub default_policy: DefaultPolicy,
    /// The catalogue in force.
    pub catalogue: Catalogue,
    /// Audit retention in days.
    pub audit_retention_days: u32,
    /// Keys for pseudonyms, encryption and audit signatures.
    pub keys: Keys,
    /// Demo mode.
    pub demo: bool,
    /// The mutual-TLS provider listener, when configured.
    pub provider: Option<ProviderListener>,
    /// Base path of the provider interfaces.
    pub provider_base_path: String,
    /// Development flag: provider interfaces on plain HTTP.
    pub dev_plain_provider_http: bool,
    /// The connector allow-list.
    pub connectors: Vec<otv_store::Connector>,
    /// Audience of open-question SAML assertions.
    pub saml_audience: String,
    /// The per-connector rate limit of the subscription endpoints.
    pub subscription_throttle: otv_server::provider::subscription::ThrottleSettings,
    /// The citizen portal.
    pub portal: otv_server::portal::PortalConfig,
    /// The hand-off links of provider-assisted recording (`[portal]` `public_url`,
    /// `hand_off_lifetime_secs`).
    pub hand_off: otv_server::assisted::handoff::Settings,
    /// Citizen e-mail; `None` when `[mail]` is not configured.
    pub mail: Option<otv_server::notify::mail::MailSettings>,
    /// The outbox delivery engine (`[notify]`, the connectors' `notify_endpoints`).
    pub outbox: otv_server::notify::OutboxSettings,
    /// The enrolment tokens' trust anchors (`[assisted]`).
    pub enrolment_anchors: otv_server::assisted::token::TrustAnchors,
}

/// The mutual-TLS provider listener's settings.
pub struct ProviderListener {
    /// Address.
    pub listen: SocketAddr,
    /// Server certificate chain (PEM).
    pub server_cert: PathBuf,
    /// Server key (PEM).
    pub server_key: PathBuf,
    /// Client CA trust store (PEM).
    pub client_ca: PathBuf,
}

impl Config {
    /// Reads defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("configuration file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        let figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(Env::prefixed("OTV_").only(SETTINGS))
            .merge(
                Env::prefixed("OTV_PORTAL_")
                    .only(PORTAL_SETTINGS)
                    .map(|k| format!("portal.{k}").into()),
            )
            .merge(
                Env::prefixed("OTV_NOTIFY_")
                    .only(NOTIFY_SETTINGS)
                    .map(|k| format!("notify.{k}").into()),
            )
            .merge(
                Env::prefixed("OTV_MAIL_")
                    .only(MAIL_SETTINGS)
                    .map(|k| format!("mail.{k}").into()),
            )
            .merge(
                Env::prefixed("OTV_ASSISTED_")
                    .only(ASSISTED_SETTINGS)
                    .map(|k| format!("assisted.{k}").into()),
            );
        figment
            .extract()
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))
    }

    /// Checks every setting and builds [`Settings`]. Errors name the setting.
    pub fn validate(self) -> anyhow::Result<Settings> {
        let backend = if self.database_url.starts_with("sqlite:") {
            "sqlite"
        } else if self.database_url.starts_with("postgres:")
            || self.database_url.starts_with("postgresql:")
        {
            "postgres"
        } else {
            bail!("setting `database_url`: must start with sqlite: or postgres:");
        };
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "setting `listen`: `{}` is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        let catalogue = match &self.catalogue {
            None => Catalogue::default_catalogue(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("setting `catalogue`: cannot read {}", path.display())
                })?;
                Catalogue::from_toml(&text)
                    .with_context(|| format!("setting `catalogue`: {}", path.display()))?
            }
        };
        if self.audit_retention_days == 0 {
            bail!("setting `audit_retention_days`: must be at least 1");
        }
        if !matches!(self.log_format.as_str(), "json" | "text") {
            bail!("setting `log_format`: must be json or text");
        }
        let keys = match (
            &self.pseudonym_key,
            &self.encryption_key,
            &self.audit_signing_key,
            &self.receipt_signing_key,
        ) {
            (Some(p), Some(e), Some(s), Some(r)) => Keys::from_hex(p, e, s, r).context("keys")?,
            (None, None, None, None) if self.demo && backend == "sqlite" => Keys::development(),
            (None, None, None, None) if backend == "postgres" => bail!(
                "otv does not start on PostgreSQL without real keys: set pseudonym_key, encryption_key, \
                 audit_signing_key and receipt_signing_key (OTV_PSEUDONYM_KEY, OTV_ENCRYPTION_KEY, \
                 OTV_AUDIT_SIGNING_KEY, OTV_RECEIPT_SIGNING_KEY); `otv keys generate` makes a set"
            ),
            (None, None, None, None) => bail!(
                "no keys configured: set pseudonym_key, encryption_key, audit_signing_key and receipt_signing_key \
                 (`otv keys generate` makes a set), or run with --demo for development keys on SQLite"
            ),
            _ => bail!(
                "keys: set all four of pseudonym_key, encryption_key, audit_signing_key and receipt_signing_key, \
                 or none in demo mode"
            ),
        };
        if backend == "postgres" && keys.is_development() {
            bail!(
                "otv does not start on PostgreSQL with the development keys; generate real ones with `otv keys generate`"
            );
        }
        let provider = match (&self.provider_listen, &self.tls_server_cert, &self.tls_server_key, &self.tls_client_ca) {
            (None, None, None, None) => None,
            (Some(listen), Some(cert), Some(key), Some(ca)) => Some(ProviderListener {
                listen: listen
                    .parse()
                    .with_context(|| format!("setting `provider_listen`: `{listen}` is not an address like 127.0.0.1:8443"))?,
                server_cert: cert.clone(),
                server_key: key.clone(),
                client_ca: ca.clone(),
            }),
            _ => bail!(
                "settings `provider_listen`, `tls_server_cert`, `tls_server_key` and `tls_client_ca` go together: set all four or none"
            ),
        };
        if !self.provider_base_path.is_empty() && !self.provider_base_path.starts_with('/') {
            bail!("setting `provider_base_path`: must start with / (e.g. /mitz) or be empty");
        }
        if !(self.subscription_rate.is_finite() && self.subscription_rate > 0.0) {
            bail!("setting `subscription_rate`: must be a number of requests per second above 0");
        }
        if self.subscription_burst == 0 {
            bail!("setting `subscription_burst`: must be at least 1");
        }
        let mut connectors = Vec::new();
        for (i, c) in self.connector.iter().enumerate() {
            let entry = format!("setting `connector[{i}]` ({})", c.id);
            if c.id.trim().is_empty() {
                bail!("{entry}: `id` must not be empty");
            }
            if connectors
                .iter()
                .any(|k: &otv_store::Connector| k.id == c.id)
            {
                bail!("{entry}: duplicate id");
            }
            if let Some(fp) = &c.certificate_sha256
                && (fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                bail!("{entry}: `certificate_sha256` must be 64 hex characters");
            }
            let acts_for = c
                .acts_for
                .iter()
                .map(|u| otv_core::Ura::parse_field(u, "acts_for"))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| entry.clone())?;
            connectors.push(otv_store::Connector {
                id: c.id.clone(),
                name: if c.name.is_empty() {
                    c.id.clone()
                } else {
                    c.name.clone()
                },
                certificate_sha256: c
                    .certificate_sha256
                    .as_ref()
                    .map(|f| f.to_ascii_lowercase()),
                acts_for,
            });
        }
        let hand_off = self.portal.hand_off(listen)?;
        let portal = self.portal.validate()?;
        let mail = self.mail.validate()?;
        let outbox = self.notify.validate(&self.connector)?;
        let enrolment_anchors = self.assisted.validate()?;
        Ok(Settings {
            outbox,
            enrolment_anchors,
            hand_off,
            mail,
            portal,
            provider,
            provider_base_path: self.provider_base_path,
            dev_plain_provider_http: self.dev_plain_provider_http,
            connectors,
            saml_audience: self.saml_audience,
            subscription_throttle: otv_server::provider::subscription::ThrottleSettings {
                rate_per_second: self.subscription_rate,
                burst: self.subscription_burst,
            },
            database_url: self.database_url,
            listen,
            default_policy: self.default_policy,
            catalogue,
            audit_retention_days: self.audit_retention_days,
            keys,
            demo: self.demo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- Citizen e-mail -------------------------------------------------------------------

    fn with_mail(url: &str) -> Config {
        Config {
            mail: MailConfigFile {
                smtp_url: Some(url.into()),
                from: Some("otv <noreply@example.nl>".into()),
                portal_url: Some("https://toestemming.example.nl/".into()),
                ..MailConfigFile::default()
            },
            ..demo()
        }
    }

    #[test]
    fn mail_is_off_unless_an_smtp_server_is_set() {
        assert!(demo().validate().unwrap().mail.is_none());
        let m = with_mail("smtps://mail.example.nl")
            .validate()
            .unwrap()
            .mail
            .unwrap();
        assert_eq!(m.portal_url, "https://toestemming.example.nl");
        assert_eq!(m.digest_hour, 8);
        assert_eq!(m.expiry_notice, chrono::Duration::hours(12));
    }

    #[test]
    fn mail_without_tls_goes_only_to_this_machine() {
        for ok in [
            "smtp://127.0.0.1:2525",
            "smtp://localhost:25",
            "smtp://mail.example.nl:587?tls=required",
            "smtps://user:secret@mail.example.nl:465",
        ] {
            assert!(with_mail(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "smtp://mail.example.nl:25",
            "smtp://mail.example.nl:587?tls=opportunistic",
            "http://mail.example.nl",
        ] {
            let err = format!("{:#}", with_mail(bad).validate().err().unwrap());
            assert!(err.contains("mail.smtp_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_mail_settings_are_named() {
        let base = with_mail("smtp://127.0.0.1:2525");
        let cases = [
            (
                MailConfigFile {
                    from: Some("not an address".into()),
                    ..base.mail.clone()
                },
                "mail.from",
            ),
            (
                MailConfigFile {
                    from: None,
                    ..base.mail.clone()
                },
                "mail.from",
            ),
            (
                MailConfigFile {
                    portal_url: Some("toestemming.example.nl".into()),
                    ..base.mail.clone()
                },
                "mail.portal_url",
            ),
            (
                MailConfigFile {
                    digest_hour: 24,
                    ..base.mail.clone()
                },
                "mail.digest_hour",
            ),
            (
                MailConfigFile {
                    check_scan_secs: 0,
                    ..base.mail.clone()
                },
                "mail.check_scan_secs",
            ),
            (
                MailConfigFile {
                    smtp_url: None,
                    ..base.mail.clone()
                },
                "mail.smtp_url",
            ),
            (
                MailConfigFile {
                    smtp_ca_file: Some("/does/not/exist.pem".into()),
                    ..base.mail.clone()
                },
                "mail.smtp_ca_file",
            ),
        ];
        for (mail, setting) in cases {
            let config = Config { mail, ..demo() };
            let err = format!("{:#}", config.validate().err().unwrap());
            assert!(err.contains(setting), "{setting}: {err}");
        }
    }

    fn demo() -> Config {
        Config {
            demo: true,
            ..Config::default()
        }
    }

    #[test]
    fn defaults_run_on_sqlite_in_demo_mode() {
        let s = demo().validate().unwrap();
        assert!(s.keys.is_development());
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.audit_retention_days, 1826);
    }

    #[test]
    fn without_keys_otv_refuses_outside_demo_mode() {
        let err = Config::default().validate().err().unwrap().to_string();
        assert!(err.contains("no keys configured"), "{err}");
    }

    #[test]
    fn postgres_refuses_development_and_missing_keys() {
        let pg = Config {
            database_url: "postgres://localhost/otv".into(),
            ..demo()
        };
        let err = pg.validate().err().unwrap().to_string();
        assert!(err.contains("without real keys"), "{err}");
        let [p, e, s, r] = Keys::development().to_hex();
        let pg = Config {
            database_url: "postgres://localhost/otv".into(),
            pseudonym_key: Some(p),
            encryption_key: Some(e),
            audit_signing_key: Some(s),
            receipt_signing_key: Some(r),
            ..Config::default()
        };
        let err = pg.validate().err().unwrap().to_string();
        assert!(err.contains("development keys"), "{err}");
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            (
                Config {
                    database_url: "mysql://x".into(),
                    ..demo()
                },
                "database_url",
            ),
            (
                Config {
                    listen: "nowhere".into(),
                    ..demo()
                },
                "listen",
            ),
            (
                Config {
                    audit_retention_days: 0,
                    ..demo()
                },
                "audit_retention_days",
            ),
            (
                Config {
                    log_format: "xml".into(),
                    ..demo()
                },
                "log_format",
            ),
            (
                Config {
                    catalogue: Some("/does/not/exist.toml".into()),
                    ..demo()
                },
                "catalogue",
            ),
            (
                Config {
                    pseudonym_key: Some("00".into()),
                    ..demo()
                },
                "keys",
            ),
            (
                Config {
                    subscription_rate: 0.0,
                    ..demo()
                },
                "subscription_rate",
            ),
            (
                Config {
                    subscription_burst: 0,
                    ..demo()
                },
                "subscription_burst",
            ),
        ];
        for (config, setting) in cases {
            let err = format!("{:#}", config.validate().err().unwrap());
            assert!(err.contains(setting), "{setting}: {err}");
        }
    }

    // --- The citizen portal ---------------------------------------------------------------

    fn with_portal(portal: PortalConfigFile) -> Config {
        Config { portal, ..demo() }
    }

    #[test]
    fn the_portal_defaults_to_no_login_at_all_and_a_15_minute_idle_timeout() {
        let s = demo().validate().unwrap();
        assert!(!s.portal.dev_login);
        assert!(s.portal.oidc.is_none());
        assert_eq!(s.portal.idle_timeout, std::time::Duration::from_secs(900));
        assert_eq!(s.portal.claims.bsn, "bsn");
        assert_eq!(s.portal.claims.birth_date, "birthdate");
        assert_eq!(s.portal.claims.acting_for, "acting_for");
        assert_eq!(s.portal.claims.name, "name");
        assert_eq!(
            s.portal.terms_version,
            otv_server::portal::BUNDLED_TERMS_VERSION
        );
    }

    #[test]
    fn the_portal_table_is_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("otv.toml");
        std::fs::write(
            &file,
            "demo = true\n[portal]\ndev_login = true\noidc_issuer = \"http://127.0.0.2:3000\"\n\
             oidc_client_id = \"otv\"\noidc_redirect_url = \"http://127.0.0.1:8080/inloggen/terug\"\n\
             claim_bsn = \"urn:nl:bsn\"\nidle_timeout_secs = 60\nterms_version = \"v2\"\n",
        )
        .unwrap();
        let s = Config::load(Some(&file)).unwrap().validate().unwrap();
        assert!(s.portal.dev_login);
        let oidc = s.portal.oidc.unwrap();
        assert_eq!(oidc.issuer, "http://127.0.0.2:3000");
        assert_eq!(oidc.client_secret, None, "a public client");
        assert_eq!(s.portal.claims.bsn, "urn:nl:bsn");
        assert_eq!(s.portal.idle_timeout, std::time::Duration::from_secs(60));
        assert_eq!(s.portal.terms_version, "v2");
    }

    #[test]
    fn bad_portal_settings_are_named() {
        let oidc = |issuer: &str, id: Option<&str>| PortalConfigFile {
            oidc_issuer: Some(issuer.into()),
            oidc_client_id: id.map(str::to_owned),
            oidc_redirect_url: Some("http://127.0.0.1:8080/inloggen/terug".into()),
            ..PortalConfigFile::default()
        };
        let cases = [
            (oidc("http://op", None), "portal.oidc_issuer"),
            (oidc("op.example", Some("otv")), "portal.oidc_issuer"),
            (
                PortalConfigFile {
                    idle_timeout_secs: 0,
                    ..PortalConfigFile::default()
                },
                "portal.idle_timeout_secs",
            ),
            (
                PortalConfigFile {
                    claim_acting_for: " ".into(),
                    ..PortalConfigFile::default()
                },
                "portal.claim_acting_for",
            ),
            (
                PortalConfigFile {
                    terms_version: String::new(),
                    ..PortalConfigFile::default()
                },
                "portal.terms_version",
            ),
        ];
        for (portal, setting) in cases {
            let err = format!("{:#}", with_portal(portal).validate().err().unwrap());
            assert!(err.contains(setting), "{setting}: {err}");
        }
    }

    // --- The outbox delivery engine (`[notify]`, helper D) ----------------------------------

    #[test]
    fn notify_settings_are_checked_and_name_the_setting() {
        let s = demo().validate().unwrap().outbox;
        assert_eq!(s.workers, 2);
        assert!(s.tls.is_none() && s.admin_token.is_none());
        let with = |f: &dyn Fn(&mut Config)| {
            let mut c = demo();
            f(&mut c);
            c.validate().err().map(|e| format!("{e:#}"))
        };
        let connector = |endpoints: &[&str]| ConnectorConfig {
            id: "lsp".into(),
            name: String::new(),
            certificate_sha256: None,
            acts_for: Vec::new(),
            notify_endpoints: endpoints.iter().map(|e| (*e).to_owned()).collect(),
        };
        let ok = ["https://zim.example.nl:8443/otv"];
        assert_eq!(with(&|c| c.connector = vec![connector(&ok)]), None);
        let mut c = demo();
        c.connector = vec![connector(&ok)];
        assert_eq!(c.validate().unwrap().outbox.endpoints["lsp"], ok);
        for bad in [
            "http://zim.example.nl/otv",
            "https://",
            "https://user@zim.example.nl/",
        ] {
            let err = with(&|c| c.connector = vec![connector(&[bad])]).unwrap();
            assert!(
                err.contains("connector[0].notify_endpoints[0]"),
                "{bad}: {err}"
            );
        }
        let err = with(&|c| c.notify.client_cert = Some("otv.pem".into())).unwrap();
        assert!(err.contains("notify.client_key"), "{err}");
        let err = with(&|c| c.notify.admin_token = Some("short".into())).unwrap();
        assert!(err.contains("notify.admin_token"), "{err}");
        let err = with(&|c| c.notify.lease_secs = 0).unwrap();
        assert!(err.contains("notify.lease_secs"), "{err}");
    }
}
