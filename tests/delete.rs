//! `delete --plan` end to end against a real registry: dry run, apply, byte-exact GC,
//! idempotent re-runs, SIGKILL mid-run, fault injection on deletes, changes between plan and
//! apply, and every kind of bad plan file.

mod support;

use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, TagSpec, sample_registry};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::proxy::{Fault, Proxy};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const ENV: &str = "dominodatalab/environment";
const WITHOUT: [&str; 6] = ["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"];

fn cmd(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args(args)
        .args(["--registry", url])
        .args(WITHOUT)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .stdin(Stdio::null());
    c
}

fn run(dir: &Path, url: &str, args: &[&str]) -> Output {
    cmd(dir, url, args).output().expect("run registry-cleaner")
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn pushed() -> (Registry, Vec<TagSpec>) {
    let reg = Registry::start();
    let specs = sample_registry("dominodatalab", NOW);
    support::runtime()
        .block_on(world::push(
            &RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap(),
            &specs,
        ))
        .unwrap();
    (reg, specs)
}

/// Starts `delete --plan P --apply --force` in the background (output discarded), to be killed.
fn spawn_apply(dir: &Path, url: &str, plan: &str, audit: &str, concurrency: &str) -> std::process::Child {
    cmd(
        dir,
        url,
        &[
            "delete",
            "--plan",
            plan,
            "--apply",
            "--force",
            "--concurrency",
            concurrency,
            "--audit-log",
            audit,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// Digests of planned DELETEs (the pre-flight probe's excluded), as `Proxy` rules see them.
type Seen = Arc<std::sync::Mutex<Vec<String>>>;

/// A proxy rule for planned DELETEs while the returned switch is on (every request passes
/// once it is off): `pick` gets how many were recorded so far and says whether to record this
/// one and what the proxy does with it.
fn planned_deletes(
    pick: impl Fn(usize) -> (bool, Fault) + Send + Sync + 'static,
) -> (Arc<support::proxy::Rule>, Seen, Arc<AtomicBool>) {
    let seen: Seen = Arc::default();
    let hold = Arc::new(AtomicBool::new(true));
    let (s, h) = (seen.clone(), hold.clone());
    let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
        if m != "DELETE" || path.contains(&"0".repeat(64)) || !h.load(Ordering::SeqCst) {
            return Fault::Pass;
        }
        let mut s = s.lock().unwrap();
        let (record, fault) = pick(s.len());
        if record {
            s.push(path.rsplit('/').next().unwrap_or_default().to_string());
        }
        fault
    });
    (rule, seen, hold)
}

/// Writes a plan for the selected tags through the real binary.
fn plan(dir: &Path, url: &str, select: &[&str]) -> (PathBuf, Value) {
    let path = dir.join("plan.json");
    let mut args = vec!["report", "--output", path.to_str().unwrap()];
    for s in select {
        args.push("--select");
        args.push(s);
    }
    let out = run(dir, url, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, v)
}

/// Whole digests: `01-3` comes with its sibling `01-3-release` (a partial selection untags).
const SELECTION: [&str; 5] = [
    "dominodatalab/environment:65a000000000000000000001-1",
    "dominodatalab/environment:65a000000000000000000001-3",
    "dominodatalab/environment:65a000000000000000000001-3-release",
    "dominodatalab/environment:65a000000000000000000004-1",
    "dominodatalab/model:65b000000000000000000002-v1-20250101120000_abc1",
];

#[test]
fn dry_run_then_apply_frees_exactly_the_plan_and_a_rerun_is_idempotent() {
    let (mut reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let (plan_path, plan) = plan(dir.path(), &url, &SELECTION);
    let p = plan_path.to_str().unwrap();
    let predicted = plan["plan"]["reclaimable_bytes"].as_u64().unwrap();
    let manifests = plan["plan"]["manifests"].as_array().unwrap().len();
    assert_eq!(manifests, 6, "4 tagged manifests + 2 index children");

    let dry = ok_json(&run(dir.path(), &url, &["delete", "--plan", p]));
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["summary"]["would_delete"], manifests);
    assert_eq!(dry["reclaimable_bytes_after_gc"], predicted);
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    let rt = support::runtime();
    assert!(
        rt.block_on(c.head_manifest(ENV, "65a000000000000000000001-1"))
            .unwrap()
            .is_some(),
        "dry run deleted nothing"
    );

    let audit = dir.path().join("audit.jsonl");
    let applied = ok_json(&run(
        dir.path(),
        &url,
        &[
            "delete",
            "--plan",
            p,
            "--apply",
            "--force",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    ));
    assert_eq!(applied["summary"]["deleted"], manifests, "{applied}");
    assert_eq!(applied["summary"]["failed"], 0);
    assert_eq!(applied["reclaimable_bytes_after_gc"], predicted);
    let lines = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        lines.lines().filter(|l| l.contains("\"result\":\"deleted\"")).count(),
        manifests
    );
    assert!(lines.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    let again = ok_json(&run(
        dir.path(),
        &url,
        &[
            "delete",
            "--plan",
            p,
            "--apply",
            "--force",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    ));
    assert_eq!(again["summary"]["deleted"], 0);
    assert_eq!(again["summary"]["already_deleted"], manifests, "{again}");

    reg.stop();
    let before = reg.blob_bytes();
    reg.garbage_collect();
    assert_eq!(
        before - reg.blob_bytes(),
        predicted,
        "bytes freed by GC equal the plan's reclaimable_bytes"
    );
}

#[test]
fn bad_plans_are_refused_with_clear_errors_and_nothing_is_deleted() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let (path, plan) = plan(dir.path(), &url, &SELECTION[..1]);
    let text = std::fs::read_to_string(&path).unwrap();
    let check = |name: &str, content: &str, expect: &str| {
        let f = dir.path().join(name);
        std::fs::write(&f, content).unwrap();
        let out = run(
            dir.path(),
            &url,
            &["delete", "--plan", f.to_str().unwrap(), "--apply", "--force"],
        );
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains(expect), "{name}: {err}");
    };
    check("truncated.json", &text[..text.len() / 2], "not a valid plan");
    check("garbage.json", "hello", "not a valid plan");
    let d = plan["plan"]["manifests"][0]["digest"].as_str().unwrap();
    check(
        "tampered.json",
        &text.replace(d, &format!("sha256:{}", "1".repeat(64))),
        "modified",
    );
    let mut other = plan.clone();
    other["registry"] = Value::from("elsewhere:5000");
    check("other-registry.json", &other.to_string(), "checksum");
    let missing = run(dir.path(), &url, &["delete", "--plan", "nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.json"));
    // Limits and confirmation.
    let p = path.to_str().unwrap();
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", p, "--apply", "--force", "--max-delete", "0"],
    );
    assert!(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("--max-delete"));
    let out = run(dir.path(), &url, &["delete", "--plan", p, "--apply"]);
    assert!(out.status.code() == Some(2) && String::from_utf8_lossy(&out.stderr).contains("--force"));
    // The same plan for another registry host (a second registry) is refused.
    let (reg2, _) = pushed();
    let out = run(dir.path(), &reg2.url(), &["delete", "--plan", p, "--apply", "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("plan is for registry"));
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    assert!(
        support::runtime()
            .block_on(c.head_manifest(ENV, "65a000000000000000000001-1"))
            .unwrap()
            .is_some()
    );
}

#[test]
fn an_expired_plan_is_refused() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let snap = dir.path().join("snap.json");
    assert!(
        run(dir.path(), &url, &["scan", "--output", snap.to_str().unwrap()])
            .status
            .success()
    );
    let mut s: Value = serde_json::from_slice(&std::fs::read(&snap).unwrap()).unwrap();
    s["generated_at"] = Value::from("2020-01-01T00:00:00Z");
    std::fs::write(&snap, s.to_string()).unwrap();
    let path = dir.path().join("old-plan.json");
    let out = run(
        dir.path(),
        &url,
        &[
            "report",
            "--snapshot",
            snap.to_str().unwrap(),
            "--select",
            SELECTION[0],
            "-o",
            path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));
}

#[test]
fn a_new_sibling_or_a_moved_tag_between_plan_and_apply_is_skipped() {
    let (reg, specs) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let (path, _) = plan(dir.path(), &url, &SELECTION[..3]);
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    let rt = support::runtime();
    // A new tag on the first planned digest; the second planned tag re-pushed elsewhere.
    let mut sibling = specs[0].clone();
    sibling.tag = "65a000000000000000000001-1-pinned".into();
    let mut moved = specs[2].clone();
    moved.target = specs[5].target.clone();
    rt.block_on(world::push(&c, &[sibling, moved])).unwrap();
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    );
    // Everything planned was skipped: exit 3, so an unattended run notices.
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).expect("results JSON");
    assert_eq!(r["summary"]["deleted"], 0, "{r}");
    let reasons: Vec<&str> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["reason"].as_str())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("-pinned") && x.contains("not in the plan")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|x| x.contains("now points at")), "{reasons:?}");
}

#[test]
fn failing_deletes_are_reported_and_retried_deletes_succeed() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let armed = Arc::new(AtomicBool::new(false));
    let a = armed.clone();
    // Deletes of one index child always fail with 500; the first DELETE of anything else gets
    // a 429 with Retry-After; the pre-flight probe passes.
    let seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
        if !a.load(Ordering::SeqCst) || m != "DELETE" || path.contains(&"0".repeat(64)) {
            return Fault::Pass;
        }
        if path.contains("/manifests/sha256:") && seen.lock().unwrap().insert(path.to_string()) {
            return Fault::Status(429, Some(1));
        }
        Fault::Pass
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let url = proxy.url();
    let (path, planned) = plan(dir.path(), &url, &SELECTION[..3]);
    armed.store(true, Ordering::SeqCst);
    let r = ok_json(&run(
        dir.path(),
        &url,
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    ));
    assert_eq!(
        r["summary"]["deleted"],
        planned["plan"]["manifests"].as_array().unwrap().len(),
        "{r}"
    );
    assert!(proxy.faults.load(Ordering::SeqCst) >= 2);

    // Now a registry that answers 500 to every DELETE: failures, exit code 1.
    let (reg2, _) = pushed();
    let broken = Arc::new(|_n: u64, m: &str, path: &str| {
        if m == "DELETE" && !path.contains(&"0".repeat(64)) {
            Fault::Status(500, None)
        } else {
            Fault::Pass
        }
    });
    let proxy2 = Proxy::start(&rt, reg2.url(), broken);
    let url2 = proxy2.url();
    let (path2, _) = plan(dir.path(), &url2, &SELECTION[..1]);
    let out = cmd(
        dir.path(),
        &url2,
        &["delete", "--plan", path2.to_str().unwrap(), "--apply", "--force"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["summary"]["failed"], 1);
    assert!(r["items"][0]["error"].as_str().unwrap().contains("500"));
}

#[test]
fn deletes_disabled_fail_preflight_with_the_setting_to_fix() {
    let mut reg = Registry::start();
    reg.extra_env
        .push(("REGISTRY_STORAGE_DELETE_ENABLED".into(), "false".into()));
    reg.stop();
    reg.resume();
    support::runtime()
        .block_on(world::push(
            &RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap(),
            &sample_registry("dominodatalab", NOW),
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = plan(dir.path(), &reg.url(), &SELECTION[..1]);
    let out = run(
        dir.path(),
        &reg.url(),
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REGISTRY_STORAGE_DELETE_ENABLED"));
}

#[test]
fn killed_mid_run_then_rerun_finishes_with_exact_bytes() {
    let (mut reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    // Every DELETE after the probe takes 400 ms (forwarded late), so the kill lands mid-run.
    let slow = Arc::new(|_n: u64, m: &str, path: &str| {
        if m == "DELETE" && !path.contains(&"0".repeat(64)) {
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
        Fault::Pass
    });
    let proxy = Proxy::start(&rt, reg.url(), slow);
    let url = proxy.url();
    let (path, planned) = plan(dir.path(), &url, &SELECTION);
    let p = path.to_str().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = audit.to_str().unwrap();
    let mut child = spawn_apply(dir.path(), &url, p, a, "1");
    // Kill (SIGKILL) as soon as the audit log shows the first deletion.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&audit)
        .unwrap_or_default()
        .contains("\"result\":\"deleted\"")
    {
        assert!(std::time::Instant::now() < deadline, "no deletion within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let r = ok_json(&run(dir.path(), &url, &["delete", "--plan", p, "--apply", "--force"]));
    let s = &r["summary"];
    let total = planned["plan"]["manifests"].as_array().unwrap().len() as u64;
    assert_eq!(s["failed"], 0, "{r}");
    assert!(
        s["already_deleted"].as_u64().unwrap() >= 1,
        "the first run got somewhere: {r}"
    );
    assert_eq!(
        s["deleted"].as_u64().unwrap() + s["already_deleted"].as_u64().unwrap(),
        total,
        "{r}"
    );
    drop(proxy);
    reg.stop();
    let before = reg.blob_bytes();
    reg.garbage_collect();
    assert_eq!(
        before - reg.blob_bytes(),
        planned["plan"]["reclaimable_bytes"].as_u64().unwrap()
    );
}

/// The proxy forwards the first `K` manifest DELETEs and holds every later one, so the run is
/// stopped in the middle of a phase; SIGKILL then. The audit log must already hold exactly the
/// `K` deletes the registry acknowledged (an executor that writes per phase has none), and a
/// re-run completes the plan.
#[test]
fn sigkill_mid_phase_leaves_exactly_the_acknowledged_deletes_in_the_audit_log() {
    const K: usize = 2;
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let (rule, forwarded, hold) = planned_deletes(|n| match n < K {
        true => (true, Fault::Pass),
        false => (false, Fault::Stall(std::time::Duration::from_secs(600))),
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let url = proxy.url();
    let (path, planned) = plan(dir.path(), &url, &SELECTION);
    let p = path.to_str().unwrap();
    let first_phase = planned["plan"]["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("child_of").is_none())
        .count();
    assert!(first_phase > K, "K must be in the middle of the first phase");
    let audit = dir.path().join("audit.jsonl");
    let a = audit.to_str().unwrap();
    let mut child = spawn_apply(dir.path(), &url, p, a, "4");
    let deleted_lines = || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"result\":\"deleted\""))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while deleted_lines().len() < K && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Let anything else that could be written be written, then kill.
    std::thread::sleep(std::time::Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let lines = deleted_lines();
    let acked = forwarded.lock().unwrap().clone();
    assert_eq!(acked.len(), K, "the proxy forwarded {acked:?}");
    assert_eq!(lines.len(), K, "audit log after SIGKILL: {lines:#?}");
    for d in &acked {
        assert_eq!(
            lines.iter().filter(|l| l.contains(d.as_str())).count(),
            1,
            "{d} in {lines:#?}"
        );
    }
    // A re-run (nothing held any more) completes the plan.
    hold.store(false, Ordering::SeqCst);
    let r = ok_json(&run(dir.path(), &url, &["delete", "--plan", p, "--apply", "--force"]));
    let s = &r["summary"];
    let total = planned["plan"]["manifests"].as_array().unwrap().len() as u64;
    assert_eq!(s["failed"], 0, "{r}");
    assert_eq!(s["already_deleted"].as_u64().unwrap(), K as u64, "{r}");
    assert_eq!(s["deleted"].as_u64().unwrap() + K as u64, total, "{r}");
}

/// The registry applies the first planned DELETE and its answer never comes back; SIGKILL
/// then. The tool never read an answer, so only a line written *before* the request can name
/// it: the audit log must hold that DELETE's `started` line (without the write-ahead line it
/// holds nothing for it), and the re-run records it `already-deleted`.
#[test]
fn a_delete_applied_but_never_answered_is_in_the_audit_log_after_sigkill() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let (rule, forwarded, hold) = planned_deletes(|n| match n {
        0 => (true, Fault::AppliedThenStall(std::time::Duration::from_secs(600))),
        _ => (true, Fault::Stall(std::time::Duration::from_secs(600))),
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let url = proxy.url();
    let (path, planned) = plan(dir.path(), &url, &SELECTION);
    let p = path.to_str().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let a = audit.to_str().unwrap();
    let mut child = spawn_apply(dir.path(), &url, p, a, "1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while forwarded.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no DELETE within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The DELETE is applied by now or in a moment; kill without giving the tool any time.
    child.kill().unwrap();
    child.wait().unwrap();
    let victim = forwarded.lock().unwrap()[0].clone();
    let text = std::fs::read_to_string(&audit).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(victim.as_str())).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"action\":\"delete-manifest\"") && l.contains("\"result\":\"started\"")),
        "no write-ahead line for the forwarded DELETE of {victim}: {text}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("\"result\":\"deleted\"")),
        "the tool never saw an answer, so it cannot have recorded a result: {lines:?}"
    );
    hold.store(false, Ordering::SeqCst);
    let r = ok_json(&run(
        dir.path(),
        &url,
        &["delete", "--plan", p, "--apply", "--force", "--audit-log", a],
    ));
    let total = planned["plan"]["manifests"].as_array().unwrap().len() as u64;
    assert_eq!(r["summary"]["failed"], 0, "{r}");
    assert_eq!(
        r["summary"]["deleted"].as_u64().unwrap() + r["summary"]["already_deleted"].as_u64().unwrap(),
        total,
        "{r}"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains(victim.as_str()) && l.contains("\"result\":\"already-deleted\"")),
        "the re-run closes the started line: {text}"
    );
}

/// A plan whose repository carries a path and a query (checksum recomputed: it is unkeyed)
/// must not reach the registry: before the fix the pre-flight probe's DELETE went to
/// `/v2/<repo>/manifests/<victim>?x=/manifests/<probe>` and deleted the victim.
#[test]
fn crafted_plan_names_are_refused_before_any_request_and_the_victim_stays() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    // Every DELETE that reaches the registry is counted (the pre-flight probe included).
    let deletes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let d = deletes.clone();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, _path: &str| {
            if m == "DELETE" {
                d.fetch_add(1, Ordering::SeqCst);
            }
            Fault::Pass
        }),
    );
    let url = proxy.url();
    let (path, _) = plan(dir.path(), &url, &SELECTION[..1]);
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let victim_tag = "65a000000000000000000002-1";
    let victim = rt.block_on(c.head_manifest(ENV, victim_tag)).unwrap().unwrap();
    let report: registry_cleaner::report::json::Report =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let crafted = [
        format!("{ENV}/manifests/{victim}?x="),
        format!("{ENV}/../environment"),
        "other/environment".to_string(),
        format!("{ENV}/{}", "a".repeat(10_000)),
    ];
    for (i, repo) in crafted.iter().enumerate() {
        let mut r = report.clone();
        r.plan.registry = r.registry.clone();
        r.plan.manifests[0].repository = repo.clone();
        for t in &mut r.plan.tags {
            t.repository = repo.clone();
        }
        r.plan.seal();
        let f = dir.path().join(format!("crafted-{i}.json"));
        std::fs::write(&f, serde_json::to_vec(&r).unwrap()).unwrap();
        let out = run(
            dir.path(),
            &url,
            &["delete", "--plan", f.to_str().unwrap(), "--apply", "--force"],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("repository"), "{repo}: {err}");
        assert_eq!(
            rt.block_on(c.head_manifest(ENV, victim_tag)).unwrap().as_deref(),
            Some(victim.as_str()),
            "{repo}: the victim is still there"
        );
        assert_eq!(
            deletes.load(Ordering::SeqCst),
            0,
            "{repo}: no DELETE reached the registry"
        );
    }
}

/// Another index shares a child with the planned index, and the registry cannot serve that
/// other index (a persistent 500 at plan and at delete time): the shared child must never be
/// deleted, or the other index breaks.
#[test]
fn an_unreadable_index_keeps_the_child_it_shares_with_a_planned_index() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let arch = |a: &str, seed: u64| world::ImageSpec {
        layers: vec![
            world::LayerSpec { seed, size: 15_000 },
            world::LayerSpec {
                seed: seed + 1,
                size: 4_000,
            },
        ],
        created: NOW - 20 * 86_400,
        flavor: world::MediaFlavor::Oci,
        architecture: a.into(),
        label: format!("multi-{a}"),
    };
    // Shares the amd64 child of `65a…04-1`; its other child is its own.
    let other = TagSpec {
        repository: ENV.into(),
        tag: "shared-idx".into(),
        target: world::TagTarget::Index {
            flavor: world::MediaFlavor::Oci,
            images: vec![arch("amd64", 500), arch("s390x", 700)],
        },
    };
    let direct = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    rt.block_on(world::push(&direct, std::slice::from_ref(&other))).unwrap();
    let other_digest = world::tag_digest(&other.target);
    let shared_child = world::tag_digest(&world::TagTarget::Image(arch("amd64", 500)));
    let od = other_digest.clone();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, path: &str| {
            let reads_other = path.ends_with("/manifests/shared-idx") || path.ends_with(&format!("/manifests/{od}"));
            if (m == "GET" || m == "HEAD") && reads_other {
                Fault::Status(500, None)
            } else {
                Fault::Pass
            }
        }),
    );
    let url = proxy.url();
    let (path, _) = plan(
        dir.path(),
        &url,
        &["dominodatalab/environment:65a000000000000000000004-1"],
    );
    let p = path.to_str().unwrap();
    let out = run(dir.path(), &url, &["delete", "--plan", p, "--apply", "--force"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        rt.block_on(direct.manifest_gone(ENV, &shared_child)).ok() == Some(false),
        "the shared child is still there: {v}"
    );
    // The other index is whole: every child it lists can be read.
    let idx = rt
        .block_on(direct.get_manifest(ENV, &other_digest))
        .expect("other index");
    let body: Value = serde_json::from_slice(&idx.body).unwrap();
    for c in body["manifests"].as_array().unwrap() {
        let d = c["digest"].as_str().unwrap();
        rt.block_on(direct.get_manifest(ENV, d))
            .unwrap_or_else(|e| panic!("child {d} of the other index: {e}"));
    }
}

/// Limits count what the plan really deletes: a crafted plan that empties `plan.tags` and
/// zeroes `reclaimable_bytes` (checksum recomputed) is refused, and `--max-bytes` holds
/// against the fresh data. A plan written with the Mongo cleanup on is not run without it.
#[test]
fn limits_and_switches_cannot_be_dodged_by_editing_the_plan() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let (path, _) = plan(dir.path(), &url, &SELECTION);
    let report: registry_cleaner::report::json::Report =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let write = |name: &str, r: &registry_cleaner::report::json::Report| {
        let f = dir.path().join(name);
        std::fs::write(&f, serde_json::to_vec(r).unwrap()).unwrap();
        f.to_str().unwrap().to_string()
    };
    let mut r = report.clone();
    r.plan.registry = r.registry.clone();
    r.plan.tags.clear();
    r.plan.reclaimable_bytes = 0;
    r.plan.seal();
    let f = write("no-tags.json", &r);
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", &f, "--apply", "--force", "--max-delete", "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plan.tags"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut r = report.clone();
    r.plan.registry = r.registry.clone();
    r.plan.reclaimable_bytes = 0;
    r.plan.seal();
    let f = write("zero-bytes.json", &r);
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", &f, "--apply", "--force", "--max-bytes", "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("on fresh data"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut r = report.clone();
    r.plan.registry = r.registry.clone();
    r.plan.set_mongo_cleanup(true);
    let f = write("mongo-on.json", &r);
    let out = run(dir.path(), &url, &["delete", "--plan", &f, "--apply", "--force"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--mongo-cleanup"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing was deleted by any of them.
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    let rt = support::runtime();
    for s in SELECTION {
        let (repo, tag) = s.rsplit_once(':').unwrap();
        assert!(rt.block_on(c.head_manifest(repo, tag)).unwrap().is_some(), "{s}");
    }
}

/// A DELETE the registry applied but whose answer was lost (the front answers 500 after the
/// backend deleted): the executor asks before looking again, and records it as deleted — not
/// failed, not "already deleted" by someone else.
#[test]
fn a_delete_applied_but_answered_500_is_recorded_as_deleted() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let once = Arc::new(AtomicBool::new(false));
    let o = once.clone();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, path: &str| {
            // Not the pre-flight probe (a digest of zeros): the first real DELETE.
            if m == "DELETE" && !path.contains(&"0".repeat(64)) && !o.swap(true, Ordering::SeqCst) {
                Fault::Applied(500)
            } else {
                Fault::Pass
            }
        }),
    );
    let url = proxy.url();
    let (path, _) = plan(
        dir.path(),
        &url,
        &["dominodatalab/environment:65a000000000000000000001-1"],
    );
    let audit = dir.path().join("audit.jsonl");
    let out = run(
        dir.path(),
        &url,
        &[
            "delete",
            "--plan",
            path.to_str().unwrap(),
            "--apply",
            "--force",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    );
    let v = ok_json(&out);
    assert!(once.load(Ordering::SeqCst), "the fault fired");
    assert_eq!(v["summary"]["deleted"], 1, "{v}");
    assert_eq!(v["summary"]["already_deleted"], 0, "{v}");
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("delete-manifest") && l.contains("\"deleted\"")),
        "{log}"
    );
}

/// The re-list just before a DELETE must be a list: a 200 whose body has no `tags` (or holds
/// something else) is not "no tags", so nothing is deleted on it.
#[test]
fn a_relist_without_a_tags_list_stops_the_delete() {
    for body in [
        r#"{"name":"dominodatalab/environment"}"#,
        r#"{"name":"x","tags":"all"}"#,
        r#"{"tags":[1]}"#,
    ] {
        let (reg, _) = pushed();
        let dir = tempfile::tempdir().unwrap();
        let rt = support::runtime();
        let armed = Arc::new(AtomicBool::new(false));
        let lists = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (a, l) = (armed.clone(), lists.clone());
        let proxy = Proxy::start(
            &rt,
            reg.url(),
            Arc::new(move |_n: u64, m: &str, path: &str| {
                // Armed after planning: the delete's fresh scan gets the real list, the re-list
                // after it gets the malformed one.
                if a.load(Ordering::SeqCst)
                    && m == "GET"
                    && path.contains("/environment/tags/list")
                    && l.fetch_add(1, Ordering::SeqCst) >= 1
                {
                    Fault::Respond(support::proxy::Reply::new(200, body).header("Content-Type", "application/json"))
                } else {
                    Fault::Pass
                }
            }),
        );
        let url = proxy.url();
        let (path, _) = plan(
            dir.path(),
            &url,
            &["dominodatalab/environment:65a000000000000000000001-1"],
        );
        armed.store(true, Ordering::SeqCst);
        let out = run(
            dir.path(),
            &url,
            &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        assert_eq!(out.status.code(), Some(1), "{body}: {v}");
        assert_eq!(v["summary"]["deleted"], 0, "{body}: {v}");
        assert!(lists.load(Ordering::SeqCst) >= 2, "the re-list was asked");
        let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
        let d = rt.block_on(c.head_manifest(ENV, "65a000000000000000000001-1")).unwrap();
        assert!(d.is_some(), "{body}: the tag is still there");
    }
}

/// The interactive confirmation path: what was confirmed is re-checked on data read after the
/// prompt, and `--max-bytes` holds on that data too. While the operator looks at the prompt,
/// the only other image sharing the planned image's big layer is deleted, so the planned
/// delete would now free that layer as well: over the limit, nothing is deleted.
#[test]
fn max_bytes_holds_on_the_data_reloaded_after_an_interactive_confirmation() {
    use registry_cleaner::ops::delete_run::{self, Observer, Request};
    use registry_cleaner::settings::{FlagOverrides, Settings};
    let reg = Registry::start();
    let url = reg.url();
    let rt = support::runtime();
    let image = |seeds: [u64; 2], label: &str| world::ImageSpec {
        layers: vec![
            world::LayerSpec {
                seed: seeds[0],
                size: 10_000,
            },
            world::LayerSpec {
                seed: seeds[1],
                size: 500_000,
            },
        ],
        created: NOW - 20 * 86_400,
        flavor: world::MediaFlavor::Oci,
        architecture: "amd64".into(),
        label: label.into(),
    };
    let specs = [
        TagSpec {
            repository: ENV.into(),
            tag: "planned".into(),
            target: world::TagTarget::Image(image([1, 2], "a")),
        },
        TagSpec {
            repository: ENV.into(),
            tag: "sharer".into(),
            target: world::TagTarget::Image(image([3, 2], "b")),
        },
    ];
    let direct = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    rt.block_on(world::push(&direct, &specs)).unwrap();
    let sharer = world::tag_digest(&specs[1].target);
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = plan(dir.path(), &url, &["dominodatalab/environment:planned"]);
    let report: registry_cleaner::report::json::Report =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let flags = FlagOverrides {
        registry: Some(url.clone()),
        without: vec![
            registry_cleaner::dataset::SourceKind::Mongo,
            registry_cleaner::dataset::SourceKind::Kubernetes,
            registry_cleaner::dataset::SourceKind::Keycloak,
        ],
        ..FlagOverrides::default()
    };
    let env = [("HOME".to_string(), dir.path().display().to_string())]
        .into_iter()
        .collect();
    let settings = Settings::load(None, &env, &flags).expect("settings");
    let mut plan = report.plan;
    plan.settings_fingerprint = registry_cleaner::ops::connect::settings_fingerprint(&settings);
    plan.seal();
    let limit = plan.reclaimable_bytes + 100_000;
    assert!(
        plan.reclaimable_bytes < 100_000,
        "only the small layer is the plan's own"
    );

    struct Prompt<'a> {
        url: &'a str,
        sharer: &'a str,
        asked: AtomicBool,
    }
    impl Observer for Prompt<'_> {
        fn asks(&self) -> bool {
            true
        }
        fn confirm(&self, _d: usize, _t: usize, _b: u64, _r: usize) -> bool {
            // Someone else deletes the sharing image while the prompt waits (on a thread and
            // runtime of its own: this one is inside the run).
            std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let c = RegistryClient::new(RegistryOptions::new(self.url)).unwrap();
                    rt.block_on(c.delete_manifest_answer(ENV, self.sharer)).unwrap();
                });
            });
            self.asked.store(true, Ordering::SeqCst);
            true
        }
    }
    let obs = Prompt {
        url: &url,
        sharer: &sharer,
        asked: AtomicBool::new(false),
    };
    let req = Request {
        plan,
        label: "test".into(),
        apply: true,
        mongo_cleanup: false,
        backup: None,
        audit_log: Some(dir.path().join("audit.jsonl")),
        max_delete: None,
        max_bytes: Some(limit),
        cancel: None,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let err = rt
        .block_on(delete_run::run(&settings, &req, &obs, now))
        .expect_err("over the limit after the reload");
    assert!(obs.asked.load(Ordering::SeqCst), "the prompt was shown");
    assert!(err.to_string().contains("--max-bytes"), "{err}");
    let d = rt.block_on(direct.head_manifest(ENV, "planned")).unwrap();
    assert!(d.is_some(), "nothing was deleted");
}

/// Selecting one of two tags on a digest removes only that tag (regctl's safe single-tag
/// delete): the plan says `untag` and 0 bytes, the run points the tag at a throwaway manifest
/// and deletes that by digest, and the sibling still resolves, pulls, and survives GC whole.
#[test]
fn untagging_one_of_two_tags_keeps_the_image_for_its_sibling_through_gc() {
    let (mut reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let url = reg.url();
    let rt = support::runtime();
    let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    let (one, sibling) = ("65a000000000000000000001-3", "65a000000000000000000001-3-release");
    let digest = rt.block_on(c.head_manifest(ENV, one)).unwrap().unwrap();
    assert_eq!(
        rt.block_on(c.head_manifest(ENV, sibling)).unwrap().as_deref(),
        Some(digest.as_str()),
        "the world has two tags on one digest"
    );
    let (path, planned) = plan(dir.path(), &url, &[&format!("{ENV}:{one}")]);
    let m = &planned["plan"]["manifests"][0];
    assert_eq!(m["untag"], true, "{planned}");
    assert_eq!(m["tags"], serde_json::json!([one]), "only the selected tag: {planned}");
    assert_eq!(
        planned["plan"]["reclaimable_bytes"], 0,
        "the image stays: GC frees nothing"
    );
    let audit = dir.path().join("audit.jsonl");
    let p = path.to_str().unwrap();
    let dry = ok_json(&run(dir.path(), &url, &["delete", "--plan", p]));
    assert_eq!(dry["reclaimable_bytes_after_gc"], 0, "{dry}");
    let out = ok_json(&run(
        dir.path(),
        &url,
        &[
            "delete",
            "--plan",
            p,
            "--apply",
            "--force",
            "--audit-log",
            audit.to_str().unwrap(),
        ],
    ));
    assert_eq!(out["summary"]["untagged"], 1, "{out}");
    assert_eq!(out["items"][0]["result"], "untagged", "{out}");
    assert_eq!(out["reclaimable_bytes_after_gc"], 0, "{out}");
    assert!(std::fs::read_to_string(&audit).unwrap().contains("\"untagged\""));
    assert_eq!(rt.block_on(c.head_manifest(ENV, one)).unwrap(), None, "the tag is gone");
    let pull = |c: &RegistryClient| {
        let m = rt.block_on(c.get_manifest(ENV, sibling)).expect("sibling manifest");
        assert_eq!(m.digest, digest);
        let body: Value = serde_json::from_slice(&m.body).unwrap();
        let mut blobs: Vec<String> = vec![body["config"]["digest"].as_str().unwrap().to_string()];
        blobs.extend(
            body["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string()),
        );
        for b in blobs {
            assert!(rt.block_on(c.blob_exists(ENV, &b)).unwrap(), "blob {b} of the sibling");
        }
    };
    pull(&c);
    // Nothing else went: the other tags all still resolve.
    let tags = rt.block_on(c.tags(ENV)).unwrap();
    assert!(!tags.contains(&one.to_string()) && tags.contains(&sibling.to_string()));
    reg.stop();
    reg.garbage_collect();
    reg.resume();
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    pull(&c);
}

/// A new index pushed after the fresh scan that lists the planned manifest: its tag is on
/// another digest, so only a look inside it shows the DELETE would break it. The proxy pushes
/// it the moment the last look re-lists the repository.
#[test]
fn a_new_index_listing_the_planned_manifest_found_by_the_last_look_keeps_it() {
    let (reg, specs) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let world::TagTarget::Image(img) = specs[0].target.clone() else {
        panic!("the first sample tag is an image")
    };
    let planned = world::tag_digest(&specs[0].target);
    let armed = Arc::new(AtomicBool::new(false));
    let lists = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (a, l, url_direct) = (armed.clone(), lists.clone(), reg.url());
    let index = TagSpec {
        repository: ENV.into(),
        tag: "sneaky-multi".into(),
        target: world::TagTarget::Index {
            flavor: img.flavor,
            images: vec![img],
        },
    };
    let pushed_index = index.clone();
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, path: &str| {
            if a.load(Ordering::SeqCst)
                && m == "GET"
                && path.contains("/environment/tags/list")
                && l.fetch_add(1, Ordering::SeqCst) == 1
            {
                let (u, spec) = (url_direct.clone(), pushed_index.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    let c = RegistryClient::new(RegistryOptions::new(&u)).unwrap();
                    rt.block_on(world::push(&c, &[spec])).unwrap();
                })
                .join()
                .unwrap();
            }
            Fault::Pass
        }),
    );
    let url = proxy.url();
    let (path, _) = plan(dir.path(), &url, &[SELECTION[0]]);
    armed.store(true, Ordering::SeqCst);
    let out = run(
        dir.path(),
        &url,
        &["delete", "--plan", path.to_str().unwrap(), "--apply", "--force"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(lists.load(Ordering::SeqCst) >= 2, "the re-list happened");
    let c = RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap();
    let idx = rt
        .block_on(c.get_manifest(ENV, "sneaky-multi"))
        .expect("the index was pushed");
    let body: Value = serde_json::from_slice(&idx.body).unwrap();
    assert!(
        body.to_string().contains(&planned),
        "the new index lists the planned manifest"
    );
    assert_eq!(out.status.code(), Some(3), "{v}");
    assert!(
        v["items"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("sneaky-multi")),
        "{v}"
    );
    assert_eq!(rt.block_on(c.manifest_gone(ENV, &planned)).ok(), Some(false), "kept");
}

/// The audit log fills up mid-run (a file-size limit of 4 KiB, SIGXFSZ ignored, so a write past
/// it fails with EFBIG as on a full disk). No DELETE may reach the registry without its
/// `started` line on disk, none is sent after the first line that could not be written, and
/// the run exits non-zero naming the audit log.
#[test]
fn a_full_audit_log_stops_the_run_and_every_forwarded_delete_is_named_in_it() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let (rule, forwarded, _) = planned_deletes(|_| (true, Fault::Pass));
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let url = proxy.url();
    let (path, planned) = plan(dir.path(), &url, &SELECTION);
    let total = planned["plan"]["manifests"].as_array().unwrap().len();
    // Nothing else the run writes may hit the limit first: no scan cache, logs to stderr.
    std::fs::write(dir.path().join("config.yaml"), "registry:\n  cache: false\n").unwrap();
    let audit = dir.path().join("audit.jsonl");
    // Room for a few lines, not for the whole plan's (two lines per manifest, ~250 bytes each).
    std::fs::write(&audit, format!("{}\n", "#".repeat(3000))).unwrap();
    let bin = env!("CARGO_BIN_EXE_registry-cleaner");
    let script = format!(
        "trap '' XFSZ; ulimit -f 8; exec '{bin}' delete --plan '{}' --apply --force --concurrency 1 --audit-log '{}' --config '{}' --registry '{url}' --without kubernetes --without mongo --without keycloak",
        path.display(),
        audit.display(),
        dir.path().join("config.yaml").display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env_remove("REGISTRY_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "a run whose audit log failed exits non-zero: {said}"
    );
    assert!(
        said.contains("audit log") && said.contains("could not be written"),
        "the result names the audit log: {said}"
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let fw = forwarded.lock().unwrap().clone();
    assert!(!fw.is_empty(), "some DELETEs went out before the log filled: {text}");
    assert!(
        fw.len() < total,
        "the run stopped before the end of the plan ({} of {total}): {text}",
        fw.len()
    );
    for d in &fw {
        assert!(
            text.lines()
                .any(|l| l.contains(d.as_str()) && l.contains("\"result\":\"started\"")),
            "the DELETE of {d} reached the registry without its started line: {text}"
        );
    }
}

/// An index child is deleted by digest with no planned tag of its own. If an existing tag of
/// the repository is moved onto that child after the fresh scan (a rollback, a rebuild that
/// reuses it), the DELETE would take that tag: the last look HEADs every tag for such an
/// entry, so the child is skipped and the moved tag still resolves. (Before, only names the
/// scan had not seen were HEADed, and the tag was deleted with the child.)
#[test]
fn a_known_tag_moved_onto_a_planned_index_child_after_the_scan_keeps_it() {
    let (reg, _) = pushed();
    let dir = tempfile::tempdir().unwrap();
    let rt = support::runtime();
    let url = reg.url();
    // A plan whose index child goes after its index.
    let (path0, planned) = plan(dir.path(), &url, &SELECTION);
    let manifests = planned["plan"]["manifests"].as_array().unwrap().clone();
    let child = manifests
        .iter()
        .find(|m| m.get("child_of").is_some_and(|c| !c.is_null()))
        .expect("the selection plans an index with children")
        .clone();
    let repo = child["repository"].as_str().unwrap().to_string();
    let child_digest = child["digest"].as_str().unwrap().to_string();
    let planned_tags: Vec<String> = manifests
        .iter()
        .filter(|m| m["repository"] == repo.as_str())
        .flat_map(|m| m["tags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    let direct = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
    let victim = rt
        .block_on(direct.tags(&repo))
        .unwrap()
        .into_iter()
        .find(|t| !planned_tags.contains(t))
        .expect("a tag the plan does not name");
    // At the first planned DELETE (the fresh scan is over by then), move `victim` onto the child.
    let moved = Arc::new(AtomicBool::new(false));
    let (m2, repo2, victim2, child2, url2) = (
        moved.clone(),
        repo.clone(),
        victim.clone(),
        child_digest.clone(),
        url.clone(),
    );
    let rule = Arc::new(move |_n: u64, m: &str, path: &str| {
        if m == "DELETE" && !path.contains(&"0".repeat(64)) && !m2.swap(true, Ordering::SeqCst) {
            let (repo, victim, child, url) = (repo2.clone(), victim2.clone(), child2.clone(), url2.clone());
            std::thread::spawn(move || {
                let rt = support::runtime();
                let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
                rt.block_on(async {
                    let body = c.get_manifest(&repo, &child).await.unwrap();
                    let media = body.content_type.clone().unwrap();
                    let d = c.push_manifest(&repo, &victim, &media, body.body).await.unwrap();
                    assert_eq!(d, child);
                });
            })
            .join()
            .unwrap();
        }
        Fault::Pass
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let purl = proxy.url();
    // The same selection, planned through the proxy (its registry name), before anything moves.
    let (path, _) = plan(dir.path(), &purl, &SELECTION);
    drop(path0);
    let p = path.to_str().unwrap();
    let r = json_of(&run(dir.path(), &purl, &["delete", "--plan", p, "--apply", "--force"]));
    assert!(moved.load(Ordering::SeqCst), "the tag was moved mid-run");
    let item = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["digest"] == child_digest.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no item for the child: {r}"));
    assert_eq!(item["result"], "skipped", "{item}");
    assert!(item["reason"].as_str().unwrap().contains(&victim), "{item}");
    assert_eq!(
        rt.block_on(direct.head_manifest(&repo, &victim)).unwrap().as_deref(),
        Some(child_digest.as_str()),
        "the moved tag still resolves"
    );
}

/// The JSON results of a run that may exit non-zero.
fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)))
}
