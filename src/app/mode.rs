//! The screen the app is in: browsing, confirming a frozen plan, executing it, or done — and
//! the plan value itself, which is what the worker executes and `w` writes.

use crate::model::ImageKind;
use crate::plan::CategoryId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Browse,
    Confirm(Confirm),
    Executing(Execution),
    Done(Execution),
}

/// A deletion plan frozen from the selection, as the modal shows it. `core` is the one plan
/// value (`crate::plan::deletion::Plan`): what the run deletes, by repository + digest; the
/// rest is display, derived from it when it was frozen. Reloads never change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub core: crate::plan::deletion::Plan,
    pub registry: String,
    /// When the data the plan was made from was read (Unix seconds).
    pub generated_at: i64,
    /// One per `core.manifests`, same order (index children included).
    pub items: Vec<PlanItem>,
    pub per_category: Vec<CategoryCount>,
    /// Tags removed, siblings included.
    pub tag_count: usize,
    /// Untagged manifests deleted by digest (entries with no tags that are not index
    /// children).
    pub untagged_count: usize,
    pub reclaimable_bytes: u64,
    pub mongo_cleanup: bool,
    /// Selected tags not visible in the current view (another category, or the filter).
    pub hidden_by_filter: usize,
}

/// One manifest deleted by digest, with every tag that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub category: Option<CategoryId>,
    pub kind: ImageKind,
    pub repository: String,
    pub digest: String,
    /// The tags the user selected, then the siblings that go with them.
    pub tags: Vec<String>,
    pub siblings: Vec<String>,
    /// For an index child the plan deletes after its index.
    pub child_of: Option<String>,
}

pub type CategoryCount = crate::plan::deletion::CategoryTotal;

impl Plan {
    /// What the user must type to confirm: the count of tags, untagged manifests and Mongo
    /// records that go, or `delete` for large plans.
    pub fn confirmation_word(&self) -> String {
        let n = self.tag_count + self.untagged_count + self.core.records.len();
        if n > 20 { "delete".to_string() } else { n.to_string() }
    }

    pub fn sibling_count(&self) -> usize {
        self.items.iter().map(|i| i.siblings.len()).sum()
    }

    /// The modal's Mongo switch: changes the core plan too (and its checksum).
    pub fn set_mongo_cleanup(&mut self, on: bool) {
        self.mongo_cleanup = on;
        self.core.set_mongo_cleanup(on);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Cancel,
    Delete,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub plan: Plan,
    pub focus: Button,
    pub typed: String,
    /// The data was reloaded after the plan was frozen: the plan is unchanged, and this is
    /// what the re-check on the newer data says. The operator must confirm again.
    pub stale: Option<Recheck>,
}

/// The frozen plan re-checked against a newer dataset (pure; the run re-checks again).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recheck {
    pub delete: usize,
    pub already_gone: usize,
    /// Skipped manifests with why (first few).
    pub skipped: Vec<String>,
    pub skipped_count: usize,
}

/// What happened to one plan item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
    /// Its tags were removed and the manifest kept (another tag keeps it).
    Untagged,
    /// The registry confirmed it was gone before this run's DELETE (an earlier run).
    AlreadyGone,
    /// Dry run: nothing was deleted, the item would have been.
    WouldDelete,
    Failed(String),
    Skipped(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub plan: Plan,
    pub outcomes: Vec<Option<Outcome>>,
    pub summary: Option<Summary>,
    /// The run's current step ("loading fresh data ...").
    pub step: Option<String>,
}

impl Execution {
    pub fn done(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_some()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub deleted: usize,
    pub already_gone: usize,
    pub would_delete: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Bytes the registry's GC frees given the items actually deleted (the run's own number).
    pub reclaimable_bytes: u64,
    /// Why the run stopped or could not run, and what the Mongo cleanup did.
    pub notes: Vec<String>,
}

/// What an executor reports when a run ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunEnd {
    pub reclaimable_bytes: u64,
    pub notes: Vec<String>,
}
