//! The last look before a DELETE by digest, repeated before every retry: every planned tag
//! still resolves to the planned digest, and no tag the fresh scan did not know has appeared
//! on it — the repository's tags are re-listed (a list is shared only by the looks that began
//! before it was requested) and every name the fresh scan did not resolve is HEADed.
//! Distribution has no conditional
//! delete, so a tag pushed onto the digest after this look and before the DELETE lands is
//! lost with it: that residual window is measured (BENCHMARKS.md). For a planned tag's digest, a
//! tag that already existed and is *moved* onto it after the scan is not seen here (it would
//! take a HEAD of every tag in the repository per DELETE). For an entry with no planned tags
//! (an untagged manifest, an index child) it is: every listed tag is HEADed, and one that
//! points at the digest, or has moved since the fresh scan to an index that lists it, skips
//! the DELETE — untagged digests are exactly where rolled-back or rebuilt tags land.

use crate::model::Inventory;
use crate::plan::deletion::PlanManifest;
use crate::sources::registry::{RegistryClient, RegistryError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the executor retries one manifest: the whole last look and the DELETE, each time.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub max_retries: u32,
    pub initial_backoff: Duration,
}

impl Retry {
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(1 << attempt.saturating_sub(1).min(8))
            .min(Duration::from_secs(30))
    }
}

/// What the last look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// Go ahead with the DELETE.
    Clear,
    /// Do not delete, and why (a tag moved, a new tag on the digest).
    Skip(String),
    /// Could not look (a 5xx, 429 or transport error): retry the look later.
    Transient(String),
    /// Could not look, and retrying will not help.
    Fail(String),
}

/// A re-list of one repository's tags and when it was requested (before its first page).
type Listed = (Instant, Arc<Vec<String>>);

pub struct LastLook {
    /// Per repository, the tag names the fresh scan resolved to a digest (a broken tag's name
    /// is not here, so it is HEADed again).
    known: HashMap<String, HashSet<String>>,
    /// Per repository, every tag name the fresh scan listed (broken ones included).
    seen: HashMap<String, HashSet<String>>,
    /// Per (repository, tag), the digest the fresh scan resolved the tag to.
    digests: HashMap<(String, String), String>,
    /// Per repository, the latest re-list and when it was requested.
    lists: tokio::sync::Mutex<HashMap<String, Listed>>,
    pub retry: Retry,
}

/// Errors worth another attempt.
pub fn transient(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Transport { .. }) || matches!(e.status(), Some(429 | 500..=599))
}

impl LastLook {
    pub fn new(fresh: &Inventory, retry: Retry) -> LastLook {
        let mut known: HashMap<String, HashSet<String>> = HashMap::new();
        let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
        let mut digests = HashMap::new();
        for t in fresh.tag_ids() {
            if let Some(d) = fresh.tag_digest(t) {
                let tag = fresh.tag(t);
                digests.insert(
                    (fresh.repo(tag.repo).name.clone(), tag.name.clone()),
                    fresh.digests.name(d).to_string(),
                );
            }
            let tag = fresh.tag(t);
            seen.entry(fresh.repo(tag.repo).name.clone())
                .or_default()
                .insert(tag.name.clone());
            if !matches!(tag.state, crate::model::TagState::Ok(_)) {
                continue;
            }
            known
                .entry(fresh.repo(tag.repo).name.clone())
                .or_default()
                .insert(tag.name.clone());
        }
        LastLook {
            known,
            seen,
            digests,
            lists: Default::default(),
            retry,
        }
    }

    /// The repository's tags from a list requested no earlier than `since` (the start of the
    /// look asking): a list requested before the look began could miss a tag pushed since.
    async fn relisted(
        &self,
        client: &RegistryClient,
        repo: &str,
        since: Instant,
    ) -> Result<Arc<Vec<String>>, RegistryError> {
        let mut lists = self.lists.lock().await;
        if let Some((at, list)) = lists.get(repo)
            && *at >= since
        {
            return Ok(list.clone());
        }
        let requested = Instant::now();
        let list = Arc::new(client.tags_strict(repo).await?);
        lists.insert(repo.to_string(), (requested, list.clone()));
        Ok(list)
    }

    /// Whether the fresh scan listed `repo:tag` (resolved or broken).
    pub fn saw(&self, repo: &str, tag: &str) -> bool {
        self.seen.get(repo).is_some_and(|k| k.contains(tag))
    }

    /// The last look for one manifest.
    pub async fn check(&self, client: &RegistryClient, m: &PlanManifest) -> Look {
        let began = Instant::now();
        let err = |what: String, e: RegistryError| {
            if transient(&e) {
                Look::Transient(format!("{what}: {e}"))
            } else {
                Look::Fail(format!("{what}: {e}"))
            }
        };
        let known = self.known.get(&m.repository);
        let seen = self.seen.get(&m.repository);
        for tag in &m.tags {
            match client.head_manifest(&m.repository, tag).await {
                Ok(Some(d)) if d != m.digest => {
                    return Look::Skip(format!("tag {tag} moved to {d} just before deletion"));
                }
                // A planned name the fresh scan did not resolve, back on the digest: re-pushed
                // since, and nothing about that push was re-checked (a pod may run it).
                Ok(Some(_)) if !seen.is_some_and(|k| k.contains(tag)) => {
                    return Look::Skip(format!(
                        "tag {tag} was not in the fresh scan and points at this digest again: re-pushed since"
                    ));
                }
                Ok(_) => {}
                Err(e) => return err(format!("re-checking tag {tag}"), e),
            }
        }
        let list = match self.relisted(client, &m.repository, began).await {
            Ok(l) => l,
            Err(e) => return err(format!("re-listing the tags of {}", m.repository), e),
        };
        // No planned tag names this digest: a known tag moved onto it (or onto a new index
        // listing it) since the scan would go with it, so every listed tag is looked at.
        let tagless = m.tags.is_empty();
        for name in list.iter() {
            if !tagless && (known.is_some_and(|k| k.contains(name)) || m.tags.contains(name)) {
                continue;
            }
            let was = self.digests.get(&(m.repository.clone(), name.clone()));
            // A name the fresh scan did not see (or, tagless, any name): where does it point?
            match client.head_manifest(&m.repository, name).await {
                Ok(Some(d)) if tagless && d == m.digest => {
                    return Look::Skip(format!(
                        "tag {name} points at this digest (pushed or moved onto it after the scan); deleting it would take that tag"
                    ));
                }
                // Where the fresh scan saw it: what that manifest lists was re-checked already.
                Ok(Some(d)) if tagless && was == Some(&d) => {}
                Ok(Some(d)) if d == m.digest => {
                    return Look::Skip(format!(
                        "tag {name} was pushed onto this digest after the scan; deleting it would take that tag"
                    ));
                }
                // Another digest: a new index may list this manifest (nested or not).
                Ok(Some(d)) => match lists(client, &m.repository, &d, &m.digest).await {
                    Ok(false) => {}
                    Ok(true) => {
                        return Look::Skip(format!(
                            "new tag {name} is an index that lists this manifest; deleting it would break that index"
                        ));
                    }
                    Err(e) => return Look::Transient(format!("reading new tag {name} ({d}): {e}")),
                },
                // Listed but not resolvable: deleted in between, or a registry that cannot say
                // where it points. Not proof it is elsewhere: look again later.
                Ok(None) => return Look::Transient(format!("tag {name} is listed but its manifest answers 404")),
                Err(e) => return err(format!("checking new tag {name}"), e),
            }
        }
        Look::Clear
    }
}

/// How deep indexes nested in indexes are followed before giving up (fail closed).
const MAX_NESTING: usize = 4;

/// Whether manifest `digest` of `repo` is, or nests, an index listing `target`. An unreadable
/// manifest, or nesting deeper than [`MAX_NESTING`], is an error: it cannot be shown not to.
async fn lists(client: &RegistryClient, repo: &str, digest: &str, target: &str) -> Result<bool, String> {
    use crate::sources::registry::{ParsedManifest, parse_manifest};
    let mut level = vec![digest.to_string()];
    for _ in 0..MAX_NESTING {
        let mut next = Vec::new();
        for d in &level {
            let r = client.get_manifest(repo, d).await.map_err(|e| e.to_string())?;
            match parse_manifest(&r.body, r.content_type.as_deref())? {
                ParsedManifest::Image { .. } => {}
                ParsedManifest::Index { children, .. } => {
                    if children.iter().any(|c| c.digest == target) {
                        return Ok(true);
                    }
                    next.extend(children.into_iter().map(|c| c.digest));
                }
            }
        }
        if next.is_empty() {
            return Ok(false);
        }
        level = next;
    }
    Err(format!("indexes nested more than {MAX_NESTING} deep"))
}
