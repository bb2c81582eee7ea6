//! The clock of local expiry checks.
//!
//! Reading the precise monotonic clock costs about 20 ns, as much as the
//! rest of a local hit. On Linux the coarse monotonic clock
//! (`CLOCK_MONOTONIC_COARSE`, read from the vDSO without a system call) costs
//! a few nanoseconds but lags the precise one: by up to one kernel tick in
//! principle (4 ms here), and more when ticks are late (7.5 ms measured on a
//! busy 2-core VM). So the coarse clock only decides far from expiry: an
//! entry with more than [`MARGIN`] left by the coarse clock is live; nearer
//! its expiry, the precise clock decides. An entry is therefore never
//! served after it expires unless the coarse clock lags by more than the
//! margin (a stalled machine), and the common hit pays no precise read.
//! Elsewhere than Linux the precise clock always decides.
//!
//! Cheaper still, for entries far from expiry: a ticker thread
//! (`memocache-clock`) writes the precise time to an atomic every
//! [`TICK_EVERY`], and an entry with more than [`TICKER_MARGIN`] (a second)
//! left by that time is live, for the cost of one load from memory that
//! changes once per tick. The ticker goes to sleep after a second without a
//! reader (so an idle process does not wake up for it) and says so; readers
//! then use the clocks above and wake it. Its time lags by a tick plus the
//! time it takes to be scheduled: the margin is ten times the coarse
//! clock's, since a starved thread lags more than a late kernel tick. So an
//! entry may outlive its expiry only if the ticker went unscheduled for a
//! whole second while readers ran (a local tier's TTL bounds staleness as a
//! backstop: invalidations, not expiry, keep it coherent). A process made by
//! `fork` has no ticker: there the clocks above decide.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

/// Times are milliseconds on the monotonic clock's scale.
pub(crate) type Millis = u64;

#[cfg(target_os = "linux")]
#[inline]
fn read(clock: libc::clockid_t) -> Option<Millis> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; `clock_gettime` only writes it.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000)
}

/// How far from expiry the coarse clock may decide alone.
pub(crate) const MARGIN: Millis = 100;

/// Now on the coarse clock, where there is one.
#[inline]
fn coarse() -> Option<Millis> {
    #[cfg(target_os = "linux")]
    return read(libc::CLOCK_MONOTONIC_COARSE);
    #[cfg(not(target_os = "linux"))]
    None
}

/// Now, precisely: what expiries are computed from.
#[inline]
pub(crate) fn now() -> Millis {
    #[cfg(target_os = "linux")]
    if let Some(ms) = read(libc::CLOCK_MONOTONIC) {
        return ms;
    }
    fallback_now()
}

/// Now, give or take the coarse clock's lag: for recency, not for expiry.
#[inline]
pub(crate) fn now_coarse() -> Millis {
    coarse().unwrap_or_else(now)
}

fn fallback_now() -> Millis {
    static START: OnceLock<std::time::Instant> = OnceLock::new();
    // Offset by one day, so that times a little in the past never underflow.
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as Millis
        + 86_400_000
}

/// Whether `expires_at` is still ahead (precisely: `now() < expires_at`,
/// with the caveat of the module documentation).
#[inline]
pub(crate) fn is_before(expires_at: Millis) -> bool {
    ticker_says_before(expires_at) || clocks_say_before(expires_at)
}

/// [`is_before`] when the ticker did not decide: kept out of line, so that
/// a local hit, which the ticker decides, does not carry the clock reads.
#[inline(never)]
fn clocks_say_before(expires_at: Millis) -> bool {
    coarse().is_some_and(|c| c.saturating_add(MARGIN) < expires_at) || now() < expires_at
}

/// How often the ticker writes the time.
pub(crate) const TICK_EVERY: Duration = Duration::from_millis(5);
/// How far from expiry the ticker's time may decide alone.
pub(crate) const TICKER_MARGIN: Millis = 1000;
/// Ticks without a reader before the ticker sleeps.
const IDLE_TICKS: u32 = 200;
/// What `TICK` holds while no ticker runs.
const STOPPED: Millis = Millis::MAX;

/// The precise time at the last tick, or `STOPPED`.
static TICK: AtomicU64 = AtomicU64::new(STOPPED);
/// Set by readers (when clear), cleared by the ticker at each tick.
static READ: AtomicBool = AtomicBool::new(false);
/// Set by the reader that wakes the ticker, so that one does.
static WAKING: AtomicBool = AtomicBool::new(false);
static TICKER: OnceLock<Option<std::thread::Thread>> = OnceLock::new();

/// Whether the ticker's time says `expires_at` is more than the margin
/// ahead. `false` when the ticker sleeps (which wakes it) or was never
/// started.
#[inline]
fn ticker_says_before(expires_at: Millis) -> bool {
    let tick = TICK.load(Ordering::Relaxed);
    // `STOPPED` saturates to the largest time: never before. One test on
    // the hit path; the stopped ticker is woken off it.
    if tick.saturating_add(TICKER_MARGIN) >= expires_at {
        if tick == STOPPED {
            wake_ticker();
        }
        return false;
    }
    // Only answers the ticker gave keep it awake (a tier whose entries never
    // have a second left lets it sleep). Written once per tick at most: the
    // line stays shared between readers.
    if !READ.load(Ordering::Relaxed) {
        READ.store(true, Ordering::Relaxed);
    }
    true
}

/// Starts the ticker (once per process; it sleeps until read). Without a
/// ticker (a thread could not be started) the clocks above decide.
pub(crate) fn start_ticker() {
    TICKER.get_or_init(|| {
        forget_ticker_in_forked_children();
        std::thread::Builder::new()
            .name("memocache-clock".into())
            .spawn(tick)
            .map(|handle| handle.thread().clone())
            .ok()
    });
}

/// A child process made by `fork` has no ticker thread, and the time it
/// inherits would never move: it says `STOPPED` there (and readers use the
/// clocks; waking a thread that is not there does nothing).
fn forget_ticker_in_forked_children() {
    #[cfg(unix)]
    {
        extern "C" fn child() {
            TICK.store(STOPPED, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to an atomic, which
        // is async-signal-safe, as a handler run after `fork` must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(child));
        }
    }
}

#[cold]
fn wake_ticker() {
    if let Some(Some(ticker)) = TICKER.get() {
        if !WAKING.load(Ordering::Relaxed) && !WAKING.swap(true, Ordering::AcqRel) {
            ticker.unpark();
        }
    }
}

fn tick() {
    loop {
        // Asleep until a reader wakes it (an unpark before the park is
        // kept, so none is lost).
        std::thread::park();
        WAKING.store(false, Ordering::Release);
        let mut idle = 0;
        while idle < IDLE_TICKS {
            TICK.store(now(), Ordering::Relaxed);
            std::thread::sleep(TICK_EVERY);
            if READ.swap(false, Ordering::Relaxed) {
                idle = 0;
            } else {
                idle += 1;
            }
        }
        TICK.store(STOPPED, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_live_after_its_expiry() {
        start_ticker();
        for i in 0..200_000u64 {
            let before = now();
            // Expiries from just behind to past the ticker's margin ahead,
            // most of them near the coarse clock's.
            let ahead = if i % 4 == 0 {
                i % (TICKER_MARGIN + 10)
            } else {
                i % (MARGIN + 10)
            };
            let expires_at = before - 2 + ahead;
            if is_before(expires_at) {
                assert!(before < expires_at, "{expires_at} live at {before}");
            } else {
                assert!(now() >= expires_at, "{expires_at} dead before it");
            }
        }
    }

    #[test]
    fn far_expiries_are_live_and_past_ones_are_not() {
        let t = now();
        assert!(is_before(t + 10 * MARGIN));
        assert!(!is_before(t));
        assert!(!is_before(t - 1));
    }

    #[test]
    fn the_ticker_wakes_when_read_and_keeps_time() {
        start_ticker();
        let t = now();
        // Far ahead: live whichever clock decides.
        assert!(is_before(t + 10 * TICKER_MARGIN));
        // Reading woke it: it publishes a time within a few ticks.
        let mut waited = 0;
        while TICK.load(Ordering::Relaxed) == STOPPED && waited < 2000 {
            std::thread::sleep(Duration::from_millis(1));
            waited += 1;
        }
        let tick = TICK.load(Ordering::Relaxed);
        assert_ne!(tick, STOPPED, "the ticker never woke");
        assert!(
            tick <= now() && tick + 1000 > now(),
            "tick {tick} at {}",
            now()
        );
        assert!(ticker_says_before(now() + TICKER_MARGIN + 100));
        assert!(!ticker_says_before(now() + TICKER_MARGIN / 2));
        assert!(!is_before(now()));
    }

    #[test]
    fn it_moves() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let b = now();
        assert!(b >= a + 30, "{a} -> {b}");
        assert!(!is_before(a + 29));
    }
}
