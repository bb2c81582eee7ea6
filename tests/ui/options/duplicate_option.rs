use memocache::cached;

#[cached(ttl = "1m", namespace = "users", ttl = "2m")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
