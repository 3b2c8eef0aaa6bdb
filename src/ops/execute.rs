//! Executing a re-checked plan against the registry: pre-flight (deletes enabled), then per
//! manifest a last look (`last_look`: its tags, and new tags in its repository) immediately
//! before the DELETE by digest, repeated before every retry, bounded
//! concurrency with the client's retries, indexes before their children, every action in the
//! audit log: a `started` line fsynced before each DELETE (and each untag PUT) is sent, its
//! outcome line as it completes, so a kill at any instant leaves a line for every request
//! the registry may have applied. A manifest counts as deleted or already deleted only when the
//! registry confirms it (GET by digest → 404 `MANIFEST_UNKNOWN`), so a re-run after a crash
//! finishes the job, and neither a bare 404 nor a 2xx that deleted nothing passes for "gone".

use super::audit::AuditLog;
use super::last_look::{LastLook, Look, transient};
use crate::plan::deletion::PlanManifest;
use crate::plan::recheck::Verdict;
use crate::sources::registry::{DeleteAnswer, RegistryClient};
use futures::stream::{self, StreamExt};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    Deleted,
    /// The planned tags were removed and the manifest kept (`ops::untag`).
    Untagged,
    AlreadyDeleted,
    WouldDelete,
    Skipped {
        reason: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemOutcome {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Only the tags go; the manifest stays (other tags keep it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untag: bool,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl ItemOutcome {
    /// The registry no longer has it (now or before this run).
    pub fn is_gone(&self) -> bool {
        matches!(self.outcome, Outcome::Deleted | Outcome::AlreadyDeleted)
    }
}

/// Pre-flight: the registry answers a DELETE of a digest that cannot exist with 404 (deletes
/// enabled) rather than 405 (disabled). Nothing is deleted by this probe; `repo` was validated
/// against the repository grammar by the caller. A 404 here says nothing about any planned
/// manifest: those count as gone only when a GET confirms `MANIFEST_UNKNOWN`.
pub async fn preflight(client: &RegistryClient, repo: &str) -> Result<(), String> {
    client.ping().await.map_err(|e| e.to_string())?;
    let probe = format!("sha256:{}", "0".repeat(64));
    match client.delete_manifest_answer(repo, &probe).await {
        Ok(DeleteAnswer::NotFound { .. }) => Ok(()),
        // Nothing can have that digest: a registry that says it deleted it does not tell the
        // truth about deletes, and no answer of its DELETE could be trusted.
        Ok(DeleteAnswer::Accepted) => Err(format!(
            "the registry accepted a DELETE of {probe}, which cannot exist; its DELETE answers cannot be trusted"
        )),
        Err(e) if e.status() == Some(405) => Err(format!(
            "the registry has deletes disabled (DELETE answers 405 UNSUPPORTED); set REGISTRY_STORAGE_DELETE_ENABLED=true on the registry (this restarts it): {e}"
        )),
        Err(e) if matches!(e.status(), Some(401 | 403)) => {
            Err(format!("the registry refuses deletes with these credentials: {e}"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// What [`execute`] returns: every outcome it has, and why it stopped early, if it did.
#[derive(Debug, Default)]
pub struct Executed {
    /// One per planned manifest, in plan order.
    pub items: Vec<ItemOutcome>,
    /// Set when an audit write failed (the first one, with its path and error): no DELETE was
    /// started after it; the outcomes so far are all in `items` (those not attempted are
    /// `Skipped`, or `Failed` when their own write-ahead line could not be written).
    pub audit_error: Option<String>,
}

/// Runs the plan. Each outcome is written to the audit log (fsynced) and handed to `on_item`
/// the moment it completes, so a kill mid-phase loses no record of a DELETE already done.
/// With `apply == false` nothing is deleted and `Delete` verdicts become `WouldDelete`.
/// `parents[i]` lists the planned indexes that list manifest `i` (`recheck::planned_parents`):
/// it is deleted only after every one of them is gone.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    client: &RegistryClient,
    manifests: &[PlanManifest],
    verdicts: &[Verdict],
    parents: &[Vec<usize>],
    apply: bool,
    concurrency: usize,
    audit: Option<&AuditLog>,
    cancel: Option<&std::sync::atomic::AtomicBool>,
    look: &LastLook,
    on_item: &(dyn Fn(usize, &ItemOutcome) + Sync),
) -> Executed {
    let mut results: Vec<Option<ItemOutcome>> = vec![None; manifests.len()];
    let no_parents = Vec::new();
    let parents_of = |i: usize| parents.get(i).unwrap_or(&no_parents);
    // Set on the first audit failure: jobs that start afterwards do nothing.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut audit_error = None;
    // The first write-ahead line that could not be written, in time order.
    let first_error = std::sync::Mutex::new(None::<String>);
    // Phase 0: manifests no planned index lists; then index children, each once every planned
    // index listing it (a tagged child included) is gone, outermost indexes first
    // (`recheck::phases`). Manifests below a cycle of planned parents come last and, their
    // parents never being gone, are skipped.
    let phase_of = crate::plan::recheck::phases(manifests, parents);
    let last = phase_of.iter().flatten().max().map_or(0, |p| p + 1);
    for phase in 0..=last {
        let jobs: Vec<(usize, bool)> = (0..manifests.len())
            .filter(|i| phase_of[*i].unwrap_or(last) == phase)
            .map(|i| {
                let parent_gone = parents_of(i).iter().all(|p| {
                    results[*p]
                        .as_ref()
                        .is_some_and(|r| r.is_gone() || !apply && r.outcome == Outcome::WouldDelete)
                });
                (i, parent_gone)
            })
            .collect();
        let stop = &stop;
        let journal = &Journal {
            audit,
            stop,
            first_error: &first_error,
        };
        let mut done = stream::iter(jobs)
            .map(|(i, parent_gone)| {
                let m = &manifests[i];
                async move {
                    let outcome = match (&verdicts[i], parent_gone) {
                        _ if stop.load(std::sync::atomic::Ordering::SeqCst) => Outcome::Skipped {
                            reason: "not attempted: the audit log could not be written".into(),
                        },
                        // Cancelled (the TUI quit): nothing new starts; what is in flight
                        // finishes and is recorded.
                        _ if cancel.is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) => Outcome::Skipped {
                            reason: "not attempted: the run was cancelled".into(),
                        },
                        (Verdict::Skip(r), _) => Outcome::Skipped { reason: r.clone() },
                        (_, false) => Outcome::Skipped {
                            reason: "its index was not deleted".into(),
                        },
                        // Absent from the fresh scan is not proof: ask the registry.
                        (Verdict::AlreadyDeleted, _) => confirm_absent(client, m).await,
                        (Verdict::Delete, _) if !apply => Outcome::WouldDelete,
                        (Verdict::Delete, _) if m.untag => {
                            super::untag::untag(client, look, journal, &m.repository, &m.digest, &m.tags).await
                        }
                        (Verdict::Delete, _) => delete_one(client, m, look, journal).await,
                    };
                    let item = ItemOutcome {
                        repository: m.repository.clone(),
                        digest: m.digest.clone(),
                        tags: m.tags.clone(),
                        untag: m.untag,
                        outcome,
                    };
                    (i, item)
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some((i, item)) = done.next().await {
            if let Some(a) = audit
                && audit_error.is_none()
                && let Err(e) = record(a, &item)
            {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                audit_error = Some(format!("writing the audit log {}: {e}", a.path().display()));
            }
            on_item(i, &item);
            results[i] = Some(item);
        }
    }
    let items: Vec<ItemOutcome> = results.into_iter().flatten().collect();
    // A write-ahead line that could not be written stopped the run as surely as an outcome
    // line: say so even if the outcome lines after it were written.
    if audit_error.is_none() {
        audit_error = first_error.lock().ok().and_then(|e| e.clone());
    }
    Executed { items, audit_error }
}

pub(super) fn target(repository: &str, digest: &str, tags: &[String]) -> String {
    format!("{repository}@{digest} [{}]", tags.join(","))
}

/// Where a run's write-ahead lines go, and the switch that stops every later DELETE once one
/// could not be written.
pub(super) struct Journal<'a> {
    pub audit: Option<&'a AuditLog>,
    pub stop: &'a std::sync::atomic::AtomicBool,
    pub first_error: &'a std::sync::Mutex<Option<String>>,
}

impl Journal<'_> {
    /// The write-ahead line: fsynced before a request that changes the registry is sent, so
    /// the audit log names every such request even when the process dies before its answer
    /// is read (the outcome line then comes from the re-run, which confirms the manifest
    /// gone). `Err`: the request must not be sent, and no later job sends one either.
    pub fn announce(&self, action: &str, target: &str) -> Result<(), String> {
        if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("not attempted: the audit log could not be written".into());
        }
        let Some(a) = self.audit else { return Ok(()) };
        a.record(action, target, "started", None).map_err(|e| {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
            let msg = format!(
                "not attempted: the audit log {} could not be written: {e}",
                a.path().display()
            );
            if let Ok(mut first) = self.first_error.lock() {
                first.get_or_insert_with(|| msg.clone());
            }
            msg
        })
    }
}

fn record(a: &AuditLog, item: &ItemOutcome) -> std::io::Result<()> {
    let target = target(&item.repository, &item.digest, &item.tags);
    let (result, error) = match &item.outcome {
        Outcome::Deleted => ("deleted", None),
        Outcome::Untagged => ("untagged", None),
        Outcome::AlreadyDeleted => ("already-deleted", None),
        Outcome::WouldDelete => ("would-delete", None),
        Outcome::Skipped { reason } => ("skipped", Some(reason.as_str())),
        Outcome::Failed { error } => ("failed", Some(error.as_str())),
    };
    a.record("delete-manifest", &target, result, error)
}

/// The last look and the DELETE, as one attempt; a transient failure of either repeats both
/// (the client itself does not retry here, so no DELETE is ever re-sent without a new look).
async fn delete_one(client: &RegistryClient, m: &PlanManifest, look: &LastLook, journal: &Journal<'_>) -> Outcome {
    let mut attempt = 0u32;
    loop {
        // Written before the look, not between it and the DELETE: the fsync must not widen
        // the window in which a tag pushed onto the digest goes with it. A look that then
        // skips leaves a started line followed by its `skipped` line.
        if let Err(error) = journal.announce("delete-manifest", &target(&m.repository, &m.digest, &m.tags)) {
            return Outcome::Failed { error };
        }
        let seen = look.check(client, m).await;
        let transient = match seen {
            Look::Clear => match client.delete_manifest_answer(&m.repository, &m.digest).await {
                // An accepted DELETE is believed only when a GET by digest confirms it: a
                // front that answers 2xx and deletes nothing must not pass for a delete (the
                // Mongo cleanup acts on "deleted").
                Ok(DeleteAnswer::Accepted) => {
                    return match client.manifest_gone(&m.repository, &m.digest).await {
                        Ok(true) => Outcome::Deleted,
                        Ok(false) => Outcome::Failed {
                            error: "the registry accepted the DELETE but still serves the manifest".into(),
                        },
                        Err(e) => Outcome::Failed {
                            error: format!("the DELETE was accepted, but it is not confirmed gone: {e}"),
                        },
                    };
                }
                // A 404 to a DELETE counts as "already gone" only when a GET by digest confirms it.
                Ok(DeleteAnswer::NotFound { .. }) => {
                    return match client.manifest_gone(&m.repository, &m.digest).await {
                        Ok(true) => Outcome::AlreadyDeleted,
                        Ok(false) => Outcome::Failed {
                            error: "the DELETE was answered 404 but the registry still serves the manifest".into(),
                        },
                        Err(e) => Outcome::Failed {
                            error: format!("the DELETE was answered 404, but it is not confirmed gone: {e}"),
                        },
                    };
                }
                // The DELETE may have been applied before the answer was lost (a reset, a
                // 5xx from a front after the backend deleted): ask before looking again, so a
                // done delete is recorded as deleted rather than failed or "already deleted".
                Err(e) if transient(&e) => match client.manifest_gone(&m.repository, &m.digest).await {
                    Ok(true) => return Outcome::Deleted,
                    _ => e.to_string(),
                },
                Err(e) => return Outcome::Failed { error: e.to_string() },
            },
            Look::Skip(reason) => return Outcome::Skipped { reason },
            Look::Fail(error) => return Outcome::Failed { error },
            Look::Transient(e) => e,
        };
        if attempt >= look.retry.max_retries {
            return Outcome::Failed {
                error: format!("{transient} (after {} attempts)", attempt + 1),
            };
        }
        attempt += 1;
        tokio::time::sleep(look.retry.backoff(attempt)).await;
    }
}

/// A planned manifest the fresh scan did not see: gone only if the registry confirms it
/// (GET by digest → 404 `MANIFEST_UNKNOWN`). Still served → failed: the scan missed it (a
/// repository or catalog that could not be listed), so nothing about it was re-checked; not
/// confirmed either way → failed.
async fn confirm_absent(client: &RegistryClient, m: &PlanManifest) -> Outcome {
    match client.manifest_gone(&m.repository, &m.digest).await {
        Ok(true) => Outcome::AlreadyDeleted,
        Ok(false) => Outcome::Failed {
            error: "the registry still serves this manifest although the fresh scan did not list it (a repository or catalog that could not be listed); not deleted, since the re-check could not see it".into(),
        },
        Err(e) => Outcome::Failed {
            error: format!("not in the fresh scan, and not confirmed gone: {e}"),
        },
    }
}
