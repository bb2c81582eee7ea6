//! The memory backend fed ten times its capacity stays within its bounds.

use std::time::Duration;

use bytes::Bytes;
use memocache_runtime::backend::memory::MemoryBackend;
use memocache_runtime::backend::{Backend, BackendExt};

#[tokio::test]
async fn ten_times_the_entry_bound_stays_within_it() {
    let backend = MemoryBackend::new(1_000, usize::MAX);
    for i in 0..10_000 {
        backend
            .set(
                &format!("k{i}"),
                Bytes::from_static(b"v"),
                Some(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        let (entries, _) = backend.usage();
        assert!(entries <= 1_000, "{entries} entries after {i} inserts");
    }
    // Recent entries are there; the old ones were evicted (the sample is
    // drawn at random positions: none of them is out of its reach).
    assert!(backend.get("k9999").await.unwrap().is_some());
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let old = backend
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .flatten()
        .count();
    assert!(
        old < 50,
        "{old} of the first 1000 survived 9000 newer inserts"
    );
}

#[tokio::test]
async fn ten_times_the_byte_bound_stays_within_it() {
    let bound = 1 << 20;
    let backend = MemoryBackend::new(usize::MAX, bound);
    let value = Bytes::from(vec![7u8; 1000]);
    for i in 0..10_000 {
        backend
            .set(&format!("k{i}"), value.clone(), None)
            .await
            .unwrap();
    }
    let (entries, bytes) = backend.usage();
    assert!(bytes <= bound, "{bytes} bytes held, bound {bound}");
    assert!(entries > 500, "evicted far too much: {entries} entries");
}
