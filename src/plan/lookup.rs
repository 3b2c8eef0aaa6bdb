//! From Mongo records to registry tags: which tags in the environment and model repositories
//! belong to an ObjectId (dash-prefix rule), a revision (exact tag) or a model version (model
//! tag matching, full or short form), per domain.md §2. Built once per evaluation.

use crate::model::domino::{EnvRevision, ModelVersion};
use crate::model::image::{model_tags_match, tag_belongs_to};
use crate::model::{ImageKind, Inventory, ObjectId, TagId};
use std::collections::HashMap;

/// Tags of the environment and model repositories, indexed by their first 24 characters
/// (the ObjectId every Domino tag starts with), so lookups do not scan every tag.
#[derive(Debug)]
pub struct TagLookup<'a> {
    inv: &'a Inventory,
    by_head: HashMap<(ImageKind, &'a str), Vec<TagId>>,
    by_name: HashMap<(ImageKind, &'a str), Vec<TagId>>,
    has_kind: [bool; 2],
}

impl<'a> TagLookup<'a> {
    pub fn new(inv: &'a Inventory) -> Self {
        let mut by_head: HashMap<(ImageKind, &str), Vec<TagId>> = HashMap::new();
        let mut by_name: HashMap<(ImageKind, &str), Vec<TagId>> = HashMap::new();
        let mut has_kind = [false; 2];
        for id in inv.tag_ids() {
            let tag = inv.tag(id);
            let kind = inv.repo(tag.repo).kind;
            match kind {
                ImageKind::Environment => has_kind[0] = true,
                ImageKind::Model => has_kind[1] = true,
                ImageKind::Other => continue,
            }
            let head = tag.name.get(..24).unwrap_or(&tag.name);
            by_head.entry((kind, head)).or_default().push(id);
            by_name.entry((kind, tag.name.as_str())).or_default().push(id);
        }
        TagLookup {
            inv,
            by_head,
            by_name,
            has_kind,
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

    /// Tags of `kind` that are `id` or start with `id-`.
    pub fn of_object(&self, kind: ImageKind, id: &ObjectId) -> Vec<TagId> {
        let head = id.to_string();
        self.by_head
            .get(&(kind, head.as_str()))
            .map(|tags| {
                tags.iter()
                    .copied()
                    .filter(|t| tag_belongs_to(&self.inv.tag(*t).name, id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Registry tags holding a revision's image: same tag name in an environment repository
    /// whose name agrees with the repository Mongo recorded (when it recorded one).
    pub fn of_revision(&self, rev: &EnvRevision) -> Vec<TagId> {
        let Some(tag) = rev.tag.as_deref().filter(|t| !t.is_empty()) else {
            return Vec::new();
        };
        self.by_name
            .get(&(ImageKind::Environment, tag))
            .map(|tags| {
                tags.iter()
                    .copied()
                    .filter(|t| {
                        repository_agrees(&self.inv.repo(self.inv.tag(*t).repo).name, rev.repository.as_deref())
                    })
                    .collect()
            })
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
            .get(&(ImageKind::Model, head))
            .map(|tags| {
                tags.iter()
                    .copied()
                    .filter(|t| model_tags_match(&self.inv.tag(*t).name, slug))
                    .collect()
            })
            .unwrap_or_default()
    }
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
