//! Domino's Mongo records as the cleaner needs them (domain.md §1): environments, revisions,
//! models, model versions, users and the usage that keeps images alive. Plain values built by
//! the Mongo adapter or by tests; no I/O and no clock.

use super::image::ObjectId;
use std::collections::HashMap;

/// `environments_v2`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Environment {
    pub id: ObjectId,
    pub name: String,
    pub archived: bool,
    pub active_revision: Option<ObjectId>,
    pub owner: Option<ObjectId>,
    /// `visibility == "Private"`.
    pub private: bool,
}

/// `environment_revisions`: one build of an environment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EnvRevision {
    pub id: ObjectId,
    pub environment: ObjectId,
    /// `metadata.dockerImageName.tag`.
    pub tag: Option<String>,
    /// `metadata.dockerImageName.repository`, as Domino stored it (may include a registry host).
    pub repository: Option<String>,
    /// `metadata.isBuilt != false`: a failed build has a tag in Mongo but no image.
    pub built: bool,
    pub author: Option<ObjectId>,
    pub cloned_from: Option<ObjectId>,
}

impl EnvRevision {
    /// The recorded tag in the current layout: a revision recorded in a legacy repository
    /// (`domino-<env>`, tag `<rev>`) is named `<env>-<rev>`, as its registry tag is.
    pub fn domino_tag(&self) -> Option<std::borrow::Cow<'_, str>> {
        let tag = self.tag.as_deref().filter(|t| !t.is_empty())?;
        Some(crate::model::image::domino_tag(
            self.repository.as_deref().unwrap_or(""),
            tag,
        ))
    }
}

/// `models`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    pub id: ObjectId,
    pub name: String,
    pub archived: bool,
    pub environment: Option<ObjectId>,
    /// Owner collaborator, else the creator.
    pub owner: Option<ObjectId>,
}

/// `model_versions` with the slug tags of its non-failed builds, in build order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelVersion {
    pub id: ObjectId,
    pub model: ObjectId,
    pub revision: Option<ObjectId>,
    /// Every non-empty slug tag of a build whose build document is not `Failed` (a missing build
    /// document counts as not failed). All are kept for matching.
    pub slugs: Vec<String>,
    pub repository: Option<String>,
}

impl ModelVersion {
    /// The version's image: the *last* non-empty slug of its non-failed builds (domain.md §1.2).
    pub fn slug(&self) -> Option<&str> {
        self.slugs.iter().rev().find(|s| !s.is_empty()).map(String::as_str)
    }
}

/// `users`: names for reasons and reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub id: ObjectId,
    pub name: String,
    pub login: String,
}

/// `ActiveRevision` or `SomeRevision(<id>)` (domain.md §1.2); anything else is `None` at parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RevisionSpec {
    Active,
    Some(ObjectId),
}

impl RevisionSpec {
    /// Parses Domino's spec string; the `SomeRevision` keyword is case-insensitive.
    pub fn parse(s: &str) -> Option<RevisionSpec> {
        if s == "ActiveRevision" {
            return Some(RevisionSpec::Active);
        }
        let lower = s.to_ascii_lowercase();
        let inner = lower.strip_prefix("somerevision(")?.strip_suffix(')')?;
        ObjectId::parse(inner).ok().map(RevisionSpec::Some)
    }
}

/// Runs grouped per (environment, revision), with the most recent time one was used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunUsage {
    pub environment: ObjectId,
    pub revision: ObjectId,
    /// Unix seconds: the later of the group's latest `completed` and latest `started`.
    pub last_used: Option<i64>,
    pub count: u64,
    /// Runs of any kind (workspace and app sessions included) that have not completed: no
    /// `completed`, or a status that is not final. They use the image *now*.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_flight: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A workspace that is not `Deleted`, with everything it may start from.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct WorkspaceUsage {
    pub id: Option<ObjectId>,
    pub name: String,
    pub environment: Option<ObjectId>,
    pub revision_spec: Option<RevisionSpec>,
    pub compute_environment: Option<ObjectId>,
    pub last_change: Option<i64>,
    /// Environments and revisions named by its sessions (`workspace_session`).
    pub session_environments: Vec<ObjectId>,
    pub session_revisions: Vec<ObjectId>,
}

/// A model version whose most recent qualifying saga is `StartModelVersion` (domain.md §1.5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveModelVersion {
    pub version: ObjectId,
}

/// Something that names an environment as its default: a non-archived project, a scheduler
/// job, an organization, an app version of a live app, a user preference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DefaultUsage {
    pub kind: DefaultKind,
    pub id: ObjectId,
    pub name: String,
    pub environment: ObjectId,
    /// Only projects carry one; `None` means the active revision.
    pub revision_spec: Option<RevisionSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DefaultKind {
    Project,
    SchedulerJob,
    Organization,
    AppVersion,
    UserPreference,
}

impl DefaultKind {
    pub fn describe(self) -> &'static str {
        match self {
            DefaultKind::Project => "default environment of project",
            DefaultKind::SchedulerJob => "environment of scheduled job",
            DefaultKind::Organization => "default environment of organization",
            DefaultKind::AppVersion => "environment of app version",
            DefaultKind::UserPreference => "default environment of user",
        }
    }
}

/// Every usage record the Mongo adapter collected.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub runs: Vec<RunUsage>,
    pub workspaces: Vec<WorkspaceUsage>,
    pub active_model_versions: Vec<ActiveModelVersion>,
    pub defaults: Vec<DefaultUsage>,
}

/// Everything read from Domino's Mongo database.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DominoData {
    pub environments: Vec<Environment>,
    pub revisions: Vec<EnvRevision>,
    pub models: Vec<Model>,
    pub versions: Vec<ModelVersion>,
    pub users: Vec<User>,
    pub usage: Usage,
    /// Which collections were read and how many documents each gave, for the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionRead>,
}

/// One collection of the read: its documents used, or absent (allowed to be).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollectionRead {
    pub name: String,
    /// Documents the read used (after its server-side filter); 0 when absent.
    pub documents: u64,
    pub present: bool,
}

/// Collections every category depends on: without environments nothing can be told apart.
/// Never optional.
pub const CORE_COLLECTION: &str = "environments_v2";

/// Collections whose absence can only take protection away (or add candidates), with what
/// each one gives. A missing one fails the Mongo source unless the operator names it in
/// `mongo.optional_collections`: a renamed or unreadable collection must not read as "nothing
/// uses this image".
pub const PROTECTING_COLLECTIONS: &[(&str, &str)] = &[
    (
        "environment_revisions",
        "revision images, active revisions and clone chains",
    ),
    ("models", "models that keep their environment in use"),
    ("model_versions", "model version images and their base revisions"),
    (
        "builds",
        "which model builds failed (failed builds are never orphaned references)",
    ),
    ("sagas", "deployed model versions"),
    ("runs", "runs, in flight or recent"),
    ("workspace", "workspaces and their environments"),
    ("workspace_session", "workspace sessions and their revisions"),
    ("projects", "project default environments"),
    ("scheduler_jobs", "scheduled jobs' environments"),
];

/// Collections some Domino versions lack (domain.md §1.1: checked for existence by Domino's
/// own tooling), or that only give names: their absence is expected and reported, not an error.
pub const OPTIONAL_COLLECTIONS: &[&str] = &[
    "organizations",
    "app_versions",
    "model_products",
    "userPreferences",
    "users",
];

/// Lookups over [`DominoData`] by id, built once per evaluation.
#[derive(Debug)]
pub struct DominoIndex<'a> {
    pub data: &'a DominoData,
    pub environments: HashMap<ObjectId, &'a Environment>,
    pub revisions: HashMap<ObjectId, &'a EnvRevision>,
    pub models: HashMap<ObjectId, &'a Model>,
    pub versions: HashMap<ObjectId, &'a ModelVersion>,
    pub users: HashMap<ObjectId, &'a User>,
    /// Revisions per environment, oldest first (ObjectIds grow with creation time).
    pub revisions_by_env: HashMap<ObjectId, Vec<&'a EnvRevision>>,
}

impl<'a> DominoIndex<'a> {
    pub fn new(data: &'a DominoData) -> Self {
        let mut revisions_by_env: HashMap<ObjectId, Vec<&EnvRevision>> = HashMap::new();
        for r in &data.revisions {
            revisions_by_env.entry(r.environment).or_default().push(r);
        }
        for revs in revisions_by_env.values_mut() {
            revs.sort_by_key(|r| r.id);
        }
        DominoIndex {
            data,
            environments: data.environments.iter().map(|e| (e.id, e)).collect(),
            revisions: data.revisions.iter().map(|r| (r.id, r)).collect(),
            models: data.models.iter().map(|m| (m.id, m)).collect(),
            versions: data.versions.iter().map(|v| (v.id, v)).collect(),
            users: data.users.iter().map(|u| (u.id, u)).collect(),
            revisions_by_env,
        }
    }

    /// "Spark 3 (6512…)" for reasons; the bare id when the environment is unknown.
    pub fn env_label(&self, id: ObjectId) -> String {
        match self.environments.get(&id) {
            Some(e) => format!("environment '{}' ({id})", e.name),
            None => format!("environment {id}"),
        }
    }

    pub fn model_label(&self, id: ObjectId) -> String {
        match self.models.get(&id) {
            Some(m) => format!("model '{}' ({id})", m.name),
            None => format!("model {id}"),
        }
    }

    pub fn user_label(&self, id: ObjectId) -> String {
        match self.users.get(&id) {
            Some(u) => format!("'{}' ({})", u.name, u.login),
            None => id.to_string(),
        }
    }

    /// The revision a spec resolves to for `env` (`None` spec = active revision).
    pub fn resolve(&self, env: ObjectId, spec: Option<RevisionSpec>) -> Option<ObjectId> {
        match spec {
            Some(RevisionSpec::Some(id)) => Some(id),
            Some(RevisionSpec::Active) | None => self.environments.get(&env)?.active_revision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "507f1f77bcf86cd799439011";

    #[test]
    fn revision_spec_parses_both_forms_and_rejects_others() {
        let id = ObjectId::parse(ID).unwrap();
        assert_eq!(RevisionSpec::parse("ActiveRevision"), Some(RevisionSpec::Active));
        assert_eq!(
            RevisionSpec::parse(&format!("SomeRevision({ID})")),
            Some(RevisionSpec::Some(id))
        );
        assert_eq!(
            RevisionSpec::parse(&format!("somerevision({ID})")),
            Some(RevisionSpec::Some(id))
        );
        assert_eq!(RevisionSpec::parse("SomeRevision(nope)"), None);
        assert_eq!(RevisionSpec::parse("Latest"), None);
    }

    #[test]
    fn a_model_version_image_is_the_last_non_empty_slug() {
        let v = ModelVersion {
            id: ObjectId::parse(ID).unwrap(),
            model: ObjectId::parse(ID).unwrap(),
            revision: None,
            slugs: vec!["a-v1".into(), "a-v1-2".into(), String::new()],
            repository: None,
        };
        assert_eq!(v.slug(), Some("a-v1-2"));
    }
}
