//! Which Domino Mongo records to delete after their images left the registry (domain.md §3.1
//! `--mongo-cleanup`), decided children before parents so one run finishes the job (the
//! original checked parents first and skipped every parent whose children went in the same
//! run). Pure: records × registry tags → ordered decisions, each with a reason.
//!
//! * model version: deleted when every image it names (its slugs) is gone;
//! * model: deleted when every tag of its id is gone and no version remains after this run;
//! * environment revision: deleted when its image is gone, unless a remaining version of an
//!   unarchived (or unknown) model references it;
//! * environment: deleted when every tag of its id is gone, no revision remains after this run,
//!   and no remaining non-archived model names it as its environment.
//!
//! A record is in scope only if this run's deletions touched it: one of its tags is gone, or
//! (for parents) one of its children is deleted here. A record naming a tag that still exists
//! is never deleted.

use crate::model::domino::{DominoData, EnvRevision, ModelVersion};
use crate::model::image::{domino_tag, legacy_environment, model_tags_match, tag_belongs_to};
use crate::model::{ImageKind, ObjectId};
use crate::plan::lookup::repository_agrees;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap, HashSet};

/// A registry tag: `repository` (e.g. `dominodatalab/environment`) and tag name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RegistryTag {
    pub repository: String,
    pub tag: String,
}

impl RegistryTag {
    pub fn new(repository: &str, tag: &str) -> Self {
        RegistryTag {
            repository: repository.into(),
            tag: tag.into(),
        }
    }

    fn kind(&self) -> ImageKind {
        ImageKind::of_repository(&self.repository)
    }

    /// The name in the current layout (`domino-<env>:<rev>` → `<env>-<rev>`).
    fn domino_name(&self) -> std::borrow::Cow<'_, str> {
        domino_tag(&self.repository, &self.tag)
    }
}

impl std::fmt::Display for RegistryTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// The collections cleaned, in the order they are processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Collection {
    #[serde(rename = "model_versions")]
    ModelVersions,
    #[serde(rename = "models")]
    Models,
    #[serde(rename = "environment_revisions")]
    EnvironmentRevisions,
    #[serde(rename = "environments_v2")]
    Environments,
}

impl Collection {
    pub const ORDER: [Collection; 4] = [
        Collection::ModelVersions,
        Collection::Models,
        Collection::EnvironmentRevisions,
        Collection::Environments,
    ];

    /// The MongoDB collection name.
    pub fn name(self) -> &'static str {
        match self {
            Collection::ModelVersions => "model_versions",
            Collection::Models => "models",
            Collection::EnvironmentRevisions => "environment_revisions",
            Collection::Environments => "environments_v2",
        }
    }

    pub fn parse(name: &str) -> Option<Collection> {
        Collection::ORDER.into_iter().find(|c| c.name() == name)
    }
}

/// One record's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub collection: Collection,
    pub id: ObjectId,
    pub delete: bool,
    pub reason: String,
}

/// Decides, in processing order (versions, models, revisions, environments).
/// `gone`: tags whose manifests this run deleted (or found already deleted); `present`: tags
/// that still exist in the registry. A tag in both counts as present.
pub fn decide(data: &DominoData, gone: &[RegistryTag], present: &[RegistryTag]) -> Vec<Decision> {
    decide_keeping(data, gone, present, &HashMap::new())
}

/// [`decide`], with revision and version records that something still needs (`keep`: id →
/// why) never deleted, and so their parents kept too.
pub fn decide_keeping(
    data: &DominoData,
    gone: &[RegistryTag],
    present: &[RegistryTag],
    keep: &HashMap<ObjectId, Vec<String>>,
) -> Vec<Decision> {
    let kept = |c: Collection, id: ObjectId| {
        keep.get(&id)
            .map(|why| skip(c, id, format!("kept: {}", why.join("; "))))
    };
    let present_set: HashSet<&RegistryTag> = present.iter().collect();
    let gone: Vec<&RegistryTag> = gone
        .iter()
        .filter(|t| !present_set.contains(t))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let present: Vec<&RegistryTag> = present.iter().collect();
    let of_kind = |tags: &[&'_ RegistryTag], kind: ImageKind| -> Vec<RegistryTag> {
        tags.iter().filter(|t| t.kind() == kind).map(|t| (*t).clone()).collect()
    };
    let (gone_env, gone_model) = (of_kind(&gone, ImageKind::Environment), of_kind(&gone, ImageKind::Model));
    let (present_env, present_model) = (
        of_kind(&present, ImageKind::Environment),
        of_kind(&present, ImageKind::Model),
    );
    let models: HashMap<ObjectId, &crate::model::domino::Model> = data.models.iter().map(|m| (m.id, m)).collect();
    let mut out = Vec::new();

    // 1. Model versions.
    let mut deleted_versions: HashSet<ObjectId> = HashSet::new();
    for v in &data.versions {
        let Some(g) = gone_model.iter().find(|t| version_names(v, t)) else {
            continue;
        };
        if let Some(d) = kept(Collection::ModelVersions, v.id) {
            out.push(d);
            continue;
        }
        let decision = match present_model.iter().find(|t| version_named_anywhere(v, t)) {
            Some(p) => skip(
                Collection::ModelVersions,
                v.id,
                format!("its image {p} still exists in the registry"),
            ),
            None => {
                deleted_versions.insert(v.id);
                del(
                    Collection::ModelVersions,
                    v.id,
                    format!("its image {g} is gone from the registry"),
                )
            }
        };
        out.push(decision);
    }

    // 2. Models: in scope when a tag of the model is gone or one of its versions goes now.
    let mut deleted_models: HashSet<ObjectId> = HashSet::new();
    for m in &data.models {
        let gone_tag = gone_model.iter().find(|t| tag_belongs_to(&t.tag, &m.id));
        let child_goes = data
            .versions
            .iter()
            .any(|v| v.model == m.id && deleted_versions.contains(&v.id));
        if gone_tag.is_none() && !child_goes {
            continue;
        }
        let remaining = data
            .versions
            .iter()
            .filter(|v| v.model == m.id && !deleted_versions.contains(&v.id))
            .count();
        let decision = if let Some(p) = present_model.iter().find(|t| tag_belongs_to(&t.tag, &m.id)) {
            skip(
                Collection::Models,
                m.id,
                format!("its image {p} still exists in the registry"),
            )
        } else if remaining > 0 {
            skip(Collection::Models, m.id, format!("{remaining} model version(s) remain"))
        } else {
            deleted_models.insert(m.id);
            del(
                Collection::Models,
                m.id,
                match gone_tag {
                    Some(t) => format!("its images are gone from the registry ({t}) and no version remains"),
                    None => "its last versions are deleted in this run".into(),
                },
            )
        };
        out.push(decision);
    }

    // 3. Environment revisions.
    let mut deleted_revisions: HashSet<ObjectId> = HashSet::new();
    for r in &data.revisions {
        let Some(g) = gone_env.iter().find(|t| revision_names(r, t)) else {
            continue;
        };
        let referenced = data.versions.iter().find(|v| {
            v.revision == Some(r.id)
                && !deleted_versions.contains(&v.id)
                && models.get(&v.model).is_none_or(|m| !m.archived)
        });
        if let Some(d) = kept(Collection::EnvironmentRevisions, r.id) {
            out.push(d);
            continue;
        }
        let decision = if let Some(p) = present_env.iter().find(|t| revision_named_anywhere(r, t)) {
            skip(
                Collection::EnvironmentRevisions,
                r.id,
                format!("its image {p} still exists in the registry"),
            )
        } else if let Some(v) = referenced {
            let model = match models.get(&v.model) {
                Some(_) => format!("unarchived model {}", v.model),
                None => format!("model {} (not found)", v.model),
            };
            skip(
                Collection::EnvironmentRevisions,
                r.id,
                format!("model version {} of {model} references it", v.id),
            )
        } else {
            deleted_revisions.insert(r.id);
            del(
                Collection::EnvironmentRevisions,
                r.id,
                format!("its image {g} is gone from the registry"),
            )
        };
        out.push(decision);
    }

    // 3b. Failed builds never had an image, so no deletion touches them; they go with their
    //     environment (an environment goes whole): when this run deletes every built revision
    //     of it, no tag of it remains, and nothing else keeps the environment document.
    for r in data.revisions.iter().filter(|r| !r.built) {
        let mut built = data
            .revisions
            .iter()
            .filter(|x| x.environment == r.environment && x.built)
            .peekable();
        if built.peek().is_none() || !built.all(|x| deleted_revisions.contains(&x.id)) {
            continue;
        }
        let present = present_env
            .iter()
            .find(|t| tag_belongs_to(&t.domino_name(), &r.environment));
        let live_model = data
            .models
            .iter()
            .find(|m| m.environment == Some(r.environment) && !m.archived && !deleted_models.contains(&m.id));
        let referenced = data
            .versions
            .iter()
            .find(|v| v.revision == Some(r.id) && !deleted_versions.contains(&v.id));
        let decision = if let Some(d) = kept(Collection::EnvironmentRevisions, r.id) {
            d
        } else if let Some(p) = present {
            skip(
                Collection::EnvironmentRevisions,
                r.id,
                format!("failed build of an environment whose image {p} still exists"),
            )
        } else if let Some(m) = live_model {
            skip(
                Collection::EnvironmentRevisions,
                r.id,
                format!(
                    "failed build of an environment non-archived model '{}' ({}) uses",
                    m.name, m.id
                ),
            )
        } else if let Some(v) = referenced {
            skip(
                Collection::EnvironmentRevisions,
                r.id,
                format!("model version {} references it", v.id),
            )
        } else {
            deleted_revisions.insert(r.id);
            del(
                Collection::EnvironmentRevisions,
                r.id,
                format!(
                    "failed build (no image) of environment {}, whose built revisions are all deleted in this run",
                    r.environment
                ),
            )
        };
        out.push(decision);
    }

    // 4. Environments.
    for e in &data.environments {
        let gone_tag = gone_env.iter().find(|t| tag_belongs_to(&t.domino_name(), &e.id));
        let child_goes = data
            .revisions
            .iter()
            .any(|r| r.environment == e.id && deleted_revisions.contains(&r.id));
        if gone_tag.is_none() && !child_goes {
            continue;
        }
        let remaining = data
            .revisions
            .iter()
            .filter(|r| r.environment == e.id && !deleted_revisions.contains(&r.id))
            .count();
        let live_model = data
            .models
            .iter()
            .find(|m| m.environment == Some(e.id) && !m.archived && !deleted_models.contains(&m.id));
        let decision = if let Some(p) = present_env.iter().find(|t| tag_belongs_to(&t.domino_name(), &e.id)) {
            skip(
                Collection::Environments,
                e.id,
                format!("its image {p} still exists in the registry"),
            )
        } else if remaining > 0 {
            skip(
                Collection::Environments,
                e.id,
                format!("{remaining} revision(s) remain"),
            )
        } else if let Some(m) = live_model {
            skip(
                Collection::Environments,
                e.id,
                format!("non-archived model '{}' ({}) uses it", m.name, m.id),
            )
        } else {
            del(
                Collection::Environments,
                e.id,
                match gone_tag {
                    Some(t) => format!("its images are gone from the registry ({t}) and no revision remains"),
                    None => "its last revisions are deleted in this run".into(),
                },
            )
        };
        out.push(decision);
    }
    out
}

fn del(collection: Collection, id: ObjectId, reason: String) -> Decision {
    Decision {
        collection,
        id,
        delete: true,
        reason,
    }
}

fn skip(collection: Collection, id: ObjectId, reason: String) -> Decision {
    Decision {
        collection,
        id,
        delete: false,
        reason,
    }
}

/// Whether a model-repository tag is one of the version's images.
fn version_names(v: &ModelVersion, t: &RegistryTag) -> bool {
    repository_agrees(&t.repository, v.repository.as_deref())
        && v.slugs.iter().any(|s| !s.is_empty() && model_tags_match(&t.tag, s))
}

/// Whether an environment-repository tag is the revision's image, in either layout: the names
/// agree in the current layout (a legacy name carries its environment id), and for two current
/// layout names the repositories agree too.
fn revision_names(r: &EnvRevision, t: &RegistryTag) -> bool {
    r.domino_tag().is_some_and(|tag| tag == t.domino_name())
        && (legacy_environment(&t.repository).is_some()
            || r.repository.as_deref().is_some_and(|x| legacy_environment(x).is_some())
            || repository_agrees(&t.repository, r.repository.as_deref()))
}

/// One entry of a `mongo-cleanup --file` tag file (the original's `mongo_cleanup --file`): the
/// records of these images go, once each image is confirmed gone from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagFileEntry {
    /// `[host/]repository:tag`; a bare tag names it in both image repositories.
    Tags(Vec<RegistryTag>, usize),
    /// A bare 24-hex id: every recorded image whose tag belongs to it (`<id>` or `<id>-…`).
    Id(ObjectId, usize),
}

/// Parses a tag file: one entry per line (first token), blank lines and `#` comments ignored.
/// Every other line is an error naming `file:line` and the problem; nothing is guessed.
pub fn parse_tag_file(file: &str, text: &str, prefix: &str) -> Result<Vec<TagFileEntry>, String> {
    let prefix = prefix.trim_end_matches('/');
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let Some(token) = line.split_whitespace().next().filter(|t| !t.starts_with('#')) else {
            continue;
        };
        let err = |why: String| format!("{file}:{n}: {token:?}: {why}");
        if token.contains('@') {
            return Err(err("a digest names no tag; list repository:tag".into()));
        }
        if let Ok(id) = ObjectId::parse(token) {
            out.push(TagFileEntry::Id(id, n));
            continue;
        }
        let image =
            crate::model::workloads::ImageRef::parse(token).ok_or_else(|| err("not an image reference".into()))?;
        let tags = match &image.tag {
            Some(tag) => {
                if ImageKind::of_repository(&image.repository) == ImageKind::Other {
                    return Err(err(format!(
                        "{} is not an environment or model repository",
                        image.repository
                    )));
                }
                vec![RegistryTag::new(&image.repository, tag)]
            }
            // No `:` — a bare tag, in either image repository.
            None if !token.contains('/') => ["environment", "model"]
                .iter()
                .map(|kind| RegistryTag::new(&format!("{prefix}/{kind}"), token))
                .collect(),
            None => return Err(err("names no tag (repository:tag)".into())),
        };
        for t in &tags {
            if !valid_tag(&t.tag) {
                return Err(err(format!("{:?} is not a valid tag", t.tag)));
            }
        }
        out.push(TagFileEntry::Tags(tags, n));
    }
    Ok(out)
}

/// The distribution tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// The recorded images an id entry names: revision tags (in the layout recorded) and version
/// slugs whose current-layout name belongs to `id`.
pub fn tags_of_id(data: &DominoData, id: &ObjectId, prefix: &str) -> Vec<RegistryTag> {
    let prefix = prefix.trim_end_matches('/');
    let mut out: BTreeSet<RegistryTag> = BTreeSet::new();
    for r in &data.revisions {
        let Some(name) = r.domino_tag() else { continue };
        if r.environment != *id && r.id != *id && !tag_belongs_to(&name, id) {
            continue;
        }
        let repo = r.repository.as_deref().map(strip_host);
        match repo.filter(|x| legacy_environment(x).is_some()) {
            Some(legacy) => out.insert(RegistryTag::new(legacy, r.tag.as_deref().unwrap_or_default())),
            None => out.insert(RegistryTag::new(&format!("{prefix}/environment"), &name)),
        };
    }
    for v in &data.versions {
        for s in v.slugs.iter().filter(|s| !s.is_empty()) {
            if v.model == *id || v.id == *id || tag_belongs_to(s, id) {
                out.insert(RegistryTag::new(&format!("{prefix}/model"), s));
            }
        }
    }
    out.into_iter().collect()
}

/// `host:5000/path` → `path` (Docker's rule: a first segment with `.` or `:` is a host).
fn strip_host(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => rest,
        _ => repo,
    }
}

/// Whether a tag that still exists may be the version's image, in any model repository: the
/// "still exists" side is as wide as the lookups (a recorded repository on another host or
/// path keeps the record, never the other way round).
fn version_named_anywhere(v: &ModelVersion, t: &RegistryTag) -> bool {
    v.slugs.iter().any(|s| !s.is_empty() && model_tags_match(&t.tag, s))
}

/// Whether a tag that still exists may be the revision's image, in any environment
/// repository and either layout (also as `<env>-<tag>` for a bare recorded tag).
fn revision_named_anywhere(r: &EnvRevision, t: &RegistryTag) -> bool {
    let Some(tag) = r.domino_tag() else { return false };
    let name = t.domino_name();
    tag == name || (!tag_belongs_to(&tag, &r.environment) && name == format!("{}-{tag}", r.environment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domino::{Environment, Model};

    const ENV: &str = "dominodatalab/environment";
    const MODEL: &str = "dominodatalab/model";

    fn id(n: u8) -> ObjectId {
        let mut b = [0u8; 12];
        b[0] = 0x66;
        b[11] = n;
        ObjectId::from_bytes(b)
    }

    fn env(n: u8, archived: bool) -> Environment {
        Environment {
            id: id(n),
            name: format!("env{n}"),
            archived,
            active_revision: None,
            owner: None,
            private: false,
        }
    }

    fn env_tag(env: u8, rev: u8) -> String {
        format!("{}-{rev}", id(env))
    }

    fn rev(n: u8, env: u8, no: u8) -> EnvRevision {
        EnvRevision {
            id: id(n),
            environment: id(env),
            tag: Some(env_tag(env, no)),
            repository: Some(format!("docker-registry:5000/{ENV}")),
            built: true,
            author: None,
            cloned_from: None,
        }
    }

    fn model(n: u8, archived: bool, env: Option<u8>) -> Model {
        Model {
            id: id(n),
            name: format!("model{n}"),
            archived,
            environment: env.map(id),
            owner: None,
        }
    }

    fn model_tag(model: u8, v: u8) -> String {
        format!("{}-v{v}-20250101120000_abc", id(model))
    }

    fn version(n: u8, model: u8, v: u8, revision: Option<u8>) -> ModelVersion {
        ModelVersion {
            id: id(n),
            model: id(model),
            revision: revision.map(id),
            // The short stored form matches the full registry tag.
            slugs: vec![format!("{}-v{v}", id(model))],
            repository: None,
        }
    }

    fn e(env: u8, rev: u8) -> RegistryTag {
        RegistryTag::new(ENV, &env_tag(env, rev))
    }

    fn m(model: u8, v: u8) -> RegistryTag {
        RegistryTag::new(MODEL, &model_tag(model, v))
    }

    fn deleted(ds: &[Decision]) -> Vec<(Collection, ObjectId)> {
        ds.iter().filter(|d| d.delete).map(|d| (d.collection, d.id)).collect()
    }

    fn find(ds: &[Decision], c: Collection, n: u8) -> &Decision {
        ds.iter()
            .find(|d| d.collection == c && d.id == id(n))
            .unwrap_or_else(|| panic!("no decision for {c:?} {n}: {ds:#?}"))
    }

    fn data() -> DominoData {
        DominoData {
            environments: vec![env(1, true), env(2, false), env(3, false)],
            revisions: vec![
                rev(11, 1, 1),
                rev(12, 1, 2),
                rev(21, 2, 1),
                rev(22, 2, 2),
                rev(31, 3, 1),
            ],
            models: vec![
                model(50, true, Some(2)),
                model(60, false, Some(3)),
                model(70, true, None),
            ],
            versions: vec![
                version(51, 50, 1, Some(21)),
                version(52, 50, 2, Some(21)),
                version(61, 60, 1, Some(31)),
                version(71, 70, 1, None),
            ],
            ..DominoData::default()
        }
    }

    #[test]
    fn children_go_before_parents_and_parents_follow_in_the_same_run() {
        // The original checked environments before revisions (and models before versions), so
        // this parent would survive its children. Here everything goes in one run.
        let ds = decide(
            &data(),
            &[e(1, 1), e(1, 2), m(50, 1), m(50, 2)],
            &[e(2, 1), e(2, 2), e(3, 1), m(60, 1), m(70, 1)],
        );
        assert_eq!(
            deleted(&ds),
            vec![
                (Collection::ModelVersions, id(51)),
                (Collection::ModelVersions, id(52)),
                (Collection::Models, id(50)),
                (Collection::EnvironmentRevisions, id(11)),
                (Collection::EnvironmentRevisions, id(12)),
                (Collection::Environments, id(1)),
            ]
        );
        assert!(
            find(&ds, Collection::Environments, 1)
                .reason
                .contains("no revision remains")
        );
        // Processing order: every version before every model before every revision before every environment.
        let order: Vec<Collection> = ds.iter().map(|d| d.collection).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }

    #[test]
    fn an_environment_goes_whole_with_its_failed_builds() {
        // issue 11.12: env 4's built revisions 41 and 42 are deleted in this run; 43 is a failed
        // build (no image). All three records and the environment go.
        let mut d = data();
        d.environments.push(env(4, false));
        d.revisions.extend([
            rev(41, 4, 1),
            rev(42, 4, 2),
            EnvRevision {
                built: false,
                ..rev(43, 4, 3)
            },
        ]);
        let ds = decide(&d, &[e(4, 1), e(4, 2)], &[e(2, 1)]);
        assert_eq!(
            deleted(&ds),
            vec![
                (Collection::EnvironmentRevisions, id(41)),
                (Collection::EnvironmentRevisions, id(42)),
                (Collection::EnvironmentRevisions, id(43)),
                (Collection::Environments, id(4)),
            ]
        );
        assert!(
            find(&ds, Collection::EnvironmentRevisions, 43)
                .reason
                .starts_with("failed build (no image)")
        );
        // One built revision stays: the failed build is out of scope and the environment stays.
        let ds = decide(&d, &[e(4, 1)], &[e(4, 2)]);
        assert_eq!(deleted(&ds), vec![(Collection::EnvironmentRevisions, id(41))]);
        assert!(ds.iter().all(|x| x.id != id(43)));
        // A live model names the environment: its failed build stays with it.
        d.models.push(model(80, false, Some(4)));
        let ds = decide(&d, &[e(4, 1), e(4, 2)], &[]);
        let failed = find(&ds, Collection::EnvironmentRevisions, 43);
        assert!(
            !failed.delete && failed.reason.contains("non-archived model"),
            "{}",
            failed.reason
        );
        assert!(!find(&ds, Collection::Environments, 4).delete);
    }

    #[test]
    fn legacy_layout_tags_name_their_revisions_in_either_layout() {
        // Revision 91 recorded in the legacy layout, 92 recorded in the current layout while its
        // image is the legacy tag: both are named by `domino-<env>:<n>`.
        let legacy_repo = format!("domino-{}", id(9));
        let mut d = data();
        d.environments.push(env(9, true));
        d.revisions.push(EnvRevision {
            tag: Some("1".into()),
            repository: Some(format!("docker-registry:5000/{legacy_repo}")),
            ..rev(91, 9, 1)
        });
        d.revisions.push(rev(92, 9, 2));
        let l = |n: &str| RegistryTag::new(&legacy_repo, n);
        let ds = decide(&d, &[l("1"), l("2")], &[]);
        assert_eq!(
            deleted(&ds),
            vec![
                (Collection::EnvironmentRevisions, id(91)),
                (Collection::EnvironmentRevisions, id(92)),
                (Collection::Environments, id(9)),
            ]
        );
        // The legacy tag of revision 92 still exists: its record and the environment stay.
        let ds = decide(&d, &[l("1")], &[l("2")]);
        assert_eq!(deleted(&ds), vec![(Collection::EnvironmentRevisions, id(91))]);
        assert!(find(&ds, Collection::Environments, 9).reason.contains("still exists"));
        // And the current-layout tag of revision 91's number keeps it too.
        let ds = decide(&d, &[l("1")], &[e(9, 1)]);
        assert!(!find(&ds, Collection::EnvironmentRevisions, 91).delete);
    }

    #[test]
    fn a_record_recorded_under_another_repository_is_kept_by_its_image_anywhere() {
        // Version 51 recorded under another host and path; its slug's image exists in the
        // scanned model repository. A gone tag named like it elsewhere does not take it.
        let mut d = data();
        d.versions[0].repository = Some("old-registry.example.com/legacy/model".into());
        let elsewhere = RegistryTag::new("legacy/model", &format!("{}-v1", id(50)));
        let ds = decide(&d, &[elsewhere], &[m(50, 1)]);
        let v = find(&ds, Collection::ModelVersions, 51);
        assert!(!v.delete && v.reason.contains("still exists"), "{}", v.reason);
        // The same for a revision recorded elsewhere whose current-layout tag exists.
        d.revisions[0].repository = Some("other.example.com/acme/environment".into());
        let gone = RegistryTag::new("acme/environment", &env_tag(1, 1));
        let ds = decide(&d, &[gone], &[e(1, 1)]);
        assert!(!find(&ds, Collection::EnvironmentRevisions, 11).delete);
    }

    #[test]
    fn a_parent_with_remaining_children_stays() {
        let ds = decide(&data(), &[e(1, 1), m(50, 1)], &[e(1, 2), m(50, 2)]);
        assert_eq!(
            deleted(&ds),
            vec![
                (Collection::ModelVersions, id(51)),
                (Collection::EnvironmentRevisions, id(11))
            ]
        );
        let model = find(&ds, Collection::Models, 50);
        assert!(!model.delete);
        assert!(model.reason.contains("still exists"), "{}", model.reason);
        let env = find(&ds, Collection::Environments, 1);
        assert!(!env.delete);
        // A revision whose image is gone but that is not in this run's scope keeps the parent too.
        let mut d = data();
        d.revisions.push(rev(13, 1, 3));
        let ds = decide(&d, &[e(1, 1), e(1, 2)], &[]);
        assert_eq!(find(&ds, Collection::Environments, 1).reason, "1 revision(s) remain");
        assert!(!find(&ds, Collection::Environments, 1).delete);
    }

    #[test]
    fn a_model_goes_only_when_no_version_remains() {
        let mut d = data();
        d.versions.push(ModelVersion {
            slugs: vec![],
            ..version(53, 50, 3, None)
        });
        let ds = decide(&d, &[m(50, 1), m(50, 2)], &[]);
        let model = find(&ds, Collection::Models, 50);
        assert!(!model.delete);
        assert_eq!(model.reason, "1 model version(s) remain");
    }

    #[test]
    fn versions_always_go_when_their_image_is_gone_even_of_unarchived_models() {
        let ds = decide(&data(), &[m(60, 1)], &[]);
        assert!(find(&ds, Collection::ModelVersions, 61).delete);
        // The model's last version went, so the model goes too.
        assert!(find(&ds, Collection::Models, 60).delete);
    }

    #[test]
    fn a_record_whose_image_still_exists_is_never_deleted() {
        // A version with two slugs: one image deleted, the other still in the registry.
        let mut d = data();
        d.versions[0].slugs.push(format!("{}-v9", id(50)));
        let ds = decide(&d, &[m(50, 1)], &[m(50, 9)]);
        let v = find(&ds, Collection::ModelVersions, 51);
        assert!(!v.delete);
        assert!(v.reason.contains("still exists"), "{}", v.reason);
        // A tag listed both as gone and present counts as present.
        let ds = decide(&data(), &[e(1, 1)], &[e(1, 1)]);
        assert!(deleted(&ds).is_empty(), "{ds:#?}");
        // The environment keeps while any tag of its id exists, even one no revision names.
        let mut odd = e(1, 9);
        odd.tag = format!("{}-extra", id(1));
        let ds = decide(&data(), &[e(1, 1), e(1, 2)], &[odd]);
        let env = find(&ds, Collection::Environments, 1);
        assert!(!env.delete && env.reason.contains("still exists"), "{env:?}");
    }

    #[test]
    fn a_revision_referenced_by_a_version_of_an_unarchived_model_stays() {
        let ds = decide(&data(), &[e(3, 1)], &[m(60, 1)]);
        let r = find(&ds, Collection::EnvironmentRevisions, 31);
        assert!(!r.delete);
        assert!(r.reason.contains("unarchived model"), "{}", r.reason);
        // The environment keeps its revision, and a live model uses it.
        assert!(!find(&ds, Collection::Environments, 3).delete);
        // A version of an archived model does not protect the revision.
        let ds = decide(&data(), &[e(2, 1), e(2, 2)], &[m(50, 1), m(50, 2)]);
        assert!(find(&ds, Collection::EnvironmentRevisions, 21).delete);
        // A version deleted in the same run no longer references it.
        let ds = decide(&data(), &[e(3, 1), m(60, 1)], &[]);
        assert!(find(&ds, Collection::EnvironmentRevisions, 31).delete);
        // An orphan version (model unknown) protects, to be safe.
        let mut d = data();
        d.models.retain(|m| m.id != id(60));
        let ds = decide(&d, &[e(3, 1)], &[]);
        assert!(
            find(&ds, Collection::EnvironmentRevisions, 31)
                .reason
                .contains("not found")
        );
    }

    #[test]
    fn an_environment_named_by_a_non_archived_model_stays() {
        // Env 3: its only revision goes (its version goes in the same run), but model 60 is
        // not archived and names env 3 — unless model 60 is itself deleted in this run.
        let mut d = data();
        d.versions.push(version(62, 60, 2, None));
        let ds = decide(&d, &[e(3, 1), m(60, 1)], &[m(60, 2)]);
        assert!(find(&ds, Collection::EnvironmentRevisions, 31).delete);
        let env = find(&ds, Collection::Environments, 3);
        assert!(!env.delete);
        assert!(env.reason.contains("non-archived model 'model60'"), "{}", env.reason);
        // Model 60 goes with its last version: then the environment may go.
        let ds = decide(&data(), &[e(3, 1), m(60, 1)], &[]);
        assert!(find(&ds, Collection::Models, 60).delete);
        assert!(find(&ds, Collection::Environments, 3).delete);
        // An archived model naming it does not keep it.
        let mut d = data();
        d.models.push(model(80, true, Some(1)));
        let ds = decide(&d, &[e(1, 1), e(1, 2)], &[]);
        assert!(find(&ds, Collection::Environments, 1).delete);
    }

    #[test]
    fn records_outside_this_run_are_not_mentioned() {
        let ds = decide(&data(), &[e(1, 1)], &[e(2, 1), m(60, 1)]);
        assert!(ds.iter().all(|d| d.id == id(11) || d.id == id(1)), "{ds:#?}");
        assert!(decide(&data(), &[], &[]).is_empty());
    }

    #[test]
    fn repositories_must_agree() {
        let other = RegistryTag::new("other/environment", &env_tag(1, 1));
        let ds = decide(&data(), &[other], &[]);
        assert!(
            ds.iter().all(|d| d.collection != Collection::EnvironmentRevisions),
            "{ds:#?}"
        );
    }

    #[test]
    fn an_already_deleted_parent_alone_goes_on_a_rerun() {
        // Resume: the first run deleted the revisions and crashed; their documents are gone,
        // the tags are already deleted, the environment remains.
        let mut d = data();
        d.revisions.retain(|r| r.environment != id(1));
        let ds = decide(&d, &[e(1, 1), e(1, 2)], &[]);
        assert_eq!(deleted(&ds), vec![(Collection::Environments, id(1))]);
    }

    #[test]
    fn collection_names_round_trip() {
        for c in Collection::ORDER {
            assert_eq!(Collection::parse(c.name()), Some(c));
        }
        assert_eq!(Collection::parse("users"), None);
    }
}
