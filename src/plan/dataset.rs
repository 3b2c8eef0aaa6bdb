//! What one load of every source produced, as a single value the TUI and headless mode share:
//! the registry inventory, per-source status, computed categories and display labels.

use crate::model::{Inventory, TagId};
use crate::plan::CategoryResult;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Registry,
    Mongo,
    Kubernetes,
    Keycloak,
}

impl SourceKind {
    pub const ALL: [SourceKind; 4] = [
        SourceKind::Registry,
        SourceKind::Mongo,
        SourceKind::Kubernetes,
        SourceKind::Keycloak,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Registry => "registry",
            SourceKind::Mongo => "mongo",
            SourceKind::Kubernetes => "kubernetes",
            SourceKind::Keycloak => "keycloak",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStatus {
    Loading,
    Ok,
    Failed(String),
    /// Turned off on purpose with `--without`.
    Disabled,
}

/// How the TUI and reports describe a tag beyond its name: the environment or model it
/// belongs to, its owner, and the evidence of use (pods, workspaces, runs ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagLabel {
    /// The environment's or model's name.
    pub group: Option<String>,
    /// The owner's username: from Keycloak when it was read, else the Mongo login.
    pub owner: Option<String>,
    pub evidence: Vec<String>,
    /// The environment or model the tag belongs to (the ObjectId its name starts with), when
    /// Mongo knows it.
    pub object: Option<crate::model::ObjectId>,
    /// The owner's Mongo user id (environment `ownerId`, model owner collaborator or creator).
    pub owner_id: Option<crate::model::ObjectId>,
}

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub inventory: Inventory,
    pub sources: BTreeMap<SourceKind, SourceStatus>,
    pub categories: Vec<CategoryResult>,
    pub labels: HashMap<TagId, TagLabel>,
    /// Every protection in force per tag (candidates or not), for re-checks before deletes.
    pub protections: BTreeMap<TagId, Vec<String>>,
    /// When the sources were read (Unix seconds).
    pub generated_at: i64,
    /// The Mongo collections read and their document counts (empty unless Mongo was read).
    pub mongo_collections: Vec<crate::model::domino::CollectionRead>,
}
