use memocache::cached;

#[cached]
const fn load(id: u64) -> u64 {
    id * 2
}

fn main() {}
