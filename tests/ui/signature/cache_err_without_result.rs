use memocache::cached;

#[cached(cache_err)]
fn load(id: u64) -> Option<String> {
    Some(id.to_string())
}

fn main() {}
