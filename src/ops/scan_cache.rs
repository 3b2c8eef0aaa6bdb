//! The persistent, digest-keyed scan cache under the user cache directory. Manifests and
//! config creation times are immutable by digest, so they are reused across scans; a cached
//! manifest body is re-hashed on load, so a damaged entry is a miss, never a wrong answer.
//! The per-repository tag → digest map lets an unchanged tag list skip per-tag requests when
//! the caller trusts it (browsing and reports); deletion never trusts it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ScanCache {
    dir: PathBuf,
    /// Reuse the cached tag → digest map when a repository's tag list is unchanged.
    pub trust_unchanged_tag_lists: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedManifest {
    content_type: Option<String>,
    body: String,
}

impl ScanCache {
    /// The cache for `registry` (host:port) under `root` (default: the user cache dir).
    pub fn new(root: Option<&Path>, registry: &str, trust_unchanged_tag_lists: bool) -> Option<ScanCache> {
        let root = root
            .map(Path::to_path_buf)
            .or_else(|| dirs::cache_dir().map(|d| d.join("registry-cleaner")))?;
        let safe: String = registry
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Some(ScanCache {
            dir: root.join("scan-v1").join(safe),
            trust_unchanged_tag_lists,
        })
    }

    fn manifest_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64).then(|| self.dir.join("manifests").join(&hex[..2]).join(hex))
    }

    /// A cached manifest (content type, body) whose body still hashes to `digest`.
    pub fn manifest(&self, digest: &str) -> Option<(Option<String>, Vec<u8>)> {
        let bytes = std::fs::read(self.manifest_path(digest)?).ok()?;
        let m: CachedManifest = serde_json::from_slice(&bytes).ok()?;
        (crate::model::digest::sha256_digest(m.body.as_bytes()) == digest)
            .then(|| (m.content_type, m.body.into_bytes()))
    }

    pub fn put_manifest(&self, digest: &str, content_type: Option<&str>, body: &[u8]) {
        let (Some(path), Ok(body)) = (self.manifest_path(digest), std::str::from_utf8(body)) else {
            return;
        };
        if path.exists() {
            return;
        }
        let entry = CachedManifest {
            content_type: content_type.map(str::to_string),
            body: body.to_string(),
        };
        if let Ok(bytes) = serde_json::to_vec(&entry) {
            write_quietly(&path, &bytes);
        }
    }

    /// Config digest → creation time, for every config seen before.
    pub fn configs(&self) -> HashMap<String, Option<i64>> {
        read_json(&self.dir.join("configs.json")).unwrap_or_default()
    }

    pub fn put_configs(&self, configs: &HashMap<String, Option<i64>>) {
        if let Ok(bytes) = serde_json::to_vec(configs) {
            write_quietly(&self.dir.join("configs.json"), &bytes);
        }
    }

    /// The tag → digest map of the last scan of `repo`.
    pub fn tags(&self, repo: &str) -> Option<BTreeMap<String, String>> {
        read_json(&self.repo_path(repo))
    }

    pub fn put_tags(&self, repo: &str, tags: &BTreeMap<String, String>) {
        if let Ok(bytes) = serde_json::to_vec(tags) {
            write_quietly(&self.repo_path(repo), &bytes);
        }
    }

    fn repo_path(&self, repo: &str) -> PathBuf {
        self.dir
            .join("repos")
            .join(format!("{}.json", repo.replace('/', "%2F")))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// Cache writes are best effort: a failure costs a refetch next time, never correctness.
fn write_quietly(path: &Path, bytes: &[u8]) {
    // Owner-only like every file of user data (manifests name the images).
    let _ = crate::report::files::write_atomic(path, bytes);
}
