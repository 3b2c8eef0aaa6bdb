//! Re-checking a frozen plan against fresh data before anything is deleted: the plan file is
//! intact, unexpired and for this registry; and per manifest, every tag still points at the
//! planned digest, no tag outside the plan has appeared on it, and nothing protects it now.
//! Pure: the caller supplies the fresh inventory, the protections and `now`.

use super::deletion::PlanManifest;
use super::{CategoryId, CategoryResult, CategoryStatus};
use crate::model::{Inventory, TagId};
use std::collections::{BTreeSet, HashMap};

/// What to do with one planned manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delete,
    /// Not in the fresh scan. Absence from a scan is not proof (a repository that could not be
    /// listed, an untagged manifest): the executor counts it as done only when the registry
    /// confirms it is gone, and skips or fails it otherwise.
    AlreadyDeleted,
    Skip(String),
}

/// Verdicts for every planned manifest, in plan order.
/// `membership` is the fresh candidates of every *available* category ([`membership`]): a
/// manifest planned under categories is deleted only while one of its tags is still a
/// candidate of one of them (an environment un-archived since, an owner re-enabled, a source
/// now unavailable: skipped). A manifest selected explicitly (no categories) is not checked.
pub fn recheck(
    manifests: &[PlanManifest],
    fresh: &Inventory,
    protected: &HashMap<TagId, Vec<String>>,
    membership: &Membership,
) -> Vec<Verdict> {
    recheck_with(
        manifests,
        fresh,
        protected,
        membership,
        &GoneIndexes::new(),
        &UntaggedMembership::new(),
    )
}

/// The untagged-manifests candidates on fresh data, by (repository, digest): what an entry
/// with no tags must still be to be deleted (empty when the category is unavailable, e.g. over
/// the HTTP API).
pub type UntaggedMembership = std::collections::HashSet<(String, String)>;

/// [`UntaggedMembership`] from the fresh categories (protected revisions are not candidates).
pub fn untagged_membership(fresh: &Inventory, categories: &[CategoryResult]) -> UntaggedMembership {
    categories
        .iter()
        .filter(|c| c.status == CategoryStatus::Ok && c.id == CategoryId::UntaggedManifests)
        .flat_map(|c| c.revisions.iter())
        .map(|x| {
            let r = fresh.revision(x.rev);
            (
                fresh.repo(r.repo).name.clone(),
                fresh.digests.name(r.manifest).to_string(),
            )
        })
        .collect()
}

/// What planned indexes that are no longer in their repository listed, by index digest: the
/// child digests of a body whose SHA-256 is that digest (the caller verifies it; the delete run
/// takes it from the scan cache or from the same bytes in another repository). Only this lets
/// a re-run delete the `child_of` entries of an index an interrupted run already deleted.
pub type GoneIndexes = HashMap<String, Vec<String>>;

/// [`recheck`], with the verified bodies of planned indexes already gone (`gone`) and the
/// fresh untagged-manifests candidates (`untagged`).
pub fn recheck_with(
    manifests: &[PlanManifest],
    fresh: &Inventory,
    protected: &HashMap<TagId, Vec<String>>,
    membership: &Membership,
    gone: &GoneIndexes,
    untagged: &UntaggedMembership,
) -> Vec<Verdict> {
    let facts = Facts::new(fresh);
    let phase = phases(manifests, &planned_parents(manifests, fresh));
    manifests
        .iter()
        .zip(phase)
        .map(
            |(m, phase)| match verdict(m, manifests, fresh, &facts, protected, membership, gone, untagged) {
                // The executor never reaches it (it would wait for itself): say so now.
                Verdict::Delete if phase.is_none() => Verdict::Skip(
                    "the planned indexes it waits for wait for each other in a cycle (a hand-made plan); not deleting it"
                        .into(),
                ),
                v => v,
            },
        )
        .collect()
}

/// The executor phase of each planned manifest (`parents`: [`planned_parents`]): 0 when it
/// waits for nothing and is not a planned index child, 1 for a planned child without a
/// planned parent, else one more than its latest planned parent, so nested indexes go
/// outermost first. `None` when a cycle of planned parents is at or above it: it would wait
/// for ever, and is never deleted.
pub fn phases(manifests: &[PlanManifest], parents: &[Vec<usize>]) -> Vec<Option<usize>> {
    let n = manifests.len();
    let parents_of = |i: usize| parents.get(i).map_or(&[][..], Vec::as_slice);
    let mut waiting: Vec<usize> = (0..n).map(|i| parents_of(i).len()).collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        // An out-of-range parent never goes: whatever waits for it stays in no phase.
        for &p in parents_of(i).iter().filter(|p| **p < n) {
            children[p].push(i);
        }
    }
    let base = |i: usize| usize::from(manifests[i].child_of.is_some());
    let mut phase: Vec<Option<usize>> = vec![None; n];
    let mut at_least: Vec<usize> = (0..n).map(base).collect();
    let mut ready: Vec<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    while let Some(p) = ready.pop() {
        let this = at_least[p];
        phase[p] = Some(this);
        for &c in &children[p] {
            at_least[c] = at_least[c].max(this + 1);
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.push(c);
            }
        }
    }
    phase
}

/// Per available category, the tags that are its candidates.
pub type Membership = HashMap<CategoryId, std::collections::HashSet<TagId>>;

/// The candidates of every category whose status is Ok (an unavailable one has none).
pub fn membership(categories: &[CategoryResult]) -> Membership {
    categories
        .iter()
        .filter(|c| c.status == CategoryStatus::Ok)
        .map(|c| (c.id, c.candidates.iter().map(|x| x.tag).collect()))
        .collect()
}

/// What every verdict needs about the fresh tags, gathered in one pass over them.
struct Facts {
    /// Per repository, a tag whose digest the fresh scan could not learn (other than 404).
    unresolved: HashMap<crate::model::RepoId, TagId>,
    /// Per (repository, digest), the tags that point at it, unreadable manifests included.
    pointed: HashMap<(crate::model::RepoId, crate::model::DigestId), Vec<TagId>>,
    /// Per repository, broken tags that exist (all but a 404 without a digest): a manifest,
    /// config or child that could not be read. One whose body is unknown may be an index
    /// listing any child there.
    unreadable: HashMap<crate::model::RepoId, Vec<TagId>>,
}

impl Facts {
    fn new(fresh: &Inventory) -> Facts {
        let mut unresolved = HashMap::new();
        let mut pointed: HashMap<_, Vec<TagId>> = HashMap::new();
        let mut unreadable: HashMap<crate::model::RepoId, Vec<TagId>> = HashMap::new();
        for t in fresh.tag_ids() {
            let repo = fresh.tag(t).repo;
            if unresolved_reason(fresh, t).is_some() {
                unresolved.entry(repo).or_insert(t);
            }
            // A 404 says the tag does not exist only while its digest is unknown: with a
            // digest, the tag exists and it is something under it that answered 404.
            if let crate::model::TagState::Broken { reason, digest } = &fresh.tag(t).state
                && (digest.is_some() || !not_found(reason))
            {
                unreadable.entry(repo).or_default().push(t);
            }
            if let Some(d) = fresh.tag_digest(t) {
                pointed.entry((repo, d)).or_default().push(t);
            }
        }
        Facts {
            unresolved,
            pointed,
            unreadable,
        }
    }
}

/// For each planned manifest, the planned manifests that are its parents (indexes listing it
/// in the same repository, in the fresh data or by the plan's `child_of`). The executor deletes
/// a manifest only after every one of them is gone, so an index never loses a child it keeps.
pub fn planned_parents(manifests: &[PlanManifest], fresh: &Inventory) -> Vec<Vec<usize>> {
    // The first entry of each (repository, digest).
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, x) in manifests.iter().enumerate() {
        first.entry((x.repository.as_str(), x.digest.as_str())).or_insert(i);
    }
    let index_of = |repo: &str, digest: &str| first.get(&(repo, digest)).copied();
    // Planned indexes by the children their fresh body lists, revision or not: an index whose
    // tag is broken (a child unreadable) has no revision but still lists its other children.
    let mut listed_by: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (&(repo, digest), &i) in &first {
        let body = fresh.digests.get(digest).and_then(|d| fresh.manifest(d));
        if let Some(crate::model::ManifestKind::Index { children }) = body.map(|b| &b.kind) {
            for (c, _) in children {
                listed_by
                    .entry((repo, fresh.digests.name(c.digest)))
                    .or_default()
                    .push(i);
            }
        }
    }
    manifests
        .iter()
        .map(|m| {
            let mut out: Vec<usize> = Vec::new();
            // An untag deletes no manifest an index lists: it waits for nothing.
            if m.untag {
                return out;
            }
            if let Some(p) = m.child_of.as_deref().and_then(|p| index_of(&m.repository, p)) {
                out.push(p);
            }
            if let Some(rev) = find_rev(fresh, &m.repository, &m.digest) {
                for p in &fresh.revision(rev).parents {
                    let parent = fresh.digests.name(fresh.revision(*p).manifest);
                    if let Some(i) = index_of(&m.repository, parent)
                        && !out.contains(&i)
                    {
                        out.push(i);
                    }
                }
            }
            for &i in listed_by
                .get(&(m.repository.as_str(), m.digest.as_str()))
                .into_iter()
                .flatten()
            {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
            out.sort_unstable();
            out
        })
        .collect()
}

/// Why `m` (an entry with `child_of` = `parent`) cannot be shown to be a child of `parent`, or
/// `None` when it is: the fresh body of `parent` in `m`'s repository lists `m`'s digest, or,
/// when `parent` is no longer in that repository, its verified body in `gone` does.
fn unlisted_child(
    m: &PlanManifest,
    parent: &str,
    repo: crate::model::RepoId,
    fresh: &Inventory,
    facts: &Facts,
    gone: &GoneIndexes,
) -> Option<String> {
    let pd = fresh.digests.get(parent);
    let in_repo = pd.is_some_and(|d| fresh.find_revision(repo, d).is_some() || facts.pointed.contains_key(&(repo, d)));
    let child = m.digest.as_str();
    if in_repo {
        return match pd.and_then(|d| fresh.manifest(d)).map(|b| &b.kind) {
            Some(crate::model::ManifestKind::Index { children })
                if children.iter().any(|(c, _)| fresh.digests.name(c.digest) == child) =>
            {
                None
            }
            Some(_) => Some(format!(
                "its planned index {parent} does not list {child} in the fresh data; not deleting {child}"
            )),
            None => Some(format!(
                "the body of its planned index {parent} could not be read in the fresh scan, so it is not known to list {child}; not deleting {child}"
            )),
        };
    }
    match gone.get(parent) {
        Some(children) if children.iter().any(|c| c == child) => None,
        Some(_) => Some(format!(
            "its planned index {parent} (no longer in the repository) did not list {child}; not deleting {child}"
        )),
        None => Some(format!(
            "its planned index {parent} is not in the fresh data and no verified copy of its body shows that it listed {child}; not deleting {child}"
        )),
    }
}

fn find_rev(fresh: &Inventory, repo: &str, digest: &str) -> Option<crate::model::RevId> {
    let repo = fresh.repo_by_name(repo)?;
    let d = fresh.digests.get(digest)?;
    fresh.find_revision(repo, d)
}

/// Whether the fresh scan could not tell where this tag points for a reason other than "it
/// does not exist": then anything in its repository may be shared with it.
fn unresolved_reason(fresh: &Inventory, t: TagId) -> Option<&str> {
    match &fresh.tag(t).state {
        crate::model::TagState::Broken { digest: None, reason } if !not_found(reason) => Some(reason),
        _ => None,
    }
}

/// Whether a broken tag's reason is a 404: the status of the first `HTTP nnn` in it (the
/// request's own answer, as `RegistryError` shows it), not an `HTTP 404` that the registry's
/// error message of another status happens to contain.
fn not_found(reason: &str) -> bool {
    reason.find("HTTP ").is_some_and(|i| reason[i + 5..].starts_with("404"))
}

#[allow(clippy::too_many_arguments)]
fn verdict(
    m: &PlanManifest,
    all: &[PlanManifest],
    fresh: &Inventory,
    facts: &Facts,
    protected: &HashMap<TagId, Vec<String>>,
    membership: &Membership,
    gone: &GoneIndexes,
    untagged: &UntaggedMembership,
) -> Verdict {
    let Some(repo) = fresh.repo_by_name(&m.repository) else {
        return Verdict::AlreadyDeleted;
    };
    if m.untag {
        return untag_verdict(m, all, fresh, protected, membership);
    }
    let rev = find_rev(fresh, &m.repository, &m.digest);
    // A tag the fresh scan could not resolve might point at this digest: deleting it by digest
    // could take that tag along, so wait for a scan that sees it.
    if let Some(t) = facts.unresolved.get(&repo) {
        return Verdict::Skip(format!(
            "tag {} could not be read in the fresh scan ({}); not deleting anything it might share",
            fresh.tag(*t).name,
            unresolved_reason(fresh, *t).unwrap_or_default()
        ));
    }
    // Planned tags that now point elsewhere.
    for tag in &m.tags {
        if let Some(t) = fresh.find_tag(&m.repository, tag) {
            let now_at = fresh.tag_digest(t).map(|d| fresh.digests.name(d).to_string());
            if now_at.as_deref() != Some(m.digest.as_str()) {
                return Verdict::Skip(format!(
                    "tag {tag} now points at {}",
                    now_at.unwrap_or_else(|| "an unreadable manifest".into())
                ));
            }
        }
    }
    // Nothing is deleted while a manifest in its repository could not be read: that manifest
    // may be an index (nested indexes included) listing it, and deleting a manifest an index
    // lists breaks the index (fail closed). Only this manifest's own broken tags do not count:
    // planning another broken tag does not lift the block (that entry may itself be skipped),
    // so a broken manifest planned for deletion goes in one run and the rest in the next.
    if let Some(tags) = facts.unreadable.get(&repo) {
        let may_list_me = |t: TagId| fresh.broken_may_list(t, &m.digest);
        let planned_digest = |t: TagId| {
            fresh
                .tag_digest(t)
                .is_some_and(|d| fresh.digests.name(d) == m.digest && !m.untag)
        };
        if let Some(t) = tags.iter().find(|t| may_list_me(**t) && !planned_digest(**t)) {
            let why = match &fresh.tag(*t).state {
                crate::model::TagState::Broken { reason, .. } => reason.as_str(),
                crate::model::TagState::Ok(_) => "",
            };
            return Verdict::Skip(format!(
                "tag {} in this repository could not be read in the fresh scan ({why}); nothing here is deleted while an unreadable manifest might list it (delete that broken tag first, or fix it)",
                fresh.tag(*t).name
            ));
        }
    }
    // A child the plan names must have its index in the plan too.
    // (An untag entry for it does not count: the index stays.)
    let deletes = |digest: &str| {
        all.iter()
            .any(|x| x.repository == m.repository && x.digest == digest && !x.untag)
    };
    if let Some(parent) = &m.child_of
        && !deletes(parent)
    {
        return Verdict::Skip(format!("its index {parent} is not in the plan"));
    }
    // ... and that index must list it: a `child_of` naming a planned index that does not (a
    // made-up parent) would delete by digest a manifest no scan looked at.
    if let Some(parent) = &m.child_of
        && let Some(why) = unlisted_child(m, parent, repo, fresh, facts, gone)
    {
        return Verdict::Skip(why);
    }
    let tags_at = |digest: &str| {
        fresh
            .digests
            .get(digest)
            .and_then(|d| facts.pointed.get(&(repo, d)))
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    let points_here = |digest: &str| !tags_at(digest).is_empty();
    let Some(rev) = rev else {
        // Tags still point here but the manifest (or a child) could not be read: it exists.
        // It is deleted by digest only when it was planned as broken: every tag on it is in
        // the plan, none is protected, and one is still a candidate of a planned category.
        let at = tags_at(&m.digest);
        if !at.is_empty() {
            return broken_verdict(m, fresh, at, protected, membership);
        }
        return match &m.child_of {
            // The child of an index: deleted only when that index is untagged (or gone).
            Some(parent) if points_here(parent) => Verdict::Skip(format!(
                "its index {parent} is still tagged (unreadable in the fresh scan)"
            )),
            // An index child is untagged, so it only shows through a parent that still exists.
            Some(_) => Verdict::Delete,
            // Nothing in the repository references the digest any more: deleted earlier.
            None => Verdict::AlreadyDeleted,
        };
    };
    // Under storage a broken tag's manifest has a revision no readable tag reaches: while only
    // broken tags point at it (and no index lists it), it goes as a planned broken tag does.
    if fresh.revision(rev).tags.is_empty() && fresh.revision(rev).parents.is_empty() {
        let at = tags_at(&m.digest);
        if !at.is_empty() {
            return broken_verdict(m, fresh, at, protected, membership);
        }
    }
    let planned: BTreeSet<&str> = m.tags.iter().map(String::as_str).collect();
    // A broken tag on this digest (its digest known, its manifest or config unreadable) goes
    // with it just the same.
    if let Some(t) = tags_at(&m.digest)
        .iter()
        .find(|t| !planned.contains(fresh.tag(**t).name.as_str()))
    {
        return Verdict::Skip(format!(
            "tag {} also points at this digest (unreadable in the fresh scan) and is not in the plan",
            fresh.tag(*t).name
        ));
    }
    // Any tag the DELETE takes, a broken one included, may be protected.
    if let Some((t, reasons)) = tags_at(&m.digest)
        .iter()
        .find_map(|t| protected.get(t).map(|r| (*t, r)))
    {
        return Verdict::Skip(format!(
            "{}:{} is protected now: {}",
            m.repository,
            fresh.tag(t).name,
            reasons.join("; ")
        ));
    }
    for t in &fresh.revision(rev).tags {
        let name = fresh.tag(*t).name.as_str();
        if !planned.contains(name) {
            return Verdict::Skip(format!(
                "tag {name} now also points at this digest and is not in the plan"
            ));
        }
        if let Some(reasons) = protected.get(t) {
            return Verdict::Skip(format!(
                "{}:{name} is protected now: {}",
                m.repository,
                reasons.join("; ")
            ));
        }
    }
    // A manifest with no tags (and no index it goes with) is deleted only while it is still
    // an untagged-manifests candidate on fresh storage data: untagged, listed by no index, not
    // protected (a pod by digest, the grace period).
    if m.tags.is_empty() && m.child_of.is_none() {
        let key = (m.repository.clone(), m.digest.clone());
        if !m.categories.contains(&CategoryId::UntaggedManifests) {
            return Verdict::Skip("a manifest with no tags is deleted only as an untagged-manifests candidate".into());
        }
        if !untagged.contains(&key) {
            return Verdict::Skip(
                "no longer an untagged-manifests candidate on fresh storage data (tagged or listed by an index again, protected, or the category is unavailable now)".into(),
            );
        }
    } else if !m.categories.is_empty() && m.child_of.is_none() {
        // Still a candidate of a category it was planned under? (Index children go with
        // their index, which is checked itself.)
        let tags = &fresh.revision(rev).tags;
        let still = m.categories.iter().any(|c| {
            membership
                .get(c)
                .is_some_and(|set| tags.iter().any(|t| set.contains(t)))
        });
        if !still {
            let names: Vec<&str> = m.categories.iter().map(|c| c.as_str()).collect();
            return Verdict::Skip(format!(
                "no longer a candidate of {} on fresh data (un-archived, owner re-enabled, used again, or the category is unavailable now)",
                names.join(", ")
            ));
        }
    }
    // A child is deleted only when every index that lists it goes too.
    for p in &fresh.revision(rev).parents {
        let parent = fresh.digests.name(fresh.revision(*p).manifest);
        if !deletes(parent) {
            return Verdict::Skip(format!(
                "index {parent} that is not in the plan still lists this manifest"
            ));
        }
    }
    Verdict::Delete
}

/// The verdict for tags planned to be untagged (the manifest stays): each still points at the
/// planned digest (or is gone), none is protected, and one is still a candidate of a planned
/// category. Nothing here is deleted by the planned digest, so siblings, index children and
/// unreadable manifests do not matter; the throwaway deleted by digest is unique to the run.
fn untag_verdict(
    m: &PlanManifest,
    all: &[PlanManifest],
    fresh: &Inventory,
    protected: &HashMap<TagId, Vec<String>>,
    membership: &Membership,
) -> Verdict {
    // An untag must leave the image a tag no entry of the plan names: an untagged manifest is
    // invisible to every later scan and protection (and managed registries expire them).
    let named = |name: &str| {
        all.iter()
            .any(|x| x.repository == m.repository && x.tags.iter().any(|t| t == name))
    };
    let keeper = find_rev(fresh, &m.repository, &m.digest)
        .into_iter()
        .flat_map(|r| fresh.revision(r).tags.iter())
        .any(|t| !named(&fresh.tag(*t).name));
    if !keeper {
        return Verdict::Skip(
            "untagging would leave the image with no tag outside the plan (another tag must keep it)".into(),
        );
    }
    let mut present = Vec::new();
    for tag in &m.tags {
        let Some(t) = fresh.find_tag(&m.repository, tag) else {
            continue;
        };
        let now_at = fresh.tag_digest(t).map(|d| fresh.digests.name(d).to_string());
        if now_at.as_deref() != Some(m.digest.as_str()) {
            return Verdict::Skip(format!(
                "tag {tag} now points at {}",
                now_at.unwrap_or_else(|| "an unreadable manifest".into())
            ));
        }
        if let Some(reasons) = protected.get(&t) {
            return Verdict::Skip(format!(
                "{}:{tag} is protected now: {}",
                m.repository,
                reasons.join("; ")
            ));
        }
        present.push(t);
    }
    if present.is_empty() {
        // Every planned tag is gone already; the executor untags only names it knows.
        return Verdict::Delete;
    }
    let still = m.categories.is_empty()
        || m.categories.iter().any(|c| {
            membership
                .get(c)
                .is_some_and(|set| present.iter().any(|t| set.contains(t)))
        });
    if !still {
        let names: Vec<&str> = m.categories.iter().map(|c| c.as_str()).collect();
        return Verdict::Skip(format!(
            "no longer a candidate of {} on fresh data (un-archived, owner re-enabled, used again, or the category is unavailable now)",
            names.join(", ")
        ));
    }
    Verdict::Delete
}

/// The verdict for a planned manifest that is still tagged but unreadable (`at`: the tags on
/// it, all broken, since a readable one would have given it a revision): the operator planned
/// a broken tag (category `broken-tags`, or selected it), and deleting it by digest is what
/// they asked for, as long as nothing else points at it or protects it.
fn broken_verdict(
    m: &PlanManifest,
    fresh: &Inventory,
    at: &[TagId],
    protected: &HashMap<TagId, Vec<String>>,
    membership: &Membership,
) -> Verdict {
    let skip = |why: String| {
        Verdict::Skip(format!(
            "the manifest is still tagged but could not be read in the fresh scan; {why}"
        ))
    };
    if m.child_of.is_some() {
        return skip("an index child is only deleted with a readable index".into());
    }
    for t in at {
        let name = &fresh.tag(*t).name;
        if !m.tags.contains(name) {
            return skip(format!("tag {name} also points at it and is not in the plan"));
        }
        if let Some(reasons) = protected.get(t) {
            return skip(format!(
                "{}:{name} is protected now: {}",
                m.repository,
                reasons.join("; ")
            ));
        }
    }
    // Selected explicitly (no categories): not checked, as for readable manifests.
    let still = m.categories.is_empty()
        || m.categories
            .iter()
            .any(|c| membership.get(c).is_some_and(|set| at.iter().any(|t| set.contains(t))));
    if !still {
        return skip("it is no longer a candidate of a category it was planned under".into());
    }
    Verdict::Delete
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Blob, InventoryBuilder, Manifest, ManifestKind};

    const R: &str = "dominodatalab/environment";

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn pm(digest: &str, tags: &[&str], child_of: Option<&str>) -> PlanManifest {
        PlanManifest {
            repository: R.into(),
            digest: digest.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            index: child_of.is_none() && tags.is_empty(),
            child_of: child_of.map(str::to_string),
            categories: vec![],
            kind: None,
            untag: false,
        }
    }

    /// Index `f` over children `a` and `b` (their manifests are the caller's).
    fn index_f(b: &mut InventoryBuilder) -> crate::model::DigestId {
        let idx = b.digest(&d('f'));
        let children = ['a', 'b']
            .iter()
            .map(|c| {
                (
                    Blob {
                        digest: b.digest(&d(*c)),
                        size: 10,
                    },
                    None,
                )
            })
            .collect();
        b.manifest(Manifest {
            digest: idx,
            media_type: "i".into(),
            size: 10,
            kind: ManifestKind::Index { children },
            created: None,
        });
        idx
    }

    /// An index `i` (tag "multi") over children `a` and `b`; `b` also tagged "b-only" when
    /// `tag_child`; child `a` unreadable when `broken_child`; an extra tag per `extra`.
    fn world(tag_child: bool, broken_child: bool, extra: Option<(&str, Option<char>, &str)>) -> Inventory {
        let mut b = InventoryBuilder::new("t");
        let repo = b.repo(R);
        for c in ['a', 'b'] {
            if broken_child && c == 'a' {
                continue;
            }
            let digest = b.digest(&d(c));
            let config = Blob {
                digest: b.digest(&d(if c == 'a' { 'c' } else { 'e' })),
                size: 1,
            };
            b.manifest(Manifest {
                digest,
                media_type: "m".into(),
                size: 10,
                kind: ManifestKind::Image { config, layers: vec![] },
                created: None,
            });
        }
        let idx = index_f(&mut b);
        b.tag(repo, "multi", idx);
        if tag_child {
            let child = b.digest(&d('b'));
            b.tag(repo, "b-only", child);
        }
        if let Some((name, digest, reason)) = extra {
            let digest = digest.map(|c| b.digest(&d(c)));
            b.broken_tag(repo, name, digest, reason);
        }
        b.finish()
    }

    #[test]
    fn an_index_that_is_still_tagged_but_unreadable_is_skipped_with_its_children() {
        let fresh = world(false, true, None);
        let plan = [
            pm(&d('f'), &["multi"], None),
            pm(&d('a'), &[], Some(&d('f'))),
            pm(&d('b'), &[], Some(&d('f'))),
        ];
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        // The index itself was selected (a broken tag the operator planned): deleted by digest.
        assert_eq!(v[0], Verdict::Delete, "{v:?}");
        assert!(matches!(&v[1], Verdict::Skip(r) if r.contains("multi")), "{v:?}");
        assert!(matches!(&v[2], Verdict::Skip(r) if r.contains("multi")), "{v:?}");
    }

    #[test]
    fn a_planned_broken_tag_is_deleted_only_while_nothing_else_holds_it() {
        // `cfg` and `cfg2` point at image `b` whose config cannot be read; `b` is not in any
        // index here (world without the index's children being readable is not needed).
        let fresh = |second: bool| {
            let mut b = InventoryBuilder::new("t");
            let repo = b.repo(R);
            let digest = b.digest(&d('b'));
            b.broken_tag(repo, "cfg", Some(digest), "reading manifest: HTTP 500: boom");
            if second {
                b.broken_tag(repo, "cfg2", Some(digest), "reading manifest: HTTP 500: boom");
            }
            b.finish()
        };
        let inv = fresh(false);
        let cfg = inv.find_tag(R, "cfg").unwrap();
        let mut m = pm(&d('b'), &["cfg"], None);
        m.categories = vec![CategoryId::BrokenTags];
        let broken: Membership = [(CategoryId::BrokenTags, [cfg].into_iter().collect())].into();
        assert_eq!(
            recheck(&[m.clone()], &inv, &HashMap::new(), &broken)[0],
            Verdict::Delete
        );
        // No longer a broken-tags candidate (the category's fresh candidates lack it).
        let none: Membership = [(CategoryId::BrokenTags, Default::default())].into();
        assert!(
            matches!(&recheck(&[m.clone()], &inv, &HashMap::new(), &none)[0], Verdict::Skip(r) if r.contains("no longer a candidate"))
        );
        // Protected now.
        let prot: HashMap<TagId, Vec<String>> = [(cfg, vec!["a running pod".to_string()])].into();
        assert!(
            matches!(&recheck(&[m.clone()], &inv, &prot, &broken)[0], Verdict::Skip(r) if r.contains("protected now"))
        );
        // A second tag on the same digest that the plan does not hold.
        let inv = fresh(true);
        assert!(matches!(&recheck(&[m], &inv, &HashMap::new(), &broken)[0], Verdict::Skip(r) if r.contains("cfg2")),);
    }

    #[test]
    fn a_tag_the_fresh_scan_could_not_resolve_blocks_its_repository() {
        let fresh = world(
            false,
            false,
            Some(("mystery", None, "reading manifest: HTTP 500: boom")),
        );
        let plan = [pm(&d('f'), &["multi"], None)];
        assert!(
            matches!(&recheck(&plan, &fresh, &HashMap::new(), &Membership::new())[0], Verdict::Skip(r) if r.contains("mystery"))
        );
        // A tag that simply does not exist (404) is no obstacle.
        let fresh = world(
            false,
            false,
            Some(("gone", None, "reading manifest: HTTP 404 MANIFEST_UNKNOWN: x")),
        );
        assert_eq!(
            recheck(&plan, &fresh, &HashMap::new(), &Membership::new())[0],
            Verdict::Delete
        );
    }

    #[test]
    fn a_tagged_child_waits_for_every_planned_index_that_lists_it() {
        let fresh = world(true, false, None);
        let plan = [
            pm(&d('f'), &["multi"], None),
            pm(&d('b'), &["b-only"], None),
            pm(&d('a'), &[], Some(&d('f'))),
        ];
        let parents = planned_parents(&plan, &fresh);
        assert_eq!(parents, vec![vec![], vec![0], vec![0]]);
        assert_eq!(
            recheck(&plan, &fresh, &HashMap::new(), &Membership::new()),
            vec![Verdict::Delete, Verdict::Delete, Verdict::Delete]
        );
    }

    #[test]
    fn a_gone_manifest_is_already_deleted_and_a_child_of_a_gone_index_is_deleted() {
        let fresh = world(false, false, None);
        let plan = [
            pm(&d('9'), &["old"], None),
            pm(&d('7'), &["idx"], None),
            pm(&d('8'), &[], Some(&d('7'))),
        ];
        // The index's verified body (scan cache) lists the child.
        let gone: GoneIndexes = [(d('7'), vec![d('1'), d('8')])].into();
        assert_eq!(
            recheck_with(
                &plan,
                &fresh,
                &HashMap::new(),
                &Membership::new(),
                &gone,
                &Default::default()
            ),
            vec![Verdict::AlreadyDeleted, Verdict::AlreadyDeleted, Verdict::Delete]
        );
        // Without a body that lists it, nothing shows it was that index's child: skipped.
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        assert!(
            matches!(&v[2], Verdict::Skip(r) if r.contains(&d('7')) && r.contains(&d('8')) && r.contains("verified copy")),
            "{v:?}"
        );
        let other: GoneIndexes = [(d('7'), vec![d('1')])].into();
        let v = recheck_with(
            &plan,
            &fresh,
            &HashMap::new(),
            &Membership::new(),
            &other,
            &Default::default(),
        );
        assert!(
            matches!(&v[2], Verdict::Skip(r) if r.contains(&d('7')) && r.contains(&d('8')) && r.contains("did not list")),
            "{v:?}"
        );
    }

    /// A crafted plan names a planned index as the parent of a manifest it does not list (`9`,
    /// which the scan never saw): it is not deleted, and the reason names both digests. Before
    /// the fix `9` got `Delete`.
    #[test]
    fn a_child_of_naming_a_planned_index_that_does_not_list_it_is_skipped() {
        let fresh = world(false, false, None);
        let plan = [
            pm(&d('f'), &["multi"], None),
            pm(&d('a'), &[], Some(&d('f'))),
            pm(&d('9'), &[], Some(&d('f'))),
        ];
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        assert_eq!(v[0], Verdict::Delete, "{v:?}");
        assert_eq!(v[1], Verdict::Delete, "{v:?}");
        assert!(
            matches!(&v[2], Verdict::Skip(r) if r.contains(&d('f')) && r.contains(&d('9')) && r.contains("does not list")),
            "{v:?}"
        );
        // An untagged planned index nested under `f` that the scan never saw cannot vouch
        // for a child either: `f` does not list `9`, `9` does not list `8`.
        let plan = [
            pm(&d('f'), &["multi"], None),
            pm(&d('9'), &[], Some(&d('f'))),
            pm(&d('8'), &[], Some(&d('9'))),
        ];
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        assert!(matches!(&v[1], Verdict::Skip(_)), "{v:?}");
        assert!(
            matches!(&v[2], Verdict::Skip(r) if r.contains(&d('9')) && r.contains(&d('8'))),
            "{v:?}"
        );
    }

    #[test]
    fn a_child_whose_index_is_not_in_the_plan_is_skipped() {
        // A crafted plan: a "child" of an index the plan does not hold would be deleted with
        // no last look (it has no tags).
        let fresh = world(false, false, None);
        let plan = [pm(&d('8'), &[], Some(&d('7')))];
        assert!(
            matches!(&recheck(&plan, &fresh, &HashMap::new(), &Membership::new())[0], Verdict::Skip(r) if r.contains("not in the plan"))
        );
    }

    #[test]
    fn an_unreadable_manifest_in_the_repository_blocks_every_delete_there() {
        // Another index, tagged `new`, was pushed and cannot be read (persistent 500): it may
        // list `a`, `b` or (nested) `f`, so none is deleted.
        let fresh = world(
            false,
            false,
            Some(("new", Some('9'), "reading manifest: HTTP 500: boom")),
        );
        let plan = [
            pm(&d('f'), &["multi"], None),
            pm(&d('a'), &[], Some(&d('f'))),
            pm(&d('b'), &[], Some(&d('f'))),
        ];
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        // The index too: `new` may be a nested index listing it.
        for x in &v {
            assert!(
                matches!(x, Verdict::Skip(r) if r.contains("new") && r.contains("unreadable")),
                "{v:?}"
            );
        }
        // Planning the unreadable tag too deletes it, and still blocks the rest (its own entry
        // may be skipped: it must be gone first, in an earlier run).
        let mut plan = plan.to_vec();
        plan.push(pm(&d('9'), &["new"], None));
        let v = recheck(&plan, &fresh, &HashMap::new(), &Membership::new());
        assert_eq!(v[3], Verdict::Delete, "{v:?}");
        for x in &v[0..3] {
            assert!(matches!(x, Verdict::Skip(r) if r.contains("new")), "{v:?}");
        }
        // An image tagged outside any known index is blocked the same way.
        let fresh = world(
            true,
            false,
            Some(("new", Some('9'), "reading manifest: HTTP 500: boom")),
        );
        let v = recheck(
            &[pm(&d('b'), &["b-only"], None)],
            &fresh,
            &HashMap::new(),
            &Membership::new(),
        );
        assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("new")), "{v:?}");
    }

    #[test]
    fn a_broken_tag_on_the_planned_digest_that_the_plan_does_not_name_blocks_it() {
        // `alias` points at the planned index `f` but could not be read in the fresh scan: the
        // DELETE by digest would take it, so the index is not deleted; planned by name, it is.
        let fresh = world(
            false,
            false,
            Some(("alias", Some('f'), "reading manifest: HTTP 500: boom")),
        );
        let v = recheck(
            &[pm(&d('f'), &["multi"], None)],
            &fresh,
            &HashMap::new(),
            &Membership::new(),
        );
        assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("alias")), "{v:?}");
        let v = recheck(
            &[pm(&d('f'), &["alias", "multi"], None)],
            &fresh,
            &HashMap::new(),
            &Membership::new(),
        );
        assert_eq!(v[0], Verdict::Delete, "{v:?}");
    }

    #[test]
    fn an_index_with_a_missing_child_still_blocks_the_children_it_may_share() {
        // `multi` lost child `a` (404) but still lists `b`: deleting `b`, tagged on its own,
        // would break the index that pods may run. The 404 excuses only a tag that is gone.
        let mut b = InventoryBuilder::new("t");
        let repo = b.repo(R);
        let image = |b: &mut InventoryBuilder, c: char| {
            let digest = b.digest(&d(c));
            let config = Blob {
                digest: b.digest(&d('e')),
                size: 1,
            };
            b.manifest(Manifest {
                digest,
                media_type: "m".into(),
                size: 10,
                kind: ManifestKind::Image { config, layers: vec![] },
                created: None,
            });
            digest
        };
        let child_b = image(&mut b, 'b');
        let idx = index_f(&mut b);
        b.tag(repo, "b-only", child_b);
        b.broken_tag(
            repo,
            "multi",
            Some(idx),
            "child sha256:aaaa: HTTP 404 MANIFEST_UNKNOWN: gone",
        );
        let fresh = b.finish();
        let v = recheck(
            &[pm(&d('b'), &["b-only"], None)],
            &fresh,
            &HashMap::new(),
            &Membership::new(),
        );
        assert!(matches!(&v[0], Verdict::Skip(r) if r.contains("multi")), "{v:?}");
    }

    #[test]
    fn an_untag_must_leave_a_tag_outside_the_plan() {
        // `b` carries `b-only` alone: untagging it (a crafted entry, or split entries) would
        // leave the image untagged.
        let fresh = world(true, false, None);
        let mut m = pm(&d('b'), &["b-only"], None);
        m.untag = true;
        let v = recheck(&[m], &fresh, &HashMap::new(), &Membership::new());
        assert!(
            matches!(&v[0], Verdict::Skip(r) if r.contains("no tag outside the plan")),
            "{v:?}"
        );
    }

    #[test]
    fn a_broken_image_whose_manifest_was_read_does_not_block_children() {
        // `cfg` points at an image manifest that was read (only its config is missing): an
        // image lists no children, so it cannot be hurt by deleting one.
        let fresh = world(false, false, Some(("cfg", Some('b'), "reading config: HTTP 500: boom")));
        let plan = [pm(&d('f'), &["multi"], None), pm(&d('a'), &[], Some(&d('f')))];
        assert_eq!(
            recheck(&plan, &fresh, &HashMap::new(), &Membership::new()),
            vec![Verdict::Delete, Verdict::Delete]
        );
    }

    #[test]
    fn a_manifest_planned_under_a_category_must_still_be_its_candidate() {
        let fresh = world(false, false, None);
        let mut m = pm(&d('f'), &["multi"], None);
        m.categories = vec![CategoryId::ArchivedEnvironments];
        let plan = [m];
        let multi = fresh.find_tag(R, "multi").unwrap();
        let with = |cats: &[(CategoryId, &[TagId])]| -> Membership {
            cats.iter().map(|(c, t)| (*c, t.iter().copied().collect())).collect()
        };
        // Still archived: deleted.
        let yes = with(&[(CategoryId::ArchivedEnvironments, &[multi])]);
        assert_eq!(recheck(&plan, &fresh, &HashMap::new(), &yes)[0], Verdict::Delete);
        // Un-archived since the plan (no longer a candidate), or the category is unavailable
        // now (absent from the membership), or a candidate only of another category: skipped.
        for m in [
            with(&[(CategoryId::ArchivedEnvironments, &[])]),
            Membership::new(),
            with(&[(CategoryId::UnreferencedTags, &[multi])]),
        ] {
            assert!(
                matches!(&recheck(&plan, &fresh, &HashMap::new(), &m)[0], Verdict::Skip(r) if r.contains("no longer a candidate of archived-environments")),
                "{m:?}"
            );
        }
        // Selected explicitly (no categories): not checked.
        let plan = [pm(&d('f'), &["multi"], None)];
        assert_eq!(
            recheck(&plan, &fresh, &HashMap::new(), &Membership::new())[0],
            Verdict::Delete
        );
    }
}
