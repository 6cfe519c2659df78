//! The storage tests: one binary, every test against every backend (see `support`).
//!
//! Run against PostgreSQL too with
//! `OTV_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p otv-store`.

mod answers;
mod audit;
mod bsn;
mod corpus;
mod directory;
mod errors;
mod generated;
mod imports;
mod pending;
mod subscriptions;
mod support;
