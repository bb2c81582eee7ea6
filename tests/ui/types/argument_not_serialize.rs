use memocache::cached;

struct Pool;

#[cached]
fn load(id: u64, pool: &Pool) -> String {
    let _ = pool;
    id.to_string()
}

fn main() {}
