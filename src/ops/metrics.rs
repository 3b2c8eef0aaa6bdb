//! `--metrics-file`: Prometheus text exposition format for node-exporter's textfile collector,
//! written atomically (temp file + rename, so the collector never reads half a file). Names
//! follow the original tool where it had one (`registry_cleaner_tags_pending_deletion`,
//! `registry_cleaner_space_recoverable_bytes`, `registry_cleaner_last_report_timestamp`,
//! `registry_cleaner_jobs_total`). The file holds counts and bytes only, no tag names.
//!
//! A run that fails keeps the previous `last_success_timestamp_seconds` (read back from the
//! file it replaces) and adds one to `jobs_total{status="failed"}`, so an alert on a stale
//! success time fires.

use crate::ops::delete_run::Results;
use crate::ops::execute::Outcome;
use crate::report::json::Report;
use std::fmt::Write as _;
use std::path::Path;

pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Metric {
    fn gauge(name: &'static str, help: &'static str) -> Metric {
        Metric {
            name,
            help,
            kind: "gauge",
            samples: vec![],
        }
    }
    fn counter(name: &'static str, help: &'static str) -> Metric {
        Metric {
            kind: "counter",
            ..Metric::gauge(name, help)
        }
    }
    fn with(mut self, labels: &[(&'static str, &str)], value: f64) -> Metric {
        self.samples
            .push((labels.iter().map(|(k, v)| (*k, v.to_string())).collect(), value));
        self
    }
}

/// The exposition text: `# HELP`, `# TYPE`, then the samples of each metric.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for m in metrics {
        let _ = writeln!(out, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(out, "# TYPE {} {}", m.name, m.kind);
        for (labels, value) in &m.samples {
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "{}{labels} {}", m.name, number(*value));
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The value of one sample in an earlier metrics file (`name{labels}` exactly as rendered).
pub fn previous(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// What the run's outcome adds: last run time and result, last success time (carried over on
/// failure), and the jobs counter (carried over and incremented).
fn run_metrics(command: &'static str, ok: bool, now: i64, before: &str) -> Vec<Metric> {
    let series = |name: &str, labels: &str| format!("{name}{{{labels}}}");
    let success_series = series(
        "registry_cleaner_last_success_timestamp_seconds",
        &format!("command=\"{command}\""),
    );
    let last_success = if ok {
        Some(now as f64)
    } else {
        previous(before, &success_series)
    };
    let status = if ok { "succeeded" } else { "failed" };
    let mut jobs = Metric::counter(
        "registry_cleaner_jobs_total",
        "Runs that wrote this file, by result (carried over from the file they replace).",
    );
    for s in ["succeeded", "failed"] {
        let key = series(
            "registry_cleaner_jobs_total",
            &format!("operation=\"{command}\",status=\"{s}\""),
        );
        let n = previous(before, &key).unwrap_or(0.0) + if s == status { 1.0 } else { 0.0 };
        jobs = jobs.with(&[("operation", command), ("status", s)], n);
    }
    let mut out = vec![
        Metric::gauge(
            "registry_cleaner_last_run_timestamp_seconds",
            "When the last run ended (Unix seconds).",
        )
        .with(&[("command", command)], now as f64),
        Metric::gauge(
            "registry_cleaner_last_run_success",
            "1 if the last run finished without failures, else 0.",
        )
        .with(&[("command", command)], if ok { 1.0 } else { 0.0 }),
    ];
    if let Some(t) = last_success {
        out.push(
            Metric::gauge(
                "registry_cleaner_last_success_timestamp_seconds",
                "When a run last finished without failures (Unix seconds).",
            )
            .with(&[("command", command)], t),
        );
    }
    out.push(jobs);
    out
}

/// Metrics of a `report` run: per category the candidate tags and untagged manifests,
/// reclaimable bytes, protected
/// tags and availability; the plan's totals; the scan duration.
pub fn report_metrics(report: &Report, scan_secs: Option<f64>, now: i64, before: &str) -> Vec<Metric> {
    let mut pending = Metric::gauge(
        "registry_cleaner_tags_pending_deletion",
        "Candidate tags per category (what delete would remove from that category).",
    );
    let mut bytes = Metric::gauge(
        "registry_cleaner_space_recoverable_bytes",
        "Bytes the registry's GC frees if the category's candidates are deleted.",
    );
    let mut protected = Metric::gauge(
        "registry_cleaner_protected_tags",
        "Tags of the category's kind kept by a protection.",
    );
    let mut manifests = Metric::gauge(
        "registry_cleaner_manifests_pending_deletion",
        "Candidate manifests with no tag per category (untagged-manifests; storage inventories only).",
    );
    let mut available = Metric::gauge(
        "registry_cleaner_category_available",
        "1 if the category could be computed, 0 if a source it needs failed (fail closed).",
    );
    for c in &report.categories {
        let l = [("category", c.id.as_str())];
        // Tags only: orphaned references' candidates are Mongo records, not tags.
        let tags = c.candidates.iter().filter_map(|x| x.as_tag()).count();
        pending = pending.with(&l, tags as f64);
        let untagged = c
            .candidates
            .iter()
            .filter(|x| matches!(x, crate::report::json::CandidateEntry::Manifest(_)))
            .count();
        manifests = manifests.with(&l, untagged as f64);
        bytes = bytes.with(&l, c.reclaimable_bytes as f64);
        protected = protected.with(&l, c.protected.len() as f64);
        available = available.with(&l, if c.status == "unavailable" { 0.0 } else { 1.0 });
    }
    let mut out = vec![
        pending,
        manifests,
        bytes,
        protected,
        available,
        Metric::gauge(
            "registry_cleaner_plan_tags",
            "Tags in the report's plan (all categories, siblings included).",
        )
        .with(&[], report.plan.tags.len() as f64),
        Metric::gauge(
            "registry_cleaner_plan_reclaimable_bytes",
            "Bytes the registry's GC frees if the whole plan is deleted (shared layers counted once).",
        )
        .with(&[], report.plan.reclaimable_bytes as f64),
        Metric::gauge(
            "registry_cleaner_last_report_timestamp",
            "When the report was generated (Unix seconds).",
        )
        .with(&[("operation", "report")], now as f64),
    ];
    if let Some(s) = scan_secs {
        out.push(
            Metric::gauge(
                "registry_cleaner_scan_duration_seconds",
                "Wall time of the registry scan.",
            )
            .with(&[], s),
        );
    }
    out.extend(run_metrics("report", true, now, before));
    out
}

/// Metrics of a `delete` run: manifests by outcome, dry run or not, bytes GC will free.
pub fn delete_metrics(results: &Results, now: i64, before: &str) -> Vec<Metric> {
    let mut by = Metric::gauge(
        "registry_cleaner_delete_manifests",
        "Planned manifests of the last delete run, by outcome.",
    );
    for name in ["deleted", "already_deleted", "would_delete", "skipped", "failed"] {
        let n = results
            .items
            .iter()
            .filter(|i| outcome_name(&i.outcome) == name)
            .count();
        by = by.with(&[("outcome", name)], n as f64);
    }
    let mut out = vec![
        by,
        Metric::gauge(
            "registry_cleaner_delete_dry_run",
            "1 if the last delete run was a dry run.",
        )
        .with(&[], if results.dry_run { 1.0 } else { 0.0 }),
        Metric::gauge(
            "registry_cleaner_space_reclaimable_after_gc_bytes",
            "Bytes the registry's GC will free for what the last delete run deleted (or would delete).",
        )
        .with(&[], results.reclaimable_bytes_after_gc as f64),
    ];
    out.extend(run_metrics("delete", !results.failed(), now, before));
    out
}

/// A run that could not run at all (exit 2) or stopped with an error.
pub fn failed_run_metrics(command: &'static str, now: i64, before: &str) -> Vec<Metric> {
    run_metrics(command, false, now, before)
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Deleted => "deleted",
        Outcome::Untagged => "untagged",
        Outcome::AlreadyDeleted => "already_deleted",
        Outcome::WouldDelete => "would_delete",
        Outcome::Skipped { .. } => "skipped",
        Outcome::Failed { .. } => "failed",
    }
}

/// The file's current text (empty when there is none yet), for the carried-over values.
pub fn read_previous(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Writes atomically; readable by the collector (0644: counts and bytes only).
pub fn write(path: &Path, metrics: &[Metric]) -> std::io::Result<()> {
    crate::report::json::write_atomic(path, render(metrics).as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_escapes_and_carries_the_last_success_over_a_failure() {
        let ok = render(&run_metrics("delete", true, 1000, ""));
        assert!(ok.contains("registry_cleaner_last_success_timestamp_seconds{command=\"delete\"} 1000\n"));
        assert!(ok.contains("registry_cleaner_jobs_total{operation=\"delete\",status=\"succeeded\"} 1\n"));
        let failed = render(&run_metrics("delete", false, 2000, &ok));
        assert!(failed.contains("registry_cleaner_last_success_timestamp_seconds{command=\"delete\"} 1000\n"));
        assert!(failed.contains("registry_cleaner_last_run_success{command=\"delete\"} 0\n"));
        assert!(failed.contains("registry_cleaner_jobs_total{operation=\"delete\",status=\"succeeded\"} 1\n"));
        assert!(failed.contains("registry_cleaner_jobs_total{operation=\"delete\",status=\"failed\"} 1\n"));
        let first_failure = render(&run_metrics("delete", false, 2000, ""));
        assert!(!first_failure.contains("last_success"), "{first_failure}");
        let m = Metric::gauge("x", "h").with(&[("l", "a\"b\\c\nd")], 1.5);
        assert_eq!(
            render(&[m]),
            "# HELP x h\n# TYPE x gauge\nx{l=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }
}
