//! Checkpoints of the write-ahead log, mostly off the writer.
//!
//! SQLite checkpoints in the connection whose commit takes the log past its autocheckpoint size:
//! that commit then also copies the log's pages into the database file and waits for two fsyncs.
//! Here that connection is the single writer, so with the default (1,000 pages) one audit batch
//! every second or two, and every closed question waiting on it, waited for a checkpoint.
//!
//! This task copies the log into the database every [`EVERY`] on a connection of its own, in
//! PASSIVE mode: it never blocks the writer, which goes on appending meanwhile. Because the writer
//! keeps appending, such a checkpoint rarely catches up completely, and only a complete one lets
//! the next commit start the log from its beginning again. So the writer still checkpoints, at
//! [`WRITER_PAGES`]: by then this task has copied nearly everything, and the writer's checkpoint
//! only finishes the last pages and restarts the log.

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use crate::Result;

/// How often the task checkpoints.
const EVERY: Duration = Duration::from_millis(250);

/// The log size (pages of 4 KiB) at which the writer checkpoints itself (SQLite's
/// `wal_autocheckpoint`): 40 MiB.
pub(super) const WRITER_PAGES: &str = "10000";

/// The checkpointing task; it stops when dropped.
pub(super) struct Checkpointer {
    task: tokio::task::AbortHandle,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Checkpointer {
    /// Starts checkpointing the database of `options`; must be called inside a Tokio runtime.
    pub(super) async fn start(options: &SqliteConnectOptions) -> Result<Checkpointer> {
        let pool: SqlitePool = super::single_connection()
            .connect_with(options.clone())
            .await?;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EVERY).await;
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(error = %e, "the write-ahead log could not be checkpointed");
                }
            }
        })
        .abort_handle();
        Ok(Checkpointer { task })
    }
}
