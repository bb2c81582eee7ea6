//! Every backend passes the same conformance suite.

use memocache_runtime::backend::conformance;
use memocache_runtime::backend::memory::MemoryBackend;
use memocache_runtime::backend::redis::{RedisBackend, RedisOptions};
use memocache_runtime::config::RedisUrl;
use memocache_testkit::{shared, unique};
use std::time::Duration;

#[tokio::test]
async fn memory_backend_conforms() {
    let backend = MemoryBackend::new(100_000, 256 << 20);
    conformance::run(&backend, "conformance").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend_conforms() {
    redis_conforms(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend_on_caller_runtimes_conforms() {
    redis_conforms(true).await;
}

/// With Nagle's algorithm on (`redis_tcp_nodelay` off), on both kinds of
/// connection: commands held by the kernel still all get their replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend_without_tcp_nodelay_conforms() {
    for caller_runtime in [false, true] {
        redis_conforms_with(caller_runtime, false).await;
    }
}

async fn redis_conforms(caller_runtime: bool) {
    redis_conforms_with(caller_runtime, true).await;
}

async fn redis_conforms_with(caller_runtime: bool, tcp_nodelay: bool) {
    let server = shared();
    let backend = RedisBackend::new(&RedisOptions {
        url: RedisUrl::parse(&server.url()).unwrap(),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(2),
        tls_ca_file: None,
        caller_runtime,
        tcp_nodelay,
    })
    .unwrap();
    conformance::run(&backend, &unique("conformance")).await;
}
