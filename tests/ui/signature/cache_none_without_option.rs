use memocache::cached;

#[cached(cache_none)]
fn load(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
