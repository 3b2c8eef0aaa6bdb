//! `registry-cleaner gc` against a real kube-apiserver. There is no kubelet: pods never run
//! and exec cannot work, so the StatefulSet's pod is created with its status patched
//! Ready/Running, and the test checks that a failing exec still switches read-only mode off
//! and reports the failure; and that a missing StatefulSet means a managed registry.

mod support;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const READONLY: &str = "REGISTRY_STORAGE_MAINTENANCE_READONLY";

async fn client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

async fn namespace(c: &kube::Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
    Api::<Namespace>::all(c.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
}

/// The registry StatefulSet and one pod "running" the read-only template.
async fn registry(c: &kube::Client, ns: &str) {
    let sts: StatefulSet = serde_json::from_value(json!({
        "metadata": { "name": "docker-registry" },
        "spec": {
            "serviceName": "docker-registry",
            "selector": { "matchLabels": { "app.kubernetes.io/name": "docker-registry" } },
            "template": {
                "metadata": { "labels": { "app.kubernetes.io/name": "docker-registry" } },
                "spec": { "containers": [ { "name": "registry", "image": "registry:2",
                    "env": [ { "name": "REGISTRY_STORAGE_DELETE_ENABLED", "value": "true" } ] } ] }
            }
        }
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(c.clone(), ns)
        .create(&PostParams::default(), &sts)
        .await
        .expect("sts");
    let pods: Api<Pod> = Api::namespaced(c.clone(), ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "docker-registry-0", "labels": { "app.kubernetes.io/name": "docker-registry" } },
        "spec": { "containers": [ { "name": "registry", "image": "registry:2",
            "env": [ { "name": READONLY, "value": "{\"enabled\":true}" } ] } ] }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.expect("pod");
    pods.patch_status(
        "docker-registry-0",
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "status": { "phase": "Running", "conditions": [ { "type": "Ready", "status": "True" } ] } }),
        ),
    )
    .await
    .expect("pod status");
}

fn gc(dir: &Path, kubeconfig: &Path, ns: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(["gc", "--ready-timeout-secs", "2", "--poll-ms", "100"])
        .args(extra)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("KUBECONFIG", kubeconfig)
        .env("PLATFORM_NAMESPACE", ns)
        .env_remove("DOMINO_PLATFORM_NAMESPACE")
        .stdin(Stdio::null())
        .output()
        .expect("run registry-cleaner gc")
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn env_names(sts: &StatefulSet) -> Vec<String> {
    sts.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.clone())
        .collect()
}

#[test]
fn a_failing_exec_still_switches_read_only_mode_off_and_reports_the_failure() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, "gc-fail"));
    rt.block_on(registry(&c, "gc-fail"));
    let dir = tempfile::tempdir().unwrap();

    // Dry run: the steps, nothing patched, never --delete-untagged.
    let out = gc(dir.path(), &k.kubeconfig, "gc-fail", &["--dry-run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dry = report(&out);
    let steps = dry["steps"].to_string();
    assert!(
        steps.contains("registry garbage-collect /etc/docker/registry/config.yml"),
        "{steps}"
    );
    assert!(steps.contains("restarts the registry pod"), "{steps}");
    assert!(!steps.contains("garbage-collect --delete-untagged"), "{steps}");
    let sets: Api<StatefulSet> = Api::namespaced(c.clone(), "gc-fail");
    assert!(!env_names(&rt.block_on(sets.get("docker-registry")).unwrap()).contains(&READONLY.to_string()));

    let out = gc(dir.path(), &k.kubeconfig, "gc-fail", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["pod"], "docker-registry-0", "{r}");
    assert_eq!(r["read_only_restored"], true, "{r}");
    assert!(r["error"].as_str().unwrap().contains("exec"), "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("read-only mode was switched off again"),
        "{r}"
    );
    let env = env_names(&rt.block_on(sets.get("docker-registry")).unwrap());
    assert!(!env.contains(&READONLY.to_string()), "{env:?}");
    assert!(
        env.contains(&"REGISTRY_STORAGE_DELETE_ENABLED".to_string()),
        "other env kept: {env:?}"
    );
}

#[test]
fn no_statefulset_means_a_managed_registry_that_collects_itself() {
    let k = support::kube::shared();
    let rt = support::runtime();
    let c = rt.block_on(client(&k.kubeconfig));
    rt.block_on(namespace(&c, "gc-managed"));
    let dir = tempfile::tempdir().unwrap();
    let out = gc(dir.path(), &k.kubeconfig, "gc-managed", &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = report(&out);
    assert_eq!(r["managed"], true, "{r}");
    assert!(r["message"].as_str().unwrap().contains("external or managed"), "{r}");
}
