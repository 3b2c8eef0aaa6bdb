//! The inventory snapshot file: everything a scan learned, so `report` and the TUI can run
//! from `--snapshot FILE` without contacting the registry. Versioned by `schema_version`.

use crate::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, Platform, TagState};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const SNAPSHOT_SCHEMA: u32 = 1;

/// Docker manifest list and OCI index (`sources::registry::manifest`'s constants).
const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub schema_version: u32,
    pub kind: String,
    pub generated_at: String,
    pub registry: String,
    /// Whether the scan read the catalog (absent in older snapshots: not known, so false).
    #[serde(default)]
    pub catalog_read: bool,
    /// Read from the registry's storage (absent in older snapshots: the HTTP API).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_storage: bool,
    pub repositories: Vec<SnapRepository>,
    pub manifests: Vec<SnapManifest>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapRepository {
    pub name: String,
    pub tags: Vec<SnapTag>,
    /// Revision links no tag reaches (storage scans only; absent in older snapshots).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untagged: Vec<SnapRevision>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapRevision {
    pub digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapTag {
    pub tag: String,
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    /// Push time (Unix seconds), known from a storage scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapManifest {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<SnapBlob>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<SnapBlob>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<SnapChild>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapBlob {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapChild {
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

pub fn to_snapshot(inv: &Inventory, generated_at: i64) -> Snapshot {
    let d = |id| inv.digests.name(id).to_string();
    let repositories = inv
        .repos
        .iter()
        .enumerate()
        .map(|(i, r)| SnapRepository {
            name: r.name.clone(),
            tags: inv
                .tag_ids()
                .filter(|t| inv.tag(*t).repo.0 as usize == i)
                .map(|t| {
                    let tag = inv.tag(t);
                    SnapTag {
                        tag: tag.name.clone(),
                        digest: inv.tag_digest(t).map(d),
                        broken: match &tag.state {
                            TagState::Broken { reason, .. } => Some(reason.clone()),
                            TagState::Ok(_) => None,
                        },
                        pushed: tag.pushed,
                    }
                })
                .collect(),
            untagged: inv
                .untagged_revisions()
                .filter(|r| inv.revision(*r).repo.0 as usize == i)
                .map(|r| SnapRevision {
                    digest: d(inv.revision(r).manifest),
                    pushed: inv.revision(r).pushed,
                })
                .collect(),
        })
        .collect();
    let blob = |b: &Blob| SnapBlob {
        digest: d(b.digest),
        size: b.size,
    };
    let manifests = inv
        .manifests()
        .iter()
        .map(|m| {
            let (config, layers, children) = match &m.kind {
                ManifestKind::Image { config, layers } => {
                    (Some(blob(config)), layers.iter().map(blob).collect(), vec![])
                }
                ManifestKind::Index { children } => (
                    None,
                    vec![],
                    children
                        .iter()
                        .map(|(b, p)| SnapChild {
                            digest: d(b.digest),
                            size: b.size,
                            platform: p.as_ref().map(|p| p.to_string()),
                        })
                        .collect(),
                ),
            };
            SnapManifest {
                digest: d(m.digest),
                media_type: m.media_type.clone(),
                size: m.size,
                created: m.created,
                config,
                layers,
                children,
            }
        })
        .collect();
    Snapshot {
        schema_version: SNAPSHOT_SCHEMA,
        kind: "registry-cleaner-snapshot".into(),
        generated_at: super::rfc3339(generated_at),
        registry: inv.registry.clone(),
        catalog_read: inv.catalog_read,
        from_storage: inv.from_storage,
        repositories,
        manifests,
    }
}

/// Rebuilds the inventory. Errors name what is wrong (the caller adds the file name).
pub fn from_snapshot(s: &Snapshot) -> Result<Inventory, String> {
    if s.schema_version != SNAPSHOT_SCHEMA {
        return Err(format!(
            "schema_version {} is not supported (expected {SNAPSHOT_SCHEMA})",
            s.schema_version
        ));
    }
    if s.kind != "registry-cleaner-snapshot" {
        return Err(format!("kind {:?} is not a registry-cleaner snapshot", s.kind));
    }
    let mut b = InventoryBuilder::new(&s.registry);
    if !s.catalog_read {
        b.catalog_not_read();
    }
    if s.from_storage {
        b.from_storage();
    }
    for (i, m) in s.manifests.iter().enumerate() {
        let at = |field: &str| format!("manifests[{i}].{field}");
        let digest = b.digest(&m.digest);
        // An index with no children is written with neither `config` nor `children`.
        let empty_index =
            m.children.is_empty() && m.config.is_none() && INDEX_MEDIA_TYPES.contains(&m.media_type.as_str());
        let kind = if m.children.is_empty() && !empty_index {
            let c = m
                .config
                .as_ref()
                .ok_or_else(|| format!("{}: an image manifest needs a config", at("config")))?;
            ManifestKind::Image {
                config: Blob {
                    digest: b.digest(&c.digest),
                    size: c.size,
                },
                layers: m
                    .layers
                    .iter()
                    .map(|l| Blob {
                        digest: b.digest(&l.digest),
                        size: l.size,
                    })
                    .collect(),
            }
        } else {
            ManifestKind::Index {
                children: m
                    .children
                    .iter()
                    .map(|c| {
                        (
                            Blob {
                                digest: b.digest(&c.digest),
                                size: c.size,
                            },
                            c.platform.as_deref().map(parse_platform),
                        )
                    })
                    .collect(),
            }
        };
        b.manifest(Manifest {
            digest,
            media_type: m.media_type.clone(),
            size: m.size,
            kind,
            created: m.created,
        });
    }
    for r in &s.repositories {
        let repo = b.repo(&r.name);
        for t in &r.tags {
            let digest = t.digest.as_deref().map(|d| b.digest(d));
            match (&t.broken, digest) {
                (None, Some(d)) => b.tag(repo, &t.tag, d),
                (None, None) => {
                    return Err(format!(
                        "repository {} tag {}: neither digest nor broken reason",
                        r.name, t.tag
                    ));
                }
                (Some(reason), d) => b.broken_tag(repo, &t.tag, d, reason),
            }
            b.tag_pushed(t.pushed);
        }
        for u in &r.untagged {
            let d = b.digest(&u.digest);
            if !b.has_manifest(d) {
                return Err(format!(
                    "repository {} untagged revision {}: no such manifest",
                    r.name, u.digest
                ));
            }
            b.revision_link(repo, d, u.pushed);
        }
    }
    Ok(b.finish())
}

fn parse_platform(s: &str) -> Platform {
    let mut parts = s.splitn(3, '/');
    Platform {
        os: parts.next().unwrap_or_default().to_string(),
        architecture: parts.next().unwrap_or_default().to_string(),
        variant: parts.next().map(str::to_string),
    }
}

pub fn write(path: &Path, inv: &Inventory, generated_at: i64) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let json = serde_json::to_vec(&to_snapshot(inv, generated_at))?;
    crate::report::json::write_atomic(path, &json).with_context(|| format!("writing snapshot {}", path.display()))
}

/// Loads a snapshot file; errors name the file, and the line/column for JSON problems.
pub fn read(path: &Path) -> anyhow::Result<(Inventory, i64)> {
    let text = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: cannot read snapshot: {e}", path.display()))?;
    let snap: Snapshot =
        serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("{}: not a valid snapshot: {e}", path.display()))?;
    let generated = super::parse_rfc3339(&snap.generated_at).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: generated_at {:?} is not RFC 3339",
            path.display(),
            snap.generated_at
        )
    })?;
    let inv = from_snapshot(&snap).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((inv, generated))
}
