//! Managers for the integration tests: one on the memory backend, one on a
//! real redis-server started by the harness.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use memocache_runtime::{Config, Manager};
use memocache_testkit::{shared, unique};

pub fn memory() -> Arc<Manager> {
    Arc::new(Manager::new(Config::default()).unwrap())
}

pub fn redis() -> Arc<Manager> {
    redis_at(&shared().url(), &unique("t"))
}

pub fn redis_at(url: &str, prefix: &str) -> Arc<Manager> {
    let config = Config::builder()
        .url(url)
        .prefix(prefix)
        .budget(Duration::from_millis(500))
        .build()
        .unwrap();
    Arc::new(Manager::new(config).unwrap())
}

/// Runs `check` against both backends.
#[macro_export]
macro_rules! both_backends {
    ($check:ident) => {
        mod $check {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$check(super::common::memory()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$check(super::common::redis()).await;
            }
        }
    };
}
