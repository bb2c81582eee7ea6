//! The strong `ETag` of a stored response, and `If-None-Match` matching.
//!
//! The tag is a BLAKE3 hash of what makes the representation: the status,
//! `Content-Type`, `Content-Encoding` and the body bytes. It is computed once,
//! when the response is captured, and stored with it, so every hit in every
//! process sends the same tag; two processes that compute the same response
//! compute the same tag too (no randomness, no time, no process state).

use axum::http::HeaderMap;

/// A strong entity tag (quoted) for a response.
pub fn compute(status: u16, headers: &HeaderMap, body: &[u8]) -> String {
    let mut hasher = blake3::Hasher::new_derive_key("memocache 2026-11 http etag v1");
    hasher.update(&status.to_be_bytes());
    for name in [
        axum::http::header::CONTENT_TYPE,
        axum::http::header::CONTENT_ENCODING,
    ] {
        // Length-prefixed, so that no header value can shift into the next.
        let value = headers.get(&name).map_or(&[][..], |v| v.as_bytes());
        hasher.update(&(value.len() as u64).to_be_bytes());
        hasher.update(value);
    }
    hasher.update(body);
    let hash = hasher.finalize();
    let hex: String = hash.as_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// Whether `If-None-Match` (every occurrence of it in `headers`) matches
/// `etag`, by the weak comparison RFC 9110 (13.1.2) prescribes for it: the
/// opaque tags are equal, whatever their `W/` prefixes. `*` matches any
/// current representation.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let ours = opaque(etag);
    headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || (!tag.is_empty() && opaque(tag) == ours))
}

fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn stable_and_sensitive() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let a = compute(200, &h, b"{}");
        assert_eq!(a, compute(200, &h, b"{}"));
        assert_eq!(a.len(), 34);
        assert_ne!(a, compute(201, &h, b"{}"));
        assert_ne!(a, compute(200, &h, b"[]"));
        assert_ne!(a, compute(200, &HeaderMap::new(), b"{}"));
        // Golden: the tag of a known response is the same on every process
        // and platform; a change here changes every deployment's tags.
        assert_eq!(compute(200, &HeaderMap::new(), b"hello"), GOLDEN);
    }

    const GOLDEN: &str = "\"b70a00d0332169f92d769dd927c299dc\"";

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        h.insert("if-none-match", HeaderValue::from_static("\"a\", W/\"b\""));
        assert!(none_match(&h, "\"a\""));
        assert!(none_match(&h, "\"b\""));
        assert!(!none_match(&h, "\"c\""));
        h.insert("if-none-match", HeaderValue::from_static("*"));
        assert!(none_match(&h, "\"c\""));
        assert!(!none_match(&HeaderMap::new(), "\"a\""));
    }
}
