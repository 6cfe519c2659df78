//! The citizen's own data as the portal shows it (PRODUCT.md §10): settings (notifications,
//! e-mail verification, locks), the history of changes and consent checks, the export of
//! everything otv holds about a citizen, and the record of one change for its receipt.
//!
//! What both backends share lives here: the types, and turning stored rows (answers with their
//! change, audit records of consent checks) into them. The backends only move rows.
//!
//! Must not: hold a BSN in any of these types (the citizen is named by the keyed pseudonym),
//! or decide anything about consent.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use otv_core::{Actor, Answer, Channel};
use serde::{Deserialize, Serialize};

/// How often the citizen wants an e-mail about checks of their consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckNotice {
    /// No e-mail.
    #[default]
    Off,
    /// One e-mail per check.
    Immediately,
    /// One e-mail a day with the checks of that day (digest).
    Daily,
}

impl CheckNotice {
    /// The stored code: `off`, `immediately`, `daily`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckNotice::Off => "off",
            CheckNotice::Immediately => "immediately",
            CheckNotice::Daily => "daily",
        }
    }

    /// Reads a stored code.
    pub fn parse(s: &str) -> Option<CheckNotice> {
        [
            CheckNotice::Off,
            CheckNotice::Immediately,
            CheckNotice::Daily,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// A citizen's settings. A citizen who never changed one has [`CitizenSettings::default`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CitizenSettings {
    /// E-mail when someone else changes the answers (provider, migration, representative,
    /// emergency). On by default: it is the citizen's safeguard, and nothing is sent without a
    /// verified address.
    pub notify_changes: bool,
    /// E-mail about checks of the consent.
    pub notify_checks: CheckNotice,
    /// Refuse changes made together with a provider (hand-off).
    pub lock_provider_changes: bool,
    /// Refuse emergency consents (raadplegersknop).
    pub refuse_emergency: bool,
    /// The e-mail address, verified or waiting for verification.
    pub email: Option<String>,
    /// When the address was verified; `None` while it waits (or when there is none).
    pub email_verified_at: Option<DateTime<Utc>>,
    /// Until when the verification link sent last may be used, while the address waits.
    pub email_link_expires_at: Option<DateTime<Utc>>,
}

impl Default for CitizenSettings {
    fn default() -> Self {
        CitizenSettings {
            notify_changes: true,
            notify_checks: CheckNotice::Off,
            lock_provider_changes: false,
            refuse_emergency: false,
            email: None,
            email_verified_at: None,
            email_link_expires_at: None,
        }
    }
}

/// A change of settings: `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// See [`CitizenSettings::notify_changes`].
    pub notify_changes: Option<bool>,
    /// See [`CitizenSettings::notify_checks`].
    pub notify_checks: Option<CheckNotice>,
    /// See [`CitizenSettings::lock_provider_changes`].
    pub lock_provider_changes: Option<bool>,
    /// See [`CitizenSettings::refuse_emergency`].
    pub refuse_emergency: Option<bool>,
}

impl SettingsChange {
    /// The settings after this change.
    pub fn apply(&self, s: &CitizenSettings) -> CitizenSettings {
        CitizenSettings {
            notify_changes: self.notify_changes.unwrap_or(s.notify_changes),
            notify_checks: self.notify_checks.unwrap_or(s.notify_checks),
            lock_provider_changes: self
                .lock_provider_changes
                .unwrap_or(s.lock_provider_changes),
            refuse_emergency: self.refuse_emergency.unwrap_or(s.refuse_emergency),
            ..s.clone()
        }
    }
}

/// A new e-mail address to verify by link.
#[derive(Debug, Clone)]
pub struct EmailVerification<'a> {
    /// The address.
    pub address: &'a str,
    /// SHA-256 of the token in the link (the token itself is not stored).
    pub token_sha256: [u8; 32],
    /// Until when the link may be used.
    pub expires_at: DateTime<Utc>,
    /// The link to send (it holds the token); goes into the outbox row for delivery.
    pub link: &'a str,
}

/// The outbox kind of an e-mail verification link.
pub const EMAIL_VERIFICATION: &str = "email-verification";

/// The outbox kind of a profile deletion (holders still registered hear the answers are gone).
pub const PROFILE_DELETED: &str = "profile-deleted";

/// What opening a verification link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailConfirmation {
    /// The address is verified now.
    Confirmed,
    /// The link was right but is too old; ask for a new one.
    Expired,
    /// No address of this citizen waits for this token (wrong, used, or another citizen's).
    Unknown,
}

/// A period of the history: `from` inclusive, `until` exclusive; `None` is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// From this moment.
    pub from: Option<DateTime<Utc>>,
    /// Until just before this moment.
    pub until: Option<DateTime<Utc>>,
}

/// The most answer rows one history read looks at (a change of the whole wizard is 49).
pub(crate) const MAX_HISTORY_ROWS: i64 = 5_000;

/// One change of the answers: what one audit record covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeEntry {
    /// The sequence number of the change's audit record (the receipt's id); `None` for answers
    /// stored before changes were numbered.
    pub seq: Option<i64>,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Through which channel.
    pub channel: Channel,
    /// By whom.
    pub actor: Actor,
    /// The answers it recorded.
    pub answers: Vec<Answer>,
}

/// One consent check: a question about one holder and one data category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentCheck {
    /// The audit record.
    pub seq: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// `closed-question` (a holder asked) or `open-question` (a consulter asked where data are).
    pub question: String,
    /// The dossier holder asked about.
    pub holder_ura: Option<String>,
    /// Its name in the directory.
    pub holder_name: Option<String>,
    /// The consulting provider that would receive the data.
    pub consulter_ura: Option<String>,
    /// Its name in the directory.
    pub consulter_name: Option<String>,
    /// The data category.
    pub data_category: Option<String>,
    /// `permit`, `deny` or `indeterminate`.
    pub decision: String,
    /// Decided by an emergency consent.
    pub emergency: bool,
}

/// The history of one citizen in a period, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct History {
    /// Changes of the answers.
    pub changes: Vec<ChangeEntry>,
    /// Whether the period holds more changes than were returned.
    pub more_changes: bool,
    /// Consent checks, one per holder and data category.
    pub checks: Vec<ConsentCheck>,
    /// Whether the period holds more checks than were returned.
    pub more_checks: bool,
}

/// One change with what its receipt states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// The audit record's sequence number.
    pub seq: i64,
    /// The audit record's time.
    pub at: DateTime<Utc>,
    /// The audit event, e.g. `profile-change`.
    pub event: String,
    /// The acting person as audited.
    pub actor: String,
    /// The responsible organisation (URA), if a provider acted.
    pub organisation: Option<String>,
    /// The channel as audited.
    pub channel: Option<String>,
    /// The patient's pseudonym.
    pub patient: String,
    /// The answers the change recorded.
    pub answers: Vec<Answer>,
}

/// Everything otv holds about a citizen, for "download my data".
#[derive(Debug, Clone, Serialize)]
pub struct CitizenExport {
    /// When this export was made.
    pub exported_at: DateTime<Utc>,
    /// The citizen's pseudonym in otv's audit log.
    pub pseudonym: String,
    /// Personal details.
    pub details: ExportDetails,
    /// Settings.
    pub settings: CitizenSettings,
    /// Every answer ever recorded, newest first, with the change that recorded it.
    pub answers: Vec<ExportAnswer>,
    /// The providers registered as holding a record for the citizen.
    pub subscriptions: Vec<ExportSubscription>,
    /// Every consent check still in the audit log, newest first.
    pub consent_checks: Vec<ConsentCheck>,
    /// The versions of the terms of use the citizen accepted, and when.
    pub terms_accepted: Vec<ExportTerms>,
}

/// One accepted version of the terms of use.
#[derive(Debug, Clone, Serialize)]
pub struct ExportTerms {
    /// The version.
    pub version: String,
    /// When it was accepted (the first time).
    pub accepted_at: DateTime<Utc>,
}

/// Personal details (PRODUCT.md §10: nothing else is kept). The BSN is not repeated: the
/// citizen knows it, and a file on their disk is safer without it.
#[derive(Debug, Clone, Serialize)]
pub struct ExportDetails {
    /// Name as given by the identity provider.
    pub name: Option<String>,
    /// Birth date.
    pub birth_date: Option<NaiveDate>,
    /// E-mail address.
    pub email: Option<String>,
    /// When the citizen first became known to otv.
    pub known_since: DateTime<Utc>,
}

/// One answer in the export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportAnswer {
    /// The change (audit record) that recorded it.
    pub change_seq: Option<i64>,
    /// When another answer replaced it; `None` while it is current.
    pub replaced_at: Option<DateTime<Utc>>,
    /// The answer.
    #[serde(flatten)]
    pub answer: Answer,
}

/// One registration in the export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSubscription {
    /// The holder.
    pub holder_ura: String,
    /// Its name in the directory.
    pub holder_name: Option<String>,
    /// Its organisation type.
    pub holder_type: String,
    /// `active` or `off`.
    pub status: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
}

/// What deleting a profile did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deletion {
    /// Answers deleted (current and history).
    pub answers: u64,
    /// Registrations of providers kept (see [`crate::Backend::delete_citizen`]).
    pub subscriptions_kept: u64,
}

/// Groups answer rows (newest first, each with its change) into changes, at most `limit`;
/// returns them and whether there were more. Rows of one change are adjacent (one change is
/// one transaction, and rows come in storage order). Answers without a change number (stored
/// before changes were numbered) group by their moment, channel and actor.
pub(crate) fn group_changes(
    rows: Vec<(Option<i64>, Answer)>,
    limit: usize,
) -> (Vec<ChangeEntry>, bool) {
    let mut out: Vec<ChangeEntry> = Vec::new();
    for (seq, answer) in rows {
        let same = out.last().is_some_and(|c| match (c.seq, seq) {
            (Some(a), Some(b)) => a == b,
            (None, None) => {
                c.at == answer.provenance.recorded_at
                    && c.channel == answer.provenance.channel
                    && c.actor == answer.provenance.actor
            }
            _ => false,
        });
        if same {
            out.last_mut().expect("checked").answers.push(answer);
            continue;
        }
        if out.len() == limit {
            return (out, true);
        }
        out.push(ChangeEntry {
            seq,
            at: answer.provenance.recorded_at,
            channel: answer.provenance.channel,
            actor: answer.provenance.actor.clone(),
            answers: vec![answer],
        });
    }
    (out, false)
}

/// An audit record of a consent check as stored.
pub(crate) struct CheckRow {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub event: String,
    pub organisation: Option<String>,
    pub emergency: bool,
    pub details: String,
}

/// The audit events that are consent checks.
pub(crate) const CHECK_EVENTS: [&str; 2] = ["closed-question", "open-question"];

/// The consent checks one audit record holds: a closed question asks about one holder
/// (`organisation`) for each data category; an open question about every registered holder.
/// Names are left empty (the backend fills them from the directory).
pub(crate) fn checks_of(row: &CheckRow) -> Vec<ConsentCheck> {
    let details: serde_json::Value = serde_json::from_str(&row.details).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let check = |holder: Option<String>, consulter: Option<String>, r: &serde_json::Value| {
        ConsentCheck {
            seq: row.seq,
            at: row.at,
            question: row.event.clone(),
            holder_ura: holder,
            holder_name: None,
            consulter_ura: consulter,
            consulter_name: None,
            data_category: text(&r["data_category"]),
            decision: text(&r["decision"]).unwrap_or_else(|| "indeterminate".into()),
            // Per result where the record names the deciding answer, else the record's flag.
            emergency: r["deciding"]["channel"]
                .as_str()
                .map_or(row.emergency, |c| c == Channel::Raadplegersknop.as_str()),
        }
    };
    match row.event.as_str() {
        "closed-question" => {
            let consulter = text(&details["consulter"]["ura"]);
            details["results"]
                .as_array()
                .map(|results| {
                    results
                        .iter()
                        .map(|r| check(row.organisation.clone(), consulter.clone(), r))
                        .collect()
                })
                .unwrap_or_default()
        }
        "open-question" => details["holders"]
            .as_array()
            .map(|holders| {
                holders
                    .iter()
                    .map(|h| check(text(&h["holder"]), row.organisation.clone(), h))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Fills the provider names of `checks` from `names` (URA → name).
pub(crate) fn name_checks(checks: &mut [ConsentCheck], names: &BTreeMap<String, String>) {
    for c in checks {
        c.holder_name = c.holder_ura.as_ref().and_then(|u| names.get(u).cloned());
        c.consulter_name = c.consulter_ura.as_ref().and_then(|u| names.get(u).cloned());
    }
}

/// The URAs the checks name, for one directory read.
pub(crate) fn uras_of(checks: &[ConsentCheck]) -> Vec<String> {
    let mut uras: Vec<String> = checks
        .iter()
        .flat_map(|c| [c.holder_ura.clone(), c.consulter_ura.clone()])
        .flatten()
        .collect();
    uras.sort();
    uras.dedup();
    uras
}

/// The most consent checks (audit records) an export lists.
pub(crate) const MAX_EXPORT_CHECKS: usize = 100_000;

/// Adds the members of `extra` to the event's details (an object; other details are kept under
/// `details`).
pub(crate) fn merge_details(event: &mut crate::AuditEvent, extra: serde_json::Value) {
    let serde_json::Value::Object(extra) = extra else {
        return;
    };
    match &mut event.details {
        serde_json::Value::Object(map) => map.extend(extra),
        serde_json::Value::Null => event.details = serde_json::Value::Object(extra),
        other => {
            let mut map = extra;
            map.insert("details".into(), other.take());
            event.details = serde_json::Value::Object(map);
        }
    }
}

/// The preferences as the audit record of their change states them.
pub(crate) fn preferences_json(s: &CitizenSettings) -> serde_json::Value {
    serde_json::json!({ "settings": {
        "notify_changes": s.notify_changes,
        "notify_checks": s.notify_checks.as_str(),
        "lock_provider_changes": s.lock_provider_changes,
        "refuse_emergency": s.refuse_emergency,
    }})
}

/// The outbox row of a verification link: where to send it and the link. Never a BSN.
pub(crate) fn email_verification_payload(r: &EmailVerification<'_>, audit_seq: i64) -> String {
    serde_json::json!({
        "to": r.address,
        "link": r.link,
        "expires_at": r.expires_at,
        "audit_seq": audit_seq,
    })
    .to_string()
}

/// Whether the stored token hash is `given` (compared in constant time) and still valid.
pub(crate) fn check_token(stored: &[u8], given: &[u8; 32], expired: bool) -> EmailConfirmation {
    if aws_lc_rs::constant_time::verify_slices_are_equal(stored, given).is_err() {
        EmailConfirmation::Unknown
    } else if expired {
        EmailConfirmation::Expired
    } else {
        EmailConfirmation::Confirmed
    }
}

/// What the audit record of a deletion states.
pub(crate) fn deletion_json(d: &Deletion) -> serde_json::Value {
    serde_json::json!({
        "answers_deleted": d.answers,
        "subscriptions_kept": d.subscriptions_kept,
    })
}
