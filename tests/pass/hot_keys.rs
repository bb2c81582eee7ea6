//! The options for hot keys and fleets: `lock`, `early_refresh`, `local_ttl`,
//! alone and together, on sync and async functions and methods.
#![deny(warnings)]

use memocache::cached;

#[cached(lock = "30s")]
fn locked(id: u64) -> String {
    id.to_string()
}

#[cached(early_refresh)]
fn refreshed(id: u64) -> u64 {
    id + 1
}

#[cached(early_refresh = 2.5, ttl = "1m")]
fn refreshed_eagerly(id: u64) -> u64 {
    id + 2
}

#[cached(local_ttl = "5s")]
fn local(id: u64) -> Option<u64> {
    Some(id)
}

#[cached(namespace = "hot", ttl = "1h", lock = "10s", early_refresh, local_ttl = "2s")]
async fn everything(id: u64) -> Result<Vec<u64>, String> {
    Ok(vec![id])
}

struct Catalog;

impl Catalog {
    #[cached(local_ttl = "1s", lock = "5s")]
    fn price(&self, sku: u32) -> u64 {
        u64::from(sku) * 2
    }
}

fn main() {
    assert_eq!(locked(1), "1");
    assert_eq!(refreshed(1), 2);
    assert_eq!(refreshed_eagerly(1), 3);
    assert_eq!(local(4), Some(4));
    assert_eq!(local(4), Some(4));
    assert_eq!(Catalog.price(3), 6);
    assert_eq!(memocache::block_on(everything(5)), Ok(vec![5]));
}
