use memocache::cached;

#[derive(Clone, serde::Serialize)]
pub struct Page {
    items: Vec<u32>,
}

struct Repo;

impl Repo {
    #[cached]
    async fn page(&self, n: u32) -> Page {
        Page { items: vec![n] }
    }
}

fn main() {}
