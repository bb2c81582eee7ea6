//! The Redis setting "caller runtimes" (`Config::redis_caller_runtime`):
//! async calls polled by a tokio runtime use a connection created in that
//! runtime (one per runtime, shared by its threads); everything else, and
//! every failure, falls back to the I/O runtime's connection. Each test starts its own redis-server and counts
//! its connections with `CLIENT LIST`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memocache_runtime::{block_on, Cache, Config, Manager};
use memocache_testkit::redis;
use memocache_testkit::RedisServer;

const BUDGET: Duration = Duration::from_millis(500);

fn manager(server: &RedisServer, caller_runtime: bool) -> Arc<Manager> {
    let config = Config::builder()
        .url(server.url())
        .prefix("caller")
        .budget(BUDGET)
        .connect_timeout(BUDGET)
        .redis_caller_runtime(caller_runtime)
        .build()
        .unwrap();
    Arc::new(Manager::new(config).unwrap())
}

fn cache(m: &Arc<Manager>) -> Cache<u64, u64> {
    Cache::with_manager(m.clone(), "math", "double").unwrap()
}

/// A runtime that gets connections of its own: two workers or more (one
/// with a single worker keeps the I/O runtime's connection).
fn two_workers() -> tokio::runtime::Runtime {
    multi_thread(2)
}

fn multi_thread(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// One admin connection that lists the server's other clients.
struct Clients {
    conn: redis::Connection,
    own: u64,
}

/// A client of the server: its id and the last command it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Client {
    id: u64,
    cmd: String,
}

impl Clients {
    fn new(server: &RedisServer) -> Self {
        let mut conn = server.client();
        let own: u64 = redis::cmd("CLIENT").arg("ID").query(&mut conn).unwrap();
        Clients { conn, own }
    }

    /// The normal (not pub/sub) clients other than this one.
    fn others(&mut self) -> Vec<Client> {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .arg("TYPE")
            .arg("normal")
            .query(&mut self.conn)
            .unwrap();
        list.lines()
            .filter_map(|line| {
                let field = |name: &str| {
                    line.split(' ')
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_owned)
                };
                Some(Client {
                    id: field("id")?.parse().ok()?,
                    cmd: field("cmd").unwrap_or_default(),
                })
            })
            .filter(|c| c.id != self.own)
            .collect()
    }

    fn count(&mut self) -> usize {
        self.others().len()
    }

    /// Waits (on this thread) until `check` holds for the client list.
    fn wait_until(&mut self, what: &str, check: impl Fn(&[Client]) -> bool) -> Vec<Client> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let clients = self.others();
            if check(&clients) {
                return clients;
            }
            assert!(Instant::now() < deadline, "never {what}: {clients:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self, id: u64) {
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("ID")
            .arg(id)
            .query(&mut self.conn)
            .unwrap();
    }
}

/// Async calls that wait (yielding to the runtime) until the server sees
/// `n` clients besides the admin connection.
async fn calls_until_clients(c: &Cache<u64, u64>, clients: &mut Clients, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut i = 1000;
    while clients.count() < n {
        assert!(
            Instant::now() < deadline,
            "the caller's runtime never connected: {:?}",
            clients.others()
        );
        c.set(&i, &(i * 2)).await.unwrap();
        assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
        i += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Async calls until a connection other than `io` has run one of them
/// (a `PTTL`, which only `Cache::ttl` sends): the caller runtime's
/// connection, ready and in use. Returns it.
async fn until_in_use(c: &Cache<u64, u64>, clients: &mut Clients, io: &Client) -> Client {
    calls_until_clients(c, clients, 2).await;
    c.set(&7, &14).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(c.ttl(&7).await.unwrap().is_some());
        let others = clients.others();
        if let Some(caller) = others.iter().find(|x| x.id != io.id && x.cmd == "pttl") {
            return caller.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the caller's connection never ran a command: {others:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Makes the I/O runtime's connection with a sync call from a plain thread
/// (no runtime: always the I/O runtime's connection), and returns it.
fn io_connection(c: &Cache<u64, u64>, clients: &mut Clients) -> Client {
    block_on(c.set(&0, &0)).unwrap();
    let io = clients.others();
    assert_eq!(io.len(), 1, "one connection, the I/O runtime's: {io:?}");
    io[0].clone()
}

#[test]
fn a_runtime_gets_its_own_connection_and_uses_it() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);

    let rt = two_workers();
    let caller = rt.block_on(until_in_use(&c, &mut clients, &io));
    // A sync call runs on the I/O runtime's connection (last command MGET)...
    assert_eq!(block_on(c.get(&7)).unwrap(), Some(14));
    // ...and the runtime's async calls on its own (last command PTTL).
    rt.block_on(async {
        for _ in 0..5 {
            assert_eq!(c.get(&7).await.unwrap(), Some(14));
            assert!(c.ttl(&7).await.unwrap().is_some());
        }
    });
    let after = clients.others();
    let find = |id| after.iter().find(|x| x.id == id).unwrap().cmd.clone();
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        find(caller.id),
        "pttl",
        "the caller's connection: {after:?}"
    );
    assert_eq!(find(io.id), "mget", "the I/O connection: {after:?}");
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

#[test]
fn a_multi_thread_runtime_opens_one_connection_for_all_its_threads() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    io_connection(&c, &mut clients);

    let rt = multi_thread(2);
    for round in 0..20u64 {
        // Many concurrent first calls on both workers: one connect for the
        // runtime, not one per thread or per call.
        rt.block_on(async {
            let tasks: Vec<_> = (0..64u64)
                .map(|i| {
                    let c = c.clone();
                    let key = round * 100 + i;
                    tokio::spawn(async move {
                        c.set(&key, &(key * 2)).await.unwrap();
                        assert_eq!(c.get(&key).await.unwrap(), Some(key * 2));
                        let v = c.get_or_set(&(key + 10_000), || async move { key }).await;
                        assert_eq!(v, key);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        let n = clients.count();
        assert!(n <= 2, "round {round}: {:?}", clients.others());
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = clients.wait_until("connected in the caller's runtime", |x| x.len() >= 2);
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// A runtime with one worker thread (current-thread, or multi-thread with
/// one worker) keeps the I/O runtime's connection: there its own would
/// write each command on its own.
#[test]
fn a_runtime_with_one_worker_keeps_the_io_connection() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for rt in [current, multi_thread(1)] {
        rt.block_on(async {
            for i in 0..50 {
                c.set(&i, &(i * 2)).await.unwrap();
                assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    let ids: Vec<u64> = clients.others().iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![io.id]);
    // A runtime with two workers does connect (the check above could pass).
    two_workers().block_on(calls_until_clients(&c, &mut clients, 2));
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

#[test]
fn the_setting_off_opens_no_other_connection() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, false);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);

    two_workers().block_on(async {
        for i in 0..50 {
            c.set(&i, &(i * 2)).await.unwrap();
            assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert!(c.ttl(&1).await.unwrap().is_some());
    });
    multi_thread(2).block_on(async {
        let tasks: Vec<_> = (0..64u64)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.get(&i).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let ids: Vec<u64> = clients.others().iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![io.id]);
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

#[test]
fn calls_from_a_runtime_that_ended_still_work() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);

    // Runtime A: connects, then ends.
    let a = two_workers();
    a.block_on(calls_until_clients(&c, &mut clients, 2));
    drop(a);
    clients.wait_until("closed A's connection", |x| x.len() == 1);

    // Runtime B: A's connection is dead; nothing fails.
    let b = two_workers();
    b.block_on(async {
        for i in 0..50 {
            c.set(&i, &(i * 3)).await.unwrap();
            assert_eq!(c.get(&i).await.unwrap(), Some(i * 3));
            let v = c.get_or_set(&(i + 500), || async move { i }).await;
            assert_eq!(v, i);
        }
        calls_until_clients(&c, &mut clients, 2).await;
    });
    drop(b);

    // A multi-thread runtime that ends: its connection's driver task ends
    // with it, which closes the socket.
    let d = multi_thread(2);
    d.block_on(async {
        for i in 0..20 {
            let c2 = c.clone();
            tokio::spawn(async move { c2.set(&i, &i).await.unwrap() })
                .await
                .unwrap();
        }
        calls_until_clients(&c, &mut clients, 2).await;
    });
    drop(d);
    clients.wait_until("closed the ended runtimes' connections", |x| {
        x.len() == 1 && x[0].id == io.id
    });

    // And a new runtime after them: still fine.
    multi_thread(2).block_on(async {
        for i in 0..50 {
            assert_eq!(c.get(&(i + 500)).await.unwrap(), Some(i));
        }
    });
    // Sync calls after all of it: the I/O runtime's connection.
    assert_eq!(block_on(c.get(&3)).unwrap(), Some(3));
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// A sync call (memocache's `block_on`) inside a runtime that has a ready
/// connection of its own: that connection's driver is on the very runtime
/// the sync call blocks, so using it would wait out the budget every time.
#[test]
fn sync_calls_inside_a_runtime_do_not_use_its_connection() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);

    let rt = two_workers();
    rt.block_on(async {
        until_in_use(&c, &mut clients, &io).await;
        assert_eq!(c.get(&7).await.unwrap(), Some(14));
        let started = Instant::now();
        for _ in 0..5 {
            assert_eq!(block_on(c.get(&7)).unwrap(), Some(14));
            let v = block_on(c.get_or_set(&8, || async { 16 }));
            assert_eq!(v, 16);
        }
        let took = started.elapsed();
        assert!(took < BUDGET, "10 sync calls took {took:?}");
        // And the runtime's own async calls still work afterwards.
        assert_eq!(c.get(&8).await.unwrap(), Some(16));
    });
    // Inside a spawned task too.
    rt.block_on(async {
        let c2 = c.clone();
        let v = tokio::spawn(async move { block_on(c2.get(&7)) })
            .await
            .unwrap();
        assert_eq!(v.unwrap(), Some(14));
    });
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

#[test]
fn a_killed_connection_is_replaced_without_errors() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    let io = io_connection(&c, &mut clients);

    let rt = two_workers();
    rt.block_on(async {
        let caller = until_in_use(&c, &mut clients, &io).await;
        c.set(&1, &2).await.unwrap();
        clients.kill(caller.id);
        // Let the connection's driver see the close, or not: either way
        // reads fall back to the I/O runtime's connection.
        tokio::task::yield_now().await;
        for _ in 0..20 {
            assert_eq!(c.get(&1).await.unwrap(), Some(2));
        }
        // Then a new connection replaces the killed one.
        calls_until_clients(&c, &mut clients, 2).await;
        let now = clients.others();
        assert!(
            now.iter().all(|x| x.id != caller.id),
            "the killed connection is back? {now:?}"
        );
    });
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// A runtime without the I/O driver cannot register a socket (tokio panics);
/// the panic stays in memocache's connect task and the runtime keeps using
/// the I/O runtime's connection.
#[test]
fn a_runtime_without_io_falls_back_without_panicking() {
    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let m = manager(&server, true);
    let c = cache(&m);
    io_connection(&c, &mut clients);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..30 {
            c.set(&i, &(i * 2)).await.unwrap();
            assert_eq!(c.get(&i).await.unwrap(), Some(i * 2));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    assert_eq!(clients.count(), 1, "{:?}", clients.others());
    assert_eq!(m.stats().errors, 0, "{:?}", m.stats());
}

/// Every backend operation, through connections of the caller's runtime.
#[cfg(all(feature = "conformance", feature = "redis"))]
#[test]
fn the_backend_conforms_with_the_setting_on() {
    use memocache_runtime::backend::conformance;
    use memocache_runtime::backend::redis::{RedisBackend, RedisOptions};
    use memocache_runtime::backend::Backend;
    use memocache_runtime::config::RedisUrl;

    let server = RedisServer::start();
    let mut clients = Clients::new(&server);
    let backend = RedisBackend::new(&RedisOptions {
        url: RedisUrl::parse(&server.url()).unwrap(),
        connect_timeout: Duration::from_secs(1),
        response_timeout: Duration::from_secs(2),
        tls_ca_file: None,
        caller_runtime: true,
        tcp_nodelay: true,
    })
    .unwrap();
    two_workers().block_on(async {
        // Connected in this runtime first, so the suite runs on it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while clients.count() < 2 || !clients.others().iter().any(|x| x.cmd == "ping") {
            assert!(Instant::now() < deadline, "{:?}", clients.others());
            backend.ping().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        conformance::run(&backend, "conformance").await;
    });
}
