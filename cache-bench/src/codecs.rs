//! Envelope sizes and speeds: JSON and MessagePack, with and without lz4,
//! for a small, a medium and a large value. Encoding includes the header
//! (and the compression attempt above the threshold); decoding reads the
//! header, decompresses if needed and deserializes.

use std::hint::black_box;
use std::time::{Duration, Instant};

use memocache_runtime::envelope::{decode_value, encode_value, read_header, Codec, Encoding};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::payload::{user, users};

/// One line of the codec table.
#[derive(Debug, Clone)]
pub struct CodecRow {
    /// Which value.
    pub value: &'static str,
    /// Which codec.
    pub codec: &'static str,
    /// Whether lz4 was allowed (above 1 KiB, kept only if smaller).
    pub lz4: bool,
    /// Whether the stored payload is compressed.
    pub compressed: bool,
    /// Envelope size in bytes.
    pub bytes: usize,
    /// Mean encode time, ns.
    pub encode_ns: f64,
    /// Mean decode time, ns.
    pub decode_ns: f64,
}

/// The encodings compared: (codec name, lz4, encoding).
pub fn encodings() -> [(&'static str, bool, Encoding); 4] {
    let with = |codec, compress_above| Encoding {
        codec,
        compress_above,
    };
    [
        ("JSON", false, with(Codec::Json, usize::MAX)),
        ("JSON", true, with(Codec::Json, 1024)),
        ("MessagePack", false, with(Codec::MessagePack, usize::MAX)),
        ("MessagePack", true, with(Codec::MessagePack, 1024)),
    ]
}

/// Measures every value in every encoding, about `time` per measurement.
pub fn run(time: Duration) -> Vec<CodecRow> {
    let mut rows = Vec::new();
    rows.extend(value_rows("small: 1 user (~150 B)", &user(1), time));
    rows.extend(value_rows("medium: 8 users (~1.2 KB)", &users(8), time));
    rows.extend(value_rows(
        "large: 1000 users (~150 KB)",
        &users(1000),
        time,
    ));
    rows
}

fn value_rows<V>(name: &'static str, value: &V, time: Duration) -> Vec<CodecRow>
where
    V: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let ttl = Duration::from_secs(60);
    encodings()
        .into_iter()
        .map(|(codec, lz4, encoding)| {
            let bytes = encode_value(value, encoding, ttl, Duration::ZERO).expect("encodes");
            let header = read_header(&bytes).expect("a header");
            let back: V = decode_value(&header, &bytes).expect("decodes");
            assert_eq!(&back, value);
            let encode_ns = mean_ns(time, || {
                encode_value(black_box(value), encoding, ttl, Duration::ZERO).expect("encodes")
            });
            let decode_ns = mean_ns(time, || {
                let header = read_header(black_box(&bytes)).expect("a header");
                decode_value::<V>(&header, &bytes).expect("decodes")
            });
            CodecRow {
                value: name,
                codec,
                lz4,
                compressed: header.compressed,
                bytes: bytes.len(),
                encode_ns,
                decode_ns,
            }
        })
        .collect()
}

/// The mean time of `f` over about `time` (at least 10 calls).
fn mean_ns<T>(time: Duration, mut f: impl FnMut() -> T) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while calls < 10 || started.elapsed() < time {
        black_box(f());
        calls += 1;
    }
    started.elapsed().as_nanos() as f64 / calls as f64
}

/// Prints the codec table.
pub fn print(rows: &[CodecRow]) {
    println!(
        "{:<28} {:<12} {:<4} {:>9} {:>8} {:>12} {:>12}",
        "value", "codec", "lz4", "bytes", "vs JSON", "encode µs", "decode µs"
    );
    for row in rows {
        let json = rows
            .iter()
            .find(|r| r.value == row.value && r.codec == "JSON" && !r.lz4)
            .map_or(row.bytes, |r| r.bytes);
        let lz4 = match (row.lz4, row.compressed) {
            (false, _) => "off",
            (true, true) => "on",
            (true, false) => "on*",
        };
        println!(
            "{:<28} {:<12} {:<4} {:>9} {:>7.0}% {:>12.2} {:>12.2}",
            row.value,
            row.codec,
            lz4,
            row.bytes,
            100.0 * row.bytes as f64 / json as f64,
            row.encode_ns / 1e3,
            row.decode_ns / 1e3
        );
    }
    println!("  on* = lz4 allowed but not used (payload at most 1 KiB, or not smaller compressed)");
}
