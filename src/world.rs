//! Synthetic Domino-like registry content for tests, benchmarks and the demo: image specs
//! whose blob bytes are generated deterministically from a seed, so a spec can be pushed to a
//! real registry and its digests and sizes predicted exactly.

use sha2::{Digest as _, Sha256};

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
    Index { flavor: MediaFlavor, images: Vec<ImageSpec> },
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

pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    let out = h.finalize();
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in out {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SplitMix64 step: a tiny, good-enough PRNG for synthetic data (not for security).
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
