//! Re-checking a frozen plan against fresh data before anything is deleted: the plan file is
//! intact, unexpired and for this registry; and per manifest, every tag still points at the
//! planned digest, no tag outside the plan has appeared on it, and nothing protects it now.
//! Pure: the caller supplies the fresh inventory, the protections and `now`.

use crate::model::{Inventory, TagId};
use crate::report::json::{PlanManifest, REPORT_SCHEMA, Report};
use std::collections::{BTreeSet, HashMap};

/// What to do with one planned manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delete,
    /// Gone already (an earlier, interrupted run, or someone else): counts as done.
    AlreadyDeleted,
    Skip(String),
}

/// Validates a plan file's envelope. Errors say what is wrong in operator terms.
pub fn validate(report: &Report, registry: &str, fingerprint: Option<&str>, now: i64) -> Result<(), String> {
    if report.schema_version != REPORT_SCHEMA {
        return Err(format!(
            "schema_version {} is not supported (expected {REPORT_SCHEMA})",
            report.schema_version
        ));
    }
    let plan = &report.plan;
    if plan.checksum.is_empty() {
        return Err("the plan has no checksum; write it with `registry-cleaner report` or the TUI".into());
    }
    if plan.compute_checksum(&report.registry) != plan.checksum {
        return Err("the plan was modified after it was written (checksum mismatch); write a new one".into());
    }
    if report.registry != registry {
        return Err(format!(
            "the plan is for registry {}, but this run targets {registry}",
            report.registry
        ));
    }
    let expires = crate::report::parse_rfc3339(&plan.expires_at)
        .ok_or_else(|| format!("expires_at {:?} is not RFC 3339", plan.expires_at))?;
    if now > expires {
        return Err(format!(
            "the plan expired at {}; write a new one so it reflects the registry as it is",
            plan.expires_at
        ));
    }
    if let Some(fp) = fingerprint
        && fp != plan.settings_fingerprint
    {
        return Err("the plan was made with different settings (registry, repositories, policy or --without); re-run report with the same settings".into());
    }
    for m in &plan.manifests {
        if !crate::model::digest::is_valid_digest(&m.digest) {
            return Err(format!("manifest digest {:?} is not valid", m.digest));
        }
    }
    Ok(())
}

/// Verdicts for every planned manifest, in plan order.
pub fn recheck(manifests: &[PlanManifest], fresh: &Inventory, protected: &HashMap<TagId, Vec<String>>) -> Vec<Verdict> {
    manifests
        .iter()
        .map(|m| verdict(m, manifests, fresh, protected))
        .collect()
}

fn verdict(
    m: &PlanManifest,
    all: &[PlanManifest],
    fresh: &Inventory,
    protected: &HashMap<TagId, Vec<String>>,
) -> Verdict {
    let Some(repo) = fresh.repo_by_name(&m.repository) else {
        return Verdict::AlreadyDeleted;
    };
    let digest = fresh.digests.get(&m.digest);
    let rev = digest.and_then(|d| {
        fresh
            .rev_ids()
            .find(|r| fresh.revision(*r).repo == repo && fresh.revision(*r).manifest == d)
    });
    // Planned tags that now point elsewhere.
    for tag in &m.tags {
        if let Some(t) = fresh.find_tag(&m.repository, tag) {
            let now_at = fresh.tag_digest(t).map(|d| fresh.digests.name(d).to_string());
            if now_at.as_deref() != Some(m.digest.as_str()) {
                return Verdict::Skip(format!(
                    "tag {tag} now points at {}",
                    now_at.unwrap_or_else(|| "an unreadable manifest".into())
                ));
            }
        }
    }
    let Some(rev) = rev else {
        // Nothing in the repository references the digest any more: deleted earlier. A child
        // of a deleted index is not tagged, so it only shows through a surviving parent.
        return if m.child_of.is_some() {
            Verdict::Delete
        } else {
            Verdict::AlreadyDeleted
        };
    };
    let planned: BTreeSet<&str> = m.tags.iter().map(String::as_str).collect();
    for t in &fresh.revision(rev).tags {
        let name = fresh.tag(*t).name.as_str();
        if !planned.contains(name) {
            return Verdict::Skip(format!(
                "tag {name} now also points at this digest and is not in the plan"
            ));
        }
        if let Some(reasons) = protected.get(t) {
            return Verdict::Skip(format!(
                "{}:{name} is protected now: {}",
                m.repository,
                reasons.join("; ")
            ));
        }
    }
    // A child is deleted only when every index that lists it goes too.
    for p in &fresh.revision(rev).parents {
        let parent = fresh.digests.name(fresh.revision(*p).manifest);
        if !all.iter().any(|x| x.repository == m.repository && x.digest == parent) {
            return Verdict::Skip(format!(
                "index {parent} that is not in the plan still lists this manifest"
            ));
        }
    }
    Verdict::Delete
}
