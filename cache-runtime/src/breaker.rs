//! The circuit breaker: after repeated failures the backend is skipped for a
//! cool-down, so an outage costs nanoseconds per call instead of a timeout.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The state of a [`Breaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are skipped until the cool-down ends.
    Open,
    /// The cool-down ended: one probe call goes through; its outcome closes
    /// or reopens the breaker.
    HalfOpen,
}

fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64 + 1
}

/// Counts consecutive failures; opens at a threshold; lets one probe through
/// after the cool-down. Lock-free: the closed path is two relaxed loads.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown_us: u64,
    /// A probe that never reports (its caller was cancelled) frees the slot
    /// after this long.
    probe_timeout_us: u64,
    failures: AtomicU32,
    /// When the open state ends, in `now_us` time; 0: closed.
    open_until: AtomicU64,
    /// When the running probe started; 0: none.
    probe_started: AtomicU64,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures for
    /// `cooldown`; `probe_timeout` bounds a probe that never reports.
    pub fn new(threshold: u32, cooldown: Duration, probe_timeout: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown_us: cooldown.as_micros() as u64,
            probe_timeout_us: probe_timeout.as_micros().max(1) as u64,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probe_started: AtomicU64::new(0),
        }
    }

    /// Whether a call may go to the backend now.
    #[inline]
    pub fn allow(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return true;
        }
        let now = now_us();
        if now < until {
            return false;
        }
        let started = self.probe_started.load(Ordering::Acquire);
        if started != 0 && now.saturating_sub(started) < self.probe_timeout_us {
            return false;
        }
        self.probe_started
            .compare_exchange(started, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Reports a call that succeeded.
    #[inline]
    pub fn success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
            self.probe_started.store(0, Ordering::Release);
            tracing::info!("memocache: backend answers again; circuit breaker closed");
        }
    }

    /// Reports a call that failed.
    pub fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let probing = self.probe_started.load(Ordering::Acquire) != 0;
        if n >= self.threshold || probing {
            let was_closed = self.open_until.load(Ordering::Relaxed) == 0;
            self.open_until
                .store(now_us() + self.cooldown_us, Ordering::Release);
            self.probe_started.store(0, Ordering::Release);
            if was_closed {
                tracing::warn!(
                    failures = n,
                    cooldown_ms = self.cooldown_us / 1000,
                    "memocache: backend failing; circuit breaker open, calls skip the cache"
                );
            }
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            BreakerState::Closed
        } else if now_us() < until {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_once_then_closes() {
        let b = Breaker::new(3, Duration::from_millis(30), Duration::from_secs(1));
        for _ in 0..2 {
            b.failure();
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.allow(), "one probe goes through");
        assert!(!b.allow(), "only one");
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow());
    }

    #[test]
    fn a_failed_probe_reopens() {
        let b = Breaker::new(1, Duration::from_millis(20), Duration::from_secs(1));
        b.failure();
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_lost_probe_frees_its_slot() {
        let b = Breaker::new(1, Duration::from_millis(10), Duration::from_millis(20));
        b.failure();
        std::thread::sleep(Duration::from_millis(15));
        assert!(b.allow());
        assert!(!b.allow());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.allow(), "the probe never reported; another may go");
    }
}
