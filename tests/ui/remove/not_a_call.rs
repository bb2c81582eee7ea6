use memocache::cache_remove;

#[cache_remove("load")]
fn update(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
