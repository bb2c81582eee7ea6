use memocache::cached;

#[cached(ttl = "5 minutes")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
