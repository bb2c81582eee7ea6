use memocache::cached;

#[cached(crate = memocache)]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
