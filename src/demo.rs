//! A synthetic, deterministic Domino-like [`Dataset`] built in memory, for developing and
//! testing the TUI without any service: environment and model repositories with shared base
//! layers, revisions, a tag pair on one digest, a multi-arch index, broken tags, labels and
//! plausible categories; and a small storage-sourced one with untagged manifests. Pure: no
//! I/O, no clock (times derive from a fixed epoch).

use crate::dataset::{Dataset, SourceKind, SourceStatus, TagLabel};
use crate::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, ObjectId, Platform, TagId};
use crate::plan::category::broken_tags;
use crate::plan::{Candidate, CategoryId, CategoryResult, ProtectedTag};
use crate::world::splitmix;
use std::collections::{BTreeMap, HashMap};

/// The demo's "now" (2025-10-09); creation times are before it.
pub const DEMO_EPOCH: i64 = 1_760_000_000;
const DAY: i64 = 86_400;
const MIB: u64 = 1 << 20;
const ENV_REPO: &str = "dominodatalab/environment";
const MODEL_REPO: &str = "dominodatalab/model";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

const ENV_NAMES: [&str; 12] = [
    "Python 3.10 Data Science",
    "R 4.3 Tidyverse",
    "Spark 3.5 Cluster",
    "PyTorch 2.3 GPU",
    "TensorFlow 2.15",
    "Jupyter Minimal",
    "SAS Analytics",
    "Julia 1.10",
    "Ray 2.9",
    "Dask Workers",
    "VS Code Remote",
    "H2O AutoML",
];
const MODEL_NAMES: [&str; 8] = [
    "churn-predictor",
    "fraud-score",
    "demand-forecast",
    "nlp-intents",
    "price-elasticity",
    "image-tagger",
    "ltv",
    "risk-rating",
];
const OWNERS: [&str; 8] = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
/// Owners whose Keycloak account is deactivated in the demo world.
const DEACTIVATED: [&str; 2] = ["dave", "erin"];

/// Builds about `tags` tags (at least a few dozen) from `seed`; equal inputs give equal datasets.
pub fn demo_dataset(seed: u64, tags: usize) -> Dataset {
    let mut w = World::new(seed);
    let env_tags = tags * 7 / 10;
    let model_tags = tags.saturating_sub(env_tags).saturating_sub(6).max(4);
    w.environments(env_tags.max(12));
    w.models(model_tags);
    w.oddities();
    w.finish()
}

#[derive(Debug, Clone, Copy)]
enum Owner {
    Env(usize),
    Model(usize),
    Nobody,
}

/// One environment or model as the demo's Mongo would describe it.
struct Object {
    name: String,
    owner: &'static str,
    archived: bool,
    unused: bool,
}

struct World {
    rng: u64,
    b: InventoryBuilder,
    bases: Vec<Blob>,
    envs: Vec<Object>,
    models: Vec<Object>,
    /// (repo, tag name, whose tag) in creation order; resolved to ids in `finish`.
    pending: Vec<(String, String, Owner)>,
    labels: HashMap<(String, String), TagLabel>,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut w = World {
            rng: seed,
            b: InventoryBuilder::new("registry.demo.local:5000"),
            bases: vec![],
            envs: vec![],
            models: vec![],
            pending: vec![],
            labels: HashMap::new(),
        };
        for i in 0..6 {
            let size = (300 + 250 * i) * MIB + w.next() % MIB;
            let blob = w.blob(size);
            w.bases.push(blob);
        }
        w
    }

    fn next(&mut self) -> u64 {
        self.rng = splitmix(self.rng);
        self.rng
    }

    fn fake_digest(&mut self) -> String {
        let (a, b, c, d) = (self.next(), self.next(), self.next(), self.next());
        format!("sha256:{a:016x}{b:016x}{c:016x}{d:016x}")
    }

    fn blob(&mut self, size: u64) -> Blob {
        let name = self.fake_digest();
        Blob {
            digest: self.b.digest(&name),
            size,
        }
    }

    /// A blob of `min` to `min + span` MiB.
    fn random_blob(&mut self, min: u64, span: u64) -> Blob {
        let size = (min + self.next() % span) * MIB;
        self.blob(size)
    }

    fn object_id(&mut self) -> ObjectId {
        let v = self.next().to_be_bytes();
        let w = self.next().to_be_bytes();
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&v);
        out[8..].copy_from_slice(&w[..4]);
        ObjectId::from_bytes(out)
    }

    /// An image manifest over `layers`, created `age_days` before the epoch.
    fn image(&mut self, layers: Vec<Blob>, age_days: i64) -> crate::model::DigestId {
        let size = 4_000 + self.next() % 3_000;
        let config = self.blob(size);
        let digest_name = self.fake_digest();
        let digest = self.b.digest(&digest_name);
        let size = 500 + 90 * layers.len() as u64;
        self.b.manifest(Manifest {
            digest,
            media_type: DOCKER_MANIFEST.into(),
            size,
            kind: ManifestKind::Image { config, layers },
            created: Some(DEMO_EPOCH - age_days * DAY - (self.rng % DAY as u64) as i64),
        });
        digest
    }

    fn environments(&mut self, count: usize) {
        let repo = self.b.repo(ENV_REPO);
        let mut made = 0;
        let mut e = 0;
        while made < count {
            let id = self.object_id();
            let owner = OWNERS[(self.next() % OWNERS.len() as u64) as usize];
            let name = format!("{} #{}", ENV_NAMES[e % ENV_NAMES.len()], e / ENV_NAMES.len() + 1);
            let revisions = 1 + (self.next() % 14) as usize;
            let base = self.bases[e % self.bases.len()];
            let env_layer = self.random_blob(40, 400);
            let roll = self.next() % 100;
            let obj = Object {
                name,
                owner,
                archived: roll < 12 || e % 7 == 1,
                unused: (12..30).contains(&roll) || e % 7 == 2,
            };
            for rev in 1..=revisions {
                let age = ((revisions - rev) as i64) * 9 + 2 + (e as i64 % 30);
                let top = self.random_blob(5, 250);
                let tag = format!("{id}-{rev}");
                let digest = if e == 0 && rev == revisions {
                    self.multi_arch(base, env_layer, age)
                } else {
                    self.image(vec![base, env_layer, top], age)
                };
                self.b.tag(repo, &tag, digest);
                self.push_tag(ENV_REPO, &tag, &obj, Owner::Env(e), rev == revisions);
                if e % 40 == 3 && rev == revisions {
                    // Two tags on one digest: a re-tag of the latest revision.
                    let alias = format!("{id}-{rev}-retag");
                    self.b.tag(repo, &alias, digest);
                    self.push_tag(ENV_REPO, &alias, &obj, Owner::Env(e), true);
                    made += 1;
                }
                made += 1;
            }
            self.envs.push(obj);
            e += 1;
        }
    }

    /// The multi-arch index: amd64 and arm64 children with their own top layers.
    fn multi_arch(&mut self, base: Blob, env_layer: Blob, age: i64) -> crate::model::DigestId {
        let mut children = vec![];
        for arch in ["amd64", "arm64"] {
            let top = self.blob(80 * MIB);
            let child = self.image(vec![base, env_layer, top], age);
            let size = 700;
            let platform = Platform {
                os: "linux".into(),
                architecture: arch.into(),
                variant: None,
            };
            children.push((Blob { digest: child, size }, Some(platform)));
        }
        let name = self.fake_digest();
        let digest = self.b.digest(&name);
        self.b.manifest(Manifest {
            digest,
            media_type: OCI_INDEX.into(),
            size: 900,
            kind: ManifestKind::Index { children },
            created: None,
        });
        digest
    }

    fn models(&mut self, count: usize) {
        let repo = self.b.repo(MODEL_REPO);
        let mut made = 0;
        let mut m = 0;
        while made < count {
            let id = self.object_id();
            let owner = OWNERS[(self.next() % OWNERS.len() as u64) as usize];
            let name = format!("{} #{}", MODEL_NAMES[m % MODEL_NAMES.len()], m / MODEL_NAMES.len() + 1);
            let versions = 1 + (self.next() % 6) as usize;
            let base = self.bases[(m + 2) % self.bases.len()];
            let roll = self.next() % 100;
            let obj = Object {
                name,
                owner,
                archived: roll < 15 || m % 5 == 1,
                unused: false,
            };
            for v in 1..=versions {
                let age = ((versions - v) as i64) * 20 + 1 + (m as i64 % 40);
                let artefact = self.random_blob(20, 900);
                let digest = self.image(vec![base, artefact], age);
                let ts = DEMO_EPOCH - age * DAY;
                let tag = format!("{id}-v{v}-{ts}_{:06x}", self.next() % 0xff_ffff);
                self.b.tag(repo, &tag, digest);
                self.push_tag(MODEL_REPO, &tag, &obj, Owner::Model(m), v == versions);
                made += 1;
            }
            self.models.push(obj);
            m += 1;
        }
    }

    /// Broken tags and an unreferenced tag nobody in Mongo knows.
    fn oddities(&mut self) {
        let repo = self.b.repo(ENV_REPO);
        let missing_name = self.fake_digest();
        let missing = self.b.digest(&missing_name);
        let id = self.object_id();
        self.b.tag(repo, &format!("{id}-1"), missing);
        let id = self.object_id();
        self.b
            .broken_tag(repo, &format!("{id}-2"), None, "manifest unknown (HTTP 404)");
        for _ in 0..4 {
            let id = self.object_id();
            let layer = self.random_blob(30, 200);
            let base = self.bases[0];
            let digest = self.image(vec![base, layer], 200);
            let tag = format!("{id}-1");
            self.b.tag(repo, &tag, digest);
            self.pending.push((ENV_REPO.into(), tag, Owner::Nobody));
        }
    }

    fn push_tag(&mut self, repo: &str, tag: &str, obj: &Object, owner: Owner, latest: bool) {
        let kind = if matches!(owner, Owner::Model(_)) {
            "model"
        } else {
            "environment"
        };
        self.pending.push((repo.into(), tag.into(), owner));
        let mut evidence = vec![];
        let roll = self.next() % 100;
        if latest && (roll < 30 || matches!(owner, Owner::Env(e) if e % 7 == 1)) {
            evidence.push(format!(
                "running pod run-{:x} in namespace domino-compute",
                self.next() % 0xfffff
            ));
        } else if roll < 50 {
            evidence.push(format!("last used by a run {} days ago", 3 + self.next() % 200));
        }
        if obj.archived {
            evidence.push(format!("{kind} archived"));
        }
        let label = TagLabel {
            group: Some(obj.name.clone()),
            owner: Some(obj.owner.to_string()),
            evidence,
            ..TagLabel::default()
        };
        self.labels.insert((repo.to_string(), tag.to_string()), label);
    }

    fn finish(self) -> Dataset {
        let World {
            b,
            envs,
            models,
            pending,
            labels,
            ..
        } = self;
        let inv = b.finish();
        let resolve = |repo: &str, tag: &str| inv.find_tag(repo, tag);
        let mut labels_by_id = HashMap::new();
        for ((repo, tag), label) in labels {
            if let Some(id) = resolve(&repo, &tag) {
                labels_by_id.insert(id, label);
            }
        }
        let mut cats = Categories::default();
        let mut env_revisions: BTreeMap<usize, Vec<TagId>> = BTreeMap::new();
        for (repo, tag, owner) in &pending {
            let Some(id) = resolve(repo, tag) else {
                continue;
            };
            if inv.tag(id).revision().is_none() {
                continue;
            }
            let running = labels_by_id
                .get(&id)
                .is_some_and(|l| l.evidence.iter().any(|e| e.starts_with("running")));
            match *owner {
                Owner::Nobody => {
                    let reason = "no environment or model in Mongo has this id".to_string();
                    cats.add(CategoryId::UnreferencedTags, id, &inv, reason, running);
                }
                Owner::Env(e) => {
                    env_categories(&mut cats, &envs[e], id, &inv, running);
                    if !inv.tag(id).name.ends_with("-retag") {
                        env_revisions.entry(e).or_default().push(id);
                    }
                }
                Owner::Model(m) if models[m].archived => {
                    let reason = format!("model {:?} is archived", models[m].name);
                    cats.add(CategoryId::ArchivedModels, id, &inv, reason, running);
                }
                Owner::Model(_) => {}
            }
        }
        // Old revisions: all but the newest five revisions of each environment.
        for tags in env_revisions.values() {
            for (i, id) in tags.iter().enumerate() {
                if i + 5 < tags.len() {
                    let keep = tags.len() - i - 1;
                    let running = labels_by_id
                        .get(id)
                        .is_some_and(|l| l.evidence.iter().any(|e| e.starts_with("running")));
                    cats.add(
                        CategoryId::OldRevisions,
                        *id,
                        &inv,
                        format!("{keep} newer revisions exist (keep 5)"),
                        running,
                    );
                }
            }
        }
        let mut categories = cats.into_results();
        categories.push(CategoryResult::unavailable(
            CategoryId::OrphanedReferences,
            "needs Mongo cleanup enabled (--mongo-cleanup)",
        ));
        categories.push(broken_tags(&inv));
        categories.sort_by_key(|c| c.id);
        let sources = SourceKind::ALL.into_iter().map(|k| (k, SourceStatus::Ok)).collect();
        let mut protections: std::collections::BTreeMap<TagId, Vec<String>> = Default::default();
        for c in &categories {
            for p in &c.protected {
                protections
                    .entry(p.tag)
                    .or_default()
                    .extend(p.protected_by.iter().cloned());
            }
        }
        Dataset {
            inventory: inv,
            sources,
            categories,
            labels: labels_by_id,
            protections,
            generated_at: DEMO_EPOCH,
            mongo_collections: Vec::new(),
        }
    }
}

fn env_categories(cats: &mut Categories, env: &Object, id: TagId, inv: &Inventory, running: bool) {
    if env.archived {
        cats.add(
            CategoryId::ArchivedEnvironments,
            id,
            inv,
            format!("environment {:?} is archived", env.name),
            running,
        );
    }
    if env.unused {
        cats.add(
            CategoryId::UnusedEnvironments,
            id,
            inv,
            "no run, workspace or app used it in 90 days".into(),
            running,
        );
    }
    if DEACTIVATED.contains(&env.owner) {
        let reason = format!("owner {} is deactivated in Keycloak", env.owner);
        cats.add(CategoryId::DeactivatedOwnerEnvironments, id, inv, reason, running);
    }
}

#[derive(Default)]
struct Categories {
    map: BTreeMap<CategoryId, CategoryResult>,
}

impl Categories {
    fn add(&mut self, cat: CategoryId, tag: TagId, inv: &Inventory, reason: String, running: bool) {
        let entry = self
            .map
            .entry(cat)
            .or_insert_with(|| CategoryResult::new(cat, crate::plan::CategoryStatus::Ok));
        if running {
            entry.protected.push(ProtectedTag {
                tag,
                protected_by: vec!["in use by a running pod (kubernetes)".into()],
            });
        } else {
            let object_id = ObjectId::prefix_of_tag(&inv.tag(tag).name);
            entry.candidates.push(Candidate {
                tag,
                object_id,
                reasons: vec![reason],
            });
        }
    }

    fn into_results(self) -> Vec<CategoryResult> {
        let mut out: Vec<CategoryResult> = self.map.into_values().collect();
        for id in CategoryId::ALL {
            let computed = matches!(id, CategoryId::OrphanedReferences | CategoryId::BrokenTags);
            if !computed && !out.iter().any(|c| c.id == id) {
                out.push(CategoryResult::new(id, crate::plan::CategoryStatus::Ok));
            }
        }
        out
    }
}

/// The storage demo's "now".
pub const STORAGE_DEMO_EPOCH: i64 = 1_800_000_000;

/// A storage-sourced dataset for the untagged-manifests views, one repository: tag "kept" on
/// image `k`; untagged images `a` and `b` pushed a day ago (candidates) and `p` pushed a
/// minute ago (in its grace period); when `a_tagged_again`, tag "back" points at `a` (it is no
/// longer untagged).
pub fn storage_demo_dataset(a_tagged_again: bool) -> Dataset {
    use crate::plan::{Policy, SourceState, SourcesData};
    let mut b = InventoryBuilder::new("registry.test:5000");
    b.from_storage();
    let repo = b.repo(ENV_REPO);
    let images = [('k', 1u64), ('a', 2), ('b', 3), ('p', 4)];
    for (c, n) in images {
        let digest = b.digest(&format!("sha256:{}", c.to_string().repeat(64)));
        let config = Blob {
            digest: b.digest(&format!("sha256:{}", n.to_string().repeat(64))),
            size: 1,
        };
        let layer = Blob {
            digest: b.digest(&format!("sha256:{}", (n + 4).to_string().repeat(64))),
            size: n * 1000,
        };
        b.manifest(Manifest {
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 10,
            kind: ManifestKind::Image {
                config,
                layers: vec![layer],
            },
            created: Some(0),
        });
    }
    let d = |b: &mut InventoryBuilder, c: char| b.digest(&format!("sha256:{}", c.to_string().repeat(64)));
    let k = d(&mut b, 'k');
    b.tag(repo, "kept", k);
    b.tag_pushed(Some(STORAGE_DEMO_EPOCH - DAY));
    if a_tagged_again {
        let a = d(&mut b, 'a');
        b.tag(repo, "back", a);
        b.tag_pushed(Some(STORAGE_DEMO_EPOCH - DAY));
    }
    for (c, _) in images {
        let digest = d(&mut b, c);
        let age = if c == 'p' { 60 } else { DAY };
        b.revision_link(repo, digest, Some(STORAGE_DEMO_EPOCH - age));
    }
    let inventory = b.finish();
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Disabled,
        kubernetes: SourceState::Disabled,
        keycloak: SourceState::Disabled,
    };
    let policy = Policy::default();
    Dataset {
        categories: crate::plan::evaluate(&inventory, &data, &policy, STORAGE_DEMO_EPOCH),
        protections: crate::plan::evaluate::all_protections(&inventory, &data, &policy, STORAGE_DEMO_EPOCH),
        inventory,
        generated_at: STORAGE_DEMO_EPOCH,
        ..Dataset::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_dataset_is_deterministic_and_has_every_feature() {
        let a = demo_dataset(42, 300);
        let b = demo_dataset(42, 300);
        assert_eq!(a.inventory.tags, b.inventory.tags);
        let inv = &a.inventory;
        assert!(inv.tags.len() >= 300, "{}", inv.tags.len());
        assert!(
            inv.revisions.iter().any(|r| r.tags.len() == 2),
            "two tags on one digest"
        );
        assert!(inv.manifests().iter().any(|m| m.is_index()), "a multi-arch index");
        assert!(
            inv.tags.iter().filter(|t| t.revision().is_none()).count() >= 2,
            "broken tags"
        );
        assert!(
            a.categories.iter().all(|c| !c.candidates.is_empty()
                || matches!(c.id, CategoryId::OrphanedReferences | CategoryId::UntaggedManifests)),
            "{:?}",
            a.categories
                .iter()
                .map(|c| (c.id, c.candidates.len()))
                .collect::<Vec<_>>()
        );
        assert!(a.categories.iter().any(|c| !c.protected.is_empty()));
        assert_eq!(a.categories.len(), CategoryId::ALL.len());
    }

    #[test]
    fn removing_tags_keeps_labels_and_categories_consistent() {
        let a = demo_dataset(7, 200);
        let gone: std::collections::HashSet<TagId> = a.categories[0].candidates.iter().map(|c| c.tag).collect();
        let b = crate::tui::demo_world::without_tags(&a, &gone);
        assert_eq!(b.inventory.tags.len(), a.inventory.tags.len() - gone.len());
        assert!(b.categories[0].candidates.is_empty());
        assert!(b.labels.len() >= a.labels.len() - gone.len());
    }
}
