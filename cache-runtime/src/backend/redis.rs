//! The Redis backend: one multiplexed, self-reconnecting connection, and
//! optionally connections in the callers' own runtimes.
//!
//! - redis-rs `ConnectionManager`: a cloneable handle over one multiplexed
//!   connection (every task shares it; no pool of exclusive connections),
//!   which reconnects in the background after the connection drops.
//! - Every command is polled in the caller's task, within the context of the
//!   I/O runtime (see `blocking::InIo`): what redis-rs spawns or times (the
//!   connection's driver, reconnections, timeouts) lands on the I/O runtime,
//!   so the connection never depends on a caller's runtime (a
//!   `#[tokio::test]` runtime that ends, a runtime without timers, or none),
//!   while a command costs what a plain multiplexed call costs: no task
//!   spawn, no extra thread hop. The reply, though, is read by the driver on
//!   the I/O runtime, which then wakes the caller across runtimes.
//! - Connected lazily: building the backend never blocks and never fails
//!   because Redis is down; the first command connects.
//! - `TCP_NODELAY` on; explicit connect and response timeouts.
//! - AUTH with user and password from the URL
//!   (`redis://user:password@host:6379/0`); TLS with `rediss://` and the
//!   `tls` feature.
//! - Large batches are split into pipelines of [`BATCH`] keys, so one call
//!   never blocks the server for long.
//! - The URL's password never appears in `Debug` or logs.
//!
//! # Connections in the caller's runtime (opt-in)
//!
//! With [`RedisOptions::caller_runtime`] (`Config::redis_caller_runtime`,
//! `MEMOCACHE_REDIS_CALLER_RUNTIME`, `redis_caller_runtime` in
//! `memocache.toml`), a command polled by a tokio runtime other than the I/O
//! runtime, and not by memocache's own `blocking::block_on`, runs on a
//! connection created in that runtime: its driver task and socket belong to
//! the caller's runtime, so a reply wakes the caller without crossing
//! runtimes.
//!
//! - One `MultiplexedConnection` per thread and runtime (a worker thread of
//!   a multi-thread runtime, or the thread of a current-thread runtime),
//!   kept in a thread-local and keyed by backend and `Handle::id()`, so a
//!   hit only clones a handle.
//! - The first call on a thread spawns one task on the caller's runtime that
//!   connects; that call and those made while it connects use the I/O
//!   runtime's connection, so nobody waits for the connection and
//!   concurrent first calls open one connection, not many. The connect is
//!   bounded by the connect timeout, timed on the I/O runtime; a failed
//!   connect is retried after a back-off (0.5 s doubling to 30 s).
//! - The connection has no redis-rs timeouts (they would need the caller's
//!   timer): memocache already bounds every call with its budget, timed on
//!   the I/O runtime.
//! - The task that connected stays parked on the caller's runtime, so when
//!   the runtime ends (a `#[tokio::test]` runtime, a dropped `Runtime`) the
//!   connection is known to be dead before anything is sent on it: it is
//!   dropped and the call uses the I/O runtime's connection. A connection
//!   that fails under a command (the server closed it) is dropped too, and
//!   the command is run again on the I/O runtime's connection when running
//!   it twice is harmless (reads, plain writes, deletes, expiries, pings,
//!   publishes, generation advances); a conditional write or an increment
//!   reports the error instead, as the I/O connection does when it drops,
//!   since it may have been applied. The next call connects again.
//! - Pub/sub, `SCAN`, flush sweeps and everything else memocache runs in the
//!   background stay on the I/O runtime, as do sync callers (they poll with
//!   `blocking::block_on`, possibly blocking the very runtime that would
//!   drive the connection) and futures polled outside any tokio runtime.
//!
//! It is **off by default** because it is safe only if every tokio runtime
//! that polls cached async functions has its I/O driver enabled
//! (`#[tokio::main]`, `#[tokio::test]`, `Builder::enable_all()` or
//! `Builder::enable_io()`): creating a socket in a runtime built without
//! `enable_io` panics inside tokio, and tokio offers no way to ask a runtime
//! which drivers it has. memocache catches that panic in its connect task and
//! keeps that runtime on the I/O connection, but the panic message is still
//! printed. The caller's timer is never used. Also keep cached async calls
//! inside tasks of the runtime: a future polled by another executor while
//! inside a current-thread runtime's context (`futures::executor::block_on`
//! in a task) would wait on a driver nobody polls, until the budget ends it.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};

use bytes::Bytes;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, Script};
use tokio::runtime::Handle;

use super::{Backend, BoxFuture, Expect, KeyTtl, Listener};
use crate::config::RedisUrl;
use crate::error::{Error, ErrorKind, Result};

/// Keys per `MGET`, `UNLINK` or pipeline of `SET`s.
pub const BATCH: usize = 500;

/// Connection settings of the Redis backend.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// Where to connect; holds the credentials.
    pub url: RedisUrl,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long the server may take to answer one command.
    pub response_timeout: Duration,
    /// A PEM file of the certificate authority to trust for `rediss://`,
    /// instead of the system's roots.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Whether async callers polled by a tokio runtime use connections
    /// created in that runtime (see the module docs). Safe only if every
    /// such runtime has I/O enabled; `false` keeps every command on the I/O
    /// runtime's connection.
    pub caller_runtime: bool,
}

/// Entries in Redis.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    client: redis::Client,
    connect_timeout: Duration,
    io: Handle,
    shown_as: String,
    scripts: &'static Scripts,
    /// Set when connections in callers' runtimes are on.
    caller: Option<Arc<CallerConns>>,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("server", &self.shown_as)
            .field("caller_runtime", &self.caller.is_some())
            .finish()
    }
}

struct Scripts {
    advance: Script,
    set_if: Script,
    delete_if: Script,
    increment: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| Scripts {
        // ARGV: floor. Lua numbers are doubles, which would round 64-bit
        // generations: compare the decimal strings (length, then text).
        advance: Script::new(
            r"
            local cur = redis.call('GET', KEYS[1])
            local floor = ARGV[1]
            if cur and string.match(cur, '^%d+$') and #cur < 19 then
              redis.call('INCR', KEYS[1])
              local s = redis.call('GET', KEYS[1])
              if #s > #floor or (#s == #floor and s >= floor) then return s end
            end
            redis.call('SET', KEYS[1], floor)
            return floor",
        ),
        // ARGV: mode ("exact", "prefix" or "prefix-or-absent"), expected,
        // value, ttl in ms (0: none).
        set_if: Script::new(
            r"
            local cur = redis.call('GET', KEYS[1])
            if not cur then
              if ARGV[1] ~= 'prefix-or-absent' then return 0 end
            elseif ARGV[1] == 'exact' then
              if cur ~= ARGV[2] then return 0 end
            elseif string.sub(cur, 1, #ARGV[2]) ~= ARGV[2] then
              return 0
            end
            if ARGV[4] == '0' then
              redis.call('SET', KEYS[1], ARGV[3])
            else
              redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
            end
            return 1",
        ),
        // ARGV: mode, expected.
        delete_if: Script::new(
            r"
            local cur = redis.call('GET', KEYS[1])
            if not cur then return 0 end
            if ARGV[1] == 'exact' then
              if cur ~= ARGV[2] then return 0 end
            elseif string.sub(cur, 1, #ARGV[2]) ~= ARGV[2] then
              return 0
            end
            return redis.call('DEL', KEYS[1])",
        ),
        // ARGV: delta, ttl in ms for a new key (0: none).
        increment: Script::new(
            r"
            local n = redis.call('INCRBY', KEYS[1], ARGV[1])
            if ARGV[2] ~= '0' and n == tonumber(ARGV[1]) and redis.call('PTTL', KEYS[1]) == -1 then
              redis.call('PEXPIRE', KEYS[1], ARGV[2])
            end
            return n",
        ),
    })
}

fn ttl_ms(ttl: Option<Duration>) -> u64 {
    ttl.map_or(0, |d| d.as_millis().clamp(1, u128::from(u64::MAX)) as u64)
}

/// Whether a command may run a second time, on the I/O runtime's connection,
/// after the caller runtime's connection failed under it (when it may or may
/// not have been applied).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Running it twice does what running it once does (reads, plain writes,
    /// deletes, expiries, pings, publishes, generation advances).
    Safe,
    /// A second run could apply it twice or answer differently (increments,
    /// conditional writes and deletes): the error is reported instead.
    Unsafe,
}

impl RedisBackend {
    /// A backend for `options`. Nothing is sent yet: the first command connects.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a URL redis-rs cannot parse, or
    /// `rediss://` without the `tls` feature or with an unreadable CA file.
    pub fn new(options: &RedisOptions) -> Result<Self> {
        let mut info = options
            .url
            .expose()
            .into_connection_info()
            .map_err(|e| Error::invalid(format!("bad Redis URL {}: {e}", options.url)))?;
        let tcp = info.tcp_settings().clone().set_nodelay(true);
        info = info.set_tcp_settings(tcp);
        let client = client_for(info, options)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let handle = crate::blocking::io_handle()?;
        let _context = handle.enter();
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|e| Error::invalid(format!("cannot use Redis URL {}: {e}", options.url)))?;
        let caller = options.caller_runtime.then(|| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            Arc::new(CallerConns {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                client: client.clone(),
                connect_timeout: options.connect_timeout,
                io_runtime: handle.id(),
                shown_as: options.url.to_string(),
            })
        });
        Ok(RedisBackend {
            conn,
            client,
            connect_timeout: options.connect_timeout,
            io: handle.clone(),
            shown_as: options.url.to_string(),
            scripts: scripts(),
            caller,
        })
    }

    /// Runs `op` on a connection.
    ///
    /// Normally the I/O runtime's: in the caller's task but within the I/O
    /// runtime's context (see `blocking::InIo`). With connections in
    /// callers' runtimes on, where the call is polled from is looked at when
    /// it is first polled (it is built within the I/O runtime's context, see
    /// `guard`): from a tokio runtime's task, `op` runs on that runtime's
    /// connection, falling back to the I/O runtime's as the module docs say.
    fn run<T, F, Fut>(&self, retry: Retry, op: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: Fn(Conn, &'static Scripts) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let Some(caller) = &self.caller else {
            return self.run_io(op);
        };
        let (caller, conn, io, scripts) = (
            caller.clone(),
            self.conn.clone(),
            self.io.clone(),
            self.scripts,
        );
        Box::pin(async move {
            if let Some(lease) = caller.checkout() {
                match op(Conn::Caller(lease.conn), scripts).await {
                    Err(e) if e.is_connection() || e.is_timeout() => {
                        lease.link.set(Link::BROKEN);
                        tracing::debug!(
                            server = %caller.shown_as,
                            error = %e,
                            "memocache: a Redis connection of the caller's runtime failed; dropped"
                        );
                        if retry == Retry::Unsafe {
                            return Err(e);
                        }
                    }
                    done => return done,
                }
            }
            let op = Box::pin(op(Conn::Io(conn), scripts));
            crate::blocking::InIo::new(io, op).await
        })
    }

    /// Runs `op` on the I/O runtime's connection, wherever it is polled from.
    fn run_io<T, F, Fut>(&self, op: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(Conn, &'static Scripts) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let op = Box::pin(op(Conn::Io(self.conn.clone()), self.scripts));
        Box::pin(crate::blocking::InIo::new(self.io.clone(), op))
    }
}

/// The connection a command runs on.
enum Conn {
    /// The I/O runtime's.
    Io(ConnectionManager),
    /// One created in the caller's runtime.
    Caller(MultiplexedConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Io(c) => c.req_packed_command(cmd),
            Conn::Caller(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Io(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Caller(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Io(c) => c.get_db(),
            Conn::Caller(c) => c.get_db(),
        }
    }
}

/// What a backend needs to make connections in callers' runtimes.
struct CallerConns {
    /// Tells this backend's connections apart in the thread-locals.
    id: u64,
    client: redis::Client,
    connect_timeout: Duration,
    /// Calls polled by the I/O runtime itself (background work) use its
    /// connection.
    io_runtime: tokio::runtime::Id,
    shown_as: String,
}

/// A connection of the caller's runtime, for one command.
struct Lease {
    conn: MultiplexedConnection,
    link: Arc<Link>,
}

thread_local! {
    /// This thread's connections in callers' runtimes: a few at most (one
    /// per backend and runtime that ran on this thread).
    static SLOTS: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// One connection (or attempt) of this thread, for one backend and runtime.
struct Slot {
    backend: u64,
    runtime: tokio::runtime::Id,
    /// Dead once the backend is gone: the slot is pruned.
    owner: Weak<CallerConns>,
    link: Arc<Link>,
    /// The connection, taken from `link` once it is ready.
    conn: Option<MultiplexedConnection>,
    /// The task on the caller's runtime that connected, then keeps watch.
    task: tokio::task::AbortHandle,
    /// Failed connects before this one, for the back-off.
    failures: u32,
    /// When a failed connect may be tried again.
    retry_at: Option<Instant>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Ends the watch (and drops a connection never taken); harmless if
        // the task or its runtime ended already.
        self.task.abort();
    }
}

/// What a slot shares with the task that connects and keeps watch.
#[derive(Default)]
struct Link {
    state: AtomicU8,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl Link {
    /// The task is connecting.
    const CONNECTING: u8 = 0;
    /// Connected: the connection is in `conn` or in the slot.
    const READY: u8 = 1;
    /// The connect failed or timed out: retried after a back-off.
    const FAILED: u8 = 2;
    /// Connecting panicked (a runtime without I/O): never retried there.
    const UNSUITABLE: u8 = 3;
    /// The runtime dropped the task: it has ended, or is ending.
    const GONE: u8 = 4;
    /// A command failed on the connection.
    const BROKEN: u8 = 5;

    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }
}

/// Held by the connect task: when its runtime drops it, the link is GONE.
struct Watch(Arc<Link>);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self
            .0
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                matches!(s, Link::CONNECTING | Link::READY).then_some(Link::GONE)
            });
    }
}

/// How long after `failures + 1` failed connects to try again.
fn backoff(failures: u32) -> Duration {
    (Duration::from_millis(500) * 2u32.pow(failures.min(6))).min(Duration::from_secs(30))
}

impl CallerConns {
    /// A connection of the runtime polling this call, if one may be used and
    /// is ready. Starts connecting when there is none; never waits.
    fn checkout(self: &Arc<Self>) -> Option<Lease> {
        if crate::blocking::in_block_on() {
            return None;
        }
        let runtime = Handle::try_current().ok()?;
        let id = runtime.id();
        if id == self.io_runtime {
            return None;
        }
        SLOTS
            .try_with(|slots| {
                let mut slots = slots.try_borrow_mut().ok()?;
                self.checkout_in(&mut slots, &runtime, id)
            })
            .ok()
            .flatten()
    }

    fn checkout_in(
        self: &Arc<Self>,
        slots: &mut Vec<Slot>,
        runtime: &Handle,
        id: tokio::runtime::Id,
    ) -> Option<Lease> {
        let mut failures = 0;
        if let Some(i) = slots
            .iter()
            .position(|s| s.backend == self.id && s.runtime == id)
        {
            let slot = &mut slots[i];
            match slot.link.state() {
                Link::READY => {
                    if slot.conn.is_none() {
                        slot.conn = slot.link.conn.lock().take();
                    }
                    if let Some(conn) = &slot.conn {
                        return Some(Lease {
                            conn: conn.clone(),
                            link: slot.link.clone(),
                        });
                    }
                }
                Link::CONNECTING | Link::UNSUITABLE => return None,
                Link::FAILED => {
                    let now = Instant::now();
                    let at = *slot
                        .retry_at
                        .get_or_insert_with(|| now + backoff(slot.failures));
                    if now < at {
                        return None;
                    }
                    failures = slot.failures.saturating_add(1);
                }
                // GONE or BROKEN: connect again.
                _ => {}
            }
            slots.swap_remove(i);
        }
        slots.retain(|s| {
            s.owner.strong_count() > 0 && !matches!(s.link.state(), Link::GONE | Link::BROKEN)
        });
        if let Some(slot) = self.connect(runtime, id, failures) {
            slots.push(slot);
        }
        None
    }

    /// Spawns on `runtime` the task that connects, then keeps watch.
    fn connect(
        self: &Arc<Self>,
        runtime: &Handle,
        id: tokio::runtime::Id,
        failures: u32,
    ) -> Option<Slot> {
        let io = crate::blocking::io_handle().ok()?;
        let link = Arc::new(Link::default());
        let watch = Watch(link.clone());
        let client = self.client.clone();
        let connecting = async move {
            // No redis-rs timeouts: they would use the caller's timer.
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(None)
                .set_response_timeout(None);
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
        };
        // The connect timeout is timed on the I/O runtime: the caller's
        // runtime may have no timer.
        let timed = {
            let _context = io.enter();
            tokio::time::timeout(self.connect_timeout, connecting)
        };
        let shown_as = self.shown_as.clone();
        // `watch` is moved in before the task first runs: if the runtime
        // drops the task unpolled (it is shutting down), the link is GONE.
        let task = runtime.spawn(async move {
            let watch = watch;
            match AssertUnwindSafe(timed).catch_unwind().await {
                Ok(Ok(Ok(conn))) => {
                    *watch.0.conn.lock() = Some(conn);
                    watch.0.set(Link::READY);
                    // Parked until the slot drops it or the runtime ends.
                    std::future::pending::<()>().await;
                }
                Ok(Ok(Err(e))) => {
                    tracing::debug!(server = %shown_as, error = %e, "memocache: connecting to Redis in the caller's runtime failed");
                    watch.0.set(Link::FAILED);
                }
                Ok(Err(_)) => {
                    tracing::debug!(server = %shown_as, "memocache: connecting to Redis in the caller's runtime timed out");
                    watch.0.set(Link::FAILED);
                }
                Err(_) => {
                    tracing::warn!(
                        server = %shown_as,
                        "memocache: a tokio runtime without I/O cannot hold Redis connections \
                         (build it with enable_io or enable_all, or turn redis_caller_runtime off); \
                         its calls use memocache's I/O runtime"
                    );
                    watch.0.set(Link::UNSUITABLE);
                }
            }
        });
        Some(Slot {
            backend: self.id,
            runtime: id,
            owner: Arc::downgrade(self),
            link,
            conn: None,
            task: task.abort_handle(),
            failures,
            retry_at: None,
        })
    }
}

#[cfg(feature = "tls")]
fn client_for(info: redis::ConnectionInfo, options: &RedisOptions) -> Result<redis::Client> {
    // redis-rs leaves the choice of crypto to the application; another
    // provider installed first by the application is kept.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match &options.tls_ca_file {
        Some(path) => {
            let root_cert = std::fs::read(path).map_err(|e| {
                Error::invalid(format!(
                    "cannot read the TLS CA file {}: {e}",
                    path.display()
                ))
            })?;
            redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
            .map_err(|e| Error::invalid(format!("bad TLS settings for {}: {e}", options.url)))
        }
        None => redis::Client::open(info)
            .map_err(|e| Error::invalid(format!("bad Redis URL {}: {e}", options.url))),
    }
}

#[cfg(not(feature = "tls"))]
fn client_for(info: redis::ConnectionInfo, options: &RedisOptions) -> Result<redis::Client> {
    if options.url.is_tls() {
        return Err(Error::invalid(format!(
            "{} asks for TLS, but memocache was built without its `tls` feature; \
             enable it: memocache = {{ version = \"0.1\", features = [\"tls\"] }}",
            options.url
        )));
    }
    redis::Client::open(info)
        .map_err(|e| Error::invalid(format!("bad Redis URL {}: {e}", options.url)))
}

fn expect_args(expect: &Expect) -> (&'static str, Bytes) {
    match expect {
        Expect::Exact(b) => ("exact", b.clone()),
        Expect::Prefix(b) => ("prefix", b.clone()),
        Expect::PrefixOrAbsent(b) => ("prefix-or-absent", b.clone()),
        Expect::Absent => ("absent", Bytes::new()),
    }
}

impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        let keys: Arc<[String]> = keys.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let keys = keys.clone();
            async move {
                if keys.len() <= BATCH {
                    return Ok(redis::cmd("MGET")
                        .arg(&keys[..])
                        .query_async(&mut conn)
                        .await?);
                }
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(BATCH) {
                    let part: Vec<Option<Bytes>> =
                        redis::cmd("MGET").arg(chunk).query_async(&mut conn).await?;
                    out.extend(part);
                }
                Ok(out)
            }
        })
    }

    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        let items: Arc<[(String, Bytes)]> = items.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let items = items.clone();
            async move {
                for chunk in items.chunks(BATCH) {
                    let mut pipe = redis::pipe();
                    for (k, v) in chunk {
                        let cmd = pipe.cmd("SET").arg(k).arg(&v[..]);
                        if ttl.is_some() {
                            cmd.arg("PX").arg(ttl_ms(ttl));
                        }
                        cmd.ignore();
                    }
                    pipe.query_async::<()>(&mut conn).await?;
                }
                Ok(())
            }
        })
    }

    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        let key: Arc<str> = key.into();
        let (mode, expected) = expect_args(expect);
        self.run(Retry::Unsafe, move |mut conn, scripts| {
            let (key, value, expected) = (key.clone(), value.clone(), expected.clone());
            async move {
                if mode == "absent" {
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(&*key).arg(&value[..]).arg("NX");
                    if ttl.is_some() {
                        cmd.arg("PX").arg(ttl_ms(ttl));
                    }
                    let reply: Option<String> = cmd.query_async(&mut conn).await?;
                    return Ok(reply.is_some());
                }
                let stored: i64 = scripts
                    .set_if
                    .key(&*key)
                    .arg(mode)
                    .arg(&expected[..])
                    .arg(&value[..])
                    .arg(ttl_ms(ttl))
                    .invoke_async(&mut conn)
                    .await?;
                Ok(stored == 1)
            }
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        let keys: Arc<[String]> = keys.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let keys = keys.clone();
            async move {
                let mut n = 0;
                for chunk in keys.chunks(BATCH) {
                    let deleted: u64 = redis::cmd("UNLINK")
                        .arg(chunk)
                        .query_async(&mut conn)
                        .await?;
                    n += deleted;
                }
                Ok(n)
            }
        })
    }

    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        let key: Arc<str> = key.into();
        let (mode, expected) = expect_args(expect);
        self.run(Retry::Unsafe, move |mut conn, scripts| {
            let (key, expected) = (key.clone(), expected.clone());
            async move {
                if mode == "absent" {
                    return Ok(false);
                }
                let deleted: i64 = scripts
                    .delete_if
                    .key(&*key)
                    .arg(mode)
                    .arg(&expected[..])
                    .invoke_async(&mut conn)
                    .await?;
                Ok(deleted == 1)
            }
        })
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        let key: Arc<str> = key.into();
        self.run(Retry::Unsafe, move |mut conn, scripts| {
            let key = key.clone();
            async move {
                Ok(scripts
                    .increment
                    .key(&*key)
                    .arg(delta)
                    .arg(ttl_ms(ttl))
                    .invoke_async(&mut conn)
                    .await?)
            }
        })
    }

    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>> {
        let key: Arc<str> = key.into();
        // Safe to run twice: generations only grow, and readers validate
        // against whichever is live.
        self.run(Retry::Safe, move |mut conn, scripts| {
            let key = key.clone();
            async move {
                let new: String = scripts
                    .advance
                    .key(&*key)
                    .arg(floor.to_string())
                    .invoke_async(&mut conn)
                    .await?;
                new.parse().map_err(|_| {
                    Error::new(
                        ErrorKind::Backend,
                        format!("the generation `{new}` is not a number"),
                    )
                })
            }
        })
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        let key: Arc<str> = key.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let key = key.clone();
            async move {
                let set: i64 = redis::cmd("PEXPIRE")
                    .arg(&*key)
                    .arg(ttl_ms(Some(ttl)))
                    .query_async(&mut conn)
                    .await?;
                Ok(set == 1)
            }
        })
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        let key: Arc<str> = key.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let key = key.clone();
            async move {
                let ms: i64 = redis::cmd("PTTL").arg(&*key).query_async(&mut conn).await?;
                Ok(match ms {
                    -2 => KeyTtl::Missing,
                    -1 => KeyTtl::Persistent,
                    ms if ms >= 0 => KeyTtl::Expires(Duration::from_millis(ms as u64)),
                    other => {
                        return Err(Error::new(
                            ErrorKind::Backend,
                            format!("PTTL answered {other}"),
                        ))
                    }
                })
            }
        })
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        let pattern = format!("{prefix}*");
        // Scans are background work (flush sweeps): always the I/O runtime's.
        self.run_io(move |mut conn, _| async move {
            let reply: (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(count.max(1))
                .query_async(&mut conn)
                .await?;
            Ok(reply)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        self.run(Retry::Safe, |mut conn, _| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(())
        })
    }

    fn publish<'a>(&'a self, channel: &'a str, message: Bytes) -> BoxFuture<'a, Result<()>> {
        let channel: Arc<str> = channel.into();
        // A message published twice only invalidates twice.
        self.run(Retry::Safe, move |mut conn, _| {
            let (channel, message) = (channel.clone(), message.clone());
            async move {
                redis::cmd("PUBLISH")
                    .arg(&*channel)
                    .arg(&message[..])
                    .query_async::<i64>(&mut conn)
                    .await?;
                Ok(())
            }
        })
    }

    fn subscribe(&self, channel: &str, listener: Weak<dyn Listener>) -> Result<()> {
        let (client, channel, timeout) = (
            self.client.clone(),
            channel.to_owned(),
            self.connect_timeout,
        );
        self.io.spawn(async move {
            let mut backoff = Duration::from_millis(50);
            loop {
                let connected = tokio::time::timeout(timeout, client.get_async_pubsub()).await;
                if let Ok(Ok(mut pubsub)) = connected {
                    if pubsub.subscribe(&channel).await.is_ok() {
                        let Some(l) = listener.upgrade() else { return };
                        l.connected(true);
                        drop(l);
                        backoff = Duration::from_millis(50);
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let Some(l) = listener.upgrade() else { return };
                            l.message(msg.get_payload_bytes());
                        }
                        let Some(l) = listener.upgrade() else { return };
                        l.connected(false);
                    }
                }
                if listener.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memocache_testkit::RedisServer;

    fn backend(server: &RedisServer) -> RedisBackend {
        RedisBackend::new(&RedisOptions {
            url: RedisUrl::parse(&server.url()).unwrap(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            tls_ca_file: None,
            caller_runtime: true,
        })
        .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn caller_id(b: &RedisBackend) -> u64 {
        b.caller.as_ref().unwrap().id
    }

    /// This thread's slots of `b`: (runtime, state, connection taken).
    fn slots(b: &RedisBackend) -> Vec<(tokio::runtime::Id, u8, bool)> {
        SLOTS.with(|s| {
            s.borrow()
                .iter()
                .filter(|s| s.backend == caller_id(b))
                .map(|s| (s.runtime, s.link.state(), s.conn.is_some()))
                .collect()
        })
    }

    /// Pings from `rt` until this thread's connection for it is in use.
    fn until_ready(b: &RedisBackend, rt: &tokio::runtime::Runtime) -> Arc<Link> {
        let id = rt.handle().id();
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !slots(b).contains(&(id, Link::READY, true)) {
                assert!(Instant::now() < deadline, "never ready: {:?}", slots(b));
                b.ping().await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        SLOTS.with(|s| {
            let s = s.borrow();
            let slot = s
                .iter()
                .find(|s| s.backend == caller_id(b) && s.runtime == id);
            slot.unwrap().link.clone()
        })
    }

    #[test]
    fn a_connection_of_an_ended_runtime_is_never_sent_on() {
        let server = RedisServer::start();
        let b = backend(&server);
        let a = runtime();
        let a_id = a.handle().id();
        let link = until_ready(&b, &a);
        drop(a);
        assert_eq!(link.state(), Link::GONE, "the watch ended with its runtime");

        // Give A's slot to another runtime, as if tokio reused A's id (it may,
        // once A has ended): its first call, an increment (never run twice),
        // must notice before sending and use the I/O runtime's connection.
        let other = runtime();
        let other_id = other.handle().id();
        SLOTS.with(|s| {
            for slot in s.borrow_mut().iter_mut() {
                if slot.runtime == a_id {
                    slot.runtime = other_id;
                }
            }
        });
        other.block_on(async {
            assert_eq!(b.increment("gone:n", 1, None).await.unwrap(), 1);
            assert_eq!(b.increment("gone:n", 1, None).await.unwrap(), 2);
        });
        let now = slots(&b);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].0, other_id);
        assert_ne!(now[0].1, Link::GONE, "{now:?}");
    }

    #[test]
    fn a_broken_connection_is_dropped_and_replaced() {
        let server = RedisServer::start();
        let b = backend(&server);
        let rt = runtime();
        let link = until_ready(&b, &rt);
        let mut admin = server.client();
        // Kill every client but the admin: the I/O connection reconnects by
        // itself; the caller runtime's is dropped on its first failure.
        let own: u64 = redis::cmd("CLIENT").arg("ID").query(&mut admin).unwrap();
        let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
        for id in list
            .lines()
            .filter_map(|l| {
                l.strip_prefix("id=")?
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .filter(|id| *id != own)
        {
            let _: redis::Value = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(id)
                .query(&mut admin)
                .unwrap();
        }
        rt.block_on(async {
            // An increment may have been applied: the error is reported.
            let e = b.increment("broken:n", 1, None).await.unwrap_err();
            assert!(e.is_connection(), "{e}");
            assert_eq!(link.state(), Link::BROKEN);
            // The next calls run on the I/O runtime's connection meanwhile
            // (it may need one call to notice its own reconnection).
            let mut ok = 0;
            for _ in 0..20 {
                if b.increment("broken:n", 1, None).await.is_ok() {
                    ok += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(ok >= 19, "{ok} of 20 increments worked");
        });
        let now = slots(&b);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].1, Link::READY, "a new connection: {now:?}");
    }

    #[test]
    fn background_and_sync_calls_make_no_caller_connection() {
        let server = RedisServer::start();
        let b = backend(&server);
        let io = crate::blocking::io_handle().unwrap();
        let b2 = b.clone();
        let (ok, none, slots_there) = crate::blocking::block_on(io.spawn(async move {
            let ok = b2.ping().await.is_ok();
            let none = b2.caller.as_ref().unwrap().checkout().is_none();
            (ok, none, slots(&b2).len())
        }))
        .unwrap();
        assert!(ok && none);
        assert_eq!(slots_there, 0, "a slot on the I/O runtime");

        let rt = runtime();
        rt.block_on(async {
            for _ in 0..3 {
                crate::blocking::block_on(b.ping()).unwrap();
                assert!(crate::blocking::block_on(async {
                    b.caller.as_ref().unwrap().checkout().is_none()
                }));
            }
        });
        assert!(slots(&b).is_empty(), "{:?}", slots(&b));
        // Outside any runtime.
        crate::blocking::block_on(b.ping()).unwrap();
        assert!(b.caller.as_ref().unwrap().checkout().is_none());
        assert!(slots(&b).is_empty());
    }
}
