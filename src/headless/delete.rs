//! `delete --plan FILE`: dry run by default. Validates the plan file, reloads every source,
//! re-checks each manifest against fresh data, asks for confirmation (`--apply` on a
//! terminal, or `--force`), executes through `ops::execute`, and prints results JSON.

use super::{CannotRun, load_dataset, registry_client, settings_fingerprint, write_output};
use crate::model::{RevId, TagId};
use crate::ops::audit::AuditLog;
use crate::ops::execute::{ItemOutcome, Outcome, execute, preflight};
use crate::plan::SpaceEngine;
use crate::plan::recheck::{Verdict, recheck, validate};
use crate::report::json::Report;
use crate::settings::Settings;
use anyhow::anyhow;
use serde::Serialize;
use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args, Default)]
pub struct DeleteArgs {
    /// The plan: a `report` JSON or a file written from the TUI (`w`).
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Really delete (default is a dry run that re-checks and prints what would happen).
    #[arg(long)]
    pub apply: bool,
    /// Do not ask for confirmation (required with --apply when stdin is not a terminal).
    #[arg(long)]
    pub force: bool,
    /// Also delete the Mongo records of images whose deletion succeeded (backed up first).
    #[arg(long)]
    pub mongo_cleanup: bool,
    /// Where --mongo-cleanup backs up every document before deleting it (JSON Lines; default:
    /// <analysis.output_dir>/mongo-backup-<time>.jsonl). `registry-cleaner restore` reads it.
    #[arg(long, value_name = "FILE")]
    pub backup: Option<PathBuf>,
    /// Refuse plans with more than N tags.
    #[arg(long, value_name = "N")]
    pub max_delete: Option<usize>,
    /// Refuse plans that reclaim more than B bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
    /// Where to write the results JSON (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Audit log (JSON Lines; default: <analysis.output_dir>/audit.jsonl).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct Results {
    pub schema_version: u32,
    pub kind: &'static str,
    pub generated_at: String,
    pub registry: String,
    pub dry_run: bool,
    pub plan_checksum: String,
    pub summary: Summary,
    pub items: Vec<ItemOutcome>,
    /// Bytes the registry's GC will free for what this run deleted (or would delete).
    pub reclaimable_bytes_after_gc: u64,
    pub audit_log: Option<String>,
    /// What --mongo-cleanup did (or would do) to Domino's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mongo: Option<crate::ops::mongo_cleanup::MongoSummary>,
    pub next_step: String,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub deleted: usize,
    pub already_deleted: usize,
    pub would_delete: usize,
    pub skipped: usize,
    pub failed: usize,
}

pub fn read_plan(path: &Path) -> anyhow::Result<Report> {
    let bytes = std::fs::read(path).map_err(|e| CannotRun(format!("{}: cannot read plan: {e}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|e| anyhow!(CannotRun(format!("{}: not a valid plan: {e}", path.display()))))
}

pub async fn run(settings: &Settings, args: &DeleteArgs, quiet: bool, now: i64) -> anyhow::Result<bool> {
    let report = read_plan(&args.plan)?;
    let fingerprint = settings_fingerprint(settings);
    validate(&report, &settings.registry.host, Some(&fingerprint), now)
        .map_err(|e| CannotRun(format!("{}: {e}", args.plan.display())))?;
    let plan = &report.plan;
    if let Some(max) = args.max_delete
        && plan.tags.len() > max
    {
        return Err(CannotRun(format!(
            "the plan deletes {} tags, more than --max-delete {max}",
            plan.tags.len()
        ))
        .into());
    }
    if let Some(max) = args.max_bytes
        && plan.reclaimable_bytes > max
    {
        return Err(CannotRun(format!(
            "the plan reclaims {} bytes, more than --max-bytes {max}",
            plan.reclaimable_bytes
        ))
        .into());
    }
    if args.apply && !args.force && !std::io::stdin().is_terminal() {
        return Err(CannotRun(
            "--apply needs a confirmation, but stdin is not a terminal; add --force to run unattended".into(),
        )
        .into());
    }
    if args.mongo_cleanup && settings.without.contains(&crate::dataset::SourceKind::Mongo) {
        return Err(CannotRun("--mongo-cleanup needs the MongoDB source; drop --without mongo".into()).into());
    }
    let client = registry_client(settings)?;
    if args.apply {
        let repo = plan.manifests.first().map_or_else(
            || format!("{}/environment", settings.registry.repository),
            |m| m.repository.clone(),
        );
        preflight(&client, &repo)
            .await
            .map_err(|e| CannotRun(format!("pre-flight: {e}")))?;
    }
    // Fresh data: the whole registry (siblings, sizes) and every protection source.
    let fresh = load_dataset(settings, None, quiet, true, now).await?;
    // Fail closed: a protection source that is down (not disabled on purpose) stops the run.
    for (kind, status) in &fresh.sources {
        if let crate::dataset::SourceStatus::Failed(e) = status {
            return Err(CannotRun(format!(
                "the {} source is unavailable ({e}); fix it or pass --without {} on purpose",
                kind.as_str(),
                kind.as_str()
            ))
            .into());
        }
    }
    let protected = protections(&fresh);
    let verdicts = recheck(&plan.manifests, &fresh.inventory, &protected);
    let parents = crate::plan::recheck::planned_parents(&plan.manifests, &fresh.inventory);
    let go = verdicts.iter().filter(|v| **v == Verdict::Delete).count();
    if args.apply && !args.force && !confirm(go, plan.tags.len(), plan.reclaimable_bytes)? {
        return Err(CannotRun("not confirmed; nothing was deleted".into()).into());
    }
    let audit = if args.apply {
        let path = args
            .audit_log
            .clone()
            .unwrap_or_else(|| settings.output_dir.join("audit.jsonl"));
        Some(AuditLog::open(&path).map_err(|e| CannotRun(format!("{}: cannot open audit log: {e}", path.display())))?)
    } else {
        None
    };
    if let Some(a) = &audit {
        a.record("plan-start", &args.plan.display().to_string(), "started", None)?;
    }
    let show = !quiet && std::io::stderr().is_terminal();
    let on_item = move |i: &ItemOutcome| {
        if show {
            eprintln!(
                "{:>15} {}@{}",
                format!("{:?}", i.outcome).split_whitespace().next().unwrap_or(""),
                i.repository,
                i.digest
            );
        }
    };
    let items = execute(
        &client,
        &plan.manifests,
        &verdicts,
        &parents,
        args.apply,
        settings.registry.concurrency,
        audit.as_ref(),
        &on_item,
    )
    .await
    .map_err(|e| anyhow!(e))?;
    let summary = summarize(&items);
    // Mongo only after the registry, only for what is gone (children before parents, backed up).
    let mongo = if args.mongo_cleanup {
        let backup = (args.backup.clone())
            .unwrap_or_else(|| crate::ops::mongo_cleanup::default_backup_path(&settings.output_dir, now));
        let ms = crate::ops::load::mongo_settings(settings).await;
        let r =
            crate::ops::mongo_cleanup::after_delete(&ms, &fresh.inventory, &items, args.apply, &backup, audit.as_ref());
        Some(r.await.unwrap_or_else(|e| crate::ops::mongo_cleanup::MongoSummary {
            dry_run: !args.apply,
            failed: 1,
            error: Some(format!(
                "mongo cleanup did not run: {e}; the registry part is done, re-run the plan to finish"
            )),
            ..Default::default()
        }))
    } else {
        None
    };
    if let Some(a) = &audit {
        a.record(
            "plan-end",
            &args.plan.display().to_string(),
            &format!("{summary:?}"),
            None,
        )?;
    }
    let results = Results {
        schema_version: 1,
        kind: "registry-cleaner-results",
        generated_at: crate::report::rfc3339(now),
        registry: settings.registry.host.clone(),
        dry_run: !args.apply,
        plan_checksum: plan.checksum.clone(),
        reclaimable_bytes_after_gc: reclaimable_after(&fresh.inventory, &items),
        items,
        audit_log: audit.as_ref().map(|a| a.path().display().to_string()),
        mongo,
        next_step: if args.apply {
            "space returns after the registry's garbage collection: run `registry-cleaner gc` (in-cluster registry) or let the managed registry collect".into()
        } else {
            "dry run: nothing was deleted; re-run with --apply to delete".into()
        },
        summary,
    };
    let failed = results.summary.failed > 0 || results.mongo.as_ref().is_some_and(|m| m.failed > 0);
    write_output(args.output.as_deref(), &serde_json::to_vec_pretty(&results)?)?;
    Ok(!failed)
}

/// Every protection in force on the fresh data, by tag.
pub fn protections(ds: &crate::dataset::Dataset) -> HashMap<TagId, Vec<String>> {
    ds.protections.iter().map(|(t, r)| (*t, r.clone())).collect()
}

pub fn summarize(items: &[ItemOutcome]) -> Summary {
    let mut s = Summary::default();
    for i in items {
        match i.outcome {
            Outcome::Deleted => s.deleted += 1,
            Outcome::AlreadyDeleted => s.already_deleted += 1,
            Outcome::WouldDelete => s.would_delete += 1,
            Outcome::Skipped { .. } => s.skipped += 1,
            Outcome::Failed { .. } => s.failed += 1,
        }
    }
    s
}

/// What GC frees for the manifests this run removed (or would remove), from the fresh scan.
fn reclaimable_after(inv: &crate::model::Inventory, items: &[ItemOutcome]) -> u64 {
    let mut engine = SpaceEngine::new(inv);
    let by_key: HashMap<(&str, &str), RevId> = inv
        .rev_ids()
        .map(|r| {
            let rev = inv.revision(r);
            ((inv.repo(rev.repo).name.as_str(), inv.digests.name(rev.manifest)), r)
        })
        .collect();
    // A manifest this run did not remove (an index child whose DELETE failed or was skipped)
    // stays linked: GC still marks its blobs.
    for i in items {
        if !matches!(i.outcome, Outcome::Deleted | Outcome::WouldDelete)
            && let Some(r) = by_key.get(&(i.repository.as_str(), i.digest.as_str()))
        {
            engine.keep(*r);
        }
    }
    for i in items {
        if matches!(i.outcome, Outcome::Deleted | Outcome::WouldDelete)
            && let Some(r) = by_key.get(&(i.repository.as_str(), i.digest.as_str()))
            && !inv.revision(*r).tags.is_empty()
        {
            engine.set_selected(*r, true);
        }
    }
    engine.reclaimable()
}

fn confirm(manifests: usize, tags: usize, bytes: u64) -> anyhow::Result<bool> {
    let mut err = std::io::stderr();
    writeln!(
        err,
        "About to delete {manifests} manifests ({tags} tags in the plan), about {bytes} bytes reclaimable after GC."
    )?;
    write!(err, "Type the number of manifests ({manifests}) to confirm: ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == manifests.to_string())
}
