use memocache::cached;

#[cached]
fn load(id: u64) -> impl std::fmt::Display {
    id
}

fn main() {}
