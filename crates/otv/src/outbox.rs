//! `otv outbox …`: the operators' view of the outbox delivery engine (helper D): counts, the
//! dead rows, and retrying them. The running server delivers retried rows at its next poll.

use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use otv_store::{AuditEvent, Store};
use uuid::Uuid;

/// The outbox commands.
#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Counts of the outbox: pending, due, being delivered, dead, delivered.
    Status,
    /// Lists the dead rows (longest dead first) with the reason of their last failure.
    Dead {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Makes one dead row pending again, with a fresh back-off.
    Retry {
        /// The row id (from `otv outbox dead`).
        id: String,
    },
    /// Makes every dead row pending again.
    RetryAllDead,
}

/// Runs an outbox command.
pub async fn run(cmd: OutboxCommand, store: &Store) -> anyhow::Result<ExitCode> {
    match cmd {
        OutboxCommand::Status => {
            let s = store.outbox_status(Utc::now()).await?;
            println!(
                "outbox: {} pending ({} due now, {} being delivered), {} dead, {} delivered",
                s.pending, s.due, s.claimed, s.dead, s.delivered
            );
            if let Some(oldest) = s.oldest_pending {
                println!("oldest pending row written at {}", oldest.to_rfc3339());
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Dead { limit } => {
            let rows = store.dead_outbox(limit).await?;
            if rows.is_empty() {
                println!("no dead rows");
            }
            for r in rows {
                println!(
                    "{}  {}  dead since {}  {} attempts  key {}  last error: {}",
                    r.id,
                    r.kind,
                    r.dead_at.map_or_else(|| "?".to_owned(), |t| t.to_rfc3339()),
                    r.attempts,
                    r.ordering_key.as_deref().unwrap_or("-"),
                    r.last_error.as_deref().unwrap_or("-"),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { id } => {
            let id = Uuid::parse_str(&id)
                .map_err(|_| anyhow::anyhow!("argument ID: `{id}` is not a row id (a UUID)"))?;
            let n = retry(store, Some(id)).await?;
            if n == 0 {
                println!("outbox row {id} is unknown or not dead");
                return Ok(ExitCode::FAILURE);
            }
            println!("outbox row {id} is pending again");
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::RetryAllDead => {
            let n = retry(store, None).await?;
            println!("{n} dead rows are pending again");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn retry(store: &Store, id: Option<Uuid>) -> anyhow::Result<u64> {
    let n = store.retry_dead_outbox(id, Utc::now()).await?;
    store
        .audit(&AuditEvent {
            at: Utc::now(),
            event: "outbox-retry".into(),
            actor: "operator-cli".into(),
            decision: Some("retried".into()),
            details: serde_json::json!({ "id": id, "retried": n }),
            ..AuditEvent::default()
        })
        .await?;
    Ok(n)
}
