//! Set-up shared by the facade tests that run on Redis.

/// Sets up the global cache on the Redis at `url`, with key prefix `prefix`.
pub fn init_redis(url: &str, prefix: &str) {
    memocache::init(
        memocache::Config::builder()
            .url(url)
            .prefix(prefix)
            .build()
            .unwrap(),
    )
    .unwrap();
}
