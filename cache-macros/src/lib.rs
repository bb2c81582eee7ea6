//! The attribute macros of [memocache](https://docs.rs/memocache):
//! `#[cached]` and `#[cache_remove]`. Use them through the `memocache`
//! crate, which documents them; the code they generate names only
//! `::memocache::__private` (or the path given with `crate = "..."`).
//!
//! | file | what it holds |
//! |---|---|
//! | `attr.rs` | typed parsing of `#[cached(...)]` options |
//! | `ast.rs` | the borrowed view of the annotated function |
//! | `valid.rs` | the rules a cached function must follow |
//! | `expand.rs` | code generation for `#[cached]` and its companions |
//! | `handler.rs` | `#[cached(handler)]`: axum handlers, their key and code generation |
//! | `remove.rs` | `#[cache_remove]`: parsing and code generation |
//! | `fallback.rs` | what is emitted on error: the function unchanged |
//! | `ctxt.rs` | the collection of every error of one attribute |
#![deny(missing_docs)]

mod ast;
mod attr;
mod ctxt;
mod expand;
mod fallback;
mod handler;
mod remove;
mod valid;

use proc_macro::TokenStream;

/// Caches the results of a function. Documented on `memocache::cached`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

/// Invalidates cached entries when a function succeeds. Documented on
/// `memocache::cache_remove`.
#[proc_macro_attribute]
pub fn cache_remove(args: TokenStream, item: TokenStream) -> TokenStream {
    remove::cache_remove(args.into(), item.into()).into()
}
