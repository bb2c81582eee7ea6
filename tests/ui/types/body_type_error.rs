use memocache::cached;

// A mistake in the body is reported once, at the user's code.
#[cached]
fn load(id: u64) -> String {
    id
}

fn main() {}
