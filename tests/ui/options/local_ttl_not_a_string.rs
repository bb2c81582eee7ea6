use memocache::cached;

#[cached(local_ttl = 10)]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
