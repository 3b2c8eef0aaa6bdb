//! From Mongo records to registry tags: which tags in the environment and model repositories
//! belong to an ObjectId (dash-prefix rule), a revision (exact tag) or a model version (model
//! tag matching, full or short form), per domain.md §2. Built once per evaluation.

use crate::model::domino::{EnvRevision, ModelVersion};
use crate::model::image::{legacy_environment, model_tags_match, tag_belongs_to};
use crate::model::{ImageKind, Inventory, ObjectId, TagId};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Tags of the environment and model repositories, indexed by their name in the current layout
/// (legacy `domino-<env>:<rev>` is `<env>-<rev>`) and by its first 24 characters (the ObjectId
/// every Domino tag starts with), so lookups do not scan every tag.
#[derive(Debug)]
pub struct TagLookup<'a> {
    inv: &'a Inventory,
    by_head: HashMap<(ImageKind, Cow<'a, str>), Vec<TagId>>,
    by_name: HashMap<(ImageKind, Cow<'a, str>), Vec<TagId>>,
    has_kind: [bool; 2],
    /// Whether a current-layout environment repository (not `domino-<env>`) has tags.
    current_env: bool,
    /// Environments whose legacy repository `domino-<env>` was scanned.
    legacy: HashSet<ObjectId>,
}

impl<'a> TagLookup<'a> {
    pub fn new(inv: &'a Inventory) -> Self {
        let mut by_head: HashMap<(ImageKind, Cow<'a, str>), Vec<TagId>> = HashMap::new();
        let mut by_name: HashMap<(ImageKind, Cow<'a, str>), Vec<TagId>> = HashMap::new();
        let mut has_kind = [false; 2];
        let mut current_env = false;
        let legacy: HashSet<ObjectId> = (0..inv.repos.len())
            .filter_map(|i| legacy_environment(&inv.repos[i].name))
            .collect();
        for id in inv.tag_ids() {
            let kind = inv.repo(inv.tag(id).repo).kind;
            match kind {
                ImageKind::Environment => has_kind[0] = true,
                ImageKind::Model => has_kind[1] = true,
                ImageKind::Other => continue,
            }
            if kind == ImageKind::Environment && legacy_environment(&inv.repo(inv.tag(id).repo).name).is_none() {
                current_env = true;
            }
            let name = inv.domino_tag(id);
            let head = match &name {
                Cow::Borrowed(n) => Cow::Borrowed(n.get(..24).unwrap_or(n)),
                Cow::Owned(n) => Cow::Owned(n.get(..24).unwrap_or(n).to_string()),
            };
            by_head.entry((kind, head)).or_default().push(id);
            by_name.entry((kind, name)).or_default().push(id);
        }
        TagLookup {
            inv,
            by_head,
            by_name,
            has_kind,
            current_env,
            legacy,
        }
    }

    /// Whether the scan saw any repository of this kind (else "missing" means "not scanned").
    pub fn scanned(&self, kind: ImageKind) -> bool {
        match kind {
            ImageKind::Environment => self.has_kind[0],
            ImageKind::Model => self.has_kind[1],
            ImageKind::Other => false,
        }
    }

    /// Whether a current-layout environment repository with tags was scanned (legacy
    /// repositories alone say nothing about images recorded in the current layout).
    pub fn current_env_scanned(&self) -> bool {
        self.current_env
    }

    /// Whether the repository Mongo recorded (registry host stripped) is one the scan read.
    pub fn repository_scanned(&self, recorded: &str) -> bool {
        self.inv.repo_by_name(strip_host(recorded)).is_some()
    }

    /// Whether the legacy repository of `env` (`domino-<env>`) was scanned. It is found only
    /// through the catalog, so a registry that forbids the catalog never shows it.
    pub fn legacy_scanned(&self, env: &ObjectId) -> bool {
        self.legacy.contains(env)
    }

    /// Tags of `kind` that are `id` or start with `id-` (in the current layout's names, so a
    /// legacy `domino-<id>` repository's tags all belong to `id`).
    pub fn of_object(&self, kind: ImageKind, id: &ObjectId) -> Vec<TagId> {
        let head = id.to_string();
        self.by_head
            .get(&(kind, Cow::Borrowed(head.as_str())))
            .map(|tags| {
                tags.iter()
                    .copied()
                    .filter(|t| tag_belongs_to(&self.inv.domino_tag(*t), id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Registry tags holding a revision's image, for proposing it: the same name in an
    /// environment repository whose name agrees with the repository Mongo recorded (when it
    /// recorded one). Either layout holds the revision: a legacy name carries its environment.
    pub fn of_revision(&self, rev: &EnvRevision) -> Vec<TagId> {
        self.named_revision(rev)
            .into_iter()
            .filter(|t| {
                let repo = &self.inv.repo(self.inv.tag(*t).repo).name;
                let recorded = rev.repository.as_deref();
                legacy_environment(repo).is_some()
                    || recorded.is_some_and(|r| legacy_environment(r).is_some())
                    || repository_agrees(repo, recorded)
            })
            .collect()
    }

    /// Registry tags holding a revision's image, for protecting it: the same name in any
    /// scanned environment repository, whatever repository (host, path) Mongo recorded. At least
    /// as wide as [`of_revision`](Self::of_revision) and the id-prefix lookups, so a revision in
    /// use is protected under every name a category could propose it by.
    pub fn of_revision_named(&self, rev: &EnvRevision) -> Vec<TagId> {
        self.named_revision(rev)
    }

    /// Tags named like the revision in the current layout; a recorded tag that does not start
    /// with its environment's id (a bare revision number with no legacy repository recorded)
    /// is also looked up as `<env>-<tag>`, the name an id-prefix lookup would find it by.
    fn named_revision(&self, rev: &EnvRevision) -> Vec<TagId> {
        let Some(tag) = rev.domino_tag() else {
            return Vec::new();
        };
        let mut names = vec![tag.to_string()];
        if !tag_belongs_to(&tag, &rev.environment) {
            names.push(format!("{}-{tag}", rev.environment));
        }
        let mut out: Vec<TagId> = names
            .iter()
            .flat_map(|n| {
                self.by_name
                    .get(&(ImageKind::Environment, Cow::Borrowed(n.as_str())))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Registry tags of `kind` whose current-layout name is `name` (any repository of the kind).
    pub fn named(&self, kind: ImageKind, name: &str) -> Vec<TagId> {
        self.by_name
            .get(&(kind, Cow::Borrowed(name)))
            .cloned()
            .unwrap_or_default()
    }

    /// Registry tags matching any slug of a model version (full or short stored form).
    pub fn of_version(&self, v: &ModelVersion) -> Vec<TagId> {
        let mut out: Vec<TagId> = v.slugs.iter().flat_map(|s| self.of_model_slug(s)).collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn of_model_slug(&self, slug: &str) -> Vec<TagId> {
        if slug.is_empty() {
            return Vec::new();
        }
        let head = slug.get(..24).unwrap_or(slug);
        self.by_head
            .get(&(ImageKind::Model, Cow::Borrowed(head)))
            .map(|tags| {
                tags.iter()
                    .copied()
                    .filter(|t| model_tags_match(&self.inv.tag(*t).name, slug))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `host:5000/path` → `path` (Docker's rule: a first segment with `.` or `:`, or
/// `localhost`, is a registry host).
pub fn strip_host(repo: &str) -> &str {
    match repo.split_once('/') {
        Some((first, rest)) if is_host(first) => rest,
        _ => repo,
    }
}

/// The registry host a recorded repository names, if it names one (Docker's rule: a first
/// path component with a `.` or a `:`, or `localhost`).
pub fn recorded_host(repo: &str) -> Option<&str> {
    repo.split_once('/').map(|(first, _)| first).filter(|f| is_host(f))
}

fn is_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// Domino may record `registry:5000/dominodatalab/environment` or just the path; compare at a
/// path boundary so `dominodatalab/environment` agrees with both.
pub fn repository_agrees(registry_repo: &str, recorded: Option<&str>) -> bool {
    let Some(recorded) = recorded.filter(|r| !r.is_empty()) else {
        return true;
    };
    let ends = |long: &str, short: &str| long == short || long.ends_with(&format!("/{short}"));
    ends(recorded, registry_repo) || ends(registry_repo, recorded)
}

#[cfg(test)]
mod tests {
    use super::repository_agrees;

    #[test]
    fn recorded_repositories_agree_at_path_boundaries() {
        assert!(repository_agrees("dominodatalab/environment", None));
        assert!(repository_agrees(
            "dominodatalab/environment",
            Some("dominodatalab/environment")
        ));
        assert!(repository_agrees(
            "dominodatalab/environment",
            Some("docker-registry:5000/dominodatalab/environment")
        ));
        assert!(!repository_agrees(
            "dominodatalab/environment",
            Some("other/environment")
        ));
        assert!(!repository_agrees(
            "dominodatalab/environment",
            Some("xdominodatalab/environment")
        ));
    }
}
