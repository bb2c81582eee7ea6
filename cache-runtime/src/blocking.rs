//! How sync code drives the async backends: a small executor that parks the
//! calling thread, and one background I/O runtime that owns the connections.
//!
//! Connections to remote backends are created on the I/O runtime, so their
//! driver tasks never depend on a caller's runtime (a `#[tokio::test]`
//! runtime that ends, or none at all on a plain thread). Sync callers then
//! poll the operation's future on their own thread under the I/O runtime's
//! context, which makes them work the same on a plain thread and inside a
//! tokio runtime: no "cannot block inside a runtime" panic, because nothing
//! calls tokio's `block_on`. Async callers simply `.await` the same futures.
//!
//! The one exception is the Redis setting "caller runtimes"
//! (`Config::redis_caller_runtime`, on by default): async callers polled by
//! a multi-thread tokio runtime use connections created in that runtime.
//! [`block_on`] marks the thread while it polls, so sync callers never use
//! them: their driver task may sit on the very runtime the sync caller is
//! blocking.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::{Handle, Runtime};

use crate::error::{Error, ErrorKind, Result};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread, parking it while it waits.
///
/// Unlike `futures::executor::block_on` it may be nested (a sync cached
/// function calling another), and unlike tokio's it may run inside a runtime.
/// Futures that need a tokio reactor or timer must be run with [`block_on_io`].
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        let polled = {
            let _polling = Polling::start();
            future.as_mut().poll(&mut cx)
        };
        if let Poll::Ready(out) = polled {
            return out;
        }
        std::thread::park();
    }
}

thread_local! {
    /// Whether this thread is inside [`block_on`]'s poll of its future.
    static IN_BLOCK_ON: Cell<bool> = const { Cell::new(false) };
}

/// Sets [`IN_BLOCK_ON`] for as long as it lives, then restores what it was
/// (`block_on` may be nested), even if the poll panics.
struct Polling {
    was: bool,
}

impl Polling {
    fn start() -> Self {
        Polling {
            was: IN_BLOCK_ON.with(|flag| flag.replace(true)),
        }
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        let was = self.was;
        // During thread teardown the flag may be gone already: nothing to restore.
        let _ = IN_BLOCK_ON.try_with(|flag| flag.set(was));
    }
}

/// Whether the current code is polled by memocache's [`block_on`] (a sync
/// cached function, or the sync API), as opposed to by an async runtime.
///
/// The Redis backend's "caller runtime" connections must not be used then:
/// their driver task lives on the caller's runtime, which this thread may be
/// blocking (a current-thread runtime would never answer).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
#[inline]
pub(crate) fn in_block_on() -> bool {
    IN_BLOCK_ON.try_with(Cell::get).unwrap_or(false)
}

/// Runs `future` on this thread within the I/O runtime's context, so that
/// tokio timers and sockets work wherever the caller is.
///
/// # Errors
/// When the I/O runtime could not be started (the OS refused a thread).
pub fn block_on_io<F: Future>(future: F) -> Result<F::Output> {
    let _context = io_handle()?.enter();
    Ok(block_on(future))
}

/// A future polled within the I/O runtime's context: whatever it spawns or
/// times (a connection's driver task, a reconnection, a timeout) lands on
/// the I/O runtime, while the future itself runs in the caller's task, with
/// no hop to another thread.
pub struct InIo<'a, T> {
    io: Handle,
    inner: crate::backend::BoxFuture<'a, T>,
}

impl<'a, T> InIo<'a, T> {
    /// Wraps `inner`, to be polled within `io`'s context.
    pub fn new(io: Handle, inner: crate::backend::BoxFuture<'a, T>) -> Self {
        InIo { io, inner }
    }
}

impl<T> Future for InIo<'_, T> {
    type Output = T;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let _context = self.io.enter();
        self.inner.as_mut().poll(cx)
    }
}

/// Sleeps on the I/O runtime's timer, so it works whatever runtime (or none)
/// polls it.
pub async fn sleep(duration: std::time::Duration) {
    let timer = match io_handle() {
        Ok(io) => {
            let _context = io.enter();
            tokio::time::sleep(duration)
        }
        // No timer to be had: the callers' backend calls fail the same way.
        Err(_) => return,
    };
    timer.await;
}

/// The background runtime that owns remote connections: one worker thread,
/// started on first use, alive for the life of the process.
///
/// # Errors
/// When the runtime could not be started.
pub fn io_handle() -> Result<&'static Handle> {
    static IO: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("memocache-io")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(Runtime::handle)
    .map_err(|e| {
        Error::new(
            ErrorKind::Connection,
            format!("the memocache I/O runtime could not start: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn nested_block_on_works() {
        let v = block_on(async { block_on(async { 41 }) + 1 });
        assert_eq!(v, 42);
    }

    #[test]
    fn block_on_says_when_it_polls() {
        assert!(!in_block_on());
        let seen = block_on(async {
            let outer = in_block_on();
            let inner = block_on(async { in_block_on() });
            (outer, inner, in_block_on())
        });
        assert_eq!(seen, (true, true, true));
        assert!(!in_block_on(), "the flag outlived block_on");
        let panicked = std::panic::catch_unwind(|| block_on(async { panic!("boom") }));
        assert!(panicked.is_err());
        assert!(!in_block_on(), "a panicking poll left the flag set");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_runtime_polling_is_not_block_on() {
        assert!(!in_block_on());
        tokio::task::yield_now().await;
        assert!(!in_block_on());
    }

    #[test]
    fn timers_work_from_a_plain_thread() {
        let out = block_on_io(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            7
        })
        .unwrap();
        assert_eq!(out, 7);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn blocking_inside_a_runtime_does_not_panic() {
        let out = block_on_io(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            8
        })
        .unwrap();
        assert_eq!(out, 8);
    }
}
