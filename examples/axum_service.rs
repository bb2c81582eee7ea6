//! A small JSON service (users, products) whose GET handlers are cached with
//! `#[cached(handler)]`, whose write endpoint removes the stale entry with
//! `#[cache_remove]`, and which mounts the admin router.
//!
//! ```sh
//! cargo run --example axum_service --features axum                  # in-process cache
//! MEMOCACHE_URL=redis://127.0.0.1:6379 \
//! MEMOCACHE_ADMIN_TOKEN=change-me-to-a-long-secret \
//! PORT=8080 cargo run --example axum_service --features axum        # shared through Redis
//!
//! curl -i localhost:8080/users/1             # Cache-Status: memocache; fwd=miss; stored; ttl=300
//! curl -i localhost:8080/users/1             # Cache-Status: memocache; hit; ttl=299, Age: 1
//! curl -i -X PUT localhost:8080/users/1 -H 'content-type: application/json' \
//!      -d '{"id":1,"name":"Ada L.","email":"ada@example.com"}'
//! curl -i -X POST localhost:8080/admin/cache/flush/products \
//!      -H 'authorization: Bearer change-me-to-a-long-secret'
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use memocache::{cache_remove, cached};
use serde::{Deserialize, Serialize};

/// A user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    id: u64,
    name: String,
    email: String,
}

/// A product.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Product {
    id: u64,
    name: String,
    price_cents: u64,
}

/// The query of `GET /products`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProductFilter {
    max_price_cents: Option<u64>,
}

/// The "database": in memory, with a counter of reads so that a cache hit
/// is visible (it reads nothing).
#[derive(Clone, Default)]
pub struct Db {
    users: Arc<RwLock<BTreeMap<u64, User>>>,
    products: Arc<RwLock<BTreeMap<u64, Product>>>,
    /// How many times a handler read the database.
    pub reads: Arc<AtomicU64>,
}

impl Db {
    /// A database with a few rows.
    pub fn seeded() -> Self {
        let db = Db::default();
        {
            let mut users = db.users.write().unwrap();
            for (id, name) in [(1, "Ada"), (2, "Grace"), (3, "Barbara")] {
                let email = format!("{}@example.com", name.to_lowercase());
                let name = name.to_owned();
                users.insert(id, User { id, name, email });
            }
            let mut products = db.products.write().unwrap();
            for (id, name, price_cents) in [(1, "kettle", 2_500), (2, "teapot", 4_000)] {
                let name = name.to_owned();
                products.insert(
                    id,
                    Product {
                        id,
                        name,
                        price_cents,
                    },
                );
            }
        }
        db
    }

    fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }
}

/// `GET /users/{id}`: cached for five minutes, per `id` (the `State` is not
/// part of the key). A 404 is not stored.
#[cached(handler, namespace = "users", ttl = "5m")]
#[axum::debug_handler]
pub async fn get_user(State(db): State<Db>, Path(id): Path<u64>) -> Result<Json<User>, StatusCode> {
    db.read();
    let user = db.users.read().unwrap().get(&id).cloned();
    user.map(Json).ok_or(StatusCode::NOT_FOUND)
}

/// `PUT /users/{id}`: writes, then removes the cached `GET /users/{id}`
/// (in every process sharing the cache) when it succeeded.
#[cache_remove(get_user(Path(id)))]
pub async fn put_user(
    State(db): State<Db>,
    Path(id): Path<u64>,
    Json(user): Json<User>,
) -> Result<Json<User>, StatusCode> {
    if user.id != id {
        return Err(StatusCode::UNPROCESSABLE_ENTITY);
    }
    db.users.write().unwrap().insert(id, user.clone());
    Ok(Json(user))
}

/// `GET /products?max_price_cents=N`: cached for a minute, per filter.
#[cached(handler, namespace = "products", ttl = "1m")]
pub async fn list_products(
    State(db): State<Db>,
    Query(filter): Query<ProductFilter>,
) -> Json<Vec<Product>> {
    db.read();
    let products = db.products.read().unwrap();
    let max = filter.max_price_cents.unwrap_or(u64::MAX);
    Json(
        products
            .values()
            .filter(|p| p.price_cents <= max)
            .cloned()
            .collect(),
    )
}

/// `GET /products/{id}`: cached per product and per `Accept-Language`,
/// since the (pretend) translation depends on it.
#[cached(handler(vary("accept-language")), namespace = "products", ttl = "1m")]
pub async fn get_product(
    State(db): State<Db>,
    Path(id): Path<u64>,
) -> Result<Json<Product>, StatusCode> {
    db.read();
    let product = db.products.read().unwrap().get(&id).cloned();
    product.map(Json).ok_or(StatusCode::NOT_FOUND)
}

/// The service's routes (without the admin router).
pub const ROUTES: &[&str] = &[
    "GET  /users/{id}",
    "PUT  /users/{id}",
    "GET  /products?max_price_cents=N",
    "GET  /products/{id}",
];

/// The service, and the admin router under `/admin/cache` when
/// `MEMOCACHE_ADMIN_TOKEN` holds a token; without one it is not mounted.
pub fn app(db: Db) -> Router {
    let api = Router::new()
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/products", get(list_products))
        .route("/products/{id}", get(get_product))
        .with_state(db);
    match memocache::axum::admin_router_from_env() {
        Ok(admin) => api.nest("/admin/cache", admin),
        Err(e) => {
            println!("admin router not mounted: {e}");
            api
        }
    }
}

/// Sets up the cache from the environment (`MEMOCACHE_URL`, or in process),
/// binds `127.0.0.1:$PORT` (default 3000; `0` picks a free port), prints
/// the address and the routes, and serves until killed.
pub async fn run() -> Result<(), Box<dyn std::error::Error>> {
    memocache::init_from_env()?;
    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port} is not a port"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let app = app(Db::seeded());
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    for route in ROUTES {
        println!("  {route}");
    }
    if std::env::var_os(memocache::axum::ADMIN_TOKEN_VAR).is_some() {
        println!("  POST /admin/cache/flush/{{namespace}}");
        println!("  POST /admin/cache/invalidate/{{namespace}}/{{function}}");
        println!("  GET  /admin/cache/health");
        println!("  GET  /admin/cache/stats");
    }
    axum::serve(listener, app).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run().await
}
