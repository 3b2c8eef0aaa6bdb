//! `orphaned-references`: Mongo revision and model-version records whose image is missing from
//! the registry (domain.md §3.7, with the model-version slugs actually read). Failed builds never
//! had an image and are not orphans. Records something still needs (an active revision, a
//! revision or version in use) are protected rather than proposed: deleting them would break
//! Domino's own references.

use super::{Ctx, Proposals};
use crate::model::ImageKind;
use crate::model::domino::EnvRevision;
use crate::model::image::legacy_environment;
use crate::plan::category::OrphanRecord;
use crate::plan::lookup::{recorded_host, strip_host};
use std::collections::HashSet;

pub fn orphaned_references(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    let hosts = this_registry(ctx);
    if ctx.lookup.scanned(ImageKind::Environment) {
        for rev in ctx.ix.data.revisions.iter().filter(|r| r.built) {
            let Some(tag) = rev.tag.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            // As wide as every protection: any scanned environment repository, any host.
            if !ctx.lookup.of_revision_named(rev).is_empty() {
                continue;
            }
            // The image may exist where the scan did not look: then it is no orphan.
            if let Some(unseen) = unseen_revision(ctx, &hosts, rev) {
                out.protected_records.push((
                    OrphanRecord {
                        collection: "environment_revisions",
                        document_id: rev.id,
                        tag: rev.domino_tag().map(|t| t.into_owned()).unwrap_or_default(),
                        reasons: vec![format!("image {tag} of revision {} was not found", rev.id)],
                    },
                    vec![unseen],
                ));
                continue;
            }
            let why = format!(
                "image {tag} of revision {} of {} is not in the registry",
                rev.id,
                ctx.ix.env_label(rev.environment)
            );
            let record = OrphanRecord {
                collection: "environment_revisions",
                document_id: rev.id,
                // The current-layout name, which `--ids` filters and reports match.
                tag: rev.domino_tag().map(|t| t.into_owned()).unwrap_or_default(),
                reasons: vec![why],
            };
            let mut keep: Vec<String> = ctx.facts.revisions.get(&rev.id).cloned().unwrap_or_default();
            if let Some(env) = ctx
                .ix
                .environments
                .get(&rev.environment)
                .filter(|e| e.active_revision == Some(rev.id))
            {
                keep.push(format!("active revision of {}", ctx.ix.env_label(env.id)));
            }
            push(&mut out, record, keep);
        }
    }
    if ctx.lookup.scanned(ImageKind::Model) {
        for v in &ctx.ix.data.versions {
            let Some(slug) = v.slug() else { continue };
            if !ctx.lookup.of_version(v).is_empty() {
                continue;
            }
            // The image may exist where the scan did not look: another registry host, or a
            // repository that was not scanned.
            let unseen = other_registry(ctx, &hosts, v.repository.as_deref()).or_else(|| {
                v.repository
                    .as_deref()
                    .filter(|r| !r.is_empty() && !ctx.lookup.repository_scanned(r))
                    .map(|r| format!("its recorded repository {r} was not scanned"))
            });
            if let Some(unseen) = unseen {
                out.protected_records.push((
                    OrphanRecord {
                        collection: "model_versions",
                        document_id: v.id,
                        tag: slug.to_string(),
                        reasons: vec![format!("image {slug} of model version {} was not found", v.id)],
                    },
                    vec![unseen],
                ));
                continue;
            }
            let why = format!(
                "image {slug} of model version {} of {} is not in the registry",
                v.id,
                ctx.ix.model_label(v.model)
            );
            let record = OrphanRecord {
                collection: "model_versions",
                document_id: v.id,
                tag: slug.to_string(),
                reasons: vec![why],
            };
            push(
                &mut out,
                record,
                ctx.facts.versions.get(&v.id).cloned().unwrap_or_default(),
            );
        }
    }
    out
}

/// Why the scan cannot tell whether a revision's image exists, if it cannot: the recorded
/// repository names another registry, the catalog was not read (legacy repositories unseen),
/// its legacy repository was not scanned, no current-layout environment repository has tags,
/// or the repository Mongo recorded was not scanned.
fn unseen_revision(ctx: &Ctx, hosts: &HashSet<String>, rev: &EnvRevision) -> Option<String> {
    let recorded = rev.repository.as_deref().filter(|r| !r.is_empty());
    if let Some(elsewhere) = other_registry(ctx, hosts, recorded) {
        return Some(elsewhere);
    }
    let legacy = recorded.and_then(|r| legacy_environment(strip_host(r)));
    if !ctx.inv.catalog_read {
        return Some(
            "the catalog was not read, so legacy domino-<envId> repositories (where its image may be) were not scanned"
                .into(),
        );
    }
    if let Some(env) = legacy {
        return (!ctx.lookup.legacy_scanned(&env)).then(|| format!("legacy repository domino-{env} was not scanned"));
    }
    if !ctx.lookup.current_env_scanned() {
        return Some("no current-layout environment repository with tags was scanned".into());
    }
    recorded
        .filter(|r| !ctx.lookup.repository_scanned(r))
        .map(|r| format!("its recorded repository {r} was not scanned"))
}

/// The hosts a recorded repository may name and still mean the scanned registry, lowercase: the
/// host the scan connected to, `registry.aliases`, and every host that some record names whose
/// image the scan found (evidence that Domino knows this registry by that name, as when the
/// tool reaches `docker-registry:5000` through a port-forward).
fn this_registry(ctx: &Ctx) -> HashSet<String> {
    let mut hosts: HashSet<String> = std::iter::once(&ctx.inv.registry)
        .chain(&ctx.policy.registry_aliases)
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let mut seen = |recorded: Option<&str>| {
        if let Some(h) = recorded.and_then(recorded_host) {
            hosts.insert(h.to_ascii_lowercase());
        }
    };
    if ctx.lookup.scanned(ImageKind::Environment) {
        for rev in ctx.ix.data.revisions.iter().filter(|r| r.built && r.tag.is_some()) {
            if !ctx.lookup.of_revision_named(rev).is_empty() {
                seen(rev.repository.as_deref());
            }
        }
    }
    if ctx.lookup.scanned(ImageKind::Model) {
        for v in ctx.ix.data.versions.iter().filter(|v| v.slug().is_some()) {
            if !ctx.lookup.of_version(v).is_empty() {
                seen(v.repository.as_deref());
            }
        }
    }
    hosts
}

/// Why a record whose image was not found may still have one, when its recorded repository names
/// a registry host that is not known to be this one: its image may be in that other registry.
fn other_registry(ctx: &Ctx, hosts: &HashSet<String>, recorded: Option<&str>) -> Option<String> {
    let recorded = recorded?;
    let host = recorded_host(recorded)?;
    (!hosts.contains(&host.to_ascii_lowercase())).then(|| {
        format!(
            "its recorded repository {recorded} names registry host {host}, which is neither the scanned registry ({}) nor in registry.aliases, and no image recorded on {host} was found here: its image may be in that registry (if {host} is this registry under another name, add it to registry.aliases)",
            ctx.inv.registry
        )
    })
}

fn push(out: &mut Proposals, record: OrphanRecord, keep: Vec<String>) {
    if keep.is_empty() {
        out.records.push(record);
    } else {
        out.protected_records.push((record, keep));
    }
}
