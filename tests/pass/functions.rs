//! Free functions: every option, references and lifetimes, patterns,
//! generics, nested modules, async, a renamed facade. No warning may come
//! from generated code, including for companions that are never used.
#![deny(warnings)]

extern crate memocache as renamed;

use std::collections::HashMap;

use memocache::{cache_remove, cached};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Query {
    term: String,
    page: u32,
}

struct Pool;

fn is_complete(out: &Result<Vec<String>, String>) -> bool {
    out.as_ref().is_ok_and(|v| !v.is_empty())
}

#[cached(
    namespace = "search.v-1_x",
    ttl = "1h 30m",
    skip(pool),
    version = 3,
    cache_err,
    store_if = is_complete,
    single_flight = false
)]
fn search(query: &Query, pool: &Pool, mut limit: usize) -> Result<Vec<String>, String> {
    let _ = pool;
    limit = limit.min(10);
    Ok(vec![query.term.clone(); limit])
}

#[cached(key = (name.len(), tags.len()), cache_none)]
fn lookup<'a>(name: &'a str, tags: &[&'a str], map: &HashMap<String, u32>) -> Option<u32> {
    map.get(name).copied().or(tags.first().map(|t| t.len() as u32))
}

#[cached(crate = "renamed")]
fn via_renamed((a, b): (u32, u32), Query { term, .. }: Query) -> String {
    format!("{a}{b}{term}")
}

#[cached]
fn sized<T: Serialize + Default + std::fmt::Debug, const N: usize>(items: Vec<T>) -> String {
    format!("{items:?}{:?}{N}", T::default())
}

mod outer {
    pub mod inner {
        use memocache::cached;

        #[cached(ttl = "250ms")]
        pub(crate) async fn fetch(id: u64) -> Result<u64, std::io::Error> {
            if id == 0 {
                return Err(std::io::Error::other("zero"));
            }
            Ok(id)
        }
    }
}

#[cache_remove(outer::inner::fetch(id), search(&query, &Pool, 1), before)]
async fn update(id: u64, query: Query) -> Result<u64, std::io::Error> {
    let n: u64 = "1".parse().map_err(std::io::Error::other)?;
    Ok(n + id + u64::from(query.page))
}

#[cache_remove(namespace = "search.v-1_x", crate = "renamed")]
fn flush_search() {}

fn main() {
    let q = Query {
        term: "rust".into(),
        page: 1,
    };
    assert_eq!(search(&q, &Pool, 2).unwrap().len(), 2);
    let map = HashMap::from([("a".to_owned(), 1)]);
    assert_eq!(lookup("a", &["xy"], &map), Some(1));
    assert_eq!(via_renamed((1, 2), q.clone()), "12rust");
    assert_eq!(sized::<u8, 3>(vec![1, 2]), "[1, 2]03");
    let fut = outer::inner::fetch(1);
    fn assert_send<T: Send>(_: &T) {}
    assert_send(&fut);
    assert_eq!(memocache::block_on(fut).unwrap(), 1);
    assert_eq!(memocache::block_on(update(1, q)).unwrap(), 3);
    flush_search();
}
