//! The Redis backend: one multiplexed, self-reconnecting connection.
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
//!   spawn, no extra thread hop.
//! - Connected lazily: building the backend never blocks and never fails
//!   because Redis is down; the first command connects.
//! - `TCP_NODELAY` on; explicit connect and response timeouts.
//! - AUTH with user and password from the URL
//!   (`redis://user:password@host:6379/0`); TLS with `rediss://` and the
//!   `tls` feature.
//! - Large batches are split into pipelines of [`BATCH`] keys, so one call
//!   never blocks the server for long.
//! - The URL's password never appears in `Debug` or logs.

use std::fmt;
use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, Script};

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
}

/// Entries in Redis.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    client: redis::Client,
    connect_timeout: Duration,
    io: tokio::runtime::Handle,
    shown_as: String,
    scripts: &'static Scripts,
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("server", &self.shown_as)
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
        Ok(RedisBackend {
            conn,
            client,
            connect_timeout: options.connect_timeout,
            io: handle.clone(),
            shown_as: options.url.to_string(),
            scripts: scripts(),
        })
    }

    /// Runs `op` with a connection handle, in the caller's task but within
    /// the I/O runtime's context (see `blocking::InIo`).
    fn run<T, F, Fut>(&self, op: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(ConnectionManager, &'static Scripts) -> Fut,
        Fut: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let op = Box::pin(op(self.conn.clone(), self.scripts));
        Box::pin(crate::blocking::InIo::new(self.io.clone(), op))
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
        let keys = keys.to_vec();
        self.run(|mut conn, _| async move {
            if keys.len() <= BATCH {
                return Ok(redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?);
            }
            let mut out = Vec::with_capacity(keys.len());
            for chunk in keys.chunks(BATCH) {
                let part: Vec<Option<Bytes>> =
                    redis::cmd("MGET").arg(chunk).query_async(&mut conn).await?;
                out.extend(part);
            }
            Ok(out)
        })
    }

    fn set_many<'a>(
        &'a self,
        items: &'a [(String, Bytes)],
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        let items = items.to_vec();
        self.run(move |mut conn, _| async move {
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
        })
    }

    fn set_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        let (mode, expected) = expect_args(expect);
        self.run(move |mut conn, scripts| async move {
            if mode == "absent" {
                let mut cmd = redis::cmd("SET");
                cmd.arg(&key).arg(&value[..]).arg("NX");
                if ttl.is_some() {
                    cmd.arg("PX").arg(ttl_ms(ttl));
                }
                let reply: Option<String> = cmd.query_async(&mut conn).await?;
                return Ok(reply.is_some());
            }
            let stored: i64 = scripts
                .set_if
                .key(&key)
                .arg(mode)
                .arg(&expected[..])
                .arg(&value[..])
                .arg(ttl_ms(ttl))
                .invoke_async(&mut conn)
                .await?;
            Ok(stored == 1)
        })
    }

    fn delete<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        let keys = keys.to_vec();
        self.run(|mut conn, _| async move {
            let mut n = 0;
            for chunk in keys.chunks(BATCH) {
                let deleted: u64 = redis::cmd("UNLINK")
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await?;
                n += deleted;
            }
            Ok(n)
        })
    }

    fn delete_if<'a>(&'a self, key: &'a str, expect: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        let (mode, expected) = expect_args(expect);
        self.run(move |mut conn, scripts| async move {
            if mode == "absent" {
                return Ok(false);
            }
            let deleted: i64 = scripts
                .delete_if
                .key(&key)
                .arg(mode)
                .arg(&expected[..])
                .invoke_async(&mut conn)
                .await?;
            Ok(deleted == 1)
        })
    }

    fn increment<'a>(
        &'a self,
        key: &'a str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        let key = key.to_owned();
        self.run(move |mut conn, scripts| async move {
            Ok(scripts
                .increment
                .key(&key)
                .arg(delta)
                .arg(ttl_ms(ttl))
                .invoke_async(&mut conn)
                .await?)
        })
    }

    fn advance<'a>(&'a self, key: &'a str, floor: u64) -> BoxFuture<'a, Result<u64>> {
        let key = key.to_owned();
        self.run(move |mut conn, scripts| async move {
            let new: String = scripts
                .advance
                .key(&key)
                .arg(floor.to_string())
                .invoke_async(&mut conn)
                .await?;
            new.parse().map_err(|_| {
                Error::new(
                    ErrorKind::Backend,
                    format!("the generation `{new}` is not a number"),
                )
            })
        })
    }

    fn expire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, Result<bool>> {
        let key = key.to_owned();
        self.run(move |mut conn, _| async move {
            let set: i64 = redis::cmd("PEXPIRE")
                .arg(&key)
                .arg(ttl_ms(Some(ttl)))
                .query_async(&mut conn)
                .await?;
            Ok(set == 1)
        })
    }

    fn ttl<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        let key = key.to_owned();
        self.run(move |mut conn, _| async move {
            let ms: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await?;
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
        })
    }

    fn scan<'a>(
        &'a self,
        prefix: &'a str,
        cursor: u64,
        count: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        let pattern = format!("{prefix}*");
        self.run(move |mut conn, _| async move {
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
        self.run(|mut conn, _| async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await?;
            Ok(())
        })
    }

    fn publish<'a>(&'a self, channel: &'a str, message: Bytes) -> BoxFuture<'a, Result<()>> {
        let channel = channel.to_owned();
        self.run(move |mut conn, _| async move {
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&message[..])
                .query_async::<i64>(&mut conn)
                .await?;
            Ok(())
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
