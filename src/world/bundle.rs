//! The bundled demo world (`assets/demo-world.json`): a generated world's inventory snapshot
//! (computed locally, never pushed) with the Domino records, pods and Keycloak users the
//! sources would read; and the [`Dataset`] the real core computes from it, so `tui --demo`
//! shows what the cleaner would really propose and protect.

use super::{KEEP_REVISIONS, World, WorldSize, generate, inventory};
use crate::dataset::{Dataset, SourceKind, SourceStatus};
use crate::model::domino::DominoData;
use crate::model::users::KeycloakUser;
use crate::model::workloads::Workloads;
use crate::plan::{Policy, SourceState, SourcesData};
use crate::report::snapshot::{Snapshot, from_snapshot, to_snapshot};
use serde::{Deserialize, Serialize};

/// The file `gen-demo` writes and `tui --demo` embeds.
pub const BUNDLED: &[u8] = include_bytes!("../../assets/demo-world.json");
/// Seed and tag count the bundled file was generated with (the CLI's `--demo-*` defaults).
pub const BUNDLED_SEED: u64 = 42;
pub const BUNDLED_TAGS: usize = 3000;
/// Blob sizes are multiplied by this in the bundle, so kilobyte layers look like real images.
pub const SIZE_SCALE: u64 = 4096;
const REGISTRY: &str = "docker-registry:5000";
const NAMESPACE: &str = "domino-compute";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoBundle {
    pub schema_version: u32,
    pub seed: u64,
    /// The world's "now" (Unix seconds): what the categories are evaluated at.
    pub now: i64,
    pub snapshot: Snapshot,
    pub domino: DominoData,
    pub workloads: Workloads,
    pub keycloak: Vec<KeycloakUser>,
}

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

/// The policy the demo applies.
pub fn demo_policy() -> Policy {
    Policy {
        keep_revisions: KEEP_REVISIONS + 1,
        ..Policy::default()
    }
}

/// Every category and protection computed by the real core from the bundle.
pub fn dataset(b: &DemoBundle) -> Result<Dataset, String> {
    let inventory = from_snapshot(&b.snapshot)?;
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Ok(b.domino.clone()),
        kubernetes: SourceState::Ok(b.workloads.clone()),
        keycloak: SourceState::Ok(b.keycloak.clone()),
    };
    let policy = demo_policy();
    let categories = crate::plan::evaluate(&inventory, &data, &policy, b.now);
    let protections = crate::plan::evaluate::all_protections(&inventory, &data, &policy, b.now);
    let labels = crate::ops::load::labels(&inventory, Some(&b.domino), &protections);
    Ok(Dataset {
        sources: SourceKind::ALL.into_iter().map(|k| (k, SourceStatus::Ok)).collect(),
        labels,
        categories,
        protections,
        generated_at: b.now,
        inventory,
    })
}

/// The demo dataset: the bundled file for the default seed and size, otherwise a world
/// generated in memory (also offline).
pub fn demo_dataset(seed: u64, tags: usize) -> Result<Dataset, String> {
    if seed == BUNDLED_SEED && tags == BUNDLED_TAGS {
        let b: DemoBundle =
            serde_json::from_slice(BUNDLED).map_err(|e| format!("bundled assets/demo-world.json: {e}"))?;
        return dataset(&b);
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
        for c in &ds.categories {
            assert_eq!(c.status, CategoryStatus::Ok, "{}", c.id);
            if c.id.as_str() != "orphaned-references" {
                assert!(!c.candidates.is_empty(), "{}", c.id);
            }
        }
        assert!(!ds.labels.is_empty());
    }
}
