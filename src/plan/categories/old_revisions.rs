//! `old-revisions`: per environment, every built revision older than the newest
//! `keep_revisions` (ObjectIds order revisions by creation). The active revision is never
//! proposed; clone sources of kept revisions are protected later by `evaluate`.

use super::{Ctx, Proposal, Proposals};

pub fn old_revisions(ctx: &Ctx) -> Proposals {
    let keep = ctx.policy.keep_revisions.max(1);
    let mut out = Proposals::default();
    let mut envs: Vec<_> = ctx.ix.revisions_by_env.iter().collect();
    envs.sort_by_key(|(env, _)| **env);
    for (env, revs) in envs {
        let built: Vec<_> = revs
            .iter()
            .filter(|r| r.built && r.tag.as_deref().is_some_and(|t| !t.is_empty()))
            .collect();
        if built.len() <= keep {
            continue;
        }
        let active = ctx.ix.environments.get(env).and_then(|e| e.active_revision);
        let label = ctx.ix.env_label(*env);
        for rev in &built[..built.len() - keep] {
            let why = format!(
                "revision {} of {label} is older than the newest {keep} of {}",
                rev.id,
                built.len()
            );
            let local_protection =
                (active == Some(rev.id)).then(|| format!("active revision of {label} (never an old revision)"));
            for tag in ctx.lookup.of_revision(rev) {
                out.tags.push(Proposal {
                    tag,
                    object_id: Some(rev.id),
                    reason: why.clone(),
                    local_protection: local_protection.clone(),
                });
            }
        }
    }
    out
}
