//! The registry as scanned: repositories, tags, content-addressed manifests and blobs, and the
//! manifest *revisions* (repository, digest) that Distribution keeps and its GC marks from.
//! Built once by [`InventoryBuilder`]; read-only afterwards.

use super::digest::{DigestId, Digests};
use super::image::ImageKind;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId(pub u32);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagId(pub u32);
/// A manifest linked into one repository. Deleting "a tag" deletes one of these by digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RevId(pub u32);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub kind: ImageKind,
}

/// A blob reference inside a manifest, with the size the manifest declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blob {
    pub digest: DigestId,
    pub size: u64,
}

/// What a blob is to the manifest that references it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    Config,
    Layer,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestKind {
    /// Docker schema 2 or OCI image manifest.
    Image { config: Blob, layers: Vec<Blob> },
    /// Docker manifest list or OCI index: child manifests with their platforms.
    Index { children: Vec<(Blob, Option<Platform>)> },
}

/// A manifest body, identical in every repository that links it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub digest: DigestId,
    pub media_type: String,
    /// Length of the manifest JSON, which the registry stores as a blob too.
    pub size: u64,
    pub kind: ManifestKind,
    /// Image creation time (Unix seconds) from the config blob, when it was read.
    pub created: Option<i64>,
}

impl Manifest {
    pub fn is_index(&self) -> bool {
        matches!(self.kind, ManifestKind::Index { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagState {
    Ok(RevId),
    /// The tag exists but its manifest (or something it references) could not be read.
    Broken {
        digest: Option<DigestId>,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub repo: RepoId,
    pub name: String,
    pub state: TagState,
    /// When the tag was last pointed at its manifest (Unix seconds): the modification time of
    /// its storage link. Known only from a storage inventory; the HTTP API has no push time.
    pub pushed: Option<i64>,
}

impl Tag {
    pub fn revision(&self) -> Option<RevId> {
        match self.state {
            TagState::Ok(r) => Some(r),
            TagState::Broken { .. } => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub repo: RepoId,
    pub manifest: DigestId,
    /// Tags pointing at this digest in this repository (siblings of each other).
    pub tags: Vec<TagId>,
    /// Indexes in the same repository that list this manifest as a child.
    pub parents: Vec<RevId>,
    /// For an index: its child manifests' revisions in the same repository.
    pub children: Vec<RevId>,
    /// A revision link in storage that no readable tag reaches (neither directly nor as the
    /// child of a tagged index); a broken tag may still name its digest. Only a storage
    /// inventory has these; GC still marks from them.
    pub untagged: bool,
    /// Modification time of the revision link (Unix seconds), from a storage inventory.
    pub pushed: Option<i64>,
}

impl Revision {
    /// Whether GC marks from this revision by itself: it has a tag, or it is an untagged
    /// revision link no index lists (an untagged index's children live through their index).
    pub fn is_root(&self) -> bool {
        !self.tags.is_empty() || (self.untagged && self.parents.is_empty())
    }
}

/// Everything the registry scan learned.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub registry: String,
    pub digests: Digests,
    pub repos: Vec<Repository>,
    pub tags: Vec<Tag>,
    pub revisions: Vec<Revision>,
    manifests: Vec<Manifest>,
    manifest_index: HashMap<DigestId, usize>,
    rev_index: HashMap<(RepoId, DigestId), RevId>,
    /// Whether the catalog was read, so every legacy `domino-<envId>` repository was seen.
    /// Without it a legacy image can exist unseen: no record may be called an orphan.
    pub catalog_read: bool,
    /// Read from the registry's storage (every revision link, push times) rather than its
    /// HTTP API (tagged manifests only, no push times).
    pub from_storage: bool,
}

impl Inventory {
    pub fn repo(&self, id: RepoId) -> &Repository {
        &self.repos[id.0 as usize]
    }
    pub fn tag(&self, id: TagId) -> &Tag {
        &self.tags[id.0 as usize]
    }
    pub fn revision(&self, id: RevId) -> &Revision {
        &self.revisions[id.0 as usize]
    }
    pub fn manifest(&self, digest: DigestId) -> Option<&Manifest> {
        self.manifest_index.get(&digest).map(|i| &self.manifests[*i])
    }
    pub fn manifests(&self) -> &[Manifest] {
        &self.manifests
    }
    pub fn tag_ids(&self) -> impl Iterator<Item = TagId> + '_ {
        (0..self.tags.len()).map(|i| TagId(i as u32))
    }
    pub fn rev_ids(&self) -> impl Iterator<Item = RevId> + '_ {
        (0..self.revisions.len()).map(|i| RevId(i as u32))
    }
    pub fn repo_by_name(&self, name: &str) -> Option<RepoId> {
        self.repos.iter().position(|r| r.name == name).map(|i| RepoId(i as u32))
    }
    /// `InventoryBuilder::finish` stores tags sorted by (repository, name), so lookups are
    /// binary searches rather than scans of every tag.
    pub fn find_tag(&self, repo: &str, tag: &str) -> Option<TagId> {
        let repo = self.repo_by_name(repo)?;
        self.tags
            .binary_search_by(|t| (t.repo, t.name.as_str()).cmp(&(repo, tag)))
            .ok()
            .map(|i| TagId(i as u32))
    }
    /// The tags of one repository (a contiguous, name-sorted range).
    pub fn repo_tags(&self, repo: RepoId) -> impl Iterator<Item = TagId> + use<> {
        let start = self.tags.partition_point(|t| t.repo < repo);
        let end = self.tags.partition_point(|t| t.repo <= repo);
        (start..end).map(|i| TagId(i as u32))
    }
    /// The revision of `digest` in `repo`, if anything there references it.
    pub fn find_revision(&self, repo: RepoId, digest: DigestId) -> Option<RevId> {
        self.rev_index.get(&(repo, digest)).copied()
    }
    /// Revisions no tag reaches (storage inventories only), in revision order.
    pub fn untagged_revisions(&self) -> impl Iterator<Item = RevId> + '_ {
        self.rev_ids().filter(|r| self.revision(*r).untagged)
    }
    /// The digest a tag points at, broken tags included when the digest is known.
    pub fn tag_digest(&self, id: TagId) -> Option<DigestId> {
        match &self.tag(id).state {
            TagState::Ok(r) => Some(self.revision(*r).manifest),
            TagState::Broken { digest, .. } => *digest,
        }
    }
    /// Whether broken tag `t` may be an index listing manifest `digest` in its repository
    /// (nothing here can rule it out): its target or body was never read (it could be
    /// anything), or it is an index that lists `digest`, lists a child that could not be read,
    /// or lists an index (nested: its children are not known here). A readable image lists
    /// nothing. The untagged-manifests category and the delete-time re-check both ask this.
    pub fn broken_may_list(&self, t: TagId, digest: &str) -> bool {
        match self.tag_digest(t) {
            None => true,
            Some(d) => match self.manifest(d).map(|m| &m.kind) {
                None => true,
                Some(ManifestKind::Index { children }) => children.iter().any(|(c, _)| {
                    self.digests.name(c.digest) == digest || self.manifest(c.digest).is_none_or(|m| m.is_index())
                }),
                Some(ManifestKind::Image { .. }) => false,
            },
        }
    }
    /// Other tags that go with `id` when its manifest is deleted by digest.
    pub fn siblings(&self, id: TagId) -> Vec<TagId> {
        match self.tag(id).revision() {
            Some(r) => self.revision(r).tags.iter().copied().filter(|t| *t != id).collect(),
            None => Vec::new(),
        }
    }
    /// The tag's name in the current Domino layout (`domino-<env>:<rev>` → `<env>-<rev>`,
    /// others unchanged): what every Domino rule matches against.
    pub fn domino_tag(&self, id: TagId) -> std::borrow::Cow<'_, str> {
        let t = self.tag(id);
        crate::model::image::domino_tag(&self.repo(t.repo).name, &t.name)
    }
    /// `repository:tag`, the form protections and filters match against.
    pub fn tag_ref(&self, id: TagId) -> String {
        let t = self.tag(id);
        format!("{}:{}", self.repo(t.repo).name, t.name)
    }
    /// Image creation time of a tag's manifest (for an index, the newest image under it).
    /// Iterative, each revision once: indexes may nest, and a snapshot file can even make
    /// them list each other.
    pub fn created(&self, rev: RevId) -> Option<i64> {
        let m = self.manifest(self.revision(rev).manifest)?;
        if let ManifestKind::Image { .. } = m.kind {
            return m.created;
        }
        let mut newest = None;
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![rev];
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            let r = self.revision(r);
            match self.manifest(r.manifest).map(|m| (&m.kind, m.created)) {
                Some((ManifestKind::Image { .. }, created)) => newest = newest.max(created),
                Some((ManifestKind::Index { .. }, _)) => stack.extend(r.children.iter().copied()),
                None => {}
            }
        }
        newest
    }
}

/// Where a scanned tag points: its digest, or why it cannot be read (with the digest if known).
type TagTarget = Result<DigestId, (Option<DigestId>, String)>;
/// A pending tag: repository, name, target, push time.
type PendingTag = (RepoId, String, TagTarget, Option<i64>);

/// Collects scan results in any order and links them into an [`Inventory`].
#[derive(Debug, Default)]
pub struct InventoryBuilder {
    inv: Inventory,
    pending_tags: Vec<PendingTag>,
    /// Revision links no tag may reach, with their push times (storage inventories).
    pending_revisions: Vec<(RepoId, DigestId, Option<i64>)>,
}

impl InventoryBuilder {
    pub fn new(registry: &str) -> Self {
        let mut b = Self::default();
        b.inv.registry = registry.to_string();
        b.inv.catalog_read = true;
        b
    }

    pub fn digest(&mut self, digest: &str) -> DigestId {
        self.inv.digests.intern(digest)
    }

    pub fn repo(&mut self, name: &str) -> RepoId {
        if let Some(id) = self.inv.repo_by_name(name) {
            return id;
        }
        self.inv.repos.push(Repository {
            name: name.to_string(),
            kind: ImageKind::of_repository(name),
        });
        RepoId(self.inv.repos.len() as u32 - 1)
    }

    /// Records a manifest body; the first copy of a digest wins (content-addressed).
    /// Says the repositories did not come from a complete catalog read.
    pub fn catalog_not_read(&mut self) {
        self.inv.catalog_read = false;
    }

    pub fn manifest(&mut self, m: Manifest) {
        if !self.inv.manifest_index.contains_key(&m.digest) {
            self.inv.manifest_index.insert(m.digest, self.inv.manifests.len());
            self.inv.manifests.push(m);
        }
    }

    pub fn has_manifest(&self, digest: DigestId) -> bool {
        self.inv.manifest_index.contains_key(&digest)
    }

    pub fn set_created(&mut self, digest: DigestId, created: Option<i64>) {
        if let Some(i) = self.inv.manifest_index.get(&digest) {
            self.inv.manifests[*i].created = created;
        }
    }

    pub fn tag(&mut self, repo: RepoId, name: &str, digest: DigestId) {
        self.pending_tags.push((repo, name.to_string(), Ok(digest), None));
    }

    pub fn broken_tag(&mut self, repo: RepoId, name: &str, digest: Option<DigestId>, reason: &str) {
        self.pending_tags
            .push((repo, name.to_string(), Err((digest, reason.to_string())), None));
    }

    /// Sets the push time of the tag added last.
    pub fn tag_pushed(&mut self, pushed: Option<i64>) {
        if let Some(t) = self.pending_tags.last_mut() {
            t.3 = pushed;
        }
    }

    /// Says the inventory comes from the registry's storage.
    pub fn from_storage(&mut self) {
        self.inv.from_storage = true;
    }

    /// A manifest revision link in storage. Linked after the tags: one that no tag reaches
    /// becomes an untagged revision; the manifest must have been recorded.
    pub fn revision_link(&mut self, repo: RepoId, digest: DigestId, pushed: Option<i64>) {
        self.pending_revisions.push((repo, digest, pushed));
    }

    /// Links tags to revisions, and index revisions to their children in the same repository.
    /// A tag whose manifest (or an index child) is missing becomes broken with the reason.
    pub fn finish(mut self) -> Inventory {
        let mut pending = std::mem::take(&mut self.pending_tags);
        pending.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        pending.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        let mut revs: HashMap<(RepoId, DigestId), RevId> = HashMap::new();
        for (repo, name, target, pushed) in pending {
            let state = match target {
                Ok(d) => match self.missing_part(d) {
                    None => TagState::Ok(self.revision_for(&mut revs, repo, d)),
                    Some(reason) => TagState::Broken {
                        digest: Some(d),
                        reason,
                    },
                },
                Err((digest, reason)) => TagState::Broken { digest, reason },
            };
            let id = TagId(self.inv.tags.len() as u32);
            if let TagState::Ok(r) = state {
                self.inv.revisions[r.0 as usize].tags.push(id);
            }
            self.inv.tags.push(Tag {
                repo,
                name,
                state,
                pushed,
            });
        }
        // Every revision made from here on is reached by no tag.
        let tagged_revisions = self.inv.revisions.len();
        let mut links = std::mem::take(&mut self.pending_revisions);
        links.sort_by_key(|l| (l.0, self.inv.digests.name(l.1).to_string()));
        for (repo, d, _) in &links {
            if self.inv.manifest(*d).is_some() {
                self.revision_for(&mut revs, *repo, *d);
            }
        }
        for (repo, d, pushed) in links {
            if let Some(r) = revs.get(&(repo, d)) {
                self.inv.revisions[r.0 as usize].pushed = pushed;
            }
        }
        for r in &mut self.inv.revisions[tagged_revisions..] {
            r.untagged = true;
        }
        self.inv.rev_index = revs;
        self.inv
    }

    fn missing_part(&self, d: DigestId) -> Option<String> {
        let Some(m) = self.inv.manifest(d) else {
            return Some(format!("manifest {} was not read", self.inv.digests.name(d)));
        };
        if let ManifestKind::Index { children } = &m.kind {
            for (child, _) in children {
                if self.inv.manifest(child.digest).is_none() {
                    let name = self.inv.digests.name(child.digest);
                    return Some(format!("child manifest {name} of the index cannot be read"));
                }
            }
        }
        None
    }

    fn revision_for(&mut self, revs: &mut HashMap<(RepoId, DigestId), RevId>, repo: RepoId, d: DigestId) -> RevId {
        if let Some(r) = revs.get(&(repo, d)) {
            return *r;
        }
        let id = RevId(self.inv.revisions.len() as u32);
        revs.insert((repo, d), id);
        self.inv.revisions.push(Revision {
            repo,
            manifest: d,
            tags: vec![],
            parents: vec![],
            children: vec![],
            untagged: false,
            pushed: None,
        });
        let children: Vec<DigestId> = match self.inv.manifest(d).map(|m| &m.kind) {
            Some(ManifestKind::Index { children }) => children.iter().map(|(b, _)| b.digest).collect(),
            _ => Vec::new(),
        };
        for c in children {
            let child = self.revision_for(revs, repo, c);
            if !self.inv.revisions[id.0 as usize].children.contains(&child) {
                self.inv.revisions[id.0 as usize].children.push(child);
                self.inv.revisions[child.0 as usize].parents.push(id);
            }
        }
        id
    }
}
