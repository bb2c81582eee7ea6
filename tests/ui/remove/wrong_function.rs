use memocache::cache_remove;

fn load(id: u64) -> String {
    id.to_string()
}

#[cache_remove(load(id))]
fn update(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
