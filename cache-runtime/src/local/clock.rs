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

use std::sync::OnceLock;

/// Times are milliseconds on the monotonic clock's scale.
pub(crate) type Millis = u64;

#[cfg(target_os = "linux")]
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
    coarse().is_some_and(|c| c.saturating_add(MARGIN) < expires_at) || now() < expires_at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_live_after_its_expiry() {
        for i in 0..200_000u64 {
            let before = now();
            // Expiries from just behind to past the margin ahead.
            let expires_at = before - 2 + i % (MARGIN + 10);
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
    fn it_moves() {
        let a = now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let b = now();
        assert!(b >= a + 30, "{a} -> {b}");
        assert!(!is_before(a + 29));
    }
}
