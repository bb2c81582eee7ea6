use memocache::cached;

trait Users {
    #[cached]
    fn load(&self, id: u64) -> String;
}

fn main() {}
