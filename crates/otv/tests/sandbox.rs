//! Builds `src/sandbox.rs` (with the `src/demo.rs` and `src/config.rs` it uses) into a test
//! binary so that its unit tests run before `main.rs` declares `mod sandbox;`. Delete this file
//! once it does: the same tests then run with the binary's own unit tests.

#[allow(dead_code, reason = "only what sandbox.rs uses")]
#[path = "../src/config.rs"]
mod config;
#[allow(dead_code, reason = "only what sandbox.rs uses")]
#[path = "../src/demo.rs"]
mod demo;
#[allow(
    dead_code,
    reason = "the binary calls it; here only its unit tests run"
)]
#[path = "../src/sandbox.rs"]
mod sandbox;
