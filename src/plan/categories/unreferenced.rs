//! `unreferenced-tags`: tags in the environment and model repositories that no Mongo record
//! names — not a revision's tag, not a model version's slug (full or short form), and not
//! starting with the id of any known environment, model, revision or version. Workload use is
//! a protection applied by `evaluate`. `buildcache` is the builders' layer cache, never garbage.

use super::{Ctx, Proposals};
use crate::model::image::model_tag_prefix;
use crate::model::{ImageKind, ObjectId};
use std::collections::HashSet;

pub fn unreferenced_tags(ctx: &Ctx) -> Proposals {
    let data = ctx.ix.data;
    let known_ids: HashSet<ObjectId> = data
        .environments
        .iter()
        .map(|e| e.id)
        .chain(data.models.iter().map(|m| m.id))
        .chain(data.revisions.iter().map(|r| r.id))
        .chain(data.versions.iter().map(|v| v.id))
        .collect();
    // Names in the current layout on both sides, so a legacy `domino-<env>:<rev>` tag and a
    // revision recorded in either layout meet.
    let revision_tags: HashSet<std::borrow::Cow<str>> = data.revisions.iter().filter_map(|r| r.domino_tag()).collect();
    let slugs: HashSet<&str> = data
        .versions
        .iter()
        .flat_map(|v| v.slugs.iter().map(String::as_str))
        .collect();
    let slug_heads: HashSet<&str> = slugs.iter().flat_map(|s| dash_prefixes(s)).collect();
    let mut out = Proposals::default();
    for id in ctx.inv.tag_ids() {
        let tag = ctx.inv.tag(id);
        let kind = ctx.inv.repo(tag.repo).kind;
        let domino_name = ctx.inv.domino_tag(id);
        let name = domino_name.as_ref();
        let referenced = match kind {
            ImageKind::Other => true,
            _ if tag.name == "buildcache" => true,
            ImageKind::Environment => revision_tags.contains(name),
            ImageKind::Model => model_tag_referenced(name, &slugs, &slug_heads),
        };
        let owner = ObjectId::prefix_of_tag(name).filter(|o| known_ids.contains(o));
        if referenced || owner.is_some() {
            continue;
        }
        let why = format!(
            "no Mongo record names {} and no known environment or model id prefixes it",
            ctx.inv.tag_ref(id)
        );
        out.tags.push(super::Proposal {
            tag: id,
            object_id: ObjectId::prefix_of_tag(name),
            reason: why,
            local_protection: None,
        });
    }
    out
}

/// `model_tags_match(name, s)` for some stored slug `s`, answered with set lookups: equal, a
/// stored slug is a dash-prefix of the tag, or the tag's `<modelId>-vN` is a dash-prefix of a
/// stored slug (domain.md §2).
fn model_tag_referenced(name: &str, slugs: &HashSet<&str>, slug_heads: &HashSet<&str>) -> bool {
    let prefix = model_tag_prefix(name);
    slugs.contains(name)
        || slugs.contains(prefix)
        || dash_prefixes(name).any(|p| slugs.contains(p))
        || slug_heads.contains(prefix)
}

/// `a-b-c` → `a`, `a-b`.
fn dash_prefixes(s: &str) -> impl Iterator<Item = &str> {
    s.match_indices('-').map(move |(i, _)| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::image::model_tags_match;

    #[test]
    fn set_lookup_agrees_with_model_tags_match() {
        let stored = ["m-v1", "m-v2-111_a", "plain-x", "solo"];
        let names = [
            "m-v1",
            "m-v1-222_b",
            "m-v2",
            "m-v2-111_a",
            "m-v3-1_c",
            "plain",
            "solo",
            "solo-v1",
            "other",
        ];
        let slugs: HashSet<&str> = stored.into_iter().collect();
        let heads: HashSet<&str> = stored.iter().flat_map(|s| dash_prefixes(s)).collect();
        for name in names {
            let want = stored.iter().any(|s| model_tags_match(name, s));
            assert_eq!(model_tag_referenced(name, &slugs, &heads), want, "{name}");
        }
    }
}
