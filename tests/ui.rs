//! Compile-time behaviour of `#[cached]` and `#[cache_remove]`: every misuse
//! gives one clear error at the user's token (`tests/ui/<topic>/<case>.rs`
//! with its `.stderr`), and the must-compile cases in `tests/pass/` build
//! without a warning and run.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*/*.rs");
    t.pass("tests/pass/*.rs");
}
