//! Whether the current tokio runtime has its I/O driver, asked without a
//! printed panic.
//!
//! tokio offers no way to ask a runtime which drivers it has: registering a
//! socket in a runtime built without `enable_io` panics inside tokio, and
//! every registration path does. So the probe registers a throwaway socket
//! and catches that panic. To keep the panic's message out of the
//! application's output (and out of a crash reporter's hook), a probe first
//! makes sure the process's panic hook is memocache's wrapper: one that
//! stays silent for a panic raised *by the probe, on the probing thread*,
//! and hands every other panic to the hook it wraps, unchanged. The wrapper
//! is installed by the first probe, and again by a later probe if the
//! application installed a hook of its own since (which is then wrapped),
//! so it never stacks on itself. Only processes that make Redis
//! connections in callers' runtimes probe, once per runtime.
//!
//! With `panic = "abort"` nothing can be caught, so nothing is probed:
//! [`CAN_PROBE`] is false and callers' runtimes are not used by default.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Whether a panic can be caught in this build (`panic = "unwind"`).
pub(crate) const CAN_PROBE: bool = cfg!(panic = "unwind");

thread_local! {
    /// Set while this thread runs a probe: its panic is not printed.
    static PROBING: Cell<bool> = const { Cell::new(false) };
}

/// What a probe found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Io {
    /// The runtime can register sockets.
    Enabled,
    /// The runtime was built without its I/O driver.
    Disabled,
    /// The probe could not tell (no socket could be made): try, and let a
    /// panic be caught where the real connection is made.
    Unknown,
}

/// Probes the runtime whose context the caller is in.
///
/// Costs a socket pair, one registration and its removal: a few
/// microseconds, once per runtime.
pub(crate) fn current_runtime_io() -> Io {
    // A thread that is panicking already cannot take the hook (and a panic
    // in a panic aborts).
    if !CAN_PROBE || std::thread::panicking() {
        return Io::Unknown;
    }
    let Some(socket) = throwaway_socket() else {
        return Io::Unknown;
    };
    match quietly(move || register(socket)) {
        Ok(true) => Io::Enabled,
        Ok(false) => Io::Unknown,
        Err(()) => Io::Disabled,
    }
}

/// The address of the wrapper installed last (0: none yet).
static WRAPPER: AtomicUsize = AtomicUsize::new(0);

/// Makes memocache's wrapper the panic hook: puts it back if it still is,
/// else wraps whatever hook is installed now.
fn install_wrapper() {
    // Probes of two runtimes at once must not wrap each other.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let current = std::panic::take_hook();
    let address = |hook: &Hook| std::ptr::from_ref::<HookFn>(hook).cast::<()>() as usize;
    if address(&current) == WRAPPER.load(Ordering::Acquire) {
        std::panic::set_hook(current);
        return;
    }
    // The wrapper holds the hook it wraps, so it is never zero-sized and
    // its address is its own while it is installed.
    let wrapper: Hook = Box::new(move |info| {
        if !PROBING.with(Cell::get) {
            current(info);
        }
    });
    WRAPPER.store(address(&wrapper), Ordering::Release);
    std::panic::set_hook(wrapper);
}

type HookFn = dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static;
type Hook = Box<HookFn>;

/// Runs `f`, catching its panic without printing it.
fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    install_wrapper();
    PROBING.with(|p| p.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    PROBING.with(|p| p.set(false));
    result.map_err(drop)
}

#[cfg(unix)]
type Socket = std::os::unix::net::UnixDatagram;

#[cfg(not(unix))]
type Socket = std::net::UdpSocket;

#[cfg(unix)]
fn throwaway_socket() -> Option<Socket> {
    let (socket, _peer) = Socket::pair().ok()?;
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

#[cfg(not(unix))]
fn throwaway_socket() -> Option<Socket> {
    let socket = Socket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).ok()?;
    socket.set_nonblocking(true).ok()?;
    Some(socket)
}

/// Registers `socket` with the current runtime's I/O driver and drops it;
/// panics (inside tokio) when the runtime has none. `false` if the
/// registration failed for another reason.
fn register(socket: Socket) -> bool {
    #[cfg(unix)]
    let registered = tokio::net::UnixDatagram::from_std(socket);
    #[cfg(not(unix))]
    let registered = tokio::net::UdpSocket::from_std(socket);
    registered.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // That the probe's panic is not printed is tested in a process of its
    // own (`tests/runtime_without_io.rs`): a hook is process-wide.

    #[test]
    fn a_runtime_with_io_is_told_from_one_without() {
        let with_io = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let without = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let multi_without = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let multi_with = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(
            with_io.block_on(async { current_runtime_io() }),
            Io::Enabled
        );
        assert_eq!(
            without.block_on(async { current_runtime_io() }),
            Io::Disabled
        );
        let in_task = |rt: &tokio::runtime::Runtime| {
            rt.block_on(async { tokio::spawn(async { current_runtime_io() }).await })
                .unwrap()
        };
        assert_eq!(in_task(&multi_without), Io::Disabled);
        assert_eq!(in_task(&multi_with), Io::Enabled);
        // The probe leaves nothing registered behind.
        assert_eq!(in_task(&multi_with), Io::Enabled);
    }
}
