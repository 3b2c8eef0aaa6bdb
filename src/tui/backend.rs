//! The live TUI backend: loads every source through the same code as headless mode, and
//! executes a confirmed plan through the same engine as `delete --plan --apply` (fresh
//! re-check, pre-flight, audit log). Also writes `w` plans in the `report` JSON format.

use super::{Executor, Loader, Progress};
use crate::app::{Outcome, Plan};
use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::model::TagId;
use crate::ops::execute::{Outcome as ExecOutcome, execute, preflight};
use crate::plan::recheck::recheck;
use crate::report::json::{self, PlanInput};
use crate::settings::Settings;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Loader and executor over the real registry (and, as they land, the other sources).
#[derive(Clone)]
pub struct LiveBackend {
    settings: Arc<Settings>,
    snapshot: Option<PathBuf>,
    latest: Arc<Mutex<Option<Dataset>>>,
}

impl LiveBackend {
    pub fn new(settings: Settings, snapshot: Option<PathBuf>) -> LiveBackend {
        LiveBackend {
            settings: Arc::new(settings),
            snapshot,
            latest: Arc::new(Mutex::new(None)),
        }
    }
}

impl Loader for LiveBackend {
    fn load(&self, progress: Progress) -> BoxFuture<'static, anyhow::Result<Dataset>> {
        let me = self.clone();
        async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let settings = &me.settings;
            let scan_progress = progress.clone();
            let on_scan = move |p: crate::ops::scan::ScanProgress| {
                scan_progress.detail(SourceKind::Registry, crate::headless::progress_line(&p));
            };
            let registry_done = progress.clone();
            let registry = async {
                let r = match &me.snapshot {
                    Some(p) => crate::report::snapshot::read(p),
                    None => crate::headless::scan_registry_with(settings, false, &on_scan)
                        .await
                        .map(|i| (i, now)),
                };
                registry_done.source(
                    SourceKind::Registry,
                    match &r {
                        Ok(_) => SourceStatus::Ok,
                        Err(e) => SourceStatus::Failed(format!("{e:#}")),
                    },
                );
                r
            };
            let on_source = |k, s| progress.source(k, s);
            let ds = crate::ops::load::load_all(settings, registry, now, &on_source).await;
            match &ds {
                Ok(d) => {
                    for (k, s) in &d.sources {
                        progress.source(*k, s.clone());
                    }
                    if let Ok(mut slot) = me.latest.lock() {
                        *slot = Some(d.clone());
                    }
                }
                Err(e) => progress.source(SourceKind::Registry, SourceStatus::Failed(format!("{e:#}"))),
            }
            ds
        }
        .boxed()
    }
}

impl Executor for LiveBackend {
    fn write_plan(&self, path: PathBuf, plan: Plan) -> BoxFuture<'static, anyhow::Result<()>> {
        let me = self.clone();
        async move {
            let ds = me
                .latest
                .lock()
                .ok()
                .and_then(|d| d.clone())
                .ok_or_else(|| anyhow::anyhow!("nothing loaded yet"))?;
            let without: Vec<SourceKind> = me.settings.without.iter().copied().collect();
            write_report_plan(
                &ds,
                &plan,
                &path,
                &crate::headless::settings_fingerprint(&me.settings),
                &without,
            )
        }
        .boxed()
    }

    fn execute(&self, plan: Plan, progress: Progress) -> BoxFuture<'static, ()> {
        let me = self.clone();
        async move {
            if let Err(e) = me.run(&plan, &progress).await {
                for i in 0..plan.items.len() {
                    progress.item(i, Outcome::Failed(format!("{e:#}")));
                }
            }
        }
        .boxed()
    }
}

impl LiveBackend {
    async fn run(&self, plan: &Plan, progress: &Progress) -> anyhow::Result<()> {
        let settings = &self.settings;
        let ds = self
            .latest
            .lock()
            .ok()
            .and_then(|d| d.clone())
            .ok_or_else(|| anyhow::anyhow!("nothing loaded yet"))?;
        let report = json::build(&ds, &[], &PlanInput::Selection(plan_tags(plan)), "", &[]);
        let manifests = report.plan.manifests;
        let client = crate::headless::registry_client(settings)?;
        if let Some(first) = manifests.first() {
            preflight(&client, &first.repository)
                .await
                .map_err(|e| anyhow::anyhow!("pre-flight: {e}"))?;
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let fresh = crate::headless::load_dataset(settings, None, true, true, now).await?;
        for (kind, status) in &fresh.sources {
            if let SourceStatus::Failed(e) = status {
                anyhow::bail!("the {} source is unavailable ({e}); nothing was deleted", kind.as_str());
            }
        }
        let protected = crate::headless::delete::protections(&fresh);
        let verdicts = recheck(&manifests, &fresh.inventory, &protected);
        let parents = crate::plan::recheck::planned_parents(&manifests, &fresh.inventory);
        let audit = crate::ops::audit::AuditLog::open(&settings.output_dir.join("audit.jsonl"))?;
        let index_of = |repo: &str, digest: &str| {
            plan.items
                .iter()
                .position(|i| i.repository == repo && i.digest.as_deref() == Some(digest))
        };
        let on_item = |item: &crate::ops::execute::ItemOutcome| {
            if let Some(i) = index_of(&item.repository, &item.digest) {
                progress.item(
                    i,
                    match &item.outcome {
                        ExecOutcome::Deleted | ExecOutcome::AlreadyDeleted => Outcome::Deleted,
                        ExecOutcome::WouldDelete => Outcome::WouldDelete,
                        ExecOutcome::Skipped { reason } => Outcome::Skipped(reason.clone()),
                        ExecOutcome::Failed { error } => Outcome::Failed(error.clone()),
                    },
                );
            }
        };
        execute(
            &client,
            &manifests,
            &verdicts,
            &parents,
            true,
            settings.registry.concurrency,
            Some(&audit),
            &on_item,
        )
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
        Ok(())
    }
}

fn plan_tags(plan: &Plan) -> Vec<TagId> {
    plan.items.iter().flat_map(|i| i.tag_ids.iter().copied()).collect()
}

/// Writes the selection as `report` JSON: a plan `delete --plan` accepts.
pub fn write_report_plan(
    ds: &Dataset,
    plan: &Plan,
    path: &Path,
    fingerprint: &str,
    without: &[SourceKind],
) -> anyhow::Result<()> {
    let report = json::build(ds, &[], &PlanInput::Selection(plan_tags(plan)), fingerprint, without);
    json::write_atomic(path, &serde_json::to_vec_pretty(&report)?)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}
