//! Per-thread fronts of a function's local tier: a small set-associative
//! array per thread and function that answers repeated hits without touching
//! any memory another thread writes, so hits scale with threads (a shared
//! map's read lock is a write to a shared cache line, which threads then
//! pass back and forth).
//!
//! Where a front lives: in a `thread_local!` that `#[cached]` declares for
//! each function ([`FnFront`]) and hands to the drivers as a `static`, so
//! that its access compiles to an offset from the thread pointer. A hit
//! reads the thread-local and the front it points to, nothing else of the
//! function's: not the spec's tier cell, not a table of threads. (Fronts
//! used to be an array per tier indexed by a thread number; finding a
//! thread's cell and the tier behind the spec took a fifth of the hit:
//! 10.4 ns a `u64` hit then, 8.1 ns after, in a tight loop.) A lone
//! integer's lookup ([`FnFront::get_int`]) is inlined into the function
//! itself, a call and its register saves fewer: 5.2 ns.
//!
//! Layout: [`SETS`] sets of [`WAYS`] entries. A set keeps the hashes of its
//! entries together in front of them (one 32-byte line), so a lookup reads
//! that line and then only the entry whose hash matches. A key may live in
//! either of two sets chosen by its hash, and goes to one with a free way:
//! with one set per key, 64 keys cycled through 64 sets of 4 often put five
//! keys in one set, which then missed on every call (a cliff from 9 to 30 ns
//! per hit, depending on the tier's random seed); with two choices a
//! working set up to about half the front's size fits.
//!
//! Coherence: every entry of a front records the tier's epoch when its value
//! was read from the shared map, and is used only while the epoch is the
//! same. Every invalidation moves the epoch on twice, once before it clears
//! the shared map and once after; an odd epoch means one is under way. A
//! value is copied into a front only if the epoch was the same even number
//! before and after it was read: then no invalidation overlapped the read,
//! and any later one changes the epoch. (A front therefore forgets all its
//! entries on any invalidation of its tier; fronts are small and refill from
//! the shared map.)
//!
//! Bounds: a front is made only for threads that hold an index
//! (`thread_slot`, at most [`MAX_THREADS`] live threads at once); others use
//! the shared map alone, so memory stays bounded by threads times functions
//! used. A front is bound to the first tier it serves: a second
//! instantiation of a generic function (another value type, sharing the
//! function's `static`s) uses the shared map alone, as it has no tier of its
//! own either.

use std::any::TypeId;
use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

use super::args::{hash_int, FrontKey, Query};
use super::clock::{self, Millis};
use super::LocalTier;
#[cfg(doc)]
use crate::thread_slot::MAX_THREADS;
use crate::{stats, thread_slot};

/// Sets per front (a power of two), of [`WAYS`] entries each.
const SETS: usize = 64;
/// Entries per set.
const WAYS: usize = 4;

struct Entry<V> {
    args: FrontKey,
    value: V,
    expires_at: Millis,
    epoch: u64,
}

/// One set: the hashes of its entries (0: a free way), then the entries,
/// most recently filled first. (In this order: the hashes are read first.)
#[repr(C)]
struct Set<V> {
    tags: [u64; WAYS],
    entries: [Option<Entry<V>>; WAYS],
}

/// A hash as a tag: never 0, which marks a free way.
#[inline(always)]
fn tag(hash: u64) -> u64 {
    hash | 1
}

/// Of a key's two sets, the one a new entry goes to: the first with a free
/// way, else one of the two in turn (`evict_second` alternates), whose
/// oldest entry then leaves. (Also the choice of the per-thread digest
/// table, `key::recent`.)
#[inline]
pub(crate) fn choose_set(
    [first, second]: [usize; 2],
    first_free: bool,
    second_free: bool,
    evict_second: &mut bool,
) -> usize {
    if first_free {
        return first;
    }
    if second_free {
        return second;
    }
    *evict_second = !*evict_second;
    if *evict_second {
        second
    } else {
        first
    }
}

/// The two sets a key with `hash` may live in.
#[inline(always)]
fn sets_of(hash: u64) -> [usize; 2] {
    [
        hash as usize & (SETS - 1),
        (hash >> 32) as usize & (SETS - 1),
    ]
}

impl<V> Set<V> {
    /// The way holding `args` (hashed to `tag`).
    #[inline(always)]
    fn find(&self, tag: u64, args: Query<'_>) -> Option<usize> {
        (0..WAYS).find(|&w| {
            self.tags[w] == tag && self.entries[w].as_ref().is_some_and(|e| e.args.is(args))
        })
    }

    /// Puts `entry` first; the last entry leaves if the set was full.
    fn push(&mut self, tag: u64, entry: Entry<V>) {
        self.tags.rotate_right(1);
        self.entries.rotate_right(1);
        self.tags[0] = tag;
        self.entries[0] = Some(entry);
    }
}

/// A bound front, typed.
struct Front<'a, V: 'static> {
    tier: &'static LocalTier<V>,
    sets: &'a mut [Set<V>; SETS],
    evict_second: &'a mut bool,
    /// This thread's line of the tier's hit counter.
    hit_line: Option<&'static AtomicU64>,
    /// The tier's seed for lone integers.
    int_seed: [u64; 2],
}

impl<V: Clone + Send + Sync + 'static> Front<'_, V> {
    /// The entry for `args` if it holds a value from the tier's current
    /// epoch that has not expired, counted as a hit (before the caller
    /// clones the value, which is then the last thing it does).
    #[inline(always)]
    fn live(&self, args: Query<'_>) -> Option<&Entry<V>> {
        // A lone integer hashes with the seed kept here: not read through
        // the tier, one load fewer before the set.
        let hash = match args {
            Query::Int(v) => hash_int(self.int_seed, v),
            Query::Bytes(_) => self.tier.map.hash_query(args),
        };
        let entry = self.get(hash, args)?;
        if entry.epoch != self.tier.epoch() || !clock::is_before(entry.expires_at) {
            return None;
        }
        if let Some(line) = self.hit_line {
            stats::add_to_own(line);
        }
        Some(entry)
    }
}

impl<V> Front<'_, V> {
    #[inline(always)]
    fn get(&self, hash: u64, args: Query<'_>) -> Option<&Entry<V>> {
        let tag = tag(hash);
        for set in sets_of(hash) {
            let set = &self.sets[set];
            if let Some(way) = set.find(tag, args) {
                return set.entries[way].as_ref();
            }
        }
        None
    }

    fn put(&mut self, hash: u64, args: Query<'_>, value: V, expires_at: Millis, epoch: u64) {
        let tag = tag(hash);
        let [first, second] = sets_of(hash);
        // Same arguments: refresh in place, keeping their bytes.
        for set in [first, second] {
            let set = &mut self.sets[set];
            if let Some(way) = set.find(tag, args) {
                if let Some(entry) = &mut set.entries[way] {
                    entry.value = value;
                    entry.expires_at = expires_at;
                    entry.epoch = epoch;
                }
                return;
            }
        }
        let free = |set: &Set<V>| set.tags[WAYS - 1] == 0;
        let (first_free, second_free) = (free(&self.sets[first]), free(&self.sets[second]));
        let into = choose_set([first, second], first_free, second_free, self.evict_second);
        self.sets[into].push(
            tag,
            Entry {
                args: FrontKey::new(args),
                value,
                expires_at,
                epoch,
            },
        );
    }
}

/// One thread's front of one function, unbound until the function's first
/// hit in the shared map on this thread: what `#[cached]` keeps in a
/// `thread_local!` (see the module documentation).
pub struct FnFront {
    /// This thread is in the front: a `Clone` or `Drop` of a value that
    /// calls the same function then finds no front (and uses the shared
    /// map), rather than a second borrow.
    busy: Cell<bool>,
    bound: UnsafeCell<Option<Bound>>,
}

impl FnFront {
    /// An unbound front: the initial value of the thread-local.
    #[must_use]
    pub const fn new() -> Self {
        FnFront {
            busy: Cell::new(false),
            bound: UnsafeCell::new(None),
        }
    }

    /// This front, borrowed until the result is dropped, unless this
    /// thread is in it already. (Not a closure taking the front: on the hit
    /// path a closure stayed a call of its own.)
    #[inline(always)]
    fn enter(&self) -> Option<Entered<'_>> {
        if self.busy.replace(true) {
            return None;
        }
        let done = Done(&self.busy);
        // SAFETY: a `FnFront` is `!Sync` (a thread-local), and `busy` shows
        // that this thread holds no other borrow of `bound` (a `Clone` of a
        // value read through this one that calls the function again finds
        // it set). The borrow lives in `Entered`, which clears `busy` only
        // when it is dropped, with the borrow.
        let bound = unsafe { &mut *self.bound.get() };
        Some(Entered { bound, _done: done })
    }

    /// `f` on this front, unless this thread is in it already.
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut Option<Bound>) -> R) -> Option<R> {
        self.enter().map(|entered| f(entered.bound))
    }

    /// The value for `args`, if this front serves the function at `owner`
    /// with a tier of `V`s, has the value from the tier's current epoch, and
    /// it has not expired; counted as a hit of the tier.
    #[inline]
    pub(crate) fn get<V: Clone + Send + Sync + 'static>(
        &self,
        owner: *const (),
        args: Query<'_>,
    ) -> Option<V> {
        self.get_inlined(owner, args)
    }

    /// [`get`](Self::get) of a lone integer, inlined where it is called:
    /// with the query's kind known, what is left is the integer's path
    /// alone, without a call (the hit of a function keyed by one integer).
    #[inline(always)]
    pub(crate) fn get_int<V: Clone + Send + Sync + 'static>(
        &self,
        owner: *const (),
        v: i128,
    ) -> Option<V> {
        self.get_inlined(owner, Query::Int(v))
    }

    /// `hit` of the value for the lone integer `v` (as [`get_int`](Self::get_int)
    /// finds it), else `miss()`, run once this front is left. The value is
    /// made where the caller returns it: through an `Option`, a `String`
    /// came back by one more copy, whose load waited for the clone's
    /// stores (31 against 23 ns a hit).
    #[inline(always)]
    pub(crate) fn get_int_or<V: Clone + Send + Sync + 'static, R>(
        &self,
        owner: *const (),
        v: i128,
        hit: impl FnOnce(&V) -> R,
        miss: impl FnOnce() -> R,
    ) -> R {
        if let Some(entered) = self.enter() {
            if let Some(front) = entered.bound.as_mut().and_then(|b| b.front::<V>(owner)) {
                if let Some(entry) = front.live(Query::Int(v)) {
                    return hit(&entry.value);
                }
            }
        }
        miss()
    }

    #[inline(always)]
    fn get_inlined<V: Clone + Send + Sync + 'static>(
        &self,
        owner: *const (),
        args: Query<'_>,
    ) -> Option<V> {
        let entered = self.enter()?;
        let front = entered.bound.as_mut()?.front::<V>(owner)?;
        Some(front.live(args)?.value.clone())
    }

    /// Keeps `value` for `args`, as read from `tier` at `epoch`; binds this
    /// front to the function at `owner` and its `tier` if it is unbound and
    /// this thread holds an index.
    pub(crate) fn put<V: Clone + Send + Sync + 'static>(
        &self,
        owner: *const (),
        tier: &'static LocalTier<V>,
        args: Query<'_>,
        value: V,
        expires_at: Millis,
        epoch: u64,
    ) {
        self.with(|bound| {
            if bound.is_none() {
                let Some(index) = thread_slot::index() else {
                    return;
                };
                *bound = Some(Bound::new(owner, tier, index));
            }
            if let Some(mut front) = bound.as_mut().and_then(|b| b.front::<V>(owner)) {
                if std::ptr::eq(front.tier, tier) {
                    front.put(tier.map.hash_query(args), args, value, expires_at, epoch);
                }
            }
        });
    }
}

impl Default for FnFront {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for FnFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnFront").finish_non_exhaustive()
    }
}

/// A front entered by this thread ([`FnFront::enter`]).
struct Entered<'a> {
    bound: &'a mut Option<Bound>,
    _done: Done<'a>,
}

/// Resets the busy flag, also when a `Clone` unwinds.
struct Done<'a>(&'a Cell<bool>);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// A front bound to a tier of `V`s, with `V` erased (the thread-local that
/// holds it is not generic: a generic function shares it between its
/// instantiations). Its parts sit in the thread-local itself, so a hit reads
/// the thread-local and then the set.
struct Bound {
    /// The function served (its spec's address): a front is never asked
    /// for another function's values.
    owner: *const (),
    /// `TypeId` of the `LocalTier<V>` that `tier` points to.
    type_id: TypeId,
    /// A `&'static LocalTier<V>`.
    tier: NonNull<()>,
    /// A `Box<[Set<V>; SETS]>`, owned.
    sets: NonNull<()>,
    /// Which of a key's two full sets loses an entry next (alternates).
    evict_second: bool,
    /// This thread's line of the tier's hit counter (`&'static`, as the
    /// tier is). (While this thread's thread-locals are torn down, its
    /// index may go back, and a new thread take it, before this front's
    /// last use by another thread-local's destructor: that hit's count may
    /// then be lost, nothing worse.)
    hit_line: Option<NonNull<AtomicU64>>,
    /// The tier's seed for lone integers.
    int_seed: [u64; 2],
    /// Drops `sets` as a `Box<[Set<V>; SETS]>`.
    drop_sets: unsafe fn(NonNull<()>),
}

impl Bound {
    fn new<V: Clone + 'static>(
        owner: *const (),
        tier: &'static LocalTier<V>,
        index: usize,
    ) -> Self {
        // Built on the heap: an array of entries this size (tens of KiB
        // for larger values) would otherwise pass through the stack. (The
        // conversion cannot fail: the lengths match.)
        let sets: Box<[Set<V>]> = (0..SETS)
            .map(|_| Set {
                tags: [0; WAYS],
                entries: std::array::from_fn(|_| None),
            })
            .collect();
        let sets: Box<[Set<V>; SETS]> = match sets.try_into() {
            Ok(sets) => sets,
            Err(_) => unreachable!("SETS sets were built"),
        };
        Bound {
            owner,
            type_id: TypeId::of::<LocalTier<V>>(),
            tier: NonNull::from(tier).cast(),
            sets: NonNull::from(Box::leak(sets)).cast(),
            evict_second: false,
            hit_line: tier
                .hits
                .as_deref()
                .and_then(|hits| hits.own_line(index))
                .map(NonNull::from),
            int_seed: tier.map.int_seed(),
            drop_sets: drop_sets::<V>,
        }
    }

    /// The front, if it serves `owner` and holds `V`s.
    #[inline(always)]
    fn front<V: 'static>(&mut self, owner: *const ()) -> Option<Front<'_, V>> {
        if self.owner != owner || self.type_id != TypeId::of::<LocalTier<V>>() {
            return None;
        }
        // SAFETY: `type_id` names the types `tier` and `sets` were made
        // from (see `new`); `tier` is `'static`, and so is `hit_line`, a
        // line of the counter the tier holds; `sets` is owned by `self` and
        // borrowed here as long as `self` is.
        Some(unsafe {
            Front {
                tier: self.tier.cast::<LocalTier<V>>().as_ref(),
                sets: self.sets.cast::<[Set<V>; SETS]>().as_mut(),
                evict_second: &mut self.evict_second,
                hit_line: self.hit_line.map(|line| line.as_ref()),
                int_seed: self.int_seed,
            }
        })
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        // SAFETY: `drop_sets` is the drop of the type `sets` was made from.
        unsafe { (self.drop_sets)(self.sets) }
    }
}

/// # Safety
/// `sets` must come from `Box::<[Set<V>; SETS]>::leak`, and not be used again.
unsafe fn drop_sets<V>(sets: NonNull<()>) {
    // SAFETY: see the contract.
    drop(unsafe { Box::from_raw(sets.cast::<[Set<V>; SETS]>().as_ptr()) });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Name;
    use crate::local::Invalidate;
    use std::time::Duration;
    use Query::Bytes as B;

    /// Hashes spread like real ones (splitmix64 of `i`).
    fn spread(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The function the fronts of these tests serve.
    const OWNER: *const () = std::ptr::null();

    /// A tier for the life of the test process, as a function's is.
    fn tier<V: Clone + Send + Sync + 'static>() -> &'static LocalTier<V> {
        Box::leak(Box::new(LocalTier::new(
            Name::new("ns").unwrap(),
            Duration::from_secs(60),
        )))
    }

    /// Puts `value` for `args` into `front`, as the tier's lookup does.
    fn put<V: Clone + Send + Sync + 'static>(
        front: &FnFront,
        tier: &'static LocalTier<V>,
        args: Query<'_>,
        value: V,
        expires_at: Millis,
    ) {
        front.put(OWNER, tier, args, value, expires_at, tier.epoch());
    }

    #[test]
    fn a_front_answers_per_arguments_epoch_and_expiry() {
        let t = tier::<u32>();
        let front = FnFront::new();
        let far = clock::now() + 60_000;
        assert_eq!(front.get::<u32>(OWNER, Query::Int(1)), None, "unbound");
        // A lone integer and bytes are different keys.
        put(&front, t, Query::Int(1), 5, far);
        assert_eq!(front.get(OWNER, Query::Int(1)), Some(5u32));
        assert_eq!(front.get_int(OWNER, 1), Some(5u32), "the inlined path");
        assert_eq!(front.get::<u32>(OWNER, Query::Int(2)), None);
        assert_eq!(front.get_int::<u32>(OWNER, 2), None);
        assert_eq!(front.get::<u32>(OWNER, B(&[0x10, 1])), None);
        put(&front, t, B(b"a"), 1, far);
        assert_eq!(front.get(OWNER, B(b"a")), Some(1u32));
        assert_eq!(front.get::<u32>(OWNER, B(b"b")), None, "other arguments");
        put(&front, t, B(b"a"), 3, far);
        assert_eq!(front.get(OWNER, B(b"a")), Some(3u32), "refreshed in place");
        put(&front, t, B(b"x"), 9, clock::now().saturating_sub(1));
        assert_eq!(front.get::<u32>(OWNER, B(b"x")), None, "expired");
        t.clear();
        assert_eq!(front.get::<u32>(OWNER, B(b"a")), None, "another epoch");
        assert_eq!(
            front.get::<u32>(OWNER, Query::Int(1)),
            None,
            "another epoch"
        );
        assert_eq!(front.get_int::<u32>(OWNER, 1), None, "another epoch");
    }

    #[test]
    fn a_front_serves_the_tier_and_type_it_was_bound_to() {
        let (first, second) = (tier::<u32>(), tier::<u32>());
        let front = FnFront::new();
        let far = clock::now() + 60_000;
        put(&front, first, Query::Int(1), 5, far);
        put(&front, second, Query::Int(2), 6, far);
        assert_eq!(front.get(OWNER, Query::Int(1)), Some(5u32));
        assert_eq!(front.get::<u32>(OWNER, Query::Int(2)), None, "another tier");
        assert_eq!(front.get::<u64>(OWNER, Query::Int(1)), None, "another type");
        put(&front, tier::<u64>(), Query::Int(1), 7u64, far);
        assert_eq!(front.get(OWNER, Query::Int(1)), Some(5u32));
        let other = std::ptr::from_ref(&far).cast();
        assert_eq!(
            front.get::<u32>(other, Query::Int(1)),
            None,
            "another function"
        );
    }

    #[test]
    fn a_front_is_not_entered_twice() {
        let t = tier::<u32>();
        let front = FnFront::new();
        put(&front, t, Query::Int(1), 5, clock::now() + 60_000);
        let inner = front.with(|_| front.get::<u32>(OWNER, Query::Int(1)));
        assert_eq!(inner, Some(None), "the inner call finds no front");
        assert_eq!(
            front.get(OWNER, Query::Int(1)),
            Some(5u32),
            "and the outer one ends"
        );
    }

    /// `f` on a bound front of `u64`s, with hashes chosen by the test.
    fn typed(f: impl FnOnce(&mut Front<'_, u64>)) {
        let mut bound = Bound::new(OWNER, tier::<u64>(), 0);
        f(&mut bound.front::<u64>(OWNER).unwrap());
    }

    #[test]
    fn keys_that_share_both_sets_fill_both_then_the_oldest_leave() {
        typed(|front| {
            let far = clock::now() + 60_000;
            // Every hash `5 + 64 * i` (i < 2^26) has sets 5 and 0.
            let hash = |i: u64| 5 + ((i + 1) << 6);
            let get = |front: &Front<'_, u64>, i: u64| {
                front.get(hash(i), Query::Int(i.into())).map(|e| e.value)
            };
            for i in 0..2 * WAYS as u64 {
                front.put(hash(i), Query::Int(i.into()), i, far, 2);
            }
            for i in 0..2 * WAYS as u64 {
                assert_eq!(get(front, i), Some(i));
            }
            let extra = 2 * WAYS as u64;
            front.put(hash(extra), Query::Int(extra.into()), extra, far, 2);
            let held = (0..=extra).filter(|&i| get(front, i).is_some()).count();
            assert_eq!(held, 2 * WAYS, "two sets hold {} entries", 2 * WAYS);
            assert_eq!(get(front, extra), Some(extra), "the newest is held");
        });
    }

    #[test]
    fn sixty_four_hot_keys_all_stay() {
        let keys: Vec<u64> = (0..64).map(spread).collect();
        // With one set per key, these hashes put five or more keys in one
        // set of four: the cliff this layout removes.
        let mut load = [0usize; SETS];
        for &h in &keys {
            load[sets_of(h)[0]] += 1;
        }
        assert!(load.iter().any(|&n| n > WAYS), "{load:?}");

        typed(|front| {
            let far = clock::now() + 60_000;
            for round in 0..3 {
                for (i, &h) in keys.iter().enumerate() {
                    if front.get(h, Query::Int(i as i128)).is_none() {
                        assert_eq!(round, 0, "key {i} left the front");
                        front.put(h, Query::Int(i as i128), i as u64, far, 2);
                    }
                }
            }
        });
    }
}
