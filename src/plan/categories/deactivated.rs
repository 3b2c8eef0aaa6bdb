//! `deactivated-owner-environments`: private environments whose owner's Keycloak account is
//! disabled (domain.md §1.4, §3.4). Archived state is not checked, as in the original.

use super::{Ctx, Proposals, environment_tags};
use crate::model::users::deactivated_ids;
use std::collections::HashMap;

pub fn deactivated_owner_environments(ctx: &Ctx) -> Proposals {
    let mut out = Proposals::default();
    let deactivated: HashMap<_, _> = deactivated_ids(ctx.keycloak.unwrap_or_default()).into_iter().collect();
    for env in ctx.ix.data.environments.iter().filter(|e| e.private) {
        let Some(owner) = env.owner else { continue };
        let Some(username) = deactivated.get(&owner) else {
            continue;
        };
        let why = format!(
            "private {} belongs to deactivated user {} (Keycloak '{username}')",
            ctx.ix.env_label(env.id),
            ctx.ix.user_label(owner)
        );
        for tag in environment_tags(ctx, env.id) {
            out.tag(tag, env.id, why.clone());
        }
    }
    out
}
