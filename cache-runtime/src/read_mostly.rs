//! A map read on every call and written rarely (a namespace's generation,
//! a tracked generation key): readers take no lock and write no memory that
//! other threads read, so readers on many threads do not pass a cache line
//! back and forth as they would with a read lock's counter; a writer copies
//! the map and swaps the copy in.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

use arc_swap::ArcSwap;

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// See the module documentation.
pub(crate) struct ReadMostly<K, V> {
    map: ArcSwap<Map<K, V>>,
}

impl<K: Hash + Eq + Clone, V: Clone> ReadMostly<K, V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        ReadMostly {
            map: ArcSwap::from_pointee(Map::default()),
        }
    }

    /// `f` of the value for `key`, if there is one.
    #[inline]
    pub(crate) fn read<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.load().get(key).map(f)
    }

    /// Changes the map with `f`, which may run more than once when writers
    /// race (each time on a fresh copy of the current map).
    pub(crate) fn update(&self, mut f: impl FnMut(&mut Map<K, V>)) {
        self.map.rcu(|current| {
            let mut next = Map::clone(current);
            f(&mut next);
            next
        });
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for ReadMostly<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> std::fmt::Debug for ReadMostly<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadMostly").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_see_every_update_and_racing_updates_all_land() {
        let map: ReadMostly<String, u64> = ReadMostly::new();
        assert_eq!(map.read("a", |v| *v), None);
        map.update(|m| {
            m.insert("a".into(), 1);
        });
        assert_eq!(map.read("a", |v| *v), Some(1));
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let map = &map;
                s.spawn(move || {
                    for i in 0..100 {
                        map.update(|m| {
                            m.insert(format!("{t}-{i}"), i);
                        });
                    }
                });
            }
        });
        for t in 0..4 {
            for i in 0..100 {
                assert_eq!(map.read(format!("{t}-{i}").as_str(), |v| *v), Some(i));
            }
        }
    }
}
