use memocache::cached;

fn long_enough(s: &str) -> bool {
    s.len() > 3
}

#[cached(store_if = long_enough)]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
