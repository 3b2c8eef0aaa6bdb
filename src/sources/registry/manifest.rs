//! Manifest and config JSON parsing: Docker schema 2, Docker manifest list, OCI manifest and
//! OCI index. Pure functions over bytes, so they are tested without a registry; and how a
//! parsed manifest enters an `Inventory`, shared by the HTTP scan and the storage source.

use serde::Deserialize;

pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The Accept header for manifest requests: every format we understand.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub digest: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildDescriptor {
    pub digest: String,
    pub size: u64,
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedManifest {
    Image {
        media_type: String,
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
    Index {
        media_type: String,
        children: Vec<ChildDescriptor>,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawChild>>,
}

#[derive(Deserialize)]
struct RawDescriptor {
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
struct RawChild {
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

/// Parses a manifest body; `content_type` is the response's Content-Type, used when the body
/// does not name its media type (OCI makes `mediaType` optional).
/// Adds manifest `digest` (its parsed body of `size` bytes) to the inventory being built.
pub fn add_manifest(
    b: &mut crate::model::InventoryBuilder,
    digest: &str,
    manifest: &ParsedManifest,
    size: u64,
    created: Option<i64>,
) {
    use crate::model::{Blob, Manifest, ManifestKind, Platform};
    let blob = |b: &mut crate::model::InventoryBuilder, d: &str, size| Blob {
        digest: b.digest(d),
        size,
    };
    let id = b.digest(digest);
    let (media_type, kind) = match manifest {
        ParsedManifest::Image {
            media_type,
            config,
            layers,
        } => (
            media_type.clone(),
            ManifestKind::Image {
                config: blob(b, &config.digest, config.size),
                layers: layers.iter().map(|l| blob(b, &l.digest, l.size)).collect(),
            },
        ),
        ParsedManifest::Index { media_type, children } => (
            media_type.clone(),
            ManifestKind::Index {
                children: children
                    .iter()
                    .map(|c| {
                        let platform = (c.os.is_some() || c.architecture.is_some()).then(|| Platform {
                            os: c.os.clone().unwrap_or_default(),
                            architecture: c.architecture.clone().unwrap_or_default(),
                            variant: c.variant.clone(),
                        });
                        (blob(b, &c.digest, c.size), platform)
                    })
                    .collect(),
            },
        ),
    };
    b.manifest(Manifest {
        digest: id,
        media_type,
        size,
        kind,
        created,
    });
}

/// Why an image (or an index through one of its children) is unusable, if it is: `broken`
/// holds the reasons of manifests that could not be read, `manifest_of` the parsed ones.
pub fn broken_reason<'a>(
    digest: &str,
    manifest_of: impl Fn(&str) -> Option<&'a ParsedManifest>,
    broken: &std::collections::HashMap<String, String>,
) -> Option<String> {
    if let Some(r) = broken.get(digest) {
        return Some(r.clone());
    }
    if let Some(ParsedManifest::Index { children, .. }) = manifest_of(digest) {
        for c in children {
            if let Some(r) = broken.get(&c.digest) {
                return Some(format!("child {}: {r}", c.digest));
            }
        }
    }
    None
}

pub fn parse_manifest(body: &[u8], content_type: Option<&str>) -> Result<ParsedManifest, String> {
    let raw: RawManifest = serde_json::from_slice(body).map_err(|e| format!("manifest is not valid JSON: {e}"))?;
    if raw.schema_version == Some(1) {
        return Err("schema 1 manifest (deprecated format) is not supported".into());
    }
    let media_type = raw
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string()))
        .unwrap_or_default();
    let is_index =
        media_type == DOCKER_LIST || media_type == OCI_INDEX || (raw.manifests.is_some() && raw.layers.is_none());
    if is_index {
        let children = raw.manifests.ok_or("index has no \"manifests\" field")?;
        let children = children
            .into_iter()
            .map(|c| {
                check_digest(&c.digest)?;
                let p = c.platform;
                Ok(ChildDescriptor {
                    digest: c.digest,
                    size: c.size,
                    os: p.as_ref().and_then(|p| p.os.clone()),
                    architecture: p.as_ref().and_then(|p| p.architecture.clone()),
                    variant: p.and_then(|p| p.variant),
                })
            })
            .collect::<Result<_, String>>()?;
        let media_type = if media_type.is_empty() {
            OCI_INDEX.to_string()
        } else {
            media_type
        };
        return Ok(ParsedManifest::Index { media_type, children });
    }
    let config = raw.config.ok_or("manifest has no \"config\" field")?;
    check_digest(&config.digest)?;
    let layers = raw
        .layers
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            check_digest(&l.digest).map(|()| Descriptor {
                digest: l.digest,
                size: l.size,
            })
        })
        .collect::<Result<_, String>>()?;
    let media_type = if media_type.is_empty() {
        OCI_MANIFEST.to_string()
    } else {
        media_type
    };
    Ok(ParsedManifest::Image {
        media_type,
        config: Descriptor {
            digest: config.digest,
            size: config.size,
        },
        layers,
    })
}

fn check_digest(d: &str) -> Result<(), String> {
    if crate::model::digest::is_valid_digest(d) {
        Ok(())
    } else {
        Err(format!("invalid digest {d:?} in manifest"))
    }
}

/// The image creation time (Unix seconds) from a config blob's `created` field.
pub fn parse_config_created(body: &[u8]) -> Result<Option<i64>, String> {
    #[derive(Deserialize)]
    struct Config {
        created: Option<String>,
    }
    let c: Config = serde_json::from_slice(body).map_err(|e| format!("config blob is not valid JSON: {e}"))?;
    let Some(created) = c.created else { return Ok(None) };
    time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(t.unix_timestamp()))
        .map_err(|e| format!("config \"created\" {created:?} is not RFC 3339: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_docker_and_oci_images_and_indexes() {
        let img = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"digest":"{}","size":7}},"layers":[{{"digest":"{}","size":100}}]}}"#,
            d('a'),
            d('b')
        );
        match parse_manifest(img.as_bytes(), None).unwrap() {
            ParsedManifest::Image {
                media_type,
                config,
                layers,
            } => {
                assert_eq!(media_type, DOCKER_MANIFEST);
                assert_eq!(config.size, 7);
                assert_eq!(
                    layers,
                    vec![Descriptor {
                        digest: d('b'),
                        size: 100
                    }]
                );
            }
            other => panic!("{other:?}"),
        }
        let oci_no_media_type = format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":7}},"layers":[]}}"#,
            d('a')
        );
        assert!(matches!(
            parse_manifest(oci_no_media_type.as_bytes(), Some("application/vnd.oci.image.manifest.v1+json")).unwrap(),
            ParsedManifest::Image { media_type, .. } if media_type == OCI_MANIFEST
        ));
        let idx = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"digest":"{}","size":500,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#,
            d('c')
        );
        match parse_manifest(idx.as_bytes(), None).unwrap() {
            ParsedManifest::Index { children, .. } => {
                assert_eq!(children[0].architecture.as_deref(), Some("arm64"));
                assert_eq!(children[0].size, 500);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_garbage_schema1_and_bad_digests_with_a_reason() {
        assert!(
            parse_manifest(b"not json", None)
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            parse_manifest(br#"{"schemaVersion":1}"#, None)
                .unwrap_err()
                .contains("schema 1")
        );
        let bad = r#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#;
        assert!(
            parse_manifest(bad.as_bytes(), None)
                .unwrap_err()
                .contains("invalid digest")
        );
        assert!(
            parse_manifest(br#"{"schemaVersion":2}"#, None)
                .unwrap_err()
                .contains("config")
        );
    }

    #[test]
    fn config_creation_time_is_read_as_unix_seconds() {
        assert_eq!(
            parse_config_created(br#"{"created":"2024-01-15T10:30:00Z"}"#).unwrap(),
            Some(1_705_314_600)
        );
        assert_eq!(parse_config_created(br#"{"architecture":"amd64"}"#).unwrap(), None);
        assert!(parse_config_created(br#"{"created":"yesterday"}"#).is_err());
    }
}
