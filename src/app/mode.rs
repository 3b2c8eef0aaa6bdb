//! The screen the app is in: browsing, confirming a frozen plan, executing it, or done — and
//! the plan value itself, which is what the worker executes and `w` writes.

use crate::model::{ImageKind, RevId, TagId};
use crate::plan::CategoryId;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Browse,
    Confirm(Confirm),
    Executing(Execution),
    Done(Execution),
}

/// A deletion plan frozen from the selection: reloads never change it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub schema_version: u32,
    pub registry: String,
    /// When the data the plan was made from was read (Unix seconds).
    pub generated_at: i64,
    pub items: Vec<PlanItem>,
    pub per_category: Vec<CategoryCount>,
    /// Tags removed, siblings included.
    pub tag_count: usize,
    pub reclaimable_bytes: u64,
    pub mongo_cleanup: bool,
    /// Selected tags not visible in the current view (another category, or the filter).
    pub hidden_by_filter: usize,
}

/// One manifest deleted by digest, with every tag that goes with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanItem {
    pub category: CategoryId,
    pub kind: ImageKind,
    pub repository: String,
    /// `None` for a broken tag whose manifest could not be read.
    pub digest: Option<String>,
    /// The tags the user selected, then the siblings that go with them.
    pub tags: Vec<String>,
    pub siblings: Vec<String>,
    #[serde(skip)]
    pub rev: Option<RevId>,
    #[serde(skip)]
    pub tag_ids: Vec<TagId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CategoryCount {
    pub category: CategoryId,
    pub environments: usize,
    pub models: usize,
    pub other: usize,
}

impl Plan {
    /// What the user must type to confirm: the tag count, or `delete` for large plans.
    pub fn confirmation_word(&self) -> String {
        if self.tag_count > 20 {
            "delete".to_string()
        } else {
            self.tag_count.to_string()
        }
    }

    pub fn sibling_count(&self) -> usize {
        self.items.iter().map(|i| i.siblings.len()).sum()
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
    /// The inventory was reloaded after the plan was frozen.
    pub stale: bool,
}

/// What happened to one plan item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Deleted,
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
}

impl Execution {
    pub fn done(&self) -> usize {
        self.outcomes.iter().filter(|o| o.is_some()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    pub deleted: usize,
    pub would_delete: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Bytes the registry's GC frees given the items actually deleted.
    pub reclaimable_bytes: u64,
}
