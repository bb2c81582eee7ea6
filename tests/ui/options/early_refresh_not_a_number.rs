use memocache::cached;

#[cached(early_refresh = "fast")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
