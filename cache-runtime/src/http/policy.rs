//! The HTTP rules of a cached handler: which requests may use the cache, and
//! which responses may be stored. Each rule is one function, with its reason.

use axum::http::header::{self, HeaderName};
use axum::http::response::Parts;
use axum::http::{HeaderMap, Method};

use super::handler::HandlerSpec;

/// What a request may do with the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not at all: the handler runs and its response passes through. The
    /// reason is the `Cache-Status` parameters (RFC 9211) to send.
    Bypass(&'static str),
    /// Look up, or revalidate, and store unless told not to.
    Use {
        /// The request asked for revalidation (`Cache-Control: no-cache` or
        /// `max-age=0`, or `Pragma: no-cache` without `Cache-Control`): the
        /// handler runs, and its response replaces the stored one.
        revalidate: bool,
        /// Whether the response may be stored (not with `no-store`).
        store: bool,
    },
}

/// Decides what `method` with `headers` may do with the cache of `handler`.
pub fn access(method: &Method, headers: &HeaderMap, handler: &HandlerSpec) -> Access {
    if !method_allowed(method, handler) {
        return Access::Bypass("fwd=method");
    }
    if carries_credentials(headers, handler) {
        return Access::Bypass("fwd=bypass; detail=credentials");
    }
    let directives = request_directives(headers);
    Access::Use {
        revalidate: directives.no_cache,
        store: !directives.no_store,
    }
}

/// GET and HEAD are safe and their responses cacheable (RFC 9110 9.2.1,
/// 9.2.3). Another method may change state, so it is only cached when the
/// handler names it (`methods(POST)`, for a query-by-body endpoint).
fn method_allowed(method: &Method, handler: &HandlerSpec) -> bool {
    *method == Method::GET
        || *method == Method::HEAD
        || handler
            .extra_methods()
            .iter()
            .any(|m| m.eq_ignore_ascii_case(method.as_str()))
}

/// A request with `Authorization` or `Cookie` may get a response made for
/// its sender only: sharing it (either way: serving it a stored response,
/// or storing its own for others) would leak one user's data to another.
/// It may use the cache when the identity is part of the key (the header
/// is in `vary`) or the handler declares its responses `public`, as a
/// shared cache may (RFC 9111 3.5).
fn carries_credentials(headers: &HeaderMap, handler: &HandlerSpec) -> bool {
    if handler.is_public() {
        return false;
    }
    [header::AUTHORIZATION, header::COOKIE]
        .iter()
        .any(|name| headers.contains_key(name) && !handler.varies_on(name.as_str()))
}

/// The request's caching directives.
#[derive(Debug, Default)]
struct RequestDirectives {
    no_cache: bool,
    no_store: bool,
}

/// `Cache-Control: no-cache` (and `max-age=0`) ask a cache not to answer
/// from storage without validating with the origin (RFC 9111 5.2.1.1,
/// 5.2.1.4). Here the origin is the handler, so the handler runs and its
/// fresh response replaces the stored one: a revalidation, not a silent
/// bypass that would leave a stale entry for the next caller. `Pragma:
/// no-cache` means the same when there is no `Cache-Control` (RFC 9111 5.4).
/// `no-store` forbids storing this response, not using a stored one.
fn request_directives(headers: &HeaderMap) -> RequestDirectives {
    let mut out = RequestDirectives::default();
    let mut any = false;
    for directive in directives(headers, &header::CACHE_CONTROL) {
        any = true;
        match directive.as_str() {
            "no-cache" | "max-age=0" => out.no_cache = true,
            "no-store" => out.no_store = true,
            _ => {}
        }
    }
    if !any && directives(headers, &header::PRAGMA).any(|d| d == "no-cache") {
        out.no_cache = true;
    }
    out
}

/// Why a response may not be stored, as a `Cache-Status` `detail`, or
/// `None` if it may. The body's size is checked by the capture.
pub fn unstorable(parts: &Parts, handler: &HandlerSpec) -> Option<&'static str> {
    if !status_storable(parts.status.as_u16(), handler) {
        return Some("status");
    }
    // A cookie is set for one client; replaying it would hand that client's
    // session to everyone.
    if parts.headers.contains_key(header::SET_COOKIE) {
        return Some("set-cookie");
    }
    if response_forbids_storing(&parts.headers) {
        return Some("cache-control");
    }
    if !vary_is_keyed(&parts.headers, handler) {
        return Some("vary");
    }
    None
}

/// Errors and redirects are not stored by default: a transient 500 or 404
/// would otherwise be served for the whole TTL. `status(404)` opts in.
fn status_storable(status: u16, handler: &HandlerSpec) -> bool {
    ((200..300).contains(&status) && status != 206) || handler.extra_statuses().contains(&status)
}

/// The handler said so: `no-store`, `private` (for one user only) or
/// `no-cache` (must be revalidated with the origin on every use, which a
/// stored copy could not honour).
fn response_forbids_storing(headers: &HeaderMap) -> bool {
    directives(headers, &header::CACHE_CONTROL).any(|d| {
        let name = d.split('=').next().unwrap_or_default();
        matches!(name, "no-store" | "private" | "no-cache")
    })
}

/// A response that varies on request headers the key does not hold would be
/// served to requests it was not made for. `Vary: *` varies on everything.
fn vary_is_keyed(headers: &HeaderMap, handler: &HandlerSpec) -> bool {
    directives(headers, &header::VARY).all(|name| name != "*" && handler.varies_on(&name))
}

/// The comma-separated, lower-cased elements of every `name` header.
fn directives<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase().replace(' ', ""))
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Response, StatusCode};

    static PLAIN: HandlerSpec = HandlerSpec::new("t", "t::plain");
    static OPEN: HandlerSpec = HandlerSpec::new("t", "t::open")
        .vary(&["accept-language", "authorization"])
        .methods(&["POST"])
        .statuses(&[404]);

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn parts(status: u16, pairs: &[(&'static str, &'static str)]) -> Parts {
        let mut r = Response::new(());
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        *r.headers_mut() = headers(pairs);
        r.into_parts().0
    }

    #[test]
    fn requests() {
        let get = Method::GET;
        let fresh = Access::Use {
            revalidate: false,
            store: true,
        };
        assert_eq!(access(&get, &headers(&[]), &PLAIN), fresh);
        assert_eq!(access(&Method::HEAD, &headers(&[]), &PLAIN), fresh);
        assert_eq!(
            access(&Method::POST, &headers(&[]), &PLAIN),
            Access::Bypass("fwd=method")
        );
        assert_eq!(access(&Method::POST, &headers(&[]), &OPEN), fresh);
        let auth = headers(&[("authorization", "Bearer x")]);
        assert!(matches!(access(&get, &auth, &PLAIN), Access::Bypass(_)));
        assert_eq!(access(&get, &auth, &OPEN), fresh);
        let cookie = headers(&[("cookie", "a=b")]);
        assert!(matches!(access(&get, &cookie, &OPEN), Access::Bypass(_)));
        let no_cache = headers(&[("cache-control", "No-Cache")]);
        assert_eq!(
            access(&get, &no_cache, &PLAIN),
            Access::Use {
                revalidate: true,
                store: true
            }
        );
        let pragma = headers(&[("pragma", "no-cache")]);
        assert!(matches!(
            access(&get, &pragma, &PLAIN),
            Access::Use {
                revalidate: true,
                ..
            }
        ));
        let no_store = headers(&[("cache-control", "max-age=10, no-store")]);
        assert_eq!(
            access(&get, &no_store, &PLAIN),
            Access::Use {
                revalidate: false,
                store: false
            }
        );
    }

    #[test]
    fn responses() {
        assert_eq!(unstorable(&parts(200, &[]), &PLAIN), None);
        assert_eq!(unstorable(&parts(500, &[]), &PLAIN), Some("status"));
        assert_eq!(unstorable(&parts(404, &[]), &PLAIN), Some("status"));
        assert_eq!(unstorable(&parts(404, &[]), &OPEN), None);
        assert_eq!(unstorable(&parts(206, &[]), &PLAIN), Some("status"));
        assert_eq!(
            unstorable(&parts(200, &[("set-cookie", "s=1")]), &PLAIN),
            Some("set-cookie")
        );
        for cc in ["no-store", "private", "no-cache", "max-age=5, Private"] {
            let p = parts(200, &[("cache-control", cc)]);
            assert_eq!(unstorable(&p, &PLAIN), Some("cache-control"), "{cc}");
        }
        let public = parts(200, &[("cache-control", "public, max-age=60")]);
        assert_eq!(unstorable(&public, &PLAIN), None);
        assert_eq!(
            unstorable(&parts(200, &[("vary", "*")]), &OPEN),
            Some("vary")
        );
        let lang = parts(200, &[("vary", "Accept-Language")]);
        assert_eq!(unstorable(&lang, &PLAIN), Some("vary"));
        assert_eq!(unstorable(&lang, &OPEN), None);
    }
}
