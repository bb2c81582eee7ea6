use memocache::cached;

#[cached]
fn load(id: impl std::fmt::Display) -> String {
    id.to_string()
}

fn main() {}
