//! Deleting the orphaned Mongo references a plan lists (the original's
//! `delete_unused_references --apply`), inside the one delete run: each record must still be a
//! candidate of orphaned-references on the fresh data (its image still missing, nothing needing
//! it), and its image must be confirmed missing by a GET answering `MANIFEST_UNKNOWN`; then the
//! same backup → delete → audit path as the Mongo cleanup.

use super::audit::AuditLog;
use super::mongo_cleanup::{MongoResult, MongoSummary, execute};
use crate::dataset::Dataset;
use crate::model::ObjectId;
use crate::plan::CategoryId;
use crate::plan::category::CategoryStatus;
use crate::plan::deletion::PlanRecord;
use crate::plan::lookup::strip_host;
use crate::plan::mongo_cleanup::{Collection, Decision};
use crate::settings::Settings;
use crate::sources::registry::RegistryClient;
use std::path::Path;

/// What the run asks of this step.
pub struct Step<'a> {
    pub settings: &'a Settings,
    pub client: &'a RegistryClient,
    pub fresh: &'a Dataset,
    pub records: &'a [PlanRecord],
    /// `--mongo-cleanup` was given: without it no Mongo record is deleted.
    pub mongo_on: bool,
    pub apply: bool,
    pub backup: &'a Path,
    pub audit: Option<&'a AuditLog>,
}

/// Re-checks and (with `apply`) deletes the records; every record ends in the summary.
pub async fn run(s: Step<'_>) -> MongoSummary {
    let decisions = match decide(&s).await {
        Ok(d) => d,
        Err(e) => {
            return MongoSummary {
                dry_run: !s.apply,
                failed: s.records.len(),
                error: Some(format!("orphaned references not deleted: {e}")),
                ..MongoSummary::default()
            };
        }
    };
    if !s.apply || !decisions.iter().any(|d| d.delete) {
        let mut out = MongoSummary {
            dry_run: !s.apply,
            ..MongoSummary::default()
        };
        for d in &decisions {
            let r = if d.delete {
                MongoResult::WouldDelete
            } else {
                MongoResult::Skipped
            };
            out.push(d, r, d.reason.clone());
        }
        return out;
    }
    let ms = super::load::mongo_settings(s.settings).await;
    let db = match crate::sources::mongo::connect(&ms).await {
        Ok(db) => db,
        Err(e) => {
            return MongoSummary {
                failed: s.records.len(),
                error: Some(format!("orphaned references not deleted: mongo: {e}")),
                ..MongoSummary::default()
            };
        }
    };
    execute(&db, &decisions, s.backup, s.audit)
        .await
        .unwrap_or_else(|e| MongoSummary {
            failed: s.records.len(),
            error: Some(format!("orphaned references: {e}")),
            ..MongoSummary::default()
        })
}

/// One decision per planned record, in plan order.
async fn decide(s: &Step<'_>) -> Result<Vec<Decision>, String> {
    let mut out = Vec::new();
    let parsed: Vec<(Collection, ObjectId)> = s
        .records
        .iter()
        .map(|r| {
            let c = Collection::parse(&r.collection).ok_or_else(|| format!("collection {:?}", r.collection))?;
            let id = ObjectId::parse(&r.document_id)?;
            Ok((c, id))
        })
        .collect::<Result<_, String>>()?;
    let skip_all = |why: &str| -> Vec<Decision> {
        parsed
            .iter()
            .map(|(c, id)| Decision {
                collection: *c,
                id: *id,
                delete: false,
                reason: why.to_string(),
            })
            .collect()
    };
    if !s.mongo_on {
        return Ok(skip_all("Mongo records are deleted only with --mongo-cleanup"));
    }
    let Some(cat) = s
        .fresh
        .categories
        .iter()
        .find(|c| c.id == CategoryId::OrphanedReferences)
    else {
        return Ok(skip_all("orphaned-references was not computed on the fresh data"));
    };
    if let CategoryStatus::Unavailable(why) = &cat.status {
        return Ok(skip_all(&format!(
            "orphaned-references is unavailable on the fresh data: {why}"
        )));
    }
    // The documents as they are now, to know which image to confirm missing.
    let ms = super::load::mongo_settings(s.settings).await;
    let data = crate::sources::mongo::load(&ms)
        .await
        .map_err(|e| format!("mongo: {e}"))?;
    let prefix = s.settings.registry.repository.trim_end_matches('/');
    for (c, id) in parsed {
        let wire = c.name();
        let candidate = cat.records.iter().find(|r| r.collection == wire && r.document_id == id);
        let kept = cat
            .protected_records
            .iter()
            .find(|(r, _)| r.collection == wire && r.document_id == id);
        let verdict = match (candidate, kept) {
            (_, Some((_, why))) => Err(format!("kept: {}", why.join("; "))),
            (None, None) => Err(
                "no longer an orphaned reference on the fresh data (its image is in the registry again, or the record is gone)"
                    .to_string(),
            ),
            (Some(_), None) => {
                // The images the record names, each confirmed missing by a GET.
                // The images the record names where Mongo recorded them (registry host
                // stripped) and under the current-layout name, each confirmed missing by a GET.
                let mut images: Vec<(String, String)> = Vec::new();
                match c {
                    Collection::EnvironmentRevisions => {
                        for r in data.revisions.iter().filter(|r| r.id == id) {
                            let Some(tag) = r.tag.clone().filter(|t| !t.is_empty()) else { continue };
                            let at = r.repository.as_deref().filter(|x| !x.is_empty()).map(strip_host);
                            images.push((at.map_or_else(|| format!("{prefix}/environment"), str::to_string), tag));
                            if let Some(name) = r.domino_tag() {
                                images.push((format!("{prefix}/environment"), name.into_owned()));
                            }
                        }
                    }
                    _ => {
                        for v in data.versions.iter().filter(|v| v.id == id) {
                            let at = v.repository.as_deref().filter(|x| !x.is_empty()).map(strip_host);
                            for slug in v.slugs.iter().filter(|x| !x.is_empty()) {
                                images.push((at.map_or_else(|| format!("{prefix}/model"), str::to_string), slug.clone()));
                                images.push((format!("{prefix}/model"), slug.clone()));
                            }
                        }
                    }
                }
                images.sort();
                images.dedup();
                confirm_missing(s.client, &images).await
            }
        };
        out.push(match verdict {
            Ok(why) => Decision {
                collection: c,
                id,
                delete: true,
                reason: why,
            },
            Err(why) => Decision {
                collection: c,
                id,
                delete: false,
                reason: why,
            },
        });
    }
    Ok(out)
}

async fn confirm_missing(client: &RegistryClient, images: &[(String, String)]) -> Result<String, String> {
    if images.is_empty() {
        return Err("the record names no image any more".into());
    }
    for (repo, tag) in images {
        match client.manifest_gone(repo, tag).await {
            Ok(true) => {}
            Ok(false) => return Err(format!("its image {repo}:{tag} is served again")),
            Err(e) => return Err(format!("cannot confirm {repo}:{tag} is missing: {e}")),
        }
    }
    let names: Vec<String> = images.iter().map(|(r, t)| format!("{r}:{t}")).collect();
    Ok(format!(
        "orphaned reference: {} missing from the registry",
        names.join(", ")
    ))
}
