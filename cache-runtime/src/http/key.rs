//! What a request adds to a cached handler's key.

use axum::http::HeaderMap;
use axum_extra::headers::Header;
use axum_extra::TypedHeader;

use super::handler::HandlerSpec;
use crate::cached_fn::KeyArgs;
use crate::error::Result;
use crate::key::EntryKey;

/// Finishes the key of a handler's call: see [`with_vary`].
///
/// # Errors
/// As [`KeyArgs::finish`].
pub fn finish_key(
    handler: &HandlerSpec,
    args: KeyArgs<'_>,
    headers: Option<&HeaderMap>,
) -> Result<EntryKey> {
    with_vary(handler, args, headers).finish()
}

/// Completes the key arguments of a handler's call: the values of the
/// headers named in its `vary` list are folded in (every value of each, in
/// order; an absent header differs from an empty one). The driver and the
/// `_key` companion both complete keys here, so they always agree.
pub fn with_vary<'a>(
    handler: &HandlerSpec,
    args: KeyArgs<'a>,
    headers: Option<&HeaderMap>,
) -> KeyArgs<'a> {
    if handler.vary_names().is_empty() {
        return args;
    }
    let values: Vec<Option<Vec<&[u8]>>> = handler
        .vary_names()
        .iter()
        .map(|name| {
            let all: Vec<&[u8]> = headers
                .map(|h| h.get_all(*name).iter().map(|v| v.as_bytes()).collect())
                .unwrap_or_default();
            (!all.is_empty()).then_some(all)
        })
        .collect();
    args.arg(&values)
}

/// The key of a `TypedHeader<T>` argument: the header's encoded values.
/// (The `headers` crate's types are not `Serialize`; their wire form is
/// what they mean.)
pub fn typed_header<T: Header>(header: &TypedHeader<T>) -> Vec<Vec<u8>> {
    let mut values = Vec::new();
    header.0.encode(&mut values);
    values.into_iter().map(|v| v.as_bytes().to_vec()).collect()
}
