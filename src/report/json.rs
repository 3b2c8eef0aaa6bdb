//! The `report` JSON: a field-name contract (add fields freely, rename none). It is also a
//! valid plan: `plan.tags` lists exactly what a deletion would remove, sibling tags included.

use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::model::{Inventory, ObjectId, RevId, TagId};
use crate::plan::{CategoryId, CategoryResult, CategoryStatus, SpaceEngine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const REPORT_SCHEMA: u32 = 1;
/// A plan older than this is refused by `delete` (the registry may have changed since).
pub const PLAN_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    pub registry: String,
    pub sources: BTreeMap<String, SourceReport>,
    /// Sources turned off on purpose with `--without`.
    #[serde(default)]
    pub without: Vec<String>,
    pub categories: Vec<CategoryReport>,
    pub plan: PlanReport,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceReport {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryReport {
    pub id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub reclaimable_bytes: u64,
    pub candidates: Vec<CandidateReport>,
    pub protected: Vec<ProtectedReport>,
    /// `orphaned-references`: Mongo records (not tags) proposed for deletion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<RecordReport>,
    /// Mongo records a protection keeps, with every reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_records: Vec<RecordReport>,
    /// How the result was computed, e.g. a protection source turned off with `--without`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// A Mongo document: `{collection, document_id, tag}` plus why it is listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordReport {
    pub collection: String,
    pub document_id: String,
    pub tag: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateReport {
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
    pub kind: String,
    pub object_id: Option<String>,
    pub exclusive_bytes: u64,
    pub siblings: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtectedReport {
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
    pub protected_by: Vec<String>,
}

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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanReport {
    pub tags: Vec<PlanTag>,
    pub reclaimable_bytes: u64,
    #[serde(default)]
    pub manifests: Vec<PlanManifest>,
    /// Requested tags that cannot be in the plan, with why.
    #[serde(default)]
    pub excluded: Vec<ExcludedTag>,
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

impl PlanReport {
    /// The checksum of everything that decides what the plan deletes.
    pub fn compute_checksum(&self, registry: &str) -> String {
        let key = serde_json::json!({
            "registry": registry,
            "tags": self.tags,
            "manifests": self.manifests,
            "reclaimable_bytes": self.reclaimable_bytes,
            "settings_fingerprint": self.settings_fingerprint,
            "snapshot_time": self.snapshot_time,
            "expires_at": self.expires_at,
        });
        crate::world::sha256_digest(key.to_string().as_bytes())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExcludedTag {
    pub repository: String,
    pub tag: String,
    pub reason: String,
}

/// What goes into the plan.
#[derive(Debug, Clone)]
pub enum PlanInput {
    /// Every candidate of the reported categories.
    Categories,
    /// Exactly these tags (plus siblings); categories are reported but not planned.
    Selection(Vec<TagId>),
}

/// Builds the report. `only` limits the categories listed (empty = all).
pub fn build(
    ds: &Dataset,
    only: &[CategoryId],
    input: &PlanInput,
    fingerprint: &str,
    without: &[SourceKind],
) -> Report {
    let inv = &ds.inventory;
    let mut engine = SpaceEngine::new(inv);
    let categories: Vec<&CategoryResult> = ds
        .categories
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.id))
        .collect();
    let category_reports = categories
        .iter()
        .map(|c| category_report(inv, &mut engine, c))
        .collect();
    let (wanted, source): (Vec<TagId>, &str) = match input {
        PlanInput::Categories => (
            categories
                .iter()
                .filter(|c| c.status == CategoryStatus::Ok)
                .flat_map(|c| c.candidates.iter().map(|x| x.tag))
                .collect(),
            "categories",
        ),
        PlanInput::Selection(tags) => (tags.clone(), "selection"),
    };
    let plan = plan_report(inv, &mut engine, &wanted, source, fingerprint, ds.generated_at);
    Report {
        schema_version: REPORT_SCHEMA,
        generated_at: super::rfc3339(ds.generated_at),
        registry: inv.registry.clone(),
        sources: SourceKind::ALL
            .iter()
            .map(|k| {
                let (status, error) = match ds.sources.get(k) {
                    Some(SourceStatus::Ok) => ("ok", None),
                    Some(SourceStatus::Failed(e)) => ("failed", Some(e.clone())),
                    Some(SourceStatus::Disabled) => ("disabled", None),
                    Some(SourceStatus::Loading) | None => ("failed", Some("not loaded".to_string())),
                };
                (
                    k.as_str().to_string(),
                    SourceReport {
                        status: status.into(),
                        error,
                    },
                )
            })
            .collect(),
        without: without.iter().map(|k| k.as_str().to_string()).collect(),
        categories: category_reports,
        plan,
    }
}

fn category_report(inv: &Inventory, engine: &mut SpaceEngine, c: &CategoryResult) -> CategoryReport {
    engine.clear();
    for cand in &c.candidates {
        if let Some(r) = inv.tag(cand.tag).revision() {
            engine.set_selected(r, true);
        }
    }
    let reclaimable = engine.reclaimable();
    engine.clear();
    let (status, reason) = match &c.status {
        CategoryStatus::Ok => ("ok", None),
        CategoryStatus::Unavailable(r) => ("unavailable", Some(r.clone())),
    };
    let mut candidates: Vec<CandidateReport> = c
        .candidates
        .iter()
        .map(|cand| {
            let t = inv.tag(cand.tag);
            CandidateReport {
                repository: inv.repo(t.repo).name.clone(),
                tag: t.name.clone(),
                digest: inv.tag_digest(cand.tag).map(|d| inv.digests.name(d).to_string()),
                kind: inv.repo(t.repo).kind.as_str().into(),
                object_id: cand
                    .object_id
                    .or_else(|| ObjectId::prefix_of_tag(&t.name))
                    .map(|o| o.to_string()),
                exclusive_bytes: t.revision().map_or(0, |r| engine.exclusive_bytes(r)),
                siblings: inv
                    .siblings(cand.tag)
                    .into_iter()
                    .map(|s| inv.tag(s).name.clone())
                    .collect(),
                reasons: cand.reasons.clone(),
            }
        })
        .collect();
    candidates.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    let mut protected: Vec<ProtectedReport> = c
        .protected
        .iter()
        .map(|p| {
            let t = inv.tag(p.tag);
            ProtectedReport {
                repository: inv.repo(t.repo).name.clone(),
                tag: t.name.clone(),
                digest: inv.tag_digest(p.tag).map(|d| inv.digests.name(d).to_string()),
                protected_by: p.protected_by.clone(),
            }
        })
        .collect();
    protected.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    let record = |r: &crate::plan::OrphanRecord, reasons: &[String]| RecordReport {
        collection: r.collection.to_string(),
        document_id: r.document_id.to_string(),
        tag: r.tag.clone(),
        reasons: reasons.to_vec(),
    };
    CategoryReport {
        id: c.id.as_str().into(),
        status: status.into(),
        reason,
        reclaimable_bytes: reclaimable,
        candidates,
        protected,
        records: c.records.iter().map(|r| record(r, &r.reasons)).collect(),
        protected_records: c.protected_records.iter().map(|(r, why)| record(r, why)).collect(),
        notes: c.notes.clone(),
    }
}

fn plan_report(
    inv: &Inventory,
    engine: &mut SpaceEngine,
    wanted: &[TagId],
    source: &str,
    fingerprint: &str,
    now: i64,
) -> PlanReport {
    engine.clear();
    let mut revs: BTreeSet<RevId> = BTreeSet::new();
    let mut broken_manifests: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut excluded = Vec::new();
    for &t in wanted {
        let tag = inv.tag(t);
        let repo = inv.repo(tag.repo).name.clone();
        match (tag.revision(), inv.tag_digest(t)) {
            (Some(r), _) => {
                revs.insert(r);
            }
            // A broken tag whose digest is known can still be deleted by digest.
            (None, Some(d)) => {
                broken_manifests
                    .entry((repo, inv.digests.name(d).to_string()))
                    .or_default()
                    .insert(tag.name.clone());
            }
            (None, None) => excluded.push(ExcludedTag {
                repository: repo,
                tag: tag.name.clone(),
                reason: "the registry returns no digest for this tag, so it cannot be deleted through the API".into(),
            }),
        }
    }
    for &r in &revs {
        engine.set_selected(r, true);
    }
    let mut manifests = Vec::new();
    for &r in &revs {
        let rev = inv.revision(r);
        let repository = inv.repo(rev.repo).name.clone();
        let digest = inv.digests.name(rev.manifest).to_string();
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
        let index = inv.manifest(rev.manifest).is_some_and(|m| m.is_index());
        for &c in &rev.children {
            if engine.is_removed(c) && !revs.contains(&c) {
                let child = inv.digests.name(inv.revision(c).manifest).to_string();
                manifests.push(PlanManifest {
                    repository: repository.clone(),
                    digest: child,
                    tags: vec![],
                    index: false,
                    child_of: Some(digest.clone()),
                });
            }
        }
        manifests.push(PlanManifest {
            repository,
            digest,
            tags,
            index,
            child_of: None,
        });
    }
    for ((repository, digest), tags) in broken_manifests {
        manifests.push(PlanManifest {
            repository,
            digest,
            tags: tags.into_iter().collect(),
            index: false,
            child_of: None,
        });
    }
    let reclaimable = engine.reclaimable();
    engine.clear();
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
    // Indexes before their children, so an interrupted run never leaves an index whose
    // children are gone; otherwise by repository and digest.
    manifests.sort_by(|a, b| {
        (a.child_of.is_some(), &a.repository, &a.digest).cmp(&(b.child_of.is_some(), &b.repository, &b.digest))
    });
    manifests.dedup_by(|a, b| a.repository == b.repository && a.digest == b.digest);
    let mut plan = PlanReport {
        tags,
        reclaimable_bytes: reclaimable,
        manifests,
        excluded,
        source: source.into(),
        settings_fingerprint: fingerprint.into(),
        snapshot_time: super::rfc3339(now),
        expires_at: super::rfc3339(now + PLAN_LIFETIME_SECS),
        checksum: String::new(),
    };
    plan.checksum = plan.compute_checksum(&inv.registry);
    plan
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a crash never leaves a
/// half-written file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
