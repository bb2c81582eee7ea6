//! `#[cached]` in impl blocks: methods, associated functions, generic impls
//! and trait default methods. No warning may come from generated code.
#![deny(warnings)]

use std::sync::Arc;

use memocache::{cache_remove, cached};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
pub struct User {
    id: u64,
}

pub struct Users {
    tenant: u32,
}

impl Users {
    #[cached(namespace = "users", key = (self.tenant, id))]
    pub fn load(&self, id: u64) -> Option<User> {
        Some(User { id })
    }

    #[cached]
    pub fn load_mut(&mut self, id: u64) -> u32 {
        self.tenant += 1;
        self.tenant + id as u32
    }

    #[cached]
    pub fn load_arc(self: Arc<Self>, id: u64) -> u32 {
        self.tenant + id as u32
    }

    #[cached]
    pub fn consume(self, id: u64) -> u64 {
        u64::from(self.tenant) + id
    }

    /// Associated: the signature names `Self`.
    #[cached]
    pub fn named(id: u64) -> Option<Self> {
        Self::from_id(id).into()
    }

    /// Associated without `Self` in the signature: says so with `in_impl`.
    #[cached(in_impl)]
    pub fn count(prefix: &str) -> usize {
        prefix.len()
    }

    #[cached]
    pub async fn load_async(&self, name: &str) -> Result<String, std::io::Error> {
        Ok(format!("{}{name}", self.tenant))
    }

    #[cache_remove(self.load(id), Self::count("u"), namespace = "users")]
    pub fn save(&self, id: u64) -> Result<(), String> {
        let _ = id;
        Ok(())
    }

    fn from_id(id: u64) -> Self {
        Users { tenant: id as u32 }
    }
}

impl Serialize for Users {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.tenant.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Users {
            tenant: u32::deserialize(d)?,
        })
    }
}

impl Clone for Users {
    fn clone(&self) -> Self {
        Users {
            tenant: self.tenant,
        }
    }
}

pub struct Store<T> {
    items: Vec<T>,
}

impl<T> Store<T>
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    #[cached]
    pub fn first(&self, skip: usize) -> Option<T> {
        self.items.get(skip).cloned()
    }

    #[cached(skip(f))]
    pub fn map<U: Serialize + Clone + DeserializeOwned + Send + Sync + 'static>(
        &self,
        f: fn(&T) -> U,
        at: usize,
    ) -> Option<U> {
        self.items.get(at).map(f)
    }
}

pub trait Named {
    fn name(&self) -> String;

    #[cached]
    fn greeting(&self, loud: bool) -> String {
        if loud {
            self.name().to_uppercase()
        } else {
            self.name()
        }
    }
}

impl Named for User {
    fn name(&self) -> String {
        format!("user {}", self.id)
    }
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    let users = Users { tenant: 1 };
    assert_eq!(users.load(3).map(|u| u.id), Some(3));
    assert!(users.save(3).is_ok());
    assert!(Users::load_key(&users, 3).is_ok());
    let mut m = Users { tenant: 1 };
    m.load_mut(1);
    Arc::new(Users { tenant: 2 }).load_arc(1);
    Users { tenant: 2 }.consume(1);
    assert!(Users::named(4).is_some());
    assert_eq!(Users::count("abc"), 3);
    let fut = users.load_async("x");
    assert_send(&fut);
    assert_eq!(memocache::block_on(fut).unwrap(), "1x");

    let store = Store { items: vec![1u8, 2] };
    assert_eq!(store.first(1), Some(2));
    assert_eq!(store.map(|x| u32::from(*x) * 2, 0), Some(2));
    assert_eq!(User { id: 1 }.greeting(true), "USER 1");
}
