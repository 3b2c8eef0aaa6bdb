//! The one set of protections every category obeys: a tag listed here is never a candidate.
//! Sources: running or scheduled workloads (by repository:tag and by digest), Mongo usage,
//! active revisions of live environments something uses, `protect` patterns, revisions the `--ids` file keeps
//! (`<envId> <rev> …`), and the push grace period.
//! Category-relative rules (clone sources of kept revisions, digest siblings) live in
//! `evaluate.rs` because they depend on what the category keeps.

use super::lookup::TagLookup;
use super::policy::{Policy, STORAGE_CLOCK_ALLOWANCE_SECS};
use super::usage::UsageFacts;
use crate::model::domino::DominoIndex;
use crate::model::image::domino_tag;
use crate::model::workloads::Workloads;
use crate::model::{ImageKind, Inventory, RevId, TagId};
use std::collections::{BTreeMap, HashMap};

/// Every protection reason per tag.
#[derive(Debug, Default)]
pub struct Protections {
    pub by_tag: BTreeMap<TagId, Vec<String>>,
    /// Untagged revisions (storage inventories) kept by a pod using them by digest, a protect
    /// pattern on `repository@digest`, or the grace period on their push time.
    pub by_rev: BTreeMap<RevId, Vec<String>>,
}

impl Protections {
    pub fn reasons(&self, tag: TagId) -> Option<&Vec<String>> {
        self.by_tag.get(&tag)
    }

    pub fn add(&mut self, tag: TagId, why: &str) {
        let reasons = self.by_tag.entry(tag).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }

    pub fn add_rev(&mut self, rev: RevId, why: &str) {
        let reasons = self.by_rev.entry(rev).or_default();
        if !reasons.iter().any(|r| r == why) {
            reasons.push(why.to_string());
        }
    }
}

/// Inputs the protections read; `None` sources protect nothing (the caller decides whether
/// that is allowed — see `evaluate`).
pub struct ProtectionInputs<'a> {
    pub inv: &'a Inventory,
    pub lookup: &'a TagLookup<'a>,
    pub mongo: Option<(&'a DominoIndex<'a>, &'a UsageFacts)>,
    pub workloads: Option<&'a Workloads>,
    pub policy: &'a Policy,
    pub now: i64,
}

pub fn protections(p: &ProtectionInputs) -> Protections {
    let mut out = Protections::default();
    if let Some(w) = p.workloads {
        workloads(&mut out, p.inv, p.lookup, w);
    }
    if let Some((ix, facts)) = p.mongo {
        mongo(&mut out, p.lookup, ix, facts);
    }
    for tag in p.inv.tag_ids() {
        let name = p.inv.tag_ref(tag);
        if let Some(re) = p.policy.protect.iter().find(|re| re.is_match(&name)) {
            out.add(tag, &format!("matches protect pattern '{}'", re.as_str()));
        }
        // The shell tool's environments file: `<envId> <rev> …` keeps those revisions' tags.
        if let Some(f) = &p.policy.only_ids
            && p.inv.repo(p.inv.tag(tag).repo).kind == ImageKind::Environment
            && let Some((env, rev, line)) = f.kept_revision(&p.inv.domino_tag(tag))
        {
            out.add(
                tag,
                &format!(
                    "revision {rev} of environment {env} is kept by the ids file ({}:{line})",
                    f.file
                ),
            );
        }
        // A tag whose creation time is unknown (config not read, broken tag) gets no grace:
        // the grace period guards fresh pushes, and an unreadable image is not one we can date.
        // From storage the push time (the tag link's modification time) is known; over the
        // HTTP API only the image's build time (config `created`) is.
        let t = p.inv.tag(tag);
        let basis = match t.pushed {
            Some(pushed) => Some(pushed),
            None => t.revision().and_then(|r| p.inv.created(r)),
        };
        if let Some(age) = basis
            // Saturating: a time from a snapshot file can be any i64.
            .map(|c| p.now.saturating_sub(c))
            .filter(|age| *age < grace_limit(p.policy, t.pushed.is_some()))
        {
            out.add(tag, &grace_reason(p.policy, age, t.pushed.is_some()));
        }
    }
    for rev in p.inv.untagged_revisions() {
        let r = p.inv.revision(rev);
        let name = format!("{}@{}", p.inv.repo(r.repo).name, p.inv.digests.name(r.manifest));
        if let Some(re) = p.policy.protect.iter().find(|re| re.is_match(&name)) {
            out.add_rev(rev, &format!("matches protect pattern '{}'", re.as_str()));
        }
        // No push time (a hand-made snapshot): the build time, as for tags over HTTP.
        let (basis, pushed) = match r.pushed {
            Some(t) => (Some(t), true),
            None => (p.inv.created(rev), false),
        };
        match basis.map(|c| p.now.saturating_sub(c)) {
            Some(age) if age < grace_limit(p.policy, pushed) => out.add_rev(rev, &grace_reason(p.policy, age, pushed)),
            Some(_) => {}
            // Neither time known: it cannot be shown to be older than the grace period.
            None => out.add_rev(rev, "push time unknown (grace period)"),
        }
    }
    out
}

/// The age below which the grace period protects: a push time from storage gets the clock
/// allowance on top (see [`STORAGE_CLOCK_ALLOWANCE_SECS`]), unless the grace period is off
/// (0 hours: the operator asked for none).
fn grace_limit(policy: &Policy, pushed: bool) -> i64 {
    let allowance = if pushed && policy.grace_period_secs > 0 {
        STORAGE_CLOCK_ALLOWANCE_SECS
    } else {
        0
    };
    policy.grace_period_secs.saturating_add(allowance)
}

fn grace_reason(policy: &Policy, age: i64, pushed: bool) -> String {
    let mins = policy.grace_period_secs / 60;
    let age = age.max(0) / 60;
    if pushed {
        let skew = STORAGE_CLOCK_ALLOWANCE_SECS / 60;
        format!("pushed {age} minutes ago (grace period {mins} minutes, plus {skew} for the storage clock)")
    } else {
        format!("built {age} minutes ago (grace period {mins} minutes, by image creation time)")
    }
}

/// Pods and templates protect by `repository:tag` and by digest; a digest protects every tag
/// on that manifest, and on any index that lists it, in that repository. A Domino image named
/// under another host or path (an old registry name, a mirror) protects by its tag name in every
/// scanned repository of its kind, legacy layout included: protecting too much is the safe
/// mistake, and candidates are found by name too.
fn workloads(out: &mut Protections, inv: &Inventory, lookup: &TagLookup, w: &Workloads) {
    let mut by_digest: HashMap<&str, Vec<RevId>> = HashMap::new();
    for rev in inv.rev_ids() {
        by_digest
            .entry(inv.digests.name(inv.revision(rev).manifest))
            .or_default()
            .push(rev);
    }
    // Broken tags whose digest is known have no revision: a pod pinned to that digest (or to a
    // child of that index) protects them too, or a planned broken tag could go while it runs.
    let mut broken_by_digest: HashMap<&str, Vec<TagId>> = HashMap::new();
    for t in inv.tag_ids() {
        if inv.tag(t).revision().is_some() {
            continue;
        }
        let Some(d) = inv.tag_digest(t) else { continue };
        broken_by_digest.entry(inv.digests.name(d)).or_default().push(t);
        if let Some(crate::model::ManifestKind::Index { children }) = inv.manifest(d).map(|m| &m.kind) {
            for (c, _) in children {
                broken_by_digest.entry(inv.digests.name(c.digest)).or_default().push(t);
            }
        }
    }
    for wi in &w.images {
        let why = format!("used by {}", wi.evidence);
        if let Some(tag) = &wi.image.tag {
            if let Some(id) = inv.find_tag(&wi.image.repository, tag) {
                out.add(id, &why);
            }
            let kind = ImageKind::of_repository(&wi.image.repository);
            if kind != ImageKind::Other {
                for id in lookup.named(kind, &domino_tag(&wi.image.repository, tag)) {
                    out.add(id, &why);
                }
            }
        }
        let Some(digest) = &wi.image.digest else {
            continue;
        };
        for rev in by_digest.get(digest.as_str()).into_iter().flatten() {
            let r = inv.revision(*rev);
            if !wi.image.names_repository(&inv.repo(r.repo).name) {
                continue;
            }
            // The revision and every index above it, however deeply nested: deleting any of
            // them by digest takes the pinned manifest with it.
            let mut above = vec![*rev];
            let mut i = 0;
            while i < above.len() {
                for p in &inv.revision(above[i]).parents {
                    if !above.contains(p) {
                        above.push(*p);
                    }
                }
                i += 1;
            }
            for u in above {
                let ur = inv.revision(u);
                for tag in &ur.tags {
                    out.add(*tag, &format!("{why} (by digest {digest})"));
                }
                // An untagged revision (storage), or an untagged index above it.
                if ur.untagged {
                    out.add_rev(u, &format!("{why} (by digest {digest})"));
                }
            }
        }
        for t in broken_by_digest.get(digest.as_str()).into_iter().flatten() {
            if wi.image.names_repository(&inv.repo(inv.tag(*t).repo).name) {
                out.add(*t, &format!("{why} (by digest {digest})"));
            }
        }
    }
}

/// Usage records, and the active revision of every used environment that is not archived.
fn mongo(out: &mut Protections, lookup: &TagLookup, ix: &DominoIndex, facts: &UsageFacts) {
    for (rev, reasons) in &facts.revisions {
        let Some(r) = ix.revisions.get(rev) else {
            continue;
        };
        for tag in lookup.of_revision_named(r) {
            reasons.iter().for_each(|why| out.add(tag, why));
        }
    }
    for (version, reasons) in &facts.versions {
        let Some(v) = ix.versions.get(version) else {
            continue;
        };
        for tag in lookup.of_version(v) {
            reasons.iter().for_each(|why| out.add(tag, why));
        }
    }
    // The active revision of a live environment that something uses: what Domino starts when
    // that use runs again. An environment nothing uses goes whole, active revision included (the
    // original's unused-environments semantics); old-revisions keeps every active revision by
    // its own rule, whatever the usage.
    for env in ix
        .data
        .environments
        .iter()
        .filter(|e| !e.archived && facts.environments.contains_key(&e.id))
    {
        let Some(r) = env.active_revision.and_then(|a| ix.revisions.get(&a)) else {
            continue;
        };
        for tag in lookup.of_revision_named(r) {
            out.add(tag, &format!("active revision of {}", ix.env_label(env.id)));
        }
    }
}

#[cfg(test)]
mod nested_tests {
    use super::*;
    use crate::model::inventory::{Blob, InventoryBuilder, Manifest, ManifestKind};
    use crate::model::workloads::{Evidence, ImageRef, WorkloadImage};

    /// A pod pinned to an image by digest keeps every index above it, however deeply nested:
    /// `outer` → `inner` → the image. Deleting `outer` by digest would take the image with it.
    #[test]
    fn a_pod_pinned_by_digest_protects_the_tag_of_an_index_two_levels_up() {
        let mut b = InventoryBuilder::new("registry:5000");
        let repo = b.repo("dominodatalab/environment");
        let blob = |b: &mut InventoryBuilder, d: &str, size| Blob {
            digest: b.digest(d),
            size,
        };
        let (cfg, layer) = (
            blob(&mut b, &format!("sha256:{}", "c".repeat(64)), 10),
            blob(&mut b, &format!("sha256:{}", "1".repeat(64)), 100),
        );
        let image = format!("sha256:{}", "a".repeat(64));
        let inner = format!("sha256:{}", "b".repeat(64));
        let outer = format!("sha256:{}", "d".repeat(64));
        let manifest = |b: &mut InventoryBuilder, d: &str, kind| Manifest {
            digest: b.digest(d),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 300,
            kind,
            created: Some(0),
        };
        let m = manifest(
            &mut b,
            &image,
            ManifestKind::Image {
                config: cfg,
                layers: vec![layer],
            },
        );
        b.manifest(m);
        let child = blob(&mut b, &image, 300);
        let m = manifest(
            &mut b,
            &inner,
            ManifestKind::Index {
                children: vec![(child, None)],
            },
        );
        b.manifest(m);
        let child = blob(&mut b, &inner, 300);
        let m = manifest(
            &mut b,
            &outer,
            ManifestKind::Index {
                children: vec![(child, None)],
            },
        );
        b.manifest(m);
        let d = b.digest(&outer);
        b.tag(repo, "outer", d);
        let inv = b.finish();
        let lookup = TagLookup::new(&inv);
        let w = Workloads {
            images: vec![WorkloadImage {
                image: ImageRef {
                    host: None,
                    repository: "dominodatalab/environment".into(),
                    tag: None,
                    digest: Some(image.clone()),
                },
                evidence: Evidence {
                    namespace: "domino-compute".into(),
                    kind: "Pod".into(),
                    name: "run-1".into(),
                    container: "main".into(),
                    context: None,
                },
            }],
        };
        let mut out = Protections::default();
        workloads(&mut out, &inv, &lookup, &w);
        let outer_tag = inv.find_tag("dominodatalab/environment", "outer").unwrap();
        let why = out.reasons(outer_tag).expect("the outer index's tag is protected");
        assert!(why[0].contains("(by digest sha256:aaaa"), "{why:?}");
    }
}
