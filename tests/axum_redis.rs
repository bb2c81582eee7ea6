//! The example service (`examples/axum_service.rs`, compiled into this test)
//! as two OS processes sharing one real Redis: a response cached by one is
//! served by the other with the same `ETag`; a write in one removes the
//! entry for both; the admin flush of one is seen by the other. The test
//! binary re-runs itself as each server process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

#[allow(dead_code)]
#[path = "../examples/axum_service.rs"]
mod service;

const CHILD_VAR: &str = "MEMOCACHE_AXUM_TEST_CHILD";
const TOKEN: &str = "two-process-admin-token-42";

/// In a child process (and only there): runs the example service until the
/// parent kills it.
#[test]
fn child_service() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(service::run())
        .unwrap();
}

/// A server process, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the service in a new process on `url` with key prefix `prefix`,
/// on a free port; returns once it listens.
fn spawn_server(url: &str, prefix: &str) -> Server {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_service",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_VAR, "1")
        .env("MEMOCACHE_URL", url)
        .env("MEMOCACHE_PREFIX", prefix)
        .env("MEMOCACHE_ADMIN_TOKEN", TOKEN)
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the service exited before listening")
            .unwrap();
        // libtest prints "test child_service ... " before it on the same line.
        if let Some((_, address)) = line.split_once("listening on ") {
            break address.trim().to_owned();
        }
    };
    // Keep draining its output, so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn two_processes_share_responses_through_redis() {
    let redis = memocache_testkit::shared();
    let prefix = memocache_testkit::unique("axum");
    let a = spawn_server(&redis.url(), &prefix);
    let b = spawn_server(&redis.url(), &prefix);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // Cached by A, served by B with the same ETag, body and Date.
    let from_a = http
        .get(format!("{}/users/1", a.base))
        .send()
        .await
        .unwrap();
    assert!(header(&from_a, "cache-status").contains("fwd=miss; stored"));
    let (etag, date) = (header(&from_a, "etag"), header(&from_a, "date"));
    assert!(etag.starts_with('"'));
    let body_a = from_a.text().await.unwrap();
    let from_b = http
        .get(format!("{}/users/1", b.base))
        .send()
        .await
        .unwrap();
    assert!(
        header(&from_b, "cache-status").starts_with("memocache; hit"),
        "{}",
        header(&from_b, "cache-status")
    );
    assert_eq!(header(&from_b, "etag"), etag);
    assert_eq!(header(&from_b, "date"), date);
    assert!(!header(&from_b, "age").is_empty());
    assert_eq!(from_b.text().await.unwrap(), body_a);
    // B revalidates with A's tag.
    let revalidated = http
        .get(format!("{}/users/1", b.base))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);

    // The entry is in Redis, under the service's prefix and namespace.
    let keys = redis.keys(&prefix);
    assert!(
        keys.iter()
            .any(|k| k.contains(":users:") && k.contains("get_user")),
        "{keys:?}"
    );

    // A write through B removes the entry in Redis (#[cache_remove]); the
    // next read, by B, computes anew, and A then serves B's new response.
    // (Each process has its own in-memory database: the example's, so the
    // read goes to the one that was written.)
    let written = http
        .put(format!("{}/users/1", b.base))
        .json(&serde_json::json!({ "id": 1, "name": "Ada L.", "email": "ada@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    let fresh = http
        .get(format!("{}/users/1", b.base))
        .send()
        .await
        .unwrap();
    assert!(header(&fresh, "cache-status").contains("fwd=miss"));
    let new_etag = header(&fresh, "etag");
    assert_ne!(new_etag, etag);
    assert!(fresh.text().await.unwrap().contains("Ada L."));
    let from_a = http
        .get(format!("{}/users/1", a.base))
        .send()
        .await
        .unwrap();
    assert!(header(&from_a, "cache-status").contains("hit"));
    assert_eq!(header(&from_a, "etag"), new_etag);
    assert!(from_a.text().await.unwrap().contains("Ada L."));

    // The admin flush through A is seen by B.
    let products = format!("{}/products?max_price_cents=3000", b.base);
    http.get(&products).send().await.unwrap();
    let hit = http.get(&products).send().await.unwrap();
    assert!(header(&hit, "cache-status").contains("hit"));
    let flush = http
        .post(format!("{}/admin/cache/flush/products", a.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(flush.status(), 200);
    let after = http.get(&products).send().await.unwrap();
    assert!(header(&after, "cache-status").contains("fwd=miss"));

    let unauthorized = http
        .post(format!("{}/admin/cache/flush/products", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let health = http
        .get(format!("{}/admin/cache/health", b.base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["backend"], "redis");
    assert_eq!(health["ok"], true);
    assert_eq!(health["breaker"], "closed");
}
