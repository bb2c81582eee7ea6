use memocache::cached;

// Every mistake is reported in one build, each at its own token.
#[cached(namespace = "a b", ttl = "soon", colour = "blue")]
fn load(id: u64) -> String {
    id.to_string()
}

fn main() {}
