use super::*;
use crate::model::Inventory;
use crate::plan::{CategoryId, CategoryStatus, Policy, SourceState, SourcesData, evaluate};
use crate::world::inventory;

fn small() -> World {
    generate(7, WorldSize::SMALL)
}

#[test]
fn equal_seeds_give_equal_worlds_and_other_seeds_differ() {
    let (a, b) = (small(), small());
    assert_eq!(a.tags, b.tags);
    assert_eq!(a.mongo, b.mongo);
    assert_eq!(a.domino, b.domino);
    assert_eq!(a.pods, b.pods);
    assert_eq!(a.expected, b.expected);
    let c = generate(8, WorldSize::SMALL);
    assert_ne!(a.tags, c.tags);
    assert_eq!(a.tags.len(), c.tags.len(), "the shape does not depend on the seed");
}

#[test]
fn a_small_world_has_about_a_hundred_small_tags_and_every_trap() {
    let w = small();
    assert!((100..200).contains(&w.tags.len()), "{}", w.tags.len());
    let inv = inventory("r", &w.tags, &w.broken, 1);
    let total: u64 = inv
        .manifests()
        .iter()
        .map(|m| match &m.kind {
            crate::model::ManifestKind::Image { layers, .. } => layers.iter().map(|l| l.size).sum(),
            _ => 0,
        })
        .sum();
    assert!(total < 20 << 20, "{total}");
    let d = &w.domino;
    assert!(d.environments.iter().any(|e| e.archived));
    assert!(d.environments.iter().any(|e| e.private));
    assert!(d.revisions.iter().any(|r| !r.built), "failed build");
    assert!(d.revisions.iter().any(|r| r.cloned_from.is_some()), "clone");
    assert!(d.models.iter().any(|m| m.archived));
    assert!(
        d.versions.iter().any(|v| v.slugs.iter().any(|s| s.len() == 24 + 3)),
        "short-form slug"
    );
    assert!(!d.usage.active_model_versions.is_empty(), "sagas");
    for coll in [
        "runs",
        "workspace",
        "projects",
        "scheduler_jobs",
        "organizations",
        "app_versions",
        "userPreferences",
        "sagas",
        "model_products",
        "builds",
    ] {
        assert!(w.mongo.get(coll).is_some_and(|v| !v.is_empty()), "{coll}");
    }
    assert!(
        w.pods
            .iter()
            .any(|p| p.containers.iter().any(|(_, i)| i.contains("@sha256:"))),
        "pod by digest"
    );
    assert!(
        w.tags.iter().any(|t| matches!(t.target, TagTarget::Index { .. })),
        "multi-arch"
    );
    let digests: Vec<String> = w.tags.iter().map(|t| tag_digest(&t.target)).collect();
    let unique: BTreeSet<&String> = digests.iter().collect();
    assert!(unique.len() < digests.len(), "two tags on one digest");
    assert!(!w.broken.is_empty());
    assert!(w.keycloak_users.iter().any(|u| !u.enabled && u.domino_id.is_some()));
    assert!(w.keycloak_users.iter().any(|u| u.domino_id.is_none()));
    assert_eq!(w.expected.orphans.len(), 2, "one revision and one model version");
    for (cat, tags) in &w.expected.candidates {
        if cat != "orphaned-references" {
            assert!(!tags.is_empty(), "{cat} has candidates");
        }
    }
}

fn names(inv: &Inventory, tags: impl Iterator<Item = crate::model::TagId>) -> BTreeSet<String> {
    tags.map(|t| inv.tag_ref(t)).collect()
}

/// The core, given the world as its sources would read it, answers the ground truth.
fn core_agrees(w: &World) {
    let inv = inventory(REGISTRY_HOST, &w.tags, &w.broken, 1);
    let data = SourcesData {
        registry: SourceState::Ok(()),
        mongo: SourceState::Ok(w.domino.clone()),
        kubernetes: SourceState::Ok(w.workloads("domino-compute")),
        keycloak: SourceState::Ok(w.keycloak_users.clone()),
    };
    let policy = Policy {
        keep_revisions: KEEP_REVISIONS,
        grace_period_secs: 0,
        ..Policy::default()
    };
    let results = evaluate(&inv, &data, &policy, w.now + 86_400);
    // untagged-manifests needs a storage inventory (tests/storage.rs); this one is the HTTP kind.
    for r in results.iter().filter(|r| r.id != CategoryId::UntaggedManifests) {
        assert_eq!(r.status, CategoryStatus::Ok, "{}", r.id);
        let got = names(&inv, r.candidates.iter().map(|c| c.tag));
        let want = &w.expected.candidates[r.id.as_str()];
        let missing: Vec<_> = want.difference(&got).collect();
        let extra: Vec<_> = got.difference(want).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: missing {missing:?}, extra {extra:?}",
            r.id
        );
    }
    for (cat, tag, why) in &w.expected.protected {
        let r = results.iter().find(|r| r.id.as_str() == cat).unwrap();
        let p = r
            .protected
            .iter()
            .find(|p| inv.tag_ref(p.tag) == *tag)
            .unwrap_or_else(|| panic!("{cat}: {tag} not protected"));
        assert!(
            p.protected_by.iter().any(|r| r.contains(why.as_str())),
            "{cat}: {tag}: {:?} lacks {why:?}",
            p.protected_by
        );
    }
    let orphaned = results.iter().find(|r| r.id.as_str() == "orphaned-references").unwrap();
    let got: BTreeSet<(String, String)> = orphaned
        .records
        .iter()
        .map(|r| (r.collection.to_string(), r.document_id.to_string()))
        .collect();
    assert_eq!(got, w.expected.orphans);
}

#[test]
fn the_core_answers_the_ground_truth_of_a_small_world() {
    core_agrees(&small());
}

#[test]
fn the_core_answers_the_ground_truth_of_other_seeds_and_sizes() {
    core_agrees(&generate(
        1,
        WorldSize {
            cycles: 1,
            revisions: 5,
            versions: 2,
        },
    ));
    core_agrees(&generate(
        99,
        WorldSize {
            cycles: 3,
            revisions: 4,
            versions: 4,
        },
    ));
}
