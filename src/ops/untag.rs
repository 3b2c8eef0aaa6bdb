//! Removing one tag of a digest that other tags keep (regctl's safe single-tag delete):
//! Distribution can only delete by digest, which takes every tag on it. Instead the tag is
//! pointed at a throwaway manifest unique to this run — an empty OCI image carrying the tag's
//! name and a nonce — and the throwaway is deleted by digest. The sibling tags keep the image;
//! nothing is freed by GC (the image stays), so the plan counts 0 bytes for it.
//!
//! The registry still has no conditional write: a push onto the tag after the last look and
//! before the throwaway's PUT is overwritten. The look is repeated right before the PUT, so that
//! window is the one a DELETE has (RELIABILITY.md).

use super::execute::Outcome;
use super::last_look::LastLook;
use crate::model::digest::sha256_digest;
use crate::sources::registry::{DeleteAnswer, RegistryClient};

/// The OCI empty descriptor's content (`application/vnd.oci.empty.v1+json`).
const EMPTY_CONFIG: &[u8] = b"{}";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The annotation that names what the throwaway stands for.
pub const ANNOTATION: &str = "io.github.registry-cleaner.untag";

/// The throwaway manifest for `repo:tag`: unique per call (a nonce from the clock, the process
/// and a counter), so deleting it by digest can never take anyone else's manifest.
pub fn throwaway(repo: &str, tag: &str) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let nonce = sha256_digest(
        format!(
            "{repo}:{tag}:{nanos}:{}:{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        )
        .as_bytes(),
    );
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": sha256_digest(EMPTY_CONFIG),
            "size": EMPTY_CONFIG.len(),
        },
        "layers": [],
        "annotations": {
            ANNOTATION: format!("{repo}:{tag}"),
            "io.github.registry-cleaner.nonce": nonce,
        },
    });
    serde_json::to_vec(&body).expect("a JSON value serializes")
}

/// Removes `tags` of `repo` that point at `digest`, leaving the manifest (and its other tags).
/// Each tag: look (still at `digest`, and listed by the fresh scan?), push the throwaway onto
/// it, delete the throwaway by digest and confirm it is gone. If the PUT's answer is lost, or
/// the throwaway cannot be deleted, the tag is pointed back at `digest` (its original bytes,
/// so the same digest) rather than left on an empty image.
pub(super) async fn untag(
    client: &RegistryClient,
    look: &LastLook,
    journal: &super::execute::Journal<'_>,
    repo: &str,
    digest: &str,
    tags: &[String],
) -> Outcome {
    let failed = |error: String| Outcome::Failed { error };
    // One write-ahead line for the whole item, before its first write (the throwaway's config
    // blob); it pairs with the item's outcome line (same action and target) and covers every
    // PUT, DELETE and put-back below.
    if let Err(error) = journal.announce("delete-manifest", &super::execute::target(repo, digest, tags)) {
        return failed(error);
    }
    let config = sha256_digest(EMPTY_CONFIG);
    if let Err(e) = client.push_blob(repo, &config, EMPTY_CONFIG.to_vec()).await {
        return failed(format!(
            "uploading the throwaway's empty config (untag needs push permission): {e}"
        ));
    }
    // The original bytes, to put the tag back exactly if a step after the PUT goes wrong.
    let original = match client.get_manifest(repo, digest).await {
        Ok(r) if r.digest == digest => r,
        Ok(r) => return failed(format!("the registry served {} for {digest}", r.digest)),
        Err(e) => return failed(format!("reading {digest} before untagging: {e}")),
    };
    let media_type = original
        .content_type
        .clone()
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string());
    let put_back = async |tag: &str, why: String| -> Outcome {
        match client
            .push_manifest(repo, tag, &media_type, original.body.clone())
            .await
        {
            Ok(d) if d == digest => failed(format!("{why}; tag {tag} was pointed back at {digest}")),
            Ok(d) => failed(format!(
                "{why}; putting tag {tag} back gave {d}, not {digest}: re-tag it by hand"
            )),
            Err(e) => failed(format!(
                "{why}; putting tag {tag} back at {digest} failed ({e}): re-tag it by hand"
            )),
        }
    };
    for tag in tags {
        match client.head_manifest(repo, tag).await {
            Ok(Some(d)) if d != digest => {
                return Outcome::Skipped {
                    reason: format!("tag {tag} moved to {d} just before untagging"),
                };
            }
            Ok(Some(_)) if !look.saw(repo, tag) => {
                return Outcome::Skipped {
                    reason: format!(
                        "tag {tag} was not in the fresh scan and points at this digest again: re-pushed since"
                    ),
                };
            }
            Ok(Some(_)) => {}
            Ok(None) => continue,
            Err(e) => return failed(format!("re-checking tag {tag}: {e}")),
        }
        let body = throwaway(repo, tag);
        let mine = sha256_digest(&body);
        if let Err(e) = client.push_manifest(repo, tag, MANIFEST_MEDIA_TYPE, body).await {
            // The PUT may have landed although its answer did not.
            return match client.head_manifest(repo, tag).await {
                Ok(Some(d)) if d == digest => failed(format!(
                    "pointing tag {tag} at a throwaway manifest: {e}; the tag is unchanged"
                )),
                Ok(Some(d)) if d == mine => {
                    put_back(tag, format!("pointing tag {tag} at a throwaway manifest: {e}")).await
                }
                other => failed(format!(
                    "pointing tag {tag} at a throwaway manifest: {e}; the tag now answers {other:?}"
                )),
            };
        }
        // Someone may have pushed onto the tag after our PUT: theirs stands. The throwaway is
        // ours alone either way, so deleting it by digest takes nothing else.
        let gone = match client.delete_manifest_answer(repo, &mine).await {
            Ok(DeleteAnswer::Accepted) | Ok(DeleteAnswer::NotFound { .. }) | Err(_) => {
                matches!(client.manifest_gone(repo, &mine).await, Ok(true))
            }
        };
        if !gone {
            return match client.head_manifest(repo, tag).await {
                Ok(Some(d)) if d == mine => {
                    put_back(tag, format!("the throwaway manifest {mine} could not be deleted")).await
                }
                _ => failed(format!(
                    "the throwaway manifest {mine} could not be deleted (no tag names it now): delete it by digest, it holds no layers"
                )),
            };
        }
    }
    Outcome::Untagged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_throwaway_is_unique_and_an_empty_oci_image() {
        let a = throwaway("r/e", "t");
        let b = throwaway("r/e", "t");
        assert_ne!(sha256_digest(&a), sha256_digest(&b));
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["layers"].as_array().unwrap().len(), 0);
        assert_eq!(v["config"]["digest"], sha256_digest(b"{}"));
        assert_eq!(v["annotations"][ANNOTATION], "r/e:t");
    }
}
