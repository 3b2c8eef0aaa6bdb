//! `untagged-manifests`: manifest revisions in storage that no tag points to and no index
//! lists — left behind by every re-push of a tag. `garbage-collect` (without
//! `--delete-untagged`) keeps everything they reference; deleting them by digest through the
//! normal plan is the safe replacement for `--delete-untagged` (which on Distribution 2.8 also
//! destroys the children of remaining indexes). Only a storage inventory has them.

use super::super::category::{CategoryId, CategoryResult, CategoryStatus, RevCandidate};
use super::super::protection::Protections;
use crate::model::{Inventory, timefmt};

/// Every untagged root revision: a candidate, or protected with every reason.
pub fn untagged_manifests(inv: &Inventory, prot: &Protections) -> CategoryResult {
    let mut out = CategoryResult::new(CategoryId::UntaggedManifests, CategoryStatus::Ok);
    // A broken tag (its config or a child unreadable) still points at its digest: that
    // revision is marked by GC like any, but it is not untagged (broken-tags handles it).
    let pointed: std::collections::HashSet<_> = inv
        .tag_ids()
        .filter_map(|t| inv.tag_digest(t).map(|d| (inv.tag(t).repo, d)))
        .collect();
    let untagged = inv
        .untagged_revisions()
        .filter(|r| inv.revision(*r).is_root())
        .filter(|r| !pointed.contains(&(inv.revision(*r).repo, inv.revision(*r).manifest)));
    // A tag whose target or body could not be read may be an index listing any of them (a
    // tagged index whose own manifest is unreadable leaves its children looking untagged), or
    // point at one: those stay (fail closed), as the delete-time re-check would keep them.
    let mut unreadable: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
    for t in inv.tag_ids().filter(|t| inv.tag(*t).revision().is_none()) {
        unreadable.entry(inv.tag(t).repo).or_default().push(t);
    }
    for rev in untagged {
        let mut why = prot.by_rev.get(&rev).cloned().unwrap_or_default();
        let r = inv.revision(rev);
        let digest = inv.digests.name(r.manifest);
        let lister = unreadable
            .get(&r.repo)
            .and_then(|ts| ts.iter().find(|t| inv.broken_may_list(**t, digest)));
        if let Some(t) = lister {
            let reason = match &inv.tag(*t).state {
                crate::model::TagState::Broken { reason, .. } => reason.as_str(),
                crate::model::TagState::Ok(_) => "",
            };
            why.push(format!(
                "tag {} in this repository could not be read ({reason}): it may point at this manifest or be an index listing it",
                inv.tag(*t).name
            ));
        }
        if !why.is_empty() {
            out.protected_revisions.push((rev, why));
            continue;
        }
        let pushed = r
            .pushed
            .map(|t| format!(", pushed {}", timefmt::rfc3339(t)))
            .unwrap_or_default();
        let what = if inv.manifest(r.manifest).is_some_and(|m| m.is_index()) {
            "untagged index: no tag points to it (its children go with it unless something keeps them)"
        } else {
            "untagged: no tag points to it and no index lists it"
        };
        out.revisions.push(RevCandidate {
            rev,
            reasons: vec![format!("{what}{pushed}")],
        });
    }
    out
}
