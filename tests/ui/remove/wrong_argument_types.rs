use memocache::{cache_remove, cached};

#[cached]
fn load(id: u64) -> String {
    id.to_string()
}

#[cache_remove(load(name))]
fn rename(name: &str) -> Result<(), String> {
    let _ = name;
    Ok(())
}

fn main() {}
