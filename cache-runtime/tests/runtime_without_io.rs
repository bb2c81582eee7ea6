//! A tokio runtime built without its I/O driver cannot hold a Redis
//! connection; with the default settings, memocache finds that out without
//! printing tokio's panic, and the runtime's calls use memocache's I/O
//! runtime. Alone in its file: a panic hook belongs to the whole process.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use memocache_runtime::{Cache, Config, Manager};
use memocache_testkit::redis;
use memocache_testkit::RedisServer;

/// The messages of the panics the application's hook saw.
type Seen = Arc<Mutex<Vec<String>>>;

/// Installs a hook that records each panic's message, then calls the
/// default one, as an application's own hook would.
fn record_panics() -> Seen {
    let seen = Seen::default();
    let recorded = seen.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        recorded.lock().unwrap().push(message);
        previous(info);
    }));
    seen
}

fn clients(server: &RedisServer) -> usize {
    let mut admin = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    list.lines().count() - 1
}

#[test]
fn a_runtime_without_io_uses_the_io_connection_and_prints_no_panic() {
    let seen = record_panics();
    let server = RedisServer::start();
    let config = Config::builder()
        .url(server.url())
        .prefix("noio")
        .budget(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(config.redis_caller_runtime, "on by default");
    let m = Arc::new(Manager::new(config).unwrap());
    let c: Cache<u64, u64> = Cache::with_manager(m.clone(), "math", "double").unwrap();
    let c = Arc::new(c);

    let without_io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let c2 = c.clone();
    without_io.block_on(async {
        let c = c2;
        for i in 0..30 {
            c.set(&i, &(i * 2)).await.unwrap();
            assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(clients(&server), 1, "only the I/O runtime's connection");
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());

    // A runtime with I/O gets its own connection, as usual.
    let with_io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c2 = c.clone();
    with_io.block_on(async {
        let c = c2;
        for i in 0..200 {
            assert_eq!(c.get(&(i % 30)).await.unwrap(), Some(i % 30 * 2));
            if clients(&server) == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(clients(&server), 2, "the I/O runtime's and this runtime's");

    let messages = seen.lock().unwrap().clone();
    assert!(
        !messages.iter().any(|m| m.contains("IO is disabled")),
        "tokio's panic was printed: {messages:?}"
    );
    // A hook the application installs after memocache's first probe is
    // wrapped by the next probe: its I/O-less runtime is not reported either.
    let later = record_panics();
    let another_without_io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let c2 = c.clone();
    another_without_io.block_on(async {
        tokio::spawn(async move {
            let c = c2;
            for i in 0..30 {
                assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
    });
    assert_eq!(
        clients(&server),
        2,
        "no connection in a runtime without I/O"
    );
    let messages = later.lock().unwrap().clone();
    assert!(
        !messages.iter().any(|m| m.contains("IO is disabled")),
        "tokio's panic reached a hook installed later: {messages:?}"
    );

    // The application's own panics still reach its hooks.
    assert!(std::thread::spawn(|| panic!("an application panic"))
        .join()
        .is_err());
    assert!(later
        .lock()
        .unwrap()
        .iter()
        .any(|m| m == "an application panic"));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|m| m == "an application panic"));
}
