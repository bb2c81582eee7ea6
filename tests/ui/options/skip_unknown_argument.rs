use memocache::cached;

#[cached(skip(db))]
fn load(id: u64, pool: &str) -> String {
    format!("{id}{pool}")
}

fn main() {}
