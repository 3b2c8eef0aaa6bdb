//! `delete --plan FILE`: reads the plan file and hands it to the one delete run
//! (`ops::delete_run`), with an observer that prints progress on stderr and asks for the
//! confirmation on the terminal; prints the results JSON.

use super::{CannotRun, write_output};
use crate::cli::DeleteArgs;
use crate::ops::delete_run::{self, Observer, Request};
use crate::ops::execute::ItemOutcome;
use crate::report::json::Report;
use crate::settings::Settings;
use anyhow::anyhow;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;

pub use crate::ops::delete_run::{Results, Summary, protections, summarize};

pub fn read_plan(path: &Path) -> anyhow::Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| CannotRun(format!("{}: cannot read plan: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow!(CannotRun(format!("{}: not a valid plan: {e}", path.display()))))
}

/// Runs `delete`; `Ok(false)` = finished with failures (exit 1).
pub async fn run(settings: &Settings, args: &DeleteArgs, quiet: bool, now: i64) -> anyhow::Result<bool> {
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
    let observer = Stderr {
        show: !quiet && std::io::stderr().is_terminal(),
        ask: args.apply && !args.force,
        mongo: args.mongo_cleanup,
    };
    let results = delete_run::run(settings, &req, &observer, now).await?;
    write_output(args.output.as_deref(), &serde_json::to_vec_pretty(&results)?)?;
    Ok(!results.failed())
}

/// Progress lines on stderr (a terminal only) and the typed confirmation.
struct Stderr {
    show: bool,
    ask: bool,
    mongo: bool,
}

impl Observer for Stderr {
    fn step(&self, text: &str) {
        if self.show {
            eprintln!("{text}");
        }
    }

    fn confirm(&self, deletes: usize, tags: usize, bytes: u64) -> bool {
        !self.ask || confirm(deletes, tags, bytes, self.mongo).unwrap_or(false)
    }

    fn item(&self, _index: usize, i: &ItemOutcome) {
        if self.show {
            eprintln!(
                "{:>15} {}@{}",
                format!("{:?}", i.outcome).split_whitespace().next().unwrap_or(""),
                i.repository,
                i.digest
            );
        }
    }
}

fn confirm(manifests: usize, tags: usize, bytes: u64, mongo: bool) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    let then = if mongo {
        ", then the Mongo records of what is gone (backed up first)"
    } else {
        ""
    };
    writeln!(
        err,
        "About to delete {manifests} manifests ({tags} tags in the plan){then}, about {bytes} bytes reclaimable after GC."
    )?;
    write!(err, "Type the number of manifests ({manifests}) to confirm: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == manifests.to_string())
}
