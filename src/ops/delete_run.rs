//! The one delete run behind `delete --plan` and the TUI: validate → pre-flight → fresh load →
//! fail closed → re-check → confirm → execute → Mongo cleanup → audit framing → results.
//! Callers differ only in their [`Observer`] (stderr lines and a stdin prompt, or TUI messages).

use super::audit::AuditLog;
use super::connect::{load_dataset, registry_client, settings_fingerprint};
use super::execute::{ItemOutcome, Outcome, execute, preflight};
use super::last_look::{LastLook, Retry};
use super::mongo_cleanup::{self, MongoSummary};
use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::exit::CannotRun;
use crate::model::{Inventory, RevId, TagId};
use crate::plan::SpaceEngine;
use crate::plan::deletion::{self, Plan};
use crate::plan::recheck::{GoneIndexes, Verdict, membership, planned_parents, recheck_with, untagged_membership};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// What the caller asks for; the plan itself is never rebuilt, only re-checked.
#[derive(Debug, Clone)]
pub struct Request {
    pub plan: Plan,
    /// Names the plan in the audit log (its file, or "tui").
    pub label: String,
    pub apply: bool,
    /// Run the Mongo cleanup (the plan's own switch is ORed in).
    pub mongo_cleanup: bool,
    /// Where the Mongo cleanup backs up documents (default under the output directory).
    pub backup: Option<PathBuf>,
    /// The audit log (default `<output_dir>/audit.jsonl`).
    pub audit_log: Option<PathBuf>,
    /// Refuse plans with more tags / bytes than this.
    pub max_delete: Option<usize>,
    pub max_bytes: Option<u64>,
    /// Set by the caller to stop: no DELETE starts afterwards; those in flight finish and are
    /// recorded (the TUI sets it when the operator quits mid-run).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// How a run reports while it works. Every method has a no-op default.
pub trait Observer: Send + Sync {
    /// A step started ("pre-flight", "loading fresh data", ...).
    fn step(&self, _text: &str) {}
    /// The re-check on fresh data, one verdict per planned manifest (plan order).
    fn rechecked(&self, _verdicts: &[Verdict]) {}
    /// Last chance to stop, after the re-check: `deletes` manifests will be deleted, then up to
    /// `records` orphaned Mongo references (each re-checked again).
    fn confirm(&self, _deletes: usize, _tags: usize, _bytes: u64, _records: usize) -> bool {
        true
    }
    /// Whether `confirm` waits for a person (then the data is read again after it).
    fn asks(&self) -> bool {
        false
    }
    /// One planned manifest's outcome, the moment it is known (index into `plan.manifests`).
    fn item(&self, _index: usize, _item: &ItemOutcome) {}
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
    /// Why the run stopped before the end (an audit write failed); outcomes so far are above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// What the Mongo cleanup did (or would do) to Domino's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mongo: Option<MongoSummary>,
    /// What became of the orphaned Mongo references the plan lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<MongoSummary>,
    pub next_step: String,
}

impl Results {
    /// Anything failed (exit code 1).
    pub fn failed(&self) -> bool {
        let mongo_failed = |m: &Option<MongoSummary>| m.as_ref().is_some_and(|m| m.failed > 0 || m.error.is_some());
        self.summary.failed > 0 || self.stopped.is_some() || mongo_failed(&self.mongo) || mongo_failed(&self.references)
    }
}

#[derive(Debug, Default, Serialize, PartialEq, Eq, Clone)]
pub struct Summary {
    pub deleted: usize,
    /// Tags removed with their manifest kept (other tags keep it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untagged: usize,
    pub already_deleted: usize,
    pub would_delete: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// Runs the plan. Errors (`CannotRun`) mean nothing was deleted; once deletes start, every
/// outcome ends up in the returned results (and, as it happened, in the audit log).
pub async fn run(settings: &Settings, req: &Request, observer: &dyn Observer, now: i64) -> anyhow::Result<Results> {
    let plan = &req.plan;
    let cannot = |m: String| anyhow::Error::new(CannotRun(m));
    deletion::validate(
        plan,
        &settings.registry.host,
        Some(&settings_fingerprint(settings)),
        now,
    )
    .map_err(|e| cannot(format!("{}: {e}", req.label)))?;
    // Names become URL paths: check every one against the grammar and the configured scope
    // before the first request (the pre-flight probe included).
    let scope = deletion::Scope {
        prefix: &settings.registry.repository,
        repositories: settings.registry.repositories.as_deref(),
    };
    deletion::validate_names(plan, scope).map_err(|e| cannot(format!("{}: {e}", req.label)))?;
    // Orphaned Mongo references count too: --max-delete bounds everything a run can remove.
    if let Some(max) = req.max_delete
        && plan.tags.len() + plan.records.len() > max
    {
        return Err(cannot(format!(
            "the plan deletes {} tags and {} Mongo records, more than --max-delete {max}",
            plan.tags.len(),
            plan.records.len()
        )));
    }
    if let Some(max) = req.max_bytes
        && plan.reclaimable_bytes > max
    {
        return Err(cannot(format!(
            "the plan reclaims {} bytes, more than --max-bytes {max}",
            plan.reclaimable_bytes
        )));
    }
    // The plan's Mongo switch is part of what was confirmed; a run that would not do the same
    // must say so rather than silently add or drop the step.
    if plan.mongo_cleanup && !req.mongo_cleanup {
        return Err(cannot(format!(
            "{}: the plan was written with the Mongo cleanup on; pass --mongo-cleanup to run it as planned",
            req.label
        )));
    }
    let mongo_on = req.mongo_cleanup;
    if mongo_on && settings.without.contains(&SourceKind::Mongo) {
        return Err(cannot(
            "the Mongo cleanup needs the MongoDB source; drop --without mongo".into(),
        ));
    }
    let client = registry_client(settings)?;
    if req.apply {
        observer.step("pre-flight: are deletes enabled?");
        let repo = plan.manifests.first().map_or_else(
            || format!("{}/environment", settings.registry.repository),
            |m| m.repository.clone(),
        );
        preflight(&client, &repo)
            .await
            .map_err(|e| cannot(format!("pre-flight: {e}")))?;
    }
    // Fresh data: the whole registry (siblings, sizes) and every protection source.
    observer.step("loading fresh data from every source");
    let fresh = load_dataset(settings, None, true, true, now).await?;
    fail_closed(&fresh)?;
    observer.step("re-checking the plan on fresh data");
    let protected = protections(&fresh);
    let verdicts = recheck_with(
        &plan.manifests,
        &fresh.inventory,
        &protected,
        &membership(&fresh.categories),
        &gone_indexes(settings, plan, &fresh.inventory),
        &untagged_membership(&fresh.inventory, &fresh.categories),
    );
    let parents = planned_parents(&plan.manifests, &fresh.inventory);
    observer.rechecked(&verdicts);
    let go = verdicts.iter().filter(|v| **v == Verdict::Delete).count();
    // The byte limit holds against the fresh data too, not only the plan's own number (and
    // again on the data re-loaded after a confirmation).
    let within_bytes = |inv: &crate::model::Inventory, verdicts: &[Verdict]| {
        let bytes = reclaimable_after(inv, &would_delete(plan, verdicts));
        match req.max_bytes {
            Some(max) if bytes > max => Err(cannot(format!(
                "on fresh data the plan reclaims {bytes} bytes, more than --max-bytes {max}; nothing was deleted"
            ))),
            _ => Ok(bytes),
        }
    };
    let fresh_bytes = within_bytes(&fresh.inventory, &verdicts)?;
    let records = if mongo_on { plan.records.len() } else { 0 };
    if req.apply && !observer.confirm(go, plan.tags.len(), fresh_bytes.max(plan.reclaimable_bytes), records) {
        return Err(cannot("not confirmed; nothing was deleted".into()));
    }
    // A prompt can wait for minutes: what was confirmed is re-checked on data read after it.
    // If the newer data would delete anything the confirmed check did not, stop and ask again.
    let (fresh, verdicts, parents) = if req.apply && observer.asks() {
        observer.step("re-loading fresh data after the confirmation");
        let newer = load_dataset(settings, None, true, true, now).await?;
        fail_closed(&newer)?;
        let v = recheck_with(
            &plan.manifests,
            &newer.inventory,
            &protections(&newer),
            &membership(&newer.categories),
            &gone_indexes(settings, plan, &newer.inventory),
            &untagged_membership(&newer.inventory, &newer.categories),
        );
        if let Some(i) = (0..v.len()).find(|i| v[*i] == Verdict::Delete && verdicts[*i] != Verdict::Delete) {
            return Err(cannot(format!(
                "the registry changed while you confirmed ({}@{} would now be deleted, which the confirmed check skipped); nothing was deleted; run again",
                plan.manifests[i].repository, plan.manifests[i].digest
            )));
        }
        within_bytes(&newer.inventory, &v)?;
        let p = planned_parents(&plan.manifests, &newer.inventory);
        (newer, v, p)
    } else {
        (fresh, verdicts, parents)
    };
    let audit = if req.apply {
        let path = (req.audit_log.clone()).unwrap_or_else(|| settings.output_dir.join("audit.jsonl"));
        Some(AuditLog::open(&path).map_err(|e| cannot(format!("{}: cannot open audit log: {e}", path.display())))?)
    } else {
        None
    };
    if let Some(a) = &audit {
        a.record("plan-start", &req.label, "started", None)
            .map_err(|e| cannot(format!("{}: cannot write the audit log: {e}", a.path().display())))?;
    }
    observer.step(if req.apply { "deleting" } else { "dry run" });
    if req
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst))
    {
        return Err(cannot("cancelled before the first delete; nothing was deleted".into()));
    }
    let on_item = |i: usize, item: &ItemOutcome| observer.item(i, item);
    // Deletes go through a client that never retries by itself: the executor retries the
    // whole last look and the DELETE together (`last_look`).
    let mut once = settings.clone();
    once.registry.max_retries = 0;
    let delete_client = registry_client(&once)?;
    let look = LastLook::new(
        &fresh.inventory,
        Retry {
            max_retries: settings.registry.max_retries,
            initial_backoff: std::time::Duration::from_secs_f64(settings.registry.initial_delay_seconds.max(0.0)),
        },
    );
    let executed = execute(
        &delete_client,
        &plan.manifests,
        &verdicts,
        &parents,
        req.apply,
        settings.registry.concurrency,
        audit.as_ref(),
        req.cancel.as_deref(),
        &look,
        &on_item,
    )
    .await;
    let items = executed.items;
    let summary = summarize(&items);
    // Mongo only after the registry, only for what is gone (children before parents, backed
    // up), and not at all when the run stopped early.
    let mongo = if mongo_on && executed.audit_error.is_none() {
        observer.step("Mongo cleanup");
        let backup =
            (req.backup.clone()).unwrap_or_else(|| mongo_cleanup::default_backup_path(&settings.output_dir, now));
        let ms = super::load::mongo_settings(settings).await;
        let r = mongo_cleanup::after_delete(
            &ms,
            &client,
            &fresh.inventory,
            &items,
            req.apply,
            &backup,
            audit.as_ref(),
        );
        Some(r.await.unwrap_or_else(|e| MongoSummary {
            dry_run: !req.apply,
            failed: 1,
            error: Some(format!(
                "mongo cleanup did not run: {e}; the registry part is done, re-run the plan to finish"
            )),
            ..Default::default()
        }))
    } else {
        None
    };
    // Orphaned Mongo references the plan lists: after the registry, re-checked on the fresh
    // data (still orphaned, image confirmed missing), backed up, and not at all when the run
    // stopped early.
    let references = if plan.records.is_empty() || executed.audit_error.is_some() {
        None
    } else {
        observer.step("orphaned Mongo references");
        let backup =
            (req.backup.clone()).unwrap_or_else(|| mongo_cleanup::default_backup_path(&settings.output_dir, now));
        Some(
            super::references::run(super::references::Step {
                settings,
                client: &client,
                fresh: &fresh,
                records: &plan.records,
                mongo_on,
                apply: req.apply,
                backup: &backup,
                audit: audit.as_ref(),
            })
            .await,
        )
    };
    if let Some(a) = &audit
        && executed.audit_error.is_none()
    {
        // The results below carry every outcome even if this last line cannot be written.
        if let Err(e) = a.record("plan-end", &req.label, &format!("{summary:?}"), None) {
            tracing::error!("writing plan-end to {}: {e}", a.path().display());
        }
    }
    Ok(Results {
        schema_version: 1,
        kind: "registry-cleaner-results",
        generated_at: crate::model::timefmt::rfc3339(now),
        registry: settings.registry.host.clone(),
        dry_run: !req.apply,
        plan_checksum: plan.checksum.clone(),
        reclaimable_bytes_after_gc: reclaimable_after(&fresh.inventory, &items),
        items,
        audit_log: audit.as_ref().map(|a| a.path().display().to_string()),
        stopped: executed.audit_error,
        mongo,
        references,
        next_step: if req.apply {
            "space returns after the registry's garbage collection: run `registry-cleaner gc` (in-cluster registry) or let the managed registry collect".into()
        } else {
            "dry run: nothing was deleted; re-run with --apply to delete".into()
        },
        summary,
    })
}

/// The children of each planned index that some `child_of` entry names and that is no longer
/// in its repository (an interrupted run deleted it): from the fresh scan's body of the same
/// digest elsewhere, or from the scan cache, whose bodies are re-hashed to their digest on
/// load. Without one, the re-check skips that index's children (nothing shows they were).
fn gone_indexes(settings: &Settings, plan: &Plan, inv: &crate::model::Inventory) -> GoneIndexes {
    let cache = settings
        .registry
        .cache
        .then(|| {
            crate::ops::scan_cache::ScanCache::new(
                settings.registry.cache_dir.as_deref(),
                &settings.registry.host,
                false,
            )
        })
        .flatten();
    let mut out = GoneIndexes::new();
    for m in &plan.manifests {
        let Some(parent) = m.child_of.as_deref() else { continue };
        if out.contains_key(parent) {
            continue;
        }
        let present = inv.repo_by_name(&m.repository).is_some_and(|repo| {
            inv.digests.get(parent).is_some_and(|d| {
                inv.find_revision(repo, d).is_some() || inv.repo_tags(repo).any(|t| inv.tag_digest(t) == Some(d))
            })
        });
        if present {
            continue;
        }
        let from_scan = inv
            .digests
            .get(parent)
            .and_then(|d| inv.manifest(d))
            .and_then(|x| match &x.kind {
                crate::model::ManifestKind::Index { children } => Some(
                    children
                        .iter()
                        .map(|(c, _)| inv.digests.name(c.digest).to_string())
                        .collect::<Vec<_>>(),
                ),
                crate::model::ManifestKind::Image { .. } => None,
            });
        let from_cache = || {
            let (ct, body) = cache.as_ref()?.manifest(parent)?;
            match crate::sources::registry::manifest::parse_manifest(&body, ct.as_deref()).ok()? {
                crate::sources::registry::manifest::ParsedManifest::Index { children, .. } => {
                    Some(children.into_iter().map(|c| c.digest).collect())
                }
                crate::sources::registry::manifest::ParsedManifest::Image { .. } => None,
            }
        };
        if let Some(children) = from_scan.or_else(from_cache) {
            out.insert(parent.to_string(), children);
        }
    }
    out
}

/// The manifests the re-check lets through, as dry-run outcomes (for the fresh byte count).
fn would_delete(plan: &Plan, verdicts: &[Verdict]) -> Vec<ItemOutcome> {
    (plan.manifests.iter().zip(verdicts))
        .filter(|(_, v)| **v == Verdict::Delete)
        .map(|(m, _)| ItemOutcome {
            repository: m.repository.clone(),
            digest: m.digest.clone(),
            tags: m.tags.clone(),
            untag: m.untag,
            outcome: Outcome::WouldDelete,
        })
        .collect()
}

/// A protection source that is down (not disabled on purpose) stops the run.
pub(crate) fn fail_closed(fresh: &Dataset) -> anyhow::Result<()> {
    for (kind, status) in &fresh.sources {
        if let SourceStatus::Failed(e) = status {
            return Err(CannotRun(format!(
                "the {} source is unavailable ({e}); nothing was deleted; fix it or pass --without {} on purpose",
                kind.as_str(),
                kind.as_str()
            ))
            .into());
        }
    }
    Ok(())
}

/// Every protection in force on the fresh data, by tag.
pub fn protections(ds: &Dataset) -> HashMap<TagId, Vec<String>> {
    ds.protections.iter().map(|(t, r)| (*t, r.clone())).collect()
}

pub fn summarize(items: &[ItemOutcome]) -> Summary {
    let mut s = Summary::default();
    for i in items {
        match i.outcome {
            Outcome::Deleted => s.deleted += 1,
            Outcome::Untagged => s.untagged += 1,
            Outcome::AlreadyDeleted => s.already_deleted += 1,
            Outcome::WouldDelete => s.would_delete += 1,
            Outcome::Skipped { .. } => s.skipped += 1,
            Outcome::Failed { .. } => s.failed += 1,
        }
    }
    s
}

/// What GC frees for the manifests this run removed (or would remove), from the fresh scan.
pub fn reclaimable_after(inv: &Inventory, items: &[ItemOutcome]) -> u64 {
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
    // An untag removes tags only: the manifest stays and GC frees nothing for it.
    let removes = |i: &ItemOutcome| !i.untag && matches!(i.outcome, Outcome::Deleted | Outcome::WouldDelete);
    for i in items {
        if !removes(i)
            && let Some(r) = by_key.get(&(i.repository.as_str(), i.digest.as_str()))
        {
            engine.keep(*r);
        }
    }
    for i in items {
        if removes(i)
            && let Some(r) = by_key.get(&(i.repository.as_str(), i.digest.as_str()))
            && !inv.revision(*r).tags.is_empty()
        {
            engine.set_selected(*r, true);
        }
    }
    engine.reclaimable()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
