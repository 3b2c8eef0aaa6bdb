//! Storage scan vs HTTP scan, side by side in one run on the same registry: Debian's
//! docker-registry on loopback with filesystem storage, then again with its S3 driver on a
//! local S3 server (moto). Tags per second for each, requests per tag for each (for S3, the
//! storage scan's S3 requests: GETs, HEADs, and list pages of 1000 keys).
//! Run: `cargo bench --features testkit --bench storage` (add `-- --tags N`).

mod common;
use common::arg;

#[path = "../tests/support/mod.rs"]
mod support;

use registry_cleaner::ops::scan::{ScanOptions, scan};
use registry_cleaner::sources::registry::{RegistryClient, RegistryOptions};
use registry_cleaner::sources::storage::{self, StorageScanOptions, StorageSource};
use registry_cleaner::world::{self, ImageSpec, LayerSpec, MediaFlavor, TagSpec, TagTarget};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Environments of 5 revisions sharing base and environment layers (as benches/scan.rs),
/// every fifth tag re-pushed once so storage holds untagged revisions too.
fn dataset(tags: usize) -> Vec<TagSpec> {
    let mut out = Vec::new();
    let base = LayerSpec { seed: 1, size: 2_000 };
    let mut i = 0u64;
    let image = |i: u64, rev: u64, label: String| ImageSpec {
        layers: vec![
            base,
            LayerSpec {
                seed: 10_000 + i,
                size: 1_000,
            },
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
        label,
    };
    let mut distinct = 0;
    while distinct < tags {
        let env = format!("{:024x}", 0x65a0_0000_0000u64 + i);
        for rev in 1..=5u64 {
            if distinct == tags {
                break;
            }
            distinct += 1;
            let spec = |label: String| TagSpec {
                repository: "dominodatalab/environment".into(),
                tag: format!("{env}-{rev}"),
                target: TagTarget::Image(image(i, rev, label)),
            };
            if rev == 5 {
                out.push(spec(format!("{env}-{rev}-first")));
            }
            out.push(spec(format!("{env}-{rev}")));
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

fn http_opts(conc: usize) -> ScanOptions {
    ScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: conc,
        cache: None,
    }
}

fn storage_opts(conc: usize) -> StorageScanOptions {
    StorageScanOptions {
        prefix: "dominodatalab".into(),
        repositories: None,
        fetch_config: true,
        verify_blobs: false,
        concurrency: conc,
    }
}

/// One side-by-side pair on a registry: (label, tags/s, requests/tag) rows.
fn compare(
    rt: &tokio::runtime::Runtime,
    what: &str,
    reg: &support::registry::Registry,
    src: &dyn Fn() -> StorageSource,
    rows: &mut Vec<(String, f64, String)>,
) -> (f64, f64) {
    let conc = 16;
    let c = client(&reg.url(), conc);
    let t = Instant::now();
    let http = rt.block_on(scan(&c, &http_opts(conc), &|_| {})).expect("http scan");
    let http_rate = http.tags.len() as f64 / t.elapsed().as_secs_f64();
    let http_row = (
        format!("{what}: HTTP scan, config blobs (ages), concurrency {conc}"),
        http_rate,
        format!(
            "{:.3} requests/tag",
            c.stats.requests.load(Relaxed) as f64 / http.tags.len() as f64
        ),
    );
    println!("| {} | {:.0} | {} |", http_row.0, http_row.1, http_row.2);
    rows.push(http_row);
    let s = src();
    let t = Instant::now();
    let inv = rt
        .block_on(storage::scan(&s, &reg.host(), &storage_opts(conc), &|_, _, _| {}))
        .expect("storage scan");
    let rate = inv.tags.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(inv.tags.len(), http.tags.len(), "same tags");
    let row = (
        format!("{what}: storage scan, configs, concurrency {conc}"),
        rate,
        format!(
            "{:.3} storage requests/tag (GET {}, HEAD {}, list pages {}); {} untagged revisions",
            s.stats.requests() as f64 / inv.tags.len() as f64,
            s.stats.gets.load(Relaxed),
            s.stats.heads.load(Relaxed),
            s.stats.list_pages.load(Relaxed),
            inv.untagged_revisions().count()
        ),
    );
    println!("| {} | {:.0} | {} |", row.0, row.1, row.2);
    rows.push(row);
    (http_rate, rate)
}

fn main() {
    let n = arg("--tags", 2000);
    let rt = support::runtime();
    let specs = dataset(n);
    let mut rows = Vec::new();
    println!("| what | tags/s | notes |\n|---|---|---|");

    let reg = support::registry::Registry::start();
    let t = Instant::now();
    rt.block_on(world::push(&client(&reg.url(), 8), &specs)).expect("push");
    println!(
        "dataset: {n} tags ({} pushes) in {:.1} s; docker-registry 2.8 on loopback\n",
        specs.len(),
        t.elapsed().as_secs_f64()
    );
    let url = format!("file://{}", reg.dir.path().join("data").display());
    let (fs_http, fs_storage) = compare(
        &rt,
        "filesystem",
        &reg,
        &|| StorageSource::open(&url).unwrap(),
        &mut rows,
    );
    drop(reg);

    let moto = support::s3::Moto::start();
    moto.create_bucket("registry");
    let reg = support::registry::Registry::start_s3(&moto.registry_storage_yaml("registry", "/registry"));
    let t = Instant::now();
    rt.block_on(world::push(&client(&reg.url(), 8), &specs))
        .expect("push to S3");
    println!("(pushed to the S3 registry in {:.1} s)", t.elapsed().as_secs_f64());
    let config: Vec<(&str, String)> = moto.config();
    let (s3_http, s3_storage) = compare(
        &rt,
        "S3 (moto)",
        &reg,
        &|| StorageSource::open_with("s3://registry/registry", &config).unwrap(),
        &mut rows,
    );

    let _ = rows;
    println!();
    println!(
        "storage / HTTP scan, filesystem: {:.1}× (target ≥ 5×)",
        fs_storage / fs_http
    );
    println!("storage / HTTP scan, S3 (moto):  {:.1}×", s3_storage / s3_http);
}
