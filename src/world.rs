//! Synthetic Domino-like registry content for tests, benchmarks and the demo: image specs
//! whose blob bytes are generated deterministically from a seed, so a spec can be pushed to a
//! real registry and its digests and sizes predicted exactly.

pub mod bundle;
mod generate;
mod local;
pub mod seed;

pub use generate::{Expected, KEEP_REVISIONS, PodSpec, REGISTRY_HOST, WORLD_NOW, World, WorldSize, generate};
pub use local::{inventory, snapshot_time};

/// One layer: `size` bytes generated from `seed`. Equal (seed, size) pairs are the same blob,
/// which is how layers are shared between images and repositories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerSpec {
    pub seed: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaFlavor {
    Docker,
    Oci,
}

/// A single-platform image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    pub layers: Vec<LayerSpec>,
    /// Creation time written into the config blob (Unix seconds).
    pub created: i64,
    pub flavor: MediaFlavor,
    pub architecture: String,
    /// Distinguishes configs of otherwise identical images.
    pub label: String,
}

/// What a tag points at: one image, or an index over several platform images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagTarget {
    Image(ImageSpec),
    Index {
        flavor: MediaFlavor,
        images: Vec<ImageSpec>,
    },
}

/// `repository:tag → target`; two tags with equal targets share one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    pub repository: String,
    pub tag: String,
    pub target: TagTarget,
}

/// Deterministic pseudo-random bytes for a layer (not compressible, not all zero).
pub fn layer_bytes(layer: LayerSpec) -> Vec<u8> {
    let mut out = Vec::with_capacity(layer.size as usize);
    let mut state = layer.seed ^ 0x9E37_79B9_7F4A_7C15 ^ layer.size.rotate_left(17);
    while out.len() < layer.size as usize {
        state = splitmix(state);
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(layer.size as usize);
    out
}

pub use crate::model::digest::{sha256_digest, splitmix};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The bytes of one image as the registry stores them.
pub struct BuiltImage {
    pub config: Vec<u8>,
    pub layers: Vec<(LayerSpec, String)>,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
}

/// Serializes an image spec into its config and manifest JSON (deterministic).
pub fn build_image(spec: &ImageSpec) -> BuiltImage {
    let layers: Vec<(LayerSpec, String)> = spec
        .layers
        .iter()
        .map(|l| (*l, sha256_digest(&layer_bytes(*l))))
        .collect();
    let created = crate::report::rfc3339(spec.created);
    let config = serde_json::json!({
        "architecture": spec.architecture,
        "os": "linux",
        "created": created,
        "config": { "Labels": { "io.registry-cleaner.label": spec.label } },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>() },
    });
    let config = serde_json::to_vec(&config).expect("json");
    let (media_type, config_type, layer_type) = match spec.flavor {
        MediaFlavor::Docker => (
            DOCKER_MANIFEST,
            "application/vnd.docker.container.image.v1+json",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        MediaFlavor::Oci => (
            OCI_MANIFEST,
            "application/vnd.oci.image.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": { "mediaType": config_type, "digest": sha256_digest(&config), "size": config.len() },
        "layers": layers.iter().map(|(l, d)| serde_json::json!({ "mediaType": layer_type, "digest": d, "size": l.size })).collect::<Vec<_>>(),
    });
    BuiltImage {
        config,
        layers,
        manifest: serde_json::to_vec(&manifest).expect("json"),
        media_type,
    }
}

/// Pushes tag specs through the registry's HTTP API (blobs once per repository, children
/// before indexes). Returns the manifest digest of each tag, in order.
pub async fn push(
    client: &crate::sources::registry::RegistryClient,
    specs: &[TagSpec],
) -> Result<Vec<String>, crate::sources::registry::RegistryError> {
    let mut digests = Vec::with_capacity(specs.len());
    let mut pushed_blobs: std::collections::HashSet<(String, String)> = Default::default();
    for spec in specs {
        let repo = &spec.repository;
        let digest = match &spec.target {
            TagTarget::Image(img) => push_image(client, repo, img, &spec.tag, &mut pushed_blobs).await?,
            TagTarget::Index { flavor, images } => {
                for img in images {
                    let built = build_image(img);
                    push_image(client, repo, img, &sha256_digest(&built.manifest), &mut pushed_blobs).await?;
                }
                let (media_type, body) = build_index(*flavor, images);
                client.push_manifest(repo, &spec.tag, media_type, body).await?
            }
        };
        digests.push(digest);
    }
    Ok(digests)
}

/// The index (manifest list) body over `images`, as [`push`] uploads it.
pub fn build_index(flavor: MediaFlavor, images: &[ImageSpec]) -> (&'static str, Vec<u8>) {
    let children: Vec<serde_json::Value> = images
        .iter()
        .map(|img| {
            let built = build_image(img);
            serde_json::json!({
                "mediaType": built.media_type, "digest": sha256_digest(&built.manifest), "size": built.manifest.len(),
                "platform": { "os": "linux", "architecture": img.architecture },
            })
        })
        .collect();
    let media_type = match flavor {
        MediaFlavor::Docker => DOCKER_LIST,
        MediaFlavor::Oci => OCI_INDEX,
    };
    let body =
        serde_json::to_vec(&serde_json::json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": children }))
            .expect("json");
    (media_type, body)
}

/// The manifest digest a tag gets when pushed (computed locally, nothing is contacted).
pub fn tag_digest(target: &TagTarget) -> String {
    match target {
        TagTarget::Image(img) => sha256_digest(&build_image(img).manifest),
        TagTarget::Index { flavor, images } => sha256_digest(&build_index(*flavor, images).1),
    }
}

async fn push_image(
    client: &crate::sources::registry::RegistryClient,
    repo: &str,
    img: &ImageSpec,
    reference: &str,
    pushed: &mut std::collections::HashSet<(String, String)>,
) -> Result<String, crate::sources::registry::RegistryError> {
    let built = build_image(img);
    for (layer, digest) in &built.layers {
        if pushed.insert((repo.to_string(), digest.clone())) {
            client.push_blob(repo, digest, layer_bytes(*layer)).await?;
        }
    }
    let config_digest = sha256_digest(&built.config);
    if pushed.insert((repo.to_string(), config_digest.clone())) {
        client.push_blob(repo, &config_digest, built.config.clone()).await?;
    }
    client
        .push_manifest(repo, reference, built.media_type, built.manifest)
        .await
}

/// A small but complete Domino-like registry: environments whose revisions share a base
/// and an environment layer, models built on environment layers (shared across
/// repositories), Docker and OCI media types, a multi-arch index, two tags on one digest,
/// and a `buildcache` tag. Sizes are kilobytes so tests push it in well under a second.
pub fn sample_registry(prefix: &str, now: i64) -> Vec<TagSpec> {
    let env_repo = format!("{prefix}/environment");
    let model_repo = format!("{prefix}/model");
    let base = LayerSpec { seed: 1, size: 60_000 };
    let envs = [
        "65a000000000000000000001",
        "65a000000000000000000002",
        "65a000000000000000000003",
    ];
    let mut out = Vec::new();
    let image = |layers: Vec<LayerSpec>, age_days: i64, flavor, label: String| ImageSpec {
        layers,
        created: now - age_days * 86_400,
        flavor,
        architecture: "amd64".into(),
        label,
    };
    for (e, env) in envs.iter().enumerate() {
        let env_layer = LayerSpec {
            seed: 100 + e as u64,
            size: 20_000 + 1_000 * e as u64,
        };
        for rev in 1..=3u64 {
            let unique = LayerSpec {
                seed: 1_000 + 10 * e as u64 + rev,
                size: 3_000 * rev,
            };
            let flavor = if e == 1 { MediaFlavor::Oci } else { MediaFlavor::Docker };
            let img = image(
                vec![base, env_layer, unique],
                100 - 10 * rev as i64,
                flavor,
                format!("{env}-{rev}"),
            );
            out.push(TagSpec {
                repository: env_repo.clone(),
                tag: format!("{env}-{rev}"),
                target: TagTarget::Image(img),
            });
        }
    }
    // Two tags on one digest: a re-tag of the first environment's third revision.
    let dup = out[2].target.clone();
    out.push(TagSpec {
        repository: env_repo.clone(),
        tag: format!("{}-3-release", envs[0]),
        target: dup,
    });
    // A multi-arch index for a fourth environment.
    let arch = |a: &str, seed: u64| ImageSpec {
        layers: vec![
            LayerSpec { seed, size: 15_000 },
            LayerSpec {
                seed: seed + 1,
                size: 4_000,
            },
        ],
        created: now - 20 * 86_400,
        flavor: MediaFlavor::Oci,
        architecture: a.into(),
        label: format!("multi-{a}"),
    };
    out.push(TagSpec {
        repository: env_repo.clone(),
        tag: "65a000000000000000000004-1".into(),
        target: TagTarget::Index {
            flavor: MediaFlavor::Oci,
            images: vec![arch("amd64", 500), arch("arm64", 600)],
        },
    });
    out.push(TagSpec {
        repository: env_repo.clone(),
        tag: "buildcache".into(),
        target: TagTarget::Image(image(
            vec![base, LayerSpec { seed: 900, size: 7_000 }],
            1,
            MediaFlavor::Docker,
            "buildcache".into(),
        )),
    });
    // Models built on environment revisions: base + env layer + revision layer + model layer.
    let models = ["65b000000000000000000001", "65b000000000000000000002"];
    for (m, model) in models.iter().enumerate() {
        let e = m;
        let env_layer = LayerSpec {
            seed: 100 + e as u64,
            size: 20_000 + 1_000 * e as u64,
        };
        let rev_layer = LayerSpec {
            seed: 1_000 + 10 * e as u64 + 3,
            size: 9_000,
        };
        for v in 1..=2u64 {
            let model_layer = LayerSpec {
                seed: 2_000 + 10 * m as u64 + v,
                size: 5_000 * v,
            };
            let img = image(
                vec![base, env_layer, rev_layer, model_layer],
                50 - v as i64,
                MediaFlavor::Docker,
                format!("{model}-v{v}"),
            );
            out.push(TagSpec {
                repository: model_repo.clone(),
                tag: format!("{model}-v{v}-20250101120000_abc{v}"),
                target: TagTarget::Image(img),
            });
        }
    }
    out
}
