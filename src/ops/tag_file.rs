//! `mongo-cleanup --file`: the Domino records of images removed by other means (the original's
//! `mongo_cleanup find|delete --file`). Each listed image must be confirmed gone — absent from a
//! complete fresh scan *and* answered `MANIFEST_UNKNOWN` by a GET — before its records are in
//! scope; records something still needs (an active revision, a revision or version in use: the
//! orphaned-references protections) stay. Then the same backup → delete → audit path as
//! `delete --mongo-cleanup`.

use super::audit::AuditLog;
use super::mongo_cleanup::{MongoResult, MongoSummary, execute};
use crate::exit::CannotRun;
use crate::model::image::model_tags_match;
use crate::model::{ImageKind, ObjectId};
use crate::plan::CategoryId;
use crate::plan::category::CategoryStatus;
use crate::plan::mongo_cleanup::{RegistryTag, TagFileEntry, decide_keeping, tags_of_id};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// What became of one listed image.
#[derive(Debug, Clone, Serialize)]
pub struct ListedImage {
    pub line: usize,
    pub image: String,
    /// `gone` (confirmed), `present` (still in the registry) or `unconfirmed` (could not be
    /// checked: its records stay).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TagFileResults {
    pub kind: &'static str,
    pub dry_run: bool,
    pub listed: Vec<ListedImage>,
    pub mongo: MongoSummary,
}

impl TagFileResults {
    pub fn failed(&self) -> bool {
        self.mongo.failed > 0 || self.mongo.error.is_some()
    }
}

/// Runs the cleanup. `confirm(n)` is asked (with `apply`) before anything is deleted.
pub async fn run(
    settings: &Settings,
    entries: &[TagFileEntry],
    apply: bool,
    backup: &Path,
    audit_log: &Path,
    confirm: &dyn Fn(usize) -> bool,
    now: i64,
) -> anyhow::Result<TagFileResults> {
    let cannot = |m: String| anyhow::Error::new(CannotRun(m));
    let fresh = super::connect::load_dataset(settings, None, true, true, now).await?;
    super::delete_run::fail_closed(&fresh)?;
    // The protections of records: what orphaned-references keeps, on the same fresh data.
    let orphans = fresh
        .categories
        .iter()
        .find(|c| c.id == CategoryId::OrphanedReferences)
        .ok_or_else(|| cannot("the orphaned-references category was not computed".into()))?;
    if let CategoryStatus::Unavailable(why) = &orphans.status {
        return Err(cannot(format!(
            "cannot tell which records are still needed (orphaned-references: {why}); nothing was deleted"
        )));
    }
    let ms = super::load::mongo_settings(settings).await;
    let data = crate::sources::mongo::load(&ms)
        .await
        .map_err(|e| cannot(format!("mongo: {e}")))?;
    // A revision or version record goes only if orphaned-references proposes it on the same
    // fresh data: its image missing under every name the lookups know, nothing needing it.
    let candidates: BTreeSet<ObjectId> = orphans.records.iter().map(|r| r.document_id).collect();
    let mut keep: HashMap<ObjectId, Vec<String>> = orphans
        .protected_records
        .iter()
        .map(|(r, why)| (r.document_id, why.clone()))
        .collect();
    let not_orphan = || {
        vec![
            "not an orphaned reference on the fresh data (an image named like it is in a scanned repository)"
                .to_string(),
        ]
    };
    for id in data
        .revisions
        .iter()
        .filter(|r| r.built)
        .map(|r| r.id)
        .chain(data.versions.iter().map(|v| v.id))
    {
        if !candidates.contains(&id) {
            keep.entry(id).or_insert_with(not_orphan);
        }
    }
    let prefix = &settings.registry.repository;
    let mut wanted: Vec<(RegistryTag, usize)> = Vec::new();
    let mut seen = BTreeSet::new();
    for e in entries {
        let (tags, line) = match e {
            TagFileEntry::Tags(t, line) => (t.clone(), *line),
            TagFileEntry::Id(id, line) => (tags_of_id(&data, id, prefix), *line),
        };
        for t in tags {
            if seen.insert(t.clone()) {
                wanted.push((t, line));
            }
        }
    }
    let inv = &fresh.inventory;
    let mut present: Vec<RegistryTag> = inv
        .tag_ids()
        .map(|t| RegistryTag::new(&inv.repo(inv.tag(t).repo).name, &inv.tag(t).name))
        .collect();
    let client = super::connect::registry_client(settings)?;
    let (mut gone, mut listed) = (Vec::new(), Vec::new());
    for (t, line) in wanted {
        // A model slug may be stored short (`<id>-v<N>`) while the registry holds the full tag.
        let full = (ImageKind::of_repository(&t.repository) == ImageKind::Model)
            .then(|| {
                inv.repo_by_name(&t.repository).and_then(|r| {
                    inv.repo_tags(r)
                        .find(|x| model_tags_match(&inv.tag(*x).name, &t.tag))
                        .map(|x| inv.tag_ref(x))
                })
            })
            .flatten();
        let (state, detail) = if inv.find_tag(&t.repository, &t.tag).is_some() {
            ("present", None)
        } else if inv.repo_by_name(&t.repository).is_none() {
            // Absent from a scan that never read the repository proves nothing.
            (
                "unconfirmed",
                Some(format!("repository {} was not scanned", t.repository)),
            )
        } else if let Some(full) = full {
            ("present", Some(format!("the registry holds {full}")))
        } else {
            // A GET by tag, not a HEAD: only a body can carry MANIFEST_UNKNOWN, and a bare 404
            // confirms nothing.
            match client.manifest_gone(&t.repository, &t.tag).await {
                Ok(true) => ("gone", None),
                Ok(false) => ("present", Some("the registry still serves it".to_string())),
                Err(e) => ("unconfirmed", Some(format!("could not confirm it is gone: {e}"))),
            }
        };
        if state == "gone" {
            gone.push(t.clone());
        } else {
            present.push(t.clone());
        }
        listed.push(ListedImage {
            line,
            image: t.to_string(),
            state,
            detail,
        });
    }
    let decisions = decide_keeping(&data, &gone, &present, &keep);
    let deletes = decisions.iter().filter(|d| d.delete).count();
    let mongo = if !apply {
        dry_summary(&decisions)
    } else if deletes == 0 {
        MongoSummary {
            dry_run: false,
            ..dry_summary(&decisions)
        }
    } else {
        if !confirm(deletes) {
            return Err(cannot("not confirmed; nothing was deleted".into()));
        }
        let audit = AuditLog::open(audit_log)
            .map_err(|e| cannot(format!("{}: cannot open audit log: {e}", audit_log.display())))?;
        let db = crate::sources::mongo::connect(&ms)
            .await
            .map_err(|e| cannot(format!("mongo: {e}")))?;
        execute(&db, &decisions, backup, Some(&audit))
            .await
            .map_err(|e| cannot(format!("mongo cleanup: {e}")))?
    };
    Ok(TagFileResults {
        kind: "registry-cleaner-mongo-cleanup",
        dry_run: !apply,
        listed,
        mongo,
    })
}

fn dry_summary(decisions: &[crate::plan::mongo_cleanup::Decision]) -> MongoSummary {
    let mut s = MongoSummary {
        dry_run: true,
        ..MongoSummary::default()
    };
    for d in decisions {
        let r = if d.delete {
            MongoResult::WouldDelete
        } else {
            MongoResult::Skipped
        };
        s.push(d, r, d.reason.clone());
    }
    s
}
