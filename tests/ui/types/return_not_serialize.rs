use memocache::cached;

#[derive(Clone, serde::Deserialize)]
struct User {
    id: u64,
}

#[cached]
fn load(id: u64) -> Result<User, String> {
    Ok(User { id })
}

fn main() {}
