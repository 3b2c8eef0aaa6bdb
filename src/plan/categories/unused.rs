//! `unused-environments`: live (not archived) environments that no run (inside the
//! `--unused-since-days` window), workspace, model, project, scheduled job, organization, app
//! or user preference uses. Archived environments belong to `archived-environments`.

use super::{Ctx, Proposals, environment_tags};

pub fn unused_environments(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    let window = match ctx.policy.unused_since_days {
        Some(days) => format!("no run in the last {days} days"),
        None => "no run".to_string(),
    };
    for env in ctx.ix.data.environments.iter().filter(|e| !e.archived) {
        if ctx.facts.environments.contains_key(&env.id) {
            continue;
        }
        let why = format!(
            "{} is unused: {window}, no live workspace, model, project, job, organization, app or user default",
            ctx.ix.env_label(env.id)
        );
        for tag in environment_tags(ctx, env.id) {
            out.tag(tag, env.id, why.clone());
        }
    }
    out
}
