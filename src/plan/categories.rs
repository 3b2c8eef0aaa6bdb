//! One function per Mongo-backed cleanup category. Each returns raw [`Proposals`]: what the
//! category's own rule selects and why. Protections are applied afterwards, uniformly, by
//! `evaluate`, so no category can forget one.

mod archived;
mod deactivated;
mod old_revisions;
mod orphaned;
mod unreferenced;
mod untagged;
mod unused;

pub use archived::{archived_environments, archived_models};
pub use deactivated::deactivated_owner_environments;
pub use old_revisions::old_revisions;
pub use orphaned::orphaned_references;
pub use unreferenced::unreferenced_tags;
pub use untagged::untagged_manifests;
pub use unused::unused_environments;

use super::category::OrphanRecord;
use super::lookup::TagLookup;
use super::policy::Policy;
use super::usage::UsageFacts;
use crate::model::domino::DominoIndex;
use crate::model::users::KeycloakUser;
use crate::model::{ImageKind, Inventory, ObjectId, TagId};

/// What the categories read.
pub struct Ctx<'a> {
    pub inv: &'a Inventory,
    pub lookup: &'a TagLookup<'a>,
    pub ix: &'a DominoIndex<'a>,
    pub facts: &'a UsageFacts,
    pub policy: &'a Policy,
    pub keycloak: Option<&'a [KeycloakUser]>,
}

/// A tag the category's rule selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub tag: TagId,
    pub object_id: Option<ObjectId>,
    pub reason: String,
    /// A rule of this category alone that keeps the tag (e.g. old-revisions never deletes an
    /// environment's active revision, even an archived one's).
    pub local_protection: Option<String>,
}

#[derive(Debug, Default)]
pub struct Proposals {
    pub tags: Vec<Proposal>,
    pub records: Vec<OrphanRecord>,
    pub protected_records: Vec<(OrphanRecord, Vec<String>)>,
}

impl Proposals {
    fn tag(&mut self, tag: TagId, object_id: ObjectId, reason: String) {
        self.tags.push(Proposal {
            tag,
            object_id: Some(object_id),
            reason,
            local_protection: None,
        });
    }
}

/// Every image tag of an environment: tags named `<envId>` or `<envId>-…`, plus the recorded
/// tags of its built revisions (failed builds have no image).
fn environment_tags(ctx: &Ctx, env: ObjectId) -> Vec<TagId> {
    let mut tags = ctx.lookup.of_object(ImageKind::Environment, &env);
    for rev in ctx
        .ix
        .revisions_by_env
        .get(&env)
        .into_iter()
        .flatten()
        .filter(|r| r.built)
    {
        tags.extend(ctx.lookup.of_revision(rev));
    }
    tags.sort();
    tags.dedup();
    tags
}

/// Every image tag of a model: `<modelId>-…` tags plus tags matching its versions' slugs.
fn model_tags(ctx: &Ctx, model: ObjectId) -> Vec<TagId> {
    let mut tags = ctx.lookup.of_object(ImageKind::Model, &model);
    for v in ctx.ix.data.versions.iter().filter(|v| v.model == model) {
        tags.extend(ctx.lookup.of_version(v));
    }
    tags.sort();
    tags.dedup();
    tags
}
