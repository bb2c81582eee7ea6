//! Time budgets of backend calls, kept by one watcher task rather than a
//! timer per call.
//!
//! Why: a tokio timer per call cost about 6% of a Redis hit's CPU with 256
//! tasks calling at once. Its registration and its cancellation lock a shard
//! of the I/O runtime's timer wheel, which the threads of every caller
//! share (so the lock's cache line passes between them), and it needs the
//! I/O runtime's context entered around it, since a caller may poll from
//! any runtime or from none.
//!
//! How: a call that has to wait puts its deadline and its waker into its
//! thread's registry (a call answered at once registers nothing), and takes
//! them out when it ends or is dropped. Registries are per thread, so that
//! lock is one other threads rarely take: the watcher at its wakes, and a
//! call that moved to another thread when it ends. The
//! watcher, a task on the I/O runtime, sleeps until the earliest deadline
//! of all registries, marks the calls past theirs and wakes them (they then
//! end with a timeout error), and sleeps again. A call whose deadline comes
//! before the watcher's next wake tells it; that is rare, since budgets are
//! mostly equal and a later call has a later deadline.
//!
//! Precision: deadlines are whole milliseconds of the monotonic clock,
//! rounded up, and the watcher wakes on the I/O runtime's timer (also
//! millisecond-grained): a call that gets no answer ends one to three
//! milliseconds after its budget, never before.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::local::clock::{self, Millis};

/// A future that ends with [`Error::timeout`] once `budget` has passed
/// since it first waited.
pub(crate) struct Budgeted<F> {
    inner: F,
    budget: Duration,
    ticket: Option<Ticket>,
}

impl<F> Budgeted<F> {
    pub(crate) fn new(inner: F, budget: Duration) -> Self {
        Budgeted {
            inner,
            budget,
            ticket: None,
        }
    }
}

impl<T, F: Future<Output = Result<T>> + Unpin> Future for Budgeted<F> {
    type Output = Result<T>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = &mut *self;
        if let Poll::Ready(out) = Pin::new(&mut this.inner).poll(cx) {
            this.ticket = None;
            return Poll::Ready(out);
        }
        match &this.ticket {
            None => this.ticket = register(this.budget, cx.waker()),
            Some(ticket) => {
                if ticket.expired(cx.waker()) {
                    this.ticket = None;
                    return Poll::Ready(Err(Error::timeout(this.budget)));
                }
            }
        }
        Poll::Pending
    }
}

/// A call's place in its thread's registry; leaving it takes the call out.
struct Ticket {
    registry: Arc<Registry>,
    index: usize,
    generation: u64,
}

impl Ticket {
    /// Whether the watcher found the call past its deadline; else keeps
    /// `waker` as the one to wake.
    fn expired(&self, waker: &Waker) -> bool {
        let (expired, replaced) = {
            let mut slots = self.registry.lock();
            match slots.slots.get_mut(self.index) {
                Some(slot) if slot.generation == self.generation => {
                    if slot.expired {
                        (true, None)
                    } else {
                        match &mut slot.waker {
                            Some(kept) if kept.will_wake(waker) => (false, None),
                            kept => (false, kept.replace(waker.clone())),
                        }
                    }
                }
                // Not found: cannot be (the slot is this ticket's until it
                // is dropped); counted as expired rather than waiting
                // unwatched.
                _ => (true, None),
            }
        };
        // Dropped out of the lock: a waker's drop may run anything.
        drop(replaced);
        expired
    }
}

impl Drop for Ticket {
    #[inline]
    fn drop(&mut self) {
        let waker = {
            let mut slots = self.registry.lock();
            slots.release(self.index, self.generation)
        };
        // Dropped out of the lock: a waker's drop may run anything.
        drop(waker);
    }
}

/// The calls one thread registered.
#[derive(Default)]
struct Registry {
    slots: Mutex<Slots>,
}

impl Registry {
    #[inline]
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // Nothing that can panic runs under this lock.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Slots {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// Moves on with every registration: tells a slot's uses apart.
    generations: u64,
}

struct Slot {
    generation: u64,
    deadline: Millis,
    waker: Option<Waker>,
    /// In use by a call.
    taken: bool,
    /// The watcher found it past its deadline.
    expired: bool,
}

impl Slots {
    #[inline]
    fn take(&mut self, deadline: Millis, waker: &Waker) -> (usize, u64) {
        self.generations += 1;
        let slot = Slot {
            generation: self.generations,
            deadline,
            waker: Some(waker.clone()),
            taken: true,
            expired: false,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index] = slot;
                index
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        (index, self.generations)
    }

    #[inline]
    fn release(&mut self, index: usize, generation: u64) -> Option<Waker> {
        let slot = self.slots.get_mut(index)?;
        if slot.generation != generation || !slot.taken {
            return None;
        }
        slot.taken = false;
        self.free.push(index);
        slot.waker.take()
    }
}

thread_local! {
    /// This thread's registry (also listed in [`REGISTRIES`] for the watcher).
    static MINE: Arc<Registry> = {
        let registry = Arc::new(Registry::default());
        REGISTRIES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&registry));
        registry
    };
}

/// Every thread's registry; the watcher forgets those of exited threads
/// once no call of theirs is left.
static REGISTRIES: Mutex<Vec<Weak<Registry>>> = Mutex::new(Vec::new());

/// When the watcher wakes next: a call with an earlier deadline tells it.
/// [`SCANNING`] while it looks at the registries, `Millis::MAX` while it
/// waits for a first call.
static NEXT_WAKE: AtomicU64 = AtomicU64::new(Millis::MAX);
/// [`NEXT_WAKE`] while the watcher scans: every call then tells it.
const SCANNING: Millis = 0;

/// The watcher's wake-up call, once it runs.
static WATCHER: OnceLock<Option<Arc<tokio::sync::Notify>>> = OnceLock::new();

/// Puts a call that must end by `budget` from now into this thread's
/// registry. `None` where no watcher can run (no I/O runtime): the call is
/// then not limited, as a timer could not be either.
#[inline]
fn register(budget: Duration, waker: &Waker) -> Option<Ticket> {
    let watcher = WATCHER.get_or_init(start_watcher).as_ref()?;
    let budget_ms = u64::try_from(budget.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    // One more: `now` is rounded down, and the watcher ends a call once the
    // rounded-down time reaches its deadline.
    let deadline = clock::now().saturating_add(budget_ms).saturating_add(1);
    let (registry, index, generation, tell) = MINE
        .try_with(|registry| {
            let mut slots = registry.lock();
            let (index, generation) = slots.take(deadline, waker);
            // Read under the lock: the watcher writes `SCANNING` before it
            // takes the registries' locks, and the earliest deadline it
            // found after it released them, so this read sees a value that
            // accounts for this call, or `SCANNING`.
            let tell = must_tell(deadline, NEXT_WAKE.load(Ordering::Relaxed));
            (registry.clone(), index, generation, tell)
        })
        .ok()?;
    if tell {
        // Stored as a permit if the watcher is not waiting right now.
        watcher.notify_one();
    }
    Some(Ticket {
        registry,
        index,
        generation,
    })
}

/// Whether a call due at `deadline` must tell the watcher, which wakes
/// next at `next_wake`: when that is later, or while the watcher scans
/// (it may have passed this call's registry already).
fn must_tell(deadline: Millis, next_wake: Millis) -> bool {
    next_wake == SCANNING || deadline < next_wake
}

fn start_watcher() -> Option<Arc<tokio::sync::Notify>> {
    let io = crate::blocking::io_handle().ok()?;
    let notify = Arc::new(tokio::sync::Notify::new());
    io.spawn(watch(notify.clone()));
    Some(notify)
}

async fn watch(notify: Arc<tokio::sync::Notify>) {
    loop {
        NEXT_WAKE.store(SCANNING, Ordering::Relaxed);
        let now = clock::now();
        let mut expired = Vec::new();
        let earliest = scan(now, &mut expired);
        NEXT_WAKE.store(earliest.unwrap_or(Millis::MAX), Ordering::Relaxed);
        for waker in expired {
            waker.wake();
        }
        match earliest {
            Some(deadline) => {
                let wait = Duration::from_millis(deadline.saturating_sub(clock::now()));
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = notify.notified() => {}
                }
            }
            None => notify.notified().await,
        }
    }
}

/// Marks the calls past their deadline at `now` (their wakers go to
/// `expired`); the earliest deadline of the others.
fn scan(now: Millis, expired: &mut Vec<Waker>) -> Option<Millis> {
    let mut earliest: Option<Millis> = None;
    let mut registries = REGISTRIES.lock().unwrap_or_else(PoisonError::into_inner);
    registries.retain(|registry| {
        let Some(registry) = registry.upgrade() else {
            return false;
        };
        let mut slots = registry.lock();
        for slot in slots.slots.iter_mut().filter(|s| s.taken && !s.expired) {
            if slot.deadline <= now {
                slot.expired = true;
                expired.extend(slot.waker.take());
            } else {
                earliest = Some(earliest.map_or(slot.deadline, |e| e.min(slot.deadline)));
            }
        }
        true
    });
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn pending_forever() -> Pin<Box<dyn Future<Output = Result<()>> + Send>> {
        Box::pin(std::future::pending())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_without_an_answer_ends_after_its_budget_and_not_before() {
        for budget in [5, 30] {
            let budget = Duration::from_millis(budget);
            let started = Instant::now();
            let out = Budgeted::new(pending_forever(), budget).await;
            let took = started.elapsed();
            assert!(out.unwrap_err().is_timeout());
            assert!(took >= budget, "ended after {took:?}, budget {budget:?}");
            assert!(
                took < budget + Duration::from_millis(500),
                "ended after {took:?}, budget {budget:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_that_end_in_time_keep_their_outcome_and_leave_no_slot() {
        let calls: Vec<_> = (0..200u64)
            .map(|i| {
                tokio::spawn(async move {
                    let answer = Box::pin(async move {
                        tokio::time::sleep(Duration::from_millis(i % 5)).await;
                        Ok(i)
                    });
                    Budgeted::new(answer, Duration::from_secs(4321)).await
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), i as u64);
        }
        // Other tests' calls may be in the registries: this test's are
        // the ones with its unusual budget.
        let mine = clock::now() + 4000 * 1000;
        let taken: usize = REGISTRIES
            .lock()
            .unwrap()
            .iter()
            .filter_map(Weak::upgrade)
            .map(|r| {
                let slots = r.lock();
                slots
                    .slots
                    .iter()
                    .filter(|s| s.taken && s.deadline > mine)
                    .count()
            })
            .sum();
        assert_eq!(taken, 0, "slots left taken");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shorter_budget_after_a_longer_one_is_still_kept() {
        // The watcher sleeps until the long call's deadline; the short call
        // must wake it earlier.
        let long = tokio::spawn(Budgeted::new(pending_forever(), Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let out = Budgeted::new(pending_forever(), Duration::from_millis(20)).await;
        assert!(out.unwrap_err().is_timeout());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        long.abort();
    }

    #[test]
    fn a_call_tells_the_watcher_when_it_is_due_first_or_a_scan_is_under_way() {
        assert!(must_tell(10, 20));
        assert!(!must_tell(30, 20));
        // The scan may have passed this call's registry already.
        assert!(must_tell(30, SCANNING));
        assert!(
            must_tell(30, Millis::MAX),
            "the watcher waits for a first call"
        );
    }

    #[test]
    fn a_call_answered_at_once_registers_nothing() {
        let mut call = Budgeted::new(
            Box::pin(std::future::ready(Ok(7))),
            Duration::from_millis(1),
        );
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(
            Pin::new(&mut call).poll(&mut cx),
            Poll::Ready(Ok(7))
        ));
        assert!(call.ticket.is_none());
    }
}
