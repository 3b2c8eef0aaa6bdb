//! `orphaned-references`: Mongo revision and model-version records whose image is missing from
//! the registry (domain.md §3.7, with the model-version slugs actually read). Failed builds never
//! had an image and are not orphans. Records something still needs (an active revision, a
//! revision or version in use) are protected rather than proposed: deleting them would break
//! Domino's own references.

use super::{Ctx, Proposals};
use crate::model::image::legacy_environment;
use crate::model::{ImageKind, ObjectId};
use crate::plan::category::OrphanRecord;

pub fn orphaned_references(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    if ctx.lookup.scanned(ImageKind::Environment) {
        for rev in ctx.ix.data.revisions.iter().filter(|r| r.built) {
            let Some(tag) = rev.tag.as_deref().filter(|t| !t.is_empty()) else {
                continue;
            };
            if !ctx.lookup.of_revision(rev).is_empty() {
                continue;
            }
            // Recorded in a legacy `domino-<env>` repository that the scan did not see (it is
            // found only through the catalog): its image may well exist, so it is no orphan.
            let unscanned = rev
                .repository
                .as_deref()
                .and_then(legacy_environment)
                .filter(|env| !ctx.lookup.legacy_scanned(env));
            if let Some(env) = unscanned {
                unscanned_legacy(&mut out, rev, tag, &env);
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
                tag: tag.to_string(),
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

fn unscanned_legacy(out: &mut Proposals, rev: &crate::model::domino::EnvRevision, tag: &str, env: &ObjectId) {
    let record = OrphanRecord {
        collection: "environment_revisions",
        document_id: rev.id,
        tag: tag.to_string(),
        reasons: vec![format!(
            "image {tag} of revision {} is recorded in domino-{env}",
            rev.id
        )],
    };
    out.protected_records.push((
        record,
        vec![format!(
            "legacy repository domino-{env} was not scanned (it is found only through the catalog), so its image may exist"
        )],
    ));
}

fn push(out: &mut Proposals, record: OrphanRecord, keep: Vec<String>) {
    if keep.is_empty() {
        out.records.push(record);
    } else {
        out.protected_records.push((record, keep));
    }
}
