//! The small Domino world of the Mongo tests: eight archived images (two environments with
//! two revisions each, two models with two versions each) and the Mongo documents naming them.

use mongodb::bson::{DateTime, Document, doc, oid::ObjectId as BsonId};
use registry_cleaner::world::{ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget};

pub const NOW: i64 = 1_760_000_000;
pub const ENV: &str = "dominodatalab/environment";
pub const MODEL: &str = "dominodatalab/model";
pub const CREATED_MS: i64 = 1_700_000_000_123;

pub fn id(n: u8) -> BsonId {
    let mut b = [0u8; 12];
    b[0] = 0x66;
    b[11] = n;
    BsonId::from_bytes(b)
}

pub fn env_tag(env: u8, rev: u8) -> String {
    format!("{}-{rev}", id(env).to_hex())
}

pub fn model_tag(model: u8, v: u8) -> String {
    format!("{}-v{v}-20250101120000_abc", id(model).to_hex())
}

/// Env 1 (revisions 11, 12), env 2 (21, 22), model 50 (versions 51, 52), model 60 (61, 62);
/// all archived. Every revision/version has its own image.
pub fn specs() -> Vec<TagSpec> {
    let mut out = Vec::new();
    let mut seed = 10;
    let mut push = |repo: &str, tag: String| {
        seed += 1;
        out.push(TagSpec {
            repository: repo.into(),
            tag: tag.clone(),
            target: TagTarget::Image(ImageSpec {
                layers: vec![LayerSpec { seed: 1, size: 5_000 }, LayerSpec { seed, size: 2_000 }],
                created: NOW - 30 * 86_400,
                flavor: MediaFlavor::Docker,
                architecture: "amd64".into(),
                label: tag,
            }),
        });
    };
    for (env, rev) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
        push(ENV, env_tag(env, rev));
    }
    for (m, v) in [(50, 1), (50, 2), (60, 1), (60, 2)] {
        push(MODEL, model_tag(m, v));
    }
    out
}

pub async fn seed(uri: &str) {
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    let db = client.database("domino");
    super::mongo::create_protecting_collections(&db).await;
    let insert = async |coll: &str, docs: Vec<Document>| {
        db.collection::<Document>(coll).insert_many(docs).await.expect("insert");
    };
    let created = DateTime::from_millis(CREATED_MS);
    insert(
        "environments_v2",
        vec![
            doc! { "_id": id(1), "name": "Gone", "isArchived": true, "activeRevisionId": id(12), "ownerId": id(200), "created": created },
            doc! { "_id": id(2), "name": "Half", "isArchived": true, "activeRevisionId": id(22), "ownerId": id(200), "created": created },
        ],
    )
    .await;
    let rev = |n: u8, env: u8, no: u8| {
        doc! { "_id": id(n), "environmentId": id(env), "created": created,
        "metadata": { "dockerImageName": { "repository": format!("docker-registry:5000/{ENV}"), "tag": env_tag(env, no) }, "isBuilt": true } }
    };
    insert(
        "environment_revisions",
        vec![rev(11, 1, 1), rev(12, 1, 2), rev(21, 2, 1), rev(22, 2, 2)],
    )
    .await;
    insert(
        "models",
        vec![
            doc! { "_id": id(50), "name": "Churn", "isArchived": true, "environmentId": id(1) },
            doc! { "_id": id(60), "name": "Fraud", "isArchived": true, "environmentId": id(2) },
        ],
    )
    .await;
    let version = |n: u8, model: u8, v: u8, revision: u8| {
        doc! { "_id": id(n), "modelId": { "value": id(model) }, "environmentRevisionId": id(revision),
        "metadata": { "builds": [ { "slug": { "image": { "repository": MODEL, "tag": format!("{}-v{v}", id(model).to_hex()) } } } ] } }
    };
    insert(
        "model_versions",
        vec![
            version(51, 50, 1, 11),
            version(52, 50, 2, 12),
            version(61, 60, 1, 21),
            version(62, 60, 2, 22),
        ],
    )
    .await;
    insert(
        "users",
        vec![doc! { "_id": id(200), "fullName": "Ann", "loginId": { "id": "ann" } }],
    )
    .await;
}
