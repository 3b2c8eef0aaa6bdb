//! Who uses what, from Mongo's usage records (domain.md §3.9), in our own safe reading: every
//! record names the revisions it can start (and so the tags it needs) and the environments it
//! depends on. Runs obey `--unused-since-days`; everything else always counts.

use super::policy::Policy;
use crate::model::ObjectId;
use crate::model::domino::{DefaultKind, DominoIndex, RunUsage, WorkspaceUsage};
use std::collections::HashMap;

const DAY: i64 = 86_400;

/// Reasons per id; an id present here is in use.
#[derive(Debug, Default)]
pub struct UsageFacts {
    /// Environment revisions whose image something may start.
    pub revisions: HashMap<ObjectId, Vec<String>>,
    /// Model versions that are deployed (their slug images are needed).
    pub versions: HashMap<ObjectId, Vec<String>>,
    /// Environments that something uses at all (decides `unused-environments`).
    pub environments: HashMap<ObjectId, Vec<String>>,
}

impl UsageFacts {
    fn revision(&mut self, ix: &DominoIndex, rev: Option<ObjectId>, why: &str) {
        let Some(rev) = rev else { return };
        self.revisions.entry(rev).or_default().push(why.to_string());
        if let Some(r) = ix.revisions.get(&rev) {
            self.environment(r.environment, why);
        }
    }

    fn environment(&mut self, env: ObjectId, why: &str) {
        let reasons = self.environments.entry(env).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }
}

/// Collects every use named by the Mongo usage records.
pub fn usage_facts(ix: &DominoIndex, policy: &Policy, now: i64) -> UsageFacts {
    let mut facts = UsageFacts::default();
    for run in &ix.data.usage.runs {
        if let Some(why) = run_counts(run, policy, now) {
            facts.revision(ix, Some(run.revision), &why);
            facts.environment(run.environment, &why);
        }
    }
    for ws in &ix.data.usage.workspaces {
        workspace(&mut facts, ix, ws);
    }
    for active in &ix.data.usage.active_model_versions {
        let Some(v) = ix.versions.get(&active.version) else {
            continue;
        };
        let why = format!("model version {} of {} is running", v.id, ix.model_label(v.model));
        facts.versions.entry(v.id).or_default().push(why.clone());
        facts.revision(ix, v.revision, &why);
    }
    for m in ix.data.models.iter().filter(|m| !m.archived) {
        if let Some(env) = m.environment {
            facts.environment(env, &format!("environment of {}", ix.model_label(m.id)));
        }
    }
    for d in &ix.data.usage.defaults {
        let why = format!("{} '{}' ({})", d.kind.describe(), d.name, d.id);
        facts.environment(d.environment, &why);
        facts.revision(ix, ix.resolve(d.environment, d.revision_spec), &why);
        // A scheduled job or an app version may pin a revision of its environment, and
        // domain.md documents no field that records which: protect at environment level,
        // every built revision of it.
        if matches!(d.kind, DefaultKind::SchedulerJob | DefaultKind::AppVersion) {
            let any = format!("{why}, which may pin any revision of it");
            for r in ix
                .revisions_by_env
                .get(&d.environment)
                .into_iter()
                .flatten()
                .filter(|r| r.built)
            {
                facts.revision(ix, Some(r.id), &any);
            }
        }
    }
    facts
}

/// A run group protects when no window is set, when it is inside the window, or when its time
/// is unknown (an unknown time cannot prove the run is old).
fn run_counts(run: &RunUsage, policy: &Policy, now: i64) -> Option<String> {
    // A run still in flight uses its image now, however long ago it started.
    if run.in_flight > 0 {
        let n = run.in_flight;
        return Some(if n == 1 {
            "used by 1 run that has not completed (in use now)".to_string()
        } else {
            format!("used by {n} runs that have not completed (in use now)")
        });
    }
    let runs = if run.count == 1 {
        "1 run".to_string()
    } else {
        format!("{} runs", run.count)
    };
    match (policy.unused_since_days, run.last_used) {
        (None, Some(t)) => Some(format!("used by {runs}, last {} days ago", (now - t).max(0) / DAY)),
        (_, None) => Some(format!("used by {runs} (time unknown)")),
        (Some(days), Some(t)) if t >= now - i64::from(days) * DAY => Some(format!(
            "used by {runs}, last {} days ago (within {days} days)",
            (now - t).max(0) / DAY
        )),
        (Some(_), Some(_)) => None,
    }
}

/// A live workspace needs its template revision, its compute environment's active revision and
/// whatever its sessions started.
fn workspace(facts: &mut UsageFacts, ix: &DominoIndex, ws: &WorkspaceUsage) {
    let why = match ws.id {
        Some(id) => format!("workspace '{}' ({id})", ws.name),
        None => format!("workspace '{}'", ws.name),
    };
    if let Some(env) = ws.environment {
        facts.environment(env, &why);
        facts.revision(ix, ix.resolve(env, ws.revision_spec), &why);
    }
    if let Some(env) = ws.compute_environment {
        facts.environment(env, &why);
        facts.revision(ix, ix.resolve(env, None), &why);
    }
    for env in &ws.session_environments {
        facts.environment(*env, &why);
        facts.revision(ix, ix.resolve(*env, None), &why);
    }
    for rev in &ws.session_revisions {
        facts.revision(ix, Some(*rev), &why);
    }
}
