use memocache::cached;

#[cached]
fn record(id: u64) {
    println!("{id}");
}

fn main() {}
