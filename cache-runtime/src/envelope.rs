//! What a remote entry holds: a small fixed header, then the encoded value.
//!
//! ```text
//! offset size  field
//! 0      2     magic "mc"
//! 2      1     format version (1)
//! 3      1     kind: 0 value, 1 tombstone (left by a removal)
//! 4      1     codec: 1 JSON, 2 MessagePack
//! 5      1     flags: bit 0 = payload is lz4-compressed
//! 6      8     stamp: random, unique per write (u64 LE)
//! 14     8     stored at, Unix milliseconds (u64 LE)
//! 22     8     time to live, milliseconds (u64 LE)
//! 30     4     measured compute time, microseconds (u32 LE, saturating)
//! 34     ..    payload
//! ```
//!
//! The first [`STAMP_END`] bytes identify one write: conditional writes
//! compare them (see `Expect::Prefix`), so a computation that started before a
//! removal cannot overwrite the removal's tombstone.
//!
//! Decoding never panics and never trusts a length it reads: anything that is
//! not a well-formed envelope of this version is an [`ErrorKind::Deserialization`]
//! error, which the cache treats as a miss (and deletes the entry).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

const MAGIC: &[u8; 2] = b"mc";
const VERSION: u8 = 1;
const FLAG_LZ4: u8 = 1;
/// The header's length.
pub const HEADER_LEN: usize = 34;
/// The end of the bytes that identify one write (magic to stamp).
pub const STAMP_END: usize = 14;
/// The largest decompressed payload accepted: a corrupt length field must not
/// make the decoder allocate gigabytes.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// How values are turned into bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Codec {
    /// `serde_json`: readable with `redis-cli`, tolerant of added fields.
    #[default]
    Json,
    /// MessagePack (`rmp-serde`) with field names kept: smaller and faster
    /// than JSON, and still tolerant of added and reordered fields (unlike a
    /// positional encoding, which breaks when a struct changes).
    MessagePack,
}

impl Codec {
    fn id(self) -> u8 {
        match self {
            Codec::Json => 1,
            Codec::MessagePack => 2,
        }
    }

    #[inline]
    fn from_id(id: u8) -> Result<Self> {
        match id {
            1 => Ok(Codec::Json),
            2 => Ok(Codec::MessagePack),
            other => Err(corrupt(format!("unknown codec id {other}"))),
        }
    }

    fn encode<V: Serialize + ?Sized>(self, value: &V) -> Result<Vec<u8>> {
        match self {
            Codec::Json => serde_json::to_vec(value).map_err(|e| {
                Error::new(ErrorKind::Serialization, "a value failed to encode as JSON")
                    .with_source(e)
            }),
            Codec::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| {
                Error::new(
                    ErrorKind::Serialization,
                    "a value failed to encode as MessagePack",
                )
                .with_source(e)
            }),
        }
    }

    #[inline]
    fn decode<V: DeserializeOwned>(self, bytes: &[u8]) -> Result<V> {
        type Cause = Box<dyn std::error::Error + Send + Sync>;
        let decoded: std::result::Result<V, Cause> = match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(Into::into),
            Codec::MessagePack => rmp_serde::from_slice(bytes).map_err(Into::into),
        };
        decoded.map_err(|e| {
            Error::new(
                ErrorKind::Deserialization,
                format!(
                    "a stored value does not decode as {}",
                    std::any::type_name::<V>()
                ),
            )
            .with_source(e)
        })
    }

    /// The codec named `name` (`json` or `msgpack`).
    ///
    /// # Errors
    /// Any other name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Codec::Json),
            "msgpack" | "messagepack" => Ok(Codec::MessagePack),
            other => Err(Error::invalid(format!(
                "unknown codec `{other}`; use \"json\" or \"msgpack\""
            ))),
        }
    }
}

/// Whether an entry holds a value or marks a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A cached value.
    Value,
    /// A removal: reads miss, and writes that started before it are refused.
    Tombstone,
}

/// The decoded header of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Value or tombstone.
    pub kind: Kind,
    /// The codec of the payload.
    pub codec: Codec,
    /// The payload is lz4-compressed.
    pub compressed: bool,
    /// Unique per write.
    pub stamp: u64,
    /// When it was written, Unix milliseconds.
    pub stored_at_ms: u64,
    /// Its time to live when written, milliseconds.
    pub ttl_ms: u64,
    /// How long the computation took, microseconds.
    pub compute_us: u32,
}

/// Settings for writing envelopes.
#[derive(Debug, Clone, Copy)]
pub struct Encoding {
    /// The codec for new values.
    pub codec: Codec,
    /// Payloads longer than this are lz4-compressed (kept only if smaller).
    pub compress_above: usize,
}

impl Default for Encoding {
    fn default() -> Self {
        Encoding {
            codec: Codec::Json,
            compress_above: 1024,
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

// Cold: the branches that make this error are laid out away from a hit's
// path through the header.
#[cold]
fn corrupt(what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::Deserialization,
        format!("not a memocache entry: {}", what.into()),
    )
}

fn write_header(out: &mut Vec<u8>, header: &Header) {
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(match header.kind {
        Kind::Value => 0,
        Kind::Tombstone => 1,
    });
    out.push(header.codec.id());
    out.push(if header.compressed { FLAG_LZ4 } else { 0 });
    out.extend_from_slice(&header.stamp.to_le_bytes());
    out.extend_from_slice(&header.stored_at_ms.to_le_bytes());
    out.extend_from_slice(&header.ttl_ms.to_le_bytes());
    out.extend_from_slice(&header.compute_us.to_le_bytes());
}

#[inline]
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// Reads the header of `bytes`.
///
/// # Errors
/// A [`ErrorKind::Deserialization`] error for anything that is not an
/// envelope of this format version.
#[inline]
pub fn read_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!(
            "{} bytes, shorter than a header",
            bytes.len()
        )));
    }
    if &bytes[..2] != MAGIC {
        return Err(corrupt("bad magic"));
    }
    if bytes[2] != VERSION {
        return Err(corrupt(format!("format version {}", bytes[2])));
    }
    let kind = match bytes[3] {
        0 => Kind::Value,
        1 => Kind::Tombstone,
        other => return Err(corrupt(format!("unknown kind {other}"))),
    };
    let codec = Codec::from_id(bytes[4])?;
    let flags = bytes[5];
    if flags & !FLAG_LZ4 != 0 {
        return Err(corrupt(format!("unknown flags {flags:#04x}")));
    }
    let mut compute = [0u8; 4];
    compute.copy_from_slice(&bytes[30..34]);
    Ok(Header {
        kind,
        codec,
        compressed: flags & FLAG_LZ4 != 0,
        stamp: u64_at(bytes, 6),
        stored_at_ms: u64_at(bytes, 14),
        ttl_ms: u64_at(bytes, 22),
        compute_us: u32::from_le_bytes(compute),
    })
}

/// Encodes `value` into an envelope.
///
/// # Errors
/// When the codec cannot encode the value.
pub fn encode_value<V: Serialize + ?Sized>(
    value: &V,
    encoding: Encoding,
    ttl: Duration,
    compute: Duration,
) -> Result<Vec<u8>> {
    let payload = encoding.codec.encode(value)?;
    let (payload, compressed) = maybe_compress(payload, encoding.compress_above);
    let header = Header {
        kind: Kind::Value,
        codec: encoding.codec,
        compressed,
        stamp: crate::random::next_u64(),
        stored_at_ms: now_ms(),
        ttl_ms: ttl.as_millis().min(u128::from(u64::MAX)) as u64,
        compute_us: compute.as_micros().min(u128::from(u32::MAX)) as u32,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    write_header(&mut out, &header);
    out.extend_from_slice(&payload);
    Ok(out)
}

/// A tombstone: marks a removal, so writes that started before it fail.
pub fn encode_tombstone(ttl: Duration) -> Vec<u8> {
    let header = Header {
        kind: Kind::Tombstone,
        codec: Codec::Json,
        compressed: false,
        stamp: crate::random::next_u64(),
        stored_at_ms: now_ms(),
        ttl_ms: ttl.as_millis().min(u128::from(u64::MAX)) as u64,
        compute_us: 0,
    };
    let mut out = Vec::with_capacity(HEADER_LEN);
    write_header(&mut out, &header);
    out
}

/// Decodes the value of an envelope whose header was read.
///
/// # Errors
/// [`ErrorKind::Deserialization`] when the payload is corrupt or not a `V`.
#[inline]
pub fn decode_value<V: DeserializeOwned>(header: &Header, bytes: &[u8]) -> Result<V> {
    let payload = &bytes[HEADER_LEN..];
    if header.compressed {
        let raw = decompress(payload)?;
        header.codec.decode(&raw)
    } else {
        header.codec.decode(payload)
    }
}

fn maybe_compress(payload: Vec<u8>, above: usize) -> (Vec<u8>, bool) {
    if payload.len() <= above || payload.len() > MAX_PAYLOAD {
        return (payload, false);
    }
    let packed = lz4_flex::block::compress_prepend_size(&payload);
    if packed.len() < payload.len() {
        (packed, true)
    } else {
        (payload, false)
    }
}

fn decompress(payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() < 4 {
        return Err(corrupt("compressed payload without its size"));
    }
    let mut size = [0u8; 4];
    size.copy_from_slice(&payload[..4]);
    let size = u32::from_le_bytes(size) as usize;
    if size > MAX_PAYLOAD {
        return Err(corrupt(format!("claims {size} bytes uncompressed")));
    }
    lz4_flex::block::decompress(&payload[4..], size)
        .map_err(|e| corrupt("lz4 payload does not decompress").with_source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<V: Serialize + DeserializeOwned>(v: &V) -> V {
        let bytes = encode_value(
            v,
            Encoding::default(),
            Duration::from_secs(60),
            Duration::from_micros(1500),
        )
        .unwrap();
        let header = read_header(&bytes).unwrap();
        assert_eq!(header.kind, Kind::Value);
        assert_eq!(header.ttl_ms, 60_000);
        assert_eq!(header.compute_us, 1500);
        decode_value(&header, &bytes).unwrap()
    }

    #[test]
    fn message_pack_roundtrips_and_is_smaller() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct User {
            id: u64,
            tags: Vec<String>,
        }
        let user = User {
            id: 7,
            tags: vec!["a".into(), "b".into()],
        };
        let encoding = Encoding {
            codec: Codec::MessagePack,
            ..Encoding::default()
        };
        let bytes = encode_value(&user, encoding, Duration::ZERO, Duration::ZERO).unwrap();
        let json =
            encode_value(&user, Encoding::default(), Duration::ZERO, Duration::ZERO).unwrap();
        assert!(bytes.len() < json.len());
        let header = read_header(&bytes).unwrap();
        assert_eq!(header.codec, Codec::MessagePack);
        assert_eq!(decode_value::<User>(&header, &bytes).unwrap(), user);
        assert!(Codec::from_name("yaml").is_err());
    }

    #[test]
    fn values_roundtrip() {
        assert_eq!(roundtrip(&42u64), 42);
        assert_eq!(roundtrip(&Some("x".to_string())), Some("x".to_string()));
    }

    #[test]
    fn large_values_are_compressed_and_roundtrip() {
        let big = "abc".repeat(10_000);
        let bytes = encode_value(
            &big,
            Encoding::default(),
            Duration::from_secs(1),
            Duration::ZERO,
        )
        .unwrap();
        let header = read_header(&bytes).unwrap();
        assert!(header.compressed);
        assert!(bytes.len() < big.len() / 10);
        assert_eq!(decode_value::<String>(&header, &bytes).unwrap(), big);
    }

    #[test]
    fn stamps_differ_per_write() {
        let a = encode_tombstone(Duration::from_secs(1));
        let b = encode_tombstone(Duration::from_secs(1));
        assert_ne!(a[..STAMP_END], b[..STAMP_END]);
        assert_eq!(read_header(&a).unwrap().kind, Kind::Tombstone);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = encode_value(&"v", Encoding::default(), Duration::ZERO, Duration::ZERO).unwrap();
        for cut in 0..good.len() {
            let _ =
                read_header(&good[..cut]).and_then(|h| decode_value::<String>(&h, &good[..cut]));
        }
        assert!(read_header(b"hello world, this is not an envelope").is_err());
        let header = read_header(&good).unwrap();
        assert!(decode_value::<u64>(&header, &good)
            .unwrap_err()
            .is_deserialization());
    }

    #[test]
    fn a_lying_size_field_is_refused() {
        let mut bytes = encode_value(
            &"x".repeat(5000),
            Encoding::default(),
            Duration::ZERO,
            Duration::ZERO,
        )
        .unwrap();
        assert!(read_header(&bytes).unwrap().compressed);
        bytes[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let header = read_header(&bytes).unwrap();
        assert!(decode_value::<String>(&header, &bytes).is_err());
    }
}
