//! Fuzz and property targets on stable Rust (issue 10's adversarial suite): proptest feeds
//! arbitrary bytes, mutated valid documents and structured inputs to every parser of outside
//! input, and random inventories and plans to the pure core. Each target asserts that nothing
//! panics and, where it means something, a round trip or a fail-closed result.
//!
//! Every `fuzz_*` test runs `RC_FUZZ_CASES` cases (default 256) from a fixed seed
//! (`RC_FUZZ_SEED`, else `PROPTEST_RNG_SEED`, else a constant), with no failure-persistence
//! file, so a plain `cargo test` is deterministic. With `RC_FUZZ_SECONDS` set, a target runs
//! batches of 256 cases (seed, seed + 1, ...) until the budget or `RC_FUZZ_CASES` is used up;
//! `scripts/fuzz.sh` does that in release mode. Each target prints one `fuzz-result` line on
//! stderr (cases, seconds, failures, seed); a failure also prints how to reproduce it.
//! `regression_*` tests pin the inputs these targets found.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestCaseResult, TestRunner};
use registry_cleaner::model::{
    Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, Platform, TagId, TagState, timefmt,
};
use registry_cleaner::plan::deletion::{self, PLAN_LIFETIME_SECS, Plan, PlanManifest, Scope};
use registry_cleaner::plan::recheck::{Membership, Verdict, planned_parents, recheck};
use registry_cleaner::plan::{CategoryId, SpaceEngine};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------

const DEFAULT_SEED: u64 = 0x00C0_FFEE_2026_0010;
const BATCH: u64 = 256;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `test` on values of `strategy` as described in the module docs.
fn fuzz<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> TestCaseResult)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let total = env_u64("RC_FUZZ_CASES").unwrap_or(256).max(1);
    let budget = env_u64("RC_FUZZ_SECONDS").map(Duration::from_secs);
    let seed = env_u64("RC_FUZZ_SEED")
        .or_else(|| env_u64("PROPTEST_RNG_SEED"))
        .unwrap_or(DEFAULT_SEED);
    let started = Instant::now();
    let mut done = 0u64;
    let mut batch = 0u64;
    while done < total {
        let n = match budget {
            Some(_) => (total - done).min(BATCH),
            None => (total - done).min(u64::from(u32::MAX)),
        };
        let batch_seed = seed.wrapping_add(batch);
        let config = Config {
            cases: n as u32,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(batch_seed),
            failure_persistence: None,
            max_shrink_iters: 4096,
            max_shrink_time: 120_000,
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &test) {
            eprintln!(
                "fuzz-result target={name} cases={done} seconds={:.1} failures=1 seed={batch_seed}",
                started.elapsed().as_secs_f64()
            );
            panic!(
                "{name}: {e}\nreproduce: RC_FUZZ_SEED={batch_seed} RC_FUZZ_CASES={n} cargo test --features testkit --test fuzz -- --exact {name}"
            );
        }
        done += n;
        batch += 1;
        if budget.is_some_and(|b| started.elapsed() >= b) {
            break;
        }
    }
    eprintln!(
        "fuzz-result target={name} cases={done} seconds={:.1} failures=0 seed={seed}",
        started.elapsed().as_secs_f64()
    );
}

fn ensure(ok: bool, why: impl FnOnce() -> String) -> TestCaseResult {
    if ok { Ok(()) } else { Err(TestCaseError::fail(why())) }
}

/// Byte edits applied to a valid document: flip a bit, insert or delete bytes, splice in a
/// JSON/YAML token.
type Edits = Vec<(u8, u16, u8)>;

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\"\\u0000\"",
    b"\"sha256:\"",
    b"\\",
    b"\xff",
    b"{}",
    b"[]",
    b"\"\"",
    b"\n",
    b"- ",
    b": ",
    b"&a ",
    b"*a",
    b"!!binary ",
];

fn mutate(mut bytes: Vec<u8>, edits: &Edits) -> Vec<u8> {
    for &(op, at, v) in edits {
        let len = bytes.len();
        let at = at as usize % (len + 1);
        match op % 5 {
            0 if at < len => bytes[at] ^= 1 << (v % 8),
            1 => bytes.insert(at, v),
            2 if at < len => {
                bytes.remove(at);
            }
            3 => {
                let t = TOKENS[v as usize % TOKENS.len()];
                bytes.splice(at..at, t.iter().copied());
            }
            4 if at < len => {
                let end = (at + 1 + v as usize % 16).min(len);
                bytes.drain(at..end);
            }
            _ => {}
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Edits> + Clone {
    prop::collection::vec(any::<(u8, u16, u8)>(), 1..6)
}

/// Input bytes, shown as (lossy) text when a case fails.
#[derive(Clone)]
struct Bytes(Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({:?})", String::from_utf8_lossy(&self.0))
    }
}

/// Raw bytes, a valid document from `valid`, or a valid document with a few byte edits.
fn bytes_around(valid: BoxedStrategy<Vec<u8>>) -> BoxedStrategy<Bytes> {
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => valid.clone(),
        3 => (valid, edits()).prop_map(|(b, e)| mutate(b, &e)),
    ]
    .prop_map(Bytes)
    .boxed()
}

fn digest_str(tag: u64, i: usize) -> String {
    format!("sha256:{:048x}{:016x}", tag, i)
}

// ---------------------------------------------------------------------------------------
// Random inventories
// ---------------------------------------------------------------------------------------

const REPOS: [&str; 3] = [
    "dominodatalab/environment",
    "dominodatalab/model",
    "dominodatalab/tools",
];
const NAMES: [&str; 8] = [
    "latest",
    "v1",
    "v1.2_x",
    "65a000000000000000000001-1",
    "65a000000000000000000001-2",
    "65a000000000000000000002-1",
    "b-only",
    "_x",
];
const CATS: [CategoryId; 3] = [
    CategoryId::ArchivedEnvironments,
    CategoryId::UnusedEnvironments,
    CategoryId::BrokenTags,
];

fn mdigest(i: usize) -> String {
    digest_str(0xA, i)
}
fn bdigest(i: usize) -> String {
    digest_str(0xB, i)
}

/// Why a tag could not be read, formatted as the scan formats it (a `RegistryError` shown
/// with `to_string()`, or a parse/transport message).
#[derive(Debug, Clone)]
enum Failure {
    /// The GET by tag answered `status`; `message` comes from the registry's error body.
    Status { status: u16, code: bool, message: usize },
    /// No status: transport error, unparseable body, missing blob.
    Other(usize),
}

const MESSAGES: [&str; 4] = ["manifest unknown", "boom", "upstream answered HTTP 404 Not Found", ""];
/// Reasons without an answer status of the tag's own GET.
const OTHER: [&str; 4] = [
    "reading manifest: error sending request for url (https://r/v2/x/manifests/t)",
    "manifest is not valid JSON: EOF while parsing a value at line 1 column 0",
    "nested index as an index child is not supported",
    "config blob sha256:0 is missing",
];
/// Reasons of a tag whose digest is known (the manifest or something under it failed).
const UNDER: [&str; 3] = [
    "child sha256:1: reading manifest dominodatalab/environment@sha256:1: HTTP 404 MANIFEST_UNKNOWN: manifest unknown",
    "reading config blob: HTTP 404 BLOB_UNKNOWN: blob unknown",
    "manifest is not valid JSON: invalid type: string \"HTTP 404\", expected u32",
];

impl Failure {
    fn reason(&self, repo: &str, tag: &str) -> String {
        match self {
            Failure::Status { status, code, message } => format!(
                "reading manifest {repo}:{tag}: HTTP {status}{}: {}",
                if *code { " MANIFEST_UNKNOWN" } else { "" },
                MESSAGES[message % MESSAGES.len()]
            ),
            Failure::Other(i) => OTHER[i % OTHER.len()].to_string(),
        }
    }
    /// Whether the tag does not exist (its GET answered 404): the only failure that says
    /// nothing about what the tag might point at.
    fn not_found(&self) -> bool {
        matches!(self, Failure::Status { status: 404, .. })
    }
}

#[derive(Debug, Clone)]
enum MKind {
    Image { config: usize, layers: Vec<(usize, u64)> },
    Index { children: Vec<usize> },
}

#[derive(Debug, Clone)]
struct MSpec {
    /// The body was read (otherwise the digest is only known from tags and child lists).
    body: bool,
    kind: MKind,
    size: u64,
    created: Option<i64>,
}

#[derive(Debug, Clone)]
enum TSpec {
    Ok(usize),
    Broken(Option<usize>, Failure, usize),
}

#[derive(Debug, Clone)]
struct InvSpec {
    manifests: Vec<MSpec>,
    /// (repository, name, target), indexes into `REPOS`, `NAMES`, `manifests`.
    tags: Vec<(usize, usize, TSpec)>,
}

fn failure() -> impl Strategy<Value = Failure> + Clone {
    prop_oneof![
        (
            prop::sample::select(vec![404u16, 500, 502, 401, 403]),
            any::<bool>(),
            0..MESSAGES.len()
        )
            .prop_map(|(status, code, message)| Failure::Status { status, code, message }),
        (0..OTHER.len()).prop_map(Failure::Other),
    ]
}

fn created() -> impl Strategy<Value = Option<i64>> + Clone {
    prop_oneof![
        2 => Just(None),
        3 => (1_600_000_000i64..1_800_000_000).prop_map(Some),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 253_402_300_799]).prop_map(Some),
        1 => any::<i64>().prop_map(Some),
    ]
}

fn mspec() -> impl Strategy<Value = MSpec> + Clone {
    let kind = prop_oneof![
        3 => (0..6usize, prop::collection::vec((0..6usize, 0..1000u64), 0..3))
            .prop_map(|(config, layers)| MKind::Image { config, layers }),
        2 => prop::collection::vec(0..16usize, 0..4).prop_map(|children| MKind::Index { children }),
    ];
    (prop::bool::weighted(0.9), kind, 0..5000u64, created()).prop_map(|(body, kind, size, created)| MSpec {
        body,
        kind,
        size,
        created,
    })
}

fn tspec() -> impl Strategy<Value = TSpec> + Clone {
    prop_oneof![
        4 => (0..16usize).prop_map(TSpec::Ok),
        1 => (prop::option::of(0..16usize), failure(), 0..UNDER.len())
            .prop_map(|(d, f, u)| TSpec::Broken(d, f, u)),
    ]
}

fn inv_spec() -> impl Strategy<Value = InvSpec> + Clone {
    (
        prop::collection::vec(mspec(), 1..8),
        prop::collection::vec((0..REPOS.len(), 0..NAMES.len(), tspec()), 0..12),
    )
        .prop_map(|(manifests, tags)| InvSpec { manifests, tags })
}

/// The children of manifest `i` as manifest indexes: when `acyclic`, only later manifests
/// (content addressing makes a cycle impossible in a real registry).
fn children_of(spec: &InvSpec, i: usize, children: &[usize], acyclic: bool) -> Vec<usize> {
    let n = spec.manifests.len();
    children
        .iter()
        .filter_map(|c| {
            if acyclic {
                (i + 1 < n).then(|| i + 1 + c % (n - i - 1))
            } else {
                Some(c % n)
            }
        })
        .collect()
}

/// Builds the inventory, and per (repository, tag) whether the tag exists (false: its GET
/// answered 404).
fn build_inventory(spec: &InvSpec, acyclic: bool) -> (Inventory, HashMap<(String, String), bool>) {
    let n = spec.manifests.len();
    let mut b = InventoryBuilder::new("registry.test:5000");
    for r in REPOS {
        b.repo(r);
    }
    for (i, m) in spec.manifests.iter().enumerate() {
        if !m.body {
            continue;
        }
        let digest = b.digest(&mdigest(i));
        let kind = match &m.kind {
            MKind::Image { config, layers } => ManifestKind::Image {
                config: Blob {
                    digest: b.digest(&bdigest(*config)),
                    size: 7,
                },
                layers: layers
                    .iter()
                    .map(|(l, s)| Blob {
                        digest: b.digest(&bdigest(*l)),
                        size: *s,
                    })
                    .collect(),
            },
            MKind::Index { children } => ManifestKind::Index {
                children: children_of(spec, i, children, acyclic)
                    .into_iter()
                    .map(|c| {
                        (
                            Blob {
                                digest: b.digest(&mdigest(c)),
                                size: spec.manifests[c].size,
                            },
                            Some(Platform {
                                os: "linux".into(),
                                architecture: "amd64".into(),
                                variant: None,
                            }),
                        )
                    })
                    .collect(),
            },
        };
        let media_type = match m.kind {
            MKind::Image { .. } => "application/vnd.oci.image.manifest.v1+json",
            MKind::Index { .. } => "application/vnd.oci.image.index.v1+json",
        };
        b.manifest(Manifest {
            digest,
            media_type: media_type.into(),
            size: m.size,
            kind,
            created: m.created,
        });
    }
    let mut exists = HashMap::new();
    for (repo, name, target) in &spec.tags {
        let (repo, name) = (REPOS[*repo], NAMES[*name]);
        let r = b.repo(repo);
        let present = match target {
            TSpec::Ok(d) => {
                let d = b.digest(&mdigest(d % n));
                b.tag(r, name, d);
                true
            }
            TSpec::Broken(Some(d), f, under) => {
                let d = b.digest(&mdigest(d % n));
                let reason = if under % 2 == 0 {
                    f.reason(repo, name)
                } else {
                    UNDER[under % UNDER.len()].to_string()
                };
                b.broken_tag(r, name, Some(d), &reason);
                true
            }
            TSpec::Broken(None, f, _) => {
                b.broken_tag(r, name, None, &f.reason(repo, name));
                !f.not_found()
            }
        };
        // The builder keeps the first of two tags with the same repository and name.
        exists.entry((repo.to_string(), name.to_string())).or_insert(present);
    }
    (b.finish(), exists)
}

/// What changed in the registry between the plan and the delete run.
#[derive(Debug, Clone)]
enum Change {
    Retarget(usize, TSpec),
    Untag(usize),
    Tag((usize, usize, TSpec)),
    LoseBody(usize),
}

fn change() -> impl Strategy<Value = Change> + Clone {
    prop_oneof![
        (0..16usize, tspec()).prop_map(|(i, t)| Change::Retarget(i, t)),
        (0..16usize).prop_map(Change::Untag),
        (0..REPOS.len(), 0..NAMES.len(), tspec()).prop_map(Change::Tag),
        (0..16usize).prop_map(Change::LoseBody),
    ]
}

fn apply_changes(spec: &InvSpec, changes: &[Change]) -> InvSpec {
    let mut s = spec.clone();
    for c in changes {
        match c {
            Change::Retarget(i, t) if !s.tags.is_empty() => {
                let i = i % s.tags.len();
                s.tags[i].2 = t.clone();
            }
            Change::Untag(i) if !s.tags.is_empty() => {
                let i = i % s.tags.len();
                s.tags.remove(i);
            }
            Change::Tag(t) => s.tags.insert(0, t.clone()),
            Change::LoseBody(i) => {
                let i = i % s.manifests.len();
                s.manifests[i].body = false;
            }
            _ => {}
        }
    }
    s
}

/// Tags of an inventory picked by a bit mask over tag ids.
fn tags_by_mask(inv: &Inventory, mask: u32) -> Vec<TagId> {
    inv.tag_ids().filter(|t| mask & (1 << (t.0 % 32)) != 0).collect()
}

// ---------------------------------------------------------------------------------------
// Random plans
// ---------------------------------------------------------------------------------------

/// A plan entry written by hand (or by an attacker who recomputes the checksum).
#[derive(Debug, Clone)]
struct Crafted {
    repo: usize,
    digest: usize,
    tags: u8,
    child_of: Option<usize>,
    cats: u8,
    untag: bool,
    index: bool,
}

fn crafted() -> impl Strategy<Value = Crafted> + Clone {
    (
        0..REPOS.len() + 1,
        0..10usize,
        any::<u8>(),
        prop::option::of(0..10usize),
        0..8u8,
        prop::bool::weighted(0.25),
        any::<bool>(),
    )
        .prop_map(|(repo, digest, tags, child_of, cats, untag, index)| Crafted {
            repo,
            digest,
            tags,
            child_of,
            cats,
            untag,
            index,
        })
}

fn cats_of(mask: u8) -> Vec<CategoryId> {
    CATS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect()
}

impl Crafted {
    fn entry(&self) -> PlanManifest {
        PlanManifest {
            repository: REPOS
                .get(self.repo)
                .copied()
                .unwrap_or("dominodatalab/gone")
                .to_string(),
            digest: mdigest(self.digest),
            tags: NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| self.tags & (1 << i) != 0)
                .map(|(_, n)| n.to_string())
                .collect(),
            index: self.index,
            child_of: self.child_of.map(mdigest),
            categories: cats_of(self.cats),
            kind: None,
            untag: self.untag,
        }
    }
}

/// (tag mask, category of each wanted tag) → the `wanted` list of `deletion::build`.
fn wanted(inv: &Inventory, mask: u32, cats: u32) -> Vec<deletion::Wanted> {
    tags_by_mask(inv, mask)
        .into_iter()
        .map(|t| {
            let c = (cats >> ((t.0 % 16) * 2)) & 3;
            (t, CATS.get(c as usize).copied())
        })
        .collect()
}

const NOW: i64 = 1_760_000_000;
const FP: &str = "fingerprint-1";
const SCOPE: Scope<'static> = Scope {
    prefix: "dominodatalab",
    repositories: None,
};

fn built_plan(inv: &Inventory, mask: u32, cats: u32, now: i64) -> Plan {
    let mut engine = SpaceEngine::new(inv);
    deletion::build(inv, &mut engine, &wanted(inv, mask, cats), "selection", FP, now)
}

// ---------------------------------------------------------------------------------------
// The re-check: random inventories × random plans
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct RecheckCase {
    planned_on: InvSpec,
    changes: Vec<Change>,
    wanted: (u32, u32),
    crafted: Vec<Crafted>,
    protected: u32,
    membership: [Option<u32>; 3],
}

fn recheck_case() -> impl Strategy<Value = RecheckCase> {
    (
        inv_spec(),
        prop::collection::vec(change(), 0..5),
        (any::<u32>(), any::<u32>()),
        prop::collection::vec(crafted(), 0..4),
        prop_oneof![Just(0u32), any::<u32>()],
        [
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
            prop::option::of(any::<u32>()),
        ],
    )
        .prop_map(
            |(planned_on, changes, wanted, crafted, protected, membership)| RecheckCase {
                planned_on,
                changes,
                wanted,
                crafted,
                protected,
                membership,
            },
        )
}

/// The safety properties of a re-check (see `fuzz_recheck_never_deletes_what_it_must_keep`).
fn check_verdicts(
    plan: &[PlanManifest],
    fresh: &Inventory,
    exists: &HashMap<(String, String), bool>,
    protected: &HashMap<TagId, Vec<String>>,
    verdicts: &[Verdict],
) -> TestCaseResult {
    ensure(verdicts.len() == plan.len(), || "one verdict per manifest".into())?;
    let parents = planned_parents(plan, fresh);
    let phases = registry_cleaner::plan::recheck::phases(plan, &parents);
    for (i, m) in plan.iter().enumerate() {
        if verdicts[i] != Verdict::Delete {
            continue;
        }
        let at = format!("entry {i} {}@{}", m.repository, m.digest);
        let Some(repo) = fresh.repo_by_name(&m.repository) else {
            return Err(TestCaseError::fail(format!(
                "{at}: Delete in a repository the fresh scan lacks"
            )));
        };
        let d = fresh.digests.get(&m.digest);
        let repo_tags: Vec<TagId> = fresh.repo_tags(repo).collect();
        let name = |t: TagId| fresh.tag(t).name.clone();
        if m.untag {
            for tag in &m.tags {
                if let Some(t) = fresh.find_tag(&m.repository, tag) {
                    ensure(d.is_some() && fresh.tag_digest(t) == d, || {
                        format!("{at}: untag of {tag}, which no longer points at the digest")
                    })?;
                    ensure(!protected.contains_key(&t), || {
                        format!("{at}: untag of protected tag {tag}")
                    })?;
                }
            }
            continue;
        }
        for &t in &repo_tags {
            let tname = name(t);
            match &fresh.tag(t).state {
                // A tag whose digest could not be learnt and that exists may point here.
                TagState::Broken { digest: None, reason } => {
                    ensure(!exists[&(m.repository.clone(), tname.clone())], || {
                        format!("{at}: Delete while tag {tname} could not be resolved ({reason})")
                    })?;
                }
                // A broken tag whose manifest is unknown (or is an index listing this one)
                // blocks unless the plan deletes that digest naming the tag.
                TagState::Broken {
                    digest: Some(dt),
                    reason,
                } => {
                    let may_list = match fresh.manifest(*dt).map(|x| &x.kind) {
                        None => true,
                        Some(ManifestKind::Index { children }) => {
                            children.iter().any(|(c, _)| fresh.digests.name(c.digest) == m.digest)
                        }
                        Some(ManifestKind::Image { .. }) => false,
                    };
                    let dname = fresh.digests.name(*dt);
                    let planned = plan.iter().any(|x| {
                        !x.untag && x.repository == m.repository && x.digest == dname && x.tags.contains(&tname)
                    });
                    ensure(!may_list || planned, || {
                        format!("{at}: Delete while unreadable tag {tname} ({reason}) on {dname} might list it")
                    })?;
                }
                TagState::Ok(_) => {}
            }
            if d.is_some() && fresh.tag_digest(t) == d {
                ensure(m.tags.contains(&tname), || {
                    format!("{at}: tag {tname} points at the digest and is not in the entry")
                })?;
                ensure(!protected.contains_key(&t), || {
                    format!("{at}: tag {tname} on the digest is protected")
                })?;
            }
        }
        // Every index in this repository that lists the manifest is deleted by the plan and
        // goes first.
        for x in fresh.manifests() {
            let ManifestKind::Index { children } = &x.kind else {
                continue;
            };
            if !children.iter().any(|(c, _)| fresh.digests.name(c.digest) == m.digest) {
                continue;
            }
            let present = repo_tags.iter().any(|t| fresh.tag_digest(*t) == Some(x.digest))
                || fresh.find_revision(repo, x.digest).is_some();
            if !present {
                continue;
            }
            let iname = fresh.digests.name(x.digest);
            let entries: Vec<usize> = (0..plan.len())
                .filter(|j| plan[*j].repository == m.repository && plan[*j].digest == iname)
                .collect();
            ensure(entries.iter().any(|j| !plan[*j].untag), || {
                format!("{at}: index {iname} lists it and the plan does not delete that index")
            })?;
            ensure(entries.iter().any(|j| parents[i].contains(j)), || {
                format!(
                    "{at}: planned index {iname} that lists it is not among its planned parents {:?}",
                    parents[i]
                )
            })?;
        }
        // A `child_of` entry goes only as a child its planned parent's fresh body lists, in
        // this repository.
        if let Some(parent) = &m.child_of {
            let listed = fresh.digests.get(parent).is_some_and(|pd| {
                let present = repo_tags.iter().any(|t| fresh.tag_digest(*t) == Some(pd))
                    || fresh.find_revision(repo, pd).is_some();
                present
                    && matches!(fresh.manifest(pd).map(|x| &x.kind), Some(ManifestKind::Index { children })
                        if children.iter().any(|(c, _)| fresh.digests.name(c.digest) == m.digest))
            });
            ensure(listed, || {
                format!("{at}: Delete as a child of {parent}, whose fresh body in the repository does not list it")
            })?;
        }
        // The executor runs phase by phase; a manifest in none (below a cycle) never runs.
        let Some(phase) = phases[i] else {
            return Err(TestCaseError::fail(format!("{at}: Delete but in no executor phase")));
        };
        for &p in &parents[i] {
            ensure(phases[p].is_some_and(|pp| pp < phase), || {
                format!(
                    "{at}: in phase {phase} with its planned parent {p} ({}) in phase {:?}",
                    plan[p].digest, phases[p]
                )
            })?;
        }
    }
    Ok(())
}

/// Verdicts checked, and how many of them were `Delete` (so a run shows the properties bit).
static VERDICTS: [std::sync::atomic::AtomicU64; 2] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

fn run_recheck_case(c: &RecheckCase) -> TestCaseResult {
    let (planned_on, _) = build_inventory(&c.planned_on, true);
    let mut plan = built_plan(&planned_on, c.wanted.0, c.wanted.1, NOW).manifests;
    plan.extend(c.crafted.iter().map(Crafted::entry));
    let fresh_spec = apply_changes(&c.planned_on, &c.changes);
    let (fresh, exists) = build_inventory(&fresh_spec, true);
    let protected: HashMap<TagId, Vec<String>> = tags_by_mask(&fresh, c.protected)
        .into_iter()
        .map(|t| (t, vec!["a running pod".to_string()]))
        .collect();
    let membership: Membership = CATS
        .iter()
        .zip(c.membership)
        .filter_map(|(cat, mask)| mask.map(|m| (*cat, tags_by_mask(&fresh, m).into_iter().collect())))
        .collect();
    let verdicts = recheck(&plan, &fresh, &protected, &membership);
    use std::sync::atomic::Ordering::Relaxed;
    VERDICTS[0].fetch_add(verdicts.len() as u64, Relaxed);
    VERDICTS[1].fetch_add(
        verdicts.iter().filter(|v| **v == Verdict::Delete).count() as u64,
        Relaxed,
    );
    check_verdicts(&plan, &fresh, &exists, &protected, &verdicts)
}

/// For any inventory and any plan (built on an older inventory, plus crafted entries with
/// random `child_of`, `untag`, categories), any protections and category membership, a
/// `Delete` verdict never takes: a tag on the digest that the entry does not list, a
/// protected tag, a manifest that an index of the repository still lists unless the plan
/// deletes that index first (a planned parent in an earlier executor phase), anything while a
/// tag of the repository could not be resolved, or anything an unreadable manifest might list
/// (unless the plan deletes that digest naming the tag); an untag never touches a protected
/// tag or one that moved.
#[test]
fn fuzz_recheck_never_deletes_what_it_must_keep() {
    fuzz("fuzz_recheck_never_deletes_what_it_must_keep", recheck_case(), |c| {
        run_recheck_case(&c)
    });
    let [all, delete] = VERDICTS
        .each_ref()
        .map(|v| v.load(std::sync::atomic::Ordering::Relaxed));
    eprintln!("fuzz_recheck_never_deletes_what_it_must_keep: {delete} of {all} verdicts were Delete");
}

// ---------------------------------------------------------------------------------------
// Plan building
// ---------------------------------------------------------------------------------------

/// `deletion::build` on any inventory with valid names: the plan passes `validate_names` and
/// `validate` (until it expires, not a second later), survives a JSON round trip, accounts for
/// every wanted tag (planned or excluded), and never deletes by digest a manifest that an
/// index staying in the repository lists.
#[test]
fn fuzz_build_plans_validate() {
    fuzz(
        "fuzz_build_plans_validate",
        (inv_spec(), any::<u32>(), any::<u32>(), 0i64..4_000_000_000),
        |(spec, mask, cats, now)| {
            let (inv, _) = build_inventory(&spec, true);
            let plan = built_plan(&inv, mask, cats, now);
            deletion::validate_names(&plan, SCOPE).map_err(TestCaseError::fail)?;
            deletion::validate(&plan, &inv.registry, Some(FP), now).map_err(TestCaseError::fail)?;
            deletion::validate(&plan, &inv.registry, Some(FP), now + PLAN_LIFETIME_SECS)
                .map_err(TestCaseError::fail)?;
            ensure(
                deletion::validate(&plan, &inv.registry, Some(FP), now + PLAN_LIFETIME_SECS + 1).is_err(),
                || "an expired plan validates".into(),
            )?;
            let json = serde_json::to_vec(&plan).unwrap();
            let back: Plan = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&back, &plan);
            for (t, _) in wanted(&inv, mask, cats) {
                let (repo, name) = (&inv.repo(inv.tag(t).repo).name, &inv.tag(t).name);
                ensure(
                    plan.tags.iter().any(|p| &p.repository == repo && &p.tag == name)
                        || plan.excluded.iter().any(|e| &e.repository == repo && &e.tag == name),
                    || format!("wanted tag {repo}:{name} is neither planned nor excluded"),
                )?;
            }
            for m in plan.manifests.iter().filter(|m| !m.untag) {
                let (Some(repo), Some(d)) = (inv.repo_by_name(&m.repository), inv.digests.get(&m.digest)) else {
                    continue;
                };
                let Some(rev) = inv.find_revision(repo, d) else {
                    continue;
                };
                for p in &inv.revision(rev).parents {
                    let parent = inv.digests.name(inv.revision(*p).manifest);
                    ensure(
                        plan.manifests
                            .iter()
                            .any(|x| !x.untag && x.repository == m.repository && x.digest == parent),
                        || format!("{}@{} is deleted but its index {parent} stays", m.repository, m.digest),
                    )?;
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Plan files: read → validated_plan → validate_names → re-check
// ---------------------------------------------------------------------------------------

use registry_cleaner::report::json::{REPORT_SCHEMA, Report};

fn report_of(plan: Plan) -> Report {
    Report {
        schema_version: REPORT_SCHEMA,
        generated_at: timefmt::rfc3339(NOW),
        registry: plan.registry.clone(),
        space_basis: String::new(),
        grace_basis: String::new(),
        sources: BTreeMap::new(),
        without: vec![],
        categories: vec![],
        plan,
        grouping: None,
    }
}

/// What the checksum covers, as JSON.
fn decided(p: &Plan) -> serde_json::Value {
    serde_json::json!({
        "registry": p.registry, "tags": p.tags, "manifests": p.manifests,
        "bytes": p.reclaimable_bytes, "mongo": p.mongo_cleanup, "fp": p.settings_fingerprint,
        "snapshot": p.snapshot_time, "expires": p.expires_at,
    })
}

thread_local! {
    static DIR: tempfile::TempDir = tempfile::tempdir().unwrap();
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    DIR.with(|d| {
        let p = d.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    })
}

/// Where a plan file's bytes come from.
#[derive(Debug, Clone)]
enum PlanBytes {
    Raw(Vec<u8>),
    /// A report written from a plan built on the case's inventory, then byte-edited.
    Written {
        mask: u32,
        cats: u32,
        edits: Option<Edits>,
    },
}

/// Arbitrary bytes and byte-edited report files go through the whole read path of `delete
/// --plan` that needs no server: `read_plan`, `validated_plan`, `validate_names`, the
/// re-check and `planned_parents`. Nothing panics, and an edited file that still passes
/// validation decides exactly what the written plan decided (every byte edit to a field the
/// checksum covers is refused).
#[test]
fn fuzz_plan_file_read_validate_recheck() {
    let source = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300).prop_map(PlanBytes::Raw),
        4 => (any::<u32>(), any::<u32>(), prop::option::weighted(0.9, edits()))
            .prop_map(|(mask, cats, edits)| PlanBytes::Written { mask, cats, edits }),
    ];
    fuzz(
        "fuzz_plan_file_read_validate_recheck",
        (inv_spec(), source),
        |(spec, source)| {
            let (inv, _) = build_inventory(&spec, true);
            let (bytes, original) = match &source {
                PlanBytes::Raw(b) => (b.clone(), None),
                PlanBytes::Written { mask, cats, edits } => {
                    let plan = built_plan(&inv, *mask, *cats, NOW);
                    let bytes = serde_json::to_vec_pretty(&report_of(plan.clone())).unwrap();
                    let bytes = match edits {
                        Some(e) => mutate(bytes, e),
                        None => bytes,
                    };
                    (bytes, Some(plan))
                }
            };
            let path = temp_file("plan.json", &bytes);
            let Ok(report) = registry_cleaner::headless::delete::read_plan(&path) else {
                return Ok(());
            };
            let plan = match report.validated_plan(&inv.registry, Some(FP), NOW) {
                Ok(p) => p,
                Err(_) => return Ok(()),
            };
            if let Some(original) = &original {
                prop_assert_eq!(decided(&plan), decided(original), "an edited plan validated");
            }
            if deletion::validate_names(&plan, SCOPE).is_ok() {
                let v = recheck(&plan.manifests, &inv, &HashMap::new(), &Membership::new());
                prop_assert_eq!(v.len(), plan.manifests.len());
                let _ = planned_parents(&plan.manifests, &inv);
            }
            Ok(())
        },
    );
}

/// One edit to a field the checksum covers, without re-sealing: `validate` refuses the plan.
#[derive(Debug, Clone)]
struct Edit {
    what: u8,
    k: usize,
    v: u8,
}

fn apply_edit(p: &mut Plan, e: &Edit) {
    let n = p.manifests.len();
    let k = if n == 0 { 0 } else { e.k % n };
    let other = mdigest(100 + e.v as usize);
    match e.what % 19 {
        0 => p.registry.push('x'),
        1 => p.reclaimable_bytes = p.reclaimable_bytes.wrapping_add(1 + e.v as u64),
        2 => p.mongo_cleanup = !p.mongo_cleanup,
        3 => p.expires_at = timefmt::rfc3339(NOW + PLAN_LIFETIME_SECS * (2 + e.v as i64)),
        4 => p.settings_fingerprint.push('x'),
        5 => p.snapshot_time = timefmt::rfc3339(NOW - 1 - e.v as i64),
        6 if n > 0 => {
            p.manifests.remove(k);
        }
        7 if n > 0 => p.manifests[k].digest = other,
        8 if n > 0 => p.manifests[k].tags.push("extra".into()),
        9 if n > 0 => p.manifests[k].untag = !p.manifests[k].untag,
        10 if n > 0 => {
            p.manifests[k].child_of = match p.manifests[k].child_of {
                Some(_) => None,
                None => Some(other),
            }
        }
        11 if n > 0 => p.manifests[k].categories.push(CategoryId::OldRevisions),
        12 if n > 0 => p.manifests[k].repository = "dominodatalab/other".into(),
        13 if !p.tags.is_empty() => {
            let k = e.k % p.tags.len();
            p.tags.remove(k);
        }
        14 if !p.tags.is_empty() => {
            let k = e.k % p.tags.len();
            p.tags[k].digest = other;
        }
        15 if n > 0 => p.manifests[k].kind = None,
        16 if n > 0 => p.manifests[k].index = !p.manifests[k].index,
        17 if n > 0 => {
            let m = p.manifests[k].clone();
            p.manifests.push(m);
        }
        18 if n > 1 => p.manifests.swap(k, (k + 1 + e.v as usize) % n),
        _ => p.tags.push(deletion::PlanTag {
            repository: REPOS[0].into(),
            tag: "extra".into(),
            digest: other,
        }),
    }
}

#[test]
fn fuzz_plan_edits_are_refused() {
    let edit = (any::<u8>(), any::<usize>(), any::<u8>()).prop_map(|(what, k, v)| Edit { what, k, v });
    fuzz(
        "fuzz_plan_edits_are_refused",
        (inv_spec(), any::<u32>(), any::<u32>(), edit),
        |(spec, mask, cats, e)| {
            let (inv, _) = build_inventory(&spec, true);
            let plan = built_plan(&inv, mask, cats, NOW);
            let mut edited = plan.clone();
            apply_edit(&mut edited, &e);
            if decided(&edited) == decided(&plan) {
                return Ok(()); // the edit changed nothing (e.g. swapped two equal entries)
            }
            ensure(
                deletion::validate(&edited, &inv.registry, Some(FP), NOW).is_err(),
                || format!("edited plan validates: {e:?}"),
            )?;
            // Also through the report file: the written bytes, read back, are refused.
            let bytes = serde_json::to_vec(&report_of(edited)).unwrap();
            let report: Report = serde_json::from_slice(&bytes).unwrap();
            ensure(report.validated_plan(&inv.registry, Some(FP), NOW).is_err(), || {
                format!("edited report validates: {e:?}")
            })
        },
    );
}

// ---------------------------------------------------------------------------------------
// Registry answers: manifests, configs, auth challenges, Link headers
// ---------------------------------------------------------------------------------------

use registry_cleaner::sources::registry::manifest::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use registry_cleaner::sources::registry::{
    Challenge, ParsedManifest, next_link, parse_challenge, parse_config_created, parse_manifest,
};

const MEDIA: [&str; 4] = [DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX];

#[derive(Debug, Clone)]
struct DescSpec {
    digest: u64,
    size: u64,
    platform: Option<(String, String, Option<String>)>,
}

fn desc() -> impl Strategy<Value = DescSpec> + Clone {
    (
        any::<u64>(),
        any::<u64>(),
        prop::option::of(("[a-z]{0,8}", "[a-z0-9]{0,8}", prop::option::of("v[0-9]"))),
    )
        .prop_map(|(digest, size, platform)| DescSpec { digest, size, platform })
}

/// A manifest as a registry would send it: (body, Content-Type).
fn manifest_doc() -> impl Strategy<Value = (serde_json::Value, Option<String>)> + Clone {
    (
        any::<bool>(),
        prop::option::of(0..MEDIA.len()),
        desc(),
        prop::collection::vec(desc(), 0..4),
        prop::option::of(0..MEDIA.len()),
    )
        .prop_map(|(index, media, config, items, ct)| {
            let d = |x: &DescSpec| digest_str(0xC, x.digest as usize);
            let mut doc = serde_json::json!({ "schemaVersion": 2 });
            if let Some(m) = media {
                doc["mediaType"] = MEDIA[m].into();
            }
            if index {
                doc["manifests"] = items
                    .iter()
                    .map(|x| {
                        let mut c = serde_json::json!({"digest": d(x), "size": x.size});
                        if let Some((os, arch, variant)) = &x.platform {
                            c["platform"] = serde_json::json!({"os": os, "architecture": arch, "variant": variant});
                        }
                        c
                    })
                    .collect();
            } else {
                doc["config"] = serde_json::json!({"digest": d(&config), "size": config.size});
                doc["layers"] = items
                    .iter()
                    .map(|x| serde_json::json!({"digest": d(x), "size": x.size}))
                    .collect();
            }
            (doc, ct.map(|c| format!("{}; charset=utf-8", MEDIA[c])))
        })
}

/// Arbitrary and byte-edited manifest bodies with any Content-Type: no panic, and an
/// accepted manifest names only valid digests and a media type.
#[test]
fn fuzz_manifest_bytes() {
    let valid = manifest_doc()
        .prop_map(|(doc, _)| serde_json::to_vec(&doc).unwrap())
        .boxed();
    fuzz(
        "fuzz_manifest_bytes",
        (bytes_around(valid), prop::option::of(".{0,40}")),
        |(body, ct)| {
            if let Ok(m) = parse_manifest(&body.0, ct.as_deref()) {
                let valid = registry_cleaner::model::digest::is_valid_digest;
                match m {
                    ParsedManifest::Image {
                        media_type,
                        config,
                        layers,
                    } => {
                        ensure(!media_type.is_empty(), || "empty media type".into())?;
                        ensure(valid(&config.digest) && layers.iter().all(|l| valid(&l.digest)), || {
                            "an invalid digest was accepted".into()
                        })?;
                    }
                    ParsedManifest::Index { media_type, children } => {
                        ensure(!media_type.is_empty(), || "empty media type".into())?;
                        ensure(children.iter().all(|c| valid(&c.digest)), || {
                            "an invalid child digest was accepted".into()
                        })?;
                    }
                }
            }
            Ok(())
        },
    );
}

/// A well-formed image or index parses to exactly what it says (digests, sizes, platforms,
/// media type from the body, else the Content-Type, else OCI's).
#[test]
fn fuzz_manifest_round_trip() {
    fuzz("fuzz_manifest_round_trip", manifest_doc(), |(doc, ct)| {
        let body = serde_json::to_vec(&doc).unwrap();
        let media = doc["mediaType"]
            .as_str()
            .map(str::to_string)
            .or_else(|| ct.as_deref().map(|c| c.split(';').next().unwrap().to_string()));
        let is_index = doc.get("manifests").is_some();
        let said_index = media.as_deref().is_some_and(|m| m == DOCKER_LIST || m == OCI_INDEX);
        let result = parse_manifest(&body, ct.as_deref());
        if said_index && !is_index {
            // An image body under an index media type: refused, not read as an empty index.
            prop_assert!(result.is_err());
            return Ok(());
        }
        match result.map_err(TestCaseError::fail)? {
            ParsedManifest::Index { media_type, children } => {
                ensure(is_index, || "an image parsed as an index".into())?;
                let want = doc["manifests"].as_array().unwrap();
                prop_assert_eq!(children.len(), want.len());
                for (c, w) in children.iter().zip(want) {
                    prop_assert_eq!(&c.digest, w["digest"].as_str().unwrap());
                    prop_assert_eq!(c.size, w["size"].as_u64().unwrap());
                    prop_assert_eq!(c.os.as_deref(), w["platform"]["os"].as_str());
                    prop_assert_eq!(c.architecture.as_deref(), w["platform"]["architecture"].as_str());
                    prop_assert_eq!(c.variant.as_deref(), w["platform"]["variant"].as_str());
                }
                prop_assert_eq!(media_type, media.unwrap_or_else(|| OCI_INDEX.to_string()));
            }
            ParsedManifest::Image {
                media_type,
                config,
                layers,
            } => {
                ensure(!is_index && !said_index, || "an index parsed as an image".into())?;
                prop_assert_eq!(&config.digest, doc["config"]["digest"].as_str().unwrap());
                prop_assert_eq!(config.size, doc["config"]["size"].as_u64().unwrap());
                let want = doc["layers"].as_array().unwrap();
                prop_assert_eq!(layers.len(), want.len());
                for (l, w) in layers.iter().zip(want) {
                    prop_assert_eq!(&l.digest, w["digest"].as_str().unwrap());
                    prop_assert_eq!(l.size, w["size"].as_u64().unwrap());
                }
                prop_assert_eq!(media_type, media.unwrap_or_else(|| OCI_MANIFEST.to_string()));
            }
        }
        Ok(())
    });
}

/// Config blobs: arbitrary and edited bytes never panic; an RFC 3339 `created` of any time
/// between years 1 and 9999 reads back as its Unix seconds.
#[test]
fn fuzz_config_created() {
    let valid = (-62_135_596_800i64..253_402_300_799)
        .prop_map(|t| format!(r#"{{"architecture":"amd64","created":"{}"}}"#, timefmt::rfc3339(t)).into_bytes())
        .boxed();
    fuzz(
        "fuzz_config_created",
        (bytes_around(valid), -62_135_596_800i64..253_402_300_799),
        |(body, t)| {
            let _ = parse_config_created(&body.0);
            let doc = format!(r#"{{"created":"{}"}}"#, timefmt::rfc3339(t));
            prop_assert_eq!(parse_config_created(doc.as_bytes()), Ok(Some(t)));
            Ok(())
        },
    );
}

/// A header value: anything printable, plus the characters that matter to these parsers.
fn header_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,80}",
        prop::collection::vec(
            prop::sample::select(vec![
                "Bearer ",
                "Basic ",
                "realm=",
                "service=",
                "scope=",
                "\"",
                ",",
                " ",
                "=",
                "<",
                ">",
                ";",
                "rel=",
                "\"next\"",
                "/v2/x?n=1",
                "é",
                "\u{0}",
                "https://a/t",
            ]),
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// `WWW-Authenticate` values: never a panic; a Bearer challenge with quoted realm, service
/// and scope (commas inside the scope included), in any key case and order, reads back
/// exactly; a realm is required.
#[test]
fn fuzz_auth_challenge() {
    let value = "[A-Za-z0-9:/._?&=, -]{0,40}";
    fuzz(
        "fuzz_auth_challenge",
        (
            header_text(),
            value,
            prop::option::of(value),
            prop::option::of(value),
            any::<bool>(),
            any::<bool>(),
        ),
        |(raw, realm, service, scope, upper, reversed)| {
            let _ = parse_challenge(&raw);
            let key = |k: &str| if upper { k.to_ascii_uppercase() } else { k.to_string() };
            let mut params = vec![format!("{}=\"{realm}\"", key("realm"))];
            if let Some(s) = &service {
                params.push(format!("{}=\"{s}\"", key("service")));
            }
            if let Some(s) = &scope {
                params.push(format!("{}=\"{s}\"", key("scope")));
            }
            if reversed {
                params.reverse();
            }
            let header = format!("{} {}", if upper { "BEARER" } else { "Bearer" }, params.join(","));
            prop_assert_eq!(
                parse_challenge(&header),
                Some(Challenge::Bearer {
                    realm: realm.clone(),
                    service: service.clone(),
                    scope: scope.clone(),
                })
            );
            let no_realm = header.replace("realm=", "rea1m=").replace("REALM=", "REA1M=");
            prop_assert_eq!(parse_challenge(&no_realm), None);
            Ok(())
        },
    );
}

/// `Link` headers: never a panic; the `rel="next"` target is found among other links.
#[test]
fn fuzz_link_header() {
    let target = "/v2/[a-z/]{1,20}\\?(n=[0-9]{1,4}&)?last=[A-Za-z0-9%._-]{0,20}";
    fuzz(
        "fuzz_link_header",
        (header_text(), target, prop::option::of(target), any::<bool>()),
        |(raw, next, other, other_first)| {
            let _ = next_link(&raw);
            let mut links = vec![format!("<{next}>; rel=\"next\"")];
            if let Some(o) = &other {
                let prev = format!("<{o}>; rel=\"prev\"");
                if other_first {
                    links.insert(0, prev);
                } else {
                    links.push(prev);
                }
            }
            prop_assert_eq!(next_link(&links.join(", ")), Some(next.clone()));
            if let Some(o) = &other {
                prop_assert_eq!(next_link(&format!("<{o}>; rel=\"prev\"")), None);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Docker config JSON (`~/.docker/config.json`, dockerconfigjson secrets)
// ---------------------------------------------------------------------------------------

use base64::Engine as _;
use registry_cleaner::sources::registry::{docker_config_auths, docker_config_credentials};

#[derive(Debug, Clone)]
enum AuthEntry {
    /// base64 `user:password`, maybe padded with whitespace.
    Auth {
        user: String,
        pass: String,
        ws: bool,
    },
    UserPass {
        user: String,
        pass: String,
    },
    Identity(String),
    /// Not base64, or base64 of something without a colon, or not UTF-8.
    BadAuth(u8, String),
    Empty,
}

fn secret_text() -> impl Strategy<Value = String> + Clone {
    "[A-Za-z0-9:+/=]{6,20}".prop_map(|s| format!("PW{s}"))
}

fn auth_entry() -> impl Strategy<Value = AuthEntry> + Clone {
    let user = "[a-z0-9_.@-]{0,12}";
    prop_oneof![
        (user, secret_text(), any::<bool>()).prop_map(|(user, pass, ws)| AuthEntry::Auth { user, pass, ws }),
        (user, secret_text()).prop_map(|(user, pass)| AuthEntry::UserPass { user, pass }),
        secret_text().prop_map(AuthEntry::Identity),
        (0..3u8, secret_text()).prop_map(|(k, s)| AuthEntry::BadAuth(k, s)),
        Just(AuthEntry::Empty),
    ]
}

const REGISTRY_HOST: &str = "reg.example:5000";
const KEYS: [&str; 6] = [
    "reg.example:5000",
    "https://reg.example:5000/",
    "REG.EXAMPLE:5000",
    "http://reg.example:5000/v2/",
    "reg.example",
    "other.example:5000",
];

impl AuthEntry {
    fn json(&self) -> serde_json::Value {
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        match self {
            AuthEntry::Auth { user, pass, ws } => {
                let a = b64(format!("{user}:{pass}").as_bytes());
                serde_json::json!({ "auth": if *ws { format!(" {a}\n") } else { a } })
            }
            AuthEntry::UserPass { user, pass } => serde_json::json!({"username": user, "password": pass}),
            AuthEntry::Identity(t) => serde_json::json!({"identitytoken": t}),
            AuthEntry::BadAuth(0, s) => serde_json::json!({"auth": format!("!{s}")}),
            AuthEntry::BadAuth(1, s) => serde_json::json!({"auth": b64(s.replace(':', "").as_bytes())}),
            AuthEntry::BadAuth(_, s) => {
                let mut bytes = s.clone().into_bytes();
                bytes.push(0xff);
                serde_json::json!({"auth": b64(&bytes)})
            }
            AuthEntry::Empty => serde_json::json!({}),
        }
    }
    fn secret(&self) -> &str {
        match self {
            AuthEntry::Auth { pass, .. } | AuthEntry::UserPass { pass, .. } => pass,
            AuthEntry::Identity(s) | AuthEntry::BadAuth(_, s) => s,
            AuthEntry::Empty => "",
        }
    }
}

/// Docker config JSON: arbitrary bytes and edited configs never panic; for a config whose
/// key names the registry (any scheme, case or default port spelling), credentials read
/// back exactly, and errors and `Debug` never show the secret. Read from a file too
/// (`docker_config_credentials`, configs without credential helpers).
#[test]
fn fuzz_docker_config() {
    let configs = prop::collection::vec((0..KEYS.len(), auth_entry()), 0..4);
    let valid = configs
        .clone()
        .prop_map(|entries| {
            let auths: serde_json::Map<_, _> = entries.iter().map(|(k, e)| (KEYS[*k].to_string(), e.json())).collect();
            serde_json::to_vec(&serde_json::json!({ "auths": auths })).unwrap()
        })
        .boxed();
    fuzz(
        "fuzz_docker_config",
        (bytes_around(valid), configs),
        |(Bytes(bytes), entries)| {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                for r in [REGISTRY_HOST, "reg.example", "", "https://x/"] {
                    let _ = docker_config_auths(&v, r, "config.json");
                }
                let text = String::from_utf8_lossy(&bytes);
                if !text.contains("cred") {
                    let _ = docker_config_credentials(&temp_file("raw-config.json", &bytes), REGISTRY_HOST);
                }
            }
            let auths: serde_json::Map<_, _> = entries.iter().map(|(k, e)| (KEYS[*k].to_string(), e.json())).collect();
            let doc = serde_json::json!({ "auths": auths });
            // serde_json's map keeps one value per key (the last): that is the entry used.
            let mut by_key: BTreeMap<&str, &AuthEntry> = BTreeMap::new();
            for (k, e) in &entries {
                by_key.insert(KEYS[*k], e);
            }
            let matching: Vec<&AuthEntry> = by_key
                .iter()
                .filter(|(k, _)| k.to_ascii_lowercase().contains("reg.example:5000"))
                .map(|(_, e)| *e)
                .collect();
            let got = docker_config_auths(&doc, REGISTRY_HOST, "secret x");
            let from_file = docker_config_credentials(
                &temp_file("config.json", &serde_json::to_vec(&doc).unwrap()),
                REGISTRY_HOST,
            );
            for r in [&got, &from_file] {
                let shown = match r {
                    Ok(c) => format!("{c:?}"),
                    Err(e) => e.clone(),
                };
                for (_, e) in &entries {
                    let s = e.secret();
                    ensure(s.is_empty() || !shown.contains(s), || {
                        format!("a secret is shown: {shown}")
                    })?;
                }
            }
            // The file gives what the JSON gives (errors name the file instead of the source).
            let pair = |c: &Option<registry_cleaner::sources::registry::Credentials>| {
                c.as_ref()
                    .map(|c| (c.username.clone(), c.password.expose().to_string()))
            };
            prop_assert_eq!(got.as_ref().map(pair).ok(), from_file.as_ref().map(pair).ok());
            if matching.is_empty() {
                prop_assert!(matches!(got, Ok(None)), "{got:?}");
                return Ok(());
            }
            // With several keys naming the registry, one of them is used.
            let fits = |e: &AuthEntry| match (e, &got) {
                (AuthEntry::Auth { user, pass, .. } | AuthEntry::UserPass { user, pass }, Ok(Some(c))) => {
                    &c.username == user && c.password.expose() == pass
                }
                // An identity token is used as one (exchanged at the token realm); a blank one
                // is no credential at all.
                (AuthEntry::Identity(t), Ok(Some(c))) if !t.trim().is_empty() => {
                    c.is_identity_token() && c.password.expose() == t.trim()
                }
                (AuthEntry::Identity(t), Err(m)) if t.trim().is_empty() => m.starts_with("secret x: auths."),
                (AuthEntry::BadAuth(..) | AuthEntry::Empty, Err(m)) => m.starts_with("secret x: auths."),
                _ => false,
            };
            ensure(matching.iter().any(|e| fits(e)), || {
                format!("{matching:?} read as {got:?}")
            })
        },
    );
}

// ---------------------------------------------------------------------------------------
// Mongo backup files
// ---------------------------------------------------------------------------------------

use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Decimal128, Document, Timestamp, oid::ObjectId as Oid};
use registry_cleaner::ops::mongo_cleanup::{append_backup, read_backup};
use registry_cleaner::plan::mongo_cleanup::Collection;

fn bson_key() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_.]{0,10}",
        any::<String>().prop_filter("no $ operators", |k| !k.starts_with('$')),
    ]
}

fn bson_value() -> impl Strategy<Value = Bson> + Clone {
    let leaf = prop_oneof![
        any::<f64>().prop_map(Bson::Double),
        any::<String>().prop_map(Bson::String),
        any::<bool>().prop_map(Bson::Boolean),
        Just(Bson::Null),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<i64>().prop_map(|t| Bson::DateTime(DateTime::from_millis(t))),
        any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(Oid::from_bytes(b))),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(|bytes| Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes
        })),
        (any::<u32>(), any::<u32>()).prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
        any::<[u8; 16]>().prop_map(|b| Bson::Decimal128(Decimal128::from_bytes(b))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            prop::collection::vec((bson_key(), inner), 0..4)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect::<Document>())),
        ]
    })
}

fn bson_document() -> impl Strategy<Value = Document> + Clone {
    (
        prop_oneof![
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(Oid::from_bytes(b))),
            any::<String>().prop_map(Bson::String),
            any::<i64>().prop_map(Bson::Int64),
        ],
        prop::collection::vec((bson_key(), bson_value()), 0..5),
    )
        .prop_map(|(id, fields)| {
            let mut d = Document::new();
            d.insert("_id", id);
            for (k, v) in fields {
                if k != "_id" {
                    d.insert(k, v);
                }
            }
            d
        })
}

fn ext(d: &Document) -> serde_json::Value {
    Bson::Document(d.clone()).into_canonical_extjson()
}

/// Documents of any shape (ObjectIds, dates, every number type, binaries, timestamps,
/// decimals, nested documents and arrays, any key) written by the cleanup's own
/// `append_backup` read back identically (compared as canonical extended JSON, so NaN
/// equals NaN), with their collections.
#[test]
fn fuzz_mongo_backup_round_trip() {
    fuzz(
        "fuzz_mongo_backup_round_trip",
        prop::collection::vec((0..4usize, bson_document()), 1..4),
        |docs| {
            let path = temp_file("backup.jsonl", b"");
            std::fs::remove_file(&path).unwrap();
            let mut file = None;
            for (c, d) in &docs {
                append_backup(&path, &mut file, Collection::ORDER[*c], d.clone())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            drop(file);
            let back = read_backup(&path).map_err(TestCaseError::fail)?;
            prop_assert_eq!(back.len(), docs.len());
            for ((c, d), (bc, bd)) in docs.iter().zip(&back) {
                prop_assert_eq!(Collection::ORDER[*c], *bc);
                prop_assert_eq!(ext(d), ext(bd));
            }
            Ok(())
        },
    );
}

/// Backup files of arbitrary or edited bytes: `read_backup` never panics, and what it
/// accepts is one document with an `_id` per non-blank line.
#[test]
fn fuzz_mongo_backup_bytes() {
    let valid = prop::collection::vec((0..4usize, bson_document()), 1..3)
        .prop_map(|docs| {
            let mut out = Vec::new();
            for (c, d) in docs {
                let line = serde_json::json!({"collection": Collection::ORDER[c].name(), "document": ext(&d)});
                out.extend(serde_json::to_vec(&line).unwrap());
                out.push(b'\n');
            }
            out
        })
        .boxed();
    fuzz("fuzz_mongo_backup_bytes", bytes_around(valid), |Bytes(bytes)| {
        let path = temp_file("backup-bytes.jsonl", &bytes);
        if let Ok(docs) = read_backup(&path) {
            let text = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(docs.len(), text.lines().filter(|l| !l.trim().is_empty()).count());
            prop_assert!(docs.iter().all(|(_, d)| d.contains_key("_id")));
        }
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// `--ids` files
// ---------------------------------------------------------------------------------------

use registry_cleaner::model::ObjectId;
use registry_cleaner::model::ids_file::{IdFilter, parse_ids_file};

const PREFIXES: [(&str, u8); 14] = [
    ("environment", 0),
    ("env", 0),
    ("environmentrevision", 1),
    ("environment_revision", 1),
    ("envrevision", 1),
    ("env_rev", 1),
    ("envrev", 1),
    ("revision", 1),
    ("model", 2),
    ("modelversion", 3),
    ("model_version", 3),
    ("model_ver", 3),
    ("modelver", 3),
    ("version", 3),
];

#[derive(Debug, Clone)]
enum IdLine {
    Typed {
        prefix: usize,
        upper: u32,
        id: [u8; 12],
        upper_hex: bool,
        ws: (u8, u8, u8, u8),
    },
    Bare {
        id: [u8; 12],
        ws: (u8, u8),
    },
    Comment(String),
    Blank(u8),
}

fn id_line() -> impl Strategy<Value = IdLine> + Clone {
    prop_oneof![
        4 => (0..PREFIXES.len(), any::<u32>(), any::<[u8; 12]>(), any::<bool>(), any::<(u8, u8, u8, u8)>())
            .prop_map(|(prefix, upper, id, upper_hex, ws)| IdLine::Typed { prefix, upper, id, upper_hex, ws }),
        2 => (any::<[u8; 12]>(), any::<(u8, u8)>()).prop_map(|(id, ws)| IdLine::Bare { id, ws }),
        1 => "[^\n\r]{0,20}".prop_map(IdLine::Comment),
        1 => any::<u8>().prop_map(IdLine::Blank),
    ]
}

fn ws(n: u8) -> &'static str {
    ["", " ", "\t", "  \t"][n as usize % 4]
}

fn hex(id: [u8; 12], upper: bool) -> String {
    let s: String = id.iter().map(|b| format!("{b:02x}")).collect();
    if upper { s.to_ascii_uppercase() } else { s }
}

impl IdLine {
    fn text(&self) -> String {
        match self {
            IdLine::Typed {
                prefix,
                upper,
                id,
                upper_hex,
                ws: (a, b, c, d),
            } => {
                let p: String = PREFIXES[*prefix]
                    .0
                    .chars()
                    .enumerate()
                    .map(|(i, ch)| {
                        if upper & (1 << (i % 32)) != 0 {
                            ch.to_ascii_uppercase()
                        } else {
                            ch
                        }
                    })
                    .collect();
                format!("{}{p}{}:{}{}{}", ws(*a), ws(*b), ws(*c), hex(*id, *upper_hex), ws(*d))
            }
            IdLine::Bare { id, ws: (a, b) } => format!("{}{}{}", ws(*a), hex(*id, false), ws(*b)),
            IdLine::Comment(c) => format!("{}#{c}", ws(c.len() as u8)),
            IdLine::Blank(n) => ws(*n).to_string(),
        }
    }
    fn add_to(&self, f: &mut IdFilter) {
        match self {
            IdLine::Typed { prefix, id, .. } => {
                let id = ObjectId::from_bytes(*id);
                match PREFIXES[*prefix].1 {
                    0 => f.environments.insert(id),
                    1 => f.revisions.insert(id),
                    2 => f.models.insert(id),
                    _ => f.versions.insert(id),
                };
            }
            IdLine::Bare { id, .. } => {
                f.environments.insert(ObjectId::from_bytes(*id));
                f.models.insert(ObjectId::from_bytes(*id));
            }
            IdLine::Comment(_) | IdLine::Blank(_) => {}
        }
    }
}

/// `--ids` files: arbitrary text never panics; well-formed lines (every prefix spelling in
/// any case, ids in either case, comments, blanks, whitespace) give exactly their ids; one bad
/// line anywhere is an error naming that line.
#[test]
fn fuzz_ids_file() {
    let bad = prop::sample::select(vec![
        "environmnt:507f1f77bcf86cd799439011",
        "507f1f77bcf86cd79943901",
        "507f1f77bcf86cd799439011x",
        "env:",
        "model:507f1f77bcf86cd79943901g",
        ":507f1f77bcf86cd799439011",
    ]);
    fuzz(
        "fuzz_ids_file",
        (
            prop_oneof![any::<String>(), "[0-9a-fA-F:#a-z \t\n]{0,80}"],
            prop::collection::vec(id_line(), 0..8),
            prop::option::of((any::<usize>(), bad)),
            any::<bool>(),
        ),
        |(raw, lines, bad, crlf)| {
            let _ = parse_ids_file("raw.txt", &raw);
            let mut text: Vec<String> = lines.iter().map(IdLine::text).collect();
            let mut want = IdFilter {
                file: "ids.txt".into(),
                ..IdFilter::default()
            };
            for l in &lines {
                l.add_to(&mut want);
            }
            let bad_at = bad.map(|(k, b)| {
                let k = k % (text.len() + 1);
                text.insert(k, b.to_string());
                k
            });
            let contents = text.join(if crlf { "\r\n" } else { "\n" });
            match (parse_ids_file("ids.txt", &contents), bad_at) {
                (Ok(got), None) => prop_assert_eq!(got, want),
                (Err(e), Some(k)) => {
                    prop_assert_eq!(e.line, k + 1);
                    prop_assert_eq!(e.file, "ids.txt");
                }
                (got, bad) => return Err(TestCaseError::fail(format!("{got:?} with bad line {bad:?}"))),
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Settings: config.yaml + environment, and registry URLs
// ---------------------------------------------------------------------------------------

use registry_cleaner::settings::{Env, FlagOverrides, Scheme, Settings, parse_registry_url};

const YAML_KEYS: &[&str] = &[
    "registry.url",
    "registry.repository",
    "registry.repositories",
    "registry.username",
    "registry.auth_secret",
    "registry.repository_name",
    "registry.password_env_var",
    "registry.insecure",
    "registry.ca_cert",
    "registry.concurrency",
    "registry.timeout_seconds",
    "registry.fetch_config",
    "registry.verify_blobs",
    "registry.cache",
    "registry.cache_dir",
    "registry.trust_unchanged_tag_lists",
    "registry.storage",
    "registry.bogus",
    "mongo.host",
    "mongo.port",
    "mongo.replicaset",
    "mongo.db",
    "mongo.username",
    "kubernetes.domino_platform_namespace",
    "kubernetes.namespace",
    "kubernetes.platform_namespace",
    "kubernetes.pod_prefixes",
    "kubernetes.compute_namespace",
    "kubernetes.context",
    "kubernetes.all_namespaces",
    "kubernetes.registry_statefulset",
    "keycloak.host",
    "keycloak.realm",
    "keycloak.username",
    "analysis.max_workers",
    "analysis.output_dir",
    "analysis.timeout",
    "retry.max_retries",
    "retry.initial_delay",
    "retry.max_delay",
    "retry.exponential_base",
    "retry.jitter",
    "retry.timeout",
    "policy.keep_revisions",
    "policy.unused_since_days",
    "policy.grace_period_hours",
    "protect",
    "cache.enabled",
    "s3.bucket",
    "skopeo",
    "reports.format",
    "security.dry_run_by_default",
    "security.require_confirmation",
];

const WORDS: &[&str] = &[
    "docker-registry:5000",
    "http://reg.example:5000",
    "https://reg.example/",
    "ftp://x",
    "reg.example:0",
    "reg.example:65536",
    "1.2.3.4.5",
    "dominodatalab",
    "dominodatalab/environment",
    "a b",
    "",
    "-",
    "domino-platform",
    "Domino",
    "x.",
    "(",
    ".*:latest",
    "[a-",
    "MY_PW",
    "SKOPEO_PASSWORD",
    "UNSET_VAR",
    "/nonexistent/ca.pem",
    "ümlaut",
    "file:///srv/registry",
    "s3://bucket/registry",
    "0",
    "~",
];

#[derive(Debug, Clone)]
enum YVal {
    Word(usize),
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Seq(Vec<usize>),
}

fn yval() -> impl Strategy<Value = YVal> + Clone {
    prop_oneof![
        4 => (0..WORDS.len()).prop_map(YVal::Word),
        1 => "[ -~]{0,12}".prop_map(YVal::Text),
        2 => prop_oneof![
            Just(0i64), Just(1), Just(5), Just(20), Just(21), Just(256), Just(257), Just(-1),
            Just(65535), Just(65536), Just(i64::MAX), any::<i64>()
        ]
        .prop_map(YVal::Int),
        1 => prop_oneof![Just(0.2f64), Just(-1.0), Just(f64::NAN), Just(f64::INFINITY), Just(61.0), any::<f64>()]
            .prop_map(YVal::Float),
        1 => any::<bool>().prop_map(YVal::Bool),
        1 => Just(YVal::Null),
        1 => prop::collection::vec(0..WORDS.len(), 0..3).prop_map(YVal::Seq),
    ]
}

impl YVal {
    fn yaml(&self) -> YNode {
        match self {
            YVal::Word(i) => YNode::Str(WORDS[*i].into()),
            YVal::Text(s) => YNode::Str(s.clone()),
            YVal::Int(i) => YNode::Int(*i),
            YVal::Float(f) => YNode::Float(*f),
            YVal::Bool(b) => YNode::Bool(*b),
            YVal::Null => YNode::Null,
            YVal::Seq(v) => YNode::Seq(v.iter().map(|i| WORDS[*i].to_string()).collect()),
        }
    }
}

/// A YAML node the settings fuzzer writes (floats include NaN and infinities, which a JSON
/// value cannot hold); keys keep their insertion order, a repeated key replaces the value.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
enum YNode {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Seq(Vec<String>),
    Map(YMap),
}

#[derive(Debug, Clone, Default)]
struct YMap(Vec<(String, YNode)>);

impl YMap {
    fn entry(&mut self, key: &str, default: YNode) -> &mut YNode {
        let i = match self.0.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.0.push((key.to_string(), default));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
    fn insert(&mut self, key: &str, value: YNode) {
        *self.entry(key, YNode::Null) = value;
    }
}

impl serde::Serialize for YMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

const ENV_VARS: &[&str] = &[
    "REGISTRY_URL",
    "REPOSITORY",
    "REGISTRY_USERNAME",
    "REGISTRY_AUTH_SECRET",
    "REGISTRY_STORAGE",
    "MONGODB_HOST",
    "MONGODB_PORT",
    "MONGODB_USERNAME",
    "PLATFORM_NAMESPACE",
    "DOMINO_PLATFORM_NAMESPACE",
    "COMPUTE_NAMESPACE",
    "KEYCLOAK_HOST",
    "KEYCLOAK_REALM",
    "KEYCLOAK_USERNAME",
];
const SECRET_VARS: &[&str] = &[
    "REGISTRY_PASSWORD",
    "SKOPEO_PASSWORD",
    "MY_PW",
    "MONGODB_URI",
    "MONGODB_PASSWORD",
    "KEYCLOAK_PASSWORD",
];
const FILE_VARS: &[&str] = &[
    "REGISTRY_PASSWORD_FILE",
    "MONGODB_PASSWORD_FILE",
    "KEYCLOAK_PASSWORD_FILE",
];

#[derive(Debug, Clone)]
struct SettingsCase {
    yaml: Vec<(usize, YVal)>,
    yaml_edits: Option<Edits>,
    env: Vec<(usize, usize)>,
    secrets: Vec<(usize, String)>,
    /// (variable, content: a secret with a line ending, an empty file, or a missing path)
    files: Vec<(usize, u8, String)>,
    concurrency: Option<usize>,
    keep_revisions: Option<usize>,
    plain_http: bool,
}

fn settings_case() -> impl Strategy<Value = SettingsCase> {
    (
        prop::collection::vec((0..YAML_KEYS.len(), yval()), 0..10),
        prop::option::weighted(0.3, edits()),
        prop::collection::vec((0..ENV_VARS.len(), 0..WORDS.len()), 0..5),
        prop::collection::vec(
            (
                0..SECRET_VARS.len(),
                prop_oneof![4 => secret_text(), 1 => Just(String::new())],
            ),
            0..3,
        ),
        prop::collection::vec((0..FILE_VARS.len(), 0..4u8, secret_text()), 0..2),
        prop::option::of(prop_oneof![Just(0usize), Just(1), Just(256), Just(257), 0..1000usize]),
        prop::option::of(0..3usize),
        any::<bool>(),
    )
        .prop_map(
            |(yaml, yaml_edits, env, secrets, files, concurrency, keep_revisions, plain_http)| SettingsCase {
                yaml,
                yaml_edits,
                env,
                secrets,
                files,
                concurrency,
                keep_revisions,
                plain_http,
            },
        )
}

fn yaml_text(keys: &[(usize, YVal)]) -> String {
    let mut root = YMap::default();
    for (k, v) in keys {
        let key = YAML_KEYS[*k];
        match key.split_once('.') {
            None => root.insert(key, v.yaml()),
            Some((section, field)) => {
                if let YNode::Map(m) = root.entry(section, YNode::Map(YMap::default())) {
                    m.insert(field, v.yaml());
                }
            }
        }
    }
    serde_saphyr::to_string(&root).unwrap()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `config.yaml` (generated from every known key with values of every type, byte-edited, or
/// raw), the environment (every variable, secrets directly or through `*_FILE`) and flags:
/// `Settings::load` never panics; loaded settings hold only valid values (the registry host
/// re-parses to itself, concurrency 1–256, at least one kept revision, retries and delays in
/// range, namespaces valid); no secret is in an error, in `Debug`, in the serialized
/// settings or in a warning.
#[test]
fn fuzz_settings_yaml_and_env() {
    fuzz("fuzz_settings_yaml_and_env", settings_case(), |c| {
        let mut text = yaml_text(&c.yaml).into_bytes();
        if let Some(e) = &c.yaml_edits {
            text = mutate(text, e);
        }
        let config = temp_file("config.yaml", &text);
        let mut env: Env = BTreeMap::new();
        for (v, w) in &c.env {
            env.insert(ENV_VARS[*v].into(), WORDS[*w].into());
        }
        let mut secrets: Vec<String> = Vec::new();
        for (v, s) in &c.secrets {
            env.insert(SECRET_VARS[*v].into(), s.clone());
            secrets.push(s.clone());
        }
        for (i, (v, kind, s)) in c.files.iter().enumerate() {
            let name = format!("secret-{i}");
            let path = match kind {
                0 => temp_file(&name, format!("{s}\n").as_bytes()),
                1 => temp_file(&name, format!("{s}\r\n").as_bytes()),
                2 => temp_file(&name, b""),
                _ => DIR.with(|d| d.path().join("missing-secret")),
            };
            env.insert(FILE_VARS[*v].into(), path.display().to_string());
            secrets.push(s.clone());
        }
        let flags = FlagOverrides {
            concurrency: c.concurrency,
            keep_revisions: c.keep_revisions,
            plain_http: c.plain_http,
            ..FlagOverrides::default()
        };
        let secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
        let leaks = |what: &str, text: &str| -> TestCaseResult {
            match secrets.iter().find(|s| text.contains(s.as_str())) {
                Some(s) => Err(TestCaseError::fail(format!("secret {s} in {what}: {text}"))),
                None => Ok(()),
            }
        };
        let s = match Settings::load(Some(&config), &env, &flags) {
            Ok(s) => s,
            Err(e) => return leaks("the error", &e),
        };
        leaks("Debug", &format!("{s:?}"))?;
        leaks("the serialized settings", &serde_json::to_string(&s).unwrap())?;
        leaks("the warnings", &s.warnings.join("\n"))?;
        let r = &s.registry;
        let reparsed = parse_registry_url(&r.host);
        ensure(reparsed.as_ref().is_ok_and(|(_, h)| h == &r.host), || {
            format!("host {:?} re-parses as {reparsed:?}", r.host)
        })?;
        ensure(url::Url::parse(&r.base_url()).is_ok(), || {
            format!("the registry base URL {:?} is not a URL", r.base_url())
        })?;
        ensure(
            c.plain_http.then_some(Scheme::Http).is_none_or(|h| h == r.scheme),
            || "--plain-http ignored".into(),
        )?;
        ensure((1..=256).contains(&r.concurrency), || {
            format!("concurrency {}", r.concurrency)
        })?;
        ensure(r.max_retries <= 20 && r.timeout_seconds >= 1, || {
            "retries/timeout".into()
        })?;
        ensure((0.0..=60.0).contains(&r.initial_delay_seconds), || {
            format!("initial delay {}", r.initial_delay_seconds)
        })?;
        ensure(
            !r.repository.is_empty()
                && r.repository
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_-/.".contains(ch)),
            || format!("repository {:?}", r.repository),
        )?;
        ensure(s.policy.keep_revisions >= 1, || "keep_revisions 0".into())?;
        ensure(s.mongo.port != 0, || "mongo port 0".into())?;
        ensure(
            is_dns_label(&s.kubernetes.platform_namespace) && is_dns_label(&s.kubernetes.compute_namespace),
            || format!("namespaces {:?}", s.kubernetes),
        )?;
        Ok(())
    });
}

/// Registry URLs: never a panic; an accepted one is a bare `host[:port]` that re-parses to
/// itself and that the HTTP client's URL parser accepts with nothing but a host and port
/// (no path, user info, query or fragment can ride along).
#[test]
fn fuzz_registry_url() {
    let url_like = (
        prop::sample::select(vec!["", "http://", "https://", "HTTP://", "ftp://", "//"]),
        prop_oneof!["[a-zA-Z0-9.@%_\\[\\]-]{0,24}", "[0-9.]{1,16}", "[0-9a-fx.]{1,12}"],
        prop::option::of("[0-9]{0,6}"),
        prop::sample::select(vec!["", "/", "//", "/v2/", "?x", "#f"]),
    )
        .prop_map(|(s, h, p, tail)| format!("{s}{h}{}{tail}", p.map(|p| format!(":{p}")).unwrap_or_default()));
    fuzz("fuzz_registry_url", prop_oneof![any::<String>(), url_like], |raw| {
        let Ok((scheme, host)) = parse_registry_url(&raw) else {
            return Ok(());
        };
        prop_assert_eq!(parse_registry_url(&host), Ok((Scheme::Https, host.clone())));
        let base = format!("{}://{host}", if scheme == Scheme::Http { "http" } else { "https" });
        let u = url::Url::parse(&base).map_err(|e| TestCaseError::fail(format!("{base:?}: {e}")))?;
        ensure(
            u.host_str().is_some()
                && u.path() == "/"
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none(),
            || format!("{base:?} parses as {u:?}"),
        )
    });
}

// ---------------------------------------------------------------------------------------
// Inventory snapshots
// ---------------------------------------------------------------------------------------

use registry_cleaner::plan::{Policy, SourceState, SourcesData, evaluate};
use registry_cleaner::report::snapshot;

/// Everything `report --snapshot` and the TUI do with a loaded inventory, short of I/O.
fn feed_the_core(inv: &Inventory) -> TestCaseResult {
    for r in inv.rev_ids() {
        let _ = inv.created(r);
    }
    let mut engine = SpaceEngine::new(inv);
    for r in inv.rev_ids() {
        engine.set_selected(r, true);
    }
    let _ = engine.reclaimable();
    let all: Vec<deletion::Wanted> = inv.tag_ids().map(|t| (t, Some(CategoryId::BrokenTags))).collect();
    let plan = deletion::build(inv, &mut engine, &all, "categories", FP, NOW);
    let _ = deletion::validate_names(&plan, SCOPE);
    let v = recheck(&plan.manifests, inv, &HashMap::new(), &Membership::new());
    prop_assert_eq!(v.len(), plan.manifests.len());
    let _ = planned_parents(&plan.manifests, inv);
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Failed("not in this test".into()),
        kubernetes: SourceState::Failed("not in this test".into()),
        keycloak: SourceState::Failed("not in this test".into()),
    };
    let _ = evaluate(inv, &data, &Policy::default(), NOW);
    let _ = snapshot::to_snapshot(inv, NOW);
    Ok(())
}

fn snapshot_bytes(spec: &InvSpec, acyclic: bool) -> Vec<u8> {
    let (inv, _) = build_inventory(spec, acyclic);
    serde_json::to_vec(&snapshot::to_snapshot(&inv, NOW)).unwrap()
}

/// Snapshot files of arbitrary or edited bytes: `snapshot::read` never panics, and whatever
/// it loads feeds the whole core (creation times, space engine, plan build, re-check,
/// category evaluation) without a panic.
#[test]
fn fuzz_snapshot_bytes() {
    let valid = inv_spec().prop_map(|s| snapshot_bytes(&s, true)).boxed();
    fuzz("fuzz_snapshot_bytes", bytes_around(valid), |Bytes(bytes)| {
        let path = temp_file("snapshot.json", &bytes);
        match snapshot::read(&path) {
            Ok((inv, _)) => feed_the_core(&inv),
            Err(_) => Ok(()),
        }
    });
}

/// Snapshots of any inventory (indexes listing any manifest, themselves and each other
/// included, broken tags, extreme creation times) load and feed the whole core without a
/// panic; a snapshot written from an inventory reads back as the same snapshot.
#[test]
fn fuzz_snapshot_inventories() {
    fuzz(
        "fuzz_snapshot_inventories",
        (inv_spec(), any::<bool>()),
        |(spec, acyclic)| {
            let (inv, _) = build_inventory(&spec, acyclic);
            let path = DIR.with(|d| d.path().join("written-snapshot.json"));
            snapshot::write(&path, &inv, NOW).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let (back, generated) = snapshot::read(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(generated, NOW);
            let a = serde_json::to_value(snapshot::to_snapshot(&inv, NOW)).unwrap();
            let b = serde_json::to_value(snapshot::to_snapshot(&back, NOW)).unwrap();
            prop_assert_eq!(a, b);
            feed_the_core(&back)
        },
    );
}

// ---------------------------------------------------------------------------------------
// Regressions: the inputs the targets above found, as plain tests
// ---------------------------------------------------------------------------------------

const ENV: &str = "dominodatalab/environment";

fn image(b: &mut InventoryBuilder, i: usize, created: Option<i64>) -> registry_cleaner::model::DigestId {
    let digest = b.digest(&mdigest(i));
    let config = Blob {
        digest: b.digest(&bdigest(i)),
        size: 10,
    };
    b.manifest(Manifest {
        digest,
        media_type: OCI_MANIFEST.into(),
        size: 100,
        kind: ManifestKind::Image { config, layers: vec![] },
        created,
    });
    digest
}

fn index(b: &mut InventoryBuilder, i: usize, children: &[usize]) -> registry_cleaner::model::DigestId {
    let digest = b.digest(&mdigest(i));
    let children = children
        .iter()
        .map(|c| {
            (
                Blob {
                    digest: b.digest(&mdigest(*c)),
                    size: 100,
                },
                None,
            )
        })
        .collect();
    b.manifest(Manifest {
        digest,
        media_type: OCI_INDEX.into(),
        size: 100,
        kind: ManifestKind::Index { children },
        created: None,
    });
    digest
}

fn entry(digest: usize, tags: &[&str], child_of: Option<usize>, untag: bool) -> PlanManifest {
    PlanManifest {
        repository: ENV.into(),
        digest: mdigest(digest),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        index: false,
        child_of: child_of.map(mdigest),
        categories: vec![],
        kind: None,
        untag,
    }
}

fn verdicts(plan: &[PlanManifest], inv: &Inventory) -> Vec<Verdict> {
    recheck(plan, inv, &HashMap::new(), &Membership::new())
}

fn is_skip(v: &Verdict) -> bool {
    matches!(v, Verdict::Skip(_))
}

fn no_sources() -> SourcesData {
    SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Failed("-".into()),
        kubernetes: SourceState::Failed("-".into()),
        keycloak: SourceState::Failed("-".into()),
    }
}

/// fuzz_snapshot_bytes: a snapshot with `"created": -9223372036854775808` made the grace
/// period's `now - created` overflow (a panic in debug builds, a wrapped age in release).
#[test]
fn regression_an_extreme_creation_time_does_not_overflow_the_grace_period() {
    for created in [i64::MIN, i64::MAX] {
        let mut b = InventoryBuilder::new("r");
        let repo = b.repo(ENV);
        let d = image(&mut b, 0, Some(created));
        b.tag(repo, "latest", d);
        let inv = b.finish();
        let json = serde_json::to_vec(&snapshot::to_snapshot(&inv, NOW)).unwrap();
        let (inv, _) = snapshot::read(&temp_file("extreme.json", &json)).unwrap();
        let _ = evaluate(&inv, &no_sources(), &Policy::default(), NOW);
    }
}

/// fuzz_snapshot_inventories: an index listing itself (only a snapshot file can say so)
/// overflowed the stack in `Inventory::created`, which the grace period calls for every tag.
#[test]
fn regression_an_index_listing_itself_does_not_overflow_the_stack() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    image(&mut b, 1, Some(NOW - 10));
    let d = index(&mut b, 0, &[0, 1]);
    b.tag(repo, "multi", d);
    let inv = b.finish();
    let rev = inv.tag(inv.find_tag(ENV, "multi").unwrap()).revision().unwrap();
    assert_eq!(inv.created(rev), Some(NOW - 10));
    let _ = evaluate(&inv, &no_sources(), &Policy::default(), NOW);
    // Planning it deletes nothing the index (which lists itself) keeps.
    let plan = built_plan(&inv, u32::MAX, u32::MAX, NOW);
    assert!(verdicts(&plan.manifests, &inv).iter().all(is_skip), "{plan:?}");
}

/// fuzz_snapshot_inventories: an index with no children is written with neither `config`
/// nor `children`, and reading the snapshot back failed ("an image manifest needs a config").
#[test]
fn regression_an_empty_index_round_trips_through_a_snapshot() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let d = index(&mut b, 0, &[]);
    b.tag(repo, "empty", d);
    let inv = b.finish();
    let path = temp_file("empty-index.json", b"");
    snapshot::write(&path, &inv, NOW).unwrap();
    let (back, _) = snapshot::read(&path).unwrap();
    assert!(back.manifests()[0].is_index());
}

/// fuzz_build_plans_validate: a broken tag and a readable tag on one digest (a snapshot can
/// hold both) became two entries, and the dedup dropped one with its tag: the wanted tag was
/// neither planned nor excluded.
#[test]
fn regression_two_entries_of_one_digest_merge_their_tags() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let d = image(&mut b, 0, None);
    b.tag(repo, "latest", d);
    b.broken_tag(repo, "v1", Some(d), "reading config blob: HTTP 500: boom");
    let inv = b.finish();
    let plan = built_plan(&inv, u32::MAX, u32::MAX, NOW);
    assert_eq!(plan.manifests.len(), 1, "{:?}", plan.manifests);
    assert_eq!(plan.manifests[0].tags, ["latest", "v1"]);
    deletion::validate_names(&plan, SCOPE).unwrap();
}

/// fuzz_build_plans_validate: a broken tag on the child of an index that stays was planned
/// for deletion by digest, which would break the index.
#[test]
fn regression_a_broken_tag_on_a_kept_child_is_excluded() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    image(&mut b, 1, None);
    let i = index(&mut b, 0, &[1]);
    b.tag(repo, "multi", i);
    let c = b.digest(&mdigest(1));
    b.broken_tag(repo, "child", Some(c), "reading config blob: HTTP 500: boom");
    let inv = b.finish();
    let child = inv.find_tag(ENV, "child").unwrap();
    let mut engine = SpaceEngine::new(&inv);
    let plan = deletion::build(&inv, &mut engine, &[(child, None)], "selection", FP, NOW);
    assert!(plan.manifests.is_empty(), "{:?}", plan.manifests);
    assert_eq!(plan.excluded.len(), 1);
    assert!(plan.excluded[0].reason.contains("stays"), "{:?}", plan.excluded);
}

/// fuzz_build_plans_validate: the children of an untagged index inside a deleted index were
/// not planned (only direct children were), so an index that stays listed a deleted child and
/// the predicted bytes were not what GC frees.
#[test]
fn regression_children_of_nested_indexes_are_planned() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    image(&mut b, 3, None);
    index(&mut b, 2, &[3]);
    let top = index(&mut b, 1, &[2]);
    b.tag(repo, "latest", top);
    let inv = b.finish();
    let plan = built_plan(&inv, u32::MAX, u32::MAX, NOW);
    let of = |i: usize| plan.manifests.iter().find(|m| m.digest == mdigest(i)).cloned();
    assert_eq!(of(2).and_then(|m| m.child_of), Some(mdigest(1)));
    assert_eq!(of(3).and_then(|m| m.child_of), Some(mdigest(2)));
    // Outermost first: phases 0, 1, 2.
    let parents = planned_parents(&plan.manifests, &inv);
    let phases = registry_cleaner::plan::recheck::phases(&plan.manifests, &parents);
    let phase = |i: usize| phases[plan.manifests.iter().position(|m| m.digest == mdigest(i)).unwrap()];
    assert_eq!((phase(1), phase(2), phase(3)), (Some(0), Some(1), Some(2)));
    assert_eq!(verdicts(&plan.manifests, &inv), vec![Verdict::Delete; 3]);
}

/// fuzz_recheck: a tag whose GET answered 500 with a message containing "HTTP 404" (a proxy
/// relaying its upstream) counted as a tag that does not exist, so it did not block its
/// repository although it may point at the planned digest.
#[test]
fn regression_a_500_whose_message_says_404_still_blocks() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let d = image(&mut b, 0, None);
    b.tag(repo, "latest", d);
    b.broken_tag(
        repo,
        "mystery",
        None,
        "reading manifest dominodatalab/environment:mystery: HTTP 500: upstream answered HTTP 404 Not Found",
    );
    let inv = b.finish();
    let v = verdicts(&[entry(0, &["latest"], None, false)], &inv);
    assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("mystery")), "{v:?}");
    // A real 404 (the tag is gone) still does not block.
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let d = image(&mut b, 0, None);
    b.tag(repo, "latest", d);
    b.broken_tag(
        repo,
        "gone",
        None,
        "reading manifest x:gone: HTTP 404 MANIFEST_UNKNOWN: manifest unknown",
    );
    let inv = b.finish();
    assert_eq!(
        verdicts(&[entry(0, &["latest"], None, false)], &inv),
        vec![Verdict::Delete]
    );
}

/// fuzz_recheck: a broken tag with a known digest whose reason held "HTTP 404" (an index
/// whose other child answered 404) was ignored, so a child that index lists was deleted
/// without the index being planned.
#[test]
fn regression_an_index_with_a_404_child_keeps_its_other_children() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let c = image(&mut b, 1, None);
    let i = index(&mut b, 0, &[1, 2]);
    b.tag(repo, "child", c);
    b.broken_tag(
        repo,
        "multi",
        Some(i),
        "child sha256:2: reading manifest dominodatalab/environment@sha256:2: HTTP 404 MANIFEST_UNKNOWN: manifest unknown",
    );
    let inv = b.finish();
    let v = verdicts(&[entry(1, &["child"], None, false)], &inv);
    assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("multi")), "{v:?}");
}

/// fuzz_recheck: a planned broken index (no revision: a child unreadable) was not among the
/// planned parents of a planned child it lists, so both ran in phase 0 and the child could go
/// while the index's own DELETE was skipped.
#[test]
fn regression_a_planned_broken_index_goes_before_the_child_it_lists() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let c = image(&mut b, 1, None);
    let i = index(&mut b, 0, &[1, 2]);
    b.tag(repo, "child", c);
    b.broken_tag(
        repo,
        "multi",
        Some(i),
        "child manifest sha256:2 of the index cannot be read",
    );
    let inv = b.finish();
    let plan = [entry(0, &["multi"], None, false), entry(1, &["child"], None, false)];
    assert_eq!(planned_parents(&plan, &inv), vec![vec![], vec![0]]);
    // Since the third review, planning the broken index does not lift its block on the child
    // (that entry may itself be skipped): the index goes in this run, the child in the next.
    let v = verdicts(&plan, &inv);
    assert_eq!(v[0], Verdict::Delete, "{v:?}");
    assert!(matches!(&v[1], Verdict::Skip(r) if r.contains("multi")), "{v:?}");
}

/// fuzz_recheck: a protected broken tag on a digest that also has a readable tag was not
/// checked for protection (only the revision's readable tags were).
#[test]
fn regression_a_protected_broken_tag_keeps_its_digest() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    let d = image(&mut b, 0, None);
    b.tag(repo, "latest", d);
    b.broken_tag(repo, "v1", Some(d), "reading config blob: HTTP 500: boom");
    let inv = b.finish();
    let protected: HashMap<TagId, Vec<String>> =
        [(inv.find_tag(ENV, "v1").unwrap(), vec!["a running pod".into()])].into();
    let v = recheck(
        &[entry(0, &["latest", "v1"], None, false)],
        &inv,
        &protected,
        &Membership::new(),
    );
    assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("protected")), "{v:?}");
}

/// fuzz_recheck: an untag entry for an index (the index stays) counted as the index being
/// deleted, so a child it lists got a Delete verdict.
#[test]
fn regression_untagging_an_index_does_not_release_its_children() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    image(&mut b, 1, None);
    let i = index(&mut b, 0, &[1]);
    b.tag(repo, "multi", i);
    b.tag(repo, "multi-2", i);
    let inv = b.finish();
    let plan = [entry(0, &["multi"], None, true), entry(1, &[], Some(0), false)];
    let v = verdicts(&plan, &inv);
    assert_eq!(v[0], Verdict::Delete);
    assert!(is_skip(&v[1]), "{v:?}");
}

/// fuzz_recheck: a crafted entry that is its own `child_of` got a Delete verdict although the
/// executor waits for it for ever (it is its own planned parent).
#[test]
fn regression_a_manifest_waiting_for_itself_is_skipped() {
    let mut b = InventoryBuilder::new("r");
    b.repo(ENV);
    let inv = b.finish();
    let v = verdicts(&[entry(1, &[], Some(1), false)], &inv);
    // Since `child_of` must be listed by its index's fresh body, the entry is skipped before
    // the cycle is looked at (no manifest can list itself by digest); skipped either way.
    assert!(is_skip(&v[0]), "{v:?}");
}

/// A crafted `child_of` naming a planned index that does not list the entry (here an
/// untagged manifest the scan never saw, under an index that is gone) got a Delete verdict.
#[test]
fn regression_a_child_of_a_planned_index_that_does_not_list_it_is_skipped() {
    let mut b = InventoryBuilder::new("r");
    let repo = b.repo(ENV);
    image(&mut b, 1, None);
    let i = index(&mut b, 0, &[1]);
    b.tag(repo, "multi", i);
    let inv = b.finish();
    // 0 lists 1, not 2; 3 is not in the registry at all.
    let plan = [
        entry(0, &["multi"], None, false),
        entry(1, &[], Some(0), false),
        entry(2, &[], Some(0), false),
        entry(3, &["gone"], None, false),
        entry(4, &[], Some(3), false),
    ];
    let v = verdicts(&plan, &inv);
    assert_eq!(v[0], Verdict::Delete, "{v:?}");
    assert_eq!(v[1], Verdict::Delete, "{v:?}");
    for k in [2, 4] {
        let (child, parent) = (&plan[k].digest, plan[k].child_of.as_ref().unwrap());
        assert!(
            matches!(&v[k], Verdict::Skip(r) if r.contains(child.as_str()) && r.contains(parent.as_str())),
            "{k}: {v:?}"
        );
    }
}

/// fuzz_settings_yaml_and_env: `1.2.3.4.5` passed as a registry host, but the HTTP client
/// refuses it as a URL (a malformed IPv4 address): refused at start-up now.
#[test]
fn regression_a_host_the_url_parser_refuses_is_not_a_registry() {
    for bad in ["1.2.3.4.5", "99999999999:5000", "https://1.2.3.4.5"] {
        assert!(parse_registry_url(bad).is_err(), "{bad}");
    }
    assert!(parse_registry_url("10.0.0.1:5000").is_ok());
}

/// fuzz_mongo_backup_round_trip: a subnormal double came back one unit in the last place off
/// (serde_json's fast float parser); the backup restores it bit for bit now.
#[test]
fn regression_a_subnormal_double_round_trips_in_a_backup() {
    let doc = mongodb::bson::doc! { "_id": 1i64, "a": -2.182966763659318e-308f64, "b": 5e-324f64 };
    let path = temp_file("subnormal.jsonl", b"");
    std::fs::remove_file(&path).unwrap();
    append_backup(&path, &mut None, Collection::Models, doc.clone()).unwrap();
    let back = read_backup(&path).unwrap();
    assert_eq!(back[0].1, doc);
}
