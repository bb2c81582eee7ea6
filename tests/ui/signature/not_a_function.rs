use memocache::cached;

#[cached]
struct User {
    id: u64,
}

fn main() {}
