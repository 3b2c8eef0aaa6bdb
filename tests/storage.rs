//! The storage inventory source against a real Distribution registry (filesystem storage):
//! the same inventory as the HTTP scan plus untagged revisions and push times, and
//! predictions that equal plain `garbage-collect` to the byte once untagged revisions count.

mod support;

use registry_cleaner::dataset::{Dataset, SourceKind, SourceStatus};
use registry_cleaner::model::{Inventory, ManifestKind, TagState};
use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::report::json::{self, PlanInput};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::sources::storage::{self, StorageScanOptions, StorageSource, StorageStep};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget, sample_registry};
use support::registry::Registry;

const NOW: i64 = 1_760_000_000;
const ENV: &str = "dominodatalab/environment";
const MODEL: &str = "dominodatalab/model";

fn client(url: &str) -> RegistryClient {
    RegistryClient::new(RegistryOptions::new(url)).expect("client")
}

fn http_opts() -> ScanOptions {
    ScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: 8,
        cache: None,
    }
}

fn storage_opts() -> StorageScanOptions {
    StorageScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: 8,
    }
}

fn storage_url(reg: &Registry) -> String {
    format!("file://{}", reg.dir.path().join("data").display())
}

fn scan_http(rt: &tokio::runtime::Runtime, reg: &Registry) -> Inventory {
    rt.block_on(scan(&client(&reg.url()), &http_opts(), &|_| {}))
        .expect("http scan")
}

fn scan_storage(rt: &tokio::runtime::Runtime, reg: &Registry) -> Inventory {
    let src = StorageSource::open(&storage_url(reg)).expect("open storage");
    rt.block_on(storage::scan(&src, &reg.host(), &storage_opts(), &|_, _, _| {}))
        .expect("storage scan")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registry-only dataset evaluated at `at`.
fn dataset(inv: Inventory, at: i64) -> Dataset {
    let mut ds = Dataset {
        inventory: inv,
        generated_at: at,
        ..Default::default()
    };
    ds.sources.insert(SourceKind::Registry, SourceStatus::Ok);
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
    ds.categories = registry_cleaner::plan::evaluate(&ds.inventory, &data, &policy, at);
    ds
}

fn image(layers: Vec<LayerSpec>, label: &str) -> ImageSpec {
    ImageSpec {
        layers,
        created: NOW - 30 * 86_400,
        flavor: MediaFlavor::Docker,
        architecture: "amd64".into(),
        label: label.into(),
    }
}

fn tag(repo: &str, tag: &str, target: TagTarget) -> TagSpec {
    TagSpec {
        repository: repo.into(),
        tag: tag.into(),
        target,
    }
}

const SHARED: LayerSpec = LayerSpec {
    seed: 7_000,
    size: 200_000,
};

/// The sample registry plus re-pushes: `A` (its first manifest, untagged, keeps the 200 kB
/// layer `B` shares), an index re-pushed as an image (the index and its children untagged),
/// and a tag re-pushed twice.
fn world_with_repushes() -> Vec<TagSpec> {
    let mut specs = sample_registry("dominodatalab", NOW);
    let u = |seed, size| LayerSpec { seed, size };
    specs.push(tag(
        ENV,
        "A",
        TagTarget::Image(image(vec![SHARED, u(7_001, 5_000)], "a1")),
    ));
    specs.push(tag(ENV, "A", TagTarget::Image(image(vec![u(7_002, 6_000)], "a2"))));
    specs.push(tag(
        MODEL,
        "B",
        TagTarget::Image(image(vec![SHARED, u(7_003, 7_000)], "b")),
    ));
    let arch = |a: &str, seed| ImageSpec {
        architecture: a.into(),
        ..image(vec![u(seed, 9_000), u(1, 60_000)], &format!("idx-{a}"))
    };
    specs.push(tag(
        ENV,
        "idx",
        TagTarget::Index {
            flavor: MediaFlavor::Oci,
            images: vec![arch("amd64", 7_010), arch("arm64", 7_011)],
        },
    ));
    specs.push(tag(
        ENV,
        "idx",
        TagTarget::Image(image(vec![u(7_012, 4_000)], "idx-img")),
    ));
    for (i, seed) in [7_020u64, 7_021, 7_022].iter().enumerate() {
        specs.push(tag(
            ENV,
            "latest",
            TagTarget::Image(image(
                vec![u(*seed, 3_000 + i as u64), u(7_001, 5_000)],
                &format!("l{i}"),
            )),
        ));
    }
    specs
}

/// Every tag as (repo:tag, what it resolves to), with digests by name, so two inventories
/// (each with its own digest arena) compare directly.
fn tag_view(inv: &Inventory) -> Vec<(String, String)> {
    let name = |d| inv.digests.name(d).to_string();
    let mut out: Vec<(String, String)> = inv
        .tag_ids()
        .map(|t| {
            let what = match &inv.tag(t).state {
                TagState::Broken { digest, reason } => format!("broken {:?} {reason}", digest.map(name)),
                TagState::Ok(r) => {
                    let rev = inv.revision(*r);
                    let m = inv.manifest(rev.manifest).expect("manifest");
                    let kind = match &m.kind {
                        ManifestKind::Image { config, layers } => format!(
                            "image config {}:{} layers {:?}",
                            name(config.digest),
                            config.size,
                            layers.iter().map(|l| (name(l.digest), l.size)).collect::<Vec<_>>()
                        ),
                        ManifestKind::Index { children } => format!(
                            "index {:?} child revisions {:?}",
                            children
                                .iter()
                                .map(|(c, p)| (name(c.digest), c.size, p.as_ref().map(|p| p.to_string())))
                                .collect::<Vec<_>>(),
                            rev.children
                                .iter()
                                .map(|c| name(inv.revision(*c).manifest))
                                .collect::<Vec<_>>()
                        ),
                    };
                    format!(
                        "{} {} {} created {:?} siblings {} {kind}",
                        name(m.digest),
                        m.media_type,
                        m.size,
                        inv.created(*r),
                        rev.tags.len()
                    )
                }
            };
            (inv.tag_ref(t), what)
        })
        .collect();
    out.sort();
    out
}

fn untagged_view(inv: &Inventory) -> Vec<String> {
    let mut v: Vec<String> = inv
        .untagged_revisions()
        .map(|r| {
            let rev = inv.revision(r);
            format!("{}@{}", inv.repo(rev.repo).name, inv.digests.name(rev.manifest))
        })
        .collect();
    v.sort();
    v
}

/// A registry and the storage it writes: its filesystem, or a bucket on a local S3 server
/// (moto) through Distribution's S3 driver.
struct Backend {
    reg: Registry,
    s3: Option<(std::sync::Arc<support::s3::Moto>, String)>,
}

const BUCKET: &str = "registry";

impl Backend {
    fn fs() -> Backend {
        Backend {
            reg: Registry::start(),
            s3: None,
        }
    }

    /// A registry on `moto` storing under `root` in the bucket.
    fn s3(moto: &std::sync::Arc<support::s3::Moto>, root: &str) -> Backend {
        let reg = Registry::start_s3(&moto.registry_storage_yaml(BUCKET, root));
        Backend {
            reg,
            s3: Some((moto.clone(), root.trim_matches('/').to_string())),
        }
    }

    fn url(&self) -> String {
        match &self.s3 {
            None => storage_url(&self.reg),
            Some((_, root)) => format!("s3://{BUCKET}/{root}"),
        }
    }

    fn source(&self) -> StorageSource {
        let config = self.s3.as_ref().map(|(m, _)| m.config()).unwrap_or_default();
        let config: Vec<(&str, String)> = config.iter().map(|(k, v)| (*k, v.clone())).collect();
        StorageSource::open_with(&self.url(), &config).expect("open storage")
    }

    /// Also checks the progress it reports: every step starts at 0 and ends with done ==
    /// total, in reading order, and the tag-link step counts every tag.
    fn scan(&self, rt: &tokio::runtime::Runtime) -> Inventory {
        let seen = std::sync::Mutex::new(Vec::new());
        let inv = rt
            .block_on(storage::scan(
                &self.source(),
                &self.reg.host(),
                &storage_opts(),
                &|step, done, total| seen.lock().unwrap().push((step, done, total)),
            ))
            .expect("storage scan");
        let seen = seen.into_inner().unwrap();
        let mut steps: Vec<(StorageStep, usize, usize)> = Vec::new();
        for &(step, done, total) in &seen {
            match steps.last_mut() {
                Some(last) if last.0 == step && done > 0 => {
                    assert!(done > last.1 && total == last.2, "{seen:?}");
                    last.1 = done;
                }
                _ => {
                    assert_eq!(done, 0, "a step starts at 0: {seen:?}");
                    steps.push((step, done, total));
                }
            }
        }
        let order: Vec<StorageStep> = steps.iter().map(|s| s.0).collect();
        use StorageStep::*;
        assert!(order == [Listing, TagLinks, Manifests, Manifests, Configs], "{order:?}");
        assert!(steps.iter().all(|&(_, d, t)| d == t), "{steps:?}");
        assert_eq!(steps[1].2, inv.tags.len(), "{steps:?}");
        assert!(steps[2].2 > 0 && steps[4].2 > 0, "{steps:?}");
        inv
    }

    /// Bytes of every `blobs/**/data` object.
    fn blob_bytes(&self, rt: &tokio::runtime::Runtime) -> u64 {
        let Some((moto, root)) = &self.s3 else {
            return self.reg.blob_bytes();
        };
        use futures::TryStreamExt as _;
        use object_store::ObjectStore as _;
        let mut b = object_store::aws::AmazonS3Builder::new().with_bucket_name(BUCKET);
        for (k, v) in moto.config() {
            b = b.with_config(k.parse().unwrap(), v);
        }
        let store = b.build().expect("s3 client");
        let prefix = object_store::path::Path::from(format!("{root}/docker/registry/v2/blobs"));
        let metas: Vec<object_store::ObjectMeta> = rt
            .block_on(store.list(Some(&prefix)).try_collect())
            .expect("list blobs");
        metas
            .iter()
            .filter(|m| m.location.filename() == Some("data"))
            .map(|m| m.size)
            .sum()
    }

    /// Deletes the plan's manifests by digest over HTTP, runs plain GC, returns bytes freed.
    fn delete_and_gc(&mut self, rt: &tokio::runtime::Runtime, plan: &registry_cleaner::plan::deletion::Plan) -> u64 {
        let c = client(&self.reg.url());
        for m in &plan.manifests {
            rt.block_on(c.delete_manifest(&m.repository, &m.digest))
                .expect("delete");
        }
        self.reg.stop();
        let before = self.blob_bytes(rt);
        self.reg.garbage_collect();
        let after = self.blob_bytes(rt);
        self.reg.resume();
        before - after
    }
}

fn moto() -> std::sync::Arc<support::s3::Moto> {
    let m = support::s3::Moto::start();
    m.create_bucket(BUCKET);
    std::sync::Arc::new(m)
}

#[test]
fn storage_scan_equals_the_http_scan_plus_untagged_revisions_and_push_times() {
    scan_equals_http(Backend::fs());
}

#[test]
fn s3_storage_scan_equals_the_http_scan_plus_untagged_revisions_and_push_times() {
    scan_equals_http(Backend::s3(&moto(), "/registry"));
}

fn scan_equals_http(b: Backend) {
    let reg = &b.reg;
    let rt = support::runtime();
    let before_push = now();
    let mut specs = sample_registry("dominodatalab", NOW);
    rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    let http = scan_http(&rt, reg);
    let store = b.scan(&rt);
    assert!(store.from_storage && !http.from_storage);
    assert_eq!(
        store.repos.iter().map(|r| &r.name).collect::<Vec<_>>(),
        http.repos.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    assert_eq!(tag_view(&store), tag_view(&http));
    assert_eq!(store.tags.len(), specs.len());
    assert!(untagged_view(&store).is_empty(), "nothing was re-pushed yet");
    assert_eq!(store.catalog_read, http.catalog_read);
    for t in store.tag_ids() {
        let p = store.tag(t).pushed.expect("push time");
        assert!(p >= before_push - 2 && p <= now() + 2, "{p}");
        assert_eq!(
            http.tag(
                http.find_tag(&store.repo(store.tag(t).repo).name, &store.tag(t).name)
                    .unwrap()
            )
            .pushed,
            None
        );
    }

    // A re-pushed tag: the HTTP scan sees the new manifest only; storage also the old one.
    let old = world::tag_digest(&specs[0].target);
    let mut again = specs[0].clone();
    let TagTarget::Image(img) = &mut again.target else {
        panic!("image")
    };
    img.label = "rebuilt".into();
    rt.block_on(world::push(&client(&reg.url()), std::slice::from_ref(&again)))
        .expect("re-push");
    specs.push(again);
    let http = scan_http(&rt, reg);
    let store = b.scan(&rt);
    assert_eq!(tag_view(&store), tag_view(&http));
    assert_eq!(untagged_view(&store), vec![format!("{}@{old}", specs[0].repository)]);
    assert!(untagged_view(&http).is_empty());
    let u = store.untagged_revisions().next().unwrap();
    assert!(store.revision(u).pushed.is_some() && store.revision(u).is_root());

    // `scan --storage` snapshots keep untagged revisions and push times; the HTTP scan's
    // snapshot (what older versions wrote) has neither field and loads with none.
    use registry_cleaner::report::snapshot::{from_snapshot, to_snapshot};
    let back = from_snapshot(&to_snapshot(&store, NOW)).expect("snapshot");
    assert_eq!(untagged_view(&back), untagged_view(&store));
    assert_eq!(tag_view(&back), tag_view(&store));
    assert!(back.from_storage);
    assert!(
        back.tags
            .iter()
            .zip(&store.tags)
            .all(|(a, b)| a.pushed == b.pushed && a.pushed.is_some())
    );
    let old = serde_json::to_string(&to_snapshot(&http, NOW)).unwrap();
    assert!(!old.contains("untagged") && !old.contains("pushed") && !old.contains("from_storage"));
    let back = from_snapshot(&serde_json::from_str(&old).unwrap()).unwrap();
    assert!(untagged_view(&back).is_empty() && !back.from_storage);

    // Explicit repositories, as the HTTP scan: exactly those.
    let src = b.source();
    let only = StorageScanOptions {
        repositories: Some(vec![MODEL.into()]),
        ..storage_opts()
    };
    let inv = rt
        .block_on(storage::scan(&src, &reg.host(), &only, &|_, _, _| {}))
        .unwrap();
    assert_eq!(inv.repos.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), [MODEL]);
    assert!(!inv.catalog_read);
    assert!(inv.tags.iter().all(|t| t.repo.0 == 0) && !inv.tags.is_empty());
}

#[test]
fn the_world_with_repushes_scans_alike_and_its_untagged_index_keeps_its_children() {
    let reg = Registry::start();
    let rt = support::runtime();
    rt.block_on(world::push(&client(&reg.url()), &world_with_repushes()))
        .expect("push");
    let http = scan_http(&rt, &reg);
    let store = scan_storage(&rt, &reg);
    assert_eq!(tag_view(&store), tag_view(&http));
    // A's first manifest, latest's first two, the index and its two children.
    assert_eq!(untagged_view(&store).len(), 6, "{:#?}", untagged_view(&store));
    let roots: Vec<_> = store
        .untagged_revisions()
        .filter(|r| store.revision(*r).is_root())
        .collect();
    assert_eq!(roots.len(), 4, "the index's children live through it");
    let index = roots
        .iter()
        .find(|r| store.manifest(store.revision(**r).manifest).unwrap().is_index())
        .expect("untagged index");
    assert_eq!(store.revision(*index).children.len(), 2);
}

#[test]
fn an_unreadable_tag_link_is_a_broken_tag_and_an_unreadable_untagged_manifest_fails_the_scan() {
    let reg = Registry::start();
    let rt = support::runtime();
    let specs = world_with_repushes();
    rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    let repos = reg.dir.path().join("data/docker/registry/v2/repositories");
    let link = repos
        .join(ENV)
        .join("_manifests/tags/65a000000000000000000002-1/current/link");
    std::fs::write(&link, "not a digest").unwrap();
    // A link holding a digest and a newline: the registry cannot resolve that tag either.
    let nl_tag = "65a000000000000000000002-2";
    let nl_link = repos.join(ENV).join(format!("_manifests/tags/{nl_tag}/current/link"));
    let d = std::fs::read_to_string(&nl_link).unwrap();
    assert!(d.starts_with("sha256:") && !d.ends_with('\n'), "{d:?}");
    std::fs::write(&nl_link, format!("{d}\n")).unwrap();
    let http = rt.block_on(client(&reg.url()).head_manifest(ENV, nl_tag));
    assert!(
        !matches!(http, Ok(Some(_))),
        "the registry still resolves {nl_tag}: {http:?}"
    );
    let inv = scan_storage(&rt, &reg);
    match &inv.tag(inv.find_tag(ENV, nl_tag).unwrap()).state {
        TagState::Broken { reason, .. } => assert!(reason.contains("not a sha256 digest"), "{reason}"),
        s => panic!("a link with a newline read as {s:?}"),
    }
    let t = inv.find_tag(ENV, "65a000000000000000000002-1").unwrap();
    match &inv.tag(t).state {
        TagState::Broken { reason, .. } => assert!(reason.contains("current/link"), "{reason}"),
        s => panic!("expected broken, got {s:?}"),
    }
    // While that tag is unreadable, no untagged manifest of its repository is proposed.
    let ds = dataset(inv, now() + 86_400);
    let u = ds
        .categories
        .iter()
        .find(|c| c.id == CategoryId::UntaggedManifests)
        .unwrap();
    assert!(
        u.revisions
            .iter()
            .all(|r| ds.inventory.repo(ds.inventory.revision(r.rev).repo).name != ENV)
    );
    assert!(
        u.protected_revisions
            .iter()
            .any(|(_, why)| why.iter().any(|w| w.contains("could not be read")))
    );
    // A's first manifest (untagged): its body gone, GC could not read it either.
    let first_a = world::tag_digest(&specs.iter().find(|s| s.tag == "A").unwrap().target);
    std::fs::remove_file(reg.blob_data_path(&first_a)).unwrap();
    let src = StorageSource::open(&storage_url(&reg)).unwrap();
    let e = rt
        .block_on(storage::scan(&src, &reg.host(), &storage_opts(), &|_, _, _| {}))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&first_a[7..]) && e.contains("untagged manifest"), "{e}");
}

fn plan_for(inv: Inventory, select: &[(&str, &str)]) -> registry_cleaner::plan::deletion::Plan {
    let tags = select
        .iter()
        .map(|(r, t)| inv.find_tag(r, t).unwrap_or_else(|| panic!("{r}:{t} missing")))
        .collect();
    let report = json::build(
        &dataset(inv, now() + 86_400),
        &[],
        &PlanInput::Selection(tags),
        "fp",
        &[],
    );
    assert!(report.plan.excluded.is_empty(), "{:?}", report.plan.excluded);
    report.plan
}

#[test]
fn a_layer_kept_by_an_untagged_manifest_is_predicted_by_storage_and_freed_as_predicted() {
    shared_layer_of_an_untagged_manifest(Backend::fs());
}

#[test]
fn s3_a_layer_kept_by_an_untagged_manifest_is_predicted_by_storage_and_freed_as_predicted() {
    shared_layer_of_an_untagged_manifest(Backend::s3(&moto(), "/registry"));
}

fn shared_layer_of_an_untagged_manifest(mut b: Backend) {
    let rt = support::runtime();
    let u = |seed, size| LayerSpec { seed, size };
    let specs = vec![
        tag(ENV, "A", TagTarget::Image(image(vec![SHARED, u(7_001, 5_000)], "a1"))),
        tag(ENV, "A", TagTarget::Image(image(vec![u(7_002, 6_000)], "a2"))),
        tag(ENV, "B", TagTarget::Image(image(vec![SHARED, u(7_003, 7_000)], "b"))),
    ];
    rt.block_on(world::push(&client(&b.reg.url()), &specs)).expect("push");
    let http_plan = plan_for(scan_http(&rt, &b.reg), &[(ENV, "B")]);
    let storage_plan = plan_for(b.scan(&rt), &[(ENV, "B")]);
    let freed = b.delete_and_gc(&rt, &storage_plan);
    eprintln!(
        "plan B: http predicted {}, storage predicted {}, GC freed {freed}",
        http_plan.reclaimable_bytes, storage_plan.reclaimable_bytes
    );
    assert_eq!(storage_plan.reclaimable_bytes, freed, "storage prediction vs GC");
    assert_eq!(
        http_plan.reclaimable_bytes,
        freed + SHARED.size,
        "the HTTP scan cannot see the untagged manifest holding the shared layer"
    );
}

#[test]
fn random_selections_on_a_world_with_repushes_free_exactly_the_storage_prediction() {
    random_selections(&|_| Backend::fs());
}

#[test]
fn s3_random_selections_on_a_world_with_repushes_free_exactly_the_storage_prediction() {
    let m = moto();
    random_selections(&|trial| Backend::s3(&m, &format!("/trial-{trial}")));
}

/// Seeded selections, each on a freshly pushed registry.
fn random_selections(backend: &dyn Fn(usize) -> Backend) {
    let rt = support::runtime();
    let mut state = 0x5eed_u64;
    let mut sizes = Vec::new();
    for trial in 0..5 {
        let mut b = backend(trial);
        rt.block_on(world::push(&client(&b.reg.url()), &world_with_repushes()))
            .expect("push");
        let inv = b.scan(&rt);
        let tags: Vec<(String, String)> = inv
            .tag_ids()
            .map(|t| (inv.repo(inv.tag(t).repo).name.clone(), inv.tag(t).name.clone()))
            .collect();
        let mut pick = Vec::new();
        for t in &tags {
            state = world::splitmix(state);
            if state.is_multiple_of(3) {
                pick.push(t.clone());
            }
        }
        // Siblings go together (one of a pair alone is an untag, 0 bytes: not this test).
        let refs: Vec<(&str, &str)> = pick.iter().map(|(r, t)| (r.as_str(), t.as_str())).collect();
        let inv_tags: Vec<_> = refs.iter().map(|(r, t)| inv.find_tag(r, t).unwrap()).collect();
        let mut with_siblings: Vec<(&str, &str)> = refs.clone();
        for t in inv_tags {
            for s in inv.siblings(t) {
                let st = inv.tag(s);
                let (r, n) = (inv.repo(st.repo).name.as_str(), st.name.as_str());
                if !with_siblings.contains(&(r, n)) {
                    with_siblings.push((r, n));
                }
            }
        }
        let owned: Vec<(String, String)> = with_siblings
            .iter()
            .map(|(r, t)| (r.to_string(), t.to_string()))
            .collect();
        let sel: Vec<(&str, &str)> = owned.iter().map(|(r, t)| (r.as_str(), t.as_str())).collect();
        let plan = plan_for(inv, &sel);
        let freed = b.delete_and_gc(&rt, &plan);
        eprintln!(
            "trial {trial}: {} tags, predicted {}, freed {freed}",
            sel.len(),
            plan.reclaimable_bytes
        );
        assert_eq!(plan.reclaimable_bytes, freed, "trial {trial}, selection {sel:?}");
        sizes.push(freed);
    }
    assert!(sizes.iter().any(|s| *s > 0), "{sizes:?}");
}

// ---------------------------------------------------------------------------------------
// untagged-manifests, push-time grace, and the delete pipeline on a storage inventory
// ---------------------------------------------------------------------------------------

use registry_cleaner::plan::CategoryId;
use registry_cleaner::report::json::CandidateEntry;

/// Every tag's manifest and blobs (an index's children and theirs too) are readable.
fn assert_all_pullable(rt: &tokio::runtime::Runtime, reg: &Registry, inv: &Inventory) {
    use registry_cleaner::sources::registry::{ParsedManifest, parse_manifest};
    let c = client(&reg.url());
    for t in inv.tag_ids() {
        let (repo, tag) = (&inv.repo(inv.tag(t).repo).name, &inv.tag(t).name);
        let mut refs = vec![tag.clone()];
        while let Some(r) = refs.pop() {
            let m = rt
                .block_on(c.get_manifest(repo, &r))
                .unwrap_or_else(|e| panic!("{repo}:{tag} ({r}): {e}"));
            match parse_manifest(&m.body, m.content_type.as_deref()).unwrap() {
                ParsedManifest::Image { config, layers, .. } => {
                    rt.block_on(c.get_blob(repo, &config.digest))
                        .unwrap_or_else(|e| panic!("{repo}:{tag} config: {e}"));
                    for l in layers {
                        assert!(
                            rt.block_on(c.blob_exists(repo, &l.digest)).unwrap(),
                            "{repo}:{tag}: layer {} is gone",
                            l.digest
                        );
                    }
                }
                ParsedManifest::Index { children, .. } => refs.extend(children.into_iter().map(|c| c.digest)),
            }
        }
        // And what a client outside this crate sees (skopeo reads the manifest and config).
        let out = std::process::Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                &format!("docker://{}/{repo}:{tag}", reg.host()),
            ])
            .output()
            .expect("skopeo missing: apt-get install skopeo");
        assert!(
            out.status.success(),
            "skopeo inspect {repo}:{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn an_untagged_manifests_plan_frees_its_prediction_and_leaves_every_tag_and_index_pullable() {
    untagged_plan(Backend::fs());
}

#[test]
fn s3_an_untagged_manifests_plan_frees_its_prediction_and_leaves_every_tag_and_index_pullable() {
    untagged_plan(Backend::s3(&moto(), "untagged-plan"));
}

fn untagged_plan(mut b: Backend) {
    let rt = support::runtime();
    rt.block_on(world::push(&client(&b.reg.url()), &world_with_repushes()))
        .expect("push");
    let inv = b.scan(&rt);
    let tags_before = tag_view(&inv);
    let ds = dataset(inv, now() + 86_400);
    let report = json::build(&ds, &[CategoryId::UntaggedManifests], &PlanInput::Categories, "fp", &[]);
    let cat = &report.categories[0];
    assert_eq!(cat.status, "ok", "{:?}", cat.reason);
    let listed: Vec<_> = cat
        .candidates
        .iter()
        .map(|c| match c {
            CandidateEntry::Manifest(m) => m,
            other => panic!("not an untagged manifest: {other:?}"),
        })
        .collect();
    assert_eq!(listed.len(), 4, "A's first, latest's first two, the untagged index");
    assert!(listed.iter().all(|m| m.pushed.is_some() && m.untagged));
    let plan = &report.plan;
    assert!(plan.tags.is_empty(), "an untagged-manifests plan carries no tags");
    assert!(
        plan.manifests
            .iter()
            .all(|m| m.tags.is_empty() && m.categories == [CategoryId::UntaggedManifests])
    );
    // The untagged index takes its two (untagged) children, after it.
    assert_eq!(plan.manifests.iter().filter(|m| m.child_of.is_some()).count(), 2);
    assert_eq!(plan.manifests.len(), 6);
    assert!(plan.reclaimable_bytes > 0);
    assert_eq!(plan.reclaimable_bytes, cat.reclaimable_bytes);

    // Re-checked on fresh storage data: deleted while still candidates; inside the grace
    // period (evaluated at the push time) no longer candidates, so skipped.
    use registry_cleaner::plan::recheck::{Verdict, membership, recheck_with, untagged_membership};
    let verdicts = |at: i64| {
        let fresh = dataset(b.scan(&rt), at);
        recheck_with(
            &plan.manifests,
            &fresh.inventory,
            &Default::default(),
            &membership(&fresh.categories),
            &Default::default(),
            &untagged_membership(&fresh.inventory, &fresh.categories),
        )
    };
    assert!(verdicts(now() + 86_400).iter().all(|v| *v == Verdict::Delete));
    for (m, v) in plan.manifests.iter().zip(verdicts(now())) {
        if m.child_of.is_none() {
            assert!(
                matches!(&v, Verdict::Skip(why) if why.contains("no longer an untagged-manifests candidate")),
                "{v:?}"
            );
        }
    }

    let freed = b.delete_and_gc(&rt, plan);
    assert_eq!(freed, plan.reclaimable_bytes, "predicted vs freed by plain GC");
    let after = b.scan(&rt);
    assert!(untagged_view(&after).is_empty(), "{:?}", untagged_view(&after));
    assert_eq!(tag_view(&after), tags_before, "every tag resolves as before");
    assert_all_pullable(&rt, &b.reg, &after);

    // Over the HTTP API the category cannot be computed.
    let http = dataset(scan_http(&rt, &b.reg), now() + 86_400);
    let c = http
        .categories
        .iter()
        .find(|c| c.id == CategoryId::UntaggedManifests)
        .unwrap();
    assert!(
        matches!(&c.status, registry_cleaner::plan::CategoryStatus::Unavailable(r) if r.contains("storage")),
        "{:?}",
        c.status
    );
}

#[test]
fn grace_runs_from_the_push_time_under_storage_and_pods_by_digest_protect_untagged_manifests() {
    grace_by_push_time(Backend::fs());
}

#[test]
fn s3_grace_runs_from_the_push_time_under_storage_and_pods_by_digest_protect_untagged_manifests() {
    grace_by_push_time(Backend::s3(&moto(), "grace"));
}

fn grace_by_push_time(b: Backend) {
    use registry_cleaner::model::workloads::{Evidence, ImageRef, WorkloadImage, Workloads};
    use registry_cleaner::plan::{Policy, SourceState, SourcesData};
    let rt = support::runtime();
    let specs = world_with_repushes();
    rt.block_on(world::push(&client(&b.reg.url()), &specs)).expect("push");
    let store = b.scan(&rt);
    let http = scan_http(&rt, &b.reg);
    let at = now();
    let policy = Policy {
        without: [SourceKind::Mongo, SourceKind::Keycloak].into(),
        ..Default::default()
    };
    // A pod pinned to the digest of latest's first (now untagged) image.
    let first_latest = world::tag_digest(&specs.iter().find(|s| s.tag == "latest").unwrap().target);
    let pods = Workloads {
        images: vec![WorkloadImage {
            image: ImageRef {
                host: None,
                repository: ENV.into(),
                tag: None,
                digest: Some(first_latest.clone()),
            },
            evidence: Evidence {
                namespace: "compute".into(),
                kind: "Pod".into(),
                name: "run-1".into(),
                container: "main".into(),
                context: None,
            },
        }],
    };
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Disabled,
        kubernetes: SourceState::Ok(pods),
        keycloak: SourceState::Disabled,
    };
    // The images were built 30+ days ago (config `created`) but pushed just now.
    let by_tag = registry_cleaner::plan::evaluate::all_protections(&store, &data, &policy, at);
    let a = store.find_tag(ENV, "A").unwrap();
    assert!(
        by_tag
            .get(&a)
            .is_some_and(|r| r.iter().any(|x| x.starts_with("pushed 0 minutes ago"))),
        "{:?}",
        by_tag.get(&a)
    );
    let by_tag_http = registry_cleaner::plan::evaluate::all_protections(&http, &data, &policy, at);
    assert!(
        !by_tag_http.contains_key(&http.find_tag(ENV, "A").unwrap()),
        "HTTP: build time, no grace"
    );

    let cats = registry_cleaner::plan::evaluate(&store, &data, &policy, at);
    let u = cats.iter().find(|c| c.id == CategoryId::UntaggedManifests).unwrap();
    assert!(u.revisions.is_empty(), "all pushed just now: in grace");
    assert_eq!(u.protected_revisions.len(), 4);
    assert!(
        u.protected_revisions
            .iter()
            .all(|(_, why)| why.iter().any(|w| w.starts_with("pushed 0 minutes")))
    );
    // Past the grace period only the pod's digest keeps one.
    let cats = registry_cleaner::plan::evaluate(&store, &data, &policy, at + 3 * 3600);
    let u = cats.iter().find(|c| c.id == CategoryId::UntaggedManifests).unwrap();
    assert_eq!(u.revisions.len(), 3);
    assert_eq!(u.protected_revisions.len(), 1);
    let (rev, why) = &u.protected_revisions[0];
    assert_eq!(store.digests.name(store.revision(*rev).manifest), first_latest);
    assert!(why[0].contains("by digest"), "{why:?}");

    // The report says which time the grace period used.
    let r = json::build(&dataset(store, at), &[], &PlanInput::Categories, "fp", &[]);
    assert_eq!(r.grace_basis, "push-time");
    assert!(r.space_basis.starts_with("storage"));
    let r = json::build(&dataset(http, at), &[], &PlanInput::Categories, "fp", &[]);
    assert_eq!(r.grace_basis, "image-created");
    assert!(r.space_basis.starts_with("http-api"));
}

fn bin(dir: &std::path::Path, reg: &Registry, storage: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(args)
        .args(["--registry", &reg.url(), "--storage", storage])
        .args(["--without", "mongo", "--without", "kubernetes", "--without", "keycloak"])
        .args(["--grace-period-hours", "0"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join("state"))
        .env_remove("REGISTRY_URL")
        .env_remove("REGISTRY_STORAGE")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run registry-cleaner")
}

#[test]
fn a_storage_plan_is_rechecked_on_fresh_storage_and_by_the_http_last_look_before_each_delete() {
    let mut reg = Registry::start();
    let rt = support::runtime();
    let specs = world_with_repushes();
    rt.block_on(world::push(&client(&reg.url()), &specs)).expect("push");
    let dir = tempfile::tempdir().unwrap();
    let plan_path = dir.path().join("plan.json");
    let metrics_path = dir.path().join("report.prom");
    let out = bin(
        dir.path(),
        &reg,
        &storage_url(&reg),
        &[
            "report",
            "--category",
            "untagged-manifests",
            "--output",
            plan_path.to_str().unwrap(),
            "--metrics-file",
            metrics_path.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan_path).unwrap()).unwrap();
    assert_eq!(report["grace_basis"], "push-time");
    let planned = report["plan"]["manifests"].as_array().unwrap().len();
    assert_eq!(planned, 6, "{}", report["plan"]);
    // The metrics count the untagged candidates as manifests, not as tags: A's and the index
    // tag's first manifests and latest's first two (the plan's other 2 entries are the
    // children the untagged index lists, planned with it, not candidates of their own).
    let metrics = std::fs::read_to_string(&metrics_path).unwrap();
    let series = |name: &str| {
        let key = format!("{name}{{category=\"untagged-manifests\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {key} in {metrics}"))
            .to_string()
    };
    assert_eq!(series("registry_cleaner_manifests_pending_deletion"), "4");
    assert_eq!(series("registry_cleaner_tags_pending_deletion"), "0");
    assert!(report["plan"]["tags"].as_array().unwrap().is_empty());

    // The delete run reads a storage copy taken now (`stale`) and deletes on `reg`.
    let stale = reg.copy();
    let first = |tag: &str| world::tag_digest(&specs.iter().find(|s| s.tag == tag).unwrap().target);
    let (a1, l0) = (first("A"), first("latest"));
    // On the live registry only: a tag pushed onto A's first manifest. Fresh storage (the
    // copy) still says untagged; only the HTTP last look can see it.
    let mut revived = specs.iter().find(|s| s.tag == "A").unwrap().clone();
    revived.tag = "revived".into();
    rt.block_on(world::push(&client(&reg.url()), &[revived])).unwrap();
    // In the storage the run reads only: latest's first manifest tagged again. The live
    // registry's tags do not show it; only the fresh storage re-check can.
    let mut kept = specs.iter().find(|s| s.tag == "latest").unwrap().clone();
    kept.tag = "kept".into();
    rt.block_on(world::push(&client(&stale.url()), &[kept])).unwrap();

    let out = bin(
        dir.path(),
        &reg,
        &storage_url(&stale),
        &["delete", "--plan", plan_path.to_str().unwrap(), "--apply", "--force"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("results JSON");
    let item = |d: &str| {
        r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["digest"] == d)
            .unwrap_or_else(|| panic!("{d} not in {r}"))
            .clone()
    };
    let why = item(&a1)["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        why.contains("revived") && why.contains("after the scan"),
        "last look: {why}"
    );
    let why = item(&l0)["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        why.contains("tag kept") && why.contains("not in the plan"),
        "fresh storage: {why}"
    );
    assert_eq!(r["summary"]["deleted"], 4, "{r}");
    let c = client(&reg.url());
    for d in [&a1, &l0] {
        rt.block_on(c.get_manifest(ENV, d))
            .unwrap_or_else(|e| panic!("{d} must stay: {e}"));
    }
    rt.block_on(c.get_manifest(ENV, "revived"))
        .expect("the revived tag still resolves");
    // What went is gone, and GC leaves every remaining tag pullable.
    reg.stop();
    reg.garbage_collect();
    reg.resume();
    let after = scan_storage(&rt, &reg);
    assert_eq!(
        untagged_view(&after),
        vec![format!("{ENV}@{l0}")],
        "only the skipped one stays untagged"
    );
    assert_all_pullable(&rt, &reg, &after);
}

#[test]
fn scan_with_s3_storage_from_the_aws_environment_writes_the_storage_snapshot() {
    let m = moto();
    let b = Backend::s3(&m, "/registry");
    let rt = support::runtime();
    rt.block_on(world::push(&client(&b.reg.url()), &world_with_repushes()))
        .expect("push");
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snap.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registry-cleaner"))
        .args(["scan", "--output", snap.to_str().unwrap(), "--registry", &b.reg.url()])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("REGISTRY_STORAGE", b.url())
        .envs(m.env())
        .env_remove("REGISTRY_URL")
        .output()
        .expect("run registry-cleaner");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (inv, _) = registry_cleaner::report::snapshot::read(&snap).expect("snapshot");
    assert!(inv.from_storage);
    assert_eq!(untagged_view(&inv), untagged_view(&b.scan(&rt)));
    assert_eq!(untagged_view(&inv).len(), 6);
    // No credential reaches the output or the log.
    let all = format!(
        "{}{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&snap).unwrap()
    );
    assert!(!all.contains(support::s3::SECRET_KEY));
}
