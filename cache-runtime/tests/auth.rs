//! AUTH with an ACL user and password from the URL; a wrong password is a
//! backend failure (calls compute), and never shows up in errors.

use std::sync::Arc;
use std::time::Duration;

use memocache_runtime::{Cache, Config, Manager};
use memocache_testkit::RedisServer;

fn manager(url: &str) -> Arc<Manager> {
    let config = Config::builder()
        .url(url)
        .prefix("app")
        .budget(Duration::from_millis(300))
        .build()
        .unwrap();
    Arc::new(Manager::new(config).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_with_password_works_and_a_wrong_password_does_not_leak() {
    let server = RedisServer::start();
    let mut admin = server.client();
    // A user allowed only keys under the `app:` prefix.
    let _: () = memocache_testkit::redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "cacheuser",
            "on",
            ">s3cret-pw",
            "~app:*",
            "+@all",
        ])
        .query(&mut admin)
        .unwrap();

    let port = server.port();
    let good = manager(&format!("redis://cacheuser:s3cret-pw@127.0.0.1:{port}"));
    let c: Cache<u64, String> = Cache::with_manager(good.clone(), "users", "by_id").unwrap();
    c.set(&1, &"ada".into()).await.unwrap();
    assert_eq!(c.get(&1).await.unwrap().as_deref(), Some("ada"));
    assert!(good.health().await.ok);
    assert!(!server.keys("app:users:").is_empty());

    let bad = manager(&format!("redis://cacheuser:wrong-pw@127.0.0.1:{port}"));
    let c: Cache<u64, String> = Cache::with_manager(bad.clone(), "users", "by_id").unwrap();
    let e = c.get(&1).await.unwrap_err();
    assert!(!e.to_string().contains("wrong-pw"), "{e}");
    assert!(!format!("{e:?}").contains("wrong-pw"), "{e:?}");
    assert!(!format!("{bad:?}").contains("wrong-pw"));
    // The luxury rule: a cached computation still returns its value.
    let v = c.get_or_set(&2, || async { "computed".to_string() }).await;
    assert_eq!(v, "computed");
    let health = bad.health().await;
    assert!(!health.ok);
    assert!(!health.error.unwrap_or_default().contains("wrong-pw"));
}
