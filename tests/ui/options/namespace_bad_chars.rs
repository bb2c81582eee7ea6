use memocache::cached;

#[cached(namespace = "users:*")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
