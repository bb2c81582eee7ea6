use memocache::cached;

#[cached(namespace = "a-namespace-that-is-much-too-long-to-be-part-of-every-single-key-0123456789")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
