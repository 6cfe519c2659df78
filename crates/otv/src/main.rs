//! The `otv` binary: parses the command line, loads the configuration and wires the crates
//! together. No business rules live here.

mod config;
mod demo;
mod generate;
mod import;
mod migrate;
mod outbox;
mod sandbox;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use clap::{Parser, Subcommand};
use otv_core::Catalogue;
use otv_store::{AuditEvent, Keys, Store};

use crate::config::{Config, Settings};

/// mimalloc instead of the system allocator: a request allocates many small, short-lived
/// buffers on several threads, where glibc's allocator spent a tenth of the closed question's
/// time (BENCHMARKS.md, load benchmark).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// otv: online consent service for Dutch healthcare, wire-compatible with Mitz.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (TOML). Environment variables `OTV_*` override it.
    #[arg(long, global = true, env = "OTV_CONFIG")]
    config: Option<PathBuf>,
    /// Demo mode: development keys on SQLite when none are configured.
    #[arg(long, global = true)]
    demo: bool,
    /// DEVELOPMENT ONLY: the portal's development login (type a test BSN); every page says so.
    #[arg(long, global = true)]
    dev_login: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the HTTP server (applies migrations first; with --demo also loads the demo data).
    Serve,
    /// Applies database migrations and exits.
    Migrate,
    /// Loads the demo providers, connectors and test citizens, and exits.
    Demo,
    /// Audit log operations.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Consent catalogue operations.
    #[command(subcommand)]
    Catalogue(CatalogueCommand),
    /// Key operations.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Citizen notifications.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// The outbox of notifications: status, dead rows, retry.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Writes a test PKI (CA, server and connector certificates) and an otv.toml that uses it;
    /// `otv sandbox token` signs test enrolment tokens with it.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Sandbox {
        /// `token`: a test enrolment token.
        #[command(subcommand)]
        action: Option<SandboxCommand>,
        /// Directory to write into (created if needed).
        #[arg(required = true)]
        dir: Option<PathBuf>,
        /// Replace an existing sandbox in DIR.
        #[arg(long)]
        force: bool,
        /// Plain-HTTP listener written into otv.toml.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Mutual-TLS provider listener written into otv.toml.
        #[arg(long, default_value = "127.0.0.1:8443")]
        provider_listen: String,
    },
    /// Bulk registration: NDJSON subscriptions into the database (resumable); migration of
    /// consents (`otv import consents`).
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Fills the database with generated citizens at national proportions (benchmark data).
    Generate {
        /// Number of citizens.
        #[arg(long)]
        citizens: u64,
        /// Citizens per database transaction.
        #[arg(long, default_value_t = 5_000)]
        batch: u64,
        /// Seed: the same seed gives the same population.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walks the chain and its signed checkpoints; names the first broken record.
    Verify,
    /// Removes records past the retention period; the rest still verifies.
    Purge {
        /// Age, e.g. `5y`, `1826d`, `12h`; the configured retention when absent.
        #[arg(long)]
        older_than: Option<String>,
    },
    /// Writes a signed checkpoint at the head of the chain.
    Checkpoint,
}

#[derive(Subcommand)]
enum CatalogueCommand {
    /// Validates a replacement catalogue file.
    Check {
        /// The catalogue file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Scans for consent checks now and queues the daily digest e-mails at once (also when
    /// today's went out already); the running server sends them.
    Digest,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Prints a fresh set of keys as environment variables.
    Generate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("otv: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `otv sandbox <action>`.
#[derive(Subcommand, Debug)]
enum SandboxCommand {
    /// Prints a test enrolment token (compact JWS, ES256, made now) signed with the sandbox's
    /// UZI card for the URA (`uzi-pas`) or its WID key (`wid`).
    Token(SandboxToken),
}

#[derive(clap::Args, Debug)]
struct SandboxToken {
    /// The sandbox directory.
    #[arg(long)]
    dir: PathBuf,
    /// The patient's BSN.
    #[arg(long)]
    bsn: String,
    /// The provider's URA.
    #[arg(long)]
    ura: String,
    /// `uzi-pas` or `wid`.
    #[arg(long, default_value = "uzi-pas")]
    factor: String,
    /// Seconds from `iat` to `exp` (otv accepts at most 900).
    #[arg(long, default_value_t = 900)]
    lifetime_secs: i64,
    /// The token's `jti` (a new UUID when absent).
    #[arg(long)]
    jti: Option<String>,
    /// Sign with this certificate chain (PEM) instead of the sandbox's card.
    #[arg(long, requires = "card_key")]
    card: Option<PathBuf>,
    /// The key of `--card` (PEM).
    #[arg(long, requires = "card")]
    card_key: Option<PathBuf>,
}

impl SandboxToken {
    fn request(&self) -> sandbox::TokenRequest {
        sandbox::TokenRequest {
            dir: self.dir.clone(),
            bsn: self.bsn.clone(),
            ura: self.ura.clone(),
            factor: self.factor.clone(),
            lifetime_secs: self.lifetime_secs,
            jti: self.jti.clone(),
            card: self.card.clone().zip(self.card_key.clone()),
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Commands that need neither configuration nor database.
    match &cli.command {
        Command::Catalogue(CatalogueCommand::Check { file }) => return catalogue_check(file),
        Command::Sandbox {
            action: Some(SandboxCommand::Token(t)),
            ..
        } => {
            println!("{}", sandbox::token(&t.request())?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Sandbox {
            action: None,
            dir,
            force,
            listen,
            provider_listen,
        } => {
            let dir = dir.as_deref().context("the sandbox directory")?;
            println!(
                "{}",
                sandbox::write_sandbox(dir, listen, provider_listen, *force)?
            );
            return Ok(ExitCode::SUCCESS);
        }
        Command::Import(cmd) if cmd.standalone() => return import::run_standalone(cmd),
        Command::Keys(KeysCommand::Generate) => {
            let [p, e, s, r] = Keys::generate().to_hex();
            println!(
                "OTV_PSEUDONYM_KEY={p}\nOTV_ENCRYPTION_KEY={e}\nOTV_AUDIT_SIGNING_KEY={s}\nOTV_RECEIPT_SIGNING_KEY={r}"
            );
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }

    let mut config = Config::load(cli.config.as_deref())?;
    config.demo |= cli.demo || matches!(cli.command, Command::Demo);
    config.portal.dev_login |= cli.dev_login;
    let log_format = config.log_format.clone();
    let log_level = config.log_level.clone();
    let settings = config.validate()?;
    init_logging(
        &log_format,
        &log_level,
        matches!(cli.command, Command::Serve),
    );
    if settings.keys.is_development() {
        tracing::warn!(
            "demo mode: development keys in use; never use this database for real patients"
        );
    }

    let store = otv_store::connect(&settings.database_url, settings.keys.clone())
        .await
        .context("opening the database")?;
    store.migrate().await.context("applying migrations")?;

    match cli.command {
        Command::Serve => serve(settings, store).await,
        Command::Migrate => {
            println!("migrations applied ({})", store.kind());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => {
            demo::load(&store, &settings.catalogue).await?;
            println!(
                "demo data loaded: {} providers; test citizens {} (yes to all), {} (no to all), {} (yes for GPs and pharmacies only)",
                demo::PROVIDERS.len(),
                demo::BSN_PERMIT_ALL,
                demo::BSN_DENY_ALL,
                demo::BSN_GP_AND_PHARMACY
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(cmd) => audit(cmd, &settings, &store).await,
        Command::Generate {
            citizens,
            batch,
            seed,
        } => {
            generate::run(&store, &settings.catalogue, citizens, batch, seed).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(cmd) => import::run_with_store(cmd, &settings, &store).await,
        Command::Outbox(cmd) => outbox::run(cmd, &store).await,
        Command::Notify(NotifyCommand::Digest) => {
            let hour = settings.mail.as_ref().map_or(0, |m| m.digest_hour);
            let r = otv_server::notify::mail::checks::round(&store, Utc::now(), hour, true).await?;
            println!(
                "consent checks scanned: {} for citizens who want notices, {} immediate mails queued, {} daily digests queued",
                r.checks, r.queued, r.digests
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Catalogue(_) | Command::Keys(_) | Command::Sandbox { .. } => {
            unreachable!("handled above")
        }
    }
}

async fn serve(settings: Settings, store: Store) -> anyhow::Result<ExitCode> {
    let mut connectors = settings.connectors.clone();
    if settings.demo {
        demo::load(&store, &settings.catalogue)
            .await
            .context("loading demo data")?;
        // Demo connectors without a configured certificate stay usable on the development
        // listener (by header), never on the mutual-TLS one.
        for c in demo::connectors()? {
            if !connectors.iter().any(|k| k.id == c.id) {
                connectors.push(c);
            }
        }
    }
    // After the demo data, so that a configured connector (e.g. the sandbox's, with its
    // certificate) replaces the demo entry of the same id.
    for c in &settings.connectors {
        store
            .upsert_connector(c)
            .await
            .context("storing the connector allow-list")?;
    }
    if settings.dev_plain_provider_http {
        tracing::warn!(
            "development flag: provider interfaces on plain HTTP, connector named by header; never in production"
        );
    }
    if settings.portal.dev_login {
        tracing::warn!(
            "development flag: the portal's development login is on (anyone can type a BSN); never in production"
        );
    }
    let portal =
        otv_server::portal::Portal::new(settings.portal.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let state = otv_server::AppState {
        portal: Arc::new(portal),
        clock: otv_server::clock::Clock::system(),
        assisted: Arc::new(otv_server::assisted::Assisted {
            hand_off: settings.hand_off.clone(),
            enrolment: settings.enrolment_anchors.clone(),
        }),
        mail: match &settings.mail {
            Some(m) => Some(Arc::new(
                otv_server::notify::mail::Mailer::new(m.clone()).map_err(|e| anyhow::anyhow!(e))?,
            )),
            None => None,
        },
        outbox: Arc::new(
            otv_server::notify::Outbox::new(settings.outbox.clone()).context("[notify]")?,
        ),
        store: store.clone(),
        catalogue: Arc::new(settings.catalogue),
        policy: settings.default_policy,
        metrics: otv_server::install_metrics()?,
        connectors: Arc::new(otv_server::provider::Connectors::new(connectors)),
        dev_plain_provider_http: settings.dev_plain_provider_http,
        provider_base_path: settings.provider_base_path.clone(),
        saml_audience: settings.saml_audience.clone(),
        subscription_throttle: Arc::new(otv_server::provider::subscription::Throttle::new(
            settings.subscription_throttle,
        )),
        saml_signers: match &settings.provider {
            Some(p) => Some(Arc::new(
                otv_server::tls::SignerTrust::from_pem(&p.client_ca)
                    .context("setting `tls_client_ca`")?,
            )),
            None => None,
        },
    };
    // One shutdown signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    tokio::spawn(async move {
        otv_server::shutdown_signal().await;
        let _ = stop_tx.send(());
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    // Citizen e-mail: the scan for consent checks and the daily digest (only with `[mail]`).
    if state.mail.is_some() {
        tokio::spawn(otv_server::notify::mail::checks::run(
            state.clone(),
            stopped(stop_rx.clone()),
        ));
    }
    // The outbox delivery workers (`[notify] workers` per node).
    let workers = otv_server::notify::worker::spawn(&state, stop_rx.clone());
    let provider_task = match &settings.provider {
        Some(p) => {
            let tls = otv_server::tls::server_config(&otv_server::tls::TlsSettings {
                server_cert_pem: p.server_cert.clone(),
                server_key_pem: p.server_key.clone(),
                client_ca_pem: p.client_ca.clone(),
            })
            .context("provider listener TLS")?;
            let l = tokio::net::TcpListener::bind(p.listen)
                .await
                .with_context(|| format!("binding {}", p.listen))?;
            tracing::info!(addr = %l.local_addr()?, "provider listener (mutual TLS)");
            let router = otv_server::provider_router(state.clone());
            Some(tokio::spawn(otv_server::tls::serve_mtls(
                l,
                tls,
                router,
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = store.kind(), catalogue = state.catalogue.version(), demo = settings.demo, "listening");
    otv_server::serve(listener, otv_server::router(state), stopped(stop_rx)).await?;
    if let Some(task) = provider_task {
        task.await.context("provider listener")??;
    }
    for worker in workers {
        let _ = worker.await;
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn audit(cmd: AuditCommand, settings: &Settings, store: &Store) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify => {
            let report = store.audit_verify().await?;
            match report.first_broken {
                None => {
                    println!(
                        "audit chain intact: {} records, {} signed checkpoints",
                        report.records, report.checkpoints
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some((seq, problem)) => {
                    println!(
                        "audit chain BROKEN at record {seq}: {problem} ({} records checked before it)",
                        report.records
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Purge { older_than } => {
            let age = match older_than {
                Some(text) => parse_age(&text)?,
                None => Duration::days(i64::from(settings.audit_retention_days)),
            };
            let before = Utc::now() - age;
            let purged = store.audit_purge(before).await?;
            store
                .audit(&AuditEvent {
                    at: Utc::now(),
                    event: "audit-purge".into(),
                    actor: "operator".into(),
                    details: serde_json::json!({ "before": before, "purged": purged }),
                    ..AuditEvent::default()
                })
                .await?;
            println!("purged {purged} audit records older than {before}");
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Checkpoint => {
            match store.audit_checkpoint().await? {
                Some(seq) => println!("signed checkpoint at record {seq}"),
                None => println!("the audit log is empty; no checkpoint written"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn catalogue_check(file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match Catalogue::from_toml(&text) {
        Ok(c) => {
            println!(
                "catalogue {} is valid: version {}, {} holder categories, {} consulting categories, {} data categories, {} options",
                file.display(),
                c.version(),
                c.holder_categories().len(),
                c.consulting_categories().len(),
                c.data_categories().len(),
                c.options().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("catalogue {} is NOT valid: {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Reads an age such as `5y`, `1826d`, `12h`, `30m`.
fn parse_age(text: &str) -> anyhow::Result<Duration> {
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = num.parse().with_context(|| {
        format!("--older-than `{text}`: expected a number and a unit (y, d, h, m)")
    })?;
    Ok(match unit {
        "y" => Duration::days(n * 365),
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        _ => bail!("--older-than `{text}`: the unit is y, d, h or m"),
    })
}

fn init_logging(format: &str, level: &str, serving: bool) {
    use tracing_subscriber::EnvFilter;
    // Commands other than serve print their result on stdout; their logs go to stderr, quietly.
    let default = if serving { level } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let writer = if serving {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stdout)
    } else {
        tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if format == "json" && serving {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_durations() {
        assert_eq!(parse_age("5y").unwrap(), Duration::days(1825));
        assert_eq!(parse_age("12h").unwrap(), Duration::hours(12));
        assert!(parse_age("5").is_err());
        assert!(parse_age("5w").is_err());
    }
}
