//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the migration files,
//! and on stable Rust it cannot tell Cargo to watch them itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
