use axum::extract::Path;
use memocache::cached;

#[cached(handler(include(user)))]
async fn page(Path(id): Path<u64>) -> String {
    format!("{id}")
}

fn main() {}
