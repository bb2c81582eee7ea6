//! The admin router: flush a namespace, invalidate one function's entries,
//! health and stats, behind a bearer token.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /flush/{namespace}` | flushes the namespace, in every process (`Manager::flush_namespace`) |
//! | `POST /invalidate/{namespace}/{function}` | removes the live entries of one function (`function` as in keys: `module::path::name`), in every process |
//! | `GET /health` | pings the backend: latency, breaker state; `503` when it fails |
//! | `GET /stats` | the cache's counters, and hits and misses per cached handler |
//!
//! Every route needs `Authorization: Bearer <token>`; anything else is
//! `401`. The token is compared in constant time. Invalidation is reachable
//! here only: no request header of a cached handler removes anything.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};

use super::stats::handler_stats;
use super::Response;
use crate::backend::BackendExt;
use crate::breaker::BreakerState;
use crate::error::{Error, ErrorKind, Result};
use crate::key::{generation_key, EntryKey, Name};
use crate::manager::global;

/// The environment variable [`admin_router_from_env`] reads the token from.
pub const ADMIN_TOKEN_VAR: &str = "MEMOCACHE_ADMIN_TOKEN";

/// The shortest token accepted: a guessable token would hand anyone the
/// power to flush every cache.
const MIN_TOKEN_LEN: usize = 16;

/// Keys per step of an invalidation's scan.
const SCAN_BATCH: usize = 500;

/// The admin token; its `Debug` never shows it.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// Checks `token`: at least 16 characters, visible ASCII (it travels in
    /// a header).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for a shorter token or another character;
    /// the message never shows the token.
    pub fn new(token: impl Into<String>) -> Result<Self> {
        let token = token.into();
        if token.len() < MIN_TOKEN_LEN {
            return Err(Error::invalid(format!(
                "the admin token is {} characters long; it needs at least {MIN_TOKEN_LEN}",
                token.len()
            )));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "the admin token must be visible ASCII characters only (no spaces)",
            ));
        }
        Ok(AdminToken(token.into()))
    }

    /// The token in `MEMOCACHE_ADMIN_TOKEN`.
    ///
    /// # Errors
    /// When it is unset, empty or invalid: the router then refuses to mount.
    pub fn from_env() -> Result<Self> {
        match std::env::var(ADMIN_TOKEN_VAR) {
            Ok(token) if !token.is_empty() => Self::new(token),
            _ => Err(Error::invalid(format!(
                "no admin token: set {ADMIN_TOKEN_VAR} to mount the memocache admin router"
            ))),
        }
    }

    /// Whether `given` is the token, in constant time: the BLAKE3 hashes of
    /// both are compared (`blake3::Hash` compares in constant time), so
    /// neither the content nor the length of the token leaks through timing.
    fn matches(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == blake3::hash(self.0.as_bytes())
    }
}

/// The admin router, to mount under any path (`Router::nest("/admin/cache",
/// ...)`), with any state: it carries its own.
///
/// ```
/// # use axum::Router;
/// let admin = memocache_runtime::http::admin_router("a-long-random-admin-token").unwrap();
/// let app: Router = Router::new().nest("/admin/cache", admin);
/// assert!(memocache_runtime::http::admin_router::<()>("short").is_err());
/// ```
///
/// # Errors
/// An invalid token (see [`AdminToken::new`]): the router refuses to mount
/// rather than serve without protection.
pub fn admin_router<S>(token: impl Into<String>) -> Result<Router<S>>
where
    S: Clone + Send + Sync + 'static,
{
    Ok(router(AdminToken::new(token)?))
}

/// [`admin_router`] with the token of `MEMOCACHE_ADMIN_TOKEN`.
///
/// # Errors
/// When the variable is unset or its token invalid.
pub fn admin_router_from_env<S>() -> Result<Router<S>>
where
    S: Clone + Send + Sync + 'static,
{
    Ok(router(AdminToken::from_env()?))
}

fn router<S>(token: AdminToken) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/flush/{namespace}", post(flush))
        .route("/invalidate/{namespace}/{function}", post(invalidate))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .with_state(token)
}

/// Proof that a request carried the admin token.
struct Authorized;

impl FromRequestParts<AdminToken> for Authorized {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        token: &AdminToken,
    ) -> std::result::Result<Self, Response> {
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        match given {
            Some(given) if token.matches(given) => Ok(Authorized),
            _ => {
                let mut response = reply(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "error": "a bearer token is required" }),
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"memocache-admin\""),
                );
                Err(response)
            }
        }
    }
}

async fn flush(_: Authorized, Path(namespace): Path<String>) -> Response {
    match global().flush_namespace(&namespace).await {
        Ok(()) => reply(StatusCode::OK, &json!({ "flushed": namespace })),
        Err(e) => failure(&e),
    }
}

async fn invalidate(
    _: Authorized,
    Path((namespace, function)): Path<(String, String)>,
) -> Response {
    match invalidate_function(&namespace, &function).await {
        Ok(removed) => reply(
            StatusCode::OK,
            &json!({ "namespace": namespace, "function": function, "removed": removed }),
        ),
        Err(e) => failure(&e),
    }
}

/// Removes the live entries of `function`: a `SCAN` of the keys starting
/// with `{prefix}:{namespace}:{generation}:{function}:` (every version), and
/// for each entry the runtime's own removal (`Manager::remove`): a tombstone,
/// so that a computation of that entry already in flight cannot store its
/// older value afterwards, and an invalidation message for the local tiers
/// of other processes. Returns how many values were removed.
async fn invalidate_function(namespace: &str, function: &str) -> Result<u64> {
    let namespace = Name::new(namespace)?;
    function_ok(function)?;
    let manager = global();
    let backend = manager.backend();
    let prefix = &manager.config().prefix;
    let Some(raw) = backend.get(&generation_key(prefix, &namespace)).await? else {
        return Ok(0);
    };
    let generation: u64 = std::str::from_utf8(&raw)
        .ok()
        .and_then(|g| g.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::Deserialization, "a generation is not a number"))?;
    let live = format!("{prefix}:{namespace}:{generation}:");
    let keys_of = format!("{live}{function}:");
    let mut cursor = 0;
    let mut removed = 0;
    loop {
        let (next, keys) = backend.scan(&keys_of, cursor, SCAN_BATCH).await?;
        for key in keys {
            let tail = &key[live.len()..];
            if !is_entry_tail(&tail[function.len() + 1..]) {
                continue;
            }
            let Some(entry) = EntryKey::from_tail(namespace.clone(), tail) else {
                continue;
            };
            if manager.remove(&entry).await? {
                removed += 1;
            }
        }
        if next == 0 {
            return Ok(removed);
        }
        cursor = next;
    }
}

/// Whether what follows the function in a key is `[v{N}:]{digest}`: an
/// entry, not a compute lock or another function whose name extends it.
fn is_entry_tail(rest: &str) -> bool {
    let digest = match rest.split_once(':') {
        Some((version, digest)) => {
            let number = version.strip_prefix('v').unwrap_or_default();
            if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            digest
        }
        None => rest,
    };
    digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A function name as keys hold it: a Rust path (`app::users::get_user`).
fn function_ok(function: &str) -> Result<()> {
    let valid = !function.is_empty()
        && function.len() <= 256
        && function
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            "a function is its module path and name, such as `app::users::get_user`",
        ))
    }
}

async fn health(_: Authorized) -> Response {
    let health = global().health().await;
    let status = if health.ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let breaker = health.breaker.map(|b| match b {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half-open",
    });
    reply(
        status,
        &json!({
            "backend": health.backend,
            "ok": health.ok,
            "latency_ms": health.latency.as_secs_f64() * 1000.0,
            "breaker": breaker,
            "error": health.error,
        }),
    )
}

async fn stats(_: Authorized) -> Response {
    let s = global().stats();
    reply(
        StatusCode::OK,
        &json!({
            "cache": {
                "hits": s.hits,
                "misses": s.misses,
                "stores": s.stores,
                "refreshes": s.refreshes,
                "errors": s.errors,
                "corrupt": s.corrupt,
            },
            "handlers": handler_stats(),
        }),
    )
}

fn failure(e: &Error) -> Response {
    let status = if e.is_invalid_input() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    reply(status, &json!({ "error": e.to_string() }))
}

/// A JSON answer that no cache keeps.
fn reply(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(axum::body::Body::from(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::is_entry_tail;

    #[test]
    fn entry_tails() {
        let digest = "0123456789abcdef0123456789abcdef";
        assert!(is_entry_tail(digest));
        assert!(is_entry_tail(&format!("v2:{digest}")));
        assert!(!is_entry_tail(&format!("{digest}:lock")));
        assert!(!is_entry_tail(&format!("x:{digest}")));
        assert!(!is_entry_tail("abc"));
    }
}
