//! `otv import`: bulk registration from an NDJSON file straight into the configured database,
//! the operator's path for the initial registration of a large provider, through the same
//! importer as the API (`otv_server::import`). Interrupted (Ctrl-C, killed), the same command
//! resumes after the last committed chunk.
//!
//! `otv import sample` writes synthetic NDJSON lines (or the same rows as CSV) for tests and
//! the benchmark.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;
use otv_core::Ura;
use otv_server::import::{
    DEFAULT_CHUNK_LINES, ImportActor, ImportId, ImportOptions, ImportOutcome, audit, run,
};
use otv_store::{Store, generate};
use tokio::io::AsyncReadExt;

use crate::config::Settings;
use crate::demo;

/// `otv import …`
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Registers the subscriptions in an NDJSON file (one FHIR Subscription in JSON per line)
    /// for a connector, in chunks; run again with the same import id to resume.
    Subscriptions {
        /// The NDJSON file.
        file: PathBuf,
        /// The connector that registers (configured or stored); lines for URAs it may not act
        /// for are refused.
        #[arg(long)]
        connector: String,
        /// The import's id; by default derived from the file's path and size, so the same
        /// command resumes.
        #[arg(long)]
        import_id: Option<String>,
        /// Lines per transaction.
        #[arg(long, default_value_t = DEFAULT_CHUNK_LINES)]
        chunk: usize,
    },
    /// Migrates the consents in an NDJSON file (one FHIR Consent in JSON per line, shaped like
    /// the notification Consents) for a connector: fills only options the citizens have not
    /// answered. Idempotent: run it again after an interruption.
    Consents {
        /// The NDJSON file.
        file: PathBuf,
        /// The connector that migrates (configured or stored); Consents of holders it may not
        /// act for are refused.
        #[arg(long)]
        connector: String,
        /// Consents per transaction.
        #[arg(long, default_value_t = otv_server::migration::DEFAULT_CHUNK)]
        chunk: usize,
    },
    /// Writes synthetic Consent lines (for `otv import consents`) to stdout, for tests and
    /// benchmarks.
    ConsentSample {
        /// Number of lines.
        #[arg(long)]
        lines: u64,
    },
    /// Writes synthetic registration lines to stdout (valid synthetic BSNs, holders from the
    /// generated provider directory), for tests and benchmarks.
    Sample {
        /// Number of lines.
        #[arg(long)]
        lines: u64,
        /// The same rows as CSV (bsn, birth_date, holder_ura, holder_type, connector_id,
        /// source_system, gateway_system, endpoint, payload) for a plain `COPY`.
        #[arg(long)]
        csv: bool,
        /// Connector id written into the CSV rows.
        #[arg(long, default_value = generate::CONNECTOR_ID)]
        connector: String,
    },
}

impl ImportCommand {
    /// Whether the command runs without configuration or database.
    pub fn standalone(&self) -> bool {
        matches!(
            self,
            ImportCommand::Sample { .. } | ImportCommand::ConsentSample { .. }
        )
    }
}

/// Runs a command that needs no database.
pub fn run_standalone(cmd: &ImportCommand) -> anyhow::Result<ExitCode> {
    if let ImportCommand::ConsentSample { lines } = cmd {
        return crate::migrate::sample(*lines);
    }
    let ImportCommand::Sample {
        lines,
        csv,
        connector,
    } = cmd
    else {
        bail!("this import command needs the database");
    };
    let providers = generate::providers();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    for i in 0..*lines {
        let bsn = generate::bsn(i);
        let bsn = bsn.expose();
        // A prime stride spreads consecutive patients over the directory.
        let p = &providers[(i as usize * 7919) % providers.len()];
        let (ura, kind) = (p.ura.as_str(), p.organisation_type.as_str());
        let birth = format!(
            "{}-{:02}-{:02}",
            1930 + i % 90,
            1 + (i / 90) % 12,
            1 + (i / 1080) % 28
        );
        let source = format!("2.16.840.1.113883.2.4.6.6.{ura}.1");
        let gateway = "2.16.840.1.113883.2.4.6.6.1";
        let endpoint = format!("https://gateway.example/otv/notify/{ura}");
        let payload = "application/fhir+json";
        if *csv {
            writeln!(
                out,
                "{bsn},{birth},{ura},{kind},{connector},{source},{gateway},{endpoint},{payload}"
            )?;
        } else {
            writeln!(
                out,
                concat!(
                    r#"{{"resourceType":"Subscription","extension":["#,
                    r#"{{"url":"http://fhir.nl/StructureDefinition/Patient.birthDate","valueDate":"{}"}},"#,
                    r#"{{"url":"http://fhir.nl/StructureDefinition/GatewaySystem","valueOid":"urn:oid:{}"}},"#,
                    r#"{{"url":"http://fhir.nl/StructureDefinition/SourceSystem","valueOid":"urn:oid:{}"}}],"#,
                    r#""status":"requested","reason":"OTV","#,
                    r#""criteria":"Consent?_query=otv&patientid={}&providerid={}&providertype={}","#,
                    r#""channel":{{"type":"rest-hook","endpoint":"{}","payload":"{}"}}}}"#
                ),
                birth, gateway, source, bsn, ura, kind, endpoint, payload
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a command on the configured database.
pub async fn run_with_store(
    cmd: ImportCommand,
    settings: &Settings,
    store: &Store,
) -> anyhow::Result<ExitCode> {
    if let ImportCommand::Consents {
        file,
        connector,
        chunk,
    } = &cmd
    {
        return crate::migrate::consents(settings, store, file, connector, *chunk).await;
    }
    let ImportCommand::Subscriptions {
        file,
        connector,
        import_id,
        chunk,
    } = cmd
    else {
        return run_standalone(&cmd);
    };
    let acts_for = acts_for(settings, store, &connector).await?;
    let size = tokio::fs::metadata(&file)
        .await
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let import_id = match import_id {
        Some(id) => ImportId::parse(&id).context("--import-id")?,
        None => default_import_id(&file, size)?,
    };
    let input = tokio::fs::File::open(&file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let stream = Box::pin(futures_util::stream::unfold(input, |mut f| async move {
        let mut buf = vec![0; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    }));
    let may_act_for = |ura: &Ura| acts_for.contains(ura);
    let options = ImportOptions {
        connector_id: &connector,
        may_act_for: &may_act_for,
        import_id: &import_id,
        chunk_lines: chunk,
    };
    eprintln!(
        "importing {} ({size} bytes) for connector `{connector}` as import `{import_id}`",
        file.display()
    );
    let resumed_from = store
        .import_progress(&connector, import_id.as_str())
        .await?
        .map_or(0, |p| p.committed_lines);
    if resumed_from > 0 {
        eprintln!("resuming: lines 1 to {resumed_from} were committed before");
    }
    let start = Instant::now();
    let mut last_report = Instant::now();
    let mut reported = false;
    let mut on_commit = |p: &otv_store::ImportProgress| {
        // The first commit, then every two seconds, and the last.
        if !reported || last_report.elapsed().as_secs() >= 2 || p.complete {
            reported = true;
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "committed through line {}: {} created, {} already registered, {} refused ({:.0} lines/s)",
                p.committed_lines,
                p.created,
                p.already_registered,
                p.refused,
                (p.committed_lines - resumed_from) as f64 / secs
            );
        }
    };
    let outcome = tokio::select! {
        outcome = run(store, &options, stream, &mut on_commit) => outcome,
        _ = tokio::signal::ctrl_c() => {
            let committed = store
                .import_progress(&connector, import_id.as_str())
                .await?
                .map_or(0, |p| p.committed_lines);
            eprintln!(
                "interrupted: lines 1 to {committed} are committed; run the same command again to resume"
            );
            return Ok(ExitCode::from(130));
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let who = ImportActor {
        actor: "operator".into(),
        channel: "cli",
        request_id: None,
    };
    let audited = match &outcome {
        Ok(report) => ImportOutcome::Done(report),
        Err(e) => ImportOutcome::Stopped(e),
    };
    audit(
        store,
        who,
        Some(&connector),
        Some(import_id.as_str()),
        audited,
    )
    .await;
    let report = outcome?;
    let processed = report.lines_read - report.skipped;
    let summary = serde_json::json!({
        "backend": store.kind(),
        "import_id": report.import_id,
        "connector": report.connector,
        "lines_read": report.lines_read,
        "skipped": report.skipped,
        "created": report.created,
        "already_registered": report.already_registered,
        "refused": report.refused,
        "refusals": report.refusals,
        "refusals_truncated": report.refusals_truncated,
        "committed_through_line": report.committed_through_line,
        "complete": report.complete,
        "seconds": (secs * 10.0).round() / 10.0,
        "lines_per_second": (processed as f64 / secs).round(),
    });
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// The URAs `connector` may act for: from the configuration, else as stored (e.g. loaded by
/// `otv demo` or `otv generate`), else a demo connector in demo mode.
pub(crate) async fn acts_for(
    settings: &Settings,
    store: &Store,
    id: &str,
) -> anyhow::Result<HashSet<Ura>> {
    if let Some(c) = settings.connectors.iter().find(|c| c.id == id) {
        return Ok(c.acts_for.iter().cloned().collect());
    }
    if let Some(c) = store.connector(id).await? {
        return Ok(c.acts_for.into_iter().collect());
    }
    if settings.demo
        && let Some(c) = demo::connectors()?.into_iter().find(|c| c.id == id)
    {
        return Ok(c.acts_for.into_iter().collect());
    }
    bail!(
        "unknown connector `{id}`: configure it (`[[connector]]`) or load it into the database first"
    )
}

/// An import id for a file: its canonical path and size, hashed, so that the same command on
/// the same file resumes and another file (or the file grown or replaced) starts afresh.
fn default_import_id(file: &Path, size: u64) -> anyhow::Result<ImportId> {
    let path =
        std::fs::canonicalize(file).with_context(|| format!("reading {}", file.display()))?;
    let mut material = path.as_os_str().as_encoded_bytes().to_vec();
    material.extend_from_slice(&size.to_be_bytes());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &material);
    let id = format!("file-{}", hex::encode(&digest.as_ref()[..8]));
    Ok(ImportId::parse(&id)?)
}
