use axum::extract::Path;
use axum::response::IntoResponse;
use memocache::cached;

#[cached(namespace = "pages")]
async fn page(Path(id): Path<u64>) -> impl IntoResponse {
    format!("{id}")
}

fn main() {}
