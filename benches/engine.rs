//! Model and space-engine benchmark at Domino scale (synthetic, generated here): building the
//! inventory and engine for 100k tags / 1M layer references, toggling one tag (p50/p99),
//! selecting and clearing a 50k-tag category, and resident memory. Run:
//! `cargo bench --bench engine` (add `-- --tags N --layers M` to change the scale).

mod common;
use common::{arg, rss_mb};

use registry_cleaner::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, RevId};
use registry_cleaner::plan::SpaceEngine;
use std::time::Instant;

/// What a scan hands the model: per tag, its name and manifest with digest strings.
struct ScannedTag {
    repo: &'static str,
    tag: String,
    manifest: String,
    config: String,
    layers: Vec<(String, u64)>,
}

/// `tags` images over environments of 10 revisions: a base layer shared by all, an
/// environment layer per environment, and the rest unique — `layers` references in total.
fn synthetic(tags: usize, layers: usize) -> Vec<ScannedTag> {
    let per_image = (layers / tags).max(3);
    let d = |x: u64| format!("sha256:{x:064x}");
    (0..tags)
        .map(|i| {
            let envid = (i / 10) as u64;
            let mut ls = vec![(d(1 << 60), 300_000_000), (d(envid << 40 | 3), 80_000_000)];
            ls.extend((0..per_image - 2).map(|j| (d((i as u64) << 20 | (10 + j as u64)), 5_000_000 + j as u64)));
            ScannedTag {
                repo: if i % 4 == 3 {
                    "dominodatalab/model"
                } else {
                    "dominodatalab/environment"
                },
                tag: format!("{envid:024x}-{}", i % 10),
                manifest: d((i as u64) << 20 | 1),
                config: d((i as u64) << 20 | 2),
                layers: ls,
            }
        })
        .collect()
}

fn build(scanned: &[ScannedTag]) -> Inventory {
    let mut b = InventoryBuilder::new("bench");
    let env = b.repo("dominodatalab/environment");
    let model = b.repo("dominodatalab/model");
    for s in scanned {
        let digest = b.digest(&s.manifest);
        let config = Blob {
            digest: b.digest(&s.config),
            size: 4_000,
        };
        let layers = s
            .layers
            .iter()
            .map(|(l, size)| Blob {
                digest: b.digest(l),
                size: *size,
            })
            .collect();
        b.manifest(Manifest {
            digest,
            media_type: "m".into(),
            size: 2_000,
            kind: ManifestKind::Image { config, layers },
            created: Some(0),
        });
        b.tag(if s.repo.ends_with("model") { model } else { env }, &s.tag, digest);
    }
    b.finish()
}

fn main() {
    let tags = arg("--tags", 100_000);
    let layers = arg("--layers", 1_000_000);
    let scanned = synthetic(tags, layers);
    let rss0 = rss_mb();
    let t = Instant::now();
    let inv = build(&scanned);
    let inv_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let mut engine = SpaceEngine::new(&inv);
    let engine_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss = rss_mb() - rss0;
    drop(scanned);

    let n = inv.revisions.len();
    let mut samples = Vec::with_capacity(20_000);
    let mut x = 12345u64;
    for _ in 0..20_000 {
        x = registry_cleaner::world::splitmix(x);
        let r = RevId((x % n as u64) as u32);
        let t = Instant::now();
        engine.toggle(r);
        std::hint::black_box(engine.reclaimable());
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    engine.clear();
    samples.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p) as usize];

    let half: Vec<RevId> = (0..n / 2).map(|i| RevId(i as u32)).collect();
    let t = Instant::now();
    for r in &half {
        engine.set_selected(*r, true);
    }
    let total = engine.reclaimable();
    let select_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    engine.clear();
    let clear_ms = t.elapsed().as_secs_f64() * 1e3;

    println!(
        "engine benchmark: {tags} tags, {} layer references, {} revisions",
        inv.manifests()
            .iter()
            .map(|m| match &m.kind {
                ManifestKind::Image { layers, .. } => layers.len(),
                _ => 0,
            })
            .sum::<usize>(),
        n
    );
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!("| build inventory from scan results | {inv_ms:.0} ms | |");
    println!(
        "| build space engine (refcounts + exclusive bytes) | {engine_ms:.0} ms | ≤ 1000 ms (with inventory: {:.0} ms) |",
        inv_ms + engine_ms
    );
    println!("| toggle one tag + read total, p50 | {:.2} µs | |", pct(0.5));
    println!("| toggle one tag + read total, p99 | {:.2} µs | ≤ 1000 µs |", pct(0.99));
    println!(
        "| select {} tags (half the registry) | {select_ms:.1} ms ({total} bytes) | ≤ 50 ms |",
        half.len()
    );
    println!("| clear that selection | {clear_ms:.1} ms | ≤ 50 ms |");
    println!("| resident memory of inventory + engine | {rss:.0} MB | ≤ 300 MB |");
}
