//! The values the benchmarks cache and encode.

use serde::{Deserialize, Serialize};

/// The 100-byte `String` results: kept with `cached`'s Redis-backed
/// functions, which compute them too.
pub use memocache_bench_cached_peer::{text, TEXT_LEN};

/// A typical row: what a service caches per user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Identifier.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
    /// Whether the account is active.
    pub active: bool,
    /// A score.
    pub score: f64,
    /// Tags.
    pub tags: Vec<String>,
}

/// The user with identifier `id`.
pub fn user(id: u64) -> User {
    User {
        id,
        name: format!("User Number {id}"),
        email: format!("user{id}@example.com"),
        active: !id.is_multiple_of(3),
        score: id as f64 * 1.25,
        tags: vec!["reader".to_owned(), format!("group-{}", id % 7)],
    }
}

/// `n` users: about 130 bytes of JSON each, repetitive like real listings.
pub fn users(n: u64) -> Vec<User> {
    (0..n).map(user).collect()
}
