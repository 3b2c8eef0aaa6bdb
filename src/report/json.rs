//! The `report` JSON: a field-name contract (add fields freely, rename none). It is also a
//! valid plan: `plan.tags` lists exactly what a deletion would remove, sibling tags included.

use crate::model::{Inventory, ObjectId, TagId};
use crate::plan::dataset::{Dataset, SourceKind, SourceStatus, TagLabel};
use crate::plan::grouping::{GroupBy, Member};
use crate::plan::{Candidate, CategoryId, CategoryResult, CategoryStatus, SpaceEngine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const REPORT_SCHEMA: u32 = 1;
pub use crate::plan::deletion::{
    CategoryTotal, ExcludedTag, PLAN_LIFETIME_SECS, Plan, Plan as PlanReport, PlanManifest, PlanTag,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: String,
    pub registry: String,
    /// What the byte counts rest on, said plainly (issue: untagged manifests are invisible over
    /// the HTTP API, so the prediction is an upper bound on registries with re-pushed tags).
    #[serde(default)]
    pub space_basis: String,
    /// Which time the grace period was measured from: `push-time` (storage link modification
    /// times) or `image-created` (config `created`, over the HTTP API). Absent in older reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grace_basis: String,
    pub sources: BTreeMap<String, SourceReport>,
    /// Sources turned off on purpose with `--without`.
    #[serde(default)]
    pub without: Vec<String>,
    pub categories: Vec<CategoryReport>,
    pub plan: PlanReport,
    /// `report --group-by`: the reported categories' candidates per owner, project or
    /// environment, with exclusive and shared bytes computed jointly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<GroupingReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupingReport {
    /// `owner`, `project` or `environment`.
    pub by: String,
    /// Candidate tags grouped (each once, whatever number of categories lists it).
    pub tags: usize,
    /// Freed by deleting every grouped candidate.
    pub joint_bytes: u64,
    /// `joint_bytes` minus every group's exclusive bytes: what only several groups together
    /// free, counted once.
    pub shared_total_bytes: u64,
    /// Revisions whose tags fall into more than one group (their bytes count in each).
    pub overlapping_revisions: usize,
    pub groups: Vec<GroupReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupReport {
    /// The owner's, project's, environment's or model's id; null for "unknown".
    pub id: Option<String>,
    /// Username or name; null when unknown.
    pub name: Option<String>,
    pub tag_count: usize,
    pub environment_count: usize,
    pub model_count: usize,
    /// Freed if exactly this group's candidates were deleted.
    pub exclusive_bytes: u64,
    /// Freed only when this group's candidates go together with other groups'.
    pub shared_bytes: u64,
}

/// `grouped_by_user` of `deactivated-owner-environments` (the original tool's shape): per owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserGroupReport {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub tag_count: usize,
    pub environment_count: usize,
    pub environments: Vec<String>,
    pub exclusive_bytes: u64,
    pub shared_bytes: u64,
    /// `repository:tag` of each candidate.
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceReport {
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `mongo`: every collection the read knows, whether it exists, and how many documents
    /// each gave (after its server-side filter), so a report shows what its decisions rest on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionReport {
    pub collection: String,
    pub present: bool,
    pub documents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryReport {
    pub id: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub reclaimable_bytes: u64,
    /// Tags proposed for deletion; for `orphaned-references`, the Mongo records proposed
    /// (`{collection, document_id, tag}`), as the report contract names them.
    pub candidates: Vec<CandidateEntry>,
    pub protected: Vec<ProtectedReport>,
    /// Mongo records a protection keeps, with every reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_records: Vec<RecordReport>,
    /// How the result was computed, e.g. a protection source turned off with `--without`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Only `deactivated-owner-environments`: candidates per owner, keyed by username (else
    /// the user id, else `unknown`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grouped_by_user: BTreeMap<String, UserGroupReport>,
}

/// One entry of `candidates`: a registry tag, or (only in `orphaned-references`) a Mongo record.
/// Untagged on the wire: a record has no `repository`, a tag no `collection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CandidateEntry {
    Tag(CandidateReport),
    Record(RecordReport),
    /// An untagged manifest (untagged-manifests), deleted by digest.
    Manifest(UntaggedReport),
}

/// `{repository, digest, untagged: true, ...}`: a manifest revision no tag points to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UntaggedReport {
    pub repository: String,
    pub digest: String,
    pub untagged: bool,
    pub kind: String,
    pub index: bool,
    pub exclusive_bytes: u64,
    /// Modification time of its revision link (RFC 3339), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    pub reasons: Vec<String>,
}

impl CandidateEntry {
    pub fn as_tag(&self) -> Option<&CandidateReport> {
        match self {
            CandidateEntry::Tag(t) => Some(t),
            CandidateEntry::Record(_) | CandidateEntry::Manifest(_) => None,
        }
    }
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
    /// The environment's or model's owner in Mongo; null when unknown.
    #[serde(default)]
    pub owner: Option<OwnerReport>,
    /// Always null: Domino records no owning project for an environment or a model in the
    /// fields this tool reads (domain.md §1.1), and a project is never guessed from usage.
    #[serde(default)]
    pub project: Option<String>,
    /// The environment's or model's name in Mongo; null when unknown.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerReport {
    /// Mongo `users._id`.
    pub id: String,
    /// From Keycloak when it was read, else Mongo's `loginId.id`; null when neither knows it.
    pub username: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtectedReport {
    pub repository: String,
    /// Empty for an untagged manifest (untagged-manifests), which `digest` names.
    pub tag: String,
    pub digest: Option<String>,
    pub protected_by: Vec<String>,
}

impl Report {
    /// The plan inside a report file, checked for this run: schema, checksum, registry,
    /// expiry and settings (`crate::plan::deletion::validate`).
    pub fn validated_plan(&self, registry: &str, fingerprint: Option<&str>, now: i64) -> Result<Plan, String> {
        if self.schema_version != REPORT_SCHEMA {
            return Err(format!(
                "schema_version {} is not supported (expected {REPORT_SCHEMA})",
                self.schema_version
            ));
        }
        let mut plan = self.plan.clone();
        if plan.registry.is_empty() {
            plan.registry = self.registry.clone();
        }
        if plan.registry != self.registry {
            return Err(format!(
                "the plan was modified after it was written (checksum mismatch: the plan names registry {}, its report {})",
                plan.registry, self.registry
            ));
        }
        crate::plan::deletion::validate(&plan, registry, fingerprint, now)?;
        Ok(plan)
    }
}

/// What goes into the plan.
#[derive(Debug, Clone)]
pub enum PlanInput {
    /// Every candidate of the reported categories.
    Categories,
    /// Exactly these tags (plus siblings); categories are reported but not planned.
    Selection(Vec<TagId>),
    /// A plan already frozen (the TUI's `w`): written as it is.
    Frozen(Box<Plan>),
}

/// The registry was read over the HTTP API, which lists only tagged manifests.
pub const SPACE_BASIS_HTTP: &str = "http-api: reclaimable bytes count the manifests tags point to; untagged manifests (left \
behind whenever a tag was re-pushed) are invisible over the HTTP API, and garbage-collect still marks the layers they \
reference, so on a registry where any tag was ever re-pushed the bytes are an upper bound, not an exact prediction";

/// The registry was read from its storage, as garbage-collect reads it.
pub const SPACE_BASIS_STORAGE: &str = "storage: reclaimable bytes count every manifest revision garbage-collect marks from, \
untagged ones included, in the repositories read (read from the registry's storage): an exact prediction of what plain \
garbage-collect frees, unless a layer is also referenced from a repository outside them";
/// The grace period ran from each tag's (or untagged manifest's) push time: its storage link's modification time.
pub const GRACE_BASIS_PUSH: &str = "push-time";
/// The grace period ran from the image's build time (config `created`): the HTTP API has no push time.
pub const GRACE_BASIS_CREATED: &str = "image-created";

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
        .map(|c| category_report(inv, &ds.labels, &mut engine, c))
        .collect();
    let plan = match input {
        PlanInput::Categories => {
            let wanted: Vec<crate::plan::deletion::Wanted> = categories
                .iter()
                .filter(|c| c.status == CategoryStatus::Ok)
                .flat_map(|c| c.candidates.iter().map(|x| (x.tag, Some(c.id))))
                .collect();
            let untagged: Vec<(crate::model::RevId, Option<CategoryId>)> = categories
                .iter()
                .filter(|c| c.status == CategoryStatus::Ok)
                .flat_map(|c| c.revisions.iter().map(|x| (x.rev, Some(c.id))))
                .collect();
            let mut plan = crate::plan::deletion::build_with(
                inv,
                &mut engine,
                &wanted,
                &untagged,
                "categories",
                fingerprint,
                ds.generated_at,
            );
            // Orphaned references are Mongo records, planned as such (deleted only with
            // --mongo-cleanup, and only if still orphaned on the fresh data).
            let records: Vec<_> = categories
                .iter()
                .filter(|c| c.status == CategoryStatus::Ok && c.id == CategoryId::OrphanedReferences)
                .flat_map(|c| c.records.iter().cloned())
                .collect();
            if !records.is_empty() {
                plan.add_records(&records);
            }
            plan
        }
        PlanInput::Selection(tags) => {
            let wanted: Vec<crate::plan::deletion::Wanted> = tags.iter().map(|t| (*t, None)).collect();
            crate::plan::deletion::build(inv, &mut engine, &wanted, "selection", fingerprint, ds.generated_at)
        }
        PlanInput::Frozen(plan) => (**plan).clone(),
    };
    Report {
        schema_version: REPORT_SCHEMA,
        generated_at: super::rfc3339(ds.generated_at),
        registry: inv.registry.clone(),
        space_basis: if inv.from_storage {
            SPACE_BASIS_STORAGE
        } else {
            SPACE_BASIS_HTTP
        }
        .to_string(),
        grace_basis: if inv.from_storage {
            GRACE_BASIS_PUSH
        } else {
            GRACE_BASIS_CREATED
        }
        .to_string(),
        sources: SourceKind::ALL
            .iter()
            .map(|k| {
                let (status, error) = match ds.sources.get(k) {
                    Some(SourceStatus::Ok) => ("ok", None),
                    Some(SourceStatus::Failed(e)) => ("failed", Some(e.clone())),
                    Some(SourceStatus::Disabled) => ("disabled", None),
                    Some(SourceStatus::Loading) | None => ("failed", Some("not loaded".to_string())),
                };
                let collections = match k {
                    SourceKind::Mongo => ds
                        .mongo_collections
                        .iter()
                        .map(|c| CollectionReport {
                            collection: c.name.clone(),
                            present: c.present,
                            documents: c.documents,
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                (
                    k.as_str().to_string(),
                    SourceReport {
                        status: status.into(),
                        error,
                        collections,
                    },
                )
            })
            .collect(),
        without: without.iter().map(|k| k.as_str().to_string()).collect(),
        categories: category_reports,
        plan,
        grouping: None,
    }
}

type Labels = HashMap<TagId, TagLabel>;

/// The group a candidate falls in under `by`, from its label.
fn member(labels: &Labels, by: GroupBy, cand: &Candidate) -> Member {
    let l = labels.get(&cand.tag);
    let (key, label) = match by {
        GroupBy::Owner => (
            l.and_then(|l| l.owner_id).map(|o| o.to_string()),
            l.and_then(|l| l.owner.clone()),
        ),
        GroupBy::Project => (None, None),
        GroupBy::Environment => (
            l.and_then(|l| l.object).map(|o| o.to_string()),
            l.and_then(|l| l.group.clone()),
        ),
    };
    Member {
        tag: cand.tag,
        key,
        label,
        object: l.and_then(|l| l.object).or(cand.object_id),
    }
}

/// `report --group-by`: the candidates of the reported categories that are available, grouped.
pub fn grouping(ds: &Dataset, only: &[CategoryId], by: GroupBy) -> GroupingReport {
    let members: Vec<Member> = (ds.categories.iter())
        .filter(|c| (only.is_empty() || only.contains(&c.id)) && c.status == CategoryStatus::Ok)
        .flat_map(|c| c.candidates.iter().map(|x| member(&ds.labels, by, x)))
        .collect();
    let mut engine = SpaceEngine::new(&ds.inventory);
    let g = crate::plan::grouping::group(&ds.inventory, &mut engine, &members);
    GroupingReport {
        by: by.as_str().into(),
        tags: g.groups.iter().map(|x| x.tags.len()).sum(),
        joint_bytes: g.joint_bytes,
        shared_total_bytes: g.shared_total_bytes,
        overlapping_revisions: g.overlapping_revisions,
        groups: g
            .groups
            .into_iter()
            .map(|x| GroupReport {
                id: x.key,
                name: x.label,
                tag_count: x.tags.len(),
                environment_count: x.environments.len(),
                model_count: x.models.len(),
                exclusive_bytes: x.exclusive_bytes,
                shared_bytes: x.shared_bytes,
            })
            .collect(),
    }
}

fn grouped_by_user(
    inv: &Inventory,
    labels: &Labels,
    engine: &mut SpaceEngine,
    c: &CategoryResult,
) -> BTreeMap<String, UserGroupReport> {
    let members: Vec<Member> = c.candidates.iter().map(|x| member(labels, GroupBy::Owner, x)).collect();
    let g = crate::plan::grouping::group(inv, engine, &members);
    g.groups
        .into_iter()
        .map(|x| {
            let key = (x.label.clone().or_else(|| x.key.clone())).unwrap_or_else(|| "unknown".into());
            let mut tags: Vec<String> = (x.tags.iter())
                .map(|t| format!("{}:{}", inv.repo(inv.tag(*t).repo).name, inv.tag(*t).name))
                .collect();
            tags.sort();
            (
                key,
                UserGroupReport {
                    user_id: x.key,
                    username: x.label,
                    tag_count: x.tags.len(),
                    environment_count: x.environments.len(),
                    environments: x.environments.iter().map(|o| o.to_string()).collect(),
                    exclusive_bytes: x.exclusive_bytes,
                    shared_bytes: x.shared_bytes,
                    tags,
                },
            )
        })
        .collect()
}

fn category_report(inv: &Inventory, labels: &Labels, engine: &mut SpaceEngine, c: &CategoryResult) -> CategoryReport {
    engine.clear();
    for cand in &c.candidates {
        if let Some(r) = inv.tag(cand.tag).revision() {
            engine.set_selected(r, true);
        }
    }
    for cand in &c.revisions {
        engine.set_selected(cand.rev, true);
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
            let label = labels.get(&cand.tag);
            CandidateReport {
                repository: inv.repo(t.repo).name.clone(),
                tag: t.name.clone(),
                digest: inv.tag_digest(cand.tag).map(|d| inv.digests.name(d).to_string()),
                kind: inv.repo(t.repo).kind.as_str().into(),
                object_id: cand
                    .object_id
                    .or_else(|| ObjectId::prefix_of_tag(&inv.domino_tag(cand.tag)))
                    .map(|o| o.to_string()),
                exclusive_bytes: t.revision().map_or(0, |r| engine.exclusive_bytes(r)),
                siblings: inv
                    .siblings(cand.tag)
                    .into_iter()
                    .map(|s| inv.tag(s).name.clone())
                    .collect(),
                reasons: cand.reasons.clone(),
                owner: label.and_then(|l| l.owner_id).map(|o| OwnerReport {
                    id: o.to_string(),
                    username: label.and_then(|l| l.owner.clone()),
                }),
                project: None,
                name: label.and_then(|l| l.group.clone()),
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
    let rev_name = |r: crate::model::RevId| {
        let rev = inv.revision(r);
        (inv.repo(rev.repo), inv.digests.name(rev.manifest).to_string())
    };
    protected.extend(c.protected_revisions.iter().map(|(r, why)| ProtectedReport {
        repository: rev_name(*r).0.name.clone(),
        tag: String::new(),
        digest: Some(rev_name(*r).1),
        protected_by: why.clone(),
    }));
    protected.sort_by(|a, b| (&a.repository, &a.tag, &a.digest).cmp(&(&b.repository, &b.tag, &b.digest)));
    let mut untagged: Vec<UntaggedReport> = c
        .revisions
        .iter()
        .map(|x| {
            let (repo, digest) = rev_name(x.rev);
            let rev = inv.revision(x.rev);
            UntaggedReport {
                repository: repo.name.clone(),
                digest,
                untagged: true,
                kind: repo.kind.as_str().into(),
                index: inv.manifest(rev.manifest).is_some_and(|m| m.is_index()),
                exclusive_bytes: engine.exclusive_bytes(x.rev),
                pushed: rev.pushed.map(super::rfc3339),
                reasons: x.reasons.clone(),
            }
        })
        .collect();
    untagged.sort_by(|a, b| (&a.repository, &a.digest).cmp(&(&b.repository, &b.digest)));
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
        candidates: candidates
            .into_iter()
            .map(CandidateEntry::Tag)
            .chain(c.records.iter().map(|r| CandidateEntry::Record(record(r, &r.reasons))))
            .chain(untagged.into_iter().map(CandidateEntry::Manifest))
            .collect(),
        protected,
        protected_records: c.protected_records.iter().map(|(r, why)| record(r, why)).collect(),
        notes: c.notes.clone(),
        grouped_by_user: if c.id == CategoryId::DeactivatedOwnerEnvironments {
            grouped_by_user(inv, labels, engine, c)
        } else {
            BTreeMap::new()
        },
    }
}

pub use super::files::write_atomic;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::category::OrphanRecord;

    /// The report contract: `orphaned-references` lists its records under `candidates`, each
    /// `{collection, document_id, tag}` with its reasons; no `records` key; the report reads
    /// back.
    #[test]
    fn orphaned_references_records_are_its_candidates() {
        let id = ObjectId::parse("66000000000000000000000b").unwrap();
        let mut c = CategoryResult::new(CategoryId::OrphanedReferences, CategoryStatus::Ok);
        c.records.push(OrphanRecord {
            collection: "environment_revisions",
            document_id: id,
            tag: format!("{id}-3"),
            reasons: vec!["image is not in the registry".into()],
        });
        let ds = Dataset {
            categories: vec![c],
            ..Dataset::default()
        };
        let report = build(&ds, &[], &PlanInput::Categories, "fp", &[]);
        let json = serde_json::to_value(&report).unwrap();
        let cat = &json["categories"][0];
        assert_eq!(cat["id"], "orphaned-references");
        assert!(cat.get("records").is_none(), "{cat}");
        assert_eq!(
            cat["candidates"],
            serde_json::json!([{
                "collection": "environment_revisions",
                "document_id": id.to_string(),
                "tag": format!("{id}-3"),
                "reasons": ["image is not in the registry"],
            }])
        );
        let back: Report = serde_json::from_value(json).unwrap();
        assert!(
            matches!(&back.categories[0].candidates[..], [CandidateEntry::Record(r)] if r.document_id == id.to_string()),
            "{:?}",
            back.categories[0].candidates
        );
        assert!(back.plan.tags.is_empty(), "records never enter the tag plan");
    }
}
