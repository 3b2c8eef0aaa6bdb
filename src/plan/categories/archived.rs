//! `archived-environments` and `archived-models`: images of environments and models archived
//! in Domino (`isArchived == true`).

use super::{Ctx, Proposals, environment_tags, model_tags};

pub fn archived_environments(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    for env in ctx.ix.data.environments.iter().filter(|e| e.archived) {
        let why = format!("{} is archived", ctx.ix.env_label(env.id));
        for tag in environment_tags(ctx, env.id) {
            out.tag(tag, env.id, why.clone());
        }
    }
    out
}

pub fn archived_models(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    for model in ctx.ix.data.models.iter().filter(|m| m.archived) {
        let why = format!("{} is archived", ctx.ix.model_label(model.id));
        for tag in model_tags(ctx, model.id) {
            out.tag(tag, model.id, why.clone());
        }
    }
    out
}
