//! Registry scan and delete throughput, side by side in one run against a real registry
//! (Debian docker-registry on loopback, filesystem storage, a Domino-like dataset):
//! the original tool's approach (skopeo inspect per tag, 4 in parallel), the registry's own
//! ceiling (wrk GETs on the same manifest URLs), our cold scan (with and without config
//! blobs), our warm rescans, and deletes (raw DELETE loop vs our executor with re-checks).
//! Run: `cargo bench --bench scan` (add `-- --tags N`).

mod common;
use common::arg;

#[path = "../tests/support/mod.rs"]
mod support;

use registry_cleaner::ops::execute::execute;
use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::ops::scan_cache::ScanCache;
use registry_cleaner::plan::recheck::Verdict;
use registry_cleaner::report::json::PlanManifest;
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget};
use std::process::Command;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Environments of 5 revisions sharing base and environment layers, plus models on top.
fn dataset(tags: usize) -> Vec<TagSpec> {
    let mut out = Vec::new();
    let base = LayerSpec { seed: 1, size: 2_000 };
    let mut i = 0u64;
    while out.len() < tags {
        let env = format!("{:024x}", 0x65a0_0000_0000u64 + i);
        let env_layer = LayerSpec {
            seed: 10_000 + i,
            size: 1_000,
        };
        let kind = if i % 4 == 3 { "model" } else { "environment" };
        for rev in 1..=5u64 {
            if out.len() == tags {
                break;
            }
            let img = ImageSpec {
                layers: vec![
                    base,
                    env_layer,
                    LayerSpec {
                        seed: 1_000_000 + i * 10 + rev,
                        size: 300,
                    },
                ],
                created: 1_700_000_000 + (i * 10 + rev) as i64,
                flavor: if i.is_multiple_of(2) {
                    MediaFlavor::Docker
                } else {
                    MediaFlavor::Oci
                },
                architecture: "amd64".into(),
                label: format!("{env}-{rev}"),
            };
            out.push(TagSpec {
                repository: format!("dominodatalab/{kind}"),
                tag: format!("{env}-{rev}"),
                target: TagTarget::Image(img),
            });
        }
        i += 1;
    }
    out
}

fn client(url: &str, concurrency: usize) -> RegistryClient {
    let mut o = RegistryOptions::new(url);
    o.concurrency = concurrency;
    RegistryClient::new(o).expect("client")
}

fn opts(concurrency: usize, fetch_config: bool, cache: Option<ScanCache>) -> ScanOptions {
    ScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config,
        verify_blobs: false,
        concurrency,
        cache,
    }
}

fn main() {
    let n = arg("--tags", 2005);
    let rt = support::runtime();
    let mut reg = support::registry::Registry::start();
    let url = reg.url();
    let specs = dataset(n);
    let t = Instant::now();
    rt.block_on(world::push(&client(&url, 8), &specs)).expect("push");
    println!(
        "dataset: {n} tags pushed in {:.1} s; registry docker-registry 2.8 on loopback\n",
        t.elapsed().as_secs_f64()
    );
    let mut rows: Vec<(String, f64, String)> = Vec::new();

    // 1. The original tool's approach: skopeo inspect per tag, 4 in parallel (a sample).
    let sample: Vec<&TagSpec> = specs.iter().step_by((n / 200).max(1)).take(200).collect();
    let t = Instant::now();
    for chunk in sample.chunks(4) {
        let children: Vec<_> = chunk
            .iter()
            .map(|s| {
                Command::new("skopeo")
                    .args([
                        "inspect",
                        "--tls-verify=false",
                        &format!("docker://{}/{}:{}", reg.host(), s.repository, s.tag),
                    ])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("skopeo (apt-get install skopeo)")
            })
            .collect();
        for mut c in children {
            assert!(c.wait().expect("skopeo").success());
        }
    }
    let skopeo_rate = sample.len() as f64 / t.elapsed().as_secs_f64();
    rows.push((
        "original approach: skopeo inspect per tag, 4 parallel".into(),
        skopeo_rate,
        format!("{} tags sampled", sample.len()),
    ));

    // 2. The registry's ceiling: wrk GETs over the same manifest URLs.
    let lua = reg.dir.path().join("paths.lua");
    let paths: Vec<String> = specs
        .iter()
        .map(|s| format!("\"/v2/{}/manifests/{}\"", s.repository, s.tag))
        .collect();
    std::fs::write(
        &lua,
        format!(
            "local paths = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(\"GET\", paths[i], {{[\"Accept\"] = \"application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\"}})\nend\n",
            paths.join(",")
        ),
    )
    .unwrap();
    let out = Command::new("wrk")
        .args(["-t2", "-c8", "-d8s", "-s", lua.to_str().unwrap(), &url])
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    let wrk_rate: f64 = text
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    rows.push((
        "registry ceiling: wrk GET per tag, 8 connections".into(),
        wrk_rate,
        "requests/s = tags/s at one GET per tag".into(),
    ));

    // 3. Our cold scans at several concurrencies (no cache), with and without config blobs.
    let mut best = (0usize, 0.0f64);
    for conc in [4, 8, 16, 32] {
        let c = client(&url, conc);
        let t = Instant::now();
        let inv = rt.block_on(scan(&c, &opts(conc, false, None), &|_| {})).expect("scan");
        let rate = inv.tags.len() as f64 / t.elapsed().as_secs_f64();
        let per_tag = c.stats.requests.load(Relaxed) as f64 / inv.tags.len() as f64;
        if rate > best.1 {
            best = (conc, rate);
        }
        rows.push((
            format!("cold scan, manifests only, concurrency {conc}"),
            rate,
            format!("{per_tag:.3} requests/tag"),
        ));
    }
    let conc = best.0;
    let c = client(&url, conc);
    let t = Instant::now();
    let inv = rt.block_on(scan(&c, &opts(conc, true, None), &|_| {})).expect("scan");
    let rate = inv.tags.len() as f64 / t.elapsed().as_secs_f64();
    let per_tag = c.stats.requests.load(Relaxed) as f64 / inv.tags.len() as f64;
    rows.push((
        format!("cold scan with config blobs (ages), no cache, concurrency {conc}"),
        rate,
        format!("{per_tag:.3} requests/tag"),
    ));
    let cache_dir = tempfile::tempdir().unwrap();
    let c = client(&url, conc);
    let t = Instant::now();
    let inv = rt
        .block_on(scan(
            &c,
            &opts(conc, true, ScanCache::new(Some(cache_dir.path()), &reg.host(), false)),
            &|_| {},
        ))
        .expect("scan");
    let cold_rate = inv.tags.len() as f64 / t.elapsed().as_secs_f64();
    let cold_req = c.stats.requests.load(Relaxed) as f64 / inv.tags.len() as f64;
    rows.push((
        format!("cold scan with config blobs (ages), concurrency {conc}, fills cache"),
        cold_rate,
        format!("{cold_req:.3} requests/tag"),
    ));
    for (trust, label) in [
        (false, "warm rescan (HEAD per tag, bodies from cache)"),
        (true, "warm rescan, unchanged tag lists trusted"),
    ] {
        let c = client(&url, conc);
        let t = Instant::now();
        let inv = rt
            .block_on(scan(
                &c,
                &opts(conc, true, ScanCache::new(Some(cache_dir.path()), &reg.host(), trust)),
                &|_| {},
            ))
            .expect("scan");
        let rate = inv.tags.len() as f64 / t.elapsed().as_secs_f64();
        let per_tag = c.stats.requests.load(Relaxed) as f64 / inv.tags.len() as f64;
        rows.push((
            format!("{label}, concurrency {conc}"),
            rate,
            format!("{per_tag:.3} requests/tag; warm/cold time {:.2}", cold_rate / rate),
        ));
    }

    // 4. Deletes: the registry's own DELETE rate (plain loop) vs our executor with re-checks,
    // the same manifests on two identical copies of the registry (Distribution's delete cost
    // grows with the number of tags left in the repository, so both must start equal).
    let copy = reg.copy();
    // A third copy for the executor with an audit log: each DELETE then waits for its fsynced
    // write-ahead line, as in a real `delete --apply`.
    let audited_copy = reg.copy();
    let half = specs.len() / 2;
    let manifests: Vec<PlanManifest> = inv
        .rev_ids()
        .map(|r| {
            let rev = inv.revision(r);
            PlanManifest {
                repository: inv.repo(rev.repo).name.clone(),
                digest: inv.digests.name(rev.manifest).to_string(),
                tags: rev.tags.iter().map(|t| inv.tag(*t).name.clone()).collect(),
                index: false,
                child_of: None,
                categories: vec![],
                kind: None,
                untag: false,
            }
        })
        .collect();
    let raw = &manifests[..half.min(manifests.len())];
    let ours = raw;
    let c = client(&url, conc);
    let t = Instant::now();
    rt.block_on(async {
        use futures::stream::{self, StreamExt};
        stream::iter(raw)
            .map(|m| c.delete_manifest(&m.repository, &m.digest))
            .buffer_unordered(conc)
            .collect::<Vec<_>>()
            .await
    });
    let raw_rate = raw.len() as f64 / t.elapsed().as_secs_f64();
    rows.push((
        format!("registry DELETE rate: plain loop, concurrency {conc}"),
        raw_rate,
        format!("{} manifests", raw.len()),
    ));
    let verdicts = vec![Verdict::Delete; ours.len()];
    // The executor on one copy of the registry, with or without an audit log: its items, the
    // seconds taken and the client (for its request count).
    let run_executor = |url: String, audit: Option<&registry_cleaner::ops::audit::AuditLog>| {
        let c = client(&url, conc);
        let t = Instant::now();
        let items = rt
            .block_on(execute(
                &c,
                ours,
                &verdicts,
                &vec![vec![]; ours.len()],
                true,
                conc,
                audit,
                None,
                &registry_cleaner::ops::last_look::LastLook::new(
                    &inv,
                    registry_cleaner::ops::last_look::Retry {
                        max_retries: 3,
                        initial_backoff: std::time::Duration::from_millis(200),
                    },
                ),
                &|_, _| {},
            ))
            .items;
        (items, t.elapsed().as_secs_f64(), c)
    };
    let (items, secs, c) = run_executor(copy.url(), None);
    let our_rate = items.len() as f64 / secs;
    let per = c.stats.requests.load(Relaxed) as f64 / items.len() as f64;
    rows.push((
        format!("our executor (HEAD re-check per tag + shared re-list + DELETE), concurrency {conc}"),
        our_rate,
        format!("{per:.2} requests/manifest; ratio to plain {:.2}", our_rate / raw_rate),
    ));
    let audit_dir = tempfile::tempdir().unwrap();
    let audit = registry_cleaner::ops::audit::AuditLog::open(&audit_dir.path().join("audit.jsonl")).expect("audit log");
    let (audited, secs, c) = run_executor(audited_copy.url(), Some(&audit));
    let audited_rate = audited.len() as f64 / secs;
    let audited_per = c.stats.requests.load(Relaxed) as f64 / audited.len() as f64;
    let deleted = audited
        .iter()
        .filter(|i| matches!(i.outcome, registry_cleaner::ops::execute::Outcome::Deleted))
        .count();
    rows.push((
        format!("our executor as above, with the audit log (fsynced write-ahead line per DELETE), concurrency {conc}"),
        audited_rate,
        format!(
            "{audited_per:.2} requests/manifest; {deleted} of {} deleted; ratio to plain {:.2}",
            audited.len(),
            audited_rate / raw_rate
        ),
    ));

    println!("| measurement | tags/s (or items/s) | notes |");
    println!("|---|---|---|");
    for (m, rate, note) in &rows {
        println!("| {m} | {rate:.0} | {note} |");
    }
    let manifest_only = rows
        .iter()
        .find(|r| r.0.contains(&format!("concurrency {}", best.0)) && r.0.starts_with("cold scan, manifests"))
        .map_or(0.0, |r| r.1);
    println!(
        "\ncold scan (manifests only) / wrk ceiling: {:.2} (target ≥ 0.85)",
        manifest_only / wrk_rate.max(1.0)
    );
    println!(
        "cold scan with ages / original approach: {:.1}×",
        cold_rate / skopeo_rate.max(0.001)
    );
    println!(
        "executor / plain DELETE loop: {:.2} (target ≥ 0.7)",
        our_rate / raw_rate
    );
    println!(
        "executor with audit log / plain DELETE loop: {:.2} (target ≥ 0.7)",
        audited_rate / raw_rate
    );
}
