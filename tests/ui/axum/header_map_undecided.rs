use axum::http::HeaderMap;
use memocache::cached;

#[cached(handler)]
async fn echo(headers: HeaderMap) -> String {
    format!("{}", headers.len())
}

fn main() {}
