use memocache::cached;

#[cached(lock = "until done")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
