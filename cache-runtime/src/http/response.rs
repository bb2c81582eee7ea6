//! What is stored of a response, and how it is replayed.
//!
//! A handler's response is captured whole (status, headers, body bytes) only
//! when its body has a known size under the handler's limit: the body is
//! then already in memory (`Json`, `String`, `Bytes`, ...) and collecting it
//! costs nothing more. A body of unknown size (a stream, SSE) or a larger one
//! passes through untouched, and keeps streaming.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::etag;
use super::handler::HandlerSpec;
use super::policy;
use super::Response;

/// A response as it is stored: status, end-to-end headers, body bytes, and
/// when and for how long it was stored. Its headers hold the `ETag`
/// computed at capture and a `Date`, so that every replay, in every
/// process, sends the same ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    status: u16,
    headers: Vec<(String, Blob)>,
    body: Blob,
    etag: String,
    stored_at_ms: u64,
    ttl_ms: u64,
}

/// Why a response was not captured, with the response itself, untouched.
pub struct NotCaptured {
    /// The response, to send as it is.
    pub response: Response,
    /// The `Cache-Status` `detail` saying why.
    pub why: &'static str,
}

/// Headers meaningful for one connection only (RFC 9110 7.6.1), and those
/// the replay recomputes (`Content-Length` from the body, `Age` and
/// `Cache-Status` per request).
const NOT_STORED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "age",
    "cache-status",
];

/// The headers a `304 Not Modified` carries from the `200` it stands for
/// (RFC 9110 15.4.5).
const NOT_MODIFIED_KEEPS: &[&str] = &[
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
];

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Captures `response` of `handler` for storing for `ttl`, or gives it back
/// untouched with the reason it cannot be stored.
pub async fn capture(
    response: Response,
    handler: &HandlerSpec,
    ttl: Duration,
) -> Result<StoredResponse, NotCaptured> {
    let (parts, body) = response.into_parts();
    let give_back = |parts, body, why| NotCaptured {
        response: Response::from_parts(parts, body),
        why,
    };
    if let Some(why) = policy::unstorable(&parts, handler) {
        return Err(give_back(parts, body, why));
    }
    let limit = handler.body_limit();
    match body.size_hint().exact() {
        None => return Err(give_back(parts, body, "streaming")),
        Some(n) if n > limit as u64 => return Err(give_back(parts, body, "too-large")),
        Some(_) => {}
    }
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        // A body that fails although its size was known: nothing is left to
        // pass through, so answer as a server would for a failed body.
        Err(e) => {
            tracing::warn!(function = handler.function(), error = %e, "memocache: a handler's body failed");
            let mut failed = Response::new(Body::empty());
            *failed.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Err(NotCaptured {
                response: failed,
                why: "body-error",
            });
        }
    };
    let mut headers = parts.headers;
    strip(&mut headers);
    add_vary(&mut headers, handler);
    if !headers.contains_key(header::DATE) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        if let Ok(value) = HeaderValue::from_str(&date) {
            headers.insert(header::DATE, value);
        }
    }
    let tag = match headers.get(header::ETAG).and_then(|v| v.to_str().ok()) {
        Some(theirs) => theirs.to_owned(),
        None => {
            let ours = etag::compute(parts.status.as_u16(), &headers, &bytes);
            if let Ok(value) = HeaderValue::from_str(&ours) {
                headers.insert(header::ETAG, value);
            }
            ours
        }
    };
    Ok(StoredResponse {
        status: parts.status.as_u16(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    Blob(Bytes::copy_from_slice(v.as_bytes())),
                )
            })
            .collect(),
        body: Blob(bytes),
        etag: tag,
        stored_at_ms: now_ms(),
        ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Removes the headers that are not stored, including those that a
/// `Connection` header names.
fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in NOT_STORED {
        headers.remove(*name);
    }
    for name in named {
        headers.remove(name);
    }
}

/// Says which request headers the response varies on, so that caches
/// downstream key it the same way.
fn add_vary(headers: &mut HeaderMap, handler: &HandlerSpec) {
    let present: Vec<String> = headers
        .get_all(header::VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for name in handler.vary_names() {
        if !present.iter().any(|p| p == name) {
            headers.append(header::VARY, HeaderValue::from_static(name));
        }
    }
}

impl StoredResponse {
    /// Its entity tag.
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// How long ago it was stored, in whole seconds (its `Age`).
    pub fn age_secs(&self) -> u64 {
        now_ms().saturating_sub(self.stored_at_ms) / 1000
    }

    /// Its remaining freshness, in whole seconds, rounded up (the `ttl` of
    /// `Cache-Status`): a response stored this very moment with a TTL of a
    /// minute reports 60, whichever millisecond the clock has reached.
    pub fn ttl_secs(&self) -> u64 {
        let expires = self.stored_at_ms.saturating_add(self.ttl_ms);
        expires.saturating_sub(now_ms()).div_ceil(1000)
    }

    /// The response, as the handler sent it.
    pub fn replay(&self) -> Response {
        let mut response = Response::new(Body::from(self.body.0.clone()));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        *response.headers_mut() = self.headers(|_| true);
        response
    }

    /// `304 Not Modified` in its stead: no body, and the headers RFC 9110
    /// (15.4.5) requires a 304 to repeat from the 200 (`ETag`, `Date`,
    /// `Vary`, `Cache-Control`, `Expires`, `Content-Location`).
    pub fn not_modified(&self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        *response.headers_mut() = self.headers(|name| NOT_MODIFIED_KEEPS.contains(&name));
        response
    }

    fn headers(&self, keep: impl Fn(&str) -> bool) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 2);
        for (name, value) in self.headers.iter().filter(|(name, _)| keep(name)) {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(&value.0),
            ) {
                headers.append(name, value);
            }
        }
        headers
    }
}

/// Bytes stored as text when they are UTF-8 (JSON bodies and header values
/// stay readable, and a JSON envelope does not turn each byte into a
/// number), else as base64.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Blob(Bytes);

#[derive(Serialize, Deserialize)]
enum BlobRepr<T> {
    #[serde(rename = "t")]
    Text(T),
    #[serde(rename = "b64")]
    Base64(T),
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => BlobRepr::Text(text).serialize(s),
            Err(_) => BlobRepr::Base64(base64::encode(&self.0).as_str()).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match BlobRepr::<String>::deserialize(d)? {
            BlobRepr::Text(text) => Ok(Blob(Bytes::from(text))),
            BlobRepr::Base64(encoded) => base64::decode(&encoded)
                .map(|b| Blob(Bytes::from(b)))
                .ok_or_else(|| serde::de::Error::custom("invalid base64 in a stored response")),
        }
    }
}

/// Standard base64 with padding (RFC 4648 4), for the rare binary body.
mod base64 {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let text = text.as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() / 4 * 3);
        for chunk in text.chunks(4) {
            let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
            if pad > 2 {
                return None;
            }
            let mut n: u32 = 0;
            for &c in &chunk[..4 - pad] {
                let v = ALPHABET.iter().position(|&a| a == c)? as u32;
                n = (n << 6) | v;
            }
            n <<= 6 * pad as u32;
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        Some(out)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trip() {
            for len in 0..40u8 {
                let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
                assert_eq!(super::decode(&super::encode(&data)).unwrap(), data);
            }
            assert_eq!(super::encode(b"foobar"), "Zm9vYmFy");
            assert_eq!(super::encode(b"fo"), "Zm8=");
            assert!(super::decode("Zm8").is_none());
            assert!(super::decode("Z===").is_none());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_through_json() {
        for bytes in [&b"{\"a\":1}"[..], &[0xff, 0x00, 0x80][..]] {
            let blob = Blob(Bytes::copy_from_slice(bytes));
            let json = serde_json::to_string(&blob).unwrap();
            assert_eq!(serde_json::from_str::<Blob>(&json).unwrap(), blob);
        }
        let text = serde_json::to_string(&Blob(Bytes::from_static(b"hi"))).unwrap();
        assert_eq!(text, r#"{"t":"hi"}"#);
    }
}
