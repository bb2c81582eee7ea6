use memocache::cached;

#[cached(store_if = |s: &String| !s.is_empty())]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
