//! Table tests for reclaimable bytes: the original tool's shared-layer cases (domain.md §10.1),
//! the registry-specific rules (manifest and config blobs, siblings, indexes, cross-repository
//! sharing) and a property test pinning the incremental engine to a from-scratch computation.

use super::*;
use crate::model::{Blob, InventoryBuilder, Manifest, ManifestKind, Platform};
use proptest::prelude::*;

const ENV: &str = "dominodatalab/environment";

/// Images given as (tag, [(layer, size)]): each tag gets its own manifest with zero-sized
/// manifest and config blobs, so only layers count, as in the original tool's tests.
fn layers_only(images: &[(&str, &[(&str, u64)])]) -> Inventory {
    let mut b = InventoryBuilder::new("test");
    let repo = b.repo(ENV);
    for (tag, layers) in images {
        let digest = b.digest(&format!("manifest-{tag}"));
        let config = Blob {
            digest: b.digest(&format!("config-{tag}")),
            size: 0,
        };
        let layers = layers
            .iter()
            .map(|(l, s)| Blob {
                digest: b.digest(l),
                size: *s,
            })
            .collect();
        b.manifest(Manifest {
            digest,
            media_type: "m".into(),
            size: 0,
            kind: ManifestKind::Image { config, layers },
            created: None,
        });
        b.tag(repo, tag, digest);
    }
    b.finish()
}

fn check(inv: &Inventory, select: &[&str], expected: u64) {
    let mut engine = SpaceEngine::new(inv);
    let mut set = HashSet::new();
    for tag in select {
        if let Some(t) = inv.find_tag(ENV, tag) {
            let rev = inv.tag(t).revision().unwrap();
            engine.set_selected(rev, true);
            set.insert(rev);
        }
    }
    assert_eq!(engine.reclaimable(), expected, "incremental, selection {select:?}");
    assert_eq!(
        reclaimable_from_scratch(inv, &set),
        expected,
        "from scratch, selection {select:?}"
    );
}

#[test]
fn original_shared_layer_cases() {
    let one = layers_only(&[("tag1", &[("l1", 1000), ("l2", 2000), ("l3", 3000)])]);
    check(&one, &["tag1"], 6000); // case 1, 11
    check(&one, &[], 0); // case 7
    check(&one, &["nonexistent"], 0); // case 8

    let two = layers_only(&[
        ("tag1", &[("l1", 1000), ("l2", 2000)]),
        ("tag2", &[("l3", 3000), ("l4", 4000)]),
    ]);
    check(&two, &["tag1", "tag2"], 10000); // case 2

    let base = layers_only(&[
        ("tag1", &[("base", 5000), ("u1", 1000)]),
        ("tag2", &[("base", 5000), ("u2", 2000)]),
    ]);
    check(&base, &["tag1"], 1000); // case 3, 6
    check(&base, &["tag2"], 2000);
    check(&base, &["tag1", "tag2"], 8000);

    let three = layers_only(&[
        ("tag1", &[("base", 5000), ("u1", 1000)]),
        ("tag2", &[("base", 5000), ("u2", 2000)]),
        ("tag3", &[("base", 5000), ("u3", 3000)]),
    ]);
    check(&three, &["tag1", "tag2"], 3000); // case 4
    check(&three, &["tag1", "tag2", "tag3"], 11000);

    let five = layers_only(&[
        ("tag1", &[("A", 1000), ("B", 2000), ("C", 3000)]),
        ("tag2", &[("A", 1000), ("B", 2000), ("D", 4000)]),
        ("tag3", &[("A", 1000), ("E", 5000)]),
    ]);
    check(&five, &["tag1"], 3000); // case 5
    check(&five, &["tag1", "tag2"], 9000);
    check(&five, &["tag1", "tag2", "tag3"], 15000);

    let nine = layers_only(&[
        ("tag1", &[("A", 1000), ("B", 2000), ("C", 3000)]),
        ("tag2", &[("A", 1000), ("B", 2000), ("D", 4000)]),
        ("tag3", &[("A", 1000), ("C", 3000), ("E", 5000)]),
        ("tag4", &[("F", 6000), ("G", 7000)]),
    ]);
    check(&nine, &["tag1", "tag4"], 13000); // case 9
    check(&nine, &["tag1", "tag2", "tag3"], 15000);
    check(&nine, &["tag1", "tag2", "tag3", "tag4"], 28000);

    let ten = layers_only(&[
        ("tag1", &[("sha256:base123", 1_000_000)]),
        ("tag2", &[("sha256:base123", 1_000_000)]),
    ]);
    check(&ten, &["tag1"], 0); // case 10: simulation does not mutate counts
    check(&ten, &["tag2"], 0);
    check(&ten, &["tag1", "tag2"], 1_000_000);
}

#[test]
fn exclusive_bytes_is_what_deleting_only_that_image_frees() {
    let inv = layers_only(&[
        ("tag1", &[("base", 5000), ("u1", 1000)]),
        ("tag2", &[("base", 5000), ("u2", 2000)]),
    ]);
    let engine = SpaceEngine::new(&inv);
    let rev = |t| inv.tag(inv.find_tag(ENV, t).unwrap()).revision().unwrap();
    assert_eq!(engine.exclusive_bytes(rev("tag1")), 1000);
    assert_eq!(engine.exclusive_bytes(rev("tag2")), 2000);
}

#[test]
fn sizes_near_u64_max_saturate_instead_of_wrapping_and_stay_exact_below() {
    let huge = u64::MAX - 1;
    let inv = layers_only(&[
        ("tag1", &[("a", huge), ("b", huge)]),
        ("tag2", &[("c", 10)]),
        ("tag3", &[("d", huge)]),
    ]);
    check(&inv, &["tag1"], u64::MAX);
    check(&inv, &["tag1", "tag2", "tag3"], u64::MAX);
    check(&inv, &["tag2", "tag3"], huge + 1);
    let rev = |t| inv.tag(inv.find_tag(ENV, t).unwrap()).revision().unwrap();
    let mut engine = SpaceEngine::new(&inv);
    assert_eq!(engine.exclusive_bytes(rev("tag1")), u64::MAX);
    engine.set_selected(rev("tag1"), true);
    engine.set_selected(rev("tag2"), true);
    engine.set_selected(rev("tag1"), false);
    assert_eq!(
        engine.reclaimable(),
        10,
        "the total is still exact after the huge image leaves"
    );
}

#[test]
fn a_layer_listed_twice_in_one_image_is_freed_with_that_image() {
    let inv = layers_only(&[("tag1", &[("l1", 1000), ("l1", 1000)]), ("tag2", &[("l2", 5)])]);
    check(&inv, &["tag1"], 1000);
}

/// A registry with the manifest and config blobs counted, as GC really frees them.
struct World {
    b: InventoryBuilder,
}

impl World {
    fn new() -> Self {
        World {
            b: InventoryBuilder::new("test"),
        }
    }
    fn image(&mut self, name: &str, layers: &[(&str, u64)]) -> DigestId {
        let digest = self.b.digest(&format!("m-{name}"));
        let config = Blob {
            digest: self.b.digest(&format!("c-{name}")),
            size: 10,
        };
        let layers = layers
            .iter()
            .map(|(l, s)| Blob {
                digest: self.b.digest(l),
                size: *s,
            })
            .collect();
        self.b.manifest(Manifest {
            digest,
            media_type: "m".into(),
            size: 100,
            kind: ManifestKind::Image { config, layers },
            created: None,
        });
        digest
    }
    fn index(&mut self, name: &str, children: &[DigestId]) -> DigestId {
        let digest = self.b.digest(&format!("i-{name}"));
        let children = children
            .iter()
            .map(|c| (Blob { digest: *c, size: 100 }, Some(Platform::default())))
            .collect();
        self.b.manifest(Manifest {
            digest,
            media_type: "i".into(),
            size: 300,
            kind: ManifestKind::Index { children },
            created: None,
        });
        digest
    }
    fn tag(&mut self, repo: &str, tag: &str, d: DigestId) {
        let r = self.b.repo(repo);
        self.b.tag(r, tag, d);
    }
}

fn rev_of(inv: &Inventory, repo: &str, tag: &str) -> RevId {
    inv.tag(inv.find_tag(repo, tag).unwrap()).revision().unwrap()
}

#[test]
fn manifest_and_config_blobs_count_and_layers_shared_across_repositories_stay() {
    let mut w = World::new();
    let env = w.image("env", &[("base", 5000), ("envtop", 700)]);
    let model = w.image("model", &[("base", 5000), ("envtop", 700), ("modeltop", 300)]);
    w.tag(ENV, "e1", env);
    w.tag("dominodatalab/model", "m1", model);
    let inv = w.b.finish();
    let mut e = SpaceEngine::new(&inv);
    e.toggle(rev_of(&inv, ENV, "e1"));
    // Only the env manifest (100) and its config (10): both layers are still used by the model.
    assert_eq!(e.reclaimable(), 110);
    e.toggle(rev_of(&inv, "dominodatalab/model", "m1"));
    assert_eq!(e.reclaimable(), 100 + 10 + 100 + 10 + 5000 + 700 + 300);
}

#[test]
fn the_same_manifest_in_two_repositories_is_freed_only_when_both_go() {
    let mut w = World::new();
    let img = w.image("img", &[("l", 1000)]);
    w.tag(ENV, "a", img);
    w.tag("dominodatalab/model", "a", img);
    let inv = w.b.finish();
    let mut e = SpaceEngine::new(&inv);
    e.toggle(rev_of(&inv, ENV, "a"));
    assert_eq!(e.reclaimable(), 0);
    e.toggle(rev_of(&inv, "dominodatalab/model", "a"));
    assert_eq!(e.reclaimable(), 1110);
}

#[test]
fn two_tags_on_one_digest_are_one_revision_and_siblings() {
    let mut w = World::new();
    let img = w.image("img", &[("l", 1000)]);
    w.tag(ENV, "x-1", img);
    w.tag(ENV, "x-latest", img);
    let inv = w.b.finish();
    let t = inv.find_tag(ENV, "x-1").unwrap();
    assert_eq!(inv.siblings(t), vec![inv.find_tag(ENV, "x-latest").unwrap()]);
    assert_eq!(rev_of(&inv, ENV, "x-1"), rev_of(&inv, ENV, "x-latest"));
    let mut e = SpaceEngine::new(&inv);
    e.toggle(rev_of(&inv, ENV, "x-1"));
    assert_eq!(e.reclaimable(), 1110);
}

#[test]
fn deleting_an_index_takes_its_children_unless_another_index_keeps_them() {
    let mut w = World::new();
    let amd = w.image("amd", &[("la", 1000)]);
    let arm = w.image("arm", &[("lb", 2000)]);
    let idx1 = w.index("one", &[amd, arm]);
    let idx2 = w.index("two", &[arm]);
    w.tag(ENV, "multi", idx1);
    w.tag(ENV, "armonly", idx2);
    let inv = w.b.finish();
    let mut e = SpaceEngine::new(&inv);
    e.toggle(rev_of(&inv, ENV, "multi"));
    // index (300) + amd manifest (100) + its config (10) + its layer; arm stays via "armonly".
    assert_eq!(e.reclaimable(), 300 + 100 + 10 + 1000);
    e.toggle(rev_of(&inv, ENV, "armonly"));
    assert_eq!(e.reclaimable(), 300 + 300 + 100 + 10 + 1000 + 100 + 10 + 2000);
    e.toggle(rev_of(&inv, ENV, "multi"));
    // "multi" stays and keeps arm alive: only the "armonly" index blob goes.
    assert_eq!(e.reclaimable(), 300);
}

#[test]
fn a_selected_child_held_by_a_remaining_index_is_not_removed() {
    let mut w = World::new();
    let amd = w.image("amd", &[("la", 1000)]);
    let idx = w.index("one", &[amd]);
    w.tag(ENV, "multi", idx);
    w.tag(ENV, "amd-only", amd);
    let inv = w.b.finish();
    let mut e = SpaceEngine::new(&inv);
    let child = rev_of(&inv, ENV, "amd-only");
    e.toggle(child);
    assert!(e.is_held_by_index(child));
    assert_eq!(e.reclaimable(), 0);
    e.toggle(rev_of(&inv, ENV, "multi"));
    assert!(e.is_removed(child));
    assert_eq!(e.reclaimable(), 300 + 100 + 10 + 1000);
}

fn arb_inventory() -> impl Strategy<Value = Inventory> {
    // Up to 12 images over 10 layers, up to 3 indexes, tags across two repositories.
    (
        prop::collection::vec(prop::collection::vec(0u8..10, 0..5), 1..12),
        prop::collection::vec(prop::collection::vec(0usize..12, 1..3), 0..3),
        prop::collection::vec((0usize..15, any::<bool>()), 1..20),
    )
        .prop_map(|(images, indexes, tags)| {
            let mut w = World::new();
            let mut targets: Vec<DigestId> = images
                .iter()
                .enumerate()
                .map(|(i, ls)| {
                    let layers: Vec<(String, u64)> = ls.iter().map(|l| (format!("l{l}"), 1u64 << l)).collect();
                    let refs: Vec<(&str, u64)> = layers.iter().map(|(n, s)| (n.as_str(), *s)).collect();
                    w.image(&format!("{i}"), &refs)
                })
                .collect();
            let n_images = targets.len();
            for (i, children) in indexes.iter().enumerate() {
                let ch: Vec<DigestId> = children.iter().map(|c| targets[c % n_images]).collect();
                let idx = w.index(&format!("{i}"), &ch);
                targets.push(idx);
            }
            for (i, (t, other_repo)) in tags.iter().enumerate() {
                let repo = if *other_repo { "dominodatalab/model" } else { ENV };
                w.tag(repo, &format!("t{i}"), targets[t % targets.len()]);
            }
            w.b.finish()
        })
}

proptest! {
    #[test]
    fn incremental_total_always_equals_recomputation(inv in arb_inventory(), toggles in prop::collection::vec(0usize..40, 1..40)) {
        let mut e = SpaceEngine::new(&inv);
        let mut selected = HashSet::new();
        for t in toggles {
            let rev = RevId((t % inv.revisions.len()) as u32);
            e.toggle(rev);
            if !selected.remove(&rev) {
                selected.insert(rev);
            }
            prop_assert_eq!(e.reclaimable(), reclaimable_from_scratch(&inv, &selected));
        }
        e.clear();
        prop_assert_eq!(e.reclaimable(), 0);
    }
}
