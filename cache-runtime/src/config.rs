//! Configuration: from code ([`Config::builder`]), or from the environment and
//! an optional `memocache.toml` ([`Config::from_env`]).
//!
//! | setting | environment | `memocache.toml` | default |
//! |---|---|---|---|
//! | backend URL | `MEMOCACHE_URL` | `url` | `memory://` |
//! | key prefix | `MEMOCACHE_PREFIX` | `prefix` | `memocache` |
//! | default TTL | `MEMOCACHE_DEFAULT_TTL` | `default_ttl` | `10m` |
//! | key secret | `MEMOCACHE_KEY_SECRET` | `key_secret` | none |
//! | time budget per backend call | `MEMOCACHE_BUDGET` | `budget` | `100ms` |
//! | connect timeout | `MEMOCACHE_CONNECT_TIMEOUT` | `connect_timeout` | `250ms` |
//! | failures that open the breaker | | `breaker_threshold` | 5 |
//! | breaker cool-down | | `breaker_cooldown` | `1s` |
//! | memory backend bounds | | `memory_max_entries`, `memory_max_bytes` | 100 000, 256 MiB |
//! | how long a removal blocks older writes | | `removal_window` | `10m` |
//! | TLS CA file for `rediss://` | `MEMOCACHE_TLS_CA_FILE` | `tls_ca_file` | system roots |
//! | value codec | `MEMOCACHE_CODEC` | `codec` (`"json"`, `"msgpack"`) | `json` |
//! | compress payloads longer than | | `compress_above` (bytes) | 1024 |
//! | Redis connections in the caller's runtime | `MEMOCACHE_REDIS_CALLER_RUNTIME` | `redis_caller_runtime` | `true` (`false` with `panic = "abort"`) |
//! | `TCP_NODELAY` on Redis connections | `MEMOCACHE_REDIS_TCP_NODELAY` | `redis_tcp_nodelay` | `true` |
//!
//! The file is `$MEMOCACHE_CONFIG` if set (it must exist), else
//! `./memocache.toml` if it exists. The environment overrides the file.
//! Durations are human-readable: `"90s"`, `"5m"`, `"1h 30m"`. Switches are
//! `true` or `false` in the file, and `true`, `false`, `1` or `0` in the
//! environment.
//!
//! # Redis connections in the caller's runtime
//!
//! On by default. An async cached call polled by a tokio runtime with two
//! worker threads or more runs its Redis commands on a connection created
//! in *that* runtime (one per runtime, shared by its worker threads, made
//! once in the background), so a reply wakes the caller directly, as a
//! client the service made itself would. A runtime with one worker thread
//! (current-thread runtimes included) keeps the I/O runtime's connection:
//! there the connection's driver would take turns with every caller on the
//! one thread and write each command on its own (measured at 256 tasks:
//! 105 000 hits/s on its own connection, 250 000 on the I/O runtime's). Off, every command runs on the one connection of memocache's
//! background I/O runtime, and every reply wakes the caller across
//! runtimes: about 30 µs more per hit at the median and 85 µs at p99 on
//! loopback (docs/BENCHMARKS.md).
//!
//! # `TCP_NODELAY`
//!
//! On by default, as most Redis clients set it (redis-rs itself leaves it
//! off): each command leaves when it is written. Off, the kernel's Nagle
//! algorithm holds a command while an earlier one on the connection is
//! unacknowledged, and sends the held ones together: fewer, larger writes
//! for the client and the server. Measured on loopback (docs/BENCHMARKS.md):
//! with 16 tasks calling at once, 1.2 to 1.3 times the hits per second; one
//! caller alone, no change. The price is latency when commands overlap: a
//! held command waits for the acknowledgement, up to one round trip more
//! (on a network, not loopback, that is most of a hit's time), and a
//! command longer than one TCP segment (about 1.4 KB on a network; 64 KiB
//! on loopback, where the benchmark runs) can wait for the server's delayed
//! acknowledgement, about 40 ms on Linux. Turn it off only for
//! throughput-bound services with many concurrent calls of small values.
//!
//! A runtime built without its I/O driver (no `enable_io`/`enable_all`)
//! cannot hold a socket. tokio cannot be asked which drivers a runtime has,
//! and registering a socket without one panics, so memocache probes each
//! runtime once with a throwaway socket, catching that panic without
//! printing it (see `backend::redis`); such a runtime keeps using the I/O
//! runtime's connection. With `panic = "abort"` no panic can be caught,
//! so the default is off there; turning it on is then safe only if every
//! runtime that calls cached async functions has I/O enabled. Sync cached
//! functions, background work (flush sweeps, invalidation messages) and
//! calls polled outside any tokio runtime always use the I/O runtime.
//! See `backend::redis` for the details.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::envelope::{Codec, Encoding};
use crate::error::{Error, Result};
use crate::key::Name;

/// A secret string: shown as `<redacted>` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: only for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Redis URL, which may carry a user and password. `Display` and `Debug`
/// show it with the password replaced by `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    full: Secret,
    shown: String,
    tls: bool,
}

impl RedisUrl {
    /// Parses and checks a `redis://` or `rediss://` URL.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming what
    /// is wrong (the error shows the URL without its password).
    pub fn parse(raw: &str) -> Result<Self> {
        let parsed = url::Url::parse(raw).map_err(|e| {
            Error::invalid(format!(
                "`{}` is not a valid URL: {e}",
                redact_unparsed(raw)
            ))
        })?;
        let tls = match parsed.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                return Err(Error::invalid(format!(
                    "unsupported scheme `{other}://`; use memory://, redis:// or rediss://"
                )))
            }
        };
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(Error::invalid(format!(
                "`{}` names no host",
                redact(&parsed)
            )));
        }
        let db = parsed.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u16>().is_err() {
            return Err(Error::invalid(format!(
                "`{}`: the path must be a database number, not `{db}`",
                redact(&parsed)
            )));
        }
        Ok(RedisUrl {
            shown: redact(&parsed),
            full: Secret::new(raw),
            tls,
        })
    }

    /// The URL with its password: only for the code that connects.
    pub fn expose(&self) -> &str {
        self.full.expose()
    }

    /// Whether it asks for TLS (`rediss://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

fn redact(url: &url::Url) -> String {
    let mut shown = url.clone();
    if url.password().is_some() {
        let _ = shown.set_password(Some("<redacted>"));
    }
    shown.to_string().replace("%3Credacted%3E", "<redacted>")
}

/// Best effort for a URL that does not parse: drop everything before `@`.
fn redact_unparsed(raw: &str) -> String {
    match (raw.find("://"), raw.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &raw[..s + 3], &raw[at..]),
        _ => raw.to_owned(),
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.shown)
    }
}

/// Which backend holds the entries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendUrl {
    /// In this process (`memory://`).
    Memory,
    /// Redis (`redis://` or `rediss://`).
    Redis(RedisUrl),
}

impl fmt::Display for BackendUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendUrl::Memory => f.write_str("memory://"),
            BackendUrl::Redis(url) => fmt::Display::fmt(url, f),
        }
    }
}

impl BackendUrl {
    /// Parses `memory://`, `redis://...` or `rediss://...`.
    ///
    /// # Errors
    /// For any other scheme, or a malformed URL.
    pub fn parse(raw: &str) -> Result<Self> {
        let raw = raw.trim();
        if raw == "memory://" || raw == "memory" {
            return Ok(BackendUrl::Memory);
        }
        RedisUrl::parse(raw).map(BackendUrl::Redis)
    }
}

/// Everything the cache manager needs. Build one with [`Config::builder`] or
/// [`Config::from_env`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Where entries live.
    pub backend: BackendUrl,
    /// The first segment of every key, so several applications can share a
    /// Redis database.
    pub prefix: Name,
    /// The TTL of entries whose function or call gives none.
    pub default_ttl: Duration,
    /// Keys the argument digests: with it, nobody can predict a key.
    pub key_secret: Option<Secret>,
    /// The longest one backend call may take before it counts as failed.
    pub budget: Duration,
    /// The longest one connection attempt may take.
    pub connect_timeout: Duration,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long an open breaker skips the backend before probing it.
    pub breaker_cooldown: Duration,
    /// Entry bound of the memory backend.
    pub memory_max_entries: usize,
    /// Byte bound of the memory backend.
    pub memory_max_bytes: usize,
    /// How long a removal keeps refusing writes of computations that started
    /// before it; computations longer than this are not stored.
    pub removal_window: Duration,
    /// CA certificate (PEM) to trust for `rediss://`.
    pub tls_ca_file: Option<PathBuf>,
    /// How new values are encoded. Reading never depends on it: every entry
    /// says its codec, so switching codecs keeps old entries readable.
    pub encoding: Encoding,
    /// Redis only: async calls polled by a tokio runtime use connections
    /// created in that runtime (see the module docs, "Redis connections in
    /// the caller's runtime"). On by default, except with `panic = "abort"`.
    pub redis_caller_runtime: bool,
    /// Redis only: `TCP_NODELAY` on memocache's connections (see the module
    /// docs, "`TCP_NODELAY`"). On by default.
    pub redis_tcp_nodelay: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendUrl::Memory,
            prefix: Name::new("memocache").expect("a valid name"),
            default_ttl: Duration::from_secs(600),
            key_secret: None,
            budget: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(250),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(1),
            memory_max_entries: 100_000,
            memory_max_bytes: 256 << 20,
            removal_window: Duration::from_secs(600),
            tls_ca_file: None,
            encoding: Encoding::default(),
            redis_caller_runtime: cfg!(panic = "unwind"),
            redis_tcp_nodelay: true,
        }
    }
}

/// The settings of a `memocache.toml` file (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    url: Option<String>,
    prefix: Option<String>,
    default_ttl: Option<String>,
    key_secret: Option<String>,
    budget: Option<String>,
    connect_timeout: Option<String>,
    breaker_threshold: Option<u32>,
    breaker_cooldown: Option<String>,
    memory_max_entries: Option<usize>,
    memory_max_bytes: Option<usize>,
    removal_window: Option<String>,
    tls_ca_file: Option<PathBuf>,
    codec: Option<String>,
    compress_above: Option<usize>,
    redis_caller_runtime: Option<bool>,
    redis_tcp_nodelay: Option<bool>,
}

/// Parses a switch for `setting`: `true`, `false`, `1` or `0` (any case,
/// surrounding spaces ignored).
///
/// # Errors
/// Names the setting and the accepted forms.
pub fn parse_bool(setting: &str, raw: &str) -> Result<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(Error::invalid(format!(
            "{setting} = `{raw}` is not a switch; write true, false, 1 or 0"
        ))),
    }
}

/// Parses a human duration (`"90s"`, `"5m"`, `"250ms"`) for `setting`.
///
/// # Errors
/// Names the setting and the accepted forms.
pub fn parse_duration(setting: &str, raw: &str) -> Result<Duration> {
    humantime::parse_duration(raw.trim()).map_err(|e| {
        Error::invalid(format!(
            "{setting} = `{raw}` is not a duration ({e}); write e.g. \"250ms\", \"90s\", \"5m\" or \"1h\""
        ))
    })
}

impl Config {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use std::time::Duration;
    /// use memocache_runtime::Config;
    /// let config = Config::builder()
    ///     .url("memory://")
    ///     .prefix("shop")
    ///     .default_ttl(Duration::from_secs(60))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(config.prefix.as_str(), "shop");
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Config::default(),
            url: None,
            prefix: None,
        }
    }

    /// The configuration from `memocache.toml` (see the module docs for where
    /// it is looked for) and the `MEMOCACHE_*` environment variables.
    ///
    /// # Errors
    /// A malformed file, an unknown setting, or a malformed value, each named.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] with `var` in place of the environment.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let file = match var("MEMOCACHE_CONFIG") {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("memocache.toml")).filter(|p| p.exists()),
        };
        let mut settings = match &file {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let env = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        settings.url = env("MEMOCACHE_URL").or(settings.url);
        settings.prefix = env("MEMOCACHE_PREFIX").or(settings.prefix);
        settings.default_ttl = env("MEMOCACHE_DEFAULT_TTL").or(settings.default_ttl);
        settings.key_secret = env("MEMOCACHE_KEY_SECRET").or(settings.key_secret);
        settings.budget = env("MEMOCACHE_BUDGET").or(settings.budget);
        settings.connect_timeout = env("MEMOCACHE_CONNECT_TIMEOUT").or(settings.connect_timeout);
        settings.codec = env("MEMOCACHE_CODEC").or(settings.codec);
        settings.tls_ca_file = env("MEMOCACHE_TLS_CA_FILE")
            .map(PathBuf::from)
            .or(settings.tls_ca_file);
        if let Some(raw) = env("MEMOCACHE_REDIS_CALLER_RUNTIME") {
            settings.redis_caller_runtime =
                Some(parse_bool("MEMOCACHE_REDIS_CALLER_RUNTIME", &raw)?);
        }
        if let Some(raw) = env("MEMOCACHE_REDIS_TCP_NODELAY") {
            settings.redis_tcp_nodelay = Some(parse_bool("MEMOCACHE_REDIS_TCP_NODELAY", &raw)?);
        }
        Self::from_settings(settings)
    }

    /// The configuration of a TOML document (the format of `memocache.toml`).
    ///
    /// # Errors
    /// Malformed TOML, an unknown setting or a malformed value, each named.
    pub fn from_toml(text: &str) -> Result<Self> {
        let settings = toml::from_str(text)
            .map_err(|e| Error::invalid(format!("bad memocache configuration: {e}")))?;
        Self::from_settings(settings)
    }

    fn from_settings(s: FileSettings) -> Result<Self> {
        let mut b = Config::builder();
        b.url = s.url;
        b.prefix = s.prefix;
        let c = &mut b.config;
        let duration = |name: &str, v: Option<String>, default: Duration| {
            v.map_or(Ok(default), |v| parse_duration(name, &v))
        };
        c.default_ttl = duration("default_ttl", s.default_ttl, c.default_ttl)?;
        c.budget = duration("budget", s.budget, c.budget)?;
        c.connect_timeout = duration("connect_timeout", s.connect_timeout, c.connect_timeout)?;
        c.breaker_cooldown = duration("breaker_cooldown", s.breaker_cooldown, c.breaker_cooldown)?;
        c.removal_window = duration("removal_window", s.removal_window, c.removal_window)?;
        c.key_secret = s.key_secret.map(Secret::new);
        c.breaker_threshold = s.breaker_threshold.unwrap_or(c.breaker_threshold);
        c.memory_max_entries = s.memory_max_entries.unwrap_or(c.memory_max_entries);
        c.memory_max_bytes = s.memory_max_bytes.unwrap_or(c.memory_max_bytes);
        c.tls_ca_file = s.tls_ca_file;
        if let Some(codec) = s.codec {
            c.encoding.codec = Codec::from_name(&codec)?;
        }
        c.encoding.compress_above = s.compress_above.unwrap_or(c.encoding.compress_above);
        c.redis_caller_runtime = s.redis_caller_runtime.unwrap_or(c.redis_caller_runtime);
        c.redis_tcp_nodelay = s.redis_tcp_nodelay.unwrap_or(c.redis_tcp_nodelay);
        b.build()
    }
}

fn read_file(path: &Path) -> Result<FileSettings> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::invalid(format!(
            "cannot read the memocache configuration {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "bad memocache configuration in {}: {e}",
            path.display()
        ))
    })
}

/// Builds a [`Config`]; setters never fail, [`build`](ConfigBuilder::build)
/// validates everything.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    url: Option<String>,
    prefix: Option<String>,
}

impl ConfigBuilder {
    /// The backend: `memory://`, `redis://[user:password@]host[:port][/db]`
    /// or `rediss://...`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The first segment of every key.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// The TTL of entries that set none.
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.config.default_ttl = ttl;
        self
    }

    /// The secret that keys argument digests.
    pub fn key_secret(mut self, secret: impl Into<String>) -> Self {
        self.config.key_secret = Some(Secret::new(secret));
        self
    }

    /// The time budget of one backend call.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.config.budget = budget;
        self
    }

    /// The timeout of one connection attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Consecutive failures that open the breaker, and how long it stays open.
    pub fn breaker(mut self, threshold: u32, cooldown: Duration) -> Self {
        self.config.breaker_threshold = threshold;
        self.config.breaker_cooldown = cooldown;
        self
    }

    /// The bounds of the memory backend.
    pub fn memory_bounds(mut self, max_entries: usize, max_bytes: usize) -> Self {
        self.config.memory_max_entries = max_entries;
        self.config.memory_max_bytes = max_bytes;
        self
    }

    /// How long a removal refuses writes that started before it.
    pub fn removal_window(mut self, window: Duration) -> Self {
        self.config.removal_window = window;
        self
    }

    /// The codec of new values.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.config.encoding.codec = codec;
        self
    }

    /// Payloads longer than `bytes` are lz4-compressed (kept only if smaller).
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.config.encoding.compress_above = bytes;
        self
    }

    /// A CA certificate (PEM file) to trust for `rediss://`.
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.tls_ca_file = Some(path.into());
        self
    }

    /// Redis only: whether async calls polled by a tokio runtime use
    /// connections created in that runtime, instead of the one connection of
    /// memocache's I/O runtime (on by default, except with
    /// `panic = "abort"`).
    ///
    /// Saves a cross-runtime wake-up per reply. Runtimes without I/O are
    /// found out and keep the I/O runtime's connection, unless panics abort
    /// (see the module docs, "Redis connections in the caller's runtime").
    pub fn redis_caller_runtime(mut self, on: bool) -> Self {
        self.config.redis_caller_runtime = on;
        self
    }

    /// Redis only: whether memocache's connections set `TCP_NODELAY` (on by
    /// default). Off trades latency for throughput when many calls overlap
    /// (see the module docs, "`TCP_NODELAY`").
    pub fn redis_tcp_nodelay(mut self, on: bool) -> Self {
        self.config.redis_tcp_nodelay = on;
        self
    }

    /// Validates and returns the configuration.
    ///
    /// # Errors
    /// A malformed URL or prefix, or a zero duration or bound, each named.
    pub fn build(self) -> Result<Config> {
        let mut c = self.config;
        if let Some(url) = &self.url {
            c.backend = BackendUrl::parse(url)?;
        }
        if let Some(prefix) = &self.prefix {
            Name::check(prefix, "key prefix")?;
            c.prefix = Name::new(prefix)?;
        }
        for (name, d) in [
            ("default_ttl", c.default_ttl),
            ("budget", c.budget),
            ("connect_timeout", c.connect_timeout),
            ("removal_window", c.removal_window),
        ] {
            if d.is_zero() {
                return Err(Error::invalid(format!("{name} must be longer than zero")));
            }
        }
        if c.breaker_threshold == 0 {
            return Err(Error::invalid("breaker_threshold must be at least 1"));
        }
        if c.memory_max_entries == 0 || c.memory_max_bytes == 0 {
            return Err(Error::invalid("the memory bounds must be at least 1"));
        }
        if c.key_secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            return Err(Error::invalid("key_secret is empty; leave it out instead"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_hide_passwords() {
        let url = RedisUrl::parse("redis://app:hunter2@127.0.0.1:6380/2").unwrap();
        assert_eq!(url.to_string(), "redis://app:<redacted>@127.0.0.1:6380/2");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(!url.is_tls());
        assert!(RedisUrl::parse("rediss://h:6379").unwrap().is_tls());
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let e = BackendUrl::parse("memcached://x").unwrap_err();
        assert!(
            e.to_string().contains("unsupported scheme `memcached://`"),
            "{e}"
        );
        let e = BackendUrl::parse("redis://u:hunter2@h:99999").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = BackendUrl::parse("redis://h:6379/users").unwrap_err();
        assert!(e.to_string().contains("database number"), "{e}");
        assert!(BackendUrl::parse("not a url").is_err());
    }

    #[test]
    fn toml_is_read_and_checked() {
        let c = Config::from_toml(
            "url = \"redis://127.0.0.1:7000\"\nprefix = \"shop\"\ndefault_ttl = \"90s\"\nbudget = \"20ms\"\n",
        )
        .unwrap();
        assert_eq!(c.default_ttl, Duration::from_secs(90));
        assert_eq!(c.budget, Duration::from_millis(20));
        assert_eq!(c.prefix.as_str(), "shop");
        let c = Config::from_toml("codec = \"msgpack\"\ncompress_above = 64\n").unwrap();
        assert_eq!(c.encoding.codec, Codec::MessagePack);
        assert_eq!(c.encoding.compress_above, 64);
        let e = Config::from_toml("codec = \"yaml\"").unwrap_err();
        assert!(e.to_string().contains("unknown codec `yaml`"), "{e}");
        let e = Config::from_toml("ttl = \"5m\"").unwrap_err();
        assert!(e.to_string().contains("unknown field `ttl`"), "{e}");
        let e = Config::from_toml("default_ttl = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("default_ttl = `soon`"), "{e}");
        let e = Config::from_toml("prefix = \"a:b\"").unwrap_err();
        assert!(e.to_string().contains("key prefix"), "{e}");
    }

    #[test]
    fn redis_caller_runtime_is_on_unless_panics_abort_or_asked_off() {
        let default = cfg!(panic = "unwind");
        assert_eq!(Config::default().redis_caller_runtime, default);
        assert_eq!(
            Config::builder().build().unwrap().redis_caller_runtime,
            default
        );
        assert_eq!(Config::from_toml("").unwrap().redis_caller_runtime, default);
        let off = Config::builder()
            .redis_caller_runtime(false)
            .build()
            .unwrap();
        assert!(!off.redis_caller_runtime);
        assert!(
            Config::from_toml("redis_caller_runtime = true")
                .unwrap()
                .redis_caller_runtime
        );
        assert!(
            !Config::from_toml("redis_caller_runtime = false")
                .unwrap()
                .redis_caller_runtime
        );
        let e = Config::from_toml("redis_caller_runtime = \"yes\"").unwrap_err();
        assert!(e.to_string().contains("redis_caller_runtime"), "{e}");
    }

    #[test]
    fn switches_parse_and_name_the_setting() {
        for (raw, want) in [
            ("true", true),
            ("1", true),
            (" TRUE ", true),
            ("false", false),
            ("0", false),
            ("False", false),
        ] {
            assert_eq!(parse_bool("S", raw).unwrap(), want, "{raw}");
        }
        for raw in ["yes", "on", "2", "", "truee"] {
            let e = parse_bool("MEMOCACHE_REDIS_CALLER_RUNTIME", raw).unwrap_err();
            assert!(e.is_invalid_input(), "{e}");
            assert!(
                e.to_string()
                    .contains(&format!("MEMOCACHE_REDIS_CALLER_RUNTIME = `{raw}`")),
                "{e}"
            );
            assert!(e.to_string().contains("true, false, 1 or 0"), "{e}");
        }
    }

    #[test]
    fn redis_caller_runtime_is_read_from_the_environment() {
        let vars = |value: &'static str| {
            move |name: &str| (name == "MEMOCACHE_REDIS_CALLER_RUNTIME").then(|| value.to_owned())
        };
        assert!(Config::from_vars(vars("1")).unwrap().redis_caller_runtime);
        assert!(
            Config::from_vars(vars("true"))
                .unwrap()
                .redis_caller_runtime
        );
        assert!(!Config::from_vars(vars("0")).unwrap().redis_caller_runtime);
        assert!(
            !Config::from_vars(vars("false"))
                .unwrap()
                .redis_caller_runtime
        );
        // Empty counts as unset, like every other variable.
        assert_eq!(
            Config::from_vars(vars(" ")).unwrap().redis_caller_runtime,
            cfg!(panic = "unwind")
        );
        let e = Config::from_vars(vars("yes")).unwrap_err();
        assert!(
            e.to_string()
                .contains("MEMOCACHE_REDIS_CALLER_RUNTIME = `yes` is not a switch"),
            "{e}"
        );
        // The environment overrides the file.
        let dir = std::env::temp_dir().join(format!("memocache-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("memocache.toml");
        std::fs::write(&file, "redis_caller_runtime = false\n").unwrap();
        let file_name = file.to_string_lossy().into_owned();
        let with = |env: Option<&'static str>| {
            let file_name = file_name.clone();
            move |name: &str| match name {
                "MEMOCACHE_CONFIG" => Some(file_name.clone()),
                "MEMOCACHE_REDIS_CALLER_RUNTIME" => env.map(str::to_owned),
                _ => None,
            }
        };
        assert!(!Config::from_vars(with(None)).unwrap().redis_caller_runtime);
        assert!(
            Config::from_vars(with(Some("1")))
                .unwrap()
                .redis_caller_runtime
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redis_tcp_nodelay_is_on_unless_asked_off_in_code_file_or_environment() {
        assert!(Config::default().redis_tcp_nodelay);
        assert!(Config::from_toml("").unwrap().redis_tcp_nodelay);
        let off = Config::builder().redis_tcp_nodelay(false).build().unwrap();
        assert!(!off.redis_tcp_nodelay);
        assert!(
            !Config::from_toml("redis_tcp_nodelay = false")
                .unwrap()
                .redis_tcp_nodelay
        );
        let e = Config::from_toml("redis_tcp_nodelay = 0").unwrap_err();
        assert!(e.to_string().contains("redis_tcp_nodelay"), "{e}");
        let vars = |value: &'static str| {
            move |name: &str| (name == "MEMOCACHE_REDIS_TCP_NODELAY").then(|| value.to_owned())
        };
        assert!(!Config::from_vars(vars("0")).unwrap().redis_tcp_nodelay);
        assert!(!Config::from_vars(vars("false")).unwrap().redis_tcp_nodelay);
        assert!(Config::from_vars(vars("1")).unwrap().redis_tcp_nodelay);
        assert!(Config::from_vars(vars(" ")).unwrap().redis_tcp_nodelay);
        let e = Config::from_vars(vars("off")).unwrap_err();
        assert!(
            e.to_string()
                .contains("MEMOCACHE_REDIS_TCP_NODELAY = `off` is not a switch"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config::builder().key_secret("topsecret").build().unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
