//! Group commit for audit records that stand alone (a closed question, a refused request): the
//! hot path's only write.
//!
//! Every record extends one hash chain, so appends are serial by nature: each needs the head of
//! the chain and moves it. Done one transaction per record, the head's lock (PostgreSQL) or the
//! single writer connection (SQLite) is held through a commit each time, and that commit is the
//! ceiling on questions per second. Here one task owns the appends: it takes every record that
//! is waiting (up to [`MAX_BATCH`]), writes them in one transaction, and only then tells each
//! caller its sequence number. A caller still learns of its record only once it is durable; a
//! record that arrives while a batch is being written goes with the next one. With one caller
//! at a time a batch is one record, so nothing waits for company.
//!
//! The writer is a task on the runtime ([`AuditWriter::spawn`], PostgreSQL) or a thread of its
//! own when its writes block ([`AuditWriter::spawn_thread`], SQLite).
//!
//! Records written together with other changes (answers, subscriptions) do not come here: they
//! belong in their change's own transaction.

use std::future::Future;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::audit::AuditEvent;
use crate::{Result, StoreError};

/// The most records in one transaction.
pub(crate) const MAX_BATCH: usize = 512;

/// Records that may wait for the writer before callers wait to hand theirs over.
const QUEUE: usize = 8 * MAX_BATCH;

struct Job {
    event: AuditEvent,
    done: oneshot::Sender<Result<i64, String>>,
}

/// Hands records to the writer task. Dropping the last handle ends the task.
pub(crate) struct AuditWriter {
    queue: mpsc::Sender<Job>,
}

impl AuditWriter {
    /// Starts the writer task. `write` appends the records in one transaction, in order, and
    /// returns the sequence number of the first. Must be called inside a Tokio runtime.
    pub(crate) fn spawn<W, F>(write: W) -> AuditWriter
    where
        W: Fn(Vec<AuditEvent>) -> F + Send + 'static,
        F: Future<Output = Result<i64>> + Send,
    {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while jobs.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let (events, waiting) = split(&mut batch);
                let started = Instant::now();
                let written = write(events).await;
                report(started, written, waiting);
            }
        });
        AuditWriter { queue }
    }

    /// As [`AuditWriter::spawn`], with a writer that blocks: it runs on a thread of its own,
    /// `name` (`sqlite/audit_thread.rs` says why), which ends when the last handle is dropped.
    pub(crate) fn spawn_thread<W>(name: &str, mut write: W) -> Result<AuditWriter>
    where
        W: FnMut(Vec<AuditEvent>) -> Result<i64> + Send + 'static,
    {
        let (queue, mut jobs) = mpsc::channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                while let Some(job) = jobs.blocking_recv() {
                    batch.push(job);
                    while batch.len() < MAX_BATCH {
                        match jobs.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let (events, waiting) = split(&mut batch);
                    let started = Instant::now();
                    let written = write(events);
                    report(started, written, waiting);
                }
            })
            .map_err(|e| StoreError::AuditLog(format!("the audit writer could not start: {e}")))?;
        Ok(AuditWriter { queue })
    }

    /// Appends `event` and waits until it is committed; returns its sequence number.
    pub(crate) async fn append(&self, event: AuditEvent) -> Result<i64> {
        let (done, committed) = oneshot::channel();
        let job = Job { event, done };
        self.queue
            .send(job)
            .await
            .map_err(|_| StoreError::AuditLog("the audit writer has stopped".into()))?;
        committed
            .await
            .map_err(|_| StoreError::AuditLog("the audit writer has stopped".into()))?
            .map_err(StoreError::AuditLog)
    }
}

type Waiting = Vec<oneshot::Sender<Result<i64, String>>>;

fn split(batch: &mut Vec<Job>) -> (Vec<AuditEvent>, Waiting) {
    batch.drain(..).map(|j| (j.event, j.done)).unzip()
}

/// Tells each caller of a batch written since `started` its sequence number, or why not.
fn report(started: Instant, written: Result<i64>, waiting: Waiting) {
    let size = waiting.len();
    metrics::histogram!("otv_audit_batch_records").record(size as f64);
    metrics::histogram!("otv_audit_batch_seconds").record(started.elapsed().as_secs_f64());
    match written {
        Ok(first) => {
            for (seq, done) in (first..).zip(waiting) {
                // A caller that gave up waiting has nothing to be told.
                let _ = done.send(Ok(seq));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, records = size, "an audit batch could not be written");
            let reason = e.to_string();
            for done in waiting {
                let _ = done.send(Err(reason.clone()));
            }
        }
    }
}
