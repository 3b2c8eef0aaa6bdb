//! The fault matrix (issue 10's adversarial suite): every fault class the proxy can inject ×
//! every registry request kind a delete run makes, each both on every matching request and on
//! the first one only. A plan is written on a healthy registry, then `delete --apply` runs
//! through the faulty proxy. Every cell must end in exit 2 (nothing deleted) or in outcomes that
//! are true: nothing outside the plan is gone, no tag outside the plan moved, and every item
//! reported deleted or already deleted is confirmed gone by the registry itself.
//!
//! Not covered here: the token endpoint (these registries run without token auth; the token
//! server's hostile answers are in `tests/hostile.rs`).

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::proxy::{Fault, Proxy, Reply};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const WITHOUT: [&str; 6] = ["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"];
const SELECTION: [&str; 3] = [
    "dominodatalab/environment:65a000000000000000000001-1",
    "dominodatalab/environment:65a000000000000000000004-1",
    "dominodatalab/model:65b000000000000000000002-v1-20250101120000_abc1",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Catalog,
    Tags,
    ManifestGet,
    ManifestHead,
    Blob,
    /// Every DELETE, the pre-flight probe first.
    Delete,
    /// The DELETEs of planned manifests (not the probe).
    DeletePlanned,
}

const KINDS: [Kind; 7] = [
    Kind::Catalog,
    Kind::Tags,
    Kind::ManifestGet,
    Kind::ManifestHead,
    Kind::Blob,
    Kind::Delete,
    Kind::DeletePlanned,
];

impl Kind {
    fn matches(self, method: &str, path: &str) -> bool {
        match self {
            Kind::Catalog => method == "GET" && path.starts_with("/v2/_catalog"),
            Kind::Tags => method == "GET" && path.contains("/tags/list"),
            Kind::ManifestGet => method == "GET" && path.contains("/manifests/"),
            Kind::ManifestHead => method == "HEAD" && path.contains("/manifests/"),
            Kind::Blob => method == "GET" && path.contains("/blobs/"),
            Kind::Delete => method == "DELETE",
            Kind::DeletePlanned => method == "DELETE" && !path.ends_with(&"0".repeat(64)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Class {
    S500,
    S429,
    Reset,
    Timeout,
    Bare404,
    Truncated,
    Oversized,
    WrongDigest,
}

impl Class {
    fn fault(self) -> Fault {
        match self {
            Class::S500 => Fault::Status(500, None),
            Class::S429 => Fault::Status(429, Some(0)),
            Class::Reset => Fault::Drop,
            // The client's timeout is 2 s (config below).
            Class::Timeout => Fault::Stall(Duration::from_secs(4)),
            Class::Bare404 => Fault::Status(404, None),
            // A JSON body cut short: the connection closes mid-way.
            Class::Truncated => Fault::Respond(Reply {
                content_length: false,
                ..Reply::new(
                    200,
                    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"dig"#
                        .to_vec(),
                )
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            }),
            // 16 MiB: over every body cap (manifest 4 MiB, list page and config 8 MiB).
            Class::Oversized => Fault::Respond(Reply {
                repeat: 256,
                ..Reply::new(200, vec![b' '; 64 * 1024]).header("Content-Type", "application/json")
            }),
            Class::WrongDigest => Fault::Header("Docker-Content-Digest".into(), format!("sha256:{}", "1".repeat(64))),
        }
    }
}

fn cmd(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(args)
        .args(["--registry", url, "--config", dir.join("config.yaml").to_str().unwrap()])
        .args(WITHOUT)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .stdin(Stdio::null())
        .output()
        .expect("run registry-cleaner")
}

/// Every (repository, digest) the registry serves, by tag; index children by digest.
fn state(c: &RegistryClient, rt: &tokio::runtime::Runtime) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for repo in ["dominodatalab/environment", "dominodatalab/model"] {
        for t in rt.block_on(c.tags(repo)).unwrap() {
            if let Some(d) = rt.block_on(c.head_manifest(repo, &t)).unwrap() {
                out.insert(format!("{repo}:{t}"), d);
            }
        }
    }
    out
}

/// One cell; returns the violations found (empty: the cell holds).
fn cell(template: &mut Registry, class: Class, kind: Kind, first_only: bool) -> (Option<i32>, Vec<String>) {
    let reg = template.copy();
    let rt = support::runtime();
    let direct = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let fired = Arc::new(AtomicBool::new(false));
    let (a, f) = (armed.clone(), fired.clone());
    let fault = class.fault();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, path: &str| {
            if a.load(Ordering::SeqCst) && kind.matches(m, path) && !(first_only && f.swap(true, Ordering::SeqCst)) {
                f.store(true, Ordering::SeqCst);
                fault.clone()
            } else {
                Fault::Pass
            }
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.yaml"),
        "registry:\n  timeout_seconds: 2\n  cache: false\nretry:\n  max_retries: 1\n  initial_delay: 0.05\n",
    )
    .unwrap();
    let url = proxy.url();
    let plan = dir.path().join("plan.json");
    let mut args = vec!["report", "--output", plan.to_str().unwrap()];
    for s in SELECTION {
        args.extend(["--select", s]);
    }
    let out = cmd(dir.path(), &url, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let planned: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    let manifests = planned["plan"]["manifests"].as_array().unwrap().clone();
    let planned_digests: BTreeSet<(String, String)> = manifests
        .iter()
        .map(|m| {
            (
                m["repository"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let before = state(&direct, &rt);
    armed.store(true, Ordering::SeqCst);
    let audit = dir.path().join("audit.jsonl");
    let out = cmd(
        dir.path(),
        &url,
        &[
            "delete",
            "--plan",
            plan.to_str().unwrap(),
            "--apply",
            "--force",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    armed.store(false, Ordering::SeqCst);
    let code = out.status.code();
    let mut bad = Vec::new();
    if !matches!(code, Some(0..=3)) {
        bad.push(format!("exit {code:?}: {}", String::from_utf8_lossy(&out.stderr)));
    }
    // Nothing outside the plan is gone or moved.
    let after = state(&direct, &rt);
    for (tag, digest) in &before {
        let (repo, _) = tag.rsplit_once(':').unwrap();
        if planned_digests.contains(&(repo.to_string(), digest.clone())) {
            continue;
        }
        if after.get(tag) != Some(digest) {
            bad.push(format!("unplanned {tag} ({digest}) is now {:?}", after.get(tag)));
        }
    }
    // The registry confirms what was reported gone; exit 2 means nothing was deleted.
    let results: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    for m in &manifests {
        let (repo, digest) = (m["repository"].as_str().unwrap(), m["digest"].as_str().unwrap());
        let gone = rt.block_on(direct.manifest_gone(repo, digest)).unwrap();
        if code == Some(2) && gone {
            bad.push(format!("exit 2 but {repo}@{digest} was deleted"));
        }
        let item = results["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["repository"] == repo && i["digest"] == digest));
        if let Some(i) = item
            && matches!(i["result"].as_str(), Some("deleted" | "already-deleted"))
            && !gone
        {
            bad.push(format!("{repo}@{digest} reported {} but still served", i["result"]));
        }
    }
    if code != Some(2) && results.is_null() {
        bad.push(format!("exit {code:?} without results JSON"));
    }
    if !fired.load(Ordering::SeqCst) {
        // A kind the run never asked for (e.g. a blob GET on a warm path) is not a cell.
        return (code, vec!["never fired".into()]);
    }
    (code, bad)
}

fn matrix(class: Class) {
    let mut template = Registry::start();
    support::runtime()
        .block_on(world::push(
            &RegistryClient::new(RegistryOptions::new(&template.url())).unwrap(),
            &sample_registry("dominodatalab", NOW),
        ))
        .unwrap();
    let mut violations = Vec::new();
    let mut cells = 0;
    for kind in KINDS {
        for first_only in [false, true] {
            let (code, bad) = cell(&mut template, class, kind, first_only);
            let mode = if first_only { "first" } else { "every" };
            if bad == ["never fired"] {
                eprintln!("{class:?} × {kind:?} ({mode}): not asked by the run");
                continue;
            }
            cells += 1;
            eprintln!("{class:?} × {kind:?} ({mode}): exit {code:?}, {} violations", bad.len());
            violations.extend(bad.into_iter().map(|b| format!("{class:?} × {kind:?} ({mode}): {b}")));
        }
    }
    assert!(cells >= 8, "{class:?}: only {cells} cells fired");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn fault_5xx() {
    matrix(Class::S500);
}

#[test]
fn fault_429() {
    matrix(Class::S429);
}

#[test]
fn fault_connection_reset() {
    matrix(Class::Reset);
}

#[test]
fn fault_timeout() {
    matrix(Class::Timeout);
}

#[test]
fn fault_bare_404() {
    matrix(Class::Bare404);
}

#[test]
fn fault_truncated_body() {
    matrix(Class::Truncated);
}

#[test]
fn fault_oversized_body() {
    matrix(Class::Oversized);
}

#[test]
fn fault_wrong_content_digest() {
    matrix(Class::WrongDigest);
}
