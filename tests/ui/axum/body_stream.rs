use axum::extract::{Path, Request};
use memocache::cached;

#[cached(handler)]
async fn upload(Path(id): Path<u64>, request: Request) -> String {
    let _ = request;
    format!("{id}")
}

fn main() {}
