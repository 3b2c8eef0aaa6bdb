//! `delete --plan FILE`: reads the plan file and hands it to the one delete run
//! (`ops::delete_run`), with an observer that prints progress on stderr and asks for the
//! confirmation on the terminal; prints the results JSON.

use super::{CannotRun, write_output};
use crate::cli::DeleteArgs;
use crate::ops::delete_run::{self, Observer, Request};
use crate::ops::execute::ItemOutcome;
use crate::ops::progress::Ticker;
use crate::report::json::Report;
use crate::settings::Settings;
use anyhow::anyhow;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use crate::ops::delete_run::{Results, Summary, protections, summarize};

pub fn read_plan(path: &Path) -> anyhow::Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| CannotRun(format!("{}: cannot read plan: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow!(CannotRun(format!("{}: not a valid plan: {e}", path.display()))))
}

/// Runs `delete` and returns its exit code: 0 done, 1 something failed, 3 (`--apply`) nothing
/// planned was deleted although nothing failed (everything skipped: a CronJob should notice).
/// With `--metrics-file`, the metrics are written whatever the result (a run that could not
/// run counts as failed).
pub async fn run(settings: &Settings, args: &DeleteArgs, quiet: bool, now: i64) -> anyhow::Result<u8> {
    use crate::ops::metrics;
    let result = run_inner(settings, args, quiet, now).await;
    if let Some(path) = &args.metrics_file {
        let before = metrics::read_previous(path);
        let end = super::unix_now();
        let m = match &result {
            Ok(results) => metrics::delete_metrics(results, end, &before),
            Err(_) => metrics::failed_run_metrics("delete", end, &before),
        };
        metrics::write(path, &m).map_err(|e| anyhow!("writing metrics {}: {e}", path.display()))?;
    }
    result.map(|r| exit_code(&r))
}

fn exit_code(r: &Results) -> u8 {
    let s = &r.summary;
    if r.failed() {
        crate::exit::EXIT_FAILURES
    } else if !r.dry_run
        && (!r.items.is_empty() || r.references.is_some())
        && s.deleted + s.untagged + s.already_deleted + references_deleted(r) == 0
    {
        crate::exit::EXIT_NOTHING_DELETED
    } else {
        0
    }
}

/// Orphaned references the run deleted (or found already deleted).
fn references_deleted(r: &Results) -> usize {
    r.references
        .as_ref()
        .map_or(0, |m| m.deleted.values().sum::<usize>() + m.already_deleted)
}

async fn run_inner(settings: &Settings, args: &DeleteArgs, quiet: bool, now: i64) -> anyhow::Result<Results> {
    let report = read_plan(&args.plan)?;
    let fingerprint = crate::ops::connect::settings_fingerprint(settings);
    let plan = report
        .validated_plan(&settings.registry.host, Some(&fingerprint), now)
        .map_err(|e| CannotRun(format!("{}: {e}", args.plan.display())))?;
    if args.apply && !args.force && !std::io::stdin().is_terminal() {
        return Err(CannotRun(
            "--apply needs a confirmation, but stdin is not a terminal; add --force to run unattended".into(),
        )
        .into());
    }
    let req = Request {
        plan,
        label: args.plan.display().to_string(),
        apply: args.apply,
        mongo_cleanup: args.mongo_cleanup,
        backup: args.backup.clone(),
        audit_log: args.audit_log.clone(),
        max_delete: args.max_delete,
        max_bytes: args.max_bytes,
        cancel: None,
    };
    let terminal = std::io::stderr().is_terminal();
    let what = if args.apply { "delete" } else { "delete (dry run)" };
    let observer = Stderr {
        show: !quiet && terminal,
        ask: args.apply && !args.force,
        mongo: args.mongo_cleanup,
        ticker: (!quiet && !terminal).then(|| Ticker::new(what)),
        total: req.plan.manifests.len(),
        done: AtomicUsize::new(0),
        bar: std::sync::OnceLock::new(),
        what,
    };
    let results = delete_run::run(settings, &req, &observer, now).await;
    if let Some(b) = observer.bar.get() {
        b.finish();
    }
    let results = results?;
    if let Some(t) = &observer.ticker {
        t.finish(observer.done.load(Ordering::Relaxed), observer.total);
    }
    write_output(args.output.as_deref(), &serde_json::to_vec_pretty(&results)?)?;
    Ok(results)
}

/// Progress on stderr: a line per step and item on a terminal; without one, a logged progress
/// line every 10 s (`ops::progress`). Also the typed confirmation.
struct Stderr {
    show: bool,
    ask: bool,
    mongo: bool,
    ticker: Option<Ticker>,
    /// Planned manifests, and how many have an outcome so far.
    total: usize,
    done: AtomicUsize,
    /// On a terminal: the live bar, drawn from the first outcome on (after any confirmation).
    bar: std::sync::OnceLock<indicatif::ProgressBar>,
    what: &'static str,
}

impl Stderr {
    /// A line on a terminal's stderr, above the bar once it is drawn.
    fn say(&self, text: &str) {
        match self.bar.get() {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Stderr {
    fn step(&self, text: &str) {
        if self.show {
            self.say(text);
        }
        if self.ticker.is_some() {
            tracing::info!(kind = "step", "{text}");
        }
    }

    fn asks(&self) -> bool {
        self.ask
    }

    fn confirm(&self, deletes: usize, tags: usize, bytes: u64, records: usize) -> bool {
        !self.ask || confirm(deletes, tags, bytes, self.mongo, records).unwrap_or(false)
    }

    fn item(&self, _index: usize, i: &ItemOutcome) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(t) = &self.ticker {
            t.update(done, self.total);
        }
        if self.show {
            let b = self
                .bar
                .get_or_init(|| crate::ops::progress::bar(self.what, self.total));
            b.println(format!(
                "{:>15} {}@{}",
                format!("{:?}", i.outcome).split_whitespace().next().unwrap_or(""),
                i.repository,
                i.digest
            ));
            b.set_position(done as u64);
        }
    }
}

fn confirm(manifests: usize, tags: usize, bytes: u64, mongo: bool, records: usize) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    let then = if mongo {
        ", then the Mongo records of what is gone (backed up first)"
    } else {
        ""
    };
    let orphans = if records > 0 {
        format!(" and up to {records} orphaned Mongo references (backed up first)")
    } else {
        String::new()
    };
    writeln!(
        err,
        "About to delete {manifests} manifests ({tags} tags in the plan){orphans}{then}, about {bytes} bytes reclaimable after GC."
    )?;
    // The number typed covers everything that can go, records included.
    let n = manifests + records;
    write!(err, "Type the number of manifests and records ({n}) to confirm: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == n.to_string())
}
