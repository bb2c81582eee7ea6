//! One call of a cached axum handler, and a handler's static facts.
//!
//! The generated handler builds the key from its extractors, then calls
//! [`serve`], which:
//!
//! 1. applies the request rules ([`policy`](super::policy)): a method other
//!    than GET and HEAD, or credentials the key does not hold, bypass the
//!    cache; `Cache-Control: no-cache` revalidates;
//! 2. folds the `vary` headers into the key;
//! 3. runs the ordinary cached call of the runtime (`call_async`: local tier,
//!    single flight, compute lock and early refresh all apply), whose
//!    computation runs the handler and captures its response
//!    ([`response`](super::response)) if it may be stored;
//! 4. answers: the stored response (with `Age`), `304 Not Modified` for a
//!    matching `If-None-Match`, or the handler's own response untouched when
//!    it could not be stored; always with a `Cache-Status` (RFC 9211).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::header::{HeaderName, HeaderValue, AGE};
use parking_lot::Mutex;

use super::etag;
use super::key::with_vary;
use super::policy::{self, Access};
use super::request::RequestHead;
use super::response::{capture, NotCaptured, StoredResponse};
use super::stats::{self, Counters, Outcome};
use super::Response;
use crate::cached_fn::{call_async, KeyArgs, Mode, Shape, Spec};
use crate::manager::global;

/// The default limit of a stored body: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

/// The HTTP facts of one cached handler, kept in a `static` beside its
/// [`Spec`], and its counters.
///
/// ```
/// use memocache_runtime::http::HandlerSpec;
/// static HANDLER: HandlerSpec = HandlerSpec::new("users", "app::get_user")
///     .vary(&["accept-language"])
///     .max_body(64 * 1024);
/// ```
#[derive(Debug)]
pub struct HandlerSpec {
    namespace: &'static str,
    function: &'static str,
    vary: &'static [&'static str],
    methods: &'static [&'static str],
    statuses: &'static [u16],
    max_body: usize,
    public: bool,
    counters: Counters,
    registered: AtomicBool,
}

impl HandlerSpec {
    /// The handler `function` (module path and name) in `namespace`: GET and
    /// HEAD, 2xx responses, bodies up to 1 MiB, no request header in the key.
    pub const fn new(namespace: &'static str, function: &'static str) -> Self {
        HandlerSpec {
            namespace,
            function,
            vary: &[],
            methods: &[],
            statuses: &[],
            max_body: DEFAULT_MAX_BODY,
            public: false,
            counters: Counters::new(),
            registered: AtomicBool::new(false),
        }
    }

    /// Request headers (lower-case names) whose values are part of the key,
    /// and which responses name in `Vary`.
    #[must_use]
    pub const fn vary(mut self, names: &'static [&'static str]) -> Self {
        self.vary = names;
        self
    }

    /// Methods cached besides GET and HEAD (upper-case names).
    #[must_use]
    pub const fn methods(mut self, methods: &'static [&'static str]) -> Self {
        self.methods = methods;
        self
    }

    /// Statuses stored besides 2xx.
    #[must_use]
    pub const fn statuses(mut self, statuses: &'static [u16]) -> Self {
        self.statuses = statuses;
        self
    }

    /// The largest body stored, in bytes; larger ones pass through.
    #[must_use]
    pub const fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Responses are the same for every user: requests with `Authorization`
    /// or `Cookie` may share them.
    #[must_use]
    pub const fn public(mut self, public: bool) -> Self {
        self.public = public;
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &'static str {
        self.namespace
    }

    /// The module path and name of the handler.
    pub fn function(&self) -> &'static str {
        self.function
    }

    pub(crate) fn vary_names(&self) -> &'static [&'static str] {
        self.vary
    }

    pub(crate) fn varies_on(&self, name: &str) -> bool {
        self.vary.iter().any(|v| v.eq_ignore_ascii_case(name))
    }

    pub(crate) fn extra_methods(&self) -> &'static [&'static str] {
        self.methods
    }

    pub(crate) fn extra_statuses(&self) -> &'static [u16] {
        self.statuses
    }

    pub(crate) fn body_limit(&self) -> usize {
        self.max_body
    }

    pub(crate) fn is_public(&self) -> bool {
        self.public
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }

    fn register_once(&'static self) {
        if !self.registered.load(Ordering::Relaxed) && !self.registered.swap(true, Ordering::AcqRel)
        {
            stats::register(self);
        }
    }
}

/// What a handler call produced, as the runtime's drivers see it.
enum Served {
    /// From the cache.
    Hit(StoredResponse),
    /// Computed and captured; `store`: the request allowed storing it.
    Fresh { stored: StoredResponse, store: bool },
    /// Computed, and not storable: passes through. (In a `Mutex` because
    /// a body is `Send` but not `Sync`, and the runtime's driver holds a
    /// reference to its output across an `await`, which a `Send` future
    /// allows only for `Sync` types. It is never contended.)
    NotStored(Mutex<NotCaptured>),
}

/// The [`Shape`] of a handler: only captured responses are stored.
struct Http;

impl Shape for Http {
    type Output = Served;
    type Stored = StoredResponse;

    fn stored(out: &Served) -> Option<&StoredResponse> {
        match out {
            Served::Fresh {
                stored,
                store: true,
            } => Some(stored),
            _ => None,
        }
    }

    fn output(stored: StoredResponse) -> Served {
        Served::Hit(stored)
    }
}

/// One call of a cached handler: `key` holds its key arguments so far,
/// `compute` runs the user's handler. See the module documentation.
pub async fn serve<F, Fut>(
    spec: &'static Spec,
    handler: &'static HandlerSpec,
    request: RequestHead,
    key: KeyArgs<'static>,
    compute: F,
) -> Response
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = Response> + Send,
{
    handler.register_once();
    let (revalidate, store) = match policy::access(&request.method, &request.headers, handler) {
        Access::Bypass(status) => return bypass(handler, status, compute().await),
        Access::Use { revalidate, store } => (revalidate, store),
    };
    let key = match with_vary(handler, key, Some(&request.headers)).check() {
        Ok(key) => key,
        Err(e) => {
            tracing::warn!(function = handler.function, error = %e, "memocache: a handler's key failed; not caching");
            return bypass(handler, "fwd=bypass; detail=key", compute().await);
        }
    };
    if revalidate {
        handler.counters.revalidated();
    }
    let ttl = spec.ttl(global());
    let mode = if revalidate {
        Mode::Refresh
    } else {
        Mode::Cached
    };
    let served = call_async::<Http, _, _>(spec, mode, key, None, move || async move {
        match capture(compute().await, handler, ttl).await {
            Ok(stored) => Served::Fresh { stored, store },
            Err(not) => Served::NotStored(Mutex::new(not)),
        }
    })
    .await;
    respond(served, &request, handler, revalidate)
}

fn bypass(handler: &HandlerSpec, status: &str, mut response: Response) -> Response {
    handler.counters.count(Outcome::Bypassed);
    cache_status(&mut response, status);
    response
}

fn respond(
    served: Served,
    request: &RequestHead,
    handler: &HandlerSpec,
    revalidate: bool,
) -> Response {
    let (stored, status, outcome) = match served {
        Served::NotStored(not) => {
            let NotCaptured { mut response, why } = not.into_inner();
            handler.counters.count(Outcome::NotStored);
            cache_status(&mut response, &format!("fwd=miss; detail={why}"));
            return response;
        }
        Served::Hit(stored) => {
            let status = format!("hit; ttl={}", stored.ttl_secs());
            (stored, status, Outcome::Hit)
        }
        Served::Fresh { stored, store } => {
            let fwd = if revalidate { "request" } else { "miss" };
            let status = if store {
                format!("fwd={fwd}; stored; ttl={}", stored.ttl_secs())
            } else {
                format!("fwd={fwd}")
            };
            (stored, status, Outcome::Miss { stored: store })
        }
    };
    handler.counters.count(outcome);
    let mut response = if etag::none_match(&request.headers, stored.etag()) {
        handler.counters.not_modified();
        stored.not_modified()
    } else {
        stored.replay()
    };
    if matches!(outcome, Outcome::Hit) {
        response
            .headers_mut()
            .insert(AGE, HeaderValue::from(stored.age_secs()));
    }
    cache_status(&mut response, &status);
    response
}

/// Adds this cache's entry to `Cache-Status` (RFC 9211): `memocache;
/// hit; ttl=N`, `memocache; fwd=miss; stored; ttl=N`, ...
fn cache_status(response: &mut Response, params: &str) {
    if let Ok(value) = HeaderValue::from_str(&format!("memocache; {params}")) {
        response
            .headers_mut()
            .append(HeaderName::from_static("cache-status"), value);
    }
}
