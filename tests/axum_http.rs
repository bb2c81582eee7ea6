//! `#[cached(handler)]` over real HTTP: each test binds an axum server on a
//! loopback port and talks to it with a real HTTP client (reqwest), on the
//! in-process cache. Every test has its own handlers, so their counters and
//! entries never mix.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use axum_extra::headers::UserAgent;
use axum_extra::TypedHeader;
use memocache::{cache_remove, cached, Config};
use serde::{Deserialize, Serialize};

const TOKEN: &str = "test-admin-token-0123456789";

fn setup() {
    static SETUP: OnceLock<()> = OnceLock::new();
    SETUP.get_or_init(|| {
        memocache::init(Config::builder().url("memory://").build().unwrap()).unwrap();
    });
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> String {
    setup();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).map(|v| v.to_str().unwrap())
}

fn status_of(r: &reqwest::Response) -> String {
    header(r, "cache-status").unwrap_or_default().to_owned()
}

/// The headers of a response but those that differ per request by design.
fn stable_headers(r: &reqwest::Response) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "age" | "cache-status"))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Item {
    id: u64,
    call: usize,
}

// --- a miss, then a hit with an identical body and headers; Age; HEAD ---

static ITEM_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-items", ttl = "1m")]
#[axum::debug_handler]
async fn item(Path(id): Path<u64>) -> Json<Item> {
    let call = ITEM_CALLS.fetch_add(1, SeqCst) + 1;
    Json(Item { id, call })
}

#[tokio::test]
async fn a_miss_then_a_hit_with_the_same_body_and_headers() {
    let base = serve(Router::new().route("/items/{id}", get(item))).await;
    let http = client();
    let url = format!("{base}/items/7");

    let miss = http.get(&url).send().await.unwrap();
    assert_eq!(miss.status(), 200);
    assert_eq!(status_of(&miss), "memocache; fwd=miss; stored; ttl=60");
    assert!(header(&miss, "age").is_none());
    let miss_headers = stable_headers(&miss);
    let miss_body = miss.bytes().await.unwrap();

    let hit = http.get(&url).send().await.unwrap();
    assert_eq!(hit.status(), 200);
    assert!(
        status_of(&hit).starts_with("memocache; hit; ttl="),
        "{}",
        status_of(&hit)
    );
    assert_eq!(header(&hit, "age"), Some("0"));
    assert_eq!(stable_headers(&hit), miss_headers);
    assert_eq!(hit.bytes().await.unwrap(), miss_body);
    assert_eq!(ITEM_CALLS.load(SeqCst), 1, "the handler ran once");

    let other = http.get(format!("{base}/items/8")).send().await.unwrap();
    assert!(status_of(&other).contains("fwd=miss"));
    assert_eq!(ITEM_CALLS.load(SeqCst), 2, "another path is another key");

    // HEAD is answered from the same entry, without a body.
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(status_of(&head).contains("hit"));
    assert!(head.bytes().await.unwrap().is_empty());

    // Age counts the seconds since the response was stored.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = http.get(&url).send().await.unwrap();
    let age: u64 = header(&later, "age").unwrap().parse().unwrap();
    assert!(age >= 1, "age {age}");
    assert_eq!(stable_headers(&later), miss_headers);
    assert_eq!(ITEM_CALLS.load(SeqCst), 2);
}

// --- ETag and 304 ---

static TAGGED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-etag")]
async fn tagged() -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    TAGGED_CALLS.fetch_add(1, SeqCst);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "public, max-age=60")],
        "tagged body",
    )
}

#[tokio::test]
async fn etag_and_304_not_modified() {
    let base = serve(Router::new().route("/tagged", get(tagged))).await;
    let http = client();
    let url = format!("{base}/tagged");

    let first = http.get(&url).send().await.unwrap();
    let etag = header(&first, "etag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"));
    let date = header(&first, "date").unwrap().to_owned();

    for tag in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"other\", {etag}"),
        "*".into(),
    ] {
        let r = http
            .get(&url)
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "If-None-Match: {tag}");
        assert_eq!(header(&r, "etag"), Some(etag.as_str()));
        assert_eq!(header(&r, "cache-control"), Some("public, max-age=60"));
        assert_eq!(header(&r, "date"), Some(date.as_str()));
        assert!(header(&r, "age").is_some());
        assert!(status_of(&r).contains("hit"));
        assert!(header(&r, "content-type").is_none());
        assert!(r.bytes().await.unwrap().is_empty());
    }
    let changed = http
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(header(&changed, "etag"), Some(etag.as_str()));
    assert_eq!(changed.text().await.unwrap(), "tagged body");
    assert_eq!(TAGGED_CALLS.load(SeqCst), 1);
}

// --- errors are not stored ---

static FAILING_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-errors")]
async fn failing() -> Result<String, StatusCode> {
    FAILING_CALLS.fetch_add(1, SeqCst);
    Err(StatusCode::INTERNAL_SERVER_ERROR)
}

#[tokio::test]
async fn a_500_is_not_cached() {
    let base = serve(Router::new().route("/failing", get(failing))).await;
    let http = client();
    for n in 1..=3 {
        let r = http.get(format!("{base}/failing")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert_eq!(status_of(&r), "memocache; fwd=miss; detail=status");
        assert!(header(&r, "etag").is_none());
        assert_eq!(FAILING_CALLS.load(SeqCst), n);
    }
}

// --- Set-Cookie is never replayed ---

static COOKIE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-cookie")]
async fn login_page() -> impl IntoResponse {
    let n = COOKIE_CALLS.fetch_add(1, SeqCst);
    (
        [(header::SET_COOKIE, format!("session=s{n}; HttpOnly"))],
        "welcome",
    )
}

#[tokio::test]
async fn set_cookie_is_never_replayed_to_another_client() {
    let base = serve(Router::new().route("/login", get(login_page))).await;
    let url = format!("{base}/login");
    let alice = client().get(&url).send().await.unwrap();
    let alice_cookie = header(&alice, "set-cookie").unwrap().to_owned();
    assert_eq!(status_of(&alice), "memocache; fwd=miss; detail=set-cookie");
    let bob = client().get(&url).send().await.unwrap();
    let bob_cookie = header(&bob, "set-cookie").unwrap().to_owned();
    assert_ne!(alice_cookie, bob_cookie, "Bob got Alice's session");
    assert_eq!(COOKIE_CALLS.load(SeqCst), 2);
}

// --- credentials ---

static PROFILE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Pretends to depend on the caller, as handlers behind an auth layer do.
#[cached(handler, namespace = "http-auth")]
async fn profile() -> String {
    format!("profile {}", PROFILE_CALLS.fetch_add(1, SeqCst))
}

static PER_USER_CALLS: AtomicUsize = AtomicUsize::new(0);

/// The identity is part of the key: each token has its own entry.
#[cached(handler(vary("authorization")), namespace = "http-auth")]
async fn per_user() -> String {
    format!("per user {}", PER_USER_CALLS.fetch_add(1, SeqCst))
}

#[tokio::test]
async fn requests_with_authorization_are_not_shared() {
    let router = Router::new()
        .route("/profile", get(profile))
        .route("/per-user", get(per_user));
    let base = serve(router).await;
    let http = client();
    let url = format!("{base}/profile");
    let get_as = |token: Option<&'static str>| {
        let mut request = http.get(&url);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        request.send()
    };

    let alice = get_as(Some("Bearer alice")).await.unwrap();
    assert_eq!(
        status_of(&alice),
        "memocache; fwd=bypass; detail=credentials"
    );
    let alice = alice.text().await.unwrap();
    let bob = get_as(Some("Bearer bob"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(alice, bob, "Bob was served Alice's response");
    // An anonymous response is stored, but never served to a caller with
    // credentials, nor is theirs stored for anyone.
    let anonymous = get_as(None).await.unwrap().text().await.unwrap();
    assert_eq!(get_as(None).await.unwrap().text().await.unwrap(), anonymous);
    let carol = get_as(Some("Bearer carol"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(carol, anonymous);
    let cookie = http
        .get(&url)
        .header("cookie", "session=x")
        .send()
        .await
        .unwrap();
    assert!(status_of(&cookie).contains("detail=credentials"));
    assert_eq!(PROFILE_CALLS.load(SeqCst), 5);

    // With the identity in the key, each identity gets its own entry.
    let url = format!("{base}/per-user");
    let fetch = |token: &'static str| http.get(&url).header("authorization", token).send();
    let a1 = fetch("Bearer a").await.unwrap();
    assert!(status_of(&a1).contains("stored"));
    assert_eq!(header(&a1, "vary"), Some("authorization"));
    let a1 = a1.text().await.unwrap();
    let b1 = fetch("Bearer b").await.unwrap().text().await.unwrap();
    let a2 = fetch("Bearer a").await.unwrap();
    assert!(status_of(&a2).contains("hit"));
    assert_eq!(a2.text().await.unwrap(), a1);
    assert_ne!(a1, b1);
    assert_eq!(PER_USER_CALLS.load(SeqCst), 2);
}

// --- streaming bodies stream ---

static STREAM_CALLS: AtomicUsize = AtomicUsize::new(0);

static GATE: std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>> =
    std::sync::Mutex::new(None);

/// Sends one chunk, then waits for the client to have read it before the
/// second: a driver that buffered the body would never deliver the first.
#[cached(handler, namespace = "http-stream")]
async fn events() -> Response {
    STREAM_CALLS.fetch_add(1, SeqCst);
    let gate = GATE.lock().unwrap().take();
    let chunks = futures_util::stream::unfold((0u8, gate), |(step, gate)| async move {
        match step {
            0 => Some((Ok::<_, std::io::Error>("data: first\n\n"), (1, gate))),
            1 => {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                Some((Ok("data: second\n\n"), (2, None)))
            }
            _ => None,
        }
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(chunks),
    )
        .into_response()
}

#[tokio::test]
async fn a_streaming_body_still_streams() {
    let (open, gate) = tokio::sync::oneshot::channel();
    *GATE.lock().unwrap() = Some(gate);
    let base = serve(Router::new().route("/events", get(events))).await;
    let mut r = client().get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(status_of(&r), "memocache; fwd=miss; detail=streaming");
    assert_eq!(header(&r, "content-type"), Some("text/event-stream"));
    let first = tokio::time::timeout(Duration::from_secs(5), r.chunk())
        .await
        .expect("the first chunk never came: the body was buffered")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    open.send(()).unwrap();
    let second = r.chunk().await.unwrap().unwrap();
    assert_eq!(&second[..], b"data: second\n\n");
    assert!(r.chunk().await.unwrap().is_none());
    assert_eq!(STREAM_CALLS.load(SeqCst), 1);
}

// --- request Cache-Control, methods, vary ---

static NEWS_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-news")]
async fn news() -> String {
    format!("edition {}", NEWS_CALLS.fetch_add(1, SeqCst))
}

#[tokio::test]
async fn request_no_cache_revalidates_and_refreshes_the_entry() {
    let base = serve(Router::new().route("/news", get(news))).await;
    let http = client();
    let url = format!("{base}/news");
    let first = http.get(&url).send().await.unwrap().text().await.unwrap();
    let refreshed = http
        .get(&url)
        .header("cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert!(status_of(&refreshed).starts_with("memocache; fwd=request; stored"));
    let refreshed = refreshed.text().await.unwrap();
    assert_ne!(refreshed, first);
    let after = http.get(&url).send().await.unwrap();
    assert!(status_of(&after).contains("hit"));
    assert_eq!(
        after.text().await.unwrap(),
        refreshed,
        "the entry was refreshed"
    );
    // no-store: may be answered from the cache, but stores nothing.
    let no_store = http
        .get(&url)
        .header("cache-control", "no-store")
        .send()
        .await
        .unwrap();
    assert!(status_of(&no_store).contains("hit"));
    assert_eq!(NEWS_CALLS.load(SeqCst), 2);
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Search {
    q: String,
}

static SEARCH_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-search")]
async fn search_get(Query(search): Query<Search>) -> String {
    SEARCH_CALLS.fetch_add(1, SeqCst);
    format!("results for {}", search.q)
}

static POST_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-search")]
async fn search_post(Json(search): Json<Search>) -> String {
    POST_CALLS.fetch_add(1, SeqCst);
    format!("results for {}", search.q)
}

static QUERY_POST_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler(methods(POST)), namespace = "http-search")]
async fn search_post_cached(Json(search): Json<Search>) -> String {
    QUERY_POST_CALLS.fetch_add(1, SeqCst);
    format!("results for {}", search.q)
}

#[tokio::test]
async fn query_keys_and_methods() {
    let router = Router::new()
        .route("/search", get(search_get).post(search_post))
        .route("/search-cached", post(search_post_cached));
    let base = serve(router).await;
    let http = client();
    for q in ["a", "b", "a", "b"] {
        let r = http
            .get(format!("{base}/search?q={q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), format!("results for {q}"));
    }
    assert_eq!(SEARCH_CALLS.load(SeqCst), 2);

    for _ in 0..2 {
        let r = http
            .post(format!("{base}/search"))
            .json(&serde_json::json!({ "q": "x" }))
            .send()
            .await
            .unwrap();
        assert_eq!(status_of(&r), "memocache; fwd=method");
    }
    assert_eq!(POST_CALLS.load(SeqCst), 2, "POST is not cached by default");

    for q in ["x", "x", "y"] {
        let r = http
            .post(format!("{base}/search-cached"))
            .json(&serde_json::json!({ "q": q }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.text().await.unwrap(), format!("results for {q}"));
    }
    assert_eq!(
        QUERY_POST_CALLS.load(SeqCst),
        2,
        "methods(POST) caches by body"
    );
}

static LANG_CALLS: AtomicUsize = AtomicUsize::new(0);

/// Reads one header, which `vary` keys by; the rest of the map is skipped.
#[cached(
    handler(vary("accept-language")),
    skip(headers),
    namespace = "http-vary"
)]
async fn greeting(headers: HeaderMap) -> String {
    LANG_CALLS.fetch_add(1, SeqCst);
    match headers.get("accept-language").map(|v| v.to_str().unwrap()) {
        Some(l) if l.starts_with("fr") => "bonjour".into(),
        _ => "hello".into(),
    }
}

#[tokio::test]
async fn vary_headers_are_part_of_the_key() {
    let base = serve(Router::new().route("/greeting", get(greeting))).await;
    let http = client();
    let url = format!("{base}/greeting");
    for (lang, expected) in [("fr", "bonjour"), ("en", "hello"), ("fr", "bonjour")] {
        let r = http
            .get(&url)
            .header("accept-language", lang)
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "vary"), Some("accept-language"));
        assert_eq!(r.text().await.unwrap(), expected);
    }
    let none = http.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(none, "hello");
    assert_eq!(LANG_CALLS.load(SeqCst), 3);
}

// --- every kind of extractor ---

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

#[derive(Clone, Serialize)]
struct Tenant(u32);

static MIXED_CALLS: AtomicUsize = AtomicUsize::new(0);

/// `State` (out of the key), `Path`, `Query`, `TypedHeader` (keyed), and an
/// `Extension` put in the key explicitly; `#[debug_handler]` below.
#[cached(handler(include(tenant)), namespace = "http-mixed")]
#[axum::debug_handler(state = AppState)]
async fn mixed(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    Query(search): Query<Search>,
    TypedHeader(agent): TypedHeader<UserAgent>,
    Extension(tenant): Extension<Tenant>,
) -> String {
    MIXED_CALLS.fetch_add(1, SeqCst);
    format!(
        "{} {id} {} {} tenant {}",
        state.greeting,
        search.q,
        agent.as_str(),
        tenant.0
    )
}

static WRITES: AtomicUsize = AtomicUsize::new(0);

#[cache_remove(mixed(Path(id), Query(search.clone()), TypedHeader(agent.clone()), Extension(tenant.clone())))]
async fn write_mixed(
    Path(id): Path<u64>,
    Query(search): Query<Search>,
    TypedHeader(agent): TypedHeader<UserAgent>,
    Extension(tenant): Extension<Tenant>,
) -> StatusCode {
    let _ = (id, search, agent, tenant);
    WRITES.fetch_add(1, SeqCst);
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn state_path_query_typed_header_and_extension() {
    let router = Router::new()
        .route("/mixed/{id}", get(mixed).post(write_mixed))
        .layer(Extension(Tenant(9)))
        .with_state(AppState { greeting: "hi" });
    let base = serve(router).await;
    let http = client();
    let fetch = |id: u32, q: &str, agent: &'static str| {
        http.get(format!("{base}/mixed/{id}?q={q}"))
            .header("user-agent", agent)
            .send()
    };
    let first = fetch(1, "x", "curl").await.unwrap().text().await.unwrap();
    assert_eq!(first, "hi 1 x curl tenant 9");
    assert!(status_of(&fetch(1, "x", "curl").await.unwrap()).contains("hit"));
    fetch(2, "x", "curl").await.unwrap();
    fetch(1, "y", "curl").await.unwrap();
    fetch(1, "x", "wget").await.unwrap();
    assert_eq!(MIXED_CALLS.load(SeqCst), 4);

    let write = http
        .post(format!("{base}/mixed/1?q=x"))
        .header("user-agent", "curl")
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 204);
    let after = fetch(1, "x", "curl").await.unwrap();
    assert!(
        status_of(&after).contains("fwd=miss"),
        "#[cache_remove] removed it"
    );
    assert_eq!(MIXED_CALLS.load(SeqCst), 5);
}

// --- the admin router ---

static ADMIN_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(handler, namespace = "http-admin")]
async fn admin_target() -> String {
    format!("value {}", ADMIN_CALLS.fetch_add(1, SeqCst))
}

#[tokio::test]
async fn admin_flush_needs_the_token() {
    let admin = memocache::axum::admin_router(TOKEN).unwrap();
    let router = Router::new()
        .route("/target", get(admin_target))
        .nest("/ops/cache", admin);
    let base = serve(router).await;
    let http = client();
    let target = format!("{base}/target");
    let flush = format!("{base}/ops/cache/flush/http-admin");

    let first = http
        .get(&target)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        http.get(&target)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        first
    );

    for auth in [None, Some("Bearer wrong-token-0123456789"), Some(TOKEN)] {
        let mut request = http.post(&flush);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(header(&r, "www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
    }
    assert_eq!(
        http.get(&target)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        first,
        "a refused flush flushed nothing"
    );

    let bearer = format!("Bearer {TOKEN}");
    let r = http
        .post(&flush)
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = http.get(&target).send().await.unwrap();
    assert!(status_of(&after).contains("fwd=miss"));
    assert_ne!(after.text().await.unwrap(), first);
    assert_eq!(ADMIN_CALLS.load(SeqCst), 2);

    // Invalidating one function's entries.
    let function = format!("{}::admin_target", module_path!());
    let r = http
        .post(format!("{base}/ops/cache/invalidate/http-admin/{function}"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["removed"], 1);
    assert!(status_of(&http.get(&target).send().await.unwrap()).contains("fwd=miss"));

    let bad = http
        .post(format!("{base}/ops/cache/flush/bad:name"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let health = http
        .get(format!("{base}/ops/cache/health"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["ok"], true);
    assert_eq!(health["backend"], "memory");
    assert!(health["latency_ms"].as_f64().is_some());

    let stats = http
        .get(format!("{base}/ops/cache/stats"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(header(&stats, "cache-control"), Some("no-store"));
    let stats: serde_json::Value = stats.json().await.unwrap();
    let ours = stats["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["function"] == function.as_str())
        .unwrap()
        .clone();
    assert_eq!(ours["namespace"], "http-admin");
    assert_eq!(ours["hits"], 2);
    assert_eq!(ours["misses"], 3);
    assert!(stats["cache"]["hits"].as_u64().unwrap() >= 2);

    let no_auth = http
        .get(format!("{base}/ops/cache/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
}

#[test]
fn the_admin_router_refuses_to_mount_without_a_token() {
    for token in ["", "short", "has a space in it, long enough"] {
        assert!(
            memocache::axum::admin_router::<()>(token).is_err(),
            "{token:?}"
        );
    }
    std::env::remove_var(memocache::axum::ADMIN_TOKEN_VAR);
    let err = memocache::axum::admin_router_from_env::<()>().unwrap_err();
    assert!(err.to_string().contains("MEMOCACHE_ADMIN_TOKEN"), "{err}");
    assert!(!format!("{:?}", memocache::axum::AdminToken::new(TOKEN).unwrap()).contains(TOKEN));
}
