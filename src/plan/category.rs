//! Cleanup categories: the closed list of ids, and what each yields — candidates with
//! human-readable reasons, protected tags with every protection, or "unavailable" with why.

use crate::model::{Inventory, ObjectId, RevId, TagId, TagState};
use serde::{Deserialize, Serialize};

/// Every category the tool knows; ids are a wire contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CategoryId {
    ArchivedEnvironments,
    ArchivedModels,
    UnusedEnvironments,
    DeactivatedOwnerEnvironments,
    OldRevisions,
    UnreferencedTags,
    OrphanedReferences,
    BrokenTags,
    /// Manifest revisions no tag points to and no index lists (storage inventories only).
    UntaggedManifests,
}

impl CategoryId {
    pub const ALL: [CategoryId; 9] = [
        CategoryId::ArchivedEnvironments,
        CategoryId::ArchivedModels,
        CategoryId::UnusedEnvironments,
        CategoryId::DeactivatedOwnerEnvironments,
        CategoryId::OldRevisions,
        CategoryId::UnreferencedTags,
        CategoryId::OrphanedReferences,
        CategoryId::BrokenTags,
        CategoryId::UntaggedManifests,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CategoryId::ArchivedEnvironments => "archived-environments",
            CategoryId::ArchivedModels => "archived-models",
            CategoryId::UnusedEnvironments => "unused-environments",
            CategoryId::DeactivatedOwnerEnvironments => "deactivated-owner-environments",
            CategoryId::OldRevisions => "old-revisions",
            CategoryId::UnreferencedTags => "unreferenced-tags",
            CategoryId::OrphanedReferences => "orphaned-references",
            CategoryId::BrokenTags => "broken-tags",
            CategoryId::UntaggedManifests => "untagged-manifests",
        }
    }

    /// Short title for the TUI's category list.
    pub fn title(self) -> &'static str {
        match self {
            CategoryId::ArchivedEnvironments => "Archived environments",
            CategoryId::ArchivedModels => "Archived models",
            CategoryId::UnusedEnvironments => "Unused environments",
            CategoryId::DeactivatedOwnerEnvironments => "Deactivated owners' envs",
            CategoryId::OldRevisions => "Old revisions",
            CategoryId::UnreferencedTags => "Unreferenced tags",
            CategoryId::OrphanedReferences => "Orphaned Mongo refs",
            CategoryId::BrokenTags => "Broken tags",
            CategoryId::UntaggedManifests => "Untagged manifests",
        }
    }

    pub fn parse(s: &str) -> Option<CategoryId> {
        CategoryId::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for CategoryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryStatus {
    Ok,
    /// The category could not be computed (a source it depends on is missing or failed).
    Unavailable(String),
}

/// A tag the category proposes for deletion, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub tag: TagId,
    pub object_id: Option<ObjectId>,
    pub reasons: Vec<String>,
}

/// A tag the category would have proposed but a protection forbids, with every protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedTag {
    pub tag: TagId,
    pub protected_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryResult {
    pub id: CategoryId,
    pub status: CategoryStatus,
    pub candidates: Vec<Candidate>,
    pub protected: Vec<ProtectedTag>,
    /// Mongo records (not registry tags) the category proposes to delete: orphaned references.
    pub records: Vec<OrphanRecord>,
    /// Manifest revisions with no tag the category proposes to delete by digest
    /// (untagged-manifests).
    pub revisions: Vec<RevCandidate>,
    /// Untagged revisions a protection keeps (a pod by digest, the grace period).
    pub protected_revisions: Vec<(RevId, Vec<String>)>,
    /// Mongo records the category would have proposed but a protection forbids.
    pub protected_records: Vec<(OrphanRecord, Vec<String>)>,
    /// Things the user should know about how this result was computed, e.g. a protection
    /// source that was turned off with `--without`.
    pub notes: Vec<String>,
}

/// An untagged manifest revision proposed for deletion by digest, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevCandidate {
    pub rev: RevId,
    pub reasons: Vec<String>,
}

/// A Mongo document whose image is missing from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanRecord {
    /// `environment_revisions` or `model_versions`.
    pub collection: &'static str,
    pub document_id: ObjectId,
    /// The image tag the document names.
    pub tag: String,
    pub reasons: Vec<String>,
}

impl CategoryResult {
    pub fn unavailable(id: CategoryId, reason: impl Into<String>) -> Self {
        CategoryResult::new(id, CategoryStatus::Unavailable(reason.into()))
    }

    /// An empty result with `status`.
    pub fn new(id: CategoryId, status: CategoryStatus) -> Self {
        CategoryResult {
            id,
            status,
            candidates: vec![],
            protected: vec![],
            records: vec![],
            revisions: vec![],
            protected_revisions: vec![],
            protected_records: vec![],
            notes: vec![],
        }
    }
}

/// Tags whose manifest, an index child or a referenced blob could not be read.
pub fn broken_tags(inv: &Inventory) -> CategoryResult {
    let candidates = inv
        .tag_ids()
        .filter_map(|id| match &inv.tag(id).state {
            TagState::Broken { reason, .. } => Some(Candidate {
                tag: id,
                object_id: ObjectId::prefix_of_tag(&inv.domino_tag(id)),
                reasons: vec![format!("broken: {reason}")],
            }),
            TagState::Ok(_) => None,
        })
        .collect();
    CategoryResult {
        candidates,
        ..CategoryResult::new(CategoryId::BrokenTags, CategoryStatus::Ok)
    }
}
