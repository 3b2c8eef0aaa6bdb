//! The deletion plan: one value, built once from the data a selection was made on, then held
//! (TUI confirm modal), written (`w`, `report`) and executed (`delete --plan`, the TUI's run)
//! unchanged. It names manifests by repository + digest with the tag names they carry, never
//! by `TagId`, so no reload can change what a confirmed plan deletes.

use super::{CategoryId, SpaceEngine};
use crate::model::{ImageKind, Inventory, RevId, TagId, timefmt};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A plan older than this is refused by `delete` (the registry may have changed since).
pub const PLAN_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct PlanTag {
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// One manifest the plan deletes by digest, with every tag it carries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanManifest {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub index: bool,
    /// Set for the child manifest of a deleted index: deleted by digest after its index,
    /// because nothing else in the repository keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_of: Option<String>,
    /// The categories it was planned under (empty: selected explicitly, outside any category).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategoryId>,
    #[serde(default)]
    pub kind: Option<ImageKind>,
    /// Only `tags` go, not the manifest: other tags on the digest keep it (the plan held some
    /// but not all of its tags). Done by pointing each tag at a throwaway manifest and
    /// deleting that (`ops::untag`); frees nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untag: bool,
}

/// A Mongo record the plan deletes: an orphaned reference (`environment_revisions` or
/// `model_versions` document whose image is missing from the registry). Deleted only if it is
/// still an orphaned reference on the fresh data, backed up first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PlanRecord {
    pub collection: String,
    pub document_id: String,
    /// The image tag the document names (for people; the re-check reads the document).
    pub tag: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExcludedTag {
    pub repository: String,
    pub tag: String,
    pub reason: String,
}

/// Tags a category contributes to the plan, by image kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CategoryTotal {
    pub category: CategoryId,
    pub environments: usize,
    pub models: usize,
    pub other: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// The registry the plan was made for (older files carry it only in the report envelope).
    #[serde(default)]
    pub registry: String,
    pub tags: Vec<PlanTag>,
    pub reclaimable_bytes: u64,
    #[serde(default)]
    pub manifests: Vec<PlanManifest>,
    /// Requested tags that cannot be in the plan, with why.
    #[serde(default)]
    pub excluded: Vec<ExcludedTag>,
    #[serde(default)]
    pub per_category: Vec<CategoryTotal>,
    /// Also delete the Domino records of what the run removes (backed up first).
    #[serde(default)]
    pub mongo_cleanup: bool,
    /// Orphaned Mongo references to delete (backed up first), after the registry part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<PlanRecord>,
    /// `categories` (union of the listed categories' candidates) or `selection`.
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub settings_fingerprint: String,
    #[serde(default)]
    pub snapshot_time: String,
    #[serde(default)]
    pub expires_at: String,
    /// SHA-256 over the plan's content; a plan edited after it was written is refused.
    #[serde(default)]
    pub checksum: String,
}

impl Plan {
    /// The checksum of everything that decides what the plan deletes. Unkeyed: it detects an
    /// edited or truncated file, not a forger (who can recompute it).
    pub fn compute_checksum(&self, registry: &str) -> String {
        // Serialized straight from borrowed fields (no intermediate JSON value: that cost
        // ~100 ms at 16k manifests on every freeze); the bytes are those of the JSON object
        // with these keys in this order.
        #[derive(Serialize)]
        struct Key<'a> {
            registry: &'a str,
            tags: &'a [PlanTag],
            manifests: &'a [PlanManifest],
            reclaimable_bytes: u64,
            mongo_cleanup: bool,
            settings_fingerprint: &'a str,
            snapshot_time: &'a str,
            expires_at: &'a str,
            // Absent when empty: plans without records keep the checksum bytes of before.
            #[serde(skip_serializing_if = "<[PlanRecord]>::is_empty")]
            records: &'a [PlanRecord],
        }
        let key = Key {
            registry,
            tags: &self.tags,
            manifests: &self.manifests,
            reclaimable_bytes: self.reclaimable_bytes,
            mongo_cleanup: self.mongo_cleanup,
            settings_fingerprint: &self.settings_fingerprint,
            snapshot_time: &self.snapshot_time,
            expires_at: &self.expires_at,
            records: &self.records,
        };
        let bytes = serde_json::to_vec(&key).expect("a plan always serializes");
        crate::model::digest::sha256_digest(&bytes)
    }

    /// Recomputes the checksum after a deliberate change (the modal's Mongo switch).
    pub fn seal(&mut self) {
        self.checksum = self.compute_checksum(&self.registry);
    }

    pub fn set_mongo_cleanup(&mut self, on: bool) {
        self.mongo_cleanup = on;
        self.seal();
    }

    pub fn tag_count(&self) -> usize {
        self.tags.len()
    }

    /// Adds orphaned references to delete (the orphaned-references category's candidates) and
    /// re-seals.
    pub fn add_records(&mut self, records: &[super::category::OrphanRecord]) {
        self.records.extend(records.iter().map(|r| PlanRecord {
            collection: r.collection.to_string(),
            document_id: r.document_id.to_string(),
            tag: r.tag.clone(),
        }));
        self.seal();
    }
}

/// The repositories a run may touch: under `prefix/`, or one of `repositories` when set.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub prefix: &'a str,
    pub repositories: Option<&'a [String]>,
}

impl Scope<'_> {
    pub fn contains(&self, repo: &str) -> bool {
        match self.repositories {
            Some(list) => list.iter().any(|r| r == repo),
            // Under the prefix, or a top-level legacy `domino-<envId>` repository: what the
            // scan reads.
            None => {
                repo.strip_prefix(self.prefix).is_some_and(|rest| rest.starts_with('/'))
                    || (!repo.contains('/') && crate::model::image::legacy_environment(repo).is_some())
            }
        }
    }
}

/// A repository name by Distribution's grammar: path components `[a-z0-9]+` joined by `.`,
/// `_`, `__` or runs of `-`, separated by `/`; at most 255 characters.
pub fn is_valid_repository(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    }
    !name.is_empty() && name.len() <= 255 && name.split('/').all(component)
}

/// A tag by Distribution's grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

/// A digest a plan may carry: `sha256:` + 64 or `sha512:` + 128 lowercase hex characters.
pub fn is_plan_digest(d: &str) -> bool {
    let hex_ok =
        |h: &str, n: usize| h.len() == n && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match d.split_once(':') {
        Some(("sha256", h)) => hex_ok(h, 64),
        Some(("sha512", h)) => hex_ok(h, 128),
        _ => false,
    }
}

/// Every name a plan carries, checked against the grammar and the scope before anything runs:
/// these strings become URL paths, and a plan file is input from outside.
pub fn validate_names(plan: &Plan, scope: Scope<'_>) -> Result<(), String> {
    let repo_ok = |r: &str, what: &str| -> Result<(), String> {
        if !is_valid_repository(r) {
            return Err(format!("{what}: repository {r:?} is not a valid repository name"));
        }
        if !scope.contains(r) {
            return Err(format!(
                "{what}: repository {r:?} is outside the configured repositories ({}/...)",
                scope.prefix
            ));
        }
        Ok(())
    };
    let digest_ok = |d: &str, what: &str| -> Result<(), String> {
        if is_plan_digest(d) {
            Ok(())
        } else {
            Err(format!("{what}: digest {d:?} is not valid"))
        }
    };
    for (i, m) in plan.manifests.iter().enumerate() {
        let what = format!("plan.manifests[{i}]");
        repo_ok(&m.repository, &what)?;
        digest_ok(&m.digest, &what)?;
        if let Some(p) = &m.child_of {
            digest_ok(p, &format!("{what}.child_of"))?;
        }
        if let Some(t) = m.tags.iter().find(|t| !is_valid_tag(t)) {
            return Err(format!("{what}: tag {t:?} is not a valid tag"));
        }
    }
    for (i, r) in plan.records.iter().enumerate() {
        let what = format!("plan.records[{i}]");
        if !matches!(r.collection.as_str(), "environment_revisions" | "model_versions") {
            return Err(format!(
                "{what}: collection {:?} is not environment_revisions or model_versions",
                r.collection
            ));
        }
        crate::model::ObjectId::parse(&r.document_id).map_err(|e| format!("{what}.document_id: {e}"))?;
    }
    // `plan.tags` is what limits and prompts count; it must be exactly the manifests' tags.
    let mut from_manifests: Vec<PlanTag> = (plan.manifests.iter())
        .flat_map(|m| {
            m.tags.iter().map(|t| PlanTag {
                repository: m.repository.clone(),
                tag: t.clone(),
                digest: m.digest.clone(),
            })
        })
        .collect();
    from_manifests.sort();
    let mut listed = plan.tags.clone();
    listed.sort();
    if from_manifests != listed {
        return Err(format!(
            "plan.tags ({} entries) does not list exactly the tags of plan.manifests ({})",
            listed.len(),
            from_manifests.len()
        ));
    }
    for (i, t) in plan.tags.iter().enumerate() {
        let what = format!("plan.tags[{i}]");
        repo_ok(&t.repository, &what)?;
        digest_ok(&t.digest, &what)?;
        if !is_valid_tag(&t.tag) {
            return Err(format!("{what}: tag {:?} is not a valid tag", t.tag));
        }
    }
    Ok(())
}

/// Validates a plan's envelope against this run. Errors say what is wrong in operator terms.
pub fn validate(plan: &Plan, registry: &str, fingerprint: Option<&str>, now: i64) -> Result<(), String> {
    if plan.checksum.is_empty() {
        return Err("the plan has no checksum; write it with `registry-cleaner report` or the TUI".into());
    }
    if plan.compute_checksum(&plan.registry) != plan.checksum {
        return Err("the plan was modified after it was written (checksum mismatch); write a new one".into());
    }
    if plan.registry != registry {
        return Err(format!(
            "the plan is for registry {}, but this run targets {registry}",
            plan.registry
        ));
    }
    let expires = timefmt::parse_rfc3339(&plan.expires_at)
        .ok_or_else(|| format!("expires_at {:?} is not RFC 3339", plan.expires_at))?;
    if now > expires {
        return Err(format!(
            "the plan expired at {}; write a new one so it reflects the registry as it is",
            plan.expires_at
        ));
    }
    if let Some(fp) = fingerprint
        && fp != plan.settings_fingerprint
    {
        return Err("the plan was made with different settings (registry, repositories, policy or --without); re-run report with the same settings".into());
    }
    Ok(())
}

/// A tag asked for, and the category it was asked under (`None`: selected explicitly).
pub type Wanted = (TagId, Option<CategoryId>);

/// Builds the plan for `wanted` on `inv`: every manifest by digest with all its tags, index
/// children nothing else keeps, exclusions with reasons, and the bytes GC frees. `engine` is
/// left cleared.
pub fn build(
    inv: &Inventory,
    engine: &mut SpaceEngine,
    wanted: &[Wanted],
    source: &str,
    fingerprint: &str,
    now: i64,
) -> Plan {
    build_with(inv, engine, wanted, &[], source, fingerprint, now)
}

/// [`build`], also deleting untagged revisions (untagged-manifests candidates) by digest:
/// entries with no tags, their children (that nothing else keeps) under them.
pub fn build_with(
    inv: &Inventory,
    engine: &mut SpaceEngine,
    wanted: &[Wanted],
    untagged: &[(RevId, Option<CategoryId>)],
    source: &str,
    fingerprint: &str,
    now: i64,
) -> Plan {
    engine.clear();
    // Per revision: the categories it was asked under and the tags asked for.
    let mut revs: BTreeMap<RevId, (BTreeSet<CategoryId>, BTreeSet<TagId>)> = BTreeMap::new();
    // An untagged revision has no tag to ask for: it goes whole (it has no tags to keep it).
    for &(r, cat) in untagged {
        if inv.revision(r).tags.is_empty() {
            revs.entry(r).or_default().0.extend(cat);
        }
    }
    // Broken tags by (repository, digest): their names, categories and kind.
    type Broken = (BTreeSet<String>, BTreeSet<CategoryId>, ImageKind, Option<RevId>);
    let mut broken: BTreeMap<(String, String), Broken> = BTreeMap::new();
    let mut excluded = Vec::new();
    for &(t, cat) in wanted {
        let tag = inv.tag(t);
        let repo = inv.repo(tag.repo);
        match (tag.revision(), inv.tag_digest(t)) {
            (Some(r), _) => {
                let e = revs.entry(r).or_default();
                e.0.extend(cat);
                e.1.insert(t);
            }
            // A broken tag whose digest is known can still be deleted by digest.
            (None, Some(d)) => {
                let e = broken
                    .entry((repo.name.clone(), inv.digests.name(d).to_string()))
                    .or_insert_with(|| {
                        (
                            BTreeSet::new(),
                            BTreeSet::new(),
                            repo.kind,
                            inv.find_revision(tag.repo, d),
                        )
                    });
                e.0.insert(tag.name.clone());
                e.1.extend(cat);
            }
            (None, None) => excluded.push(ExcludedTag {
                repository: repo.name.clone(),
                tag: tag.name.clone(),
                reason: "the registry returns no digest for this tag, so it cannot be deleted through the API".into(),
            }),
        }
    }
    // Some but not all tags of a digest: those tags are untagged, the manifest stays.
    let whole = |r: RevId, asked: &BTreeSet<TagId>| inv.revision(r).tags.iter().all(|t| asked.contains(t));
    for (&r, (_, asked)) in &revs {
        if whole(r, asked) {
            engine.set_selected(r, true);
        }
    }
    // Under a storage inventory a broken tag's manifest also has a revision link: a revision
    // no readable tag reaches. Planned through its broken tags it goes, by digest, when nothing
    // else keeps it: no index lists it and it lists nothing (the children of an unreadable
    // index are not followed, so a broken index stays excluded below).
    for (_, _, _, rev) in broken.values() {
        if let Some(r) = *rev {
            let x = inv.revision(r);
            if x.tags.is_empty() && x.parents.is_empty() && x.children.is_empty() {
                engine.set_selected(r, true);
            }
        }
    }
    let mut manifests = Vec::new();
    for (&r, (cats, asked)) in &revs {
        let rev = inv.revision(r);
        let repo = inv.repo(rev.repo);
        let repository = repo.name.clone();
        let digest = inv.digests.name(rev.manifest).to_string();
        let categories: Vec<CategoryId> = cats.iter().copied().collect();
        let index = inv.manifest(rev.manifest).is_some_and(|m| m.is_index());
        if !whole(r, asked) {
            let mut tags: Vec<String> = asked.iter().map(|t| inv.tag(*t).name.clone()).collect();
            tags.sort();
            manifests.push(PlanManifest {
                repository,
                digest,
                tags,
                index,
                child_of: None,
                categories,
                kind: Some(repo.kind),
                untag: true,
            });
            continue;
        }
        if engine.is_held_by_index(r) {
            for t in &rev.tags {
                excluded.push(ExcludedTag {
                    repository: repository.clone(),
                    tag: inv.tag(*t).name.clone(),
                    reason: format!("{digest} is a child of an index that stays; deleting it would break that index"),
                });
            }
            continue;
        }
        let mut tags: Vec<String> = rev.tags.iter().map(|t| inv.tag(*t).name.clone()).collect();
        tags.sort();
        // Children the deletion removes, and theirs when a child is an index itself (each
        // under the index that lists it), each once.
        let mut below: Vec<(RevId, RevId)> = rev.children.iter().map(|&c| (c, r)).collect();
        let mut seen = BTreeSet::new();
        while let Some((c, parent)) = below.pop() {
            if !seen.insert(c) || !engine.is_removed(c) || revs.get(&c).is_some_and(|(_, a)| whole(c, a)) {
                continue;
            }
            let child = inv.digests.name(inv.revision(c).manifest).to_string();
            manifests.push(PlanManifest {
                repository: repository.clone(),
                digest: child,
                tags: vec![],
                index: inv.manifest(inv.revision(c).manifest).is_some_and(|m| m.is_index()),
                child_of: Some(inv.digests.name(inv.revision(parent).manifest).to_string()),
                categories: categories.clone(),
                kind: Some(repo.kind),
                untag: false,
            });
            below.extend(inv.revision(c).children.iter().map(|&g| (g, c)));
        }
        manifests.push(PlanManifest {
            repository,
            digest,
            tags,
            index,
            child_of: None,
            categories,
            kind: Some(repo.kind),
            untag: false,
        });
    }
    for ((repository, digest), (tags, cats, kind, rev)) in broken {
        // The digest is also readable here (an index lists it, or readable tags point at it;
        // a snapshot file can say so, one scan cannot) and the selection keeps it: deleting it
        // by digest would break that index or take those tags.
        if rev.is_some_and(|r| !engine.is_removed(r)) {
            for tag in tags {
                excluded.push(ExcludedTag {
                    repository: repository.clone(),
                    tag,
                    reason: format!(
                        "{digest} is also kept by an index or a tag that stays; deleting it would take that along"
                    ),
                });
            }
            continue;
        }
        manifests.push(PlanManifest {
            repository,
            digest,
            tags: tags.into_iter().collect(),
            index: false,
            child_of: None,
            categories: cats.into_iter().collect(),
            kind: Some(kind),
            untag: false,
        });
    }
    let reclaimable = engine.reclaimable();
    engine.clear();
    // Indexes before their children, so an interrupted run never leaves an index whose
    // children are gone; otherwise by repository and digest.
    manifests.sort_by(|a, b| {
        (a.child_of.is_some(), &a.repository, &a.digest).cmp(&(b.child_of.is_some(), &b.repository, &b.digest))
    });
    // One entry per digest: a broken tag and readable tags on the same digest (possible in a
    // snapshot file, never in one scan) merge, so no wanted tag drops out of the plan.
    manifests.dedup_by(|later, kept| {
        let same = later.repository == kept.repository && later.digest == kept.digest;
        if same {
            for t in later.tags.drain(..) {
                if !kept.tags.contains(&t) {
                    kept.tags.push(t);
                }
            }
            kept.tags.sort();
            for c in later.categories.drain(..) {
                if !kept.categories.contains(&c) {
                    kept.categories.push(c);
                }
            }
            kept.categories.sort();
        }
        same
    });
    let mut tags: Vec<PlanTag> = manifests
        .iter()
        .flat_map(|m| {
            m.tags.iter().map(|t| PlanTag {
                repository: m.repository.clone(),
                tag: t.clone(),
                digest: m.digest.clone(),
            })
        })
        .collect();
    tags.sort();
    let mut plan = Plan {
        registry: inv.registry.clone(),
        tags,
        reclaimable_bytes: reclaimable,
        per_category: per_category(&manifests),
        manifests,
        excluded,
        mongo_cleanup: false,
        records: Vec::new(),
        source: source.into(),
        settings_fingerprint: fingerprint.into(),
        snapshot_time: timefmt::rfc3339(now),
        expires_at: timefmt::rfc3339(now + PLAN_LIFETIME_SECS),
        checksum: String::new(),
    };
    plan.seal();
    plan
}

/// Tags per category and kind (a manifest under two categories counts in both).
fn per_category(manifests: &[PlanManifest]) -> Vec<CategoryTotal> {
    let mut map: BTreeMap<CategoryId, CategoryTotal> = BTreeMap::new();
    for m in manifests {
        for &category in &m.categories {
            let c = map.entry(category).or_insert(CategoryTotal {
                category,
                environments: 0,
                models: 0,
                other: 0,
            });
            let n = m.tags.len();
            match m.kind {
                Some(ImageKind::Environment) => c.environments += n,
                Some(ImageKind::Model) => c.models += n,
                _ => c.other += n,
            }
        }
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in ["dominodatalab/environment", "a", "a/b-c", "a__b/c.d", "a---b", "x0/y_1"] {
            assert!(is_valid_repository(ok), "{ok}");
        }
        for bad in [
            "",
            "a/../b",
            "..",
            "A/b",
            "a//b",
            "a/",
            "/a",
            "a/manifests/sha256:00?x=",
            "a?x",
            "a#b",
            "a%2Fb",
            "a b",
            "a/.b",
            "a_-b",
        ] {
            assert!(!is_valid_repository(bad), "{bad}");
        }
        assert!(!is_valid_repository(&"a".repeat(256)));
    }

    #[test]
    fn tag_grammar() {
        for ok in ["latest", "65a-3", "v1.2_x", "_x"] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a?b", "a:b", "a%b"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
        assert!(!is_valid_tag(&"a".repeat(129)));
    }

    fn plan_with(repo: &str, tag: &str, digest: &str) -> Plan {
        Plan {
            registry: "r:5000".into(),
            tags: vec![PlanTag {
                repository: repo.into(),
                tag: tag.into(),
                digest: digest.into(),
            }],
            reclaimable_bytes: 0,
            manifests: vec![PlanManifest {
                repository: repo.into(),
                digest: digest.into(),
                tags: vec![tag.into()],
                index: false,
                child_of: None,
                categories: vec![],
                kind: None,
                untag: false,
            }],
            excluded: vec![],
            per_category: vec![],
            mongo_cleanup: false,
            records: vec![],
            source: "selection".into(),
            settings_fingerprint: String::new(),
            snapshot_time: String::new(),
            expires_at: String::new(),
            checksum: String::new(),
        }
    }

    #[test]
    fn crafted_names_are_refused_before_anything_runs() {
        let scope = Scope {
            prefix: "dominodatalab",
            repositories: None,
        };
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(validate_names(&plan_with("dominodatalab/environment", "x-1", &d), scope).is_ok());
        // The legacy layout's repositories, which the scan reads at the top level.
        let legacy = "domino-507f1f77bcf86cd799439011";
        assert!(validate_names(&plan_with(legacy, "3", &d), scope).is_ok());
        let nested_legacy = format!("other/{legacy}");
        let victim = format!("dominodatalab/environment/manifests/sha256:{}?x=", "b".repeat(64));
        for (repo, tag, digest) in [
            (victim.as_str(), "x", d.as_str()),
            ("dominodatalab/../other", "x", &d),
            ("other/environment", "x", &d),
            ("dominodatalabx/environment", "x", &d),
            (nested_legacy.as_str(), "3", &d),
            ("domino-507f1f77bcf86cd79943901", "3", &d),
            ("domino-environment", "3", &d),
            ("dominodatalab/environment", "x?y=1", &d),
            ("dominodatalab/environment", "../x", &d),
            ("dominodatalab/environment", "x", "sha256:../../x"),
            ("dominodatalab/environment", "x", "sha256:aa?x="),
            (
                "dominodatalab/environment",
                "x",
                &d.to_uppercase().replace("SHA256", "sha256"),
            ),
            (
                "dominodatalab/environment",
                "x",
                &format!("md5/../x:{}", "a".repeat(64)),
            ),
            (&"a".repeat(10_000), "x", &d),
            ("dominodatalab/environment", &"t".repeat(10_000), &d),
        ] {
            let err = validate_names(&plan_with(repo, tag, digest), scope).unwrap_err();
            assert!(err.contains("plan."), "{err}");
        }
    }

    #[test]
    fn crafted_records_are_refused() {
        let scope = Scope {
            prefix: "dominodatalab",
            repositories: None,
        };
        let d = format!("sha256:{}", "a".repeat(64));
        let rec = |c: &str, id: &str| PlanRecord {
            collection: c.into(),
            document_id: id.into(),
            tag: "x".into(),
        };
        let mut plan = plan_with("dominodatalab/environment", "x-1", &d);
        plan.records = vec![rec("model_versions", "507f1f77bcf86cd799439011")];
        assert!(validate_names(&plan, scope).is_ok());
        for (r, want) in [
            (rec("users", "507f1f77bcf86cd799439011"), "collection \"users\""),
            (rec("environments_v2", "507f1f77bcf86cd799439011"), "collection"),
            (
                rec("environment_revisions", "507f1f77bcf86cd79943901"),
                "not 24 characters",
            ),
            (rec("environment_revisions", "{\"$ne\": null}"), "document_id"),
        ] {
            plan.records = vec![r];
            let err = validate_names(&plan, scope).unwrap_err();
            assert!(err.contains("plan.records[0]") && err.contains(want), "{err}");
        }
        // Records are in the checksum; an empty list keeps the bytes of older plans.
        let mut a = plan_with("dominodatalab/environment", "x-1", &d);
        let before = a.compute_checksum("r");
        a.records = vec![rec("model_versions", "507f1f77bcf86cd799439011")];
        assert_ne!(a.compute_checksum("r"), before);
    }

    #[test]
    fn tags_that_do_not_match_the_manifests_are_refused() {
        let scope = Scope {
            prefix: "dominodatalab",
            repositories: None,
        };
        let d = format!("sha256:{}", "a".repeat(64));
        let mut plan = plan_with("dominodatalab/environment", "x-1", &d);
        plan.tags.clear();
        let err = validate_names(&plan, scope).unwrap_err();
        assert!(err.contains("plan.tags"), "{err}");
    }

    #[test]
    fn the_checksum_bytes_are_those_of_the_json_object_written_before() {
        // Plans written by earlier builds (checksum over a `serde_json::json!` object) must
        // still validate.
        let d = format!("sha256:{}", "a".repeat(64));
        let mut plan = plan_with("dominodatalab/environment", "x-1", &d);
        plan.manifests[0].child_of = Some(d.clone());
        plan.manifests[0].categories = vec![CategoryId::OldRevisions];
        plan.manifests[0].kind = Some(ImageKind::Environment);
        plan.reclaimable_bytes = 123;
        plan.mongo_cleanup = true;
        let old = serde_json::json!({
            "registry": "r:5000",
            "tags": plan.tags,
            "manifests": plan.manifests,
            "reclaimable_bytes": plan.reclaimable_bytes,
            "mongo_cleanup": plan.mongo_cleanup,
            "settings_fingerprint": plan.settings_fingerprint,
            "snapshot_time": plan.snapshot_time,
            "expires_at": plan.expires_at,
        });
        assert_eq!(
            plan.compute_checksum("r:5000"),
            crate::model::digest::sha256_digest(old.to_string().as_bytes())
        );
    }
}
