//! The bundled demo world (`assets/demo-world.json`): a generated world's inventory snapshot
//! (computed locally, never pushed) with the Domino records, pods and Keycloak users the
//! sources would read; and the [`Dataset`] the real core computes from it, so `tui --demo`
//! shows what the cleaner would really propose and protect.

use super::{World, WorldSize, generate, inventory};
use crate::dataset::Dataset;
use crate::report::snapshot::to_snapshot;
const REGISTRY: &str = "docker-registry:5000";
const NAMESPACE: &str = "domino-compute";
pub use crate::tui::demo_world::{BUNDLED, BUNDLED_SEED, BUNDLED_TAGS, DemoBundle, SIZE_SCALE, dataset, demo_policy};

/// A world size with about `tags` tags (each cycle holds about 95 with 6 revisions).
pub fn size_for(tags: usize) -> WorldSize {
    WorldSize {
        cycles: (tags / 95).max(1),
        ..WorldSize::DEMO
    }
}

pub fn bundle(world: &World) -> DemoBundle {
    let inv = inventory(REGISTRY, &world.tags, &world.broken, SIZE_SCALE);
    DemoBundle {
        schema_version: 1,
        seed: world.seed,
        now: world.now,
        snapshot: to_snapshot(&inv, world.now),
        domino: world.domino.clone(),
        workloads: world.workloads(NAMESPACE),
        keycloak: world.keycloak_users.clone(),
    }
}

/// The demo dataset for any seed and size: the bundled file for the default, otherwise a
/// world generated in memory (testkit builds only).
pub fn demo_dataset(seed: u64, tags: usize) -> Result<Dataset, String> {
    if seed == BUNDLED_SEED && tags == BUNDLED_TAGS {
        return crate::tui::demo_world::bundled_dataset();
    }
    dataset(&bundle(&generate(seed, size_for(tags))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::CategoryStatus;

    #[test]
    fn the_bundled_file_is_the_generators_output_and_every_category_has_work() {
        let b: DemoBundle = serde_json::from_slice(BUNDLED).expect("bundle parses");
        let fresh = bundle(&generate(BUNDLED_SEED, size_for(BUNDLED_TAGS)));
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::to_value(&fresh).unwrap(),
            "assets/demo-world.json is stale: run `cargo run --bin gen-demo`"
        );
        let ds = dataset(&b).expect("dataset");
        let tags = ds.inventory.tag_ids().count();
        assert!((2500..4500).contains(&tags), "{tags}");
        // untagged-manifests needs a storage inventory; the demo bundle is the HTTP kind.
        for c in ds.categories.iter().filter(|c| c.id.as_str() != "untagged-manifests") {
            assert_eq!(c.status, CategoryStatus::Ok, "{}", c.id);
            if c.id.as_str() != "orphaned-references" {
                assert!(!c.candidates.is_empty(), "{}", c.id);
            }
        }
        assert!(!ds.labels.is_empty());
        assert_eq!(crate::tui::demo_world::KEEP_REVISIONS, crate::world::KEEP_REVISIONS);
    }
}
