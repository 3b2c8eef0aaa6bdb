//! Executing the Mongo cleanup decided by [`crate::plan::mongo_cleanup`] after a registry
//! deletion, and restoring from its backup.
//!
//! Per document: read it, append `{collection, document}` (canonical extended JSON, so
//! ObjectIds, dates and number types round-trip) to the backup file and fsync, then
//! `delete_one({_id})`, then the audit line. Parents are re-checked against the live database
//! just before their delete (no remaining children, no live model naming them). A crash at any
//! point leaves every deleted document in the backup; a re-run finishes the job, since
//! documents already gone count as already deleted.

use super::audit::AuditLog;
use super::execute::{ItemOutcome, Outcome};
use crate::model::{Inventory, ObjectId};
use crate::plan::mongo_cleanup::{Collection, Decision, RegistryTag, decide};
use crate::sources::mongo::{self, MongoSettings};
use mongodb::Database;
use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// One line of the backup file.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackupLine {
    pub collection: String,
    /// The whole document in canonical extended JSON.
    pub document: serde_json::Value,
}

/// What happened to one record.
#[derive(Debug, Clone, Serialize)]
pub struct MongoItem {
    pub collection: Collection,
    pub id: String,
    pub result: MongoResult,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MongoResult {
    Deleted,
    AlreadyDeleted,
    WouldDelete,
    Skipped,
    Failed,
}

impl MongoResult {
    fn as_str(self) -> &'static str {
        match self {
            MongoResult::Deleted => "deleted",
            MongoResult::AlreadyDeleted => "already-deleted",
            MongoResult::WouldDelete => "would-delete",
            MongoResult::Skipped => "skipped",
            MongoResult::Failed => "failed",
        }
    }
}

/// The `mongo` section of the results JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MongoSummary {
    pub dry_run: bool,
    /// The backup file (only when something was deleted).
    pub backup: Option<String>,
    /// Documents deleted, per collection.
    pub deleted: BTreeMap<&'static str, usize>,
    pub already_deleted: usize,
    pub would_delete: usize,
    pub skipped: usize,
    pub failed: usize,
    pub items: Vec<MongoItem>,
    /// Why the cleanup could not run at all (e.g. MongoDB unreachable after the registry
    /// deletion); the registry results are still reported and re-running the plan resumes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl MongoSummary {
    pub(crate) fn push(&mut self, d: &Decision, result: MongoResult, reason: String) {
        match result {
            MongoResult::Deleted => *self.deleted.entry(d.collection.name()).or_default() += 1,
            MongoResult::AlreadyDeleted => self.already_deleted += 1,
            MongoResult::WouldDelete => self.would_delete += 1,
            MongoResult::Skipped => self.skipped += 1,
            MongoResult::Failed => self.failed += 1,
        }
        self.items.push(MongoItem {
            collection: d.collection,
            id: d.id.to_string(),
            result,
            reason,
        });
    }
}

/// The default backup file: `<output_dir>/mongo-backup-<UTC time>.jsonl`.
pub fn default_backup_path(output_dir: &Path, now: i64) -> PathBuf {
    let stamp: String = crate::report::rfc3339(now)
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    output_dir.join(format!("mongo-backup-{stamp}.jsonl"))
}

/// Registry tags this run removed (`gone`; in a dry run, also those it would remove) and the
/// tags that still exist (the fresh scan minus `gone`).
pub fn tag_states(inv: &Inventory, items: &[ItemOutcome], dry_run: bool) -> (Vec<RegistryTag>, Vec<RegistryTag>) {
    let gone: Vec<RegistryTag> = items
        .iter()
        .filter(|i| i.is_gone() || dry_run && i.outcome == Outcome::WouldDelete)
        .flat_map(|i| i.tags.iter().map(|t| RegistryTag::new(&i.repository, t)))
        .collect();
    let gone_set: std::collections::HashSet<&RegistryTag> = gone.iter().collect();
    let present = inv
        .tag_ids()
        .map(|t| {
            let tag = inv.tag(t);
            RegistryTag::new(&inv.repo(tag.repo).name, &tag.name)
        })
        .filter(|t| !gone_set.contains(t))
        .collect();
    (gone, present)
}

/// After a registry deletion: read Mongo afresh, decide, and (with `apply`) back up and delete.
/// With `apply`, every tag counted gone is HEADed first: one that still resolves (moved onto
/// another digest after the last look, or re-pushed) or cannot be checked counts as present,
/// so its records stay.
#[allow(clippy::too_many_arguments)]
pub async fn after_delete(
    settings: &MongoSettings,
    client: &crate::sources::registry::RegistryClient,
    inv: &Inventory,
    items: &[ItemOutcome],
    apply: bool,
    backup: &Path,
    audit: Option<&AuditLog>,
) -> Result<MongoSummary, String> {
    let (mut gone, mut present) = tag_states(inv, items, !apply);
    if apply {
        let mut still = Vec::new();
        for t in std::mem::take(&mut gone) {
            match client.head_manifest(&t.repository, &t.tag).await {
                Ok(None) => gone.push(t),
                Ok(Some(_)) | Err(_) => still.push(t),
            }
        }
        present.extend(still);
    }
    let data = mongo::load(settings).await.map_err(|e| e.to_string())?;
    let decisions = decide(&data, &gone, &present);
    if !apply {
        let mut s = MongoSummary {
            dry_run: true,
            ..MongoSummary::default()
        };
        for d in &decisions {
            let result = if d.delete {
                MongoResult::WouldDelete
            } else {
                MongoResult::Skipped
            };
            s.push(d, result, d.reason.clone());
        }
        return Ok(s);
    }
    let db = mongo::connect(settings).await.map_err(|e| e.to_string())?;
    execute(&db, &decisions, backup, audit).await
}

/// Backs up and deletes every `delete` decision in order; records every decision.
pub async fn execute(
    db: &Database,
    decisions: &[Decision],
    backup_path: &Path,
    audit: Option<&AuditLog>,
) -> Result<MongoSummary, String> {
    let mut s = MongoSummary::default();
    let mut backup: Option<std::fs::File> = None;
    let mut stopped: Option<String> = None;
    // A logged line every 10 s and one at the end (JSON lines without a terminal).
    let total = decisions.iter().filter(|d| d.delete).count();
    let ticker = crate::ops::progress::Ticker::new("mongo cleanup");
    let mut done = 0;
    for d in decisions {
        let (result, reason) = if !d.delete {
            (MongoResult::Skipped, d.reason.clone())
        } else if let Some(why) = &stopped {
            (MongoResult::Skipped, format!("not attempted: {why}"))
        } else {
            match delete_one(db, d, backup_path, &mut backup).await {
                Ok((r, why)) => (r, why),
                Err(Step::Backup(e)) => {
                    stopped = Some(format!("the backup file could not be written ({e})"));
                    (MongoResult::Failed, format!("backup: {e}"))
                }
                Err(Step::Mongo(e)) => (MongoResult::Failed, e),
            }
        };
        if result == MongoResult::Deleted {
            super::killpoint::reached("mongo-deleted").await;
        }
        if let Some(a) = audit
            && stopped.is_none()
        {
            let target = format!("{}/{}", d.collection.name(), d.id);
            let error = matches!(result, MongoResult::Failed | MongoResult::Skipped).then_some(reason.as_str());
            // An audit failure stops further deletes; what was done so far stays in the
            // summary (the backup file has every document already deleted).
            if let Err(e) = a.record("mongo-delete", &target, result.as_str(), error) {
                stopped = Some(format!("the audit log could not be written ({e})"));
                s.error = Some(format!("stopped: writing the audit log {}: {e}", a.path().display()));
                s.failed += 1;
            }
        }
        s.push(d, result, reason);
        if d.delete {
            done += 1;
            ticker.update(done, total);
        }
    }
    if total > 0 {
        ticker.finish(done, total);
    }
    if backup.is_some() {
        s.backup = Some(backup_path.display().to_string());
    }
    Ok(s)
}

enum Step {
    Backup(String),
    Mongo(String),
}

/// Both spellings Domino uses for an id: BSON ObjectId and 24-hex string.
fn id_forms(id: ObjectId) -> Bson {
    Bson::Array(vec![
        Bson::ObjectId(mongodb::bson::oid::ObjectId::from_bytes(id.bytes())),
        Bson::String(id.to_string()),
    ])
}

async fn count(db: &Database, coll: &str, filter: Document) -> Result<u64, Step> {
    db.collection::<Document>(coll)
        .count_documents(filter)
        .await
        .map_err(|e| Step::Mongo(format!("counting {coll}: {e}")))
}

/// The live re-check for parents: what still depends on them right now.
async fn still_needed(db: &Database, d: &Decision) -> Result<Option<String>, Step> {
    let ids = id_forms(d.id);
    Ok(match d.collection {
        Collection::ModelVersions => None,
        Collection::Models => {
            let n = count(
                db,
                "model_versions",
                doc! { "$or": [ { "modelId.value": { "$in": ids.clone() } }, { "modelId": { "$in": ids } } ] },
            )
            .await?;
            (n > 0).then(|| format!("MongoDB still has {n} model version(s) of it"))
        }
        Collection::EnvironmentRevisions => {
            let versions: Vec<Document> = find_all(
                db,
                "model_versions",
                doc! { "environmentRevisionId": { "$in": ids } },
                doc! { "modelId": 1 },
            )
            .await?;
            let mut live = None;
            for v in &versions {
                let model = match v.get("modelId") {
                    Some(Bson::Document(m)) => m.get("value").cloned(),
                    other => other.cloned(),
                };
                let Some(model) = model else { continue };
                let archived = db
                    .collection::<Document>("models")
                    .find_one(doc! { "_id": model.clone(), "isArchived": true })
                    .await
                    .map_err(|e| Step::Mongo(format!("reading models: {e}")))?;
                if archived.is_none() {
                    live = Some(format!("a model version of unarchived model {model} references it"));
                    break;
                }
            }
            live
        }
        Collection::Environments => {
            let revs = count(
                db,
                "environment_revisions",
                doc! { "environmentId": { "$in": ids.clone() } },
            )
            .await?;
            let models = count(
                db,
                "models",
                doc! { "environmentId": { "$in": ids }, "isArchived": { "$ne": true } },
            )
            .await?;
            if revs > 0 {
                Some(format!("MongoDB still has {revs} revision(s) of it"))
            } else if models > 0 {
                Some(format!("{models} non-archived model(s) use it"))
            } else {
                None
            }
        }
    })
}

async fn find_all(db: &Database, coll: &str, filter: Document, projection: Document) -> Result<Vec<Document>, Step> {
    use futures::TryStreamExt as _;
    let read = async {
        db.collection::<Document>(coll)
            .find(filter)
            .projection(projection)
            .await?
            .try_collect()
            .await
    };
    read.await
        .map_err(|e: mongodb::error::Error| Step::Mongo(format!("reading {coll}: {e}")))
}

async fn delete_one(
    db: &Database,
    d: &Decision,
    backup_path: &Path,
    backup: &mut Option<std::fs::File>,
) -> Result<(MongoResult, String), Step> {
    if let Some(why) = still_needed(db, d).await? {
        return Ok((MongoResult::Skipped, why));
    }
    let coll = db.collection::<Document>(d.collection.name());
    let found = coll
        .find_one(doc! { "_id": { "$in": id_forms(d.id) } })
        .await
        .map_err(|e| Step::Mongo(format!("reading {}: {e}", d.collection.name())))?;
    let Some(document) = found else {
        return Ok((MongoResult::AlreadyDeleted, d.reason.clone()));
    };
    let id = document.get("_id").cloned().unwrap_or(Bson::Null);
    append_backup(backup_path, backup, d.collection, document).map_err(|e| Step::Backup(e.to_string()))?;
    super::killpoint::reached("mongo-backed-up").await;
    let res = coll
        .delete_one(doc! { "_id": id })
        .await
        .map_err(|e| Step::Mongo(format!("deleting from {}: {e}", d.collection.name())))?;
    Ok(if res.deleted_count == 1 {
        (MongoResult::Deleted, d.reason.clone())
    } else {
        (MongoResult::AlreadyDeleted, d.reason.clone())
    })
}

/// Appends one document and fsyncs before returning (the delete follows only after this).
/// Public only for `tests/fuzz.rs` (the backup round trip).
#[doc(hidden)]
pub fn append_backup(
    path: &Path,
    file: &mut Option<std::fs::File>,
    collection: Collection,
    document: Document,
) -> std::io::Result<()> {
    if file.is_none() {
        // Whole Domino documents: owner-only, directory fsynced on create.
        *file = Some(crate::report::files::open_private_append(path)?);
    }
    let line = BackupLine {
        collection: collection.name().to_string(),
        document: Bson::Document(document).into_canonical_extjson(),
    };
    let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    let f = file
        .as_mut()
        .ok_or_else(|| std::io::Error::other("backup file not open"))?;
    f.write_all(&bytes)?;
    f.sync_data()
}

/// Result of `restore`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RestoreSummary {
    pub backup: String,
    /// Documents inserted, per collection.
    pub restored: BTreeMap<String, usize>,
    /// Documents whose `_id` already existed (left as they are).
    pub already_present: usize,
}

/// Parses a backup file; errors name the file and line.
pub fn read_backup(path: &Path) -> Result<Vec<(Collection, Document)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read backup file: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", path.display(), i + 1);
        let parsed: BackupLine = serde_json::from_str(line).map_err(|e| format!("{at}: not a backup line: {e}"))?;
        let collection = Collection::parse(&parsed.collection)
            .ok_or_else(|| format!("{at}: unknown collection {:?}", parsed.collection))?;
        let document = match Bson::try_from(parsed.document) {
            Ok(Bson::Document(d)) if d.contains_key("_id") => d,
            Ok(_) => return Err(format!("{at}: the document is not an object with an _id")),
            Err(e) => return Err(format!("{at}: bad extended JSON: {e}")),
        };
        out.push((collection, document));
    }
    Ok(out)
}

/// Re-inserts every document of a backup; an existing `_id` is left as is and counted.
pub async fn restore(db: &Database, path: &Path, docs: Vec<(Collection, Document)>) -> Result<RestoreSummary, String> {
    let mut s = RestoreSummary {
        backup: path.display().to_string(),
        ..RestoreSummary::default()
    };
    for (collection, document) in docs {
        let coll = db.collection::<Document>(collection.name());
        let id = document.get("_id").cloned().unwrap_or(Bson::Null);
        let exists = coll
            .find_one(doc! { "_id": id.clone() })
            .await
            .map_err(|e| format!("reading {}: {e}", collection.name()))?;
        if exists.is_some() {
            s.already_present += 1;
            continue;
        }
        match coll.insert_one(document).await {
            Ok(_) => {
                *s.restored.entry(collection.name().to_string()).or_default() += 1;
                super::killpoint::reached("restore-inserted").await;
            }
            Err(e) if is_duplicate(&e) => s.already_present += 1,
            Err(e) => return Err(format!("inserting into {} ({id}): {e}", collection.name())),
        }
    }
    Ok(s)
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().all(|w| w.code == 11000),
        _ => e.to_string().contains("E11000"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::DateTime;

    #[test]
    fn backup_lines_round_trip_ids_dates_and_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl");
        let oid = mongodb::bson::oid::ObjectId::parse_str("66000000000000000000000b").unwrap();
        let document = doc! { "_id": oid, "at": DateTime::from_millis(1_700_000_000_123), "n": 3i32, "big": 5i64, "x": 1.5, "nested": { "arr": [oid, "s"] } };
        let mut f = None;
        append_backup(&path, &mut f, Collection::Models, document.clone()).unwrap();
        append_backup(&path, &mut f, Collection::Environments, doc! { "_id": "plain" }).unwrap();
        let back = read_backup(&path).unwrap();
        assert_eq!(back[0], (Collection::Models, document));
        assert_eq!(back[1].0, Collection::Environments);
    }

    #[test]
    fn malformed_backups_name_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.jsonl");
        std::fs::write(
            &path,
            "{\"collection\":\"models\",\"document\":{\"_id\":{\"$oid\":\"66000000000000000000000b\"}}}\n\nnot json\n",
        )
        .unwrap();
        let e = read_backup(&path).unwrap_err();
        assert!(e.contains("b.jsonl:3: not a backup line"), "{e}");
        std::fs::write(&path, "{\"collection\":\"users\",\"document\":{\"_id\":1}}\n").unwrap();
        assert!(
            read_backup(&path)
                .unwrap_err()
                .contains("b.jsonl:1: unknown collection")
        );
        std::fs::write(&path, "{\"collection\":\"models\",\"document\":{\"name\":1}}\n").unwrap();
        assert!(
            read_backup(&path)
                .unwrap_err()
                .contains("b.jsonl:1: the document is not an object with an _id")
        );
        let missing = read_backup(&dir.path().join("nope.jsonl")).unwrap_err();
        assert!(missing.contains("nope.jsonl: cannot read backup file"), "{missing}");
    }

    #[test]
    fn the_default_backup_name_carries_the_time_only() {
        let p = default_backup_path(Path::new("reports"), 1_760_000_000);
        assert_eq!(p, Path::new("reports/mongo-backup-20251009T085320Z.jsonl"));
    }
}
