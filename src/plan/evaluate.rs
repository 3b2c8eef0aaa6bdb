//! The core's entry point for categories: Inventory × sources × Policy → one
//! [`CategoryResult`] per category. Applies the protections uniformly, then the two rules that
//! depend on what a category keeps (clone sources of kept revisions, digest siblings), and
//! fails closed when a source a category needs did not load.

use super::categories::{self, Ctx, Proposal, Proposals};
use super::category::{Candidate, CategoryId, CategoryResult, CategoryStatus, ProtectedTag, broken_tags};
use super::inputs::{SourceState, SourcesData};
use super::lookup::TagLookup;
use super::policy::Policy;
use super::protection::{ProtectionInputs, Protections, protections};
use super::usage::usage_facts;
use crate::model::domino::DominoIndex;
use crate::model::{Inventory, ObjectId, TagId};
use crate::plan::dataset::SourceKind;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Computes every category. `now` is Unix seconds.
pub fn evaluate(inv: &Inventory, data: &SourcesData, policy: &Policy, now: i64) -> Vec<CategoryResult> {
    let lookup = TagLookup::new(inv);
    let mongo = on(&data.mongo, policy, SourceKind::Mongo);
    let ix = mongo.map(DominoIndex::new);
    let facts = ix.as_ref().map(|ix| usage_facts(ix, policy, now)).unwrap_or_default();
    let prot = protections(&ProtectionInputs {
        inv,
        lookup: &lookup,
        mongo: ix.as_ref().map(|ix| (ix, &facts)),
        workloads: on(&data.kubernetes, policy, SourceKind::Kubernetes),
        policy,
        now,
    });
    let revision_tags: HashMap<ObjectId, Vec<TagId>> = match &ix {
        Some(ix) => ix
            .data
            .revisions
            .iter()
            .map(|r| (r.id, lookup.of_revision(r)))
            .collect(),
        None => HashMap::new(),
    };
    let unmatched_note = ix.as_ref().and_then(|ix| unmatched_revisions(ix, &lookup));
    let keycloak = on(&data.keycloak, policy, SourceKind::Keycloak).map(Vec::as_slice);
    let keep = Keep {
        inv,
        prot: &prot,
        ix: ix.as_ref(),
        revision_tags: &revision_tags,
    };
    CategoryId::ALL
        .into_iter()
        .map(|id| {
            let mut notes = match availability(id, data, policy) {
                Ok(notes) => notes,
                Err(reason) => return CategoryResult::unavailable(id, reason),
            };
            if matches!(id, CategoryId::OrphanedReferences | CategoryId::OldRevisions)
                && let Some(note) = &unmatched_note
            {
                notes.push(note.clone());
            }
            if id == CategoryId::UntaggedManifests {
                return untagged(inv, &prot, policy, notes);
            }
            let proposals = match &ix {
                Some(ix) => propose(
                    id,
                    &Ctx {
                        inv,
                        lookup: &lookup,
                        ix,
                        facts: &facts,
                        policy,
                        keycloak,
                    },
                ),
                None => propose_without_mongo(id, inv),
            };
            let proposals = restrict(proposals, policy, inv, &revision_tags, &lookup, ix.as_ref());
            CategoryResult {
                notes,
                ..keep.finish(id, proposals)
            }
        })
        .collect()
}

/// When many built revisions match no registry tag although tags of their environments exist
/// (by id prefix), the recorded `metadata.dockerImageName` probably names tags in a form the
/// registry does not use: orphaned references and old revisions are then suspect, so say so.
/// "Many": at least 5, and at least a quarter of the built revisions of those environments.
fn unmatched_revisions(ix: &DominoIndex, lookup: &TagLookup) -> Option<String> {
    let (mut unmatched, mut of_envs) = (0usize, 0usize);
    for (env, revs) in &ix.revisions_by_env {
        if lookup.of_object(crate::model::ImageKind::Environment, env).is_empty() {
            continue;
        }
        for rev in revs.iter().filter(|r| r.built && r.domino_tag().is_some()) {
            of_envs += 1;
            unmatched += usize::from(lookup.of_revision(rev).is_empty());
        }
    }
    (unmatched >= 5 && unmatched * 4 >= of_envs).then(|| {
        format!(
            "{unmatched} of {of_envs} built revisions match no registry tag although their environments have \
             <envId>-* tags: their recorded metadata.dockerImageName may name another tag form; check before \
             deleting orphaned references"
        )
    })
}

/// The loaded value of a source that is neither failed nor turned off in the policy.
fn on<'a, T>(s: &'a SourceState<T>, policy: &Policy, kind: SourceKind) -> Option<&'a T> {
    if policy.without.contains(&kind) { None } else { s.ok() }
}

/// How a source looks to the categories after `--without`.
enum Availability<'a> {
    Ok,
    Failed(&'a str),
    Disabled,
}

fn availability_of<'a, T>(s: &'a SourceState<T>, policy: &Policy, kind: SourceKind) -> Availability<'a> {
    match s {
        _ if policy.without.contains(&kind) => Availability::Disabled,
        SourceState::Ok(_) => Availability::Ok,
        SourceState::Failed(reason) => Availability::Failed(reason),
        SourceState::Disabled => Availability::Disabled,
    }
}

/// `Err(reason)` when the category cannot be trusted; otherwise notes about turned-off
/// protection sources. A *required* source must be loaded; a *protection* source that failed
/// makes the category unavailable (we cannot tell what is in use), one turned off on purpose
/// only adds a note.
fn availability(id: CategoryId, data: &SourcesData, policy: &Policy) -> Result<Vec<String>, String> {
    if let Availability::Failed(r) = availability_of(&data.registry, policy, SourceKind::Registry) {
        return Err(format!("registry scan failed: {r}"));
    }
    let mut required = vec![];
    if !matches!(id, CategoryId::BrokenTags | CategoryId::UntaggedManifests) {
        required.push(SourceKind::Mongo);
    }
    if id == CategoryId::DeactivatedOwnerEnvironments {
        required.push(SourceKind::Keycloak);
    }
    let mut notes = vec![];
    for kind in [SourceKind::Mongo, SourceKind::Kubernetes, SourceKind::Keycloak] {
        let avail = match kind {
            SourceKind::Mongo => availability_of(&data.mongo, policy, kind),
            SourceKind::Kubernetes => availability_of(&data.kubernetes, policy, kind),
            SourceKind::Keycloak => availability_of(&data.keycloak, policy, kind),
            SourceKind::Registry => Availability::Ok,
        };
        let protects = matches!(kind, SourceKind::Mongo | SourceKind::Kubernetes);
        match avail {
            Availability::Ok => {}
            Availability::Failed(r) if required.contains(&kind) || protects => {
                return Err(format!("{} failed: {r}", kind.as_str()));
            }
            Availability::Disabled if required.contains(&kind) => {
                return Err(format!("needs {}, which is turned off", kind.as_str()));
            }
            Availability::Disabled if protects => notes.push(match kind {
                SourceKind::Kubernetes => "kubernetes turned off: running workloads were not checked".to_string(),
                _ => format!("{} turned off: its usage was not checked", kind.as_str()),
            }),
            Availability::Failed(_) | Availability::Disabled => {}
        }
    }
    Ok(notes)
}

fn propose(id: CategoryId, ctx: &Ctx) -> Proposals {
    match id {
        CategoryId::ArchivedEnvironments => categories::archived_environments(ctx),
        CategoryId::ArchivedModels => categories::archived_models(ctx),
        CategoryId::UnusedEnvironments => categories::unused_environments(ctx),
        CategoryId::DeactivatedOwnerEnvironments => categories::deactivated_owner_environments(ctx),
        CategoryId::OldRevisions => categories::old_revisions(ctx),
        CategoryId::UnreferencedTags => categories::unreferenced_tags(ctx),
        CategoryId::OrphanedReferences => categories::orphaned_references(ctx),
        CategoryId::BrokenTags => propose_without_mongo(id, ctx.inv),
        // Revisions, not tags: `untagged` computes it.
        CategoryId::UntaggedManifests => Proposals::default(),
    }
}

/// `untagged-manifests`: from a storage inventory only (the HTTP API cannot list them).
fn untagged(inv: &Inventory, prot: &Protections, policy: &Policy, notes: Vec<String>) -> CategoryResult {
    if !inv.from_storage {
        return CategoryResult::unavailable(
            CategoryId::UntaggedManifests,
            "needs the registry's storage (--storage file://… or s3://…): the HTTP API cannot list untagged manifests",
        );
    }
    let mut out = if policy.only_ids.is_some() {
        let mut r = CategoryResult::new(CategoryId::UntaggedManifests, CategoryStatus::Ok);
        r.notes.push(
            "--ids names environments and models; an untagged manifest belongs to none, so none is proposed".into(),
        );
        r
    } else {
        super::categories::untagged_manifests(inv, prot)
    };
    out.notes.extend(notes);
    out
}

/// Only `broken-tags` can run without Mongo (availability keeps the others out).
fn propose_without_mongo(id: CategoryId, inv: &Inventory) -> Proposals {
    let mut out = Proposals::default();
    if id == CategoryId::BrokenTags {
        for c in broken_tags(inv).candidates {
            let reason = c.reasons.join("; ");
            out.tags.push(Proposal {
                tag: c.tag,
                object_id: c.object_id,
                reason,
                local_protection: None,
            });
        }
    }
    out
}

/// `--ids FILE`: keep proposals for the listed environments and models (by tag prefix) and the
/// listed revisions and versions (by their recorded tags and document ids).
fn restrict(
    mut p: Proposals,
    policy: &Policy,
    inv: &Inventory,
    revision_tags: &HashMap<ObjectId, Vec<TagId>>,
    lookup: &TagLookup,
    ix: Option<&DominoIndex>,
) -> Proposals {
    let Some(f) = &policy.only_ids else { return p };
    let mut listed: HashSet<TagId> = f
        .revisions
        .iter()
        .flat_map(|r| revision_tags.get(r).into_iter().flatten().copied())
        .collect();
    if let Some(ix) = ix {
        listed.extend(
            f.versions
                .iter()
                .filter_map(|v| ix.versions.get(v))
                .flat_map(|v| lookup.of_version(v)),
        );
    }
    p.tags
        .retain(|t| listed.contains(&t.tag) || f.matches_tag(&inv.domino_tag(t.tag)));
    let keep_record =
        |doc: &ObjectId, tag: &str| f.revisions.contains(doc) || f.versions.contains(doc) || f.matches_tag(tag);
    p.records.retain(|r| keep_record(&r.document_id, &r.tag));
    p.protected_records.retain(|(r, _)| keep_record(&r.document_id, &r.tag));
    p
}

/// Applies protections to one category's proposals.
struct Keep<'a> {
    inv: &'a Inventory,
    prot: &'a Protections,
    ix: Option<&'a DominoIndex<'a>>,
    revision_tags: &'a HashMap<ObjectId, Vec<TagId>>,
}

impl Keep<'_> {
    fn finish(&self, id: CategoryId, p: Proposals) -> CategoryResult {
        let mut proposed: BTreeMap<TagId, (Option<ObjectId>, Vec<String>)> = BTreeMap::new();
        let mut kept: BTreeMap<TagId, Vec<String>> = BTreeMap::new();
        for prop in p.tags {
            let entry = proposed.entry(prop.tag).or_insert((prop.object_id, vec![]));
            push_unique(&mut entry.1, prop.reason);
            if let Some(why) = prop.local_protection {
                push_unique(kept.entry(prop.tag).or_default(), why);
            }
            for why in self.prot.reasons(prop.tag).into_iter().flatten() {
                push_unique(kept.entry(prop.tag).or_default(), why.clone());
            }
        }
        // Keeping one tag can keep another (its clone source, its digest siblings); repeat
        // until nothing changes.
        while self.clone_sources(&proposed, &mut kept) | self.siblings(&proposed, &mut kept) {}
        let candidates = proposed
            .iter()
            .filter(|(t, _)| !kept.contains_key(t))
            .map(|(t, (object_id, reasons))| Candidate {
                tag: *t,
                object_id: *object_id,
                reasons: reasons.clone(),
            })
            .collect();
        let protected = kept
            .into_iter()
            .map(|(tag, protected_by)| ProtectedTag { tag, protected_by })
            .collect();
        CategoryResult {
            candidates,
            protected,
            records: p.records,
            protected_records: p.protected_records,
            ..CategoryResult::new(id, CategoryStatus::Ok)
        }
    }

    fn deleting(
        &self,
        proposed: &BTreeMap<TagId, (Option<ObjectId>, Vec<String>)>,
        kept: &BTreeMap<TagId, Vec<String>>,
    ) -> BTreeSet<TagId> {
        proposed.keys().filter(|t| !kept.contains_key(t)).copied().collect()
    }

    /// A built revision whose image survives this category is "kept"; the revision it was
    /// cloned from must survive too, transitively, or rebuilding the clone breaks.
    fn clone_sources(
        &self,
        proposed: &BTreeMap<TagId, (Option<ObjectId>, Vec<String>)>,
        kept: &mut BTreeMap<TagId, Vec<String>>,
    ) -> bool {
        let Some(ix) = self.ix else { return false };
        let deleting = self.deleting(proposed, kept);
        let mut changed = false;
        for rev in ix.data.revisions.iter().filter(|r| r.built) {
            let Some(source) = rev.cloned_from else {
                continue;
            };
            let tags = self.revision_tags.get(&rev.id).map(Vec::as_slice).unwrap_or_default();
            if !tags.is_empty() && tags.iter().all(|t| deleting.contains(t)) {
                continue;
            }
            for t in self
                .revision_tags
                .get(&source)
                .into_iter()
                .flatten()
                .filter(|t| proposed.contains_key(t))
            {
                let why = format!(
                    "clone source of kept revision {} of {}",
                    rev.id,
                    ix.env_label(rev.environment)
                );
                changed |= push_unique(kept.entry(*t).or_default(), why);
            }
        }
        changed
    }

    /// Deleting a tag deletes its manifest by digest, and with it every other tag on that
    /// digest in the repository; a candidate sharing a digest with a tag that stays must stay.
    fn siblings(
        &self,
        proposed: &BTreeMap<TagId, (Option<ObjectId>, Vec<String>)>,
        kept: &mut BTreeMap<TagId, Vec<String>>,
    ) -> bool {
        let deleting = self.deleting(proposed, kept);
        let mut changed = false;
        for t in proposed.keys() {
            for s in self.inv.siblings(*t).into_iter().filter(|s| !deleting.contains(s)) {
                let name = self.inv.tag_ref(s);
                let why = if kept.contains_key(&s) || self.prot.reasons(s).is_some() {
                    format!("shares digest with protected tag {name}")
                } else {
                    format!("shares digest with tag {name}, which this category does not delete")
                };
                changed |= push_unique(kept.entry(*t).or_default(), why);
            }
        }
        changed
    }
}

fn push_unique(v: &mut Vec<String>, s: String) -> bool {
    if v.contains(&s) {
        return false;
    }
    v.push(s);
    true
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;

/// Every protection in force for every tag (not only candidates): what `delete` re-checks
/// each planned tag against, whatever category or selection put it in the plan.
pub fn all_protections(inv: &Inventory, data: &SourcesData, policy: &Policy, now: i64) -> BTreeMap<TagId, Vec<String>> {
    let lookup = TagLookup::new(inv);
    let ix = on(&data.mongo, policy, SourceKind::Mongo).map(DominoIndex::new);
    let facts = ix.as_ref().map(|ix| usage_facts(ix, policy, now)).unwrap_or_default();
    protections(&ProtectionInputs {
        inv,
        lookup: &lookup,
        mongo: ix.as_ref().map(|ix| (ix, &facts)),
        workloads: on(&data.kubernetes, policy, SourceKind::Kubernetes),
        policy,
        now,
    })
    .by_tag
}
