//! Interned content digests: every `sha256:...` string is stored once and referred to by a
//! small integer, so the space engine works on dense arrays instead of string maps.

use std::collections::HashMap;

/// Index of an interned digest in [`Digests`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DigestId(pub u32);

/// Interner for digest strings.
#[derive(Debug, Default, Clone)]
pub struct Digests {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, DigestId>,
}

impl Digests {
    /// Returns the id of `digest`, interning it on first sight.
    pub fn intern(&mut self, digest: &str) -> DigestId {
        if let Some(id) = self.index.get(digest) {
            return *id;
        }
        let id = DigestId(u32::try_from(self.names.len()).expect("fewer than 4G digests"));
        let name: Box<str> = digest.into();
        self.names.push(name.clone());
        self.index.insert(name, id);
        id
    }

    /// The id of an already interned digest.
    pub fn get(&self, digest: &str) -> Option<DigestId> {
        self.index.get(digest).copied()
    }

    /// The digest string of `id`.
    pub fn name(&self, id: DigestId) -> &str {
        &self.names[id.0 as usize]
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
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
