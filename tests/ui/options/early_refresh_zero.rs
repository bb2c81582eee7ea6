use memocache::cached;

#[cached(early_refresh = 0.0)]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
