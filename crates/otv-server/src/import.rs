//! Bulk registration by NDJSON (PRODUCT.md §7, §12): one FHIR R4 `Subscription` in JSON per
//! line, millions of lines for a large provider. The one importer behind both
//! `POST …/abonnementen/fhir/Subscription/$import` and `otv import subscriptions`.
//!
//! How an import runs:
//! - The input is read as a stream of byte chunks and cut into lines here; no more than one
//!   line (at most [`MAX_RESOURCE_BYTES`] of it) and one chunk of registrations are held at a
//!   time. A longer line is refused without being buffered.
//! - Each line is decoded by `otv-wire` and checked against the connector: a line for a holder
//!   URA the connector may not act for is refused like a malformed one. Refused lines are
//!   reported (line number, FHIR path, problem), never stored as registrations.
//! - Every [`ImportOptions::chunk_lines`] lines are committed in one transaction together with
//!   the import's progress (`Backend::commit_import_chunk`). While one chunk commits, the next
//!   one is read and decoded.
//! - Idempotent: a registration is identified by connector, patient and source system; one that
//!   exists is counted as already registered and left as it is.
//! - Resumable: an import is named by the client ([`ImportId`]), per connector. A run with the
//!   same id skips the lines already committed, without decoding them, and goes on from there.
//!   The skipped lines are hashed and compared with the hash stored at commit, so input that
//!   differs from what was committed under the id is refused (409) rather than resumed at the
//!   wrong place.
//!
//! Must not: hold the whole input, write a line that was refused, or put a BSN in a report,
//! an error, a log line or the audit record (reports carry line numbers and FHIR paths only).

use std::fmt;

use aws_lc_rs::digest;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use otv_core::Ura;
use otv_store::{
    AuditEvent, ImportChunk, ImportCommit, ImportIssue, ImportProgress, ImportRefusal,
    NewSubscription, Store, StoreError,
};
use otv_wire::fhir::{ErrorClass, MAX_RESOURCE_BYTES, parse_subscription_ndjson_line};
use serde::Serialize;
use tokio::task::JoinHandle;

/// Lines per transaction unless the caller says otherwise.
pub const DEFAULT_CHUNK_LINES: usize = 5_000;

/// The most refused lines one run reports with their reasons (the count goes on).
pub const MAX_REPORTED_REFUSALS: usize = 100;

/// The longest import id.
pub const MAX_IMPORT_ID_CHARS: usize = 64;

/// The client's name for an import: 1 to [`MAX_IMPORT_ID_CHARS`] of `A–Z a–z 0–9 . _ - ~ :`.
/// Unique per connector; the same id continues the same import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportId(String);

impl ImportId {
    /// Checks an import id.
    pub fn parse(id: &str) -> Result<ImportId, ImportError> {
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~' | ':');
        if id.is_empty() || id.len() > MAX_IMPORT_ID_CHARS || !id.chars().all(allowed) {
            return Err(ImportError::InvalidId);
        }
        Ok(ImportId(id.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ImportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who imports and how.
pub struct ImportOptions<'a> {
    /// The connector that registers (and whose registrations these become).
    pub connector_id: &'a str,
    /// Whether the connector may act for a holder URA.
    pub may_act_for: &'a (dyn Fn(&Ura) -> bool + Sync),
    /// The import's id.
    pub import_id: &'a ImportId,
    /// Lines per transaction.
    pub chunk_lines: usize,
}

/// What one run of an import did, and where the whole import stands.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The import's id.
    pub import_id: String,
    /// The connector.
    pub connector: String,
    /// Lines in this input, the skipped ones included.
    pub lines_read: u64,
    /// Lines committed by earlier runs, skipped without being decoded.
    pub skipped: u64,
    /// Registrations this run created.
    pub created: u64,
    /// Lines of this run whose registration already existed.
    pub already_registered: u64,
    /// Lines this run refused.
    pub refused: u64,
    /// The first [`MAX_REPORTED_REFUSALS`] of them.
    pub refusals: Vec<ImportRefusal>,
    /// Whether more lines were refused than listed.
    pub refusals_truncated: bool,
    /// Lines `1..=committed_through_line` of the input are committed.
    pub committed_through_line: u64,
    /// Whether the input was read to its end and all of it is committed.
    pub complete: bool,
    /// The whole import, over every run so far.
    pub import: Option<ImportProgress>,
}

/// Why an import run stopped without reading its input to the end.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The import id does not follow [`ImportId`]'s rules.
    #[error(
        "the import id must be 1 to {MAX_IMPORT_ID_CHARS} characters of A-Z, a-z, 0-9, `.`, `_`, `-`, `~`, `:`"
    )]
    InvalidId,
    /// The input's first lines are not the ones committed under this import id.
    #[error(
        "lines 1 to {committed} of this input differ from those committed under this import id; \
         re-send the same input, or use a new import id"
    )]
    DifferentInput {
        /// Lines committed under the id.
        committed: u64,
    },
    /// The input ends before the lines already committed under this import id.
    #[error(
        "this input has {lines} lines, but {committed} are already committed under this import id; \
         re-send the same input, or use a new import id"
    )]
    ShorterInput {
        /// Lines in the input.
        lines: u64,
        /// Lines committed under the id.
        committed: u64,
    },
    /// Another run of the same import committed meanwhile.
    #[error(
        "another run of this import is in progress (committed through line {committed}); \
         wait for it, or re-send later to continue"
    )]
    Concurrent {
        /// Lines committed by the other run so far.
        committed: u64,
    },
    /// The input could not be read to its end (a body cut off, a read error).
    #[error("the input could not be read after line {committed_through_line}: {problem}")]
    Input {
        /// What failed.
        problem: String,
        /// Lines committed before it failed; a new run with the same id resumes after them.
        committed_through_line: u64,
    },
    /// The database failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl ImportError {
    /// A short name of the problem, for problem details, audit records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ImportError::InvalidId => "invalid-import-id",
            ImportError::DifferentInput { .. } => "different-input",
            ImportError::ShorterInput { .. } => "shorter-input",
            ImportError::Concurrent { .. } => "import-in-progress",
            ImportError::Input { .. } => "input-interrupted",
            ImportError::Store(_) => "storage",
        }
    }
}

/// A chunk being filled.
#[derive(Default)]
struct Pending {
    subscriptions: Vec<NewSubscription>,
    refusals: Vec<ImportRefusal>,
    lines: usize,
}

/// Totals of this run, as the commits report them.
#[derive(Default)]
struct Totals {
    created: u64,
    already_registered: u64,
    refused: u64,
    refusals: Vec<ImportRefusal>,
    committed: u64,
    progress: Option<ImportProgress>,
}

type Commit = JoinHandle<Result<(ImportCommit, u64, Vec<ImportRefusal>), StoreError>>;

/// One run of an import over `input`, a stream of byte chunks. `on_commit` sees the import's
/// progress after each committed chunk (the CLI prints it).
pub async fn run<S, B, E>(
    store: &Store,
    options: &ImportOptions<'_>,
    input: S,
    on_commit: &mut (dyn FnMut(&ImportProgress) + Send),
) -> Result<ImportReport, ImportError>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
    E: fmt::Display,
{
    let stored = store
        .import_progress(options.connector_id, options.import_id.as_str())
        .await?;
    let skip = stored.as_ref().map_or(0, |p| p.committed_lines);
    let mut state = Run {
        store,
        options,
        skip,
        stored_prefix: stored.as_ref().map(|p| p.prefix_sha256.clone()),
        hash: digest::Context::new(&digest::SHA256),
        line: 0,
        partial: Vec::new(),
        oversize: false,
        open: false,
        pending: Pending::default(),
        after_line: skip,
        in_flight: None,
        totals: Totals {
            committed: skip,
            progress: stored,
            ..Totals::default()
        },
        on_commit,
    };
    let mut input = input;
    while let Some(bytes) = input.next().await {
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                // Whatever is committing finishes; the chunk being filled is not written.
                state.settle().await?;
                return Err(ImportError::Input {
                    problem: e.to_string(),
                    committed_through_line: state.totals.committed,
                });
            }
        };
        state.feed(bytes.as_ref()).await?;
    }
    // A last line without a line end.
    if state.open {
        state.end_line()?;
    }
    if state.line < skip {
        state.settle().await?;
        return Err(ImportError::ShorterInput {
            lines: state.line,
            committed: skip,
        });
    }
    state.flush(true).await?;
    state.settle().await?;
    let totals = state.totals;
    let lines_read = state.line;
    let refused = totals.refused;
    Ok(ImportReport {
        import_id: options.import_id.to_string(),
        connector: options.connector_id.to_owned(),
        lines_read,
        skipped: skip,
        created: totals.created,
        already_registered: totals.already_registered,
        refused,
        refusals_truncated: refused > totals.refusals.len() as u64,
        refusals: totals.refusals,
        committed_through_line: totals.committed,
        complete: totals.committed == lines_read,
        import: totals.progress,
    })
}

/// The state of one run.
struct Run<'a, 'o> {
    store: &'a Store,
    options: &'a ImportOptions<'o>,
    /// Lines committed before this run.
    skip: u64,
    stored_prefix: Option<Vec<u8>>,
    /// SHA-256 over the bytes of every line read so far.
    hash: digest::Context,
    /// Lines read so far.
    line: u64,
    /// The current line's bytes, up to the limit.
    partial: Vec<u8>,
    /// The current line is over the limit.
    oversize: bool,
    /// Bytes of the current line have been read.
    open: bool,
    pending: Pending,
    /// The line the chunk being filled continues from.
    after_line: u64,
    in_flight: Option<Commit>,
    totals: Totals,
    on_commit: &'a mut (dyn FnMut(&ImportProgress) + Send),
}

impl Run<'_, '_> {
    /// Cuts `bytes` into lines, carrying an unfinished line over to the next call.
    async fn feed(&mut self, mut bytes: &[u8]) -> Result<(), ImportError> {
        while !bytes.is_empty() {
            let (segment, ends_line) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..=i], true),
                None => (bytes, false),
            };
            bytes = &bytes[segment.len()..];
            self.hash.update(segment);
            self.open = true;
            // A skipped line is only hashed; a line over the limit is not kept.
            if self.line >= self.skip && !self.oversize {
                if self.partial.len() + segment.len() > MAX_RESOURCE_BYTES + 2 {
                    self.oversize = true;
                    self.partial = Vec::new();
                } else {
                    self.partial.extend_from_slice(segment);
                }
            }
            if ends_line {
                self.end_line()?;
                if self.pending.lines >= self.options.chunk_lines.max(1) {
                    self.flush(false).await?;
                }
            }
        }
        Ok(())
    }

    /// The current line is complete: decode and check it, or skip it.
    fn end_line(&mut self) -> Result<(), ImportError> {
        self.line += 1;
        self.open = false;
        if self.line <= self.skip {
            if self.line == self.skip {
                let prefix = self.hash.clone().finish();
                if self.stored_prefix.as_deref() != Some(prefix.as_ref()) {
                    return Err(ImportError::DifferentInput {
                        committed: self.skip,
                    });
                }
            }
            return Ok(());
        }
        let line = self.line;
        self.pending.lines += 1;
        if std::mem::take(&mut self.oversize) {
            self.pending.refusals.push(ImportRefusal {
                line,
                reason: "invalid".into(),
                issues: vec![ImportIssue {
                    path: None,
                    problem: format!("the line is longer than {MAX_RESOURCE_BYTES} bytes"),
                }],
            });
            return Ok(());
        }
        let parsed = parse_subscription_ndjson_line(line, &self.partial);
        self.partial.clear();
        match parsed {
            None => {}
            Some(Err(e)) => {
                let reason = match e.error.class() {
                    ErrorClass::Invalid => "invalid",
                    ErrorClass::BusinessRule => "business-rule",
                };
                self.pending.refusals.push(ImportRefusal {
                    line,
                    reason: reason.into(),
                    issues: e
                        .error
                        .issues()
                        .iter()
                        .map(|i| ImportIssue {
                            path: i.expression.clone(),
                            problem: i.diagnostics.clone(),
                        })
                        .collect(),
                });
            }
            Some(Ok(r)) if !(self.options.may_act_for)(&r.holder_ura) => {
                self.pending.refusals.push(ImportRefusal {
                    line,
                    reason: "not-allowed-for-ura".into(),
                    issues: vec![ImportIssue {
                        path: Some("Subscription.criteria".into()),
                        problem: format!(
                            "connector `{}` may not act for URA {} (providerid)",
                            self.options.connector_id, r.holder_ura
                        ),
                    }],
                });
            }
            Some(Ok(r)) => self.pending.subscriptions.push(NewSubscription {
                bsn: r.bsn,
                birth_date: r.birth_date,
                holder_ura: r.holder_ura,
                holder_type: r.holder_type,
                connector_id: self.options.connector_id.to_owned(),
                source_system: r.source_system,
                gateway_system: r.gateway_system,
                endpoint: r.endpoint,
                payload: r.payload.media_type().to_owned(),
            }),
        }
        Ok(())
    }

    /// Hands the chunk being filled to a commit of its own, after the previous commit is done
    /// (chunks commit in order, one at a time).
    async fn flush(&mut self, complete: bool) -> Result<(), ImportError> {
        self.settle().await?;
        let pending = std::mem::take(&mut self.pending);
        let store = self.store.clone();
        let connector = self.options.connector_id.to_owned();
        let import_id = self.options.import_id.as_str().to_owned();
        let after_line = self.after_line;
        let through_line = self.line;
        let prefix = self.hash.clone().finish().as_ref().to_vec();
        self.after_line = through_line;
        self.in_flight = Some(tokio::spawn(async move {
            let chunk = ImportChunk {
                connector_id: &connector,
                import_id: &import_id,
                after_line,
                through_line,
                prefix_sha256: &prefix,
                subscriptions: &pending.subscriptions,
                refusals: &pending.refusals,
                complete,
            };
            let outcome = store.commit_import_chunk(&chunk).await?;
            Ok((
                outcome,
                pending.subscriptions.len() as u64,
                pending.refusals,
            ))
        }));
        Ok(())
    }

    /// Waits for the commit in flight, if any, and counts what it did.
    async fn settle(&mut self) -> Result<(), ImportError> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let (outcome, accepted, refusals) = task
            .await
            .map_err(|e| StoreError::Corrupt(format!("the import's commit task failed: {e}")))??;
        match outcome {
            ImportCommit::Committed { created, progress } => {
                let refused = refusals.len() as u64;
                let t = &mut self.totals;
                t.created += created;
                t.already_registered += accepted - created;
                t.refused += refused;
                let room = MAX_REPORTED_REFUSALS.saturating_sub(t.refusals.len());
                t.refusals.extend(refusals.into_iter().take(room));
                t.committed = progress.committed_lines;
                metrics::counter!("otv_import_lines_total", "outcome" => "created")
                    .increment(created);
                metrics::counter!("otv_import_lines_total", "outcome" => "already-registered")
                    .increment(accepted - created);
                metrics::counter!("otv_import_lines_total", "outcome" => "refused")
                    .increment(refused);
                (self.on_commit)(&progress);
                t.progress = Some(progress);
                Ok(())
            }
            ImportCommit::Moved(stored) => Err(ImportError::Concurrent {
                committed: stored.map_or(0, |p| p.committed_lines),
            }),
        }
    }
}

/// Who ran an import, for its audit record.
pub struct ImportActor<'a> {
    /// `connector:<id>` over the API, `operator` from the CLI.
    pub actor: String,
    /// `fhir-ndjson` over the API, `cli` from the CLI.
    pub channel: &'a str,
    /// The request id, over the API.
    pub request_id: Option<String>,
}

/// What happened to an import request, for its audit record.
pub enum ImportOutcome<'a> {
    /// The input was read to its end.
    Done(&'a ImportReport),
    /// The run stopped part-way (or did not start).
    Stopped(&'a ImportError),
    /// The request was refused as a whole before the import began (media type, import id,
    /// connector): a short code and the explanation.
    Refused {
        /// E.g. `media-type`.
        code: &'a str,
        /// What was wrong.
        detail: &'a str,
    },
}

/// Audits one request or run of an import: its counts, connector and id, or why it stopped.
/// Never a patient: an import concerns many, and its refusals are not trusted enough to
/// pseudonymise.
pub async fn audit(
    store: &Store,
    who: ImportActor<'_>,
    connector: Option<&str>,
    import_id: Option<&str>,
    outcome: ImportOutcome<'_>,
) {
    let (event, decision, reason, details) = match outcome {
        ImportOutcome::Done(r) => (
            "subscription-import",
            "accepted",
            None,
            serde_json::json!({
                "connector": connector,
                "import_id": import_id,
                "lines_read": r.lines_read,
                "skipped": r.skipped,
                "created": r.created,
                "already_registered": r.already_registered,
                "refused": r.refused,
                "committed_through_line": r.committed_through_line,
                "complete": r.complete,
            }),
        ),
        ImportOutcome::Stopped(e) => (
            "subscription-import",
            "stopped",
            Some(e.kind().to_owned()),
            serde_json::json!({
                "connector": connector,
                "import_id": import_id,
                "problem": e.to_string(),
            }),
        ),
        ImportOutcome::Refused { code, detail } => (
            "subscription-import-rejected",
            "rejected",
            Some(code.to_owned()),
            serde_json::json!({
                "connector": connector,
                "import_id": import_id,
                "problem": detail,
            }),
        ),
    };
    let event = AuditEvent {
        at: Utc::now(),
        event: event.into(),
        actor: who.actor,
        request_id: who.request_id,
        decision: Some(decision.into()),
        reason,
        channel: Some(who.channel.into()),
        details,
        ..AuditEvent::default()
    };
    if let Err(e) = store.audit(&event).await {
        tracing::error!(error = %e, "the audit record of an import could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids_are_short_and_plain() {
        assert!(ImportId::parse("2026-11-23.initial_load:1~a").is_ok());
        assert!(ImportId::parse("").is_err());
        assert!(ImportId::parse("a b").is_err());
        assert!(ImportId::parse("a/b").is_err());
        assert!(ImportId::parse(&"x".repeat(65)).is_err());
        assert!(ImportId::parse(&"x".repeat(64)).is_ok());
    }
}
