//! Citizen e-mail over SMTP (PRODUCT.md §11): the verification link of a new address, a change
//! made by someone else (a provider, a migration, a representative, a parent or guardian, an
//! emergency consent), checks of the consent (at once or as a daily digest) and the coming end
//! of an emergency consent.
//!
//! Every mail is an outbox row (kinds `email-verification` and `mail-*`). The outbox worker
//! hands each such row to [`deliver`], which decides *at sending time* whether anything is
//! sent: only to a verified address (the verification link itself goes to the address that
//! waits for it), only what the citizen asked for (`notify_changes`, `notify_checks`), and
//! only changes made by someone else. A mail that is sent is audited (`notification-email`,
//! the patient's pseudonym, the kind; never the address or the BSN).
//!
//! - `compose`: the words (Dutch B1, then English); what a mail never says.
//! - `checks`: the scheduled scan of consent checks and the daily digest.
//! - `expiry`: the emergency consent's reminder before it ends.
//!
//! Without `[mail]` configuration nothing is sent and nothing is lost: [`deliver`] answers
//! [`MailError::NotConfigured`] and the rows wait (the worker retries them with back-off).

pub mod checks;
pub mod compose;
pub mod expiry;

use std::time::Duration;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use otv_core::{Actor, Channel};
use otv_store::{
    AuditEvent, ChangeRecord, CheckMail, DigestMail, EMAIL_VERIFICATION, MAIL_CHECK_DIGEST,
    MAIL_CONSENT_CHECK, MAIL_EMERGENCY_EXPIRY, MAIL_PROFILE_CHANGED, MailContact,
};
use serde::Deserialize;
use uuid::Uuid;

use self::compose::{ChangedBy, Composed};
use crate::AppState;

/// The mail settings (`[mail]`), checked.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The SMTP server: `smtps://host:465` (implicit TLS), `smtp://host:587?tls=required`
    /// (STARTTLS), or `smtp://127.0.0.1:2525` without TLS (only to this machine). User and
    /// password may stand in the URL (`smtps://user:pass@host`).
    pub smtp_url: String,
    /// The sender, e.g. `otv <noreply@toestemming.example.nl>`.
    pub from: Mailbox,
    /// The portal's public address (links in mails), without a trailing `/`.
    pub portal_url: String,
    /// The hour (Dutch time, 0–23) from which the daily digest of checks goes out.
    pub digest_hour: u32,
    /// How often the audit log is scanned for consent checks.
    pub check_scan_interval: Duration,
    /// How long before an emergency consent ends the reminder goes out.
    pub expiry_notice: chrono::Duration,
    /// A CA certificate (PEM) the SMTP server's certificate may chain to, besides the Mozilla
    /// roots (a private mail relay).
    pub smtp_ca_pem: Option<Vec<u8>>,
}

impl MailSettings {
    /// Checks the settings; errors name the setting (`mail.<key>`).
    pub fn new(
        smtp_url: &str,
        from: &str,
        portal_url: &str,
        digest_hour: u32,
        check_scan_secs: u64,
        expiry_notice_hours: u32,
        smtp_ca_pem: Option<Vec<u8>>,
    ) -> Result<MailSettings, String> {
        let url = smtp_url.trim();
        let loopback = |rest: &str| {
            let host = rest.rsplit('@').next().unwrap_or(rest);
            host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]")
        };
        if let Some(rest) = url.strip_prefix("smtp://") {
            let tls = rest.contains("tls=required");
            if !tls && rest.contains("tls=") {
                return Err("setting `mail.smtp_url`: `tls=` must be `required` (STARTTLS); opportunistic TLS could be stripped on the way".into());
            }
            if !tls && !loopback(rest) {
                return Err("setting `mail.smtp_url`: without TLS only to this machine (127.0.0.1, localhost); use smtps://host:465 or smtp://host:587?tls=required".into());
            }
        } else if !url.starts_with("smtps://") {
            return Err(
                "setting `mail.smtp_url`: must start with smtps:// or smtp:// (e.g. smtps://mail.example.nl:465)"
                    .into(),
            );
        }
        AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("setting `mail.smtp_url`: {e}"))?;
        let from: Mailbox = from.trim().parse().map_err(|_| {
            "setting `mail.from`: must be an address like `otv <noreply@example.nl>`".to_owned()
        })?;
        let portal_url = portal_url.trim().trim_end_matches('/');
        if !(portal_url.starts_with("https://") || portal_url.starts_with("http://"))
            || portal_url.len() <= "https://".len()
        {
            return Err(
                "setting `mail.portal_url`: must be the portal's public http(s) address".into(),
            );
        }
        if digest_hour > 23 {
            return Err("setting `mail.digest_hour`: must be an hour from 0 to 23".into());
        }
        if check_scan_secs == 0 {
            return Err("setting `mail.check_scan_secs`: must be at least 1".into());
        }
        if expiry_notice_hours == 0 || expiry_notice_hours > 71 {
            return Err("setting `mail.expiry_notice_hours`: must be from 1 to 71".into());
        }
        Ok(MailSettings {
            smtp_url: url.to_owned(),
            from,
            portal_url: portal_url.to_owned(),
            digest_hour,
            check_scan_interval: Duration::from_secs(check_scan_secs),
            expiry_notice: chrono::Duration::hours(i64::from(expiry_notice_hours)),
            smtp_ca_pem,
        })
    }
}

/// Sends composed mails through one pooled SMTP transport.
pub struct Mailer {
    settings: MailSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold the SMTP password.
        f.debug_struct("Mailer")
            .field("from", &self.settings.from.email.to_string())
            .field("portal_url", &self.settings.portal_url)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Mail is not configured: keep the row (retry later); nothing is lost.
    #[error("mail is not configured ([mail] smtp_url)")]
    NotConfigured,
    /// Try again later: the SMTP server could not be reached or refused for now (4xx), or the
    /// database failed.
    #[error("{0}")]
    Transient(String),
    /// Will never succeed: the SMTP server refused the message for good (5xx), or the row
    /// cannot be read. Park it as dead.
    #[error("{0}")]
    Permanent(String),
}

/// What [`deliver`] did with a row that is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A mail went out.
    Sent,
    /// Nothing to send, and why (no verified address, not wanted, the citizen's own change…).
    Skipped(&'static str),
}

/// `Content-Language` (RFC 3282): the mail holds Dutch and English.
#[derive(Debug, Clone)]
struct ContentLanguage;

impl Header for ContentLanguage {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Content-Language")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ContentLanguage)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "nl, en".into())
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no out-of-office replies to otv.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

impl Mailer {
    /// A mailer for `settings` (connects on the first mail).
    pub fn new(settings: MailSettings) -> Result<Mailer, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            .map_err(|e| format!("setting `mail.smtp_url`: {e}"))?
            .timeout(Some(Duration::from_secs(30)));
        let url = settings.smtp_url.as_str();
        let implicit = url.starts_with("smtps://");
        if let Some(pem) = &settings.smtp_ca_pem
            && (implicit || url.contains("tls=required"))
        {
            use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
            let ca = Certificate::from_pem(pem)
                .map_err(|e| format!("setting `mail.smtp_ca_file`: {e}"))?;
            let params = TlsParameters::builder(smtp_host(url).to_owned())
                .add_root_certificate(ca)
                .build_rustls()
                .map_err(|e| format!("setting `mail.smtp_ca_file`: {e}"))?;
            builder = builder.tls(if implicit {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            });
        }
        let transport = builder.build();
        Ok(Mailer {
            settings,
            transport,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &MailSettings {
        &self.settings
    }

    /// The message for `to` (not sent).
    pub fn message(&self, to: &str, mail: &Composed) -> Result<Message, MailError> {
        let to: Mailbox = to.parse().map_err(|_| {
            MailError::Permanent("the stored address is not a valid e-mail address".into())
        })?;
        // A Message-ID on the sender's domain (not this machine's host name).
        let id = format!("<{}@{}>", Uuid::new_v4(), self.settings.from.email.domain());
        Message::builder()
            .message_id(Some(id))
            .from(self.settings.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .header(ContentLanguage)
            .header(AutoSubmitted)
            .body(mail.text.clone())
            .map_err(|e| MailError::Permanent(format!("the mail could not be built: {e}")))
    }

    /// Sends `mail` to `to`. A 5xx refusal is [`MailError::Permanent`]; anything else that
    /// fails is [`MailError::Transient`]. Error texts hold the SMTP code, never the address.
    pub async fn send(&self, to: &str, mail: &Composed) -> Result<(), MailError> {
        let message = self.message(to, mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let code = e.status().map(|c| format!(" {c}")).unwrap_or_default();
                if e.is_permanent() {
                    Err(MailError::Permanent(format!(
                        "the SMTP server refused the mail for good{code}"
                    )))
                } else if e.is_transient() {
                    Err(MailError::Transient(format!(
                        "the SMTP server refused the mail for now{code}"
                    )))
                } else if e.is_timeout() {
                    Err(MailError::Transient(
                        "the SMTP server did not answer in time".into(),
                    ))
                } else if e.is_tls() {
                    Err(MailError::Transient(
                        "TLS with the SMTP server failed".into(),
                    ))
                } else {
                    // A connection or TLS failure (e.g. an untrusted certificate): its text names
                    // the cause, never a recipient (those errors are answers, above).
                    Err(MailError::Transient(format!(
                        "the SMTP server could not be reached or broke off: {e}"
                    )))
                }
            }
        }
    }
}

/// The host of an SMTP URL (`smtps://user:pass@host:465/` → `host`).
fn smtp_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    host.split(':').next().unwrap_or(host)
}

/// Whether [`deliver`] handles outbox rows of `kind`.
pub fn handles(kind: &str) -> bool {
    kind == EMAIL_VERIFICATION || kind.starts_with("mail-")
}

fn unreadable(kind: &str) -> MailError {
    MailError::Permanent(format!("the payload of a {kind} row cannot be read"))
}

fn store_failed(e: otv_store::StoreError) -> MailError {
    MailError::Transient(format!("database: {e}"))
}

/// Delivers one mail row of the outbox (`id`, for citizen `citizen`, of `kind` with
/// `payload`): composes and sends it, or decides nothing is to be sent. Rows of a kind it
/// does not know are [`MailError::Permanent`].
pub async fn deliver(
    state: &AppState,
    id: Uuid,
    citizen: Uuid,
    kind: &str,
    payload: &str,
) -> Result<Delivery, MailError> {
    let Some(mailer) = state.mail.as_deref() else {
        return Err(MailError::NotConfigured);
    };
    let outcome = deliver_with(state, mailer, id, citizen, kind, payload).await;
    match &outcome {
        Ok(Delivery::Sent) => {
            metrics::counter!("otv_mail_sent_total", "kind" => kind.to_owned()).increment(1);
        }
        Ok(Delivery::Skipped(reason)) => {
            tracing::debug!(kind, %id, reason, "no mail to send");
            metrics::counter!("otv_mail_skipped_total", "kind" => kind.to_owned()).increment(1);
        }
        Err(e) => {
            tracing::warn!(kind, %id, error = %e, "mail not delivered");
            metrics::counter!("otv_mail_failed_total", "kind" => kind.to_owned()).increment(1);
        }
    }
    outcome
}

async fn deliver_with(
    state: &AppState,
    mailer: &Mailer,
    id: Uuid,
    citizen: Uuid,
    kind: &str,
    payload: &str,
) -> Result<Delivery, MailError> {
    let portal = mailer.settings.portal_url.as_str();
    let Some(contact) = state
        .store
        .mail_contact(citizen)
        .await
        .map_err(store_failed)?
    else {
        return Ok(Delivery::Skipped("the citizen is not known (any more)"));
    };
    let Some(address) = contact.email.clone() else {
        return Ok(Delivery::Skipped("no e-mail address"));
    };
    let mail = match kind {
        EMAIL_VERIFICATION => {
            #[derive(Deserialize)]
            struct Link {
                to: String,
                link: String,
                expires_at: chrono::DateTime<chrono::Utc>,
            }
            let p: Link = serde_json::from_str(payload).map_err(|_| unreadable(kind))?;
            if p.to != address || contact.verified {
                return Ok(Delivery::Skipped(
                    "the address changed or is verified since the link was asked for",
                ));
            }
            if p.expires_at <= state.clock.now() {
                return Ok(Delivery::Skipped("the link has expired"));
            }
            // The link as the configured portal address, with the token of the row's link:
            // never an address taken from a request's Host header.
            let token = p
                .link
                .split_once("token=")
                .map(|(_, t)| t.split('&').next().unwrap_or(t))
                .filter(|t| {
                    !t.is_empty()
                        && t.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                })
                .ok_or_else(|| unreadable(kind))?;
            let link = format!("{portal}/e-mail/bevestigen?token={token}");
            compose::verification(portal, &link, p.expires_at)
        }
        MAIL_PROFILE_CHANGED => {
            #[derive(Deserialize)]
            struct Changed {
                audit_seq: i64,
            }
            let p: Changed = serde_json::from_str(payload).map_err(|_| unreadable(kind))?;
            if let Some(skip) = wants(&contact, Wanted::Changes) {
                return Ok(Delivery::Skipped(skip));
            }
            let Some(record) = change_of(state, citizen, p.audit_seq).await? else {
                return Ok(Delivery::Skipped("no change of answers"));
            };
            let Some(by) = changed_by(&record) else {
                return Ok(Delivery::Skipped("the citizen's own change"));
            };
            if let ChangedBy::Emergency { until } = by {
                expiry::schedule(state, mailer, citizen, &record, until).await?;
            }
            compose::changed(portal, by, record.at)
        }
        MAIL_CONSENT_CHECK => {
            let p: CheckMail = serde_json::from_str(payload).map_err(|_| unreadable(kind))?;
            if let Some(skip) = wants(&contact, Wanted::Checks) {
                return Ok(Delivery::Skipped(skip));
            }
            if p.checks.is_empty() {
                return Ok(Delivery::Skipped("no checks"));
            }
            compose::checks(portal, &p.checks)
        }
        MAIL_CHECK_DIGEST => {
            let p: DigestMail = serde_json::from_str(payload).map_err(|_| unreadable(kind))?;
            if let Some(skip) = wants(&contact, Wanted::Checks) {
                return Ok(Delivery::Skipped(skip));
            }
            compose::digest(portal, &p)
        }
        MAIL_EMERGENCY_EXPIRY => {
            let p: expiry::Reminder =
                serde_json::from_str(payload).map_err(|_| unreadable(kind))?;
            if let Some(skip) = wants(&contact, Wanted::Changes) {
                return Ok(Delivery::Skipped(skip));
            }
            if !expiry::still_pending(state, citizen, &p).await? {
                return Ok(Delivery::Skipped(
                    "the emergency consent was confirmed, withdrawn or has ended",
                ));
            }
            compose::emergency_ends(portal, p.given, p.until)
        }
        _ => {
            return Err(MailError::Permanent(format!(
                "no mail is known for outbox rows of kind {kind}"
            )));
        }
    };
    mailer.send(&address, &mail).await?;
    audit_sent(state, id, citizen, kind).await;
    Ok(Delivery::Sent)
}

enum Wanted {
    Changes,
    Checks,
}

/// Why a citizen does not get this kind of mail, if they do not.
fn wants(contact: &MailContact, what: Wanted) -> Option<&'static str> {
    if !contact.verified {
        return Some("the address is not verified");
    }
    match what {
        Wanted::Changes if !contact.notify_changes => {
            Some("the citizen does not want mail about changes")
        }
        Wanted::Checks if contact.notify_checks == otv_store::CheckNotice::Off => {
            Some("the citizen does not want mail about checks")
        }
        _ => None,
    }
}

/// The change `seq` of the citizen, if it recorded answers.
async fn change_of(
    state: &AppState,
    citizen: Uuid,
    seq: i64,
) -> Result<Option<ChangeRecord>, MailError> {
    let Some(bsn) = state
        .store
        .citizen_bsn(citizen)
        .await
        .map_err(store_failed)?
    else {
        return Ok(None);
    };
    state
        .store
        .change_record(&bsn, seq)
        .await
        .map_err(store_failed)
}

/// Who made the change, if not the citizen themself. All answers of one change share their
/// channel and actor.
pub fn changed_by(record: &ChangeRecord) -> Option<ChangedBy> {
    let first = record.answers.first()?;
    let p = &first.provenance;
    match (p.channel, &p.actor) {
        (Channel::Portal, Actor::Citizen) => None,
        (Channel::Portal | Channel::Representative, Actor::Representative { .. }) => {
            Some(ChangedBy::Representative)
        }
        (Channel::Representative, _) => Some(ChangedBy::Representative),
        (Channel::GuardianConfirmation, _) => Some(ChangedBy::Guardian),
        (Channel::Migration, _) => Some(ChangedBy::Migration),
        (Channel::Raadplegersknop, _) => {
            // An emergency consent in force: its end; otherwise (a provider ending one) a
            // change by a provider.
            let until = record
                .answers
                .iter()
                .filter(|a| a.state == otv_core::AnswerState::Active)
                .filter_map(|a| a.valid_until)
                .max();
            Some(match until {
                Some(until) => ChangedBy::Emergency { until },
                None => ChangedBy::Provider,
            })
        }
        (Channel::SamenNaarMijnmitz | Channel::Dossierhoudersknop, _) => Some(ChangedBy::Provider),
        (Channel::Portal, Actor::Provider { .. }) => Some(ChangedBy::Provider),
    }
}

/// Appends the audit record of a mail sent (NEN 7513: every notification). A failure here is
/// logged, not returned: the mail is out, and sending it again would not repair the log.
async fn audit_sent(state: &AppState, id: Uuid, citizen: Uuid, kind: &str) {
    let patient = match state.store.citizen_bsn(citizen).await {
        Ok(Some(bsn)) => Some(state.store.patient_reference(&bsn)),
        _ => None,
    };
    let event = AuditEvent {
        at: state.clock.now(),
        event: "notification-email".into(),
        patient,
        actor: "otv".into(),
        decision: Some("sent".into()),
        details: serde_json::json!({ "kind": kind, "outbox_id": id }),
        ..AuditEvent::default()
    };
    if let Err(e) = state.store.audit(&event).await {
        tracing::error!(error = %e, kind, %id, "the audit record of a sent mail could not be written");
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use otv_core::{
        Actor, Answer, AnswerKey, AnswerState, CategoryCode, Channel, DataCategory, Effect, Party,
        Provenance, Ura,
    };
    use otv_store::ChangeRecord;

    use super::changed_by;
    use super::compose::ChangedBy;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn change(
        channel: Channel,
        actor: Actor,
        until: Option<&str>,
        state: AnswerState,
    ) -> ChangeRecord {
        let answer = Answer {
            key: AnswerKey {
                holder: Party::Category(CategoryCode::parse("DH-HA").unwrap()),
                data_category: DataCategory::parse("GGC002").unwrap(),
                consulter: Party::Provider(Ura::parse("00000002").unwrap()),
            },
            effect: Effect::Permit,
            valid_from: at("2026-12-01T09:00:00Z"),
            valid_until: until.map(at),
            state,
            provenance: Provenance {
                recorded_at: at("2026-12-01T09:00:00Z"),
                channel,
                actor,
                catalogue_version: "1".into(),
            },
        };
        ChangeRecord {
            seq: 1,
            at: at("2026-12-01T09:00:00Z"),
            event: "profile-change".into(),
            actor: "x".into(),
            organisation: None,
            channel: Some(channel.as_str().into()),
            patient: "p".into(),
            answers: vec![answer],
        }
    }

    fn provider() -> Actor {
        Actor::Provider {
            ura: Ura::parse("00000002").unwrap(),
            uzi: None,
            role: None,
            mandated: None,
        }
    }

    #[test]
    fn the_tls_name_is_the_smtp_urls_host() {
        assert_eq!(
            super::smtp_host("smtps://u:p@mail.example.nl:465"),
            "mail.example.nl"
        );
        assert_eq!(
            super::smtp_host("smtp://localhost:25?tls=required"),
            "localhost"
        );
        assert_eq!(
            super::smtp_host("smtp://relay.example.nl/ehlo.example.nl"),
            "relay.example.nl"
        );
    }

    #[test]
    fn only_changes_by_someone_else_are_mailed() {
        let active = AnswerState::Active;
        let rep = Actor::Representative {
            reference: "r".into(),
        };
        assert_eq!(
            changed_by(&change(Channel::Portal, Actor::Citizen, None, active)),
            None
        );
        let cases = [
            (
                Channel::Representative,
                rep.clone(),
                ChangedBy::Representative,
            ),
            (Channel::Portal, rep, ChangedBy::Representative),
            (Channel::Migration, provider(), ChangedBy::Migration),
            (Channel::SamenNaarMijnmitz, provider(), ChangedBy::Provider),
            (Channel::Dossierhoudersknop, provider(), ChangedBy::Provider),
            (
                Channel::GuardianConfirmation,
                Actor::Citizen,
                ChangedBy::Guardian,
            ),
        ];
        for (channel, actor, by) in cases {
            assert_eq!(
                changed_by(&change(channel, actor, None, active)),
                Some(by),
                "{channel:?}"
            );
        }
    }

    #[test]
    fn an_emergency_consent_in_force_is_mailed_with_its_end() {
        let until = "2026-12-04T09:00:00Z";
        assert_eq!(
            changed_by(&change(
                Channel::Raadplegersknop,
                provider(),
                Some(until),
                AnswerState::Active
            )),
            Some(ChangedBy::Emergency { until: at(until) })
        );
        // Ended by the provider: a change by a provider, no end to announce.
        assert_eq!(
            changed_by(&change(
                Channel::Raadplegersknop,
                provider(),
                Some(until),
                AnswerState::Withdrawn
            )),
            Some(ChangedBy::Provider)
        );
    }
}
