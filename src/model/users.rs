//! Keycloak's view of Domino users: which Mongo user a Keycloak account is (attribute
//! `domino-user-id`) and whether it is enabled (domain.md §1.4).

use super::image::ObjectId;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeycloakUser {
    pub username: String,
    /// First value of attribute `domino-user-id`; users without it (or with a malformed one)
    /// cannot own Domino environments and are ignored by the categories.
    pub domino_id: Option<ObjectId>,
    pub enabled: bool,
}

/// Mongo user ids of deactivated (disabled) Keycloak users.
pub fn deactivated_ids(users: &[KeycloakUser]) -> Vec<(ObjectId, &str)> {
    users
        .iter()
        .filter(|u| !u.enabled)
        .filter_map(|u| u.domino_id.map(|id| (id, u.username.as_str())))
        .collect()
}
