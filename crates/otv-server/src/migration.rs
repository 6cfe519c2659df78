//! Migration (PRODUCT.md §9): a provider hands over the consents it kept locally, as FHIR
//! `Consent` resources shaped like the notification Consents (§12), in a batch Bundle
//! (`POST …/migratie/fhir`, see `provider::migration`) or as NDJSON (`POST
//! /v1/migration/consents` and `otv import consents`). The one migrator behind all three.
//!
//! # How a Consent becomes answers
//!
//! One Consent (decoded by `otv_wire::fhir::MigrationConsent`) becomes one answer per consulting
//! category it names, all with the same key otherwise:
//!
//! | answer | from |
//! |---|---|
//! | holder | the **holder category** of the `CST` actor's organisation type (catalogue), not the individual URA |
//! | data category | `Consent.category`; it must be the one the catalogue's option for that holder category gives (e.g. `GGC013` for pharmacies) |
//! | consulter | each `OTV-ProviderCategory` extension: a consulting category of the catalogue |
//! | effect | `status` `active` = permit, `inactive` = deny |
//! | valid from | `provision.period.start`, else `dateTime`, else now; open-ended |
//! | state, channel, actor | `active`, `migration`, the holder URA as provider (no UZI, role or assistant) |
//!
//! Why the holder **category** and not the individual provider:
//! - §9 says migration "fills only **options** the citizen has not answered", and an option is a
//!   catalogue triple of categories (§3). An answer for one URA is not an option.
//! - The shape is the notification Consent's, whose meaning in §12 is a categorical answer: otv
//!   sends it to every subscribed holder of the category, and the holder's Organization only
//!   says which category (by its type). Read back, it means the same.
//! - An individual-holder answer is more specific than any categorical one and wins the decision
//!   (§5 step 4). A migrated answer for the URA would silently outrank the citizen's own "no"
//!   for that category: the very overwriting §9 forbids. A categorical migrated answer yields
//!   to the citizen's own individual answers instead.
//! - The provider is not lost: it is the answer's actor, shown as "migrated by <name>" in the
//!   portal, and it must be a URA the connector may act for.
//!
//! The organisation type comes from the provider directory when the directory knows the URA,
//! else from the Organization's `type`; when both are there they must agree (an unknown or
//! contradicting type is refused rather than guessed).
//!
//! # Rules
//! - Only keys without a current answer are filled; nothing is replaced; the same input twice
//!   changes nothing the second time; a citizen who locked the profile against provider
//!   changes gets nothing (reported as locked). See `otv_store::migration` for the transaction.
//! - Every citizen changed gets one audit record (`profile-change`, channel `migration`) and one
//!   `profile-changed` outbox row, through which providers and the citizen (e-mail, if enabled)
//!   are told; the portal shows a notice until the citizen has seen the migrated answers.
//! - Reports carry line numbers (NDJSON) or entry positions (Bundle) and FHIR paths, never a
//!   BSN.

use std::collections::{HashMap, HashSet};
use std::fmt;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use otv_core::{
    Actor, Answer, AnswerKey, AnswerState, Bsn, Catalogue, Channel, OrgType, Party, Provenance, Ura,
};
use otv_store::{
    AuditEvent, ImportIssue, ImportRefusal, MigrationItem, MigrationOutcome, Store, StoreError,
};
use otv_wire::fhir::{
    ErrorClass, FhirError, Issue, IssueCode, MAX_RESOURCE_BYTES, MigrationConsent,
    parse_consent_ndjson_line,
};
use serde::Serialize;

/// Consents per transaction unless the caller says otherwise.
pub const DEFAULT_CHUNK: usize = 5_000;

/// The most refused lines one run reports with their reasons (the count goes on).
pub const MAX_REPORTED_REFUSALS: usize = 100;

/// Who migrates, for the checks and the audit records.
pub struct Migrator<'a> {
    /// The store.
    pub store: &'a Store,
    /// The catalogue in force.
    pub catalogue: &'a Catalogue,
    /// The connector that sends the Consents.
    pub connector_id: &'a str,
    /// Whether the connector may act for a holder URA.
    pub may_act_for: &'a (dyn Fn(&Ura) -> bool + Sync),
    /// The moment the answers are recorded (and hold from, when a Consent names none).
    pub now: DateTime<Utc>,
    /// `api` or `cli`, for the audit records.
    pub via: &'a str,
    /// The request id, over the API.
    pub request_id: Option<String>,
}

/// Why one Consent is not migrated: an HTTP status, a short reason and the issues.
#[derive(Debug, Clone)]
pub struct Refused {
    /// 400, 403 or 422.
    pub status: u16,
    /// `invalid`, `business-rule` or `not-allowed-for-ura`.
    pub reason: &'static str,
    /// What is wrong, with FHIR paths.
    pub issues: Vec<Issue>,
}

impl Refused {
    /// The refusal of a Consent that could not be read.
    pub fn fhir(e: FhirError) -> Refused {
        Refused {
            status: e.http_status(),
            reason: match e.class() {
                ErrorClass::Invalid => "invalid",
                ErrorClass::BusinessRule => "business-rule",
            },
            issues: e.into_issues(),
        }
    }

    fn rule(path: &str, text: String) -> Refused {
        Refused {
            status: 422,
            reason: "business-rule",
            issues: vec![Issue::error(
                IssueCode::BusinessRule,
                Some(path.to_owned()),
                text,
            )],
        }
    }

    /// As a report line.
    pub fn refusal(&self, line: u64) -> ImportRefusal {
        ImportRefusal {
            line,
            reason: self.reason.into(),
            issues: self
                .issues
                .iter()
                .map(|i| ImportIssue {
                    path: i.expression.clone(),
                    problem: i.diagnostics.clone(),
                })
                .collect(),
        }
    }
}

const ACTOR_PATH: &str = "Consent.provision.actor";
const TYPE_PATH: &str = "Consent.provision.actor.reference.resolve().type";

impl Migrator<'_> {
    /// Checks one Consent against the connector, the directory and the catalogue, and makes its
    /// answers. `types` caches the directory's organisation types for this run.
    pub async fn item(
        &self,
        consent: MigrationConsent,
        types: &mut HashMap<Ura, Option<OrgType>>,
    ) -> Result<MigrationItem, Refused> {
        let ura = consent.holder_ura.clone();
        if !(self.may_act_for)(&ura) {
            return Err(Refused {
                status: 403,
                reason: "not-allowed-for-ura",
                issues: vec![Issue::error(
                    IssueCode::Forbidden,
                    Some(ACTOR_PATH.into()),
                    format!(
                        "connector `{}` may not act for URA {ura} (the dossier holder)",
                        self.connector_id
                    ),
                )],
            });
        }
        let known = match types.get(&ura) {
            Some(t) => t.clone(),
            None => {
                let t = self
                    .store
                    .provider(&ura)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "migration: directory lookup failed");
                        Refused {
                            status: 500,
                            reason: "storage",
                            issues: vec![Issue::error(
                                IssueCode::Exception,
                                None,
                                "otv could not read the provider directory; send it again",
                            )],
                        }
                    })?
                    .map(|p| p.organisation_type);
                types.insert(ura.clone(), t.clone());
                t
            }
        };
        let holder_type = match (known, &consent.holder_type) {
            (Some(known), Some(sent)) if &known != sent => {
                return Err(Refused::rule(
                    TYPE_PATH,
                    format!(
                        "the provider directory has organisation type {known} for URA {ura}, not {sent}"
                    ),
                ));
            }
            (Some(known), _) => known,
            (None, Some(sent)) => sent.clone(),
            (None, None) => {
                return Err(Refused::rule(
                    ACTOR_PATH,
                    format!(
                        "the organisation type of URA {ura} is unknown: give the Organization a \
                         `type` (organisation-type system) or load the provider into the directory"
                    ),
                ));
            }
        };
        let answers = answers_of(&consent, &holder_type, self.catalogue, self.now)?;
        Ok(MigrationItem {
            bsn: consent.bsn,
            provider: ura,
            answers,
        })
    }

    /// The audit template of the per-citizen change records.
    pub fn change_audit(&self) -> AuditEvent {
        AuditEvent {
            at: self.now,
            event: "profile-change".into(),
            actor: format!("connector:{}", self.connector_id),
            request_id: self.request_id.clone(),
            channel: Some("migration".into()),
            details: serde_json::json!({ "connector": self.connector_id, "via": self.via }),
            ..AuditEvent::default()
        }
    }
}

/// The answers of one Consent (the mapping in the module documentation).
pub fn answers_of(
    consent: &MigrationConsent,
    holder_type: &OrgType,
    catalogue: &Catalogue,
    now: DateTime<Utc>,
) -> Result<Vec<Answer>, Refused> {
    let Some(holder) = catalogue.holder_category_of(holder_type) else {
        return Err(Refused::rule(
            TYPE_PATH,
            format!(
                "organisation type {holder_type} is not in the consent catalogue ({}), so its \
                 holder category is unknown",
                catalogue.version()
            ),
        ));
    };
    if holder.data_category != consent.data_category {
        return Err(Refused::rule(
            "Consent.category",
            format!(
                "holders of category {} ({}) make {} available, so their answers are about {}, \
                 not {}",
                holder.code,
                holder.name,
                holder.data_category,
                holder.data_category,
                consent.data_category
            ),
        ));
    }
    let mut answers = Vec::with_capacity(consent.consulters.len());
    for consulter in &consent.consulters {
        let option = catalogue.options().iter().any(|o| {
            o.holder == holder.code
                && o.data_category == consent.data_category
                && &o.consulter == consulter
        });
        if !option {
            return Err(Refused::rule(
                "Consent.extension[OTV-ProviderCategory]",
                format!(
                    "{consulter} is not a consulting category of an option for {} in the \
                     catalogue {}",
                    holder.code,
                    catalogue.version()
                ),
            ));
        }
        answers.push(Answer {
            key: AnswerKey {
                holder: Party::Category(holder.code.clone()),
                data_category: consent.data_category.clone(),
                consulter: Party::Category(consulter.clone()),
            },
            effect: consent.effect,
            valid_from: consent.valid_from.unwrap_or(now),
            valid_until: None,
            state: AnswerState::Active,
            provenance: Provenance {
                recorded_at: now,
                channel: Channel::Migration,
                actor: Actor::Provider {
                    ura: consent.holder_ura.clone(),
                    uzi: None,
                    role: None,
                    mandated: None,
                },
                catalogue_version: catalogue.version().to_owned(),
            },
        });
    }
    Ok(answers)
}

/// What one NDJSON run did. Never a BSN.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationReport {
    /// The connector.
    pub connector: String,
    /// Lines read (blank ones included).
    pub lines_read: u64,
    /// Consents that passed the checks.
    pub consents: u64,
    /// Answers stored.
    pub answers_migrated: u64,
    /// Keys left alone because the citizen (or an earlier Consent) had answered them.
    pub keys_already_answered: u64,
    /// Citizens passed over because they locked their profile against provider changes.
    pub citizens_locked: u64,
    /// Lines refused.
    pub refused: u64,
    /// The first [`MAX_REPORTED_REFUSALS`] of them, with line number and FHIR path.
    pub refusals: Vec<ImportRefusal>,
    /// Whether more lines were refused than listed.
    pub refusals_truncated: bool,
}

/// Why a run stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The input could not be read to its end; what was committed before stays (running the
    /// same input again is harmless: migration is idempotent).
    #[error("the input could not be read after line {line}: {problem}")]
    Input {
        /// What failed.
        problem: String,
        /// The last line read.
        line: u64,
    },
    /// The database failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

type Commit = tokio::task::JoinHandle<Result<(Vec<MigrationOutcome>, Vec<Bsn>), StoreError>>;

/// A run over NDJSON input (a stream of byte chunks), `chunk` Consents per transaction; one
/// chunk commits while the next is read. `progress` sees the report after each commit.
pub async fn run_ndjson<S, B, E>(
    m: &Migrator<'_>,
    input: S,
    chunk: usize,
    progress: &mut (dyn FnMut(&MigrationReport) + Send),
) -> Result<MigrationReport, MigrationError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: fmt::Display,
{
    let mut state = Run {
        m,
        chunk: chunk.max(1),
        report: MigrationReport {
            connector: m.connector_id.to_owned(),
            ..MigrationReport::default()
        },
        line: Vec::new(),
        oversize: false,
        pending: Vec::new(),
        types: HashMap::new(),
        locked: HashSet::new(),
        in_flight: None,
        progress,
    };
    let mut input = input;
    while let Some(bytes) = input.next().await {
        match bytes {
            Ok(bytes) => state.feed(bytes.as_ref()).await?,
            Err(e) => {
                state.settle().await?;
                return Err(MigrationError::Input {
                    problem: e.to_string(),
                    line: state.report.lines_read,
                });
            }
        }
    }
    if !state.line.is_empty() || state.oversize {
        state.end_line().await;
    }
    state.flush().await?;
    state.settle().await?;
    Ok(state.report)
}

struct Run<'a, 'm> {
    m: &'a Migrator<'m>,
    chunk: usize,
    report: MigrationReport,
    line: Vec<u8>,
    oversize: bool,
    pending: Vec<MigrationItem>,
    types: HashMap<Ura, Option<OrgType>>,
    locked: HashSet<Bsn>,
    in_flight: Option<Commit>,
    progress: &'a mut (dyn FnMut(&MigrationReport) + Send),
}

impl Run<'_, '_> {
    async fn feed(&mut self, mut bytes: &[u8]) -> Result<(), MigrationError> {
        while !bytes.is_empty() {
            let (segment, ends) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..=i], true),
                None => (bytes, false),
            };
            bytes = &bytes[segment.len()..];
            if !self.oversize {
                if self.line.len() + segment.len() > MAX_RESOURCE_BYTES + 2 {
                    self.oversize = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(segment);
                }
            }
            if ends {
                self.end_line().await;
                if self.pending.len() >= self.chunk {
                    self.flush().await?;
                }
            }
        }
        Ok(())
    }

    async fn end_line(&mut self) {
        self.report.lines_read += 1;
        let number = self.report.lines_read;
        let refused = if std::mem::take(&mut self.oversize) {
            Some(Refused {
                status: 400,
                reason: "invalid",
                issues: vec![Issue::error(
                    IssueCode::TooLong,
                    None,
                    format!("the line is longer than {MAX_RESOURCE_BYTES} bytes"),
                )],
            })
        } else {
            let line = std::mem::take(&mut self.line);
            match parse_consent_ndjson_line(number, &line) {
                None => None,
                Some(Err(e)) => Some(Refused::fhir(e.error)),
                Some(Ok(consent)) => match self.m.item(consent, &mut self.types).await {
                    Ok(item) => {
                        self.report.consents += 1;
                        self.pending.push(item);
                        None
                    }
                    Err(refused) => Some(refused),
                },
            }
        };
        if let Some(refused) = refused {
            self.report.refused += 1;
            if self.report.refusals.len() < MAX_REPORTED_REFUSALS {
                self.report.refusals.push(refused.refusal(number));
            } else {
                self.report.refusals_truncated = true;
            }
        }
    }

    async fn flush(&mut self) -> Result<(), MigrationError> {
        self.settle().await?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.pending);
        let store = self.m.store.clone();
        let audit = self.m.change_audit();
        self.in_flight = Some(tokio::spawn(async move {
            let outcomes = store.migrate_answers(&items, &audit).await?;
            let locked = items
                .into_iter()
                .zip(&outcomes)
                .filter(|(_, o)| o.locked)
                .map(|(item, _)| item.bsn)
                .collect();
            Ok((outcomes, locked))
        }));
        Ok(())
    }

    async fn settle(&mut self) -> Result<(), MigrationError> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let (outcomes, locked) = task.await.map_err(|e| {
            StoreError::Corrupt(format!("the migration's commit task failed: {e}"))
        })??;
        for o in &outcomes {
            self.report.answers_migrated += u64::from(o.migrated);
            self.report.keys_already_answered += u64::from(o.already_answered);
        }
        for bsn in locked {
            if self.locked.insert(bsn) {
                self.report.citizens_locked += 1;
            }
        }
        metrics::counter!("otv_migration_answers_total", "outcome" => "migrated")
            .increment(outcomes.iter().map(|o| u64::from(o.migrated)).sum());
        metrics::counter!("otv_migration_answers_total", "outcome" => "already-answered")
            .increment(outcomes.iter().map(|o| u64::from(o.already_answered)).sum());
        (self.progress)(&self.report);
        Ok(())
    }
}

/// Audits one migration request or run as a whole: counts, connector; never a patient.
pub async fn audit_run(store: &Store, m: &Migrator<'_>, outcome: Result<&MigrationReport, &str>) {
    let (decision, reason, details) = match outcome {
        Ok(r) => (
            "accepted",
            None,
            serde_json::json!({
                "connector": m.connector_id,
                "via": m.via,
                "lines_read": r.lines_read,
                "consents": r.consents,
                "answers_migrated": r.answers_migrated,
                "keys_already_answered": r.keys_already_answered,
                "citizens_locked": r.citizens_locked,
                "refused": r.refused,
            }),
        ),
        Err(problem) => (
            "stopped",
            Some("migration-stopped".to_owned()),
            serde_json::json!({ "connector": m.connector_id, "via": m.via, "problem": problem }),
        ),
    };
    let event = AuditEvent {
        at: m.now,
        event: "consent-migration".into(),
        actor: format!("connector:{}", m.connector_id),
        request_id: m.request_id.clone(),
        decision: Some(decision.into()),
        reason,
        channel: Some("migration".into()),
        details,
        ..AuditEvent::default()
    };
    if let Err(e) = store.audit(&event).await {
        tracing::error!(error = %e, "the audit record of a migration could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otv_core::{CategoryCode, DataCategory, Effect};

    fn consent(data: &str, consulters: &[&str]) -> MigrationConsent {
        MigrationConsent {
            id: None,
            effect: Effect::Deny,
            data_category: DataCategory::parse(data).unwrap(),
            consulters: consulters
                .iter()
                .map(|c| CategoryCode::parse(c).unwrap())
                .collect(),
            bsn: Bsn::parse("900186021").unwrap(),
            holder_ura: Ura::parse("00000659").unwrap(),
            holder_type: None,
            valid_from: None,
        }
    }

    #[test]
    fn a_consent_becomes_one_categorical_answer_per_consulting_category() {
        let catalogue = Catalogue::default_catalogue();
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let z3 = OrgType::parse("Z3").unwrap();
        let answers = answers_of(
            &consent("GGC002", &["RPZAC005", "RPZAC200"]),
            &z3,
            &catalogue,
            now,
        )
        .unwrap();
        assert_eq!(answers.len(), 2);
        assert_eq!(
            answers[0].key.holder,
            Party::Category(CategoryCode::parse("DH-HA").unwrap())
        );
        assert_eq!(answers[1].key.consulter.to_string(), "category RPZAC200");
        assert_eq!(answers[0].valid_from, now);
        assert_eq!(answers[0].provenance.channel, Channel::Migration);

        // A pharmacy makes GGC013 available: a GGC002 Consent of a pharmacy is no option.
        let j8 = OrgType::parse("J8").unwrap();
        let e = answers_of(&consent("GGC002", &["RPZAC001"]), &j8, &catalogue, now).unwrap_err();
        assert_eq!(e.issues[0].expression.as_deref(), Some("Consent.category"));
        let e = answers_of(&consent("GGC002", &["RPZAC999"]), &z3, &catalogue, now).unwrap_err();
        assert_eq!(e.status, 422);
        let unknown = OrgType::parse("Q9").unwrap();
        assert!(answers_of(&consent("GGC002", &["RPZAC001"]), &unknown, &catalogue, now).is_err());
    }
}
