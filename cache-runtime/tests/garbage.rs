//! Keys that hold garbage: random bytes, truncated envelopes, JSON of the
//! wrong type, entries of an older version of the value type. Every call
//! returns the right value, the bad entry is replaced or deleted, and
//! nothing panics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use memocache_runtime::backend::BackendExt;
use memocache_runtime::envelope::{self, Encoding};
use memocache_runtime::key::{EntryKey, Name};
use memocache_runtime::{Cache, Manager};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    email: String,
}

/// The value type of an older release: a field of another name and type.
#[derive(Serialize)]
struct OldProfile {
    id: u64,
    mail: Vec<u8>,
}

fn profile(id: u64) -> Profile {
    Profile {
        id,
        email: format!("{id}@example.com"),
    }
}

async fn full_key(m: &Manager, id: u64) -> String {
    let digest = m.hasher().digest(&id).unwrap();
    let entry = EntryKey::new(Name::new("profiles").unwrap(), "by_id", None, digest);
    m.read(&entry).await.unwrap().full_key
}

fn garbage_samples() -> Vec<(&'static str, Vec<u8>)> {
    let ttl = Duration::from_secs(60);
    let good =
        envelope::encode_value(&profile(1), Encoding::default(), ttl, Duration::ZERO).unwrap();
    let mut lying_lz4 =
        envelope::encode_value(&"x".repeat(5000), Encoding::default(), ttl, Duration::ZERO)
            .unwrap();
    lying_lz4[envelope::HEADER_LEN..envelope::HEADER_LEN + 4]
        .copy_from_slice(&u32::MAX.to_le_bytes());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let random: Vec<u8> = (0..300)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let mut future_version = good.clone();
    future_version[2] = 9;
    vec![
        ("empty", Vec::new()),
        ("random bytes", random),
        ("truncated envelope", good[..good.len() / 2].to_vec()),
        ("header only", good[..envelope::HEADER_LEN].to_vec()),
        (
            "json of the wrong type",
            envelope::encode_value(&"a string", Encoding::default(), ttl, Duration::ZERO).unwrap(),
        ),
        (
            "an older value type",
            envelope::encode_value(
                &OldProfile {
                    id: 1,
                    mail: vec![1, 2],
                },
                Encoding::default(),
                ttl,
                Duration::ZERO,
            )
            .unwrap(),
        ),
        ("an unknown format version", future_version),
        ("a lying lz4 size", lying_lz4),
        ("plain json", br#"{"id":1,"email":"x"}"#.to_vec()),
    ]
}

async fn every_call_is_right_and_bad_entries_go(m: Arc<Manager>) {
    let c: Cache<u64, Profile> = Cache::with_manager(m.clone(), "profiles", "by_id").unwrap();
    for (i, (what, bytes)) in garbage_samples().into_iter().enumerate() {
        let id = 3 * i as u64;
        let key = full_key(&m, id).await;
        let corrupt_before = m.stats().corrupt;

        // get_or_set computes the right value and replaces the garbage.
        m.backend()
            .set(&key, Bytes::from(bytes.clone()), None)
            .await
            .unwrap();
        let v = c.get_or_set(&id, || async move { profile(id) }).await;
        assert_eq!(v, profile(id), "{what}");
        assert_eq!(
            c.get(&id).await.unwrap(),
            Some(profile(id)),
            "{what}: replaced"
        );
        assert!(
            m.stats().corrupt > corrupt_before,
            "{what}: not counted as corrupt"
        );

        // An uncacheable outcome deletes the garbage instead.
        let id = id + 1;
        let key = full_key(&m, id).await;
        m.backend()
            .set(&key, Bytes::from(bytes.clone()), None)
            .await
            .unwrap();
        let r: Result<Profile, String> = c
            .try_get_or_set(&id, || async { Err("down".to_string()) })
            .await;
        assert_eq!(r, Err("down".to_string()), "{what}");
        assert_eq!(
            m.backend().get(&key).await.unwrap(),
            None,
            "{what}: not deleted"
        );

        // The explicit API reads garbage as absent, and deletes it.
        let id = id + 1;
        let key = full_key(&m, id).await;
        m.backend()
            .set(&key, Bytes::from(bytes), None)
            .await
            .unwrap();
        assert_eq!(c.get(&id).await.unwrap(), None, "{what}");
        assert_eq!(
            m.backend().get(&key).await.unwrap(),
            None,
            "{what}: not deleted by get"
        );
    }
}
both_backends!(every_call_is_right_and_bad_entries_go);

async fn a_garbage_generation_is_a_miss_and_a_flush_repairs_it(m: Arc<Manager>) {
    let c: Cache<u64, Profile> = Cache::with_manager(m.clone(), "profiles", "by_id").unwrap();
    c.set(&1, &profile(1)).await.unwrap();
    let gen_key = format!("{}:profiles:gen", m.config().prefix);
    m.backend()
        .set(&gen_key, Bytes::from_static(b"not a number"), None)
        .await
        .unwrap();
    let v = c.get_or_set(&1, || async { profile(1) }).await;
    assert_eq!(v, profile(1));
    assert!(c.get(&1).await.is_err(), "the explicit API reports it");
    m.flush_namespace("profiles").await.unwrap();
    assert_eq!(c.get(&1).await.unwrap(), None);
    c.set(&1, &profile(1)).await.unwrap();
    assert_eq!(c.get(&1).await.unwrap(), Some(profile(1)));
}
both_backends!(a_garbage_generation_is_a_miss_and_a_flush_repairs_it);
