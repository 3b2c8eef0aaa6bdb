//! Domino image naming: which repository holds environments or models, and how a tag maps to
//! the Mongo ObjectId it was built from (domain.md §2).

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a repository holds, from its last path segment: `environment` and `model` under the
/// configured prefix, and `domino-<environmentId>`, the one-repository-per-environment layout of
/// older Domino installs (tags are revision numbers there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageKind {
    Environment,
    Model,
    Other,
}

impl ImageKind {
    /// `dominodatalab/environment` → Environment, `dominodatalab/model` → Model,
    /// `domino-<24 hex>` → Environment (legacy layout).
    pub fn of_repository(repository: &str) -> ImageKind {
        match repository.rsplit('/').next() {
            Some("environment") => ImageKind::Environment,
            Some("model") => ImageKind::Model,
            _ if legacy_environment(repository).is_some() => ImageKind::Environment,
            _ => ImageKind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Environment => "environment",
            ImageKind::Model => "model",
            ImageKind::Other => "other",
        }
    }
}

impl fmt::Display for ImageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Mongo ObjectId as 24 lowercase hex characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

impl ObjectId {
    /// Parses 24 hex characters (either case). The error says what is wrong, in the words the
    /// original tool used ("is required", "not 24 characters", "not a valid hexadecimal").
    pub fn parse(s: &str) -> Result<ObjectId, String> {
        if s.is_empty() {
            return Err("object id is required".into());
        }
        if s.len() != 24 {
            return Err(format!("object id {s:?} is not 24 characters (has {})", s.len()));
        }
        let mut out = [0u8; 12];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hi = hex_val(chunk[0]);
            let lo = hex_val(chunk[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = h << 4 | l,
                _ => return Err(format!("object id {s:?} is not a valid hexadecimal string")),
            }
        }
        Ok(ObjectId(out))
    }

    pub fn from_bytes(bytes: [u8; 12]) -> ObjectId {
        ObjectId(bytes)
    }

    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// The ObjectId a Domino tag starts with: `<24 hex>` alone or followed by `-`.
    pub fn prefix_of_tag(tag: &str) -> Option<ObjectId> {
        let head = tag.get(..24)?;
        match tag.as_bytes().get(24) {
            None | Some(b'-') => ObjectId::parse(head).ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Serialize for ObjectId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectId::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The environment a legacy repository holds: `[host/][path/]domino-<environmentId>` (domain.md
/// Corrections: older installs push `<server>:5000/domino-<envId>:<revision>`).
pub fn legacy_environment(repository: &str) -> Option<ObjectId> {
    let last = repository.rsplit('/').next()?;
    ObjectId::parse(last.strip_prefix("domino-")?).ok()
}

/// A tag's name in the current layout, which every Domino rule is written against:
/// `domino-<envId>:<rev>` is `<envId>-<rev>`; a tag of any other repository is unchanged. Both
/// layouts of one revision then have one name, so they get the same categories and protections.
pub fn domino_tag<'a>(repository: &str, tag: &'a str) -> std::borrow::Cow<'a, str> {
    match legacy_environment(repository) {
        Some(env) => std::borrow::Cow::Owned(format!("{env}-{tag}")),
        None => std::borrow::Cow::Borrowed(tag),
    }
}

/// The revision (environment, `<envId>-<rev>`) or version (model, `<modelId>-v<N>-…`) number
/// of a current-layout Domino tag; `None` for any other tag.
pub fn revision_number(tag: &str) -> Option<u64> {
    ObjectId::prefix_of_tag(tag)?;
    let rest = tag.get(25..)?;
    let rest = rest.strip_prefix('v').unwrap_or(rest);
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A tag belongs to ObjectId `id` iff it equals it or starts with `id-` (prefix, not substring).
pub fn tag_belongs_to(tag: &str, id: &ObjectId) -> bool {
    let id = id.to_string();
    tag == id || (tag.starts_with(&id) && tag.as_bytes().get(24) == Some(&b'-'))
}

/// `<modelId>-v<N>` part of a model tag (domain.md §2 `extract_model_tag_prefix`).
pub fn model_tag_prefix(tag: &str) -> &str {
    let mut dashes = tag.match_indices('-');
    match (dashes.next(), dashes.next()) {
        (Some(_), Some((second, _))) => &tag[..second],
        _ => tag,
    }
}

/// Whether a registry model tag and a tag stored in Mongo (full or short form) name the same
/// model version (domain.md §2 `model_tags_match`).
pub fn model_tags_match(registry: &str, stored: &str) -> bool {
    let prefix = model_tag_prefix(registry);
    registry == stored
        || registry.starts_with(&format!("{stored}-"))
        || prefix == stored
        || stored.starts_with(&format!("{prefix}-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "507f1f77bcf86cd799439011";

    #[test]
    fn legacy_repositories_are_environment_repositories_named_in_the_current_layout() {
        let cases = [
            // (repository, tag, kind, name in the current layout)
            (
                "domino-507f1f77bcf86cd799439011",
                "3",
                ImageKind::Environment,
                "507f1f77bcf86cd799439011-3",
            ),
            (
                "registry:5000/domino-507f1f77bcf86cd799439011",
                "12",
                ImageKind::Environment,
                "507f1f77bcf86cd799439011-12",
            ),
            (
                "dominodatalab/domino-507f1f77bcf86cd799439011",
                "1",
                ImageKind::Environment,
                "507f1f77bcf86cd799439011-1",
            ),
            (
                "dominodatalab/environment",
                "507f1f77bcf86cd799439011-3",
                ImageKind::Environment,
                "507f1f77bcf86cd799439011-3",
            ),
            ("dominodatalab/model", "x-v1", ImageKind::Model, "x-v1"),
            // Not a legacy repository: the id must be exactly 24 hex characters.
            ("domino-507f1f77bcf86cd79943901", "3", ImageKind::Other, "3"),
            ("domino-507f1f77bcf86cd799439011x", "3", ImageKind::Other, "3"),
            ("xdomino-507f1f77bcf86cd799439011", "3", ImageKind::Other, "3"),
            ("domino-507f1f77bcf86cd799439011/app", "3", ImageKind::Other, "3"),
            ("library/redis", "7", ImageKind::Other, "7"),
        ];
        for (repo, tag, kind, name) in cases {
            assert_eq!(ImageKind::of_repository(repo), kind, "{repo}");
            assert_eq!(domino_tag(repo, tag), name, "{repo}:{tag}");
        }
        assert_eq!(
            legacy_environment("DOMINO-507f1f77bcf86cd799439011"),
            None,
            "repository names are lowercase; DOMINO- is not the legacy layout"
        );
    }

    #[test]
    fn object_id_validation_names_the_problem() {
        assert_eq!(ObjectId::parse(ID).unwrap().to_string(), ID);
        assert_eq!(ObjectId::parse(&ID.to_uppercase()).unwrap().to_string(), ID);
        assert!(ObjectId::parse("").unwrap_err().contains("is required"));
        assert!(ObjectId::parse(&ID[..23]).unwrap_err().contains("not 24 characters"));
        assert!(
            ObjectId::parse(&format!("{ID}1"))
                .unwrap_err()
                .contains("not 24 characters")
        );
        assert!(
            ObjectId::parse("507f1f77bcf86cd79943901g")
                .unwrap_err()
                .contains("not a valid hexadecimal")
        );
        assert!(
            ObjectId::parse("507f1f77bcf86cd79943901G")
                .unwrap_err()
                .contains("not a valid hexadecimal")
        );
    }

    #[test]
    fn a_tag_belongs_to_an_id_by_prefix_with_dash_only() {
        let id = ObjectId::parse(ID).unwrap();
        assert!(tag_belongs_to(ID, &id));
        assert!(tag_belongs_to(&format!("{ID}-1"), &id));
        assert!(tag_belongs_to(&format!("{ID}-v2"), &id));
        assert!(!tag_belongs_to(&format!("{ID}1"), &id));
        assert!(!tag_belongs_to(&format!("prefix-{ID}"), &id));
        assert_eq!(ObjectId::prefix_of_tag(&format!("{ID}-3")), Some(id));
        assert_eq!(ObjectId::prefix_of_tag("buildcache"), None);
    }

    #[test]
    fn model_tags_match_full_and_short_forms() {
        let full = format!("{ID}-v2-1234567890_abc123");
        assert!(model_tags_match(&full, &format!("{ID}-v2")));
        assert!(model_tags_match(&full, &full));
        assert!(model_tags_match(&format!("{ID}-v2"), &full));
        assert!(!model_tags_match(&full, &format!("{ID}-v3")));
        assert_eq!(model_tag_prefix(&full), format!("{ID}-v2"));
        assert_eq!(model_tag_prefix("plain"), "plain");
    }

    #[test]
    fn repository_kind_comes_from_the_last_segment() {
        assert_eq!(
            ImageKind::of_repository("dominodatalab/environment"),
            ImageKind::Environment
        );
        assert_eq!(ImageKind::of_repository("dominodatalab/model"), ImageKind::Model);
        assert_eq!(ImageKind::of_repository("dominodatalab/other"), ImageKind::Other);
    }

    #[test]
    fn revision_numbers_of_environment_and_model_tags() {
        let id = "5f0c8a3b2d1e4f0012345678";
        assert_eq!(revision_number(&format!("{id}-12")), Some(12));
        assert_eq!(revision_number(&format!("{id}-v3-1700000000_ab12")), Some(3));
        assert_eq!(revision_number(id), None);
        assert_eq!(revision_number("latest"), None);
        assert_eq!(revision_number(&format!("{id}-x")), None);
    }
}
