//! axum 0.8 handlers: what `#[cached(handler)]` generates code against, and
//! the admin router. Behind the `axum` feature.
//!
//! | file | what it holds |
//! |---|---|
//! | `handler.rs` | one cached handler call ([`serve`]) and a handler's static [`HandlerSpec`] |
//! | `request.rs` | [`RequestHead`], the extractor that hands the request's method and headers to the driver |
//! | `policy.rs` | the HTTP rules: which requests may use the cache, which responses may be stored |
//! | `response.rs` | [`StoredResponse`]: capture (status, headers, body bytes), replay, `304 Not Modified` |
//! | `etag.rs` | the strong `ETag` of a stored response, `If-None-Match` matching |
//! | `key.rs` | what a request adds to a handler's key: `vary` headers, typed headers |
//! | `stats.rs` | hits and misses per namespace and handler |
//! | `admin.rs` | [`admin_router`]: flush, invalidate, health and stats behind a bearer token |
//!
//! `docs/HTTP.md` in the repository explains the design and the HTTP rules.

mod admin;
mod etag;
mod handler;
mod key;
mod policy;
mod request;
mod response;
mod stats;

pub use admin::{admin_router, admin_router_from_env, AdminToken, ADMIN_TOKEN_VAR};
pub use handler::{serve, HandlerSpec};
pub use key::{finish_key, typed_header};
pub use request::RequestHead;
pub use response::StoredResponse;
pub use stats::{handler_stats, HandlerStats};

/// The response type of a cached handler.
pub type Response = axum::response::Response;
/// The request headers type.
pub use axum::http::HeaderMap;
/// What a handler returns.
pub use axum::response::IntoResponse;
