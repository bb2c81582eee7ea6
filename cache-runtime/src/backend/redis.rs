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
//! - `TCP_NODELAY` on (unless `Config::redis_tcp_nodelay` is off); explicit
//!   connect and response timeouts.
//! - AUTH with user and password from the URL
//!   (`redis://user:password@host:6379/0`); TLS with `rediss://` and the
//!   `tls` feature.
//! - Large batches are split into pipelines of [`BATCH`] keys, so one call
//!   never blocks the server for long.
//! - The URL's password never appears in `Debug` or logs.
//!
//! # Connections in the caller's runtime (on by default)
//!
//! With [`RedisOptions::caller_runtime`] (`Config::redis_caller_runtime`,
//! `MEMOCACHE_REDIS_CALLER_RUNTIME`, `redis_caller_runtime` in
//! `memocache.toml`; on unless panics abort), a command polled by a tokio
//! runtime with two worker threads or more (other than the I/O runtime),
//! and not by memocache's own `blocking::block_on`, runs on a connection
//! created in that runtime: its driver task and socket belong to the
//! caller's runtime, so a reply wakes the caller without crossing runtimes.
//!
//! - Runtimes with one worker thread (current-thread runtimes included)
//!   keep the I/O runtime's connection: with the connection's driver task
//!   taking turns with every caller on the one thread, each command was
//!   written on its own (105 000 hits/s at 256 tasks, against 250 000 to
//!   310 000 on the I/O connection, which has a thread of its own).
//! - One `MultiplexedConnection` per runtime, shared by its worker threads,
//!   as a service's own client would be: one socket, so concurrent commands
//!   are pipelined into as few writes as possible. The backend keeps them in a list keyed by `Handle::id()`;
//!   each thread also keeps a reference to the entries it used last in a
//!   thread-local, so a hit takes no lock and only clones a handle.
//! - The first call from a runtime spawns one task on it that connects;
//!   that call and those made while it connects use the I/O runtime's
//!   connection, so nobody waits for the connection and concurrent first
//!   calls, on every thread of the runtime, open one connection, not many.
//!   The connect is bounded by the connect timeout, timed on the I/O
//!   runtime; a failed connect is retried after a back-off (0.5 s doubling
//!   to 30 s).
//! - The connection speaks RESP3 and has the server track the generation
//!   keys it reads (`CLIENT TRACKING ON OPTIN`), so that a hit reads its
//!   entry alone (`Tracking`, [`Backend::get_with_generation`]). Where the
//!   server or the ACL refuses RESP3 or tracking, the connection is made in
//!   RESP2 without it, and hits send `MGET gen key`.
//! - The connection has no redis-rs timeouts (they would need the caller's
//!   timer): memocache already bounds every call with its budget (see
//!   `budget`).
//! - Each thread keeps spare handles on its runtime's connection (`Lease`):
//!   a command takes one and gives it back, so that it moves no reference
//!   count that the runtime's other threads move too.
//! - The task that connected (or failed to) stays parked on the caller's
//!   runtime, so when the runtime ends (a `#[tokio::test]` runtime, a
//!   dropped `Runtime`) the connection is known to be dead before anything
//!   is sent on it: the call uses the I/O runtime's connection, and the
//!   entry is pruned when the next one is added (the runtime closed the
//!   socket when it dropped the connection's driver task). A connection
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
//! A runtime built without its I/O driver cannot register a socket: tokio
//! panics, and offers no way to ask a runtime which drivers it has, nor to
//! register fallibly. So the connect task first probes its runtime with a
//! throwaway socket (`io_probe`), catching tokio's panic without printing
//! it; a runtime without I/O keeps using the I/O connection, and is never
//! probed again. (The connect itself is guarded the same way, printed, for
//! what the probe could not tell.) With `panic = "abort"` nothing can be
//! caught: the setting is off by default there, and safe only if every
//! runtime that polls cached async functions has I/O enabled. The caller's
//! timer is never used. Also keep cached async calls inside tasks of the
//! runtime: a future polled by another executor while inside a
//! current-thread runtime's context (`futures::executor::block_on` in a
//! task) would wait on a driver nobody polls, until the budget ends it.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};

use bytes::Bytes;
use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, IntoConnectionInfo, Script};
use tokio::runtime::Handle;

use super::{
    io_probe, two_values, Backend, BoxFuture, Expect, Generation, GenerationRead, KeyTtl, Listener,
};
use crate::budget::Budgeted;
use crate::config::RedisUrl;
use crate::error::{Error, ErrorKind, Result};
use crate::guard::Policy;
use crate::read_mostly::ReadMostly;

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
    /// created in that runtime (see the module docs); `false` keeps every
    /// command on the I/O runtime's connection.
    pub caller_runtime: bool,
    /// Whether connections set `TCP_NODELAY` (see `Config::redis_tcp_nodelay`).
    pub tcp_nodelay: bool,
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
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
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
        let tcp = info.tcp_settings().clone().set_nodelay(options.tcp_nodelay);
        info = info.set_tcp_settings(tcp);
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let tracked_client = client_for(info.clone().set_redis_settings(resp3), options)?;
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
                tracked_client,
                connect_timeout: options.connect_timeout,
                io_runtime: handle.id(),
                io: handle.clone(),
                io_conn: conn.clone(),
                shown_as: options.url.to_string(),
                runtimes: Mutex::new(Vec::new()),
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
    fn run<'a, T, F, Fut>(&'a self, retry: Retry, op: F) -> BoxFuture<'a, Result<T>>
    where
        T: Send + 'a,
        F: Fn(Conn, &'static Scripts) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        match &self.caller {
            None => self.run_io(op),
            // Checked out when first polled, not when made (see above).
            Some(caller) => {
                Box::pin(async move { self.run_leased(caller, caller.checkout(), retry, op).await })
            }
        }
    }

    /// [`run`](Self::run) with connections in callers' runtimes on,
    /// unboxed, on `lease` (checked out by the caller; `None`: the I/O
    /// runtime's connection).
    async fn run_leased<T, F, Fut>(
        &self,
        caller: &Arc<CallerConns>,
        lease: Option<Lease>,
        retry: Retry,
        op: F,
    ) -> Result<T>
    where
        F: Fn(Conn, &'static Scripts) -> Fut,
        Fut: Future<Output = Result<T>> + Send,
    {
        let scripts = self.scripts;
        if let Some(lease) = lease {
            let link = lease.link_id();
            match op(Conn::Caller(lease), scripts).await {
                Err(e) if e.is_connection() || e.is_timeout() => {
                    caller.broken(link, &e);
                    if retry == Retry::Unsafe {
                        return Err(e);
                    }
                }
                done => return done,
            }
        }
        let op = Box::pin(op(Conn::Io(caller.io_conn.clone()), scripts));
        crate::blocking::InIo::new(caller.io.clone(), op).await
    }

    /// [`Backend::get_with_generation`] without the boxed future the trait
    /// returns. Boxed, the future of a hit's read was 1.7 KB: past the
    /// allocator's per-thread cache, so every hit took its slower path
    /// twice (allocate and free), on the critical path of the call.
    async fn read_generation(&self, keys: [&str; 2], expected: &[u8]) -> Result<GenerationRead> {
        let op =
            move |mut conn, _| async move { read_with_generation(keys, expected, &mut conn).await };
        match &self.caller {
            Some(caller) => {
                self.run_leased(caller, caller.checkout(), Retry::Safe, op)
                    .await
            }
            None => self.run_io(op).await,
        }
    }

    /// A hit's read under `policy` (what `Manager::read_with_generation`
    /// calls), in as few futures as it can be: on a connection of the
    /// caller's runtime that tracks the generation key and holds the
    /// expected generation, the `GET` is sent from here, under the policy's
    /// budget, with no future of the policy's `run` or of
    /// [`run`](Self::run) between the call and the connection. Those are
    /// state machines a hit polled through twice, and code it ran cold after
    /// each round trip (measured in the bench: 1.065x-1.068x a raw `GET` at
    /// p50 through them, 1.058x without; 3% fewer lines of code run per
    /// hit; see docs/BENCHMARKS.md). Anything else (no such connection, a
    /// generation that moved during the `GET`, a connection that failed)
    /// takes the general way under [`Policy::run`], on the same lease (or,
    /// after a failure, which drops the connection as `run` does, on the
    /// I/O runtime's connection). When the generation moved or the
    /// connection failed, the general way has a budget of its own: a
    /// second one, for a call that met a flush or a broken connection.
    pub(crate) async fn read_generation_under(
        &self,
        keys: [&str; 2],
        expected: &[u8],
        policy: &Policy,
    ) -> Result<GenerationRead> {
        let Some(caller) = &self.caller else {
            let read = || self.read_generation(keys, expected);
            return policy.run(self.name(), keys.len(), read).await;
        };
        let mut lease = caller.checkout();
        let mut failed_link = false;
        if let Some(held) = &mut lease {
            let link = held.link_id();
            if let Spare {
                conn,
                tracking: Some(tracking),
                get,
                ..
            } = &mut *held.spare
            {
                let before = tracking.changes();
                if tracking.holds(keys[0], before, expected) {
                    policy.admit(self.name())?;
                    // The budget's own timeout apart from the `GET`'s
                    // errors (the outer and the inner `Result`).
                    let read = std::pin::pin!(async { Ok(get_entry(conn, get, keys[1]).await) });
                    let outcome = Budgeted::new(read, policy.budget_for(keys.len())).await;
                    match outcome {
                        Ok(Ok(entry)) if tracking.changes() == before => {
                            policy.record(&Ok(()));
                            return Ok(GenerationRead {
                                generation: Generation::Expected,
                                entry,
                            });
                        }
                        // The generation moved: read both, the general way.
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) if e.is_connection() || e.is_timeout() => {
                            caller.broken(link, &e);
                            failed_link = true;
                        }
                        Ok(Err(e)) | Err(e) => {
                            let failed = Err(e);
                            policy.record(&failed);
                            return failed;
                        }
                    }
                }
            }
        }
        if failed_link {
            lease = None;
        }
        let op =
            move |mut conn, _| async move { read_with_generation(keys, expected, &mut conn).await };
        let read = move || self.run_leased(caller, lease, Retry::Safe, op);
        policy.run(self.name(), keys.len(), read).await
    }

    /// Runs `op` on the I/O runtime's connection, wherever it is polled from.
    fn run_io<'a, T, F, Fut>(&self, op: F) -> BoxFuture<'a, Result<T>>
    where
        T: Send + 'a,
        F: FnOnce(Conn, &'static Scripts) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        let op = Box::pin(op(Conn::Io(self.conn.clone()), self.scripts));
        Box::pin(crate::blocking::InIo::new(self.io.clone(), op))
    }
}

/// The connection a command runs on.
enum Conn {
    /// The I/O runtime's.
    Io(ConnectionManager),
    /// One created in the caller's runtime (with what tracks the generation
    /// keys it read, if the server tracks them for it).
    Caller(Lease),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Io(c) => c.req_packed_command(cmd),
            Conn::Caller(lease) => lease.spare.conn.req_packed_command(cmd),
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
            Conn::Caller(lease) => lease
                .spare
                .conn
                .req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Io(c) => c.get_db(),
            Conn::Caller(lease) => lease.spare.conn.get_db(),
        }
    }
}

/// What a backend needs to make connections in callers' runtimes.
struct CallerConns {
    /// Tells this backend's entries apart in the thread-locals.
    id: u64,
    client: redis::Client,
    /// The same server, spoken to in RESP3 (for client-side tracking).
    tracked_client: redis::Client,
    connect_timeout: Duration,
    /// Calls polled by the I/O runtime itself (background work) use its
    /// connection.
    io_runtime: tokio::runtime::Id,
    /// The I/O runtime and its connection, for the calls that fall back to
    /// them (kept here so that a call clones one `Arc`, not these).
    io: Handle,
    io_conn: ConnectionManager,
    shown_as: String,
    /// The connection (or connect attempt) of each runtime that polled a
    /// call, shared by that runtime's threads. Entries of ended runtimes are
    /// pruned whenever an entry is added.
    runtimes: Mutex<Vec<(tokio::runtime::Id, Arc<RuntimeConn>)>>,
}

/// A connection of the caller's runtime, for one command: a handle on the
/// runtime's connection taken from this thread's spares, and given back to
/// the spares of the thread that drops it.
///
/// Why spares: a command needs a `MultiplexedConnection` of its own (its
/// methods take `&mut self`), and a clone of one, with the `Arc`s a lease
/// holds besides, moves five reference counts that every thread of the
/// runtime moves too: their cache lines pass between the threads on every
/// command. A spare is made once and then moves between a thread's list and
/// its commands.
struct Lease {
    /// Taken out only by `drop`.
    spare: ManuallyDrop<Spare>,
}

/// A handle on a runtime's connection, and what a command on it needs.
struct Spare {
    conn: MultiplexedConnection,
    link: Arc<Link>,
    tracking: Option<Arc<Tracking>>,
    /// The `GET` of a tracked hit, built again in the same buffers by every
    /// hit that holds this spare: two allocations (and their frees) fewer
    /// per hit than a new command.
    get: redis::Cmd,
}

/// Spares kept per thread and runtime connection, at most.
const MAX_SPARES: usize = 1024;

impl Spare {
    fn new(conn: &MultiplexedConnection, link: &Arc<Link>) -> Self {
        Spare {
            conn: conn.clone(),
            link: link.clone(),
            tracking: link.tracking.get().cloned().flatten(),
            get: redis::Cmd::new(),
        }
    }
}

impl Lease {
    fn new(spare: Spare) -> Self {
        Lease {
            spare: ManuallyDrop::new(spare),
        }
    }

    /// Its connection's serial number: tells connections apart without
    /// holding one.
    fn link_id(&self) -> u64 {
        self.spare.link.serial
    }
}

impl Drop for Lease {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: `spare` is not used again: this is the lease's drop.
        let spare = unsafe { ManuallyDrop::take(&mut self.spare) };
        // To this thread's spares of the same connection: the task may have
        // moved to another thread of the runtime, which has its own list.
        // Elsewhere (a thread that does not use that connection, or whose
        // thread-locals are gone) the spare is dropped, out of the borrow.
        let kept = NEAR.try_with(|near| {
            let Ok(mut near) = near.try_borrow_mut() else {
                return Some(spare);
            };
            match near
                .iter_mut()
                .find(|n| Arc::ptr_eq(&n.conn.link, &spare.link))
            {
                Some(n) if n.spares.len() < MAX_SPARES && !spare.link.is_dead() => {
                    n.spares.push(spare);
                    None
                }
                _ => Some(spare),
            }
        });
        drop(kept);
    }
}

/// The generation keys a caller connection read under client-side tracking
/// (`CLIENT TRACKING ON OPTIN`), which the server then reports changes of.
///
/// The server writes an invalidation message into this connection's stream
/// as soon as a tracked key changes, so it arrives before the reply to any
/// command the server ran after the change; redis-rs hands it to the push
/// sender (which moves `changes` on) before it hands over any later reply.
/// So a generation value read at `changes == n` is still the live one when
/// a later reply arrives and `changes` is still `n`.
///
/// Only plain `MultiplexedConnection`s qualify: a `ConnectionManager` (the
/// I/O runtime's connection) forwards push messages through a channel and a
/// task of its own, so they may arrive after later replies; its reads send
/// `MGET gen key`.
///
/// What Redis does not report, and how it is covered:
/// - a key that has expired but is not deleted yet: a generation key with a
///   time to live (memocache never gives them one) is not remembered;
/// - `SWAPDB`, which sends no invalidation: not supported with tracking,
///   but a remembered value is trusted for [`TRUSTED_FOR`] at most, then
///   read again with the entry;
/// - servers that deliver invalidations later than Redis does: tracking is
///   used only with Redis and Valkey (`INFO server`), see [`tracks_in_order`].
#[derive(Default)]
struct Tracking {
    /// Moves on with every message the server pushes (invalidations) and
    /// when the connection drops.
    changes: AtomicU64,
    /// Generation values read under tracking (read on every hit, written
    /// when one is armed).
    known: ReadMostly<String, Known>,
}

/// A generation value read under tracking.
#[derive(Clone)]
struct Known {
    value: Bytes,
    /// `changes` before the read was sent.
    at: u64,
    /// When it must be read again whatever happened (coarse milliseconds).
    until: crate::local::clock::Millis,
}

/// How long a generation read under tracking is trusted without a report
/// of change: a bound for what Redis does not report (see [`Tracking`]).
/// Costs one `MGET` per namespace, connection and period.
const TRUSTED_FOR: Duration = Duration::from_secs(1);

/// Generation keys remembered per connection before the list is cleared
/// (namespaces are few; this only bounds a pathological use, and the copy
/// each new one makes: see `ReadMostly`).
const KNOWN_GENERATIONS: usize = 512;

/// Whether `INFO server` describes a server known to write invalidation
/// messages into the stream as it runs the change (Redis and Valkey do,
/// from Redis 6); other servers that accept `CLIENT TRACKING` (Dragonfly,
/// proxies) are not trusted with it.
fn tracks_in_order(info: &str) -> bool {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let major = |v: &str| v.split('.').next()?.parse::<u32>().ok();
    let foreign = ["dragonfly_version", "keydb", "kvrocks_version", "garnet"]
        .iter()
        .any(|marker| info.contains(marker));
    !foreign
        && (field("valkey_version").is_some_and(|v| major(v).is_some())
            || field("redis_version")
                .and_then(major)
                .is_some_and(|m| m >= 6))
}

impl Tracking {
    #[inline]
    fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether `generation` was read holding `expected` while `changes` was
    /// `at`, less than [`TRUSTED_FOR`] ago. (Compared in place: a hit copies
    /// no generation value, and counts no reference on the shared one.)
    #[inline]
    fn holds(&self, generation: &str, at: u64, expected: &[u8]) -> bool {
        self.known
            .read(generation, |known| {
                known.at == at
                    && *known.value == *expected
                    && crate::local::clock::now_coarse() < known.until
            })
            .unwrap_or(false)
    }

    fn remember(&self, generation: &str, value: Bytes, at: u64) {
        // Every update copies the map: callers that armed the same read at
        // once (after a change, all of them) make one copy, not one each.
        // (Only while the entry is trusted: one past its period is renewed.)
        let now = crate::local::clock::now_coarse();
        let same = |known: &Known| known.at == at && known.value == value && now < known.until;
        if self.known.read(generation, same) == Some(true) {
            return;
        }
        let until = now + TRUSTED_FOR.as_millis() as u64;
        self.known.update(|known| {
            if known.len() >= KNOWN_GENERATIONS && !known.contains_key(generation) {
                known.clear();
            }
            let value = value.clone();
            known.insert(generation.to_owned(), Known { value, at, until });
        });
    }
}

/// One [`Backend::get_with_generation`] of `[generation, entry]`:
/// `MGET generation entry`, or, on a caller connection that tracks the
/// generation key, `GET entry` alone while no change of the generation key
/// was reported since it was read holding the expected value.
async fn read_with_generation(
    keys: [&str; 2],
    expected: &[u8],
    conn: &mut Conn,
) -> Result<GenerationRead> {
    let [generation_key, entry_key] = keys;
    let (conn, get, tracking) = match conn {
        Conn::Caller(lease) => match &mut *lease.spare {
            Spare {
                conn,
                tracking: Some(tracking),
                get,
                ..
            } => (conn, get, &**tracking),
            Spare { tracking: None, .. } => {
                return mget_with_generation(keys, expected, conn).await
            }
        },
        conn => return mget_with_generation(keys, expected, conn).await,
    };
    let before = tracking.changes();
    if tracking.holds(generation_key, before, expected) {
        let entry = get_entry(conn, get, entry_key).await?;
        if tracking.changes() == before {
            return Ok(GenerationRead {
                generation: Generation::Expected,
                entry,
            });
        }
    }
    // Boxed (taken only when the generation changed): the future of a read
    // is moved several times on its way to the connection, and is then only
    // as large as the `GET` alone needs.
    let values = Box::pin(read_and_track(keys, conn, tracking)).await?;
    Ok(GenerationRead::of(values, expected))
}

/// `GET entry` on `conn`, built in `get` (a spare's command, whose buffers
/// are kept from one hit to the next).
async fn get_entry(
    conn: &mut MultiplexedConnection,
    get: &mut redis::Cmd,
    entry_key: &str,
) -> Result<Option<Bytes>> {
    get.clear();
    get.arg("GET").arg(entry_key);
    // Sent by the connection's own method: through `query_async`, the
    // connection's `req_packed_command` boxes that method's future (a
    // kilobyte, allocated per command).
    let reply = conn.send_packed_command(get).await?.extract_error()?;
    Ok(redis::from_redis_value(reply).map_err(redis::RedisError::from)?)
}

/// `MGET generation entry`, against the expected generation.
async fn mget_with_generation(
    keys: [&str; 2],
    expected: &[u8],
    conn: &mut impl redis::aio::ConnectionLike,
) -> Result<GenerationRead> {
    let values = two_values(mget(&keys).query_async(conn).await?, "redis")?;
    Ok(GenerationRead::of(values, expected))
}

/// Reads both keys atomically, and has the server track the generation key
/// for this connection.
async fn read_and_track(
    keys: [&str; 2],
    conn: &mut MultiplexedConnection,
    tracking: &Tracking,
) -> Result<[Option<Bytes>; 2]> {
    let [generation_key, _] = keys;
    // `CLIENT CACHING YES` applies to the command right after it (a
    // pipeline is written in one piece), the `GET` of the generation key
    // alone. A generation key with a time to live is not remembered: Redis
    // reports an expiry only when it deletes the key.
    let before = tracking.changes();
    let mut pipe = redis::pipe();
    pipe.cmd("CLIENT")
        .arg("CACHING")
        .arg("YES")
        .ignore()
        .cmd("GET")
        .arg(generation_key)
        .ignore()
        .cmd("PTTL")
        .arg(generation_key)
        .add_command(mget(&keys));
    let (ttl, values): (i64, Vec<Option<Bytes>>) = pipe.query_async(conn).await?;
    let values = two_values(values, "redis")?;
    if tracking.changes() == before && ttl == -1 {
        if let Some(generation) = &values[0] {
            tracking.remember(generation_key, generation.clone(), before);
        }
    }
    Ok(values)
}

/// A runtime's connection, or the attempt to make one.
struct RuntimeConn {
    link: Arc<Link>,
    /// The task on the runtime that connected, then keeps watch.
    task: tokio::task::AbortHandle,
    /// Failed connects before this one, for the back-off.
    failures: u32,
}

impl Drop for RuntimeConn {
    fn drop(&mut self) {
        // Ends the watch; harmless if the task or its runtime ended already.
        self.task.abort();
    }
}

thread_local! {
    /// The entries this thread used last, so that a call takes no lock: a
    /// few at most (one per backend and runtime that ran on this thread).
    static NEAR: RefCell<Vec<Near>> = const { RefCell::new(Vec::new()) };
}

/// This thread's reference to a backend's entry for one runtime.
struct Near {
    backend: u64,
    runtime: tokio::runtime::Id,
    /// Dead once the backend is gone: the reference is pruned.
    owner: Weak<CallerConns>,
    conn: Arc<RuntimeConn>,
    /// Handles on the connection for this thread's commands (see [`Lease`]).
    spares: Vec<Spare>,
}

impl Near {
    /// Whether this is the entry of `backend`'s connection in `runtime`.
    #[inline]
    fn is_of(&self, backend: u64, runtime: tokio::runtime::Id) -> bool {
        self.backend == backend && self.runtime == runtime
    }
}

/// What a runtime's connection shares with the task that makes it.
struct Link {
    /// Tells this connection from every other of the process (an address
    /// could be reused by the next one).
    serial: u64,
    state: AtomicU8,
    /// Set before the state becomes READY.
    conn: OnceLock<MultiplexedConnection>,
    /// When a failed connect may be tried again; set before the state
    /// becomes FAILED.
    retry_at: OnceLock<Instant>,
    /// Set before the state becomes READY: whether the server tracks keys
    /// for the connection.
    tracking: OnceLock<Option<Arc<Tracking>>>,
}

/// What a caller may do with a runtime's entry.
enum Use<'a> {
    /// Run the command on this connection.
    Ready(&'a MultiplexedConnection),
    /// Use the I/O runtime's connection for now.
    Wait,
    /// Connect again.
    Replace,
}

impl Link {
    fn new() -> Self {
        static SERIALS: AtomicU64 = AtomicU64::new(0);
        Link {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            state: AtomicU8::new(Link::CONNECTING),
            conn: OnceLock::new(),
            retry_at: OnceLock::new(),
            tracking: OnceLock::new(),
        }
    }

    /// The task is connecting.
    const CONNECTING: u8 = 0;
    /// Connected: the connection is in `conn`.
    const READY: u8 = 1;
    /// The connect failed or timed out: retried after a back-off.
    const FAILED: u8 = 2;
    /// Not for this runtime (one worker thread, or no I/O): never tried
    /// again there.
    const UNSUITABLE: u8 = 3;
    /// The runtime dropped the task: it has ended, or is ending.
    const GONE: u8 = 4;
    /// A command failed on the connection.
    const BROKEN: u8 = 5;

    #[inline]
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn set(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    #[inline]
    fn usable(&self) -> Use<'_> {
        match self.state() {
            Link::READY => self.conn.get().map_or(Use::Wait, Use::Ready),
            Link::CONNECTING | Link::UNSUITABLE => Use::Wait,
            Link::FAILED => match self.retry_at.get() {
                Some(at) if Instant::now() < *at => Use::Wait,
                _ => Use::Replace,
            },
            _ => Use::Replace,
        }
    }

    /// Whether the connection is known to be dead (its runtime ended, or a
    /// command failed on it): its entry is pruned.
    #[inline]
    fn is_dead(&self) -> bool {
        matches!(self.state(), Link::GONE | Link::BROKEN)
    }
}

/// Held by the connect task for as long as it lives: when the runtime drops
/// the task (it is ending) the link is GONE.
struct Watch(Arc<Link>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.set(Link::GONE);
    }
}

/// How long after `failures + 1` failed connects to try again.
fn backoff(failures: u32) -> Duration {
    (Duration::from_millis(500) * 2u32.pow(failures.min(6))).min(Duration::from_secs(30))
}

impl CallerConns {
    /// A connection of the runtime polling this call, if one may be used and
    /// is ready. Starts connecting when there is none; never waits.
    #[inline]
    fn checkout(self: &Arc<Self>) -> Option<Lease> {
        if crate::blocking::in_block_on() {
            return None;
        }
        let runtime = Handle::try_current().ok()?;
        let id = runtime.id();
        if id == self.io_runtime {
            return None;
        }
        NEAR.try_with(|near| {
            let mut near = near.try_borrow_mut().ok()?;
            self.checkout_in(&mut near, &runtime, id)
        })
        .ok()
        .flatten()
    }

    #[inline]
    fn checkout_in(
        self: &Arc<Self>,
        near: &mut Vec<Near>,
        runtime: &Handle,
        id: tokio::runtime::Id,
    ) -> Option<Lease> {
        if let Some(n) = near.iter_mut().find(|n| n.is_of(self.id, id)) {
            match n.conn.link.usable() {
                Use::Ready(conn) => {
                    let spare = match n.spares.pop() {
                        Some(spare) => spare,
                        None => Spare::new(conn, &n.conn.link),
                    };
                    return Some(Lease::new(spare));
                }
                Use::Wait => return None,
                Use::Replace => {}
            }
        }
        self.checkout_new(near, runtime, id)
    }

    /// [`checkout_in`](Self::checkout_in) when this thread has no usable
    /// entry for the runtime: out of line, as a hit never comes here.
    #[inline(never)]
    fn checkout_new(
        self: &Arc<Self>,
        near: &mut Vec<Near>,
        runtime: &Handle,
        id: tokio::runtime::Id,
    ) -> Option<Lease> {
        let conn = self.entry(runtime, id)?;
        near.retain(|n| {
            n.owner.strong_count() > 0 && !n.is_of(self.id, id) && !n.conn.link.is_dead()
        });
        let spare = match conn.link.usable() {
            Use::Ready(c) => Some(Spare::new(c, &conn.link)),
            Use::Wait | Use::Replace => None,
        };
        near.push(Near {
            backend: self.id,
            runtime: id,
            owner: Arc::downgrade(self),
            conn,
            spares: Vec::new(),
        });
        spare.map(Lease::new)
    }

    /// A command failed on the connection `link` (a [`Lease::link_id`]) with
    /// `error`, which is logged: the connection is not used again. (Its
    /// lease, dropped with the command, went back
    /// to the spares; they are dropped with the thread's entry at the next
    /// checkout.)
    fn broken(&self, link: u64, error: &Error) {
        tracing::debug!(
            server = %self.shown_as,
            error = %error,
            "memocache: a Redis connection of the caller's runtime failed; dropped"
        );
        let runtimes = self.runtimes.lock();
        if let Some((_, conn)) = runtimes.iter().find(|(_, c)| c.link.serial == link) {
            conn.link.set(Link::BROKEN);
        }
    }

    /// The runtime's entry: the current one, or a new connect when there is
    /// none or it cannot be used any more. Under the lock, so that the
    /// runtime's threads start one connect, not one each.
    fn entry(&self, runtime: &Handle, id: tokio::runtime::Id) -> Option<Arc<RuntimeConn>> {
        let mut runtimes = self.runtimes.lock();
        let mut failures = 0;
        if let Some(i) = runtimes.iter().position(|(r, _)| *r == id) {
            let conn = &runtimes[i].1;
            if !matches!(conn.link.usable(), Use::Replace) {
                return Some(conn.clone());
            }
            if conn.link.state() == Link::FAILED {
                failures = conn.failures.saturating_add(1);
            }
            runtimes.swap_remove(i);
        }
        runtimes.retain(|(_, c)| !c.link.is_dead());
        let conn = Arc::new(self.connect(runtime, failures)?);
        runtimes.push((id, conn.clone()));
        Some(conn)
    }

    /// Spawns on `runtime` the task that connects, then keeps watch.
    fn connect(&self, runtime: &Handle, failures: u32) -> Option<RuntimeConn> {
        let io = crate::blocking::io_handle().ok()?;
        let link = Arc::new(Link::new());
        let watch = Watch(link.clone());
        // A runtime with one worker thread (a current-thread runtime
        // included) is better served by the I/O runtime's connection: its
        // own would have the connection's driver task take turns with every
        // caller on that one thread, which then writes each command on its
        // own (measured: 105 000 against 250 000-310 000 hits/s at 256
        // tasks; with two workers, 230 000 against 175 000 the other way).
        let one_worker = runtime.metrics().num_workers() < 2;
        let (client, tracked_client) = (self.client.clone(), self.tracked_client.clone());
        let connecting = async move {
            // No redis-rs timeouts: they would use the caller's timer.
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(None)
                .set_response_timeout(None);
            // RESP3 with client-side tracking of the generation keys, so a
            // hit reads its entry alone (see `Tracking`); RESP2 without it
            // where the server or the user's ACL refuses either.
            let tracking = Arc::new(Tracking::default());
            let pushes = tracking.clone();
            let tracked_config = config.clone().set_push_sender(move |_: redis::PushInfo| {
                pushes.changed();
                Ok::<(), std::convert::Infallible>(())
            });
            if let Ok(mut conn) = tracked_client
                .get_multiplexed_async_connection_with_config(&tracked_config)
                .await
            {
                let mut info = redis::cmd("INFO");
                info.arg("server");
                let tracks = match info.query_async::<String>(&mut conn).await {
                    Ok(info) if tracks_in_order(&info) => redis::cmd("CLIENT")
                        .arg("TRACKING")
                        .arg("ON")
                        .arg("OPTIN")
                        .query_async::<()>(&mut conn)
                        .await
                        .map(|()| true),
                    other => other.map(|_| false),
                };
                return match tracks {
                    Ok(tracks) => Ok((conn, tracks.then_some(tracking))),
                    Err(e) if e.is_io_error() || e.is_connection_dropped() => Err(e),
                    // Refused (an ACL, an older server): no tracking.
                    Err(_) => Ok((conn, None)),
                };
            }
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            Ok((conn, None))
        };
        // The connect timeout is timed on the I/O runtime: the caller's
        // runtime may have no timer.
        let timed = {
            let _context = io.enter();
            tokio::time::timeout(self.connect_timeout, connecting)
        };
        let shown_as = self.shown_as.clone();
        let failed = move |link: &Link| {
            let _ = link.retry_at.set(Instant::now() + backoff(failures));
            link.set(Link::FAILED);
        };
        // `watch` is moved in before the task first runs: if the runtime
        // drops the task unpolled (it is shutting down), the link is GONE.
        let task = runtime.spawn(async move {
            let watch = watch;
            let link = &*watch.0;
            let without_io =
                !one_worker && io_probe::current_runtime_io() == io_probe::Io::Disabled;
            if without_io {
                tracing::debug!(
                    server = %shown_as,
                    "memocache: this tokio runtime has no I/O driver; its Redis calls use \
                     memocache's I/O runtime"
                );
            }
            if one_worker || without_io {
                link.set(Link::UNSUITABLE);
                std::future::pending::<()>().await;
            }
            match AssertUnwindSafe(timed).catch_unwind().await {
                Ok(Ok(Ok((conn, tracking)))) => {
                    let _ = link.tracking.set(tracking);
                    let _ = link.conn.set(conn);
                    link.set(Link::READY);
                }
                Ok(Ok(Err(e))) => {
                    tracing::debug!(server = %shown_as, error = %e, "memocache: connecting to Redis in the caller's runtime failed");
                    failed(link);
                }
                Ok(Err(_)) => {
                    tracing::debug!(server = %shown_as, "memocache: connecting to Redis in the caller's runtime timed out");
                    failed(link);
                }
                Err(_) => {
                    tracing::warn!(
                        server = %shown_as,
                        "memocache: a tokio runtime without I/O cannot hold Redis connections \
                         (build it with enable_io or enable_all, or turn redis_caller_runtime off); \
                         its calls use memocache's I/O runtime"
                    );
                    link.set(Link::UNSUITABLE);
                }
            }
            // Parked until the entry is dropped or the runtime ends, which
            // then marks the entry GONE whatever the outcome was.
            std::future::pending::<()>().await;
        });
        Some(RuntimeConn {
            link,
            task: task.abort_handle(),
            failures,
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

/// `MGET keys...`, allocated at its final size.
fn mget<K: AsRef<str>>(keys: &[K]) -> redis::Cmd {
    let data = 4 + keys.iter().map(|k| k.as_ref().len()).sum::<usize>();
    let mut cmd = redis::Cmd::with_capacity(1 + keys.len(), data);
    cmd.arg("MGET");
    for key in keys {
        cmd.arg(key.as_ref());
    }
    cmd
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
        if keys.len() <= BATCH {
            // The hit path: one command, built once at its final size and
            // shared (rather than copying the keys for the retry).
            let mget = Arc::new(mget(keys));
            return self.run(Retry::Safe, move |mut conn, _| {
                let mget = mget.clone();
                async move { Ok(mget.query_async(&mut conn).await?) }
            });
        }
        let keys: Arc<[String]> = keys.into();
        self.run(Retry::Safe, move |mut conn, _| {
            let keys = keys.clone();
            async move {
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(BATCH) {
                    let part: Vec<Option<Bytes>> = mget(chunk).query_async(&mut conn).await?;
                    out.extend(part);
                }
                Ok(out)
            }
        })
    }

    fn get_with_generation<'a>(
        &'a self,
        keys: [&'a str; 2],
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<GenerationRead>> {
        Box::pin(self.read_generation(keys, expected))
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

    #[test]
    fn tracking_is_trusted_to_redis_and_valkey_only() {
        let redis7 = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        let valkey =
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n";
        let redis5 = "# Server\r\nredis_version:5.0.7\r\n";
        let dragonfly = "# Server\r\nredis_version:7.4.0\r\ndragonfly_version:df-v1.25.0\r\n";
        let odd = "# Server\r\nversion:1\r\n";
        assert!(tracks_in_order(redis7));
        assert!(tracks_in_order(valkey));
        assert!(!tracks_in_order(redis5));
        assert!(!tracks_in_order(dragonfly));
        assert!(!tracks_in_order(odd));
        assert!(!tracks_in_order(""));
    }

    fn backend(server: &RedisServer) -> RedisBackend {
        RedisBackend::new(&RedisOptions {
            url: RedisUrl::parse(&server.url()).unwrap(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
            tls_ca_file: None,
            caller_runtime: true,
            tcp_nodelay: true,
        })
        .unwrap()
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    fn caller(b: &RedisBackend) -> &Arc<CallerConns> {
        b.caller.as_ref().unwrap()
    }

    /// The entries of `b`: (runtime, state, connection made).
    fn entries(b: &RedisBackend) -> Vec<(tokio::runtime::Id, u8, bool)> {
        caller(b)
            .runtimes
            .lock()
            .iter()
            .map(|(id, c)| (*id, c.link.state(), c.link.conn.get().is_some()))
            .collect()
    }

    /// The link of `b`'s entry for the runtime `id`.
    fn link_of(b: &RedisBackend, id: tokio::runtime::Id) -> Arc<Link> {
        let runtimes = caller(b).runtimes.lock();
        let (_, conn) = runtimes.iter().find(|(r, _)| *r == id).unwrap();
        conn.link.clone()
    }

    /// A server, a backend on it, and a two-worker runtime whose connection
    /// is ready (its link).
    fn ready() -> (
        RedisServer,
        RedisBackend,
        tokio::runtime::Runtime,
        Arc<Link>,
    ) {
        let server = RedisServer::start();
        let b = backend(&server);
        let rt = runtime();
        let link = until_ready(&b, &rt);
        (server, b, rt, link)
    }

    /// Pings from `rt` until its connection is in use.
    fn until_ready(b: &RedisBackend, rt: &tokio::runtime::Runtime) -> Arc<Link> {
        let id = rt.handle().id();
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !entries(b).contains(&(id, Link::READY, true)) {
                assert!(Instant::now() < deadline, "never ready: {:?}", entries(b));
                b.ping().await.unwrap();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        link_of(b, id)
    }

    /// How many spare handles this thread keeps for `b`.
    fn spares(b: &RedisBackend) -> usize {
        let id = caller(b).id;
        NEAR.with(|near| {
            near.borrow()
                .iter()
                .filter(|n| n.backend == id)
                .map(|n| n.spares.len())
                .sum()
        })
    }

    #[test]
    fn commands_reuse_their_threads_spare_handles_and_a_broken_one_is_not_kept() {
        let (_server, b, rt, _) = ready();
        rt.block_on(async {
            // One command at a time on this thread: one spare, reused.
            for _ in 0..20 {
                b.ping().await.unwrap();
            }
            assert_eq!(spares(&b), 1);
            let (first, second) = (caller(&b).checkout(), caller(&b).checkout());
            assert!(first.is_some() && second.is_some());
            assert_eq!(spares(&b), 0, "both leases hold a spare");
            drop((first, second));
            assert_eq!(spares(&b), 2, "both given back");
            // Another task found the connection broken: a lease given back
            // after that is dropped.
            let lease = caller(&b).checkout().unwrap();
            lease.spare.link.set(Link::BROKEN);
            drop(lease);
            assert_eq!(spares(&b), 1, "a broken connection's spare is dropped");
        });
    }

    #[test]
    fn a_failed_command_retires_its_connection_and_its_spares() {
        let (_server, b, rt, link) = ready();
        rt.block_on(async {
            // As `run` does: the command's lease goes back, then the
            // failure is reported by the connection's serial.
            let lease = caller(&b).checkout().unwrap();
            let serial = lease.link_id();
            drop(lease);
            assert_eq!(spares(&b), 1);
            let failure = Error::new(ErrorKind::Backend, "a failed command");
            caller(&b).broken(serial.wrapping_add(1), &failure);
            assert_eq!(link.state(), Link::READY, "another connection's serial");
            caller(&b).broken(serial, &failure);
            assert_eq!(link.state(), Link::BROKEN);
            // The next call connects again, and this thread's spares of
            // the broken connection go.
            b.ping().await.unwrap();
            assert_eq!(spares(&b), 0);
        });
        let fresh = until_ready(&b, &rt);
        assert_ne!(fresh.serial, link.serial);
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

        // Give A's entry to another runtime, as if tokio reused A's id (it
        // may, once A has ended): its first call, an increment (never run
        // twice), must notice before sending and use the I/O runtime's
        // connection.
        let other = runtime();
        let other_id = other.handle().id();
        for (id, _) in caller(&b).runtimes.lock().iter_mut() {
            if *id == a_id {
                *id = other_id;
            }
        }
        NEAR.with(|near| {
            for n in near.borrow_mut().iter_mut() {
                if n.runtime == a_id {
                    n.runtime = other_id;
                }
            }
        });
        other.block_on(async {
            assert_eq!(b.increment("gone:n", 1, None).await.unwrap(), 1);
            assert_eq!(b.increment("gone:n", 1, None).await.unwrap(), 2);
        });
        let now = entries(&b);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].0, other_id);
        assert_ne!(now[0].1, Link::GONE, "{now:?}");
    }

    #[test]
    fn the_threads_of_a_runtime_share_its_connection() {
        let server = RedisServer::start();
        let b = backend(&server);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let first = until_ready(&b, &rt);
        // Two tasks that wait for each other at a barrier run on the two
        // workers at once.
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let seen = rt.block_on(async {
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let (b, barrier) = (b.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait();
                        let thread = std::thread::current().id();
                        let lease = caller(&b).checkout().expect("a ready connection");
                        let link = lease.link_id();
                        b.ping().await.unwrap();
                        (thread, link)
                    })
                })
                .collect();
            let mut seen = Vec::new();
            for t in tasks {
                seen.push(t.await.unwrap());
            }
            seen
        });
        assert!(
            seen.iter().all(|(_, link)| *link == first.serial),
            "{seen:?}"
        );
        let threads: std::collections::HashSet<_> = seen.iter().map(|(t, _)| *t).collect();
        assert_eq!(threads.len(), 2, "both workers ran tasks: {seen:?}");
        assert_eq!(entries(&b).len(), 1, "{:?}", entries(&b));

        // Once the runtime has ended, the next runtime's entry replaces its.
        drop(rt);
        assert_eq!(first.state(), Link::GONE);
        let next = runtime();
        until_ready(&b, &next);
        let now = entries(&b);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].0, next.handle().id());
        NEAR.with(|near| {
            let near = near.borrow();
            assert!(
                near.iter().all(|n| !n.conn.link.is_dead()),
                "a dead entry kept"
            );
        });
    }

    #[test]
    fn a_broken_connection_is_dropped_and_replaced() {
        let (server, b, rt, link) = ready();
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
        let now = entries(&b);
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(now[0].1, Link::READY, "a new connection: {now:?}");
    }

    #[test]
    fn background_and_sync_calls_make_no_caller_connection() {
        let server = RedisServer::start();
        let b = backend(&server);
        let io = crate::blocking::io_handle().unwrap();
        let b2 = b.clone();
        let (ok, none) = crate::blocking::block_on(io.spawn(async move {
            let ok = b2.ping().await.is_ok();
            (ok, caller(&b2).checkout().is_none())
        }))
        .unwrap();
        assert!(ok && none);
        assert!(entries(&b).is_empty(), "an entry for the I/O runtime");

        let rt = runtime();
        rt.block_on(async {
            for _ in 0..3 {
                crate::blocking::block_on(b.ping()).unwrap();
                assert!(crate::blocking::block_on(async {
                    caller(&b).checkout().is_none()
                }));
            }
        });
        assert!(entries(&b).is_empty(), "{:?}", entries(&b));
        // Outside any runtime.
        crate::blocking::block_on(b.ping()).unwrap();
        assert!(caller(&b).checkout().is_none());
        assert!(entries(&b).is_empty());
    }
}
