use memocache::cached;

#[cached(local_ttl = "0ms")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
