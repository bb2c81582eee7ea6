use memocache::cached;

#[cached(skip(pool, pool))]
fn load(id: u64, pool: &str) -> String {
    format!("{id}{pool}")
}

fn main() {}
