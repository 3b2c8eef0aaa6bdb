//! The race Distribution leaves open: a tag pushed onto a digest the plan deletes. The last
//! look re-lists the repository's tags and HEADs every new name right before the DELETE, so
//! a tag that lands before that re-list is never lost. What remains is the window between the
//! re-list and the DELETE reaching the registry (no conditional delete exists): measured here.
//!
//! Each trial has its own repository (so scans stay tiny) behind a recording proxy:
//! - "push" trials push `sibling` onto the planned digest the moment the last look starts
//!   (the proxy sees the HEAD of the planned tag, pushes, then forwards): 0 lost tags allowed;
//! - "plain" trials push nothing: the plan is deleted, and the re-list → DELETE interval is
//!   recorded; p50/p99 are printed (and written to `$RC_RACE_REPORT` when set).
//!
//! `RC_RACE_TRIALS` sets the trials per kind (default 30 in the suite; scripts/race.sh runs more).

mod support;

use registry_cleaner::dataset::SourceKind;
use registry_cleaner::ops::delete_run::{self, Observer, Request};
use registry_cleaner::report::json::{self, PlanInput};
use registry_cleaner::settings::{FlagOverrides, Settings};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::proxy::{Fault, Proxy};
use support::registry::Registry;

struct Quiet;
impl Observer for Quiet {}

#[derive(Default)]
struct Seen {
    /// Per repository: when the last look's re-list and the DELETE passed the proxy.
    relist: HashMap<String, Instant>,
    delete: HashMap<String, Instant>,
}

fn repo_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    let end = rest.find("/manifests/").or_else(|| rest.find("/tags/list"))?;
    Some(rest[..end].to_string())
}

#[test]
fn a_tag_pushed_onto_a_planned_digest_before_the_relist_is_never_lost() {
    let trials: usize = std::env::var("RC_RACE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let reg = Registry::start();
    let rt = support::runtime();
    let direct = Arc::new(RegistryClient::new(RegistryOptions::new(&reg.url())).unwrap());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // One image per trial, each in its own repository.
    let repos: Vec<String> = (0..2 * trials).map(|i| format!("dominodatalab/race-{i}")).collect();
    let specs: Vec<TagSpec> = repos
        .iter()
        .enumerate()
        .map(|(i, r)| TagSpec {
            repository: r.clone(),
            tag: "t".into(),
            target: TagTarget::Image(ImageSpec {
                layers: vec![LayerSpec {
                    seed: 50_000 + i as u64,
                    size: 2_000,
                }],
                created: now - 86_400,
                flavor: MediaFlavor::Docker,
                architecture: "amd64".into(),
                label: format!("race-{i}"),
            }),
        })
        .collect();
    rt.block_on(world::push(&direct, &specs)).unwrap();
    let bodies: HashMap<String, (String, Vec<u8>)> = repos
        .iter()
        .map(|r| {
            let m = rt.block_on(direct.get_manifest(r, "t")).unwrap();
            (r.clone(), (m.content_type.unwrap_or_default(), m.body))
        })
        .collect();
    let bodies = Arc::new(bodies);

    let seen: Arc<Mutex<Seen>> = Arc::default();
    // Trials of the "push" kind, with whether their sibling was pushed already.
    let push_into: Arc<Mutex<HashMap<String, bool>>> = Arc::default();
    let (s, p, b, url) = (seen.clone(), push_into.clone(), bodies.clone(), reg.url());
    let proxy = Proxy::start(
        &rt,
        reg.url(),
        Arc::new(move |_n: u64, m: &str, path: &str| {
            let Some(repo) = repo_of(path) else { return Fault::Pass };
            if m == "GET" && path.contains("/tags/list") {
                s.lock().unwrap().relist.insert(repo.clone(), Instant::now());
            }
            if m == "DELETE" && !path.contains(&"0".repeat(64)) {
                s.lock().unwrap().delete.insert(repo.clone(), Instant::now());
            }
            // The last look begins (the scans GET; only the last look HEADs a planned tag).
            if m == "HEAD" && path.ends_with("/manifests/t") {
                let mut p = p.lock().unwrap();
                if p.get(&repo) == Some(&false) {
                    p.insert(repo.clone(), true);
                    let (ct, body) = b[&repo].clone();
                    let url = url.clone();
                    std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .unwrap();
                        let c = RegistryClient::new(RegistryOptions::new(&url)).unwrap();
                        rt.block_on(c.push_manifest(&repo, "sibling", &ct, body))
                            .expect("push sibling");
                    })
                    .join()
                    .unwrap();
                }
            }
            Fault::Pass
        }),
    );

    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yaml");
    std::fs::write(
        &cfg,
        format!("analysis:\n  output_dir: {}\n", dir.path().join("out").display()),
    )
    .unwrap();
    let flags = FlagOverrides {
        registry: Some(proxy.url()),
        without: vec![SourceKind::Mongo, SourceKind::Kubernetes, SourceKind::Keycloak],
        grace_period_hours: Some(0),
        ..FlagOverrides::default()
    };
    let env = [("HOME".to_string(), dir.path().display().to_string())]
        .into_iter()
        .collect();
    let base = Settings::load(Some(&cfg), &env, &flags).expect("settings");

    let mut lost = vec![];
    let mut windows = vec![];
    for (i, repo) in repos.iter().enumerate() {
        let push = i % 2 == 0;
        let mut settings = base.clone();
        settings.registry.repositories = Some(vec![repo.clone()]);
        settings.registry.cache = false;
        let fp = registry_cleaner::ops::connect::settings_fingerprint(&settings);
        let ds = rt
            .block_on(registry_cleaner::ops::connect::load_dataset(
                &settings, None, true, false, now,
            ))
            .unwrap();
        let t = ds.inventory.find_tag(repo, "t").expect("planned tag");
        let report = json::build(
            &ds,
            &[],
            &PlanInput::Selection(vec![t]),
            &fp,
            &settings.without.iter().copied().collect::<Vec<_>>(),
        );
        assert_eq!(report.plan.manifests.len(), 1);
        if push {
            push_into.lock().unwrap().insert(repo.clone(), false);
        }
        let req = Request {
            plan: report.plan.clone(),
            label: format!("race {i}"),
            apply: true,
            mongo_cleanup: false,
            backup: None,
            audit_log: None,
            max_delete: None,
            max_bytes: None,
            cancel: None,
        };
        let results = rt.block_on(delete_run::run(&settings, &req, &Quiet, now)).expect("run");
        let outcome = serde_json::to_value(&results.items[0]).unwrap();
        if push {
            assert!(
                push_into.lock().unwrap()[repo],
                "the sibling was pushed during the last look"
            );
            let sibling = rt.block_on(direct.head_manifest(repo, "sibling")).unwrap();
            if sibling.as_deref() != Some(report.plan.manifests[0].digest.as_str()) {
                lost.push(format!("{repo}: {outcome}"));
            }
            assert_eq!(outcome["result"], "skipped", "{outcome}");
        } else {
            assert_eq!(outcome["result"], "deleted", "{outcome}");
            let s = seen.lock().unwrap();
            windows.push(s.delete[repo].duration_since(s.relist[repo]));
        }
    }
    assert!(
        lost.is_empty(),
        "tags lost although pushed before the re-list: {lost:#?}"
    );
    windows.sort();
    let pct = |q: f64| windows[((windows.len() - 1) as f64 * q).round() as usize];
    let line = format!(
        "race: {trials} push trials, 0 lost; residual window (re-list → DELETE at the registry) over {} trials: p50 {:?}, p99 {:?}, max {:?}",
        windows.len(),
        pct(0.5),
        pct(0.99),
        windows.last().copied().unwrap_or(Duration::ZERO)
    );
    println!("{line}");
    if let Ok(path) = std::env::var("RC_RACE_REPORT") {
        std::fs::write(path, format!("{line}\n")).unwrap();
    }
}
