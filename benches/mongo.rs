//! MongoDB usage loading at a large installation, generated here into a real SecantusDB
//! server: runs, workspaces with sessions, environments with revisions. Measures our full
//! `sources::mongo::load` against the equivalent server-side work run alone (the runs
//! `$group` aggregation plus the projected workspace/session/revision finds), and resident
//! memory. Run: `cargo bench --bench mongo -- --runs 1000000 --workspaces 100000 --revisions 50000`.

mod common;
use common::{arg, rss_mb};

#[path = "../tests/support/mod.rs"]
mod support;

use futures::TryStreamExt;
use mongodb::bson::{Document, doc, oid::ObjectId};
use registry_cleaner::sources::mongo::{MongoSettings, load};
use std::time::Instant;

async fn insert(db: &mongodb::Database, coll: &str, docs: impl Iterator<Item = Document>) {
    let c = db.collection::<Document>(coll);
    let mut batch = Vec::with_capacity(10_000);
    for d in docs {
        batch.push(d);
        if batch.len() == 10_000 {
            c.insert_many(std::mem::take(&mut batch)).await.expect("insert");
        }
    }
    if !batch.is_empty() {
        c.insert_many(batch).await.expect("insert");
    }
}

fn main() {
    let runs = arg("--runs", 1_000_000);
    let workspaces = arg("--workspaces", 100_000);
    let revisions = arg("--revisions", 50_000);
    let envs = (revisions / 10).max(1);
    let server = support::mongo::MongoServer::start();
    let rt = support::runtime();
    let client = rt.block_on(mongodb::Client::with_uri_str(&server.uri)).expect("client");
    let db = client.database("domino");
    let env_ids: Vec<ObjectId> = (0..envs).map(|_| ObjectId::new()).collect();
    let rev_ids: Vec<ObjectId> = (0..revisions).map(|_| ObjectId::new()).collect();
    let ws_ids: Vec<ObjectId> = (0..workspaces).map(|_| ObjectId::new()).collect();
    let t = Instant::now();
    rt.block_on(async {
        insert(&db, "environments_v2", env_ids.iter().enumerate().map(|(i, id)| doc! {
            "_id": id, "name": format!("env {i}"), "isArchived": i % 7 == 0, "activeRevisionId": rev_ids[i * 10], "visibility": "Global",
        }))
        .await;
        insert(&db, "environment_revisions", rev_ids.iter().enumerate().map(|(i, id)| doc! {
            "_id": id, "environmentId": env_ids[i / 10], "metadata": { "dockerImageName": { "tag": format!("{}-{}", env_ids[i / 10].to_hex(), i % 10), "repository": "dominodatalab/environment" }, "isBuilt": true },
        }))
        .await;
        insert(&db, "workspace", ws_ids.iter().enumerate().map(|(i, id)| doc! {
            "_id": id, "name": format!("ws {i}"), "state": if i % 5 == 0 { "Deleted" } else { "Stopped" },
            "stateUpdatedAt": mongodb::bson::DateTime::from_millis(1_700_000_000_000 + i as i64),
            "configTemplate": { "environmentId": env_ids[i % envs], "environmentRevisionSpec": "ActiveRevision" },
        }))
        .await;
        insert(&db, "workspace_session", ws_ids.iter().enumerate().map(|(i, id)| doc! {
            "workspaceId": id, "environmentId": env_ids[i % envs], "environmentRevisionId": rev_ids[i % revisions], "rawExecutionDisplayStatus": "Stopped",
        }))
        .await;
        insert(&db, "runs", (0..runs).map(|i| doc! {
            "environmentId": env_ids[i % envs], "environmentRevisionId": rev_ids[(i * 7) % revisions],
            "started": mongodb::bson::DateTime::from_millis(1_700_000_000_000 + i as i64),
            "completed": mongodb::bson::DateTime::from_millis(1_700_000_100_000 + i as i64),
            "status": "Succeeded", "projectId": env_ids[(i * 3) % envs],
            "volumeSpecification": { "_t": if i % 9 == 0 { "RunReusableVolumeSpecification" } else { "RunVolumeSpecification" } },
        }))
        .await;
        support::mongo::create_protecting_collections(&db).await;
    });
    let seed_s = t.elapsed().as_secs_f64();

    // The equivalent server-side work alone: the same aggregation and projected finds.
    let t = Instant::now();
    let raw = rt.block_on(async {
        let runs: Vec<Document> = db
            .collection::<Document>("runs")
            .aggregate(vec![
                doc! { "$match": { "environmentId": { "$exists": true }, "environmentRevisionId": { "$exists": true }, "volumeSpecification._t": { "$ne": "RunReusableVolumeSpecification" } } },
                doc! { "$group": { "_id": { "e": "$environmentId", "r": "$environmentRevisionId" }, "completed": { "$max": "$completed" }, "started": { "$max": "$started" }, "count": { "$sum": 1 } } },
            ])
            .await
            .expect("aggregate")
            .try_collect()
            .await
            .expect("collect");
        // The second runs query: runs still in flight (sessions included).
        let finals: Vec<mongodb::bson::Bson> = registry_cleaner::sources::mongo::FINAL_RUN_STATUSES
            .iter()
            .map(|s| mongodb::bson::Bson::String((*s).into()))
            .collect();
        let in_flight: Vec<Document> = db
            .collection::<Document>("runs")
            .aggregate(vec![
                doc! { "$match": { "environmentId": { "$exists": true }, "environmentRevisionId": { "$exists": true }, "$or": [ { "completed": { "$exists": false } }, { "completed": mongodb::bson::Bson::Null }, { "status": { "$exists": true, "$nin": finals } } ] } },
                doc! { "$group": { "_id": { "e": "$environmentId", "r": "$environmentRevisionId" }, "count": { "$sum": 1 } } },
            ])
            .await
            .expect("aggregate")
            .try_collect()
            .await
            .expect("collect");
        let ws: Vec<Document> = db
            .collection::<Document>("workspace")
            .find(doc! { "state": { "$ne": "Deleted" } })
            .projection(doc! { "name": 1, "stateUpdatedAt": 1, "configTemplate.environmentId": 1, "configTemplate.environmentRevisionSpec": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        let sessions: Vec<Document> = db
            .collection::<Document>("workspace_session")
            .find(doc! {})
            .projection(doc! { "workspaceId": 1, "environmentId": 1, "environmentRevisionId": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        let revs: Vec<Document> = db
            .collection::<Document>("environment_revisions")
            .find(doc! {})
            .projection(doc! { "environmentId": 1, "metadata.dockerImageName": 1, "metadata.isBuilt": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("collect");
        runs.len() + in_flight.len() + ws.len() + sessions.len() + revs.len()
    });
    let raw_s = t.elapsed().as_secs_f64();

    let settings = MongoSettings {
        uri: Some(server.uri.clone()),
        timeout_secs: 600,
        ..MongoSettings::default()
    };
    let rss0 = rss_mb();
    let t = Instant::now();
    let data = rt.block_on(load(&settings)).expect("load");
    let load_s = t.elapsed().as_secs_f64();
    let rss = rss_mb() - rss0;
    println!(
        "MongoDB benchmark: {runs} runs, {workspaces} workspaces (+ sessions), {revisions} revisions, {envs} environments; SecantusDB on loopback; seeded in {seed_s:.0} s\n"
    );
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!("| server-side aggregation + projected finds alone | {raw_s:.2} s ({raw} documents returned) | |");
    println!("| our full usage load (`sources::mongo::load`) | {load_s:.2} s | ≤ 1.5× the line above |");
    println!("| ratio | {:.2} | ≤ 1.5 |", load_s / raw_s);
    println!(
        "| resident memory added by the load | {rss:.0} MB ({} run groups, {} workspaces kept) | bounded by the result |",
        data.usage.runs.len(),
        data.usage.workspaces.len()
    );
}
