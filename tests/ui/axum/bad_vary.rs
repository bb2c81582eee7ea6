use memocache::cached;

#[cached(handler(vary("accept language", "*")))]
async fn page() -> String {
    "page".into()
}

fn main() {}
