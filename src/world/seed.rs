//! Writing a [`World`] to real servers: Mongo documents (through the `mongodb` crate), pods in
//! a Kubernetes namespace (created, then status patched as a kubelet would), and the seed JSON
//! of the Keycloak fake (`scripts/test-servers/fake_keycloak.py --seed`). The registry side is
//! [`super::push`]; broken tags need the registry's storage and are made by the test harness.

use super::World;
use mongodb::bson::Document;

/// Inserts every collection of the world into database `db`, and creates the protecting
/// collections the world leaves empty.
pub async fn mongo(world: &World, uri: &str, db: &str) -> Result<(), String> {
    let client = mongodb::Client::with_uri_str(uri).await.map_err(|e| e.to_string())?;
    let db = client.database(db);
    for (coll, docs) in &world.mongo {
        if docs.is_empty() {
            continue;
        }
        db.collection::<Document>(coll)
            .insert_many(docs.clone())
            .await
            .map_err(|e| format!("{coll}: {e}"))?;
    }
    // A Domino install has every protecting collection, empty or not; one missing fails the
    // Mongo source.
    let have = db.list_collection_names().await.map_err(|e| e.to_string())?;
    for (name, _) in crate::model::domino::PROTECTING_COLLECTIONS {
        if !have.iter().any(|h| h == name) {
            db.create_collection(*name).await.map_err(|e| format!("{name}: {e}"))?;
        }
    }
    Ok(())
}

/// The Keycloak fake's seed: realm `realm` with every world user (attribute `domino-user-id`).
pub fn keycloak_seed(world: &World, realm: &str) -> serde_json::Value {
    let users: Vec<serde_json::Value> = world
        .keycloak_users
        .iter()
        .map(|u| {
            let mut v = serde_json::json!({ "username": u.username, "enabled": u.enabled });
            if let Some(id) = u.domino_id {
                v["attributes"] = serde_json::json!({ "domino-user-id": [id.to_string()] });
            }
            v
        })
        .collect();
    serde_json::json!({ "realms": [{ "realm": realm, "users": users }] })
}

/// Creates `namespace` (if missing) and every world pod in it, status patched to its phase.
pub async fn pods(world: &World, client: &kube::Client, namespace: &str) -> Result<(), String> {
    for pod in &world.pods {
        let containers: Vec<(&str, &str)> = pod.containers.iter().map(|(n, i)| (n.as_str(), i.as_str())).collect();
        create_pod(client, namespace, &pod.name, &containers, &pod.phase).await?;
    }
    Ok(())
}

/// Creates a namespace unless it exists.
pub async fn ensure_namespace(client: &kube::Client, namespace: &str) -> Result<(), String> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| e.to_string())?
        .is_none()
    {
        let ns: Namespace = serde_json::from_value(serde_json::json!({ "metadata": { "name": namespace } }))
            .map_err(|e| e.to_string())?;
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            // Another test created it meanwhile.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(format!("namespace {namespace}: {e}")),
        }
    }
    Ok(())
}

/// Creates one pod (and its namespace when missing) and patches its status to `phase`.
pub async fn create_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    containers: &[(&str, &str)],
    phase: &str,
) -> Result<(), String> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    ensure_namespace(client, namespace).await?;
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let containers: Vec<serde_json::Value> = containers
        .iter()
        .map(|(n, i)| serde_json::json!({ "name": n, "image": i }))
        .collect();
    let p: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "dominodatalab.com/workload-type": "Batch" } },
        "spec": { "containers": containers },
    }))
    .map_err(|e| e.to_string())?;
    api.create(&PostParams::default(), &p)
        .await
        .map_err(|e| format!("pod {namespace}/{name}: {e}"))?;
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({ "status": { "phase": phase } })),
    )
    .await
    .map_err(|e| format!("pod {namespace}/{name} status: {e}"))?;
    Ok(())
}
