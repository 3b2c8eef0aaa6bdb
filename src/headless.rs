//! Headless commands: load sources → categories → report JSON on stdout (or a file).
//! Progress and messages go to stderr; stdout carries only the JSON.

use crate::cli::{GroupByArg, ReportFormat};
use crate::dataset::SourceKind;
pub use crate::exit::{CannotRun, EXIT_CANNOT_RUN, EXIT_FAILURES};
use crate::model::{Inventory, TagId};
pub use crate::ops::connect::{
    load_dataset, progress_line, registry_client, scan_options, scan_registry, scan_registry_with, settings_fingerprint,
};
use crate::plan::CategoryId;
use crate::plan::grouping::GroupBy;
use crate::report::json::{self, PlanInput};
use crate::report::table;
use crate::settings::Settings;
use anyhow::{Context as _, anyhow};
use std::path::Path;

/// Parses `repo:tag` selections (from flags and a file) against the inventory. Errors name the
/// file and line, or the flag value.
pub fn parse_selection(inv: &Inventory, flags: &[String], file: Option<&Path>) -> anyhow::Result<Vec<TagId>> {
    let mut lines: Vec<(String, String)> = flags.iter().map(|s| (format!("--select {s:?}"), s.clone())).collect();
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CannotRun(format!("{}: cannot read selection file: {e}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            lines.push((format!("{}:{}", f.display(), i + 1), line.to_string()));
        }
    }
    let mut out = Vec::new();
    for (at, item) in lines {
        let (repo, tag) = item
            .rsplit_once(':')
            .filter(|(r, t)| !r.is_empty() && !t.is_empty() && !t.contains('/'))
            .ok_or_else(|| CannotRun(format!("{at}: {item:?} is not repository:tag")))?;
        let id = inv
            .find_tag(repo, tag)
            .ok_or_else(|| CannotRun(format!("{at}: {repo}:{tag} is not in the registry")))?;
        out.push(id);
    }
    Ok(out)
}

pub fn parse_categories(ids: &[String]) -> anyhow::Result<Vec<CategoryId>> {
    ids.iter()
        .map(|s| {
            CategoryId::parse(s).ok_or_else(|| {
                let all: Vec<&str> = CategoryId::ALL.iter().map(|c| c.as_str()).collect();
                anyhow!(CannotRun(format!(
                    "unknown category {s:?}; expected one of {}",
                    all.join(", ")
                )))
            })
        })
        .collect()
}

/// Seconds since the epoch, for metrics written when a run ends.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes the report; the exit code is 3 under `--strict` when a category is unavailable.
pub async fn report(settings: &Settings, args: &crate::cli::ReportArgs, quiet: bool, now: i64) -> anyhow::Result<u8> {
    use crate::ops::metrics;
    let result = report_inner(settings, args, quiet, now).await;
    if let Some(path) = &args.metrics_file {
        let before = metrics::read_previous(path);
        let m = match &result {
            Ok((report, scan_secs)) => metrics::report_metrics(report, *scan_secs, unix_now(), &before),
            Err(_) => metrics::failed_run_metrics("report", unix_now(), &before),
        };
        metrics::write(path, &m).with_context(|| format!("writing metrics {}", path.display()))?;
    }
    let (report, _) = result?;
    let unavailable: Vec<&str> = (report.categories.iter())
        .filter(|c| c.status == "unavailable")
        .map(|c| c.id.as_str())
        .collect();
    if args.strict && !unavailable.is_empty() {
        tracing::error!(
            "--strict: categories unavailable (a source failed): {}",
            unavailable.join(", ")
        );
        return Ok(crate::exit::EXIT_NOTHING_DELETED);
    }
    Ok(0)
}

async fn report_inner(
    settings: &Settings,
    args: &crate::cli::ReportArgs,
    quiet: bool,
    now: i64,
) -> anyhow::Result<(json::Report, Option<f64>)> {
    let only = parse_categories(&args.categories)?;
    let (ds, scan_secs) =
        crate::ops::connect::load_dataset_timed(settings, args.snapshot.as_deref(), quiet, false, now).await?;
    let input = if args.select.is_empty() && args.select_file.is_none() {
        PlanInput::Categories
    } else {
        PlanInput::Selection(parse_selection(
            &ds.inventory,
            &args.select,
            args.select_file.as_deref(),
        )?)
    };
    let without: Vec<SourceKind> = settings.without.iter().copied().collect();
    let mut report = json::build(&ds, &only, &input, &settings_fingerprint(settings), &without);
    if let Some(by) = args.group_by {
        let by = match by {
            GroupByArg::Owner => GroupBy::Owner,
            GroupByArg::Project => GroupBy::Project,
            GroupByArg::Environment => GroupBy::Environment,
        };
        report.grouping = Some(json::grouping(&ds, &only, by));
    }
    let bytes = match args.format {
        ReportFormat::Json => serde_json::to_vec_pretty(&report)?,
        ReportFormat::Table => table::table(&report).into_bytes(),
        ReportFormat::Csv => table::csv(&report).into_bytes(),
    };
    write_output_raw(args.output.as_deref(), &bytes, args.format == ReportFormat::Json)?;
    use std::io::IsTerminal as _;
    if args.format == ReportFormat::Json && !quiet && std::io::stderr().is_terminal() {
        eprint!("{}", table::summary(&report));
    }
    Ok((report, scan_secs))
}

pub async fn scan_command(settings: &Settings, output: Option<&Path>, quiet: bool, now: i64) -> anyhow::Result<()> {
    let inv = scan_registry(settings, quiet, false).await?;
    let snap = crate::report::snapshot::to_snapshot(&inv, now);
    write_output(output, &serde_json::to_vec(&snap)?)
}

/// Writes to a file atomically, or to stdout (followed by a newline).
pub fn write_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    write_output_raw(path, bytes, true)
}

/// Writes to a file atomically, or to stdout; `newline` ends stdout's copy with a line break
/// (text formats end with their own).
fn write_output_raw(path: Option<&Path>, bytes: &[u8], newline: bool) -> anyhow::Result<()> {
    use std::io::Write;
    match path {
        Some(p) => json::write_atomic(p, bytes).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)?;
            if newline {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
    }
}

pub mod delete;
pub mod maintenance;
