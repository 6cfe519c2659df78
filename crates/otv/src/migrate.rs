//! `otv import consents`: migration (PRODUCT.md §9) of the consents a provider kept locally,
//! from an NDJSON file of FHIR `Consent` resources straight into the configured database,
//! through the same migrator as `POST /v1/migration/consents` (`otv_server::migration`).
//! Idempotent: interrupted, the same command simply runs again (answers already migrated are
//! counted as already answered).
//!
//! `otv import consent-sample` writes synthetic Consent lines for tests and the benchmark.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use otv_core::{Catalogue, Ura};
use otv_server::migration::{MigrationReport, Migrator, audit_run, run_ndjson};
use otv_store::{Store, generate};
use tokio::io::AsyncReadExt;

use crate::config::Settings;

/// Migrates the Consents in `file` for `connector`.
pub async fn consents(
    settings: &Settings,
    store: &Store,
    file: &Path,
    connector: &str,
    chunk: usize,
) -> anyhow::Result<ExitCode> {
    let acts_for = crate::import::acts_for(settings, store, connector).await?;
    let size = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let input = tokio::fs::File::open(file)
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
    let m = Migrator {
        store,
        catalogue: &settings.catalogue,
        connector_id: connector,
        may_act_for: &may_act_for,
        now: chrono::Utc::now(),
        via: "cli",
        request_id: None,
    };
    eprintln!(
        "migrating consents from {} ({size} bytes) for connector `{connector}`",
        file.display()
    );
    let start = Instant::now();
    let mut last = Instant::now();
    let mut progress = |r: &MigrationReport| {
        if last.elapsed().as_secs() >= 2 {
            last = Instant::now();
            eprintln!(
                "line {}: {} answers migrated, {} already answered, {} refused ({:.0} consents/s)",
                r.lines_read,
                r.answers_migrated,
                r.keys_already_answered,
                r.refused,
                r.consents as f64 / start.elapsed().as_secs_f64()
            );
        }
    };
    let outcome = tokio::select! {
        outcome = run_ndjson(&m, stream, chunk, &mut progress) => outcome,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: the chunks committed so far stay; run the same command again to go on");
            return Ok(ExitCode::from(130));
        }
    };
    let secs = start.elapsed().as_secs_f64();
    match &outcome {
        Ok(r) => audit_run(store, &m, Ok(r)).await,
        Err(e) => audit_run(store, &m, Err(&e.to_string())).await,
    }
    let report = outcome?;
    let mut summary = serde_json::to_value(&report)?;
    summary["backend"] = store.kind().into();
    summary["seconds"] = ((secs * 10.0).round() / 10.0).into();
    summary["consents_per_second"] = (report.consents as f64 / secs).round().into();
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// Writes `lines` synthetic Consent lines to stdout: citizen `i` (a valid synthetic BSN), a
/// holder from the generated directory (Patient and Organization contained), yes or no for one
/// to three consulting categories of the default catalogue. Deterministic.
pub fn sample(lines: u64) -> anyhow::Result<ExitCode> {
    let catalogue = Catalogue::default_catalogue();
    let providers: Vec<_> = generate::providers()
        .into_iter()
        .filter(|p| catalogue.holder_category_of(&p.organisation_type).is_some())
        .collect();
    let consulters: Vec<_> = catalogue
        .consulting_categories()
        .iter()
        .map(|c| c.code.to_string())
        .collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    for i in 0..lines {
        let bsn = generate::bsn(i);
        // A prime stride spreads consecutive patients over the directory.
        let p = &providers[(i as usize * 7919) % providers.len()];
        let holder = catalogue
            .holder_category_of(&p.organisation_type)
            .expect("filtered above");
        let first = (i as usize * 31) % consulters.len();
        let count = 1 + (i as usize % 3);
        let extensions: Vec<String> = (0..count)
            .map(|k| {
                format!(
                    concat!(
                        r#"{{"url":"http://fhir.nl/StructureDefinition/OTV-ProviderCategory","valueCodeableConcept":"#,
                        r#"{{"coding":[{{"system":"http://fhir.nl/otv/CodeSystem/raadplegende-zorgaanbiedercategorie","code":"{}"}}]}}}}"#
                    ),
                    consulters[(first + k) % consulters.len()]
                )
            })
            .collect();
        let status = if i % 4 == 3 { "inactive" } else { "active" };
        writeln!(
            out,
            concat!(
                r#"{{"resourceType":"Consent","contained":["#,
                r#"{{"resourceType":"Patient","id":"p","identifier":[{{"system":"http://fhir.nl/fhir/NamingSystem/bsn","value":"{bsn}"}}]}},"#,
                r#"{{"resourceType":"Organization","id":"o","identifier":[{{"system":"http://fhir.nl/fhir/NamingSystem/ura","value":"{ura}"}}],"#,
                r#""type":[{{"coding":[{{"system":"http://nictiz.nl/fhir/NamingSystem/organization-type","code":"{kind}"}}]}}]}}],"#,
                r#""extension":[{ext}],"status":"{status}","#,
                r#""scope":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}}]}},"#,
                r#""category":[{{"coding":[{{"system":"http://fhir.nl/otv/CodeSystem/gegevenscategorie","code":"{data}"}}]}}],"#,
                r##""patient":{{"reference":"#p"}},"dateTime":"2024-11-18T10:51:16Z","##,
                r##""provision":{{"actor":[{{"role":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"CST"}}]}},"reference":{{"reference":"#o"}}}}]}}}}"##
            ),
            bsn = bsn.expose(),
            ura = p.ura,
            kind = p.organisation_type,
            ext = extensions.join(","),
            status = status,
            data = holder.data_category,
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
