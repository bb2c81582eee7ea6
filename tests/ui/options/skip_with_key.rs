use memocache::cached;

#[cached(key = id, skip(pool))]
fn load(id: u64, pool: &str) -> String {
    format!("{id}{pool}")
}

fn main() {}
