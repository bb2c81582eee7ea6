//! The arguments as a local tier keeps and compares them: their canonical
//! bytes, or (in the per-thread fronts) a lone integer argument as itself.
//! A seeded hash that is cheap for the short encodings most keys have (a
//! number is 17 bytes, a short string a little more), and a copy held
//! inline when it is short, compared without a call to `memcmp`.

use std::hash::BuildHasher;

/// Encodings up to this length are held inline.
const INLINE: usize = 32;

/// Hashes argument bytes: seeded per tier, so that which arguments collide
/// differs between processes and cannot be planned.
pub(crate) struct ArgsHasher {
    seed: [u64; 2],
    long: foldhash::fast::RandomState,
}

impl Default for ArgsHasher {
    fn default() -> Self {
        let long = foldhash::fast::RandomState::default();
        let seed = [long.hash_one(1u8), long.hash_one(2u8)];
        ArgsHasher { seed, long }
    }
}

/// A 64×64-bit multiply, its halves folded together: the mixing step of
/// foldhash and wyhash.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

#[inline]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The hash of a lone integer with `seed` (one multiply): what
/// [`ArgsHasher::hash_query`] gives it, for callers that hold the seed.
#[inline(always)]
pub(crate) fn hash_int(seed: [u64; 2], v: i128) -> u64 {
    let [s0, s1] = seed;
    fold((v as u64) ^ s0, ((v >> 64) as u64) ^ s1)
}

impl ArgsHasher {
    /// The hash of a query: of its bytes, or of its integer (one multiply).
    #[inline]
    pub(crate) fn hash_query(&self, query: Query<'_>) -> u64 {
        match query {
            Query::Int(v) => hash_int(self.seed, v),
            Query::Bytes(bytes) => self.hash(bytes),
        }
    }

    /// The seed of integers' hashes (see [`hash_int`]).
    pub(crate) fn int_seed(&self) -> [u64; 2] {
        self.seed
    }

    /// The hash of `bytes`. From 8 to 32 bytes: four words read from both
    /// ends (they overlap for shorter inputs, so every byte counts) and the
    /// length, mixed by two folded multiplies. Other lengths: foldhash.
    #[inline]
    pub(crate) fn hash(&self, bytes: &[u8]) -> u64 {
        let n = bytes.len();
        if !(8..=INLINE).contains(&n) {
            return self.long.hash_one(bytes);
        }
        let (a, d) = (word(bytes, 0), word(bytes, n - 8));
        let (b, c) = if n > 16 {
            (word(bytes, 8), word(bytes, n - 16))
        } else {
            (d, a)
        };
        let [s0, s1] = self.seed;
        let x = fold(a ^ s0, b ^ s1 ^ n as u64);
        let y = fold(c ^ s1, d ^ s0);
        fold(x ^ s1, y ^ s0.rotate_left(23))
    }
}

/// The key arguments of a call, as a tier is asked for them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Query<'a> {
    /// One integer argument and nothing else.
    Int(i128),
    /// The canonical bytes of the arguments.
    Bytes(&'a [u8]),
}

/// Key arguments as a front holds them.
#[derive(Clone)]
pub(crate) enum FrontKey {
    /// One integer argument.
    Int(i128),
    /// The canonical bytes.
    Bytes(ArgBytes),
}

impl FrontKey {
    /// A copy of `query`.
    pub(crate) fn new(query: Query<'_>) -> Self {
        match query {
            Query::Int(v) => FrontKey::Int(v),
            Query::Bytes(bytes) => FrontKey::Bytes(ArgBytes::new(bytes)),
        }
    }

    /// Whether this is `query`. (A lone integer is never compared with
    /// bytes: a function's calls all ask by the same kind.)
    #[inline(always)]
    pub(crate) fn is(&self, query: Query<'_>) -> bool {
        match (self, query) {
            (FrontKey::Int(a), Query::Int(b)) => *a == b,
            (FrontKey::Bytes(a), Query::Bytes(b)) => a.is(b),
            _ => false,
        }
    }
}

/// Argument bytes as a tier holds them.
#[derive(Clone)]
pub(crate) enum ArgBytes {
    /// Short ones: the bytes, zero after `len`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// Longer ones.
    Heap(Box<[u8]>),
}

impl ArgBytes {
    /// A copy of `bytes`.
    pub(crate) fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= INLINE {
            let mut inline = [0; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            ArgBytes::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            ArgBytes::Heap(bytes.into())
        }
    }

    /// Whether these are `other`.
    #[inline]
    pub(crate) fn is(&self, other: &[u8]) -> bool {
        match self {
            ArgBytes::Inline { len, bytes } => {
                let n = other.len();
                if usize::from(*len) != n {
                    return false;
                }
                // Words from both ends, as the hash reads them; shorter
                // ones byte by byte.
                if n >= 16 {
                    let ends = |b: &[u8]| {
                        (
                            u128::from(word(b, 0)) | u128::from(word(b, 8)) << 64,
                            u128::from(word(b, n - 16)) | u128::from(word(b, n - 8)) << 64,
                        )
                    };
                    ends(&bytes[..n]) == ends(other)
                } else if n >= 8 {
                    word(bytes, 0) == word(other, 0) && word(bytes, n - 8) == word(other, n - 8)
                } else {
                    bytes[..n] == *other
                }
            }
            ArgBytes::Heap(bytes) => **bytes == *other,
        }
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            ArgBytes::Inline { len, bytes } => &bytes[..usize::from(*len)],
            ArgBytes::Heap(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_exactly_when_the_bytes_are() {
        // Every length around the inline bound and the word boundaries,
        // with a difference at each position in turn.
        for n in 0..=INLINE + 8 {
            let a: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37)).collect();
            let held = ArgBytes::new(&a);
            assert!(held.is(&a), "length {n}");
            assert_eq!(held.as_slice(), &a[..]);
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!held.is(&b), "length {n}, byte {i} differs");
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!held.is(&longer), "length {n} vs {}", n + 1);
            if n > 0 {
                assert!(!held.is(&a[..n - 1]), "length {n} vs {}", n - 1);
            }
        }
    }

    #[test]
    fn every_byte_moves_the_hash_and_seeds_differ() {
        let h = ArgsHasher::default();
        for n in 0..=INLINE + 8 {
            let a = vec![7u8; n];
            for i in 0..n {
                let mut b = a.clone();
                b[i] = 8;
                assert_ne!(h.hash(&a), h.hash(&b), "length {n}, byte {i}");
            }
        }
        // Same bytes, different lengths (zero padding must not collide).
        assert_ne!(h.hash(&[0; 9]), h.hash(&[0; 10]));
        assert_ne!(h.hash(&[0; 17]), h.hash(&[0; 18]));
        let other = ArgsHasher::default();
        assert_ne!(h.hash(&[1; 17]), other.hash(&[1; 17]));
    }
}
