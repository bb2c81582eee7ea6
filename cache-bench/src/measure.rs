//! Timing loops.
//!
//! - Remote calls (tens of µs) are timed one by one: `Instant` around each
//!   `.await`, which costs ~25 ns, nothing next to a round trip.
//! - In-process hits (tens of ns) are timed in batches of [`BATCH`] calls:
//!   timing each call would add the clock's own cost to every sample. Their
//!   percentiles are those of the per-call means of the batches.
//! - Rows that are compared run interleaved: remote calls call by call, in
//!   an order shuffled for every cycle (see [`latencies`]); in-process
//!   batches in rounds, each round in a rotated order. On a machine shared
//!   with other work, a burst of load then spreads over every row instead
//!   of skewing one.

use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// A multi-thread tokio runtime with `workers` worker threads, I/O and
/// timers on: what every async measurement runs on.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Calls per timed batch of in-process hits.
pub const BATCH: usize = 64;

/// A boxed future, so rows of different types share a list (defined by the
/// crate of `cached`'s functions, whose rows are made there).
pub use memocache_bench_cached_peer::BoxFut;

/// An async operation under test, called with a key index.
///
/// The harness never boxes a call it times or counts: a timed call is made
/// and awaited inside a boxed future that was made before the clock
/// started (see [`AsyncOp::timed`]), and a throughput task runs its calls
/// in a loop inside one boxed future (see [`AsyncOp::calls_until`]). A box per call
/// would add an allocation that neither a raw `GET` nor a cached function
/// makes in a service, where a call's future lives in its task's; and its
/// cost grows with the future's size (past 1 KiB, glibc's allocator leaves
/// its per-thread cache): measured, 1% of a Redis hit's p50 for a
/// 3.5 KB future.
#[derive(Clone)]
pub struct AsyncOp {
    /// The row id (see [`crate::report::Row::id`]).
    pub id: String,
    /// What it is, for people.
    pub label: String,
    timed: Arc<dyn Fn(u64) -> BoxFut<Duration> + Send + Sync>,
    looped: Arc<dyn Fn(u64, u64, Arc<AtomicBool>) -> BoxFut<u64> + Send + Sync>,
}

impl AsyncOp {
    /// An operation running `f(key)`.
    pub fn new<F, Fut>(id: &str, label: &str, f: F) -> Self
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let f = Arc::new(f);
        let g = f.clone();
        AsyncOp {
            id: id.to_owned(),
            label: label.to_owned(),
            timed: Arc::new(move |key| {
                let f = f.clone();
                Box::pin(async move {
                    let started = Instant::now();
                    // Made inside the timed part: whatever a row's closure
                    // does before its future (a clone, a spawn) is timed.
                    f(key).await;
                    started.elapsed()
                })
            }),
            looped: Arc::new(move |start, keys, stop| {
                let g = g.clone();
                Box::pin(async move {
                    let mut calls = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        g((start + calls) % keys).await;
                        calls += 1;
                    }
                    calls
                })
            }),
        }
    }

    /// An operation whose timed call and call loop are made elsewhere, as
    /// boxed futures of the same shapes as [`AsyncOp::new`] makes: for code
    /// that must be compiled in a crate of its own (see
    /// `memocache_bench_cached_peer`, which says why).
    pub fn from_parts(
        id: &str,
        label: &str,
        timed: impl Fn(u64) -> BoxFut<Duration> + Send + Sync + 'static,
        looped: impl Fn(u64, u64, Arc<AtomicBool>) -> BoxFut<u64> + Send + Sync + 'static,
    ) -> Self {
        AsyncOp {
            id: id.to_owned(),
            label: label.to_owned(),
            timed: Arc::new(timed),
            looped: Arc::new(looped),
        }
    }

    /// One call, untimed.
    pub async fn call(&self, key: u64) {
        self.timed(key).await;
    }

    /// One call; its duration, from its first poll to its end.
    pub fn timed(&self, key: u64) -> BoxFut<Duration> {
        (self.timed)(key)
    }

    /// Calls with keys `start, start + 1, ...` (modulo `keys`) until `stop`
    /// is set; how many.
    pub fn calls_until(&self, start: u64, keys: u64, stop: Arc<AtomicBool>) -> BoxFut<u64> {
        (self.looped)(start, keys, stop)
    }
}

/// Per-call timings (ns) of each of `ops`, `samples` each, after `warmup`
/// untimed calls each, interleaved call by call: each cycle calls every op
/// once (with the same key), in an order shuffled anew for every cycle.
///
/// Why call by call: in blocks of thousands of calls per row, the machine's
/// drift between blocks (other load, frequency, which worker a connection's
/// task sits on) showed as differences between rows: two raw `GET` rows of
/// the same command on like connections differed by 11% in one run. Call by
/// call, every row sees the same moments, and each call runs after a random
/// other row (no row always follows the same one, whose code it would find
/// warm or cold).
pub async fn latencies(ops: &[AsyncOp], keys: u64, warmup: usize, samples: usize) -> Vec<Vec<u64>> {
    for op in ops {
        for i in 0..warmup {
            op.call(i as u64 % keys).await;
        }
    }
    let mut out: Vec<Vec<u64>> = ops.iter().map(|_| Vec::with_capacity(samples)).collect();
    let mut order: Vec<usize> = (0..ops.len()).collect();
    let mut shuffle = Shuffle::new();
    for i in 0..samples {
        shuffle.permute(&mut order);
        let key = i as u64 % keys;
        for &at in &order {
            let took = ops[at].timed(key).await;
            out[at].push(took.as_nanos() as u64);
        }
    }
    out
}

/// A small fixed-seed generator of permutations (xorshift64): the same
/// orders every run.
struct Shuffle(u64);

impl Shuffle {
    fn new() -> Self {
        Shuffle(0x9e37_79b9_7f4a_7c15)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fisher-Yates.
    fn permute<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Calls per second of `op` run by `tasks` tasks on the current runtime for
/// `window`, each task calling in a loop.
pub async fn throughput(op: &AsyncOp, tasks: usize, keys: u64, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| tokio::spawn(op.calls_until(t as u64 * 7, keys, stop.clone())))
        .collect();
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = 0;
    for handle in handles {
        calls += handle.await.expect("a throughput task panicked");
    }
    calls as f64 / started.elapsed().as_secs_f64()
}

/// Runs one timed batch: from a start key, `len` calls; returns the time
/// the calls took.
pub type Batch<'a> = Box<dyn FnMut(u64, usize) -> Duration + 'a>;

/// A batch of calls of a sync function, cycling through `keys` keys.
pub fn sync_batch<'a, T>(keys: u64, f: impl Fn(u64) -> T + 'a) -> Batch<'a> {
    Box::new(move |first, len| {
        let started = Instant::now();
        for i in 0..len as u64 {
            black_box(f(black_box((first + i) % keys)));
        }
        started.elapsed()
    })
}

/// A batch of calls of an async function polled on `rt` (timed inside the
/// runtime, so entering it is not counted).
pub fn async_batch<'a, T, Fut>(
    rt: &'a tokio::runtime::Runtime,
    keys: u64,
    f: impl Fn(u64) -> Fut + 'a,
) -> Batch<'a>
where
    Fut: Future<Output = T>,
{
    Box::new(move |first, len| {
        rt.block_on(async {
            let started = Instant::now();
            for i in 0..len as u64 {
                black_box(f(black_box((first + i) % keys)).await);
            }
            started.elapsed()
        })
    })
}

/// Per-call means (ns) of batches of [`BATCH`] calls of each row, `calls`
/// calls per row, interleaved over `rounds` (a warm-up batch per row first).
pub fn batched(rows: &mut [Batch<'_>], calls: usize, rounds: usize) -> Vec<Vec<f64>> {
    for row in rows.iter_mut() {
        row(0, BATCH * 16);
    }
    let batches = calls.div_ceil(BATCH);
    let per_round = batches.div_ceil(rounds.max(1));
    let mut out: Vec<Vec<f64>> = rows.iter().map(|_| Vec::with_capacity(batches)).collect();
    for round in 0..rounds.max(1) {
        for j in 0..rows.len() {
            let at = (j + round) % rows.len();
            for b in 0..per_round {
                let took = rows[at]((b * BATCH) as u64, BATCH);
                out[at].push(took.as_nanos() as f64 / BATCH as f64);
            }
        }
    }
    out
}

/// Calls per second of `f` on `threads` OS threads at once for `window`,
/// each thread cycling through its share of `keys`.
pub fn threaded<T>(
    threads: usize,
    keys: u64,
    window: Duration,
    f: impl Fn(u64) -> T + Sync,
) -> f64 {
    let barrier = Barrier::new(threads);
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    let deadline = Instant::now() + window;
                    let mut calls = 0u64;
                    let offset = t as u64 * keys / threads as u64;
                    while Instant::now() < deadline {
                        for i in 0..256 {
                            black_box(f((offset + calls + i) % keys));
                        }
                        calls += 256;
                    }
                    calls
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a bench thread panicked"))
            .sum()
    });
    total as f64 / window.as_secs_f64()
}

/// Per-call timings (ns) of `n` calls of a sync function, call `i` getting `i`.
pub fn per_call_sync<T>(n: usize, mut f: impl FnMut(u64) -> T) -> Vec<u64> {
    (0..n as u64)
        .map(|i| {
            let started = Instant::now();
            black_box(f(i));
            started.elapsed().as_nanos() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn every_cycle_calls_each_row_once_in_varying_orders() {
        let rt = runtime(1);
        let calls: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
        let ops: Vec<AsyncOp> = (0..4)
            .map(|row| {
                let calls = calls.clone();
                AsyncOp::new(&format!("row{row}"), "a row", move |key| {
                    let calls = calls.clone();
                    async move { calls.lock().unwrap().push((row, key)) }
                })
            })
            .collect();
        let timings = rt.block_on(latencies(&ops, 3, 2, 50));
        assert!(timings.iter().all(|t| t.len() == 50));
        let calls = calls.lock().unwrap();
        // Warm-up: each row twice, in turn; then cycles of four calls.
        assert_eq!(calls.len(), 4 * 2 + 4 * 50);
        let mut orders = HashSet::new();
        for (i, cycle) in calls[8..].chunks(4).enumerate() {
            let rows: HashSet<usize> = cycle.iter().map(|&(row, _)| row).collect();
            assert_eq!(rows.len(), 4, "cycle {i} calls every row once: {cycle:?}");
            assert!(cycle.iter().all(|&(_, key)| key == i as u64 % 3));
            orders.insert(cycle.iter().map(|&(row, _)| row).collect::<Vec<_>>());
        }
        assert!(
            orders.len() > 10,
            "only {} orders in 50 cycles",
            orders.len()
        );
    }

    #[test]
    fn a_throughput_task_counts_the_calls_it_made() {
        let rt = runtime(1);
        let made = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = made.clone();
        let op = AsyncOp::new("row", "a row", move |_| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        let window = Duration::from_millis(50);
        let started = Instant::now();
        let rate = rt.block_on(throughput(&op, 3, 8, window));
        let outer = started.elapsed().as_secs_f64();
        let made = made.load(Ordering::Relaxed) as f64;
        assert!(made > 0.0);
        // The rate is the calls the tasks counted over a time between the
        // window and the whole call: every call made, and no other, counted.
        let (low, high) = (made / outer, made / window.as_secs_f64());
        assert!(
            rate >= low * 0.999 && rate <= high * 1.001,
            "{rate}/s for {made} calls in {outer} s"
        );
    }
}
