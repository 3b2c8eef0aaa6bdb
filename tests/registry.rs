//! Against a real Distribution registry: scanning a Domino-like world, broken tags,
//! pagination past 1000 tags, basic auth, retries through a fault-injecting proxy, and the
//! byte-exact check that predicted reclaimable bytes equal what delete-by-digest + plain GC
//! actually frees.

mod support;

use registry_cleaner::dataset::{Dataset, SourceKind, SourceStatus};
use registry_cleaner::model::{Inventory, TagState};
use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::report::json::{self, PlanInput};
use registry_cleaner::settings::Secret;
use registry_cleaner::sources::registry::{Credentials, RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget, sample_registry};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const ENV: &str = "dominodatalab/environment";
const MODEL: &str = "dominodatalab/model";

fn client(url: &str) -> RegistryClient {
    RegistryClient::new(RegistryOptions::new(url)).expect("client")
}

fn opts() -> ScanOptions {
    ScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: 8,
        cache: None,
    }
}

async fn scan_url(url: &str) -> Inventory {
    scan(&client(url), &opts(), &|_| {}).await.expect("scan")
}

fn dataset(inv: Inventory) -> Dataset {
    let mut ds = Dataset {
        inventory: inv,
        generated_at: NOW,
        ..Default::default()
    };
    ds.sources.insert(SourceKind::Registry, SourceStatus::Ok);
    // Registry only: the other sources are off on purpose, as with `--without`.
    let data = registry_cleaner::plan::SourcesData {
        registry: registry_cleaner::plan::SourceState::Ok(()),
        mongo: registry_cleaner::plan::SourceState::Disabled,
        kubernetes: registry_cleaner::plan::SourceState::Disabled,
        keycloak: registry_cleaner::plan::SourceState::Disabled,
    };
    let policy = registry_cleaner::plan::Policy {
        without: [SourceKind::Mongo, SourceKind::Kubernetes, SourceKind::Keycloak].into(),
        ..Default::default()
    };
    ds.categories = registry_cleaner::plan::evaluate(&ds.inventory, &data, &policy, NOW);
    ds
}

#[test]
fn scan_reads_every_tag_digest_sibling_index_and_age() {
    let reg = Registry::start();
    let rt = support::runtime();
    let specs = sample_registry("dominodatalab", NOW);
    rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    let c = client(&reg.url());
    let inv = rt.block_on(scan(&c, &opts(), &|_| {})).expect("scan");
    assert_eq!(inv.tags.len(), specs.len());
    assert!(
        inv.tags.iter().all(|t| matches!(t.state, TagState::Ok(_))),
        "no broken tags expected"
    );
    let dup = inv.find_tag(ENV, "65a000000000000000000001-3").unwrap();
    assert_eq!(
        inv.siblings(dup),
        vec![inv.find_tag(ENV, "65a000000000000000000001-3-release").unwrap()]
    );
    let idx = inv
        .tag(inv.find_tag(ENV, "65a000000000000000000004-1").unwrap())
        .revision()
        .unwrap();
    assert_eq!(inv.revision(idx).children.len(), 2);
    let model = inv
        .tag(
            inv.find_tag(MODEL, "65b000000000000000000001-v2-20250101120000_abc2")
                .unwrap(),
        )
        .revision()
        .unwrap();
    assert_eq!(inv.created(model), Some(NOW - 48 * 86_400));
    // One GET per tag, one per index child and one per unique config; none per layer.
    let s = &c.stats;
    let unique_manifests = inv.manifests().len() as u64;
    let gets = s.manifest_gets.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        gets,
        specs.len() as u64 + 2,
        "manifest GETs: one per tag plus two index children"
    );
    assert_eq!(
        s.blob_gets.load(std::sync::atomic::Ordering::Relaxed),
        unique_manifests - 1,
        "config GETs: one per image manifest (not the index)"
    );
}

/// Deletes the plan's manifests by digest, runs plain GC with the registry stopped, and
/// compares the bytes freed on disk with the prediction.
fn assert_gc_frees_exactly(select: &[(&str, &str)]) {
    let mut reg = Registry::start();
    let rt = support::runtime();
    rt.block_on(world::push(&client(&reg.url()), &sample_registry("dominodatalab", NOW)))
        .expect("push");
    let inv = rt.block_on(scan_url(&reg.url()));
    let tags = select
        .iter()
        .map(|(r, t)| inv.find_tag(r, t).unwrap_or_else(|| panic!("{r}:{t} missing")))
        .collect();
    let report = json::build(&dataset(inv), &[], &PlanInput::Selection(tags), "fp", &[]);
    assert!(report.plan.excluded.is_empty(), "{:?}", report.plan.excluded);
    let c = client(&reg.url());
    for m in &report.plan.manifests {
        assert!(
            rt.block_on(c.delete_manifest(&m.repository, &m.digest))
                .expect("delete"),
            "{} already gone",
            m.digest
        );
    }
    reg.stop();
    let before = reg.blob_bytes();
    reg.garbage_collect();
    let freed = before - reg.blob_bytes();
    assert_eq!(
        freed, report.plan.reclaimable_bytes,
        "selection {select:?}: predicted vs freed by GC"
    );
    assert!(freed > 0);
}

#[test]
fn reclaimable_equals_gc_for_an_environment_sharing_layers_with_models() {
    assert_gc_frees_exactly(&[(ENV, "65a000000000000000000001-1")]);
}

#[test]
fn reclaimable_equals_gc_for_a_shared_digest_pair_and_a_layer_used_by_a_model() {
    // Both tags of the pair: the digest goes whole (one of them alone is an untag, 0 bytes).
    assert_gc_frees_exactly(&[
        (ENV, "65a000000000000000000001-3"),
        (ENV, "65a000000000000000000001-3-release"),
    ]);
}

#[test]
fn reclaimable_equals_gc_for_a_multi_arch_index() {
    assert_gc_frees_exactly(&[(ENV, "65a000000000000000000004-1")]);
}

#[test]
fn reclaimable_equals_gc_for_a_mixed_selection_across_repositories() {
    assert_gc_frees_exactly(&[
        (ENV, "65a000000000000000000001-1"),
        (ENV, "65a000000000000000000001-2"),
        (ENV, "65a000000000000000000001-3"),
        (ENV, "65a000000000000000000001-3-release"),
        (ENV, "65a000000000000000000004-1"),
        (MODEL, "65b000000000000000000001-v1-20250101120000_abc1"),
        (MODEL, "65b000000000000000000001-v2-20250101120000_abc2"),
    ]);
}

#[test]
fn unreadable_manifests_and_missing_configs_are_broken_tags_with_reasons() {
    let mut reg = Registry::start();
    let rt = support::runtime();
    let specs = sample_registry("dominodatalab", NOW);
    let digests = rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    // Corrupt the manifest blob of the first tag, and remove the config blob of a model.
    std::fs::write(reg.blob_data_path(&digests[0]), b"{ not json").unwrap();
    let model_spec = specs.iter().position(|s| s.repository == MODEL).unwrap();
    let TagTarget::Image(img) = &specs[model_spec].target else {
        panic!()
    };
    let config = world::sha256_digest(&world::build_image(img).config);
    std::fs::remove_file(reg.blob_data_path(&config)).unwrap();
    // Restart so the registry's in-memory blob cache forgets the removed blob, as after a
    // storage loss; a running registry answers 200 with a truncated body instead.
    reg.stop();
    reg.resume();

    let inv = rt.block_on(scan_url(&reg.url()));
    let ds = dataset(inv);
    let report = json::build(&ds, &[], &PlanInput::Categories, "fp", &[]);
    let broken = report.categories.iter().find(|c| c.id == "broken-tags").unwrap();
    let names: Vec<&str> = broken
        .candidates
        .iter()
        .filter_map(|c| c.as_tag())
        .map(|c| c.tag.as_str())
        .collect();
    assert!(names.contains(&specs[0].tag.as_str()), "{names:?}");
    assert!(names.contains(&specs[model_spec].tag.as_str()), "{names:?}");
    assert_eq!(names.len(), 2, "{names:?}");
    let model = broken
        .candidates
        .iter()
        .filter_map(|c| c.as_tag())
        .find(|c| c.tag == specs[model_spec].tag)
        .unwrap();
    assert!(
        model.reasons[0].contains("config blob") && model.reasons[0].contains("missing"),
        "{:?}",
        model.reasons
    );
    // Other categories say why they are unavailable instead of returning empty lists.
    let archived = report
        .categories
        .iter()
        .find(|c| c.id == "archived-environments")
        .unwrap();
    assert_eq!(archived.status, "unavailable");
    assert!(
        archived
            .reason
            .as_deref()
            .unwrap_or("")
            .to_lowercase()
            .contains("mongo"),
        "{:?}",
        archived.reason
    );
}

#[test]
fn tag_lists_are_paged_past_the_first_thousand() {
    let reg = Registry::start();
    let rt = support::runtime();
    let c = client(&reg.url());
    let img = ImageSpec {
        layers: vec![LayerSpec { seed: 7, size: 100 }],
        created: NOW,
        flavor: MediaFlavor::Docker,
        architecture: "amd64".into(),
        label: "x".into(),
    };
    let specs: Vec<TagSpec> = (0..1205)
        .map(|i| TagSpec {
            repository: ENV.into(),
            tag: format!("t{i:04}"),
            target: TagTarget::Image(img.clone()),
        })
        .collect();
    rt.block_on(world::push(&c, &specs)).expect("push");
    let c = client(&reg.url());
    let inv = rt.block_on(scan(&c, &opts(), &|_| {})).expect("scan");
    assert_eq!(inv.tags.len(), 1205);
    assert_eq!(inv.revisions.len(), 1, "every tag is a sibling on one digest");
    assert!(
        c.stats.list_pages.load(std::sync::atomic::Ordering::Relaxed) >= 3,
        "two pages for 1205 tags, one for the other repository"
    );
}

#[test]
fn basic_auth_works_with_credentials_and_fails_clearly_without() {
    let reg = Registry::start_with_basic_auth("alice", "wonderland");
    let rt = support::runtime();
    let mut o = RegistryOptions::new(&reg.url());
    o.credentials = Some(Credentials {
        username: "alice".into(),
        password: Secret::new("wonderland"),
    });
    let authed = RegistryClient::new(o).unwrap();
    rt.block_on(world::push(&authed, &sample_registry("dominodatalab", NOW)[..3]))
        .expect("push with auth");
    let inv = rt.block_on(scan(&authed, &opts(), &|_| {})).expect("scan with auth");
    assert_eq!(inv.tags.len(), 3);
    let err = rt
        .block_on(scan(&client(&reg.url()), &opts(), &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("REGISTRY_USERNAME"), "{err}");
    let mut wrong = RegistryOptions::new(&reg.url());
    wrong.credentials = Some(Credentials {
        username: "alice".into(),
        password: Secret::new("wrong"),
    });
    let err = rt
        .block_on(scan(&RegistryClient::new(wrong).unwrap(), &opts(), &|_| {}))
        .unwrap_err()
        .to_string();
    assert!(err.contains("401") && !err.contains("wrong"), "{err}");
}

#[test]
fn scans_through_429s_503s_and_dropped_connections_with_retries() {
    use std::sync::Arc;
    use support::proxy::{Fault, Proxy};
    let reg = Registry::start();
    let rt = support::runtime();
    rt.block_on(world::push(&client(&reg.url()), &sample_registry("dominodatalab", NOW)))
        .expect("push");
    let direct = rt.block_on(scan_url(&reg.url()));
    let rule = Arc::new(|n: u64, _m: &str, path: &str| match n % 5 {
        1 if path.contains("/manifests/") => Fault::Status(429, Some(1)),
        2 => Fault::Status(503, None),
        3 if path.contains("/blobs/") => Fault::Drop,
        _ => Fault::Pass,
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let mut o = RegistryOptions::new(&proxy.url());
    o.initial_backoff = std::time::Duration::from_millis(10);
    o.max_retries = 6;
    let c = RegistryClient::new(o).unwrap();
    let started = std::time::Instant::now();
    let via_proxy = rt.block_on(scan(&c, &opts(), &|_| {})).expect("scan through faults");
    assert!(proxy.faults.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    assert!(c.stats.retries.load(std::sync::atomic::Ordering::Relaxed) >= 5);
    // Retry-After: 1 was honoured at least once.
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let summary = |inv: &Inventory| {
        let mut v: Vec<String> = inv
            .tag_ids()
            .map(|t| {
                format!(
                    "{} {:?}",
                    inv.tag_ref(t),
                    inv.tag_digest(t).map(|d| inv.digests.name(d).to_string())
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(summary(&via_proxy), summary(&direct));
    assert!(via_proxy.tags.iter().all(|t| matches!(t.state, TagState::Ok(_))));
}

#[test]
fn a_manifest_that_keeps_failing_makes_only_that_tag_broken() {
    use std::sync::Arc;
    use support::proxy::{Fault, Proxy};
    let reg = Registry::start();
    let rt = support::runtime();
    rt.block_on(world::push(&client(&reg.url()), &sample_registry("dominodatalab", NOW)))
        .expect("push");
    let rule = Arc::new(|_n: u64, _m: &str, path: &str| {
        if path.ends_with("/manifests/65a000000000000000000002-2") {
            Fault::Status(500, None)
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let mut o = RegistryOptions::new(&proxy.url());
    o.initial_backoff = std::time::Duration::from_millis(5);
    let inv = rt
        .block_on(scan(&RegistryClient::new(o).unwrap(), &opts(), &|_| {}))
        .expect("scan");
    let bad = inv.find_tag(ENV, "65a000000000000000000002-2").unwrap();
    match &inv.tag(bad).state {
        TagState::Broken { reason, .. } => assert!(reason.contains("500"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        inv.tags
            .iter()
            .filter(|t| matches!(t.state, TagState::Broken { .. }))
            .count(),
        1
    );
}

#[test]
fn warm_rescans_reuse_the_digest_cache_and_trusted_tag_lists_skip_per_tag_requests() {
    use registry_cleaner::ops::scan_cache::ScanCache;
    use std::sync::atomic::Ordering::Relaxed;
    let reg = Registry::start();
    let rt = support::runtime();
    let specs = sample_registry("dominodatalab", NOW);
    rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    let dir = tempfile::tempdir().unwrap();
    let with_cache = |trust: bool| ScanOptions {
        cache: ScanCache::new(Some(dir.path()), &reg.host(), trust),
        ..opts()
    };
    let run = |o: ScanOptions| {
        let c = client(&reg.url());
        let inv = rt.block_on(scan(&c, &o, &|_| {})).expect("scan");
        (
            inv,
            c.stats.requests.load(Relaxed),
            c.stats.manifest_gets.load(Relaxed),
            c.stats.blob_gets.load(Relaxed),
        )
    };
    let summary = |inv: &Inventory| {
        let mut v: Vec<String> = inv
            .tag_ids()
            .map(|t| {
                format!(
                    "{} {:?} {:?}",
                    inv.tag_ref(t),
                    inv.tag_digest(t).map(|d| inv.digests.name(d).to_string()),
                    inv.tag(t).revision().map(|r| inv.created(r))
                )
            })
            .collect();
        v.sort();
        v
    };
    let (cold, cold_req, cold_gets, cold_blobs) = run(with_cache(false));
    assert!(cold_gets as usize >= specs.len() && cold_blobs > 0);
    let (warm, warm_req, warm_gets, warm_blobs) = run(with_cache(false));
    assert_eq!(summary(&warm), summary(&cold));
    assert_eq!(
        (warm_gets, warm_blobs),
        (0, 0),
        "bodies and configs come from the cache"
    );
    assert!(warm_req < cold_req, "warm {warm_req} < cold {cold_req}");
    let (trusted, trusted_req, ..) = run(with_cache(true));
    assert_eq!(summary(&trusted), summary(&cold));
    assert!(
        trusted_req <= 1 + 1 + 2,
        "probe, catalog and one page per repository: {trusted_req}"
    );
    // A re-pushed tag changes nothing in trusted mode only if the tag list is unchanged; a new
    // tag makes that repository verify every tag again.
    let mut extra = specs[0].clone();
    extra.tag = "65a000000000000000000001-9".into();
    rt.block_on(world::push(&client(&reg.url()), &[extra])).unwrap();
    let (after, ..) = run(with_cache(true));
    assert_eq!(after.tags.len(), specs.len() + 1);
    // A damaged cache entry is a miss, not a wrong answer.
    for e in walk(dir.path()) {
        if e.parent()
            .and_then(|p| p.parent())
            .is_some_and(|p| p.ends_with("manifests"))
        {
            std::fs::write(&e, b"{\"content_type\":null,\"body\":\"{}\"}").unwrap();
        }
    }
    let (damaged, _, damaged_gets, _) = run(with_cache(false));
    assert_eq!(summary(&damaged).len(), specs.len() + 1);
    assert!(damaged_gets > 0);
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path))
        } else {
            out.push(path)
        }
    }
    out
}

#[test]
fn concurrency_backs_off_when_the_registry_pushes_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use support::proxy::{Fault, Proxy};
    let reg = Registry::start();
    let rt = support::runtime();
    rt.block_on(world::push(&client(&reg.url()), &sample_registry("dominodatalab", NOW)))
        .expect("push");
    // The first 12 manifest requests are refused with 503, as an overloaded registry would.
    let refused = Arc::new(AtomicU64::new(0));
    let r = refused.clone();
    let rule = Arc::new(move |_n: u64, _m: &str, path: &str| {
        if path.contains("/manifests/") && r.fetch_add(1, Ordering::SeqCst) < 12 {
            Fault::Status(503, None)
        } else {
            Fault::Pass
        }
    });
    let proxy = Proxy::start(&rt, reg.url(), rule);
    let mut o = RegistryOptions::new(&proxy.url());
    o.concurrency = 16;
    o.initial_backoff = std::time::Duration::from_millis(10);
    o.max_retries = 8;
    let c = RegistryClient::new(o).unwrap();
    let inv = rt.block_on(scan(&c, &opts(), &|_| {})).expect("scan");
    assert!(inv.tags.iter().all(|t| matches!(t.state, TagState::Ok(_))));
    assert!(c.stats.concurrency_cuts.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(
        c.current_concurrency() < 16,
        "window still lowered right after the burst: {}",
        c.current_concurrency()
    );
}
