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
    for rev in inv.untagged_revisions().filter(|r| inv.revision(*r).is_root()) {
        if let Some(why) = prot.by_rev.get(&rev) {
            out.protected_revisions.push((rev, why.clone()));
            continue;
        }
        let r = inv.revision(rev);
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
