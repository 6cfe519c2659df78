//! End-to-end tests: they start the real `otv` binary and talk to it. One test binary (modules
//! below) to keep build times down. Each test runs on SQLite and, when `OTV_TEST_DATABASE_URL` is
//! set, on a fresh PostgreSQL database too.

mod access;
mod browser;
mod cli;
mod closed_question;
mod emergency;
mod handoff;
mod import;
mod mail;
mod migration;
mod mtls;
mod notify;
mod notify_crash;
mod open_question;
mod portal;
mod portal_client;
mod portal_data;
mod portal_minors;
mod signed_assertion;
mod subscription;
mod support;
