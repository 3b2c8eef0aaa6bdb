//! The last look before a DELETE by digest, repeated before every retry: every planned tag
//! still resolves to the planned digest, and no tag the fresh scan did not know has appeared
//! on it — the repository's tags are re-listed (a list is shared only by the looks that began
//! before it was requested) and every name the fresh scan did not resolve is HEADed.
//! Distribution has no conditional
//! delete, so a tag pushed onto the digest after this look and before the DELETE lands is
//! lost with it: that residual window is measured (BENCHMARKS.md). A tag that already existed
//! and is *moved* onto the planned digest after the scan is not seen here (it would take a
//! HEAD of every tag in the repository per DELETE).

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
        for t in fresh.tag_ids() {
            let tag = fresh.tag(t);
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
        for tag in &m.tags {
            match client.head_manifest(&m.repository, tag).await {
                Ok(Some(d)) if d != m.digest => {
                    return Look::Skip(format!("tag {tag} moved to {d} just before deletion"));
                }
                Ok(_) => {}
                Err(e) => return err(format!("re-checking tag {tag}"), e),
            }
        }
        let list = match self.relisted(client, &m.repository, began).await {
            Ok(l) => l,
            Err(e) => return err(format!("re-listing the tags of {}", m.repository), e),
        };
        let known = self.known.get(&m.repository);
        for name in list.iter() {
            if known.is_some_and(|k| k.contains(name)) || m.tags.contains(name) {
                continue;
            }
            // A name the fresh scan did not see: where does it point?
            match client.head_manifest(&m.repository, name).await {
                Ok(Some(d)) if d == m.digest => {
                    return Look::Skip(format!(
                        "tag {name} was pushed onto this digest after the scan; deleting it would take that tag"
                    ));
                }
                Ok(Some(_)) => {}
                // Listed but not resolvable: deleted in between, or a registry that cannot say
                // where it points. Not proof it is elsewhere: look again later.
                Ok(None) => return Look::Transient(format!("tag {name} is listed but its manifest answers 404")),
                Err(e) => return err(format!("checking new tag {name}"), e),
            }
        }
        Look::Clear
    }
}
