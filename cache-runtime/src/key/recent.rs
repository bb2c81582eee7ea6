//! Digests computed lately on this thread, for short arguments: a call
//! whose arguments were hashed here a moment ago (a hot key, which is what
//! a cache serves) gets its digest back without a keyed BLAKE3 run, about
//! a twentieth of a Redis hit's instructions.
//!
//! A small table per thread, [`SETS`] sets of [`WAYS`] entries (8 KiB, on
//! the heap, made when the thread first hashes arguments: a thread-local of
//! that size would be reserved in every thread of the process): an
//! entry holds the hasher it was made with (by serial number, so another
//! key, as another manager's secret gives, never answers), the canonical
//! bytes in full and their digest. Arguments may sit in either of two sets
//! chosen by their hash, as in the local tier's fronts (with one slot per
//! key, 64 hot integers kept evicting each other); a full set loses its
//! oldest entry. Nothing but speed depends on what is there: only the
//! digest comes from here, and the bytes are compared in full.

use std::cell::RefCell;

use crate::local::front::choose_set;

/// Sets per thread (a power of two), of [`WAYS`] entries.
const SETS: usize = 32;
/// Entries per set.
const WAYS: usize = 4;
/// The longest canonical arguments remembered: integers, short strings
/// and small tuples of them.
pub(crate) const MAX_BYTES: usize = 24;

#[derive(Clone, Copy)]
struct Entry {
    /// The hash of the bytes (see `hash`), compared first.
    tag: u64,
    /// The hasher's serial number; 0: an empty entry.
    hasher: u64,
    len: u8,
    bytes: [u8; MAX_BYTES],
    digest: [u8; 16],
}

const EMPTY: Entry = Entry {
    tag: 0,
    hasher: 0,
    len: 0,
    bytes: [0; MAX_BYTES],
    digest: [0; 16],
};

/// A set: its entries, newest first.
type Set = [Entry; WAYS];

struct Table {
    sets: [Set; SETS],
    /// Which of two full sets loses an entry next (alternates).
    evict_second: bool,
}

thread_local! {
    static RECENT: RefCell<Option<Box<Table>>> = const { RefCell::new(None) };
}

/// The hash of `bytes` (short ones: at most [`MAX_BYTES`]), of their first
/// and last eight bytes and their length.
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    let mut x = u64::from_le_bytes(word) ^ (bytes.len() as u64).rotate_left(56);
    if let Some(last) = bytes.len().checked_sub(8).filter(|&at| at > 0) {
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&bytes[last..]);
        x ^= u64::from_le_bytes(tail).rotate_left(29);
    }
    // A full mix (as splitmix64 finishes), so that both sets depend on
    // every byte read.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The two sets arguments with `hash` may sit in.
fn sets_of(hash: u64) -> [usize; 2] {
    [
        hash as usize & (SETS - 1),
        (hash >> 32) as usize & (SETS - 1),
    ]
}

impl Entry {
    #[inline]
    fn is(&self, tag: u64, hasher: u64, bytes: &[u8]) -> bool {
        self.tag == tag
            && self.hasher == hasher
            && usize::from(self.len) == bytes.len()
            && self.bytes[..bytes.len()] == *bytes
    }
}

/// The digest of `bytes` made by hasher `hasher`, if this thread made it
/// lately.
#[inline]
pub(crate) fn get(hasher: u64, bytes: &[u8]) -> Option<[u8; 16]> {
    if bytes.len() > MAX_BYTES {
        return None;
    }
    RECENT
        .try_with(|recent| {
            let recent = recent.try_borrow().ok()?;
            let recent = recent.as_deref()?;
            let tag = hash(bytes);
            for at in sets_of(tag) {
                for entry in &recent.sets[at] {
                    if entry.is(tag, hasher, bytes) {
                        return Some(entry.digest);
                    }
                }
            }
            None
        })
        .ok()
        .flatten()
}

/// Remembers that hasher `hasher` made `digest` of `bytes`.
pub(crate) fn put(hasher: u64, bytes: &[u8], digest: [u8; 16]) {
    if bytes.len() > MAX_BYTES {
        return;
    }
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            let recent = recent.get_or_insert_with(|| {
                Box::new(Table {
                    sets: [[EMPTY; WAYS]; SETS],
                    evict_second: false,
                })
            });
            let tag = hash(bytes);
            let mut entry = Entry {
                tag,
                hasher,
                len: bytes.len() as u8,
                bytes: [0; MAX_BYTES],
                digest,
            };
            entry.bytes[..bytes.len()].copy_from_slice(bytes);
            let sets = sets_of(tag);
            let free = |set: &Set| set[WAYS - 1].hasher == 0;
            let (first_free, second_free) =
                (free(&recent.sets[sets[0]]), free(&recent.sets[sets[1]]));
            let at = choose_set(sets, first_free, second_free, &mut recent.evict_second);
            let set = &mut recent.sets[at];
            set.rotate_right(1);
            set[0] = entry;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_answers_its_own_hasher_and_bytes_only() {
        put(7, b"abc", [1; 16]);
        assert_eq!(get(7, b"abc"), Some([1; 16]));
        assert_eq!(get(8, b"abc"), None, "another hasher");
        assert_eq!(get(7, b"abd"), None, "other bytes");
        assert_eq!(get(7, b"ab"), None, "a prefix");
        let long = [5u8; MAX_BYTES + 1];
        put(7, &long, [2; 16]);
        assert_eq!(get(7, &long), None, "too long to keep");
        // Every length up to the bound is kept and told apart.
        for len in 0..=MAX_BYTES {
            let bytes: Vec<u8> = (0..len as u8).collect();
            put(9, &bytes, [len as u8; 16]);
            assert_eq!(get(9, &bytes), Some([len as u8; 16]), "{len} bytes");
        }
    }

    #[test]
    fn sixty_four_hot_integers_all_stay() {
        let key = |i: u64| [&[0x10][..], &i.to_le_bytes()].concat();
        for round in 0..3 {
            for i in 0..64u64 {
                if get(11, &key(i)).is_none() {
                    assert_eq!(round, 0, "integer {i} left the table");
                    put(11, &key(i), [i as u8; 16]);
                }
            }
        }
    }
}
