//! The user's marks: manifest revisions (a tag deletes its digest and every sibling with it),
//! plus broken tags that have no readable revision, plus orphaned Mongo references (records
//! whose image is missing; they go only with Mongo cleanup on), plus untagged manifests (by
//! digest; storage inventories only). Every toggle goes through the
//! [`SpaceEngine`], so reclaimable bytes are always current at O(image) per toggle.

use super::mode::{Plan, PlanItem};
use crate::dataset::Dataset;
use crate::model::{ImageKind, Inventory, ObjectId, RevId, TagId};
use crate::plan::deletion::{self, Wanted};
use crate::plan::{CategoryId, SpaceEngine};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// An orphaned reference by what names it across reloads: its collection and document id.
pub type RecordKey = (&'static str, ObjectId);

#[derive(Debug, Clone)]
pub struct Selection {
    engine: SpaceEngine,
    revs: BTreeMap<RevId, CategoryId>,
    broken: BTreeMap<TagId, CategoryId>,
    records: BTreeSet<RecordKey>,
    /// Untagged manifests (untagged-manifests candidates), deleted by digest.
    untagged: BTreeMap<RevId, CategoryId>,
}

impl Selection {
    pub fn new(engine: SpaceEngine) -> Self {
        Selection {
            engine,
            revs: BTreeMap::new(),
            broken: BTreeMap::new(),
            records: BTreeSet::new(),
            untagged: BTreeMap::new(),
        }
    }

    pub fn engine(&self) -> &SpaceEngine {
        &self.engine
    }

    pub fn is_empty(&self) -> bool {
        self.revs.is_empty() && self.broken.is_empty() && self.records.is_empty() && self.untagged.is_empty()
    }

    /// Orphaned Mongo references marked.
    pub fn record_count(&self) -> usize {
        self.records.len()
    }

    pub fn is_record_marked(&self, key: &RecordKey) -> bool {
        self.records.contains(key)
    }

    pub fn set_record(&mut self, key: RecordKey, on: bool) {
        if on {
            self.records.insert(key);
        } else {
            self.records.remove(&key);
        }
    }

    pub fn records(&self) -> impl Iterator<Item = &RecordKey> + '_ {
        self.records.iter()
    }

    /// Untagged manifests marked.
    pub fn untagged_count(&self) -> usize {
        self.untagged.len()
    }

    pub fn is_untagged_marked(&self, rev: RevId) -> bool {
        self.untagged.contains_key(&rev)
    }

    /// Marks an untagged manifest (a revision with no tags) or unmarks it.
    pub fn set_untagged(&mut self, rev: RevId, on: bool) {
        if on {
            self.untagged.insert(rev, CategoryId::UntaggedManifests);
        } else {
            self.untagged.remove(&rev);
        }
        self.engine.set_selected(rev, on);
    }

    /// Bytes GC frees once the marked manifests are deleted.
    pub fn reclaimable(&self) -> u64 {
        self.engine.reclaimable()
    }

    /// Digests (broken tags and untagged manifests included) marked.
    pub fn item_count(&self) -> usize {
        self.revs.len() + self.broken.len() + self.untagged.len()
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
        for r in std::mem::take(&mut self.untagged).into_keys() {
            self.engine.set_selected(r, false);
        }
        self.broken.clear();
        self.records.clear();
    }

    /// Re-applies marks made on `old` to `new` by `repository:tag` (ids change on reload), but
    /// only where the tag still names the same digest and nothing protects it now: a mark
    /// never moves to another image. Returns how many marks were dropped.
    pub fn carry_over(
        &mut self,
        old: &Inventory,
        prev: &Selection,
        new: &Inventory,
        protected: &std::collections::BTreeMap<TagId, Vec<String>>,
    ) -> usize {
        let same = |t: TagId| {
            let tag = old.tag(t);
            let n = new.find_tag(&old.repo(tag.repo).name, &tag.name)?;
            let digest = |inv: &Inventory, id: TagId| inv.tag_digest(id).map(|d| inv.digests.name(d).to_string());
            (digest(old, t) == digest(new, n) && !protected.contains_key(&n)).then_some(n)
        };
        let mut dropped = 0;
        for (r, cat) in &prev.revs {
            match old.revision(*r).tags.iter().find_map(|t| same(*t)) {
                Some(t) => self.set(new, t, *cat, true),
                None => dropped += 1,
            }
        }
        for (t, cat) in &prev.broken {
            match same(*t) {
                Some(t) => self.set(new, t, *cat, true),
                None => dropped += 1,
            }
        }
        dropped
    }

    /// Re-applies marked untagged manifests of `old` to `new` by repository and digest, but
    /// only those the new data still proposes as untagged-manifests candidates (a manifest
    /// tagged, listed by an index or protected since is dropped). Returns how many dropped.
    pub fn carry_over_untagged(&mut self, old: &Inventory, prev: &Selection, new: &Dataset) -> usize {
        let name = |inv: &Inventory, r: RevId| {
            let rev = inv.revision(r);
            (
                inv.repo(rev.repo).name.clone(),
                inv.digests.name(rev.manifest).to_string(),
            )
        };
        let candidates: std::collections::HashMap<(String, String), RevId> = new
            .categories
            .iter()
            .filter(|c| c.id == CategoryId::UntaggedManifests && c.status == crate::plan::CategoryStatus::Ok)
            .flat_map(|c| c.revisions.iter())
            .map(|c| (name(&new.inventory, c.rev), c.rev))
            .collect();
        let mut dropped = 0;
        for r in prev.untagged.keys() {
            match candidates.get(&name(old, *r)) {
                Some(n) => self.set_untagged(*n, true),
                None => dropped += 1,
            }
        }
        dropped
    }

    /// Freezes the marks into a plan; `visible` are the tags the current view shows, and
    /// `visible_untagged` the untagged manifests it shows.
    pub fn plan(
        &self,
        data: &Dataset,
        visible: &HashSet<TagId>,
        visible_untagged: &HashSet<RevId>,
        mongo_cleanup: bool,
        fingerprint: &str,
    ) -> Plan {
        let inv = &data.inventory;
        let mut wanted: Vec<Wanted> = Vec::with_capacity(self.item_count());
        // A marked digest goes whole, every tag on it (the modal lists the siblings).
        for (r, cat) in &self.revs {
            wanted.extend(inv.revision(*r).tags.iter().map(|t| (*t, Some(*cat))));
        }
        wanted.extend(self.broken.iter().map(|(t, cat)| (*t, Some(*cat))));
        let mut engine = self.engine.clone();
        let untagged: Vec<(RevId, Option<CategoryId>)> = self.untagged.iter().map(|(r, c)| (*r, Some(*c))).collect();
        let mut core = deletion::build_with(
            inv,
            &mut engine,
            &wanted,
            &untagged,
            "selection",
            fingerprint,
            data.generated_at,
        );
        let untagged_names: HashSet<(String, String)> = self
            .untagged
            .keys()
            .filter(|r| visible_untagged.contains(r))
            .map(|r| {
                let rev = inv.revision(*r);
                (
                    inv.repo(rev.repo).name.clone(),
                    inv.digests.name(rev.manifest).to_string(),
                )
            })
            .collect();
        // Marked references, as the orphaned-references category lists them now (the delete
        // run re-checks each on fresh data: still orphaned, image confirmed missing).
        let records: Vec<crate::plan::OrphanRecord> = data
            .categories
            .iter()
            .filter(|c| c.id == CategoryId::OrphanedReferences)
            .flat_map(|c| c.records.iter())
            .filter(|r| self.records.contains(&(r.collection, r.document_id)))
            .cloned()
            .collect();
        if !records.is_empty() {
            core.add_records(&records);
        }
        if mongo_cleanup {
            // `build` sealed it with the switch off; seal again only when it changes.
            core.set_mongo_cleanup(true);
        }
        let mut hidden = 0;
        let items: Vec<PlanItem> = core
            .manifests
            .iter()
            .map(|m| {
                let shown: Vec<String> = m
                    .tags
                    .iter()
                    .filter(|t| inv.find_tag(&m.repository, t).is_some_and(|id| visible.contains(&id)))
                    .cloned()
                    .collect();
                let untagged_shown =
                    m.tags.is_empty() && untagged_names.contains(&(m.repository.clone(), m.digest.clone()));
                if shown.is_empty() && m.child_of.is_none() && !untagged_shown {
                    hidden += 1;
                }
                // Selected (visible) tags first, then the siblings that go with the digest.
                let mut ordered = shown.clone();
                if ordered.is_empty()
                    && let Some(first) = m.tags.first()
                {
                    ordered.push(first.clone());
                }
                let siblings: Vec<String> = m.tags.iter().filter(|t| !ordered.contains(t)).cloned().collect();
                ordered.extend(siblings.iter().cloned());
                PlanItem {
                    category: m.categories.first().copied(),
                    kind: m.kind.unwrap_or(ImageKind::Other),
                    repository: m.repository.clone(),
                    digest: m.digest.clone(),
                    tags: ordered,
                    siblings,
                    child_of: m.child_of.clone(),
                }
            })
            .collect();
        Plan {
            registry: core.registry.clone(),
            generated_at: data.generated_at,
            per_category: core.per_category.clone(),
            tag_count: core.tag_count(),
            untagged_count: core
                .manifests
                .iter()
                .filter(|m| m.tags.is_empty() && m.child_of.is_none())
                .count(),
            reclaimable_bytes: core.reclaimable_bytes,
            mongo_cleanup,
            hidden_by_filter: hidden,
            items,
            core,
        }
    }
}
