//! End to end against every real server: a generated Domino world pushed to a registry, written
//! to SecantusDB, its pods created in a kube-apiserver and its users in the Keycloak fake; then
//! the real binary's `report` must answer the world's ground truth (recorded by the generator,
//! not recomputed), a category's plan applied and garbage-collected must free exactly its
//! `reclaimable_bytes`, a pod started after the report must stop its tag from being deleted,
//! and a source that is down must make the category that needs it unavailable.

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, KEEP_REVISIONS, REGISTRY_HOST, TagTarget, World, WorldSize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use support::registry::Registry;

struct Env {
    dir: tempfile::TempDir,
    registry: String,
    mongo: String,
    kubeconfig: PathBuf,
    namespace: String,
    keycloak: String,
}

impl Env {
    fn run(&self, args: &[&str]) -> Output {
        let keep = KEEP_REVISIONS.to_string();
        let dir = self.dir.path();
        let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
        c.args(args)
            .args(["--keep-revisions", &keep, "--grace-period-hours", "0"])
            .current_dir(dir)
            .env("HOME", dir)
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("REGISTRY_URL", &self.registry)
            .env("MONGODB_URI", &self.mongo)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("COMPUTE_NAMESPACE", &self.namespace)
            .env("PLATFORM_NAMESPACE", format!("{}-platform", self.namespace))
            .env("KEYCLOAK_HOST", &self.keycloak)
            .env("KEYCLOAK_USERNAME", "admin")
            .env("KEYCLOAK_PASSWORD", "admin")
            .env_remove("CONFIG_FILE")
            .stdin(Stdio::null());
        c.output().expect("run registry-cleaner")
    }

    /// `report` (optionally one category) written to `name`; returns its JSON.
    fn report(&self, name: &str, category: Option<&str>) -> (PathBuf, Value) {
        let path = self.dir.path().join(name);
        let mut args = vec!["report", "--output", path.to_str().unwrap()];
        if let Some(c) = category {
            args.extend(["--category", c]);
        }
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "report failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v = serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("report JSON");
        (path, v)
    }

    fn delete(&self, plan: &Path) -> Value {
        let out = self.run(&["delete", "--plan", plan.to_str().unwrap(), "--apply", "--force"]);
        assert!(
            out.status.success(),
            "delete failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("results JSON")
    }
}

fn category<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no category {id}"))
}

fn refs(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        // Tag candidates; orphaned-references' candidates are Mongo records (no repository).
        .filter(|c| c.get("collection").is_none())
        .map(|c| format!("{}:{}", c["repository"].as_str().unwrap(), c["tag"].as_str().unwrap()))
        .collect()
}

/// Pushes the world, then removes the config blob of each broken tag (registry restarted so it
/// forgets the blob, as after a storage loss).
fn push_world(reg: &mut Registry, w: &World) {
    let client = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    support::runtime()
        .block_on(world::push(&client, &w.tags))
        .expect("push the world");
    for (repo, tag) in &w.broken {
        let Some(TagTarget::Image(img)) = w.spec(repo, tag).map(|s| &s.target) else {
            panic!("broken tag {tag} is not an image")
        };
        let config = world::sha256_digest(&world::build_image(img).config);
        std::fs::remove_file(reg.blob_data_path(&config)).expect("remove config blob");
    }
    reg.stop();
    reg.resume();
}

async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

#[test]
fn report_answers_the_ground_truth_and_a_plan_frees_exactly_what_it_says() {
    let w = world::generate(20_250_101, WorldSize::SMALL);
    let rt = support::runtime();

    let mut reg = Registry::start();
    push_world(&mut reg, &w);
    let mongo = support::mongo::MongoServer::start();
    rt.block_on(world::seed::mongo(&w, &mongo.uri, "domino"))
        .expect("seed mongo");
    let kube = support::kube::shared();
    let namespace = "e2e-compute".to_string();
    let client = rt.block_on(kube_client(&kube.kubeconfig));
    rt.block_on(world::seed::pods(&w, &client, &namespace))
        .expect("create pods");
    // The platform namespace must exist too: a missing namespace fails the source.
    rt.block_on(world::seed::ensure_namespace(&client, &format!("{namespace}-platform")))
        .expect("platform namespace");
    let kc = support::keycloak::KeycloakServer::start(&world::seed::keycloak_seed(&w, "DominoRealm"), 60);
    let env = Env {
        dir: tempfile::tempdir().unwrap(),
        registry: reg.url(),
        mongo: mongo.uri.clone(),
        kubeconfig: kube.kubeconfig.clone(),
        namespace: namespace.clone(),
        keycloak: kc.url.clone(),
    };

    // 1. The full report answers the ground truth.
    let (_, report) = env.report("report.json", None);
    for (source, s) in report["sources"].as_object().unwrap() {
        assert_eq!(s["status"], "ok", "source {source}: {s}");
    }
    // The Mongo source lists every collection it read and how many documents each gave.
    let read: std::collections::BTreeMap<&str, (bool, u64)> = report["sources"]["mongo"]["collections"]
        .as_array()
        .expect("mongo collections in the report")
        .iter()
        .map(|c| {
            (
                c["collection"].as_str().unwrap(),
                (c["present"].as_bool().unwrap(), c["documents"].as_u64().unwrap()),
            )
        })
        .collect();
    for name in ["environments_v2", "environment_revisions", "runs"] {
        assert!(matches!(read.get(name), Some((true, n)) if *n > 0), "{name}: {read:?}");
    }
    assert_eq!(
        read["environments_v2"].1 as usize,
        w.mongo["environments_v2"].len(),
        "every environment read"
    );
    let cats = report["categories"].as_array().unwrap();
    // untagged-manifests needs the storage source (tests/storage.rs); over HTTP it says so.
    let (untagged, cats): (Vec<_>, Vec<_>) = cats.iter().partition(|c| c["id"] == "untagged-manifests");
    assert_eq!(untagged.len(), 1);
    assert_eq!(untagged[0]["status"], "unavailable");
    assert!(untagged[0]["reason"].as_str().unwrap().contains("storage"));
    assert_eq!(cats.len(), w.expected.candidates.len());
    for c in cats {
        let id = c["id"].as_str().unwrap();
        assert_eq!(c["status"], "ok", "{id}: {c}");
        let got = refs(&c["candidates"]);
        let want = &w.expected.candidates[id];
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{id}: missing {missing:?}, extra {extra:?}"
        );
    }
    // Orphaned Mongo records are its candidates, as {collection, document_id, tag} (+ reasons).
    let orphaned = category(&report, "orphaned-references");
    assert!(
        orphaned.get("records").is_none(),
        "records moved to candidates: {orphaned}"
    );
    let orphans: std::collections::BTreeSet<(String, String)> = orphaned["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["collection", "document_id", "reasons", "tag"], "{r}");
            assert!(!r["tag"].as_str().unwrap().is_empty(), "{r}");
            (
                r["collection"].as_str().unwrap().to_string(),
                r["document_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(!orphans.is_empty(), "the world has orphaned references");
    assert_eq!(orphans, w.expected.orphans, "orphaned-references candidates");
    for (cat, tag, why) in &w.expected.protected {
        let c = category(&report, cat);
        let p = c["protected"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| format!("{}:{}", p["repository"].as_str().unwrap(), p["tag"].as_str().unwrap()) == *tag)
            .unwrap_or_else(|| panic!("{cat}: {tag} is not protected"));
        let reasons: Vec<&str> = p["protected_by"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(
            reasons.iter().any(|r| r.contains(why.as_str())),
            "{cat}: {tag}: {reasons:?} lacks {why:?}"
        );
    }
    // The pod by digest names the namespace the test created.
    let running = w.pods.iter().find(|p| p.name.ends_with("-legacy")).unwrap();
    assert!(
        report
            .to_string()
            .contains(&format!("Pod {namespace}/{}", running.name)),
        "the by-digest pod is named in the report"
    );

    // 2. One category's plan, applied and garbage-collected, frees exactly its bytes.
    let (plan_path, plan) = env.report("archived.json", Some("archived-environments"));
    let predicted = plan["plan"]["reclaimable_bytes"].as_u64().unwrap();
    assert!(predicted > 0);
    assert_eq!(
        refs(&plan["plan"]["tags"]),
        w.expected.candidates["archived-environments"],
        "the plan deletes exactly the category's candidates"
    );
    let results = env.delete(&plan_path);
    assert_eq!(results["summary"]["failed"], 0, "{results}");
    assert_eq!(results["summary"]["skipped"], 0, "{results}");
    reg.stop();
    let before = reg.blob_bytes();
    reg.garbage_collect();
    assert_eq!(
        before - reg.blob_bytes(),
        predicted,
        "bytes freed by GC equal the plan's reclaimable_bytes"
    );
    reg.resume();

    // 3. A pod started between report and delete keeps its tag.
    let (plan_path, plan) = env.report("unused.json", Some("unused-environments"));
    let planned = refs(&plan["plan"]["tags"]);
    assert_eq!(planned, w.expected.candidates["unused-environments"]);
    let victim = planned.iter().next().unwrap().clone();
    let late_pod = "run-started-late";
    rt.block_on(world::seed::create_pod(
        &client,
        &namespace,
        late_pod,
        &[("main", &format!("{REGISTRY_HOST}/{victim}"))],
        "Running",
    ))
    .expect("late pod");
    let results = env.delete(&plan_path);
    let items = results["items"].as_array().unwrap();
    let (repo, tag) = victim.rsplit_once(':').unwrap();
    let skipped = items
        .iter()
        .find(|i| i["repository"] == repo && i["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .expect("the victim's manifest is in the results");
    assert_eq!(skipped["result"], "skipped", "{skipped}");
    assert!(skipped["reason"].as_str().unwrap().contains(late_pod), "{skipped}");
    assert_eq!(results["summary"]["skipped"], 1, "{results}");
    assert_eq!(results["summary"]["failed"], 0, "{results}");
    assert_eq!(
        results["summary"]["deleted"].as_u64().unwrap() as usize,
        items.len() - 1,
        "{results}"
    );

    // 4. Keycloak down: the category that needs it is unavailable, with the reason.
    drop(kc);
    let (_, report) = env.report("no-keycloak.json", None);
    assert_eq!(report["sources"]["keycloak"]["status"], "failed");
    let deact = category(&report, "deactivated-owner-environments");
    assert_eq!(deact["status"], "unavailable", "{deact}");
    let reason = deact["reason"].as_str().unwrap();
    assert!(reason.contains("keycloak"), "{reason}");
    assert!(deact["candidates"].as_array().unwrap().is_empty());
    for c in report["categories"].as_array().unwrap() {
        // (untagged-manifests: unavailable over HTTP whatever else is up, checked above.)
        if c["id"] != "deactivated-owner-environments" && c["id"] != "untagged-manifests" {
            assert_eq!(c["status"], "ok", "{c}");
        }
    }
}
