use memocache::cache_remove;

#[cache_remove(namespace = "users/admins")]
fn update(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
