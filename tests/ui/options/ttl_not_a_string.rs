use memocache::cached;

#[cached(ttl = 300)]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
