//! `registry-cleaner doctor` against the real servers: every check passes on a healthy set-up
//! (registry with deletes on, MongoDB with Domino's collections, kube-apiserver RBAC, the
//! Keycloak fake); and each broken part fails its own check with a fix, exit 1.

mod support;

use mongodb::bson::{Document, doc};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;

fn doctor(dir: &Path, url: &str, env: &[(&str, &str)], extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(["doctor", "--json", "--registry", url])
        .args(extra)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run registry-cleaner doctor")
}

fn checks(out: &Output) -> Vec<Value> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON ({e}); exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v.as_array().expect("a list of checks").clone()
}

fn status<'a>(checks: &'a [Value], name: &str) -> &'a str {
    checks
        .iter()
        .find(|c| c["check"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no check {name}: {checks:?}"))["status"]
        .as_str()
        .unwrap()
}

#[test]
fn doctor_passes_on_a_healthy_setup_and_names_each_broken_part() {
    let rt = support::runtime();
    let reg = Registry::start();
    let url = reg.url();
    rt.block_on(world::push(
        &RegistryClient::new(RegistryOptions::new(&url)).unwrap(),
        &sample_registry("dominodatalab", NOW),
    ))
    .unwrap();
    let mongo = support::mongo::MongoServer::start();
    rt.block_on(async {
        let c = mongodb::Client::with_uri_str(&mongo.uri).await.unwrap();
        let db = c.database("domino");
        for coll in ["environments_v2", "users"] {
            db.collection::<Document>(coll)
                .insert_one(doc! { "x": 1 })
                .await
                .unwrap();
        }
        support::mongo::create_protecting_collections(&db).await;
    });
    let k = support::kube::shared();
    rt.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&k.kubeconfig).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        support::kube::create_namespace(&client, "doc-compute").await;
        support::kube::create_namespace(&client, "doc-platform").await;
    });
    let kc =
        support::keycloak::KeycloakServer::start(&json!({ "realms": [{ "realm": "DominoRealm", "users": [] }] }), 60);
    let kc_host = format!("{}/", kc.url);
    let kubeconfig = k.kubeconfig.display().to_string();
    let env = [
        ("MONGODB_URI", mongo.uri.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("COMPUTE_NAMESPACE", "doc-compute"),
        ("PLATFORM_NAMESPACE", "doc-platform"),
        ("KEYCLOAK_HOST", kc_host.as_str()),
        ("KEYCLOAK_PASSWORD", "admin"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = doctor(dir.path(), &url, &env, &[]);
    let all = checks(&out);
    for c in &all {
        assert!(
            c["status"] == "pass",
            "every check passes on a healthy set-up: {c}\n{all:#?}"
        );
    }
    assert_eq!(out.status.code(), Some(0));
    for name in [
        "registry reachable",
        "tags in dominodatalab/environment",
        "tags in dominodatalab/model",
        "deletes enabled",
        "mongo reachable",
        "mongo collections",
        "rbac: list pods in doc-compute",
        "rbac: patch apps/statefulsets docker-registry in doc-platform",
        "keycloak token",
    ] {
        assert_eq!(status(&all, name), "pass", "{name}");
    }
    // Sources passed to --without are skipped.
    let out = doctor(
        dir.path(),
        &url,
        &env,
        &["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"],
    );
    let some = checks(&out);
    for name in ["mongo", "kubernetes", "keycloak"] {
        assert_eq!(status(&some, name), "skip", "{name}: {some:?}");
    }

    // Broken parts: a prefix with no tags, Mongo unreachable, a wrong Keycloak password.
    let dead = format!(
        "mongodb://127.0.0.1:{}/domino?serverSelectionTimeoutMS=500",
        free_port()
    );
    let broken = [
        ("MONGODB_URI", dead.as_str()),
        ("KUBECONFIG", kubeconfig.as_str()),
        ("COMPUTE_NAMESPACE", "doc-compute"),
        ("PLATFORM_NAMESPACE", "doc-platform"),
        ("KEYCLOAK_HOST", kc_host.as_str()),
        ("KEYCLOAK_PASSWORD", "kc-secret-Zq9"),
        ("REPOSITORY", "nobody"),
    ];
    let out = doctor(dir.path(), &url, &broken, &[]);
    let all = checks(&out);
    assert_eq!(out.status.code(), Some(1), "{all:#?}");
    assert_eq!(status(&all, "registry reachable"), "pass");
    assert_eq!(status(&all, "tags in nobody/environment"), "fail");
    assert_eq!(status(&all, "mongo reachable"), "fail");
    assert_eq!(status(&all, "keycloak token"), "fail");
    for c in all.iter().filter(|c| c["status"] == "fail") {
        assert!(
            c["fix"].as_str().is_some_and(|f| !f.is_empty()),
            "a failure says how to fix it: {c}"
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("kc-secret-Zq9"), "no secret in the output: {text}");

    // A registry with deletes off fails that check only.
    let mut off = Registry::start();
    off.extra_env
        .push(("REGISTRY_STORAGE_DELETE_ENABLED".into(), "false".into()));
    off.stop();
    off.resume();
    let out = doctor(
        dir.path(),
        &off.url(),
        &env,
        &["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"],
    );
    let all = checks(&out);
    assert_eq!(status(&all, "deletes enabled"), "fail", "{all:#?}");
    assert_eq!(out.status.code(), Some(1));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
