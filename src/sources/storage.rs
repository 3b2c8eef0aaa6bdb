//! The registry's storage, read as `garbage-collect` reads it (read-only, never a write):
//! `<root>/docker/registry/v2/repositories/<repo>/` with its tag links
//! (`_manifests/tags/<t>/current/link`), manifest revision links
//! (`_manifests/revisions/sha256/<h>/link`) and layer links (`_layers/sha256/<h>/link`), and
//! `blobs/sha256/<2>/<h>/data` for manifest bodies and config blobs. Drivers through
//! `object_store`: a mounted filesystem (`file:///rootdirectory`) and S3
//! (`s3://bucket/rootdirectory`, credentials, region and endpoint from the `AWS_*` variables).
//!
//! The result is the [`Inventory`] the HTTP scan builds for the same registry, plus every
//! revision link no tag reaches (untagged revisions) and push times (link modification times).
//! Fail closed: a tag whose link or manifest cannot be read is broken with the path named; a
//! read error other than "not found", or an untagged revision whose manifest cannot be read
//! (GC itself would stop on it), fails the scan with the path named.

use crate::model::digest::sha256_digest;
use crate::model::{Inventory, InventoryBuilder};
use crate::sources::registry::{ParsedManifest, parse_config_created, parse_manifest};
use crate::sources::registry::{add_manifest, broken_reason};
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt as _};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// S3 lists at most 1000 keys per request.
const LIST_PAGE: u64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage URL {0}")]
    Url(String),
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
}

/// Requests made against the storage, by kind.
#[derive(Debug, Default)]
pub struct StorageStats {
    pub gets: AtomicU64,
    pub heads: AtomicU64,
    /// List requests, counting one per started page of 1000 keys (S3's page size).
    pub list_pages: AtomicU64,
}

impl StorageStats {
    pub fn requests(&self) -> u64 {
        self.gets.load(Ordering::Relaxed) + self.heads.load(Ordering::Relaxed) + self.list_pages.load(Ordering::Relaxed)
    }
}

/// An opened storage location: the store and the path of `docker/registry/v2` in it.
pub struct StorageSource {
    store: Arc<dyn ObjectStore>,
    v2: StorePath,
    /// The URL as given (it carries no credentials: those come from the environment).
    pub url: String,
    pub stats: StorageStats,
}

/// Only the URL: the S3 client's own `Debug` may show its credentials.
impl std::fmt::Debug for StorageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSource")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct StorageScanOptions {
    /// Repository prefix, e.g. `dominodatalab`.
    pub prefix: String,
    /// Exactly these repositories instead of those under the prefix.
    pub repositories: Option<Vec<String>>,
    /// Read config blobs for image creation times.
    pub fetch_config: bool,
    /// Check that every layer is linked into its repository and its data exists.
    pub verify_blobs: bool,
    pub concurrency: usize,
}

/// Parses `file:///abs/path` or `s3://bucket[/root]`. Validation only: nothing is contacted.
pub fn parse_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match u.scheme() {
        "file" => {
            if u.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(format!("{url:?}: a file URL has no host (file:///path)"));
            }
            if u.path().is_empty() || u.path() == "/" {
                return Err(format!("{url:?}: name the registry's rootdirectory (file:///path)"));
            }
            Ok(())
        }
        "s3" => {
            if u.host_str().is_none_or(str::is_empty) {
                return Err(format!("{url:?}: name the bucket (s3://bucket/rootdirectory)"));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(format!(
                    "{url:?}: credentials never go in the URL; use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
                ));
            }
            Ok(())
        }
        other => Err(format!("{url:?}: scheme {other:?} is not supported (file:// or s3://)")),
    }
}

impl StorageSource {
    /// Opens the location (S3: configuration from the `AWS_*` environment variables).
    pub fn open(url: &str) -> Result<StorageSource, StorageError> {
        Self::open_with(url, &[])
    }

    /// [`StorageSource::open`], with S3 settings (`object_store` keys such as `aws_endpoint`)
    /// applied over the environment's: for callers that cannot set process variables.
    pub fn open_with(url: &str, s3_config: &[(&str, String)]) -> Result<StorageSource, StorageError> {
        parse_url(url).map_err(StorageError::Url)?;
        let u = url::Url::parse(url).map_err(|e| StorageError::Url(e.to_string()))?;
        let (store, root): (Arc<dyn ObjectStore>, String) = match u.scheme() {
            "file" => {
                let dir = u
                    .to_file_path()
                    .map_err(|_| StorageError::Url(format!("{url:?} is not a local path")))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| StorageError::Url(format!("{}: {e}", dir.display())))?;
                (Arc::new(fs), String::new())
            }
            _ => {
                let bucket = u.host_str().unwrap_or_default().to_string();
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
                for (k, v) in s3_config {
                    let key = k
                        .parse()
                        .map_err(|e| StorageError::Url(format!("S3 setting {k}: {e}")))?;
                    b = b.with_config(key, v.clone());
                }
                let s3 = b.build().map_err(|e| StorageError::Url(format!("{url}: {e}")))?;
                (Arc::new(s3), u.path().trim_matches('/').to_string())
            }
        };
        let v2 = if root.is_empty() {
            "docker/registry/v2".to_string()
        } else {
            format!("{root}/docker/registry/v2")
        };
        Ok(StorageSource {
            store,
            v2: StorePath::from(v2),
            url: url.to_string(),
            stats: StorageStats::default(),
        })
    }

    fn path(&self, rel: &str) -> StorePath {
        StorePath::from(format!("{}/{rel}", self.v2))
    }

    fn shown(&self, rel: &str) -> String {
        format!("{}/docker/registry/v2/{rel}", self.url.trim_end_matches('/'))
    }

    /// Every object under `rel/` (recursively), as paths relative to `repositories/` with
    /// their modification times.
    async fn list(&self, rel: &str) -> Result<Vec<(String, i64)>, StorageError> {
        let prefix = self.path(rel);
        let base = format!("{}/repositories/", self.v2);
        let metas: Vec<object_store::ObjectMeta> =
            self.store
                .list(Some(&prefix))
                .try_collect()
                .await
                .map_err(|e| StorageError::Read {
                    path: self.shown(rel),
                    reason: format!("cannot list: {e}"),
                })?;
        let pages = (metas.len() as u64).div_ceil(LIST_PAGE).max(1);
        self.stats.list_pages.fetch_add(pages, Ordering::Relaxed);
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let p = m.location.to_string();
                p.strip_prefix(&base)
                    .map(|r| (r.to_string(), m.last_modified.timestamp()))
            })
            .collect())
    }

    /// Top-level directory names under `repositories/`.
    async fn top_level(&self) -> Result<Vec<String>, StorageError> {
        let prefix = self.path("repositories");
        let r = match self.store.list_with_delimiter(Some(&prefix)).await {
            Ok(r) => r,
            // A registry nothing was pushed to has no `repositories/` yet.
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => {
                return Err(StorageError::Read {
                    path: self.shown("repositories"),
                    reason: format!("cannot list: {e}"),
                });
            }
        };
        let n = (r.common_prefixes.len() + r.objects.len()) as u64;
        self.stats
            .list_pages
            .fetch_add(n.div_ceil(LIST_PAGE).max(1), Ordering::Relaxed);
        Ok(r.common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// An object's bytes; `Ok(None)` when it does not exist.
    async fn get(&self, rel: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let err = |e: object_store::Error| StorageError::Read {
            path: self.shown(rel),
            reason: format!("cannot read: {e}"),
        };
        match self.store.get(&self.path(rel)).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn exists(&self, rel: &str) -> Result<bool, StorageError> {
        self.stats.heads.fetch_add(1, Ordering::Relaxed);
        match self.store.head(&self.path(rel)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(StorageError::Read {
                path: self.shown(rel),
                reason: format!("cannot read: {e}"),
            }),
        }
    }
}

/// The data file of a blob, relative to `docker/registry/v2`.
fn blob_data(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("blobs/sha256/{}/{hex}/data", &hex[..2.min(hex.len())])
}

fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// What one repository holds in storage.
#[derive(Debug, Default)]
struct RepoLinks {
    /// Tag name → modification time of `current/link` (None: the tag directory has no
    /// current link).
    tags: BTreeMap<String, Option<i64>>,
    /// Manifest digest → modification time of its revision link.
    revisions: BTreeMap<String, i64>,
    layers: HashSet<String>,
}

/// Sorts one listed key into its repository's links.
fn record(repos: &mut BTreeMap<String, RepoLinks>, key: &str, mtime: i64, keep: &dyn Fn(&str) -> bool) {
    let parts: Vec<&str> = key.split('/').collect();
    let Some(i) = parts.iter().position(|p| p.starts_with('_')) else {
        return;
    };
    if i == 0 {
        return;
    }
    let repo = parts[..i].join("/");
    if !keep(&repo) {
        return;
    }
    let rest = &parts[i..];
    match rest {
        ["_manifests", "tags", t, "current", "link"] => {
            repos.entry(repo).or_default().tags.insert(t.to_string(), Some(mtime));
        }
        ["_manifests", "tags", t, ..] => {
            repos.entry(repo).or_default().tags.entry(t.to_string()).or_insert(None);
        }
        ["_manifests", "revisions", "sha256", h, "link"] => {
            repos
                .entry(repo)
                .or_default()
                .revisions
                .insert(format!("sha256:{h}"), mtime);
        }
        ["_manifests", ..] => {
            repos.entry(repo).or_default();
        }
        // (A directory with layers only is dropped later: the catalog lists `_manifests`.)
        ["_layers", "sha256", h, "link"] => {
            repos.entry(repo).or_default().layers.insert(format!("sha256:{h}"));
        }
        _ => {}
    }
}

/// A manifest read from `blobs/`: parsed, its size, the repository it was first seen in.
struct Body {
    manifest: ParsedManifest,
    size: u64,
    repo: String,
}

/// What the storage scan is reading, for progress: each step counts its own items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageStep {
    /// Listing repositories and their links (no total known).
    Listing,
    /// One tag link per tag.
    TagLinks,
    /// One manifest blob per digest (tag targets, revisions, then index children).
    Manifests,
    /// One config blob per image config (creation times).
    Configs,
    /// One existence check per layer (`verify_blobs`).
    Blobs,
}

/// `(step, done, total)`, called at the start of a step, every 64 items and at its end.
pub type StorageProgress<'a> = &'a (dyn Fn(StorageStep, usize, usize) + Sync);

/// Counts one step's items and reports every 64th and the last.
struct Counter<'a> {
    step: StorageStep,
    total: usize,
    done: std::sync::atomic::AtomicUsize,
    on_progress: StorageProgress<'a>,
}

impl<'a> Counter<'a> {
    fn start(step: StorageStep, total: usize, on_progress: StorageProgress<'a>) -> Self {
        on_progress(step, 0, total);
        Self {
            step,
            total,
            done: std::sync::atomic::AtomicUsize::new(0),
            on_progress,
        }
    }

    fn tick(&self) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(64) || n == self.total {
            (self.on_progress)(self.step, n, self.total);
        }
    }
}

/// Reads the storage into an inventory for `registry` (the host deletes go to).
pub async fn scan(
    src: &StorageSource,
    registry: &str,
    opts: &StorageScanOptions,
    on_progress: StorageProgress<'_>,
) -> Result<Inventory, StorageError> {
    let conc = opts.concurrency.max(1);
    on_progress(StorageStep::Listing, 0, 0);
    // 1. Repositories and their links, from listings.
    let mut repos: BTreeMap<String, RepoLinks> = BTreeMap::new();
    let catalog_read;
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    match &opts.repositories {
        Some(list) => {
            catalog_read = false;
            for r in list {
                let keys = src.list(&format!("repositories/{r}")).await?;
                for (k, t) in keys {
                    record(&mut repos, &k, t, &|name| name == r);
                }
                wanted.insert(r.clone());
            }
        }
        None => {
            catalog_read = true;
            let prefix = opts.prefix.trim_end_matches('/').to_string();
            let under = format!("{prefix}/");
            wanted.insert(format!("{prefix}/environment"));
            wanted.insert(format!("{prefix}/model"));
            for (k, t) in src.list(&format!("repositories/{prefix}")).await? {
                record(&mut repos, &k, t, &|name| name.starts_with(&under));
            }
            for top in src.top_level().await? {
                if crate::model::image::legacy_environment(&top).is_some() && top != prefix {
                    for (k, t) in src.list(&format!("repositories/{top}")).await? {
                        record(&mut repos, &k, t, &|name| name == top);
                    }
                }
            }
        }
    }
    // Layer-only directories are not repositories (no `_manifests`), unless asked for.
    repos.retain(|name, r| !r.tags.is_empty() || !r.revisions.is_empty() || wanted.contains(name));
    for w in &wanted {
        repos.entry(w.clone()).or_default();
    }

    // 2. Tag links: one GET each.
    let tag_work: Vec<(String, String, Option<i64>)> = repos
        .iter()
        .flat_map(|(r, l)| l.tags.iter().map(move |(t, m)| (r.clone(), t.clone(), *m)))
        .collect();
    let counter = Counter::start(StorageStep::TagLinks, tag_work.len(), on_progress);
    let targets: TagTargets = stream::iter(tag_work)
        .map(|(repo, tag, mtime)| {
            let counter = &counter;
            async move {
                let rel = format!("repositories/{repo}/_manifests/tags/{tag}/current/link");
                let r = match mtime {
                    None => Ok(Err(format!("{}: the tag has no current link", src.shown(&rel)))),
                    Some(_) => src.get(&rel).await.map(|body| match body {
                        None => Err(format!("{}: the tag's link is gone", src.shown(&rel))),
                        Some(b) => {
                            // Untrimmed: Distribution parses the link's bytes as they are,
                            // so a stray newline makes the tag unreadable to the registry too.
                            let d = String::from_utf8_lossy(&b).to_string();
                            if valid_digest(&d) {
                                Ok(d)
                            } else {
                                Err(format!("{}: not a sha256 digest: {d:?}", src.shown(&rel)))
                            }
                        }
                    }),
                };
                counter.tick();
                r.map(|t| (repo, tag, mtime, t))
            }
        })
        .buffer_unordered(conc)
        .try_collect()
        .await?;

    // 3. Manifest bodies: every tag target and every revision link, once per digest.
    let mut broken: HashMap<String, String> = HashMap::new();
    let mut tag_targets = Vec::with_capacity(targets.len());
    let mut want_bodies: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for (repo, tag, mtime, t) in targets {
        let t = t.and_then(|d| {
            if repos[&repo].revisions.contains_key(&d) {
                Ok(d)
            } else {
                Err(format!(
                    "manifest {d} has no revision link in {repo} ({})",
                    src.shown(&format!(
                        "repositories/{repo}/_manifests/revisions/sha256/{}/link",
                        &d[7..]
                    ))
                ))
            }
        });
        if let Ok(d) = &t {
            want_bodies.entry(d.clone()).or_insert((repo.clone(), true)).1 = true;
        }
        tag_targets.push((repo, tag, mtime, t));
    }
    for (repo, l) in &repos {
        for d in l.revisions.keys() {
            want_bodies.entry(d.clone()).or_insert((repo.clone(), false));
        }
    }
    let mut bodies: HashMap<String, Body> = HashMap::new();
    read_bodies(src, conc, want_bodies, &mut bodies, &mut broken, on_progress).await?;

    // 4. Index children: a revision link in the index's repository, and a body.
    let mut child_bodies: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for (digest, b) in &bodies {
        if let ParsedManifest::Index { children, .. } = &b.manifest {
            for c in children {
                if !repos[&b.repo].revisions.contains_key(&c.digest) {
                    broken
                        .entry(digest.clone())
                        .or_insert_with(|| format!("child manifest {} has no revision link in {}", c.digest, b.repo));
                } else if !bodies.contains_key(&c.digest) {
                    child_bodies.insert(c.digest.clone(), (b.repo.clone(), true));
                }
            }
        }
    }
    let children_read: Vec<String> = child_bodies.keys().cloned().collect();
    read_bodies(src, conc, child_bodies, &mut bodies, &mut broken, on_progress).await?;
    // As the HTTP scan: an index read only as a child is not followed further.
    for c in children_read {
        if matches!(bodies.get(&c).map(|b| &b.manifest), Some(ParsedManifest::Index { .. })) {
            bodies.remove(&c);
            broken.insert(c, "nested index as an index child is not supported".into());
        }
    }

    // 5. Config blobs (creation times; a missing config makes its images broken).
    let mut created: HashMap<String, Option<i64>> = HashMap::new();
    if opts.fetch_config {
        let mut by_config: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for (digest, b) in &bodies {
            if let ParsedManifest::Image { config, .. } = &b.manifest {
                by_config
                    .entry(config.digest.clone())
                    .or_insert_with(|| (b.repo.clone(), Vec::new()))
                    .1
                    .push(digest.clone());
            }
        }
        let repos = &repos;
        let counter = Counter::start(StorageStep::Configs, by_config.len(), on_progress);
        let counter = &counter;
        let fetched: Vec<(String, Vec<String>, Option<Vec<u8>>)> = stream::iter(by_config)
            .map(|(config, (repo, manifests))| async move {
                if !valid_digest(&config) || !repos[&repo].layers.contains(&config) {
                    counter.tick();
                    return Ok((config, manifests, None));
                }
                let r = src.get(&blob_data(&config)).await.map(|b| (config, manifests, b));
                counter.tick();
                r
            })
            .buffer_unordered(conc)
            .try_collect()
            .await?;
        for (config, manifests, body) in fetched {
            match body {
                Some(body) => {
                    let t = parse_config_created(&body).unwrap_or_else(|e| {
                        tracing::warn!(config, error = %e, "unreadable config");
                        None
                    });
                    for m in manifests {
                        created.insert(m, t);
                    }
                }
                None => {
                    for m in manifests {
                        broken.insert(m, format!("config blob {config} is missing"));
                    }
                }
            }
        }
    }

    // 6. Layers (optional): linked into the repository, and the data exists.
    if opts.verify_blobs {
        let mut by_layer: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (digest, b) in &bodies {
            if let ParsedManifest::Image { layers, .. } = &b.manifest {
                for l in layers {
                    by_layer
                        .entry(l.digest.clone())
                        .or_default()
                        .push((b.repo.clone(), digest.clone()));
                }
            }
        }
        let repos = &repos;
        type Checked = Vec<(String, Vec<(String, String)>, bool)>;
        let counter = Counter::start(StorageStep::Blobs, by_layer.len(), on_progress);
        let counter = &counter;
        let checked: Checked = stream::iter(by_layer)
            .map(|(layer, users)| async move {
                let ok = valid_digest(&layer) && src.exists(&blob_data(&layer)).await?;
                counter.tick();
                Ok::<_, StorageError>((layer, users, ok))
            })
            .buffer_unordered(conc)
            .try_collect()
            .await?;
        for (layer, users, ok) in checked {
            for (repo, m) in users {
                if !ok || !repos[&repo].layers.contains(&layer) {
                    broken
                        .entry(m)
                        .or_insert_with(|| format!("layer blob {layer} is missing"));
                }
            }
        }
    }

    // 7. An untagged revision GC cannot read stops the scan: no prediction without it. (One a
    // tag or an index reaches makes that tag broken instead.)
    let listed: HashSet<&String> = bodies
        .values()
        .flat_map(|b| match &b.manifest {
            ParsedManifest::Index { children, .. } => children.iter().map(|c| &c.digest).collect(),
            ParsedManifest::Image { .. } => Vec::new(),
        })
        .collect();
    for (repo, l) in &repos {
        for d in l.revisions.keys() {
            if !bodies.contains_key(d) {
                let reason = broken.get(d).cloned().unwrap_or_else(|| "not read".into());
                let reached = tag_targets
                    .iter()
                    .any(|(r, _, _, t)| r == repo && t.as_ref().is_ok_and(|x| x == d));
                if !reached && !listed.contains(d) {
                    return Err(StorageError::Read {
                        path: src.shown(&format!(
                            "repositories/{repo}/_manifests/revisions/sha256/{}/link",
                            &d[7..]
                        )),
                        reason: format!("untagged manifest {d} cannot be read: {reason}"),
                    });
                }
            }
        }
    }
    Ok(assemble(
        registry,
        catalog_read,
        &repos,
        tag_targets,
        &bodies,
        &broken,
        &created,
    ))
}

/// Reads and parses manifest bodies. `true` in the map: a tag (or index) needs it, so a
/// missing or unparsable body makes it broken; `false`: an untagged revision (checked later).
async fn read_bodies(
    src: &StorageSource,
    conc: usize,
    want: BTreeMap<String, (String, bool)>,
    bodies: &mut HashMap<String, Body>,
    broken: &mut HashMap<String, String>,
    on_progress: StorageProgress<'_>,
) -> Result<(), StorageError> {
    let counter = Counter::start(StorageStep::Manifests, want.len(), on_progress);
    let counter = &counter;
    let read: Vec<(String, String, Option<Vec<u8>>)> = stream::iter(want)
        .map(|(digest, (repo, _))| async move {
            let b = src.get(&blob_data(&digest)).await?;
            counter.tick();
            Ok::<_, StorageError>((digest, repo, b))
        })
        .buffer_unordered(conc)
        .try_collect()
        .await?;
    for (digest, repo, body) in read {
        let path = src.shown(&blob_data(&digest));
        match body {
            None => {
                broken.insert(digest, format!("manifest blob {path} is missing"));
            }
            Some(b) if sha256_digest(&b) != digest => {
                broken.insert(digest, format!("manifest blob {path} does not hash to its digest"));
            }
            Some(b) => match parse_manifest(&b, None) {
                Ok(manifest) => {
                    bodies.insert(
                        digest,
                        Body {
                            manifest,
                            size: b.len() as u64,
                            repo,
                        },
                    );
                }
                Err(e) => {
                    broken.insert(digest, e);
                }
            },
        }
    }
    Ok(())
}

type TagTargets = Vec<(String, String, Option<i64>, Result<String, String>)>;

fn assemble(
    registry: &str,
    catalog_read: bool,
    repos: &BTreeMap<String, RepoLinks>,
    tag_targets: TagTargets,
    bodies: &HashMap<String, Body>,
    broken: &HashMap<String, String>,
    created: &HashMap<String, Option<i64>>,
) -> Inventory {
    let mut b = InventoryBuilder::new(registry);
    b.from_storage();
    if !catalog_read {
        b.catalog_not_read();
    }
    for repo in repos.keys() {
        b.repo(repo);
    }
    let mut digests: Vec<&String> = bodies.keys().collect();
    digests.sort();
    for digest in digests {
        let p = &bodies[digest];
        add_manifest(
            &mut b,
            digest,
            &p.manifest,
            p.size,
            created.get(digest).copied().flatten(),
        );
    }
    for (repo, tag, mtime, target) in tag_targets {
        let r = b.repo(&repo);
        match target {
            Ok(digest) => {
                let d = b.digest(&digest);
                match broken_reason(&digest, |d| bodies.get(d).map(|p| &p.manifest), broken) {
                    Some(reason) => b.broken_tag(r, &tag, Some(d), &reason),
                    None => b.tag(r, &tag, d),
                }
            }
            Err(reason) => b.broken_tag(r, &tag, None, &reason),
        }
        b.tag_pushed(mtime);
    }
    for (repo, l) in repos {
        let r = b.repo(repo);
        for (digest, mtime) in &l.revisions {
            if bodies.contains_key(digest) {
                let d = b.digest(digest);
                b.revision_link(r, d, Some(*mtime));
            }
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_carry_credentials() {
        assert!(parse_url("file:///var/lib/registry").is_ok());
        assert!(parse_url("s3://bucket/registry").is_ok());
        assert!(parse_url("s3://bucket").is_ok());
        assert!(parse_url("file:///").is_err());
        assert!(parse_url("s3://key:secret@bucket/x").unwrap_err().contains("never"));
        assert!(parse_url("gs://bucket").is_err());
        assert!(parse_url("/var/lib/registry").is_err());
    }

    #[test]
    fn keys_sort_into_repositories_and_links() {
        let mut repos = BTreeMap::new();
        let h = "a".repeat(64);
        for k in [
            "p/environment/_manifests/tags/t1/current/link".to_string(),
            format!("p/environment/_manifests/tags/t1/index/sha256/{h}/link"),
            format!("p/environment/_manifests/tags/t2/index/sha256/{h}/link"),
            format!("p/environment/_manifests/revisions/sha256/{h}/link"),
            format!("p/environment/_layers/sha256/{h}/link"),
            "p/environment/_uploads/x/data".to_string(),
            format!("p/environment/nested/_manifests/revisions/sha256/{h}/link"),
            format!("other/_manifests/revisions/sha256/{h}/link"),
        ] {
            record(&mut repos, &k, 7, &|r| r.starts_with("p/"));
        }
        assert_eq!(
            repos.keys().collect::<Vec<_>>(),
            ["p/environment", "p/environment/nested"]
        );
        let env = &repos["p/environment"];
        assert_eq!(env.tags.get("t1"), Some(&Some(7)));
        assert_eq!(
            env.tags.get("t2"),
            Some(&None),
            "a tag directory without a current link"
        );
        assert_eq!(env.revisions.len(), 1);
        assert!(env.layers.contains(&format!("sha256:{h}")));
    }
}
