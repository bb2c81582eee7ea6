use axum::http::StatusCode;
use memocache::cached;

#[cached(handler, cache_err)]
async fn page() -> Result<String, StatusCode> {
    Ok("page".into())
}

fn main() {}
