use memocache::cached;

struct Tenant(u32);

#[cached(key = (Tenant(1), id))]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
