//! Progress without a terminal for the Mongo cleanup: against a real SecantusDB, the cleanup
//! logs a progress event (a JSON line with `kind`, `what`, `done`, `total`) when it ends, and
//! counts only the documents it was asked to delete.

mod support;

use mongodb::bson::{doc, oid::ObjectId as BsonId};
use registry_cleaner::model::ObjectId;
use registry_cleaner::plan::mongo_cleanup::{Collection, Decision};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn mongo_cleanup_logs_a_progress_line_a_collector_can_parse() {
    let mongo = support::mongo::MongoServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = rt.block_on(async {
        let client = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        client.database("domino")
    });
    let ids: Vec<ObjectId> = (1..=4u8).map(|n| ObjectId::from_bytes([n; 12])).collect();
    rt.block_on(async {
        let coll = db.collection::<mongodb::bson::Document>("model_versions");
        for id in &ids {
            coll.insert_one(doc! { "_id": BsonId::from_bytes(id.bytes()), "modelId": { "value": BsonId::new() } })
                .await
                .unwrap();
        }
    });
    let decisions: Vec<Decision> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| Decision {
            collection: Collection::ModelVersions,
            id: *id,
            delete: i != 3, // the last one is kept: it is not counted
            reason: "image deleted".into(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("backup.jsonl");
    let buf = Buf::default();
    let out = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || buf.clone())
        .event_format(registry_cleaner::logging::JsonLines)
        .finish();
    let summary = tracing::subscriber::with_default(sub, || {
        rt.block_on(registry_cleaner::ops::mongo_cleanup::execute(
            &db, &decisions, &backup, None,
        ))
    })
    .expect("cleanup");
    assert_eq!(summary.deleted.get("model_versions"), Some(&3), "{summary:?}");
    let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = (text.lines())
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .filter(|v: &serde_json::Value| v["kind"] == "progress")
        .collect();
    let last = lines.last().unwrap_or_else(|| panic!("no progress line in {text}"));
    assert_eq!(last["what"], "mongo cleanup");
    assert_eq!(
        (last["done"].as_u64(), last["total"].as_u64()),
        (Some(3), Some(3)),
        "{last}"
    );
    assert!(
        last["message"].as_str().unwrap().starts_with("mongo cleanup: 3/3 ("),
        "{last}"
    );
    assert!(last["rate"].is_number() && last.get("eta_secs").is_some(), "{last}");
}
