//! TLS to a real redis-server that speaks only TLS (Debian's build has it).

use std::sync::Arc;
use std::time::Duration;

use memocache_runtime::{Cache, Config, Manager};
use memocache_testkit::RedisServer;

fn manager(url: &str, ca: Option<&std::path::Path>) -> Arc<Manager> {
    let mut builder = Config::builder()
        .url(url)
        .prefix("tls")
        .budget(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(1));
    if let Some(ca) = ca {
        builder = builder.tls_ca_file(ca);
    }
    Arc::new(Manager::new(builder.build().unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_the_servers_ca_works() {
    let server = RedisServer::start_tls();
    let ca = server.tls_files().unwrap().ca.clone();
    let m = manager(&server.tls_url(), Some(&ca));
    let c: Cache<u64, String> = Cache::with_manager(m.clone(), "secure", "v").unwrap();
    c.set(&1, &"over tls".into()).await.unwrap();
    assert_eq!(c.get(&1).await.unwrap().as_deref(), Some("over tls"));
    assert!(m.health().await.ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_and_calls_still_compute() {
    let server = RedisServer::start_tls();
    // No CA given: the system roots do not trust the test CA.
    let m = manager(&server.tls_url(), None);
    let c: Cache<u64, String> = Cache::with_manager(m.clone(), "secure", "v").unwrap();
    assert!(c.get(&1).await.is_err());
    let v = c.get_or_set(&1, || async { "computed".to_string() }).await;
    assert_eq!(v, "computed");
    // Plain redis:// to a TLS-only port fails too, without hanging.
    let plain = manager(&format!("redis://127.0.0.1:{}", server.port()), None);
    assert!(!plain.health().await.ok);
}

#[test]
fn a_missing_ca_file_is_a_clear_error() {
    let config = Config::builder()
        .url("rediss://localhost:6380")
        .tls_ca_file("/nonexistent/ca.pem")
        .build()
        .unwrap();
    let e = Manager::new(config).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
