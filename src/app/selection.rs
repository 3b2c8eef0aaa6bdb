//! The user's marks: manifest revisions (a tag deletes its digest and every sibling with it),
//! plus broken tags that have no readable revision. Every toggle goes through the
//! [`SpaceEngine`], so reclaimable bytes are always current at O(image) per toggle.

use super::mode::{CategoryCount, Plan, PlanItem};
use crate::dataset::Dataset;
use crate::model::{ImageKind, Inventory, RevId, TagId};
use crate::plan::{CategoryId, SpaceEngine};
use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone)]
pub struct Selection {
    engine: SpaceEngine,
    revs: BTreeMap<RevId, CategoryId>,
    broken: BTreeMap<TagId, CategoryId>,
}

impl Selection {
    pub fn new(engine: SpaceEngine) -> Self {
        Selection {
            engine,
            revs: BTreeMap::new(),
            broken: BTreeMap::new(),
        }
    }

    pub fn engine(&self) -> &SpaceEngine {
        &self.engine
    }

    pub fn is_empty(&self) -> bool {
        self.revs.is_empty() && self.broken.is_empty()
    }

    /// Bytes GC frees once the marked manifests are deleted.
    pub fn reclaimable(&self) -> u64 {
        self.engine.reclaimable()
    }

    /// Digests (and broken tags) marked.
    pub fn item_count(&self) -> usize {
        self.revs.len() + self.broken.len()
    }

    /// Tags that go, siblings included.
    pub fn tag_count(&self, inv: &Inventory) -> usize {
        self.revs.keys().map(|r| inv.revision(*r).tags.len()).sum::<usize>() + self.broken.len()
    }

    pub fn is_marked(&self, inv: &Inventory, tag: TagId) -> bool {
        match inv.tag(tag).revision() {
            Some(r) => self.revs.contains_key(&r),
            None => self.broken.contains_key(&tag),
        }
    }

    pub fn set(&mut self, inv: &Inventory, tag: TagId, category: CategoryId, on: bool) {
        match (inv.tag(tag).revision(), on) {
            (Some(r), true) => {
                self.revs.entry(r).or_insert(category);
                self.engine.set_selected(r, true);
            }
            (Some(r), false) => {
                self.revs.remove(&r);
                self.engine.set_selected(r, false);
            }
            (None, true) => {
                self.broken.entry(tag).or_insert(category);
            }
            (None, false) => {
                self.broken.remove(&tag);
            }
        }
    }

    pub fn clear(&mut self) {
        for r in std::mem::take(&mut self.revs).into_keys() {
            self.engine.set_selected(r, false);
        }
        self.broken.clear();
    }

    /// Re-applies marks made on `old` to `new` by `repository:tag` (ids change on reload).
    pub fn carry_over(&mut self, old: &Inventory, prev: &Selection, new: &Inventory) {
        let find = |t: TagId| {
            let tag = old.tag(t);
            new.find_tag(&old.repo(tag.repo).name, &tag.name)
        };
        for (r, cat) in &prev.revs {
            if let Some(t) = old.revision(*r).tags.first().and_then(|t| find(*t)) {
                self.set(new, t, *cat, true);
            }
        }
        for (t, cat) in &prev.broken {
            if let Some(t) = find(*t) {
                self.set(new, t, *cat, true);
            }
        }
    }

    /// Freezes the marks into a plan; `visible` are the tags the current view shows.
    pub fn plan(&self, data: &Dataset, visible: &HashSet<TagId>, mongo_cleanup: bool) -> Plan {
        let inv = &data.inventory;
        let mut items = Vec::with_capacity(self.item_count());
        let mut hidden = 0;
        for (r, cat) in &self.revs {
            let rev = inv.revision(*r);
            let tags: Vec<TagId> = rev.tags.clone();
            let shown: Vec<TagId> = tags.iter().copied().filter(|t| visible.contains(t)).collect();
            if shown.is_empty() {
                hidden += 1;
            }
            items.push(item(inv, *cat, Some(*r), tags, &shown));
        }
        for (t, cat) in &self.broken {
            if !visible.contains(t) {
                hidden += 1;
            }
            items.push(item(inv, *cat, None, vec![*t], &[*t]));
        }
        let per_category = per_category(&items);
        let tag_count = items.iter().map(|i| i.tags.len()).sum();
        Plan {
            schema_version: 1,
            registry: inv.registry.clone(),
            generated_at: data.generated_at,
            items,
            per_category,
            tag_count,
            reclaimable_bytes: self.engine.reclaimable(),
            mongo_cleanup,
            hidden_by_filter: hidden,
        }
    }
}

fn item(inv: &Inventory, category: CategoryId, rev: Option<RevId>, tags: Vec<TagId>, shown: &[TagId]) -> PlanItem {
    let first = inv.tag(tags[0]);
    let repo = inv.repo(first.repo);
    // Selected (visible) tags first, then the siblings that go with the digest.
    let mut ordered: Vec<TagId> = shown.to_vec();
    if ordered.is_empty() {
        ordered.push(tags[0]);
    }
    let siblings: Vec<TagId> = tags.iter().copied().filter(|t| !ordered.contains(t)).collect();
    let names = |ts: &[TagId]| ts.iter().map(|t| inv.tag(*t).name.clone()).collect::<Vec<_>>();
    PlanItem {
        category,
        kind: repo.kind,
        repository: repo.name.clone(),
        digest: inv.tag_digest(tags[0]).map(|d| inv.digests.name(d).to_string()),
        tags: names(&[ordered.clone(), siblings.clone()].concat()),
        siblings: names(&siblings),
        rev,
        tag_ids: tags,
    }
}

fn per_category(items: &[PlanItem]) -> Vec<CategoryCount> {
    let mut map: BTreeMap<CategoryId, CategoryCount> = BTreeMap::new();
    for i in items {
        let c = map.entry(i.category).or_insert(CategoryCount {
            category: i.category,
            environments: 0,
            models: 0,
            other: 0,
        });
        let n = i.tags.len();
        match i.kind {
            ImageKind::Environment => c.environments += n,
            ImageKind::Model => c.models += n,
            ImageKind::Other => c.other += n,
        }
    }
    map.into_values().collect()
}
