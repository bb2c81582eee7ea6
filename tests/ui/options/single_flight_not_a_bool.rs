use memocache::cached;

#[cached(single_flight = "off")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
