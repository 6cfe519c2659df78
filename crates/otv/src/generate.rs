//! `otv generate`: fills the database with a synthetic population (see
//! `otv_store::generate`) and reports the load rate and the database size.

use std::time::Instant;

use futures_util::StreamExt;

use otv_core::{Catalogue, Ura};
use otv_store::generate::{self, CONNECTOR_ID};
use otv_store::{Connector, GeneratedCitizen, Store};

/// Generates and loads `citizens` citizens in batches of `batch`.
pub async fn run(
    store: &Store,
    catalogue: &Catalogue,
    citizens: u64,
    batch: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let providers = generate::providers();
    store.upsert_providers(&providers).await?;
    let acts_for: Vec<Ura> = providers.iter().map(|p| p.ura.clone()).collect();
    store
        .upsert_connector(&Connector {
            id: CONNECTOR_ID.into(),
            name: "Generated exchange system".into(),
            certificate_sha256: None,
            acts_for,
        })
        .await?;

    // PostgreSQL does the loading work in one server process per connection, so two loads in
    // flight keep both cores busy; SQLite has one writer, where a second load would only wait.
    let in_flight = if store.kind() == "postgres" { 2 } else { 1 };
    let batch = batch.max(1);
    let start = Instant::now();
    let (mut answers, mut subscriptions, mut loaded) = (0u64, 0u64, 0u64);
    let mut next_report = citizens / 10;
    let batches = (0..citizens).step_by(batch as usize).map(|first| {
        let people: Vec<GeneratedCitizen> = (first..(first + batch).min(citizens))
            .map(|i| generate::citizen(catalogue, seed, i))
            .collect();
        let store = store.clone();
        async move {
            store.load_generated(&people).await?;
            let answers = people.iter().map(|c| c.answers.len() as u64).sum::<u64>();
            let subscriptions = people
                .iter()
                .map(|c| c.subscriptions.len() as u64)
                .sum::<u64>();
            anyhow::Ok((people.len() as u64, answers, subscriptions))
        }
    });
    let mut loads = futures_util::stream::iter(batches).buffer_unordered(in_flight);
    while let Some(done) = loads.next().await {
        let (c, a, s) = done?;
        loaded += c;
        answers += a;
        subscriptions += s;
        if loaded >= next_report && loaded < citizens {
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "{loaded} citizens loaded in {secs:.0} s ({:.0} citizens/s)",
                loaded as f64 / secs
            );
            next_report += citizens / 10;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let rows = citizens + answers + subscriptions;
    let stats = store.stats().await?;
    let summary = serde_json::json!({
        "backend": store.kind(),
        "citizens": citizens,
        "answers": answers,
        "subscriptions": subscriptions,
        "rows": rows,
        "seconds": (secs * 10.0).round() / 10.0,
        "rows_per_second": (rows as f64 / secs).round(),
        "citizens_per_second": (citizens as f64 / secs).round(),
        "database_bytes": stats.size_bytes,
        "database_mib": stats.size_bytes / (1024 * 1024),
    });
    println!("{summary}");
    Ok(())
}
