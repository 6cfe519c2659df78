//! Decision latency against stored data: read the patient's current answers from the database
//! (pseudonym lookup, one indexed query) and decide a closed question with three data
//! categories. Criterion reports the mean; a second, plain loop over random citizens reports
//! p50 and p99, because criterion does not.
//!
//! Against a generated national-size database (see BENCHMARKS.md):
//!   OTV_BENCH_DATABASE_URL=sqlite://bench-data/otv.sqlite OTV_BENCH_CITIZENS=1000000 \
//!     cargo bench -p otv-store --bench decision_store
//! PostgreSQL needs the keys the data was generated with (OTV_PSEUDONYM_KEY, OTV_ENCRYPTION_KEY,
//! OTV_AUDIT_SIGNING_KEY, OTV_RECEIPT_SIGNING_KEY). Without OTV_BENCH_DATABASE_URL the bench generates 20,000 citizens
//! into a temporary SQLite file first.

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use otv_core::{
    Catalogue, DataCategory, DefaultPolicy, OrgType, Organisation, Question, Ura, decide,
};
use otv_store::{Keys, Store, generate};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn keys() -> Keys {
    match (
        std::env::var("OTV_PSEUDONYM_KEY"),
        std::env::var("OTV_ENCRYPTION_KEY"),
        std::env::var("OTV_AUDIT_SIGNING_KEY"),
        std::env::var("OTV_RECEIPT_SIGNING_KEY"),
    ) {
        (Ok(p), Ok(e), Ok(s), Ok(r)) => Keys::from_hex(&p, &e, &s, &r).expect("valid keys"),
        _ => Keys::development(),
    }
}

async fn open(catalogue: &Catalogue) -> (Store, u64, Option<tempfile::TempDir>) {
    if let Ok(url) = std::env::var("OTV_BENCH_DATABASE_URL") {
        let citizens = std::env::var("OTV_BENCH_CITIZENS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let store = otv_store::connect(&url, keys())
            .await
            .expect("database opens");
        return (store, citizens, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite").display());
    let store = otv_store::connect(&url, Keys::development()).await.unwrap();
    store.migrate().await.unwrap();
    let citizens = 20_000;
    for start in (0..citizens).step_by(5_000) {
        let batch: Vec<_> = (start..start + 5_000)
            .map(|i| generate::citizen(catalogue, 1, i))
            .collect();
        store.load_generated(&batch).await.unwrap();
    }
    (store, citizens, Some(dir))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let catalogue = Catalogue::default_catalogue();
    let (store, citizens, _dir) = rt.block_on(open(&catalogue));
    let holder = Organisation {
        ura: Ura::parse("30000001").unwrap(),
        organisation_type: OrgType::parse("Z3").unwrap(),
    };
    let consulter = Organisation {
        ura: Ura::parse("30200001").unwrap(),
        organisation_type: OrgType::parse("J8").unwrap(),
    };
    let asked: Vec<DataCategory> = ["GGC002", "GGC012", "GGC013"]
        .iter()
        .map(|c| DataCategory::parse(c).unwrap())
        .collect();
    let seed = std::env::var("OTV_BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);

    let one = |i: u64| {
        let store = store.clone();
        let (catalogue, holder, consulter, asked) = (&catalogue, &holder, &consulter, &asked);
        async move {
            let answers = store.profile(&generate::bsn(i)).await.expect("profile");
            let question = Question {
                holder,
                consulter,
                at: Utc::now(),
            };
            let outcomes = decide(catalogue, DefaultPolicy::OptIn, &answers, &question, asked);
            std::hint::black_box(outcomes.len())
        }
    };

    // Percentiles first, over random citizens (a cold-ish cache, as in production).
    let mut rng = StdRng::seed_from_u64(seed);
    let mut samples: Vec<Duration> = Vec::with_capacity(20_000);
    rt.block_on(async {
        for _ in 0..2_000 {
            one(rng.random_range(0..citizens)).await;
        }
        for _ in 0..20_000 {
            let i = rng.random_range(0..citizens);
            let t = Instant::now();
            one(i).await;
            samples.push(t.elapsed());
        }
    });
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "profile+decide over {citizens} citizens on {}: p50 {:?}, p99 {:?}, max {:?} (20,000 random citizens)",
        store.kind(),
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1]
    );

    let mut rng = StdRng::seed_from_u64(seed + 1);
    c.bench_function(
        &format!("profile+decide, {} , {citizens} citizens", store.kind()),
        |b| b.to_async(&rt).iter(|| one(rng.random_range(0..citizens))),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
