//! A backend that refuses everything: what the global cache falls back to
//! when its configuration is broken, so cached functions still compute.

use std::time::Duration;

use bytes::Bytes;

use super::{Backend, BoxFuture, Expect, KeyTtl};
use crate::error::{Error, ErrorKind, Result};

/// Answers every call with [`ErrorKind::Unavailable`] and the reason.
#[derive(Debug)]
pub struct Disabled {
    reason: String,
}

impl Disabled {
    /// A backend refusing calls because of `reason`.
    pub fn new(reason: String) -> Self {
        Disabled { reason }
    }

    fn refuse<'a, T: Send + 'a>(&self) -> BoxFuture<'a, Result<T>> {
        let e = Error::new(
            ErrorKind::Unavailable,
            format!("caching is disabled: {}", self.reason),
        );
        Box::pin(std::future::ready(Err(e)))
    }
}

impl Backend for Disabled {
    fn name(&self) -> &'static str {
        "disabled"
    }
    fn is_remote(&self) -> bool {
        false
    }
    fn get_many<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<Vec<Option<Bytes>>>> {
        self.refuse()
    }
    fn set_many<'a>(
        &'a self,
        _: &'a [(String, Bytes)],
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<()>> {
        self.refuse()
    }
    fn set_if<'a>(
        &'a self,
        _: &'a str,
        _: Bytes,
        _: Option<Duration>,
        _: &'a Expect,
    ) -> BoxFuture<'a, Result<bool>> {
        self.refuse()
    }
    fn delete<'a>(&'a self, _: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        self.refuse()
    }
    fn delete_if<'a>(&'a self, _: &'a str, _: &'a Expect) -> BoxFuture<'a, Result<bool>> {
        self.refuse()
    }
    fn increment<'a>(
        &'a self,
        _: &'a str,
        _: i64,
        _: Option<Duration>,
    ) -> BoxFuture<'a, Result<i64>> {
        self.refuse()
    }
    fn advance<'a>(&'a self, _: &'a str, _: u64) -> BoxFuture<'a, Result<u64>> {
        self.refuse()
    }
    fn expire<'a>(&'a self, _: &'a str, _: Duration) -> BoxFuture<'a, Result<bool>> {
        self.refuse()
    }
    fn ttl<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<KeyTtl>> {
        self.refuse()
    }
    fn scan<'a>(
        &'a self,
        _: &'a str,
        _: u64,
        _: usize,
    ) -> BoxFuture<'a, Result<(u64, Vec<String>)>> {
        self.refuse()
    }
    fn ping(&self) -> BoxFuture<'_, Result<()>> {
        self.refuse()
    }
}
