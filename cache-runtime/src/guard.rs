//! The failure policy around a remote backend: a time budget on every call
//! and a circuit breaker ([`Policy`]), and a wrapper that applies it and is
//! itself a [`Backend`] ([`Guarded`]).
//!
//! The manager's read of an entry (every hit) applies the policy itself,
//! around the unwrapped backend's call: through the wrapper, the policy's
//! future is boxed once more, as a trait's future is, and an allocation per
//! hit showed (see `docs/BENCHMARKS.md`). On the Redis backend it made, it
//! calls the backend's own read, whose future is not boxed either (with
//! connections in callers' runtimes, the default).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use crate::backend::{Backend, BoxFuture, Expect, GenerationRead, KeyTtl, Listener};
use crate::breaker::{Breaker, BreakerState};
use crate::budget::Budgeted;
use crate::error::{Error, ErrorKind, Result};

/// Keys per budget: a batch of `n` keys gets `ceil(n / BUDGET_KEYS)` budgets.
const BUDGET_KEYS: usize = 500;

/// No call takes longer than its budget and, once the breaker is open,
/// calls fail at once with [`ErrorKind::Unavailable`].
#[derive(Clone, Debug)]
pub struct Policy {
    budget: Duration,
    breaker: Arc<Breaker>,
}

impl Policy {
    /// `budget` per call, and `breaker`.
    pub fn new(budget: Duration, breaker: Arc<Breaker>) -> Self {
        Policy { budget, breaker }
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    /// The future `call` makes, under this policy, for a call on `keys`
    /// keys (a batch gets one budget per [`BUDGET_KEYS`] keys) of the
    /// backend named `backend`. `call` is not called while the breaker is
    /// open.
    pub(crate) async fn run<T, F: Future<Output = Result<T>>>(
        &self,
        backend: &str,
        keys: usize,
        call: impl FnOnce() -> F,
    ) -> Result<T> {
        self.admit(backend)?;
        // Kept by one watcher, whatever runtime (or none) the caller polls
        // from (see `budget`).
        let outcome = Budgeted::new(std::pin::pin!(call()), self.budget_for(keys)).await;
        self.record(&outcome);
        outcome
    }

    /// Whether a call to the backend named `backend` may go ahead: an
    /// [`ErrorKind::Unavailable`] error while the breaker is open. (With
    /// [`budget_for`](Self::budget_for) and [`record`](Self::record), what
    /// [`run`](Self::run) does, for a caller that keeps its own future
    /// flat.)
    #[inline]
    pub(crate) fn admit(&self, backend: &str) -> Result<()> {
        if self.breaker.allow() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unavailable,
                format!("{backend} skipped: circuit breaker open"),
            ))
        }
    }

    /// The budget of a call on `keys` keys.
    #[inline]
    pub(crate) fn budget_for(&self, keys: usize) -> Duration {
        self.budget * keys.div_ceil(BUDGET_KEYS).max(1) as u32
    }

    /// Tells the breaker how an admitted call ended.
    #[inline]
    pub(crate) fn record<T>(&self, outcome: &Result<T>) {
        match outcome {
            Err(e) if e.is_backend_failure() => self.breaker.failure(),
            _ => self.breaker.success(),
        }
    }
}

/// Wraps a backend so that its calls follow a [`Policy`].
#[derive(Debug)]
pub struct Guarded<B> {
    inner: B,
    policy: Policy,
}

impl<B: Backend> Guarded<B> {
    /// Guards `inner` with `policy`.
    pub fn new(inner: B, policy: Policy) -> Self {
        Guarded { inner, policy }
    }

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.policy.breaker_state()
    }

    fn guard<'a, T: Send + 'a>(
        &'a self,
        keys: usize,
        call: impl FnOnce() -> BoxFuture<'a, Result<T>> + Send + 'a,
    ) -> BoxFuture<'a, Result<T>> {
        Box::pin(self.policy.run(self.inner.name(), keys, call))
    }
}

impl<B: Backend> Backend for Guarded<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        self.guard(keys.len(), move || self.inner.get_many(keys))
    }
    fn get_with_generation<'a>(
        &'a self,
        keys: [&'a str; 2],
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<GenerationRead>> {
        self.guard(keys.len(), move || {
            self.inner.get_with_generation(keys, expected)
        })
    }
    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.guard(items.len(), move || self.inner.set_many(items, ttl))
    }
    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        self.guard(1, move || self.inner.set_if(key, value, ttl, expect))
    }
    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        self.guard(keys.len(), move || self.inner.delete(keys))
    }
    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        self.guard(1, move || self.inner.delete_if(key, expect))
    }
    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        self.guard(1, move || self.inner.increment(key, delta, ttl))
    }
    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>> {
        self.guard(1, move || self.inner.advance(key, floor))
    }
    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        self.guard(1, move || self.inner.expire(key, ttl))
    }
    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        self.guard(1, move || self.inner.ttl(key))
    }
    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        self.guard(count, move || self.inner.scan(prefix, cursor, count))
    }
    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        self.guard(1, move || self.inner.ping())
    }
    fn publish<'a>(&'a self, channel: &'a str, message: Bytes) -> BoxFuture<'a, Result<()>> {
        self.guard(1, move || self.inner.publish(channel, message))
    }
    fn subscribe(&self, channel: &str, listener: Weak<dyn Listener>) -> Result<()> {
        self.inner.subscribe(channel, listener)
    }
}
