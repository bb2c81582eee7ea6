use memocache::cached;

#[cached(cache_err = true)]
fn load(id: u64) -> Result<String, String> {
    Ok(id.to_string())
}

fn main() {}
