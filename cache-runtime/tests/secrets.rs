//! Passwords and the key secret never appear in `Debug`, `Display` or logs.
//! The logs of a whole failing session are captured and searched.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use memocache_runtime::{Cache, Config, Manager};
use memocache_testkit::RedisServer;

const PASSWORD: &str = "pw-9f8e7d6c";
const KEY_SECRET: &str = "ks-1a2b3c4d";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_debug_display_and_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let server = RedisServer::start_with(&["--requirepass", "the-real-one"]);
    let url = format!("redis://default:{PASSWORD}@127.0.0.1:{}", server.port());
    let config = Config::builder()
        .url(&url)
        .key_secret(KEY_SECRET)
        .budget(Duration::from_millis(200))
        .breaker(2, Duration::from_millis(100))
        .build()
        .unwrap();
    let shown = format!("{config:?} {} {:?}", config.backend, config.key_secret);
    let m = Arc::new(Manager::new(config).unwrap());
    let shown = format!("{shown} {m:?} {:?}", m.hasher());

    // A session that fails in every way it can: wrong password, flush
    // refused, breaker opening, health checks.
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "users", "n").unwrap();
    let mut errors = String::new();
    for i in 0..20 {
        assert_eq!(c.get_or_set(&i, || async move { i + 1 }).await, i + 1);
        if let Err(e) = c.get(&i).await {
            errors.push_str(&format!("{e} {e:?}\n"));
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    if let Err(e) = m.flush_namespace("users").await {
        errors.push_str(&format!("{e} {e:?}\n"));
    }
    let health = m.health().await;
    errors.push_str(&format!("{health:?}\n"));
    let bad_url =
        memocache_runtime::config::BackendUrl::parse(&format!("redis://u:{PASSWORD}@h:99999999"));
    errors.push_str(&format!("{bad_url:?}\n"));

    let logs = logs.text();
    assert!(logs.contains("memocache"), "no log captured: {logs}");
    assert!(!errors.is_empty());
    for (what, text) in [
        ("Debug/Display", &shown),
        ("errors", &errors),
        ("logs", &logs),
    ] {
        assert!(
            !text.contains(PASSWORD),
            "the password leaked in {what}: {text}"
        );
        assert!(
            !text.contains(KEY_SECRET),
            "the key secret leaked in {what}: {text}"
        );
    }
    assert!(shown.contains("<redacted>"), "{shown}");
}
