use memocache::cached;

#[cached(version = "2")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
