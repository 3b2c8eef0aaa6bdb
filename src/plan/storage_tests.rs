//! Rules that only a storage inventory (untagged revisions, revision links of broken tags)
//! exercises: the untagged-manifests category and the plan and re-check of broken tags.

use super::categories::untagged_manifests;
use super::category::CategoryId;
use super::deletion;
use super::protection::Protections;
use super::recheck::{Membership, Verdict, recheck};
use super::space::SpaceEngine;
use crate::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind};
use std::collections::HashMap;

const R: &str = "dominodatalab/environment";
const OTHER: &str = "dominodatalab/model";

fn d(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn image(b: &mut InventoryBuilder, c: char, config: char, layer: char) {
    let digest = b.digest(&d(c));
    let config = Blob {
        digest: b.digest(&d(config)),
        size: 1,
    };
    let layer = Blob {
        digest: b.digest(&d(layer)),
        size: 1000,
    };
    b.manifest(Manifest {
        digest,
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        size: 10,
        kind: ManifestKind::Image {
            config,
            layers: vec![layer],
        },
        created: None,
    });
}

/// Repository `R`: tag "multi" on index `f` whose own manifest cannot be read (when
/// `unreadable_index`; else it is readable), over images `a` and `b`, whose revision links
/// are in storage; repository `OTHER`: image `e`, untagged.
fn index_world(unreadable_index: bool) -> Inventory {
    let mut b = InventoryBuilder::new("t");
    b.from_storage();
    let repo = b.repo(R);
    let other = b.repo(OTHER);
    image(&mut b, 'a', '1', '2');
    image(&mut b, 'b', '3', '4');
    image(&mut b, 'e', '5', '6');
    let idx = b.digest(&d('f'));
    if unreadable_index {
        b.broken_tag(repo, "multi", Some(idx), "manifest blob of sha256:fff… is missing");
    } else {
        let children = ['a', 'b']
            .iter()
            .map(|c| {
                let digest = b.digest(&d(*c));
                (Blob { digest, size: 10 }, None)
            })
            .collect();
        b.manifest(Manifest {
            digest: idx,
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 10,
            kind: ManifestKind::Index { children },
            created: None,
        });
        b.tag(repo, "multi", idx);
    }
    for c in ['a', 'b'] {
        let digest = b.digest(&d(c));
        b.revision_link(repo, digest, Some(0));
    }
    let e = b.digest(&d('e'));
    b.revision_link(other, e, Some(0));
    b.finish()
}

fn candidates(inv: &Inventory) -> Vec<String> {
    let out = untagged_manifests(inv, &Protections::default());
    let mut v: Vec<String> = out
        .revisions
        .iter()
        .map(|c| {
            let r = inv.revision(c.rev);
            format!("{}@{}", inv.repo(r.repo).name, &inv.digests.name(r.manifest)[7..8])
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_children_of_a_tagged_index_whose_manifest_is_unreadable_are_not_proposed_as_untagged() {
    let inv = index_world(true);
    // Only the other repository's untagged manifest is a candidate; `a` and `b` may be the
    // children of "multi" (its body is unknown), so they are protected with that reason.
    assert_eq!(candidates(&inv), vec![format!("{OTHER}@e")]);
    let out = untagged_manifests(&inv, &Protections::default());
    assert_eq!(out.protected_revisions.len(), 2, "{:?}", out.protected_revisions);
    for (_, why) in &out.protected_revisions {
        assert!(
            why.iter()
                .any(|w| w.contains("tag multi") && w.contains("index listing it")),
            "{why:?}"
        );
    }
    // Readable, the index lists them: not roots, so not untagged candidates either, and no
    // protection is needed; the other repository's manifest stays a candidate.
    let inv = index_world(false);
    assert_eq!(candidates(&inv), vec![format!("{OTHER}@e")]);
    assert!(
        untagged_manifests(&inv, &Protections::default())
            .protected_revisions
            .is_empty()
    );
}

#[test]
fn a_broken_image_tag_does_not_block_the_untagged_manifests_of_its_repository() {
    // Tag "cfg" on image `b` whose config is missing (the manifest was read: it lists no
    // child), untagged image `a` beside it: `a` stays a candidate.
    let mut b = InventoryBuilder::new("t");
    b.from_storage();
    let repo = b.repo(R);
    image(&mut b, 'a', '1', '2');
    image(&mut b, 'b', '3', '4');
    let (a, x) = (b.digest(&d('a')), b.digest(&d('b')));
    b.broken_tag(repo, "cfg", Some(x), "config blob sha256:333… is missing");
    b.revision_link(repo, a, Some(0));
    b.revision_link(repo, x, Some(0));
    let inv = b.finish();
    assert_eq!(candidates(&inv), vec![format!("{R}@a")]);
}

/// Tag "cfg" on image `b` whose config is missing, its revision link in storage (as every
/// manifest pushed has one), and, when `second`, tag "cfg2" on the same digest.
fn broken_world(second: bool) -> Inventory {
    let mut b = InventoryBuilder::new("t");
    b.from_storage();
    let repo = b.repo(R);
    image(&mut b, 'b', '3', '4');
    let x = b.digest(&d('b'));
    b.broken_tag(repo, "cfg", Some(x), "config blob sha256:333… is missing");
    if second {
        b.broken_tag(repo, "cfg2", Some(x), "config blob sha256:333… is missing");
    }
    b.revision_link(repo, x, Some(0));
    b.finish()
}

#[test]
fn under_storage_a_planned_broken_tag_is_deleted_by_digest_with_its_bytes() {
    let inv = broken_world(false);
    let cfg = inv.find_tag(R, "cfg").unwrap();
    let mut engine = SpaceEngine::new(&inv);
    let plan = deletion::build(
        &inv,
        &mut engine,
        &[(cfg, Some(CategoryId::BrokenTags))],
        "categories",
        "",
        0,
    );
    assert!(plan.excluded.is_empty(), "{:?}", plan.excluded);
    assert_eq!(plan.manifests.len(), 1, "{:?}", plan.manifests);
    let m = &plan.manifests[0];
    assert_eq!(
        (m.digest.as_str(), m.tags.as_slice()),
        (d('b').as_str(), &["cfg".to_string()][..])
    );
    // Its manifest, config and layer are freed by GC once it is gone.
    assert_eq!(plan.reclaimable_bytes, 10 + 1 + 1000);
    let broken: Membership = [(CategoryId::BrokenTags, [cfg].into_iter().collect())].into();
    assert_eq!(
        recheck(std::slice::from_ref(m), &inv, &HashMap::new(), &broken)[0],
        Verdict::Delete
    );
    // No longer a broken-tags candidate, protected, or another broken tag on the digest that
    // the plan does not hold: skipped.
    let none: Membership = [(CategoryId::BrokenTags, Default::default())].into();
    assert!(
        matches!(&recheck(std::slice::from_ref(m), &inv, &HashMap::new(), &none)[0], Verdict::Skip(r) if r.contains("no longer a candidate"))
    );
    let prot = [(cfg, vec!["a running pod".to_string()])].into();
    assert!(
        matches!(&recheck(std::slice::from_ref(m), &inv, &prot, &broken)[0], Verdict::Skip(r) if r.contains("protected now"))
    );
    let inv2 = broken_world(true);
    assert!(
        matches!(&recheck(std::slice::from_ref(m), &inv2, &HashMap::new(), &broken)[0], Verdict::Skip(r) if r.contains("cfg2"))
    );
}

#[test]
fn a_push_time_from_storage_gets_the_clock_allowance_on_top_of_the_grace_period() {
    use super::lookup::TagLookup;
    use super::policy::{Policy, STORAGE_CLOCK_ALLOWANCE_SECS};
    use super::protection::{ProtectionInputs, protections};
    // Untagged image `a` and tagged image `b`, both pushed at time 0 (storage link mtimes).
    let mut b = InventoryBuilder::new("t");
    b.from_storage();
    let repo = b.repo(R);
    image(&mut b, 'a', '1', '2');
    image(&mut b, 'b', '3', '4');
    let (a, x) = (b.digest(&d('a')), b.digest(&d('b')));
    b.tag(repo, "kept", x);
    b.tag_pushed(Some(0));
    b.revision_link(repo, a, Some(0));
    b.revision_link(repo, x, Some(0));
    let inv = b.finish();
    let policy = Policy::default();
    let lookup = TagLookup::new(&inv);
    let at = |now: i64| {
        protections(&ProtectionInputs {
            inv: &inv,
            lookup: &lookup,
            mongo: None,
            workloads: None,
            policy: &policy,
            now,
        })
    };
    let kept = inv.find_tag(R, "kept").unwrap();
    let untagged = inv.untagged_revisions().next().unwrap();
    // Past the grace period but inside the allowance: both still protected, saying why.
    let p = at(policy.grace_period_secs + STORAGE_CLOCK_ALLOWANCE_SECS - 1);
    let why = p.reasons(kept).expect("the tag is in its grace period");
    assert!(why[0].contains("plus 5 for the storage clock"), "{why:?}");
    assert!(p.by_rev.contains_key(&untagged), "{:?}", p.by_rev);
    // Past both: neither.
    let p = at(policy.grace_period_secs + STORAGE_CLOCK_ALLOWANCE_SECS);
    assert!(p.reasons(kept).is_none() && p.by_rev.is_empty(), "{p:?}");
    // A grace period of 0 (off) stays off: no allowance either.
    let off = Policy {
        grace_period_secs: 0,
        ..Policy::default()
    };
    let p = protections(&ProtectionInputs {
        inv: &inv,
        lookup: &lookup,
        mongo: None,
        workloads: None,
        policy: &off,
        now: 1,
    });
    assert!(p.reasons(kept).is_none() && p.by_rev.is_empty(), "{p:?}");
}
