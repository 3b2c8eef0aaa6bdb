//! Reclaimable bytes for a selection of manifests, exactly as Distribution's plain
//! `garbage-collect` would free them after the selected manifests are deleted by digest.
//!
//! GC marks, for every manifest revision still linked in any repository, the manifest blob
//! itself and everything it references (config and layers; for an index, its child manifests).
//! Every unmarked blob is swept. So a blob is reclaimable iff every revision marking it is gone.
//! Revisions go when selected — unless still needed as the child of a remaining index — and
//! an index takes its children with it unless something else in the repository keeps them.
//! The engine keeps per-blob reference counts so a toggle costs O(blobs of that image).

use crate::model::{DigestId, Inventory, ManifestKind, RevId};
use std::collections::HashSet;

/// Incremental reference counts over every blob the registry's GC would mark.
#[derive(Debug, Clone)]
pub struct SpaceEngine {
    sizes: Vec<u64>,
    refcount: Vec<u32>,
    mark_start: Vec<u32>,
    marks: Vec<u32>,
    parents: Vec<Vec<u32>>,
    children: Vec<Vec<u32>>,
    tagged: Vec<bool>,
    selected: Vec<bool>,
    alive: Vec<bool>,
    /// Summed in u128: sizes come from manifests, and a registry may claim sizes near
    /// `u64::MAX`, whose sum must not wrap (in release that would bypass `--max-bytes`).
    reclaimable: u128,
    exclusive: Vec<u64>,
    selected_count: usize,
}

impl SpaceEngine {
    /// Builds the counts with nothing selected, and each revision's exclusive bytes.
    pub fn new(inv: &Inventory) -> Self {
        let n_digests = inv.digests.len();
        let mut sizes = vec![0u64; n_digests];
        let mut mark_start = Vec::with_capacity(inv.revisions.len() + 1);
        let mut marks: Vec<u32> = Vec::new();
        for rev in &inv.revisions {
            mark_start.push(marks.len() as u32);
            let begin = marks.len();
            for (d, size) in revision_marks(inv, rev.manifest) {
                sizes[d.0 as usize] = size;
                marks.push(d.0);
            }
            // A layer listed twice in one manifest is still one mark for GC.
            marks[begin..].sort_unstable();
            let mut w = begin;
            for r in begin..marks.len() {
                if r == begin || marks[r] != marks[w - 1] {
                    marks[w] = marks[r];
                    w += 1;
                }
            }
            marks.truncate(w);
        }
        mark_start.push(marks.len() as u32);
        let n = inv.revisions.len();
        let mut engine = SpaceEngine {
            sizes,
            refcount: vec![0; n_digests],
            mark_start,
            marks,
            parents: inv
                .revisions
                .iter()
                .map(|r| r.parents.iter().map(|p| p.0).collect())
                .collect(),
            children: inv
                .revisions
                .iter()
                .map(|r| r.children.iter().map(|c| c.0).collect())
                .collect(),
            tagged: inv.revisions.iter().map(|r| r.is_root()).collect(),
            selected: vec![false; n],
            alive: vec![false; n],
            reclaimable: 0,
            exclusive: vec![0; n],
            selected_count: 0,
        };
        // Everything starts alive: tagged revisions, and index children through their parents.
        for r in 0..n {
            engine.refresh(r as u32);
        }
        engine.reclaimable = 0;
        for r in 0..n {
            engine.toggle(RevId(r as u32));
            engine.exclusive[r] = saturate(engine.reclaimable);
            engine.toggle(RevId(r as u32));
        }
        engine
    }

    /// Bytes GC would free if exactly the selected revisions were deleted; `u64::MAX` when the
    /// claimed sizes add up to more (so any byte limit refuses it).
    pub fn reclaimable(&self) -> u64 {
        saturate(self.reclaimable)
    }

    /// Bytes freed if only this revision were deleted (nothing else selected).
    pub fn exclusive_bytes(&self, rev: RevId) -> u64 {
        self.exclusive[rev.0 as usize]
    }

    pub fn is_selected(&self, rev: RevId) -> bool {
        self.selected[rev.0 as usize]
    }

    pub fn selected_count(&self) -> usize {
        self.selected_count
    }

    /// Whether deleting the selection removes this revision (selected and not held by an index
    /// that stays, or the unneeded child of a deleted index).
    pub fn is_removed(&self, rev: RevId) -> bool {
        !self.alive[rev.0 as usize]
    }

    /// Selected, but kept alive because a remaining index in its repository lists it.
    pub fn is_held_by_index(&self, rev: RevId) -> bool {
        self.selected[rev.0 as usize] && self.alive[rev.0 as usize]
    }

    pub fn set_selected(&mut self, rev: RevId, on: bool) {
        if self.selected[rev.0 as usize] != on {
            self.toggle(rev);
        }
    }

    /// Flips one revision; cost is proportional to its blobs (and its children's, for an index).
    pub fn toggle(&mut self, rev: RevId) {
        let r = rev.0 as usize;
        self.selected[r] = !self.selected[r];
        if self.selected[r] {
            self.selected_count += 1;
        } else {
            self.selected_count -= 1;
        }
        self.refresh(rev.0);
    }

    /// Keeps a revision alive whatever is selected, as if it had a tag of its own: an index
    /// child whose DELETE failed stays linked, so GC still marks its blobs.
    pub fn keep(&mut self, rev: RevId) {
        self.tagged[rev.0 as usize] = true;
        self.refresh(rev.0);
    }

    pub fn clear(&mut self) {
        for r in 0..self.selected.len() {
            if self.selected[r] {
                self.toggle(RevId(r as u32));
            }
        }
    }

    fn wanted_alive(&self, r: u32) -> bool {
        let r = r as usize;
        (self.tagged[r] && !self.selected[r]) || self.parents[r].iter().any(|p| self.alive[*p as usize])
    }

    /// Re-derives aliveness of `r` and, when it changes, of its children (iteratively, so
    /// nested indexes work too).
    fn refresh(&mut self, r: u32) {
        let mut stack = vec![r];
        while let Some(r) = stack.pop() {
            let want = self.wanted_alive(r);
            if want == self.alive[r as usize] {
                continue;
            }
            if want {
                self.set_alive(r);
            } else {
                self.set_dead(r);
            }
            stack.extend(self.children[r as usize].iter().copied());
        }
    }

    fn set_alive(&mut self, r: u32) {
        self.alive[r as usize] = true;
        let (a, b) = (
            self.mark_start[r as usize] as usize,
            self.mark_start[r as usize + 1] as usize,
        );
        for &d in &self.marks[a..b] {
            let c = &mut self.refcount[d as usize];
            if *c == 0 {
                // Wraps only while `new` builds the baseline; reset to 0 right after.
                self.reclaimable = self.reclaimable.wrapping_sub(u128::from(self.sizes[d as usize]));
            }
            *c += 1;
        }
    }

    fn set_dead(&mut self, r: u32) {
        self.alive[r as usize] = false;
        let (a, b) = (
            self.mark_start[r as usize] as usize,
            self.mark_start[r as usize + 1] as usize,
        );
        for &d in &self.marks[a..b] {
            let c = &mut self.refcount[d as usize];
            *c -= 1;
            if *c == 0 {
                self.reclaimable = self.reclaimable.wrapping_add(u128::from(self.sizes[d as usize]));
            }
        }
    }
}

/// The blobs GC marks for one manifest revision, with their sizes: the manifest blob itself,
/// then its config and layers, or for an index its children's manifest blobs.
fn revision_marks(inv: &Inventory, manifest: DigestId) -> Vec<(DigestId, u64)> {
    let Some(m) = inv.manifest(manifest) else {
        return Vec::new();
    };
    let mut out = vec![(m.digest, m.size)];
    match &m.kind {
        ManifestKind::Image { config, layers } => {
            out.push((config.digest, config.size));
            out.extend(layers.iter().map(|l| (l.digest, l.size)));
        }
        ManifestKind::Index { children } => {
            out.extend(children.iter().map(|(c, _)| (c.digest, c.size)));
        }
    }
    out
}

/// The same answer as [`SpaceEngine::reclaimable`], computed from nothing: which revisions
/// survive, which blobs they mark, and what was marked before but no longer is.
pub fn reclaimable_from_scratch(inv: &Inventory, selected: &HashSet<RevId>) -> u64 {
    let n = inv.revisions.len();
    let mut alive = vec![false; n];
    // Aliveness flows from tagged, unselected revisions down to index children.
    let mut stack: Vec<usize> = (0..n)
        .filter(|r| inv.revisions[*r].is_root() && !selected.contains(&RevId(*r as u32)))
        .collect();
    while let Some(r) = stack.pop() {
        if alive[r] {
            continue;
        }
        alive[r] = true;
        stack.extend(inv.revisions[r].children.iter().map(|c| c.0 as usize));
    }
    let mut before: HashSet<DigestId> = HashSet::new();
    let mut after: HashSet<DigestId> = HashSet::new();
    let mut sizes = std::collections::HashMap::new();
    for (r, rev) in inv.revisions.iter().enumerate() {
        for (d, size) in revision_marks(inv, rev.manifest) {
            sizes.insert(d, size);
            before.insert(d);
            if alive[r] {
                after.insert(d);
            }
        }
    }
    saturate(before.difference(&after).map(|d| u128::from(sizes[d])).sum())
}

/// A byte count as u64, saturating: more than `u64::MAX` bytes is reported as `u64::MAX`.
fn saturate(bytes: u128) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
