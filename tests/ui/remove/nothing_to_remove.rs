use memocache::cache_remove;

#[cache_remove()]
fn update(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
