//! Keycloak's view of Domino users: which Mongo user a Keycloak account is (attribute
//! `domino-user-id`) and whether it is enabled (domain.md §1.4).

use super::image::ObjectId;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeycloakUser {
    pub username: String,
    /// One value of attribute `domino-user-id` (an account with several appears once per
    /// value); users without it cannot own Domino environments and are ignored by the
    /// categories. An enabled account with a malformed one fails the source.
    pub domino_id: Option<ObjectId>,
    pub enabled: bool,
}

/// Mongo user ids of deactivated users: a disabled Keycloak account carries the id and *no*
/// enabled account does (re-provisioned users and identity-provider moves leave a disabled
/// duplicate behind; that user is active).
pub fn deactivated_ids(users: &[KeycloakUser]) -> Vec<(ObjectId, &str)> {
    let enabled: std::collections::HashSet<ObjectId> =
        users.iter().filter(|u| u.enabled).filter_map(|u| u.domino_id).collect();
    users
        .iter()
        .filter(|u| !u.enabled)
        .filter_map(|u| u.domino_id.map(|id| (id, u.username.as_str())))
        .filter(|(id, _)| !enabled.contains(id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, id: Option<u8>, enabled: bool) -> KeycloakUser {
        KeycloakUser {
            username: name.into(),
            domino_id: id.map(|n| ObjectId::from_bytes([n; 12])),
            enabled,
        }
    }

    #[test]
    fn an_id_is_deactivated_only_when_no_enabled_account_carries_it() {
        let users = [
            user("ann-old", Some(1), false),
            user("ann", Some(1), true),
            user("bob", Some(2), false),
            user("bob-again", Some(2), false),
            user("cy", Some(3), true),
            user("nobody", None, false),
        ];
        let ids: Vec<(ObjectId, &str)> = deactivated_ids(&users);
        assert_eq!(
            ids,
            vec![
                (ObjectId::from_bytes([2; 12]), "bob"),
                (ObjectId::from_bytes([2; 12]), "bob-again")
            ],
            "ann has an enabled account, so she is active; bob has none"
        );
    }
}
