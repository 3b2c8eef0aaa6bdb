//! Candidates grouped by owner, project or environment, with bytes computed jointly by the
//! space engine so that no byte is counted twice: a group's *exclusive* bytes are what GC frees
//! if exactly that group's candidates are deleted (nothing else), its *shared* bytes are what
//! it frees only together with other groups' candidates (deleting every candidate frees them,
//! deleting every candidate but this group's does not), and `joint_bytes` is what deleting
//! every grouped candidate frees. Exclusive bytes of different groups are disjoint (a blob
//! freed by one group alone is marked by no other candidate's revision), so they add up;
//! `shared_total_bytes = joint_bytes - Σ exclusive` is the rest, counted once.
//!
//! A digest whose tags fall into two groups is a revision of both (deleting either group's
//! tag by digest takes it), so its bytes count in the exclusive bytes of each; such groups are
//! not disjoint and `overlapping_revisions` says how many revisions that concerns.

use crate::model::{ImageKind, Inventory, ObjectId, RevId, TagId};
use crate::plan::SpaceEngine;
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    Owner,
    Project,
    Environment,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Owner => "owner",
            GroupBy::Project => "project",
            GroupBy::Environment => "environment",
        }
    }
}

/// One candidate tag and the group it falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub tag: TagId,
    /// The group's id (an owner's, project's, environment's or model's ObjectId); `None` when
    /// unknown (all unknown members form one group).
    pub key: Option<String>,
    /// How the group is shown (a username, an environment's name); `None` when unknown.
    pub label: Option<String>,
    /// The environment or model the tag belongs to, if known.
    pub object: Option<ObjectId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub key: Option<String>,
    pub label: Option<String>,
    /// Distinct candidate tags, in inventory order.
    pub tags: Vec<TagId>,
    /// Distinct environments (environment repositories) and models among the tags.
    pub environments: Vec<ObjectId>,
    pub models: Vec<ObjectId>,
    pub exclusive_bytes: u64,
    pub shared_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Grouping {
    /// Largest exclusive bytes first, then by key (unknown last).
    pub groups: Vec<Group>,
    /// Freed by deleting every grouped candidate.
    pub joint_bytes: u64,
    /// `joint_bytes` minus the sum of every group's exclusive bytes.
    pub shared_total_bytes: u64,
    /// Revisions that are candidates of more than one group.
    pub overlapping_revisions: usize,
}

/// Groups `members` (a tag listed twice counts once, in its first group) and computes their
/// bytes with `engine`, which is left with nothing selected.
pub fn group(inv: &Inventory, engine: &mut SpaceEngine, members: &[Member]) -> Grouping {
    engine.clear();
    let mut index: BTreeMap<Option<String>, usize> = BTreeMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut revs: Vec<BTreeSet<RevId>> = Vec::new();
    let mut seen: BTreeSet<TagId> = BTreeSet::new();
    for m in members {
        if !seen.insert(m.tag) {
            continue;
        }
        let i = *index.entry(m.key.clone()).or_insert_with(|| {
            groups.push(Group {
                key: m.key.clone(),
                label: m.label.clone(),
                tags: Vec::new(),
                environments: Vec::new(),
                models: Vec::new(),
                exclusive_bytes: 0,
                shared_bytes: 0,
            });
            revs.push(BTreeSet::new());
            groups.len() - 1
        });
        let g = &mut groups[i];
        if g.label.is_none() {
            g.label = m.label.clone();
        }
        g.tags.push(m.tag);
        if let Some(o) = m.object {
            let list = match inv.repo(inv.tag(m.tag).repo).kind {
                ImageKind::Environment => Some(&mut g.environments),
                ImageKind::Model => Some(&mut g.models),
                ImageKind::Other => None,
            };
            if let Some(list) = list.filter(|l| !l.contains(&o)) {
                list.push(o);
            }
        }
        if let Some(r) = inv.tag(m.tag).revision() {
            revs[i].insert(r);
        }
    }
    let mut owners: HashMap<RevId, usize> = HashMap::new();
    for set in &revs {
        for r in set {
            *owners.entry(*r).or_default() += 1;
        }
    }
    let overlapping_revisions = owners.values().filter(|n| **n > 1).count();
    // Each group alone.
    for (g, set) in groups.iter_mut().zip(&revs) {
        for r in set {
            engine.set_selected(*r, true);
        }
        g.exclusive_bytes = engine.reclaimable();
        for r in set {
            engine.set_selected(*r, false);
        }
    }
    // Every group, then every group but one.
    for set in &revs {
        for r in set {
            engine.set_selected(*r, true);
        }
    }
    let joint_bytes = engine.reclaimable();
    for (g, set) in groups.iter_mut().zip(&revs) {
        for r in set {
            engine.set_selected(*r, false);
        }
        let without = engine.reclaimable();
        g.shared_bytes = joint_bytes.saturating_sub(without).saturating_sub(g.exclusive_bytes);
        for r in set {
            engine.set_selected(*r, true);
        }
    }
    engine.clear();
    let exclusive_sum = groups.iter().fold(0u64, |a, g| a.saturating_add(g.exclusive_bytes));
    for g in &mut groups {
        g.environments.sort();
        g.models.sort();
    }
    groups.sort_by(|a, b| {
        (b.exclusive_bytes.cmp(&a.exclusive_bytes))
            .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
            .then_with(|| a.key.cmp(&b.key))
    });
    Grouping {
        groups,
        joint_bytes,
        shared_total_bytes: joint_bytes.saturating_sub(exclusive_sum),
        overlapping_revisions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Blob, DigestId, InventoryBuilder, Manifest, ManifestKind};

    fn image(b: &mut InventoryBuilder, m: DigestId, config: Blob, layers: Vec<Blob>) {
        b.manifest(Manifest {
            digest: m,
            media_type: "m".into(),
            size: 10,
            kind: ManifestKind::Image { config, layers },
            created: None,
        });
    }

    fn oid(n: u8) -> ObjectId {
        ObjectId::from_bytes([n; 12])
    }

    /// env/e1-1 {base 5000, a 1000}, env/e1-2 {base, b 2000} (owner ann), env/e2-1 {base,
    /// c 3000} (owner bob), env/x-1 {d 700} (no owner). Manifest blobs are 10 bytes, configs 1.
    fn world() -> (Inventory, Vec<TagId>) {
        let mut b = InventoryBuilder::new("reg");
        let repo = b.repo("dominodatalab/environment");
        let base = b.digest("sha256:base");
        let mut tags = Vec::new();
        for (i, (tag, own, size)) in [
            ("e1-1", "a", 1000),
            ("e1-2", "b", 2000),
            ("e2-1", "c", 3000),
            ("x-1", "d", 700),
        ]
        .into_iter()
        .enumerate()
        {
            let m = b.digest(&format!("sha256:m{i}"));
            let cfg = b.digest(&format!("sha256:cfg{i}"));
            let own = b.digest(&format!("sha256:{own}"));
            let mut layers = vec![Blob { digest: own, size }];
            if tag != "x-1" {
                layers.insert(
                    0,
                    Blob {
                        digest: base,
                        size: 5000,
                    },
                );
            }
            image(&mut b, m, Blob { digest: cfg, size: 1 }, layers);
            b.tag(repo, tag, m);
            tags.push(tag);
        }
        let inv = b.finish();
        let ids = tags
            .iter()
            .map(|t| inv.find_tag("dominodatalab/environment", t).unwrap())
            .collect();
        (inv, ids)
    }

    fn member(tag: TagId, key: Option<&str>, object: u8) -> Member {
        Member {
            tag,
            key: key.map(String::from),
            label: key.map(|k| format!("user {k}")),
            object: Some(oid(object)),
        }
    }

    /// Exclusive bytes are what each group alone frees; the base layer shared by ann's and
    /// bob's images is freed only jointly, so it is both groups' shared bytes and counted once
    /// in `shared_total_bytes`; the sum of exclusive and shared totals is the joint figure.
    #[test]
    fn groups_split_joint_bytes_into_exclusive_and_shared_without_double_counting() {
        let (inv, t) = world();
        let mut engine = SpaceEngine::new(&inv);
        let members = vec![
            member(t[0], Some("ann"), 1),
            member(t[1], Some("ann"), 1),
            member(t[2], Some("bob"), 2),
            member(t[3], None, 9),
            member(t[0], Some("bob"), 1), // listed again under another category: counts once
        ];
        let g = group(&inv, &mut engine, &members);
        let row = |k: Option<&str>| g.groups.iter().find(|x| x.key.as_deref() == k).unwrap();
        let (ann, bob, none) = (row(Some("ann")), row(Some("bob")), row(None));
        // ann alone: a + b + two manifests + two configs; base stays for bob's image.
        assert_eq!(ann.exclusive_bytes, 1000 + 2000 + 2 * 11);
        assert_eq!(ann.tags, vec![t[0], t[1]]);
        assert_eq!((ann.environments.clone(), ann.models.len()), (vec![oid(1)], 0));
        assert_eq!(bob.exclusive_bytes, 3000 + 11);
        assert_eq!(bob.tags, vec![t[2]]);
        assert_eq!(none.exclusive_bytes, 700 + 11);
        assert_eq!((ann.shared_bytes, bob.shared_bytes, none.shared_bytes), (5000, 5000, 0));
        assert_eq!(g.joint_bytes, 5000 + 1000 + 2000 + 3000 + 700 + 4 * 11);
        assert_eq!(g.shared_total_bytes, 5000);
        let exclusive: u64 = g.groups.iter().map(|x| x.exclusive_bytes).sum();
        assert_eq!(exclusive + g.shared_total_bytes, g.joint_bytes);
        assert_eq!(g.overlapping_revisions, 0);
        let order: Vec<Option<&str>> = g.groups.iter().map(|x| x.key.as_deref()).collect();
        assert_eq!(order, vec![Some("ann"), Some("bob"), None], "largest exclusive first");
        assert_eq!(engine.selected_count(), 0, "the engine is left cleared");
        assert_eq!(engine.reclaimable(), 0);
    }

    /// A tag outside the candidates keeps the shared layer: then nobody frees it, alone or
    /// together, and no group claims it as shared.
    #[test]
    fn a_layer_kept_by_a_non_candidate_is_nobodys_bytes() {
        let (inv, t) = world();
        let mut engine = SpaceEngine::new(&inv);
        let g = group(
            &inv,
            &mut engine,
            &[member(t[0], Some("ann"), 1), member(t[2], Some("bob"), 2)],
        );
        assert_eq!(g.joint_bytes, 1000 + 3000 + 2 * 11, "base stays for e1-2");
        assert_eq!(g.shared_total_bytes, 0);
        assert!(g.groups.iter().all(|x| x.shared_bytes == 0), "{:?}", g.groups);
    }

    /// One digest tagged in two groups is a revision of both: each group's exclusive bytes
    /// include it, and the overlap is reported.
    #[test]
    fn a_revision_in_two_groups_is_reported_as_overlap() {
        let mut b = InventoryBuilder::new("reg");
        let repo = b.repo("dominodatalab/environment");
        let m = b.digest("sha256:m");
        let cfg = b.digest("sha256:cfg");
        let l = b.digest("sha256:l");
        image(
            &mut b,
            m,
            Blob { digest: cfg, size: 1 },
            vec![Blob { digest: l, size: 100 }],
        );
        b.tag(repo, "one", m);
        b.tag(repo, "two", m);
        let inv = b.finish();
        let one = inv.find_tag("dominodatalab/environment", "one").unwrap();
        let two = inv.find_tag("dominodatalab/environment", "two").unwrap();
        let mut engine = SpaceEngine::new(&inv);
        let g = group(
            &inv,
            &mut engine,
            &[member(one, Some("ann"), 1), member(two, Some("bob"), 2)],
        );
        assert_eq!(g.overlapping_revisions, 1);
        assert!(g.groups.iter().all(|x| x.exclusive_bytes == 111), "{:?}", g.groups);
        assert_eq!(g.joint_bytes, 111);
    }
}
