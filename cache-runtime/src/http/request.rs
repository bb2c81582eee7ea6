//! The request facts the driver needs and the handler may not extract.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};

/// The method and headers of a request: `If-None-Match`, `Cache-Control`,
/// `Authorization`, `Cookie` and the `vary` headers decide what the driver
/// does, whether or not the handler extracts them.
///
/// `#[cached(handler)]` adds this extractor as the first argument of the
/// handler it generates. It reads request *parts* only (never the body), so it
/// can come first, before the user's extractors, which keep their order; its
/// rejection is [`Infallible`]. It works with any router state.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// The request headers.
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestHead {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestHead {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
        })
    }
}
