//! Setting up the global cache: from the environment, from a file, twice.
//! One test, because the global cache and the environment are per process.

use memocache::{Config, ErrorKind};

#[test]
fn init_reports_bad_settings_and_refuses_a_second_init() {
    // A malformed URL is an error naming it, and installs nothing.
    std::env::set_var("MEMOCACHE_URL", "redis://127.0.0.1:notaport");
    let e = memocache::init_from_env().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("notaport"), "{e}");

    // A password never shows in the error.
    std::env::set_var("MEMOCACHE_URL", "ftp://app:hunter2@host");
    let e = memocache::init_from_env().unwrap_err();
    assert!(e.to_string().contains("unsupported scheme `ftp://`"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    std::env::remove_var("MEMOCACHE_URL");

    // A config file with an unknown setting names the setting and the file.
    let dir = std::env::temp_dir().join(format!("memocache-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("memocache.toml");
    std::fs::write(&file, "url = \"memory://\"\nttl = \"5m\"\n").unwrap();
    std::env::set_var("MEMOCACHE_CONFIG", &file);
    let e = memocache::init_from_env().unwrap_err();
    assert!(e.to_string().contains("unknown field `ttl`"), "{e}");
    assert!(e.to_string().contains("memocache.toml"), "{e}");

    // A good file, with the environment overriding one setting.
    std::fs::write(
        &file,
        "url = \"memory://\"\nprefix = \"fromfile\"\ndefault_ttl = \"90s\"\n",
    )
    .unwrap();
    std::env::set_var("MEMOCACHE_DEFAULT_TTL", "2m");
    memocache::init_from_env().unwrap();
    let config = memocache::global().config();
    assert_eq!(config.prefix.as_str(), "fromfile");
    assert_eq!(config.default_ttl, std::time::Duration::from_secs(120));
    std::env::remove_var("MEMOCACHE_CONFIG");
    std::env::remove_var("MEMOCACHE_DEFAULT_TTL");
    let _ = std::fs::remove_dir_all(&dir);

    // Twice is an error that says what to do.
    let e = memocache::init(Config::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyInitialized);
    assert!(e.to_string().contains("call init once"), "{e}");
}
