use axum::extract::Path;
use memocache::cached;

#[cached(handler)]
async fn page<T: Default + ToString>(Path(id): Path<u64>) -> String {
    format!("{id}{}", T::default().to_string())
}

fn main() {}
