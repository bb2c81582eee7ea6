use memocache::cached;

#[derive(serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
}

#[cached]
fn load(id: u64) -> Option<User> {
    Some(User { id })
}

fn main() {}
