use memocache::{cache_remove, cached};

#[cached]
fn load(id: u64) -> String {
    id.to_string()
}

#[cache_remove(load(id), after)]
fn update(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {}
