//! The Mongo, Kubernetes and Keycloak adapters against real (or, for Keycloak, faithful fake)
//! servers that the tests start themselves, then every category computed from what they read.

mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use mongodb::bson::{DateTime, Document, doc, oid::ObjectId as BsonId};
use registry_cleaner::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, ObjectId};
use registry_cleaner::plan::{CategoryId, CategoryResult, CategoryStatus, Policy, SourceState, SourcesData, evaluate};
use registry_cleaner::sources::keycloak::{Directory, KeycloakSettings};
use registry_cleaner::sources::kube::KubeSettings;
use registry_cleaner::sources::mongo::MongoSettings;
use registry_cleaner::sources::{keycloak, kube as kube_source, mongo};
use serde_json::json;

const ENV_REPO: &str = "dominodatalab/environment";
const MODEL_REPO: &str = "dominodatalab/model";
const DAY_MS: i64 = 86_400_000;
const NOW: i64 = 1_800_000_000;

fn id(n: u8) -> BsonId {
    let mut b = [0u8; 12];
    b[0] = 0x66;
    b[11] = n;
    BsonId::from_bytes(b)
}

fn oid(n: u8) -> ObjectId {
    ObjectId::from_bytes(id(n).bytes())
}

fn tag(env: u8, n: u8) -> String {
    format!("{}-{n}", id(env).to_hex())
}

fn date_days_ago(days: i64) -> DateTime {
    DateTime::from_millis(NOW * 1000 - days * DAY_MS)
}

fn revision(n: u8, env: u8, rev_no: u8, built: bool) -> Document {
    doc! {
        "_id": id(n), "environmentId": id(env),
        "metadata": { "dockerImageName": { "repository": format!("docker-registry:5000/{ENV_REPO}"), "tag": tag(env, rev_no) }, "isBuilt": built, "authorId": id(200) },
    }
}

/// A Domino database: archived env 1, live env 2 (used by a recent run), private env 3 of a
/// deactivated user that is a project default, env 4 cloned from env 1, archived model 50 with
/// a short stored slug, deployed model 60.
async fn seed_mongo(uri: &str) {
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    let db = client.database("domino");
    let insert = async |coll: &str, docs: Vec<Document>| {
        db.collection::<Document>(coll).insert_many(docs).await.expect("insert");
    };
    insert("environments_v2", vec![
        doc! { "_id": id(1), "name": "Spark 3", "isArchived": true, "activeRevisionId": id(12), "ownerId": id(200), "visibility": "Global" },
        doc! { "_id": id(2), "name": "Python", "isArchived": false, "activeRevisionId": id(22), "ownerId": id(200), "visibility": "Global" },
        doc! { "_id": id(3), "name": "Mine", "isArchived": false, "activeRevisionId": id(32), "ownerId": id(201), "visibility": "Private" },
        doc! { "_id": id(4), "name": "Clone", "isArchived": false, "activeRevisionId": id(41), "ownerId": id(200), "visibility": "Global" },
    ]).await;
    let mut clone = revision(41, 4, 1, true);
    clone.insert("clonedEnvironmentRevisionId", id(11));
    insert(
        "environment_revisions",
        vec![
            revision(11, 1, 1, true),
            revision(12, 1, 2, true),
            revision(13, 1, 3, false),
            revision(21, 2, 1, true),
            revision(22, 2, 2, true),
            revision(23, 2, 3, true),
            revision(31, 3, 1, true),
            revision(32, 3, 2, true),
            clone,
        ],
    )
    .await;
    insert("models", vec![
        doc! { "_id": id(50), "name": "Churn", "isArchived": true, "environmentId": id(2), "metadata": { "createdBy": id(200) } },
        doc! { "_id": id(60), "name": "Fraud", "isArchived": false, "environmentId": id(2), "collaboratorSettings": [{ "collaboratorId": id(201), "role": "Owner" }] },
    ]).await;
    insert(
        "builds",
        vec![
            doc! { "_id": id(90), "status": "Failed" },
            doc! { "_id": id(91), "status": "Succeeded" },
        ],
    )
    .await;
    insert("model_versions", vec![
        doc! { "_id": id(51), "modelId": { "value": id(50) }, "environmentRevisionId": id(21),
               "metadata": { "builds": [{ "slug": { "image": { "repository": MODEL_REPO, "tag": format!("{}-v1", id(50).to_hex()) } }, "buildId": [{ "value": id(91) }] }] } },
        doc! { "_id": id(61), "modelId": { "value": id(60) }, "environmentRevisionId": id(21),
               "metadata": { "builds": [
                   { "slug": { "image": { "tag": format!("{}-v1-111_a", id(60).to_hex()) } }, "buildId": [{ "value": id(91) }] },
                   { "slug": { "image": { "tag": format!("{}-v1-222_failed", id(60).to_hex()) } }, "buildId": [{ "value": id(90) }] },
               ] } },
    ]).await;
    insert("sagas", vec![
        doc! { "parameters": { "modelVersionId": id(61) }, "sagaName": "StartModelVersion", "state": "succeeded", "isCompleted": true, "started": date_days_ago(3) },
        doc! { "parameters": { "modelVersionId": id(61) }, "sagaName": "StopModelVersion", "state": "succeeded", "isCompleted": true, "started": date_days_ago(9) },
    ]).await;
    insert(
        "users",
        vec![
            doc! { "_id": id(200), "fullName": "Ann Admin", "loginId": { "id": "ann" } },
            doc! { "_id": id(201), "fullName": "Dee Parted", "loginId": { "id": "dee" } },
        ],
    )
    .await;
    insert("runs", vec![
        doc! { "environmentId": id(2), "environmentRevisionId": id(23), "started": date_days_ago(2), "completed": date_days_ago(1), "volumeSpecification": { "_t": "RunVolumeSpecification" } },
        doc! { "environmentId": id(2), "environmentRevisionId": id(23), "started": date_days_ago(40) },
        doc! { "environmentId": id(1), "environmentRevisionId": id(11), "volumeSpecification": { "_t": "RunReusableVolumeSpecification" } },
    ]).await;
    insert("workspace", vec![
        doc! { "_id": id(70), "name": "ws-live", "state": "Stopped", "configTemplate": { "environmentId": id(2), "environmentRevisionSpec": format!("SomeRevision({})", id(21).to_hex()) } },
        doc! { "_id": id(71), "name": "ws-gone", "state": "Deleted", "configTemplate": { "environmentId": id(1), "environmentRevisionSpec": "ActiveRevision" } },
    ]).await;
    insert(
        "workspace_session",
        vec![doc! { "workspaceId": id(71), "environmentRevisionId": id(12) }],
    )
    .await;
    insert("projects", vec![
        doc! { "_id": id(80), "name": "churn-project", "isArchived": false, "overrideV2EnvironmentId": id(3), "defaultEnvironmentRevisionSpec": "ActiveRevision" },
        doc! { "_id": id(81), "name": "old-project", "isArchived": true, "overrideV2EnvironmentId": id(1) },
    ]).await;
    insert(
        "scheduler_jobs",
        vec![doc! { "_id": id(85), "jobName": "nightly", "jobDataPlain": { "overrideEnvironmentId": id(4) } }],
    )
    .await;
}

/// A registry holding every image the database names, plus a stray tag and two tags on one
/// digest; all pushed long ago.
fn inventory() -> Inventory {
    let mut tags: Vec<(&str, String, String)> = vec![];
    for (env, n) in [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 1), (3, 2), (4, 1)] {
        tags.push((ENV_REPO, tag(env, n), tag(env, n)));
    }
    tags.push((ENV_REPO, "stray".into(), "stray".into()));
    tags.push((ENV_REPO, "stray-alias".into(), tag(1, 2)));
    tags.push((MODEL_REPO, format!("{}-v1-2025_abc", id(50).to_hex()), "m50".into()));
    tags.push((MODEL_REPO, format!("{}-v1-111_a", id(60).to_hex()), "m60".into()));
    let mut b = InventoryBuilder::new("docker-registry:5000");
    for (repo, name, label) in tags {
        let digest = b.digest(&registry_cleaner::world::sha256_digest(label.as_bytes()));
        let layer = b.digest(&registry_cleaner::world::sha256_digest(format!("l{label}").as_bytes()));
        b.manifest(Manifest {
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 400,
            kind: ManifestKind::Image {
                config: Blob {
                    digest: layer,
                    size: 10,
                },
                layers: vec![Blob {
                    digest: layer,
                    size: 100,
                }],
            },
            created: Some(NOW - 100 * 86_400),
        });
        let r = b.repo(repo);
        b.tag(r, &name, digest);
    }
    b.finish()
}

fn digest_of(label: &str) -> String {
    registry_cleaner::world::sha256_digest(label.as_bytes())
}

fn names(inv: &Inventory, r: &CategoryResult) -> Vec<String> {
    let mut v: Vec<String> = r.candidates.iter().map(|c| inv.tag(c.tag).name.clone()).collect();
    v.sort();
    v
}

fn protected(inv: &Inventory, r: &CategoryResult, tag: &str) -> String {
    r.protected
        .iter()
        .find(|p| inv.tag(p.tag).name == tag)
        .map(|p| p.protected_by.join(" | "))
        .unwrap_or_default()
}

async fn kube_client(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// A pod that the scheduler would never run here; its status is patched to what a kubelet
/// would report.
async fn pod(client: &kube::Client, ns: &str, name: &str, spec: serde_json::Value, status: serde_json::Value) {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let p: Pod = serde_json::from_value(json!({ "metadata": { "name": name }, "spec": spec })).unwrap();
    api.create(&PostParams::default(), &p).await.expect("create pod");
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("patch status");
}

fn keycloak_seed() -> serde_json::Value {
    json!({ "realms": [{ "realm": "DominoRealm", "users": [
        { "username": "ann", "enabled": true, "attributes": { "domino-user-id": [id(200).to_hex()] } },
        { "username": "dee", "enabled": false, "attributes": { "domino-user-id": [id(201).to_hex()] } },
        { "username": "no-domino", "enabled": false },
        { "username": "u4", "enabled": true }, { "username": "u5", "enabled": true },
    ] }] })
}

fn keycloak_settings(url: &str) -> KeycloakSettings {
    KeycloakSettings {
        host: format!("{url}/"),
        password: Some("admin".into()),
        page_size: 2,
        ..KeycloakSettings::default()
    }
}

#[tokio::test]
async fn every_category_from_real_mongo_kubernetes_and_keycloak() {
    let server = support::mongo::MongoServer::start();
    seed_mongo(&server.uri).await;
    let data = mongo::load(&MongoSettings {
        uri: Some(server.uri.clone()),
        ..MongoSettings::default()
    })
    .await
    .expect("mongo loads");
    assert_eq!(data.environments.len(), 4);
    assert!(
        !data.revisions.iter().find(|r| r.id == oid(13)).unwrap().built,
        "failed build read as such"
    );
    let v61 = data.versions.iter().find(|v| v.id == oid(61)).unwrap();
    assert_eq!(
        v61.slugs,
        vec![format!("{}-v1-111_a", id(60).to_hex())],
        "failed build's slug dropped"
    );
    assert_eq!(data.usage.active_model_versions.len(), 1);
    // Finished reusable-volume runs stay out of the statistics; the session run on 1-1 has no
    // completion, so it is in flight and counted apart (issue 11.2).
    assert_eq!(data.usage.runs.len(), 2, "{:?}", data.usage.runs);
    let r23 = data.usage.runs.iter().find(|r| r.revision == oid(23)).unwrap();
    assert_eq!(r23.count, 2, "runs grouped per revision");
    assert_eq!(r23.in_flight, 1, "the run started 40 days ago never completed");
    let r11 = data.usage.runs.iter().find(|r| r.revision == oid(11)).unwrap();
    assert_eq!((r11.count, r11.in_flight), (0, 1), "{r11:?}");
    assert_eq!(data.usage.workspaces.len(), 1, "deleted workspaces are excluded");
    assert_eq!(
        data.usage.defaults.len(),
        2,
        "archived project excluded; optional collections absent"
    );

    // Kubernetes: an archived revision still running, referenced only by digest.
    let k = support::kube::shared();
    let client = kube_client(&k.kubeconfig).await;
    namespace(&client, "dom-all").await;
    let spec = json!({ "containers": [{ "name": "run", "image": format!("docker-registry:5000/{ENV_REPO}@{}", digest_of(&tag(1, 1))) }] });
    pod(&client, "dom-all", "run-1", spec, json!({ "phase": "Running" })).await;
    let kube_settings = KubeSettings {
        kubeconfig: Some(k.kubeconfig.display().to_string()),
        context: None,
        namespaces: vec!["dom-all".into()],
    };
    let workloads = kube_source::load(&kube_settings).await.expect("kube loads");

    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(), 60);
    let users = keycloak::load(&keycloak_settings(&kc.url))
        .await
        .expect("keycloak loads");
    assert_eq!(users.len(), 5);

    let inv = inventory();
    let sources = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Ok(data),
        kubernetes: SourceState::Ok(workloads),
        keycloak: SourceState::Ok(users),
    };
    let policy = Policy {
        keep_revisions: 1,
        unused_since_days: Some(30),
        ..Policy::default()
    };
    let results = evaluate(&inv, &sources, &policy, NOW);
    let get = |c: CategoryId| results.iter().find(|r| r.id == c).unwrap();
    // untagged-manifests needs a storage inventory; this one is the HTTP kind.
    for r in results.iter().filter(|r| r.id != CategoryId::UntaggedManifests) {
        assert_eq!(r.status, CategoryStatus::Ok, "{}", r.id);
    }

    // Archived env 1: 1-1 runs in a pod by digest and is the clone source of live env 4's
    // revision; 1-2 shares its digest with the stray alias (which nothing deletes).
    let archived = get(CategoryId::ArchivedEnvironments);
    assert!(names(&inv, archived).is_empty());
    let why = protected(&inv, archived, &tag(1, 1));
    assert!(
        why.contains("used by Pod dom-all/run-1 container run (by digest"),
        "{why}"
    );
    assert!(why.contains("clone source of kept revision"), "{why}");
    assert!(
        protected(&inv, archived, &tag(1, 2)).contains("shares digest with tag dominodatalab/environment:stray-alias")
    );

    // Archived model 50, stored in short form, matches its full registry tag.
    assert_eq!(
        names(&inv, get(CategoryId::ArchivedModels)),
        vec![format!("{}-v1-2025_abc", id(50).to_hex())]
    );

    // Env 3: private, owner deactivated; its active revision is a project default.
    let deact = get(CategoryId::DeactivatedOwnerEnvironments);
    assert_eq!(names(&inv, deact), vec![tag(3, 1)]);
    assert!(protected(&inv, deact, &tag(3, 2)).contains("default environment of project 'churn-project'"));

    // Old revisions with keep 1: env 2 keeps 2-3; 2-1 is pinned by a workspace and a deployed
    // model version, 2-2 is active; env 3 proposes 3-1.
    let old = get(CategoryId::OldRevisions);
    assert_eq!(names(&inv, old), vec![tag(3, 1)]);
    let why = protected(&inv, old, &tag(2, 1));
    assert!(
        why.contains("workspace 'ws-live'") && why.contains("is running"),
        "{why}"
    );

    // No live environment is unused: env 2 has a recent run, 3 is a project default, 4 a job.
    assert!(names(&inv, get(CategoryId::UnusedEnvironments)).is_empty());
    // The stray tags: only the alias is unreferenced, and it shares a digest with the
    // archived env's 1-2, which this category keeps.
    let unref = get(CategoryId::UnreferencedTags);
    assert_eq!(names(&inv, unref), vec!["stray".to_string()]);
    assert!(protected(&inv, unref, "stray-alias").starts_with("shares digest with tag"));
    // Orphans: nothing is missing from the registry except failed builds, which do not count.
    assert!(get(CategoryId::OrphanedReferences).records.is_empty());
}

#[tokio::test]
async fn kubernetes_scan_reads_every_container_kind_status_digests_and_templates() {
    let k = support::kube::shared();
    let client = kube_client(&k.kubeconfig).await;
    let ns = "dom-kinds";
    namespace(&client, ns).await;
    let img = |t: &str| format!("docker-registry:5000/{ENV_REPO}:{t}");
    let spec = json!({ "initContainers": [{ "name": "init", "image": img("init-tag") }], "containers": [{ "name": "main", "image": img("main-tag") }] });
    let status = json!({ "phase": "Running", "containerStatuses": [{
        "name": "main", "image": img("main-tag"), "imageID": format!("docker-pullable://docker-registry:5000/{ENV_REPO}@sha256:abc"),
        "ready": true, "restartCount": 0 }] });
    pod(&client, ns, "run-a", spec, status).await;
    pod(
        &client,
        ns,
        "pending",
        json!({ "containers": [{ "name": "c", "image": img("pending-tag") }] }),
        json!({ "phase": "Pending" }),
    )
    .await;
    pod(
        &client,
        ns,
        "done",
        json!({ "containers": [{ "name": "c", "image": img("done-tag") }] }),
        json!({ "phase": "Succeeded" }),
    )
    .await;
    let template = |t: &str| json!({ "metadata": { "labels": { "app": "x" } }, "spec": { "containers": [{ "name": "c", "image": img(t) }] } });
    let dep: Deployment = serde_json::from_value(json!({ "metadata": { "name": "web" }, "spec": { "selector": { "matchLabels": { "app": "x" } }, "template": template("deploy-tag") } })).unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &dep)
        .await
        .expect("deployment");
    // The 1.20 apiserver serves CronJob only as batch/v1beta1: the scan must fall back to it.
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1beta1", "CronJob"));
    let mut cj = DynamicObject::new("nightly", &ar);
    cj.data = json!({ "spec": { "schedule": "0 0 * * *", "jobTemplate": { "spec": { "template": { "spec": {
        "restartPolicy": "Never", "containers": [{ "name": "c", "image": img("cron-tag") }] } } } } } });
    Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar)
        .create(&PostParams::default(), &cj)
        .await
        .expect("cronjob");

    let settings = KubeSettings {
        kubeconfig: Some(k.kubeconfig.display().to_string()),
        context: None,
        namespaces: vec![ns.into()],
    };
    let w = kube_source::load(&settings).await.expect("kube loads");
    let mut seen: Vec<String> = w
        .images
        .iter()
        .map(|i| {
            format!(
                "{} {}/{} {}",
                i.evidence.kind,
                i.evidence.name,
                i.evidence.container,
                i.image.tag.clone().or(i.image.digest.clone()).unwrap_or_default()
            )
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        vec![
            "CronJob nightly/c cron-tag",
            "Deployment web/c deploy-tag",
            "Pod pending/c pending-tag",
            "Pod run-a/init init-tag",
            "Pod run-a/main main-tag",
        ]
    );
    let by_digest = w
        .images
        .iter()
        .find(|i| i.image.digest.is_some())
        .expect("imageID digest recorded");
    assert_eq!(by_digest.image.digest.as_deref(), Some("sha256:abc"));
    assert_eq!(by_digest.image.repository, ENV_REPO);
}

#[tokio::test]
async fn keycloak_pages_through_users_and_refreshes_an_expiring_token() {
    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(), 2);
    let dir = Directory::new(&keycloak_settings(&kc.url)).expect("directory");
    let users = dir.users().await.expect("first read");
    assert_eq!(users.len(), 5, "three pages of two");
    let dee = users.iter().find(|u| u.username == "dee").unwrap();
    assert!(!dee.enabled);
    assert_eq!(dee.domino_id, Some(oid(201)));
    assert_eq!(
        users.iter().find(|u| u.username == "no-domino").unwrap().domino_id,
        None
    );
    assert_eq!(dir.tokens_acquired(), 1, "the token is cached across pages");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let again = dir.users().await.expect("read after the first token expired");
    assert_eq!(again.len(), 5);
    assert_eq!(dir.tokens_acquired(), 2, "a fresh token replaced the expired one");
}

#[tokio::test]
async fn a_source_that_is_down_fails_with_the_setting_to_fix_and_categories_fail_closed() {
    let port = support::free_port();
    let settings = MongoSettings {
        host: "127.0.0.1".into(),
        port,
        replicaset: None,
        timeout_secs: 1,
        password: Some("s3cret-pw".into()),
        username: Some("admin".into()),
        ..MongoSettings::default()
    };
    let err = mongo::load(&settings).await.expect_err("nothing listens there");
    assert!(matches!(err, mongo::MongoError::Connect(_)), "{err:?}");
    let err = err.to_string();
    assert!(err.contains("mongo.host") && !err.contains("s3cret-pw"), "{err}");

    let kc = support::keycloak::KeycloakServer::start(&keycloak_seed(), 60);
    // KEYCLOAK_HOST with the pre-17 `/auth/` path against a server without it still works.
    let with_auth = KeycloakSettings {
        host: format!("{}/auth/", kc.url),
        ..keycloak_settings(&kc.url)
    };
    assert!(
        !keycloak::load(&with_auth)
            .await
            .expect("falls back to the root path")
            .is_empty()
    );

    let bad = KeycloakSettings {
        password: Some("wrong-pw".into()),
        ..keycloak_settings(&kc.url)
    };
    let err = keycloak::load(&bad).await.expect_err("bad password");
    assert!(
        matches!(err, keycloak::DirectoryError::Read { status: Some(401), .. }),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("KEYCLOAK_PASSWORD") && !err.contains("wrong-pw"), "{err}");

    let missing = KubeSettings {
        kubeconfig: Some("/nonexistent/kubeconfig".into()),
        ..KubeSettings::default()
    };
    let kerr = kube_source::load(&missing).await.expect_err("no kubeconfig");
    assert!(matches!(kerr, kube_source::KubeError::Config(_)), "{kerr:?}");
    let kerr = kerr.to_string();
    assert!(kerr.contains("kubernetes.kubeconfig"), "{kerr}");

    let inv = inventory();
    let sources = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Failed(err.clone()),
        kubernetes: SourceState::Failed(kerr),
        keycloak: SourceState::Disabled,
    };
    for r in evaluate(&inv, &sources, &Policy::default(), NOW) {
        assert!(
            matches!(&r.status, CategoryStatus::Unavailable(_)),
            "{} must fail closed",
            r.id
        );
        assert!(r.candidates.is_empty());
    }
}

/// A configured namespace that does not exist lists no pods without any error; the source
/// must fail instead of reporting "ok" with nothing protected.
#[tokio::test]
async fn a_namespace_that_does_not_exist_fails_the_kubernetes_source() {
    let k = support::kube::shared();
    let client = kube_client(&k.kubeconfig).await;
    namespace(&client, "ns-exists").await;
    let settings = KubeSettings {
        kubeconfig: Some(k.kubeconfig.display().to_string()),
        context: None,
        namespaces: vec!["ns-exists".into(), "ns-never-created".into()],
    };
    let err = kube_source::load(&settings).await.expect_err("missing namespace");
    assert!(
        matches!(&err, kube_source::KubeError::NoNamespace(n) if n == "ns-never-created"),
        "{err:?}"
    );
    assert!(err.to_string().contains("kubernetes.compute_namespace"), "{err}");
    let ok = KubeSettings {
        namespaces: vec!["ns-exists".into()],
        ..settings
    };
    kube_source::load(&ok)
        .await
        .expect("an existing, empty namespace is fine");
}

/// issue 11.1 and 11.2 on a real server: a run started yesterday and still running counts as
/// in flight however old the group's last completed run is, and so does a running workspace
/// session run (whatever its volume type); finished runs, and an old run with a completion
/// date but no status, do not.
#[tokio::test]
async fn runs_in_flight_and_running_sessions_are_read_as_in_use_now() {
    let server = support::mongo::MongoServer::start();
    let client = mongodb::Client::with_uri_str(&server.uri).await.unwrap();
    let db = client.database("domino");
    support::mongo::create_protecting_collections(&db).await;
    db.collection::<Document>("environments_v2")
        .insert_one(doc! { "_id": id(5), "name": "busy", "isArchived": false, "activeRevisionId": id(52) })
        .await
        .unwrap();
    db.collection::<Document>("runs")
        .insert_many(vec![
            doc! { "environmentId": id(5), "environmentRevisionId": id(51), "started": date_days_ago(401), "completed": date_days_ago(400), "status": "Succeeded" },
            doc! { "environmentId": id(5), "environmentRevisionId": id(51), "started": date_days_ago(1), "status": "Running" },
            doc! { "environmentId": id(5), "environmentRevisionId": id(53), "started": date_days_ago(2), "status": "Running", "volumeSpecification": { "_t": "RunReusableVolumeSpecification" } },
            doc! { "environmentId": id(5), "environmentRevisionId": id(54), "started": date_days_ago(9), "completed": date_days_ago(8), "status": "Stopped", "volumeSpecification": { "_t": "RunReusableVolumeSpecification" } },
            doc! { "environmentId": id(5), "environmentRevisionId": id(55), "started": date_days_ago(301), "completed": date_days_ago(300) },
        ])
        .await
        .unwrap();
    let data = mongo::load(&MongoSettings {
        uri: Some(server.uri.clone()),
        ..MongoSettings::default()
    })
    .await
    .expect("mongo loads");
    let run = |rev: u8| data.usage.runs.iter().find(|r| r.revision == oid(rev));
    let r51 = run(51).expect("group 51");
    assert_eq!((r51.count, r51.in_flight), (2, 1), "{r51:?}");
    assert!(
        r51.last_used.unwrap() > NOW - 3 * 86_400,
        "the later of completed and started: {r51:?}"
    );
    let r53 = run(53).expect("the running session protects");
    assert_eq!(r53.in_flight, 1, "{r53:?}");
    assert!(run(54).is_none(), "a finished session is left out: {:?}", run(54));
    assert_eq!(
        run(55).expect("group 55").in_flight,
        0,
        "completed without a status is finished"
    );
}

/// issue 11.4 through the Keycloak fake: a user re-provisioned under a second, enabled account
/// with the same `domino-user-id` is not deactivated, though the old account is disabled.
#[tokio::test]
async fn a_disabled_duplicate_account_does_not_deactivate_an_enabled_user() {
    let seed = json!({ "realms": [{ "realm": "DominoRealm", "users": [
        { "username": "dee", "enabled": false, "attributes": { "domino-user-id": [id(201).to_hex()] } },
        { "username": "dee@sso", "enabled": true, "attributes": { "domino-user-id": [id(201).to_hex()] } },
        { "username": "gone", "enabled": false, "attributes": { "domino-user-id": [id(202).to_hex()] } },
    ] }] });
    let kc = support::keycloak::KeycloakServer::start(&seed, 60);
    let users = keycloak::load(&keycloak_settings(&kc.url))
        .await
        .expect("keycloak loads");
    assert_eq!(users.len(), 3);
    let ids: Vec<ObjectId> = registry_cleaner::model::users::deactivated_ids(&users)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        vec![oid(202)],
        "only the user with no enabled account is deactivated"
    );
}

/// A group whose dates are not all BSON dates is not trusted to the server's `$max` (type
/// order puts any date above any string; ISO strings compare as text): a run completed
/// yesterday, stored as an ISO string with an offset, beside one completed 400 days ago as a
/// date, makes the group used yesterday. A present but unreadable date makes the time unknown.
/// A group whose ids are not ObjectIds stops the read and names them.
#[tokio::test]
async fn run_dates_of_mixed_types_and_unreadable_ids_fail_closed() {
    let server = support::mongo::MongoServer::start();
    let client = mongodb::Client::with_uri_str(&server.uri).await.unwrap();
    let db = client.database("domino");
    support::mongo::create_protecting_collections(&db).await;
    support::mongo::create_protecting_collections(&db).await;
    db.collection::<Document>("environments_v2")
        .insert_one(doc! { "_id": id(6), "name": "mixed", "isArchived": false, "activeRevisionId": id(69) })
        .await
        .unwrap();
    let iso = |days: i64| {
        time::OffsetDateTime::from_unix_timestamp(NOW - days * 86_400)
            .unwrap()
            .to_offset(time::UtcOffset::from_hms(5, 0, 0).unwrap())
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    db.collection::<Document>("runs")
        .insert_many(vec![
            doc! { "environmentId": id(6), "environmentRevisionId": id(61), "started": date_days_ago(401), "completed": date_days_ago(400), "status": "Succeeded" },
            doc! { "environmentId": id(6), "environmentRevisionId": id(61), "started": iso(2), "completed": iso(1), "status": "Succeeded" },
            // Text order would pick the first (later text, earlier time: +05:00 vs Z).
            doc! { "environmentId": id(6), "environmentRevisionId": id(62), "completed": "2025-01-01T04:00:00+05:00", "status": "Succeeded" },
            doc! { "environmentId": id(6), "environmentRevisionId": id(62), "completed": "2025-01-01T03:00:00Z", "status": "Succeeded" },
            doc! { "environmentId": id(6), "environmentRevisionId": id(63), "completed": date_days_ago(400), "status": "Succeeded" },
            doc! { "environmentId": id(6), "environmentRevisionId": id(63), "completed": "last tuesday", "status": "Succeeded" },
        ])
        .await
        .unwrap();
    let settings = MongoSettings {
        uri: Some(server.uri.clone()),
        ..MongoSettings::default()
    };
    let data = mongo::load(&settings).await.expect("mongo loads");
    let run = |rev: u8| data.usage.runs.iter().find(|r| r.revision == oid(rev)).unwrap();
    let r61 = run(61);
    assert!(
        r61.last_used.is_some_and(|t| t >= NOW - 86_400 - 1),
        "the ISO date of yesterday wins over a BSON date of 400 days ago: {r61:?}"
    );
    let want = time::OffsetDateTime::parse("2025-01-01T03:00:00Z", &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert_eq!(run(62).last_used, Some(want), "compared as times, not text");
    assert_eq!(run(63).last_used, None, "an unreadable date makes the time unknown");

    db.collection::<Document>("runs")
        .insert_one(doc! { "environmentId": "not-an-id", "environmentRevisionId": id(64), "started": date_days_ago(1) })
        .await
        .unwrap();
    let err = mongo::load(&settings)
        .await
        .expect_err("an unreadable run group fails the read");
    let msg = err.to_string();
    assert!(msg.contains("environmentId") && msg.contains("not-an-id"), "{msg}");
}

/// An enabled account whose `domino-user-id` cannot be read might be the live account of a
/// user whose disabled account carries the id: the Keycloak read fails (naming the user) rather
/// than calling that user deactivated. Every value of the attribute counts, not the first.
#[tokio::test]
async fn an_enabled_account_with_an_unreadable_id_fails_the_directory_and_every_value_counts() {
    let seed = json!({ "realms": [{ "realm": "DominoRealm", "users": [
        { "username": "dee", "enabled": false, "attributes": { "domino-user-id": [id(201).to_hex()] } },
        { "username": "dee@sso", "enabled": true, "attributes": { "domino-user-id": ["ObjectId(66...c9)"] } },
    ] }] });
    let kc = support::keycloak::KeycloakServer::start(&seed, 60);
    let err = keycloak::load(&keycloak_settings(&kc.url))
        .await
        .expect_err("an unreadable id on an enabled account fails the source");
    let msg = err.to_string();
    assert!(msg.contains("dee@sso") && msg.contains("domino-user-id"), "{msg}");

    let seed = json!({ "realms": [{ "realm": "DominoRealm", "users": [
        { "username": "dee", "enabled": false, "attributes": { "domino-user-id": [id(201).to_hex()] } },
        { "username": "dee@sso", "enabled": true, "attributes": { "domino-user-id": [id(203).to_hex(), id(201).to_hex()] } },
        { "username": "old", "enabled": false, "attributes": { "domino-user-id": ["garbage", id(202).to_hex()] } },
    ] }] });
    let kc = support::keycloak::KeycloakServer::start(&seed, 60);
    let users = keycloak::load(&keycloak_settings(&kc.url))
        .await
        .expect("a disabled account's unreadable value deactivates nobody and fails nothing");
    let ids: Vec<ObjectId> = registry_cleaner::model::users::deactivated_ids(&users)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        vec![oid(202)],
        "201 is carried by an enabled account's second value"
    );
}

/// issue 11.5: a protecting collection that is missing (dropped, renamed, wrong database)
/// fails the Mongo source, naming the collection and the database, instead of reading as
/// "nothing uses this image"; named in `optional_collections` it reads as absent. Every
/// collection read is listed with the documents it gave.
#[tokio::test]
async fn a_missing_protecting_collection_fails_the_source_unless_named_optional() {
    use registry_cleaner::model::domino::{CollectionRead, PROTECTING_COLLECTIONS};
    let server = support::mongo::MongoServer::start();
    seed_mongo(&server.uri).await;
    let mut settings = MongoSettings {
        uri: Some(server.uri.clone()),
        ..MongoSettings::default()
    };
    let data = mongo::load(&settings).await.expect("mongo loads");
    let counts: Vec<(&str, u64, bool)> = data
        .collections
        .iter()
        .map(|c: &CollectionRead| (c.name.as_str(), c.documents, c.present))
        .collect();
    assert_eq!(
        counts,
        [
            ("environments_v2", 4, true),
            ("environment_revisions", 9, true),
            ("models", 2, true),
            ("model_versions", 2, true),
            ("builds", 1, true),
            ("sagas", 2, true),
            // Two non-session runs, plus the session run still in flight.
            ("runs", 3, true),
            ("workspace", 1, true),
            ("workspace_session", 1, true),
            ("projects", 1, true),
            ("scheduler_jobs", 1, true),
            ("organizations", 0, false),
            ("app_versions", 0, false),
            ("model_products", 0, false),
            ("userPreferences", 0, false),
            ("users", 2, true),
        ],
        "collections read and what each gave"
    );

    let client = mongodb::Client::with_uri_str(&server.uri).await.unwrap();
    let db = client.database("domino");
    // Cumulatively: each one missing fails the read on its own, even with the earlier ones
    // allowed.
    for (name, _) in PROTECTING_COLLECTIONS {
        db.collection::<Document>(name).drop().await.expect("drop");
        let err = mongo::load(&settings)
            .await
            .expect_err(&format!("{name} missing must fail the source"));
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("database 'domino' has no {name} collection"))
                && msg.contains("mongo.optional_collections"),
            "{msg}"
        );
        settings.optional_collections.push(name.to_string());
        let data = mongo::load(&settings)
            .await
            .unwrap_or_else(|e| panic!("{name} named optional: {e}"));
        let read = data.collections.iter().find(|c| c.name == *name).unwrap();
        assert!(!read.present && read.documents == 0, "{read:?}");
    }
    let data = mongo::load(&settings).await.unwrap();
    assert!(data.usage.runs.is_empty() && data.revisions.is_empty());
    // environments_v2 cannot be made optional: its absence stays an error.
    db.collection::<Document>("environments_v2").drop().await.unwrap();
    let err = mongo::load(&settings).await.expect_err("no environments").to_string();
    assert!(err.contains("has no environments_v2 collection"), "{err}");
}

/// issue 11.14: a Keycloak behind an internal CA is read when `--ca-cert` names the CA (or with
/// `--insecure`), and refused without it: the Keycloak client trusts what the registry's does.
#[tokio::test]
async fn keycloak_behind_an_internal_ca_is_trusted_through_the_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = support::internal_ca(dir.path());
    let kc = support::keycloak::KeycloakServer::start_tls(&keycloak_seed(), 60, &cert, &key);
    assert!(kc.url.starts_with("https://"), "{}", kc.url);
    let err = keycloak::load(&keycloak_settings(&kc.url))
        .await
        .expect_err("an unknown CA is refused");
    assert!(!err.to_string().is_empty());
    let trusted = KeycloakSettings {
        ca_cert: Some(ca.clone()),
        ..keycloak_settings(&kc.url)
    };
    assert_eq!(keycloak::load(&trusted).await.expect("trusted through the CA").len(), 5);
    let insecure = KeycloakSettings {
        insecure: true,
        ..keycloak_settings(&kc.url)
    };
    assert_eq!(keycloak::load(&insecure).await.expect("--insecure").len(), 5);
    let missing = KeycloakSettings {
        ca_cert: Some(dir.path().join("nope.pem")),
        ..keycloak_settings(&kc.url)
    };
    let err = keycloak::load(&missing).await.expect_err("no CA file").to_string();
    assert!(err.contains("nope.pem") && err.contains("--ca-cert"), "{err}");
}

/// A copy of the shared kubeconfig with contexts `a` and `b` on the same apiserver (different
/// default namespaces) and `down`, whose server listens nowhere.
fn multi_context_kubeconfig(dir: &std::path::Path, kubeconfig: &std::path::Path) -> std::path::PathBuf {
    use kube::config::{Context, Kubeconfig, NamedCluster, NamedContext};
    let mut kc = Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cluster = kc.clusters[0].clone();
    let user = kc.auth_infos[0].name.clone();
    let mut down = cluster.cluster.clone().expect("cluster");
    down.server = Some(format!("https://127.0.0.1:{}", support::free_port()));
    kc.clusters.push(NamedCluster {
        name: "down".into(),
        cluster: Some(down),
        ..cluster.clone()
    });
    let ctx = |name: &str, cluster: &str, ns: &str| NamedContext {
        name: name.into(),
        context: Some(Context {
            cluster: cluster.into(),
            user: Some(user.clone()),
            namespace: Some(ns.into()),
            ..Context::default()
        }),
        other: Default::default(),
    };
    kc.contexts = vec![
        ctx("a", &cluster.name, "default"),
        ctx("b", &cluster.name, "kube-system"),
        ctx("down", "down", "default"),
    ];
    kc.current_context = Some("a".into());
    let path = dir.join("kubeconfig");
    std::fs::write(&path, serde_saphyr::to_string(&kc).unwrap()).unwrap();
    path
}

/// issue 11.13: several clusters (contexts of one kubeconfig) are all read, each evidence
/// naming its context; one context that cannot be read fails the whole source, naming it.
#[tokio::test]
async fn every_kube_context_is_read_and_each_fails_closed_on_its_own() {
    let k = support::kube::shared();
    let client = kube_client(&k.kubeconfig).await;
    namespace(&client, "multi-ctx").await;
    let spec =
        json!({ "containers": [{ "name": "run", "image": format!("docker-registry:5000/{ENV_REPO}:{}", tag(2, 1)) }] });
    pod(&client, "multi-ctx", "run-9", spec, json!({ "phase": "Running" })).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = multi_context_kubeconfig(dir.path(), &k.kubeconfig);
    let settings = |context: &str| KubeSettings {
        kubeconfig: Some(kubeconfig.display().to_string()),
        context: Some(context.into()),
        namespaces: vec!["multi-ctx".into()],
    };
    let w = kube_source::load_contexts(&[settings("a"), settings("b")])
        .await
        .expect("both contexts load");
    let mut seen: Vec<String> = w.images.iter().map(|i| i.evidence.to_string()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            "Pod multi-ctx/run-9 container run (context a)",
            "Pod multi-ctx/run-9 container run (context b)"
        ]
    );
    // One context alone: as before, no context in the evidence.
    let one = kube_source::load_contexts(&[settings("a")]).await.unwrap();
    assert!(one.images.iter().all(|i| i.evidence.context.is_none()));
    // A cluster that cannot be read fails the source whichever position it has.
    for list in [
        vec![settings("a"), settings("down")],
        vec![settings("down"), settings("b")],
    ] {
        let err = kube_source::load_contexts(&list)
            .await
            .expect_err("an unreadable cluster fails closed")
            .to_string();
        assert!(err.starts_with("kubernetes context down: "), "{err}");
    }
}

/// issue 11.7: compute-cluster environments of jobs and of scheduled jobs are read from real
/// Mongo documents: a run's cluster revision is a run group under the run's own rules, a
/// cluster environment with no revision protects at environment level, a scheduled job's
/// cluster environment is a default like its own; a cluster id that is not an ObjectId fails.
#[tokio::test]
async fn compute_cluster_environments_of_jobs_and_scheduled_jobs_are_read() {
    let server = support::mongo::MongoServer::start();
    let client = mongodb::Client::with_uri_str(&server.uri).await.unwrap();
    let db = client.database("domino");
    support::mongo::create_protecting_collections(&db).await;
    db.collection::<Document>("environments_v2")
        .insert_many(vec![
            doc! { "_id": id(5), "name": "job", "isArchived": false, "activeRevisionId": id(51) },
            doc! { "_id": id(6), "name": "spark", "isArchived": false, "activeRevisionId": id(62) },
            doc! { "_id": id(7), "name": "ray", "isArchived": false, "activeRevisionId": id(71) },
            doc! { "_id": id(8), "name": "dask", "isArchived": false, "activeRevisionId": id(81) },
        ])
        .await
        .unwrap();
    db.collection::<Document>("runs")
        .insert_many(vec![
            doc! { "environmentId": id(5), "environmentRevisionId": id(51), "computeClusterEnvironmentId": id(6), "computeClusterEnvironmentRevisionId": id(61), "started": date_days_ago(41), "completed": date_days_ago(40), "status": "Succeeded" },
            doc! { "environmentId": id(5), "environmentRevisionId": id(51), "computeClusterEnvironmentId": id(6), "computeClusterEnvironmentRevisionId": id(61), "started": date_days_ago(1), "status": "Running" },
            doc! { "environmentId": id(5), "environmentRevisionId": id(51), "computeClusterProps": { "computeEnvironmentId": id(7) }, "started": date_days_ago(90), "completed": date_days_ago(90) },
        ])
        .await
        .unwrap();
    db.collection::<Document>("scheduler_jobs")
        .insert_one(doc! { "_id": id(90), "jobName": "nightly", "jobDataPlain": { "computeClusterProps": { "computeEnvironmentId": id(8) } } })
        .await
        .unwrap();
    let settings = MongoSettings {
        uri: Some(server.uri.clone()),
        ..MongoSettings::default()
    };
    let data = mongo::load(&settings).await.expect("mongo loads");
    let g = data
        .usage
        .runs
        .iter()
        .find(|r| r.environment == oid(6) && r.revision == oid(61))
        .unwrap_or_else(|| panic!("cluster run group: {:?}", data.usage.runs));
    assert_eq!((g.count, g.in_flight), (1, 1), "{g:?}");
    assert!(
        data.usage
            .workspaces
            .iter()
            .any(|w| w.compute_environment == Some(oid(7))),
        "a cluster environment without a revision protects at environment level: {:?}",
        data.usage.workspaces
    );
    assert!(
        data.usage
            .defaults
            .iter()
            .any(|d| d.environment == oid(8) && d.name == "nightly"),
        "{:?}",
        data.usage.defaults
    );
    db.collection::<Document>("runs")
        .insert_one(doc! { "environmentId": id(5), "environmentRevisionId": id(51), "computeClusterEnvironmentId": "not-an-id" })
        .await
        .unwrap();
    let err = mongo::load(&settings).await.unwrap_err().to_string();
    assert!(
        err.contains("computeClusterEnvironmentId") && err.contains("not an ObjectId"),
        "{err}"
    );
}
