//! In-process cost of the closed question codec: reading the request as the load benchmark
//! (`scripts/bench-load`) sends it, and writing the response to it.
//!
//! `cargo bench -p otv-wire --bench closed_question`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use otv_wire::{Decision, closed_question_response, parse_closed_question};
use uuid::Uuid;

/// The fixture as `scripts/bench-load` sends it: every line trimmed, joined with single spaces.
fn request() -> String {
    let fixture = include_str!("../tests/fixtures/mitz/closed-question-request.xml");
    fixture.lines().map(str::trim).collect::<Vec<_>>().join(" ")
}

fn bench(c: &mut Criterion) {
    let request = request();
    let parsed = parse_closed_question(request.as_bytes()).expect("the fixture is a valid request");
    let outcomes: Vec<_> = parsed
        .data_categories
        .iter()
        .map(|category| (category.clone(), Decision::Permit))
        .collect();
    let response_id = Uuid::from_u128(0x0192f0c17a3e7c4d9e5fa1b2c3d4e5f6);

    let mut group = c.benchmark_group("closed question");
    // The machine is shared; short runs keep the numbers comparable without hogging it.
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("parse request", |b| {
        b.iter(|| parse_closed_question(black_box(request.as_bytes())))
    });
    group.bench_function("write response", |b| {
        b.iter(|| {
            closed_question_response(
                black_box(&parsed.message_id),
                response_id,
                black_box(&parsed.bsn),
                black_box(&parsed.holder.ura),
                black_box(&outcomes),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
