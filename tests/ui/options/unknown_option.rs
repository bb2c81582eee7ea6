use memocache::cached;

#[cached(nmespace = "users")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
