use memocache::cached;

#[cached(ttl = "0s")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
