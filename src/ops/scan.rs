//! Registry scan → [`Inventory`]: repositories under the prefix, their tags (paged), one
//! manifest GET per tag, index children and config blobs once per unique digest. A tag whose
//! manifest cannot be read or parsed becomes a broken tag with the reason; only failures that
//! make the whole registry unreadable (probe, listing) abort the scan.

use crate::model::{DigestId, Inventory, InventoryBuilder};
use crate::sources::registry::{ParsedManifest, RegistryClient, RegistryError, parse_config_created, parse_manifest};
use crate::sources::registry::{add_manifest, broken_reason};
use futures::stream::{self, StreamExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Repository prefix, e.g. `dominodatalab`.
    pub prefix: String,
    /// Scan exactly these repositories instead of discovering them under the prefix.
    pub repositories: Option<Vec<String>>,
    /// Read config blobs for image creation times (one request per unique config).
    pub fetch_config: bool,
    /// HEAD every unique layer blob, so tags with missing layers show as broken.
    pub verify_blobs: bool,
    pub concurrency: usize,
    /// Digest-keyed cache for warm rescans (none: every scan is cold).
    pub cache: Option<super::scan_cache::ScanCache>,
}

/// Progress as the scan goes, for the TUI status bar and the stderr progress line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanProgress {
    pub phase: ScanPhase,
    pub done: usize,
    pub total: usize,
    pub requests: u64,
    pub elapsed_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPhase {
    Listing,
    /// Storage scans only: one tag link per tag.
    TagLinks,
    Manifests,
    Configs,
    Blobs,
}

impl ScanProgress {
    pub fn rate(&self) -> f64 {
        if self.elapsed_secs > 0.0 {
            self.done as f64 / self.elapsed_secs
        } else {
            0.0
        }
    }
    pub fn eta_secs(&self) -> Option<f64> {
        let rate = self.rate();
        (rate > 0.0 && self.total >= self.done).then(|| (self.total - self.done) as f64 / rate)
    }
}

/// A manifest as fetched: digest, content type, body.
type Fetched = (String, Option<String>, Vec<u8>);

struct Parsed {
    manifest: ParsedManifest,
    size: u64,
    /// A repository where it was seen, to read its children/config from.
    repo: String,
}

/// Reads the registry into an inventory. `on_progress` is called often; keep it cheap.
pub async fn scan(
    client: &RegistryClient,
    opts: &ScanOptions,
    on_progress: &(dyn Fn(ScanProgress) + Sync),
) -> Result<Inventory, RegistryError> {
    let started = Instant::now();
    let report = |phase, done, total| {
        on_progress(ScanProgress {
            phase,
            done,
            total,
            requests: client.stats.requests.load(Ordering::Relaxed),
            elapsed_secs: started.elapsed().as_secs_f64(),
        })
    };
    client.ping().await?;
    report(ScanPhase::Listing, 0, 0);
    let (repos, catalog_read) = repositories(client, opts).await?;
    let tag_lists: Vec<(String, Vec<String>)> = stream::iter(repos.iter().cloned())
        .map(|repo| async move {
            client.tags(&repo).await.map(|mut tags| {
                tags.sort();
                (repo, tags)
            })
        })
        .buffered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;

    // Per tag: a digest already known from a trusted, unchanged tag list; and whether the
    // repository was scanned before (warm: HEAD + cache; cold: one GET per tag).
    let cache = opts.cache.as_ref();
    let mut work: Vec<(String, String, Option<String>, bool)> = Vec::new();
    for (repo, tags) in &tag_lists {
        let cached = cache.and_then(|c| c.tags(repo));
        let unchanged = cache.is_some_and(|c| c.trust_unchanged_tag_lists)
            && cached
                .as_ref()
                .is_some_and(|m| m.len() == tags.len() && tags.iter().all(|t| m.contains_key(t)));
        for t in tags {
            let known = if unchanged {
                cached.as_ref().and_then(|m| m.get(t).cloned())
            } else {
                None
            };
            work.push((repo.clone(), t.clone(), known, cached.is_some()));
        }
    }
    let total = work.len();
    let done = AtomicUsize::new(0);
    report(ScanPhase::Manifests, 0, total);
    let conc = opts.concurrency.max(1);
    let results: Vec<(String, String, Result<Fetched, String>)> = stream::iter(work)
        .map(|(repo, tag, known, warm)| {
            let done = &done;
            let report = &report;
            async move {
                let r = fetch_tag(client, cache, &repo, &tag, known, warm).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) || n == total {
                    report(ScanPhase::Manifests, n, total);
                }
                (repo, tag, r)
            }
        })
        .buffer_unordered(conc)
        .collect()
        .await;

    let mut parsed: HashMap<String, Parsed> = HashMap::new();
    let mut broken_digest: HashMap<String, String> = HashMap::new();
    let mut tag_targets: Vec<(String, String, Result<String, String>)> = Vec::with_capacity(results.len());
    for (repo, tag, r) in results {
        match r {
            Ok((digest, content_type, body)) => {
                if !parsed.contains_key(&digest) && !broken_digest.contains_key(&digest) {
                    match parse_manifest(&body, content_type.as_deref()) {
                        Ok(m) => {
                            parsed.insert(
                                digest.clone(),
                                Parsed {
                                    manifest: m,
                                    size: body.len() as u64,
                                    repo: repo.clone(),
                                },
                            );
                        }
                        Err(e) => {
                            broken_digest.insert(digest.clone(), e);
                        }
                    }
                }
                tag_targets.push((repo, tag, Ok(digest)));
            }
            Err(e) => tag_targets.push((repo, tag, Err(e))),
        }
    }

    if let Some(c) = cache {
        for (repo, _) in &tag_lists {
            let map: std::collections::BTreeMap<String, String> = tag_targets
                .iter()
                .filter(|(r, _, t)| r == repo && t.is_ok())
                .filter_map(|(_, tag, t)| t.as_ref().ok().map(|d| (tag.clone(), d.clone())))
                .collect();
            c.put_tags(repo, &map);
        }
    }
    fetch_children(client, cache, conc, &mut parsed, &mut broken_digest).await;
    let created = if opts.fetch_config {
        fetch_configs(client, cache, conc, &parsed, &mut broken_digest, &report).await
    } else {
        HashMap::new()
    };
    if opts.verify_blobs {
        verify_layers(client, conc, &parsed, &mut broken_digest, &report).await;
    }
    let mut inv = assemble(client.host(), tag_lists, tag_targets, &parsed, &broken_digest, &created);
    inv.catalog_read = catalog_read;
    Ok(inv)
}

/// One tag's manifest: cold, a GET by tag; warm, the digest (known, or by HEAD) and the body
/// from the cache, falling back to a GET by digest.
async fn fetch_tag(
    client: &RegistryClient,
    cache: Option<&super::scan_cache::ScanCache>,
    repo: &str,
    tag: &str,
    known: Option<String>,
    warm: bool,
) -> Result<Fetched, String> {
    let Some(c) = cache.filter(|_| warm || known.is_some()) else {
        let m = client.get_manifest(repo, tag).await.map_err(|e| e.to_string())?;
        if let Some(c) = cache {
            c.put_manifest(&m.digest, m.content_type.as_deref(), &m.body);
        }
        return Ok((m.digest, m.content_type, m.body));
    };
    let digest = match known {
        Some(d) => d,
        None => client
            .head_manifest(repo, tag)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{repo}:{tag}: manifest unknown"))?,
    };
    if let Some((ct, body)) = c.manifest(&digest) {
        return Ok((digest, ct, body));
    }
    let m = client.get_manifest(repo, &digest).await.map_err(|e| e.to_string())?;
    c.put_manifest(&m.digest, m.content_type.as_deref(), &m.body);
    Ok((m.digest, m.content_type, m.body))
}

/// The repositories to scan, and whether they came from a complete catalog read.
async fn repositories(client: &RegistryClient, opts: &ScanOptions) -> Result<(Vec<String>, bool), RegistryError> {
    if let Some(list) = &opts.repositories {
        return Ok((list.clone(), false));
    }
    let prefix = format!("{}/", opts.prefix.trim_end_matches('/'));
    let mut repos: BTreeSet<String> = [format!("{prefix}environment"), format!("{prefix}model")].into();
    match client.catalog().await {
        // The prefix's repositories, and the legacy per-environment repositories of older
        // Domino installs (`domino-<envId>`, at the top level or under the prefix).
        Ok(all) => repos.extend(all.into_iter().filter(|r| {
            r.starts_with(&prefix) || (!r.contains('/') && crate::model::image::legacy_environment(r).is_some())
        })),
        // Managed registries often forbid the catalog; the two Domino repositories still work.
        Err(e) if matches!(e.status(), Some(401 | 403 | 404)) => {
            tracing::warn!(error = %e, "catalog unavailable; scanning {prefix}environment and {prefix}model only (legacy domino-<envId> repositories are found only through the catalog)");
            return Ok((repos.into_iter().collect(), false));
        }
        Err(e) => return Err(e),
    }
    Ok((repos.into_iter().collect(), true))
}

/// Child manifests of indexes, once per unique digest.
async fn fetch_children(
    client: &RegistryClient,
    cache: Option<&super::scan_cache::ScanCache>,
    conc: usize,
    parsed: &mut HashMap<String, Parsed>,
    broken: &mut HashMap<String, String>,
) {
    let mut wanted: Vec<(String, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in parsed.values() {
        if let ParsedManifest::Index { children, .. } = &p.manifest {
            for c in children {
                if !parsed.contains_key(&c.digest) && seen.insert(c.digest.clone()) {
                    wanted.push((p.repo.clone(), c.digest.clone()));
                }
            }
        }
    }
    let fetched: Vec<_> = stream::iter(wanted)
        .map(|(repo, digest)| async move {
            let r = match cache.and_then(|c| c.manifest(&digest)) {
                Some((content_type, body)) => Ok(crate::sources::registry::ManifestResponse {
                    digest: digest.clone(),
                    content_type,
                    body,
                }),
                None => client.get_manifest(&repo, &digest).await.inspect(|m| {
                    if let Some(c) = cache {
                        c.put_manifest(&m.digest, m.content_type.as_deref(), &m.body);
                    }
                }),
            };
            (repo, digest, r)
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    for (repo, digest, r) in fetched {
        let outcome = r
            .map_err(|e| e.to_string())
            .and_then(|m| parse_manifest(&m.body, m.content_type.as_deref()).map(|pm| (pm, m.body.len() as u64)));
        match outcome {
            Ok((ParsedManifest::Index { .. }, _)) => {
                broken.insert(digest, "nested index as an index child is not supported".into());
            }
            Ok((manifest, size)) => {
                parsed.insert(digest, Parsed { manifest, size, repo });
            }
            Err(e) => {
                broken.insert(digest, e);
            }
        }
    }
}

/// Config blobs once per unique digest: creation times, and missing configs as broken images.
async fn fetch_configs(
    client: &RegistryClient,
    cache: Option<&super::scan_cache::ScanCache>,
    conc: usize,
    parsed: &HashMap<String, Parsed>,
    broken: &mut HashMap<String, String>,
    report: &(dyn Fn(ScanPhase, usize, usize) + Sync),
) -> HashMap<String, Option<i64>> {
    let mut known_configs = cache.map(|c| c.configs()).unwrap_or_default();
    let mut created = HashMap::new();
    let mut by_config: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for (digest, p) in parsed {
        if let ParsedManifest::Image { config, .. } = &p.manifest {
            match known_configs.get(&config.digest) {
                Some(t) => {
                    created.insert(digest.clone(), *t);
                }
                None => by_config
                    .entry(config.digest.clone())
                    .or_insert_with(|| (p.repo.clone(), Vec::new()))
                    .1
                    .push(digest.clone()),
            }
        }
    }
    let total = by_config.len();
    let done = AtomicUsize::new(0);
    let fetched: Vec<_> = stream::iter(by_config)
        .map(|(config, (repo, manifests))| {
            let done = &done;
            async move {
                let r = client.get_blob(&repo, &config).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_multiple_of(64) || n == total {
                    report(ScanPhase::Configs, n, total);
                }
                (config, manifests, r)
            }
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    let fetched_any = !fetched.is_empty();
    for (config, manifests, r) in fetched {
        match r {
            Ok(body) => {
                let t = parse_config_created(&body).unwrap_or_else(|e| {
                    tracing::warn!(config, error = %e, "unreadable config");
                    None
                });
                known_configs.insert(config.clone(), t);
                for m in manifests {
                    created.insert(m, t);
                }
            }
            Err(e) if e.is_not_found() => {
                for m in manifests {
                    broken.insert(m, format!("config blob {config} is missing"));
                }
            }
            Err(e) => tracing::warn!(config, error = %e, "config blob not read; creation time unknown"),
        }
    }
    if let (Some(c), true) = (cache, fetched_any) {
        c.put_configs(&known_configs);
    }
    created
}

/// HEAD every unique layer; images referencing a missing one are broken.
async fn verify_layers(
    client: &RegistryClient,
    conc: usize,
    parsed: &HashMap<String, Parsed>,
    broken: &mut HashMap<String, String>,
    report: &(dyn Fn(ScanPhase, usize, usize) + Sync),
) {
    let mut by_layer: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (digest, p) in parsed {
        if let ParsedManifest::Image { layers, .. } = &p.manifest {
            for l in layers {
                by_layer
                    .entry((p.repo.clone(), l.digest.clone()))
                    .or_default()
                    .push(digest.clone());
            }
        }
    }
    let total = by_layer.len();
    let results: Vec<_> = stream::iter(by_layer)
        .map(|((repo, layer), manifests)| async move {
            let r = client.blob_exists(&repo, &layer).await;
            (layer, manifests, r)
        })
        .buffer_unordered(conc)
        .collect()
        .await;
    report(ScanPhase::Blobs, total, total);
    for (layer, manifests, r) in results {
        if let Ok(false) = r {
            for m in manifests {
                broken
                    .entry(m)
                    .or_insert_with(|| format!("layer blob {layer} is missing"));
            }
        }
    }
}

fn assemble(
    registry: &str,
    tag_lists: Vec<(String, Vec<String>)>,
    tag_targets: Vec<(String, String, Result<String, String>)>,
    parsed: &HashMap<String, Parsed>,
    broken: &HashMap<String, String>,
    created: &HashMap<String, Option<i64>>,
) -> Inventory {
    let mut b = InventoryBuilder::new(registry);
    for (repo, _) in &tag_lists {
        b.repo(repo);
    }
    // Deterministic digest numbering regardless of completion order.
    let mut digests: Vec<&String> = parsed.keys().collect();
    digests.sort();
    for digest in digests {
        let p = &parsed[digest];
        add_manifest(
            &mut b,
            digest,
            &p.manifest,
            p.size,
            created.get(digest).copied().flatten(),
        );
    }
    for (repo, tag, target) in tag_targets {
        let r = b.repo(&repo);
        match target {
            Ok(digest) => {
                let d: DigestId = b.digest(&digest);
                match broken_reason(&digest, |d| parsed.get(d).map(|p| &p.manifest), broken) {
                    Some(reason) => b.broken_tag(r, &tag, Some(d), &reason),
                    None => b.tag(r, &tag, d),
                }
            }
            Err(reason) => b.broken_tag(r, &tag, None, &reason),
        }
    }
    b.finish()
}
