use axum::extract::Path;
use axum::Extension;
use memocache::cached;

#[derive(Clone)]
struct CurrentUser(u64);

// The response may depend on who asks: the key must say so, or not.
#[cached(handler)]
async fn dashboard(Path(id): Path<u64>, Extension(user): Extension<CurrentUser>) -> String {
    format!("{id} for {}", user.0)
}

fn main() {}
