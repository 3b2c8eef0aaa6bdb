//! What the sources delivered to the core, each as ok / failed(reason) / disabled, so the
//! categories can fail closed: nothing is proposed from, or protected by, data we do not have.

use crate::model::domino::DominoData;
use crate::model::users::KeycloakUser;
use crate::model::workloads::Workloads;

/// One source's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceState<T> {
    Ok(T),
    /// The source was configured but could not be read; the reason names what to fix.
    Failed(String),
    /// Turned off on purpose (`--without`).
    Disabled,
}

impl<T> SourceState<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            SourceState::Ok(t) => Some(t),
            SourceState::Failed(_) | SourceState::Disabled => None,
        }
    }
}

/// Everything besides the registry inventory that the categories read.
#[derive(Debug, Clone)]
pub struct SourcesData {
    /// Whether the registry scan completed; a partial scan would make every Mongo record look
    /// orphaned and every tag look unreferenced by nothing.
    pub registry: SourceState<()>,
    pub mongo: SourceState<DominoData>,
    pub kubernetes: SourceState<Workloads>,
    pub keycloak: SourceState<Vec<KeycloakUser>>,
}
