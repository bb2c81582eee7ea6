use memocache::cached;

#[cached(handler(forever))]
async fn page() -> String {
    "page".into()
}

fn main() {}
