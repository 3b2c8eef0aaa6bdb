//! The kill matrix: the real `registry-cleaner` binary stopped by SIGKILL or SIGTERM (trials
//! alternate) at each point where a crash could lose something: while it scans, at the
//! confirmation prompt, with a DELETE the registry carried out but whose answer never came,
//! in the middle of a phase, between the index phase and its children's phase, between a
//! document's backup and its Mongo delete, between that delete and its audit line, in the
//! middle of `restore`, and `gc` right after its first patch (read-only mode must end up off).
//! One registry (and Mongo) per point, put back between trials.
//!
//! After every kill, at once: every original Mongo document is in Mongo or in the backup file,
//! and the audit log names every DELETE the proxy forwarded (its write-ahead `started` line,
//! fsynced before the request left). Then at most two re-runs of the same plan (or restore) must end with exit 0 or 3 and leave
//! exactly the planned manifests gone (every other tag and manifest where it was) and Mongo as
//! an uninterrupted run leaves it. `RC_KILL_TRIALS` sets the trials per point (default 20).
//! The figures of one run are in RELIABILITY.md; each point prints its own line.

mod support;

use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, sample_registry};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::mongo::MongoServer;
use support::proxy::{Fault, Proxy};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const PREFIX: &str = "dominodatalab";

fn trials() -> usize {
    std::env::var("RC_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// Whole digests of the sample registry: three images, a multi-arch index (two children, so
/// the plan has a second phase) and a model.
const SELECTION: [&str; 5] = [
    "dominodatalab/environment:65a000000000000000000001-1",
    "dominodatalab/environment:65a000000000000000000001-3",
    "dominodatalab/environment:65a000000000000000000001-3-release",
    "dominodatalab/environment:65a000000000000000000004-1",
    "dominodatalab/model:65b000000000000000000002-v1-20250101120000_abc1",
];

/// What the proxy does with the registry's requests in the current trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Hold (never forward) the n-th manifest GET/HEAD or tags/list and every later one.
    HoldReadsFrom(usize),
    /// Hold the n-th planned DELETE and every later one, unforwarded.
    HoldDeletesFrom(usize),
    /// Forward the n-th planned DELETE but never answer it; hold later ones unforwarded.
    ApplyUnansweredAt(usize),
    /// Hold every DELETE of an index child (phase 1) unforwarded.
    HoldChildDeletes,
}

/// The proxy's switch and its record of the trial.
#[derive(Default)]
struct Ctl {
    mode: Mutex<Option<Mode>>,
    /// Planned (non-probe) DELETEs and reads seen in this trial.
    deletes: AtomicUsize,
    reads: AtomicUsize,
    /// Digests whose DELETE was forwarded and answered to the tool.
    answered: Mutex<Vec<String>>,
    /// Digests whose DELETE was forwarded and never answered.
    unanswered: Mutex<Vec<String>>,
    /// Set once a request is being held.
    held: AtomicBool,
    children: Mutex<BTreeSet<String>>,
}

impl Ctl {
    fn arm(&self, mode: Mode) {
        self.deletes.store(0, Ordering::SeqCst);
        self.reads.store(0, Ordering::SeqCst);
        self.answered.lock().unwrap().clear();
        self.unanswered.lock().unwrap().clear();
        self.held.store(false, Ordering::SeqCst);
        *self.mode.lock().unwrap() = Some(mode);
    }

    fn rule(self: &Arc<Self>) -> Arc<support::proxy::Rule> {
        let ctl = self.clone();
        Arc::new(move |_n: u64, method: &str, path: &str| {
            let mode = ctl.mode.lock().unwrap().unwrap_or(Mode::Pass);
            let hold = || {
                ctl.held.store(true, Ordering::SeqCst);
                Fault::Stall(Duration::from_secs(60))
            };
            let digest = path.rsplit('/').next().unwrap_or_default().to_string();
            if method == "DELETE" && path.contains("/manifests/") && !path.contains(&"0".repeat(64)) {
                let n = ctl.deletes.fetch_add(1, Ordering::SeqCst) + 1;
                let pass = |ctl: &Ctl| {
                    ctl.answered.lock().unwrap().push(digest.clone());
                    Fault::Pass
                };
                return match mode {
                    Mode::HoldDeletesFrom(k) if n >= k => hold(),
                    Mode::ApplyUnansweredAt(k) if n > k => hold(),
                    Mode::ApplyUnansweredAt(k) if n == k => {
                        ctl.unanswered.lock().unwrap().push(digest.clone());
                        ctl.held.store(true, Ordering::SeqCst);
                        Fault::AppliedThenStall(Duration::from_secs(60))
                    }
                    Mode::HoldChildDeletes if ctl.children.lock().unwrap().contains(&digest) => hold(),
                    _ => pass(&ctl),
                };
            }
            if matches!(method, "GET" | "HEAD") && (path.contains("/manifests/") || path.contains("/tags/list")) {
                let n = ctl.reads.fetch_add(1, Ordering::SeqCst) + 1;
                if let Mode::HoldReadsFrom(k) = mode
                    && n >= k
                {
                    return hold();
                }
            }
            Fault::Pass
        })
    }
}

/// One registry behind the recording proxy, a plan written through it, and what the registry
/// held before any trial.
struct World {
    reg: Registry,
    ctl: Arc<Ctl>,
    proxy: Proxy,
    dir: tempfile::TempDir,
    plan: PathBuf,
    /// (repository, digest) of every planned manifest.
    planned: BTreeSet<(String, String)>,
    /// Planned tags (repository, tag).
    planned_tags: BTreeSet<(String, String)>,
    /// Every tag before: (repository, tag) → digest.
    tags: BTreeMap<(String, String), String>,
    /// Every manifest before (tagged ones and index children).
    manifests: BTreeSet<(String, String)>,
    mongo: Option<MongoServer>,
    /// Mongo after an uninterrupted run: collection → ids.
    mongo_after: BTreeMap<String, Vec<String>>,
    /// Mongo as seeded.
    mongo_before: BTreeMap<String, Vec<String>>,
    rt: tokio::runtime::Runtime,
}

fn direct(reg: &Registry) -> RegistryClient {
    RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap()
}

/// (repository, tag) → digest.
type Tags = BTreeMap<(String, String), String>;

/// Tags and manifests (index children included) as a direct scan sees them.
fn contents(rt: &tokio::runtime::Runtime, reg: &Registry) -> (Tags, BTreeSet<(String, String)>) {
    let opts = ScanOptions {
        prefix: PREFIX.into(),
        repositories: None,
        fetch_config: false,
        verify_blobs: false,
        concurrency: 4,
        cache: None,
    };
    let inv = rt.block_on(scan(&direct(reg), &opts, &|_| {})).expect("scan");
    let mut tags = BTreeMap::new();
    let mut manifests = BTreeSet::new();
    for t in inv.tag_ids() {
        let repo = inv.repo(inv.tag(t).repo).name.clone();
        let Some(d) = inv.tag_digest(t) else { continue };
        tags.insert((repo.clone(), inv.tag(t).name.clone()), inv.digests.name(d).to_string());
        manifests.insert((repo.clone(), inv.digests.name(d).to_string()));
        if let Some(registry_cleaner::model::ManifestKind::Index { children }) = inv.manifest(d).map(|m| &m.kind) {
            for (c, _) in children {
                manifests.insert((repo.clone(), inv.digests.name(c.digest).to_string()));
            }
        }
    }
    (tags, manifests)
}

fn cmd(w: &World, args: &[&str]) -> Command {
    let dir = w.dir.path();
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
    c.args(args)
        .args([
            "--registry",
            &w.proxy.url(),
            "--without",
            "kubernetes",
            "--without",
            "keycloak",
        ])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .env_remove("MONGODB_USERNAME")
        .env_remove("MONGODB_PASSWORD")
        .env_remove("RC_KILL_POINT")
        .stdin(Stdio::null());
    match &w.mongo {
        Some(m) => c.env("MONGODB_URI", &m.uri),
        None => c.args(["--without", "mongo"]),
    };
    c
}

fn audit(w: &World) -> PathBuf {
    w.dir.path().join("audit.jsonl")
}

fn backup(w: &World) -> PathBuf {
    w.dir.path().join("backup.jsonl")
}

/// `delete --plan P --apply --force` (with the Mongo cleanup when the world has Mongo).
fn apply_args(w: &World) -> Vec<String> {
    let mut a: Vec<String> = ["delete", "--plan", w.plan.to_str().unwrap(), "--apply", "--force"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["--concurrency".into(), "4".into()]);
    a.extend(["--audit-log".into(), audit(w).display().to_string()]);
    if w.mongo.is_some() {
        a.extend([
            "--mongo-cleanup".into(),
            "--backup".into(),
            backup(w).display().to_string(),
        ]);
    }
    a
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Mongo's collections → sorted `_id`s (as extended JSON text).
async fn mongo_ids(uri: &str) -> BTreeMap<String, Vec<String>> {
    use futures::TryStreamExt as _;
    use mongodb::bson::{Document, doc};
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    let db = client.database("domino");
    let mut out = BTreeMap::new();
    for c in db.list_collection_names().await.unwrap() {
        let docs: Vec<Document> = db
            .collection::<Document>(&c)
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut ids: Vec<String> = docs
            .iter()
            .map(|d| d.get("_id").unwrap().clone().into_canonical_extjson().to_string())
            .collect();
        ids.sort();
        out.insert(c, ids);
    }
    out
}

async fn reseed_mongo(uri: &str) {
    let client = mongodb::Client::with_uri_str(uri).await.expect("connect");
    client.database("domino").drop().await.expect("drop");
    support::mongo_world::seed(uri).await;
}

/// (collection, _id) of every document in the backup file (a torn last line is ignored).
fn backed_up(w: &World) -> BTreeSet<(String, String)> {
    std::fs::read_to_string(backup(w))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["collection"].as_str().unwrap().to_string(),
                v["document"]["_id"].to_string(),
            )
        })
        .collect()
}

impl World {
    /// The sample registry (no Mongo), plan = SELECTION.
    fn registry() -> World {
        let reg = Registry::start();
        let rt = support::runtime();
        rt.block_on(world::push(&direct(&reg), &sample_registry(PREFIX, NOW)))
            .unwrap();
        Self::finish(reg, rt, None, SELECTION.iter().map(|s| s.to_string()).collect())
    }

    /// The Mongo tests' world: eight archived images and their documents; the plan takes
    /// environment 1 and model 50 whole and one image each of environment 2 and model 60.
    fn with_mongo() -> World {
        use support::mongo_world::{ENV, MODEL, env_tag, model_tag};
        let reg = Registry::start();
        let mongo = MongoServer::start();
        let rt = support::runtime();
        rt.block_on(support::mongo_world::seed(&mongo.uri));
        rt.block_on(world::push(&direct(&reg), &support::mongo_world::specs()))
            .unwrap();
        let select = vec![
            format!("{ENV}:{}", env_tag(1, 1)),
            format!("{ENV}:{}", env_tag(1, 2)),
            format!("{ENV}:{}", env_tag(2, 1)),
            format!("{MODEL}:{}", model_tag(50, 1)),
            format!("{MODEL}:{}", model_tag(50, 2)),
            format!("{MODEL}:{}", model_tag(60, 1)),
        ];
        Self::finish(reg, rt, Some(mongo), select)
    }

    fn finish(
        mut reg: Registry,
        rt: tokio::runtime::Runtime,
        mongo: Option<MongoServer>,
        select: Vec<String>,
    ) -> World {
        reg.save_state();
        let ctl = Arc::new(Ctl::default());
        let proxy = Proxy::start(&rt, reg.url(), ctl.rule());
        let (tags, manifests) = contents(&rt, &reg);
        let mut w = World {
            reg,
            ctl,
            proxy,
            dir: tempfile::tempdir().unwrap(),
            plan: PathBuf::new(),
            planned: BTreeSet::new(),
            planned_tags: BTreeSet::new(),
            tags,
            manifests,
            mongo,
            mongo_after: BTreeMap::new(),
            mongo_before: BTreeMap::new(),
            rt,
        };
        let plan = w.dir.path().join("plan.json");
        let mut args = vec!["report".to_string(), "--output".into(), plan.display().to_string()];
        for s in &select {
            args.extend(["--select".into(), s.clone()]);
        }
        let out = cmd(&w, &strs(&args)).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
        for m in v["plan"]["manifests"].as_array().unwrap() {
            let repo = m["repository"].as_str().unwrap().to_string();
            assert_ne!(m["untag"], true, "whole digests only: {m}");
            w.planned
                .insert((repo.clone(), m["digest"].as_str().unwrap().to_string()));
            if m["child_of"].as_str().is_some() {
                w.ctl
                    .children
                    .lock()
                    .unwrap()
                    .insert(m["digest"].as_str().unwrap().to_string());
            }
            for t in m["tags"].as_array().unwrap() {
                w.planned_tags.insert((repo.clone(), t.as_str().unwrap().to_string()));
            }
        }
        w.plan = plan;
        if let Some(m) = &w.mongo {
            w.mongo_before = w.rt.block_on(mongo_ids(&m.uri));
        }
        // An uninterrupted run: the end state every trial's re-runs must reach.
        w.ctl.arm(Mode::Pass);
        let out = cmd(&w, &strs(&apply_args(&w))).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        if let Some(m) = &w.mongo {
            w.mongo_after = w.rt.block_on(mongo_ids(&m.uri));
            assert_ne!(w.mongo_after, w.mongo_before, "the plan deletes Mongo documents");
        }
        w.check_done().expect("an uninterrupted run completes the plan");
        w.reset();
        w
    }

    /// Back to the saved registry, the seeded Mongo, no audit log or backup.
    fn reset(&mut self) {
        self.ctl.arm(Mode::Pass);
        self.reg.reset();
        if let Some(m) = &self.mongo {
            self.rt.block_on(reseed_mongo(&m.uri));
        }
        let _ = std::fs::remove_file(audit(self));
        let _ = std::fs::remove_file(backup(self));
    }

    /// Exactly the planned manifests are gone; every other tag points where it did and every
    /// other manifest is still served; Mongo is as an uninterrupted run leaves it.
    fn check_done(&self) -> Result<(), String> {
        let client = direct(&self.reg);
        for (repo, digest) in &self.manifests {
            let there = self
                .rt
                .block_on(client.head_manifest(repo, digest))
                .map_err(|e| format!("HEAD {repo}@{digest}: {e}"))?
                .is_some();
            let planned = self.planned.contains(&(repo.clone(), digest.clone()));
            if there == planned {
                return Err(format!(
                    "{repo}@{digest} (planned: {planned}) is {}",
                    if there { "still there" } else { "gone" }
                ));
            }
        }
        for (repo, digest) in &self.planned {
            if self
                .rt
                .block_on(client.head_manifest(repo, digest))
                .ok()
                .flatten()
                .is_some()
            {
                return Err(format!("planned {repo}@{digest} is still there"));
            }
        }
        for ((repo, tag), digest) in &self.tags {
            let now = self
                .rt
                .block_on(client.head_manifest(repo, tag))
                .map_err(|e| format!("HEAD {repo}:{tag}: {e}"))?;
            let planned = self.planned_tags.contains(&(repo.clone(), tag.clone()));
            match (planned, now) {
                (true, None) => {}
                (false, Some(d)) if &d == digest => {}
                (p, n) => return Err(format!("tag {repo}:{tag} (planned: {p}) now at {n:?}, was {digest}")),
            }
        }
        if let Some(m) = &self.mongo {
            let now = self.rt.block_on(mongo_ids(&m.uri));
            if now != self.mongo_after {
                return Err(format!(
                    "Mongo is {now:?}, an uninterrupted run leaves {:?}",
                    self.mongo_after
                ));
            }
        }
        Ok(())
    }

    /// After a kill: every original document is in Mongo or in the backup; every DELETE the
    /// proxy forwarded (answered or not) is named in the audit log.
    fn check_after_kill(&self) -> Result<(), String> {
        if let Some(m) = &self.mongo {
            let now = self.rt.block_on(mongo_ids(&m.uri));
            let saved = backed_up(self);
            for (coll, ids) in &self.mongo_before {
                for id in ids {
                    let present = now.get(coll).is_some_and(|v| v.contains(id));
                    if !present && !saved.contains(&(coll.clone(), id.clone())) {
                        return Err(format!("{coll} {id} is neither in Mongo nor in the backup"));
                    }
                }
            }
        }
        self.audit_names(&self.forwarded(), &["started", "deleted"])
    }

    /// Digests whose planned DELETE the proxy forwarded in this trial, answered or not.
    fn forwarded(&self) -> Vec<String> {
        let mut d = self.ctl.answered.lock().unwrap().clone();
        d.extend(self.ctl.unanswered.lock().unwrap().iter().cloned());
        d
    }

    /// Every digest of `digests` has a `delete-manifest` audit line with one of `results`.
    fn audit_names(&self, digests: &[String], results: &[&str]) -> Result<(), String> {
        let text = std::fs::read_to_string(audit(self)).unwrap_or_default();
        for d in digests {
            let named = text.lines().any(|l| {
                l.contains(d.as_str())
                    && l.contains("\"action\":\"delete-manifest\"")
                    && results.iter().any(|r| l.contains(&format!("\"result\":\"{r}\"")))
            });
            if !named {
                let lines: Vec<&str> = text.lines().filter(|l| l.contains(d.as_str())).collect();
                return Err(format!(
                    "the proxy forwarded the DELETE of {d}; the audit log has no {results:?} line for it (its lines: {lines:?})"
                ));
            }
        }
        Ok(())
    }

    /// Re-runs of `args` (at most 2) until one exits 0/3 and the end state holds; how many.
    fn rerun(&self, args: &[String], done: &dyn Fn(&World) -> Result<(), String>) -> Result<usize, String> {
        let mut last = String::new();
        for n in 1..=2 {
            let out = cmd(self, &strs(args)).output().unwrap();
            let code = out.status.code();
            match (code, done(self)) {
                (Some(0 | 3), Ok(())) => return Ok(n),
                (c, r) => {
                    last = format!(
                        "re-run {n}: exit {c:?}, {r:?}; stderr: {}",
                        String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .rev()
                            .take(3)
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                }
            }
        }
        Err(last)
    }
}

fn kill(child: &mut Child, sigkill: bool) {
    let sig = if sigkill { "-KILL" } else { "-TERM" };
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

fn wait_until(what: &str, child: &mut Child, secs: u64, pred: impl Fn() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !pred() {
        if let Some(s) = child.try_wait().unwrap() {
            return Err(format!("exited ({s}) before {what}"));
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// A small deterministic generator (trials differ, runs repeat).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Per point: trials, violations, re-runs needed (1 or 2), and the trials where the kill
/// landed after the registry had applied something.
#[derive(Debug, Default)]
struct Tally {
    trials: usize,
    violations: Vec<String>,
    reruns: BTreeMap<usize, usize>,
    deletes_acknowledged: usize,
    deletes_unanswered: usize,
}

impl Tally {
    fn report(&self, point: &str, started: Instant) {
        eprintln!(
            "kill matrix {point}: {} trials, {} violations, re-runs needed {:?}, {} acknowledged DELETEs before the kills, {} applied but unanswered, {:.1} s",
            self.trials,
            self.violations.len(),
            self.reruns,
            self.deletes_acknowledged,
            self.deletes_unanswered,
            started.elapsed().as_secs_f64()
        );
        assert!(self.violations.is_empty(), "{point}: {:#?}", self.violations);
    }
}

/// One kill trial of `delete --plan --apply`: arm the proxy, start the run, wait for `ready`
/// (the kill point), kill, check, re-run. Returns the planned DELETEs forwarded before the kill.
fn trial(
    w: &mut World,
    t: &mut Tally,
    i: usize,
    mode: Mode,
    env: &[(&str, String)],
    ready: &dyn Fn(&World) -> bool,
) -> usize {
    w.reset();
    w.ctl.arm(mode);
    let sigkill = i.is_multiple_of(2);
    let mut c = cmd(w, &strs(&apply_args(w)));
    c.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    t.trials += 1;
    let at = format!(
        "trial {i} ({}, {mode:?}, {env:?})",
        if sigkill { "SIGKILL" } else { "SIGTERM" }
    );
    if let Err(e) = wait_until("the kill point", &mut child, 60, || ready(w)) {
        let _ = child.kill();
        let _ = child.wait();
        t.violations.push(format!("{at}: {e}"));
        return 0;
    }
    // No settling time: the write-ahead line of a DELETE is on disk before the proxy sees the
    // request, so the audit log must name every forwarded DELETE at any instant of the kill.
    std::thread::sleep(Duration::from_millis(50));
    kill(&mut child, sigkill);
    let acked = w.ctl.answered.lock().unwrap().len();
    let unanswered = w.ctl.unanswered.lock().unwrap().len();
    t.deletes_acknowledged += acked;
    t.deletes_unanswered += unanswered;
    if let Err(e) = w.check_after_kill() {
        t.violations.push(format!("{at}: after the kill: {e}"));
    }
    let forwarded = w.forwarded();
    w.ctl.arm(Mode::Pass);
    match w.rerun(&apply_args(w), &World::check_done) {
        Ok(n) => *t.reruns.entry(n).or_default() += 1,
        Err(e) => t.violations.push(format!("{at}: {e}")),
    }
    if let Err(e) = w.audit_names(&forwarded, &["deleted", "already-deleted"]) {
        t.violations.push(format!("{at}: after the re-run: {e}"));
    }
    acked + unanswered
}

fn held(w: &World) -> bool {
    w.ctl.held.load(Ordering::SeqCst)
}

#[test]
fn kill_during_the_fresh_scan() {
    let started = Instant::now();
    let mut w = World::registry();
    let (mut t, mut rng) = (Tally::default(), Rng(1));
    for i in 0..trials() {
        let k = 1 + rng.below(8);
        // Nothing can have been deleted before the scan ended.
        if trial(&mut w, &mut t, i, Mode::HoldReadsFrom(k), &[], &held) > 0 {
            t.violations
                .push(format!("trial {i}: a DELETE was sent before the fresh scan ended"));
        }
    }
    t.report("scan", started);
}

#[test]
fn kill_with_a_delete_applied_but_unanswered() {
    let started = Instant::now();
    let mut w = World::registry();
    let n = w.planned.len();
    let (mut t, mut rng) = (Tally::default(), Rng(2));
    for i in 0..trials() {
        let k = 1 + rng.below(n);
        let _ = trial(&mut w, &mut t, i, Mode::ApplyUnansweredAt(k), &[], &held);
    }
    t.report("delete-in-flight", started);
}

#[test]
fn kill_mid_phase() {
    let started = Instant::now();
    let mut w = World::registry();
    let first_phase = w.planned.len() - w.ctl.children.lock().unwrap().len();
    let (mut t, mut rng) = (Tally::default(), Rng(3));
    for i in 0..trials() {
        // Somewhere inside the first phase: at least one DELETE through, one held.
        let k = 2 + rng.below(first_phase - 1);
        let _ = trial(&mut w, &mut t, i, Mode::HoldDeletesFrom(k), &[], &held);
    }
    t.report("mid-phase", started);
}

/// The index is deleted, its children (phase 1) not yet: the re-run must still delete them,
/// which takes the index's body from the scan cache (it is gone from the registry).
#[test]
fn kill_between_phases() {
    let started = Instant::now();
    let mut w = World::registry();
    assert!(
        !w.ctl.children.lock().unwrap().is_empty(),
        "the plan has index children"
    );
    let mut t = Tally::default();
    for i in 0..trials() {
        let _ = trial(&mut w, &mut t, i, Mode::HoldChildDeletes, &[], &held);
    }
    t.report("between-phases", started);
}

#[test]
fn kill_at_the_confirmation_prompt() {
    let started = Instant::now();
    let mut w = World::registry();
    let mut t = Tally::default();
    for i in 0..trials() {
        w.reset();
        let sigkill = i.is_multiple_of(2);
        // A terminal (script(1)'s pty) so the prompt is shown; nothing is ever typed.
        let log = w.dir.path().join("prompt.log");
        let pidfile = w.dir.path().join("pid");
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(&pidfile);
        let args: Vec<String> = apply_args(&w).into_iter().filter(|a| a != "--force").collect();
        let c = cmd(&w, &strs(&args));
        let line = std::iter::once(c.get_program().to_string_lossy().into_owned())
            .chain(c.get_args().map(|a| a.to_string_lossy().into_owned()))
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut sc = Command::new("script");
        sc.args(["-qfec", &format!("echo $$ > '{}'; exec {line}", pidfile.display())])
            .arg(&log)
            .current_dir(w.dir.path())
            .envs(
                c.get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env_remove("REGISTRY_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = sc.spawn().unwrap();
        t.trials += 1;
        let at = format!("trial {i} ({})", if sigkill { "SIGKILL" } else { "SIGTERM" });
        let shown = wait_until("the prompt", &mut child, 60, || {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("to confirm:")
        });
        if let Err(e) = shown {
            let _ = child.kill();
            t.violations.push(format!(
                "{at}: {e}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
            continue;
        }
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
        let sig = if sigkill { "-KILL" } else { "-TERM" };
        assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
        let _ = child.wait();
        if w.ctl.deletes.load(Ordering::SeqCst) > 0 {
            t.violations
                .push(format!("{at}: a planned DELETE was sent before the confirmation"));
        }
        if let Err(e) = w.check_after_kill() {
            t.violations.push(format!("{at}: {e}"));
        }
        match w.rerun(&apply_args(&w), &World::check_done) {
            Ok(n) => *t.reruns.entry(n).or_default() += 1,
            Err(e) => t.violations.push(format!("{at}: {e}")),
        }
    }
    t.report("confirm-prompt", started);
}

/// A kill at a test kit point (`ops::killpoint`): the n-th time the run reaches it.
fn at_point(w: &World, point: &str, n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("RC_KILL_POINT", point.to_string()),
        ("RC_KILL_POINT_AT", n.to_string()),
        ("RC_KILL_POINT_FILE", w.dir.path().join("reached").display().to_string()),
    ]
}

fn reached(w: &World) -> bool {
    w.dir.path().join("reached").exists()
}

fn mongo_point(point: &str, seed: u64) {
    let started = Instant::now();
    let mut w = World::with_mongo();
    let deleted: usize =
        w.mongo_before.values().map(Vec::len).sum::<usize>() - w.mongo_after.values().map(Vec::len).sum::<usize>();
    let (mut t, mut rng) = (Tally::default(), Rng(seed));
    for i in 0..trials() {
        let _ = std::fs::remove_file(w.dir.path().join("reached"));
        let env = at_point(&w, point, 1 + rng.below(deleted));
        let _ = trial(&mut w, &mut t, i, Mode::Pass, &env, &reached);
    }
    t.report(point, started);
}

#[test]
fn kill_between_the_mongo_backup_and_the_mongo_delete() {
    mongo_point("mongo-backed-up", 4);
}

#[test]
fn kill_between_the_mongo_delete_and_its_audit_line() {
    mongo_point("mongo-deleted", 5);
}

#[test]
fn kill_during_restore() {
    let started = Instant::now();
    let mut w = World::with_mongo();
    let uri = w.mongo.as_ref().unwrap().uri.clone();
    // One uninterrupted run writes the backup that every trial restores from.
    w.reset();
    let out = cmd(&w, &strs(&apply_args(&w))).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = w.dir.path().join("restore-from.jsonl");
    std::fs::copy(backup(&w), &saved).unwrap();
    let docs = backed_up(&w).len();
    assert!(docs > 1);
    let deleted_state = w.rt.block_on(mongo_ids(&uri));
    let args: Vec<String> = ["restore", "--backup", saved.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut t, mut rng) = (Tally::default(), Rng(6));
    for i in 0..trials() {
        // Mongo as the delete run left it: seeded, minus what the backup holds.
        w.rt.block_on(reseed_mongo(&uri));
        w.rt.block_on(async {
            let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
            let db = client.database("domino");
            for (coll, doc) in registry_cleaner::ops::mongo_cleanup::read_backup(&saved).unwrap() {
                db.collection::<mongodb::bson::Document>(coll.name())
                    .delete_one(mongodb::bson::doc! { "_id": doc.get("_id").unwrap().clone() })
                    .await
                    .unwrap();
            }
        });
        assert_eq!(w.rt.block_on(mongo_ids(&uri)), deleted_state);
        let _ = std::fs::remove_file(w.dir.path().join("reached"));
        let sigkill = i.is_multiple_of(2);
        let mut c = cmd(&w, &strs(&args));
        c.envs(at_point(&w, "restore-inserted", 1 + rng.below(docs - 1)))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        t.trials += 1;
        let at = format!("trial {i} ({})", if sigkill { "SIGKILL" } else { "SIGTERM" });
        if let Err(e) = wait_until("the kill point", &mut child, 60, || reached(&w)) {
            let _ = child.kill();
            t.violations.push(format!("{at}: {e}"));
            continue;
        }
        kill(&mut child, sigkill);
        // Every original document is in Mongo or in the backup (which restore never changes).
        let now = w.rt.block_on(mongo_ids(&uri));
        let in_backup: BTreeSet<(String, String)> = std::fs::read_to_string(&saved)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (
                    v["collection"].as_str().unwrap().to_string(),
                    v["document"]["_id"].to_string(),
                )
            })
            .collect();
        for (coll, ids) in &w.mongo_before {
            for id in ids {
                if !now.get(coll).is_some_and(|v| v.contains(id)) && !in_backup.contains(&(coll.clone(), id.clone())) {
                    t.violations
                        .push(format!("{at}: {coll} {id} is neither in Mongo nor in the backup"));
                }
            }
        }
        let before = w.mongo_before.clone();
        let done = move |w: &World| {
            let now = w.rt.block_on(mongo_ids(&w.mongo.as_ref().unwrap().uri));
            if now == before {
                Ok(())
            } else {
                Err(format!("Mongo is {now:?}, not as seeded"))
            }
        };
        match w.rerun(&args, &done) {
            Ok(n) => *t.reruns.entry(n).or_default() += 1,
            Err(e) => t.violations.push(format!("{at}: {e}")),
        }
    }
    t.report("restore", started);
}

/// `gc` stopped right after its first patch reached the API server (read-only mode on, gc
/// waiting for the pods, which never roll: there is no kubelet), after a random 0–300 ms.
/// SIGTERM: gc itself switches read-only mode off. SIGKILL cannot be caught: a re-run of gc
/// (at most 2) must leave it off. The interrupted-exec step is `tests/gc.rs`'s fake-kubelet
/// tests.
#[test]
fn kill_gc_after_its_first_patch() {
    let started = Instant::now();
    let g = GcWorld::new("kill-matrix-gc");
    // A Ready pod gc can never see rolled to the read-only template: gc waits after its patch.
    g.ready_pod(serde_json::json!({ "containers": [ { "name": "registry", "image": "registry:2" } ] }));
    let k = &g.k;
    let ns = g.ns;
    let read_only = || g.read_only();
    let dir = tempfile::tempdir().unwrap();
    let gc = |timeout: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
        c.args([
            "gc",
            "--ready-timeout-secs",
            timeout,
            "--poll-ms",
            "100",
            "--no-measure",
        ])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("KUBECONFIG", &k.kubeconfig)
        .env("PLATFORM_NAMESPACE", ns)
        .env_remove("DOMINO_PLATFORM_NAMESPACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        c
    };
    let (mut t, mut rng) = (Tally::default(), Rng(7));
    for i in 0..trials() {
        assert!(!read_only(), "trial {i} starts with read-only mode on");
        let sigkill = i.is_multiple_of(2);
        let at = format!("trial {i} ({})", if sigkill { "SIGKILL" } else { "SIGTERM" });
        t.trials += 1;
        let mut child = gc("30").spawn().unwrap();
        if let Err(e) = wait_until("the first patch", &mut child, 30, read_only) {
            t.violations.push(format!("{at}: {e}"));
            continue;
        }
        std::thread::sleep(Duration::from_millis(rng.below(300) as u64));
        kill(&mut child, sigkill);
        if !sigkill {
            if read_only() {
                t.violations
                    .push(format!("{at}: gc exited on SIGTERM with read-only mode on"));
            }
            *t.reruns.entry(0).or_default() += 1;
            continue;
        }
        let mut fixed = None;
        for n in 1..=2 {
            let _ = gc("1").status().unwrap();
            if !read_only() {
                fixed = Some(n);
                break;
            }
        }
        match fixed {
            Some(n) => *t.reruns.entry(n).or_default() += 1,
            None => t
                .violations
                .push(format!("{at}: read-only mode still on after 2 re-runs of gc")),
        }
    }
    t.report("gc-after-first-patch", started);
}

/// gc killed while `registry garbage-collect` runs over the exec API (a fake kubelet behind the
/// real kube-apiserver plays the container: the process lives on when the exec stream closes).
/// SIGTERM: gc stops it, sees it gone, and switches read-only mode off itself. SIGKILL: nothing
/// can, so read-only mode stays on and the garbage-collect keeps running; the re-run must stop
/// that one before starting its own (never two at once), and switch read-only mode off only
/// once none runs. After every trial: read-only off, no garbage-collect running, none ever
/// ended while the template was writable, at most one at a time.
#[test]
fn kill_gc_during_its_garbage_collect_exec() {
    gc_exec_trials("gc-during-exec", "kill-matrix-gc-exec", "kill-matrix-gc-node", 11, true);
}

/// The same, with the kill placed once garbage-collect has ended: gc is switching read-only
/// mode off and waiting for writable pods.
#[test]
fn kill_gc_after_its_garbage_collect_ended() {
    gc_exec_trials(
        "gc-after-exec",
        "kill-matrix-gc-end",
        "kill-matrix-gc-node-2",
        13,
        false,
    );
}

fn gc_exec_trials(point: &str, ns: &'static str, node: &str, seed: u64, during_exec: bool) {
    let started = Instant::now();
    let g = GcWorld::new(ns);
    let kubelet = support::kubelet::Kubelet::start(&g.rt, &g.c, node, ns);
    // Bound to the fake kubelet and already on the read-only template, so gc gets to its exec
    // at once (it never rolls back to writable: each run's last wait times out).
    g.ready_pod(
        serde_json::json!({ "nodeName": kubelet.node, "containers": [ { "name": "registry", "image": "registry:2",
        "env": [ { "name": "REGISTRY_STORAGE_MAINTENANCE_READONLY", "value": "{\"enabled\":true}" } ] } ] }),
    );
    let k = &g.k;
    let read_only = || g.read_only();
    let st = kubelet.state.clone();
    let dir = tempfile::tempdir().unwrap();
    let gc = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_registry-cleaner"));
        c.args(["gc", "--ready-timeout-secs", "1", "--poll-ms", "100", "--no-measure"])
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("KUBECONFIG", &k.kubeconfig)
            .env("PLATFORM_NAMESPACE", ns)
            .env_remove("DOMINO_PLATFORM_NAMESPACE")
            .stdin(Stdio::null());
        c
    };
    let (mut t, mut rng) = (Tally::default(), Rng(seed));
    for i in 0..trials() {
        assert!(!read_only(), "trial {i} starts with read-only mode on");
        let sigkill = i.is_multiple_of(2);
        let at = format!("trial {i} ({})", if sigkill { "SIGKILL" } else { "SIGTERM" });
        t.trials += 1;
        st.max_running.store(0, Ordering::SeqCst);
        // During the exec: this run's garbage-collect runs until stopped. After it: it ends
        // by itself after 200 ms, and the kill lands 0–300 ms later.
        st.finish_after_ms
            .store(if during_exec { 0 } else { 200 }, Ordering::SeqCst);
        let ended_before = st.ended.load(Ordering::SeqCst);
        let mut child = gc().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let placed = if during_exec {
            wait_until("the garbage-collect exec", &mut child, 30, || {
                st.running.load(Ordering::SeqCst) > 0
            })
        } else {
            wait_until("the end of garbage-collect", &mut child, 30, || {
                st.ended.load(Ordering::SeqCst) > ended_before
            })
        };
        if let Err(e) = placed {
            t.violations.push(format!("{at}: {e}"));
            let _ = child.kill();
            let _ = child.wait();
            continue;
        }
        std::thread::sleep(Duration::from_millis(rng.below(300) as u64));
        kill(&mut child, sigkill);
        let mut reruns = 0;
        if sigkill && !during_exec {
            // Its garbage-collect is over; read-only mode may or may not be off yet.
            st.finish_after_ms.store(200, Ordering::SeqCst);
            for n in 1..=2 {
                if !read_only() {
                    break;
                }
                let _ = gc().output().unwrap();
                reruns = n;
            }
        } else if sigkill {
            if !read_only() || st.running.load(Ordering::SeqCst) != 1 {
                t.violations.push(format!(
                    "{at}: after SIGKILL expected read-only on and the garbage-collect still running, got read-only {} running {}",
                    read_only(),
                    st.running.load(Ordering::SeqCst)
                ));
            }
            // The re-run's own garbage-collect finishes by itself.
            st.finish_after_ms.store(300, Ordering::SeqCst);
            for n in 1..=2 {
                let out = gc().output().unwrap();
                reruns = n;
                let r: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
                if n == 1 && r["earlier_gc_stopped"] != true {
                    t.violations.push(format!(
                        "{at}: the re-run did not stop the earlier garbage-collect first: {r}"
                    ));
                }
                if !read_only() {
                    break;
                }
            }
        }
        let (running, most, writable) = (
            st.running.load(Ordering::SeqCst),
            st.max_running.load(Ordering::SeqCst),
            st.ended_writable.load(Ordering::SeqCst),
        );
        if read_only() || running != 0 || most > 1 || writable != 0 {
            t.violations.push(format!(
                "{at}: read-only {}, {running} garbage-collect running, at most {most} at once, {writable} ended while writable",
                read_only()
            ));
            // Leave the next trial a clean start.
            st.ended_writable.store(0, Ordering::SeqCst);
        }
        *t.reruns.entry(reruns).or_default() += 1;
    }
    t.report(point, started);
}

/// The real kube-apiserver with a namespace holding the registry StatefulSet, for the gc points.
struct GcWorld {
    k: &'static support::kube::KubeServer,
    rt: tokio::runtime::Runtime,
    c: kube::Client,
    ns: &'static str,
    sets: kube::api::Api<k8s_openapi::api::apps::v1::StatefulSet>,
}

impl GcWorld {
    fn new(ns: &'static str) -> GcWorld {
        use k8s_openapi::api::apps::v1::StatefulSet;
        use k8s_openapi::api::core::v1::Namespace;
        use kube::api::{Api, PostParams};
        use serde_json::json;
        let k = support::kube::shared();
        let rt = support::runtime();
        let c = rt.block_on(async {
            let kc = kube::config::Kubeconfig::read_from(&k.kubeconfig).unwrap();
            let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .unwrap();
            kube::Client::try_from(cfg).unwrap()
        });
        let sets: Api<StatefulSet> = Api::namespaced(c.clone(), ns);
        rt.block_on(async {
            let n: Namespace = serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
            Api::<Namespace>::all(c.clone())
                .create(&PostParams::default(), &n)
                .await
                .unwrap();
            let sts: StatefulSet = serde_json::from_value(json!({ "metadata": { "name": "docker-registry" }, "spec": {
                "serviceName": "docker-registry", "selector": { "matchLabels": { "app": "docker-registry" } },
                "template": { "metadata": { "labels": { "app": "docker-registry" } },
                    "spec": { "containers": [ { "name": "registry", "image": "registry:2" } ] } } } }))
            .unwrap();
            sets.create(&PostParams::default(), &sts).await.unwrap();
        });
        GcWorld { k, rt, c, ns, sets }
    }

    /// Pod `docker-registry-0` with `spec`, marked Running and Ready.
    fn ready_pod(&self, spec: Value) {
        use k8s_openapi::api::core::v1::Pod;
        use kube::api::{Api, Patch, PatchParams, PostParams};
        use serde_json::json;
        self.rt.block_on(async {
            let pods: Api<Pod> = Api::namespaced(self.c.clone(), self.ns);
            let pod: Pod = serde_json::from_value(json!({ "metadata": { "name": "docker-registry-0",
                "labels": { "app": "docker-registry" } }, "spec": spec }))
            .unwrap();
            pods.create(&PostParams::default(), &pod).await.unwrap();
            pods.patch_status(
                "docker-registry-0",
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": { "phase": "Running",
                    "conditions": [ { "type": "Ready", "status": "True" } ] } })),
            )
            .await
            .unwrap();
        });
    }

    /// Whether the StatefulSet's template has the read-only variable.
    fn read_only(&self) -> bool {
        let sts = self.rt.block_on(self.sets.get("docker-registry")).unwrap();
        serde_json::to_string(&sts.spec)
            .unwrap()
            .contains("REGISTRY_STORAGE_MAINTENANCE_READONLY")
    }
}
