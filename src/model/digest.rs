//! Interned content digests: every `sha256:...` string is stored once and referred to by a
//! small integer, so the space engine works on dense arrays instead of string maps.

use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Index of an interned digest in [`Digests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DigestId(pub u32);

/// Interner for digest strings. Every string is stored once, back to back in one arena (a
/// million digests cost ~75 MB instead of ~240 MB as separate `String`s in a map and a list);
/// the hash table holds only ids.
#[derive(Default, Clone)]
pub struct Digests {
    arena: String,
    ends: Vec<u32>,
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for Digests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digests({} interned)", self.ends.len())
    }
}

impl Digests {
    /// Returns the id of `digest`, interning it on first sight.
    pub fn intern(&mut self, digest: &str) -> DigestId {
        let hash = self.hasher.hash_one(digest);
        let (arena, ends) = (&self.arena, &self.ends);
        if let Some(id) = self.index.find(hash, |&i| slice(arena, ends, i) == digest) {
            return DigestId(*id);
        }
        let id = u32::try_from(self.ends.len()).expect("fewer than 4G digests");
        self.arena.push_str(digest);
        self.ends
            .push(u32::try_from(self.arena.len()).expect("digest arena under 4 GB"));
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.index
            .insert_unique(hash, id, |&i| hasher.hash_one(slice(arena, ends, i)));
        DigestId(id)
    }

    /// The id of an already interned digest.
    pub fn get(&self, digest: &str) -> Option<DigestId> {
        let hash = self.hasher.hash_one(digest);
        self.index
            .find(hash, |&i| slice(&self.arena, &self.ends, i) == digest)
            .map(|i| DigestId(*i))
    }

    /// The digest string of `id`.
    pub fn name(&self, id: DigestId) -> &str {
        slice(&self.arena, &self.ends, id.0)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

fn slice<'a>(arena: &'a str, ends: &[u32], i: u32) -> &'a str {
    let end = ends[i as usize] as usize;
    let start = if i == 0 { 0 } else { ends[i as usize - 1] as usize };
    &arena[start..end]
}

/// True when `s` looks like `algorithm:hex` as the Distribution API requires.
pub fn is_valid_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let hex_len_ok = match alg {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => !hex.is_empty(),
    };
    !alg.is_empty() && hex_len_ok && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `sha256:<hex>` of `bytes`: the content address Distribution uses.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    let out = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in out {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// SplitMix64 step: a tiny, good-enough PRNG for synthetic data and temp names (not security).
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_the_same_digest_twice_returns_the_same_id() {
        let mut d = Digests::default();
        let a = d.intern("sha256:aa");
        let b = d.intern("sha256:bb");
        assert_eq!(d.intern("sha256:aa"), a);
        assert_ne!(a, b);
        assert_eq!(d.name(b), "sha256:bb");
        assert_eq!(d.len(), 2);
    }

    #[test]
    fn digest_validation_checks_algorithm_and_hex_length() {
        assert!(is_valid_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_valid_digest(&format!("sha256:{}", "a".repeat(63))));
        assert!(!is_valid_digest("sha256"));
        assert!(!is_valid_digest(&format!("sha256:{}", "g".repeat(64))));
    }
}
