//! The inventory a registry scan would produce for pushed tag specs, computed locally from
//! [`build_image`]/[`build_index`] (nothing is contacted): what the demo needs.

use super::{TagSpec, TagTarget, build_image, build_index, sha256_digest};
use crate::model::{Blob, Inventory, InventoryBuilder, Manifest, ManifestKind, Platform};

/// The generated-at time of a world's snapshot (its "now").
pub fn snapshot_time(world: &super::World) -> i64 {
    world.now
}

/// Builds the inventory of `specs` in `registry`. Tags listed in `broken` get a missing config
/// (as the seeding makes them). Every blob and manifest size is multiplied by `scale`, so a demo
/// can show realistic sizes while generating only kilobytes.
pub fn inventory(registry: &str, specs: &[TagSpec], broken: &[(String, String)], scale: u64) -> Inventory {
    let mut b = InventoryBuilder::new(registry);
    let image_manifest = |b: &mut InventoryBuilder, img: &super::ImageSpec| {
        let built = build_image(img);
        let digest = sha256_digest(&built.manifest);
        let d = b.digest(&digest);
        if !b.has_manifest(d) {
            let config = Blob {
                digest: b.digest(&sha256_digest(&built.config)),
                size: built.config.len() as u64 * scale,
            };
            let layers = built
                .layers
                .iter()
                .map(|(l, dg)| Blob {
                    digest: b.digest(dg),
                    size: l.size * scale,
                })
                .collect();
            b.manifest(Manifest {
                digest: d,
                media_type: built.media_type.to_string(),
                size: built.manifest.len() as u64,
                kind: ManifestKind::Image { config, layers },
                created: Some(img.created),
            });
        }
        (d, digest, built.manifest.len() as u64, built.config)
    };
    for spec in specs {
        let repo = b.repo(&spec.repository);
        let is_broken = broken.iter().any(|(r, t)| *r == spec.repository && *t == spec.tag);
        match &spec.target {
            TagTarget::Image(img) => {
                let (d, _, _, config) = image_manifest(&mut b, img);
                if is_broken {
                    let reason = format!("config blob {} is missing", sha256_digest(&config));
                    b.broken_tag(repo, &spec.tag, Some(d), &reason);
                } else {
                    b.tag(repo, &spec.tag, d);
                }
            }
            TagTarget::Index { flavor, images } => {
                let children = images
                    .iter()
                    .map(|img| {
                        let (d, _, size, _) = image_manifest(&mut b, img);
                        let platform = Platform {
                            os: "linux".into(),
                            architecture: img.architecture.clone(),
                            variant: None,
                        };
                        (Blob { digest: d, size }, Some(platform))
                    })
                    .collect();
                let (media_type, body) = build_index(*flavor, images);
                let d = b.digest(&sha256_digest(&body));
                if !b.has_manifest(d) {
                    b.manifest(Manifest {
                        digest: d,
                        media_type: media_type.to_string(),
                        size: body.len() as u64,
                        kind: ManifestKind::Index { children },
                        created: images.iter().map(|i| i.created).max(),
                    });
                }
                b.tag(repo, &spec.tag, d);
            }
        }
    }
    b.finish()
}
