//! The live TUI backend: loads every source through the same code as headless mode, and runs
//! a confirmed plan through the one delete run (`ops::delete_run`), exactly as
//! `delete --plan --apply --force` would: validation, pre-flight, fresh re-check, per-action
//! audit, Mongo cleanup when switched on, the same bytes-after-GC.

use super::{Executor, Loader, Progress};
use crate::app::{Outcome, Plan, RunEnd};
use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::ops::delete_run::{self, Observer, Request};
use crate::ops::execute::{ItemOutcome, Outcome as ExecOutcome};
use crate::settings::Settings;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;

/// Loader and executor over the real sources.
#[derive(Clone)]
pub struct LiveBackend {
    settings: Arc<Settings>,
    snapshot: Option<PathBuf>,
}

impl LiveBackend {
    pub fn new(settings: Settings, snapshot: Option<PathBuf>) -> LiveBackend {
        LiveBackend {
            settings: Arc::new(settings),
            snapshot,
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
                scan_progress.detail(SourceKind::Registry, crate::ops::connect::progress_line(&p));
            };
            let registry_done = progress.clone();
            let registry = async {
                let r = match &me.snapshot {
                    Some(p) => crate::report::snapshot::read(p),
                    None => crate::ops::connect::scan_registry_with(settings, false, &on_scan)
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
                }
                Err(e) => progress.source(SourceKind::Registry, SourceStatus::Failed(format!("{e:#}"))),
            }
            ds
        }
        .boxed()
    }
}

/// TUI messages for the delete run's observer.
struct ToTui(Progress);

impl Observer for ToTui {
    fn step(&self, text: &str) {
        self.0.step(text);
    }

    fn item(&self, index: usize, item: &ItemOutcome) {
        self.0.item(index, outcome(item));
    }
}

fn outcome(item: &ItemOutcome) -> Outcome {
    match &item.outcome {
        ExecOutcome::Deleted => Outcome::Deleted,
        ExecOutcome::Untagged => Outcome::Untagged,
        ExecOutcome::AlreadyDeleted => Outcome::AlreadyGone,
        ExecOutcome::WouldDelete => Outcome::WouldDelete,
        ExecOutcome::Skipped { reason } => Outcome::Skipped(reason.clone()),
        ExecOutcome::Failed { error } => Outcome::Failed(error.clone()),
    }
}

/// One line of the run's end for a Mongo step: what it deleted and where the backup is.
fn mongo_note(what: &str, m: &crate::ops::mongo_cleanup::MongoSummary) -> String {
    match &m.error {
        Some(e) => format!("{what}: {e}"),
        None => format!(
            "{what}: {} documents deleted, {} failed, backup {}",
            m.deleted.values().sum::<usize>(),
            m.failed,
            m.backup.as_deref().unwrap_or("none")
        ),
    }
}

impl LiveBackend {
    /// The request the TUI's confirmation stands for: apply, confirmed in the modal (no
    /// second prompt), the plan's own Mongo switch.
    pub fn request(plan: &Plan) -> Request {
        Request {
            plan: plan.core.clone(),
            label: "tui".into(),
            apply: true,
            mongo_cleanup: plan.core.mongo_cleanup,
            backup: None,
            audit_log: None,
            max_delete: None,
            max_bytes: None,
            cancel: None,
        }
    }
}

impl Executor for LiveBackend {
    fn execute(&self, plan: Plan, progress: Progress, cancel: super::Cancel) -> BoxFuture<'static, RunEnd> {
        let me = self.clone();
        async move {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let mut req = LiveBackend::request(&plan);
            req.cancel = Some(cancel);
            let observer = ToTui(progress.clone());
            match delete_run::run(&me.settings, &req, &observer, now).await {
                Ok(results) => {
                    let mut notes = vec![];
                    if let Some(a) = &results.audit_log {
                        notes.push(format!("audit log: {a}"));
                    }
                    if let Some(stop) = &results.stopped {
                        notes.push(format!("stopped early: {stop}"));
                    }
                    notes.extend(results.mongo.as_ref().map(|m| mongo_note("Mongo cleanup", m)));
                    notes.extend(
                        results
                            .references
                            .as_ref()
                            .map(|m| mongo_note("orphaned Mongo references", m)),
                    );
                    RunEnd {
                        reclaimable_bytes: results.reclaimable_bytes_after_gc,
                        notes,
                    }
                }
                Err(e) => {
                    // Nothing was deleted: every item says why.
                    for i in 0..plan.items.len() {
                        progress.item(i, Outcome::Failed(format!("{e:#}")));
                    }
                    RunEnd {
                        reclaimable_bytes: 0,
                        notes: vec![format!("nothing was deleted: {e:#}")],
                    }
                }
            }
        }
        .boxed()
    }
}
